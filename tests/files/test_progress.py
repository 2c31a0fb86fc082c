"""Progress bars of bounded replays: drawn on a terminal (a real pseudo-terminal here), never otherwise,
never with --no_progress."""

from __future__ import annotations

import io

import millstream as beam
from millstream.connectors.files.progress import ProgressReader, wrap_progress
from millstream.io import ReadFromText
from millstream.options.pipeline_options import PipelineOptions

from support import jobs

JOB = """
import sys
import millstream as beam
from millstream.io import ReadFromText
from millstream.options.pipeline_options import PipelineOptions
with beam.Pipeline(options=PipelineOptions(sys.argv[2:])) as p:
    p | ReadFromText(sys.argv[1]) | beam.Map(len)
"""


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_on_terminal(tmp_path, *flags: str) -> str:
    """Run a replay with stderr on a pseudo-terminal; everything it drew there."""
    path = tmp_path / "in.txt"
    path.write_text("".join(f"line {i}\n" for i in range(20000)))
    return jobs.run_on_terminal(
        jobs.code_command(JOB, str(path), f"--state_dir={tmp_path}/state", "--batch_size=500", *flags),
        (40, 160),  # a 160-column terminal
    )


def test_a_terminal_shows_bytes_records_rate_and_the_end(tmp_path):
    drawn = run_on_terminal(tmp_path)
    assert "Text(" in drawn
    assert "20,000 records" in drawn
    assert "100%" in drawn and "B/s" in drawn and "records/s" in drawn


def test_no_progress_option_draws_nothing_even_on_a_terminal(tmp_path):
    assert run_on_terminal(tmp_path, "--no_progress") == ""


async def test_progress_only_when_the_stream_is_a_terminal(tmp_path, source):
    (tmp_path / "in.txt").write_text("a\nb\n")
    src = source(ReadFromText(str(tmp_path / "in.txt")))
    options = PipelineOptions([])
    plain = src.create_reader(options)
    assert wrap_progress(plain, options, "x", io.StringIO()) is plain
    assert wrap_progress(plain, PipelineOptions(["--no_progress"]), "x", FakeTty()) is plain
    screen = FakeTty()
    reader = wrap_progress(plain, options, "Text(in)", screen)
    assert isinstance(reader, ProgressReader)
    await reader.open(None)
    while await reader.read() is not None:
        pass
    assert reader.positions() == plain.positions()
    await reader.close()
    assert "2 records" in screen.getvalue() and "Text(in)" in screen.getvalue()


def test_the_option_is_known_to_every_pipeline():
    assert PipelineOptions(["--no_progress"]).unknown_flags() == []
    beam.Pipeline(options=PipelineOptions(["--no_progress"]))
