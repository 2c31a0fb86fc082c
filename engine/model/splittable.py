"""Splittable DoFns (Beam's `RestrictionProvider` and `DoFn.RestrictionParam`): restrictions that are split,
checkpointed part-way, deferred and resumed.

The pipeline holds a `SplittableDoFnRunner` (Beam's runners receive the user's DoFn through it unchanged and
split restrictions themselves). Locally, the planner runs its `resumable` form, `ResumingSplittableDoFn`: a
stateful DoFn keyed by element (`engine/runtime/operators/splittable_pardo.py`), so checkpoints, kill -9
recovery and exactly-once come from the user-state machinery. For each element: ``initial_restriction`` ->
``split`` -> each part processed with ``create_tracker(part)``, ``check_done`` enforced. An activation ends a
part early when

* its budget is spent (`SPLIT_AFTER_OUTPUTS` outputs or `SPLIT_AFTER_US` of the job's clock, read on outputs
  and on claims, so claims that output little are bounded too; the first activations of one batch share one
  time budget, and elements left when it is spent wait in state): the runner
  calls ``tracker.try_split(0)`` (Beam's runner-initiated checkpoint) and the residual resumes at once, in a
  later turn of the timer loop, so checkpoints and watermarks pass between activations (a tracker that
  cannot split is asked again after another budget and otherwise runs on);
* or `process` calls ``tracker.defer_remainder(delay)`` (a polling DoFn): the residual resumes after the
  delay on the job's clock.

Residuals (encoded with the provider's ``restriction_coder()``) and estimator states (the estimator
provider's ``estimator_state_coder()`` when it has one) wait in user state under a processing-time timer
whose output timestamp holds the step's output watermark at the lowest estimator watermark of the pending
parts (Beam's semantics; never below the element's timestamp or an earlier hold, Beam Java's rule for timer
output timestamps). After the input ends they keep the step running until done; a drain truncates them with
the provider's ``truncate`` (a bounded restriction finished, an unbounded one dropped).

Every activation, first or resumed, gets the element, its timestamp, window and pane, the side inputs (a
windowed one seen in the element's window: side inputs are complete before the main input is processed and
all their values are kept and checkpointed, so its view can be built again after the watermark passed the
window), the restriction's tracker and estimator, and from the step (`STEP_SUPPLIED`) its
`DoFn.BundleFinalizerParam` and context parameters (`SetupContextParam`, `BundleContextParam`). A resumed
activation runs in the bundle of its timer firing, so callbacks it registers run once the checkpoint covering
that activation commits (Beam's polling reads: read a batch, register its ack, defer the rest); an activation
lost to a crash before its checkpoint never runs its callbacks, and the restored run redoes it. Not
resumable, so run to the end in one call as Beam's SDK does without splitting (and refusing
`defer_remainder`, naming why): a DoFn with state, timer or key parameters (Beam refuses
state and timers in a splittable DoFn; here the runtime keys each element itself, so the user's key and
state have no meaning in a later activation).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from millstream.engine.model.coders import PickleCoder
from millstream.engine.model.dofn import DoFn, WindowedValue, param_markers, provider_of, require_methods
from millstream.engine.model.io import ProcessingTimeReader
from millstream.engine.model.pvalue import TaggedOutput
from millstream.engine.model.timestamp import Duration, Timestamp, TimestampedValue, to_micros
from millstream.engine.model.userstate import ReadModifyWriteStateSpec, TimeDomain, TimerSpec, on_timer
from millstream.engine.model.watermark_estimators import check_watermark_estimator_param, estimator_provider
from millstream.engine.model.window import END_OF_GLOBAL_WINDOW_MICROS, PANE_INFO_UNKNOWN, GlobalWindow


class RestrictionProvider:
    """Creates and splits the restrictions of a splittable DoFn (Beam's ``transforms.core.RestrictionProvider``).

    Subclasses implement `initial_restriction` and `create_tracker`; the rest have Beam's defaults.
    """

    def initial_restriction(self, element: Any) -> Any:
        """The whole restriction of `element` (e.g. ``OffsetRange(0, size)``)."""
        raise NotImplementedError(f"{type(self).__name__}.initial_restriction")

    def create_tracker(self, restriction: Any) -> Any:
        """A RestrictionTracker for `restriction`."""
        raise NotImplementedError(f"{type(self).__name__}.create_tracker")

    def split(self, element: Any, restriction: Any) -> Iterator[Any]:
        """Parts of `restriction` to process separately (default: the restriction itself)."""
        yield restriction

    def restriction_size(self, element: Any, restriction: Any) -> float:
        """The size of `restriction` (Beam uses it to balance work; millstream only reports it)."""
        raise NotImplementedError(f"{type(self).__name__}.restriction_size")

    def split_and_size(self, element: Any, restriction: Any) -> Iterator[tuple[Any, float]]:
        """(part, size) for every part of `split`."""
        for part in self.split(element, restriction):
            yield part, self.restriction_size(element, part)

    def truncate(self, element: Any, restriction: Any) -> Any:
        """The restriction to finish when draining: all of a bounded one (None: nothing)."""
        if self.create_tracker(restriction).is_bounded():
            return restriction
        return None

    def restriction_coder(self) -> Any:
        """The coder of restrictions (pickling by default)."""
        return PickleCoder()


def restriction_param_name(fn: Any) -> str | None:
    """The name of `fn.process`'s RestrictionParam argument, or None when the DoFn is not splittable."""
    process = getattr(fn, "process", None)
    if process is None:
        return None
    names = [name for name, m in param_markers(process).items() if m.name == "RestrictionParam"]
    if len(names) > 1:
        raise ValueError(f"{type(fn).__name__}.process declares more than one RestrictionParam: {names}")
    return names[0] if names else None


class TrackerView:
    """What a splittable `process` sees of its tracker (Beam's RestrictionTrackerView): claims, the current
    restriction, progress, and `defer_remainder` (resume the rest later; the runner splits the tracker when
    `process` returns)."""

    def __init__(
        self,
        tracker: Any,
        label: str,
        clock: Any = None,
        can_defer: bool = False,
        deadline_us: int | None = None,
    ) -> None:
        self._tracker = tracker
        self._label = label
        self._clock = clock
        self._can_defer = can_defer
        #: The processing time (µs) `defer_remainder` asked to resume at, None when it was not called.
        self.deferred_to_us: int | None = None
        #: The end of the activation's time budget on the clock's monotonic scale (None: no budget).
        self._deadline_us = deadline_us
        self._claims = 0
        #: The residual of the runtime's checkpoint split (`checkpoint`), None while not split.
        self.residual: Any = None

    def current_restriction(self) -> Any:
        """The restriction being processed."""
        return self._tracker.current_restriction()

    def try_claim(self, position: Any) -> bool:
        """Claim `position`; when False, `process` must return. Once the activation's time budget is spent the
        runner checkpoints the tracker here (`checkpoint`), so the claim is refused and the rest resumes in a
        later activation, however few outputs the claims made (Beam's time-bounded invoker does the same)."""
        if self._deadline_us is not None and self.residual is None:
            self._claims += 1
            if self._claims % _CLOCK_EVERY == 0 and self.budget_spent():
                self.checkpoint()
        return bool(self._tracker.try_claim(position))

    def budget_spent(self) -> bool:
        """Whether the activation has run past its time budget (never, without one)."""
        return self._deadline_us is not None and self._clock.monotonic_us() >= self._deadline_us

    def checkpoint(self) -> None:
        """The runtime-initiated checkpoint: ``try_split(0)``, so the claimed part is the primary and the next
        claim fails; a tracker that cannot split now is asked again after another budget."""
        self.residual = _checkpoint_split(self._tracker)
        if self._deadline_us is not None:
            self._deadline_us = self._clock.monotonic_us() + SPLIT_AFTER_US

    def current_progress(self) -> Any:
        """The tracker's progress."""
        return self._tracker.current_progress()

    def is_bounded(self) -> bool:
        """Whether the restriction is finite."""
        return bool(self._tracker.is_bounded())

    def defer_remainder(self, deferred_time: Any = None) -> None:
        """Resume the unclaimed rest of the restriction later: after `deferred_time` (a Duration, or seconds)
        from now, at it (a Timestamp of processing time), or as soon as possible (None). `process` should
        return after calling it; what it claimed so far is its primary, the rest its residual."""
        if not self._can_defer:
            raise NotImplementedError(
                f"{self._label}: defer_remainder needs a resumable splittable DoFn, and this one runs each "
                "restriction to its end: it has state, timer or key parameters (Beam refuses state and timers "
                "in a splittable DoFn; here each element is keyed by the runtime, so the user's key and state "
                "could not be given to a later activation)"
            )
        now = self._clock.now_us()
        if deferred_time is None:
            self.deferred_to_us = now
        elif isinstance(deferred_time, Timestamp):
            self.deferred_to_us = max(now, deferred_time.micros)
        elif isinstance(deferred_time, (Duration, int, float)) and not isinstance(deferred_time, bool):
            delay = to_micros(deferred_time)
            if delay < 0:
                raise ValueError(f"{self._label}: defer_remainder needs a delay >= 0, got {deferred_time!r}")
            self.deferred_to_us = now + delay
        else:
            raise TypeError(
                f"{self._label}: defer_remainder takes a Duration, a Timestamp or None, got {deferred_time!r}"
            )


#: what the runner calls on a restriction tracker (Beam's RestrictionTracker interface)
_TRACKER_METHODS = ("current_restriction", "try_claim", "check_done")

#: The runtime split budget of one activation of a resumable splittable DoFn: once an element's restrictions
#: have produced this many outputs, or run this long on the job's clock, the runner asks the tracker for
#: ``try_split(0)`` and resumes the residual in a later activation, so a long restriction lets checkpoints and
#: watermarks through instead of holding the bundle to its end. Beam's runners bound an activation the same
#: way (OutputAndTimeBoundedSplittableProcessElementInvoker), between 100 outputs / 1 s (its Java DirectRunner)
#: and 10,000 outputs / 10 s (Dataflow); 100 outputs cost a turn of the timer loop per 100 outputs here (a
#: single long restriction ran 13x slower than without a budget), 10,000 cost nothing measurable.
SPLIT_AFTER_OUTPUTS = 10_000
SPLIT_AFTER_US = 1_000_000
#: how many outputs, or claims, pass between two readings of the clock for the time budget
_CLOCK_EVERY = 64

#: The parameters of a splittable `process` that the step supplies to every activation, the first (fired by
#: the element) and each resumed one (fired by the element's timer): the step's bundle finalizer, bound to the
#: bundle the activation runs in, and its entered context managers. The step passes them to the resumable form
#: under `STEP_ARG_PREFIX` + the user's argument name.
STEP_SUPPLIED = frozenset({"BundleFinalizerParam", "SetupContextParam", "BundleContextParam"})
STEP_ARG_PREFIX = "_sdf_step_"

#: The parameters of a splittable `process` a resumed activation can supply again (from the element's state, or
#: by the step); a DoFn asking for others (state, timers, its key: Beam refuses state and timers in a splittable
#: DoFn, and here each element is keyed by the runtime, not by the user) runs each restriction to its end in
#: one call (`SplittableDoFnRunner.resumable`).
_RESUMABLE_MARKERS = {"TimestampParam", "WindowParam", "PaneInfoParam", "ElementParam", *STEP_SUPPLIED}


class _Activation:
    """What one activation of a restriction left: its outputs, the residual to resume (or None: done), when
    to resume it (processing time, µs), the estimator's state and watermark (µs, None: no estimate)."""

    __slots__ = ("outputs", "residual", "resume_us", "estimator_state", "watermark_us")

    def __init__(self) -> None:
        self.outputs: list[Any] = []
        self.residual: Any = None
        self.resume_us = 0
        self.estimator_state: Any = None
        self.watermark_us: int | None = None


class SplittableDoFnRunner(DoFn):
    """Runs a splittable DoFn: every element's restrictions, each processed to the end with its tracker.

    `process` has the user's signature minus the RestrictionParam, so the runtime supplies the other
    parameters (timestamp, window, ...) as for any DoFn. Other attributes are the user DoFn's. This is the
    DoFn the pipeline model holds (and Beam's runners receive unchanged); the local runtime runs it as its
    `resumable` stateful form when it can, which checkpoints, splits and defers restrictions.
    """

    #: the keyword the runner adds to the signature so that the runtime passes each element's timestamp
    #: (the timestamp of outputs that carry none, which the watermark estimator observes)
    _TIMESTAMP_KW = "_splittable_element_timestamp"

    def __init__(self, fn: DoFn, param: str) -> None:
        self.fn = fn
        self.param = param
        where = f"ParDo({type(fn).__name__})"
        markers = param_markers(fn.process)
        check_watermark_estimator_param(markers, where)
        marker = markers[param]
        provider = provider_of(marker, fn)
        require_methods(
            provider,
            ("initial_restriction", "create_tracker"),
            "DoFn.RestrictionParam needs a RestrictionProvider: it",
            where,
            "pass one, or make the DoFn itself a RestrictionProvider",
        )
        self.provider: Any = provider
        estimators = [name for name, m in markers.items() if m.name == "WatermarkEstimatorParam"]
        self.estimator_param: str | None = estimators[0] if estimators else None
        self.estimator_provider: Any = (
            estimator_provider(markers[self.estimator_param], fn, where) if self.estimator_param else None
        )
        self._clock: Any = None
        #: The end of the time budget the first activations of one batch share (the clock's monotonic scale),
        #: set by the step around a batch (`SplittableParDoNode.process`), None otherwise.
        self.batch_deadline_us: int | None = None
        #: the name of `process`'s ``DoFn.ElementParam`` argument, None when the element comes first
        self.element_keyword = next((n for n, m in markers.items() if m.name == "ElementParam"), None)
        sig = inspect.signature(fn.process)
        taken = {param, self.estimator_param}
        params = [p for name, p in sig.parameters.items() if name not in taken]
        if self.estimator_param is not None:
            # keyword-only, placed before a **kwargs if there is one (a signature's order rule)
            extra = inspect.Parameter(
                self._TIMESTAMP_KW, inspect.Parameter.KEYWORD_ONLY, default=DoFn.TimestampParam
            )
            at = next(
                (i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params)
            )
            params.insert(at, extra)

        def process(element: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            return self._process(element, args, kwargs)

        process.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        self.process = process  # type: ignore[method-assign]

    def use_clock(self, clock: Any) -> None:
        """The job's processing-time clock, handed to estimators that read one (``WalltimeWatermarkEstimator``)."""
        self._clock = clock

    def __getattr__(self, name: str) -> Any:
        # the user's own attributes (pipeline visitors set them, e.g. `transform.fn.file_to_read`)
        if name in (
            "fn",
            "param",
            "provider",
            "estimator_param",
            "estimator_provider",
            "_clock",
            "batch_deadline_us",
            "element_keyword",
        ):
            raise AttributeError(name)
        return getattr(self.fn, name)

    def resumable(self, transform: Any) -> Any:
        """A copy of the ParDo `transform` (which runs this DoFn) whose DoFn is the resumable stateful form
        (`ResumingSplittableDoFn`), or None when it cannot be resumed: `process` parameters a later
        activation could not be given (state, timers, the key: not those of the element, the side inputs, the
        restriction, the estimator, the bundle finalizer or context managers). Such a DoFn runs each
        restriction to its end in one call."""
        markers = param_markers(self.fn.process)
        others = {m.name for n, m in markers.items() if n not in (self.param, self.estimator_param)}
        if others - _RESUMABLE_MARKERS:
            return None
        import copy

        resumable = copy.copy(transform)
        resumable.fn = ResumingSplittableDoFn(self)
        return resumable

    def _process(self, element: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Any]:
        element_ts = kwargs.pop(self._TIMESTAMP_KW, None)
        restriction = self.provider.initial_restriction(element)
        for part in self.provider.split(element, restriction):
            act = self.activate(element, element_ts, args, kwargs, part, None, budget=False, started=False)
            yield from act.outputs

    def activate(
        self,
        element: Any,
        element_ts: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        restriction: Any,
        estimator_state: Any,
        budget: bool,
        *,
        started: bool = True,
        can_defer: bool = False,
    ) -> _Activation:
        """Process `restriction` of `element` once: to its end, or (`budget`) until the split budget is spent,
        or until `process` defers its remainder. `estimator_state` resumes the watermark estimator (unless
        `started` is False: a part never processed starts from the provider's initial state)."""
        label = type(self.fn).__name__
        tracker = self.provider.create_tracker(restriction)
        require_methods(tracker, _TRACKER_METHODS, "a RestrictionTracker", f"ParDo({label})")
        deadline_us = None
        if budget:
            deadline_us = self._clock.monotonic_us() + SPLIT_AFTER_US
            if self.batch_deadline_us is not None:
                deadline_us = min(deadline_us, self.batch_deadline_us)
        view = TrackerView(tracker, label, self._clock, can_defer, deadline_us)
        call = {**kwargs, self.param: view}
        estimator = None
        if self.estimator_param is not None:
            if not started:
                estimator_state = self.estimator_provider.initial_estimator_state(element, restriction)
            estimator = self._new_estimator(estimator_state)
            call[self.estimator_param] = estimator
        act = _Activation()
        process: Any = self.fn.process
        if self.element_keyword is not None:
            call[self.element_keyword] = element
            result = process(*args, **call)
        else:
            result = process(element, *args, **call)
        if result is not None:
            outputs = act.outputs
            observe = estimator.observe_timestamp if estimator is not None else None
            if not budget:
                for out in result:
                    if observe is not None:
                        observe(_output_timestamp(out, element_ts))
                    outputs.append(out)
            else:
                split_at = len(outputs) + SPLIT_AFTER_OUTPUTS
                for out in result:
                    if observe is not None:
                        observe(_output_timestamp(out, element_ts))
                    outputs.append(out)
                    n = len(outputs)
                    if view.residual is None and (
                        n >= split_at or (n % _CLOCK_EVERY == 0 and view.budget_spent())
                    ):
                        # process returns at its next claim; a tracker that cannot split now is asked
                        # again after another budget
                        view.checkpoint()
                        split_at = len(outputs) + SPLIT_AFTER_OUTPUTS
        act.residual = view.residual  # the runtime's checkpoint split, on an output or on a claim
        if view.deferred_to_us is not None:
            if act.residual is None:
                act.residual = _checkpoint_split(tracker)
            act.resume_us = view.deferred_to_us
        elif act.residual is not None:
            act.resume_us = self._clock.now_us()
        tracker.check_done()  # Beam's trackers all have it: a restriction left unclaimed is an error
        if estimator is not None:
            act.estimator_state = estimator.get_estimator_state()
            wm = estimator.current_watermark()
            act.watermark_us = None if wm is None else to_micros(wm)
        return act

    def _new_estimator(self, state: Any) -> Any:
        estimator = self.estimator_provider.create_watermark_estimator(state)
        if isinstance(estimator, ProcessingTimeReader):
            if self._clock is None:
                raise RuntimeError(
                    f"ParDo({type(self.fn).__name__}): its watermark estimator reads processing time, but the "
                    "step was given no clock (the runtime hands over the job's clock when it plans the step)"
                )
            estimator.use_clock(self._clock)
        return estimator

    def default_label(self) -> str:
        """The user DoFn's label."""
        return self.fn.default_label()

    def setup(self) -> None:
        """The user DoFn's setup."""
        self.fn.setup()

    def start_bundle(self) -> None:
        """The user DoFn's start_bundle."""
        self.fn.start_bundle()

    def finish_bundle(self) -> Any:
        """The user DoFn's finish_bundle."""
        return self.fn.finish_bundle()

    def teardown(self) -> None:
        """The user DoFn's teardown."""
        self.fn.teardown()


def _checkpoint_split(tracker: Any) -> Any:
    """The residual of ``tracker.try_split(0)`` (Beam's checkpoint), or None when the tracker cannot split."""
    try_split = getattr(tracker, "try_split", None)
    if try_split is None:
        return None
    split = try_split(0)
    return None if split is None else split[1]


class ResumingSplittableDoFn(DoFn):
    """A splittable DoFn as a stateful DoFn, so that its restrictions are checkpointed, split and deferred
    with the machinery of user state and timers (Beam's SplittableParDoViaKeyedWorkItems, in miniature).

    Its input is ``(unique key, (element, window, pane))``: one key per element and window (the runtime's
    `SplittableParDoNode` keys them and keeps this state in the global window). An element's first activation
    runs in `process`; what it leaves (residuals and parts not started, each with its estimator state and the
    processing time to resume at) goes into one state cell, and a processing-time timer resumes it at the
    earliest of those times, its output timestamp (the watermark hold) at the lowest estimator watermark of
    the pending parts. Restrictions are stored encoded with the provider's ``restriction_coder()`` and
    estimator states with ``estimator_state_coder()`` when the estimator provider has one.
    """

    PENDING = ReadModifyWriteStateSpec("sdf_pending", PickleCoder())
    RESUME = TimerSpec("sdf_resume", TimeDomain.REAL_TIME)

    def __init__(self, runner: SplittableDoFnRunner) -> None:
        self.runner = runner
        fn = runner.fn
        markers = param_markers(fn.process)
        #: the user's parameters this DoFn supplies, by kind: (name, marker name)
        self.supplied = [
            (name, m.name)
            for name, m in markers.items()
            if name not in (runner.param, runner.estimator_param) and m.name != "ElementParam"
        ]
        provider = runner.provider
        self.restriction_coder = (
            provider.restriction_coder() if _has(provider, "restriction_coder") else PickleCoder()
        )
        ep = runner.estimator_provider
        self.estimator_coder = (
            ep.estimator_state_coder()
            if ep is not None and _has(ep, "estimator_state_coder")
            else PickleCoder()
        )

    def default_label(self) -> str:
        """The user DoFn's label."""
        return self.runner.default_label()

    def setup(self) -> None:
        """The user DoFn's setup."""
        self.runner.setup()

    def start_bundle(self) -> None:
        """The user DoFn's start_bundle."""
        self.runner.start_bundle()

    def finish_bundle(self) -> Any:
        """The user DoFn's finish_bundle."""
        return self.runner.finish_bundle()

    def teardown(self) -> None:
        """The user DoFn's teardown."""
        self.runner.teardown()

    def process(  # type: ignore[override]
        self,
        kv: Any,
        *args: Any,
        ts: Any = DoFn.TimestampParam,
        pending: Any = DoFn.StateParam(PENDING),
        resume: Any = DoFn.TimerParam(RESUME),
        **kwargs: Any,
    ) -> list[Any]:
        """The element's first activation: its restriction split into parts, run within the budget; `args`
        and `kwargs` are the ParDo's extra arguments (side inputs resolved)."""
        element, window, pane = kv[1]
        ts_us = to_micros(ts)
        runner = self.runner
        restriction = runner.provider.initial_restriction(element)
        now = runner._clock.now_us()
        parts = [
            [_Fresh(part), None, now, None, False]  # encoded only if it is left for a later activation
            for part in runner.provider.split(element, restriction)
        ]
        state = {
            "element": element,
            "ts": ts_us,
            "window": window,
            "pane": pane,
            "parts": parts,
            "hold": ts_us,
        }
        # the first activations of a batch share one budget: once it is spent, the batch's other elements
        # wait in state for a later turn of the timer loop instead of running now
        deadline = runner.batch_deadline_us
        spent = deadline is not None and runner._clock.monotonic_us() >= deadline
        outputs = self._activate(state, now, pending, resume, args, kwargs, spent=spent)
        if isinstance(window, GlobalWindow) and pane is None:
            return outputs  # the step stamps them with the element's timestamp, in the global window
        return [_in_window(out, ts_us, window, pane) for out in outputs]

    @on_timer(RESUME)
    def resume(
        self,
        pending: Any = DoFn.StateParam(PENDING),
        resume: Any = DoFn.TimerParam(RESUME),
    ) -> list[Any]:
        """The timer's callback, for the stateful machinery; `SplittableParDoNode` calls `resume_with`, which
        also gets the ParDo's extra arguments."""
        return self.resume_with((), {}, pending, resume)

    def resume_with(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], pending: Any, resume: Any
    ) -> list[Any]:
        """A later activation: every pending part due now, within the budget (its outputs are stamped with
        the element's timestamp, window and pane by the step, `SplittableParDoNode`)."""
        state = pending.read()
        if state is None:
            return []
        return self._activate(state, self.runner._clock.now_us(), pending, resume, args, kwargs)

    def _activate(
        self,
        state: dict[str, Any],
        now: int,
        pending: Any,
        resume: Any,
        args: tuple[Any, ...],
        extra: dict[str, Any],
        truncate: bool = False,
        spent: bool = False,
    ) -> list[Any]:
        """Run every part due at `now` (the first residual ends the activation's budget), keep what is left
        in `pending` with `resume` set to its earliest time, and return the outputs as `process` made them.
        `truncate` (a drain): each part is first cut by the provider's ``truncate`` and run to its end.
        `spent` (the batch's budget is spent): no part runs now, all wait for a later activation."""
        runner = self.runner
        element = state["element"]
        ts = Timestamp(micros=state["ts"])
        window, pane = state["window"], state["pane"]
        kwargs = dict(extra)
        for name, kind in self.supplied:
            if kind == "TimestampParam":
                kwargs[name] = ts
            elif kind == "WindowParam":
                kwargs[name] = window
            elif kind == "PaneInfoParam":
                kwargs[name] = pane if pane is not None else PANE_INFO_UNKNOWN
            elif kind in STEP_SUPPLIED:
                given = kwargs.pop(STEP_ARG_PREFIX + name, _MISSING)
                if given is _MISSING:
                    raise RuntimeError(
                        f"ParDo({type(runner.fn).__name__}): the step gave no value for {name}=DoFn.{kind} "
                        "(`SplittableParDoNode` supplies it to every activation; this DoFn runs only there)"
                    )
                kwargs[name] = given
        outputs: list[Any] = []
        left: list[list[Any]] = []
        for part in state["parts"]:
            encoded, est_encoded, resume_us, _, started = part
            if spent or (resume_us > now and not truncate):
                left.append([self._encoded(part[0]), *part[1:]])
                continue
            restriction = self._restriction(encoded)
            est_state = self.estimator_coder.decode(est_encoded) if est_encoded is not None else None
            if truncate:
                outputs.extend(self._drain(element, ts, args, kwargs, restriction, est_state, started))
                continue
            act = runner.activate(
                element, ts, args, kwargs, restriction, est_state, True, started=started, can_defer=True
            )
            outputs.extend(act.outputs)
            if act.residual is not None:
                est = (
                    None
                    if runner.estimator_param is None
                    else self.estimator_coder.encode(act.estimator_state)
                )
                left.append(
                    [self.restriction_coder.encode(act.residual), est, act.resume_us, act.watermark_us, True]
                )
                spent = True  # the budget is the activation's: parts not started wait for the next one
        if left:
            hold = min(self._watermark_of(element, state["ts"], part) for part in left)
            # never below the hold already set (or the element's timestamp): Beam Java's rule for a timer's
            # output timestamp, so the step's output watermark only moves forward
            hold = min(max(hold, state["hold"]), END_OF_GLOBAL_WINDOW_MICROS)  # the state's window: global
            state = {**state, "parts": left, "hold": hold}
            pending.write(state)
            resume.set(
                Timestamp(micros=min(part[2] for part in left)), output_timestamp=Timestamp(micros=hold)
            )
        else:
            pending.clear()
            resume.clear()
        return outputs

    def _drain(
        self,
        element: Any,
        ts: Timestamp,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        restriction: Any,
        est_state: Any,
        started: bool,
    ) -> list[Any]:
        """One pending part on a drain: truncated by the provider (None: dropped) and run now, its deferred
        remainders too (truncated again, their delays ignored), until it ends or an activation claims nothing
        (a remainder equal to the restriction it started from, dropped: the drain must end)."""
        runner, coder = self.runner, self.restriction_coder
        outputs: list[Any] = []
        restriction = runner.provider.truncate(element, restriction)
        while restriction is not None:
            act = runner.activate(
                element, ts, args, kwargs, restriction, est_state, False, started=started, can_defer=True
            )
            outputs.extend(act.outputs)
            if act.residual is None or coder.encode(act.residual) == coder.encode(restriction):
                break
            restriction = runner.provider.truncate(element, act.residual)
            est_state, started = act.estimator_state, True
        return outputs

    def _restriction(self, stored: Any) -> Any:
        return stored.restriction if isinstance(stored, _Fresh) else self.restriction_coder.decode(stored)

    def _encoded(self, stored: Any) -> Any:
        return self.restriction_coder.encode(stored.restriction) if isinstance(stored, _Fresh) else stored

    def _watermark_of(self, element: Any, ts_us: int, part: list[Any]) -> int:
        """The watermark a pending part holds: its estimator's (a part not started: its initial estimator's),
        the element's timestamp when there is no estimate."""
        runner = self.runner
        if runner.estimator_param is None:
            return ts_us
        watermark_us = part[3]
        if not part[4]:
            restriction = self._restriction(part[0])
            initial = runner.estimator_provider.initial_estimator_state(element, restriction)
            wm = runner._new_estimator(initial).current_watermark()
            watermark_us = None if wm is None else to_micros(wm)
        return ts_us if watermark_us is None else watermark_us

    def truncate_pending(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], pending: Any, resume: Any
    ) -> list[Any]:
        """On a drain: every pending part cut by the provider's ``truncate`` (Beam's truncate_restriction: a
        bounded restriction is kept whole, an unbounded one dropped) and run to its end, now."""
        state = pending.read()
        if state is None:
            return []
        return self._activate(
            state, self.runner._clock.now_us(), pending, resume, args, kwargs, truncate=True
        )


#: no value given (None may be a value)
_MISSING = object()


class _Fresh:
    """A part of an element's first activation, not encoded yet (most elements finish there)."""

    __slots__ = ("restriction",)

    def __init__(self, restriction: Any) -> None:
        self.restriction = restriction


def _has(obj: Any, method: str) -> bool:
    return callable(getattr(obj, method, None))


def _in_window(out: Any, ts_us: int, window: Any, pane: Any) -> Any:
    """An output of `process` in the element's window and pane, at its own timestamp or the element's."""
    if type(out) is TaggedOutput:
        return TaggedOutput(out.tag, _in_window(out.value, ts_us, window, pane))
    if isinstance(out, WindowedValue):
        return out
    if isinstance(out, TimestampedValue):
        return WindowedValue(out.value, Timestamp(micros=out.micros), (window,), pane)
    return WindowedValue(out, Timestamp(micros=ts_us), (window,), pane)


def _output_timestamp(out: Any, element_ts: Any) -> Any:
    """The timestamp an output of `process` will carry: its own, else the element's (Beam's rule)."""
    if type(out) is TaggedOutput:
        out = out.value
    if isinstance(out, (TimestampedValue, WindowedValue)):
        return Timestamp(micros=out.micros)
    return element_ts


def runnable(fn: DoFn) -> DoFn:
    """`fn`, or the runner of a splittable `fn` (one with a RestrictionParam)."""
    param = restriction_param_name(fn)
    return fn if param is None else SplittableDoFnRunner(fn, param)


__all__ = [
    "SPLIT_AFTER_OUTPUTS",
    "SPLIT_AFTER_US",
    "STEP_ARG_PREFIX",
    "STEP_SUPPLIED",
    "ResumingSplittableDoFn",
    "RestrictionProvider",
    "SplittableDoFnRunner",
    "TrackerView",
    "restriction_param_name",
    "runnable",
]
