"""Dead-letter records (raw bytes, Kafka-style keys and headers, Beam's error triples) are writable by the JSON,
text and CSV sinks, and an element a sink cannot encode fails the job naming the step and the element."""

from __future__ import annotations

import base64
import glob
import json

import pytest

import millstream as beam
from millstream.io.textio import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions


def _opts(tmp_path) -> PipelineOptions:
    return PipelineOptions(["--state_backend=memory", f"--state_dir={tmp_path}/state"])


def _lines(prefix: str) -> list[str]:
    return [line for path in sorted(glob.glob(prefix + "*")) for line in open(path, encoding="utf-8")]


def test_read_dead_letters_written_as_json(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"v": 1}\nnot json\n\xff\xfe{"v"\n{"v": 2}\n')
    with beam.Pipeline(options=_opts(tmp_path)) as p:
        _good, bad = p | ReadFromJson(str(src), with_dead_letters=True)
        bad | "WriteBad" >> WriteToJson(str(tmp_path / "bad"), file_name_suffix=".jsonl")
    rows = sorted((json.loads(line) for line in _lines(str(tmp_path / "bad"))), key=lambda r: r["line"])
    assert [(r["line"], r["raw_encoding"]) for r in rows] == [(2, "utf-8"), (3, "base64")]
    assert rows[0]["raw"] == "not json"
    assert base64.b64decode(rows[1]["raw"]) == b'\xff\xfe{"v"'
    assert all(r["reason"] and r["file"] == str(src) for r in rows)


def test_pardo_dead_letters_and_kafka_style_records_written_as_json_text_and_csv(tmp_path):
    def parse(s: str) -> int:
        return int(s)

    kafka_style = {
        "topic": "t",
        "partition": 0,
        "offset": 7,
        "key": b"\x80k",
        "raw": b"v",
        "headers": [("h", b"\xff")],
        "reason": "bad",
    }
    with beam.Pipeline(options=_opts(tmp_path)) as p:
        _good, bad = p | beam.Create(["1", "x"]) | "Parse" >> beam.Map(parse).with_exception_handling()
        bad | "Json" >> WriteToJson(str(tmp_path / "errors"))
        rec = p | "K" >> beam.Create([kafka_style])
        rec | "KJson" >> WriteToJson(str(tmp_path / "kj"))
        rec | "KCsv" >> beam.io.WriteToCsv(str(tmp_path / "kc"))
        rec | "KText" >> beam.io.WriteToText(str(tmp_path / "kt"))
    [err] = [json.loads(line) for line in _lines(str(tmp_path / "errors"))]
    assert err[0] == "x" and err[1][0] == "builtins.ValueError" and "invalid literal" in err[1][1]
    [k] = [json.loads(line) for line in _lines(str(tmp_path / "kj"))]
    assert (k["key"], k["key_encoding"]) == (base64.b64encode(b"\x80k").decode(), "base64")
    assert (k["raw"], k["raw_encoding"], k["headers"]) == ("v", "utf-8", [["h", {"base64": "/w=="}]])
    header, row = _lines(str(tmp_path / "kc"))
    assert "raw_encoding" in header and ",v,utf-8," in row
    assert _lines(str(tmp_path / "kt"))


def test_an_unencodable_element_names_the_step_and_the_element(tmp_path):
    class Opaque:
        def __repr__(self) -> str:
            return "Opaque()"

    p = beam.Pipeline(options=_opts(tmp_path))
    p | beam.Create([{"ok": 1}, {"x": Opaque()}]) | "WriteOut" >> WriteToJson(str(tmp_path / "out"))
    with pytest.raises(Exception, match=r"WriteOut.*\{'x': Opaque\(\)\}") as exc:
        p.run().wait_until_finish()
    assert "not JSON serializable" in str(exc.value)
