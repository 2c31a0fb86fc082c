"""The README's flights example (examples/streaming/flights.py) reading gs:// input and writing gs:// output
gives the same files, byte for byte, as the same slice run on local files (issue 17's end-to-end item)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support import flights_reference as REF

pytestmark = pytest.mark.gcs


def _csv(header: str, rows: list[dict[str, str]]) -> str:
    columns = header.split(",")
    return header + "\n" + "".join(",".join(r[c] for c in columns) + "\n" for r in rows)


def _header(path: Path) -> str:
    import zipfile

    with zipfile.ZipFile(path) as z, z.open(z.namelist()[0]) as f:
        return f.readline().decode().rstrip("\n")


def test_flights_from_gs_to_gs_equals_the_local_run(gcs_bucket: Any, tmp_path: Path) -> None:
    example = REF.load_example()
    data = REF.data_dir()
    # two January days and 1 October (months out of file order), plus every flight that left at 24:00, with
    # the cancelled flights among them (the dead-letter output), as tests/examples' slice test
    flights = [
        r
        for r in REF.read_rows(data / "flights.csv.zip")
        if (r["month"], r["day"]) in (("1", "1"), ("1", "2"), ("10", "1")) or r["dep_time"] == "2400"
    ]
    assert any(r["dep_time"] == "NA" for r in flights)
    inputs = {
        "flights.csv": _csv(_header(data / "flights.csv.zip"), flights),
        "weather.csv": (data / "weather.csv").read_text(encoding="utf-8"),
        "airlines.csv": (data / "airlines.csv").read_text(encoding="utf-8"),
    }
    local_in = tmp_path / "in"
    local_in.mkdir()
    for name, text in inputs.items():
        (local_in / name).write_text(text, encoding="utf-8")
        gcs_bucket.put(f"in/{name}", text)

    def run(source: str, output: str, state: Path) -> Any:
        return example.run(
            [
                f"--flights={source}/flights.csv",
                f"--weather={source}/weather.csv",
                f"--airlines={source}/airlines.csv",
                f"--output={output}",
                f"--state_dir={state}",
                "--no_progress",
            ],
            quiet=True,
        )

    local = run(str(local_in), str(tmp_path / "out"), tmp_path / "state-local")
    remote = run(gcs_bucket.url("in"), gcs_bucket.url("out"), tmp_path / "state-gcs")

    local_files = {p.name: p.read_bytes() for p in sorted((tmp_path / "out").iterdir()) if p.is_file()}
    remote_files = {name.removeprefix("out/"): gcs_bucket.get(name) for name in gcs_bucket.names("out/")}
    assert (
        sorted(remote_files)
        == sorted(local_files)
        == ["cancelled-00000-of-00001.json", "hourly-00000-of-00001.json", "late-00000-of-00001.json"]
    )
    # a dead letter names the file it came from: the same records once the input's location is swapped
    local_path = str(local_in / "flights.csv").encode()
    remote_path = gcs_bucket.url("in/flights.csv").encode()
    assert remote_path in remote_files["cancelled-00000-of-00001.json"]
    remote_files["cancelled-00000-of-00001.json"] = remote_files["cancelled-00000-of-00001.json"].replace(
        remote_path, local_path
    )
    for name, content in local_files.items():
        assert remote_files[name] == content, name
    assert local_files["hourly-00000-of-00001.json"]  # not two empty runs agreeing
    # summarize() read the gs:// output back through the filesystem interface
    assert remote.rows == local.rows and len(remote.rows) > 100
    assert (remote.panes, remote.cancelled, remote.late) == (local.panes, local.cancelled, local.late)
    assert remote.cancelled == sum(r["dep_time"] == "NA" for r in flights)
