"""`--peers`: the whole-process peer comparison of the W1/W2/W3 Beam program, every output verified.

Each system runs as its own process (`bench.peer_worker`) on the same input files, so a figure is what a user
sees: interpreter start, imports, reading, computing, writing. Runs are interleaved across systems (one
round runs every system once) and the median of the rounds is reported. Per run the child's own CPU time
(user + sys) and peak RSS come from ``wait4``: on a shared machine the CPU time is the steadier figure, so
the ratios use it unless ``--clock wall``. Every run's output file is compared with the bare reference's.

Inputs are generated once per (variant, size) into ``$MILLSTREAM_CACHE/bench`` (default
``~/.cache/millstream/bench``) as CSV (``key,t,v``: what ``ReadFromText`` reads) and msgpack (the bare
loops, Bytewax and the ``Create`` path read it, as in the anchors).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench import core, data, pipelines, reference

#: (system, label, optional package it needs, default event cap or 0 for the full size)
PEERS: tuple[tuple[str, str, str, int], ...] = (
    ("bare", "bare Python (dict)", "", 0),
    ("bare-wm", "bare Python + watermark/emission", "", 0),
    ("bare-csv", "bare Python reading the CSV", "", 0),
    ("millstream-text", "millstream, Beam program, ReadFromText", "", 0),
    ("millstream-create", "millstream, Beam program, Create", "", 0),
    ("bytewax", "Bytewax fold_window", "bytewax", 0),
    ("beam-text", "Beam FnApiRunner, ReadFromText", "apache_beam", 200_000),
)


def cache_dir() -> str:
    """Where generated inputs are kept between runs."""
    root = os.environ.get("MILLSTREAM_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "millstream")
    return os.path.join(root, "bench")


def input_files(variant: str, n: int) -> tuple[str, str]:
    """The CSV and msgpack files of `n` events of `variant`, generated on first use."""
    import msgpack

    d = cache_dir()
    os.makedirs(d, exist_ok=True)
    csv_path = os.path.join(d, f"{variant}_{n}.csv")
    mp_path = os.path.join(d, f"{variant}_{n}.msgpack")
    if not (os.path.exists(csv_path) and os.path.exists(mp_path)):
        events = data.events(variant, n)
        data.write_csv(events, csv_path + ".tmp")
        with open(mp_path + ".tmp", "wb") as f:
            pack = msgpack.Packer().pack
            f.writelines(pack(e) for e in events)
        os.replace(csv_path + ".tmp", csv_path)
        os.replace(mp_path + ".tmp", mp_path)
    return csv_path, mp_path


def read_rows(prefix: str) -> list[reference.Row]:
    """A system's TSV output as rows: every file named `prefix` or starting with it (millstream's
    exactly-once file sink names its files ``<prefix>-c<checkpoint>...``), which are removed after reading."""
    rows = []
    for path in sorted(glob.glob(glob.escape(prefix) + "*")):
        with open(path) as f:
            for line in f:
                k, s, e, c, sm = line.rstrip("\n").split("\t")
                rows.append((k, int(s), int(e), int(c), int(sm)))
        os.remove(path)
    return rows


@dataclass
class Run:
    """One whole-process run of one system."""

    wall: float
    cpu: float
    rss_mib: float
    #: events the system dropped as late (Bytewax: its watermark also advances with the system clock, so a
    #: slowed-down run on a busy machine declares events late that event time alone would not)
    late: int = 0


@dataclass
class PeerResult:
    """All runs of one system on one task."""

    system: str
    label: str
    events: int
    runs: list[Run] = field(default_factory=list)
    status: str = "ok"

    def median(self, clock: str) -> float | None:
        """Median seconds of the runs, by wall or CPU time."""
        if not self.runs:
            return None
        return statistics.median(r.cpu if clock == "cpu" else r.wall for r in self.runs)

    def rate(self, clock: str) -> float | None:
        """Events per second of the median run."""
        m = self.median(clock)
        return self.events / m if m else None

    @property
    def rss(self) -> float | None:
        """The largest peak RSS of the runs, in MiB."""
        return max((r.rss_mib for r in self.runs), default=None)


def run_once(system: str, task: str, csv_path: str, mp_path: str, out: str, timeout: float) -> Run:
    """Start one worker process and measure it with ``wait4`` (its own CPU time and peak RSS)."""
    argv = core.python_argv(
        "peer_worker",
        "--system",
        system,
        "--task",
        task,
        "--csv",
        csv_path,
        "--msgpack",
        mp_path,
        "--out",
        out,
        "--info",
        out + ".info.json",
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=os.path.dirname(out))
    deadline = t0 + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            proc.wait()
            raise TimeoutError(f"{system} {task}: no result after {timeout:.0f} s")
        time.sleep(0.01)  # polling the child's exit; the measured figures come from the kernel, not from this
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        tail = " | ".join(err.strip().splitlines()[-3:])
        raise RuntimeError(f"exit {proc.returncode}: {tail[-300:]}")
    info: dict[str, Any] = {}
    if os.path.exists(out + ".info.json"):
        with open(out + ".info.json") as f:
            info = json.load(f)
        os.remove(out + ".info.json")
    rss = info.get("peak_rss_mib") or ru.ru_maxrss / 1024  # see peer_worker.peak_rss_mib
    return Run(wall, ru.ru_utime + ru.ru_stime, rss, int(info.get("late", 0)))


def available(package: str) -> bool:
    """True when `package` can be imported (the optional peers)."""
    return not package or importlib.util.find_spec(package) is not None


def compare_task(
    task: str, n: int, repeat: int, systems: list[str], slow_events: int, timeout: float
) -> list[PeerResult]:
    """Run every selected system `repeat` times on `task`, interleaved, verifying every output."""
    variant = pipelines.WINDOWED[task][0]
    results: list[PeerResult] = []
    files: dict[int, tuple[str, str]] = {}
    expected: dict[int, Counter[Any]] = {}
    for system, label, package, cap in PEERS:
        if systems and not any(s in system for s in systems) and system != "bare":
            continue
        events = min(n, slow_events or cap) if cap else n
        r = PeerResult(system, label, events)
        if not available(package):
            r.status = f"skipped: {package} not installed (pip install -e .[peers])"
        results.append(r)
        if events not in files:
            files[events] = input_files(variant, events)
    with tempfile.TemporaryDirectory(prefix="ms-peers-") as tmp:
        for _round in range(repeat):
            for r in results:
                if r.status != "ok":
                    continue
                csv_path, mp_path = files[r.events]
                out = os.path.join(tmp, f"{r.system}.tsv")
                try:
                    r.runs.append(run_once(r.system, task, csv_path, mp_path, out, timeout))
                except (RuntimeError, TimeoutError) as e:
                    r.status = f"error: {e}"
                    continue
                got = reference.canonical(task, read_rows(out))
                if r.events not in expected:
                    # the bare reference, computed in this process on the same file the systems read
                    expected[r.events] = reference.canonical(
                        task, reference.bare(task, data.events(variant, r.events))
                    )
                want = expected[r.events]
                if got != want:
                    missing, extra = want - got, got - want
                    r.status = (
                        f"MISMATCH: {sum(missing.values())} missing, {sum(extra.values())} extra "
                        f"(e.g. {next(iter(missing), None)!r} / {next(iter(extra), None)!r})"
                    )
                    if r.runs[-1].late:
                        r.status += f"; {r.runs[-1].late} events dropped as late by the system's own clock"
    return results


def _fmt_rate(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r / 1e6:.2f}M" if r >= 1e6 else f"{r / 1e3:.0f}k"


def table(task: str, results: list[PeerResult], clock: str) -> list[str]:
    """The printed table: events/s, ratio to bare and bare+watermark, ratio of millstream to each peer."""
    by = {r.system: r for r in results}
    bare = by.get("bare")
    bare_rate = bare.rate(clock) if bare else None
    wm = by.get("bare-wm")
    wm_rate = wm.rate(clock) if wm else None
    csv = by.get("bare-csv")
    csv_rate = csv.rate(clock) if csv else None
    peers = [r for r in results if r.system in ("bytewax", "beam-text") and r.rate(clock)]
    head = (
        f"{'task':4s} {'system':40s} {'events':>9s} {'wall s':>7s} {'CPU s':>7s} {'ev/s':>7s} "
        f"{'vs bare':>7s} {'vs b+wm':>7s} {'vs csv':>7s} "
        + "".join(f"{'vs ' + p.system:>13s} " for p in peers)
        + f"{'RSS MiB':>7s}  status"
    )
    lines = [head]
    for r in results:
        rate = r.rate(clock)
        cells = [
            f"{task:4s} {r.label[:40]:40s} {r.events:9,d}",
            f"{r.median('wall') or 0:7.2f}" if r.runs else f"{'-':>7s}",
            f"{r.median('cpu') or 0:7.2f}" if r.runs else f"{'-':>7s}",
            f"{_fmt_rate(rate):>7s}",
            f"{rate / bare_rate:7.2f}" if rate and bare_rate else f"{'-':>7s}",
            f"{rate / wm_rate:7.2f}" if rate and wm_rate else f"{'-':>7s}",
            f"{rate / csv_rate:7.2f}" if rate and csv_rate else f"{'-':>7s}",
        ]
        for p in peers:
            pr = p.rate(clock)
            ok = rate and pr and r.system.startswith("millstream")
            cells.append(f"{rate / pr:12.1f}x" if ok else f"{'':>13s}")  # type: ignore[operator]
        cells.append(f"{r.rss:7.0f}" if r.rss else f"{'-':>7s}")
        note = f" ({len(r.runs)} runs)" if r.runs else ""
        lines.append(" ".join(cells) + f"  {r.status}{note}")
    return lines


TARGETS = {"W1": 0.5, "W2": 1.0, "W3": 0.6}


def main(
    tasks: list[str],
    n: int,
    repeat: int,
    systems: list[str],
    slow_events: int,
    clock: str,
    timeout: float = 900.0,
) -> int:
    """Run the comparison for `tasks`; exit status 1 when any output differs from the reference."""
    print(
        f"peer comparison: whole processes, {n:,} events (Beam capped at {slow_events or 200_000:,}), "
        f"median of {repeat} interleaved rounds; rates from {clock} time; inputs in {cache_dir()}"
    )
    bad = False
    for task in tasks:
        results = compare_task(task, n, repeat, systems, slow_events, timeout)
        print(f"\n== {task}: {pipelines.WINDOWED[task][1]}")
        for line in table(task, results, clock):
            print(line)
        by = {r.system: r for r in results}
        ms, bare = by.get("millstream-text"), by.get("bare")
        if ms and bare and ms.rate(clock) and bare.rate(clock):
            got = ms.rate(clock) / bare.rate(clock)  # type: ignore[operator]
            want = TARGETS[task]
            print(
                f"target {task}: millstream (ReadFromText) >= {want:g}x bare: {got:.2f}x -> "
                f"{'MET' if got >= want else 'NOT MET'}"
            )
        bad |= any(r.status.startswith(("MISMATCH", "error")) for r in results)
        sys.stdout.flush()
    return 1 if bad else 0
