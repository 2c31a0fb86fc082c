"""The flights example's streaming replay (`--speedup`) through `millstream run`, drained by SIGINT mid-replay.

Every hour that produced a row must end with its ON_TIME pane (the drain moves the watermark to +infinity
and fires every open hour), after its EARLY panes. Before deviation 3 an early processing-time firing in the
join was taken for the watermark, so some hours showed EARLY panes only and never a final pane.
"""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import time
import zipfile
from collections import defaultdict
from pathlib import Path

from support import flights_reference as REF
from support.examples import ROOT
from support.jobs import installed_cli_command, start_job

DATA = REF.data_dir()
DEADLINE_S = 120.0


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    path.write_text(",".join(columns) + "\n" + "".join(",".join(r[c] for c in columns) + "\n" for r in rows))
    return path


def _inputs(tmp: Path) -> tuple[Path, Path]:
    """Two January days of flights and their weather."""
    with zipfile.ZipFile(DATA / "flights.csv.zip") as z, z.open("flights.csv") as f:
        header = f.readline().decode().rstrip("\n").split(",")
    flights = [
        r for r in REF.read_rows(DATA / "flights.csv.zip") if r["month"] == "1" and r["day"] in ("1", "2")
    ]
    weather = [r for r in REF.read_rows(DATA / "weather.csv") if r["month"] == "1" and int(r["day"]) <= 3]
    return (
        _write_csv(tmp / "flights.csv", header, flights),
        _write_csv(tmp / "weather.csv", [k for k in weather[0] if k != "_line"], weather),
    )


def _wait_for_panes(proc: subprocess.Popen[bytes]) -> list[str]:
    """Read the job's pane lines until an hour has closed (an ON_TIME line) while later hours are open."""
    assert proc.stdout is not None
    seen: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and proc.poll() is None:
        if not sel.select(timeout=deadline - time.monotonic()):
            continue
        line = proc.stdout.readline().decode()
        if not line:
            raise AssertionError(f"the replay ended without an ON_TIME pane; its last lines: {seen[-5:]}")
        seen.append(line)
        if " ON_TIME " in line:
            return seen
    raise AssertionError(f"no ON_TIME pane before the deadline; output so far: {seen[-5:]}")


def test_drained_replay_gives_every_hour_its_on_time_pane(tmp_path: Path) -> None:
    flights, weather = _inputs(tmp_path)
    proc = start_job(
        installed_cli_command(
            "run",
            "examples/streaming/flights.py",
            f"--flights={flights}",
            f"--weather={weather}",
            f"--output={tmp_path / 'out'}",
            f"--state_dir={tmp_path / 'state'}",
            f"--cache_dir={tmp_path / 'cache'}",
            "--speedup=14400",
            "--early_every=0.1",
        ),
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        env_extra={"PYTHONSAFEPATH": "1", "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_for_panes(proc)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=DEADLINE_S)[1].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "draining" in err

    panes: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for path in sorted((tmp_path / "out").glob("hourly-c*.json")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            panes[(row["origin"], row["hour"])].append((row["pane_index"], row["pane"]))
    # the drain came mid-replay: some hours had fired early panes only when it started
    assert any(t == "EARLY" for seen in panes.values() for _, t in seen)
    order = {"EARLY": 0, "ON_TIME": 1, "LATE": 2}
    without_final = []
    for key, seen in sorted(panes.items()):
        seen.sort()
        timings = [t for _, t in seen]
        assert [order[t] for t in timings] == sorted(order[t] for t in timings), (key, seen)
        if timings.count("ON_TIME") != 1:
            without_final.append((key, seen))
    assert without_final == [], f"{len(without_final)} of {len(panes)} hours lack their ON_TIME pane"
