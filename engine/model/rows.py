"""Beam's schema'd rows and grouping by fields: `Row`, `GroupBy` (with `aggregate_field`) and `Select`."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any

from millstream.engine.model.core import CombinePerKey, GroupByKey, Map, MapTuple
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import PCollection


class Row:
    """A record with named fields, in order (Beam's `beam.Row`): equal to rows with the same fields and values.

    >>> Row(x=3, y=4)
    Row(x=3, y=4)
    >>> Row(x=3, y=4) == Row(x=3, y=4), Row(x=3, y=4) == Row(y=4, x=3)
    (True, False)
    """

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict, in order."""
        return dict(self.__dict__)

    _asdict = as_dict

    def __iter__(self) -> Iterator[Any]:
        return iter(self.__dict__.values())

    def __repr__(self) -> str:
        return "Row({})".format(", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()))

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.items()))

    def __eq__(self, other: object) -> bool:
        if type(other) is Row:
            theirs = other.__dict__
        elif isinstance(other, tuple) and hasattr(other, "_asdict"):  # a named tuple, as Beam compares them
            theirs = other._asdict()
        else:
            return False
        return list(self.__dict__.items()) == list(theirs.items())

    def __reduce__(self) -> tuple[Any, ...]:
        return _make_row, tuple(self.__dict__.items())


def _make_row(*items: tuple[str, Any]) -> Row:
    return Row(**dict(items))


_named_tuples: dict[tuple[str, tuple[str, ...]], type] = {}


def _unpickle_named_tuple(type_name: str, fields: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    return _named_tuple(type_name, fields)(*values)


def _named_tuple(type_name: str, fields: tuple[str, ...]) -> type:
    """One named tuple class per (name, fields), picklable by its field names (Beam's keys and results)."""
    cls = _named_tuples.get((type_name, fields))
    if cls is None:
        cls = _named_tuples[(type_name, fields)] = collections.namedtuple(type_name, fields)  # type: ignore[misc]
        # a class made at run time cannot be pickled by reference: rebuild it from its field names
        cls.__reduce__ = lambda self: (_unpickle_named_tuple, (type_name, fields, tuple(self)))  # type: ignore[method-assign, arg-type]
    return cls


def _expr_to_callable(expr: str | Callable[[Any], Any], where: Any) -> Callable[[Any], Any]:
    """A field name becomes an attribute getter; a callable stays itself; anything else is named in a TypeError."""
    if isinstance(expr, str):
        return _Attr(expr)
    if callable(expr):
        return expr
    raise TypeError(f"GroupBy: field expression {expr!r} at {where!r} must be a callable or a string")


class _Attr:
    """`getattr(element, name)`, picklable."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, element: Any) -> Any:
        return getattr(element, self.name)


class _KeyFn:
    """The grouping key of an element: one expression's value, or a named tuple `Key` of several."""

    def __init__(self, fields: list[tuple[str, Callable[[Any], Any]]], force_tuple: bool) -> None:
        self.fields, self.force_tuple = fields, force_tuple

    def __call__(self, element: Any) -> Any:
        if not self.force_tuple and len(self.fields) == 1:
            return self.fields[0][1](element)
        return _named_tuple("Key", tuple(n for n, _ in self.fields))(*(f(element) for _, f in self.fields))


class GroupBy(PTransform):
    """Groups elements by fields or expressions (Beam's `beam.GroupBy`): `(key, [elements])` out, or one row of
    aggregates per key with `aggregate_field`.

    A single field or expression is the key itself; several (or keyword ones) make a named tuple key.

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = (p | beam.Create(["apple", "avocado", "banana"]) | beam.GroupBy(lambda s: s[0])
    ...          | beam.MapTuple(lambda k, v: print(k, sorted(v))))
    a ['apple', 'avocado']
    b ['banana']
    """

    def __init__(self, *fields: str | Callable[[Any], Any], **kwargs: str | Callable[[Any], Any]) -> None:
        if len(fields) == 1 and not kwargs:
            self._force_tuple_keys = False
            name = fields[0] if isinstance(fields[0], str) else "key"
            self._key_fields = [(name, _expr_to_callable(fields[0], 0))]
        else:
            self._force_tuple_keys = True
            self._key_fields = [
                (f if isinstance(f, str) else f"key{i}", _expr_to_callable(f, i))
                for i, f in enumerate(fields)
            ]
            self._key_fields += [(name, _expr_to_callable(e, name)) for name, e in kwargs.items()]
        super().__init__()

    def default_label(self) -> str:
        """The label ``GroupBy(field, ...)`` naming the key fields (Beam's `PTransform.default_label`)."""
        return "GroupBy({})".format(", ".join(n for n, _ in self._key_fields))

    def force_tuple_keys(self, value: bool = True) -> GroupBy:
        """Make the key a named tuple even for a single field."""
        import copy

        new = copy.copy(self)
        new._force_tuple_keys = value
        return new

    def aggregate_field(
        self, field: str | Callable[[Any], Any], combine_fn: Any, dest: str
    ) -> _GroupAndAggregate:
        """Aggregate `field` of each group with `combine_fn` (a CombineFn or a callable such as `sum`) as `dest`;
        chain it for several aggregates."""
        return _GroupAndAggregate(self, []).aggregate_field(field, combine_fn, dest)

    def expand(self, pcoll: PCollection) -> PCollection:
        """Key each element by its key fields and group by that key (Beam's `GroupBy.expand`)."""
        key = _KeyFn(self._key_fields, self._force_tuple_keys)
        return pcoll | "KeyBy" >> Map(lambda x: (key(x), x)) | "GroupByKey" >> GroupByKey()


class _GroupAndAggregate(PTransform):
    """`GroupBy(...).aggregate_field(...)`: one `Result` named tuple per key, its key fields then its aggregates."""

    def __init__(self, grouping: GroupBy, aggregations: list[tuple[Callable[[Any], Any], Any, str]]) -> None:
        self._grouping = grouping
        self._aggregations = aggregations
        super().__init__()

    def default_label(self) -> str:
        return self._grouping.default_label() + "".join(
            f".aggregate_field({d})" for _, _, d in self._aggregations
        )

    def aggregate_field(
        self, field: str | Callable[[Any], Any], combine_fn: Any, dest: str
    ) -> _GroupAndAggregate:
        """Another aggregate, named `dest`, of `field` with `combine_fn`."""
        if not isinstance(dest, str) or not dest:
            raise TypeError(f"GroupBy.aggregate_field: dest must be a field name, got {dest!r}")
        return _GroupAndAggregate(
            self._grouping, [*self._aggregations, (_expr_to_callable(field, dest), combine_fn, dest)]
        )

    def expand(self, pcoll: PCollection) -> PCollection:
        from millstream.engine.model.combiners_tuple import TupleCombineFn

        key = _KeyFn(self._grouping._key_fields, True)
        exprs = [e for e, _, _ in self._aggregations]
        fields = tuple(n for n, _ in self._grouping._key_fields) + tuple(d for _, _, d in self._aggregations)
        result = _named_tuple("Result", fields)
        return (
            pcoll
            | "KeyAndValues" >> Map(lambda x: (key(x), [e(x) for e in exprs]))
            | "Combine" >> CombinePerKey(TupleCombineFn(*[fn for _, fn, _ in self._aggregations]))
            | "ToResult" >> MapTuple(lambda k, v: result(*k, *v))
        )


class Select(PTransform):
    """Each element as a `Row` of the given fields or expressions (Beam's `beam.Select`).

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = p | beam.Create([3]) | beam.Select(x=lambda v: v, y=lambda v: v * 2) | beam.Map(print)
    Row(x=3, y=6)
    """

    def __init__(self, *fields: str | Callable[[Any], Any], **kwargs: str | Callable[[Any], Any]) -> None:
        self._fields = [
            (f if isinstance(f, str) else f"_{i}", _expr_to_callable(f, i)) for i, f in enumerate(fields)
        ]
        self._fields += [(name, _expr_to_callable(e, name)) for name, e in kwargs.items()]
        super().__init__()

    def expand(self, pcoll: PCollection) -> PCollection:
        """Map each element to a `Row` of the selected fields (Beam's `Select.expand`)."""
        fields = self._fields
        return pcoll | "ToRow" >> Map(lambda x: Row(**{n: f(x) for n, f in fields}))


__all__ = ["GroupBy", "Row", "Select"]
