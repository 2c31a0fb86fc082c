"""`io.range_trackers.LexicographicKeyRangeTracker`: key <-> fraction interpolation agrees with Beam's on bytes and
str keys, and a reader claiming keys in order can be split between them."""

from typing import Any

import pytest

from millstream.io.range_trackers import LexicographicKeyRangeTracker

from support.beam_harness import engine

RANGES: list[tuple[Any, Any]] = [
    (b"", b""),
    (None, None),
    (b"a", b"b"),
    (b"abc", b"abd"),
    (b"\x00", b"\x01"),
    (b"\xff\xff", b""),
    (b"key-0001", b"key-9999"),
    ("a", "z"),
    ("user/0", "user/5"),
]

FRACTIONS = [0.0, 1e-9, 0.001, 0.25, 0.5, 0.75, 0.999, 1.0]


def _beams() -> Any:
    engine("beam")
    from apache_beam.io.range_trackers import LexicographicKeyRangeTracker as BeamTracker

    return BeamTracker


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_fraction_to_position_agrees_with_beam(start: Any, end: Any) -> None:
    beams = _beams()
    for f in FRACTIONS:
        assert LexicographicKeyRangeTracker.fraction_to_position(f, start, end) == beams.fraction_to_position(
            f, start, end
        ), f


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_position_to_fraction_agrees_with_beam(start: Any, end: Any) -> None:
    beams = _beams()
    text = isinstance(start, str) or isinstance(end, str)
    keys = ["a", "ab", "m", "user/3", "zz"] if text else [b"a", b"ab", b"abc\x80", b"key-5000", b"\xff"]
    for key in keys:
        lo = start if start is not None else key[:0]
        if key < lo or (end and key >= end):
            continue  # only keys inside the range have a fraction of it
        ours = LexicographicKeyRangeTracker.position_to_fraction(key, start, end)
        assert ours == pytest.approx(beams.position_to_fraction(key, start, end)), key
        assert 0 <= ours < 1


def test_positions_are_strictly_inside_the_range_and_in_order() -> None:
    keys = [LexicographicKeyRangeTracker.fraction_to_position(f, b"a", b"b") for f in FRACTIONS]
    assert keys[0] == b"a" and keys[-1] == b"b"
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_a_reader_claims_keys_in_order_and_is_split_between_them() -> None:
    tracker = LexicographicKeyRangeTracker(b"a", b"z")
    assert tracker.try_claim(b"b")
    assert tracker.try_claim(b"f")
    split = tracker.try_split(tracker.position_at_fraction(0.5))
    assert split is not None
    middle, fraction = split
    assert b"f" < middle < b"z" and fraction == pytest.approx(0.5, abs=1e-6)
    assert tracker.stop_position() == middle
    assert tracker.try_split(b"c") is None  # already claimed past
    assert not tracker.try_claim(b"y")  # past the new stop
    with pytest.raises(ValueError, match="after claim"):
        tracker.try_claim(b"c")


def test_a_str_range_open_at_the_end_gives_str_keys() -> None:
    """Beam's own fails here (it strips a str start with a bytes argument); the keys are as for bytes."""
    keys = [LexicographicKeyRangeTracker.fraction_to_position(f, "", "") for f in (0.25, 0.5, 0.75)]
    assert keys == ["@", "\x80", "\xc0"]


def test_a_fraction_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        LexicographicKeyRangeTracker.fraction_to_position(1.5, b"a", b"b")
