"""The reducer's fast paths against its general path, and checkpoint/restore, on random scenarios."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from millstream.engine.model.timestamp import MAX_MICROS, to_micros
from millstream.engine.runtime.windowing.fast.sessions import SessionReducer
from millstream.engine.runtime.windowing.fast.sliced import BucketReducer, SlotReducer, fast_reducer_class
from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer, create_reducer
from millstream.engine.runtime.windowing.reducer_capabilities import FiredWindowStore, SlicedContainers

import support.windowing as support_windowing


def _helpers() -> Any:
    """The shared windowing test helpers (tests/support/windowing.py)."""
    return support_windowing


H = _helpers()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_fast_path_selection() -> None:
    """Each common strategy gets its fast class; early firings, other combiners and compat mode do not."""
    from millstream.engine.model import trigger as T
    from millstream.engine.model import window as W

    eow = W.TimestampCombiner.OUTPUT_AT_EOW
    assert fast_reducer_class(W.FixedWindows(60), T.DefaultTrigger(), eow, False) is SlotReducer
    assert fast_reducer_class(W.SlidingWindows(60, 10), None, eow, False) is SlotReducer
    assert fast_reducer_class(W.SlidingWindows(7, 3), None, eow, False) is BucketReducer
    assert (
        fast_reducer_class(W.GlobalWindows(), T.AfterWatermark(late=T.AfterCount(1)), eow, False)
        is BucketReducer
    )
    assert fast_reducer_class(W.Sessions(30), T.AfterWatermark(), eow, False) is SessionReducer
    assert fast_reducer_class(W.FixedWindows(60), T.AfterWatermark(early=T.AfterCount(1)), eow, False) is None
    assert fast_reducer_class(W.FixedWindows(60), T.AfterCount(1), eow, False) is None
    earliest = W.TimestampCombiner.OUTPUT_AT_EARLIEST
    assert fast_reducer_class(W.FixedWindows(60), None, earliest, False) is None
    assert fast_reducer_class(W.FixedWindows(60), None, eow, True) is None
    assert type(create_reducer(W.FixedWindows(60))) is SlotReducer
    assert type(create_reducer(W.FixedWindows(60), beam_python_compat=True)) is Reducer


def test_each_path_declares_the_parts_of_the_state_interface_its_checkpoint_records_use() -> None:
    """The checkpoint's reducer records choose what to capture by these protocols: fired windows kept for
    late data on every fast path, containers on the slot and bucket paths, neither on the general path."""
    from millstream.engine.model import window as W

    reducers = {
        "slots": create_reducer(W.FixedWindows(60)),
        "buckets": create_reducer(W.SlidingWindows(7, 3)),
        "sessions": create_reducer(W.Sessions(30)),
        "general": create_reducer(W.FixedWindows(60), beam_python_compat=True),
    }
    parts = {
        name: (isinstance(r, FiredWindowStore), isinstance(r, SlicedContainers))
        for name, r in reducers.items()
    }
    assert parts == {
        "slots": (True, True),
        "buckets": (True, True),
        "sessions": (True, False),
        "general": (False, False),
    }


@SETTINGS
@given(H.scenarios(triggers=H.FAST_TRIGGERS, combiners=st.just("end_of_window")))
def test_fast_paths_equal_general_path(spec: dict[str, Any]) -> None:
    """Same panes (every field, step included) from the fast classes and the general reducer."""
    assert H.run(spec, reducer_factory=create_reducer) == H.run(spec, reducer_factory=Reducer)


def _run_with_restart(spec: dict[str, Any], restart_at: int, factory: Any) -> list[dict[str, Any]]:
    """Run a scenario, but after event ``restart_at`` continue on a new reducer restored from a checkpoint."""
    drv = H.driver
    kwargs = drv.reducer_kwargs(spec)
    checkpointed = H.Checkpointed(factory(**kwargs))
    reducer = checkpointed.reducer
    out = []
    now = 0
    events = spec["events"]
    for step, ev in enumerate(events):
        ((kind, arg),) = ev.items()
        if kind == "elements":
            panes = reducer.process_bundle(
                [e[0] for e in arg], [e[1] for e in arg], [to_micros(e[2]) for e in arg]
            )
        elif kind == "watermark":
            panes = reducer.advance_input_watermark(max(to_micros(arg), reducer.input_watermark))
        else:
            now += to_micros(arg)
            panes = reducer.advance_processing_time(now)
        out.extend((step, p) for p in panes)
        if step == restart_at:
            checkpointed = checkpointed.restart(lambda: factory(**kwargs))
            reducer = checkpointed.reducer
    n = len(events)
    if kwargs["trigger"].uses_processing_time():
        now += to_micros(10**6)
        out.extend((n, p) for p in reducer.advance_processing_time(now))
    out.extend((n, p) for p in reducer.advance_input_watermark(MAX_MICROS))
    return drv.canonical_result(spec, out)["panes"]


#: Found by Hypothesis: three keys' processing-time timers fire together at the end; 'a' and 'c' hold the
#: output watermark at 5 s (earliest combiner), 'b' (behind the watermark) holds nothing. Restored, the timers
#: fired in another key order, and each firing used to see the holds released by the ones before it.
PT_TIMERS_OF_SEVERAL_KEYS = {
    "window": {"type": "fixed", "size": 10, "offset": 0},
    "trigger": {"Repeatedly": {"AfterProcessingTime": 3}},
    "accumulation": "accumulating",
    "allowed_lateness": 0,
    "timestamp_combiner": "earliest",
    "aggregation": "collect",
    "events": [
        {"watermark": 5},
        {"elements": [["a", 0, 5]]},
        {"watermark": 5},
        {"watermark": 5},
        {"elements": [["a", 0, 5]]},
        {"elements": [["c", 0, 5]]},
        {"elements": [["b", 0, 4]]},
        *[{"elements": [["a", 0, 5]]}] * 5,
        {"watermark": 10},
    ],
}


@SETTINGS
@given(H.scenarios(), st.integers(0, 13), st.booleans())
@example(PT_TIMERS_OF_SEVERAL_KEYS, 6, False)
@example(PT_TIMERS_OF_SEVERAL_KEYS, 6, True)
def test_snapshot_restore_continues_identically(spec: dict[str, Any], restart_at: int, fast: bool) -> None:
    """A reducer restored from an (encoded, stored) incremental checkpoint continues exactly as the original."""
    factory = create_reducer if fast else Reducer
    restart_at = min(restart_at, len(spec["events"]) - 1)
    assert _run_with_restart(spec, restart_at, factory) == H.run(spec, reducer_factory=factory)


@pytest.mark.parametrize("fast", [False, True])
def test_a_restore_at_any_step_continues_identically_when_timers_of_several_keys_fire_together(
    fast: bool,
) -> None:
    """The law, at every step of the scenario Hypothesis found: the processing-time timers of all keys fire
    together against one output watermark, so key order (which a restore does not keep) changes nothing."""
    factory = create_reducer if fast else Reducer
    spec = PT_TIMERS_OF_SEVERAL_KEYS
    unrestarted = H.run(spec, reducer_factory=factory)
    # By the Beam model: one bundle of timer firings sees the watermarks of its start, when the holds of 'a'
    # and 'c' keep the output watermark at 5 s - 1 µs, inside [0, 10): every pane is EARLY, 'b' included.
    timings = {p["key"]: (p["timing"], p["index"], p["nonspeculative_index"], p["step"]) for p in unrestarted}
    assert timings == {k: ("EARLY", 0, -1, 13) for k in "abc"}
    for restart_at in range(len(spec["events"])):
        assert _run_with_restart(spec, restart_at, factory) == unrestarted, restart_at


def test_timers_fired_together_time_their_panes_whatever_the_key_order() -> None:
    """The scenario with the bundles of 'c' and 'b' swapped (same watermark and processing time, so the same
    panes by the model) queues their timers in the other order: the panes must not change."""
    spec = PT_TIMERS_OF_SEVERAL_KEYS
    events = list(spec["events"])
    assert events[5] == {"elements": [["c", 0, 5]]} and events[6] == {"elements": [["b", 0, 4]]}
    events[5], events[6] = events[6], events[5]
    swapped = {**spec, "events": events}
    assert H.run(swapped, reducer_factory=Reducer) == H.run(spec, reducer_factory=Reducer)


def test_restore_refuses_another_strategy() -> None:
    """A checkpoint only restores into a reducer of the same class and windowing strategy."""
    from millstream.engine.model import window as W

    try:
        H.Checkpointed(create_reducer(W.FixedWindows(60))).restart(lambda: create_reducer(W.FixedWindows(30)))
    except ValueError as e:
        assert "strategy" in str(e)
    else:
        raise AssertionError("restore accepted a checkpoint of another strategy")
