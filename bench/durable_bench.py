"""Benchmark: durable state (RocksDB, incremental checkpoints, bounded memory) against the same engine in memory.

Part 1, throughput: W1/W2/W3 (the anchor workloads of `bench.data`, written once as JSON lines) through a
millstream pipeline that reads the file in ``--streaming`` mode, once with RocksDB state and
``--checkpoint_interval=10`` and once with ``--state_backend=memory`` (same checkpoints, into memory);
a run of these sizes spans few 10 s intervals, so the comparison is repeated with 1 s checkpoints.
Each run is a fresh process; the time is the pipeline's (start to end, imports excluded; wall time, or with
``--clock cpu`` the process's CPU time, which a shared machine disturbs less); runs of the two
modes alternate and the median is reported. Ratio = memory time / durable time (target >= 0.7). Both
outputs are checked against the bare-Python reference before anything is reported.

Part 2, large state: a job holding N (key, window) entries (N distinct keys in one 2-hour fixed window,
reading a watched file so the job keeps running), ``--state_cache_entries=1000000``; and a session job
with N keys (per-key state, whose restore reads every key's record to rebuild the in-memory timer index).
Measured: with ``--due-at F`` a checkpoint taken once a fraction F of the input is read, while the rest
flows at full speed; the first checkpoint after the input (every entry new), an incremental one after 1% of
the keys changed, the longest pause of the sources for each (`Checkpointer.last_pause_s`), the longest
event-loop stall during each (`Checkpointer.last_loop_stall_s`: a 1 ms callback's worst lateness), records
written, peak RSS, and the recovery time (restoring the latest checkpoint in a new process).

    .venv/bin/python -P bench/durable_bench.py [--events 2000000] [--repeat 3] [--intervals 10,1]
                  [--sizes 1000000,10000000] [--session-sizes 1000000] [--cache 1000000] [--tasks W1,W2,W3]
                  [--skip-large] [--skip-throughput] [--clock wall|cpu] [--ahead-wait S] [--due-at F]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.7
if str(ROOT) not in sys.path:
    sys.path.append(
        str(ROOT)
    )  # `bench` as a package, after site-packages (millstream stays the installed one)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-P", __file__, "--child", *args], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _digest(rows: list[tuple[Any, ...]]) -> str:
    h = hashlib.sha256()
    for r in sorted(rows):
        h.update(repr(r).encode())
    return h.hexdigest()[:16]


# -- part 1: throughput -----------------------------------------------------------------------------------


def write_events(task: str, n: int, path: str) -> str:
    """The task's events as JSON lines ``[key, t, v]``; returns the reference digest."""
    import orjson

    from bench import data, pipelines, reference

    events = data.events(pipelines.WINDOWED[task][0], n)
    with open(path, "wb") as f:
        f.writelines(orjson.dumps(e) + b"\n" for e in events)
    canon = reference.canonical(task, reference.bare(task, events))
    return _digest([k for k, c in canon.items() for _ in range(c)])


def child_throughput(task: str, backend: str, path: str, state_dir: str, interval: str) -> dict[str, Any]:
    """One run of a task; prints time, checkpoint stats, RSS and the output digest."""
    import millstream as beam
    from bench import pipelines, reference
    from millstream.engine.runtime.exec.runner import run_coroutine
    from millstream.io import ReadFromJson
    from millstream.options.pipeline_options import PipelineOptions
    from millstream.transforms import window

    rows: list[Any] = []
    # "encrypted": RocksDB with --state_encryption_key (the key comes from the parent's environment)
    extra = ["--state_encryption_key=env:MILLSTREAM_BENCH_KEY"] if backend == "encrypted" else []
    opts = PipelineOptions(
        [
            "--streaming",
            f"--state_backend={'rocksdb' if backend == 'encrypted' else backend}",
            f"--state_dir={state_dir}",
            f"--checkpoint_interval={interval}",
            *extra,
        ]
    )
    p = beam.Pipeline(options=opts)
    ev = p | ReadFromJson(path, timestamp_fn=lambda e: e[1], max_out_of_orderness=5.0)
    res = pipelines.windowed(beam, window, task, ev | beam.Map(tuple))
    res | beam.Map(rows.append)
    out: dict[str, Any] = {}

    async def main() -> None:
        t0 = time.perf_counter()
        c0 = time.process_time()
        job = await p.start()
        state = await job.wait()
        out["seconds"] = time.perf_counter() - t0
        # user + system time of every thread of the process (the RocksDB writer's included): the machine is
        # shared, and wall time then measures the neighbours
        out["cpu_s"] = time.process_time() - c0
        out["state"] = state
        ck = job.plan.coordinator
        out["checkpoints"] = ck.count
        out["max_checkpoint_s"] = ck.max_duration_s
        out["max_loop_stall_s"] = ck.max_loop_stall_s

    run_coroutine(main, use_uvloop=True)
    canon = reference.canonical(task, rows)
    out["digest"] = _digest([k for k, c in canon.items() for _ in range(c)])
    out["rows"] = len(rows)
    out["rss_mib"] = _rss_mib()
    return out


def throughput(
    tasks: list[str],
    n: int,
    repeat: int,
    intervals: list[str],
    work: str,
    encrypted: bool = False,
    clock: str = "wall",
) -> list[dict[str, Any]]:
    """Part 1: durable vs memory per task and checkpoint interval (`encrypted`: encrypted vs plain RocksDB;
    the table's "memory" columns are then plain RocksDB and its "rocksdb" columns encrypted RocksDB)."""
    import secrets

    os.environ.setdefault("MILLSTREAM_BENCH_KEY", secrets.token_hex(32))
    modes = (
        {"memory": "rocksdb", "rocksdb": "encrypted"}
        if encrypted
        else {"memory": "memory", "rocksdb": "rocksdb"}
    )
    table = []
    for task in tasks:
        path = os.path.join(work, f"{task}_{n}.jsonl")
        print(f"[{task}] writing {n:,} events ...", file=sys.stderr, flush=True)
        ref = write_events(task, n, path)
        for interval in intervals:
            runs: dict[str, list[dict[str, Any]]] = {"memory": [], "rocksdb": []}
            for rep in range(repeat):
                for column, backend in modes.items():
                    state_dir = os.path.join(work, f"state-{task}-{backend}-{rep}")
                    r = _run_child(["throughput", task, backend, path, state_dir, interval])
                    shutil.rmtree(state_dir, ignore_errors=True)
                    if r["digest"] != ref:
                        raise AssertionError(f"{task} {backend}: output differs from the reference")
                    runs[column].append(r)
                    print(
                        f"[{task}] interval {interval} s, {backend} run {rep + 1}: {r['seconds']:.2f} s wall, "
                        f"{r['cpu_s']:.2f} s CPU, {r['checkpoints']} checkpoints",
                        file=sys.stderr,
                        flush=True,
                    )
            table.append(_row(task, n, interval, runs, clock))
        os.remove(path)
    return table


def _row(
    task: str, n: int, interval: str, runs: dict[str, list[dict[str, Any]]], clock: str = "wall"
) -> dict[str, Any]:
    """One table row: medians of the runs of both modes, by `clock` ("wall" or "cpu")."""
    field = "cpu_s" if clock == "cpu" else "seconds"
    mem = statistics.median(r[field] for r in runs["memory"])
    dur = statistics.median(r[field] for r in runs["rocksdb"])
    return {
        "task": task,
        "events": n,
        "interval": interval,
        "clock": clock,
        "memory_s": mem,
        "rocksdb_s": dur,
        "ratio": mem / dur,
        "memory_evps": n / mem,
        "rocksdb_evps": n / dur,
        "checkpoints": max(r["checkpoints"] for r in runs["rocksdb"]),
        "max_checkpoint_s": max(r["max_checkpoint_s"] for r in runs["rocksdb"]),
        "max_loop_stall_s": max(r["max_loop_stall_s"] for r in runs["rocksdb"]),
        "rss_memory_mib": max(r["rss_mib"] for r in runs["memory"]),
        "rss_rocksdb_mib": max(r["rss_mib"] for r in runs["rocksdb"]),
        "rows": runs["rocksdb"][0]["rows"],
    }


# -- part 2: large state ----------------------------------------------------------------------------------

HOUR = 3600.0
#: How long the large-state job may write ahead after its input before its first checkpoint (``--ahead-wait``).
AHEAD_WAIT_S = float(os.environ.get("MILLSTREAM_BENCH_AHEAD_WAIT", "0"))
#: Fraction of the input after which a checkpoint falls due while the input still flows (``--due-at``; 0: none).
DUE_AT = float(os.environ.get("MILLSTREAM_BENCH_DUE_AT", "0"))


def _write_keys(path: str, start: int, n: int, mode: str = "wb") -> None:
    import orjson

    with open(path, mode) as f:
        step = HOUR / max(1, n)
        f.writelines(
            orjson.dumps([f"k{i}", 1_000.0 + (i - start) * step, 1]) + b"\n" for i in range(start, start + n)
        )


def _large_pipeline(path: str, state_dir: str, cache: int, windows: str) -> Any:
    import millstream as beam
    from millstream.io import ReadFromJson
    from millstream.options.pipeline_options import PipelineOptions
    from millstream.transforms import window

    opts = PipelineOptions(
        [
            "--streaming",
            f"--state_dir={state_dir}",
            "--checkpoint_interval=1000000",
            f"--state_cache_entries={cache}",
        ]
    )
    p = beam.Pipeline(options=opts)
    (
        p
        | ReadFromJson(
            path, timestamp_fn=lambda e: e[1], max_out_of_orderness=HOUR, watch=True, poll_interval=0.2
        )
        | beam.Map(lambda e: (e[0], e[2]))
        | beam.WindowInto(window.FixedWindows(2 * HOUR) if windows == "fixed" else window.Sessions(2 * HOUR))
        | beam.CombinePerKey(sum)
        | beam.Map(lambda kv: None)
    )
    return p


def _reducer_node(job: Any) -> Any:
    from millstream.engine.runtime.windowing.operator import ReducerNode

    return next(n for n in job.plan.nodes.values() if isinstance(n, ReducerNode))


async def _until(cond: Any, timeout: float) -> None:
    import anyio

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("the job made no progress")
        await anyio.sleep(0.05)


def _figures(ck: Any, ahead: int, hot_ahead: int) -> dict[str, Any]:
    """What the checkpoint just taken by `ck` measured. `paused_s`: the longest time its sources were paused
    (`Checkpointer.last_pause_s`; a checkpointer without it pauses once, for its whole duration)."""
    return {
        "duration_s": ck.last_duration_s,
        "paused_s": getattr(ck, "last_pause_s", ck.last_duration_s),
        "pauses": getattr(ck, "last_pauses", 1),
        "deferred_s": getattr(ck, "last_deferred_s", 0.0),
        "caught_up_rows": getattr(ck, "last_caught_up_rows", 0),
        "stall_s": ck.last_stall_s,
        "loop_stall_s": ck.last_loop_stall_s,
        "written": ck.incremental.last_written,
        "captured": getattr(ck.incremental, "last_captured", None),
        "ahead": ahead,
        "hot_ahead": hot_ahead,
    }


def child_large(n: int, path: str, state_dir: str, cache: int, windows: str) -> dict[str, Any]:
    """Load n keys, checkpoint (all new), change 1%, checkpoint (incremental), stop. With `DUE_AT`, a first
    checkpoint is taken after that fraction of the input, while it flows (the "due" one)."""
    import anyio

    from millstream.engine.runtime.exec.runner import run_coroutine

    out: dict[str, Any] = {}
    p = _large_pipeline(path, state_dir, cache, windows)

    async def main() -> None:
        t0 = time.perf_counter()
        job = await p.start()
        node = _reducer_node(job)
        if DUE_AT > 0:
            await _until(lambda: node.elements_in >= int(n * DUE_AT), 3600)
            ck = job.plan.coordinator
            ahead = ck.incremental.written_ahead(ck.next_id)
            hot_ahead = ck.incremental.hot_written_ahead(ck.next_id)
            await ck.checkpoint()
            out["due"] = _figures(ck, ahead, hot_ahead)
        await _until(lambda: node.elements_in >= n, 3600)
        out["ingest_s"] = time.perf_counter() - t0
        ck = job.plan.coordinator
        # a periodic checkpoint comes at most an interval after the last one: the state is written ahead meanwhile
        t1 = time.perf_counter()
        await anyio.sleep(AHEAD_WAIT_S)
        out["ahead_wait_s"] = time.perf_counter() - t1
        for name, extra in (("full", 0), ("incremental", max(1, n // 100))):
            if extra:
                _write_keys(path, 0, extra, "ab")  # 1% of the keys again
                target = n + extra
                await _until(lambda t=target: node.elements_in >= t, 3600)
            ahead = ck.incremental.written_ahead(ck.next_id)
            hot_ahead = ck.incremental.hot_written_ahead(ck.next_id)
            await ck.checkpoint()
            out[name] = _figures(ck, ahead, hot_ahead)
        st = node.tiered.stats()
        out["hot_entries"] = st["hot_entries"]
        out["evicted"] = st["evicted"]
        out["rss_mib"] = _rss_mib()
        await job.stop()

    run_coroutine(main, use_uvloop=True)
    return out


def child_restore(path: str, state_dir: str, cache: int, windows: str) -> dict[str, Any]:
    """Start the job on the stored state: time the restore of the latest checkpoint, then stop."""
    from millstream.engine.runtime.checkpoint import coordinator as checkpoint
    from millstream.engine.runtime.exec.runner import run_coroutine

    timing: dict[str, Any] = {}
    original = checkpoint.Checkpointer.restore

    async def timed(self: Any) -> Any:
        t0 = time.perf_counter()
        result = await original(self)
        timing["restore_s"] = time.perf_counter() - t0
        return result

    checkpoint.Checkpointer.restore = timed  # type: ignore[method-assign]
    p = _large_pipeline(path, state_dir, cache, windows)

    async def main() -> None:
        job = await p.start()
        await _until(lambda: "restore_s" in timing, 3600)
        await job.stop()

    run_coroutine(main, use_uvloop=True)
    timing["rss_mib"] = _rss_mib()
    return timing


def large_state(sizes: list[tuple[str, int]], cache: int, work: str) -> list[dict[str, Any]]:
    """Part 2: (windows, entries) configurations."""
    table = []
    for windows, n in sizes:
        path = os.path.join(work, f"keys_{n}.jsonl")
        state_dir = os.path.join(work, f"state-large-{n}")
        print(f"[large] writing {n:,} keys ...", file=sys.stderr, flush=True)
        _write_keys(path, 0, n)
        r = _run_child(["large", str(n), path, state_dir, str(cache), windows])
        rr = _run_child(["restore", path, state_dir, str(cache), windows])
        r.update(
            {
                "entries": n,
                "windows": windows,
                "cache": cache,
                "restore_s": rr["restore_s"],
                "restore_rss_mib": rr["rss_mib"],
            }
        )
        print(f"[large] {n:,}: {r}", file=sys.stderr, flush=True)
        table.append(r)
        shutil.rmtree(state_dir, ignore_errors=True)
        os.remove(path)
    return table


# -- report -----------------------------------------------------------------------------------------------


def report(tp: list[dict[str, Any]], large: list[dict[str, Any]]) -> str:
    """Markdown tables."""
    lines = []
    if tp:
        lines += [
            "| task | events | checkpoint interval (s) | memory ev/s | RocksDB ev/s | ratio (>= 0.7) | checkpoints "
            "| longest checkpoint (s) | longest loop stall (ms) | peak RSS mem / RocksDB (MiB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in tp:
            lines.append(
                f"| {r['task']} | {r['events']:,} | {r['interval']} | {r['memory_evps'] / 1e3:.0f}k "
                f"| {r['rocksdb_evps'] / 1e3:.0f}k "
                f"| {r['ratio']:.2f} | {r['checkpoints']} | {r['max_checkpoint_s']:.3f} "
                f"| {r['max_loop_stall_s'] * 1e3:.1f} | {r['rss_memory_mib']:.0f} / {r['rss_rocksdb_mib']:.0f} |"
            )
    if large:
        lines += [
            "",
            "| windows | (key, window) entries | cache | checkpoint "
            "| records written (spilled / in memory written ahead) | duration (s) "
            "| longest source pause (s) (pauses, deferred s, rows written in them) | SNAPSHOT to durable (s) "
            "| longest loop stall (s) | input read in (s) | recovery (s) | peak RSS (MiB) |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in large:
            for name in ("due", "full", "incremental"):
                c = r.get(name)
                if c is None:
                    continue
                lines.append(
                    f"| {r['windows']} | {r['entries']:,} | {r['cache']:,} | {name} "
                    f"| {c['written']:,} ({c['ahead']:,} / {c.get('hot_ahead', 0):,}) "
                    f"| {c['duration_s']:.2f} "
                    f"| {c['paused_s']:.2f} ({c['pauses']}, {c['deferred_s']:.2f}, {c['caught_up_rows']:,}) "
                    f"| {c['stall_s']:.2f} | {c['loop_stall_s']:.2f} | {r['ingest_s']:.1f} "
                    f"| {r['restore_s']:.2f} | {r['rss_mib']:.0f} |"
                )
    return "\n".join(lines)


def main() -> None:
    """Command line."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *args = sys.argv[2:]
        if kind == "throughput":
            result = child_throughput(*args)
        elif kind == "large":
            result = child_large(int(args[0]), args[1], args[2], int(args[3]), args[4])
        else:
            result = child_restore(args[0], args[1], int(args[2]), args[3])
        print(json.dumps(result))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tasks", default="W1,W2,W3")
    ap.add_argument("--intervals", default="10,1", help="checkpoint intervals (s) to compare at")
    ap.add_argument("--sizes", default="1000000,10000000", help="entries of the fixed-window job")
    ap.add_argument("--session-sizes", default="1000000", help="keys of the session job (per-key state)")
    ap.add_argument("--cache", type=int, default=1_000_000)
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="throughput by wall time or by the process's CPU time (user + system, all threads)",
    )
    ap.add_argument(
        "--ahead-wait",
        type=float,
        default=0.0,
        help="large state: seconds the job may write its spill ahead after its input before the first "
        "checkpoint (a periodic checkpoint comes at most one interval after the last; 0: at once)",
    )
    ap.add_argument(
        "--due-at",
        type=float,
        default=0.0,
        help="large state: also take a checkpoint once this fraction of the input is read, while the rest "
        "flows at full speed (the input then outpaces the write-ahead slices; 0: none)",
    )
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument(
        "--encrypted",
        action="store_true",
        help="throughput of encrypted state (--state_encryption_key) against plain RocksDB: the table's "
        "memory columns are plain RocksDB, its RocksDB columns encrypted (target >= 0.85)",
    )
    a = ap.parse_args()
    os.environ["MILLSTREAM_BENCH_AHEAD_WAIT"] = str(a.ahead_wait)  # read by the large-state child
    os.environ["MILLSTREAM_BENCH_DUE_AT"] = str(a.due_at)
    work = tempfile.mkdtemp(prefix="durable-bench-")
    try:
        tp = (
            []
            if a.skip_throughput
            else throughput(
                a.tasks.split(","), a.events, a.repeat, a.intervals.split(","), work, a.encrypted, a.clock
            )
        )
        configs = [("fixed", int(n)) for n in a.sizes.split(",") if n] + [
            ("sessions", int(n)) for n in a.session_sizes.split(",") if n
        ]
        large = [] if a.skip_large else large_state(configs, a.cache, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"throughput": tp, "large_state": large}, f, indent=1)
    print(report(tp, large))
    ok = all(r["ratio"] >= TARGET_RATIO for r in tp if r["interval"] == "10")
    if tp:
        print(f"\nthroughput ratio target >= {TARGET_RATIO} (10 s checkpoints): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
