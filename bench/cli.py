"""Command line of the benchmark suite: run, verify and tabulate the registered benchmarks.

``python -P bench [names...] [--events N] [--repeat K] [--profile] [--json out.json]`` from the repository
root (see `bench/__main__.py` for why it is ``bench`` and not ``-m bench``); ``--peers [W1 W2 W3]`` runs
the whole-process peer comparison instead (`bench.peers`), with ``--profile`` its stage profile.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from importlib import metadata
from typing import Any

from bench import core, profiling


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    """What the numbers were measured on."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (-1.0, -1.0, -1.0)
    return {
        "python": platform.python_version(),
        "millstream": _version("millstream"),
        "apache-beam": _version("apache-beam"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def _fmt_rate(r: float | None) -> str:
    if r is None:
        return "-"
    if r >= 1e6:
        return f"{r / 1e6:.2f}M"
    return f"{r / 1e3:.0f}k"


def _fmt_ratio(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f}x" if x < 10 else f"{x:.1f}x")


HEADER = (
    f"{'benchmark':10s} {'system':40s} {'events':>9s} {'best s':>7s} {'CPU s':>7s} {'runs':>4s} {'events/s':>9s} "
    f"{'vs bare':>8s} {'vs Beam':>8s} {'RSS MiB':>8s}  status"
)


#: Which time events/s and the ratios are computed from: "wall" (default) or "cpu" (set by --clock).
CLOCK = "wall"


def _rate(m: core.Measurement) -> float | None:
    t = m.best_cpu if CLOCK == "cpu" else m.best
    return m.events / t if t else None


def _row(m: core.Measurement, bare_rate: float | None, beam_rate: float | None) -> str:
    rate = _rate(m)
    vs_bare = rate / bare_rate if rate and bare_rate else None
    vs_beam = rate / beam_rate if rate and beam_rate else None
    rss = "in-proc" if m.in_process else ("-" if m.peak_rss_mib is None else f"{m.peak_rss_mib:.0f}")
    best = "-" if m.best is None else f"{m.best:.3f}"
    cpu = "-" if m.best_cpu is None else f"{m.best_cpu:.3f}"
    status = m.status + (f" [{m.note}]" if m.note else "")
    return (
        f"{m.benchmark:10s} {m.system[:40]:40s} {m.events:9,d} {best:>7s} {cpu:>7s} {len(m.runs):4d} "
        f"{_fmt_rate(rate):>9s} {_fmt_ratio(vs_bare):>8s} {_fmt_ratio(vs_beam):>8s} {rss:>8s}  {status}"
    )


def _rates(ms: list[core.Measurement], beam_names: set[str]) -> tuple[float | None, float | None]:
    bare = next((_rate(m) for m in ms if m.kind == "bare" and m.status == "ok"), None)
    beams = [r for m in ms if m.system in beam_names and m.status == "ok" and (r := _rate(m))]
    # the fastest Beam variant: the conservative comparison for millstream
    return bare, (max(beams) if beams else None)


def run_benchmark(bench: core.Benchmark, args: argparse.Namespace) -> list[core.Measurement]:
    """Measure every system of one benchmark, verifying each against the bare reference."""
    n = args.events or bench.default_events
    out = sys.stdout
    t0 = time.perf_counter()
    inp = bench.make_input(n)
    events = bench.count(inp)
    out.write(
        f"\n== {bench.name}: {bench.description}; {events:,} {bench.unit} "
        f"(input generated in {time.perf_counter() - t0:.1f} s, not timed)\n{HEADER}\n"
    )
    out.flush()
    results: list[core.Measurement] = []

    timing = core.Timing(args.repeat, args.budget, args.min_time)
    bare = core.Measurement(bench.name, bench.bare.name, "bare", events)
    bare.runs, bare.cpu, bare_out = core.time_system(bench.bare.run, inp, timing)
    expected = bench.canonical(bare_out)
    del bare_out
    results.append(bare)
    bare_rate = _rate(bare)
    out.write(_row(bare, bare_rate, None) + "\n")
    out.flush()

    for system in bench.systems:
        if args.systems and not any(s in system.name for s in args.systems) and system.kind != "bare":
            continue
        m = core.run_in_process(bench, system, inp, events, expected, timing)
        results.append(m)
        out.write(_row(m, bare_rate, None) + "\n")
        out.flush()
    del inp
    gc.collect()

    def expected_for(n_small: int) -> tuple[int, Any]:
        if n_small == n:
            return events, expected
        small = bench.make_input(n_small)
        return bench.count(small), bench.canonical(bench.bare.run(small))

    if not args.no_external:
        for ext in bench.externals:
            if args.systems and not any(s in ext.name for s in args.systems):
                continue
            n_ext = min(n, args.external_events or ext.max_events)
            ext_run = core.ExternalSystem(ext.name, ext.argv, n_ext, ext.timeout_s, ext.repeat, ext.is_beam)
            m = core.run_external(bench, ext_run, n, args.repeat, expected_for)
            results.append(m)
            out.write(_row(m, bare_rate, None) + "\n")
            out.flush()
    return results


def print_summary(bench: core.Benchmark, results: list[core.Measurement]) -> list[str]:
    """The benchmark's final table (ratios against bare and the fastest Beam) and its target lines."""
    beam_names = {e.name for e in bench.externals if e.is_beam}
    bare_rate, beam_rate = _rates(results, beam_names)
    lines = [_row(m, bare_rate, beam_rate) for m in results]
    ms = next((m for m in results if m.kind == "millstream"), None)
    full = max((m.events for m in results if m.in_process), default=0)
    for m in results:
        if not m.in_process and m.runs and m.events < full:
            lines.append(
                f"note {bench.name}: '{m.system}' ran on {m.events:,} {bench.unit} (< {full:,}): its rate "
                "includes fixed startup costs a larger input would amortise, so ratios against it are "
                "flattering; --external-events matches the sizes"
            )
    for target, want in bench.targets.items():
        ref = bare_rate if target == "bare" else beam_rate
        label = f"target {bench.name}: millstream >= {want:g}x {target}"
        ms_rate = None if ms is None else _rate(ms)
        if ms is None or ms_rate is None or ms.status != "ok" or ref is None:
            lines.append(f"{label}: not measured")
        else:
            got = ms_rate / ref
            lines.append(f"{label}: {got:.2f}x -> {'MET' if got >= want else 'NOT MET'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; exit status 1 on a wrong result or a millstream error."""
    from bench import batched, workloads  # noqa: F401 - registers the benchmarks

    ap = argparse.ArgumentParser(prog="python -P bench", description=__doc__)
    ap.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(core.REGISTRY)})"
    )
    ap.add_argument("--events", type=int, default=0, help="input size for every selected benchmark")
    ap.add_argument("--repeat", type=int, default=3, help="runs per system; the best is reported (default 3)")
    ap.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="stop repeating a system once its runs took this many seconds (default 20)",
    )
    ap.add_argument(
        "--min-time",
        type=float,
        default=1.5,
        help="repeat short systems (up to 3x --repeat) until their runs took this long (default 1.5)",
    )
    ap.add_argument("--profile", action="store_true", help="also profile millstream and show where time goes")
    ap.add_argument("--json", metavar="PATH", help="write all measurements as JSON")
    ap.add_argument("--no-external", action="store_true", help="skip systems run in other processes (Beam)")
    ap.add_argument(
        "--external-events",
        type=int,
        default=0,
        help="input size for external systems (default: each one's cap, e.g. 200k for Beam)",
    )
    ap.add_argument(
        "--systems",
        nargs="*",
        default=[],
        help="only systems whose name contains one of these (the bare reference always runs)",
    )
    ap.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="base events/s and ratios on the best wall time (default) or the least CPU time "
        "(steadier on a busy machine)",
    )
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    ap.add_argument(
        "--peers",
        action="store_true",
        help="whole-process peer comparison of the W1/W2/W3 Beam program (bare, bare+watermark, "
        "millstream from ReadFromText and from Create, Bytewax and Beam when installed); "
        "--events defaults to 1M, rates from CPU time unless --clock wall",
    )
    ap.add_argument(
        "--slow-events",
        type=int,
        default=0,
        help="with --peers: input size for the slow peers (Beam; default 200k)",
    )
    args = ap.parse_args(argv)
    if args.peers:
        from bench import peers

        tasks = args.names or ["W1", "W2", "W3"]
        wrong = [t for t in tasks if t not in ("W1", "W2", "W3")]
        if wrong:
            ap.error(f"--peers runs W1, W2 and W3 only; got {wrong}")
        clock = (
            "wall"
            if "--clock" in (argv if argv is not None else sys.argv) and args.clock == "wall"
            else "cpu"
        )
        status = peers.main(
            tasks, args.events or 1_000_000, args.repeat, args.systems, args.slow_events, clock
        )
        if args.profile:
            from bench import stage_profile

            for task in tasks:
                stage_profile.profile_task(task, args.events or 1_000_000)
        return status

    if args.list:
        for name, factory in core.REGISTRY.items():
            b = factory()
            print(f"{name:10s} {b.description}")
        return 0
    global CLOCK
    CLOCK = args.clock
    names = args.names or list(core.REGISTRY)
    unknown = [n for n in names if n not in core.REGISTRY]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {list(core.REGISTRY)}")

    env = environment()
    print("millstream benchmarks: " + ", ".join(f"{k}={v}" for k, v in env.items()))
    print(
        f"events/s = events / {'least CPU' if CLOCK == 'cpu' else 'best wall'} time of a run (end to end: "
        "pipeline construction + run; input generation excluded); 'vs' = ratio of events/s"
    )
    cpus = env["cpus"] or 1
    if env["loadavg_at_start"][0] > cpus - 0.5:
        print(
            f"WARNING: the machine is busy (load {env['loadavg_at_start'][0]} on {cpus} CPUs): wall times are "
            "noisy; see the CPU s column or use --clock cpu, and re-run on an idle machine for reference numbers"
        )
    all_results: list[core.Measurement] = []
    summaries: list[str] = []
    profiles: list[dict[str, Any]] = []
    for name in names:
        bench = core.REGISTRY[name]()
        results = run_benchmark(bench, args)
        all_results.extend(results)
        summaries.extend(print_summary(bench, results))
        if args.profile:
            ms_sys = next((s for s in bench.systems if s.kind == "millstream"), None)
            ms_res = next((m for m in results if m.kind == "millstream"), None)
            if ms_sys is not None and ms_res is not None and ms_res.status == "ok":
                inp = bench.make_input(args.events or bench.default_events)
                profiles.append(profiling.profile(bench.name, ms_sys.run, inp, bench.user_builtins))
                profiles[-1]["gc"] = profiling.gc_report(bench.name, ms_sys.run, inp)
                del inp

    print("\n== summary (vs Beam = against the fastest Beam variant that ran, per event) ==")
    print(HEADER)
    for line in summaries:
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "environment": env,
                    "clock": CLOCK,
                    "results": [m.as_dict() for m in all_results],
                    "targets": [s for s in summaries if s.startswith("target")],
                    "profiles": profiles,
                },
                f,
                indent=1,
            )
        print(f"wrote {args.json}")
    bad = [m for m in all_results if m.in_process and (m.status.startswith(("MISMATCH", "error")))]
    bad += [m for m in all_results if not m.in_process and m.status.startswith("MISMATCH")]
    return 1 if bad else 0
