"""The stateful ParDo operator driven directly: window expiry, timer bookkeeping, checkpoint snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from millstream.engine.model.core import ParDo
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.model.window import FixedWindows, GlobalWindows, Sessions
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode
from millstream.state import MsgpackCodec
from millstream.transforms.timeutil import TimeDomain
from millstream.transforms.userstate import (
    BagStateSpec,
    CombiningValueStateSpec,
    OrderedListStateSpec,
    ReadModifyWriteStateSpec,
    SetStateSpec,
    TimerSpec,
    on_timer,
)

from support.stateful_node import S, batch, make

# -- window expiry ---------------------------------------------------------------------------------------


class Expiring(DoFn):
    BUFFER = BagStateSpec("buffer", None)
    LATE = TimerSpec("late", TimeDomain.WATERMARK)
    PING = TimerSpec("ping", TimeDomain.REAL_TIME)

    def process(
        self,
        element: Any,
        w: Any = DoFn.WindowParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        late: Any = DoFn.TimerParam(LATE),
        ping: Any = DoFn.TimerParam(PING),
    ) -> Any:
        buffer.add(element[1])
        late.set(w.end + 100)  # beyond the window's expiry: fires when the window is collected
        ping.set(1000)
        return []

    @on_timer(LATE)
    def on_late(self, buffer: Any = DoFn.StateParam(BUFFER), ts: Any = DoFn.TimestampParam) -> Any:
        yield ("late", list(buffer.read()), ts.micros)

    @on_timer(PING)
    def on_ping(self) -> Any:
        yield "ping"


def test_state_and_timers_are_collected_when_window_expires() -> None:
    node, sink = make(Expiring(), Windowing(FixedWindows(10), allowed_lateness=5))
    node.process(batch(("a", 1, 1), ("a", 2, 2), ("b", 3, 11)))
    assert len(node.key_windows) == 2 and node.next_timer() == 1000 * S
    node.watermark(0, 12 * S)  # [0, 10) is late but within allowed lateness
    node.process(batch(("a", 4, 3)))
    assert sink.out == []
    assert len(node.key_windows) == 2
    node.watermark(0, 16 * S)  # passes 10 + 5: [0, 10) expires for key a
    # the timer set beyond the expiry fires at collection; the processing-time timer is dropped
    assert sink.out == [(("late", [1, 2, 4], 110 * S), 110 * S)]
    assert list(node.key_windows) == [("b", 10 * S, 20 * S)]
    assert node.n_timers == 2  # b's two timers
    node.process(batch(("a", 5, 4)))  # too late: dropped, counted, no state created
    assert node.dropped_late == 1 and len(node.key_windows) == 1
    node.watermark(0, MAX_MICROS)  # end of input: b's window expires, its processing-time timer fires too
    assert [v for v, _ in sink.out[1:]] == [("late", [3], 120 * S), "ping"]
    assert node.key_windows == {} and node.n_timers == 0 and node.next_timer() is None
    assert sink.wms[-1] == MAX_MICROS


def test_global_window_state_lives_until_end_of_input() -> None:
    class Count(DoFn):
        N = CombiningValueStateSpec("n", sum)
        END = TimerSpec("end", TimeDomain.WATERMARK)

        def process(
            self,
            element: Any,
            n: Any = DoFn.StateParam(N),
            end: Any = DoFn.TimerParam(END),
            w: Any = DoFn.WindowParam,
        ) -> Any:
            n.add(1)
            end.set(w.max_timestamp())
            return []

        @on_timer(END)
        def emit(self, key: Any = DoFn.KeyParam, n: Any = DoFn.StateParam(N)) -> Any:
            yield key, n.read()

    node, sink = make(Count(), Windowing(GlobalWindows()))
    node.process(batch(("a", 0, 1), ("a", 0, 2)))
    node.watermark(0, 10**6 * S)
    node.process(batch(("a", 0, 10**6 + 1)))
    assert sink.out == [] and node.dropped_late == 0
    node.watermark(0, MAX_MICROS)
    assert [v for v, _ in sink.out] == [("a", 3)]


def test_output_watermark_is_held_by_processing_time_timers_and_monotonic() -> None:
    node, sink = make(Expiring(), Windowing(GlobalWindows()))
    calls: list[int] = []
    node.timer_changed = lambda: calls.append(1)
    node.process(batch(("a", 1, 5)))
    assert calls == [1]  # the first processing-time timer: the executor must wake up
    node.process(batch(("a", 2, 6)))
    assert calls == [1]  # set again at the same time: not earlier
    node.watermark(0, 50 * S)
    assert sink.wms == [6 * S]  # held at the output timestamp of the (reset) processing-time timer
    node.advance_processing_time(999 * S)
    assert sink.out == []
    node.advance_processing_time(1000 * S)
    assert sink.out == [("ping", 6 * S)]  # output at the timestamp of the element that last set it
    assert sink.wms == [6 * S, 50 * S]


def test_timer_heaps_stay_bounded_when_timers_are_reset_often() -> None:
    class Gap(DoFn):
        T = TimerSpec("gap", TimeDomain.WATERMARK)

        def process(self, element: Any, ts: Any = DoFn.TimestampParam, t: Any = DoFn.TimerParam(T)) -> Any:
            t.set(ts + 10)
            return []

        @on_timer(T)
        def fire(self, key: Any = DoFn.KeyParam, ts: Any = DoFn.TimestampParam) -> Any:
            yield key, ts.micros // S

    node, sink = make(Gap(), Windowing(GlobalWindows()))
    for i in range(5000):
        node.process(batch(("a", 0, i), ("b", 0, i)))
    assert len(node.event_heap) < 2 * 1024 + 16
    node.watermark(0, MAX_MICROS)
    assert sorted(v for v, _ in sink.out) == [("a", 5009), ("b", 5009)]


def test_merging_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="Stateful.*merging windows"):
        StatefulParDoNode("Stateful", ParDo(Expiring()), Windowing(Sessions(10)), [])


def test_on_timer_parameters_are_checked() -> None:
    class Bad(DoFn):
        T = TimerSpec("t", TimeDomain.WATERMARK)

        def process(self, element: Any, t: Any = DoFn.TimerParam(T)) -> Any:
            return []

        @on_timer(T)
        def fire(self, element: Any = DoFn.ElementParam) -> Any:
            return []

    with pytest.raises(ValueError, match="ElementParam.*on_timer"):
        StatefulParDoNode("Stateful", ParDo(Bad()), Windowing(GlobalWindows()), [])


def test_state_param_needs_a_state_spec() -> None:
    class Bad(DoFn):
        def process(self, element: Any, s: Any = DoFn.StateParam("not a spec")) -> Any:
            return []

    with pytest.raises(TypeError, match="StateParam for argument .s. of Bad.process needs a StateSpec"):
        StatefulParDoNode("Stateful", ParDo(Bad()), Windowing(GlobalWindows()), [])


# -- checkpoints -----------------------------------------------------------------------------------------


class Everything(DoFn):
    """Every kind of state and both kinds of timer."""

    BAG = BagStateSpec("bag", None)
    SET = SetStateSpec("set", None)
    VALUE = ReadModifyWriteStateSpec("value", None)
    TOTAL = CombiningValueStateSpec("total", None, sum)
    ORDERED = OrderedListStateSpec("ordered", None)
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)
    PING = TimerSpec("ping", TimeDomain.REAL_TIME)

    def process(
        self,
        element: Any,
        ts: Any = DoFn.TimestampParam,
        w: Any = DoFn.WindowParam,
        bag: Any = DoFn.StateParam(BAG),
        seen: Any = DoFn.StateParam(SET),
        value: Any = DoFn.StateParam(VALUE),
        total: Any = DoFn.StateParam(TOTAL),
        ordered: Any = DoFn.StateParam(ORDERED),
        flush: Any = DoFn.TimerParam(FLUSH),
        ping: Any = DoFn.TimerParam(PING),
    ) -> Any:
        v = element[1]
        bag.add(v)
        seen.add(v % 3)
        value.write((v, "last"))
        total.add(v)
        ordered.add((ts, v))
        flush.set(w.max_timestamp())
        ping.set(50)
        yield "in", element[0], v

    @on_timer(FLUSH)
    def on_flush(
        self,
        key: Any = DoFn.KeyParam,
        w: Any = DoFn.WindowParam,
        bag: Any = DoFn.StateParam(BAG),
        seen: Any = DoFn.StateParam(SET),
        value: Any = DoFn.StateParam(VALUE),
        total: Any = DoFn.StateParam(TOTAL),
        ordered: Any = DoFn.StateParam(ORDERED),
    ) -> Any:
        yield (
            "flush",
            key,
            w.start.micros,
            list(bag.read()),
            sorted(seen.read()),
            value.read(),
            total.read(),
            [v for _, v in ordered.read()],
        )

    @on_timer(PING)
    def on_ping(self, key: Any = DoFn.KeyParam, total: Any = DoFn.StateParam(TOTAL)) -> Any:
        yield "ping", key, total.read()


def _first_half(node: StatefulParDoNode) -> None:
    node.process(batch(("a", 7, 1), ("b", 1, 2), ("a", 5, 12), ("a", 3, 0.5)))
    node.watermark(0, 5 * S)


def _second_half(node: StatefulParDoNode) -> None:
    node.process(batch(("a", 4, 8), ("b", 9, 14)))
    node.watermark(0, 15 * S)
    node.advance_processing_time(60 * S)
    node.process(batch(("a", 2, 16)))
    node.watermark(0, MAX_MICROS)


def test_snapshot_restore_round_trip_continues_like_an_uninterrupted_run() -> None:
    windowing = Windowing(FixedWindows(10))
    reference, ref_sink = make(Everything(), windowing)
    _first_half(reference)
    mark = len(ref_sink.out)
    _second_half(reference)

    before, before_sink = make(Everything(), windowing)
    _first_half(before)
    assert before.state_dirty()
    codec = MsgpackCodec(allow_pickle=False)  # plain data: no pickling needed for plain values
    encoded = codec.encode(before.snapshot_state())
    assert not before.state_dirty()
    assert before_sink.out == ref_sink.out[:mark]

    after, after_sink = make(Everything(), windowing)
    after.restore_state(codec.decode(encoded))
    assert after.next_timer() == 50 * S  # the processing-time timers came back
    after.watermark(0, 5 * S)  # the rewound source reports its watermark again
    _second_half(after)
    assert after_sink.out == ref_sink.out[mark:]
    flushes = [v for v, _ in after_sink.out if v[0] == "flush"]
    assert ("flush", "a", 0, [7, 3, 4], [0, 1], (4, "last"), 14, [3, 7, 4]) in flushes
    assert after.state_layout() == reference.state_layout()


def test_state_layout_names_every_cell_and_timer() -> None:
    node, _ = make(Everything(), Windowing(FixedWindows(10)))
    layout = node.state_layout()
    assert layout["kind"] == "userstate" and layout["fn"] == "Everything"
    assert layout["state"] == [
        ["bag", "bag"],
        ["ordered", "ordered_list"],
        ["set", "set"],
        ["total", "combining"],
        ["value", "value"],
    ]
    assert layout["timers"] == [["ts-flush", "WATERMARK"], ["ts-ping", "REAL_TIME"]]
