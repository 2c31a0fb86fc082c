"""State of a processing-time trigger written before deviation 3 became the default (processing-time timers
seen as the watermark, the Python SDK's timing) is refused naming the cause (deviation 3 of docs/semantics.md)
and what to do (--from_scratch). Other strategy changes keep
the general message."""

from __future__ import annotations

from typing import Any

import pytest

from millstream.engine.model import trigger as T
from millstream.engine.model import window as W
from millstream.engine.runtime.checkpoint.reducer_records import ReducerState
from millstream.engine.runtime.checkpoint.versioned_store import SpillArea, StateTier, oldest_retained
from millstream.engine.runtime.windowing.combine_fns import SumCombineFn
from millstream.engine.runtime.windowing.reduce_fn_runner import create_reducer
from millstream.state import CheckpointStore, MemoryBackend

import support.windowing as support_windowing


def _helpers() -> Any:
    """The shared windowing test helpers (tests/support/windowing.py)."""
    return support_windowing


H = _helpers()

S = 1_000_000
EARLY = T.AfterWatermark(early=T.AfterProcessingTime(5))


def reducer(trigger: Any = EARLY, **options: Any) -> Any:
    return create_reducer(W.FixedWindows(60), trigger, combine_fn=SumCombineFn(), **options)


def old_reducer() -> Any:
    r = reducer(processing_timers_see_watermark=False)  # the default before deviation 3
    r.process_bundle(["k"], [3], [1_700_000_040 * S])
    return r


def old_checkpointed() -> Any:
    """`old_reducer`'s state, kept incrementally from the reducer's creation (as a durable job keeps it)."""
    c = H.Checkpointed(reducer(processing_timers_see_watermark=False))
    c.reducer.process_bundle(["k"], [3], [1_700_000_040 * S])
    return c


def test_a_checkpoint_from_before_deviation_3_names_the_cause_and_the_way_out() -> None:
    with pytest.raises(ValueError) as refused:
        old_checkpointed().restart(reducer)
    message = str(refused.value)
    assert "before deviation 3 of docs/semantics.md became the default" in message
    assert "AfterProcessingTime" in message and "--from_scratch" in message


def test_incremental_state_from_before_deviation_3_names_the_cause_and_the_way_out() -> None:
    backend = MemoryBackend({})
    store = CheckpointStore(backend, keep=3)
    tier = StateTier("Count", backend, SpillArea(None), 1000)
    state = ReducerState(old_reducer(), tier)
    cap = state.capture()
    ck = tier.checkpoint(1, oldest_retained(store, 3, 1), cap.header, cap.entries, cap.deletes, cap.encoded)
    store.commit(1, ck.puts(), ck.deletes(), fingerprint="f", wall_time_micros=0)
    tier.committed(ck)

    fresh_tier = StateTier("Count", backend, SpillArea(None), 1000)
    header = fresh_tier.restore(1)
    assert header is not None
    with pytest.raises(ValueError) as refused:
        ReducerState(reducer(), fresh_tier).restore(header)
    assert "deviation 3 of docs/semantics.md" in str(refused.value) and "--from_scratch" in str(refused.value)


def test_another_windowing_strategy_keeps_the_general_message() -> None:
    with pytest.raises(ValueError) as refused:
        old_checkpointed().restart(lambda: reducer(T.AfterWatermark(early=T.AfterProcessingTime(9))))
    assert "another class or windowing strategy" in str(refused.value)
    assert "deviation 3" not in str(refused.value)
