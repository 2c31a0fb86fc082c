"""The splittable ParDo operator: a splittable DoFn run as a stateful DoFn keyed by element, so that its
restrictions are checkpointed, split after a budget and deferred by the user-state and timer machinery.

The pipeline keeps the user's splittable DoFn (Beam's runners receive it unchanged); the planner builds this
node from its resumable form (`millstream.engine.model.splittable.ResumingSplittableDoFn`). Each element and
window gets a key of its own (a token of this run and a counter: keys restored from a checkpoint never
collide with new ones), and its state lives in the global window while the element's own window and pane
travel with it, so a residual outlives its window's expiry and its outputs still land in that window. What
is left of a restriction holds the output watermark through its timer's output timestamp and, after the end
of the input, keeps the step running (`lingers`) until it is done; a drain truncates it
(`truncate_held`: the provider's ``truncate``, Beam's truncate_restriction).
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from millstream.engine.model.core import ParDo
from millstream.engine.model.dofn import param_markers
from millstream.engine.model.splittable import SPLIT_AFTER_US, STEP_ARG_PREFIX, STEP_SUPPLIED
from millstream.engine.model.window import GlobalWindow, GlobalWindows
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import raise_user_error, user_error
from millstream.engine.runtime.operators.pardo import _Outputs
from millstream.engine.runtime.operators.stateful_pardo import _ARG_OTHER, _RT_HELD, StatefulParDoNode
from millstream.engine.runtime.windowing.assign import WindowResolver

__all__ = ["SplittableParDoNode"]


class SplittableParDoNode(StatefulParDoNode):
    """Runs a splittable DoFn's resumable form: elements keyed one by one, state in the global window."""

    def __init__(
        self, label: str, transform: ParDo, windowing: Windowing, side_windowings: list[Windowing]
    ) -> None:
        super().__init__(label, transform, Windowing(GlobalWindows()), side_windowings)
        #: the resumable form of the user's splittable DoFn (`ResumingSplittableDoFn`)
        self.sdf: Any = transform.fn
        #: the windows of the input elements (the state's window is always the global one)
        self.element_windows = WindowResolver(windowing)
        self._token = uuid.uuid4().hex[:12]
        self._count = itertools.count()
        #: the element window whose windowed side inputs the activations running now see (None: none)
        self._sides_window: Any = None
        # The user's parameters this step supplies to every activation, first or resumed (its bundle finalizer,
        # its context managers), as (keyword of the resumable form, the user's marker).
        sdf: Any = transform.fn
        user_markers = param_markers(sdf.runner.fn.process)
        self._step_args = [
            (STEP_ARG_PREFIX + name, m) for name, m in user_markers.items() if m.name in STEP_SUPPLIED
        ]
        self.setup_contexts += [m for _, m in self._step_args if m.name == "SetupContextParam"]
        self.bundle_contexts += [m for _, m in self._step_args if m.name == "BundleContextParam"]
        self._process_args = self._process_args + [(arg, _ARG_OTHER, m) for arg, m in self._step_args]
        #: While first activations run under incremental checkpoints: the (key, window)s of keys minted for
        #: them, never stored, so not marked changed unless they keep state (`_mark_kept`).
        self._fresh: set[Any] | None = None

    def state_layout(self) -> dict[str, Any]:
        """What this operator stores: the user state layout of its resumable form, and the user DoFn."""
        return {**super().state_layout(), "splittable": type(self.sdf.runner.fn).__qualname__}

    def process(self, batch: Batch) -> None:
        """Key every element (once per window) and run its first activation."""
        token, count = self._token, self._count
        win_col, pane_col = batch.wins, batch.panes
        resolver = self.element_windows
        values: list[Any] = []
        ts: list[int] = []
        for i, v in enumerate(batch.values):
            t = batch.timestamp(i)
            pane = pane_col[i] if pane_col is not None else None
            windows = (win_col[i],) if win_col is not None else resolver.assign(t)
            for w in windows:
                values.append(((token, next(count)), (v, w, pane)))
                ts.append(t)
        if not values:
            return
        # the batch's first activations share one time budget (a batch of long restrictions must not hold
        # the loop for one budget per element): once it is spent, the rest wait in state for the timer loop
        runner = self.sdf.runner
        runner.batch_deadline_us = runner._clock.monotonic_us() + SPLIT_AFTER_US
        try:
            self._process_windows(values, ts, token)
        finally:
            runner.batch_deadline_us = None

    def _process_windows(self, values: list[Any], ts: list[int], token: str) -> None:
        """Run the first activations of the keyed `values`, in one bundle per element window when a side input
        is windowed."""
        if not self.windowed_sides:
            self._process_keyed(Batch(values, ts), token)
            return
        # a windowed side input is seen in the element's window (the state's window is the global one):
        # one bundle per element window
        by_window: dict[Any, tuple[list[Any], list[int]]] = {}
        for v, t in zip(values, ts):
            group = by_window.setdefault(v[1][1], ([], []))
            group[0].append(v)
            group[1].append(t)
        for window, (vs, group_ts) in by_window.items():
            self._sides_window = window
            try:
                self._process_keyed(Batch(vs, group_ts), token)
            finally:
                self._sides_window = None

    def _side_args_for(self, main_window: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments with windowed side inputs seen in the element's window (`_sides_window`), not in the
        state's global window."""
        return super()._side_args_for(self._sides_window if self._sides_window is not None else main_window)

    def _process_keyed(self, batch: Batch, token: str) -> None:
        """Run the first activations of keyed elements; a failure names the user's element."""
        if self._touched is not None:
            self._fresh = set()
        try:
            super().process(batch)
        except Exception as e:
            keyed: Any = getattr(e, "millstream_element", None)
            if e.__cause__ is None or not _is_keyed(keyed, token):
                raise
            raise user_error(self.label, keyed[1][0], e.__cause__) from e.__cause__  # the user's element
        finally:
            self._mark_kept()

    def _kwargs(
        self,
        plan: list[tuple[str, int, Any]],
        base: dict[str, Any],
        kw: Any,
        v: Any,
        t: int,
        hold_us: int,
        pane: Any,
    ) -> dict[str, Any]:
        """As `StatefulParDoNode._kwargs`, except that the (key, window) of an element's first activation is
        not marked changed yet: most elements finish there and never store anything, and marking them would
        cost every element a delete of a key never written at the next checkpoint (`_mark_kept`)."""
        fresh, touched = self._fresh, self._touched
        if fresh is None or touched is None or kw.cells or kw.timers:
            return super()._kwargs(plan, base, kw, v, t, hold_us, pane)
        fresh.add(kw.key_window_id)
        self._touched = None
        try:
            return super()._kwargs(plan, base, kw, v, t, hold_us, pane)
        finally:
            self._touched = touched

    def _drop_kw(self, kw: Any) -> None:
        """Forget a (key, window); one minted for a first activation was never stored: nothing to delete."""
        fresh, touched = self._fresh, self._touched
        if fresh is None or kw.key_window_id not in fresh:
            super()._drop_kw(kw)
            return
        fresh.discard(kw.key_window_id)
        self._touched = None
        try:
            super()._drop_kw(kw)
        finally:
            self._touched = touched

    def _mark_kept(self) -> None:
        """After first activations: the fresh (key, window)s that kept state (a residual and its timer) are
        changed, to be written by the next checkpoint."""
        fresh, self._fresh = self._fresh, None
        if not fresh or self._touched is None:
            return
        kws = self.key_windows
        for key_window_id in fresh:
            kw = kws.get(key_window_id)
            if kw is not None and (kw.cells or kw.timers):
                self._touched.add(key_window_id)

    def _fire(self, kw: Any, tk: tuple[str, str], rec: Any, outputs: Any) -> None:
        """A resumed activation: its outputs get the element's timestamp, window and pane (not the timer's
        hold), and a failure names the user's element (not its key)."""
        pending = kw.cells.get(self.sdf.PENDING.name)
        if not isinstance(pending, dict):
            super()._fire(kw, tk, rec, outputs)
            return
        kwargs = self._kwargs(self._resume_plan, {}, kw, None, rec.fire_us, rec.hold_us, None)
        self._collect_resumed(kw, self.sdf.resume_with, kwargs, pending, outputs)

    def _collect_resumed(
        self, kw: Any, method: Any, kwargs: dict[str, Any], pending: dict[str, Any], outputs: Any
    ) -> None:
        """Run a resumed activation (`method`), its outputs stamped as the element's. Under
        `with_exception_handling` a failure sends the element to the dead-letter output and drops what is left
        of it (what earlier activations output is already committed, as in Beam)."""
        window = pending["window"]
        w = None if isinstance(window, GlobalWindow) else window
        eh = self.exception_handling
        scratch = outputs if eh is None or eh.partial else {None: _Outputs()}
        args, given = self._resolved_args, self._resolved_kwargs
        if self.windowed_sides:  # seen in the element's window; the side inputs are complete, all kept
            args, given = self._side_args_for(window)
        if self._step_args:  # the bundle finalizer (of the bundle this timer firing runs in), the contexts
            given = {
                **given,
                **{arg: self._marker_value(m, None, 0, None, None) for arg, m in self._step_args},
            }
        try:
            result = method(args, given, **kwargs)
            self._collect(result, scratch, pending["ts"], w, pending["pane"])
        except Exception as e:
            if eh is None or not isinstance(e, eh.exc_class):
                raise_user_error(self.label, pending["element"], e)
            kw.cells.pop(self.sdf.PENDING.name, None)
            super()._dead_letter(outputs, pending["element"], e, pending["ts"], w, pending["pane"])
            return
        if scratch is not outputs:
            _Outputs.merge(scratch, outputs)

    def _dead_letter(self, outputs: Any, v: Any, error: BaseException, t: int, w: Any, pane: Any) -> None:
        """A failed element goes to the dead-letter output as the user's element, in its own window."""
        element, window, element_pane = v[1]
        w = None if isinstance(window, GlobalWindow) else window
        super()._dead_letter(outputs, element, error, t, w, element_pane)

    def truncate_held(self) -> None:
        """On a drain: every pending restriction is truncated by its provider and run to its end now (a
        bounded one is finished, an unbounded one dropped), then the step ends as `StatefulParDoNode` does."""
        outputs = None
        for kw in list(self.lingering.values()):
            held = [tk for tk, rec in kw.timers.items() if rec.domain == _RT_HELD]
            pending = kw.cells.get(self.sdf.PENDING.name)
            if not held or not isinstance(pending, dict):
                continue
            if outputs is None:
                outputs = self._begin_timers()
            kwargs = self._kwargs(self._resume_plan, {}, kw, None, 0, kw.timers[held[0]].hold_us, None)
            self._collect_resumed(kw, self.sdf.truncate_pending, kwargs, pending, outputs)
        if outputs is not None:
            self._end_timers(outputs)
        super().truncate_held()

    @property
    def _resume_plan(self) -> list[tuple[str, int, Any]]:
        """How the timer callback's arguments (its state and timer) are made (`StatefulParDoNode._kwargs`)."""
        return self._callbacks[self.sdf.RESUME.name][2]


def _is_keyed(value: Any, token: str) -> bool:
    """Whether `value` is an element as this node keyed it: ``((token, n), (element, window, pane))``."""
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], tuple)
        and value[0][:1] == (token,)
        and isinstance(value[1], tuple)
        and len(value[1]) == 3
    )
