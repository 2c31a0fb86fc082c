"""`Job.stop()` ends a job at its checkpoint: no timer fires after the cut, and a drain asked meanwhile does
not turn the stop into a completed run."""

from __future__ import annotations

import glob
import time
from typing import Any

import millstream as beam
from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import window
from millstream.transforms.timeutil import TimeDomain
from millstream.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

FIRED: list[Any] = []
DUE: list[float] = []


class Ping(beam.DoFn):
    """Sets a processing-time timer 1 s ahead for every element; its callback records the key."""

    V = ReadModifyWriteStateSpec("v", None)
    PING = TimerSpec("ping", TimeDomain.REAL_TIME)

    def process(
        self, element: Any, v: Any = beam.DoFn.StateParam(V), ping: Any = beam.DoFn.TimerParam(PING)
    ) -> Any:
        v.write(element[1])
        DUE.append(time.time() + 1.0)
        ping.set(DUE[-1])
        return []

    @on_timer(PING)
    def on_ping(self, key: Any = beam.DoFn.KeyParam) -> Any:
        FIRED.append(key)
        yield {"k": key}


def _options(state: str) -> PipelineOptions:
    return PipelineOptions(["--streaming", f"--state_dir={state}", "--checkpoint_interval=100000"])


async def test_no_processing_time_timer_fires_after_the_stop_checkpoint(
    tmp_path: Any, append_jsonl: Any, until: Any
) -> None:
    src = str(tmp_path / "in.jsonl")
    append_jsonl(src, [{"k": "a", "t": 10, "v": 1}])
    FIRED.clear()
    p = beam.Pipeline(options=_options(str(tmp_path / "state")))
    (
        p
        | ReadFromJson(src, timestamp_fn=lambda e: e["t"], watch=True, poll_interval=0.02)
        | beam.Map(lambda e: (e["k"], e["v"]))
        | beam.ParDo(Ping())
        | WriteToJson(str(tmp_path / "out" / "o"))
    )
    job = await p.start()
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    await until(lambda: node.elements_in >= 1, "the input")
    ck = job.plan.coordinator
    capture = ck.incremental.capture

    def slow_capture(*args: Any) -> Any:
        time.sleep(max(0.0, DUE[-1] + 0.1 - time.time()))  # a large state: the timer comes due meanwhile
        return capture(*args)

    ck.incremental.capture = slow_capture
    assert await job.stop() == "STOPPED"
    assert time.time() > DUE[-1], "the timer came due during the stop"
    assert FIRED == [], "a processing-time timer fired after the stop checkpoint"
    assert node.n_timers == 1


async def test_a_drain_asked_during_a_stop_does_not_complete_the_run(
    tmp_path: Any, append_jsonl: Any, until: Any
) -> None:
    src = str(tmp_path / "in.jsonl")
    out = str(tmp_path / "out" / "o")
    append_jsonl(src, [{"k": "a", "t": 10, "v": 1}])
    p = beam.Pipeline(options=_options(str(tmp_path / "state")))
    (
        p
        | ReadFromJson(src, timestamp_fn=lambda e: e["t"], watch=True, poll_interval=0.02)
        | beam.Map(lambda e: (e["k"], e["v"]))
        | beam.WindowInto(window.FixedWindows(1000))
        | beam.CombinePerKey(sum)
        | beam.Map(lambda kv: {"k": kv[0], "v": kv[1]})
        | WriteToJson(out)
    )
    job = await p.start()
    await until(
        lambda: any(n.elements_in for label, n in job.plan.nodes.items() if "CombinePerKey" in label),
        "the input",
    )
    job.request_stop()
    await until(lambda: job.control.stop_requested, "the stop")
    job.request_drain()  # e.g. an operator asks for a drain while the stop checkpoint is being taken
    assert await job.wait() == "STOPPED"
    assert glob.glob(out + "-c*") == []


class Count(beam.DoFn):
    """A per-key counter."""

    N = ReadModifyWriteStateSpec("n", None)

    def process(self, element: Any, n: Any = beam.DoFn.StateParam(N)) -> Any:
        n.write((n.read() or 0) + 1)
        yield [element[0], n.read()]


async def test_a_test_stream_beside_a_checkpointed_source_waits_while_state_is_collected(
    tmp_path: Any, append_jsonl: Any, until: Any
) -> None:
    """A TestStream is not a checkpointed source, but next to one (so checkpoints are taken) it must not feed
    operators while a checkpoint collects their state in a worker thread."""
    from millstream.testing.test_stream import TestStream

    stream = TestStream()
    for i in range(30):
        stream = stream.add_elements([window.TimestampedValue((f"k{i % 7}", i), i)])
    src = str(tmp_path / "in.jsonl")
    append_jsonl(src, [{"k": "file", "t": 1, "v": 1}])
    p = beam.Pipeline(
        options=PipelineOptions(
            ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=0.01"]
        )
    )
    from_file = (
        p
        | ReadFromJson(src, timestamp_fn=lambda e: e["t"], watch=True, poll_interval=0.02)
        | beam.Map(lambda e: (e["k"], e["v"]))
    )
    (
        ((p | stream), from_file)
        | beam.Flatten()
        | beam.ParDo(Count())
        | WriteToJson(str(tmp_path / "out" / "o"))
    )
    job = await p.start()
    await until(lambda: job.plan.coordinator is not None, "the job to start")
    ck = job.plan.coordinator
    node = next(n for n in job.plan.nodes.values() if isinstance(n, StatefulParDoNode))
    capture = ck.incremental.capture
    fed_while_collecting: list[int] = []
    collecting: list[bool] = []
    process = node.process

    def slow_capture(*args: Any) -> Any:
        collecting.append(True)
        try:
            time.sleep(0.005)  # the worker thread holds the state a while
            return capture(*args)
        finally:
            collecting.pop()

    def checked_process(batch: Any) -> None:
        if collecting:
            fed_while_collecting.append(len(batch.values))
        process(batch)

    ck.incremental.capture = slow_capture
    node.process = checked_process  # type: ignore[method-assign]
    await until(lambda: node.elements_in >= 31, "every element")
    await job.cancel()
    assert ck.count >= 3, "too few checkpoints to say anything"
    assert fed_while_collecting == []
