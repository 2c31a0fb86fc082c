"""Fast path of the windowed reducer for session windows (see `windowing.fast.sliced` for the conditions and
the design).

Open sessions live per key as ``[start, end, values not yet folded, accumulator]`` lists, sorted by start
(they are disjoint, so by end too: an element finds the sessions it touches by bisection, and in-order data
by looking at the last one only); an element extends, creates or bridges sessions of its key in place (Beam's
merge of overlapping proto-windows ``[t, t + gap)``, done incrementally). A heap of per-key lower bounds of
the earliest session end drives
the ON_TIME firings and the output watermark hold. Keys with late data move, with their open and fired
sessions, to the general path (`Reducer`), which does Beam's merging with pane and trigger state.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_right
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from millstream.engine.model.window import Sessions
from millstream.engine.runtime.windowing.fast.sliced import COMPACT_EVERY, COMPACT_LEN, FastReducerBase
from millstream.engine.runtime.windowing.panes import Pane
from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer, group_by_key
from millstream.engine.runtime.windowing.window_state import KeyState

__all__ = ["SessionReducer"]

_START = itemgetter(0)
_END = itemgetter(1)


class SessionReducer(FastReducerBase):
    """Sessions: open sessions per key, merged as elements arrive; a heap of per-key session ends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.window_fn, Sessions):
            raise ValueError("SessionReducer needs Sessions")
        self._gap = self.window_fn.gap_us
        # key -> open sessions [start, end, values not yet folded, accumulator or None]
        self._open_sessions: dict[Any, list[list[Any]]] = {}
        # (lower bound of the key's earliest open session end, seq, key)
        self._open_sessions_heap: list[tuple[int, int, Any]] = []
        # fired sessions that may still merge with late data: key -> [(start, end, acc or None)]
        self._fired_sessions: dict[Any, list[tuple[int, int, Any]]] = {}
        self._fired_sessions_heap: list[tuple[int, int, Any]] = []

    def process_bundle(
        self, keys: Sequence[Any], values: Sequence[Any], timestamps_us: Sequence[int]
    ) -> list[Pane]:
        """Grow, create and merge the open sessions of each key; other elements take the general path."""
        wm = self._wm
        gap = self._gap
        sess = self._open_sessions
        sget = sess.get
        general = self._keys
        fired = self._fired_sessions
        cold = self._cold
        heap = self._open_sessions_heap
        seq = self._seq
        slow: list[tuple[Any, Any, int]] | None = None
        for k, v, t in zip(keys, values, timestamps_us):
            e = t + gap
            if e <= wm or k in general or k in fired:
                if slow is None:
                    slow = []
                slow.append((k, v, t))
                continue
            ss = sget(k)
            if ss is None:
                if k in cold:  # evicted to the state store: bring the key back, then decide again
                    self._reload_key(k)
                    if k in general or k in fired:
                        if slow is None:
                            slow = []
                        slow.append((k, v, t))
                        continue
                    ss = sget(k)
            if ss is None:
                sess[k] = [[t, e, [v], None]]
                heapq.heappush(heap, (e, next(seq), k))
                continue
            if len(ss) == 1:
                s = ss[0]
                if t < s[1] and s[0] < e:
                    s[2].append(v)
                    if t < s[0]:
                        s[0] = t
                    if e > s[1]:
                        s[1] = e
                else:
                    if e <= s[0]:  # before the key's session: the list stays sorted by start
                        ss.insert(0, [t, e, [v], None])
                    else:
                        ss.append([t, e, [v], None])
                    heapq.heappush(heap, (e, next(seq), k))
                continue
            self._add_to_sessions(k, ss, v, t, e)
        self._since_compact += len(keys)
        if self._since_compact > COMPACT_EVERY:
            self._compact()
        out: list[Pane] = []
        if slow:
            self._process_slow(slow, out)
        if self._wm_heap or self._pt_heap:
            self._fire_timers(out)
        return out

    def _add_to_sessions(self, k: Any, ss: list[list[Any]], v: Any, t: int, e: int) -> None:
        """Add [t, e) to a key with several open sessions (sorted, disjoint), merging every session it bridges."""
        n = len(ss)
        last = ss[n - 1]
        if t >= last[1]:  # after every open session: in-order data, the common case
            ss.append([t, e, [v], None])
            heapq.heappush(self._open_sessions_heap, (e, next(self._seq), k))
            return
        if t >= ss[n - 2][1]:  # touches at most the last session, which ends after t
            i = n - 1
            j = n if last[0] < e else i
        else:
            # the first session ending after t, then every following one starting before e
            i = bisect_right(ss, t, 0, n - 1, key=_END)
            j = i
            while j < n and ss[j][0] < e:
                j += 1
        if i == j:
            ss.insert(i, [t, e, [v], None])
            heapq.heappush(self._open_sessions_heap, (e, next(self._seq), k))
            return
        s = ss[i]
        s[2].append(v)
        if t < s[0]:
            s[0] = t
        if e > s[1]:
            s[1] = e
        if j > i + 1:
            # the grown session overlaps exactly the sessions up to j (disjoint and sorted): absorb them
            for o in ss[i + 1 : j]:
                self._absorb(s, o)
            del ss[i + 1 : j]

    def _absorb(self, s: list[Any], o: list[Any]) -> None:
        s[0] = min(s[0], o[0])
        s[1] = max(s[1], o[1])
        s[2].extend(o[2])
        if o[3] is not None:
            s[3] = o[3] if s[3] is None else self._ops.merge([self._ops.create(), s[3], o[3]])

    def _process_slow(self, slow: list[tuple[Any, Any, int]], out: list[Pane]) -> None:
        """Keys with late data (or already in the general path): move them to the general path first."""
        out_wm = self.output_watermark()
        for k, items in group_by_key(slow).items():
            self._migrate(k)
            self._process_key(k, items, out_wm, out)

    def _migrate(self, key: Any) -> None:
        """Turn a key's fast sessions (open and fired) into general window states."""
        if key in self._cold:
            self._reload_key(key)
        ss = self._open_sessions.pop(key, None)
        fs = self._fired_sessions.pop(key, None)
        if not ss and not fs:
            return
        if self._dirty_keys is not None:
            self._dirty_keys.add(key)
        ks = self._keys.get(key)
        if ks is None:
            ks = self._keys[key] = KeyState()
        for start, end, acc in fs or ():
            self._fired_state(key, ks, (start, end), acc)
        root = self._root
        for start, end, vals, acc in ss or ():
            w = (start, end)
            ws = Reducer._new_window_state(self, key, ks, w)
            ws.acc = self.fold(acc, vals)
            ws.pending = True
            self._add_hold(ws, end - 1)
            self._enter(key, ks, ws)
            root.on_element(self, max(1, len(vals)))

    def _fire_fast(self, out: list[Pane]) -> None:
        wm = self._wm
        h = self._open_sessions_heap
        sess = self._open_sessions
        dirty_keys = self._dirty_keys
        while h and h[0][0] <= wm:
            _, _, key = heapq.heappop(h)
            ss = sess.get(key)
            if not ss and key in self._cold:
                end = self._cold[key][2]
                if end is not None and end <= wm:  # an evicted key's session is due
                    self._reload_key(key)
                    ss = sess.get(key)
            if not ss:
                continue
            if dirty_keys is not None:
                dirty_keys.add(key)
            keep = []
            for s in ss:
                if s[1] <= wm:
                    self._fire_session(key, s, wm, out)
                else:
                    keep.append(s)
            if keep:
                sess[key] = keep
                heapq.heappush(h, (min(s[1] for s in keep), next(self._seq), key))
            else:
                del sess[key]

    def _fire_session(self, key: Any, s: list[Any], wm: int, out: list[Pane]) -> None:
        w = (s[0], s[1])
        acc = self.fold(s[3], s[2])
        out.append(Pane(key, self._window_of(*w), self._ops.extract(acc), s[1] - 1, self._ontime_info))
        gc_time = self._gc_time(w)
        if wm <= gc_time:
            fl = self._fired_sessions.get(key)
            if fl is None:
                fl = self._fired_sessions[key] = []
            fl.append((s[0], s[1], acc if self._accumulating else None))
            heapq.heappush(self._fired_sessions_heap, (gc_time, next(self._seq), key))

    def _expire_fired(self) -> None:
        h = self._fired_sessions_heap
        wm = self._wm
        dirty_keys = self._dirty_keys
        while h and h[0][0] < wm:
            _, _, key = heapq.heappop(h)
            fl = self._fired_sessions.get(key)
            if fl is None and key in self._cold:
                info = self._cold[key]
                if info[3] is not None and info[3] < wm:
                    self._reload_key(key)
                    fl = self._fired_sessions.get(key)
            if fl is None:
                continue
            if dirty_keys is not None:
                dirty_keys.add(key)
            keep = [f for f in fl if self._gc_time((f[0], f[1])) >= wm]
            if keep:
                self._fired_sessions[key] = keep
            else:
                del self._fired_sessions[key]

    def _fast_hold(self) -> int | None:
        h = self._open_sessions_heap
        sess = self._open_sessions
        cold = self._cold
        while h:
            e0, _, key = h[0]
            ss = sess.get(key)
            if not ss:
                info = cold.get(key) if cold else None
                if info is not None and info[2] == e0:  # an evicted key's earliest session end
                    return e0 - 1
                heapq.heappop(h)  # stale (an evicted key's exact entry was pushed when it was evicted)
                continue
            m = min(s[1] for s in ss)
            if m != e0:
                heapq.heapreplace(h, (m, next(self._seq), key))
                continue
            return e0 - 1
        return None

    def _compact(self) -> None:
        self._since_compact = 0
        dirty_keys = self._dirty_keys
        for key, ss in self._open_sessions.items():
            for s in ss:
                if len(s[2]) >= COMPACT_LEN:
                    s[3] = self.fold(s[3], s[2])
                    s[2] = []
                    if dirty_keys is not None:
                        dirty_keys.add(key)

    # -- state interface (see `Reducer`): open and fired sessions are part of each key's record ----------

    def entries_in_memory(self) -> int:
        """As `FastReducerBase.entries_in_memory`, plus keys with open or fired fast sessions."""
        return super().entries_in_memory() + len(self._open_sessions) + len(self._fired_sessions)

    def entries_per_element(self) -> int | None:
        """As `FastReducerBase.entries_per_element`, plus a key's open and fired sessions read back."""
        return 6

    def evictable_keys(self) -> list[dict[Any, Any]]:
        """Keys with open sessions first, then general state, then fired sessions."""
        return [self._open_sessions, self._keys, self._fired_sessions]

    def changed_keys(self, everything: bool) -> dict[Any, None]:
        """As `Reducer.changed_keys`, plus keys whose sessions have buffered values."""
        dirty = super().changed_keys(everything)
        if everything:
            dirty.update(dict.fromkeys(self._open_sessions))
            dirty.update(dict.fromkeys(self._fired_sessions))
        for key, ss in self._open_sessions.items():
            for s in ss:
                if s[2]:
                    dirty[key] = None
                    break
        return dirty

    def ahead_keys(self) -> list[Any]:
        """As `Reducer.ahead_keys`, plus keys with open sessions (their buffers may hold values)."""
        return list(dict.fromkeys(itertools.chain(super().ahead_keys(), self._open_sessions)))

    def take_changed(self, keys: list[Any]) -> list[Any]:
        """As `Reducer.take_changed`, plus keys whose sessions have buffered values."""
        dirty_keys = self._dirty_keys
        assert dirty_keys is not None
        sess = self._open_sessions
        out = []
        for key in keys:
            if key in dirty_keys:
                dirty_keys.discard(key)
                out.append(key)
                continue
            ss = sess.get(key)
            if ss:
                for s in ss:
                    if s[2]:
                        out.append(key)
                        break
        return out

    def _holds_key(self, key: Any) -> bool:
        return super()._holds_key(key) or key in self._open_sessions or key in self._fired_sessions

    def key_record(self, key: Any) -> list[Any] | None:
        """As `Reducer.key_record`, with the key's open sessions (buffers folded) and fired sessions."""
        rec = super().key_record(key)
        general = rec[0] if rec is not None else None
        sessions = fired = None
        ss = self._open_sessions.get(key)
        if ss:
            for s in ss:
                if s[2]:
                    s[3] = self.fold(s[3], s[2])
                    s[2].clear()
                elif s[3] is None:
                    s[3] = self._ops.create()
            sessions = [[s[0], s[1], s[3]] for s in ss]
        fs = self._fired_sessions.get(key)
        if fs:
            fired = [list(f) for f in fs]
        if general is None and sessions is None and fired is None:
            return None
        return [general, sessions, fired]

    def _evict_fast_key(self, key: Any) -> tuple[int, Any, Any, Any, Any, bool]:
        ss = self._open_sessions.pop(key, None)
        fs = self._fired_sessions.pop(key, None)
        held = (ss is not None) + (fs is not None)
        dirty = False
        sessions = session_end_min = fired = fired_gc_min = None
        if ss:
            for s in ss:
                if s[2]:
                    dirty = True
                s[3] = self.fold(s[3], s[2])
                s[2] = []
            sessions = [[s[0], s[1], s[3]] for s in ss]
            session_end_min = min(s[1] for s in ss)
        if fs:
            fired = [list(f) for f in fs]
            fired_gc_min = min(self._gc_time((f[0], f[1])) for f in fs)
        return held, sessions, session_end_min, fired, fired_gc_min, dirty

    def _index_evicted_sessions(
        self, key: Any, session_end_min: Any, fired_gc_min: Any, push: Callable[[list[Any], Any], None]
    ) -> None:
        if session_end_min is not None:
            push(self._open_sessions_heap, (session_end_min, next(self._seq), key))
        if fired_gc_min is not None:
            push(self._fired_sessions_heap, (fired_gc_min, next(self._seq), key))

    def _load_fast_key(
        self, key: Any, sessions: Any, fired: Any, push: Callable[[list[Any], Any], None] | None
    ) -> None:
        # reloaded after an eviction (`push` None), the key's heap entries are still there; restored, they are not
        if sessions:
            self._open_sessions[key] = sorted([[s, e, [], acc] for s, e, acc in sessions], key=_START)
            if push is not None:
                push(self._open_sessions_heap, (min(s[1] for s in sessions), next(self._seq), key))
        if fired:
            self._fired_sessions[key] = [(s, e, acc) for s, e, acc in fired]
            if push is not None:
                for f in fired:
                    push(self._fired_sessions_heap, (self._gc_time((f[0], f[1])), next(self._seq), key))

    def finish_restore(self) -> None:
        """As `Reducer.finish_restore`, with the session heaps."""
        super().finish_restore()
        heapq.heapify(self._open_sessions_heap)
        heapq.heapify(self._fired_sessions_heap)

    def load_state_header(self, header: dict[str, Any]) -> None:
        """As `FastReducerBase.load_state_header`, with no sessions in memory."""
        super().load_state_header(header)
        self._open_sessions, self._open_sessions_heap, self._fired_sessions, self._fired_sessions_heap = (
            {},
            [],
            {},
            [],
        )

    def fast_state_size(self) -> int:
        """Number of open fast sessions."""
        return sum(len(ss) for ss in self._open_sessions.values())
