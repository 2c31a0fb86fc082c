"""Snapshot -> restore mid-stream of the windowed operator, for every windowing path, on both state backends.

The operator harness (tests/support/operator_harness.py) runs one `ReducerNode` in-process and checkpoints it
through the real incremental checkpoint machinery into a MemoryBackend or a RocksDB store on disk. For every
window kind (fixed, sliding on the slot and the bucket fast paths, sessions, global) x trigger (default, late
firings by count or processing time, early firings, general-path triggers, a non-default timestamp combiner)
x accumulation mode, the panes of a run with crashes and restores equal those of the uninterrupted run.
More keys than the operator may keep in memory make it evict to the store, so restores read evicted entries.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from millstream.engine.model.trigger import (
    AccumulationMode,
    AfterCount,
    AfterProcessingTime,
    AfterWatermark,
    DefaultTrigger,
    Repeatedly,
)
from millstream.engine.model.window import (
    FixedWindows,
    GlobalWindows,
    Sessions,
    SlidingWindows,
    TimestampCombiner,
)
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.exec.clock import FakeClock
from millstream.engine.runtime.windowing.operator import ReducerNode

from support.operator_harness import (
    Event,
    OperatorHarness,
    SumFn,
    memory_backend,
    rocksdb_backend,
    run,
)

S = 1_000_000
#: (window fn, the reducer class its fast path uses).
WINDOWS: dict[str, Callable[[], Any]] = {
    "fixed": lambda: FixedWindows(5),
    "sliding-slots": lambda: SlidingWindows(6, 2),
    "sliding-buckets": lambda: SlidingWindows(7, 3),
    "sessions": lambda: Sessions(3),
    "global": lambda: GlobalWindows(),
}
#: (trigger, timestamp combiner): the first three have fast paths, the rest run on the general reducer.
TRIGGERS: dict[str, Callable[[], tuple[Any, TimestampCombiner]]] = {
    "default": lambda: (DefaultTrigger(), TimestampCombiner.OUTPUT_AT_EOW),
    "late-count": lambda: (AfterWatermark(late=AfterCount(1)), TimestampCombiner.OUTPUT_AT_EOW),
    "late-ptime": lambda: (AfterWatermark(late=AfterProcessingTime(2)), TimestampCombiner.OUTPUT_AT_EOW),
    "early-late": lambda: (
        AfterWatermark(early=AfterCount(2), late=AfterCount(1)),
        TimestampCombiner.OUTPUT_AT_EOW,
    ),
    "repeated-count": lambda: (Repeatedly(AfterCount(2)), TimestampCombiner.OUTPUT_AT_EOW),
    "repeated-ptime": lambda: (Repeatedly(AfterProcessingTime(3)), TimestampCombiner.OUTPUT_AT_EOW),
    "default-earliest": lambda: (DefaultTrigger(), TimestampCombiner.OUTPUT_AT_EARLIEST),
}
MODES = {"accumulating": AccumulationMode.ACCUMULATING, "discarding": AccumulationMode.DISCARDING}
#: More keys than the 16 entries the operator keeps in memory: it evicts, and restores read evicted entries.
KEYS = [f"k{i}" for i in range(24)]
STEPS = 16


def windowing(window: str, trigger: str, mode: str) -> Windowing:
    """The windowing strategy of one parameter combination (allowed lateness lets late panes fire)."""
    trig, combiner = TRIGGERS[trigger]()
    return Windowing(WINDOWS[window](), trig, MODES[mode], combiner, allowed_lateness=4)


def events(seed: int) -> list[Event]:
    """A stream of bundles (some late), watermark and processing-time advances."""
    rng = random.Random(seed)
    out: list[Event] = []
    wm = 0
    for _ in range(STEPS):
        kind = rng.choice(["elements", "elements", "elements", "watermark", "processing_time"])
        if kind == "elements":
            out.append(
                (
                    "elements",
                    [
                        (rng.choice(KEYS), rng.randint(1, 9), max(0, wm + rng.randint(-6, 12)) * S)
                        for _ in range(rng.randint(1, 8))
                    ],
                )
            )
        elif kind == "watermark":
            wm += rng.choice([1, 3, 5])
            out.append(("watermark", wm * S))
        else:
            out.append(("processing_time", rng.randint(1, 4) * S))
    return out


@pytest.fixture(params=["memory", "rocksdb"])
def make_harness(request: Any, tmp_path: Path) -> Callable[[Windowing], OperatorHarness]:
    """A factory of harnesses on one state backend (RocksDB: a store and a spill area in real folders)."""
    made = 0

    def make(w: Windowing) -> OperatorHarness:
        nonlocal made
        made += 1
        if request.param == "memory":
            return OperatorHarness(w, memory_backend())
        root = tmp_path / f"h{made}"
        return OperatorHarness(w, rocksdb_backend(str(root / "state")), state_dir=str(root / "state"))

    return make


COMBOS = [(w, t, m) for w in WINDOWS for t in TRIGGERS for m in MODES]


@pytest.mark.parametrize(("window", "trigger", "mode"), COMBOS)
def test_restore_after_every_step_equals_the_uninterrupted_run(
    make_harness: Callable[[Windowing], OperatorHarness], window: str, trigger: str, mode: str
) -> None:
    """A checkpoint after every step, each followed by a crash and a restore into a fresh operator."""
    w = windowing(window, trigger, mode)
    evs = events(zlib.crc32(f"{window}/{trigger}/{mode}".encode()))
    expected = run(make_harness(w), evs)
    assert expected, "the scenario fires no pane: it would prove nothing"
    h = make_harness(w)
    every = range(len(evs))
    assert run(h, evs, checkpoint_after=every, crash_after=every) == expected
    assert h.restores == len(evs) and h.checkpoints == len(evs)


@pytest.mark.parametrize(("window", "trigger", "mode"), COMBOS)
def test_crash_between_checkpoints_replays_to_the_same_panes(
    make_harness: Callable[[Windowing], OperatorHarness], window: str, trigger: str, mode: str
) -> None:
    """Checkpoints every few steps and crashes in between (before the first one too): the operator restores
    the last checkpoint, the output after it is discarded and the input after it replayed."""
    w = windowing(window, trigger, mode)
    seed = zlib.crc32(f"{mode}/{trigger}/{window}".encode())
    evs = events(seed)
    expected = run(make_harness(w), evs)
    rng = random.Random(seed)
    crashes = {0, rng.randrange(3, 8), rng.randrange(9, STEPS)}
    h = make_harness(w)
    assert run(h, evs, checkpoint_after=range(2, STEPS, 3), crash_after=crashes) == expected
    assert h.restores == 3


def test_every_windowing_path_is_covered() -> None:
    """The combinations reach each fast path and the general reducer (so each is snapshot and restored)."""
    paths = {
        type(ReducerNode("op", SumFn(), windowing(*combo), FakeClock()).reducer).__name__ for combo in COMBOS
    }
    assert paths == {"SlotReducer", "BucketReducer", "SessionReducer", "Reducer"}


@pytest.mark.parametrize("window", list(WINDOWS))
def test_state_survives_a_crash_only_through_a_checkpoint(
    make_harness: Callable[[Windowing], OperatorHarness], window: str
) -> None:
    """Without replay, what a restored operator fires is exactly what was checkpointed: the restore is real
    (an operator restored from nothing would fire no pane, one that kept memory would count the 100)."""
    h = make_harness(windowing(window, "default", "discarding"))
    h.elements([(k, 1, 2 * S) for k in KEYS])
    h.checkpoint()
    h.elements([("k0", 100, 2 * S)])
    assert h.crash_and_restore() == 1
    h.finish()
    panes = [p for p in h.panes() if not p.tag]
    h.close()
    assert {p.key for p in panes} == set(KEYS)
    assert {p.value for p in panes} == {1}


def test_the_operator_evicts_so_restores_read_the_store(
    make_harness: Callable[[Windowing], OperatorHarness],
) -> None:
    """With more keys than its memory share, the operator evicts entries (the tier's bound is at work)."""
    h = make_harness(windowing("fixed", "default", "accumulating"))
    h.elements([(k, 1, 2 * S) for k in KEYS])
    h.checkpoint()
    evicted = h.evicted
    h.close()
    assert evicted > 0
