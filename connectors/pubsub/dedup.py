"""De-duplication of redelivered Pub/Sub messages by id, over a bounded window of recent ids (checkpointed)."""

from __future__ import annotations

import sys
from array import array
from collections import deque
from collections.abc import Iterable
from typing import Any

#: Granularity of the de-duplication horizon (seconds of the reader's running time per bucket of ids).
DEDUP_BUCKET_S = 10.0


class DedupWindow:
    """Message ids (64-bit hashes) seen in the last `horizon_s` seconds of running time, at most `max_ids`.

    Ids are kept in buckets of `bucket_s` seconds so expiry is one bucket at a time; `snapshot` packs each
    bucket's ids into bytes (little-endian int64) for the checkpoint.
    """

    def __init__(self, horizon_s: float, max_ids: int, bucket_s: float = DEDUP_BUCKET_S) -> None:
        self.horizon_s = horizon_s
        self.max_ids = max_ids
        self.bucket_s = bucket_s
        self.seen: set[int] = set()
        self.buckets: deque[tuple[float, list[int]]] = deque()

    def __len__(self) -> int:
        return len(self.seen)

    def add(self, h: int, now_s: float) -> bool:
        """Record an id; False if it was already seen within the horizon (a duplicate)."""
        if h in self.seen:
            return False
        self.seen.add(h)
        buckets = self.buckets
        if not buckets or now_s - buckets[-1][0] >= self.bucket_s:
            buckets.append((now_s, [h]))
        else:
            buckets[-1][1].append(h)
        if len(self.seen) > self.max_ids:
            self._drop_oldest(len(self.seen) - self.max_ids)
        return True

    def _drop_oldest(self, n: int) -> None:
        buckets, seen = self.buckets, self.seen
        while n > 0 and buckets:
            ids = buckets[0][1]
            if len(ids) <= n:
                buckets.popleft()
                seen.difference_update(ids)
                n -= len(ids)
            else:
                seen.difference_update(ids[:n])
                del ids[:n]
                n = 0

    def expire(self, now_s: float) -> None:
        """Forget buckets that lie entirely before the horizon."""
        buckets = self.buckets
        limit = now_s - self.horizon_s - self.bucket_s
        while buckets and buckets[0][0] < limit:
            _, ids = buckets.popleft()
            self.seen.difference_update(ids)

    def snapshot(self) -> list[list[Any]]:
        """``[[bucket start (s), packed ids], ...]`` (msgpack-able)."""
        out = []
        for start, ids in self.buckets:
            packed = array("q", ids)
            if sys.byteorder == "big":
                packed.byteswap()
            out.append([start, packed.tobytes()])
        return out

    def restore(self, buckets: Iterable[Any]) -> None:
        """Replace the contents with a `snapshot`."""
        self.seen.clear()
        self.buckets.clear()
        for start, raw in buckets:
            ids = array("q")
            ids.frombytes(raw)
            if sys.byteorder == "big":
                ids.byteswap()
            lst = ids.tolist()
            self.buckets.append((float(start), lst))
            self.seen.update(lst)
