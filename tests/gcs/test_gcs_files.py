"""gs:// in the file connectors, against fake-gcs-server: globs, reads, writes, exactly-once commits,
overwritten objects, damaged objects, watching a prefix."""

from __future__ import annotations

import gzip
import time

import pytest

import millstream as beam
from millstream.connectors.files.filesystem import FileInputError, match_files
from millstream.connectors.files.gcs import GcsFileSystem, ObjectChangedError, glob_regex
from millstream.connectors.files.gcs_sink import CommitConflictError
from millstream.connectors.files.schemes import filesystem_for
from millstream.connectors.files.sink import FileSink
from millstream.connectors.files.source import FileSplit, LineCursor, TextDecoder
from millstream.io import ReadFromParquet, ReadFromText, WriteToParquet, WriteToText
from millstream.options.pipeline_options import PipelineOptions

pytestmark = pytest.mark.gcs


def run_collect(tmp_path, build, flags=()):
    got: list = []
    with beam.Pipeline(
        options=PipelineOptions([f"--state_dir={tmp_path}/state", "--no_progress", *flags])
    ) as p:
        build(p) | beam.Map(got.append)
    return got


def test_globs_have_beams_meaning(gcs_bucket):
    for name in [
        "in/a.txt",
        "in/b.txt",
        "in/c.csv",
        "in/sub/d.txt",
        "in/.hidden.txt",
        "in/.tmp/e.txt",
        "x.txt",
    ]:
        gcs_bucket.put(name, "x\n")
    url = gcs_bucket.url

    def names(pattern):
        return [p.removeprefix(url()) for p in match_files(url(pattern))]

    assert names("in/*.txt") == ["in/a.txt", "in/b.txt"]
    assert names("in/**.txt") == ["in/a.txt", "in/b.txt", "in/sub/d.txt"]
    assert names("in/?.txt") == ["in/a.txt", "in/b.txt"]
    assert names("in/[!a].*") == ["in/b.txt", "in/c.csv"]
    assert names("in") == ["in/a.txt", "in/b.txt", "in/c.csv"]  # a folder: its objects, not deeper, no hidden
    assert names("in/a.txt") == ["in/a.txt"]
    assert glob_regex("a/*/b").match("a/x/b") and not glob_regex("a/*/b").match("a/x/y/b")


def test_missing_inputs_fail_before_reading_naming_the_path(gcs_bucket):
    with pytest.raises(
        FileInputError, match=r"gs://no-such-bucket-x/a\.txt: the bucket no-such-bucket-x does not"
    ):
        beam.Pipeline() | ReadFromText("gs://no-such-bucket-x/a.txt")
    with pytest.raises(FileInputError, match="the glob matches no objects"):
        beam.Pipeline() | ReadFromText(gcs_bucket.url("in/*.txt"))
    with pytest.raises(ValueError, match="the bucket no-such-bucket-y does not exist"):
        beam.Pipeline() | beam.Create(["x"]) | WriteToText("gs://no-such-bucket-y/out/o")


def test_text_with_header_gzip_and_byte_range_splits_equals_the_local_run(gcs_bucket, tmp_path):
    lines = [f"line {i} " + "x" * (i % 37) for i in range(20000)]
    body = "header\n" + "\n".join(lines) + "\n"
    gcs_bucket.put("in/plain.txt", body)
    gcs_bucket.put("in/packed.txt.gz", gzip.compress(body.encode()))
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "plain.txt").write_text(body)
    (tmp_path / "local" / "packed.txt.gz").write_bytes(gzip.compress(body.encode()))

    def read(pattern):
        return lambda p: p | ReadFromText(pattern, skip_header_lines=1, desired_split_size=64 << 10)

    remote = run_collect(tmp_path / "r", read(gcs_bucket.url("in/*.txt*")))
    local = run_collect(tmp_path / "l", read(str(tmp_path / "local" / "*.txt*")))
    assert sorted(remote) == sorted(local) == sorted(lines * 2)


def test_write_to_text_on_gs_commits_each_record_once(gcs_bucket, tmp_path):
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s", "--no_progress"])) as p:
        (
            p
            | beam.Create([f"r{i}" for i in range(1000)])
            | WriteToText(gcs_bucket.url("out/o"), ".txt", num_shards=3, header="H")
        )
    names = gcs_bucket.names("out/")
    assert names == [f"out/o-0000{i}-of-00003.txt" for i in range(3)]  # a bounded run: Beam's names
    bodies = [gcs_bucket.get(n).decode().splitlines() for n in names]
    assert [b[0] for b in bodies] == ["H"] * 3
    assert sorted(r for b in bodies for r in b[1:]) == sorted(f"r{i}" for i in range(1000))
    # reading the output back through the source gives the same records
    back = run_collect(
        tmp_path / "b", lambda p: p | ReadFromText(gcs_bucket.url("out/o-*.txt"), skip_header_lines=1)
    )
    assert sorted(back) == sorted(f"r{i}" for i in range(1000))


def gs_writer(prefix, **kw):
    return FileSink(prefix, ".txt", **kw).create_writer(None, None)


async def test_a_replayed_commit_is_a_no_op_and_a_zombie_cannot_overwrite(gcs_bucket):
    prefix = gcs_bucket.url("out/o")
    w = gs_writer(prefix)
    await w.recover(None, None)
    await w.write(["a", "b"])
    record = await w.prepare(7)
    assert gcs_bucket.names("out/.o.millstream-tmp/")  # the temporary object exists before the commit
    await w.commit(7, record)
    final = record[0][1].removeprefix(gcs_bucket.url())
    assert gcs_bucket.names("out/") == [final]  # committed, temporary object gone
    generation = GcsFileSystem().info(record[0][1]).generation
    await w.commit(7, record)  # replay (the process died after committing, before recording it)
    assert gcs_bucket.names("out/") == [final]
    assert GcsFileSystem().info(record[0][1]).generation == generation  # not rewritten
    zombie = gs_writer(prefix)
    await zombie.write(["zombie"])
    zrecord = await zombie.prepare(7)
    with pytest.raises(CommitConflictError, match="already exists"):
        await zombie.commit(7, zrecord)
    assert gcs_bucket.get(final) == b"a\nb\n"


async def test_an_interrupted_commit_is_finished_by_recovery_and_leftovers_are_swept(gcs_bucket):
    prefix = gcs_bucket.url("out/o")
    w = gs_writer(prefix, num_shards=2)
    await w.recover(None, None)
    await w.write(["a", "b", "c"])
    record = await w.prepare(3)
    await w.write(["never durable"])
    await w.prepare(4)  # a later epoch whose checkpoint never became durable
    w._commit_one(3, *record[0])  # the process died after the first shard's commit
    w2 = gs_writer(prefix, num_shards=2)
    await w2.recover(3, record)
    assert gcs_bucket.names("out/") == [f[1].removeprefix(gcs_bucket.url()) for f in record]
    assert sorted(gcs_bucket.get(n.removeprefix(gcs_bucket.url())).decode() for _, n, _ in record) == [
        "a\nc\n",
        "b\n",
    ]
    # a live (prepared, not yet committed) temporary object survives the sweep of the next commit
    await w2.write(["d"])
    live = await w2.prepare(5)
    leftover = gcs_bucket.url(f"out/.o.millstream-tmp/{w2.tag}-deadrun-1-0.tmp")
    gcs_bucket.put(leftover.removeprefix(gcs_bucket.url()), "left by a killed run")
    await w2.write(["e"])
    nxt = await w2.prepare(6)
    await w2.commit(6, nxt)
    tmp_names = gcs_bucket.names("out/.o.millstream-tmp/")
    assert sorted(t.removeprefix(gcs_bucket.url()) for t, _, _ in live) == tmp_names
    assert not any("deadrun" in n for n in tmp_names)
    await w2.commit(5, live)
    assert gcs_bucket.names("out/.o.millstream-tmp/") == []


def test_an_object_overwritten_while_read_fails_clearly(gcs_bucket, monkeypatch):
    from millstream.connectors.files import gcs

    monkeypatch.setattr(gcs, "READ_CHUNK", 64 << 10)  # several ranged reads, not one
    gen = gcs_bucket.put("in/a.txt", "".join(f"{i}\n" for i in range(300000)))
    info = GcsFileSystem().info(gcs_bucket.url("in/a.txt"))
    split = FileSplit(info.path, 0, None, "uncompressed", info.size, gen)
    cursor = LineCursor(split, None, TextDecoder())
    cursor.BLOCK = 1 << 10
    values, _, _ = cursor.read_batch(10)
    assert values == [str(i) for i in range(10)]
    gcs_bucket.put("in/a.txt", "replaced\n")
    with pytest.raises(ObjectChangedError, match=r"in/a\.txt: the object was overwritten or deleted"):
        for _ in range(10000):
            cursor.read_batch(1000)
    cursor.close()


def test_damaged_objects_go_to_dead_letters_with_name_and_offset(gcs_bucket, tmp_path):
    good = "".join(f"{i}\n" for i in range(5000)).encode()
    gcs_bucket.put("in/truncated.txt.gz", gzip.compress(good)[:-200])
    gcs_bucket.put("in/bad.txt", b"ok\n\xff\xfe\nok2\n")
    dead = tmp_path / "dead.jsonl"
    got = run_collect(
        tmp_path,
        lambda p: p | ReadFromText(gcs_bucket.url("in/*"), validate=True),
        flags=(f"--dead_letters={dead}",),
    )
    import orjson

    letters = [orjson.loads(line) for line in dead.read_bytes().splitlines()]
    by_file = {d["file"]: d for d in letters}
    assert by_file[gcs_bucket.url("in/bad.txt")]["offset"] == 3
    gz = by_file[gcs_bucket.url("in/truncated.txt.gz")]
    assert "corrupt or truncated gzip" in gz["reason"] and 0 < gz["offset"] < len(good)
    assert "ok" in got and "ok2" in got and "4000" in got


async def test_a_watched_prefix_reads_new_objects_while_the_job_runs(gcs_bucket):
    from millstream.connectors.files.source import LineFileSource

    source = LineFileSource(gcs_bucket.url("in/*.txt"), watch=True, poll_interval=0.05)
    source.validate()
    reader = source.create_reader(PipelineOptions(["--no_progress"]))
    await reader.open(None)
    got: list = []

    async def read_until(n):
        deadline = time.monotonic() + 30
        while len(got) < n and time.monotonic() < deadline:
            batch = await reader.read()
            got.extend(batch.values)
        return got

    gcs_bucket.put("in/1.txt", "a\nb\n")
    assert sorted(await read_until(2)) == ["a", "b"]
    gcs_bucket.put("in/2.txt", "c\n")
    gcs_bucket.put("in/1.txt", "a2\n")  # overwritten: a new generation, read as new input
    assert sorted(await read_until(4)) == ["a", "a2", "b", "c"]
    positions = reader.positions()
    await reader.close()
    assert all("#" in k for k in positions)
    again = source.create_reader(PipelineOptions(["--no_progress"]))
    await again.open(positions)  # a restored reader reads nothing twice
    gcs_bucket.put("in/3.txt", "d\n")
    more: list = []
    deadline = time.monotonic() + 30
    while not more and time.monotonic() < deadline:
        more.extend((await again.read()).values)
    await again.close()
    assert more == ["d"]


def test_parquet_round_trip_on_gs(gcs_bucket, tmp_path):
    rows = [{"id": i, "name": f"n{i}"} for i in range(3000)]
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s", "--no_progress"])) as p:
        p | beam.Create(rows) | WriteToParquet(gcs_bucket.url("pq/rows"), file_name_suffix=".parquet")
    back = run_collect(tmp_path / "b", lambda p: p | ReadFromParquet(gcs_bucket.url("pq/*.parquet")))
    assert sorted(back, key=lambda r: r["id"]) == rows


def test_filesystem_create_open_rename_delete(gcs_bucket):
    fs = filesystem_for(gcs_bucket.url("x"))
    with fs.create(gcs_bucket.url("f/a.bin")) as f:
        f.write(b"hello")
    with fs.open_read(gcs_bucket.url("f/a.bin")) as f:
        f.seek(1)
        assert f.read() == b"ello"
    fs.rename([gcs_bucket.url("f/a.bin")], [gcs_bucket.url("f/b.bin")])
    assert gcs_bucket.names("f/") == ["f/b.bin"]
    fs.delete([gcs_bucket.url("f/b.bin"), gcs_bucket.url("f/missing")])
    assert gcs_bucket.names("f/") == []


def test_without_credentials_or_emulator_the_error_says_what_to_set(monkeypatch, tmp_path):
    from millstream.connectors.files import schemes

    monkeypatch.setattr(schemes, "_INSTANCES", {})  # a fresh client, made without the emulator
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(FileInputError, match="no Google Cloud credentials found.*STORAGE_EMULATOR_HOST"):
        beam.Pipeline() | ReadFromText("gs://some-bucket/x.txt")
