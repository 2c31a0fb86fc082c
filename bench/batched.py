"""The batched-DoFn benchmark: a vectorizable step as a numpy `process_batch` against the bare-Python loop.

Every value ``x`` goes through a small feature transform, ``sqrt(x*x + 1)`` plus a degree-4 polynomial
(Horner), using only correctly rounded operations so numpy and the `math` module agree bit for bit. The
lighter ``sqrt(x*x + 1) * 0.5 + x / 3`` alone is at 0.70x of the bare loop (numbers in docs/performance.md):
the runtime's share per element (~85 ns: Create, list <-> array, collecting) is the crossover point.
Systems: the bare per-element loop (the reference), the same step as
an element-wise millstream DoFn, and as a numpy batched DoFn (`process_batch` on the batches the runtime
already has). All three must produce the same multiset of floats.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np  # at module level: the DoFn's string annotations (this module's __future__ import) name it

from bench.core import Benchmark, InProcessSystem, register


def values(n: int, seed: int = 11) -> list[float]:
    """`n` floats uniform in [-1000, 1000)."""
    rnd = random.Random(seed)
    return [rnd.uniform(-1000.0, 1000.0) for _ in range(n)]


def bare(xs: list[float]) -> list[float]:
    """The per-element loop a user would write."""
    sqrt = math.sqrt
    out = []
    append = out.append
    for x in xs:
        append(sqrt(x * x + 1.0) + (((0.25 * x - 1.5) * x + 2.0) * x - 0.75) * x / 3.0)
    return out


def _dofns(beam: Any) -> tuple[Any, Any]:
    class Elementwise(beam.DoFn):  # type: ignore[misc,name-defined]
        """The step, one element at a time."""

        def process(self, x: float) -> Iterator[float]:
            yield math.sqrt(x * x + 1.0) + (((0.25 * x - 1.5) * x + 2.0) * x - 0.75) * x / 3.0

    class Batched(beam.DoFn):  # type: ignore[misc,name-defined]
        """The step on a numpy array of the batch."""

        def process_batch(self, batch: np.ndarray) -> Iterator[np.ndarray]:
            x = batch
            yield np.sqrt(x * x + 1.0) + (((0.25 * x - 1.5) * x + 2.0) * x - 0.75) * x / 3.0

    return Elementwise(), Batched()


def _millstream(batched: bool) -> Any:
    def run(xs: list[float]) -> list[float]:
        import millstream as ms

        out: list[float] = []
        fn = _dofns(ms)[1 if batched else 0]
        with ms.Pipeline() as p:
            p | "Create" >> ms.Create(xs) | "Step" >> ms.ParDo(fn) | "Collect" >> ms.Map(out.append)
        return out

    return run


@register("batched")
def batched() -> Benchmark:
    """A numpy batched DoFn against the bare loop and the element-wise DoFn."""
    return Benchmark(
        name="batched",
        description="x -> sqrt(x*x+1) + degree-4 polynomial per float: numpy process_batch vs element-wise",
        unit="values",
        default_events=1_000_000,
        make_input=values,
        count=len,
        bare=InProcessSystem("bare Python (per-element loop)", "bare", bare),
        systems=[
            InProcessSystem("millstream, element-wise DoFn", "reference", _millstream(False)),
            InProcessSystem("millstream, numpy process_batch", "millstream", _millstream(True)),
        ],
        canonical=lambda out: Counter(out),
        targets={"bare": 1.0},
    )
