"""The one source of processing time for the runtime: a `Clock` object, injected, fakeable in tests.

Runtime logic never reads the wall clock itself. It asks the clock it was given:

* ``now_us()`` -- processing time, integer microseconds since the epoch. This is Beam's processing-time
  domain: processing-time timers (``AfterProcessingTime``, ``TimeDomain.REAL_TIME``) fire against it.
* ``monotonic_us()`` -- a clock that never goes backwards, for measuring intervals (idle timeouts,
  checkpoint intervals, backoff). Only differences between two readings mean anything. The wall clock can
  jump (NTP, manual changes); intervals measured on it would then be wrong, so use this one for them.
* ``await sleep_until(t_us)`` -- wait until ``now_us() >= t_us`` (the deadline is in the ``now_us``
  domain, so processing-time timers can sleep directly on their firing time).

`SystemClock` is the real one. `FakeClock` is driven by hand (``advance``/``set``) and never goes
backwards; its sleepers wake exactly when the fake time reaches their deadline, through anyio Events, so
tests and TestStream runs are deterministic and never really sleep. On a `FakeClock` both ``now_us`` and
``monotonic_us`` move together, by the amount it is advanced.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel

__all__ = ["Clock", "FakeClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Processing time as the runtime sees it (integer microseconds)."""

    def now_us(self) -> int:
        """Processing time: microseconds since the Unix epoch."""
        ...

    def monotonic_us(self) -> int:
        """A non-decreasing reading in microseconds for measuring intervals; its origin is arbitrary."""
        ...

    async def sleep_until(self, t_us: int) -> None:
        """Return once ``now_us() >= t_us`` (at once if that is already so, after a checkpoint)."""
        ...


class SystemClock:
    """The real clock: ``time.time_ns`` for processing time, ``time.monotonic_ns`` for intervals."""

    def now_us(self) -> int:
        """Wall-clock time in microseconds since the epoch."""
        return time.time_ns() // 1000

    def monotonic_us(self) -> int:
        """Monotonic time in microseconds (arbitrary origin)."""
        return time.monotonic_ns() // 1000

    async def sleep_until(self, t_us: int) -> None:
        """Sleep with anyio until the wall clock reaches ``t_us``."""
        # Re-check after every sleep: a timer may wake a little early, or the wall clock may have been
        # set back while we slept.
        while True:
            remaining = t_us - self.now_us()
            if remaining <= 0:
                await anyio.lowlevel.checkpoint()
                return
            await anyio.sleep(remaining / 1_000_000)


class FakeClock:
    """A hand-driven clock for tests: time moves only through `advance` or `set`, never backwards.

    ``sleep_until`` parks the caller on an anyio Event that `advance`/`set` sets once the fake time reaches
    the deadline, so exactly the sleepers whose deadline has passed wake up (in deadline order, ties in
    the order they went to sleep). A woken task runs at the next scheduling point of the test, e.g. after
    ``await anyio.wait_all_tasks_blocked()``.
    """

    def __init__(self, start_us: int = 0) -> None:
        self._now = start_us
        self._start = start_us
        # (deadline, sequence, event); the sequence breaks ties so Events are never compared.
        self._sleepers: list[tuple[int, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now_us(self) -> int:
        """The fake processing time."""
        return self._now

    def monotonic_us(self) -> int:
        """Microseconds the clock has been advanced since it was created."""
        return self._now - self._start

    async def sleep_until(self, t_us: int) -> None:
        """Wait until the fake time is advanced to ``t_us`` or beyond."""
        if self._now >= t_us:
            await anyio.lowlevel.checkpoint()
            return
        entry = (t_us, next(self._seq), anyio.Event())
        heapq.heappush(self._sleepers, entry)
        try:
            await entry[2].wait()
        finally:
            if not entry[2].is_set():
                # Cancelled before its deadline: forget it so `pending`/`next_deadline` stay truthful.
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)

    def advance(self, delta_us: int) -> None:
        """Move time forward by ``delta_us`` (>= 0) and wake the sleepers whose deadline has come."""
        if delta_us < 0:
            raise ValueError(f"FakeClock cannot go backwards (advance by {delta_us} us)")
        self.set(self._now + delta_us)

    def set(self, t_us: int) -> None:
        """Move time forward to ``t_us`` (not before the current time) and wake due sleepers."""
        if t_us < self._now:
            raise ValueError(f"FakeClock cannot go backwards (from {self._now} to {t_us} us)")
        self._now = t_us
        sleepers = self._sleepers
        while sleepers and sleepers[0][0] <= t_us:
            heapq.heappop(sleepers)[2].set()

    def pending(self) -> int:
        """How many tasks are sleeping on this clock."""
        return len(self._sleepers)

    def next_deadline(self) -> int | None:
        """The earliest deadline anyone sleeps until, or None (lets a driver jump straight to it)."""
        return self._sleepers[0][0] if self._sleepers else None
