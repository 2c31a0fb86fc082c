"""A second SIGTERM/SIGINT cancels a supervised job even while user code blocks the event loop.

The loop's own signal receiver (anyio) acts on a signal only when the loop runs; a synchronous DoFn that blocks
for seconds per batch would delay the cancel until the batch ends. This module adds a Python-level handler for
the same signals (the loop's wakeup fd still delivers them to the receiver): when a signal means "cancel"
(a drain or a stop was asked before) and it lands inside a stage's synchronous pass, the handler requests the
cancel and raises `JobInterrupted` into the blocked code, as Ctrl-C raises KeyboardInterrupt. Otherwise it
does nothing and the receiver handles the signal as usual.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from millstream.engine.runtime.exec.interrupt import JobInterrupted, in_stage_pass
from millstream.engine.runtime.exec.job import JobState

log = logging.getLogger("millstream.daemon")

CANCEL_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class BlockedCancel:
    """The handler: counts drain/cancel signals itself, since the loop that would count them may be blocked."""

    def __init__(self, supervisor: Any) -> None:
        self.supervisor = supervisor
        self.seen = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        earlier, self.seen = self.seen, self.seen + 1
        state = self.supervisor.job.state
        if state in JobState.TERMINAL or state == JobState.CANCELLING:
            return
        if not in_stage_pass(frame):
            return  # the loop is free: its receiver acts at once
        name = signal.Signals(signum).name
        if earlier == 0 and state not in (JobState.DRAINING, JobState.STOPPING):
            # a drain waits for the batch in progress anyway; say at once that the signal arrived
            log.info(
                "%s received while user code blocks: the drain starts when the batch in progress ends; "
                "a second signal cancels now",
                name,
            )
            return
        self.supervisor.cancel(f"second signal, {name}, interrupting blocked user code")
        raise JobInterrupted(f"cancelled by {name} while user code was blocking")


@contextmanager
def cancel_blocked_code(supervisor: Any) -> Iterator[None]:
    """Install the handler for SIGTERM and SIGINT (main thread only; call inside anyio's signal receiver)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = BlockedCancel(supervisor)
    previous = {signum: signal.signal(signum, handler) for signum in CANCEL_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            if signal.getsignal(signum) is handler:
                signal.signal(signum, old)
