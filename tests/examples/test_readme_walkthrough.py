"""The README's "A streaming pipeline, step by step", run as written: its pipeline (which must be
examples/streaming/clicks.py verbatim) and its commands, for real (`millstream run` in a subprocess, files
added while it runs, `millstream jobs describe`, `millstream jobs drain`), so the README cannot drift.

After each file the README adds, the test waits (condition and deadline, no sleeps) until the committed output
answers for the input so far: per user and minute, the latest pane holds the count computed here from the
files (independently of millstream), EARLY while the watermark is before the minute's end, ON_TIME or LATE
after. At the end every (user, minute) has EARLY panes, exactly one ON_TIME pane, then LATE panes, with
accumulating counts, and the last count is the independent one."""

from __future__ import annotations

import datetime
import glob
import json
import os
import re
import shlex
import subprocess
import sys
from collections import defaultdict
from typing import Any

from support.jobs import run_job, start_job, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTION = "## A streaming pipeline, step by step"
EXAMPLE = "examples/streaming/clicks.py"
DEADLINE_S = 20.0


def walkthrough() -> tuple[str, list[str]]:
    """The section's python block and its bash commands (continuation lines joined)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert SECTION in readme, f"README.md has no section {SECTION!r}"
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    python = re.search(r"```python\n(.*?)```", section, re.S)
    bash = re.search(r"```bash\n(.*?)```", section, re.S)
    assert python and bash, "the section shows the pipeline (```python) and the commands (```bash)"
    commands = []
    for line in bash.group(1).replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    return python.group(1), commands


def committed(work: str) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(glob.glob(os.path.join(work, "out", "clicks*"))):
        with open(name) as f:
            rows.extend(json.loads(line) for line in f)
    return rows


def clicks(work: str) -> list[dict[str, Any]]:
    """Every click in the files the commands wrote."""
    events = []
    for name in glob.glob(os.path.join(work, "clicks", "*.jsonl")):
        with open(name) as f:
            events.extend(json.loads(line) for line in f if line.strip())
    return events


def minute(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts // 60 * 60, tz=datetime.UTC).strftime("%H:%M")


def expected_now(events: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, bool]]:
    """(user, minute) -> (clicks so far, whether the watermark has passed the minute's end)."""
    watermark = max(e["ts"] for e in events)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    ends: dict[tuple[str, str], float] = {}
    for e in events:
        key = (e["user"], minute(e["ts"]))
        counts[key] += 1
        ends[key] = e["ts"] // 60 * 60 + 60
    return {k: (n, watermark >= ends[k]) for k, n in counts.items()}


def panes(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_key[(r["user"], r["minute"])].append(r)
    return {k: sorted(v, key=lambda r: r["pane"]) for k, v in by_key.items()}


def answers_for(work: str) -> bool:
    """The committed output answers for every click written so far (see the module docstring)."""
    latest = {k: v[-1] for k, v in panes(committed(work)).items()}
    for key, (count, passed) in expected_now(clicks(work)).items():
        row = latest.get(key)
        if row is None or row["clicks"] != count:
            return False
        if passed != (row["timing"] in ("ON_TIME", "LATE")):
            return False
    return True


def test_the_readme_walkthrough_runs_as_written(tmp_path):
    code, commands = walkthrough()
    with open(os.path.join(ROOT, EXAMPLE), encoding="utf-8") as f:
        assert code == f.read(), f"the README's pipeline differs from {EXAMPLE}"
    work = str(tmp_path)
    os.makedirs(os.path.join(work, os.path.dirname(EXAMPLE)))
    with open(os.path.join(work, EXAMPLE), "w") as f:
        f.write(code)  # the README's text is what runs
    env = dict(
        os.environ,
        MILLSTREAM_JOBS_DIR=os.path.join(work, "jobs"),
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    log = os.path.join(work, "job.log")
    job: subprocess.Popen[bytes] | None = None
    seen: set[str] = set()

    def shell(command: str) -> subprocess.CompletedProcess[str]:
        out = run_job(["bash", "-c", command], cwd=work, env=env, timeout=60)
        assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"
        return out

    try:
        for command in commands:
            words = shlex.split(command, comments=True)
            if words[:2] == ["millstream", "run"]:
                assert words[-1] == "&", "the job runs in the background while the walk-through goes on"
                with open(log, "wb") as out:
                    job = start_job(
                        ["bash", "-c", "exec " + command.split("&")[0]],
                        cwd=work,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                seen.add("run")
                continue
            assert job is not None or words[0] == "mkdir", f"{command!r} before the job was started"
            if words[0] == "printf" and ">" in words:
                shell(command)
                wait_for(
                    lambda: answers_for(work),
                    f"the output to answer for {words[-1]}",
                    DEADLINE_S,
                    proc=job,
                    log_path=log,
                    poll_s=0.05,
                )
                seen.add("file")
            elif words[:3] == ["millstream", "jobs", "describe"]:
                described = shell(command).stdout
                watermark = datetime.datetime.fromtimestamp(
                    max(e["ts"] for e in clicks(work)), tz=datetime.UTC
                )
                assert "RUNNING" in described, described
                count_row = next(line for line in described.splitlines() if line.startswith("Count "))
                assert watermark.strftime("%Y-%m-%d %H:%M:%S") in count_row, described
                seen.add("describe")
            elif words[:3] == ["millstream", "jobs", "drain"]:
                assert "DRAINING" in shell(command).stdout
                assert job.wait(timeout=DEADLINE_S) == 0, open(log).read()
                seen.add("drain")
            else:
                shell(command)
    finally:
        if job is not None and job.poll() is None:
            job.kill()
            job.wait()
    assert seen == {"run", "file", "describe", "drain"}, f"the walk-through lost a step: it did only {seen}"

    final = panes(committed(work))
    events = clicks(work)
    assert {k: v[-1]["clicks"] for k, v in final.items()} == {
        k: n for k, (n, _) in expected_now(events).items()
    }
    for key, rows in final.items():
        timings = "".join(r["timing"][0] for r in rows)  # E(ARLY), O(N_TIME), L(ATE)
        assert re.fullmatch(r"E+OL*", timings), (key, rows)
        assert [r["pane"] for r in rows] == list(range(len(rows))), (key, rows)
        assert all(a["clicks"] <= b["clicks"] for a, b in zip(rows, rows[1:], strict=False)), "accumulating"
    assert any(r["timing"] == "LATE" for rows in final.values() for r in rows), (
        "the late click made a LATE pane"
    )
    assert "ended: DONE" in open(log).read()
