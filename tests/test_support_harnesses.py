"""The kill -9 harness of tests/support against tiny real job scripts: it kills only after observed progress,
reports a failing job with its stderr, fails at its deadline when nothing progresses, and checks that a
crash point was really reached. And the `subprocess`/`crash` markers (tests/conftest.py): given test by test,
so the in-process tests of this module, which imports a runner, are not marked."""

from __future__ import annotations

import glob
import random
import signal
import subprocess
from pathlib import Path

import pytest

import support.daemon
from support.jobs import cli
from support.kill9 import JsonLinesJob, KilledJob, script_command
from support.markers import CRASH, SUBPROCESS, LaunchAnalysis

PROGRESSING = """
import os, sys, time
out = sys.argv[1]
i = 0
while True:
    i += 1
    with open(f"{out}-c{os.getpid()}-{i}.tmp", "w") as f:
        f.write("x")
    os.rename(f"{out}-c{os.getpid()}-{i}.tmp", f"{out}-c{os.getpid()}-{i}")
    time.sleep(0.02)
"""


def job(tmp_path: Path, source: str, **kwargs: float) -> KilledJob:
    script = tmp_path / "job.py"
    script.write_text(source)
    out = str(tmp_path / "out")
    return KilledJob(script_command(str(script), out), lambda: set(glob.glob(out + "-c*")), **kwargs)


def test_kills_a_streaming_job_after_progress_each_time(tmp_path: Path) -> None:
    j = job(tmp_path, PROGRESSING)
    assert j.kill_repeatedly(3, random.Random(1), 0.01, progress=(2, 2), streaming=True) == 3
    pids = {Path(n).name.split("-")[1] for n in j.progress()}
    assert len(pids) == 3, "every killed run committed progress of its own first"


def test_a_failing_job_is_reported_with_its_stderr(tmp_path: Path) -> None:
    j = job(tmp_path, "import sys\nsys.exit('the job broke')\n")
    with pytest.raises(AssertionError, match="the job broke"):
        j.kill_repeatedly(2, random.Random(1))


def test_a_job_without_progress_fails_at_the_deadline_and_is_killed(tmp_path: Path) -> None:
    j = job(tmp_path, "import time\ntime.sleep(600)\n", progress_timeout=0.5)
    procs: list[subprocess.Popen[bytes]] = []
    start = j.start
    j.start = lambda env_extra=None: procs.append(start(env_extra)) or procs[-1]  # type: ignore[method-assign]
    with pytest.raises(AssertionError, match="made no progress"):
        j.kill_repeatedly(1, random.Random(1))
    assert procs and procs[0].poll() is not None


def test_a_crash_point_must_be_reached(tmp_path: Path) -> None:
    killer = job(
        tmp_path, "import os, signal\nif os.environ.get('CRASH'):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killer.crash_with({"CRASH": "1"})
    with pytest.raises(AssertionError, match="crash point was not reached"):
        killer.crash_with({})
    killer.finish()


DRAINING = PROGRESSING.replace(
    "import os, sys, time",
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (sys.stderr.write('drained\\n'), sys.exit(0)))\n"
    "sys.stderr.write('started\\n'); sys.stderr.flush()",
)


def test_a_logged_job_keeps_the_log_of_every_run_and_drains(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(DRAINING)
    out = str(tmp_path / "out")
    j = KilledJob(
        script_command(str(script), out),
        lambda: set(glob.glob(out + "-c*")),
        log_path=str(tmp_path / "job.log"),
    )
    assert j.kill_repeatedly(1, random.Random(1), streaming=True) == 1
    before = j.progress()
    proc = j.start()
    assert j.wait_for_progress(before, proc)
    log = j.drain(proc)
    assert proc.returncode == 0
    assert log.count("started") == 2 and log.endswith("drained\n")


def test_leaving_the_context_kills_a_stopped_job(tmp_path: Path) -> None:
    with job(tmp_path, PROGRESSING) as j:
        proc = j.start()
        proc.send_signal(signal.SIGSTOP)
    assert proc.returncode == -signal.SIGKILL


async def test_async_waits_on_conditions_of_the_loop_and_kill_after_them(tmp_path: Path) -> None:
    j = job(tmp_path, PROGRESSING, progress_timeout=30)
    seen: list[int] = []

    async def committed_twice() -> bool:
        seen.append(len(j.progress()))
        return seen[-1] >= 2

    with j:
        proc = j.start()
        await j.akill_after(proc, committed_twice, random.Random(1), 0.01)
    assert proc.returncode == -signal.SIGKILL and seen[-1] >= 2
    ended = j.start()
    ended.send_signal(signal.SIGTERM)
    with pytest.raises(AssertionError, match=r"exited \(-15\) while waiting for never"):
        await j.until(lambda: False, "never", ended)


async def test_a_crash_point_reached_while_the_loop_runs(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        "import os, signal\nif os.environ.get('MILLSTREAM_CRASH_AT') == '3:2':\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n",
    )
    await j.acrash_at(3, 2)
    with pytest.raises(AssertionError, match="crash point was not reached"):
        await j.acrash_at(4, 2)


def _help() -> str:
    """`millstream --help`, run by a helper: the test calling it is marked through the helper."""
    out = cli("--help")
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def help_text() -> str:
    """`millstream --help` run by a fixture: the tests using it are marked through the fixture."""
    return _help()


def _markers(request: pytest.FixtureRequest) -> set[str]:
    return {m for m in (SUBPROCESS, CRASH) if request.node.get_closest_marker(m) is not None}


def test_an_in_process_test_in_a_module_that_imports_the_runners_is_not_marked(
    request: pytest.FixtureRequest,
) -> None:
    assert _markers(request) == set()


def test_a_test_that_launches_through_a_helper_is_marked_subprocess(request: pytest.FixtureRequest) -> None:
    assert "usage" in _help().lower()
    assert _markers(request) == {SUBPROCESS}


def test_a_test_that_launches_through_a_fixture_is_marked_subprocess(
    request: pytest.FixtureRequest, help_text: str
) -> None:
    assert "usage" in help_text.lower()
    assert _markers(request) == {SUBPROCESS}


def test_a_test_of_the_kill_9_harness_is_marked_crash(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    j = job(tmp_path, "pass\n")
    j.finish()
    assert _markers(request) == {SUBPROCESS, CRASH}


def _imports_its_runner_where_it_runs() -> type:
    from support.kill9 import KilledJob as Runner

    return Runner


def _calls_back(n: int) -> int:
    return _calls_forth(n - 1) if n else 0


def _calls_forth(n: int) -> int:
    return _calls_back(n) + len(cli("--version").stdout) if n else 0


#: Looked up by name, so that naming them does not mark the in-process test below (the analysis reads names).
_PROBES = {
    "local import": _imports_its_runner_where_it_runs,
    "cycle": _calls_back,
    "subclass": JsonLinesJob,
    "daemon": support.daemon.Daemon,
    "http": support.daemon.http,
    "events": support.daemon.write_events,
}


def test_the_analysis_follows_local_imports_subclasses_and_cycles(request: pytest.FixtureRequest) -> None:
    analysis = LaunchAnalysis()
    kinds = {name: analysis.kind_of(probe) for name, probe in _PROBES.items()}
    assert kinds == {
        "local import": CRASH,
        "cycle": SUBPROCESS,
        "subclass": CRASH,
        "daemon": SUBPROCESS,
        "http": None,
        "events": None,
    }
    assert _markers(request) == set()
