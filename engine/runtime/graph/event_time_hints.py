"""Start-up hints about event time: a step that re-stamps elements after an unbounded source without event time.

Beam users stamp event time with ``Map(lambda e: TimestampedValue(e, e["ts"]))``. That sets each element's
timestamp, but the watermark is the source's: a watched file source (or any source whose reader returns no
timestamps) without ``timestamp_fn`` keeps it at -infinity, so event-time windows downstream never close and
only early panes fire. `event_time_hints` finds such steps before any data is read and `warn_event_time_hints`
logs one WARNING each, saying what to do. Whether a step stamps is read from its code: the names its
function (or its DoFn's ``process``) uses, nested functions included.
"""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Iterator
from typing import Any

from millstream.engine.model.core import CallableWrapperDoFn, ParDo
from millstream.engine.model.io import Read
from millstream.engine.model.pipeline import Pipeline
from millstream.engine.model.timestamp import TimestampedValue

log = logging.getLogger("millstream.pipeline")

_NAME = TimestampedValue.__name__


def _functions(target: Any) -> Iterator[types.FunctionType]:
    """The Python functions behind a callable (partials, bound methods, callable objects unwrapped)."""
    for _ in range(8):  # wrappers of wrappers, bounded
        if isinstance(target, functools.partial):
            target = target.func
        elif isinstance(target, types.MethodType):
            target = target.__func__
        else:
            break
    if isinstance(target, types.FunctionType):
        yield target
    elif not isinstance(target, type) and callable(target):
        call = type(target).__dict__.get("__call__")  # a callable object: its class's method
        if isinstance(call, types.FunctionType):
            yield call


def _code_stamps(code: types.CodeType, fn: types.FunctionType) -> bool:
    for name in code.co_names:
        if name == _NAME or fn.__globals__.get(name) is TimestampedValue:
            return True
    return any(isinstance(c, types.CodeType) and _code_stamps(c, fn) for c in code.co_consts)


def stamps_event_time(pardo: ParDo) -> bool:
    """True when the ParDo's function (Map/FlatMap callable, or the DoFn's process) makes TimestampedValues."""
    dofn = pardo.fn
    if isinstance(dofn, CallableWrapperDoFn):
        if dofn.fn is TimestampedValue:  # MapTuple(TimestampedValue)
            return True
        targets = list(_functions(dofn.fn))
    else:
        targets = [f for name in ("process", "process_batch") for f in _functions(getattr(dofn, name, None))]
    for fn in targets:
        closure = [c.cell_contents for c in fn.__closure__ or () if _cell_set(c)]
        if any(value is TimestampedValue for value in closure) or _code_stamps(fn.__code__, fn):
            return True
    return False


def _cell_set(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def event_time_hints(pipeline: Pipeline) -> list[str]:
    """One message per step that stamps TimestampedValues downstream of an unbounded source without event time."""
    # for every PCollection, the unbounded sources without event time it descends from (by step label)
    origins: dict[int, frozenset[str]] = {}
    hints = []
    for applied in pipeline.primitives():
        t = applied.transform
        if isinstance(t, Read):
            src = t.source
            blind = not src.is_bounded and t.timestamp_fn is None and not src.stamps_event_time
            own = frozenset({applied.full_label}) if blind else frozenset()
        else:
            main = [pc for pc in applied.inputs if id(pc) in origins]
            if isinstance(t, ParDo):
                main = main[:1]  # side inputs do not carry the main input's event time
            own = frozenset().union(*(origins[id(pc)] for pc in main))
            if own and isinstance(t, ParDo) and stamps_event_time(t):
                sources = ", ".join(f"'{s}'" for s in sorted(own))
                hints.append(
                    f"step '{applied.full_label}' sets event time with TimestampedValue, but the watermark comes "
                    f"from the unbounded source {sources}, which has no timestamp_fn: it stays at -infinity, so "
                    "event-time windows downstream never close (no ON_TIME panes, only early firings). Give the "
                    "source its event time instead, e.g. ReadFromJson(..., timestamp_fn=lambda e: e['ts']) "
                    "(seconds since the epoch); see 'Event time and watermarks' in the README"
                )
        for out in applied.outputs.values():
            origins[id(out)] = own
    return hints


def warn_event_time_hints(pipeline: Pipeline) -> list[str]:
    """Log `event_time_hints` as WARNINGs (at start-up, before any data is read); returns them."""
    hints = event_time_hints(pipeline)
    for hint in hints:
        log.warning("%s", hint)
    return hints
