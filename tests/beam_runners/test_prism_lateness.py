"""The lateness boundary: when is an element too late for its window?

Beam's Python SDK (apache_beam/transforms/trigger.py: ``input_watermark > window.end + allowed_lateness``) and
millstream, whose oracle it is, drop an element only once the watermark is strictly past the window's *end*
plus the allowed lateness. Prism (like Java) drops it once the watermark is past the window's *max timestamp*
(end minus 1 ms there) plus the lateness. So with FixedWindows(10), lateness 0 and the watermark exactly at 10,
an element at 5 is kept locally and by Beam's Python runner, and dropped on Prism; at watermark 15 all drop it.
The same TestStream pipeline runs on the three; the watermarks that avoid the boundary give the same panes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apache_beam")

import apache_beam  # noqa: E402
from apache_beam.options.pipeline_options import PipelineOptions as BeamPipelineOptions  # noqa: E402
from apache_beam.testing.test_stream import TestStream as BeamTestStream  # noqa: E402

import millstream as beam  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402
from millstream.testing.test_stream import TestStream  # noqa: E402

from support.loading import load_by_value  # noqa: E402

HERE = Path(__file__).resolve().parent
cap = load_by_value(HERE / "capture.py", "_ms_prism_capture")

#: (watermark the late element arrives at, that element's timestamp); the on-time element is at 1
EXACT_END = 10.0  # the watermark exactly at the end of the window [0, 10)
PAST_MS = 10.001  # 1 ms past it: the first watermark both rules agree is past end + lateness
BEFORE_MAX = 9.998  # before the window's max timestamp in ms (9.999): both keep a late-arriving element


def _events(kind: Any, ts_cls: Any, late_watermark: float) -> Any:
    return (
        kind()
        .add_elements([ts_cls(("k", 1), 1)])
        .advance_watermark_to(late_watermark)
        .add_elements([ts_cls(("k", 5), 5)])
        .advance_watermark_to(15)
        .add_elements([ts_cls(("k", 7), 7)])
        .advance_watermark_to_infinity()
    )


def _windowed_sums(b: Any, stream: Any, out: str) -> None:
    p_sums = (
        stream
        | "Window" >> b.WindowInto(b.window.FixedWindows(10))
        | "Sum" >> b.CombinePerKey(sum)
        | "WithWindow" >> b.Map(lambda kv, w=b.DoFn.WindowParam: (kv[0], float(w.start), kv[1]))
    )
    cap.capture(b, p_sums, "sums", out)


def run_millstream(flags: list[str], late_watermark: float, out: Path) -> list[Any]:
    out.mkdir(parents=True)
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        _windowed_sums(beam, p | _events(TestStream, beam.window.TimestampedValue, late_watermark), str(out))
    return cap.read(str(out))["sums"]


def run_beam_python(late_watermark: float, out: Path) -> list[Any]:
    """The oracle: the same pipeline written with apache_beam, on Beam's own Python DirectRunner."""
    out.mkdir(parents=True)
    options = BeamPipelineOptions(["--runner=DirectRunner", "--streaming"])
    with apache_beam.Pipeline(options=options) as p:
        events = _events(BeamTestStream, apache_beam.window.TimestampedValue, late_watermark)
        _windowed_sums(apache_beam, p | events, str(out))
    return cap.read(str(out))["sums"]


@pytest.fixture
def loopback(prism_endpoint: str) -> list[str]:
    return ["--runner=PortableRunner", f"--job_endpoint={prism_endpoint}", "--environment_type=LOOPBACK"]


def test_at_watermark_equal_to_the_window_end_local_and_beam_python_keep_the_element_prism_drops_it(
    loopback, tmp_path
):
    local = run_millstream(["--runner=DirectRunner"], EXACT_END, tmp_path / "local")
    oracle = run_beam_python(EXACT_END, tmp_path / "oracle")
    prism = run_millstream(loopback, EXACT_END, tmp_path / "prism")
    # [0, 10): the on-time pane (1), then the element at 5, kept (one late pane, discarding); 7 is dropped
    assert local == [("k", 0.0, 1), ("k", 0.0, 5)]
    assert local == oracle
    # Prism: at watermark 10 the window's max timestamp (9.999) is passed, so the element at 5 is dropped
    assert prism == [("k", 0.0, 1)]


@pytest.mark.parametrize("late_watermark", [PAST_MS, BEFORE_MAX])
def test_watermarks_off_the_boundary_give_the_same_panes_everywhere(loopback, tmp_path, late_watermark):
    local = run_millstream(["--runner=DirectRunner"], late_watermark, tmp_path / "local")
    oracle = run_beam_python(late_watermark, tmp_path / "oracle")
    prism = run_millstream(loopback, late_watermark, tmp_path / "prism")
    if late_watermark == PAST_MS:
        assert local == [("k", 0.0, 1)]  # 5 arrives past end + lateness: dropped by every rule
    else:
        assert local == [("k", 0.0, 6)]  # the watermark has not passed [0, 10): 1 and 5 fire together
    assert oracle == local
    assert prism == local
