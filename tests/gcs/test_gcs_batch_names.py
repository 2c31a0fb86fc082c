"""Beam's batch names on gs://: a completed bounded run leaves exactly `<prefix><shard template><suffix>`
objects, merged from its per-checkpoint objects (one header; Avro and Parquet as one file) and uploaded under
ifGenerationMatch=0, also when a restart repeats the merge or a kill -9 hits the final checkpoint. Real
fake-gcs-server, real pipelines and subprocesses; the writer-level tests leave objects as a crash would."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pyarrow.parquet as pq
import pytest

import millstream as beam
from millstream.connectors.files.formats.avro import AvroFormat
from millstream.connectors.files.formats.parquet import ParquetFormat
from millstream.connectors.files.gcs_sink import CommitConflictError, GcsSinkWriter
from millstream.connectors.files.sink import FileFormat, TextFormat, encode_text
from millstream.io import WriteToText
from millstream.options.pipeline_options import PipelineOptions

from support.file_replay import JOB
from support.kill9 import KilledJob, script_command

pytestmark = pytest.mark.gcs


def writer(
    bucket: Any, fmt: FileFormat, shards: int = 1, suffix: str = ".txt", template: str = "-SSSSS-of-NNNNN"
) -> GcsSinkWriter:
    return GcsSinkWriter(bucket.url("out/t"), suffix, fmt, "job", shards, template, batch=True)


async def run_epochs(w: GcsSinkWriter, epochs: list[list[Any]]) -> Any:
    """Each epoch one checkpoint (1, 2, ...), the last the end of input; returns its (uncommitted) record."""
    await w.recover(None, None)
    for cid, values in enumerate(epochs[:-1], start=1):
        await w.write(values)
        await w.commit(cid, await w.prepare(cid))
    await w.write(epochs[-1])
    return await w.prepare_end_of_input(len(epochs))


def test_a_bounded_pipeline_writes_beams_names_on_gs(gcs_bucket, tmp_path):
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s", "--no_progress"])) as p:
        (
            p
            | beam.Create([f"r{i}" for i in range(1000)])
            | WriteToText(gcs_bucket.url("out/o"), ".txt", num_shards=3, header="H")
        )
    names = gcs_bucket.names("out/")
    assert names == [
        f"out/o-0000{i}-of-00003.txt" for i in range(3)
    ]  # nothing else: no parts, no temporaries
    bodies = [gcs_bucket.get(n).decode().splitlines() for n in names]
    assert [b[0] for b in bodies] == ["H"] * 3 and all("H" not in b[1:] for b in bodies)
    assert sorted(r for b in bodies for r in b[1:]) == sorted(f"r{i}" for i in range(1000))


def test_an_empty_template_and_empty_output_on_gs(gcs_bucket, tmp_path):
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s", "--no_progress"])) as p:
        p | beam.Create([]) | WriteToText(gcs_bucket.url("out/none"), ".txt", num_shards=2)
        (
            p
            | "One" >> beam.Create(["x"])
            | "W" >> WriteToText(gcs_bucket.url("out/one"), shard_name_template="")
        )
    assert gcs_bucket.names("out/") == [
        "out/none-00000-of-00002.txt",
        "out/none-00001-of-00002.txt",
        "out/one",
    ]
    assert [gcs_bucket.get(n) for n in gcs_bucket.names("out/")] == [b"", b"", b"x\n"]


async def test_checkpoints_merge_in_order_with_one_header(gcs_bucket):
    w = writer(gcs_bucket, TextFormat(encode_text, b"H\n", b"F\n"), shards=2)
    record = await run_epochs(w, [["a", "b"], ["c", "d"], ["e", "f"]])
    await w.commit(3, record)
    assert gcs_bucket.names("out/") == ["out/t-00000-of-00002.txt", "out/t-00001-of-00002.txt"]
    assert gcs_bucket.get("out/t-00000-of-00002.txt") == b"H\na\nc\ne\nF\n"
    assert gcs_bucket.get("out/t-00001-of-00002.txt") == b"H\nb\nd\nf\nF\n"


async def test_avro_and_parquet_checkpoints_merge_into_one_object(gcs_bucket):
    schema = {"type": "record", "name": "R", "fields": [{"name": "k", "type": "string"}]}
    avro = GcsSinkWriter(gcs_bucket.url("out/a"), ".avro", AvroFormat(schema), "job", 1, "", batch=True)
    await avro.commit(2, await run_epochs(avro, [[{"k": "x"}], [{"k": "y"}]]))
    assert [r["k"] for r in fastavro.reader(io.BytesIO(gcs_bucket.get("out/a.avro")))] == ["x", "y"]
    parquet = GcsSinkWriter(gcs_bucket.url("out/p"), ".parquet", ParquetFormat(), "job", 1, "", batch=True)
    await parquet.commit(2, await run_epochs(parquet, [[{"k": "x"}], [{"k": "y"}, {"k": "z"}]]))
    table = pq.read_table(io.BytesIO(gcs_bucket.get("out/p.parquet")))
    assert table.column("k").to_pylist() == ["x", "y", "z"]
    assert gcs_bucket.names("out/") == ["out/a.avro", "out/p.parquet"]


async def test_a_restart_repeats_the_merge_exactly_once(gcs_bucket):
    fmt = TextFormat(encode_text, b"H\n")
    record = await run_epochs(writer(gcs_bucket, fmt, shards=2), [["a", "b"], ["c", "d"], ["e", "f"]])
    expected = [b"H\na\nc\ne\n", b"H\nb\nd\nf\n"]
    targets = [t.removeprefix(gcs_bucket.url()) for t, _ in record["merge"]]

    # 1. killed after the durable write, before any of the commit: recovery does all of it
    again = writer(gcs_bucket, fmt, shards=2)
    await again.recover(3, record)
    assert gcs_bucket.names("out/") == targets
    assert [gcs_bucket.get(t) for t in targets] == expected
    generations = [again.fs.info(gcs_bucket.url(t)).generation for t in targets]

    # 2. killed after uploading the targets, while deleting the parts: a leftover part is removed, the
    # target neither merged again nor rewritten
    leftover = record["merge"][1][1][0]
    gcs_bucket.put(leftover.removeprefix(gcs_bucket.url()), "H\nstale\n")
    third = writer(gcs_bucket, fmt, shards=2)
    await third.recover(3, record)
    assert gcs_bucket.names("out/") == targets
    assert [gcs_bucket.get(t) for t in targets] == expected
    assert [third.fs.info(gcs_bucket.url(t)).generation for t in targets] == generations

    # 3. a later start of the completed run keeps the output
    assert await third.prepare_end_of_input(4) == {"completed": True}
    await third.commit(4, {"completed": True})
    assert [gcs_bucket.get(t) for t in targets] == expected


async def test_a_target_written_by_another_writer_is_not_overwritten(gcs_bucket):
    w = writer(gcs_bucket, TextFormat(), template="")
    record = await run_epochs(w, [["a"], ["b"]])
    gcs_bucket.put("out/t.txt", "zombie\n")  # written after this run's recovery removed the old output
    with pytest.raises(CommitConflictError, match=r"out/t\.txt already exists"):
        await w.commit(2, record)
    assert gcs_bucket.get("out/t.txt") == b"zombie\n"


async def test_a_new_run_removes_the_earlier_batch_output_first(gcs_bucket):
    first = writer(gcs_bucket, TextFormat(), template="")
    await first.commit(1, await run_epochs(first, [["old"]]))
    assert gcs_bucket.get("out/t.txt") == b"old\n"
    second = writer(gcs_bucket, TextFormat(), template="")
    await second.recover(None, None)
    assert gcs_bucket.names("out/") == []


def _rows(bucket: Any) -> list[tuple[str, int]]:
    rows = [(f"a{i}", i * 7 % 1000) for i in range(20_000)]
    bucket.put("in/a.csv", "id,v\n" + "".join(f"{k},{v}\n" for k, v in rows))
    return rows


@pytest.mark.crash
@pytest.mark.parametrize("step", [3, 4, 5, 6])
def test_kill9_in_the_final_checkpoint(gcs_bucket, tmp_path, step):
    """With one checkpoint only (the final one), killed at 3: sinks sealed, 4: writing it, 5: durable, merge
    not done (the restart does it), 6: merged, not resumed: each row lands once, under Beam's names only."""
    rows = _rows(gcs_bucket)
    job = KilledJob(
        script_command(
            JOB,
            gcs_bucket.url("in/*.csv"),
            gcs_bucket.url("out"),
            f"--state_dir={tmp_path}/state",
            "--checkpoint_interval=3600",
        ),
        timeout=180,
    )
    job.crash_at(step, 1)
    job.finish()
    names = gcs_bucket.names("out/")
    assert names == sorted(
        [f"out/text-0000{i}-of-00002.txt" for i in range(2)]
        + ["out/json-00000-of-00001.json"]
        + [f"out/csv-0000{i}-of-00003.csv" for i in range(3)]
    ), names
    text = [
        line
        for i in range(2)
        for line in gcs_bucket.get(f"out/text-0000{i}-of-00002.txt").decode().splitlines()
    ]
    assert text.count("id:v") == 2
    assert sorted(line for line in text if line != "id:v") == sorted(f"{k}:{v}" for k, v in rows)
