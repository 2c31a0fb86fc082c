"""Headless Chromium for the browser tests: Debian's chromium, installed by tests/infra/browser/install.sh when
missing, driven by Playwright (pip's package, no browser download). In CI (CI=true) nothing here skips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import support.daemon as helpers
from support.servers import run_infra, unavailable

HERE = Path(__file__).resolve().parent
INSTALL = HERE.parent / "infra" / "browser" / "install.sh"
#: Screenshots of each view, kept after the run (git-ignored).
ARTIFACTS = HERE.parent / "artifacts" / "console"
#: The network is closed: no sync, no component updates, no QUIC probes, and a fresh profile per launch.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The chromium binary, installed once by the test infrastructure."""
    out = run_infra(INSTALL, timeout=1200)
    if out.returncode != 0:
        unavailable(f"chromium could not be installed: {out.stderr.strip()[-500:]}")
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Any:
    """One headless Chromium per test module (each page gets a fresh context: no shared session storage)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def daemons(tmp_path: Any) -> Any:
    """A factory of Daemons in `tmp_path`; kills any still running at the end."""
    started: list[Any] = []

    def make(**kwargs: Any) -> Any:
        d = helpers.Daemon(str(tmp_path), **kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.kill()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots are kept (tests/artifacts/console)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
