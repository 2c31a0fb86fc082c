"""Bare-Python references for the windowed workloads: the speed of light a Python engine is measured against.

`batch_*` aggregate everything in one dict and emit at the end (the anchors' `bare`); `stream_*` add what a
streaming engine must do (a watermark of max event time - 5 s, windows emitted and freed as it passes their
end, late events dropped), the anchors' `bare-stream`. Rows are ``(key, start_ms, end_ms, count, sum)``;
for sessions ``start`` is the first event's time and ``end`` the last event's time + gap (Beam's bounds).
Session semantics: an event joins a session iff ``start - gap < t < last + gap`` (Beam's strict merge).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable

from bench.data import Event
from bench.pipelines import GAP_S, PERIOD_S, SIZE_S

GAP_MS = GAP_S * 1000
DELAY_S = 5.0

Row = tuple[str, int, int, int, int]


def batch_fixed(events: list[Event], size: int, period: int) -> list[Row]:
    """Tumbling (size == period) or sliding windows, everything kept until the end."""
    acc: dict[tuple[str, int], list[int]] = {}
    get = acc.get
    per = size // period
    for k, t, v in events:
        last = int(t // period)
        for p in range(last - per + 1, last + 1):
            kk = (k, p)
            a = get(kk)
            if a is None:
                acc[kk] = [1, v]
            else:
                a[0] += 1
                a[1] += v
    pm, sm = period * 1000, size * 1000
    return [(k, p * pm, p * pm + sm, c, s) for (k, p), (c, s) in acc.items()]


def batch_tumbling(events: list[Event], size: int) -> list[Row]:
    """Tumbling windows with one dict update per event (the anchors' W1 loop, no inner range loop)."""
    acc: dict[tuple[str, int], list[int]] = {}
    get = acc.get
    for k, t, v in events:
        kk = (k, int(t // size))
        a = get(kk)
        if a is None:
            acc[kk] = [1, v]
        else:
            a[0] += 1
            a[1] += v
    step = size * 1000
    return [(k, w * step, w * step + step, c, s) for (k, w), (c, s) in acc.items()]


def session_add(sessions: list[list[int]], tm: int, v: int, gap: int = GAP_MS) -> None:
    """Add an event at `tm` ms to one key's sessions ``[start, last, count, sum]``, merging bridged ones."""
    hit = None
    i = 0
    while i < len(sessions):
        s = sessions[i]
        if s[0] - gap < tm < s[1] + gap:
            if hit is None:
                hit = s
                if tm < s[0]:
                    s[0] = tm
                if tm > s[1]:
                    s[1] = tm
                s[2] += 1
                s[3] += v
            else:  # the event bridges two sessions: merge s into hit
                hit[0] = min(hit[0], s[0])
                hit[1] = max(hit[1], s[1])
                hit[2] += s[2]
                hit[3] += s[3]
                sessions.pop(i)
                continue
        i += 1
    if hit is None:
        sessions.append([tm, tm, 1, v])


def batch_sessions(events: list[Event]) -> list[Row]:
    """Per-key sessions, merged incrementally, all kept until the end."""
    acc: dict[str, list[list[int]]] = {}
    for k, t, v in events:
        tm = round(t * 1000)
        ss = acc.get(k)
        if ss is None:
            acc[k] = [[tm, tm, 1, v]]
        else:
            session_add(ss, tm, v)
    return [(k, s[0], s[1] + GAP_MS, s[2], s[3]) for k, ss in acc.items() for s in ss]


def stream_fixed(events: list[Event], size: int, period: int) -> list[Row]:
    """Fixed or sliding windows with a watermark; a window is emitted and freed once the watermark passes."""
    out: list[Row] = []
    per = size // period
    wins: dict[int, dict[str, list[int]]] = {}
    next_close: int | None = None
    maxt = float("-inf")
    pm, sm = period * 1000, size * 1000
    for k, t, v in events:
        if t > maxt:
            maxt = t
            wm = t - DELAY_S
            while next_close is not None and (next_close * period + size) <= wm:
                d = wins.pop(next_close, None)
                if d:
                    base = next_close * pm
                    for kk, (c, s) in d.items():
                        out.append((kk, base, base + sm, c, s))
                next_close = min(wins) if wins else None
        last = int(t // period)
        for p in range(last - per + 1, last + 1):
            if p * period + size <= maxt - DELAY_S:
                continue  # late: the window has been emitted already
            d = wins.get(p)
            if d is None:
                d = wins[p] = {}
                if next_close is None or p < next_close:
                    next_close = p
            a = d.get(k)
            if a is None:
                d[k] = [1, v]
            else:
                a[0] += 1
                a[1] += v
    for p in sorted(wins):
        base = p * pm
        for kk, (c, s) in wins[p].items():
            out.append((kk, base, base + sm, c, s))
    return out


def stream_sessions(events: list[Event]) -> list[Row]:
    """Sessions with a watermark and one pending timer per key in a heap; closed sessions are freed."""
    out: list[Row] = []
    acc: dict[str, list[list[int]]] = {}
    timers: list[tuple[int, str]] = []  # (earliest possible session end in ms, key)
    pending: set[str] = set()
    maxms = -1
    delay_ms = int(DELAY_S * 1000)
    for k, t, v in events:
        tm = round(t * 1000)
        if tm > maxms:
            maxms = tm
            wm = tm - delay_ms
            while timers and timers[0][0] <= wm:
                _, kk = heapq.heappop(timers)
                pending.discard(kk)
                sessions = acc.get(kk)
                if not sessions:
                    continue
                keep = []
                for s in sessions:
                    if s[1] + GAP_MS <= wm:
                        out.append((kk, s[0], s[1] + GAP_MS, s[2], s[3]))
                    else:
                        keep.append(s)
                if keep:
                    acc[kk] = keep
                    heapq.heappush(timers, (min(s[1] for s in keep) + GAP_MS, kk))
                    pending.add(kk)
                else:
                    del acc[kk]
        if tm + GAP_MS <= maxms - delay_ms:
            continue  # late: its session would be closed already
        ss = acc.get(k)
        if ss is None:
            acc[k] = [[tm, tm, 1, v]]
        else:
            session_add(ss, tm, v)
        if k not in pending:
            heapq.heappush(timers, (min(s[1] for s in acc[k]) + GAP_MS, k))
            pending.add(k)
    for kk, ss in acc.items():
        for s in ss:
            out.append((kk, s[0], s[1] + GAP_MS, s[2], s[3]))
    return out


def bare(task: str, events: list[Event]) -> list[Row]:
    """The batch reference of a windowed task."""
    if task == "W1":
        return batch_tumbling(events, SIZE_S)
    if task == "W2":
        return batch_fixed(events, SIZE_S, PERIOD_S)
    return batch_sessions(events)


def bare_stream(task: str, events: list[Event]) -> list[Row]:
    """The streaming (watermark + emission) reference of a windowed task."""
    if task == "W1":
        return stream_fixed(events, SIZE_S, SIZE_S)
    if task == "W2":
        return stream_fixed(events, SIZE_S, PERIOD_S)
    return stream_sessions(events)


def canonical(task: str, rows: Iterable[Row]) -> Counter[tuple[object, ...]]:
    """Rows as a multiset to compare systems: sessions drop `end` (conventions differ between systems)."""
    if task == "W3":
        return Counter((k, s, c, sm) for k, s, _e, c, sm in rows)
    return Counter((k, s, e, c, sm) for k, s, e, c, sm in rows)
