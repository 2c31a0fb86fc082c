"""Snapshot and restore of a windowed reducer as plain data (ints, strings, lists, dicts, None, bools).

A snapshot holds the input watermark, processing time, drop counters and, per key, every window state
(accumulator as the combine fn produced it, pane counters, finished flag, watermark hold, trigger slots)
and timer; the fast paths add their buffers (folded into accumulators first) and their fired-window
stores. Keys and accumulators are stored as they are: they must be serialisable by whatever codec the
caller uses (msgpack turns tuples into lists; give the combine fn accumulators it can read back).

Heaps and indexes are derived data and are rebuilt on restore. Restore into a freshly built reducer of
the same class and windowing strategy; the snapshot records the class and the strategy to check that.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from millstream.engine.runtime.reducer import Reducer

__all__ = ["FORMAT", "restore", "snapshot"]

FORMAT = 1


def _encode_name(name: Any) -> Any:
    # timer names are a node id, or (node id, window) for DefaultTrigger
    if isinstance(name, tuple):
        return [name[0], name[1][0], name[1][1]]
    return name


def _decode_name(enc: Any) -> Any:
    if isinstance(enc, list):
        return (enc[0], (enc[1], enc[2]))
    return enc


def _strategy(r: Reducer) -> list[Any]:
    return [
        repr(r.window_fn),
        repr(r.trigger),
        int(r.accumulation_mode),
        r.allowed_lateness_us,
        r.timestamp_combiner.value,
        r.compat,
        r.processing_timers_see_watermark,
    ]


def snapshot(r: Reducer) -> dict[str, Any]:
    """The reducer's complete state as plain data."""
    keys = []
    for key, ks in r._keys.items():
        windows = [
            [
                ws.window[0],
                ws.window[1],
                ws.acc,
                ws.pending,
                ws.index,
                ws.nonspec,
                ws.tomb,
                ws.hold,
                ws.hold_min,
                list(ws.st),
                list(ws.ids),
            ]
            for ws in ks.windows.values()
        ]
        timers = [
            [tid, [[_encode_name(name), dom, ts] for name, (dom, ts) in d.items()]]
            for tid, d in ks.timers.items()
        ]
        keys.append([key, windows, timers])
    return {
        "format": FORMAT,
        "class": type(r).__name__,
        "strategy": _strategy(r),
        "watermark": r._wm,
        "processing_time": r._now,
        "dropped_late": r.dropped_late,
        "dropped_closed": r.dropped_closed,
        "keys": keys,
        "fast": r._snapshot_fast(),
    }


def restore(r: Reducer, data: dict[str, Any]) -> None:
    """Replace the reducer's state by a snapshot's."""
    from millstream.engine.runtime.reducer import KeyState, WinState

    if data.get("format") != FORMAT:
        raise ValueError(f"unknown reducer snapshot format {data.get('format')!r}")
    if data["class"] != type(r).__name__ or list(data["strategy"]) != _strategy(r):
        raise ValueError("snapshot was taken from a reducer with another class or windowing strategy")
    r._keys = {}
    r._wm = data["watermark"]
    r._now = data["processing_time"]
    r.dropped_late = data["dropped_late"]
    r.dropped_closed = data["dropped_closed"]
    r._wm_heap = []
    r._pt_heap = []
    r._gc_heap = []
    r._hold_heap = []
    max_id = 0
    seq = r._seq
    for key, windows, timers in data["keys"]:
        ks = KeyState()
        r._keys[key] = ks
        for start, end, acc, pending, index, nonspec, tomb, hold, hold_min, st, ids in windows:
            w = (start, end)
            ws = WinState(w, acc, list(st), list(ids))
            ws.pending = pending
            ws.index = index
            ws.nonspec = nonspec
            ws.tomb = tomb
            ws.hold = hold
            ws.hold_min = hold_min
            ks.windows[w] = ws
            for tid in ws.ids:
                ks.idwin[tid] = ws
                max_id = max(max_id, tid)
            r._gc_heap.append((r._gc_time(w), next(seq), key, ws, w))
            if hold_min is not None:
                r._hold_heap.append((hold_min, next(seq), ws))
        for tid, entries in timers:
            d = ks.timers[tid] = {}
            for enc, dom, ts in entries:
                d[_decode_name(enc)] = (dom, ts)
                (r._wm_heap if dom == 0 else r._pt_heap).append((ts, next(seq), key))
    heapq.heapify(r._wm_heap)
    heapq.heapify(r._pt_heap)
    heapq.heapify(r._gc_heap)
    heapq.heapify(r._hold_heap)
    r._ids = itertools.count(max_id + 1)
    r._restore_fast(data["fast"])
