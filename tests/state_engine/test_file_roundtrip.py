"""JSON-lines file source -> windowed aggregation -> exactly-once file sink, with RocksDB checkpoints."""

from __future__ import annotations

import glob
import json
import os

import pytest

import millstream as beam
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import window


def write_events(path, events):
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")


def read_output(prefix):
    rows = []
    for name in sorted(glob.glob(prefix + "*")):
        with open(name) as f:
            rows.extend(json.loads(line) for line in f)
    return rows


def build(p, src, out):
    (
        p
        | ReadFromJson(src, timestamp_fn=lambda e: e["t"])
        | beam.Map(lambda e: (e["k"], e["v"]))
        | beam.WindowInto(window.FixedWindows(10))
        | beam.CombinePerKey(sum)
        | beam.Map(lambda kv, w=beam.DoFn.WindowParam: [kv[0], int(w.start), kv[1]])
        | WriteToJson(out)
    )


def expected(events):
    sums = {}
    for e in events:
        key = (e["k"], e["t"] // 10 * 10)
        sums[key] = sums.get(key, 0) + e["v"]
    return sorted([k, s, v] for (k, s), v in sums.items())


def test_batch_replay_writes_each_result_once_and_a_rerun_writes_it_afresh(tmp_path):
    events = [{"k": f"k{i % 3}", "t": i, "v": i} for i in range(100)]
    src = tmp_path / "in.jsonl"
    write_events(src, events)
    out = str(tmp_path / "out" / "counts")
    opts = ["--state_dir", str(tmp_path / "state"), "--batch_size=7"]
    with beam.Pipeline(options=PipelineOptions(opts)) as p:
        build(p, str(src), out)
    assert sorted(read_output(out)) == expected(events)
    assert os.listdir(tmp_path / "out") == [
        "counts-00000-of-00001.json"
    ]  # Beam's batch name; no temporary files
    with beam.Pipeline(options=PipelineOptions(opts)) as p:
        build(p, str(src), out)
    assert sorted(read_output(out)) == expected(events)


def test_missing_input_fails_before_reading(tmp_path):
    p = beam.Pipeline()
    with pytest.raises(ValueError, match="no such file"):
        p | ReadFromJson(str(tmp_path / "nope.jsonl"))
    with pytest.raises(ValueError, match="matches no files"):
        p | "g" >> ReadFromJson(str(tmp_path / "*.jsonl"))
    with pytest.raises(ValueError, match="hdfs:// scheme is not supported"):
        p | "s" >> ReadFromJson("hdfs://bucket/x.jsonl")


def test_bad_lines_go_to_dead_letters_with_line_numbers(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"k": "a", "t": 1, "v": 1}\nnot json\n{"k": "a", "t": 2, "v": 2}\n')
    got = {}
    with beam.Pipeline(options=PipelineOptions(["--state_backend=memory"])) as p:
        good, bad = p | ReadFromJson(str(src), with_dead_letters=True)
        good | "g" >> beam.Map(lambda e: got.setdefault("good", []).append(e["v"]))
        bad | "b" >> beam.Map(
            lambda r: got.setdefault("bad", []).append((r["line"], r["raw"], "JSON" in r["reason"]))
        )
    assert sorted(got["good"]) == [1, 2]
    assert got["bad"] == [(2, b"not json", True)]
