"""fileio.MatchFiles / MatchContinuously / ReadMatches: matching as a source, each file emitted once."""

from __future__ import annotations

import gzip
import os

import pytest

import millstream as beam
from millstream.io import fileio
from millstream.options.pipeline_options import PipelineOptions


def test_match_files_and_read_matches(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    with gzip.open(tmp_path / "b.txt.gz", "wt") as f:
        f.write("beta\n")
    got = []
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s"])) as p:
        (
            p
            | fileio.MatchFiles(str(tmp_path / "*.txt*"))
            | fileio.ReadMatches()
            | beam.Map(
                lambda f: (os.path.basename(f.metadata.path), f.metadata.size_in_bytes > 0, f.read_utf8())
            )
            | beam.Map(got.append)
        )
    assert sorted(got) == [("a.txt", True, "alpha\n"), ("b.txt.gz", True, "beta\n")]
    with beam.Pipeline(options=PipelineOptions(["--state_backend=memory"])) as p:
        p | "empty glob is allowed" >> fileio.MatchFiles(str(tmp_path / "*.none"))
    with pytest.raises(ValueError, match="the glob matches no files"):
        beam.Pipeline() | fileio.MatchFiles(str(tmp_path / "*.none"), empty_match_treatment="DISALLOW")
    with pytest.raises(ValueError, match="no such file"):
        beam.Pipeline() | fileio.MatchFiles(str(tmp_path / "missing.txt"))


async def test_match_continuously_emits_each_new_file_once_across_a_restart(tmp_path):
    d = tmp_path / "in"
    d.mkdir()

    def build():
        p = beam.Pipeline(
            options=PipelineOptions(
                [f"--state_dir={tmp_path}/state", "--streaming", "--checkpoint_interval=0.05"]
            )
        )
        names = (
            p
            | fileio.MatchContinuously(str(d / "*.txt"), interval=0.02)
            | beam.Map(lambda m: os.path.basename(m.path))
        )
        return p, names

    p, names = build()
    job = await p.start()
    tap = aiter(job.tap(names))
    (d / "1.txt").write_text("x")
    assert await anext(tap) == "1.txt"
    (d / "2.txt").write_text("y")
    assert await anext(tap) == "2.txt"
    assert await job.drain() == "DONE"
    p, names = build()
    job = await p.start()
    tap = aiter(job.tap(names))
    (d / "3.txt").write_text("z")
    assert await anext(tap) == "3.txt"  # 1.txt and 2.txt were not emitted again first
    assert await job.drain() == "DONE"
