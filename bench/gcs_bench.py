"""GCS vs local throughput of the file connectors (text and Parquet, read and write), listing a 10k prefix and
one poll of a watched 10k prefix (full listing vs incremental).

Run against a server: ``STORAGE_EMULATOR_HOST=http://127.0.0.1:4443 python -P bench/gcs_bench.py [rows]``
(the tests' fake-gcs-server: ``$(bash tests/infra/go-build.sh gcs) -port 4443 &``). Prints each case's seconds
and the GCS/local ratio (>1: GCS is slower); the figures in docs/gcs.md come from here.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from typing import Any


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(rows: int = 300_000) -> None:
    """Run every case and print seconds and ratios."""
    import millstream as beam
    from millstream.connectors.files.gcs import GcsFileSystem
    from millstream.io import ReadFromParquet, ReadFromText, WriteToParquet, WriteToText
    from millstream.options.pipeline_options import PipelineOptions

    fs = GcsFileSystem()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    fs.client.create_bucket(bucket)
    local = tempfile.mkdtemp()
    lines = [f"{i},name-{i},{i * 7 % 1000}" for i in range(rows)]
    recs = [{"id": i, "name": f"name-{i}", "v": i * 7 % 1000} for i in range(rows)]

    def opts() -> PipelineOptions:
        return PipelineOptions([f"--state_dir={tempfile.mkdtemp()}", "--no_progress"])

    def write_text(base: str) -> None:
        with beam.Pipeline(options=opts()) as p:
            p | beam.Create(lines) | WriteToText(f"{base}/text/t", ".txt")

    def read_text(base: str) -> None:
        with beam.Pipeline(options=opts()) as p:
            p | ReadFromText(f"{base}/text/*.txt") | beam.combiners.Count.Globally()

    def write_pq(base: str) -> None:
        with beam.Pipeline(options=opts()) as p:
            p | beam.Create(recs) | WriteToParquet(f"{base}/pq/p", file_name_suffix=".parquet")

    def read_pq(base: str) -> None:
        with beam.Pipeline(options=opts()) as p:
            p | ReadFromParquet(f"{base}/pq/*.parquet") | beam.combiners.Count.Globally()

    for name, fn in [
        ("text write", write_text),
        ("text read", read_text),
        ("parquet write", write_pq),
        ("parquet read", read_pq),
    ]:
        t_local = _timed(lambda fn=fn: fn(local))
        t_gcs = _timed(lambda fn=fn: fn(f"gs://{bucket}"))
        print(f"{name:14s} {rows} rows: local {t_local:.2f}s  gcs {t_gcs:.2f}s  ratio {t_gcs / t_local:.2f}")

    b = fs.client.bucket(bucket)
    for i in range(10_000):
        b.blob(f"many/{i:05d}.txt").upload_from_string(b"x\n")
    t_list = _timed(lambda: fs.match(f"gs://{bucket}/many/*.txt"))
    print(f"listing 10k objects: {t_list:.2f}s (fs.match)")
    watch_polls(f"gs://{bucket}/many/*.txt")


def watch_polls(pattern: str, repeat: int = 5) -> None:
    """One poll of a watched prefix: a full listing (every poll before issue 17's incremental listing, every
    `FULL_RESCAN_EVERY`-th now) against an incremental one (the polls in between), and their amortized mean."""
    import anyio

    from millstream.connectors.files.source import LineFileSource
    from millstream.connectors.files.watch import DONE, FULL_RESCAN_EVERY
    from millstream.options.pipeline_options import PipelineOptions

    async def run() -> tuple[float, float, int, int]:
        reader = LineFileSource(pattern, watch=True).create_reader(PipelineOptions(["--no_progress"]))
        await reader.open(None)
        full: list[float] = []
        incremental: list[float] = []
        listed = [0, 0]
        for _ in range(repeat):
            for force_full, times, slot in ((True, full, 0), (False, incremental, 1)):
                reader.polls = 0 if force_full else 1  # poll 0 of each cycle lists everything
                t = time.perf_counter()
                await reader._poll()
                times.append(time.perf_counter() - t)
                listed[slot] = reader.listed
                while reader.queue:  # as if every queued object had been read
                    reader.pos[reader.queue.popleft()[0]] = DONE
        return min(full), min(incremental), listed[0], listed[1]

    t_full, t_inc, n_full, n_inc = anyio.run(run)
    every = FULL_RESCAN_EVERY
    amortized = (t_full + (every - 1) * t_inc) / every
    print(
        f"watch poll, 10k objects: full {t_full:.3f}s ({n_full} listed)  incremental {t_inc:.4f}s "
        f"({n_inc} listed)  mean with a full rescan every {every} polls {amortized:.3f}s  "
        f"ratio full/mean {t_full / amortized:.1f}"
    )


def watch_main() -> None:
    """Only the 10k-object cases: fill a fresh bucket, then list it and poll it as a watched prefix."""
    from millstream.connectors.files.gcs import GcsFileSystem

    fs = GcsFileSystem()
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    b = fs.client.create_bucket(bucket)
    for i in range(10_000):
        b.blob(f"many/{i:05d}.txt").upload_from_string(b"x\n")
    watch_polls(f"gs://{bucket}/many/*.txt")


if __name__ == "__main__":
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        sys.exit("set STORAGE_EMULATOR_HOST (see the module docstring) or credentials for a real bucket")
    if sys.argv[1:2] == ["watch"]:  # only the listing cases: ``python -P bench/gcs_bench.py watch``
        watch_main()
    else:
        main(*(int(a) for a in sys.argv[1:2]))
