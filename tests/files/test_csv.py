"""ReadFromCsv / WriteToCsv: header handling, dicts, converters, bad arity as dead letters, sharded output."""

from __future__ import annotations

import collections
import glob
import os

import pytest

import millstream as beam
from millstream.io import ReadFromCsv, WriteToCsv
from millstream.options.pipeline_options import PipelineOptions


def test_round_trip_with_quotes_commas_and_shards(tmp_path):
    rows = [
        {"id": str(i), "name": f'n "{i}", ok' if i % 3 == 0 else f"n{i}", "note": "" if i % 5 else "x,y"}
        for i in range(250)
    ]
    prefix = str(tmp_path / "out" / "c")
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s1"])) as p:
        p | beam.Create(rows) | WriteToCsv(prefix, num_shards=2)
    files = sorted(glob.glob(prefix + "-*.csv"))
    assert len(files) == 2
    for f in files:
        assert open(f).readline() == "id,name,note\n"
    got = []
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s2"])) as p:
        p | ReadFromCsv(prefix + "-*.csv") | beam.Map(got.append)
    assert sorted(got, key=lambda r: int(r["id"])) == rows


def test_named_tuples_and_sequences_with_columns(tmp_path):
    Point = collections.namedtuple("Point", "x y")
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s"])) as p:
        p | "nt" >> beam.Create([Point(1, 2), Point(3, None)]) | "w1" >> WriteToCsv(str(tmp_path / "a"))
        (
            p
            | "seq" >> beam.Create([[1, 2]])
            | "w2" >> WriteToCsv(str(tmp_path / "b"), columns=["p", "q"], header=True)
        )
        p | "nh" >> beam.Create([[5, 6]]) | "w3" >> WriteToCsv(str(tmp_path / "c"), header=False)
    [a] = glob.glob(str(tmp_path / "a-*.csv"))
    [b] = glob.glob(str(tmp_path / "b-*.csv"))
    [c] = glob.glob(str(tmp_path / "c-*.csv"))
    assert sorted(open(a).read().splitlines()[1:]) == ["1,2", "3,"] and open(a).readline() == "x,y\n"
    assert open(b).read() == "p,q\n1,2\n"
    assert open(c).read() == "5,6\n"


async def test_header_names_skiprows_and_converters(tmp_path, read, source):
    path = tmp_path / "in.csv"
    path.write_text("# exported\nA,B\n1,x\n\n2,y\n")
    values, _, _ = await read(source(ReadFromCsv(str(path), skiprows=1)))
    assert values == [{"A": "1", "B": "x"}, {"A": "2", "B": "y"}]  # blank line skipped
    values, _, _ = await read(
        source(ReadFromCsv(str(path), skiprows=1, header=0, names=["a", "b"], converters={"a": int}))
    )
    assert values == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    values, _, _ = await read(
        source(
            ReadFromCsv(
                str(path),
                skiprows=2,
                header=None,
                names=["a", "b"],
                dtype={"a": float},
                filename_column="file",
                usecols=["a"],
            )
        )
    )
    assert values == [{"a": 1.0, "file": str(path)}, {"a": 2.0, "file": str(path)}]
    with pytest.raises(ValueError, match="header=None needs names"):
        ReadFromCsv(str(path), header=None)
    with pytest.raises(ValueError, match="splittable=False"):
        ReadFromCsv(str(path), splittable=False)


async def test_bad_rows_are_dead_letters_with_their_line_numbers(tmp_path, read, source):
    lines = ["a;b;c"] + [f"{i};{i};{i}" for i in range(300)]
    lines[10] = "9;9"  # too few fields
    lines[120] = "1;2;3;4"  # too many
    lines[200] = '7;"open;quote'  # a quote that never closes
    lines[250] = "x;1;1"  # fails the converter
    path = tmp_path / "in.csv"
    path.write_text("\n".join(lines) + "\n")
    values, errors, positions = await read(
        source(ReadFromCsv(str(path), sep=";", converters={"a": int}, desired_split_size=500)), batch_size=16
    )
    assert len(positions) > 2  # byte-range splits: later ones still know the header
    assert [e["line"] for e in errors] == [11, 121, 201, 251]
    assert "expected 3 fields (a, b, c), got 2" in errors[0]["reason"]
    assert "got 4" in errors[1]["reason"]
    assert "quoted field cannot span lines" in errors[2]["reason"]
    assert "column 'a': ValueError" in errors[3]["reason"]
    assert errors[0]["raw"] == b"9;9"
    assert len(values) == 300 - 4
    assert all(set(v) == {"a", "b", "c"} and isinstance(v["a"], int) for v in values)


def test_dead_letters_through_a_pipeline_and_compressed_input(tmp_path):
    import gzip

    with gzip.open(tmp_path / "in.csv.gz", "wt") as f:
        f.write("k,v\na,1\nb\nc,3\n")
    good, bad = [], []
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/s"])) as p:
        rows, errors = p | ReadFromCsv(str(tmp_path / "in.csv.gz"), with_dead_letters=True)
        rows | beam.Map(good.append)
        errors | "e" >> beam.Map(lambda e: bad.append((os.path.basename(e["file"]), e["line"])))
    assert sorted(r["k"] for r in good) == ["a", "c"]
    assert bad == [("in.csv.gz", 3)]
