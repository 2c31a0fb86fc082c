"""Algebraic laws of the windowed reducer, checked with Hypothesis on random input."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from millstream.engine.model import trigger as T
from millstream.engine.model import window as W
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.windowing.combine_fns import ListCombineFn
from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer, create_reducer

import support.windowing as support_windowing


def _helpers() -> Any:
    """The shared windowing test helpers (tests/support/windowing.py)."""
    return support_windowing


H = _helpers()
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ELEMENTS = st.lists(
    st.tuples(H.KEYS, st.integers(0, 99), st.integers(0, 200_000_000)), min_size=1, max_size=60
)


def _final_panes(
    window_fn: Any, elements: list[tuple[str, int, int]], splits: list[int], fast: bool
) -> Counter[Any]:
    """Feed elements in bundles cut at ``splits``, watermark only at the end; (key, window, sorted values)."""
    factory = create_reducer if fast else Reducer
    r = factory(window_fn, T.DefaultTrigger(), T.AccumulationMode.ACCUMULATING, 0, combine_fn=ListCombineFn())
    cuts = sorted({0, len(elements), *(s % (len(elements) + 1) for s in splits)})
    panes = []
    for a, b in zip(cuts, cuts[1:]):
        part = elements[a:b]
        panes += r.process_bundle([e[0] for e in part], [e[1] for e in part], [e[2] for e in part])
    panes += r.advance_input_watermark(MAX_MICROS)
    for _, _, _, _, info in panes:
        assert info.timing == W.PaneInfoTiming.ON_TIME and info.index == 0
    return Counter((k, w.bounds(), tuple(sorted(v))) for k, w, v, _, _ in panes)


WINDOW_FNS = st.sampled_from(
    [
        W.FixedWindows(10),
        W.FixedWindows(7, 3),
        W.SlidingWindows(10, 5),
        W.SlidingWindows(7, 3),
        W.GlobalWindows(),
        W.Sessions(5),
    ]
)


@SETTINGS
@given(
    WINDOW_FNS,
    ELEMENTS,
    st.randoms(use_true_random=False),
    st.lists(st.integers(0, 100), max_size=6),
    st.booleans(),
)
def test_final_result_independent_of_order_and_bundling(
    window_fn: Any, elements: list[tuple[str, int, int]], rnd: Any, splits: list[int], fast: bool
) -> None:
    """Default trigger, no late data: the panes are the same whatever the element order and bundle cuts."""
    reference = _final_panes(window_fn, elements, [], fast)
    shuffled = list(elements)
    rnd.shuffle(shuffled)
    assert _final_panes(window_fn, shuffled, splits, fast) == reference
    # every element is in exactly the windows its window fn assigns (merged, for sessions)
    assert sum(len(v) * n for (_, _, v), n in reference.items()) == sum(
        len(window_fn.assign_micros(t)) for _, _, t in elements
    ) or isinstance(window_fn, W.Sessions)


@SETTINGS
@given(H.scenarios(windows=H.NON_MERGING_WINDOWS), st.booleans())
def test_discarding_panes_add_up_to_the_accumulating_panes(spec: dict[str, Any], fast: bool) -> None:
    """Per (key, window): the union of the discarding panes equals the last accumulating pane."""
    spec = dict(spec, aggregation="collect")
    factory = create_reducer if fast else Reducer
    acc = H.run(dict(spec, accumulation="accumulating"), reducer_factory=factory)
    disc = H.run(dict(spec, accumulation="discarding"), reducer_factory=factory)
    last: dict[Any, Counter[Any]] = {}
    for p in sorted(acc, key=lambda p: p["index"]):
        last[(p["key"], str(p["window"]))] = Counter(p["values"])
    total: dict[Any, Counter[Any]] = {}
    for p in disc:
        total.setdefault((p["key"], str(p["window"])), Counter()).update(p["values"])
    assert {k: v for k, v in total.items() if v} == {k: v for k, v in last.items() if v}
    # the same panes fire in both modes (triggers do not depend on the mode)
    assert sorted((p["key"], str(p["window"]), p["index"], p["step"]) for p in acc) == sorted(
        (p["key"], str(p["window"]), p["index"], p["step"]) for p in disc
    )


@SETTINGS
@given(ELEMENTS, st.randoms(use_true_random=False), st.lists(st.integers(0, 100), max_size=6))
def test_session_merging_is_order_independent(
    elements: list[tuple[str, int, int]], rnd: Any, splits: list[int]
) -> None:
    """Sessions of a key are the same whatever order and bundling the elements come in."""
    gap = 30_000_000
    reference = _final_panes(W.Sessions(30), elements, [], False)
    shuffled = list(elements)
    rnd.shuffle(shuffled)
    assert _final_panes(W.Sessions(30), shuffled, splits, False) == reference
    assert _final_panes(W.Sessions(30), shuffled, splits, True) == reference
    # sessions of one key are disjoint, and each spans its first element to its last + gap
    by_key: dict[str, list[tuple[int, int]]] = {}
    for k, bounds, _ in reference:
        by_key.setdefault(k, []).append(bounds)
    for k, ws in by_key.items():
        ws.sort()
        assert all(a[1] <= b[0] for a, b in zip(ws, ws[1:]))
        for s, e in ws:
            inside = [t for kk, _, t in elements if kk == k and s <= t < e]
            assert min(inside) == s and max(inside) + gap == e


@SETTINGS
@given(H.scenarios(), st.booleans())
def test_state_after_expiry_is_bounded_by_open_windows(spec: dict[str, Any], fast: bool) -> None:
    """After every event, only windows with end + allowed lateness >= watermark hold state."""
    drv = H.driver
    kwargs = drv.reducer_kwargs(spec)
    r = (create_reducer if fast else Reducer)(**kwargs)
    lateness = kwargs["allowed_lateness_us"]
    now = 0
    for ev in spec["events"]:
        ((kind, arg),) = ev.items()
        if kind == "elements":
            r.process_bundle([e[0] for e in arg], [e[1] for e in arg], [e[2] * 1_000_000 for e in arg])
        elif kind == "watermark":
            r.advance_input_watermark(max(arg * 1_000_000, r.input_watermark))
        else:
            now += arg * 1_000_000
            r.advance_processing_time(now)
        wm = r.input_watermark
        assert all(min(end + lateness, MAX_MICROS - 1) >= wm for _, end in r.open_windows())
        fired = getattr(r, "_fired", {})
        assert all(min(w[1] + lateness, MAX_MICROS - 1) >= wm for w in fired)
    r.advance_input_watermark(MAX_MICROS)
    assert r.state_size() == 0
    assert not r._keys
    assert getattr(r, "fast_state_size", lambda: 0)() == 0
    assert not getattr(r, "_fired", {}) and not getattr(r, "_fired_sessions", {})
    assert r.output_watermark() == MAX_MICROS


@SETTINGS
@given(H.scenarios(late=True))
def test_every_element_is_emitted_or_dropped(spec: dict[str, Any]) -> None:
    """Nothing is silently lost: each (element, window) ends in a pane or in the dropped counters."""
    spec = dict(spec, aggregation="collect", accumulation="discarding")
    if spec["window"]["type"] == "sessions":
        spec["window"] = {"type": "fixed", "size": 5, "offset": 0}
    drv = H.driver
    kwargs = drv.reducer_kwargs(spec)
    r = Reducer(**kwargs)
    emitted = 0
    assigned = 0
    now = 0
    for ev in spec["events"]:
        ((kind, arg),) = ev.items()
        if kind == "elements":
            assigned += sum(len(kwargs["window_fn"].assign_micros(e[2] * 1_000_000)) for e in arg)
            panes = r.process_bundle(
                [e[0] for e in arg], [e[1] for e in arg], [e[2] * 1_000_000 for e in arg]
            )
        elif kind == "watermark":
            panes = r.advance_input_watermark(max(arg * 1_000_000, r.input_watermark))
        else:
            now += arg * 1_000_000
            panes = r.advance_processing_time(now)
        emitted += sum(len(p[2]) for p in panes)
    if kwargs["trigger"].uses_processing_time():
        emitted += sum(len(p[2]) for p in r.advance_processing_time(now + 10**12))
    emitted += sum(len(p[2]) for p in r.advance_input_watermark(MAX_MICROS))
    assert emitted + r.dropped_late + r.dropped_closed == assigned
