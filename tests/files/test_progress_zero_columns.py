"""A terminal that reports 0 columns still gets its progress bar (tqdm alone draws nothing at width 0):
a real pseudo-terminal sized 0x0, a real replay in a subprocess."""

from __future__ import annotations

import os

from support import jobs

JOB = """
import sys
import millstream as beam
from millstream.io import ReadFromText
from millstream.options.pipeline_options import PipelineOptions
with beam.Pipeline(options=PipelineOptions(sys.argv[2:])) as p:
    p | ReadFromText(sys.argv[1]) | beam.Map(len)
"""


def drawn_on_a_zero_column_terminal(tmp_path, columns_env: str | None) -> str:
    path = tmp_path / "in.txt"
    path.write_text("".join(f"line {i}\n" for i in range(20000)))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns_env is not None:
        env["COLUMNS"] = columns_env
    return jobs.run_on_terminal(
        jobs.code_command(JOB, "in.txt", "--state_dir=state", "--batch_size=500"),
        (0, 0),
        env=env,
        cwd=str(tmp_path),
    )


def last_bar(drawn: str) -> str:
    return [part for part in drawn.replace("\r\n", "\r").split("\r") if part.strip()][-1]


def test_a_terminal_reporting_zero_columns_gets_an_80_column_bar(tmp_path):
    drawn = drawn_on_a_zero_column_terminal(tmp_path, None)
    final = last_bar(drawn)
    assert "Text(" in final and "100%" in final and "20,000 records" in final, repr(drawn[-500:])
    assert len(final) <= 80


def test_columns_from_the_environment_when_the_terminal_reports_none(tmp_path):
    final = last_bar(drawn_on_a_zero_column_terminal(tmp_path, "150"))
    assert "100%" in final and 80 < len(final) <= 150
