"""Beam's state and timers API on the real runtime: the programming guide's examples, batch and TestStream."""

from __future__ import annotations

from typing import Any

import pytest

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions, StandardOptions
from millstream.testing.test_stream import TestStream
from millstream.testing.util import assert_that, equal_to
from millstream.transforms import trigger, window
from millstream.transforms.combiners import CountCombineFn
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

DoFn = beam.DoFn


def streaming() -> PipelineOptions:
    opts = PipelineOptions()
    opts.view_as(StandardOptions).streaming = True
    return opts


def tv(value: Any, seconds: float) -> window.TimestampedValue:
    return window.TimestampedValue(value, seconds)


# -- ReadModifyWriteState: the per-key counter ---------------------------------------------------------


class CountSoFar(DoFn):
    """The guide's ReadModifyWriteState example, emitting the running count of each key."""

    COUNT = ReadModifyWriteStateSpec("num_elements", None)

    def process(self, element: Any, state: Any = DoFn.StateParam(COUNT)) -> Any:
        current = state.read() or 0
        state.write(current + 1)
        yield element[0], current + 1


def test_read_modify_write_counter_per_key() -> None:
    seen: list[Any] = []
    with beam.Pipeline() as p:
        out = p | beam.Create([("a", 1), ("b", 2), ("a", 3), ("a", 4), ("b", 5)]) | beam.ParDo(CountSoFar())
        out | beam.Map(seen.append)
        assert_that(out, equal_to([("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]))
    # each key counts in its own cell, in input order
    assert [c for k, c in seen if k == "a"] == [1, 2, 3]
    assert [c for k, c in seen if k == "b"] == [1, 2]


# -- BagState + event-time timer: buffer until the window closes ----------------------------------------


class BufferUntilWindowEnd(DoFn):
    """Buffer values per key and window in a bag; flush them (sorted) when the window's timer fires."""

    BUFFER = BagStateSpec("buffer", None)
    FLUSH = TimerSpec("flush", TimeDomain.WATERMARK)

    def process(
        self,
        element: Any,
        w: Any = DoFn.WindowParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        flush: Any = DoFn.TimerParam(FLUSH),
    ) -> Any:
        buffer.add(element[1])
        flush.set(w.max_timestamp())
        return []

    @on_timer(FLUSH)
    def on_flush(
        self,
        key: Any = DoFn.KeyParam,
        ts: Any = DoFn.TimestampParam,
        w: Any = DoFn.WindowParam,
        buffer: Any = DoFn.StateParam(BUFFER),
    ) -> Any:
        yield key, sorted(buffer.read()), ts, w
        buffer.clear()


def test_bag_flushed_by_event_time_timer_when_watermark_passes_window() -> None:
    stream = (
        TestStream()
        .add_elements([tv(("a", 3), 1), tv(("a", 1), 2), tv(("b", 7), 4)])
        .add_elements([tv(("a", 9), 12)])
        .advance_watermark_to(10)
        .add_elements([tv(("a", 5), 15)])
        .advance_watermark_to(30)
    )
    fired: list[Any] = []
    with beam.Pipeline(options=streaming()) as p:
        (
            p
            | stream
            | beam.WindowInto(window.FixedWindows(10))
            | beam.ParDo(BufferUntilWindowEnd())
            | beam.Map(lambda out: fired.append((stream.event_index, out)))
        )
    w0, w1 = window.IntervalWindow(0, 10), window.IntervalWindow(10, 20)
    # nothing is emitted before the watermark passes the window; the output carries the timer's timestamp
    assert sorted(fired, key=repr) == sorted(
        [
            (2, ("a", [1, 3], window.Timestamp(micros=9_999_999), w0)),
            (2, ("b", [7], window.Timestamp(micros=9_999_999), w0)),
            (4, ("a", [5, 9], window.Timestamp(micros=19_999_999), w1)),
        ],
        key=repr,
    )


class BatchOfN(DoFn):
    """Buffer N values per key, then flush; a timer at the end of the window flushes the remainder."""

    N = 3
    BUFFER = BagStateSpec("buffer", None)
    COUNT = CombiningValueStateSpec("count", None, CountCombineFn())
    END = TimerSpec("end", TimeDomain.WATERMARK)

    def process(
        self,
        element: Any,
        w: Any = DoFn.WindowParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        count: Any = DoFn.StateParam(COUNT),
        end: Any = DoFn.TimerParam(END),
    ) -> Any:
        end.set(w.max_timestamp())
        buffer.add(element[1])
        count.add(1)
        if count.read() >= self.N:
            yield list(buffer.read())
            buffer.clear()
            count.clear()

    @on_timer(END)
    def flush(self, buffer: Any = DoFn.StateParam(BUFFER), count: Any = DoFn.StateParam(COUNT)) -> Any:
        if count.read():
            yield list(buffer.read())


def test_buffer_n_then_flush_rest_at_end_of_input() -> None:
    with beam.Pipeline() as p:
        out = p | beam.Create([("k", i) for i in range(7)]) | beam.ParDo(BatchOfN())
        assert_that(out, equal_to([[0, 1, 2], [3, 4, 5], [6]]))


# -- REAL_TIME timers driven by TestStream.advance_processing_time -------------------------------------


class GenerateRecords(DoFn):
    """Beam's own test (userstate_test.test_generate_sequence_with_realtime_timer), verbatim in spirit."""

    EMIT_TIMER = TimerSpec("emit_timer", TimeDomain.REAL_TIME)
    COUNT_STATE = CombiningValueStateSpec("count_state", None, CountCombineFn())

    def __init__(self, frequency: int, total_records: int) -> None:
        self.total_records = total_records
        self.frequency = frequency

    def process(self, element: Any, emit_timer: Any = DoFn.TimerParam(EMIT_TIMER)) -> Any:
        emit_timer.set(self.frequency)  # processing-time timers are set on absolute time
        yield element[1]

    @on_timer(EMIT_TIMER)
    def emit_values(
        self, emit_timer: Any = DoFn.TimerParam(EMIT_TIMER), count_state: Any = DoFn.StateParam(COUNT_STATE)
    ) -> Any:
        count = count_state.read() or 0
        if self.total_records == count:
            return
        count_state.add(1)
        emit_timer.set(count + 1 + self.frequency)
        yield "value"


def test_processing_time_timer_sequence_like_beam() -> None:
    stream = (
        TestStream()
        .advance_watermark_to(0)
        .add_elements([("key", 0)])
        .advance_processing_time(1)
        .add_elements([("key", 1)])
        .advance_processing_time(1)
        .add_elements([("key", 2)])
        .advance_processing_time(1)
        .add_elements([("key", 3)])
    )
    records: list[Any] = []
    with beam.Pipeline(options=streaming()) as p:
        p | stream | beam.ParDo(GenerateRecords(1, 3)) | beam.Map(records.append)
    assert records == [0, "value", 1, "value", 2, "value", 3]


class FlushAfterProcessingDelay(DoFn):
    """The guide's "batching RPCs" pattern: buffer, and flush 10 s of processing time after the first element."""

    BUFFER = BagStateSpec("buffer", None)
    IS_TIMER_SET = ReadModifyWriteStateSpec("is_timer_set", None)
    OUTPUT = TimerSpec("output", TimeDomain.REAL_TIME)

    def __init__(self, clock_start: float) -> None:
        self.now = clock_start

    def process(
        self,
        element: Any,
        buffer: Any = DoFn.StateParam(BUFFER),
        is_timer_set: Any = DoFn.StateParam(IS_TIMER_SET),
        timer: Any = DoFn.TimerParam(OUTPUT),
    ) -> Any:
        buffer.add(element[1])
        if not is_timer_set.read():
            timer.set(self.now + 10)
            is_timer_set.write(True)
        return []

    @on_timer(OUTPUT)
    def flush(
        self,
        key: Any = DoFn.KeyParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        is_timer_set: Any = DoFn.StateParam(IS_TIMER_SET),
    ) -> Any:
        yield key, sorted(buffer.read())
        buffer.clear()
        is_timer_set.clear()


def test_processing_time_flush_fires_on_clock_not_watermark() -> None:
    stream = (
        TestStream()
        .add_elements([tv(("a", 1), 1), tv(("a", 2), 2)])  # event 0
        .advance_watermark_to(5)  # event 1: the watermark does not fire processing-time timers
        .advance_processing_time(4)  # event 2: clock 4 < 10
        .add_elements([tv(("a", 3), 6)])  # event 3
        .advance_processing_time(6)  # event 4: clock 10 -> flush
        .add_elements([tv(("a", 4), 7)])  # event 5: a new timer at 0 + 10, already due: fires at once
    )
    fired: list[Any] = []
    with beam.Pipeline(options=streaming()) as p:
        (
            p
            | stream
            | beam.ParDo(FlushAfterProcessingDelay(0))
            | beam.Map(lambda kv: fired.append((stream.event_index, kv)))
        )
    assert fired == [(4, ("a", [1, 2, 3])), (5, ("a", [4]))]


class HoldUntilProcessingTime(DoFn):
    """Emits each key's values when a processing-time timer fires (output timestamp: the element's)."""

    BUFFER = BagStateSpec("buffer", None)
    LATER = TimerSpec("later", TimeDomain.REAL_TIME)

    def process(
        self, element: Any, buffer: Any = DoFn.StateParam(BUFFER), later: Any = DoFn.TimerParam(LATER)
    ) -> Any:
        buffer.add(element[1])
        later.set(100)
        return []

    @on_timer(LATER)
    def release(self, key: Any = DoFn.KeyParam, buffer: Any = DoFn.StateParam(BUFFER)) -> Any:
        for v in buffer.read():
            yield key, v


def test_pending_processing_time_timer_holds_the_output_watermark() -> None:
    # The timer's output (timestamp 5) arrives after the input watermark passed 10: without the hold,
    # the downstream window [0, 10) would have closed and dropped it as late.
    stream = (
        TestStream()
        .add_elements([tv(("a", 1), 5), tv(("a", 2), 6)])
        .advance_watermark_to(50)
        .advance_processing_time(100)
        .advance_watermark_to(60)
    )
    panes: list[Any] = []
    with beam.Pipeline(options=streaming()) as p:
        (
            p
            | stream
            | beam.ParDo(HoldUntilProcessingTime())
            | beam.WindowInto(window.FixedWindows(10))
            | beam.CombinePerKey(sum)
            | beam.Map(
                lambda kv, pane=DoFn.PaneInfoParam: panes.append((kv, pane.timing.name, stream.event_index))
            )
        )
    assert panes == [(("a", 3), "ON_TIME", 2)]


def test_pending_processing_time_timers_fire_at_end_of_input() -> None:
    stream = (
        TestStream().add_elements([tv(("a", 1), 1)]).add_elements([tv(("b", 2), 2)]).advance_watermark_to(5)
    )
    fired: list[Any] = []
    with beam.Pipeline(options=streaming()) as p:
        (
            p
            | stream
            | beam.ParDo(HoldUntilProcessingTime())  # its timers are set at clock 100; the clock stays at 0
            | beam.Map(lambda kv: fired.append((stream.event_index, kv)))
        )
    assert sorted(fired) == [(3, ("a", 1)), (3, ("b", 2))]


# -- SetState, CombiningValueState, KeyParam ------------------------------------------------------------


class Dedup(DoFn):
    """Emit each (key, value) the first time it is seen."""

    SEEN = SetStateSpec("seen", None)

    def process(self, element: Any, seen: Any = DoFn.StateParam(SEEN)) -> Any:
        key, value = element
        if value not in seen.read():
            seen.add(value)
            yield element


def test_set_state_dedup() -> None:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("a", 1), ("a", 1), ("b", 1), ("a", 2), ("b", 1), ("a", 2), ("a", 3)])
            | beam.ParDo(Dedup())
        )
        assert_that(out, equal_to([("a", 1), ("b", 1), ("a", 2), ("a", 3)]))


class SumAtEnd(DoFn):
    """CombiningValueState with a callable (Beam's two-argument form), read when the window's timer fires."""

    TOTAL = CombiningValueStateSpec("total", sum)
    END = TimerSpec("end", TimeDomain.WATERMARK)

    def process(
        self,
        element: Any,
        key: Any = DoFn.KeyParam,
        total: Any = DoFn.StateParam(TOTAL),
        end: Any = DoFn.TimerParam(END),
        w: Any = DoFn.WindowParam,
    ) -> Any:
        assert key == element[0]
        total.add(element[1])
        end.set(w.max_timestamp())
        return []

    @on_timer(END)
    def emit(self, key: Any = DoFn.KeyParam, total: Any = DoFn.StateParam(TOTAL)) -> Any:
        yield key, total.read()


def test_combining_value_state_sum_and_key_param() -> None:
    with beam.Pipeline() as p:
        out = p | beam.Create([("a", 1), ("b", 10), ("a", 2), ("a", 3), ("b", 20)]) | beam.ParDo(SumAtEnd())
        assert_that(out, equal_to([("a", 6), ("b", 30)]))


class OrderedEvents(DoFn):
    """OrderedListState: events kept in timestamp order whatever order they arrive in."""

    EVENTS = OrderedListStateSpec("events", None)
    END = TimerSpec("end", TimeDomain.WATERMARK)

    def process(
        self,
        element: Any,
        ts: Any = DoFn.TimestampParam,
        events: Any = DoFn.StateParam(EVENTS),
        end: Any = DoFn.TimerParam(END),
        w: Any = DoFn.WindowParam,
    ) -> Any:
        events.add((ts, element[1]))
        end.set(w.max_timestamp())
        return []

    @on_timer(END)
    def emit(self, events: Any = DoFn.StateParam(EVENTS)) -> Any:
        yield [v for _, v in events.read()]
        yield [v for _, v in events.read_range(2, 4)]


def test_ordered_list_state() -> None:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("k", "c", 3), ("k", "a", 1), ("k", "d", 4), ("k", "b", 2)])
            | beam.Map(lambda e: tv((e[0], e[1]), e[2]))
            | beam.ParDo(OrderedEvents())
        )
        assert_that(out, equal_to([["a", "b", "c", "d"], ["b", "c"]]))


# -- windows: separate state per window, expiry ---------------------------------------------------------


def test_state_is_separate_per_window() -> None:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("a", 1), ("a", 2), ("a", 11), ("a", 12), ("a", 13), ("b", 3)])
            | beam.Map(lambda kv: tv(kv, kv[1]))
            | beam.WindowInto(window.FixedWindows(10))
            | beam.ParDo(CountSoFar())
            | beam.Map(lambda kv, w=DoFn.WindowParam: (kv[0], kv[1], int(w.start.micros // 1_000_000)))
        )
        assert_that(
            out, equal_to([("a", 1, 0), ("a", 2, 0), ("a", 1, 10), ("a", 2, 10), ("a", 3, 10), ("b", 1, 0)])
        )


def test_sliding_windows_process_once_per_window() -> None:
    with beam.Pipeline() as p:
        out = (
            p
            | beam.Create([("a", 7)])
            | beam.Map(lambda kv: tv(kv, kv[1]))
            | beam.WindowInto(window.SlidingWindows(10, 5))
            | beam.ParDo(CountSoFar())
            | beam.Map(lambda kv, w=DoFn.WindowParam: (kv, int(w.start.micros // 1_000_000)))
        )
        assert_that(out, equal_to([(("a", 1), 0), (("a", 1), 5)]))


def test_state_expires_with_window_and_late_data_is_dropped() -> None:
    stream = (
        TestStream()
        .add_elements([tv(("a", 1), 1)])
        .advance_watermark_to(12)  # within allowed lateness (5 s): state of [0, 10) still alive
        .add_elements([tv(("a", 2), 2)])
        .advance_watermark_to(16)  # past end + lateness: state of [0, 10) is garbage-collected
        .add_elements([tv(("a", 3), 3)])  # too late: dropped, never seen by process
        .add_elements([tv(("a", 4), 21)])
    )
    seen: list[Any] = []
    with beam.Pipeline(options=streaming()) as p:
        (
            p
            | stream
            | beam.WindowInto(
                window.FixedWindows(10),
                trigger=trigger.AfterWatermark(),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
                allowed_lateness=5,
            )
            | beam.ParDo(CountSoFar())
            | beam.Map(seen.append)
        )
    assert seen == [("a", 1), ("a", 2), ("a", 1)]


class TimerAtWindowEnd(DoFn):
    """Sets its timer at `window.end` (beyond max_timestamp), as Beam's BatchElements does."""

    BUFFER = BagStateSpec("buffer", None)
    END = TimerSpec("end", TimeDomain.WATERMARK)

    def process(
        self,
        element: Any,
        w: Any = DoFn.WindowParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        end: Any = DoFn.TimerParam(END),
    ) -> Any:
        buffer.add(element[1])
        end.set(w.end)
        return []

    @on_timer(END)
    def emit(self, buffer: Any = DoFn.StateParam(BUFFER)) -> Any:
        yield sorted(buffer.read())


def test_timer_at_window_end_fires_before_state_is_collected() -> None:
    stream = (
        TestStream()
        .add_elements([tv(("a", 1), 1), tv(("a", 2), 2)])
        .advance_watermark_to(10)
        .add_elements([tv(("a", 3), 13)])
        .advance_watermark_to(25)
    )
    fired: list[Any] = []
    with beam.Pipeline(options=streaming()) as p:
        (
            p
            | stream
            | beam.WindowInto(window.FixedWindows(10))
            | beam.ParDo(TimerAtWindowEnd())
            | beam.Map(lambda v: fired.append((stream.event_index, v)))
        )
    assert fired == [(1, [1, 2]), (3, [3])]


# -- timer semantics ------------------------------------------------------------------------------------


class ResetTimer(DoFn):
    """Each element moves the key's timer to element time + 5 s (a gap timer); `clear` cancels it."""

    LAST = TimerSpec("last", TimeDomain.WATERMARK)
    VALUES = BagStateSpec("values", None)

    def process(
        self,
        element: Any,
        ts: Any = DoFn.TimestampParam,
        last: Any = DoFn.TimerParam(LAST),
        values: Any = DoFn.StateParam(VALUES),
    ) -> Any:
        if element[1] == "cancel":
            last.clear()
            return []
        values.add(element[1])
        last.set(ts + 5)
        return []

    @on_timer(LAST)
    def fire(
        self, key: Any = DoFn.KeyParam, ts: Any = DoFn.TimestampParam, values: Any = DoFn.StateParam(VALUES)
    ) -> Any:
        yield key, ts.micros // 1_000_000, list(values.read())
        values.clear()


def test_setting_a_timer_again_replaces_it_and_clear_cancels_it() -> None:
    stream = (
        TestStream()
        .add_elements([tv(("a", "x"), 1), tv(("b", "y"), 1)])
        .add_elements([tv(("a", "z"), 3), tv(("b", "cancel"), 3)])  # a's timer moves to 8; b's is cancelled
        .advance_watermark_to(7)
        .advance_watermark_to(8)
        .advance_watermark_to(100)
    )
    fired: list[Any] = []
    with beam.Pipeline(options=streaming()) as p:
        (
            p
            | stream
            | beam.ParDo(ResetTimer())
            | beam.Map(lambda v, t=DoFn.TimestampParam: fired.append((stream.event_index, v, t.micros)))
        )
    # a's timer fires once, when the watermark reaches 8 (event 3), its output stamped with the timer time
    assert fired == [(3, ("a", 8, ["x", "z"]), 8_000_000)]


# -- errors ---------------------------------------------------------------------------------------------


def test_non_keyed_input_error_names_the_step() -> None:
    with pytest.raises(ValueError, match=r"MyStatefulStep.*key-value pairs"):
        with beam.Pipeline() as p:
            p | beam.Create([1, 2, 3]) | "MyStatefulStep" >> beam.ParDo(CountSoFar())


def test_timer_spec_without_on_timer_is_refused_before_running() -> None:
    spec = TimerSpec("orphan", TimeDomain.WATERMARK)

    class NoCallback(DoFn):
        def process(self, element: Any, t: Any = DoFn.TimerParam(spec)) -> Any:
            processed.append(element)
            return []

    processed: list[Any] = []
    with pytest.raises(ValueError, match=r"TimerSpec without an associated on_timer callback.*ts-orphan"):
        with beam.Pipeline() as p:
            p | beam.Create([("a", 1)]) | "Orphan" >> beam.ParDo(NoCallback())
    assert processed == []


def test_error_in_on_timer_names_the_step_and_timer() -> None:
    class Boom(DoFn):
        T = TimerSpec("boom", TimeDomain.WATERMARK)

        def process(self, element: Any, t: Any = DoFn.TimerParam(T)) -> Any:
            t.set(0)
            return []

        @on_timer(T)
        def fire(self) -> Any:
            raise RuntimeError("kaboom")

    with pytest.raises(RuntimeError, match=r"kaboom.*Exploding.*on_timer boom"):
        with beam.Pipeline() as p:
            p | beam.Create([("a", 1)]) | "Exploding" >> beam.ParDo(Boom())


def test_stateful_map_callable_gets_state() -> None:
    count = ReadModifyWriteStateSpec("count", None)

    def numbered(kv: Any, state: Any = DoFn.StateParam(count)) -> Any:
        n = (state.read() or 0) + 1
        state.write(n)
        return kv[0], n

    with beam.Pipeline() as p:
        out = p | beam.Create([("a", 0), ("a", 0), ("b", 0)]) | beam.Map(numbered)
        assert_that(out, equal_to([("a", 1), ("a", 2), ("b", 1)]))


def test_exception_handling_routes_failures_and_keeps_state() -> None:
    class Picky(DoFn):
        COUNT = ReadModifyWriteStateSpec("count", None)

        def process(self, element: Any, count: Any = DoFn.StateParam(COUNT)) -> Any:
            n = (count.read() or 0) + 1
            count.write(n)
            if element[1] < 0:
                raise ValueError("negative")
            yield element[0], n

    with beam.Pipeline() as p:
        good, bad = (
            p
            | beam.Create([("a", 1), ("a", -1), ("a", 2)])
            | "Picky" >> beam.ParDo(Picky()).with_exception_handling()
        )
        assert_that(good, equal_to([("a", 1), ("a", 3)]), label="good")
        assert_that(
            bad | beam.Map(lambda r: (r[0], r[1].step, r[1].message)),
            equal_to([(("a", -1), "Picky", "negative")]),
            label="bad",
        )


def test_side_inputs_with_state() -> None:
    from millstream.pvalue import AsList

    class WithSide(DoFn):
        COUNT = ReadModifyWriteStateSpec("count", None)

        def process(self, element: Any, side: Any, count: Any = DoFn.StateParam(COUNT)) -> Any:
            n = (count.read() or 0) + 1
            count.write(n)
            yield element[0], n, sum(side)

    with beam.Pipeline() as p:
        side = p | "Side" >> beam.Create([1, 2, 3])
        out = p | beam.Create([("a", 1), ("a", 2)]) | beam.ParDo(WithSide(), AsList(side))
        assert_that(out, equal_to([("a", 1, 6), ("a", 2, 6)]))


# -- context parameters in a stateful DoFn -------------------------------------------------------------------


class BundleScoped(DoFn):
    """Counts elements per key; its bundle context (entered per bundle, Beam's BundleContextParam) and setup
    context are seen in `process`; `log` records enters, exits and elements."""

    log: list[str] = []
    COUNT = ReadModifyWriteStateSpec("count", beam.coders.VarIntCoder())

    @staticmethod
    def resource(name: str) -> Any:
        import contextlib

        @contextlib.contextmanager
        def scoped() -> Any:
            BundleScoped.log.append(f"enter {name}")
            yield name
            BundleScoped.log.append(f"exit {name}")

        return scoped()

    def process(
        self,
        kv: tuple[str, int],
        count: Any = DoFn.StateParam(COUNT),
        setup: Any = DoFn.SetupContextParam(resource, args=("setup",)),
        bundle: Any = DoFn.BundleContextParam(resource, args=("bundle",)),
    ) -> Any:
        n = (count.read() or 0) + 1
        count.write(n)
        BundleScoped.log.append(f"element {kv[0]}")
        yield kv[0], n, setup, bundle


def test_a_stateful_dofn_gets_its_bundle_and_setup_contexts() -> None:
    BundleScoped.log = []
    with beam.Pipeline() as p:
        out = p | beam.Create([("a", 1), ("b", 2), ("a", 3)]) | beam.ParDo(BundleScoped())
        assert_that(
            out,
            equal_to([("a", 1, "setup", "bundle"), ("b", 1, "setup", "bundle"), ("a", 2, "setup", "bundle")]),
        )
    log = BundleScoped.log
    assert log[0] == "enter setup" and log[-1] == "exit setup" and log.count("enter setup") == 1
    assert log.count("enter bundle") == log.count("exit bundle") >= 1
    depth = 0  # every element inside an entered bundle context
    for entry in log[1:-1]:
        depth += {"enter bundle": 1, "exit bundle": -1}.get(entry, 0)
        if entry.startswith("element"):
            assert depth == 1, log
