"""PCollections and the values that flow between transforms (Beam's `apache_beam.pvalue`)."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from millstream.engine.model.pipeline import AppliedPTransform, Pipeline
    from millstream.engine.model.windowing import Windowing


class PValue:
    """Something a transform can be applied to: a PCollection, PBegin or PDone."""

    def __init__(self, pipeline: Pipeline, tag: str | None = None) -> None:
        self.pipeline = pipeline
        self.tag = tag
        self.producer: AppliedPTransform | None = None

    def __or__(self, ptransform: Any) -> Any:
        return self.pipeline.apply(ptransform, self)

    def apply(self, ptransform: Any, label: str | None = None) -> Any:
        """Apply a transform to this value (the method form of `|`)."""
        return self.pipeline.apply(ptransform, self, label)


class PBegin(PValue):
    """The input of a root transform such as `Create` or a source read."""


class PDone(PValue):
    """The output of a transform that produces nothing, such as a sink."""


class PCollection(PValue):
    """A distributed, possibly unbounded collection of elements with event timestamps and windows."""

    def __init__(
        self,
        pipeline: Pipeline,
        tag: str | None = None,
        windowing: Windowing | None = None,
        is_bounded: bool = True,
    ) -> None:
        super().__init__(pipeline, tag)
        self._windowing = windowing
        self.is_bounded = is_bounded
        self.element_type: Any = None

    def __class_getitem__(cls, item: Any) -> Any:
        """`PCollection[int]`, for a PTransform's `expand` annotations (read as its type hints, as Beam)."""
        return types.GenericAlias(cls, item)

    @property
    def windowing(self) -> Windowing:
        """The windowing strategy elements of this collection are grouped by."""
        if self._windowing is None:
            from millstream.engine.model.windowing import Windowing

            self._windowing = Windowing.default()
        return self._windowing

    @windowing.setter
    def windowing(self, value: Windowing) -> None:
        self._windowing = value

    def __repr__(self) -> str:
        label = self.producer.full_label if self.producer else "?"
        tag = f".{self.tag}" if self.tag else ""
        return f"PCollection[{label}{tag}]"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            f"{self!r} cannot be pickled or used as a value inside a DoFn; pass it as a side input"
        )


class TaggedOutput:
    """A value a DoFn emits to a named additional output (`.with_outputs(...)`)."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: str, value: Any) -> None:
        if not isinstance(tag, str):
            raise TypeError(f"TaggedOutput tag must be a str, got {type(tag).__name__}")
        self.tag = tag
        self.value = value

    def __repr__(self) -> str:
        return f"TaggedOutput({self.tag!r}, {self.value!r})"


class DoOutputsTuple:
    """The outputs of a ParDo with `.with_outputs(...)`: the main one and each tag, by attribute or index."""

    def __init__(self, main: PCollection, tagged: dict[str, PCollection], main_tag: str | None) -> None:
        self._main = main
        self._tagged = tagged
        self._main_tag = main_tag

    def __getattr__(self, tag: str) -> PCollection:
        if tag.startswith("_"):
            raise AttributeError(tag)
        return self[tag]

    def __getitem__(self, tag: str | int | None) -> PCollection:
        if tag is None or tag == self._main_tag:
            return self._main
        if isinstance(tag, int):
            return list(self)[tag]
        try:
            return self._tagged[tag]
        except KeyError:
            raise ValueError(
                f"no output tagged {tag!r}; declared tags: {sorted(self._tagged)} "
                "(declare them with .with_outputs(...))"
            ) from None

    def __iter__(self) -> Iterator[PCollection]:
        yield self._main
        yield from self._tagged.values()

    def __len__(self) -> int:
        return 1 + len(self._tagged)


class AsSideInput:
    """Marks a PCollection as a side input of a ParDo; subclasses say how it is presented to the DoFn."""

    def __init__(self, pcoll: PCollection) -> None:
        if not isinstance(pcoll, PCollection):
            raise TypeError(f"{type(self).__name__} needs a PCollection, got {type(pcoll).__name__}")
        self.pvalue = pcoll

    def view(self, values: list[Any]) -> Any:
        """Present the materialized elements of one window as the DoFn sees them."""
        raise NotImplementedError


class AsList(AsSideInput):
    """The side input as a list of all its elements."""

    def view(self, values: list[Any]) -> Any:
        """The window's elements as a list (Beam's AsList)."""
        return list(values)


class AsIter(AsSideInput):
    """The side input as an iterable of all its elements."""

    def view(self, values: list[Any]) -> Any:
        """The window's elements as an iterable (Beam's AsIter)."""
        return list(values)


class AsDict(AsSideInput):
    """The side input, a collection of (key, value) pairs, as a dict."""

    def view(self, values: list[Any]) -> Any:
        """The window's (key, value) pairs as a dict (Beam's AsDict)."""
        return dict(values)


_NO_DEFAULT = object()


class AsSingleton(AsSideInput):
    """The side input, exactly one element (or `default_value` when empty), as that element."""

    def __init__(self, pcoll: PCollection, default_value: Any = _NO_DEFAULT) -> None:
        super().__init__(pcoll)
        self.default_value = default_value

    def view(self, values: list[Any]) -> Any:
        """The window's one element, or the default when empty (Beam's AsSingleton)."""
        if len(values) == 1:
            return values[0]
        if not values:
            if self.default_value is _NO_DEFAULT:
                raise ValueError(f"AsSingleton side input {self.pvalue!r} is empty and has no default_value")
            return self.default_value
        raise ValueError(
            f"AsSingleton side input {self.pvalue!r} has {len(values)} elements, expected exactly one"
        )


class AsMultiMap(AsSideInput):
    """The side input, (key, value) pairs, as a dict of key -> list of values."""

    def view(self, values: list[Any]) -> Any:
        """The window's (key, value) pairs as a dict of key to values (Beam's AsMultiMap)."""
        out: dict[Any, list[Any]] = {}
        for k, v in values:
            out.setdefault(k, []).append(v)
        return out
