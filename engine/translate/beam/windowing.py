"""Windowing strategies as ``apache_beam`` objects: window fns, triggers, accumulation, lateness, timestamps.

Every millstream window fn and trigger has a Beam counterpart with the same meaning, so the mapping is one to
one; a custom `WindowFn` subclass has none and is refused with the step's name.

>>> from millstream.engine.model.trigger import AfterCount, AfterWatermark
>>> beam_trigger(AfterWatermark(early=AfterCount(2)), "step")
AfterWatermark(early=AfterCount(2))
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.transforms import trigger as bt
from apache_beam.transforms import window as bw
from apache_beam.utils.timestamp import Duration as BeamDuration
from apache_beam.utils.timestamp import Timestamp as BeamTimestamp

from millstream.engine.model import trigger as mt
from millstream.engine.model import window as mw
from millstream.engine.model.windowing import Windowing
from millstream.engine.translate.beam.dofns import UntranslatableError


def _d(micros: int) -> BeamDuration:
    return BeamDuration(micros=micros)


def beam_windowfn(fn: Any, where: str) -> Any:
    """A millstream window fn as Beam's."""
    kind = type(fn)
    if kind is mw.GlobalWindows:
        return bw.GlobalWindows()
    if kind is mw.FixedWindows:
        return bw.FixedWindows(_d(fn.size_us), BeamTimestamp(micros=fn.offset_us))
    if kind is mw.SlidingWindows:
        return bw.SlidingWindows(_d(fn.size_us), _d(fn.period_us), BeamTimestamp(micros=fn.offset_us))
    if kind is mw.Sessions:
        return bw.Sessions(_d(fn.gap_us))
    raise UntranslatableError(f"{where}: the window fn {kind.__name__} has no Beam counterpart")


def beam_trigger(t: Any, where: str) -> Any:
    """A millstream trigger as Beam's (the tree is mapped node for node)."""
    kind = type(t)
    if kind is mt.DefaultTrigger:
        return bt.DefaultTrigger()
    if kind is mt.Always:
        return bt.Always()
    if kind is mt.Never:
        return bt._Never()
    if kind is mt.AfterProcessingTime:
        return bt.AfterProcessingTime(_d(t.delay_us))
    if kind is mt.AfterCount:
        return bt.AfterCount(t.count)
    if kind is mt.Repeatedly:
        return bt.Repeatedly(beam_trigger(t.underlying, where))
    if kind is mt.AfterWatermark:
        # millstream keeps early/late wrapped in Repeatedly; Beam wraps them itself
        return bt.AfterWatermark(
            early=None if t.early is None else beam_trigger(t.early.underlying, where),
            late=None if t.late is None else beam_trigger(t.late.underlying, where),
        )
    if kind is mt.OrFinally:
        return bt.OrFinally(beam_trigger(t.main, where), beam_trigger(t.until, where))
    for ms_kind, beam_kind in (
        (mt.AfterAny, bt.AfterAny),
        (mt.AfterAll, bt.AfterAll),
        (mt.AfterEach, bt.AfterEach),
    ):
        if kind is ms_kind:
            return beam_kind(*(beam_trigger(s, where) for s in t.triggers))
    raise UntranslatableError(f"{where}: the trigger {kind.__name__} has no Beam counterpart")


_COMBINERS = {
    mw.TimestampCombiner.OUTPUT_AT_EOW: bw.TimestampCombiner.OUTPUT_AT_EOW,
    mw.TimestampCombiner.OUTPUT_AT_EARLIEST: bw.TimestampCombiner.OUTPUT_AT_EARLIEST,
    mw.TimestampCombiner.OUTPUT_AT_LATEST: bw.TimestampCombiner.OUTPUT_AT_LATEST,
}


def beam_window_into(windowing: Windowing, where: str) -> beam.WindowInto:
    """A `WindowInto` with the whole strategy (trigger, accumulation, lateness, timestamp combiner)."""
    accumulation = (
        bt.AccumulationMode.ACCUMULATING
        if windowing.accumulation_mode == mt.AccumulationMode.ACCUMULATING
        else bt.AccumulationMode.DISCARDING
    )
    return beam.WindowInto(
        beam_windowfn(windowing.windowfn, where),
        trigger=beam_trigger(windowing.triggerfn, where),
        accumulation_mode=accumulation,
        timestamp_combiner=_COMBINERS[windowing.timestamp_combiner],
        allowed_lateness=_d(windowing.allowed_lateness_us),
    )


__all__ = ["beam_trigger", "beam_window_into", "beam_windowfn"]
