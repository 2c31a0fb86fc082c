"""Tagged TestStream outputs: locally each tag has its own elements and watermark (Beam's model); translated to
Beam's tagged TestStream, Prism gives the same output when the tags' watermarks advance together."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

from support.loading import load_by_value  # noqa: E402

HERE = Path(__file__).resolve().parent

import millstream as beam  # noqa: E402
from millstream.engine.translate.beam.dofns import UntranslatableError  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402
from millstream.testing.test_stream import TestStream  # noqa: E402

cap = load_by_value(HERE / "capture.py", "_ms_prism_capture")
jobs = load_by_value(HERE / "pipelines.py", "_ms_prism_pipelines")
LOCAL = ["--runner=DirectRunner"]


def run(flags: list[str], lockstep: bool, out: Path) -> dict[str, list[object]]:
    out.mkdir()
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        for tag, pc in jobs.sums_per_tag(p, jobs.tagged_stream(lockstep)).items():
            cap.capture(beam, pc, tag, str(out))
    return cap.read(str(out))


def test_a_tagged_stream_has_one_output_per_tag():
    stream = jobs.tagged_stream(lockstep=True)
    p = beam.Pipeline()
    outputs = p | stream
    assert sorted(outputs) == ["clicks", "views"]
    assert TestStream().add_elements([1]).tagged is False


def test_each_tag_has_its_own_watermark_locally(tmp_path):
    # clicks passed 15: its element at 5 is late (dropped), the one at 16 opens [10, 20); views still at
    # -inf takes its element at 6 into [0, 10)
    result = run(LOCAL, lockstep=False, out=tmp_path / "local")
    assert result == {"clicks": [(0.0, 3), (10.0, 5)], "views": [(0.0, 30)]}


def test_tagged_stream_on_prism_equals_local(prism_flags, tmp_path):
    local = run(LOCAL, lockstep=True, out=tmp_path / "local")
    assert local == {"clicks": [(0.0, 3), (10.0, 5)], "views": [(0.0, 10)]}  # both late elements dropped
    assert run(prism_flags, lockstep=True, out=tmp_path / "prism") == local


@pytest.mark.parametrize(
    "flags",
    [
        ["--runner=PrismRunner", "--prism_location=/nonexistent"],
        # Prism may sit behind a job endpoint: the refusal follows what the runner is, not its name
        ["--runner=PortableRunner", "--job_endpoint=localhost:1", "--environment_type=LOOPBACK"],
    ],
)
def test_a_tagged_stream_of_other_values_is_refused_on_portable_runners_in_one_line(flags):
    options = PipelineOptions(flags)
    p = beam.Pipeline(options=options)
    outputs = p | "Stream" >> TestStream().add_elements(["a"], tag="x").add_elements(["b"], tag="y")
    _ = outputs["x"] | beam.Map(str)
    with pytest.raises(UntranslatableError, match=r"^step 'Stream': Prism drops the output tags"):
        p.run()
