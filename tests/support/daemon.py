"""Helpers of the daemon and browser tests: real `millstream run` subprocesses (through `support.jobs`), real
signals, real HTTP.

Every wait is on a condition (a file appearing, a /status field reaching a value, a process exiting), each
with a deadline that only turns a hang into a failure; nothing sleeps and hopes.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from support.jobs import DEADLINE_S, cli, cli_command, start_job, wait_for

SUMS_JOB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "daemon", "sums_job.py")


def write_events(path: str, start: int, count: int, bad: tuple[int, ...] = ()) -> list[dict]:
    """Append events i = start..start+count-1: key k{i%3}, event time i*0.5 s, value i."""
    events = []
    with open(path, "a") as f:
        for i in range(start, start + count):
            e: dict[str, Any] = {"k": f"k{i % 3}", "t": i * 0.5, "v": i}
            if i in bad:
                e["bad"] = True
            else:
                events.append(e)
            f.write(json.dumps(e) + "\n")
    return events


def events_read(path: str, offset: int) -> list[dict]:
    """The good events in the first `offset` bytes of the input (what a source at that position has read)."""
    with open(path, "rb") as f:
        data = f.read(offset)
    events = [json.loads(line) for line in data.splitlines() if line.strip()]
    return [e for e in events if not e.get("bad")]


def expected_sums(events: list[dict], window: float = 10.0) -> list[list]:
    """[key, window start, sum] for every (key, window) of `events`."""
    sums: dict[tuple[str, int], int] = {}
    for e in events:
        key = (e["k"], int(e["t"] // window * window))
        sums[key] = sums.get(key, 0) + e["v"]
    return sorted([k, s, v] for (k, s), v in sums.items())


def committed_rows(prefix: str) -> list[list]:
    """Every row in committed output files (temporary files live in a hidden directory and are not read)."""
    rows = []
    for name in sorted(glob.glob(prefix + "*")):
        if os.path.isfile(name):
            with open(name) as f:
                for line in f:
                    assert line.endswith("\n"), f"torn line in {name}: {line!r}"
                    rows.append(json.loads(line))
    return rows


def inspect_checkpoint(state_dir: str) -> dict:
    """`millstream checkpoints inspect --state_dir ...` as a dict."""
    out = cli("checkpoints", "inspect", "--state_dir", state_dir)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def inspect_state(state_dir: str) -> dict:
    """`millstream state inspect --json --state_dir ...` as a dict."""
    out = cli("state", "inspect", "--json", "--state_dir", state_dir)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


class HttpAnswer:
    """Status, headers and body of an HTTP response."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    url: str,
    method: str = "GET",
    token: str | None = None,
    authorization: str | None = None,
    body: bytes | None = None,
) -> HttpAnswer:
    """One real HTTP request; returns the answer whatever its status."""
    request = urllib.request.Request(
        url, method=method, data=body if body is not None else (b"" if method == "POST" else None)
    )
    if authorization is not None:
        request.add_header("Authorization", authorization)
    elif token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return HttpAnswer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return HttpAnswer(e.code, e.headers, e.read())


class Daemon:
    """One `millstream run` of the sums template in a subprocess."""

    def __init__(
        self,
        work: str,
        name: str = "sums",
        gate: str | None = None,
        extra: tuple[str, ...] = (),
        checkpoint_interval: float = 0.05,
        env: dict[str, str] | None = None,
    ) -> None:
        self.work = work
        self.name = name
        self.input = os.path.join(work, "in.jsonl")
        self.output = os.path.join(work, "out", name)
        self.state_dir = os.path.join(work, "state", name)
        self.jobs_dir = os.path.join(work, "jobs")
        self.gate = gate
        self.extra = extra
        self.checkpoint_interval = checkpoint_interval
        self.env = env
        self.proc: subprocess.Popen[Any] | None = None
        self.log_path = ""
        self.runs = 0
        self.entry: dict[str, Any] = {}
        if not os.path.exists(self.input):
            open(self.input, "w").close()

    def args(self) -> list[str]:
        args = [
            *cli_command("run", SUMS_JOB),
            "--param",
            f"input={self.input}",
            "--param",
            f"output={self.output}",
            "--streaming",
            f"--job_name={self.name}",
            f"--state_dir={self.state_dir}",
            f"--checkpoint_interval={self.checkpoint_interval}",
            "--batch_size=20",
            f"--jobs_dir={self.jobs_dir}",
        ]
        if self.gate:
            args += ["--param", f"gate={self.gate}"]
        return args + list(self.extra)

    def start(self) -> Daemon:
        """Start the job and wait until it is registered and its endpoint answers."""
        self.runs += 1
        self.log_path = os.path.join(self.work, f"{self.name}-run{self.runs}.log")
        with open(self.log_path, "wb") as log:
            self.proc = start_job(
                self.args(), env_extra=self.env, cwd=self.work, stdout=log, stderr=subprocess.STDOUT
            )
        self.entry = self.wait(self._registered, "the job's entry in the jobs directory")
        self.wait(lambda: self.status().get("state") in ("RUNNING", "DRAINING"), "the job to run")
        return self

    def _registered(self) -> dict[str, Any] | None:
        for path in glob.glob(os.path.join(self.jobs_dir, "*.json")):
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                continue
            if self.proc is not None and doc.get("pid") == self.proc.pid:
                return doc
        return None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.entry['port']}"

    @property
    def admin_token(self) -> str:
        with open(self.entry["token_file"]) as f:
            return f.read().strip()

    def status(self) -> dict[str, Any]:
        answer = http(self.url + "/status", token=self.admin_token)
        assert answer.status == 200, answer.body
        return answer.json()

    def step(self, label: str) -> dict[str, Any]:
        return next(s for s in self.status()["steps"] if s["step"] == label)

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
        return wait_for(predicate, what, timeout, self.proc, self.log_path)

    def wait_processed(self, read: int, summed: int | None = None) -> None:
        """Wait until the source has read `read` elements and the Sum step has taken `summed` of them."""
        summed = read if summed is None else summed
        self.wait(
            lambda: self.step("Read")["elements_out"] >= read and self.step("Sum")["elements_in"] >= summed,
            f"{read} elements read and {summed} summed",
        )

    def wait_watermark(self, seconds: float) -> None:
        """Wait until the Sum step's input watermark has reached `seconds` (everything before it is summed)."""

        def reached() -> bool:
            wm = self.step("Sum")["input_watermark"]  # None at -infinity, "+inf" at the end
            return wm == "+inf" or (wm is not None and wm >= seconds)

        self.wait(reached, f"the Sum step's watermark to reach {seconds}")

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def exit_code(self, timeout: float = DEADLINE_S) -> int:
        """Wait for the process to end; its exit code."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the job did not exit\n{self.log()[-3000:]}") from None

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Console(NamedTuple):
    """A running `millstream console`: where it listens and the file holding its token."""

    url: str  # http://127.0.0.1:PORT, without the trailing slash
    token_path: str

    def token(self) -> str:
        """The console's bearer token."""
        with open(self.token_path) as f:
            return f.read().strip()


@contextlib.contextmanager
def console(jobs_dir: str, *extra: str, timeout: float = DEADLINE_S) -> Iterator[Console]:
    """Run `millstream console --jobs_dir JOBS_DIR EXTRA...` for the block: yields once it has printed where it
    listens; afterwards asks it to stop (SIGTERM), which must end it within `timeout`."""
    argv = cli_command("console", "--jobs_dir", jobs_dir, *extra)
    proc = start_job(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode(errors="replace").strip()  # printed once it listens
        found = re.search(r"(http://127\.0\.0\.1:\d+)/ .* token in (\S+)$", line)
        assert found, f"the console printed {line!r}"
        yield Console(found.group(1), found.group(2))
    finally:
        proc.terminate()
        proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()
