"""Fixtures shared by the state tests: the kill -9 harness (`support.kill9.JsonLinesJob`: a job script writing
exactly-once JSON-lines files, SIGKILLed and restarted until it finishes), and helpers of in-process jobs."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest

from support.kill9 import JsonLinesJob


@pytest.fixture
def killed_job() -> type[JsonLinesJob]:
    """The kill -9 harness for a JSON-lines job: ``killed_job(script, args, out)`` (see support/kill9.py)."""
    return JsonLinesJob


def _append_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


async def _until(cond: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await anyio.sleep(0.01)  # polling a condition of the running job


@pytest.fixture
def append_jsonl() -> Any:
    """``append_jsonl(path, rows)``: append rows to a JSON-lines file (input a watching source picks up)."""
    return _append_jsonl


@pytest.fixture
def until() -> Any:
    """``await until(cond, what)``: wait until `cond()` holds in a job running on this event loop; fails
    naming `what` after 60 s."""
    return _until
