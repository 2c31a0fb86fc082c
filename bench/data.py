"""Deterministic inputs for the benchmarks: word-count text and the W1/W2/W3 event streams.

The event generator reproduces the performance-anchor workload (same model, same seed, same values as the
anchor measurements), so results here are comparable with the anchor table:

* event ``i`` has the nominal time ``BASE + i/1000`` s (~1000 events per second of event time);
* bounded disorder: 10% of events are delayed by U[0, 5000] ms, the rest by U[0, 20] ms;
* times have millisecond resolution, ``t = (BASE_MS + i - delay_ms) / 1000`` (float seconds);
* values are uniform ints in [0, 99]; 1000 keys ``k000`` .. ``k999``.

``dense``: the key is uniform per event (W1, W2). ``sparse``: every key alternates active U[5, 60] s and
idle U[10, 120] s, each event picks a random active key, so 30 s sessions open and close (W3).

This module imports nothing of millstream or Beam: the Beam worker process uses it to rebuild the same input.
"""

from __future__ import annotations

import heapq
import itertools
import random

BASE_S = 1_700_000_000
BASE_MS = BASE_S * 1000
NKEYS = 1000

#: An event of the windowed workloads: (key, event time in float seconds, value).
Event = tuple[str, float, int]


def word_lines(n_words: int, seed: int = 7, vocab: int = 10_000, per_line: int = 10) -> list[str]:
    """`n_words` words in lines of `per_line`, drawn from a Zipf-like (1/rank) vocabulary of `vocab` words."""
    rnd = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    cum = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(vocab)))
    drawn = rnd.choices(words, cum_weights=cum, k=n_words)
    return [" ".join(drawn[i : i + per_line]) for i in range(0, n_words, per_line)]


def _keys() -> list[str]:
    return [f"k{i:03d}" for i in range(NKEYS)]


def gen_dense(n: int, seed: int = 42) -> list[Event]:
    """The `dense` stream: keys uniform per event (every key sees ~1 event per second)."""
    rnd = random.Random(seed)
    ks = _keys()
    out: list[Event] = []
    append = out.append
    for i in range(n):
        delay = rnd.randint(0, 5000) if rnd.random() < 0.1 else rnd.randint(0, 20)
        append((ks[rnd.randrange(NKEYS)], (BASE_MS + i - delay) / 1000, rnd.randint(0, 99)))
    return out


def gen_sparse(n: int, seed: int = 42) -> list[Event]:
    """The `sparse` stream: keys switch between active and idle periods, so sessions start and end."""
    rnd = random.Random(seed + 1)
    ks = _keys()
    active: list[int] = []  # indices of the keys that are active now
    pos: dict[int, int] = {}  # key index -> position in `active` (swap-remove)
    heap: list[tuple[int, int]] = []  # (time in ms relative to the start when the key toggles, key index)
    is_active = [False] * NKEYS
    for k in range(NKEYS):
        if rnd.random() < 0.35:
            is_active[k] = True
            pos[k] = len(active)
            active.append(k)
            heapq.heappush(heap, (rnd.randint(0, 60_000), k))
        else:
            heapq.heappush(heap, (rnd.randint(0, 120_000), k))
    out: list[Event] = []
    for i in range(n):
        while heap and heap[0][0] <= i:
            when, k = heapq.heappop(heap)
            if is_active[k]:
                p = pos.pop(k)
                last = active.pop()
                if last != k:
                    active[p] = last
                    pos[last] = p
                is_active[k] = False
                heapq.heappush(heap, (when + rnd.randint(10_000, 120_000), k))
            else:
                pos[k] = len(active)
                active.append(k)
                is_active[k] = True
                heapq.heappush(heap, (when + rnd.randint(5_000, 60_000), k))
        delay = rnd.randint(0, 5000) if rnd.random() < 0.1 else rnd.randint(0, 20)
        k = active[rnd.randrange(len(active))] if active else rnd.randrange(NKEYS)
        out.append((ks[k], (BASE_MS + i - delay) / 1000, rnd.randint(0, 99)))
    return out


def events(variant: str, n: int, seed: int = 42) -> list[Event]:
    """The `dense` or `sparse` stream of `n` events."""
    if variant == "dense":
        return gen_dense(n, seed)
    if variant == "sparse":
        return gen_sparse(n, seed)
    raise ValueError(f"unknown event variant {variant!r}")


def write_csv(rows: list[Event], path: str) -> None:
    """Write events as ``key,t,v`` lines (t with millisecond precision, no header): Beam's text input."""
    with open(path, "w") as f:
        f.writelines(f"{k},{t:.3f},{v}\n" for k, t, v in rows)


def write_lines(lines: list[str], path: str) -> None:
    """Write text lines to a file (Beam's ReadFromText input for word count)."""
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)
