"""Benchmark of the windowed reducer alone on the reference workloads (W1/W2/W3), against a bare-Python loop.

Workload (the same generator as the project's bench-reference gen.py, seed 42): N events ``(key, t, v)``,
1000 keys, ~1000 events per second of event time, disorder up to 5 s, values 0..99.

* W1: tumbling 60 s windows, count+sum per key (dense keys);
* W2: sliding windows, size 60 s, period 10 s (dense keys);
* W3: sessions, gap 30 s (sparse keys).

The reducer gets batches of ``--batch`` events (keys, values and µs timestamps as lists), then the watermark
``max event time - 5 s``; at the end the watermark goes to +infinity. Its panes are checked against the
bare-Python streaming loop (`bench.reference.bare_stream`: the bench-reference's bare_stream.py logic, dict
state, same watermark), which also runs here, in the same process, as the speed-of-light reference.

    .venv/bin/python -P bench/reducer_bench.py [--n 1000000] [--batch 1000] [--tasks W1,W2,W3] [--general]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.model.trigger import AccumulationMode, DefaultTrigger
from millstream.engine.model.window import FixedWindows, Sessions, SlidingWindows
from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer, create_reducer

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(
        str(ROOT)
    )  # `bench` as a package, after site-packages (millstream stays the installed one)

from bench.data import events as make_events  # noqa: E402
from bench.pipelines import GAP_S, PERIOD_S, SIZE_S  # noqa: E402
from bench.reference import DELAY_S, bare_stream  # noqa: E402

Row = tuple[str, int, int, int, int]


# ---------------------------------------------------------------- the reducer


class CountSumFn:
    """count and sum of a pane, as a Beam CombineFn with a bulk add_inputs."""

    def create_accumulator(self) -> tuple[int, int]:
        return (0, 0)

    def add_input(self, acc: tuple[int, int], v: int) -> tuple[int, int]:
        return (acc[0] + 1, acc[1] + v)

    def add_inputs(self, acc: tuple[int, int], values: list[int]) -> tuple[int, int]:
        return (acc[0] + len(values), acc[1] + sum(values))

    def merge_accumulators(self, accs: Iterable[tuple[int, int]]) -> tuple[int, int]:
        c = s = 0
        for a in accs:
            c += a[0]
            s += a[1]
        return (c, s)

    def extract_output(self, acc: tuple[int, int]) -> tuple[int, int]:
        return (acc[0], acc[1])


def window_fn_of(task: str) -> Any:
    """The task's window fn."""
    if task == "W1":
        return FixedWindows(SIZE_S)
    if task == "W2":
        return SlidingWindows(SIZE_S, PERIOD_S)
    return Sessions(GAP_S)


def run_reducer(
    task: str, keys: list[str], values: list[int], ts: list[int], batch: int, general: bool
) -> list[Row]:
    """Feed the reducer in batches, watermark = max timestamp - 5 s after each; rows of its panes."""
    kwargs: dict[str, Any] = {
        "window_fn": window_fn_of(task),
        "trigger": DefaultTrigger(),
        "accumulation_mode": AccumulationMode.DISCARDING,
        "allowed_lateness_us": 0,
        "combine_fn": CountSumFn(),
    }
    reducer = Reducer(**kwargs) if general else create_reducer(**kwargs)
    panes = []
    delay = int(DELAY_S * 1_000_000)
    maxt = -(2**62)
    n = len(keys)
    for i in range(0, n, batch):
        tsb = ts[i : i + batch]
        panes.extend(reducer.process_bundle(keys[i : i + batch], values[i : i + batch], tsb))
        m = max(tsb)
        if m > maxt:
            maxt = m
        panes.extend(reducer.advance_input_watermark(maxt - delay))
    panes.extend(reducer.advance_input_watermark(MAX_MICROS))
    return [(k, w.start_us // 1000, w.end_us // 1000, val[0], val[1]) for k, w, val, _, _ in panes]


def bench_task(task: str, n: int, batch: int, general: bool, repeat: int) -> dict[str, Any]:
    """Time the bare loop and the reducer on one task; verify equal outputs."""
    events = make_events("sparse" if task == "W3" else "dense", n)
    keys = [e[0] for e in events]
    values = [e[2] for e in events]
    ts = [round(e[1] * 1000) * 1000 for e in events]
    best_bare = best_red = float("inf")
    ref: list[Row] = []
    rows: list[Row] = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        ref = bare_stream(task, events)
        best_bare = min(best_bare, time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        rows = run_reducer(task, keys, values, ts, batch, general)
        best_red = min(best_red, time.perf_counter() - t0)
    ok = sorted(rows) == sorted(ref)
    return {
        "task": task,
        "n": n,
        "windows_out": len(rows),
        "match": ok,
        "bare_s": round(best_bare, 3),
        "reducer_s": round(best_red, 3),
        "bare_ev_s": round(n / best_bare),
        "reducer_ev_s": round(n / best_red),
        "ratio": round(best_bare / best_red, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the chosen tasks and print one line per task."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--tasks", default="W1,W2,W3")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--general", action="store_true", help="force the general (non-fast-path) reducer")
    args = ap.parse_args(argv)
    ok = True
    for task in args.tasks.split(","):
        r = bench_task(task, args.n, args.batch, args.general, args.repeat)
        ok &= r["match"]
        print(
            f"{r['task']} n={r['n']} windows={r['windows_out']} match={r['match']} "
            f"bare={r['bare_ev_s'] / 1e6:.2f}M ev/s ({r['bare_s']}s) reducer={r['reducer_ev_s'] / 1e6:.2f}M ev/s "
            f"({r['reducer_s']}s) ratio={r['ratio']:.2f}x"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
