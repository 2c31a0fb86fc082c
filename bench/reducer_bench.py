"""Benchmark of the windowed reducer alone on the reference workloads (W1/W2/W3), against a bare-Python loop.

Workload (the same generator as the project's bench-reference gen.py, seed 42): N events ``(key, t, v)``,
1000 keys, ~1000 events per second of event time, disorder up to 5 s, values 0..99.

* W1: tumbling 60 s windows, count+sum per key (dense keys);
* W2: sliding windows, size 60 s, period 10 s (dense keys);
* W3: sessions, gap 30 s (sparse keys).

The reducer gets batches of ``--batch`` events (keys, values and µs timestamps as lists), then the watermark
``max event time - 5 s``; at the end the watermark goes to +infinity. Its panes are checked against the
bare-Python streaming loop (the bench-reference's bare_stream.py logic: dict state, same watermark),
which also runs here, in the same process, as the speed-of-light reference.

    .venv/bin/python -P -m bench.reducer_bench [--n 1000000] [--batch 1000] [--tasks W1,W2,W3] [--general]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import time
from collections.abc import Iterable
from typing import Any

from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.model.trigger import AccumulationMode, DefaultTrigger
from millstream.engine.model.window import FixedWindows, Sessions, SlidingWindows
from millstream.engine.runtime.reducer import Reducer, create_reducer

BASE_MS = 1_700_000_000 * 1000
NKEYS = 1000
SIZE_S, PERIOD_S, GAP_S = 60, 10, 30
DELAY_S = 5.0

Row = tuple[str, int, int, int, int]


def gen_dense(n: int, seed: int = 42) -> list[tuple[str, float, int]]:
    """Dense keys: every event picks one of 1000 keys uniformly (gen.py's dense variant)."""
    rnd = random.Random(seed)
    ks = [f"k{i:03d}" for i in range(NKEYS)]
    out = []
    for i in range(n):
        delay = rnd.randint(0, 5000) if rnd.random() < 0.1 else rnd.randint(0, 20)
        out.append((ks[rnd.randrange(NKEYS)], (BASE_MS + i - delay) / 1000, rnd.randint(0, 99)))
    return out


def gen_sparse(n: int, seed: int = 42) -> list[tuple[str, float, int]]:
    """Sparse keys: each key alternates active/idle periods (gen.py's sparse variant)."""
    rnd = random.Random(seed + 1)
    ks = [f"k{i:03d}" for i in range(NKEYS)]
    active: list[int] = []
    pos: dict[int, int] = {}
    heap: list[tuple[int, int]] = []
    is_active = [False] * NKEYS
    for k in range(NKEYS):
        if rnd.random() < 0.35:
            is_active[k] = True
            pos[k] = len(active)
            active.append(k)
            heapq.heappush(heap, (rnd.randint(0, 60_000), k))
        else:
            heapq.heappush(heap, (rnd.randint(0, 120_000), k))
    out = []
    for i in range(n):
        while heap and heap[0][0] <= i:
            when, k = heapq.heappop(heap)
            if is_active[k]:
                p = pos.pop(k)
                last = active.pop()
                if last != k:
                    active[p] = last
                    pos[last] = p
                is_active[k] = False
                heapq.heappush(heap, (when + rnd.randint(10_000, 120_000), k))
            else:
                pos[k] = len(active)
                active.append(k)
                is_active[k] = True
                heapq.heappush(heap, (when + rnd.randint(5_000, 60_000), k))
        delay = rnd.randint(0, 5000) if rnd.random() < 0.1 else rnd.randint(0, 20)
        t = (BASE_MS + i - delay) / 1000
        k = active[rnd.randrange(len(active))] if active else rnd.randrange(NKEYS)
        out.append((ks[k], t, rnd.randint(0, 99)))
    return out


# ---------------------------------------------------------------- bare-Python streaming reference


def bare_windows(events: Iterable[tuple[str, float, int]], size: int, period: int, out: list[Row]) -> None:
    """bare_stream.py's fixed/sliding loop: {window index: {key: [count, sum]}}, closed at the watermark."""
    per = size // period
    wins: dict[int, dict[str, list[int]]] = {}
    next_close: int | None = None
    maxt = float("-inf")
    pm, sm = period * 1000, size * 1000
    for k, t, v in events:
        if t > maxt:
            maxt = t
            wm = t - DELAY_S
            while next_close is not None and (next_close * period + size) <= wm:
                d = wins.pop(next_close, None)
                if d:
                    base = next_close * pm
                    for kk, (c, s) in d.items():
                        out.append((kk, base, base + sm, c, s))
                next_close = min(wins) if wins else None
        last = int(t // period)
        for p in range(last - per + 1, last + 1):
            if p * period + size <= maxt - DELAY_S:
                continue
            d = wins.get(p)
            if d is None:
                d = wins[p] = {}
                if next_close is None or p < next_close:
                    next_close = p
            a = d.get(k)
            if a is None:
                d[k] = [1, v]
            else:
                a[0] += 1
                a[1] += v
    for p in sorted(wins):
        base = p * pm
        for kk, (c, s) in wins[p].items():
            out.append((kk, base, base + sm, c, s))


def _session_add(sessions: list[list[int]], tm: int, v: int, gap: int) -> None:
    hit = None
    i = 0
    while i < len(sessions):
        s = sessions[i]
        if s[0] - gap < tm < s[1] + gap:
            if hit is None:
                hit = s
                if tm < s[0]:
                    s[0] = tm
                if tm > s[1]:
                    s[1] = tm
                s[2] += 1
                s[3] += v
            else:
                hit[0] = min(hit[0], s[0])
                hit[1] = max(hit[1], s[1])
                hit[2] += s[2]
                hit[3] += s[3]
                sessions.pop(i)
                continue
        i += 1
    if hit is None:
        sessions.append([tm, tm, 1, v])


def bare_sessions(events: Iterable[tuple[str, float, int]], out: list[Row]) -> None:
    """bare_stream.py's session loop: per-key session lists and a heap of per-key timers."""
    gap = GAP_S * 1000
    acc: dict[str, list[list[int]]] = {}
    timers: list[tuple[int, str]] = []
    pending: set[str] = set()
    maxms = -1
    delay_ms = int(DELAY_S * 1000)
    for k, t, v in events:
        tm = round(t * 1000)
        if tm > maxms:
            maxms = tm
            wm = tm - delay_ms
            while timers and timers[0][0] <= wm:
                _, kk = heapq.heappop(timers)
                pending.discard(kk)
                ss = acc.get(kk)
                if not ss:
                    continue
                keep = []
                for s in ss:
                    if s[1] + gap <= wm:
                        out.append((kk, s[0], s[1] + gap, s[2], s[3]))
                    else:
                        keep.append(s)
                if keep:
                    acc[kk] = keep
                    heapq.heappush(timers, (min(s[1] for s in keep) + gap, kk))
                    pending.add(kk)
                else:
                    del acc[kk]
        if tm + gap <= maxms - delay_ms:
            continue
        ss = acc.get(k)
        if ss is None:
            acc[k] = [[tm, tm, 1, v]]
        else:
            _session_add(ss, tm, v, gap)
        if k not in pending:
            heapq.heappush(timers, (min(s[1] for s in acc[k]) + gap, k))
            pending.add(k)
    for kk, ss in acc.items():
        for s in ss:
            out.append((kk, s[0], s[1] + gap, s[2], s[3]))


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
    events = gen_sparse(n) if task == "W3" else gen_dense(n)
    keys = [e[0] for e in events]
    values = [e[2] for e in events]
    ts = [round(e[1] * 1000) * 1000 for e in events]
    best_bare = best_red = float("inf")
    ref: list[Row] = []
    rows: list[Row] = []
    for _ in range(repeat):
        gc.collect()
        ref = []
        t0 = time.perf_counter()
        if task == "W3":
            bare_sessions(events, ref)
        else:
            bare_windows(events, SIZE_S, PERIOD_S if task == "W2" else SIZE_S, ref)
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
