"""Batched DoFns (Beam's `process_batch`, `yields_batches`, `yields_elements`, batch converters inferred from
type hints) give, element for element, what the element-wise DoFn gives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import millstream as beam
from millstream import window
from millstream.typehints.batch import BatchConverter, ListBatchConverter, NumpyBatchConverter


def _run(build: object) -> list[object]:
    out: list[object] = []
    with beam.Pipeline() as p:
        build(p) | "Collect" >> beam.Map(out.append)  # type: ignore[operator]
    return out


class ElementWise(beam.DoFn):
    def process(self, x: int) -> Iterator[int]:
        yield x * 3 + 1


class NumpyBatched(beam.DoFn):
    def process_batch(self, batch: np.ndarray) -> Iterator[np.ndarray]:
        yield batch * 3 + 1


class Both(beam.DoFn):
    """Defines both: the runtime may call either; the results must not depend on it."""

    def process(self, x: int) -> Iterator[int]:
        yield x * 3 + 1

    def process_batch(self, batch: np.ndarray) -> Iterator[np.ndarray]:
        yield batch * 3 + 1


class ListBatched(beam.DoFn):
    def process_batch(self, batch: list[int]) -> Iterator[list[int]]:
        yield [x * 3 + 1 for x in batch]


class ArrowBatched(beam.DoFn):
    def process_batch(self, batch: pa.Array) -> Iterator[pa.Array]:
        import pyarrow.compute as pc

        yield pc.add(pc.multiply(batch, 3), 1)


class ElementsFromBatch(beam.DoFn):
    @beam.DoFn.yields_elements
    def process_batch(self, batch: np.ndarray) -> Iterator[int]:
        yield from (batch * 3 + 1).tolist()


class BatchesFromElement(beam.DoFn):
    @beam.DoFn.yields_batches
    def process(self, x: int) -> Iterator[np.ndarray]:
        yield np.array([x * 3 + 1])


@pytest.mark.parametrize(
    "fn", [NumpyBatched, Both, ListBatched, ArrowBatched, ElementsFromBatch, BatchesFromElement]
)
def test_batched_equals_element_wise(fn: type) -> None:
    data = list(range(-500, 2500))
    expected = _run(lambda p: p | beam.Create(data) | beam.ParDo(ElementWise()))
    got = _run(lambda p: p | beam.Create(data) | beam.ParDo(fn()))
    assert got == expected  # same order: one bundle in, one homogeneous batch
    assert {type(x) for x in got} == {int}  # plain Python elements, as the element-wise DoFn gives


def test_float_batches_and_inferred_dtype() -> None:
    class Scale(beam.DoFn):
        def process(self, x: float) -> Iterator[float]:
            yield x / 7

    class ScaleBatch(Scale):
        def process_batch(self, batch: np.ndarray) -> Iterator[np.ndarray]:
            yield batch / 7

    data = [i * 0.5 for i in range(1000)]
    assert _run(lambda p: p | beam.Create(data) | beam.ParDo(ScaleBatch())) == _run(
        lambda p: p | beam.Create(data) | beam.ParDo(Scale())
    )


class _Stamp(beam.DoFn):
    # Any, not object: Beam (and millstream) refuse an `object` output where `int` is declared downstream
    def process(self, x: int) -> Iterator[Any]:
        yield window.TimestampedValue(x, x % 97)


class _WithWindow(beam.DoFn):
    def process(
        self, x: int, w: object = beam.DoFn.WindowParam, t: object = beam.DoFn.TimestampParam
    ) -> Iterator:
        yield (x * 2, w.start.micros, t.micros)  # type: ignore[attr-defined]


class _WithWindowBatch(beam.DoFn):
    def process_batch(
        self, batch: np.ndarray, w: object = beam.DoFn.WindowParam, t: object = beam.DoFn.TimestampParam
    ) -> Iterator[list[tuple[int, int, int]]]:
        yield [(x, w.start.micros, t.micros) for x in (batch * 2).tolist()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("windowing", [window.FixedWindows(10), window.SlidingWindows(30, 10)])
def test_timestamped_windowed_batches_are_homogeneous(windowing: object) -> None:
    data = list(range(3000))

    def build(fn: beam.DoFn) -> object:
        return lambda p: (
            p | beam.Create(data) | beam.ParDo(_Stamp()) | beam.WindowInto(windowing) | beam.ParDo(fn)
        )

    expected = _run(build(_WithWindow()))
    got = _run(build(_WithWindowBatch()))
    assert sorted(got) == sorted(expected)  # type: ignore[type-var]
    assert len(got) == len(data) * (3 if isinstance(windowing, window.SlidingWindows) else 1)


def test_windows_and_timestamps_carry_through_to_a_grouping() -> None:
    def build(fn: beam.DoFn) -> object:
        return lambda p: (
            p
            | beam.Create(list(range(2000)))
            | beam.ParDo(_Stamp())
            | beam.WindowInto(window.FixedWindows(20))
            | beam.ParDo(fn)
            | beam.Map(lambda x: (x % 5, x))
            | beam.CombinePerKey(sum)
        )

    assert sorted(_run(build(NumpyBatched()))) == sorted(_run(build(ElementWise())))  # type: ignore[type-var]


def test_converters_from_typehints() -> None:
    assert isinstance(
        BatchConverter.from_typehints(element_type=int, batch_type=list[int]), ListBatchConverter
    )
    conv = BatchConverter.from_typehints(element_type=int, batch_type=np.ndarray)
    assert isinstance(conv, NumpyBatchConverter) and conv.produce_batch([1, 2]).dtype == np.int64
    import numpy.typing as npt

    conv32 = BatchConverter.from_typehints(element_type=None, batch_type=npt.NDArray[np.int32])
    assert conv32.produce_batch([1, 2]).dtype == np.int32
    assert list(conv32.explode_batch(conv32.combine_batches([np.array([1]), np.array([2, 3])]))) == [1, 2, 3]


def test_bad_hints_are_named_at_construction() -> None:
    class NoHint(beam.DoFn):
        def process_batch(self, batch):  # type: ignore[no-untyped-def]
            yield batch

    class Dict(beam.DoFn):
        def process_batch(self, batch: dict) -> Iterator[dict]:  # type: ignore[type-arg]
            yield batch

    class Keyed(beam.DoFn):
        def process_batch(self, batch: list[int], k: object = beam.DoFn.KeyParam) -> Iterator[list[int]]:
            yield batch

    for fn, words in (
        (NoHint, "type hint on its batch parameter"),
        (Dict, "no batch converter"),
        (Keyed, "KeyParam"),
    ):
        with pytest.raises(Exception, match=words) as info:
            _run(lambda p, fn=fn: p | beam.Create([1]) | "Bad" >> beam.ParDo(fn()))
        assert "Bad" in str(info.value) and fn.__name__ in str(info.value)


def test_user_error_in_process_batch_names_the_step() -> None:
    class Boom(beam.DoFn):
        def process_batch(self, batch: list[int]) -> Iterator[list[int]]:
            raise ValueError("kaboom")

    with pytest.raises(Exception, match="kaboom") as info:
        _run(lambda p: p | beam.Create([1, 2]) | "Explode" >> beam.ParDo(Boom()))
    assert "Explode" in str(info.value)


def test_process_batch_in_a_stateful_dofn_is_refused_by_name() -> None:
    from millstream.transforms.userstate import ReadModifyWriteStateSpec

    class Stateful(beam.DoFn):
        COUNT = ReadModifyWriteStateSpec("count", beam.coders.PickleCoder())

        def process(self, kv: tuple[str, int], count: object = beam.DoFn.StateParam(COUNT)) -> Iterator[int]:
            yield kv[1]

        def process_batch(self, batch: list[int]) -> Iterator[list[int]]:
            yield batch

    with pytest.raises(
        TypeError, match="process_batch is supported in plain ParDos, not in stateful"
    ) as info:
        _run(lambda p: p | beam.Create([("a", 1)]) | "Counted" >> beam.ParDo(Stateful()))
    assert "Counted" in str(info.value)
