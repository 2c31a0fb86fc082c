"""Beam's file names in batch: a completed bounded run leaves exactly `<prefix><shard template><suffix>` files
(``shard_name_template=""`` is exactly the prefix), merged from its per-checkpoint files in checkpoint order with
one header and footer, also when a restart repeats the merge; streaming keeps the per-checkpoint names. Real
files, real pipelines; the writer-level tests put the files in the states a crash leaves them in."""

from __future__ import annotations

import gzip
import os
import shutil
from typing import Any

import fastavro
import pyarrow.parquet as pq
import pytest

import millstream as beam
from millstream.connectors.files.formats.avro import AvroFormat
from millstream.connectors.files.formats.csv import CsvDialect, CsvFormat
from millstream.connectors.files.formats.parquet import ParquetFormat
from millstream.connectors.files.sink import FileFormat, FileSinkWriter, TextFormat, encode_text
from millstream.io import WriteToText
from millstream.options.pipeline_options import PipelineOptions


def visible(directory: Any) -> list[str]:
    return sorted(os.listdir(directory))


def test_an_empty_template_writes_exactly_the_prefix(tmp_path: Any) -> None:
    out = tmp_path / "out"
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path / 'state'}"])) as p:
        (
            p
            | beam.Create(range(5))
            | beam.Map(str)
            | WriteToText(str(out / "result"), num_shards=1, shard_name_template="")
        )
    assert visible(out) == ["result"]  # nothing else, not even the hidden temporary folder
    assert (out / "result").read_text() == "0\n1\n2\n3\n4\n"


def test_an_empty_bounded_output_still_writes_its_shards(tmp_path: Any) -> None:
    out = tmp_path / "out"
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path / 'state'}"])) as p:
        p | beam.Create([]) | WriteToText(str(out / "none"), ".txt", num_shards=2)
    assert visible(out) == ["none-00000-of-00002.txt", "none-00001-of-00002.txt"]
    assert all((out / n).read_text() == "" for n in visible(out))


def test_streaming_keeps_the_per_checkpoint_names(tmp_path: Any) -> None:
    out = tmp_path / "out"
    opts = PipelineOptions(["--streaming", f"--state_dir={tmp_path / 'state'}"])
    with beam.Pipeline(options=opts) as p:
        (
            p
            | beam.Create(range(5))
            | beam.Map(str)
            | WriteToText(str(out / "result"), num_shards=1, shard_name_template="")
        )
    names = [n for n in visible(out) if not n.startswith(".")]
    assert len(names) == 1 and names[0].startswith("result-c") and "result" not in visible(out)


async def run_epochs(writer: FileSinkWriter, epochs: list[list[Any]], recover: bool = True) -> Any:
    """Write each epoch as one checkpoint (1, 2, ...), the last as the end of input; returns its record
    (not yet committed)."""
    if recover:
        await writer.recover(None, None)
    for cid, values in enumerate(epochs[:-1], start=1):
        await writer.write(values)
        await writer.commit(cid, await writer.prepare(cid))
    await writer.write(epochs[-1])
    return await writer.prepare_end_of_input(len(epochs))


def text_writer(
    prefix: str,
    fmt: FileFormat,
    suffix: str = ".txt",
    shards: int = 1,
    batch: bool = True,
    template: str = "-SSSSS-of-NNNNN",
) -> FileSinkWriter:
    return FileSinkWriter(prefix, suffix, fmt, "job", shards, template, batch=batch)


async def test_checkpoints_are_merged_in_order_with_one_header_and_footer_gzipped(tmp_path: Any) -> None:
    fmt = TextFormat(encode_text, b"HEAD\n", b"FOOT\n", "gzip")
    writer = text_writer(str(tmp_path / "t"), fmt, ".txt.gz")
    record = await run_epochs(writer, [["a", "b"], ["c"], ["d", "e"]])
    assert [os.path.basename(target) for target, _ in record["merge"]] == ["t-00000-of-00001.txt.gz"]
    assert len(record["merge"][0][1]) == 3
    await writer.commit(3, record)
    await writer.close()
    assert visible(tmp_path) == ["t-00000-of-00001.txt.gz"]
    with gzip.open(tmp_path / "t-00000-of-00001.txt.gz", "rt") as f:
        assert f.read() == "HEAD\na\nb\nc\nd\ne\nFOOT\n"


async def test_csv_shards_keep_one_header_line(tmp_path: Any) -> None:
    fmt = CsvFormat(None, True, CsvDialect(), "uncompressed", "c.csv")
    writer = text_writer(str(tmp_path / "c"), fmt, ".csv", shards=2)
    rows = [{"k": i, "v": i * 2} for i in range(7)]
    record = await run_epochs(writer, [rows[:3], rows[3:4], rows[4:]])
    await writer.commit(3, record)
    got = []
    for name in ["c-00000-of-00002.csv", "c-00001-of-00002.csv"]:
        lines = (tmp_path / name).read_text().splitlines()
        assert lines[0] == "k,v" and "k,v" not in lines[1:]
        got += lines[1:]
    assert sorted(got) == sorted(f"{i},{i * 2}" for i in range(7))


async def test_csv_rows_without_header_are_all_kept(tmp_path: Any) -> None:
    fmt = CsvFormat(None, True, CsvDialect(), "uncompressed", "c.csv")  # sequences: no header to write
    writer = text_writer(str(tmp_path / "c"), fmt, ".csv")
    record = await run_epochs(writer, [[[1, 2]], [[1, 2]], [[3, 4]]])  # equal first lines are data here
    await writer.commit(3, record)
    assert (tmp_path / "c-00000-of-00001.csv").read_text() == "1,2\n1,2\n3,4\n"


async def test_avro_and_parquet_checkpoints_merge_into_one_file(tmp_path: Any) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "v", "type": "long"}]}
    epochs = [[{"v": 1}, {"v": 2}], [{"v": 3}], [{"v": 4}]]
    avro = text_writer(str(tmp_path / "a"), AvroFormat(schema), ".avro")
    await avro.commit(3, await run_epochs(avro, epochs))
    with open(tmp_path / "a-00000-of-00001.avro", "rb") as f:
        assert [r["v"] for r in fastavro.reader(f)] == [1, 2, 3, 4]
    parquet = text_writer(str(tmp_path / "p"), ParquetFormat(), ".parquet")
    await parquet.commit(3, await run_epochs(parquet, epochs))
    assert pq.read_table(tmp_path / "p-00000-of-00001.parquet").column("v").to_pylist() == [1, 2, 3, 4]
    assert sorted(n for n in visible(tmp_path) if not n.startswith(".")) == [
        "a-00000-of-00001.avro",
        "p-00000-of-00001.parquet",
    ]


async def test_a_restart_repeats_the_merge_from_the_durable_record(tmp_path: Any) -> None:
    """Killed after the final checkpoint became durable, before (or during) its commit: the next start's
    `recover` with the recorded record gives each shard its content exactly once."""
    fmt = TextFormat(encode_text, b"H\n")
    epochs = [["a", "b"], ["c", "d"], ["e", "f"]]
    writer = text_writer(str(tmp_path / "t"), fmt, shards=2)
    record = await run_epochs(writer, epochs)
    expected = {0: "H\na\nc\ne\n", 1: "H\nb\nd\nf\n"}

    # 1. nothing of the commit happened: the epoch's temp files and the earlier parts are still there
    again = text_writer(str(tmp_path / "t"), fmt, shards=2)
    await again.recover(3, record)
    names = [os.path.basename(t) for t, _ in record["merge"]]
    assert visible(tmp_path)[1:] == names  # [0] is the hidden temporary folder
    assert [(tmp_path / n).read_text() for n in names] == [expected[0], expected[1]]

    # 2. merged and renamed, killed while deleting the parts: the part left over is removed, the file kept
    leftover = record["merge"][1][1][0]
    shutil.copy(tmp_path / names[0], leftover)  # any content: it must not be merged again
    third = text_writer(str(tmp_path / "t"), fmt, shards=2)
    await third.recover(3, record)
    assert not os.path.exists(leftover)
    assert [(tmp_path / n).read_text() for n in names] == [expected[0], expected[1]]

    # 3. a run after the completed one (restored, nothing more to read) keeps the output as it is
    assert await third.prepare_end_of_input(4) == {"completed": True}
    await third.commit(4, {"completed": True})
    assert [(tmp_path / n).read_text() for n in names] == [expected[0], expected[1]]


async def test_a_new_run_of_a_bounded_job_removes_the_earlier_output_first(tmp_path: Any) -> None:
    fmt = TextFormat()
    first = text_writer(str(tmp_path / "t"), fmt, template="")
    await first.commit(1, await run_epochs(first, [["old"]]))
    assert (tmp_path / "t.txt").read_text() == "old\n"
    second = text_writer(str(tmp_path / "t"), fmt, template="")
    await second.recover(None, None)  # a completed job starts afresh
    assert not (tmp_path / "t.txt").exists()


async def test_streaming_writers_ignore_the_end_of_input(tmp_path: Any) -> None:
    writer = text_writer(str(tmp_path / "t"), TextFormat(), batch=False)
    record = await run_epochs(writer, [["a"], ["b"]])
    assert isinstance(record, list)  # the ordinary per-checkpoint record
    await writer.commit(2, record)
    assert [n for n in visible(tmp_path) if not n.startswith(".")] == [
        "t-c00000001-00000-of-00001.txt",
        "t-c00000002-00000-of-00001.txt",
    ]


def test_a_missing_part_without_the_target_is_an_error(tmp_path: Any) -> None:
    writer = text_writer(str(tmp_path / "t"), TextFormat())
    (tmp_path / "t-c00000001-00000-of-00001.txt").write_text("a\n")
    with pytest.raises(FileNotFoundError, match="parts of it are missing"):
        writer._finish_shard(
            0,
            str(tmp_path / "t.txt"),
            [
                str(tmp_path / "t-c00000001-00000-of-00001.txt"),
                str(tmp_path / "t-c00000002-00000-of-00001.txt"),
            ],
        )
