"""Continuous file input (``watch=True``): new files and appended lines are read while the job runs; a
restarted job neither skips nor re-reads; drain ends it with exactly-once output."""

from __future__ import annotations

import gzip
import os

import pytest

import millstream as beam
from millstream.connectors.files.source import DONE
from millstream.io import ReadFromJson, ReadFromText, WriteToText
from millstream.options.pipeline_options import PipelineOptions


def put(directory, name, text):
    """Create a file the robust way: write a hidden temporary file, then rename it."""
    tmp = directory / f".{name}.tmp"
    tmp.write_text(text)
    os.rename(tmp, directory / name)


def build(tmp_path, directory, out):
    p = beam.Pipeline(
        options=PipelineOptions(
            [f"--state_dir={tmp_path}/state", "--streaming", "--checkpoint_interval=0.05"]
        )
    )
    lines = p | ReadFromText(str(directory / "*.txt"), watch=True, poll_interval=0.02)
    lines | WriteToText(out, ".txt")
    return p, lines


async def test_new_files_and_appended_lines_are_read_while_running_and_after_restart(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    out = str(tmp_path / "out" / "lines")
    p, lines = build(tmp_path, d, out)
    job = await p.start()
    tap = aiter(job.tap(lines))
    put(d, "a.txt", "a1\na2\n")
    assert [await anext(tap), await anext(tap)] == ["a1", "a2"]
    with open(d / "a.txt", "a") as f:
        f.write("a3\na4")  # a4 has no newline yet: read once the file stops changing
    assert await anext(tap) == "a3"
    assert await anext(tap) == "a4"
    put(d, "b.txt", "b1\n")
    assert await anext(tap) == "b1"
    assert await job.drain() == "DONE"

    p, lines = build(tmp_path, d, out)  # the same job again, from its last checkpoint
    job = await p.start()
    tap = aiter(job.tap(lines))
    put(d, "c.txt", "c1\n")
    assert await anext(tap) == "c1"  # nothing of a.txt or b.txt came again first
    with open(d / "b.txt", "a") as f:
        f.write("b2\n")
    assert await anext(tap) == "b2"
    assert await job.drain() == "DONE"

    committed = []
    for name in sorted(os.listdir(tmp_path / "out")):
        if name.startswith("lines-c"):
            committed.extend(open(tmp_path / "out" / name).read().splitlines())
    assert sorted(committed) == ["a1", "a2", "a3", "a4", "b1", "b2", "c1"]


async def test_positions_cover_every_file_and_a_restored_reader_reads_only_what_is_new(tmp_path, source):
    d = tmp_path / "in"
    d.mkdir()
    src = source(ReadFromJson(str(d), watch=True, poll_interval=0.01))
    reader = src.create_reader(PipelineOptions(["--batch_size=2"]))
    await reader.open(None)
    put(d, "1.jsonl", '{"n": 1}\n{"n": 2}\n{"n": 3}\n')
    with gzip.open(d / "2.jsonl.gz", "wt") as f:
        f.write('{"n": 4}\n')
    got = []
    while len(got) < 4:
        batch = await reader.read()  # returns (possibly empty) at least once per poll interval
        assert batch is not None and not batch.finished
        got.extend(v["n"] for v in batch.values)
    positions = reader.positions()
    await reader.close()
    assert got == [1, 2, 3, 4]
    assert positions == {str(d / "1.jsonl"): [27, 3], str(d / "2.jsonl.gz"): DONE}

    with open(d / "1.jsonl", "a") as f:
        f.write('{"n": 5}\n')
    reader = src.create_reader(PipelineOptions(["--batch_size=2"]))
    await reader.open(positions)
    batch = await reader.read()
    while not batch.values:
        batch = await reader.read()
    assert [v["n"] for v in batch.values] == [5]
    await reader.close()


def test_watch_needs_an_existing_folder_but_not_files(tmp_path):
    (tmp_path / "empty").mkdir()
    beam.Pipeline() | ReadFromText(str(tmp_path / "empty" / "*.txt"), watch=True)
    with pytest.raises(ValueError, match="does not exist"):
        beam.Pipeline() | ReadFromText(str(tmp_path / "missing" / "*.txt"), watch=True)
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        ReadFromText(str(tmp_path / "empty"), watch=True, poll_interval=0)
