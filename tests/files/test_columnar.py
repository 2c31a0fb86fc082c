"""ReadFromAvro / WriteToAvro (fastavro) and ReadFromParquet / WriteToParquet (pyarrow): round trips,
sharding, and restores from mid-file positions."""

from __future__ import annotations

import glob

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import millstream as beam
from millstream.io import ReadFromAvro, ReadFromParquet, WriteToAvro, WriteToParquet
from millstream.options.pipeline_options import PipelineOptions

SCHEMA = {
    "type": "record",
    "name": "Event",
    "fields": [
        {"name": "k", "type": "string"},
        {"name": "v", "type": "long"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}
ROWS = [{"k": f"k{i % 7}", "v": i, "tags": [str(i)] * (i % 3)} for i in range(1200)]


def run(tmp_path, name, build):
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/{name}", "--batch_size=100"])) as p:
        build(p)


@pytest.mark.parametrize("codec", ["deflate", "null"])
def test_avro_round_trip_sharded(tmp_path, codec):
    prefix = str(tmp_path / "out" / "ev")
    run(
        tmp_path,
        "w",
        lambda p: (
            p
            | beam.Create(ROWS)
            | WriteToAvro(prefix, SCHEMA, codec=codec, file_name_suffix=".avro", num_shards=3)
        ),
    )
    files = sorted(glob.glob(prefix + "-*-of-00003.avro"))
    assert len(files) == 3
    with open(files[0], "rb") as f:
        assert fastavro.reader(f).codec == codec
    got = []
    run(tmp_path, "r", lambda p: p | ReadFromAvro(prefix + "-*") | beam.Map(got.append))
    assert sorted(got, key=lambda r: r["v"]) == ROWS


async def test_avro_restore_from_mid_block_positions(tmp_path, read, source):
    path = str(tmp_path / "in.avro")
    with open(path, "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(SCHEMA), ROWS, sync_interval=500)  # many small blocks
    src = source(ReadFromAvro(path))
    out, positions = [], None
    while True:
        values, _, positions = await read(src, batch_size=37, positions=positions, max_batches=3)
        out.extend(values)
        if not values:
            break
    assert out == ROWS
    assert positions == {path: "done"}


def test_avro_needs_a_valid_schema(tmp_path):
    with pytest.raises(ValueError, match="needs a schema"):
        WriteToAvro(str(tmp_path / "x"))
    with pytest.raises(ValueError, match="bad Avro schema"):
        WriteToAvro(
            str(tmp_path / "x"), {"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]}
        )
    with pytest.raises(ValueError, match="codec='gzip' is not an Avro codec"):
        WriteToAvro(str(tmp_path / "x"), SCHEMA, codec="gzip")


@pytest.mark.parametrize(
    "schema", [None, pa.schema([("k", pa.string()), ("v", pa.int64()), ("tags", pa.list_(pa.string()))])]
)
def test_parquet_round_trip_with_given_or_inferred_schema(tmp_path, schema):
    prefix = str(tmp_path / "out" / "ev")
    run(
        tmp_path,
        "w",
        lambda p: (
            p
            | beam.Create(ROWS)
            | WriteToParquet(
                prefix,
                schema,
                codec="snappy",
                file_name_suffix=".parquet",
                num_shards=2,
                record_batch_size=50,
                row_group_buffer_size=2000,
            )
        ),
    )
    files = sorted(glob.glob(prefix + "-*.parquet"))
    assert len(files) == 2
    assert pq.ParquetFile(files[0]).metadata.num_row_groups > 1  # row groups cut by buffered bytes
    got = []
    run(tmp_path, "r", lambda p: p | ReadFromParquet(prefix + "-*") | beam.Map(got.append))
    assert sorted(got, key=lambda r: r["v"]) == ROWS
    cols = []
    run(tmp_path, "c", lambda p: p | ReadFromParquet(prefix + "-*", columns=["v"]) | beam.Map(cols.append))
    assert sorted(r["v"] for r in cols) == list(range(1200)) and set(cols[0]) == {"v"}


async def test_parquet_restore_at_row_group_and_row(tmp_path, read, source):
    path = str(tmp_path / "in.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS), path, row_group_size=100)
    src = source(ReadFromParquet(path))
    out, positions, seen = [], None, []
    while True:
        values, _, positions = await read(src, batch_size=45, positions=positions, max_batches=2)
        out.extend(values)
        seen.append(positions[path])
        if not values:
            break
    assert out == ROWS
    assert [4, 50] in seen  # 90 + 90 + ... rows: a restore in the middle of row group 4
    assert positions == {path: "done"}


def test_bad_inputs_fail_clearly(tmp_path):
    (tmp_path / "x.avro").write_bytes(b"not avro")
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(Exception, match="not an Avro container file"):
        run(tmp_path, "a", lambda p: p | ReadFromAvro(str(tmp_path / "x.avro")))
    with pytest.raises(Exception, match="not a Parquet file"):
        run(tmp_path, "p", lambda p: p | ReadFromParquet(str(tmp_path / "x.parquet")))
    with pytest.raises(ValueError, match="the glob matches no files"):
        beam.Pipeline() | ReadFromParquet(str(tmp_path / "*.pq"))
    with pytest.raises(ValueError, match="schema must be a pyarrow.Schema"):
        WriteToParquet(str(tmp_path / "o"), schema={"a": "int"})
