"""Micro-benchmark of the timer and hold queues: the reducer's inline heaps against one shared queue.

Run from the repository root: ``.venv/bin/python -P bench/timer_queue_bench.py [--quick]``.
The reducer (its keyed state, ``windowing/keyed_state.py``) keeps bare heaps of ``(time, seq, key)`` and checks due
timers against each key's timer dict; its holds are a heap validated by ``WinState.hold_min``. The stateful
ParDo (``operators/stateful_pardo.py``) keeps heaps validated by a per-timer sequence number, and its holds
in `WatermarkHolds`. `SharedTimerQueue` below is the candidate single module both would use (the ParDo's
design, as a class). Each figure is ns per timer set and fired (or hold added and released), best of
several repeats, under each operator's access pattern.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import itertools
import timeit
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from millstream.engine.runtime.watermarks import WatermarkHolds

REPEAT = 5
WINDOW_US = 60_000_000


class SharedTimerQueue:
    """The candidate shared queue: named timers per owner, lazily deleted heap entries, validated by seq."""

    __slots__ = ("_heap", "_live", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Hashable, Hashable]] = []
        self._live: dict[tuple[Hashable, Hashable], tuple[int, int]] = {}
        self._seq = itertools.count()

    def set(self, owner: Hashable, name: Hashable, ts: int) -> None:
        """Set (or move) the timer ``name`` of ``owner`` to fire at ``ts``."""
        k = (owner, name)
        cur = self._live.get(k)
        if cur is not None and cur[0] == ts:
            return
        seq = next(self._seq)
        self._live[k] = (ts, seq)
        heapq.heappush(self._heap, (ts, seq, owner, name))

    def clear(self, owner: Hashable, name: Hashable) -> None:
        """Delete a timer (its heap entry goes stale)."""
        self._live.pop((owner, name), None)

    def pop_due(self, limit: int) -> Iterator[tuple[Hashable, Hashable, int]]:
        """Pop every live timer due at ``limit``, in (time, set order)."""
        heap, live = self._heap, self._live
        while heap and heap[0][0] <= limit:
            ts, seq, owner, name = heapq.heappop(heap)
            k = (owner, name)
            cur = live.get(k)
            if cur is not None and cur[1] == seq:
                del live[k]
                yield owner, name, ts


def best_ns(fn: Callable[[], Any], ops: int) -> float:
    """Best-of-REPEAT time of one call of ``fn`` in ns per operation (``ops`` operations per call)."""
    return min(timeit.repeat(fn, number=1, repeat=REPEAT)) / ops * 1e9


def row(name: str, ns: float, base: float | None = None) -> None:
    """Print one result line: the case, ns per operation, and the ratio to the baseline when given."""
    ratio = f"{ns / base:6.2f}x" if base else ""
    print(f"{name:62s} {ns:8.0f} {ratio}")


# -------------------------------------------------------------------------------------------- reducer


def reducer_inline(keys: int, windows: int, touches: int) -> None:
    """The reducer's pattern today: each bundle re-sets the end-of-window timer (a no-op after the first),
    a watermark per window fires every key's timer (collect due keys, then scan each key's timer dict)."""
    seq = itertools.count()
    heap: list[tuple[int, int, Any]] = []
    timers: dict[Any, dict[int, dict[str, tuple[int, int]]]] = {k: {} for k in range(keys)}
    fired = 0
    for w in range(windows):
        end = (w + 1) * WINDOW_US
        val = (0, end - 1)
        for _ in range(touches):
            for k in range(keys):
                ks = timers[k]
                d = ks.get(w)
                if d is None:
                    d = ks[w] = {}
                if d.get("end") != val:
                    d["end"] = val
                    heapq.heappush(heap, (end - 1, next(seq), k))
        due: dict[Any, None] = {}
        while heap and heap[0][0] <= end:
            due[heapq.heappop(heap)[2]] = None
        for k in due:
            ks = timers[k]
            for tid, d in list(ks.items()):
                for name, (_dom, ts) in list(d.items()):
                    if ts <= end:
                        fired += 1
                        del d[name]
                if not d:
                    del ks[tid]
    assert fired == keys * windows, fired


def reducer_shared(keys: int, windows: int, touches: int) -> None:
    """The same pattern through `SharedTimerQueue` (owner = (key, window id))."""
    q = SharedTimerQueue()
    fired = 0
    for w in range(windows):
        end = (w + 1) * WINDOW_US
        for _ in range(touches):
            for k in range(keys):
                q.set((k, w), "end", end - 1)
        for _ in q.pop_due(end):
            fired += 1
    assert fired == keys * windows, fired


class _Ws:
    """Stands for the reducer's WinState: the fields its hold heap validates against."""

    __slots__ = ("alive", "hold_min")

    def __init__(self) -> None:
        self.alive = True
        self.hold_min: int | None = None


def reducer_holds_inline(keys: int, windows: int) -> None:
    """The reducer's holds today: one heap entry per new minimum, validated by ``ws.hold_min``."""
    seq = itertools.count()
    heap: list[tuple[int, int, _Ws]] = []
    for w in range(windows):
        states = [_Ws() for _ in range(keys)]
        for i, ws in enumerate(states):
            h = w * WINDOW_US + i
            if ws.hold_min is None or h < ws.hold_min:
                ws.hold_min = h
                heapq.heappush(heap, (h, next(seq), ws))
        for ws in states:  # panes fire: holds released, the output watermark read once per window
            ws.alive = False
        while heap:
            v, _, ws = heap[0]
            if ws.alive and ws.hold_min == v:
                break
            heapq.heappop(heap)


def reducer_holds_shared(keys: int, windows: int) -> None:
    """The same holds through `WatermarkHolds` (the ParDo's structure)."""
    holds = WatermarkHolds()
    for w in range(windows):
        ids = [(k, w) for k in range(keys)]
        for i, hid in enumerate(ids):
            holds.add(hid, w * WINDOW_US + i)
        for hid in ids:
            holds.remove(hid)
        holds.earliest()


# ----------------------------------------------------------------------------------------- stateful ParDo


class _Rec:
    """Stands for the ParDo's _TimerRecord."""

    __slots__ = ("domain", "fire_us", "hold_us", "seq")

    def __init__(self, fire_us: int, seq: int) -> None:
        self.domain = 0
        self.fire_us = fire_us
        self.hold_us = fire_us
        self.seq = seq


def pardo_inline(keys: int, resets: int) -> None:
    """The ParDo's pattern today: every element moves its key's event-time timer (and its hold), stale
    entries stay in the heap; the watermark then fires each key's live timer once."""
    seq = itertools.count()
    heap: list[tuple[int, int, int, Any, Any]] = []
    timers: list[dict[Any, _Rec]] = [{} for _ in range(keys)]
    holds = WatermarkHolds()
    for r in range(resets):
        for k in range(keys):
            kw = timers[k]
            ts = r * 1000 + k
            rec = kw.get("flush")
            if rec is not None:
                if rec.fire_us == ts:
                    continue
                del kw["flush"]
                holds.remove((k, "flush"))
            s = next(seq)
            kw["flush"] = _Rec(ts, s)
            heapq.heappush(heap, (ts, 0, s, k, "flush"))
            holds.add((k, "flush"), ts)
    fired = 0
    while heap:
        _t, _kind, s, k, tk = heapq.heappop(heap)
        rec = timers[k].get(tk)
        if rec is not None and rec.seq == s:
            del timers[k][tk]
            holds.remove((k, tk))
            fired += 1
    assert fired == keys, fired


def pardo_shared(keys: int, resets: int) -> None:
    """The same pattern through `SharedTimerQueue` plus `WatermarkHolds`."""
    q = SharedTimerQueue()
    holds = WatermarkHolds()
    for r in range(resets):
        for k in range(keys):
            ts = r * 1000 + k
            q.set(k, "flush", ts)
            holds.add((k, "flush"), ts)
    fired = 0
    for owner, name, _ts in q.pop_due(1 << 62):
        holds.remove((owner, name))
        fired += 1
    assert fired == keys, fired


def main() -> None:
    """Run every case and print ns per operation with the shared queue's ratio to today's structure."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = ap.parse_args()
    keys, windows = (200, 5) if args.quick else (10_000, 20)
    print(f"{'case (ns per timer set+fired / hold added+released)':62s} {'ns':>8s} ratio")
    for touches in (1, 10):
        ops = keys * windows * touches
        base = best_ns(functools.partial(reducer_inline, keys, windows, touches), ops)
        row(f"reducer timers, {touches} bundle(s)/window, inline heaps", base)
        row(
            f"reducer timers, {touches} bundle(s)/window, shared queue",
            best_ns(functools.partial(reducer_shared, keys, windows, touches), ops),
            base,
        )
    ops = keys * windows
    base = best_ns(lambda: reducer_holds_inline(keys, windows), ops)
    row("reducer holds, inline heap (hold_min)", base)
    row("reducer holds, WatermarkHolds", best_ns(lambda: reducer_holds_shared(keys, windows), ops), base)
    for resets in (1, 10):
        ops = keys * resets
        base = best_ns(functools.partial(pardo_inline, keys, resets), ops)
        row(f"ParDo timers+holds, {resets} reset(s)/key, inline heaps", base)
        row(
            f"ParDo timers+holds, {resets} reset(s)/key, shared queue",
            best_ns(functools.partial(pardo_shared, keys, resets), ops),
            base,
        )


if __name__ == "__main__":
    main()
