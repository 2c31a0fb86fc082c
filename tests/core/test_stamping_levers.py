"""The per-event levers of issue 18 keep results identical: lazy TimestampedValue conversion, batch decoding
of text lines, and CombineFn.add_inputs without side arguments."""

from __future__ import annotations

import datetime

import pytest

from millstream.connectors.files.source import TextDecoder
from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.timestamp import Timestamp, TimestampedValue, micros_of, to_micros


@pytest.mark.parametrize(
    "ts",
    [
        0,
        1,
        -1,
        1.5,
        -1.5,
        1_700_000_000.123,
        -0.0000004,
        0.0000005,
        2.675,
        Timestamp(3.25),
        datetime.datetime(2024, 1, 2, 3, 4, 5, 678901),
    ],
)
def test_micros_equal_the_eager_conversion(ts: object) -> None:
    tv = TimestampedValue("v", ts)
    assert tv.micros == to_micros(ts)
    assert micros_of([tv]) == [to_micros(ts)]


def test_micros_of_mixed_and_uniform_batches() -> None:
    floats = [TimestampedValue(i, i / 7 - 3) for i in range(50)]
    ints = [TimestampedValue(i, i - 25) for i in range(50)]
    mixed = floats[:5] + ints[:5] + [TimestampedValue(0, Timestamp(micros=7))]
    for batch in (floats, ints, mixed):
        assert micros_of(batch) == [
            to_micros(tv._t) if not isinstance(tv._t, Timestamp) else tv._t.micros for tv in batch
        ]
        assert micros_of(batch) == [tv.micros for tv in batch]


def test_bad_timestamp_fails_at_construction() -> None:
    with pytest.raises(TypeError):
        TimestampedValue("v", "yesterday")


def test_micros_setter_and_equality() -> None:
    tv = TimestampedValue("v", 1.0)
    tv.micros = 5
    assert tv.micros == 5 and tv.timestamp == Timestamp(micros=5)
    assert TimestampedValue("v", 1.0) == TimestampedValue("v", 1)


def test_text_decoder_batch_and_bad_line() -> None:
    dec = TextDecoder()
    assert dec.decode([b"a", "\u00e9".encode(), b""]) == (["a", "\u00e9", ""], [])
    values, errors = dec.decode([b"ok", b"\xff\xfe", b"fine"])
    assert values == ["ok", "fine"] and [i for i, _ in errors] == [1]
    latin = TextDecoder("latin-1")
    assert latin.decode([b"\xe9t\xe9"]) == (["\u00e9t\u00e9"], [])


class _Sum(CombineFn):
    def create_accumulator(self) -> int:
        return 0

    def add_input(self, acc: int, v: int, scale: int = 1) -> int:
        return acc + v * scale

    def merge_accumulators(self, accs: object) -> int:
        return sum(accs)  # type: ignore[arg-type]

    def extract_output(self, acc: int) -> int:
        return acc


def test_add_inputs_with_and_without_side_arguments() -> None:
    fn = _Sum()
    assert fn.add_inputs(0, [1, 2, 3]) == 6
    assert fn.add_inputs(0, [1, 2, 3], 10) == 60
    assert fn.add_inputs(0, [1, 2, 3], scale=2) == 12
