"""`DoFn.BundleFinalizerParam` (callbacks once the bundle's output is durably committed: after the covering
checkpoint's commit) and `DoFn.WatermarkEstimatorParam` with Beam's manual and monotonic estimators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import millstream as beam
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
