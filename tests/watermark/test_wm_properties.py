"""Hypothesis properties: every propagated watermark is monotonic and matches a brute-force model."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.watermarks import (
    InputWatermarks,
    SplitWatermarks,
    WatermarkHolds,
    WatermarkRegressionError,
)

SPLITS = ["s0", "s1", "s2", "s3"]
split_ix = st.integers(min_value=0, max_value=len(SPLITS) - 1)
ts = st.integers(min_value=0, max_value=10_000)
op = st.one_of(
    st.tuples(st.just("observe"), split_ix, ts),
    st.tuples(st.just("batch"), split_ix, st.lists(ts, max_size=5)),
    st.tuples(st.just("tick"), st.integers(min_value=0, max_value=40)),
    st.tuples(st.just("add"), split_ix),
    st.tuples(st.just("remove"), split_ix),
    st.tuples(st.just("finish"), split_ix),
    st.tuples(st.just("idle"), split_ix),
)


@dataclass
class ModelSplit:
    """The test's own record of a split."""

    max_seen: int
    last_active: int
    marked: bool = False
    finished: bool = False


def model_state(
    splits: dict[str, ModelSplit], now: int, delay: int, timeout: int | None
) -> tuple[int | None, list[int]]:
    """Brute force: (raw source watermark, estimates of the active splits)."""

    def est(s: ModelSplit) -> int:
        return max(MIN_MICROS, s.max_seen - delay)

    unfinished = [s for s in splits.values() if not s.finished]
    idle = [s for s in unfinished if s.marked or (timeout is not None and now - s.last_active >= timeout)]
    active = [est(s) for s in unfinished if not any(s is i for i in idle)]
    if active:
        return min(active), active
    if idle:
        return max(est(s) for s in idle), active
    return (MAX_MICROS if splits else None), active


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(op, max_size=60),
    delay=st.integers(min_value=0, max_value=50),
    timeout=st.one_of(st.none(), st.integers(min_value=0, max_value=100)),
)
def test_split_watermark_monotonic_and_bounded(ops: list[tuple], delay: int, timeout: int | None) -> None:
    wm = SplitWatermarks.bounded_out_of_orderness(delay, idle_timeout_us=timeout)
    model: dict[str, ModelSplit] = {}
    now = 0
    prev = wm.current(now)
    assert prev == MIN_MICROS
    for kind, *args in ops:
        if kind == "tick":
            now += args[0]
        else:
            sid = SPLITS[args[0]]
            present = sid in model
            if kind == "add" and not present:
                wm.add_split(sid, now)
                model[sid] = ModelSplit(MIN_MICROS, now)
            elif kind == "remove" and present:
                wm.remove_split(sid)
                del model[sid]
            elif kind == "finish" and present:
                wm.finish_split(sid)
                model[sid].finished = True
            elif kind == "idle" and present:
                wm.mark_idle(sid)
                model[sid].marked = True
            elif kind in ("observe", "batch") and present and not model[sid].finished:
                batch = [args[1]] if kind == "observe" else args[1]
                if kind == "observe":
                    wm.observe(sid, args[1], now)
                else:
                    wm.observe_batch(sid, batch, now)
                if batch:
                    m = model[sid]
                    m.max_seen = max(m.max_seen, *batch)
                    m.last_active = now
                    m.marked = False
        out = wm.current(now)
        raw, active = model_state(model, now, delay, timeout)
        # Monotonic, and exactly the running max of the raw combination.
        assert out >= prev
        assert out == (prev if raw is None else max(prev, raw))
        # Never ahead of what the active (non-idle, unfinished) splits justify, beyond the held value.
        if active:
            assert out <= max(prev, min(active))
        assert wm.idle == (not active and any(not s.finished for s in model.values()))
        prev = out


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(st.tuples(split_ix, st.one_of(st.none(), st.lists(ts, max_size=4))), max_size=40),
    delay=st.integers(min_value=0, max_value=50),
)
def test_fixed_splits_without_idleness_equal_min_of_max_seen_minus_delay(
    ops: list[tuple[int, list[int] | None]], delay: int
) -> None:
    """With no rebalance and no idleness nothing can regress: the output IS the min of the estimates."""
    wm = SplitWatermarks.bounded_out_of_orderness(delay)
    max_seen = {sid: MIN_MICROS for sid in SPLITS}
    finished: set[str] = set()
    for sid in SPLITS:
        wm.add_split(sid, 0)
    for ix, batch in ops:
        sid = SPLITS[ix]
        if sid in finished:
            continue
        if batch is None:
            wm.finish_split(sid)
            finished.add(sid)
        else:
            wm.observe_batch(sid, batch, 0)
            max_seen[sid] = max([max_seen[sid], *batch])
        open_estimates = [max(MIN_MICROS, max_seen[s] - delay) for s in SPLITS if s not in finished]
        assert wm.current(0) == (min(open_estimates) if open_estimates else MAX_MICROS)


INPUTS = ["a", "b", "c"]


@settings(max_examples=200, deadline=None)
@given(
    reports=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2),
            st.integers(min_value=-5, max_value=30),
            st.booleans(),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_input_watermarks_monotonic_min_and_regressions_rejected(
    reports: list[tuple[int, int, bool, bool]],
) -> None:
    inputs = InputWatermarks(INPUTS)
    last = dict.fromkeys(INPUTS, MIN_MICROS)
    idle = dict.fromkeys(INPUTS, False)
    prev = inputs.current()
    for ix, step, is_idle, finish in reports:
        iid = INPUTS[ix]
        target = MAX_MICROS if finish else (last[iid] if last[iid] > MIN_MICROS else 0) + step
        if target < last[iid]:
            try:
                inputs.update(iid, target, idle=is_idle)
            except WatermarkRegressionError:
                pass
            else:
                raise AssertionError("a regression was accepted")
            assert inputs.current() == prev
            continue
        out = inputs.update(iid, target, idle=is_idle)
        last[iid], idle[iid] = target, is_idle
        live = [i for i in INPUTS if last[i] < MAX_MICROS]
        holding = [last[i] for i in live if not idle[i]]
        if holding:
            raw = min(holding)
        elif live:
            raw = max(last[i] for i in live)
        else:
            raw = MAX_MICROS
        assert out >= prev
        assert out == max(prev, raw)
        assert inputs.idle == (not holding and bool(live))
        prev = out


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(min_value=0, max_value=5), ts),
            st.tuples(st.just("remove"), st.integers(min_value=0, max_value=5)),
            st.tuples(st.just("input"), st.integers(min_value=0, max_value=500)),
        ),
        max_size=60,
    )
)
def test_holds_output_is_running_max_of_min_input_and_holds(ops: list[tuple]) -> None:
    holds = WatermarkHolds()
    model: dict[int, int] = {}
    input_wm = MIN_MICROS
    prev = holds.output()
    for kind, *args in ops:
        if kind == "add":
            holds.add(args[0], args[1])
            model[args[0]] = args[1]
        elif kind == "remove":
            assert holds.remove(args[0]) == (model.pop(args[0], None) is not None)
        else:
            input_wm = max(input_wm, input_wm + args[0] if input_wm > MIN_MICROS else args[0])
            holds.set_input(input_wm)
        raw = min([input_wm, *model.values()])
        assert holds.held_output() == raw
        assert holds.earliest() == min(model.values(), default=MAX_MICROS)
        out = holds.output()
        assert out == max(prev, raw)
        prev = out
