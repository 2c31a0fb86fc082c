"""Key encoding (prefix safety, order) and value codecs (type-exact round trips)."""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from millstream.state import MSGPACK, MsgpackCodec, OrjsonCodec, RawCodec, StructCodec, codec_from_name
from millstream.state.keys import (
    STATE,
    aux_key,
    decode_i64,
    decode_segments,
    decode_state_key,
    encode_i64,
    encode_segments,
    key_prefix,
    namespace_prefix,
    operator_prefix,
    partial_prefix,
    prefix_end,
    state_key,
)

segment = st.binary(max_size=12) | st.sampled_from(
    [b"", b"\x00", b"\x00\x01", b"\x00\xff", b"\xff", b"a\x00"]
)
text = st.text(max_size=8) | st.sampled_from(["", "a", "ab", "a\x00b", "a\x00"])


@given(st.lists(segment, max_size=5))
def test_segments_round_trip(parts: list[bytes]) -> None:
    assert decode_segments(encode_segments(*parts)) == parts


@given(text, segment, segment, text)
def test_state_key_round_trip_and_prefixes(op: str, key: bytes, ns: bytes, name: str) -> None:
    k = state_key(op, key, ns, name)
    assert decode_state_key(k) == (op, key, ns, name)
    assert k.startswith(operator_prefix(op))
    assert k.startswith(key_prefix(op, key))
    assert k.startswith(namespace_prefix(op, key, ns))
    assert k.startswith(partial_prefix(operator_prefix(op), key[:2]))


@given(st.tuples(text, segment, segment, text), st.tuples(text, segment, segment, text))
def test_prefixes_are_unambiguous_and_order_is_preserved(
    a: tuple[str, bytes, bytes, str], b: tuple[str, bytes, bytes, str]
) -> None:
    ka, kb = state_key(*a), state_key(*b)
    # a key is under another cell's operator/key prefix exactly when those parts are equal
    assert ka.startswith(operator_prefix(b[0])) == (a[0] == b[0])
    assert ka.startswith(key_prefix(b[0], b[1])) == (a[:2] == b[:2])
    assert ka.startswith(namespace_prefix(*b[:3])) == (a[:3] == b[:3])
    # byte order of encoded keys == lexicographic order of the (utf-8) parts
    pa = (a[0].encode(), a[1], a[2], a[3].encode())
    pb = (b[0].encode(), b[1], b[2], b[3].encode())
    assert (ka < kb) == (pa < pb)


def test_concrete_prefix_cases() -> None:
    assert not state_key("ab", b"k", b"", "n").startswith(operator_prefix("a"))
    assert not state_key("a\x00b", b"k", b"", "n").startswith(operator_prefix("a"))
    assert not state_key("a", b"k\x00", b"", "n").startswith(key_prefix("a", b"k"))
    assert state_key("a", b"k", b"", "n")[:1] == STATE
    assert aux_key(b"x")[:1] == b"\x02"
    with pytest.raises(ValueError):
        decode_segments(b"a\x00b\x00\x01")


@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1))
def test_i64_encoding_preserves_order(a: int, b: int) -> None:
    assert decode_i64(encode_i64(a)) == a
    assert (encode_i64(a) < encode_i64(b)) == (a < b)


def test_i64_out_of_range_and_prefix_end() -> None:
    with pytest.raises(struct.error):
        encode_i64(2**63)
    assert prefix_end(b"ab") == b"ac"
    assert prefix_end(b"a\xff\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None


# -- codecs -----------------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: exercises the big-int ext
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
    | st.binary(max_size=5)
)
hashables = st.recursive(scalars, lambda c: st.tuples(c, c) | st.frozensets(c, max_size=3), max_leaves=6)
values = st.recursive(
    scalars,
    lambda c: (
        st.lists(c, max_size=4)
        | st.lists(c, max_size=4).map(tuple)
        | st.dictionaries(hashables, c, max_size=3)
        | st.sets(hashables, max_size=3)
        | st.frozensets(hashables, max_size=3)
    ),
    max_leaves=12,
)


def same(a: Any, b: Any) -> bool:
    """Equal AND of identical types all the way down (so (1,) != [1] and True != 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@given(values)
def test_msgpack_codec_is_type_exact(value: object) -> None:
    for codec in (MSGPACK, MsgpackCodec(allow_pickle=False)):
        assert same(codec.decode(codec.encode(value)), value)


def test_msgpack_special_values() -> None:
    for value in [(), (1, 2), [(1, 2)], {(1, 2): {3}}, 2**200, -(2**70), tuple(range(300))]:
        assert same(MSGPACK.decode(MSGPACK.encode(value)), value)
    assert math.isnan(MSGPACK.decode(MSGPACK.encode(float("nan"))))
    assert MSGPACK.decode(MSGPACK.encode(float("-inf"))) == float("-inf")


@dataclasses.dataclass
class MeanAcc:
    total: float
    count: int


def test_msgpack_pickle_fallback_and_its_switch() -> None:
    value = {"acc": MeanAcc(1.5, 2), "raw": bytearray(b"x")}
    assert MSGPACK.decode(MSGPACK.encode(value)) == value
    strict = MsgpackCodec(allow_pickle=False)
    with pytest.raises(TypeError, match="MeanAcc"):
        strict.encode(MeanAcc(1.0, 1))
    with pytest.raises(ValueError, match="pickle"):
        strict.decode(MSGPACK.encode(MeanAcc(1.0, 1)))


def test_struct_orjson_raw_codecs() -> None:
    qq = StructCodec("<qq")
    assert qq.decode(qq.encode((3, -4))) == (3, -4)
    with pytest.raises(struct.error):
        qq.encode((2**63, 0))
    scalar = StructCodec("<d", scalar=True)
    assert scalar.decode(scalar.encode(2.5)) == 2.5
    with pytest.raises(ValueError):
        StructCodec("<qq", scalar=True)
    oj = OrjsonCodec()
    assert oj.decode(oj.encode((1, "a"))) == [1, "a"]  # documented: tuples come back as lists
    assert RawCodec().decode(RawCodec().encode(b"\x00x")) == b"\x00x"
    codecs: list[Any] = [MSGPACK, MsgpackCodec(allow_pickle=False), qq, scalar, oj, RawCodec()]
    for codec in codecs:
        assert codec_from_name(codec.name).name == codec.name
    with pytest.raises(ValueError):
        codec_from_name("nope")
