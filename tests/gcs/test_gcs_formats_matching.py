"""gs:// for Avro (write and read back, sharded), bz2/xz/zip compressed text equal to the local run, and
fileio.MatchFiles/ReadMatches and MatchContinuously as pipelines on a bucket prefix (fake-gcs-server)."""

from __future__ import annotations

import bz2
import io
import lzma
import zipfile

import pytest

import millstream as beam
from millstream.io import ReadFromAvro, ReadFromText, WriteToAvro, fileio
from millstream.options.pipeline_options import PipelineOptions

pytestmark = pytest.mark.gcs

SCHEMA = {
    "type": "record",
    "name": "Event",
    "fields": [{"name": "k", "type": "string"}, {"name": "v", "type": "long"}],
}
ROWS = [{"k": f"k{i % 7}", "v": i} for i in range(3000)]


def collect(tmp_path, name, build) -> list:
    got: list = []
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/{name}", "--no_progress"])) as p:
        build(p) | beam.Map(got.append)
    return got


def test_avro_round_trip_on_gs(gcs_bucket, tmp_path):
    prefix = gcs_bucket.url("out/ev")
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/w", "--no_progress"])) as p:
        p | beam.Create(ROWS) | WriteToAvro(prefix, SCHEMA, file_name_suffix=".avro", num_shards=2)
    assert gcs_bucket.names("out/") == ["out/ev-00000-of-00002.avro", "out/ev-00001-of-00002.avro"]
    got = collect(tmp_path, "r", lambda p: p | ReadFromAvro(prefix + "-*.avro"))
    assert sorted(got, key=lambda r: r["v"]) == ROWS


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    "ext,pack", [("bz2", bz2.compress), ("xz", lzma.compress), ("zip", lambda b: _zip("in.txt", b))]
)
def test_compressed_text_on_gs_equals_the_local_run(gcs_bucket, tmp_path, ext, pack):
    body = ("header\n" + "".join(f"line {i}\n" for i in range(5000))).encode()
    gcs_bucket.put(f"in/a.txt.{ext}", pack(body))
    (tmp_path / f"a.txt.{ext}").write_bytes(pack(body))
    remote = collect(
        tmp_path, "r", lambda p: p | ReadFromText(gcs_bucket.url("in/*.txt.*"), skip_header_lines=1)
    )
    local = collect(
        tmp_path, "l", lambda p: p | ReadFromText(str(tmp_path / f"*.txt.{ext}"), skip_header_lines=1)
    )
    assert remote == local == [f"line {i}" for i in range(5000)]


def test_match_files_and_read_matches_on_gs(gcs_bucket, tmp_path):
    gcs_bucket.put("in/a.txt", "alpha\n")
    gcs_bucket.put("in/b.txt.bz2", bz2.compress(b"beta\n"))
    gcs_bucket.put("in/c.csv", "no\n")
    got = collect(
        tmp_path,
        "m",
        lambda p: (
            p
            | fileio.MatchFiles(gcs_bucket.url("in/*.txt*"))
            | fileio.ReadMatches()
            | beam.Map(lambda f: (f.metadata.path, f.metadata.size_in_bytes > 0, f.read_utf8()))
        ),
    )
    assert sorted(got) == [
        (gcs_bucket.url("in/a.txt"), True, "alpha\n"),
        (gcs_bucket.url("in/b.txt.bz2"), True, "beta\n"),
    ]
    with pytest.raises(ValueError, match="the glob matches no objects"):
        beam.Pipeline() | fileio.MatchFiles(gcs_bucket.url("in/*.none"), empty_match_treatment="DISALLOW")


async def test_match_continuously_on_gs_emits_each_new_object_once_across_a_restart(gcs_bucket, tmp_path):
    def build():
        p = beam.Pipeline(
            options=PipelineOptions(
                [f"--state_dir={tmp_path}/state", "--streaming", "--checkpoint_interval=0.05"]
            )
        )
        names = (
            p
            | fileio.MatchContinuously(gcs_bucket.url("in/*.txt"), interval=0.02)
            | beam.Map(lambda m: m.path.rpartition("/")[2])
        )
        return p, names

    p, names = build()
    job = await p.start()
    tap = aiter(job.tap(names))
    gcs_bucket.put("in/1.txt", "x")
    assert await anext(tap) == "1.txt"
    gcs_bucket.put("in/2.txt", "y")
    assert await anext(tap) == "2.txt"
    assert await job.drain() == "DONE"
    p, names = build()
    job = await p.start()
    tap = aiter(job.tap(names))
    gcs_bucket.put("in/3.txt", "z")
    assert await anext(tap) == "3.txt"  # 1.txt and 2.txt were not emitted again first
    assert await job.drain() == "DONE"
