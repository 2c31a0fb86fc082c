"""Beam's `apache_beam.testing.util`: assert_that and its matchers, run inside the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from millstream.engine.model.combinefn import ListCombineFn
from millstream.engine.model.core import CombineGlobally, Map, WindowInto
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import PCollection


class BeamAssertException(Exception):
    """Raised by a matcher when the actual elements are not the expected ones."""


class TestWindowedValue:
    """A value with its timestamp and windows, what `assert_that(..., reify_windows=True)` matches on."""

    __test__ = False  # not a pytest test class

    def __init__(self, value: Any, timestamp: Any, windows: Any, pane_info: Any = None) -> None:
        self.value = value
        self.timestamp = timestamp
        self.windows = tuple(windows)
        self.pane_info = pane_info

    def _key(self) -> tuple[Any, ...]:
        return (self.value, self.timestamp, self.windows)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TestWindowedValue)
            and self._key() == other._key()
            and (self.pane_info is None or other.pane_info is None or self.pane_info == other.pane_info)
        )

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"TestWindowedValue({self.value!r}, {self.timestamp!r}, {self.windows!r})"


def _unmatched(expected: list[Any], actual: list[Any]) -> tuple[list[Any], list[Any]]:
    """(missing, unexpected) comparing multisets with == (works for unhashable elements)."""
    remaining = list(actual)
    missing = []
    for e in expected:
        for i, a in enumerate(remaining):
            if a == e:
                del remaining[i]
                break
        else:
            missing.append(e)
    return missing, remaining


def equal_to(
    expected: Any, equals_fn: Callable[[Any, Any], bool] | None = None
) -> Callable[[list[Any]], None]:
    """A matcher: the actual elements equal `expected` as a multiset, in any order."""
    expected = list(expected)

    def _equal(actual: list[Any]) -> None:
        if equals_fn is not None:
            remaining = list(actual)
            missing = []
            for e in expected:
                for i, a in enumerate(remaining):
                    if equals_fn(e, a):
                        del remaining[i]
                        break
                else:
                    missing.append(e)
            unexpected = remaining
        else:
            try:
                if sorted(expected) == sorted(actual):
                    return
            except TypeError:
                pass
            missing, unexpected = _unmatched(expected, actual)
        if missing or unexpected:
            raise BeamAssertException(
                f"Failed assert: {expected!r} == {actual!r}, unexpected elements {unexpected!r}, "
                f"missing elements {missing!r}"
            )

    return _equal


def is_empty() -> Callable[[list[Any]], None]:
    """A matcher: there are no elements."""

    def _empty(actual: list[Any]) -> None:
        if actual:
            raise BeamAssertException(f"Failed assert: [] == {actual!r}")

    return _empty


def is_not_empty() -> Callable[[list[Any]], None]:
    """A matcher: there is at least one element."""

    def _not_empty(actual: list[Any]) -> None:
        if not actual:
            raise BeamAssertException("Failed assert: pcol is empty")

    return _not_empty


def matches_all(expected: list[Callable[[Any], bool]]) -> Callable[[list[Any]], None]:
    """A matcher: each predicate matches a distinct element, and every element is matched."""

    def _matches(actual: list[Any]) -> None:
        remaining = list(actual)
        for predicate in expected:
            for i, a in enumerate(remaining):
                if predicate(a):
                    del remaining[i]
                    break
            else:
                raise BeamAssertException(f"Failed assert: no element of {actual!r} matches {predicate!r}")
        if remaining:
            raise BeamAssertException(f"Failed assert: unmatched elements {remaining!r}")

    return _matches


class _EqualToPerWindowMatcher:
    """The matcher of `equal_to_per_window`: reified elements, each in the window it is expected in."""

    def __init__(self, expected_window_to_elements: dict[Any, Any]) -> None:
        self.expected = expected_window_to_elements

    def __call__(self, actual: list[Any]) -> None:
        expected = {w: list(values) for w, values in self.expected.items()}  # matched elements are removed
        for wv in actual:
            if not isinstance(wv, TestWindowedValue):
                raise BeamAssertException(
                    f"Failed assert: received element {wv!r} is not a TestWindowedValue; "
                    "did you forget reify_windows=True on the assertion?"
                )
            window = wv.windows[0]
            if window not in expected:
                raise BeamAssertException(
                    f"Failed assert: window {window} not found in any expected windows {list(expected)}"
                )
            try:
                expected[window].remove(wv.value)
            except ValueError:
                raise BeamAssertException(
                    f"Failed assert: element {wv.value!r} not found in window {window}:{expected[window]!r}"
                ) from None
        for window, left in expected.items():
            if left:
                raise BeamAssertException(f"Failed assert: unmatched elements {left!r} in window {window}")


def equal_to_per_window(expected_window_to_elements: dict[Any, Any]) -> Callable[[list[Any]], None]:
    """A matcher: `{window: [elements]}`, each element in its window (Beam's `equal_to_per_window`; `assert_that`
    reifies the windows for it).

    >>> from millstream.engine.model.window import IntervalWindow
    >>> w = IntervalWindow(0, 10)
    >>> equal_to_per_window({w: [1]})([TestWindowedValue(1, 5, [w])])
    """
    return _EqualToPerWindowMatcher(expected_window_to_elements)


class _Reify(DoFn):
    """Wraps each element with its timestamp and window."""

    def process(
        self,
        element: Any,
        timestamp: Any = DoFn.TimestampParam,
        window: Any = DoFn.WindowParam,
        pane_info: Any = DoFn.PaneInfoParam,
    ) -> Any:
        yield TestWindowedValue(element, timestamp, [window])


class _AssertThat(PTransform):
    def __init__(
        self, matcher: Callable[[list[Any]], None], reify_windows: bool, use_global_window: bool
    ) -> None:
        super().__init__("AssertThat")
        self.matcher = matcher
        self.reify_windows = reify_windows
        self.use_global_window = use_global_window

    def expand(self, pcoll: PCollection) -> Any:
        from millstream.engine.model.core import ParDo
        from millstream.engine.model.window import GlobalWindows

        if self.reify_windows:
            pcoll = pcoll | "ReifyWindows" >> ParDo(_Reify())
        if self.use_global_window:
            pcoll = pcoll | "WindowIntoGlobal" >> WindowInto(GlobalWindows())
        matcher = self.matcher
        if not self.use_global_window:
            # As Beam: the matcher runs once per window, on (elements of the window, the window).
            return (
                pcoll
                | "ToList" >> CombineGlobally(ListCombineFn()).without_defaults()
                | "AddWindow" >> ParDo(_AddWindow())
                | "Match" >> Map(matcher)
            )

        def match(actual: list[Any]) -> None:
            matcher(list(actual))

        return pcoll | "ToList" >> CombineGlobally(ListCombineFn()) | "Match" >> Map(match)


class _AddWindow(DoFn):
    """`(element, window)`: what a per-window matcher is given."""

    def process(self, element: Any, window: Any = DoFn.WindowParam) -> Any:
        yield element, window


def assert_that(
    actual: PCollection,
    matcher: Callable[[list[Any]], None],
    label: str = "assert_that",
    reify_windows: bool = False,
    use_global_window: bool = True,
) -> Any:
    """Check, when the pipeline runs, that `matcher(all elements of actual)` does not raise."""
    if not isinstance(actual, PCollection):
        raise TypeError(f"assert_that needs a PCollection, got {type(actual).__name__}")
    if isinstance(matcher, _EqualToPerWindowMatcher):  # Beam's rule: it needs the windows, in one list
        reify_windows, use_global_window = True, True
    return actual | label >> _AssertThat(matcher, reify_windows, use_global_window)


__all__ = [
    "BeamAssertException",
    "TestWindowedValue",
    "assert_that",
    "equal_to",
    "equal_to_per_window",
    "is_empty",
    "is_not_empty",
    "matches_all",
]
