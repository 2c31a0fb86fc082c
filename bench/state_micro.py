"""Micro-benchmark of millstream.state: ns/op of codecs, backends and commits.

Run from the repository root: ``.venv/bin/python -P bench/state_micro.py [--quick]``.
Each figure is the best of several repeats (least disturbed by other load), in nanoseconds per
operation. RocksDB runs in a temporary directory (WAL on, no fsync unless stated).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import timeit
from collections.abc import Callable
from typing import Any

from millstream.state import (
    MSGPACK,
    MemoryBackend,
    OrjsonCodec,
    RocksDBBackend,
    StructCodec,
)
from millstream.state.keys import encode_i64, state_key

REPEAT = 5


def best_ns(fn: Callable[[], Any], number: int, per_call: int = 1) -> float:
    """Best-of-REPEAT time of ``fn`` in ns per operation (``per_call`` operations per call)."""
    return min(timeit.repeat(fn, number=number, repeat=REPEAT)) / (number * per_call) * 1e9


def row(name: str, ns: float) -> None:
    """Print one result line: the case's name and its time in ns per operation."""
    print(f"{name:58s} {ns:9.0f}")


def bench_codecs(n: int) -> None:
    """Time encoding and decoding of typical accumulators with each state codec."""
    acc = (12345, 987654321)
    general = {"count": 3, "sum": 1.5, "keys": ["a", "b"], "window": (0, 60_000_000)}
    struct_qq = StructCodec("<qq")
    orj = OrjsonCodec()
    cases: list[tuple[str, Any, Any]] = [
        ("msgpack (type-exact)  (count,sum) tuple", MSGPACK, acc),
        ("msgpack (type-exact)  [count,sum] list", MSGPACK, list(acc)),
        ("msgpack (type-exact)  small dict with a tuple", MSGPACK, general),
        ("msgpack (type-exact)  int beyond 64 bit", MSGPACK, 2**80 + 7),
        ("orjson                (count,sum) tuple", orj, acc),
        ("struct <qq            (count,sum) tuple", struct_qq, acc),
    ]
    for label, codec, value in cases:
        data = codec.encode(value)
        row(f"encode  {label}", best_ns(functools.partial(codec.encode, value), n))
        row(f"decode  {label}", best_ns(functools.partial(codec.decode, data), n))


def bench_backend(label: str, backend: Any, n: int) -> None:
    """Time a state backend's prefix scan, gets (hit and miss), puts and batched writes over `n` keys."""
    keys = [state_key("op", b"k%06d" % i, encode_i64(i), "acc") for i in range(n)]
    value = StructCodec("<qq").encode((1, 2))
    pairs = [(k, value) for k in keys]
    # Scan first, over one version per key: rewriting keys leaves versions in the memtable that a
    # RocksDB iterator has to step over, which would measure the history, not the scan.
    backend.write_batch(pairs)
    row(
        f"{label}: scan_prefix over {n}, per entry",
        best_ns(lambda: sum(1 for _ in backend.scan_prefix(b"\x01")), 3, n),
    )
    it = iter(keys * 64)
    row(f"{label}: get (hit)", best_ns(lambda: backend.get(next(it)), n))
    missing = iter([k + b"x" for k in keys] * 64)
    row(f"{label}: get (miss)", best_ns(lambda: backend.get(next(missing)), n))
    it2 = iter(keys * 64)
    row(f"{label}: put (one key)", best_ns(lambda: backend.put(next(it2), value), n))
    row(f"{label}: write_batch of {n}, per entry", best_ns(lambda: backend.write_batch(pairs), 3, n))
    row(
        f"{label}: write_batch of {n} sync=True, per entry",
        best_ns(lambda: backend.write_batch(pairs, sync=True), 3, n),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the micro-benchmark (``--quick`` for a smoke run) and print ns per operation."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = parser.parse_args(argv)
    n = 2_000 if args.quick else 20_000
    print(f"millstream.state micro-benchmark (ns/op, best of {REPEAT}; Python {sys.version.split()[0]})")
    print("-- codecs")
    bench_codecs(n * 10)
    with tempfile.TemporaryDirectory(prefix="ms-state-micro-") as tmp:
        print("-- backends")
        bench_backend("MemoryBackend", MemoryBackend(), n)
        rocks = RocksDBBackend(os.path.join(tmp, "rocks"))
        bench_backend("RocksDBBackend", rocks, n)
        rocks.close()
        print("-- write-back cache and checkpoints")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
