"""`python -P bench --peers` runs whole processes and verifies their outputs (a small input; no timings are
asserted: speed is measured in bench/, not in tests)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from support.jobs import run_job, script_command

ROOT = Path(__file__).resolve().parents[2]


def _peers(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_job(
        script_command("bench", "--peers", *args),
        cwd=str(ROOT),
        env_extra={"MILLSTREAM_CACHE": str(tmp_path / "cache")},
        timeout=300,
    )


def test_peers_verify_every_output_and_print_the_ratios(tmp_path: Path) -> None:
    proc = _peers(
        tmp_path,
        "W1",
        "W3",
        "--events",
        "3000",
        "--repeat",
        "1",
        "--systems",
        "bare-csv",
        "millstream-text",
        "millstream-create",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for task in ("W1", "W3"):
        rows = [line for line in out.splitlines() if line.startswith(task + " ")]
        assert len(rows) == 4, out  # bare (always), bare reading the CSV, millstream x2
        assert all(line.rstrip().endswith("ok (1 runs)") for line in rows), out
        assert re.search(rf"target {task}: millstream \(ReadFromText\) >= [0-9.]+x bare: [0-9.]+x", out), out
    # the inputs were generated once into the cache directory, as CSV and msgpack
    assert sorted(p.name for p in (tmp_path / "cache" / "bench").iterdir()) == [
        "dense_3000.csv",
        "dense_3000.msgpack",
        "sparse_3000.csv",
        "sparse_3000.msgpack",
    ]


def test_peers_reject_other_benchmarks(tmp_path: Path) -> None:
    proc = _peers(tmp_path, "wordcount")
    assert proc.returncode == 2 and "--peers runs W1, W2 and W3 only" in proc.stderr
