"""Watching a gs:// prefix lists incrementally (from the last name seen), with a periodic full rescan that
finds objects whose names sort before it: every object is read, each once."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from millstream.connectors.files.gcs import GcsFileSystem
from millstream.connectors.files.schemes import IncrementalLister, filesystem_for
from millstream.options.pipeline_options import PipelineOptions

pytestmark = pytest.mark.gcs

DEADLINE_S = 30.0


async def _reader(pattern: str, full_rescan_every: int) -> Any:
    from millstream.connectors.files.source import LineFileSource

    source = LineFileSource(pattern, watch=True, poll_interval=0.01)
    source.validate()
    reader = source.create_reader(PipelineOptions(["--no_progress"]))
    reader.full_rescan_every = full_rescan_every
    await reader.open(None)
    return reader


async def _read_until(reader: Any, got: list[str], done: Any) -> None:
    """Read batches until `done()` holds; fails after the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting; read so far: {sorted(got)}"
        got.extend((await reader.read()).values)


def test_gcs_lists_from_a_start_name(gcs_bucket: Any) -> None:
    for name in ["in/a.txt", "in/b.txt", "in/c.txt", "in/.hidden.txt", "in/c.csv", "other/d.txt"]:
        gcs_bucket.put(name, "x\n")
    fs = filesystem_for(gcs_bucket.url("in/"))
    assert isinstance(fs, GcsFileSystem) and isinstance(fs, IncrementalLister)

    def names(pattern: str, start: str) -> list[str]:
        return [
            i.path.removeprefix(gcs_bucket.url())
            for i in fs.match_from(gcs_bucket.url(pattern), gcs_bucket.url(start))
        ]

    assert names("in/*.txt", "in/b.txt") == ["in/b.txt", "in/c.txt"]  # inclusive, glob and hidden rules kept
    assert names("in/", "in/b") == ["in/b.txt", "in/c.csv", "in/c.txt"]
    assert names("in/*.txt", "in/zzz") == []
    assert names("in/a.txt", "in/b.txt") == []  # a single object that sorts before the start


async def test_watching_reads_new_names_before_and_after_the_last_seen_each_once(gcs_bucket: Any) -> None:
    for i in range(50):
        gcs_bucket.put(f"in/m{i:03d}.txt", f"m{i}\n")
    reader = await _reader(gcs_bucket.url("in/*.txt"), full_rescan_every=4)
    got: list[str] = []
    try:
        await _read_until(reader, got, lambda: len(got) >= 50)
        assert reader.last_listed == gcs_bucket.url("in/m049.txt")

        gcs_bucket.put("in/a-before.txt", "before\n")  # sorts before every name seen
        gcs_bucket.put("in/z-after.txt", "after\n")
        await _read_until(reader, got, lambda: "before" in got and "after" in got)
        # keep polling through two more full rescans: nothing is read again
        full = reader.full_polls
        await _read_until(reader, got, lambda: reader.full_polls >= full + 2)
    finally:
        await reader.close()
    counts = Counter(got)
    assert set(counts.values()) == {1}, [v for v, n in counts.items() if n > 1]
    assert sorted(counts) == sorted([f"m{i}" for i in range(50)] + ["before", "after"])
    assert reader.last_listed == gcs_bucket.url("in/z-after.txt")


async def test_an_incremental_poll_lists_only_what_sorts_at_or_after_the_last_name(gcs_bucket: Any) -> None:
    for i in range(30):
        gcs_bucket.put(f"in/m{i:03d}.txt", f"m{i}\n")
    reader = await _reader(gcs_bucket.url("in/*.txt"), full_rescan_every=1000)
    got: list[str] = []
    try:
        await _read_until(reader, got, lambda: len(got) >= 30)
        assert reader.full_polls == 1 and reader.listed == 30
        polls = reader.polls
        await _read_until(reader, got, lambda: reader.polls >= polls + 1)
        assert reader.listed == 1  # the last name seen (inclusive: a new generation of it is new input)
        gcs_bucket.put("in/m030.txt", "m30\n")
        gcs_bucket.put("in/m029.txt", "m29 again\n")  # a new generation of the last name seen
        await _read_until(reader, got, lambda: "m30" in got and "m29 again" in got)
        assert reader.full_polls == 1
    finally:
        await reader.close()
    assert Counter(got)["m29"] == 1 and len(got) == 32
