"""Exactly-once under kill -9: a real subprocess is SIGKILLed at random instants and at every numbered step
of the checkpoint protocol, restarted until it finishes, and its committed output is compared with an
independent computation: nothing lost, nothing duplicated, nothing torn."""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

JOB = os.path.join(os.path.dirname(__file__), "kill_job.py")


def make_input(path: str, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(n):
        t = i * 0.05 - rng.random() * 2.0  # ~20 events per second of event time, up to 2 s out of order
        events.append({"k": f"k{rng.randrange(7)}", "t": round(max(t, 0.0), 3), "v": rng.randrange(100)})
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    return events


def expected(events: list[dict]) -> list[list]:
    sums: dict[tuple[str, int], int] = {}
    for e in events:
        key = (e["k"], int(e["t"] // 10 * 10))
        sums[key] = sums.get(key, 0) + e["v"]
    return sorted([k, s, v] for (k, s), v in sums.items())


def committed_rows(out_prefix: str) -> list[list]:
    rows = []
    for name in sorted(glob.glob(out_prefix + "-c*")):
        with open(name) as f:
            for line in f:
                assert line.endswith("\n"), f"torn line in {name}: {line!r}"
                rows.append(json.loads(line))
    return rows


def start(src: str, out: str, state: str, env_extra: dict | None = None,
          interval: str = "0.05") -> subprocess.Popen:
    env = dict(os.environ)
    env.update(env_extra or {})
    args = [sys.executable, "-P", JOB, src, out, f"--state_dir={state}", f"--checkpoint_interval={interval}",
            "--batch_size=40"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_new_output(out: str, before: int, proc: subprocess.Popen, timeout: float = 30.0) -> bool:
    """Wait until the job commits another output file (progress since it started), or ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(glob.glob(out + "-c*")) > before:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)  # polling a condition: the job runs in another process
    return False


def kill_repeatedly(src: str, out: str, state: str, kills: int, rng: random.Random) -> int:
    """Start the job and SIGKILL it `kills` times, each at a random instant after it made progress."""
    hit = 0
    attempts = 0
    while hit < kills and attempts < 3 * kills:
        attempts += 1
        before = len(glob.glob(out + "-c*"))
        proc = start(src, out, state, interval="0.02")
        if wait_for_new_output(out, before, proc):
            time.sleep(rng.uniform(0.0, 0.01))  # a random instant after progress: a kill, not a wait
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            hit += 1
        elif proc.returncode != 0:
            raise AssertionError(f"job failed: {proc.stderr.read().decode()[-2000:]}")
        else:
            break  # finished before the kill
    return hit


def finish(src: str, out: str, state: str) -> None:
    proc = start(src, out, state)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]


def test_random_kills_lose_and_duplicate_nothing(tmp_path):
    events = make_input(str(tmp_path / "in.jsonl"), 150_000, seed=1)
    out = str(tmp_path / "out" / "sums")
    hit = kill_repeatedly(str(tmp_path / "in.jsonl"), out, str(tmp_path / "state"), 20, random.Random(7))
    finish(str(tmp_path / "in.jsonl"), out, str(tmp_path / "state"))
    rows = committed_rows(out)
    assert sorted(rows) == expected(events)
    assert len(rows) == len({(r[0], r[1]) for r in rows}), "a (key, window) result was written twice"
    assert hit == 20, f"only {hit} kills hit a running job"


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
def test_crash_at_each_protocol_step(tmp_path, step):
    events = make_input(str(tmp_path / "in.jsonl"), 30000, seed=step)
    out = str(tmp_path / "out" / "sums")
    state = str(tmp_path / "state")
    proc = start(str(tmp_path / "in.jsonl"), out, state, {"MILLSTREAM_CRASH_AT": f"{step}:2"})
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, "the crash point was not reached"
    proc = start(str(tmp_path / "in.jsonl"), out, state)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    rows = committed_rows(out)
    assert sorted(rows) == expected(events)
