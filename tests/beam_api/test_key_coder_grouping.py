"""Grouping by the registered key coder (Beam's snippets' type_hints_deterministic_key): when a coder is registered
for the hinted key type, keys whose encodings are equal are one key, on millstream as on Beam's DirectRunner;
without a registered coder the plan is the one it always was (no encoding steps)."""

import types
from typing import Any

import pytest

import millstream as beam

from support.beam_harness import capture, engine, run_collect


class Player:
    """A key without `__eq__`: two equal players are different objects to Python."""

    def __init__(self, team: str, name: str) -> None:
        self.team = team
        self.name = name


class Unregistered:
    """A key class no coder is registered for."""

    def __init__(self, name: str) -> None:
        self.name = name


def _register(b: types.ModuleType) -> None:
    class PlayerCoder(b.coders.Coder):
        def encode(self, player: Player) -> bytes:
            return f"{player.team}:{player.name}".encode()

        def decode(self, s: bytes) -> Player:
            return Player(*s.decode("utf-8").split(":"))

        def is_deterministic(self) -> bool:
            return True

    b.coders.registry.register_coder(Player, PlayerCoder)


LINES = ["banana,fruit,3", "kiwi,fruit,2", "kiwi,fruit,2", "zucchini,veg,3"]


def _parse(csv: str) -> tuple[Player, int]:
    name, team, score = csv.split(",")
    return Player(team, name), int(score)


def _named(kv: tuple[Any, Any]) -> tuple[str, Any]:
    return kv[0].name, sorted(kv[1]) if isinstance(kv[1], list) else kv[1]


def _build(kind: str) -> Any:
    def build(b: types.ModuleType, p: Any) -> None:
        _register(b)
        lines = p | b.Create(LINES)
        if kind == "combine_hinted":
            out = lines | b.Map(_parse) | b.CombinePerKey(sum).with_input_types(tuple[Player, int])
        elif kind == "group_hinted":
            out = lines | b.Map(_parse) | b.GroupByKey().with_input_types(tuple[Player, int])
        else:  # the input's element type names the key type
            out = lines | b.Map(_parse).with_output_types(tuple[Player, int]) | b.CombinePerKey(sum)
        capture(b, out | b.Map(_named), "out")

    return build


EXPECTED = {
    "combine_hinted": [("banana", 3), ("kiwi", 4), ("zucchini", 3)],
    "group_hinted": [("banana", [3]), ("kiwi", [2, 2]), ("zucchini", [3])],
    "combine_element_type": [("banana", 3), ("kiwi", 4), ("zucchini", 3)],
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_keys_with_equal_encodings_group_together_as_in_beam(kind: str) -> None:
    for name in ("beam", "millstream"):
        got = run_collect(name, _build(kind))["out"]
        assert sorted(got) == EXPECTED[kind], name


def _labels(p: beam.Pipeline) -> list[str]:
    return [a.full_label for a in p.primitives()]


def test_the_steps_exist_only_for_a_registered_key_coder() -> None:
    _register(engine("millstream"))
    p = beam.Pipeline()
    pairs = p | beam.Create([(Unregistered("a"), 1)])
    _ = pairs | "Plain" >> beam.CombinePerKey(sum).with_input_types(tuple[Unregistered, int])
    ints = p | "I" >> beam.Create([(1, 1)])
    _ = ints | "Ints" >> beam.CombinePerKey(sum).with_input_types(tuple[int, int])
    players = p | "P" >> beam.Create([(Player("t", "a"), 1)])
    _ = players | "Coded" >> beam.CombinePerKey(sum).with_input_types(tuple[Player, int])
    labels = _labels(p)
    assert "Plain" in labels and "Ints" in labels
    assert [label for label in labels if label.startswith("Coded")] == [
        "Coded/EncodeKeys",
        "Coded/CombinePerKey",
        "Coded/DecodeKeys",
    ]


def test_one_transform_applied_with_and_without_a_key_coder() -> None:
    """The same instance stays a primitive where no coder applies, though it expanded elsewhere."""
    _register(engine("millstream"))
    combine = beam.CombinePerKey(sum)
    p = beam.Pipeline()
    players = p | beam.Create([(Player("t", "a"), 1), (Player("t", "a"), 2)])
    coded = players | "Coded" >> combine  # Create's inferred element type names the key type
    plain = p | "Words" >> beam.Create([("w", 1), ("w", 2)]) | "Plain" >> combine
    got_coded = coded | "N" >> beam.Map(_named)
    from millstream.testing.util import assert_that, equal_to

    assert_that(got_coded, equal_to([("a", 3)]), label="CodedOut")
    assert_that(plain, equal_to([("w", 3)]), label="PlainOut")
    p.run().wait_until_finish()
