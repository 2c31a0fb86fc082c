"""`DoFn.BundleFinalizerParam` (callbacks once the bundle's output is durably committed: after the covering
checkpoint's commit) and `DoFn.WatermarkEstimatorParam` with Beam's manual and monotonic estimators."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

import millstream as beam
from millstream.engine.model import io
from millstream.engine.model.legacy_io import BeamSinkAdapter, BeamSinkWriter
from millstream.engine.runtime.operators.pardo import BundleFinalizer
from millstream.io import iobase
from millstream.io.watermark_estimators import ManualWatermarkEstimator, MonotonicWatermarkEstimator
from millstream.options.pipeline_options import PipelineOptions
from millstream.utils.timestamp import Timestamp

from support.beam_harness import engine


class _Finalizing(beam.DoFn):
    """Registers one callback per element; each callback records what the output directory held then."""

    def __init__(self, seen: list[Any], out_dir: Path | None = None, fail_on: str | None = None) -> None:
        self.seen = seen
        self.out_dir = out_dir
        self.fail_on = fail_on

    def process(self, element: str, finalizer: Any = beam.DoFn.BundleFinalizerParam) -> Any:
        if element == self.fail_on:
            raise RuntimeError("boom")
        out_dir = self.out_dir
        seen = self.seen

        def done() -> None:
            committed = sorted(p.name for p in out_dir.glob("out*")) if out_dir is not None else []
            seen.append((element, committed))

        finalizer.register(done)
        yield element


def test_callbacks_run_after_the_covering_checkpoint_committed_the_output(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    seen: list[Any] = []
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path / 'state'}"])) as p:
        _ = (
            p
            | beam.io.ReadFromText(str(tmp_path / "in.txt"))
            | beam.ParDo(_Finalizing(seen, out_dir))
            | beam.io.WriteToText(str(out_dir / "out"), ".txt", num_shards=1, shard_name_template="")
        )
    assert sorted(e for e, _ in seen) == ["a", "b", "c"]  # each callback exactly once
    # when each callback ran, the sink had already committed the file holding that element
    assert all(committed == ["out.txt"] for _, committed in seen)
    assert sorted((out_dir / "out.txt").read_text().split()) == ["a", "b", "c"]


def test_without_checkpoints_callbacks_run_once_the_job_has_finished() -> None:
    seen: list[Any] = []
    with beam.Pipeline() as p:
        _ = p | beam.Create(["x", "y"]) | beam.ParDo(_Finalizing(seen))
        assert seen == []  # nothing runs while the pipeline is being built
    assert sorted(e for e, _ in seen) == ["x", "y"]


def test_a_failed_job_runs_no_callbacks(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("a\nboom\n")
    seen: list[Any] = []
    with pytest.raises(Exception, match="boom"):
        with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path / 'state'}"])) as p:
            _ = (
                p
                | beam.io.ReadFromText(str(tmp_path / "in.txt"))
                | beam.ParDo(_Finalizing(seen, fail_on="boom"))
                | beam.io.WriteToText(str(tmp_path / "out"))
            )
    assert seen == []


def test_register_needs_a_callable() -> None:
    class Bad(beam.DoFn):
        def process(self, element: Any, finalizer: Any = beam.DoFn.BundleFinalizerParam) -> Any:
            finalizer.register("not callable")
            yield element

    with pytest.raises(Exception, match="register needs a callable"):
        with beam.Pipeline() as p:
            _ = p | beam.Create([1]) | beam.ParDo(Bad())


def test_a_watermark_estimator_outside_a_splittable_dofn_is_refused() -> None:
    class NotSplittable(beam.DoFn):
        def process(
            self,
            element: Any,
            estimator: Any = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider()),
        ) -> Any:
            yield element

    with pytest.raises(
        ValueError, match=r"ParDo\(NotSplittable\): DoFn.WatermarkEstimatorParam is meaningful"
    ):
        beam.ParDo(NotSplittable())


def _drive(module: Any, timestamp_cls: Any) -> list[Any]:
    """The same calls on one engine's estimators; their observable results."""
    manual = module.ManualWatermarkEstimator.default_provider().create_watermark_estimator(None)
    out: list[Any] = [manual.current_watermark()]
    manual.set_watermark(timestamp_cls(5))
    manual.observe_timestamp(timestamp_cls(9))  # a manual estimator ignores outputs
    out.append(manual.current_watermark().micros)
    with pytest.raises(ValueError):
        manual.set_watermark(timestamp_cls(4))
    with pytest.raises(ValueError):
        manual.set_watermark(6)
    mono = module.MonotonicWatermarkEstimator.default_provider().create_watermark_estimator(timestamp_cls(1))
    for t in (3, 2, 7):
        mono.observe_timestamp(timestamp_cls(t))
        out.append(mono.current_watermark().micros)
    out.append(mono.get_estimator_state().micros)
    return out


def test_estimators_behave_as_beams() -> None:
    import millstream.io.watermark_estimators as ours

    engine("beam")
    import apache_beam.io.watermark_estimators as beams
    from apache_beam.utils.timestamp import Timestamp as BeamTimestamp

    assert _drive(ours, Timestamp) == _drive(beams, BeamTimestamp)
    assert _drive(ours, Timestamp) == [None, 5_000_000, 3_000_000, 3_000_000, 7_000_000, 7_000_000]
    assert isinstance(MonotonicWatermarkEstimator(None).current_watermark(), type(None))


def test_stateful_and_async_dofns_finalize_too() -> None:
    from millstream.coders import coders
    from millstream.transforms.userstate import BagStateSpec

    seen: list[Any] = []

    class Stateful(beam.DoFn):
        BAG = BagStateSpec("b", coders.VarIntCoder())

        def process(
            self, kv: Any, bag: Any = beam.DoFn.StateParam(BAG), f: Any = beam.DoFn.BundleFinalizerParam
        ) -> Any:
            f.register(lambda: seen.append(kv))
            yield kv

    class Async(beam.DoFn):
        async def process(self, x: Any, f: Any = beam.DoFn.BundleFinalizerParam) -> Any:
            f.register(lambda: seen.append(("async", x)))
            yield x

    with beam.Pipeline() as p:
        _ = p | beam.Create([("a", 1), ("b", 2)]) | beam.ParDo(Stateful())
        _ = p | "More" >> beam.Create([5]) | beam.ParDo(Async())
    assert sorted(seen, key=repr) == [("a", 1), ("async", 5), ("b", 2)]


class _RenamingSink(iobase.Sink):
    """Beam's legacy Sink: each writer's file is renamed to `final-*` when its write is finalized."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def initialize_write(self) -> None:
        return None

    def open_writer(self, init_result: None, uid: str) -> Any:
        return _LinesWriter(self.folder / f"tmp-{uid}")

    def pre_finalize(self, init_result: None, writer_results: list[str]) -> None:
        return None

    def finalize_write(self, init_result: None, writer_results: list[str], pre: None) -> None:
        for path in writer_results:
            if os.path.exists(path):
                os.rename(path, self.folder / ("final-" + os.path.basename(path)[4:]))


class _LinesWriter(iobase.Writer):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "w")  # noqa: SIM115 - closed in close()

    def write(self, record: Any) -> None:
        self.file.write(f"{record}\n")

    def close(self) -> str:
        self.file.close()
        return str(self.path)


def _committed(folder: Path) -> set[str]:
    return {v for n in os.listdir(folder) if n.startswith("final-") for v in (folder / n).read_text().split()}


def test_over_several_checkpoints_each_callback_runs_after_its_own_checkpoint_committed(
    tmp_path: Path,
) -> None:
    from millstream.transforms.periodicsequence import PeriodicImpulse, RebaseMode

    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[str, set[str], str]] = []

    class Register(beam.DoFn):
        def process(self, t: float, finalizer: Any = beam.DoFn.BundleFinalizerParam) -> Any:
            value = f"{t:.2f}"
            finalizer.register(lambda: seen.append((value, _committed(out), threading.current_thread().name)))
            yield value

    flags = ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=0.05"]
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        ticks = p | PeriodicImpulse(0, 0.5, 0.01, rebase=RebaseMode.REBASE_ALL)
        _ = ticks | beam.ParDo(Register()) | beam.io.Write(_RenamingSink(out))
    everything = _committed(out)
    assert len(everything) == 50 and sorted(v for v, _, _ in seen) == sorted(everything)  # each once
    # each callback ran after the checkpoint covering its element had committed that element's file...
    assert all(value in committed for value, committed, _ in seen)
    # ...and not all at the end of the job: earlier ones saw only earlier checkpoints' output
    assert len({len(committed) for _, committed, _ in seen}) > 1
    assert min(len(committed) for _, committed, _ in seen) < len(everything)
    # off the event loop, so a slow callback stalls neither the loop nor the paused sources
    assert threading.main_thread().name not in {thread for _, _, thread in seen}


class _ClosingAdapter(BeamSinkAdapter):
    """A legacy sink whose writer records that it was closed."""

    def __init__(self, sink: Any, closed: list[bool]) -> None:
        super().__init__(sink)
        self.closed = closed

    def create_writer(self, options: Any, job: Any) -> Any:
        closed = self.closed

        class Closing(BeamSinkWriter):
            async def close(self) -> None:
                closed.append(True)

        return Closing(self.sink, self.per_checkpoint)


def test_a_failing_callback_fails_the_job_naming_its_step_after_the_sinks_closed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    seen: list[str] = []
    closed: list[bool] = []

    class Register(beam.DoFn):
        def process(self, x: str, finalizer: Any = beam.DoFn.BundleFinalizerParam) -> Any:
            def done() -> None:
                if x == "bad":
                    raise RuntimeError("ack refused")
                seen.append(x)

            finalizer.register(done)
            yield x

    with pytest.raises(Exception, match="ack refused") as info:
        with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path / 'state'}"])) as p:
            _ = (
                p
                | beam.Create(["a", "bad", "c"])
                | "Acks" >> beam.ParDo(Register())
                | io.Write(_ClosingAdapter(_RenamingSink(out), closed))
            )
    assert "Acks" in str(info.value)
    assert sorted(seen) == ["a", "c"]  # the other callbacks still ran, once each
    assert closed == [True]
    assert _committed(out) == {"a", "bad", "c"}  # the checkpoint had committed before the callbacks ran


def test_callbacks_waiting_between_checkpoints_are_bounded() -> None:
    finalizer = BundleFinalizer()
    finalizer.MAX_PENDING = 3
    ran: list[int] = []
    for i in range(5):
        finalizer.register(lambda i=i: ran.append(i))
    assert finalizer.skipped == 2
    finalizer.take("Step")()
    assert ran == [0, 1, 2] and finalizer.skipped == 0
    finalizer.register(lambda: ran.append(9))  # room again once the checkpoint took them
    finalizer.take("Step")()
    assert ran == [0, 1, 2, 9]
