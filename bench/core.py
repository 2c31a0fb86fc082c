"""The benchmark registry and runner: timing, verification against the bare reference, external processes.

A `Benchmark` is one workload: a deterministic input, a bare-Python reference computing the result (the
speed of light), millstream's implementation, optional further in-process systems, optional external systems
run in their own process (Beam), and a canonical form of the output that all systems must agree on.
Throughput is reported as events per second and as a ratio against the bare reference, never asserted.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: The repository root (bench/ lives directly in it).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class InProcessSystem:
    """A system run inside this process: `run(input)` returns the output."""

    name: str
    kind: str  # "bare" (the reference), "reference" (another bare loop) or "millstream"
    run: Callable[[Any], Any]
    #: How a failure is reported: "error" (a regression) or "not yet supported" (a feature being built).
    failure: str = "error"


@dataclass
class ExternalSystem:
    """A system run in a child process; `argv(events, repeat, out_json)` is its command line.

    The child writes JSON to `out_json`: ``{"runs": [seconds...], "rows": [...], "peak_rss_mib": float,
    "note": str}``; rows are compared with the bare reference on the same (possibly smaller) input.
    """

    name: str
    argv: Callable[[int, int, str], list[str]]
    max_events: int
    timeout_s: float = 300.0
    #: Repeats for this system (capped by --repeat): slow systems are measured fewer times.
    repeat: int = 3
    is_beam: bool = False


@dataclass
class Benchmark:
    """One workload with all the systems that compute it."""

    name: str
    description: str
    unit: str
    default_events: int
    make_input: Callable[[int], Any]
    count: Callable[[Any], int]
    bare: InProcessSystem
    systems: list[InProcessSystem]
    canonical: Callable[[Any], Any]
    externals: list[ExternalSystem] = field(default_factory=list)
    #: Ratio targets for millstream: {"bare": 0.35} means >= 0.35x bare; {"beam": 10} means >= 10x Beam.
    targets: dict[str, float] = field(default_factory=dict)
    #: Built-in callables that are the user's own functions (e.g. str.split), for the profile grouping.
    user_builtins: tuple[str, ...] = ()
    #: Extra rows for information (same output) that are not part of the ratios.
    notes: str = ""


@dataclass
class Measurement:
    """The outcome of one system on one benchmark."""

    benchmark: str
    system: str
    kind: str
    events: int
    runs: list[float] = field(default_factory=list)
    #: CPU seconds of each run (this process, or the child's own report): less disturbed by other load.
    cpu: list[float] = field(default_factory=list)
    status: str = "ok"
    peak_rss_mib: float | None = None
    note: str = ""
    in_process: bool = True

    @property
    def best(self) -> float | None:
        """The fastest run (the least disturbed by other load), in seconds."""
        return min(self.runs) if self.runs else None

    @property
    def rate(self) -> float | None:
        """Events per second of the best run."""
        b = self.best
        return self.events / b if b else None

    @property
    def best_cpu(self) -> float | None:
        """The smallest CPU time of a run, in seconds."""
        return min(self.cpu) if self.cpu else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "benchmark": self.benchmark,
            "system": self.system,
            "kind": self.kind,
            "events": self.events,
            "runs_s": [round(r, 4) for r in self.runs],
            "best_s": None if self.best is None else round(self.best, 4),
            "cpu_s": [round(r, 4) for r in self.cpu],
            "events_per_s": None if self.rate is None else round(self.rate),
            "status": self.status,
            "peak_rss_mib": self.peak_rss_mib,
            "in_process": self.in_process,
            "note": self.note,
        }


REGISTRY: dict[str, Callable[[], Benchmark]] = {}


def register(name: str) -> Callable[[Callable[[], Benchmark]], Callable[[], Benchmark]]:
    """Register a factory of a benchmark under `name` (factories run only when the benchmark is selected)."""

    def deco(factory: Callable[[], Benchmark]) -> Callable[[], Benchmark]:
        REGISTRY[name] = factory
        return factory

    return deco


def short_error(e: BaseException, limit: int = 160) -> str:
    """`Type: message` on one line, cut to `limit` characters."""
    text = f"{type(e).__name__}: {e}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Timing:
    """How often to run a system: `repeat` runs, fewer once `budget_s` is spent, more (up to 3x) while the
    runs together took less than `min_time_s` (short runs are the most exposed to noise)."""

    repeat: int = 3
    budget_s: float = 20.0
    min_time_s: float = 1.5


def time_system(fn: Callable[[Any], Any], inp: Any, timing: Timing) -> tuple[list[float], list[float], Any]:
    """Run `fn(inp)` as `timing` says; returns wall times, CPU times and the last output."""
    runs: list[float] = []
    cpu: list[float] = []
    out: Any = None
    spent = 0.0
    while True:
        out = None  # free the previous output before the next run
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = fn(inp)
        dt = time.perf_counter() - t0
        cpu.append(time.process_time() - c0)
        runs.append(dt)
        spent += dt
        n = len(runs)
        if spent > timing.budget_s or n >= 3 * timing.repeat:
            break
        if n >= timing.repeat and spent >= timing.min_time_s:
            break
    return runs, cpu, out


def compare(bench: Benchmark, got: Any, expected_canonical: Any) -> str:
    """ "ok" when `got` has the reference's canonical form, else a short description of the difference."""
    canon = bench.canonical(got)
    if canon == expected_canonical:
        return "ok"
    try:
        missing = expected_canonical - canon
        extra = canon - expected_canonical
        return (
            f"MISMATCH: {sum(missing.values())} missing, {sum(extra.values())} extra "
            f"(e.g. missing {next(iter(missing), None)!r}, extra {next(iter(extra), None)!r})"
        )
    except TypeError:
        return "MISMATCH"


def run_in_process(
    bench: Benchmark, system: InProcessSystem, inp: Any, events: int, expected: Any, timing: Timing
) -> Measurement:
    """Time and verify one in-process system."""
    m = Measurement(bench.name, system.name, system.kind, events)
    try:
        m.runs, m.cpu, out = time_system(system.run, inp, timing)
    except Exception as e:
        m.status = f"{system.failure}: {short_error(e)}"
        if system.failure == "error":
            traceback.print_exc(limit=6, file=sys.stderr)
        return m
    if expected is not None:
        m.status = compare(bench, out, expected)
    return m


def python_argv(module: str, *args: str) -> list[str]:
    """Command line running `bench.<module>.main(args)` in a fresh interpreter.

    `-P` keeps the repository root off the front of sys.path (its `millstream/` folder would shadow the
    installed package); the root is appended instead so `bench` itself is importable.
    """
    boot = (
        f"import sys; sys.path.append({ROOT!r}); "
        f"from bench.{module} import main; sys.exit(main(sys.argv[1:]))"
    )
    return [sys.executable, "-P", "-c", boot, *args]


def run_external(
    bench: Benchmark,
    ext: ExternalSystem,
    events: int,
    repeat: int,
    expected_for: Callable[[int], tuple[int, Any]],
) -> Measurement:
    """Run an external system in a child process and verify its rows against the bare reference."""
    n = min(events, ext.max_events)
    n_events, expected = expected_for(n)
    m = Measurement(bench.name, ext.name, "external", n_events, in_process=False)
    with tempfile.TemporaryDirectory(prefix="ms-bench-") as tmp:
        out_json = os.path.join(tmp, "result.json")
        argv = ext.argv(n, max(1, min(repeat, ext.repeat)), out_json)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=ext.timeout_s, cwd=tmp)
        except subprocess.TimeoutExpired:
            m.status = f"timeout after {ext.timeout_s:.0f} s"
            return m
        if proc.returncode != 0 or not os.path.exists(out_json):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            m.status = f"error (exit {proc.returncode}): {' | '.join(tail)[-300:]}"
            return m
        with open(out_json) as f:
            res = json.load(f)
    m.runs = res["runs"]
    m.cpu = res.get("cpu", [])
    m.peak_rss_mib = res.get("peak_rss_mib")
    m.note = res.get("note", "")
    m.status = compare(bench, res["rows"], expected)
    return m
