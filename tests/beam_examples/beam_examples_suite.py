"""Runs Beam's own example and snippet tests on millstream, from a rewritten temporary copy.

The tests come from the installed apache-beam wheel (`apache_beam/examples/**/*_test.py`). They are copied with
`apache_beam.examples` renamed to a private package and every other `apache_beam` replaced by `millstream`, then
run by pytest in a child process (Beam's tests patch module globals; a child keeps our own session clean). The
outcome of each test is read back from pytest's JUnit XML report.
"""

from __future__ import annotations

import os
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from support.jobs import run_job

PACKAGE = "_beam_examples"

#: Installed in the child's temporary folder: every test gets SIGALRM after this many seconds, so one test that
#: waits forever fails alone instead of hanging the suite.
_CONFTEST = """
import signal

import pytest


def _expire(signum, frame):
    raise TimeoutError("beam example test took longer than {timeout} s")


@pytest.fixture(autouse=True)
def _per_test_timeout():
    previous = signal.signal(signal.SIGALRM, _expire)
    signal.alarm({timeout})
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
"""


@dataclass(frozen=True)
class Outcome:
    """The result of one Beam test (or of one test module that failed to import, `test == ""`)."""

    module: str
    test: str
    status: str  # "passed" | "failed" | "skipped"
    message: str

    @property
    def ident(self) -> str:
        """`path/of/module_test.py::Class::test`, relative to `apache_beam/examples`."""
        return f"{self.module}::{self.test}" if self.test else self.module


def beam_examples_dir() -> Path:
    """`apache_beam/examples` of the installed wheel, found without importing apache_beam (slow, noisy)."""
    import importlib.util

    spec = importlib.util.find_spec("apache_beam")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "apache-beam is not installed: it is a test-only dependency (pip install -e '.[dev]')"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "examples"


def rewrite(source: str) -> str:
    """Beam's module text with Beam's examples renamed and `apache_beam` replaced by `millstream`."""
    return source.replace("apache_beam.examples", PACKAGE).replace("apache_beam", "millstream")


def make_copy(dest: Path, timeout: int) -> Path:
    """Copy Beam's examples (rewritten) to `dest/_beam_examples`; return `dest`."""
    src = beam_examples_dir()
    target = dest / PACKAGE
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in target.rglob("*.py"):
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    (dest / "conftest.py").write_text(_CONFTEST.format(timeout=timeout))
    (dest / "pytest.ini").write_text("[pytest]\npython_files = *_test.py\n")
    return dest


def run_suite(dest: Path, modules: list[str], timeout: int = 60) -> list[Outcome]:
    """Run `modules` (paths relative to `apache_beam/examples`) on millstream; one Outcome per test."""
    make_copy(dest, timeout)
    report = dest / "report.xml"
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-c",
        str(dest / "pytest.ini"),
        "--rootdir",
        str(dest),
        "--continue-on-collection-errors",
        f"--junitxml={report}",
        "-o",
        "junit_family=xunit2",
        *[str(dest / PACKAGE / m) for m in modules],
    ]
    # keep the caller's PYTHONPATH after the copy: a worktree's `src` must be the millstream the child imports
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(dest), os.environ.get("PYTHONPATH")])),
    }
    run_job(args, cwd=str(dest), env=env, timeout=20 * 60)
    if not report.exists():
        raise RuntimeError(f"pytest on Beam's examples wrote no report in {dest}")
    return parse_report(report)


def _module_of(classname: str) -> tuple[str, str]:
    """(`dir/module_test.py`, `Class`) from a JUnit classname `_beam_examples.dir.module_test.Class`."""
    parts = classname.split(".")
    if parts and parts[0] == PACKAGE:
        parts = parts[1:]
    for i in range(len(parts), 0, -1):
        if parts[i - 1].endswith("_test"):
            return "/".join(parts[:i]) + ".py", ".".join(parts[i:])
    return "/".join(parts), ""


def _reason(problem: ET.Element) -> str:
    """The line that says why: the last `E   ...` line of the traceback, else the report's message."""
    lines = [ln[1:].strip() for ln in (problem.text or "").splitlines() if ln.startswith("E ")]
    return (lines[-1] if lines else problem.get("message", ""))[:300]


def parse_report(report: Path) -> list[Outcome]:
    """Outcomes from pytest's JUnit XML: a module that failed to import is one failed Outcome with no test."""
    outcomes = []
    for case in ET.parse(report).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        status = "failed" if problem is not None else "skipped" if skipped is not None else "passed"
        message = _reason(problem) if problem is not None else ""
        if not classname:  # a collection error: name is the module's dotted path
            module, _ = _module_of(name)
            outcomes.append(Outcome(module, "", status, message))
            continue
        module, cls = _module_of(classname)
        test = f"{cls}::{name}" if cls else name
        outcomes.append(Outcome(module, test, status, message))
    return outcomes
