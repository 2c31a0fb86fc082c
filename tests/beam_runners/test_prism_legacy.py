"""Beam's legacy IO (BoundedSource through Beam's Read, Sink through Beam's Write), a splittable DoFn, a bundle
finalizer, ReadAllFromText and declared type hints: translated to Beam's own forms, and on Prism the same as
locally."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

import apache_beam  # noqa: E402

import millstream as beam  # noqa: E402
from millstream.engine.translate.beam.legacy import (  # noqa: E402
    BeamBoundedSource,
    BeamRestrictionProvider,
    BeamSink,
    BeamWatermarkEstimatorProvider,
)
from millstream.engine.translate.beam.translator import translate  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402

from support.loading import load_by_value  # noqa: E402

HERE = Path(__file__).resolve().parent
cap = load_by_value(HERE / "capture.py", "_ms_prism_capture")
jobs = load_by_value(HERE / "legacy_jobs.py", "_ms_prism_legacy_jobs")


def _inputs(work: Path) -> None:
    (work / "in").mkdir(parents=True)
    (work / "in" / "one.txt").write_text("first\nsecond\n")
    (work / "in" / "two-a.txt").write_text("third\n")
    (work / "in" / "two-b.txt").write_text("fourth\nfifth\n")
    (work / "finalized").mkdir()
    (work / "sink").mkdir()


def _run_everything(flags: list[str], work: Path) -> dict[str, object]:
    _inputs(work)
    out = work / "out"
    out.mkdir()
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        jobs.everything(p, str(work), cap, str(out))
    results: dict[str, object] = dict(cap.read(str(out)))
    sink = work / "sink"
    results["sink_files"] = len(list(sink.glob("part-*.txt")))
    results["sink_lines"] = sorted(
        int(line) for f in sink.glob("part-*.txt") for line in f.read_text().splitlines()
    )
    results["sink_leftovers"] = sorted(p.name for p in (sink / ".tmp").iterdir())
    results["finalized"] = sorted(
        line for f in (work / "finalized").iterdir() for line in f.read_text().splitlines()
    )
    return results


def test_legacy_io_splittable_dofn_finalizer_and_read_all_translate_to_beams_own_forms(tmp_path):
    p = beam.Pipeline()
    jobs.everything(p, str(tmp_path), cap, str(tmp_path))
    bp = translate(p)
    found: dict[str, object] = {}

    class Visitor(apache_beam.pipeline.PipelineVisitor):
        def visit_transform(self, node: object) -> None:
            found[node.full_label] = node.transform  # type: ignore[attr-defined]

        def enter_composite_transform(self, node: object) -> None:
            found[node.full_label] = node.transform  # type: ignore[attr-defined]

    bp.visit(Visitor())
    read = found["Squares"]
    assert isinstance(read, apache_beam.io.Read) and isinstance(read.source, BeamBoundedSource)
    write = found["ToSink"]
    assert isinstance(write, apache_beam.io.Write) and isinstance(write.sink, BeamSink)
    (expand,) = [
        t for label, t in found.items() if label.startswith("Expand/") and isinstance(t, apache_beam.ParDo)
    ]
    sig = apache_beam.runners.common.DoFnSignature(expand.fn)
    assert sig.is_splittable_dofn()
    assert isinstance(sig.get_restriction_provider(), BeamRestrictionProvider)


def test_legacy_io_splittable_dofn_finalizer_and_read_all_on_prism_equal_local(prism_flags, tmp_path):
    local = _run_everything(["--runner=DirectRunner"], tmp_path / "local")
    prism = _run_everything(prism_flags, tmp_path / "prism")
    squares = sorted(i * i for i in range(10))
    assert local["squares"] == sorted(squares, key=repr)  # captures are sorted by repr
    assert local["sink_lines"] == squares and local["sink_files"] >= 1 and local["sink_leftovers"] == []
    assert local["expanded"] == sorted([("a", i) for i in range(7)] + [("b", 0), ("b", 1)], key=repr)
    assert local["passed"] == ["x", "y", "z"]
    assert local["finalized"] == ["x", "y", "z"]
    assert local["lines"] == sorted(
        [
            ("one.txt", "first"),
            ("one.txt", "second"),
            ("two-a.txt", "third"),
            ("two-b.txt", "fourth"),
            ("two-b.txt", "fifth"),
        ],
        key=repr,
    )
    # bundles differ (Beam decides them), so the number of sink files may too; their lines may not
    assert prism["sink_files"] >= 1
    del local["sink_files"], prism["sink_files"]
    assert prism == local


def test_declared_type_hints_reach_beam(tmp_path):
    p = beam.Pipeline()
    jobs.typed(p, cap, str(tmp_path))
    bp = translate(p)
    types: dict[str, object] = {}

    class Visitor(apache_beam.pipeline.PipelineVisitor):
        def visit_transform(self, node: object) -> None:
            for out in node.outputs.values():  # type: ignore[attr-defined]
                types[node.full_label] = out.element_type  # type: ignore[attr-defined]

    bp.visit(Visitor())
    from apache_beam.typehints import typehints as th

    len_type = next(t for label, t in types.items() if label.startswith("Len"))
    pair_type = next(t for label, t in types.items() if label.startswith("Pair"))
    assert len_type is int
    assert pair_type == th.Tuple[str, int]
    # Beam picks its coders from them: an int gets Beam's VarIntCoder, not the pickling fallback
    coder = apache_beam.coders.registry.get_coder(len_type)
    assert isinstance(coder, apache_beam.coders.VarIntCoder)


def test_type_hinted_pipeline_on_prism_equals_local(prism_flags, tmp_path):
    results = {}
    for name, flags in (("local", ["--runner=DirectRunner"]), ("prism", prism_flags)):
        out = tmp_path / name
        out.mkdir()
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            jobs.typed(p, cap, str(out))
        results[name] = cap.read(str(out))
    assert results["local"]["grouped"] == [("0", ("seq", (2,))), ("1", ("seq", (1, 3)))]
    assert results["prism"] == results["local"]


def test_watermark_estimators_translate_to_beams_provider(tmp_path):
    p = beam.Pipeline()
    jobs.estimated(p, cap, str(tmp_path))
    bp = translate(p)
    found: dict[str, object] = {}

    class Visitor(apache_beam.pipeline.PipelineVisitor):
        def visit_transform(self, node: object) -> None:
            found[node.full_label] = node.transform  # type: ignore[attr-defined]

    bp.visit(Visitor())
    for name in ("monotonic", "manual"):
        (ticks,) = [
            t
            for label, t in found.items()
            if label.startswith(f"Ticks[{name}]") and isinstance(t, apache_beam.ParDo)
        ]
        sig = apache_beam.runners.common.DoFnSignature(ticks.fn)
        assert sig.is_splittable_dofn()
        provider = sig.process_method.watermark_estimator_provider
        assert isinstance(provider, BeamWatermarkEstimatorProvider)
    # Beam's runner reads the user's estimator through the wrapper, in Beam's time
    beam_side = provider.create_watermark_estimator(provider.initial_estimator_state(("a", 3), None))
    beam_side.inner.set_watermark(beam.utils.timestamp.Timestamp(7))
    assert beam_side.current_watermark() == apache_beam.utils.timestamp.Timestamp(7)


def test_splittable_dofns_with_watermark_estimators_on_prism_equal_local(prism_flags, tmp_path):
    results = {}
    for name, flags in (("local", ["--runner=DirectRunner"]), ("prism", prism_flags)):
        out = tmp_path / name
        out.mkdir()
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            jobs.estimated(p, cap, str(out))
        results[name] = cap.read(str(out))
    local = results["local"]
    # each restriction's estimator starts at its start (10 * start); then the previous output's time
    monotonic = [("a", i, 10.0 * (i if i % 3 == 0 else i - 1), 10_000 * i) for i in range(7)]
    monotonic += [("b", 0, 0.0, 0), ("b", 1, 0.0, 10_000)]
    assert local["monotonic"] == sorted(monotonic, key=repr)
    manual = [("a", i, None if i % 3 == 0 else 10.0 * (i - 1), 10_000 * i) for i in range(7)]
    manual += [("b", 0, None, 0), ("b", 1, 0.0, 10_000)]
    assert local["manual"] == sorted(manual, key=repr)
    groups = [("a", 0, (0, 1, 2)), ("a", 25, (3, 4)), ("a", 50, (5, 6)), ("b", 0, (0, 1))]
    windows = sorted(
        [(k, start, ("seq", vs)) for k, start, vs in groups], key=repr
    )  # captures' canonical form
    assert local["monotonic_windows"] == windows and local["manual_windows"] == windows
    assert results["prism"] == local


def test_a_walltime_estimator_on_beam_reads_the_workers_clock():
    import time

    from millstream.engine.translate.beam.dofns import to_beam_timestamp, to_ms_timestamp
    from millstream.io.watermark_estimators import WalltimeWatermarkEstimator

    provider = BeamWatermarkEstimatorProvider(
        WalltimeWatermarkEstimator.default_provider(), to_beam_timestamp, to_ms_timestamp
    )
    before = time.time_ns() // 1000
    mark = provider.create_watermark_estimator(
        provider.initial_estimator_state("x", None)
    ).current_watermark()
    after = time.time_ns() // 1000
    assert isinstance(mark, apache_beam.utils.timestamp.Timestamp)
    assert before <= mark.micros <= after


def test_the_users_estimator_on_beam_is_called_through_beams_thread_safe_wrapper():
    import threading

    from apache_beam.runners.sdf_utils import ThreadsafeWatermarkEstimator

    from millstream.engine.translate.beam.dofns import to_beam_timestamp, to_ms_timestamp
    from millstream.engine.translate.beam.legacy import user_estimator
    from millstream.io.watermark_estimators import ManualWatermarkEstimator

    probe_done = threading.Event()
    blocked: list[bool] = []

    class Probing(ManualWatermarkEstimator):
        def set_watermark(self, timestamp):
            super().set_watermark(timestamp)
            # Beam's progress thread reads the watermark meanwhile: it must wait for this call to end
            reader = threading.Thread(target=lambda: (wrapper.current_watermark(), probe_done.set()))
            reader.start()
            blocked.append(not probe_done.wait(0.2))

    class Provider(beam.transforms.core.WatermarkEstimatorProvider):
        def initial_estimator_state(self, element, restriction):
            return None

        def create_watermark_estimator(self, estimator_state):
            return Probing(estimator_state)

    provider = BeamWatermarkEstimatorProvider(Provider(), to_beam_timestamp, to_ms_timestamp)
    wrapper = ThreadsafeWatermarkEstimator(provider.create_watermark_estimator(None))
    mine = user_estimator(wrapper)  # what Beam hands the DoFn, as the user's process sees it
    mine.set_watermark(beam.utils.timestamp.Timestamp(7))
    assert blocked == [True]  # the user's call held Beam's lock
    assert probe_done.wait(5)
    assert mine.current_watermark() == beam.utils.timestamp.Timestamp(7)  # millstream's time for the user
    assert wrapper.current_watermark() == apache_beam.utils.timestamp.Timestamp(7)  # Beam's for Beam
    with pytest.raises(TypeError, match="not the estimator of millstream's"):
        user_estimator(object())
