"""The global window with the default trigger: GroupByKey and CombinePerKey as one dict of accumulators.

The global window with the default trigger (every batch job without WindowInto) takes a fast path: one dict of
accumulators, emitted when the input watermark reaches +infinity. Every other windowing strategy runs through
the event-time reducer, which implements Beam's triggers, panes and lateness.
"""

from __future__ import annotations

from typing import Any

from millstream.engine.model.combinefn import CombineFn, ListCombineFn, SumCombineFn
from millstream.engine.model.metrics import set_current_step
from millstream.engine.model.timestamp import END_OF_GLOBAL_WINDOW_MICROS, MAX_MICROS
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node, PipelineError, raise_user_error, truncate_repr

_NO_DEFAULT_KEY = object()

#: Combine fns whose accumulation this node inlines, by exact type (a subclass may override any method).
_INLINED: dict[type, str] = {ListCombineFn: "list", SumCombineFn: "sum"}


class GlobalCombineNode(Node):
    """Keyed combine in the global window with the default trigger: one pane per key at end of input."""

    def __init__(self, label: str, fn: CombineFn, group: bool, default_key: Any = _NO_DEFAULT_KEY) -> None:
        super().__init__(label)
        self.fn = fn
        self.group = group
        self.accs: dict[Any, Any] = {}
        self.default_key = default_key
        self.kind = _INLINED.get(type(fn))
        self.fired = False
        self.dirty = False

    def state_layout(self) -> dict[str, Any]:
        """What this operator stores (part of the pipeline fingerprint)."""
        fn = getattr(
            self.fn, "checked_fn", self.fn
        )  # a --runtime_type_check wrapper's: checkpoints stay compatible
        return {"kind": "global-combine", "fn": type(fn).__qualname__}

    def state_dirty(self) -> bool:
        """True when the state changed since the last snapshot."""
        return self.dirty

    def snapshot_state(self) -> Any:
        """The accumulators, as plain data."""
        self.dirty = False
        return {"accs": list(self.accs.items()), "fired": self.fired}

    def restore_state(self, data: Any) -> None:
        """Load a snapshot."""
        self.accs = {k: a for k, a in data["accs"]}
        self.fired = data["fired"]

    def open(self) -> None:
        try:
            self.fn.setup()
        except Exception as e:
            raise_user_error(self.label, "<CombineFn.setup>", e)

    def close(self) -> None:
        try:
            self.fn.teardown()
        except Exception:
            pass

    def push(self, index: int, batch: Batch) -> None:
        vals = batch.values
        self.elements_in += len(vals)
        self.dirty = True
        accs = self.accs
        try:
            kind = self.kind
            if kind == "list":
                for k, v in vals:
                    lst = accs.get(k)
                    if lst is None:
                        accs[k] = [v]
                    else:
                        lst.append(v)
            elif kind == "sum":
                get = accs.get
                for k, v in vals:
                    accs[k] = get(k, 0) + v
            else:
                fn = self.fn
                add, create = fn.add_input, fn.create_accumulator
                for k, v in vals:
                    acc = accs[k] if k in accs else create()
                    accs[k] = add(acc, v)
        except (TypeError, ValueError) as e:
            bad = next((x for x in vals if not (isinstance(x, tuple | list) and len(x) == 2)), None)
            if bad is not None:
                raise PipelineError(
                    self.label, bad, TypeError(f"expected (key, value) pairs, got {truncate_repr(bad)}")
                ) from e
            raise_user_error(self.label, "<batch>", e)
        except Exception as e:
            raise_user_error(self.label, "<batch>", e)

    def on_input_watermark(self, micros: int) -> None:
        if micros >= MAX_MICROS and not self.fired:
            self.fired = True
            self.dirty = True
            self._fire()
        self.advance_output_watermark(micros)

    def _fire(self) -> None:
        from millstream.engine.model.window import GlobalWindow, PaneInfo, PaneInfoTiming

        set_current_step(self.label)
        accs, self.accs = self.accs, {}
        fn = self.fn
        if not accs and self.default_key is not _NO_DEFAULT_KEY:
            accs[self.default_key] = fn.create_accumulator()
        try:
            if self.kind in ("list", "sum"):
                out = list(accs.items())
            else:
                extract = fn.extract_output
                out = [(k, extract(a)) for k, a in accs.items()]
        except Exception as e:
            raise_user_error(self.label, "<extract_output>", e)
        n = len(out)
        pane = PaneInfo(True, False, PaneInfoTiming.ON_TIME, 0, 0)  # the default trigger never finishes
        gw = GlobalWindow()
        self.emit(Batch(out, [END_OF_GLOBAL_WINDOW_MICROS] * n, [gw] * n, [pane] * n))
