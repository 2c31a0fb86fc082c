"""Watermark arithmetic: per-split estimators, a source's split tracker, an operator's inputs and holds.

Pure bookkeeping: no I/O, no asyncio, no clock reads. Processing time, where a rule needs it (idleness),
comes in as a ``now_us`` argument read by the caller from the injected `Clock`. Times are integer
microseconds; ``MIN_MICROS`` is -infinity and ``MAX_MICROS`` is +infinity.

Convention (Beam's): a watermark ``W`` promises that future elements have timestamps ``>= W``; an
element with timestamp ``< W`` may be late. (Flink promises ``> W``, which is why its bounded
out-of-orderness subtracts one more microsecond; we do not.)

The pieces, from the source to an operator's output (docs/architecture.md, "How time flows"):

* **Estimators** (one per source split): `BoundedOutOfOrderness` -- max event time seen minus a fixed
  delay, the default; `MonotonicWatermark` -- the max event time seen (timestamps assumed in order);
  `ManualWatermark` -- set by the source itself; `BatchWatermark` -- -infinity until the end of input.
  Each has ``observe(ts)``, ``observe_batch(timestamps)`` (one C-level ``max()`` per batch),
  ``current()`` and ``snapshot()``/``restore()`` (an int to keep in a checkpoint).

* **`SplitWatermarks`** (one per source): one estimator per split (file, Kafka partition, Pub/Sub
  subscription); splits are added and removed on rebalance. Per split:

  - *finished* (a bounded split read to its end): it no longer holds the watermark. When every split
    is finished the source watermark is ``MAX_MICROS``.
  - *idle*: no data for ``idle_timeout_us`` (measured on ``now_us``), or marked idle by the source,
    until its next data. Idle splits do not hold the watermark (Flink's idleness).
  - otherwise *active*: the source watermark is the minimum over active splits.

  **When no split is active but some are idle** (a quiet topic), the source is *idle* and its watermark
  is the **maximum** of the idle splits' own estimates. This is order-independent: it is what the source
  would report had the most advanced split been the last to fall silent. (Flink instead leaves the
  watermark where it was, so the result depends on the order in which splits went quiet; Beam's KafkaIO
  moves it to about ``now - 2 s``, which assumes event time tracks processing time and would make a
  replay of old data entirely late; we never derive event time from processing time.) The idle status
  is exposed (``SplitWatermarks.idle``) so the runtime can report it downstream, where `InputWatermarks`
  excludes the idle input from the minimum -- an idle source does not stall a join with a busy one.
  With no splits at all (nothing assigned yet) the watermark does not change.

* **Batch semantics**: when every input of the job is bounded and the job is not ``--streaming``
  (`batch_semantics`), every split uses `BatchWatermark` and idleness is off, so the source watermark
  stays at ``MIN_MICROS`` until every split is finished and then jumps to ``MAX_MICROS``: nothing is
  late however the input is ordered. `source_watermarks` picks the right configuration.

* **`InputWatermarks`** (one per operator): the minimum over the operator's input channels, with the
  same idle rule as splits (an input reporting ``MAX_MICROS`` is finished). Each input's reports must
  never go backwards: a regression is a bug upstream and raises `WatermarkRegressionError`.

* **`WatermarkHolds`** (one per operator): the operator's output watermark is
  ``min(input watermark, earliest hold)``, holds being added and removed by id (pending panes, timers).

**Every output here is monotonic.** Where the raw value would go backwards -- a split or input is added
with older data, an idle split wakes up behind the watermark, a hold is added behind the output -- the
output stays where it was until the raw value passes it again. Data behind an output already sent is
late (the windowing layer drops or late-fires it by its allowed lateness); nothing is un-sent. Note
the difference from Beam's internal "held output watermark" used to time panes, which may be
non-monotonic: the windowing reducer computes that itself; `WatermarkHolds.output` is the monotonic
watermark propagated downstream.

Split and input ids may be any hashable (strings for anything that goes into a checkpoint).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Collection, Hashable, Iterable
from typing import Any, Protocol, runtime_checkable

from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS

__all__ = [
    "BatchWatermark",
    "BoundedOutOfOrderness",
    "InputWatermarks",
    "ManualWatermark",
    "MonotonicWatermark",
    "SplitWatermarks",
    "WatermarkEstimator",
    "WatermarkHolds",
    "WatermarkRegressionError",
    "batch_semantics",
    "source_watermarks",
]


class WatermarkRegressionError(AssertionError):
    """An input reported a watermark earlier than one it reported before (a bug in the reporter)."""


# --------------------------------------------------------------------------------------------------
# Estimators


@runtime_checkable
class WatermarkEstimator(Protocol):
    """Estimates the watermark of one split from the event times it yields."""

    def observe(self, ts_us: int) -> None:
        """Take note of one element's event time."""
        ...

    def observe_batch(self, timestamps: Iterable[int]) -> None:
        """Take note of a batch of event times (cheap: one pass in C)."""
        ...

    def current(self) -> int:
        """The split's watermark now; never decreases."""
        ...

    def snapshot(self) -> int:
        """The state to store in a checkpoint."""
        ...

    def restore(self, state: int) -> None:
        """Resume from a `snapshot` value."""
        ...


EstimatorFactory = Callable[[], WatermarkEstimator]


class BoundedOutOfOrderness:
    """Watermark = max event time seen - ``max_delay_us``: elements up to that much out of order are on time.

    The default estimator. With ``max_delay_us=0`` it equals `MonotonicWatermark`.
    """

    __slots__ = ("max_delay_us", "_max_seen")

    def __init__(self, max_delay_us: int, max_seen_us: int = MIN_MICROS) -> None:
        if max_delay_us < 0:
            raise ValueError(f"max_delay_us must be >= 0, got {max_delay_us}")
        self.max_delay_us = max_delay_us
        self._max_seen = max_seen_us

    def observe(self, ts_us: int) -> None:
        """Raise the max seen if ``ts_us`` is later."""
        if ts_us > self._max_seen:
            self._max_seen = ts_us

    def observe_batch(self, timestamps: Iterable[int]) -> None:
        """Raise the max seen to the batch's max."""
        m = max(timestamps, default=MIN_MICROS)
        if m > self._max_seen:
            self._max_seen = m

    @property
    def max_seen(self) -> int:
        """The latest event time observed (``MIN_MICROS`` before any)."""
        return self._max_seen

    def current(self) -> int:
        """Max seen minus the delay, never below ``MIN_MICROS``."""
        wm = self._max_seen - self.max_delay_us
        return wm if wm > MIN_MICROS else MIN_MICROS

    def snapshot(self) -> int:
        """The max event time seen."""
        return self._max_seen

    def restore(self, state: int) -> None:
        """Resume with a max seen from `snapshot`."""
        self._max_seen = state


class MonotonicWatermark:
    """Watermark = the latest event time seen: for splits whose timestamps never decrease (Beam's
    ``MonotonicWatermarkEstimator``). An element earlier than one already seen is late.
    """

    __slots__ = ("_wm",)

    def __init__(self, initial_us: int = MIN_MICROS) -> None:
        self._wm = initial_us

    def observe(self, ts_us: int) -> None:
        """Advance to ``ts_us`` if it is later."""
        if ts_us > self._wm:
            self._wm = ts_us

    def observe_batch(self, timestamps: Iterable[int]) -> None:
        """Advance to the batch's max."""
        m = max(timestamps, default=MIN_MICROS)
        if m > self._wm:
            self._wm = m

    def current(self) -> int:
        """The latest event time seen."""
        return self._wm

    def snapshot(self) -> int:
        """The current watermark."""
        return self._wm

    def restore(self, state: int) -> None:
        """Resume at a `snapshot` watermark."""
        self._wm = state


class ManualWatermark:
    """A watermark the source sets itself with `set_watermark` (Beam's ``ManualWatermarkEstimator``),
    e.g. from a broker's log-append time or a file's known time range. Observed event times are ignored.
    """

    __slots__ = ("_wm",)

    def __init__(self, initial_us: int = MIN_MICROS) -> None:
        self._wm = initial_us

    def set_watermark(self, t_us: int) -> None:
        """Promise that later elements have timestamps ``>= t_us``; raises ValueError if ``t_us`` goes back."""
        if t_us < self._wm:
            raise ValueError(f"watermark must not go backwards: {t_us} < current {self._wm}")
        self._wm = t_us

    def observe(self, ts_us: int) -> None:
        """Ignored: only `set_watermark` moves this watermark."""

    def observe_batch(self, timestamps: Iterable[int]) -> None:
        """Ignored: only `set_watermark` moves this watermark."""

    def current(self) -> int:
        """The last value set."""
        return self._wm

    def snapshot(self) -> int:
        """The current watermark."""
        return self._wm

    def restore(self, state: int) -> None:
        """Resume at a `snapshot` watermark."""
        self._wm = state


class BatchWatermark:
    """Beam's batch semantics for one split: ``MIN_MICROS`` while input remains.

    The jump to ``MAX_MICROS`` happens in `SplitWatermarks` when every split is finished, so the source
    watermark stays at -infinity until the whole input is read and no element is ever late.
    """

    __slots__ = ()

    def observe(self, ts_us: int) -> None:
        """Ignored: the watermark does not move before the end of input."""

    def observe_batch(self, timestamps: Iterable[int]) -> None:
        """Ignored: the watermark does not move before the end of input."""

    def current(self) -> int:
        """Always ``MIN_MICROS``."""
        return MIN_MICROS

    def snapshot(self) -> int:
        """Nothing to keep; ``MIN_MICROS``."""
        return MIN_MICROS

    def restore(self, state: int) -> None:
        """Nothing to restore."""


# --------------------------------------------------------------------------------------------------
# A source's splits


class _Split:
    """Bookkeeping for one split of a `SplitWatermarks`."""

    __slots__ = ("estimator", "last_active_us", "idle_marked", "finished")

    def __init__(self, estimator: WatermarkEstimator, now_us: int) -> None:
        self.estimator = estimator
        self.last_active_us = now_us
        self.idle_marked = False
        self.finished = False


class SplitWatermarks:
    """The watermark of one source: its splits' estimators combined, with idleness and end of input.

    ``estimator_factory`` makes the estimator of each new split; ``idle_timeout_us`` (None = never)
    is how long a split may go without data before it stops holding the watermark. ``now_us`` arguments
    must all come from the same clock reading (``Clock.monotonic_us`` is the robust choice). See the
    module docstring for the rules; `current` applies them and returns the monotonic output.
    """

    def __init__(
        self,
        estimator_factory: EstimatorFactory,
        *,
        idle_timeout_us: int | None = None,
        initial_us: int = MIN_MICROS,
    ) -> None:
        if idle_timeout_us is not None and idle_timeout_us < 0:
            raise ValueError(f"idle_timeout_us must be >= 0 or None, got {idle_timeout_us}")
        self._factory = estimator_factory
        self.idle_timeout_us = idle_timeout_us
        self._splits: dict[Hashable, _Split] = {}
        self._output = initial_us
        self._idle = False

    @classmethod
    def bounded_out_of_orderness(
        cls, max_delay_us: int, *, idle_timeout_us: int | None = None
    ) -> SplitWatermarks:
        """Streaming default: every split estimates max seen - ``max_delay_us``."""
        return cls(lambda: BoundedOutOfOrderness(max_delay_us), idle_timeout_us=idle_timeout_us)

    @classmethod
    def batch(cls) -> SplitWatermarks:
        """Batch semantics: ``MIN_MICROS`` until every split is finished, then ``MAX_MICROS``; no idleness."""
        return cls(BatchWatermark, idle_timeout_us=None)

    # -- membership

    def add_split(self, split_id: Hashable, now_us: int, estimator: WatermarkEstimator | None = None) -> None:
        """Start tracking a split (assigned, discovered); it counts as active from ``now_us``.

        Pass ``estimator`` to resume one restored from a checkpoint; otherwise the factory makes one.
        If the new split is behind the current output, the output holds and its older data is late.
        """
        if split_id in self._splits:
            raise ValueError(f"split {split_id!r} is already tracked")
        self._splits[split_id] = _Split(estimator if estimator is not None else self._factory(), now_us)

    def remove_split(self, split_id: Hashable) -> None:
        """Stop tracking a split (revoked on rebalance); raises KeyError if unknown."""
        del self._splits[split_id]

    def finish_split(self, split_id: Hashable) -> None:
        """The split has reached its end (bounded input): it no longer holds the watermark."""
        self._splits[split_id].finished = True

    def mark_idle(self, split_id: Hashable) -> None:
        """The source knows the split has nothing to read: treat it as idle until its next data."""
        self._splits[split_id].idle_marked = True

    def estimator(self, split_id: Hashable) -> WatermarkEstimator:
        """The split's estimator (e.g. to call `ManualWatermark.set_watermark`)."""
        return self._splits[split_id].estimator

    def __contains__(self, split_id: object) -> bool:
        return split_id in self._splits

    def __len__(self) -> int:
        return len(self._splits)

    @property
    def split_ids(self) -> list[Hashable]:
        """The tracked splits, in the order they were added."""
        return list(self._splits)

    def is_finished(self, split_id: Hashable) -> bool:
        """Whether `finish_split` was called for the split."""
        return self._splits[split_id].finished

    # -- observations

    def observe(self, split_id: Hashable, ts_us: int, now_us: int) -> None:
        """One element read from a split at processing time ``now_us``."""
        split = self._splits[split_id]
        if split.finished:
            raise ValueError(f"split {split_id!r} is finished and cannot yield more data")
        split.estimator.observe(ts_us)
        split.last_active_us = now_us
        split.idle_marked = False

    def observe_batch(self, split_id: Hashable, timestamps: Collection[int], now_us: int) -> None:
        """A batch of event times read from a split; an empty batch is not activity."""
        if len(timestamps) == 0:
            return
        split = self._splits[split_id]
        if split.finished:
            raise ValueError(f"split {split_id!r} is finished and cannot yield more data")
        split.estimator.observe_batch(timestamps)
        split.last_active_us = now_us
        split.idle_marked = False

    # -- the result

    def split_is_idle(self, split_id: Hashable, now_us: int) -> bool:
        """Whether the split is idle at ``now_us`` (marked, or no data for the idle timeout)."""
        split = self._splits[split_id]
        return not split.finished and self._is_idle(split, now_us)

    def _is_idle(self, split: _Split, now_us: int) -> bool:
        timeout = self.idle_timeout_us
        return split.idle_marked or (timeout is not None and now_us - split.last_active_us >= timeout)

    def raw(self, now_us: int) -> int | None:
        """The combined split watermark before the monotonic clamp (None: no splits, no opinion)."""
        return self._combine(now_us)[0]

    def _combine(self, now_us: int) -> tuple[int | None, bool]:
        holding: int | None = None
        idle_max: int | None = None
        for split in self._splits.values():
            if split.finished:
                continue
            wm = split.estimator.current()
            if self._is_idle(split, now_us):
                if idle_max is None or wm > idle_max:
                    idle_max = wm
            elif holding is None or wm < holding:
                holding = wm
        if holding is not None:
            return holding, False
        if idle_max is not None:
            return idle_max, True
        return (MAX_MICROS if self._splits else None), False

    def current(self, now_us: int) -> int:
        """The source watermark at ``now_us`` (monotonic); also refreshes `idle`."""
        raw, self._idle = self._combine(now_us)
        if raw is not None and raw > self._output:
            self._output = raw
        return self._output

    @property
    def output(self) -> int:
        """The watermark returned by the last `current` call (without re-evaluating idleness)."""
        return self._output

    @property
    def idle(self) -> bool:
        """As of the last `current`: no split holds the watermark and at least one is idle."""
        return self._idle

    # -- checkpoints

    def snapshot(self) -> dict[str, Any]:
        """A plain (msgpack-able if the split ids are) record of the output and each split's state."""
        return {
            "output": self._output,
            "splits": [[sid, s.estimator.snapshot(), s.finished] for sid, s in self._splits.items()],
        }

    def restore(self, snapshot: dict[str, Any], now_us: int) -> None:
        """Replace the tracked splits with those of a `snapshot` (estimators made by the factory, then
        restored); the splits count as active from ``now_us``."""
        self._splits.clear()
        self._output = snapshot["output"]
        self._idle = False
        for sid, state, finished in snapshot["splits"]:
            estimator = self._factory()
            estimator.restore(state)
            self.add_split(sid, now_us, estimator)
            self._splits[sid].finished = finished


def batch_semantics(*, streaming: bool, all_inputs_bounded: bool) -> bool:
    """Whether the job keeps Beam's batch watermark (not streaming and every input bounded)."""
    return all_inputs_bounded and not streaming


def source_watermarks(
    *,
    batch: bool,
    max_out_of_orderness_us: int = 0,
    idle_timeout_us: int | None = None,
    estimator_factory: EstimatorFactory | None = None,
) -> SplitWatermarks:
    """The tracker a source should use: batch semantics, or streaming estimators with idleness.

    ``batch`` is `batch_semantics(...)` of the job. In streaming, ``estimator_factory`` overrides the
    default `BoundedOutOfOrderness(max_out_of_orderness_us)`.
    """
    if batch:
        return SplitWatermarks.batch()
    if estimator_factory is None:
        return SplitWatermarks.bounded_out_of_orderness(
            max_out_of_orderness_us, idle_timeout_us=idle_timeout_us
        )
    return SplitWatermarks(estimator_factory, idle_timeout_us=idle_timeout_us)


# --------------------------------------------------------------------------------------------------
# An operator's inputs and holds


class InputWatermarks:
    """An operator's input watermark: the minimum over its input channels, monotonic.

    Each input reports its own (monotonic) watermark and whether it is idle; idle inputs and finished
    ones (at ``MAX_MICROS``) do not hold the minimum; when every remaining input is idle the result is
    the largest idle input's watermark (the rule of `SplitWatermarks`). A report earlier than the same
    input's previous one raises `WatermarkRegressionError`.
    """

    def __init__(self, inputs: Iterable[Hashable] = (), *, initial_us: int = MIN_MICROS) -> None:
        self._wms: dict[Hashable, int] = {}
        self._idle: dict[Hashable, bool] = {}
        self._output = initial_us
        self._all_idle = False
        for input_id in inputs:
            self.add_input(input_id)

    def add_input(self, input_id: Hashable, wm_us: int = MIN_MICROS) -> None:
        """Start tracking an input at ``wm_us``; if it is behind, the output holds (it does not regress)."""
        if input_id in self._wms:
            raise ValueError(f"input {input_id!r} is already tracked")
        self._wms[input_id] = wm_us
        self._idle[input_id] = False
        self._recompute()

    def remove_input(self, input_id: Hashable) -> int:
        """Stop tracking an input; returns the (possibly advanced) output."""
        del self._wms[input_id]
        del self._idle[input_id]
        return self._recompute()

    def update(self, input_id: Hashable, wm_us: int, *, idle: bool = False) -> int:
        """An input reports its watermark (and idleness); returns the operator's input watermark."""
        previous = self._wms[input_id]
        if wm_us < previous:
            raise WatermarkRegressionError(
                f"input {input_id!r} reported watermark {wm_us}, behind its previous report {previous}"
            )
        self._wms[input_id] = wm_us
        self._idle[input_id] = idle
        return self._recompute()

    def _recompute(self) -> int:
        holding: int | None = None
        idle_max: int | None = None
        idle = self._idle
        for input_id, wm in self._wms.items():
            if wm >= MAX_MICROS:
                continue
            if idle[input_id]:
                if idle_max is None or wm > idle_max:
                    idle_max = wm
            elif holding is None or wm < holding:
                holding = wm
        raw: int | None
        if holding is not None:
            raw, self._all_idle = holding, False
        elif idle_max is not None:
            raw, self._all_idle = idle_max, True
        else:
            raw, self._all_idle = (MAX_MICROS if self._wms else None), False
        if raw is not None and raw > self._output:
            self._output = raw
        return self._output

    def current(self) -> int:
        """The operator's input watermark."""
        return self._output

    def get(self, input_id: Hashable) -> int:
        """The last watermark an input reported."""
        return self._wms[input_id]

    @property
    def idle(self) -> bool:
        """No input holds the watermark and at least one is idle (report idleness downstream)."""
        return self._all_idle

    def __len__(self) -> int:
        return len(self._wms)


class WatermarkHolds:
    """An operator's output watermark: ``min(input watermark, earliest hold)``, propagated monotonically.

    Holds (pending panes, timers, buffered elements) are keyed by any hashable id; adding an id again
    moves its hold. A heap with lazy deletion keeps add/remove O(log n) and the earliest hold O(1)
    amortised. A hold added behind the output does not move the output back; it only stops it advancing
    until removed. `held_output` is the raw, non-monotonic value for callers that want it.
    """

    def __init__(self, initial_us: int = MIN_MICROS) -> None:
        self._input = initial_us
        self._output = initial_us
        self._holds: dict[Hashable, tuple[int, int]] = {}  # id -> (time, sequence)
        self._heap: list[tuple[int, int, Hashable]] = []  # (time, sequence, id); stale if not in _holds
        self._seq = itertools.count()

    def set_input(self, wm_us: int) -> int:
        """The input watermark advanced; returns the propagated output. Raises on regression."""
        if wm_us < self._input:
            raise WatermarkRegressionError(f"input watermark went back from {self._input} to {wm_us}")
        self._input = wm_us
        return self.output()

    @property
    def input_watermark(self) -> int:
        """The last input watermark given to `set_input`."""
        return self._input

    def add(self, hold_id: Hashable, t_us: int) -> None:
        """Hold the output at or before ``t_us`` until `remove` (replaces an existing hold of that id)."""
        seq = next(self._seq)
        self._holds[hold_id] = (t_us, seq)
        heapq.heappush(self._heap, (t_us, seq, hold_id))
        if len(self._heap) > 2 * len(self._holds) + 64:
            self._compact()

    def remove(self, hold_id: Hashable) -> bool:
        """Release a hold; returns whether it existed."""
        return self._holds.pop(hold_id, None) is not None

    def get(self, hold_id: Hashable) -> int | None:
        """The time of a hold, or None."""
        entry = self._holds.get(hold_id)
        return entry[0] if entry is not None else None

    def _compact(self) -> None:
        self._heap = [(t, seq, hid) for hid, (t, seq) in self._holds.items()]
        heapq.heapify(self._heap)

    def earliest(self) -> int:
        """The earliest hold, or ``MAX_MICROS`` when there is none."""
        heap, holds = self._heap, self._holds
        while heap:
            t, seq, hid = heap[0]
            entry = holds.get(hid)
            if entry is not None and entry[1] == seq:
                return t
            heapq.heappop(heap)
        return MAX_MICROS

    def held_output(self) -> int:
        """``min(input watermark, earliest hold)`` without the monotonic clamp."""
        e = self.earliest()
        return e if e < self._input else self._input

    def output(self) -> int:
        """The monotonic output watermark to send downstream."""
        raw = self.held_output()
        if raw > self._output:
            self._output = raw
        return self._output

    def __len__(self) -> int:
        return len(self._holds)

    def __contains__(self, hold_id: object) -> bool:
        return hold_id in self._holds
