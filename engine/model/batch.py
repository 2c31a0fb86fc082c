"""Batch converters for batched DoFns (Beam's `apache_beam.typehints.batch`): lists, numpy arrays, pyarrow arrays.

A batched type B is logically a ``Sequence[E]`` with another physical form (``np.ndarray`` of ``int``). A
`BatchConverter` turns a list of elements into one B (`produce_batch`) and back (`explode_batch`); the one
a DoFn needs is inferred from the type hints of its ``process_batch`` (Beam's rules: the batch type from the
annotation of the batch parameter, the element type from the annotation of ``process``'s element, or
``with_input_types``). numpy and pyarrow are imported only when a DoFn's hints name them.

>>> conv = BatchConverter.from_typehints(element_type=int, batch_type=list[int])
>>> conv.produce_batch([1, 2]), list(conv.explode_batch([1, 2]))
([1, 2], [1, 2])
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any


class BatchConverter:
    """Converts between a list of elements and one batch of a batched type (Beam's `BatchConverter`)."""

    #: Constructors tried by `from_typehints`, in order; each returns a converter or None.
    _registry: list[Callable[[Any, Any], BatchConverter | None]] = []

    def __init__(self, batch_type: Any, element_type: Any) -> None:
        self._batch_type = batch_type
        self._element_type = element_type

    def produce_batch(self, elements: Sequence[Any]) -> Any:
        """One batch holding `elements`, in order."""
        raise NotImplementedError

    def explode_batch(self, batch: Any) -> Iterator[Any]:
        """The elements of `batch`, in order, as plain Python values."""
        raise NotImplementedError

    def combine_batches(self, batches: Sequence[Any]) -> Any:
        """One batch holding the elements of all `batches`."""
        raise NotImplementedError

    def get_length(self, batch: Any) -> int:
        """How many elements `batch` holds."""
        return len(batch)

    def estimate_byte_size(self, batch: Any) -> int:
        """Roughly how many bytes `batch` occupies."""
        return sys.getsizeof(batch)

    @property
    def batch_type(self) -> Any:
        """The batched type B."""
        return self._batch_type

    @property
    def element_type(self) -> Any:
        """The element type E."""
        return self._element_type

    @staticmethod
    def register(
        *, name: str
    ) -> Callable[[Callable[[Any, Any], BatchConverter | None]], Callable[[Any, Any], BatchConverter | None]]:
        """Decorator adding a converter constructor ``(element_type, batch_type) -> converter | None``."""

        def deco(
            ctor: Callable[[Any, Any], BatchConverter | None],
        ) -> Callable[[Any, Any], BatchConverter | None]:
            BatchConverter._registry.insert(0, ctor)
            return ctor

        return deco

    @staticmethod
    def from_typehints(*, element_type: Any, batch_type: Any) -> BatchConverter:
        """The converter for a (element type, batch type) pair; `TypeError` names both when none fits."""
        for ctor in BatchConverter._registry:
            conv = ctor(element_type, batch_type)
            if conv is not None:
                return conv
        raise TypeError(
            f"no batch converter for batch type {batch_type!r} with element type {element_type!r}; "
            "supported: list[E] / List[E], numpy.ndarray (numpy.typing.NDArray[dtype]), pyarrow.Array"
            + (
                "; a string annotation must name a type importable from the DoFn's module"
                if isinstance(batch_type, str)
                else ""
            )
        )


def _module_of(t: Any) -> str:
    origin = typing.get_origin(t) or t
    return getattr(origin, "__module__", "") or ""


class ListBatchConverter(BatchConverter):
    """``list[E]`` batches: the elements themselves."""

    def produce_batch(self, elements: Sequence[Any]) -> list[Any]:
        """A list of the elements."""
        return list(elements)

    def explode_batch(self, batch: Any) -> Iterator[Any]:
        """The list's items."""
        return iter(batch)

    def combine_batches(self, batches: Sequence[Any]) -> list[Any]:
        """The lists concatenated."""
        return [e for b in batches for e in b]


def _list_converter(element_type: Any, batch_type: Any) -> BatchConverter | None:
    if batch_type is list or typing.get_origin(batch_type) in (list, typing.List):  # noqa: UP006
        args = typing.get_args(batch_type)
        return ListBatchConverter(batch_type, args[0] if args else element_type)
    return None


#: Python element types and the numpy dtype their batches get.
_NUMPY_DTYPES = {int: "int64", float: "float64", bool: "bool", complex: "complex128"}


class NumpyBatchConverter(BatchConverter):
    """``numpy.ndarray`` batches of a scalar dtype; exploded back to Python scalars (``tolist``), so the
    elements equal those an element-wise DoFn produces."""

    def __init__(self, batch_type: Any, element_type: Any, dtype: Any) -> None:
        super().__init__(batch_type, element_type)
        self.dtype = dtype

    def produce_batch(self, elements: Sequence[Any]) -> Any:
        """A 1-D array of the elements (dtype from the hints, or numpy's own inference without one)."""
        import numpy as np

        return np.asarray(elements, dtype=self.dtype)

    def explode_batch(self, batch: Any) -> Iterator[Any]:
        """The array's items as Python scalars."""
        return iter(batch.tolist())

    def combine_batches(self, batches: Sequence[Any]) -> Any:
        """The arrays concatenated."""
        import numpy as np

        return np.concatenate(list(batches))

    def estimate_byte_size(self, batch: Any) -> int:
        """The array's data size."""
        return int(batch.nbytes)


def _numpy_dtype_of(element_type: Any, batch_type: Any) -> Any:
    import numpy as np

    args = typing.get_args(batch_type)  # NDArray[np.int64] is ndarray[Any, dtype[np.int64]]
    if len(args) == 2:
        inner = typing.get_args(args[1])
        if inner and isinstance(inner[0], type) and issubclass(inner[0], np.generic):
            return np.dtype(inner[0])
    if isinstance(element_type, type) and issubclass(element_type, np.generic):
        return np.dtype(element_type)
    name = _NUMPY_DTYPES.get(element_type)
    return np.dtype(name) if name else None


def _numpy_converter(element_type: Any, batch_type: Any) -> BatchConverter | None:
    if not _module_of(batch_type).startswith("numpy"):
        return None
    import numpy as np

    if (typing.get_origin(batch_type) or batch_type) is not np.ndarray:
        return None
    return NumpyBatchConverter(batch_type, element_type, _numpy_dtype_of(element_type, batch_type))


class PyarrowBatchConverter(BatchConverter):
    """``pyarrow.Array`` batches of primitive elements."""

    def produce_batch(self, elements: Sequence[Any]) -> Any:
        """An Arrow array of the elements."""
        import pyarrow as pa

        return pa.array(elements)

    def explode_batch(self, batch: Any) -> Iterator[Any]:
        """The array's items as Python values."""
        return iter(batch.to_pylist())

    def combine_batches(self, batches: Sequence[Any]) -> Any:
        """The arrays concatenated."""
        import pyarrow as pa

        return pa.concat_arrays(list(batches))

    def estimate_byte_size(self, batch: Any) -> int:
        """The array's buffer size."""
        return int(batch.nbytes)


def _pyarrow_converter(element_type: Any, batch_type: Any) -> BatchConverter | None:
    if not _module_of(batch_type).startswith("pyarrow"):
        return None
    import pyarrow as pa

    if isinstance(batch_type, type) and issubclass(batch_type, pa.Array):
        return PyarrowBatchConverter(batch_type, element_type)
    return None


BatchConverter._registry.extend([_list_converter, _numpy_converter, _pyarrow_converter])


def yields(fn: Any) -> str | None:
    """What a DoFn method was declared to yield: "batches", "elements" or None (the default for it)."""
    return getattr(fn, "_millstream_yields", None)


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: treat as unannotated, as Beam does
        return dict(getattr(fn, "__annotations__", {}) or {})


def first_param_hint(fn: Any) -> Any:
    """The annotation of the first parameter after ``self`` (the element or the batch), or None."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None
    return _hints(fn).get(params[0]) if params else None


def yielded_hint(fn: Any) -> Any:
    """``B`` of a return annotation ``Iterator[B]`` / ``Iterable[B]`` / ``Generator[B, ...]``, or None."""
    ret = _hints(fn).get("return")
    args = typing.get_args(ret)
    return args[0] if args else None
