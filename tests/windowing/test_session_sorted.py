"""The sessions fast path keeps each key's open sessions sorted and disjoint, so an element finds the
sessions it touches by bisection; out-of-order data that inserts, extends and bridges sessions anywhere in
the list must give the panes of the general path (Beam's merging)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from millstream.engine.model import window as W
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.windowing.fast.sessions import SessionReducer
from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer, create_reducer

GAP_S = 20


def _events(seed: int) -> list[tuple[str, int, int]]:
    """Bursts of a few keys far apart in time (many open sessions per key), shuffled within a wide band."""
    rng = random.Random(seed)
    events = []
    for i in range(600):
        key = rng.choice("abc")
        t = rng.randrange(0, 40) * 37 + rng.randrange(0, 15)  # ~40 clusters per key, gaps of ~22 s or more
        events.append((key, i, t * 1_000_000))
    rng.shuffle(events)
    return events


def _panes(reducer: Any, events: list[tuple[str, int, int]], check: bool) -> list[tuple[Any, ...]]:
    out = []
    for lo in range(0, len(events), 7):
        bundle = events[lo : lo + 7]
        out += reducer.process_bundle([e[0] for e in bundle], [e[1] for e in bundle], [e[2] for e in bundle])
        if check:
            for ss in reducer._open_sessions.values():
                bounds = [(s[0], s[1]) for s in ss]
                assert bounds == sorted(bounds), bounds
                assert all(a[1] <= b[0] for a, b in zip(bounds, bounds[1:])), f"overlapping: {bounds}"
    out += reducer.advance_input_watermark(MAX_MICROS)
    return sorted((p.key, p.window.start.micros, p.window.end.micros, sorted(p.value)) for p in out)


@pytest.mark.parametrize("seed", range(8))
def test_sorted_sessions_equal_general_path(seed: int) -> None:
    events = _events(seed)
    fast = create_reducer(W.Sessions(GAP_S))
    assert type(fast) is SessionReducer
    got = _panes(fast, events, check=True)
    assert got == _panes(Reducer(W.Sessions(GAP_S)), events, check=False)
    assert len(got) > 60  # many sessions per key, so inserts and bridges happen inside the lists


def test_restore_sorts_sessions_written_unsorted() -> None:
    """Records from before sessions were kept sorted may list them in arrival order."""
    fast = create_reducer(W.Sessions(GAP_S))
    fast.process_bundle(["a", "a", "a"], [1, 2, 3], [200_000_000, 100_000_000, 0])
    record = fast.key_record("a")
    assert record is not None and record[1] is not None
    record[1].sort(key=lambda r: -r[0])  # newest first: not sorted
    again = create_reducer(W.Sessions(GAP_S))
    again.load_state_header(fast.state_header())
    again.restore_key("a", record, True)
    again.finish_restore()
    assert [s[0] for s in again._open_sessions["a"]] == [0, 100_000_000, 200_000_000]
    panes = again.process_bundle(["a"], [4], [110_000_000]) + again.advance_input_watermark(MAX_MICROS)
    assert sorted((p.window.start.micros, sorted(p.value)) for p in panes) == [
        (0, [3]),
        (100_000_000, [2, 4]),
        (200_000_000, [1]),
    ]
