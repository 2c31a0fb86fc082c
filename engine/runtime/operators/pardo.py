"""The ParDo operator: runs a DoFn (or a Map/FlatMap/Filter callable) over whole batches.

Map-family callables without DoFn parameters take a vectorised path (one list comprehension per batch);
everything else (DoFn.process with parameters, side inputs, dead-letter handling) takes the general
per-element path. Side inputs are extra inputs of the node: main-input batches wait in a buffer until
every side input is complete.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

from millstream.engine.model.core import CallableWrapperDoFn, ParDo
from millstream.engine.model.dofn import DoFn, WindowedValue, param_markers
from millstream.engine.model.metrics import set_current_step
from millstream.engine.model.pvalue import AsSideInput, TaggedOutput
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS, TimestampedValue, micros_of
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node, raise_user_error
from millstream.engine.runtime.operators.batched_dofn import BatchedDoFn
from millstream.engine.runtime.operators.side_inputs import SideInputs
from millstream.engine.runtime.windowing.assign import WindowResolver

log = logging.getLogger("millstream.pardo")


class ErrorInfo(tuple):  # type: ignore[type-arg]
    """Beam's dead-letter error triple (exception type, repr, traceback lines), plus `.step` and `.message`."""

    step: str
    message: str

    def __new__(cls, exc: BaseException, step: str) -> ErrorInfo:
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        self = super().__new__(cls, (type(exc), repr(exc), tb))
        self.step = step
        self.message = str(exc)
        return self

    def __reduce__(self) -> Any:
        return (tuple, (tuple(self),))


class _Outputs:
    """Per-tag output columns being built for one batch."""

    __slots__ = ("values", "ts", "wins", "panes")

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.ts: list[int] = []
        self.wins: list[Any] = []
        self.panes: list[Any] = []

    @staticmethod
    def merge(scratch: dict[str | None, _Outputs], outputs: dict[str | None, _Outputs]) -> None:
        """Append the columns of `scratch` (an element's outputs kept apart until it succeeded) to `outputs`."""
        for tag, cols in scratch.items():
            dest = outputs.setdefault(tag, _Outputs())
            dest.values.extend(cols.values)
            dest.ts.extend(cols.ts)
            dest.wins.extend(cols.wins)
            dest.panes.extend(cols.panes)


class BundleFinalizer:
    """What `DoFn.BundleFinalizerParam` gives `process`: `register(callback)` runs `callback()` once the
    bundle's output is durably committed -- in millstream, after the checkpoint that covers the bundle has
    committed (its sinks included), or at the successful end of a job that keeps no checkpoints.

    As in Beam, finalization is best effort: each callback runs at most once, and a failure may skip it (a
    job that fails or is cancelled first, or a crash after the checkpoint is durable and before the callbacks
    ran, loses them for good: the sources resume after those bundles). At most `MAX_PENDING` callbacks wait
    between two checkpoints; later ones are skipped and counted in `skipped`, so memory stays bounded."""

    MAX_PENDING = 100_000

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], Any]] = []
        self.skipped = 0

    def register(self, callback: Any) -> None:
        """Call `callback()` once the current bundle's output is durable (Beam's BundleFinalizer.register)."""
        if not callable(callback):
            raise TypeError(f"BundleFinalizer.register needs a callable, got {callback!r}")
        if len(self.callbacks) >= self.MAX_PENDING:
            self.skipped += 1
            return
        self.callbacks.append(callback)

    def take(self, label: str) -> Callable[[], None]:
        """Take the callbacks registered so far; the returned function runs each once, in registration order,
        then raises the first failure, attributed to step `label`."""
        callbacks, self.callbacks = self.callbacks, []
        skipped, self.skipped = self.skipped, 0
        if skipped:
            log.warning(
                "step %s: %d bundle finalization callbacks skipped (more than %d registered between checkpoints)",
                label,
                skipped,
                self.MAX_PENDING,
            )

        def run() -> None:
            first: BaseException | None = None
            for cb in callbacks:
                try:
                    cb()
                except Exception as e:  # the others still run: each callback is owed its one call
                    if first is None:
                        first = e
            if first is not None:
                raise_user_error(label, "<finalize_bundle>", first)

        return run


class ParDoNode(Node):
    """Runs one ParDo step."""

    def __init__(
        self, label: str, transform: ParDo, windowing: Windowing, side_windowings: list[Windowing]
    ) -> None:
        super().__init__(label, 1 + len(transform.side_inputs))
        self.transform = transform
        self.dofn: DoFn = transform.fn
        self.windows = WindowResolver(windowing)
        self.exception_handling = transform.exception_handling
        self.main_tag = None
        self.dead_tag = self.exception_handling.dead_letter_tag if self.exception_handling else None
        self.declared_tags = set(transform.output_tags or ())
        self.allow_unknown_tags = transform.allow_unknown_tags
        self.side_inputs: list[AsSideInput] = list(transform.side_inputs)
        #: Their elements, then their views: whole, or per main window for a windowed side input.
        self.sides = SideInputs(label, self.side_inputs, side_windowings)
        self.windowed_sides = self.sides.windowed
        self.side_done = [False] * len(self.side_inputs)
        self.pending: list[Batch] = []
        self._snapshotted = False
        self._resolved_args: tuple[Any, ...] = transform.args
        self._resolved_kwargs: dict[str, Any] = dict(transform.kwargs)
        fn = self.dofn
        self.fast = (
            isinstance(fn, CallableWrapperDoFn)
            and not fn.markers
            and not self.side_inputs
            and self.exception_handling is None
            and transform.output_tags is None
            and not fn.is_async
        )
        process = fn.fn if isinstance(fn, CallableWrapperDoFn) else fn.process
        self.batched: BatchedDoFn | None = BatchedDoFn.of(fn, label)
        if self.batched is not None:
            self.fast = False
        self.markers = param_markers(process)
        # `def process(self, element=DoFn.ElementParam, ...)`: the element is a keyword, not the first argument
        self.element_as_keyword = bool(self.markers) and _first_is_element_marker(process, self.markers)
        self.needs_window = any(m.name == "WindowParam" for m in self.markers.values())
        self.has_finish_bundle = type(fn).finish_bundle is not DoFn.finish_bundle
        self.has_start_bundle = type(fn).start_bundle is not DoFn.start_bundle
        # context-manager parameters: their entered values, by marker, while their scope lasts
        self.setup_contexts = [m for m in self.markers.values() if m.name == "SetupContextParam"]
        self.bundle_contexts = [m for m in self.markers.values() if m.name == "BundleContextParam"]
        self.context_values: dict[int, Any] = {}
        self.open_contexts: list[tuple[Any, Any]] = []  # (marker, context manager), entered order
        self.finalizer = BundleFinalizer()
        #: Runtime type checks (`runtime_typecheck`), called with the values of each main-input batch and of
        #: each main-output batch; None unless ``--runtime_type_check`` is on, so the default path only
        #: tests for None once per batch.
        self.input_check: Callable[[list[Any]], None] | None = None
        self.output_check: Callable[[list[Any]], None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def open(self) -> None:
        set_current_step(self.label)
        try:
            self.dofn.setup()
            self._enter_contexts(self.setup_contexts)
        except Exception as e:
            raise_user_error(self.label, "<setup>", e)

    def close(self) -> None:
        try:
            self._exit_contexts(self.setup_contexts)
            self.dofn.teardown()
        except Exception:  # teardown is best effort, as in Beam
            pass

    def take_bundle_callbacks(self) -> Callable[[], None]:
        """The finalization callbacks of the bundles processed so far, as one function (`BundleFinalizingNode`)."""
        return self.finalizer.take(self.label)

    def _enter_contexts(self, markers: list[Any]) -> None:
        for m in markers:
            cm, value = m.create_and_enter()
            self.context_values[id(m)] = value
            self.open_contexts.append((m, cm))

    def _exit_contexts(self, markers: list[Any]) -> None:
        ids = {id(m) for m in markers}
        for m, cm in reversed([(m, cm) for m, cm in self.open_contexts if id(m) in ids]):
            cm.__exit__(None, None, None)
            self.context_values.pop(id(m), None)
        self.open_contexts = [(m, cm) for m, cm in self.open_contexts if id(m) not in ids]

    # -- inputs -------------------------------------------------------------------------------------------
    def push(self, index: int, batch: Batch) -> None:
        self.elements_in += len(batch.values)
        if index:
            self.sides.push(index - 1, batch)
            return
        if self.input_check is not None:
            self.input_check(batch.values)
        if not all(self.side_done):
            self.pending.append(batch)
            return
        self.process(batch)

    def emit(self, batch: Batch, tag: str | None = None) -> None:
        """Send a batch to the consumers of output `tag`, checking main-output elements' types first when
        runtime type checks are on."""
        if tag is None and self.output_check is not None:
            self.output_check(batch.values)
        Node.emit(self, batch, tag)

    def watermark(self, index: int, micros: int) -> None:
        if index and micros >= MAX_MICROS and not self.side_done[index - 1]:
            self.side_done[index - 1] = True
            if all(self.side_done):
                self._resolve_side_inputs()
                pending, self.pending = self.pending, []
                for b in pending:
                    self.process(b)
        super().watermark(index, micros)

    def on_input_watermark(self, micros: int) -> None:
        if all(self.side_done):
            if self.windowed_sides:
                self.sides.evict(micros)
            self.advance_output_watermark(micros)

    # -- checkpoints: side inputs and the main input waiting for them are state ---------------------------
    def state_layout(self) -> dict[str, Any] | None:
        """Side inputs make a ParDo stateful: a restored job must not lose what a finished side source sent."""
        if not self.side_inputs:
            return None
        return {"kind": "side-inputs", "views": [type(s).__name__ for s in self.side_inputs]}

    def state_dirty(self) -> bool:
        """Side-input state changes until every side input is complete, and while main input waits."""
        return bool(self.side_inputs) and (
            not all(self.side_done) or bool(self.pending) or not self._snapshotted
        )

    def snapshot_state(self) -> Any:
        """The side inputs' elements, which are complete, and buffered main-input batches."""
        self._snapshotted = all(self.side_done) and not self.pending
        return {
            "side": self.sides.values,
            "side_windows": self.sides.windows,
            "done": list(self.side_done),
            "pending": [[b.values, b.ts, b.wins, b.panes] for b in self.pending],
        }

    def restore_state(self, data: Any) -> None:
        """Load a snapshot: side inputs complete before the checkpoint are complete again."""
        self.sides.values = [list(v) for v in data["side"]]
        self.sides.windows = [list(w) for w in data.get("side_windows", [[] for _ in self.sides.values])]
        self.side_done = list(data["done"])
        self.pending = [Batch(v, t, w, p) for v, t, w, p in data["pending"]]
        if all(self.side_done):
            self._resolve_side_inputs()
            for index, done in enumerate(self.side_done, start=1):
                if done:  # the side sources finished before the checkpoint: their inputs count as complete
                    self.input_wms[index] = MAX_MICROS

    def _resolve_side_inputs(self) -> None:
        self._resolved_args, self._resolved_kwargs = self.sides.resolve(
            self.transform.args, self.transform.kwargs
        )

    # -- processing ---------------------------------------------------------------------------------------
    def process(self, batch: Batch) -> None:
        """Run the DoFn over one batch (one bundle) and emit the outputs."""
        set_current_step(self.label)
        if self.bundle_contexts:
            self._call_user(lambda: self._enter_contexts(self.bundle_contexts), "<start_bundle>")
        if self.has_start_bundle:
            self._call_user(self.dofn.start_bundle, "<start_bundle>")
        if self.fast:
            self._process_fast(batch)
        elif self.batched is not None and self.batched.on_batches:
            self._process_batches(batch)
        else:
            self._process_general(batch)
        if self.has_finish_bundle:
            self._finish_bundle()
        if self.bundle_contexts:
            self._call_user(lambda: self._exit_contexts(self.bundle_contexts), "<finish_bundle>")

    def _call_user(self, fn: Any, what: str) -> Any:
        try:
            return fn()
        except Exception as e:
            raise_user_error(self.label, what, e)

    def _finish_bundle(self) -> None:
        result = self._call_user(self.dofn.finish_bundle, "<finish_bundle>")
        if result is None:
            return
        out = _Outputs()
        for o in result:
            if isinstance(o, WindowedValue):
                for w in o.windows:
                    out.values.append(o.value)
                    out.ts.append(o.micros)
                    out.wins.append(w)
            elif isinstance(o, TimestampedValue):
                out.values.append(o.value)
                out.ts.append(o.micros)
                out.wins.append(self.windows.global_window)
            else:
                out.values.append(o)
                out.ts.append(MIN_MICROS)
                out.wins.append(self.windows.global_window)
        self.emit(Batch(out.values, out.ts, out.wins))

    def _process_fast(self, batch: Batch) -> None:
        fn_wrapper = self.dofn
        assert isinstance(fn_wrapper, CallableWrapperDoFn)
        fn = fn_wrapper.fn
        kind = fn_wrapper.kind
        args, kwargs = self._resolved_args, self._resolved_kwargs
        vals = batch.values
        try:
            if kind == "map":
                if args or kwargs:
                    out = [fn(v, *args, **kwargs) for v in vals]
                else:
                    out = list(map(fn, vals))
                self._emit_same_shape(batch, out)
            elif kind == "maptuple":
                out = [fn(*v, *args, **kwargs) for v in vals]
                self._emit_same_shape(batch, out)
            elif kind == "filter":
                if args or kwargs:
                    keep = [bool(fn(v, *args, **kwargs)) for v in vals]
                else:
                    keep = list(map(bool, map(fn, vals)))
                self._emit_filtered(batch, keep)
            else:
                tuple_args = kind == "flatmaptuple"
                if batch.ts is None and batch.wins is None and batch.panes is None:
                    # One nested comprehension: keeping every per-element result list alive at once (as
                    # list(map(...)) would) triggers full garbage collections on large batches.
                    if tuple_args:
                        out = [o for v in vals for o in _iter_result(fn(*v, *args, **kwargs))]
                    elif args or kwargs:
                        out = [o for v in vals for o in _iter_result(fn(v, *args, **kwargs))]
                    else:
                        out = [o for v in vals for o in _iter_result(fn(v))]
                    self._emit_checked(Batch(out))
                else:
                    self._flatmap_columns(batch, fn, tuple_args, args, kwargs)
        except Exception as e:
            self._locate_failure(batch, e)

    def _locate_failure(self, batch: Batch, error: Exception) -> None:
        """Find the element that failed (re-running one at a time) so the error can name it."""
        for v in batch.values:
            try:
                res = self.dofn.process(v, *self._resolved_args, **self._resolved_kwargs)
                if res is not None:
                    list(res)
            except Exception as e:
                raise_user_error(self.label, v, e)
        raise_user_error(self.label, "<batch>", error)

    def _emit_same_shape(self, batch: Batch, out: list[Any]) -> None:
        self._emit_checked(Batch(out, batch.ts, batch.wins, batch.panes), source_ts=batch.ts)

    def _emit_filtered(self, batch: Batch, keep: list[bool]) -> None:
        cols = [
            list(itertools.compress(c, keep)) if c is not None else None
            for c in (batch.values, batch.ts, batch.wins, batch.panes)
        ]
        self.emit(Batch(cols[0], cols[1], cols[2], cols[3]))  # type: ignore[arg-type]

    def _flatmap_columns(self, batch: Batch, fn: Any, tuple_args: bool, args: Any, kwargs: Any) -> None:
        out_v: list[Any] = []
        out_t: list[int] | None = [] if batch.ts is not None else None
        out_w: list[Any] | None = [] if batch.wins is not None else None
        out_p: list[Any] | None = [] if batch.panes is not None else None
        for i, v in enumerate(batch.values):
            res = fn(*v, *args, **kwargs) if tuple_args else fn(v, *args, **kwargs)
            produced = list(_iter_result(res))
            n = len(produced)
            if not n:
                continue
            out_v.extend(produced)
            if out_t is not None:
                out_t.extend([batch.ts[i]] * n)  # type: ignore[index]
            if out_w is not None:
                out_w.extend([batch.wins[i]] * n)  # type: ignore[index]
            if out_p is not None:
                out_p.extend([batch.panes[i]] * n)  # type: ignore[index]
        self._emit_checked(Batch(out_v, out_t, out_w, out_p))

    def _emit_checked(self, batch: Batch, source_ts: list[int] | None = None) -> None:
        """Emit, unpacking TimestampedValue / WindowedValue outputs into the timestamp and window columns."""
        types = set(map(type, batch.values))
        if not types.isdisjoint(_SPECIAL_OUTPUTS):
            batch = self._unpack_special(batch, types)
        self.emit(batch)

    def _unpack_special(self, batch: Batch, types: set[type]) -> Batch:
        vals = batch.values
        if TaggedOutput in types:
            raise TypeError(
                f"step '{self.label}' emitted a TaggedOutput; declare outputs with ParDo(...).with_outputs()"
            )
        if WindowedValue in types:
            return self._unpack_windowed(batch)
        if types == _ONLY_TIMESTAMPED and (batch.wins is not None or self.windows.is_global):
            # the common case (a Map stamping every element): two passes at C speed, no per-element branches
            return Batch([tv.value for tv in vals], micros_of(vals), batch.wins, batch.panes)
        n = len(batch.values)
        ts = list(batch.ts) if batch.ts is not None else [MIN_MICROS] * n
        wins = batch.wins
        if wins is None and not self.windows.is_global:
            # an element keeps the windows it was assigned before its timestamp changed (Beam semantics)
            wins = self.windows.assign_batch(batch.ts)
            if wins is not None and self.windows.multi:
                return self._unpack_exploded(batch, wins)
        values = list(batch.values)
        for i, v in enumerate(values):
            if type(v) is TimestampedValue:
                values[i] = v.value
                ts[i] = v.micros
        return Batch(values, ts, wins, batch.panes)

    def _unpack_windowed(self, batch: Batch) -> Batch:
        """Outputs that carry their own windows (WindowedValue): one element per window, explicit windows."""
        values: list[Any] = []
        ts: list[int] = []
        wins: list[Any] = []
        panes: list[Any] = []
        for i, v in enumerate(batch.values):
            t = batch.timestamp(i)
            pane = batch.panes[i] if batch.panes is not None else None
            if type(v) is WindowedValue:
                for w in v.windows:
                    values.append(v.value)
                    ts.append(v.micros)
                    wins.append(w)
                    panes.append(v.pane_info)
                continue
            new_t = t
            if type(v) is TimestampedValue:
                v, new_t = v.value, v.micros
            own = (batch.wins[i],) if batch.wins is not None else self.windows.assign(t)
            for w in own:
                values.append(v)
                ts.append(new_t)
                wins.append(w)
                panes.append(pane)
        return Batch(values, ts, wins, None if all(p is None for p in panes) else panes)

    def _with_windows(self, batch: Batch) -> Batch:
        """`batch` with one element per window it belongs to and explicit windows (for a step that must know
        each element's main window, e.g. to read a windowed side input in it)."""
        return self._unpack_exploded(
            batch, [self.windows.assign(batch.timestamp(i)) for i in range(len(batch))]
        )

    def _unpack_exploded(self, batch: Batch, wins: list[Any]) -> Batch:
        values: list[Any] = []
        ts: list[int] = []
        out_w: list[Any] = []
        panes = batch.panes
        out_p: list[Any] | None = [] if panes is not None else None
        for i, v in enumerate(batch.values):
            t = batch.timestamp(i)
            if isinstance(v, TimestampedValue):
                v, t = v.value, v.micros
            for w in wins[i]:
                values.append(v)
                ts.append(t)
                out_w.append(w)
                if out_p is not None:
                    out_p.append(panes[i])  # type: ignore[index]
        return Batch(values, ts, out_w, out_p)

    # -- batched DoFns (process_batch) ---------------------------------------------------------------------
    def _process_batches(self, batch: Batch) -> None:
        """`process_batch` over the elements of `batch` that share timestamp, window and pane (Beam hands a
        batched DoFn homogeneous batches); outputs take the group's timestamp, window and pane."""
        b = self.batched
        assert b is not None
        args, kwargs = self._resolved_args, self._resolved_kwargs
        groups, explicit_windows = self._homogeneous_groups(batch)
        # plain outputs go straight into columns (a group's timestamp, window and pane repeated, or no column
        # where the input had none); TimestampedValue / TaggedOutput / WindowedValue take the general route
        out_v: list[Any] = []
        out_t: list[int] | None = [] if batch.ts is not None else None
        out_w: list[Any] | None = [] if explicit_windows else None
        out_p: list[Any] | None = [] if batch.panes is not None else None
        special: dict[str | None, _Outputs] = {None: _Outputs()}
        for (t, w, pane), values in groups:
            if self.windowed_sides:
                args, kwargs = self._side_args_for(w if w is not None else self.windows.assign_one(t))
            call_kwargs = kwargs
            if b.markers:
                call_kwargs = dict(kwargs)
                for name, marker in b.markers.items():
                    call_kwargs[name] = self._marker_value(marker, values, t, w, pane)
            try:
                produced = b.outputs(b.process_batch(b.input.produce_batch(values), *args, **call_kwargs))
                if not b.plain_outputs and not set(map(type, produced)).isdisjoint(_SPECIAL_OUTPUTS):
                    self._collect(produced, special, t, w, pane)
                    continue
            except Exception as e:
                raise_user_error(self.label, f"<batch of {len(values)} elements>", e)
            n = len(produced)
            out_v.extend(produced)
            if out_t is not None:
                out_t.extend([t] * n)
            if out_w is not None:
                out_w.extend([w] * n)
            if out_p is not None:
                out_p.extend([pane] * n)
        if out_v:
            self.emit(Batch(out_v, out_t, out_w, out_p))
        for tag, cols in special.items():
            if cols.values:
                self.emit(self._columns_to_batch(cols, batch), tag)

    def _homogeneous_groups(self, batch: Batch) -> tuple[list[tuple[tuple[int, Any, Any], list[Any]]], bool]:
        """The batch's values grouped by (timestamp, window, pane), in order of first appearance; and whether
        the groups' windows are explicit (the input's, or assigned here for a WindowParam)."""
        vals = batch.values
        ts, wins, panes = batch.ts, batch.wins, batch.panes
        explode = (
            self.batched is not None
            and (self.batched.needs_window or self.windowed_sides)
            and wins is None
            and not self.windows.is_global
        )
        if ts is None and wins is None and panes is None and not explode:
            return [((MIN_MICROS, None, None), list(vals))], False
        groups: dict[tuple[int, Any, Any], list[Any]] = {}
        for i, v in enumerate(vals):
            t = MIN_MICROS if ts is None else ts[i]
            pane = None if panes is None else panes[i]
            own: Any = (wins[i],) if wins is not None else (self.windows.assign(t) if explode else (None,))
            for w in own:
                key = (t, w, pane)
                group = groups.get(key)
                if group is None:
                    groups[key] = [v]
                else:
                    group.append(v)
        return list(groups.items()), wins is not None or explode

    # -- the general path ---------------------------------------------------------------------------------
    def _side_args_for(self, main_window: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The DoFn's arguments with every windowed side input seen in `main_window` (`SideInputs.args_for`)."""
        return self.sides.args_for(
            main_window,
            self.transform.args,
            self.transform.kwargs,
            self._resolved_args,
            self._resolved_kwargs,
        )

    def _process_general(self, batch: Batch) -> None:
        dofn = self.dofn
        process = element_keyword_call(dofn.process) if self.element_as_keyword else dofn.process
        if self.batched is not None and self.batched.process_yields_batches:
            process = self.batched.exploding_process
        args, kwargs = self._resolved_args, self._resolved_kwargs
        markers = self.markers
        eh = self.exception_handling
        outputs: dict[str | None, _Outputs] = {}
        outputs[None] = _Outputs()
        vals = batch.values
        ts_col = batch.ts
        win_col = batch.wins
        pane_col = batch.panes
        explode = (
            (self.needs_window or self.windowed_sides) and win_col is None and not self.windows.is_global
        )
        for i, v in enumerate(vals):
            t = MIN_MICROS if ts_col is None else ts_col[i]
            pane = None if pane_col is None else pane_col[i]
            if win_col is not None:
                windows: Any = (win_col[i],)
            elif explode:
                windows = self.windows.assign(t)
            else:
                windows = (None,)
            for w in windows:
                if self.windowed_sides:
                    args, kwargs = self._side_args_for(w if w is not None else self.windows.assign_one(t))
                call_kwargs = kwargs
                if markers:
                    call_kwargs = dict(kwargs)
                    for name, marker in markers.items():
                        call_kwargs[name] = self._marker_value(marker, v, t, w, pane)
                if eh is None:
                    try:
                        self._collect(process(v, *args, **call_kwargs), outputs, t, w, pane)
                    except Exception as e:
                        raise_user_error(self.label, v, e)
                else:
                    self._process_guarded(process, v, args, call_kwargs, outputs, t, w, pane)
        for tag, cols in outputs.items():
            if cols.values:
                self.emit(self._columns_to_batch(cols, batch), tag)

    def _process_guarded(
        self,
        process: Any,
        v: Any,
        args: Any,
        kwargs: dict[str, Any],
        outputs: dict[str | None, _Outputs],
        t: int,
        w: Any,
        pane: Any,
    ) -> None:
        """`process` under `with_exception_handling`: a failing element goes to the dead-letter output, and
        (unless `partial`) nothing it produced before failing is kept."""
        eh = self.exception_handling
        assert eh is not None
        scratch: dict[str | None, _Outputs] = {None: _Outputs()} if not eh.partial else outputs
        try:
            self._collect(process(v, *args, **kwargs), scratch, t, w, pane)
        except eh.exc_class as e:  # type: ignore[misc]
            self._dead_letter(outputs, v, e, t, w, pane)
            return
        if scratch is not outputs:
            _Outputs.merge(scratch, outputs)

    def _dead_letter(
        self, outputs: dict[str | None, _Outputs], v: Any, error: BaseException, t: int, w: Any, pane: Any
    ) -> None:
        """Route a failed element, with its error, to the dead-letter output."""
        eh = self.exception_handling
        if eh is not None and eh.on_failure_callback is not None:
            eh.on_failure_callback(error, v)
        bad = outputs.setdefault(self.dead_tag, _Outputs())
        bad.values.append((v, ErrorInfo(error, self.label)))
        bad.ts.append(t)
        bad.wins.append(w)
        bad.panes.append(pane)

    def _columns_to_batch(self, cols: _Outputs, source: Batch) -> Batch:
        wins: list[Any] | None = cols.wins
        if wins is not None and all(w is None for w in wins):
            wins = None
        panes: list[Any] | None = cols.panes
        if all(p is None for p in cols.panes):
            panes = None
        return Batch(cols.values, cols.ts, wins, panes)

    def _marker_value(self, marker: Any, v: Any, t: int, w: Any, pane: Any) -> Any:
        name = marker.name
        if name == "TimestampParam":
            from millstream.engine.model.timestamp import Timestamp

            return Timestamp(micros=t)
        if name == "WindowParam":
            return w if w is not None else self.windows.assign(t)[0]
        if name == "PaneInfoParam":
            from millstream.engine.runtime.windowing.assign import pane_or_default

            return pane_or_default(pane)
        if name == "ElementParam":
            return v
        if name == "KeyParam":
            return v[0]
        if name in ("SetupContextParam", "BundleContextParam"):
            return self.context_values[id(marker)]
        if name == "BundleFinalizerParam":
            return self.finalizer
        raise ValueError(f"step '{self.label}': DoFn parameter {marker!r} is not supported here")

    def _collect(self, result: Any, outputs: dict[str | None, _Outputs], t: int, w: Any, pane: Any) -> None:
        if result is None:
            return
        if isinstance(result, (str, bytes, dict)) or not hasattr(result, "__iter__"):
            raise TypeError(
                f"process() of step '{self.label}' returned {type(result).__name__}; "
                "it must yield or return an iterable of outputs (use Map for one output per element)"
            )
        main = outputs[None]
        for o in result:
            cols = main
            if type(o) is TaggedOutput:
                tag = o.tag
                if tag not in outputs:
                    if tag not in self.declared_tags and not self.allow_unknown_tags:
                        raise ValueError(
                            f"step '{self.label}' emitted to undeclared output {tag!r}; "
                            f"declared: {sorted(self.declared_tags)}"
                        )
                    outputs[tag] = _Outputs()
                cols = outputs[tag]
                o = o.value
            if type(o) is TimestampedValue:
                cols.values.append(o.value)
                cols.ts.append(o.micros)
                cols.wins.append(w if w is not None else self.windows.assign_one(t))
                cols.panes.append(pane)
            elif type(o) is WindowedValue:
                for ow in o.windows:
                    cols.values.append(o.value)
                    cols.ts.append(o.micros)
                    cols.wins.append(ow)
                    cols.panes.append(o.pane_info)
            else:
                cols.values.append(o)
                cols.ts.append(t)
                cols.wins.append(w)
                cols.panes.append(pane)


def _iter_result(res: Any) -> Any:
    if res is None:
        return ()
    if isinstance(res, (str, bytes)):
        raise TypeError(
            f"a FlatMap function returned a {type(res).__name__} ({res[:40]!r}); it must return an iterable "
            "of outputs — wrap a single string in a list"
        )
    return res


#: Output types the fast path must unpack (or reject) rather than emit as plain values.
_SPECIAL_OUTPUTS = frozenset({TimestampedValue, TaggedOutput, WindowedValue})
_ONLY_TIMESTAMPED = {TimestampedValue}


_ = (inspect, sys, MAX_MICROS)


def element_keyword_call(process: Any) -> Any:
    """`process` called as ``process(v, *args, **kwargs)`` when it takes the element as a marker keyword
    (the element then arrives through that keyword, resolved like every marker)."""

    def call(v: Any, *args: Any, **kwargs: Any) -> Any:
        return process(*args, **kwargs)

    return call


def _first_is_element_marker(process: Any, markers: dict[str, Any]) -> bool:
    """True when the first parameter of `process` defaults to `DoFn.ElementParam`."""
    try:
        first = next(iter(inspect.signature(process).parameters), None)
    except (TypeError, ValueError):  # builtins such as str have no signature (and no markers)
        return False
    return first is not None and getattr(markers.get(first), "name", "") == "ElementParam"
