"""Interrupting user code that blocks the event loop, so a cancel takes effect within a bounded time.

Stages move batches through fused synchronous steps on the loop (no thread hop per batch). While a DoFn blocks
inside such a pass (``time.sleep``, blocking I/O), the loop cannot act on anything. A cancel requested by a
signal is therefore delivered the way Python delivers Ctrl-C: the signal handler raises `JobInterrupted` in
the interrupted code, which then unwinds through the stage like a failure and ends the job as CANCELLED.
It is raised only when the interrupted frame runs inside a stage task (never inside the loop's machinery).
"""

from __future__ import annotations

from functools import cache
from types import CodeType, FrameType


class JobInterrupted(BaseException):
    """Raised into user code that blocked the loop when the job was cancelled; the job ends as CANCELLED.

    A BaseException, like KeyboardInterrupt, so ``except Exception`` in user code does not swallow it.
    """


@cache
def _stage_codes() -> frozenset[CodeType]:
    from millstream.engine.runtime.exec.executor import _run_stage, _StageRun

    return frozenset({_run_stage.__code__, _StageRun.timer_loop.__code__})


#: Modules of the loop's machinery. A stage task runs their code too (receiving from a channel, entering and
#: leaving cancel scopes, locks, checkpoints); an exception raised in the middle of it breaks their invariants
#: ("Attempted to exit a cancel scope that isn't the current task's current cancel scope"), and there the loop
#: is not blocked anyway, so its signal receiver handles the signal.
_MACHINERY = ("anyio", "asyncio", "sniffio", "contextlib")


def _is_machinery(frame: FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return isinstance(module, str) and module.split(".", 1)[0] in _MACHINERY


def in_stage_pass(frame: FrameType | None) -> bool:
    """True when `frame` runs inside a stage task's own synchronous code (a pass over a batch, or a timer
    firing), where raising is as safe as a failing DoFn; False in the loop's machinery, even under a stage."""
    codes = _stage_codes()
    while frame is not None:
        if frame.f_code in codes:
            return True
        if _is_machinery(frame):
            return False
        frame = frame.f_back
    return False


def is_interrupted(error: BaseException | None) -> bool:
    """True when a job's error is (or wraps) `JobInterrupted`."""
    while error is not None:
        if isinstance(error, JobInterrupted):
            return True
        if isinstance(error, BaseExceptionGroup):
            return any(is_interrupted(e) for e in error.exceptions)
        error = error.__cause__
    return False
