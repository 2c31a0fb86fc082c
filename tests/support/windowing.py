"""Shared helpers of the windowing tests: Hypothesis strategies for scenarios and a scenario runner.

Scenarios use the conformance format (see tests/conformance/driver.py), so the same runner and canonical
pane form serve both suites.
"""

from __future__ import annotations

from typing import Any

from conformance import driver
from hypothesis import strategies as st

KEYS = st.sampled_from(["a", "b", "c"])

WINDOWS = st.one_of(
    st.builds(
        lambda s, o: {"type": "fixed", "size": s, "offset": o}, st.sampled_from([3, 5, 10]), st.integers(0, 4)
    ),
    st.builds(
        lambda s, p: {"type": "sliding", "size": s, "period": p},
        st.sampled_from([6, 10, 7]),
        st.sampled_from([2, 3, 5]),
    ),
    st.builds(lambda g: {"type": "sessions", "gap": g}, st.sampled_from([2, 4, 7])),
    st.just({"type": "global"}),
)

NON_MERGING_WINDOWS = WINDOWS.filter(lambda w: w["type"] != "sessions")

FAST_TRIGGERS = st.sampled_from(
    [
        "Default",
        "AfterWatermark",
        {"AfterWatermark": {"late": {"AfterCount": 1}}},
        {"AfterWatermark": {"late": {"AfterCount": 2}}},
        {"AfterWatermark": {"late": {"AfterProcessingTime": 2}}},
    ]
)

ANY_TRIGGERS = st.one_of(
    FAST_TRIGGERS,
    st.sampled_from(
        [
            {"Repeatedly": {"AfterCount": 2}},
            {"AfterCount": 3},
            {"AfterWatermark": {"early": {"AfterCount": 2}, "late": {"AfterCount": 1}}},
            {"AfterAny": [{"AfterCount": 2}, "AfterWatermark"]},
            {"AfterAll": [{"AfterCount": 2}, "AfterWatermark"]},
            {"AfterEach": [{"AfterCount": 2}, "AfterWatermark", {"AfterCount": 1}]},
            {"OrFinally": [{"Repeatedly": {"AfterCount": 1}}, {"AfterCount": 4}]},
            "Always",
            "Never",
            {"Repeatedly": {"AfterProcessingTime": 3}},
        ]
    ),
)


@st.composite
def element(draw: Any, around: int) -> list[Any]:
    """One [key, value, timestamp] near ``around``."""
    return [draw(KEYS), draw(st.integers(0, 9)), max(0, around + draw(st.integers(-12, 15)))]


@st.composite
def events(draw: Any, late: bool = True, processing_time: bool = True) -> list[dict[str, Any]]:
    """A stream of bundles, watermark advances and processing-time advances."""
    out: list[dict[str, Any]] = []
    wm = 0
    kinds = ["elements", "elements", "elements", "watermark"] + (
        ["processing_time"] if processing_time else []
    )
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(kinds))
        if kind == "elements":
            base = wm if late else wm + 15
            out.append({"elements": draw(st.lists(element(base), min_size=1, max_size=5))})
        elif kind == "watermark":
            wm += draw(st.sampled_from([0, 1, 3, 5, 10]))
            out.append({"watermark": wm})
        else:
            out.append({"processing_time": draw(st.integers(0, 4))})
    return out


@st.composite
def scenarios(
    draw: Any,
    windows: Any = WINDOWS,
    triggers: Any = ANY_TRIGGERS,
    combiners: Any = st.sampled_from(["end_of_window", "earliest", "latest"]),
    late: bool = True,
) -> dict[str, Any]:
    """A complete scenario in the conformance format."""
    return {
        "window": draw(windows),
        "trigger": draw(triggers),
        "accumulation": draw(st.sampled_from(["accumulating", "discarding"])),
        "allowed_lateness": draw(st.sampled_from([0, 0, 2, 5, 30])),
        "timestamp_combiner": draw(combiners),
        "aggregation": draw(st.sampled_from(["collect", "sum"])),
        "events": draw(events(late=late)),
    }


def run(spec: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
    """Canonical panes of a scenario on a reducer built by ``options`` (see driver.run_scenario)."""
    return driver.canonical_result(spec, driver.run_scenario(spec, **options))["panes"]


class Checkpointed:
    """A reducer whose state is kept incrementally from its creation, as a durable job's `ReducerNode` keeps
    it (`checkpoint.reducer_records`), over a real checkpoint store."""

    def __init__(self, reducer: Any, backend: Any = None) -> None:
        from millstream.engine.runtime.checkpoint.reducer_records import ReducerState
        from millstream.engine.runtime.checkpoint.versioned_store import SpillArea, StateTier
        from millstream.state import MemoryBackend

        self.reducer = reducer
        self.backend = backend if backend is not None else MemoryBackend({})
        self.tier = StateTier("op", self.backend, SpillArea(None), 0)
        self.state = ReducerState(reducer, self.tier)

    def restart(self, factory: Any) -> Checkpointed:
        """Take a checkpoint as the Checkpointer does (header and changed entries, encoded, one committed
        batch), then restore it into a fresh reducer `factory()` through a new tier over the same store."""
        from millstream.engine.runtime.checkpoint.versioned_store import oldest_retained
        from millstream.state import CheckpointStore

        store = CheckpointStore(self.backend, keep=3)
        latest = store.latest()
        cid = 1 if latest is None else latest.checkpoint_id + 1
        cap = self.state.capture()
        ck = self.tier.checkpoint(
            cid, oldest_retained(store, 3, cid), cap.header, cap.entries, cap.deletes, cap.encoded
        )
        store.commit(cid, ck.puts(), ck.deletes(), fingerprint="f", wall_time_micros=0)
        self.tier.committed(ck)
        fresh = Checkpointed(factory(), self.backend)
        header = fresh.tier.restore(cid)
        assert header is not None
        fresh.state.restore(header)
        return fresh
