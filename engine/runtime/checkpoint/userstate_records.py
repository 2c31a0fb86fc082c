"""Incremental checkpoints of Beam user state and timers (`StatefulParDoNode` in a `StateTier`).

Each (key, window) is one entry: its state cells and its live timers. The node records which (key, window)s
its elements and timers touched since the last checkpoint (`touched`); a checkpoint writes only those
entries (or deletes them when the (key, window) is gone), so its cost follows what changed, not how much
state the step holds. On restore every entry is read back into memory (user state is not evicted: the
memory bound ``--state_cache_entries`` applies to the windowed aggregations) and the timers are set again
in the order they were first set, so ties still fire in that order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from millstream.engine.runtime.checkpoint.versioned_store import StateTier

__all__ = ["UserStateCapture", "UserStateTier"]

#: Namespace of the per-(key, window) entries.
_NS = b"kw"
#: Namespace of the one entry holding the step's side inputs (ParDoNode's snapshot), written when it changed.
_SIDES_NS = b"sd"
_SIDES_KEY = "sides"
_VERSION = 2


class UserStateCapture:
    """One checkpoint's part of a stateful ParDo (the `checkpoint.incremental` capture protocol)."""

    def __init__(
        self, owner: UserStateTier, header: Any, encoded: list[Any], deletes: list[bytes], touched: set[Any]
    ) -> None:
        self.owner = owner
        self.header = header
        #: Nothing unencoded: every entry is encoded while captured (`encoded`).
        self.entries: list[Any] = []
        #: Changed entries, flat: namespace, (key, start, end), encoded [cells, timers], ...
        self.encoded = encoded
        #: Logical keys of (key, window)s that are gone.
        self.deletes = deletes
        self._touched = touched
        #: Whether this checkpoint writes the side-input entry.
        self.wrote_sides = False

    def aborted(self) -> None:
        """The checkpoint was not written: what it captured is to be written by the next one."""
        self.owner.touched |= self._touched
        if self.wrote_sides:
            self.owner.sides_stored = False

    def release(self) -> None:
        """The checkpoint was written."""
        self._touched = set()


class UserStateTier:
    """Dirty tracking, capture and restore of one stateful ParDo's (key, window) entries."""

    def __init__(self, key_windows: dict[Any, Any], tier: StateTier) -> None:
        self.key_windows = key_windows
        self.tier = tier
        #: (key, start, end) of every (key, window) changed since the last capture (the node adds to it).
        self.touched: set[Any] = set()
        #: Everything is to be written (after restoring a whole snapshot).
        self.all_dirty = False
        self.written = 0
        #: The touched (key, window)s of the write-ahead pass in progress (`ahead_begin`), and where it is.
        self._plan: list[Any] = []
        self._plan_pos = 0
        #: Whether the store holds the side inputs as they are now (a checkpoint then skips them).
        self.sides_stored = False

    def hot_entries(self) -> int:
        """(key, window)s in memory (all of them: user state is not evicted)."""
        return len(self.key_windows)

    hot_estimate = hot_entries

    def changed_bound(self, elements: int) -> int:
        """How many (key, window)s a capture now would write: the touched ones, counted exactly (`elements`,
        what the node took since they were last all written, is not needed)."""
        return len(self.key_windows) if self.all_dirty else len(self.touched)

    def ahead_begin(self, quiet: bool = False) -> int:
        """Start a write-ahead pass over the (key, window)s touched so far; returns how many (`quiet`: the
        state does not change meanwhile; the same pass)."""
        self._plan = [] if self.all_dirty else list(self.touched)
        self._plan_pos = 0
        return len(self._plan)

    def ahead_take(self, budget: int) -> tuple[list[Any], list[Any], list[bytes]] | None:
        """The next slice of the pass: up to `budget` entries still touched, encoded as `capture` does and no
        longer touched (the caller writes them ahead of the coming checkpoint); None when the pass is over."""
        if self._plan_pos >= len(self._plan) or self.all_dirty:
            self._plan = []
            return None
        chunk = self._plan[self._plan_pos : self._plan_pos + budget]
        self._plan_pos += len(chunk)
        touched = self.touched
        mine = [key_window_id for key_window_id in chunk if key_window_id in touched]
        touched.difference_update(mine)
        encoded: list[Any] = []
        deletes: list[bytes] = []
        self._encode(mine, encoded, deletes)
        return [], encoded, deletes

    def capture(
        self, sides: Callable[[], Any] | None = None, sides_changed: bool = False
    ) -> UserStateCapture:
        """Encode the touched entries (``[cells, timers]``; timers as [name, tag, domain, fire, hold, seq];
        domain 0 event time, 1 processing time, 2 processing time holding the watermark), and
        the side inputs (`sides()`, ParDoNode's snapshot) only when they changed or are not stored yet: they
        are complete once, so they are written once, not at every checkpoint."""
        if self.all_dirty:
            self.sides_stored = False
        touched = set(self.key_windows) if self.all_dirty else self.touched
        self.touched = set()
        self.all_dirty = False
        self._plan = []  # the checkpoint writes whatever the write-ahead pass did not reach
        encoded: list[Any] = []
        deletes: list[bytes] = []
        self._encode(touched, encoded, deletes)
        write_sides = sides is not None and (sides_changed or not self.sides_stored)
        if write_sides:
            assert sides is not None
            encoded.extend((_SIDES_NS, _SIDES_KEY, self.tier.encode_value(sides())))
            self.sides_stored = True
        self.written += len(encoded) // 3 + len(deletes)
        cap = UserStateCapture(self, {"version": _VERSION}, encoded, deletes, touched)
        cap.wrote_sides = write_sides
        return cap

    def restore_sides(self) -> Any:
        """The side inputs stored by `capture` (None when none are)."""
        for _, value, _ in self.tier.scan(self.tier.ns_prefix(_SIDES_NS)):
            self.sides_stored = True
            return value
        return None

    def _encode(self, touched: Any, encoded: list[Any], deletes: list[bytes]) -> None:
        """The records of the (key, window)s `touched` (flat, encoded) and the deletions of those gone."""
        encode = self.tier.encode_value
        kws = self.key_windows
        entry_key, encode_key = self.tier.entry_key, self.tier.encode_key
        for key_window_id in touched:
            kw = kws.get(key_window_id)
            if (
                kw is not None
                and kw.key_window_id is not key_window_id
                and encode_key(kw.key_window_id) != encode_key(key_window_id)
            ):
                # equal keys stored apart (1 and 1.0, an int and a numpy int): the (key, window) now in memory
                # is stored under its own key, so the record of the touched one goes
                deletes.append(entry_key(_NS, encode_key(key_window_id)))
                key_window_id = kw.key_window_id
            if kw is None or (not kw.cells and not kw.timers):
                deletes.append(entry_key(_NS, encode_key(key_window_id)))
                continue
            timers = [[tk[0], tk[1], r.domain, r.fire_us, r.hold_us, r.seq] for tk, r in kw.timers.items()]
            encoded.append(_NS)
            encoded.append(key_window_id)
            encoded.append(encode([kw.cells, timers]))

    def restore(
        self,
        header: Any,
        load: Callable[[Any, dict[str, Any]], Any],
        add_timer: Callable[[Any, tuple[str, str], int, int, int, int], None],
    ) -> int:
        """Read every entry of the checkpoint whose header is `header`: `load(key_window_id, cells)` makes the
        (key, window), then `add_timer(kw, tk, domain, fire, hold, seq)` sets the timers again with their
        sequence numbers, in that order. Returns the largest sequence number (-1 without timers)."""
        if not isinstance(header, dict) or header.get("version") != _VERSION:
            raise ValueError(f"step '{self.tier.label}': unknown user-state checkpoint format {header!r}")
        prefix = self.tier.ns_prefix(_NS)
        timers: list[tuple[int, Any, tuple[str, str], int, int, int]] = []
        for lkey, (cells, kw_timers), _ in self.tier.scan(prefix):
            kw = load(tuple(self.tier.split_key(lkey, len(prefix))), dict(cells))
            for name, tag, domain, fire_us, hold_us, seq in kw_timers:
                timers.append((seq, kw, (name, tag), domain, fire_us, hold_us))
        timers.sort(key=lambda t: t[0])
        for seq, kw, tk, domain, fire_us, hold_us in timers:
            add_timer(kw, tk, domain, fire_us, hold_us, seq)
        self.touched = set()
        self.all_dirty = False
        self._plan = []
        return timers[-1][0] if timers else -1

    def stats(self) -> dict[str, int]:
        """Counters for tests and metrics."""
        out = dict(self.tier.stats())
        out["hot_entries"] = len(self.key_windows)
        out["spilled"] = 0
        return out
