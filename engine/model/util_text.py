"""Beam's `Regex` and `ToString` transforms (`apache_beam.transforms.util`), composed from Map and FlatMap."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, Union

from millstream.engine.model.core import FlatMap, Map
from millstream.engine.model.ptransform import PTransform


def _compile(regex: str | re.Pattern[str]) -> re.Pattern[str]:
    if isinstance(regex, re.Pattern):
        return regex
    if not isinstance(regex, str):
        raise TypeError(f"Regex needs a pattern string or re.compile() pattern, got {type(regex).__name__}")
    try:
        return re.compile(regex)
    except re.error as e:
        raise ValueError(f"Regex: invalid regular expression {regex!r}: {e}") from None


#: What Beam infers for `Regex.find_all`'s output (a value for the construction-time check, not an annotation).
_FOUND: Any = Union[list[Any], list[tuple[Any, ...]]]  # noqa: UP007 - Beam's hint spelling


def _as_beams(transform: PTransform, output: Any) -> PTransform:
    """`transform` typed as Beam's Regex steps are: their functions are unannotated there, so any element is
    taken (a non-string fails when it runs, not when the pipeline is built) and the output has the type Beam
    infers from them."""
    return transform.with_input_types(Any).with_output_types(output)


class Regex:
    """Transforms that match, find, replace and split strings by a regular expression."""

    #: `find_all(..., group=Regex.ALL)` outputs every group of each match.
    ALL = "__regex_all_groups"

    @staticmethod
    def matches(regex: Any, group: int | str = 0) -> PTransform:
        """The `group` of each element whose beginning matches (elements that do not match are dropped)."""
        pattern = _compile(regex)

        def _match(element: str) -> Iterator[Any]:
            m = pattern.match(element)
            if m:
                yield m.group(group)

        return "Regex.matches" >> _as_beams(FlatMap(_match), Any)

    @staticmethod
    def all_matches(regex: Any) -> PTransform:
        """For each element whose beginning matches: `[whole match, group 1, group 2, ...]`."""
        pattern = _compile(regex)

        def _match(element: str) -> Iterator[list[Any]]:
            m = pattern.match(element)
            if m:
                yield [m.group(), *m.groups()]

        return "Regex.all_matches" >> _as_beams(FlatMap(_match), list[Any])

    @staticmethod
    def matches_kv(regex: Any, keyGroup: int | str, valueGroup: int | str = 0) -> PTransform:  # noqa: N803
        """`(keyGroup, valueGroup)` of each element whose beginning matches."""
        pattern = _compile(regex)

        def _match(element: str) -> Iterator[tuple[Any, Any]]:
            m = pattern.match(element)
            if m:
                yield (m.group(keyGroup), m.group(valueGroup))

        return "Regex.matches_kv" >> _as_beams(FlatMap(_match), tuple[Any, Any])

    @staticmethod
    def find(regex: Any, group: int | str = 0) -> PTransform:
        """The `group` of the first match anywhere in each element."""
        pattern = _compile(regex)

        def _find(element: str) -> Iterator[Any]:
            m = pattern.search(element)
            if m:
                yield m.group(group)

        return "Regex.find" >> _as_beams(FlatMap(_find), Any)

    @staticmethod
    def find_all(regex: Any, group: int | str = 0, outputEmpty: bool = True) -> PTransform:  # noqa: N803
        """Per element, the list of `group` of every match (tuples of all groups with `Regex.ALL`); empty
        matches are left out when `outputEmpty` is False."""
        pattern = _compile(regex)

        def _find_all(element: str) -> Iterator[list[Any]]:
            found = list(pattern.finditer(element))
            if group == Regex.ALL:
                yield [(m.group(), *m.groups()) for m in found if outputEmpty or m.group()]
            else:
                yield [m.group(group) for m in found if outputEmpty or m.group(group)]

        return "Regex.find_all" >> _as_beams(FlatMap(_find_all), _FOUND)

    @staticmethod
    def find_kv(regex: Any, keyGroup: int | str, valueGroup: int | str = 0) -> PTransform:  # noqa: N803
        """`(keyGroup, valueGroup)` of every match anywhere in each element."""
        pattern = _compile(regex)

        def _find_kv(element: str) -> Iterator[tuple[Any, Any]]:
            for m in pattern.finditer(element):
                yield (m.group(keyGroup), m.group(valueGroup))

        return "Regex.find_kv" >> _as_beams(FlatMap(_find_kv), tuple[Any, Any])

    @staticmethod
    def replace_all(regex: Any, replacement: str) -> PTransform:
        """Each element with every match replaced by `replacement`."""
        pattern = _compile(regex)
        return "Regex.replace_all" >> _as_beams(Map(lambda element: pattern.sub(replacement, element)), Any)

    @staticmethod
    def replace_first(regex: Any, replacement: str) -> PTransform:
        """Each element with its first match replaced by `replacement`."""
        pattern = _compile(regex)
        return "Regex.replace_first" >> _as_beams(
            Map(lambda element: pattern.sub(replacement, element, count=1)), Any
        )

    @staticmethod
    def split(regex: Any, outputEmpty: bool = False) -> PTransform:  # noqa: N803
        """Each element split by the regex, as a list (empty strings left out unless `outputEmpty`)."""
        pattern = _compile(regex)

        def _split(element: str) -> list[str]:
            parts = pattern.split(element)
            return parts if outputEmpty else [p for p in parts if p]

        return "Regex.split" >> _as_beams(Map(_split), Any)


class ToString:
    """Transforms that turn elements into strings."""

    @staticmethod
    def Element() -> PTransform:  # noqa: N802 - Beam's name
        """`str(element)`."""
        return "ElementToString" >> Map(str)

    @staticmethod
    def Iterables(delimiter: str | None = None) -> PTransform:  # noqa: N802
        """The items of each iterable element (or key-value pair) as strings, joined by `delimiter` (',')."""
        sep = "," if delimiter is None else delimiter
        joined = Map(lambda xs: sep.join(str(x) for x in xs))
        return "IterablesToString" >> joined.with_input_types(Iterable[Any]).with_output_types(str)  # Beam's

    Kvs = Iterables


__all__ = ["Regex", "ToString"]
