"""Incremental reducer state (`checkpoint.reducer_records`, `checkpoint.versioned_store`) on random scenarios.

A reducer whose memory bound is tiny (so entries are evicted and reloaded all the time) takes checkpoints
after random steps into a real checkpoint store, and crashes at a random step: a fresh reducer restores
the last checkpoint (or, with a corrupted newest manifest, the one before) and the events after it are
replayed. The panes it commits must be exactly those of a reducer that keeps everything in memory.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from millstream.engine.model.timestamp import MAX_MICROS, to_micros
from millstream.engine.runtime.checkpoint.reducer_records import ReducerState
from millstream.engine.runtime.checkpoint.versioned_store import SpillArea, StateTier, oldest_retained
from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer, create_reducer
from millstream.state import CheckpointStore, MemoryBackend
from millstream.state.checkpoints import MANIFEST_PREFIX
from millstream.state.keys import encode_u64

import support.windowing as support_windowing


def _helpers() -> Any:
    """The shared windowing test helpers (tests/support/windowing.py)."""
    return support_windowing


H = _helpers()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEEP = 3


class Node:
    """A reducer with incremental state over a store, checkpointed the way the Checkpointer does it."""

    def __init__(self, spec: dict[str, Any], factory: Any, bound: int, data: dict[bytes, bytes]) -> None:
        self.backend = MemoryBackend(data)
        self.store = CheckpointStore(self.backend, keep=KEEP)
        self.spill = SpillArea(None)
        self.tier = StateTier("op", self.backend, self.spill, bound)
        self.reducer = factory(**H.driver.reducer_kwargs(spec))
        self.state = ReducerState(self.reducer, self.tier)
        self.written: list[int] = []

    def checkpoint(self, cid: int) -> None:
        cap = self.state.capture()
        oldest = oldest_retained(self.store, KEEP, cid)
        ck = self.tier.checkpoint(cid, oldest, cap.header, cap.entries, cap.deletes, cap.encoded)
        manifest = self.store.commit(cid, ck.puts(), ck.deletes(), fingerprint="f", wall_time_micros=0)
        self.tier.committed(ck)
        self.written.append(manifest.puts)

    def torn_checkpoint(self, cid: int) -> None:
        """A checkpoint that dies after its records were written ahead of its manifest (see prewrite)."""
        cap = self.state.capture()
        oldest = oldest_retained(self.store, KEEP, cid)
        ck = self.tier.checkpoint(cid, oldest, cap.header, cap.entries, cap.deletes, cap.encoded)
        self.backend.write_batch(list(ck.puts()), ())

    def restore(self, fallback: bool) -> int | None:
        manifest = self.store.latest(allow_fallback=fallback)
        if manifest is None:
            assert self.tier.restore(0) is None  # as the Checkpointer does: purges a torn first checkpoint
            return None
        header = self.tier.restore(manifest.checkpoint_id)
        assert header is not None
        self.state.restore(header)
        return manifest.checkpoint_id

    def close(self) -> None:
        self.spill.close()
        self.backend.close()


def run_tiered(
    spec: dict[str, Any],
    factory: Any,
    bound: int,
    checkpoints: set[int],
    crash_at: int,
    corrupt_newest: bool = False,
    torn: bool = False,
) -> list[dict[str, Any]]:
    """Run a scenario with checkpoints after the steps in `checkpoints` and a crash after step `crash_at`
    (with `torn`, in the middle of writing a checkpoint; with `corrupt_newest`, the newest manifest is then
    unreadable)."""
    drv = H.driver
    events = spec["events"]
    data: dict[bytes, bytes] = {}
    node = Node(spec, factory, bound, data)
    committed: list[Any] = []
    pending: list[Any] = []
    at: dict[int, tuple[int, int, int]] = {}  # checkpoint id -> (step, processing time, committed panes)
    cid = 0
    now = 0
    crashed = False
    step = 0
    while step < len(events):
        ((kind, arg),) = events[step].items()
        r = node.reducer
        if kind == "elements":
            panes = r.process_bundle([e[0] for e in arg], [e[1] for e in arg], [to_micros(e[2]) for e in arg])
        elif kind == "watermark":
            panes = r.advance_input_watermark(max(to_micros(arg), r.input_watermark))
        else:
            now += to_micros(arg)
            panes = r.advance_processing_time(now)
        pending.extend((step, p) for p in panes)
        node.state.maybe_evict()
        assert not bound or node.state.hot_entries() <= bound
        if step in checkpoints:
            cid += 1
            node.checkpoint(cid)
            committed.extend(pending)
            pending = []
            at[cid] = (step, now, len(committed))
        if step == crash_at and not crashed:
            crashed = True
            if torn:
                node.torn_checkpoint(cid + 1)
            node.close()
            expect = cid or None
            if corrupt_newest and cid >= 2:
                key = MANIFEST_PREFIX + encode_u64(cid)
                data[key] = data[key][:-3] + b"bad"
                expect = cid - 1
            node = Node(spec, factory, bound, data)
            restored = node.restore(fallback=corrupt_newest)
            assert restored == expect
            if restored is None:
                step, now, kept = -1, 0, 0
            else:
                step, now, kept = at[restored]
            committed = committed[:kept]  # a restored sink discards what was committed after
            pending = []
        step += 1
    r = node.reducer
    n = len(events)
    if drv.reducer_kwargs(spec)["trigger"].uses_processing_time():
        now += to_micros(drv.END_OF_STREAM_PROCESSING_TIME_ADVANCE)
        pending.extend((n, p) for p in r.advance_processing_time(now))
    pending.extend((n, p) for p in r.advance_input_watermark(MAX_MICROS))
    node.close()
    return drv.canonical_result(spec, committed + pending)["panes"]  # type: ignore[no-any-return]


@SETTINGS
@given(
    H.scenarios(),
    st.sampled_from([1, 2, 3, 0]),
    st.sets(st.integers(0, 13)),
    st.integers(0, 13),
    st.booleans(),
    st.booleans(),
)
def test_evicting_checkpointing_crashing_reducer_equals_in_memory(
    spec: dict[str, Any], bound: int, checkpoints: set[int], crash_at: int, fast: bool, torn: bool
) -> None:
    """Same panes with a tiny memory bound, incremental checkpoints and a crash (possibly while a checkpoint
    was being written) + restore + replay."""
    factory = create_reducer if fast else Reducer
    assert run_tiered(spec, factory, bound, checkpoints, crash_at, torn=torn) == H.run(
        spec, reducer_factory=factory
    )


@SETTINGS
@given(
    H.scenarios(triggers=H.FAST_TRIGGERS, combiners=st.just("end_of_window")),
    st.sampled_from([1, 2, 5]),
    st.sets(st.integers(0, 13), min_size=2),
    st.integers(0, 13),
)
def test_fallback_to_an_older_checkpoint_restores_its_state(
    spec: dict[str, Any], bound: int, checkpoints: set[int], crash_at: int
) -> None:
    """With the newest manifest unreadable, the previous checkpoint's state is restored (versions kept)."""
    assert run_tiered(spec, create_reducer, bound, checkpoints, crash_at, corrupt_newest=True) == H.run(
        spec, reducer_factory=create_reducer
    )
