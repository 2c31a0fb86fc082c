"""Where a cancel signal may raise `JobInterrupted`: in a stage's own code, never in the loop's machinery.

A second SIGTERM raised `JobInterrupted` wherever the main thread was, as long as a stage task was on the stack,
including inside anyio's cancel scopes (a stage awaiting `anyio.sleep`, a channel, a lock). There it broke anyio's
bookkeeping ("Attempted to exit a cancel scope that isn't the current task's current cancel scope") and the job
failed (exit 1) instead of being cancelled (exit 3). These tests look at every real frame a running pipeline
enters, through a profile hook, and ask the same question the signal handler asks.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import anyio

import millstream as beam
from millstream.engine.runtime.exec.interrupt import in_stage_pass
from millstream.testing.util import assert_that, equal_to


def _module(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", "")).split(".", 1)[0]


def _interruptible_calls(build: Any) -> dict[str, list[bool]]:
    """Run the pipeline `build(p)` makes; for each call event, by module: would a signal there interrupt?"""
    seen: dict[str, list[bool]] = {"anyio": [], "asyncio": [], "user": []}

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        module = _module(frame)
        if module in ("anyio", "asyncio"):
            seen[module].append(in_stage_pass(frame))
        elif frame.f_code.co_name == "user_step":
            seen["user"].append(in_stage_pass(frame))

    sys.setprofile(hook)
    try:
        with beam.Pipeline() as p:
            build(p)
    finally:
        sys.setprofile(None)
    return seen


def user_step(x: int) -> int:
    return x * 2


def test_a_signal_in_anyio_code_under_a_stage_does_not_interrupt_but_one_in_a_dofn_does():
    async def gate(x: int) -> int:
        await anyio.sleep(0)  # like the daemon tests' Gate step: the stage awaits anyio's cancel scopes
        return x

    def build(p: beam.Pipeline) -> None:
        out = p | beam.Create(list(range(50))) | "Gate" >> beam.Map(gate) | "Double" >> beam.Map(user_step)
        assert_that(out, equal_to([2 * x for x in range(50)]))

    seen = _interruptible_calls(build)
    assert seen["anyio"], "the pipeline ran anyio code (the test sees the frames it is about)"
    assert not any(seen["anyio"]), "raising inside anyio's machinery breaks its cancel scopes"
    assert not any(seen["asyncio"])
    assert seen["user"] and all(seen["user"]), "user code blocking inside a stage stays interruptible"
