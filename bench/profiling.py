"""`--profile`: where millstream's time goes, from cProfile, grouped into buckets a runtime author can act on.

Also reports the garbage collector's share (`gc_report`): collections per generation during one unprofiled
run and the time they took. GC time is invisible as such in cProfile: it lands in whichever function was
allocating when a collection started.

Buckets: user code (the pipeline's own functions, including built-ins used as functions such as `str.split`),
runtime ParDo, runtime combine/windowing, executor/channels/sources, model (graph construction) and other.
A built-in (``{method 'get' of 'dict' objects}``) has no file; its time goes to the bucket of its callers, in
proportion to the time each caller spent in it. cProfile adds a fixed cost per Python call, so per-element
functions (the user's lambda) look more expensive than they are; compare buckets, not absolute seconds.
Built-ins called from C (``list(map(str.split, ...))``) are not seen by cProfile at all: their time is in the
calling function's own time.
"""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))

BUCKETS = (
    "user code",
    "runtime: ParDo",
    "runtime: combine/windowing",
    "runtime: executor/channels/sources",
    "model: per-element (Timestamp, TimestampedValue, CombineFn base)",
    "model: graph construction",
    "other (stdlib, imports)",
)

_PARDO = ("runtime/pardo.py", "runtime/async_pardo.py")
_MODEL_PER_ELEMENT = ("model/timestamp.py", "model/window.py", "model/combinefn.py", "model/combiners.py")
_COMBINE = (
    "runtime/combine.py",
    "runtime/reducer",
    "runtime/win_",
    "runtime/trigger_fn.py",
    "runtime/windows.py",
    "runtime/watermark.py",
)

FuncKey = tuple[str, int, str]


def _bucket_of_file(path: str) -> str | None:
    p = path.replace(os.sep, "/")
    if path.startswith(BENCH_DIR):
        return "user code"
    if any(s in p for s in _PARDO):
        return "runtime: ParDo"
    if any(s in p for s in _COMBINE):
        return "runtime: combine/windowing"
    if "/engine/runtime/" in p or "/anyio/" in p or "/asyncio/" in p or "/uvloop/" in p:
        return "runtime: executor/channels/sources"
    if any(s in p for s in _MODEL_PER_ELEMENT):
        return "model: per-element (Timestamp, TimestampedValue, CombineFn base)"
    if "/engine/model/" in p or "/millstream/" in p:
        return "model: graph construction"
    return None


def _is_builtin(key: FuncKey) -> bool:
    return key[0] == "~"


class Classifier:
    """Divides each function's own time over the buckets."""

    def __init__(self, stats: dict[FuncKey, Any], user_builtins: tuple[str, ...]) -> None:
        self.stats = stats
        self.user_builtins = user_builtins
        self.memo: dict[FuncKey, dict[str, float]] = {}

    def shares(self, key: FuncKey, depth: int = 0) -> dict[str, float]:
        """How one second of `key`'s own time divides over the buckets."""
        if key in self.memo:
            return self.memo[key]
        result: dict[str, float] = {}
        if not _is_builtin(key):
            result = {_bucket_of_file(key[0]) or "other (stdlib, imports)": 1.0}
        elif key[2] in self.user_builtins:
            result = {"user code": 1.0}
        elif depth < 5 and key in self.stats:
            callers = self.stats[key][4]
            total = sum(v[2] for v in callers.values())
            for caller, v in callers.items():
                if total > 0:
                    for b, share in self.shares(caller, depth + 1).items():
                        result[b] = result.get(b, 0.0) + share * v[2] / total
        if not result:
            result = {"other (stdlib, imports)": 1.0}
        self.memo[key] = result
        return result

    def main_bucket(self, key: FuncKey) -> str:
        """The bucket that gets most of `key`'s time."""
        return max(self.shares(key).items(), key=lambda kv: kv[1])[0]

    def totals(self) -> dict[str, float]:
        """Seconds of own time per bucket."""
        out = dict.fromkeys(BUCKETS, 0.0)
        for key, (_cc, _nc, tt, _ct, _callers) in self.stats.items():
            for b, share in self.shares(key).items():
                out[b] += tt * share
        return out


def _label(key: FuncKey) -> str:
    if _is_builtin(key):
        return key[2]
    path = key[0].replace(os.sep, "/")
    for marker in ("/millstream/", "/bench/", "/site-packages/"):
        if marker in path:
            path = marker.strip("/") + "/" + path.split(marker, 1)[1]
            break
    else:
        stdlib = os.path.dirname(os.__file__).replace(os.sep, "/") + "/"
        if path.startswith(stdlib):
            path = "stdlib/" + path[len(stdlib) :]
    return f"{path}:{key[1]}({key[2]})"


def profile(
    name: str, fn: Callable[[Any], Any], inp: Any, user_builtins: tuple[str, ...], top: int = 18
) -> dict[str, Any]:
    """Profile one run of `fn(inp)` (after a warm-up run that pays the lazy imports) and print the findings."""
    fn(inp)  # warm-up: imports and first-use costs are not what we want to see
    prof = cProfile.Profile()
    prof.enable()
    fn(inp)
    prof.disable()
    st = pstats.Stats(prof)
    raw: dict[FuncKey, Any] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    cls = Classifier(raw, user_builtins)
    buckets = cls.totals()
    w = sys.stdout.write
    w(f"\n== profile: {name} (cProfile, one run; total own time {total:.3f} s, inflated by profiling) ==\n")
    w(f"{'bucket':66s} {'seconds':>8s} {'share':>7s}\n")
    for b in BUCKETS:
        w(f"{b:66s} {buckets[b]:8.3f} {100 * buckets[b] / total if total else 0:6.1f}%\n")
    w(f"\ntop {top} functions by own time (tottime):\n")
    w(f"{'tottime':>8s} {'cumtime':>8s} {'calls':>9s}  function [bucket]\n")
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    top_rows = []
    for key, (_cc, nc, tt, ct, _callers) in rows:
        b = cls.main_bucket(key)
        w(f"{tt:8.3f} {ct:8.3f} {nc:9d}  {_label(key)} [{b}]\n")
        top_rows.append({"function": _label(key), "tottime": tt, "cumtime": ct, "calls": nc, "bucket": b})
    return {"benchmark": name, "total_s": total, "buckets": buckets, "top": top_rows}


def gc_report(name: str, fn: Callable[[Any], Any], inp: Any) -> dict[str, Any]:
    """Run `fn(inp)` once with GC callbacks and print collections and time per generation."""
    per_gen = {g: [0, 0.0] for g in range(3)}
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            slot = per_gen[info["generation"]]
            slot[0] += 1
            slot[1] += time.perf_counter() - started[0]

    gc.collect()
    gc.callbacks.append(callback)
    t0 = time.perf_counter()
    try:
        fn(inp)
    finally:
        total = time.perf_counter() - t0
        gc.callbacks.remove(callback)
    gc_s = sum(s for _, s in per_gen.values())
    w = sys.stdout.write
    w(f"\n== garbage collector during one {name} run (thresholds {gc.get_threshold()}) ==\n")
    for g, (n, s) in per_gen.items():
        w(f"generation {g}: {n:6d} collections {1000 * s:8.1f} ms\n")
    w(f"total GC {1000 * gc_s:.1f} ms of {1000 * total:.1f} ms ({100 * gc_s / total if total else 0:.0f}%)\n")
    return {
        "run_s": total,
        "gc_s": gc_s,
        "per_generation": {g: {"collections": n, "seconds": s} for g, (n, s) in per_gen.items()},
    }
