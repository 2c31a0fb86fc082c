"""`--peers --profile`: where the W1/W2/W3 Beam program's time goes, by pipeline stage.

One run of the ReadFromText program under cProfile (after a warm-up run in the same process, so imports are
paid before), each function's own time put in the stage it belongs to: reading, decoding, the user's parse
and stamp, window assignment, the user's CombineFn, the combine/windowing runtime, the ParDo runtime
(stamping and emission), the user's format, writing, checkpoint/state, the executor. Built-ins go to their
callers' stages (`profiling.Classifier`). cProfile adds a fixed cost per Python call, so stages made of many
small calls (the user's per-element functions) look larger than they are: compare stages, not seconds.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import tempfile
from typing import Any

from bench import peers, pipelines, profiling
from bench.profiling import FuncKey

STAGES = (
    "read (file blocks -> lines)",
    "decode (bytes -> str)",
    "user: parse + TimestampedValue",
    "ParDo runtime (stamping, emission)",
    "window assignment",
    "user: CombineFn",
    "combine/windowing runtime",
    "user: format",
    "write (sink)",
    "checkpoint/state",
    "executor, channels, event loop",
    "other (stdlib, construction)",
)


def stage_of(key: FuncKey) -> str | None:
    """The stage of a Python function, by its file and name (None: let its callers decide)."""
    path, _line, name = key
    p = path.replace(os.sep, "/")
    if "/bench/pipelines.py" in p:
        if name == "parse":
            return "user: parse + TimestampedValue"
        if name == "process":
            return "user: format"
        return "user: CombineFn"
    if "/connectors/files/source.py" in p:
        return "decode (bytes -> str)" if "decode" in name else "read (file blocks -> lines)"
    if "/connectors/files/sink.py" in p or "/operators/sink_guard.py" in p or "/io/textio.py" in p:
        return "write (sink)"
    if "/model/timestamp.py" in p:
        return (
            "user: parse + TimestampedValue" if name == "__init__" else "ParDo runtime (stamping, emission)"
        )
    if "/model/combinefn.py" in p:
        return "user: CombineFn"
    if "/windowing/assign.py" in p or "/model/window.py" in p:
        return "window assignment"
    if "/runtime/windowing/" in p:
        return "combine/windowing runtime"
    if (
        "/operators/pardo.py" in p
        or "/graph/node.py" in p
        or "/operators/simple.py" in p
        or "/graph/batch.py" in p
    ):
        return "ParDo runtime (stamping, emission)"
    if "/operators/io.py" in p or "/operators/sources.py" in p:
        return "read (file blocks -> lines)"
    if "/runtime/checkpoint/" in p or "/millstream/state/" in p or "rocksdict" in p:
        return "checkpoint/state"
    if "/engine/runtime/" in p or "/anyio/" in p or "/asyncio/" in p or "/uvloop/" in p:
        return "executor, channels, event loop"
    return None


class StageClassifier(profiling.Classifier):
    """`profiling.Classifier` with the pipeline stages as buckets."""

    def shares(self, key: FuncKey, depth: int = 0) -> dict[str, float]:
        """How one second of `key`'s own time divides over the stages."""
        if key in self.memo:
            return self.memo[key]
        result: dict[str, float] = {}
        if not profiling._is_builtin(key):
            result = {stage_of(key) or "other (stdlib, construction)": 1.0}
        elif depth < 5 and key in self.stats:
            callers = self.stats[key][4]
            total = sum(v[2] for v in callers.values())
            for caller, v in callers.items():
                if total > 0:
                    for b, share in self.shares(caller, depth + 1).items():
                        result[b] = result.get(b, 0.0) + share * v[2] / total
        if not result:
            result = {"other (stdlib, construction)": 1.0}
        self.memo[key] = result
        return result

    def totals(self) -> dict[str, float]:
        """Seconds of own time per stage."""
        out = dict.fromkeys(STAGES, 0.0)
        for key, (_cc, _nc, tt, _ct, _callers) in self.stats.items():
            for b, share in self.shares(key).items():
                out[b] = out.get(b, 0.0) + tt * share
        return out


def profile_task(task: str, n: int) -> dict[str, Any]:
    """Profile the ReadFromText program on `task` and print the stage table; returns the figures."""
    from bench import peer_worker

    variant = pipelines.WINDOWED[task][0]
    csv_path, mp_path = peers.input_files(variant, n)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="ms-stage-profile-") as tmp:
        os.chdir(tmp)  # the job's default state directory goes there, not into the caller's directory
        try:
            out = os.path.join(tmp, "out")
            peer_worker.run("millstream-text", task, csv_path, mp_path, out + "-warm")
            prof = cProfile.Profile()
            prof.enable()
            peer_worker.run("millstream-text", task, csv_path, mp_path, out)
            prof.disable()
        finally:
            os.chdir(cwd)
    raw: dict[FuncKey, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values())
    stages = StageClassifier(raw, ()).totals()
    w = sys.stdout.write
    w(
        f"\n== stage profile: {task}, {n:,} events, ReadFromText program (cProfile, one warm run; "
        f"total own time {total:.2f} s, inflated by profiling) ==\n"
    )
    for s in STAGES:
        sec = stages.get(s, 0.0)
        w(f"{s:40s} {sec:7.3f} s {100 * sec / total if total else 0:6.1f}%\n")
    return {"task": task, "events": n, "total_s": total, "stages": stages}
