"""(c) a stateful DoFn with timers and (d) a file-to-file job with windows: locally and on Prism, the same."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

import millstream as beam  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402

from support.loading import load_by_value  # noqa: E402

HERE = Path(__file__).resolve().parent
cap = load_by_value(HERE / "capture.py", "_ms_prism_capture")
jobs = load_by_value(HERE / "pipelines.py", "_ms_prism_pipelines")


def test_stateful_dofn_with_timers_on_prism_equals_local(prism_flags, tmp_path):
    results = {}
    for name, flags in (("local", ["--runner=DirectRunner"]), ("prism", prism_flags)):
        out = tmp_path / name
        out.mkdir()
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            cap.capture(beam, jobs.stateful(p), "flushed", str(out))
        results[name] = cap.read(str(out))
    expected = [
        ("a", 0.0, ("seq", (1, 3)), 2, True),
        ("a", 10.0, ("seq", (4,)), 1, True),
        ("b", 0.0, ("seq", (2,)), 1, True),
        ("b", 20.0, ("seq", (5, 6)), 2, True),
        ("c", 30.0, ("seq", (7,)), 1, True),
    ]
    assert results["local"]["flushed"] == expected
    assert results["prism"] == results["local"]


def test_ordered_list_state_in_the_global_window_on_prism_equals_local(prism_flags, tmp_path):
    """Ordered-list state keyed by millstream timestamps and read back on a global-window timer (Beam's
    cookbook ordered_window_elements): the keys must come back as millstream `Timestamp`s on Prism too."""
    results = {}
    for name, flags in (("local", ["--runner=DirectRunner"]), ("prism", prism_flags)):
        out = tmp_path / name
        out.mkdir()
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            cap.capture(beam, jobs.ordered(p), "sorted", str(out))
        results[name] = cap.read(str(out))
    expected = [
        ("j", ("seq", ((7.0, 7),)), ("seq", ()), ("seq", (7,)), True),
        ("k", ("seq", ((1.0, 1), (2.0, 2), (3.0, 3), (4.0, 4))), ("seq", (2, 3, 4)), ("seq", (3, 4)), True),
    ]
    assert results["local"]["sorted"] == expected
    assert results["prism"] == results["local"]


def test_file_to_file_windows_on_prism_equals_local(prism_flags, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("".join(f"k{i % 3},{i},{i * 17.5}\n" for i in range(40)))
    outputs = {}
    for name, flags in (("local", ["--runner=DirectRunner"]), ("prism", prism_flags)):
        prefix = tmp_path / name / "sums"
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            jobs.files(p, str(src), str(prefix))
        # millstream names files by checkpoint epoch too (sums-c00000002-00000-of-00001.csv); Beam does not
        written = sorted(Path(prefix).parent.glob("sums*-00000-of-00001.csv"))
        assert len(written) == 1, (name, written)
        outputs[name] = sorted(written[0].read_text().splitlines())
    expected: dict[tuple[str, float], int] = {}
    for i in range(40):
        start = float(int(i * 17.5 // 60) * 60)
        expected[(f"k{i % 3}", start)] = expected.get((f"k{i % 3}", start), 0) + i
    assert outputs["local"] == sorted(f"{k},{v},{start}" for (k, start), v in expected.items())
    assert outputs["prism"] == outputs["local"]
