"""`PeriodicImpulse` / `PeriodicSequence` (Beam's ``apache_beam.transforms.periodicsequence``): bounded runs
compared with Apache Beam's DirectRunner, and the reader driven by a fake clock to show it fires on the
injected clock, never early."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from millstream.engine.runtime.exec.clock import FakeClock
from millstream.transforms.periodicsequence import PeriodicImpulse, PeriodicSequence, RebaseMode

from support.beam_harness import capture, multiset, run_collect

ENGINES = ["millstream", "beam"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """millstream keeps a pipeline's checkpoints under ./.millstream: each test gets its own directory."""
    monkeypatch.chdir(tmp_path)


def _describe(b: types.ModuleType) -> Any:
    """A DoFn of engine `b`: (value, event time in seconds, window as (start, end) seconds or "global")."""

    class Describe(b.DoFn):
        def process(self, e: Any, ts: Any = b.DoFn.TimestampParam, w: Any = b.DoFn.WindowParam) -> Any:
            interval = hasattr(w, "start") and w.end.micros < 10**15
            where = (w.start.micros / 1e6, w.end.micros / 1e6) if interval else "global"
            yield (e, ts.micros / 1e6, where)

    return Describe()


def _periodic(b: types.ModuleType) -> Any:
    mod = __import__(f"{b.__name__}.transforms.periodicsequence", fromlist=["PeriodicImpulse"])
    return mod


Build = Callable[[types.ModuleType, Any], Any]

CASES: dict[str, Build] = {
    "timestamps": lambda b, p: p | _periodic(b).PeriodicImpulse(10, 13, 1),
    "float_interval": lambda b, p: p | _periodic(b).PeriodicImpulse(10, 11.2, 0.25),
    "windowed": lambda b, p: p | _periodic(b).PeriodicImpulse(10, 13, 1, apply_windowing=True),
    "data_repeated": lambda b, p: p | _periodic(b).PeriodicImpulse(10, 13.5, 1, data=["a", "b"]),
    "pre_timestamped": lambda b, p: (
        p
        | _periodic(b).PeriodicImpulse(
            10,
            12,
            1,
            data=[(b.utils.timestamp.Timestamp.of(5), "x"), (b.utils.timestamp.Timestamp.of(3), "y")],
        )
    ),
    "sequence": lambda b, p: p | b.Create([(10, 12, 0.5), (20, 21, 1)]) | _periodic(b).PeriodicSequence(),
    # a sequence starting before its input's timestamp: its timer's output timestamp stays at the input's
    "sequence_before_its_input": lambda b, p: (
        p
        | b.Create([(10, 13, 1)])
        | b.Map(lambda e: b.window.TimestampedValue(e, 50))
        | _periodic(b).PeriodicSequence()
    ),
}


@pytest.mark.filterwarnings("ignore:The number of elements")
@pytest.mark.parametrize("case", sorted(CASES))
def test_bounded_impulse_matches_beam(case: str) -> None:
    def build(b: types.ModuleType, p: Any) -> None:
        capture(b, CASES[case](b, p) | b.ParDo(_describe(b)), "out")

    results = {e: multiset(run_collect(e, build)["out"]) for e in ENGINES}
    assert results["millstream"] == results["beam"]


def test_windowed_values_spelled_out() -> None:
    def build(b: types.ModuleType, p: Any) -> None:
        capture(b, CASES["windowed"](b, p) | b.ParDo(_describe(b)), "out")

    assert sorted(run_collect("millstream", build)["out"]) == [
        (10, 10.0, (10.0, 11.0)),
        (11, 11.0, (11.0, 12.0)),
        (12, 12.0, (12.0, 13.0)),
    ]


def test_too_little_pre_timestamped_data_is_an_error() -> None:
    from millstream.utils.timestamp import Timestamp

    with pytest.raises(ValueError, match="not enough to span"):
        PeriodicImpulse(0, 10, 1, data=[(Timestamp.of(0), "only")])


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="fire_interval must be > 0"):
        PeriodicImpulse(0, 10, 0)
    with pytest.raises(ValueError, match="data must hold at least one element"):
        PeriodicImpulse(0, 10, 1, data=[])


def _reader(impulse: PeriodicImpulse, clock: FakeClock) -> Any:
    """The reader of the source `impulse` expands to, on `clock`."""
    from millstream.connectors.periodic.periodicsequence import PeriodicImpulseSource

    i = impulse
    source = PeriodicImpulseSource(i.start_ts, i.stop_ts, i.interval, i.data, i.rebase, i.span_us)
    reader = source.create_reader(None)
    reader.use_clock(clock)
    return reader


async def test_fires_on_the_injected_clock_never_early() -> None:
    clock = FakeClock(start_us=100_000_000)  # t = 100 s
    reader = _reader(PeriodicImpulse(100, 103, 1), clock)
    await reader.open(None)
    got: list[tuple[list[Any], list[int]]] = []
    watermarks: list[int | None] = []

    async def consume() -> None:
        while (batch := await reader.read()) is not None:
            got.append((batch.values, batch.timestamps))
            watermarks.append(batch.watermark_us)

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        assert got == [([100], [100_000_000])]  # due at once; 101 is not yet
        assert watermarks == [101_000_000]  # the watermark may move to the next fire time at once, as Beam
        clock.set(100_999_999)
        await anyio.wait_all_tasks_blocked()
        assert len(got) == 1
        clock.set(101_000_000)
        await anyio.wait_all_tasks_blocked()
        assert got[-1] == ([101], [101_000_000])
        clock.set(110_000_000)  # both 102 and the end
    assert got[-1] == ([102], [102_000_000])
    assert watermarks == [101_000_000, 102_000_000, None]  # the last batch finishes the split instead
    assert reader.positions()["impulse"]["index"] == 3


async def test_rebase_all_starts_at_the_clock_and_keeps_the_duration() -> None:
    clock = FakeClock(start_us=500_000_000)
    reader = _reader(PeriodicImpulse(0, 2, 1, rebase=RebaseMode.REBASE_ALL), clock)
    await reader.open(None)
    first = await reader.read()
    assert first is not None and first.values == [500.0] and not first.finished
    clock.advance(1_000_000)
    second = await reader.read()
    assert second is not None and second.values == [501.0] and second.finished
    assert await reader.read() is None


async def test_a_restored_reader_continues_after_the_last_fire() -> None:
    clock = FakeClock(start_us=0)
    first = _reader(PeriodicImpulse(0, 5, 1), clock)
    await first.open(None)
    await first.read()
    saved = first.positions()
    clock.set(10_000_000)
    again = _reader(PeriodicImpulse(0, 5, 1), clock)
    await again.open(saved)
    batch = await again.read()
    assert batch is not None and batch.values == [1, 2, 3, 4] and batch.finished


class _Collect:
    """Stands for the step after the sequence: keeps what it receives, and the watermarks."""

    def __init__(self) -> None:
        from millstream.engine.runtime.graph.node import Node

        class Collect(Node):
            def __init__(self) -> None:
                super().__init__("Collect")
                self.got: list[tuple[Any, int]] = []
                self.wms: list[int] = []

            def push(self, index: int, batch: Any) -> None:
                self.got.extend(zip(batch.values, batch.ts or [None] * len(batch.values)))

            def on_input_watermark(self, micros: int) -> None:
                self.wms.append(micros)

        self.node = Collect()


def _sequence_node() -> tuple[Any, Any]:
    """The stateful step `PeriodicSequence` applies, wired to a collector (no executor: time is given by hand)."""
    import millstream as beam
    from millstream.engine.model.window import GlobalWindows
    from millstream.engine.model.windowing import Windowing
    from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode

    p = beam.Pipeline()
    _ = p | beam.Create([(10, 13, 1)]) | PeriodicSequence()
    (step,) = [a.transform for a in p.primitives() if a.full_label.endswith("GenSequence")]
    node = StatefulParDoNode("GenSequence", step, Windowing(GlobalWindows()), [])
    out = _Collect().node
    node.connect(out, 0)
    node.open()
    return node, out


def test_a_sequence_fires_on_the_job_clock_never_early_and_holds_the_watermark() -> None:
    from millstream.engine.model.timestamp import MAX_MICROS
    from millstream.engine.runtime.graph.batch import Batch

    node, out = _sequence_node()
    element = (10, 13, 1)
    node.push(0, Batch([(element, element)], [0]))
    node.watermark(0, MAX_MICROS)  # the input ended (an Impulse or Create): the sequence keeps running
    assert out.got == [] and node.lingers()
    assert out.wms[-1] == 10_000_000  # held at the first fire time
    assert node.next_timer() == 10_000_000
    node.advance_processing_time(10_999_999)
    assert out.got == [(10, 10_000_000)] and out.wms[-1] == 11_000_000
    node.advance_processing_time(11_500_000)
    assert out.got[-1] == (11, 11_000_000) and out.wms[-1] == 12_000_000
    node.advance_processing_time(12_000_000)
    assert out.got[-1] == (12, 12_000_000)
    assert out.wms[-1] == MAX_MICROS and not node.lingers()  # the last fire: the step is done
    assert node.next_timer() is None


def test_a_start_long_past_catches_up_in_bounded_batches_at_exact_timestamps() -> None:
    """One firing emits every due element (at most `_MAX_BATCH`), not one per timer-loop turn."""
    from millstream.connectors.periodic.periodicsequence import _MAX_BATCH
    from millstream.engine.model.timestamp import MAX_MICROS
    from millstream.engine.runtime.graph.batch import Batch

    node, out = _sequence_node()
    due = _MAX_BATCH + 500
    element = (0, due + 10, 1)  # fire times 0, 1, ... s; at time `due - 0.5` s, `due` of them are due
    node.push(0, Batch([(element, element)], [0]))
    node.watermark(0, MAX_MICROS)
    now_us = due * 1_000_000 - 500_000
    node.advance_processing_time(now_us)
    assert out.got == [(i, i * 1_000_000) for i in range(_MAX_BATCH)]
    assert node.next_timer() == _MAX_BATCH * 1_000_000  # already due: the next loop turn fires it
    assert out.wms[-1] == _MAX_BATCH * 1_000_000
    node.advance_processing_time(now_us)
    assert out.got == [(i, i * 1_000_000) for i in range(due)]
    assert node.next_timer() == due * 1_000_000 and node.lingers()


def test_a_sequence_without_a_stop_keeps_firing() -> None:
    from millstream.engine.model.timestamp import MAX_MICROS
    from millstream.engine.runtime.graph.batch import Batch

    node, out = _sequence_node()
    element = (0, float(2**62), 2)
    node.push(0, Batch([(element, element)], [0]))
    node.watermark(0, MAX_MICROS)
    for second in range(0, 20, 2):
        node.advance_processing_time(second * 1_000_000)
    assert [v for v, _ in out.got] == list(range(0, 20, 2))
    assert node.lingers() and out.wms[-1] == 20_000_000


def test_a_pipeline_emits_no_element_before_its_fire_time() -> None:
    """On the real clock: each element is seen downstream no earlier than its fire time."""
    import time

    import millstream as beam

    from support import beam_harness

    start = round(time.time() + 0.2, 1)
    seen: list[tuple[float, float]] = []
    beam_harness.STORE["seen"] = seen

    with beam.Pipeline() as p:
        ticks = p | beam.Create([(start, start + 0.3, 0.1)]) | PeriodicSequence()
        _ = ticks | beam.Map(lambda t: beam_harness.STORE["seen"].append((t, time.time())))
    beam_harness.STORE.pop("seen")
    assert [round(t, 1) for t, _ in seen] == [round(start + 0.1 * i, 1) for i in range(3)]
    assert all(at >= t for t, at in seen)


def test_translated_to_beams_own_periodic_impulse() -> None:
    """On Beam's runners the source becomes Beam's PeriodicImpulse (run here on Beam's DirectRunner)."""
    import millstream as beam
    from millstream.engine.translate.beam.translator import translate

    from support import beam_harness

    p = beam.Pipeline()
    capture(beam, p | PeriodicImpulse(10, 13, 1, apply_windowing=True) | beam.ParDo(_describe(beam)), "out")
    beam_harness.engine("beam")  # imports apache_beam quietly
    beam_harness.STORE["out"] = []
    translate(p).run().wait_until_finish()
    assert sorted(beam_harness.STORE.pop("out")) == [
        (10, 10.0, (10.0, 11.0)),
        (11, 11.0, (11.0, 12.0)),
        (12, 12.0, (12.0, 13.0)),
    ]


async def test_pre_timestamped_data_promises_no_watermark() -> None:
    from millstream.utils.timestamp import Timestamp

    clock = FakeClock(start_us=0)
    data = [(Timestamp.of(5), "x"), (Timestamp.of(3), "y")]
    reader = _reader(PeriodicImpulse(0, 2, 1, data=data), clock)
    await reader.open(None)
    batch = await reader.read()
    assert batch is not None and batch.values == ["x"] and batch.timestamps == [5_000_000]
    assert batch.watermark_us is None  # its event times are the data's own: no promise about the next


def test_a_streaming_impulse_rebased_to_the_job_start_fires_one_element_per_window() -> None:
    import millstream as beam
    from millstream.options.pipeline_options import PipelineOptions
    from millstream.testing.util import assert_that, equal_to

    with beam.Pipeline(options=PipelineOptions(["--streaming"])) as p:
        counts = (
            p
            | PeriodicImpulse(0, 0.25, 0.05, apply_windowing=True, rebase=RebaseMode.REBASE_ALL)
            | beam.combiners.Count.Globally().without_defaults()
        )
        assert_that(counts, equal_to([1, 1, 1, 1, 1]))


async def test_a_drain_truncates_an_unbounded_sequence_and_commits(tmp_path: Any) -> None:
    """A drained job whose sequence has no stop ends (Beam truncates on drain) and commits what it emitted,
    instead of the held timer keeping the stage alive until the drain deadline cancels it."""
    import glob
    import json
    import time

    import millstream as beam
    from millstream.engine.model.timestamp import MAX_TIMESTAMP
    from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode
    from millstream.io import WriteToJson
    from millstream.options.pipeline_options import PipelineOptions

    from support.jobs import until

    out = str(tmp_path / "out" / "ticks")
    opts = PipelineOptions(
        ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=100000"]
    )
    p = beam.Pipeline(options=opts)
    start = time.time()
    _ = (
        p
        | beam.Create([(start, MAX_TIMESTAMP, 0.02)])
        | PeriodicSequence()
        | beam.Map(lambda t: round((t - start) / 0.02))
        | WriteToJson(out)
    )
    job = await p.start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_out >= 3, "three ticks")
    assert await job.drain(timeout=10) == "DONE"
    assert not node.lingers() and node.next_timer() is None
    rows = []
    for name in glob.glob(out + "*"):
        with open(name) as f:
            rows.extend(json.loads(line) for line in f)
    assert len(rows) >= 3
    assert sorted(rows) == list(range(len(rows)))  # each tick once, none skipped, all committed
