"""What the runtime needs of a batched DoFn (Beam's `process_batch` / `yields_batches`), found once at planning:
the method to call and the converters between elements and batches, inferred from the DoFn's type hints."""

from __future__ import annotations

from typing import Any

from millstream.engine.model.batch import (
    BatchConverter,
    NumpyBatchConverter,
    PyarrowBatchConverter,
    first_param_hint,
    yields,
)
from millstream.engine.model.core import CallableWrapperDoFn
from millstream.engine.model.dofn import DoFn, param_markers

__all__ = ["BatchedDoFn"]


class BatchedDoFn:
    """What the runtime needs of a batched DoFn (Beam's `process_batch` / `yields_batches`): the method to call
    and the converters between elements and batches, inferred from its type hints once, at planning."""

    def __init__(self, dofn: DoFn, label: str) -> None:
        cls = type(dofn)
        #: the DoFn defines process_batch: the runtime calls it (also when process is defined: same results)
        self.on_batches = cls.process_batch is not DoFn.process_batch
        self.process_yields_batches = not self.on_batches and yields(dofn.process) == "batches"
        self.process_batch = dofn.process_batch
        self.markers = param_markers(dofn.process_batch) if self.on_batches else {}
        self.needs_window = any(m.name == "WindowParam" for m in self.markers.values())
        element_type = _declared_input_type(dofn)
        where = f"step '{label}' ({cls.__name__})"
        unsupported = sorted(f"{n}={m!r}" for n, m in self.markers.items() if m.name not in _BATCH_PARAMS)
        if unsupported:
            raise TypeError(
                f"{where}: process_batch parameters {unsupported} are not supported; a batch "
                f"shares one timestamp, window and pane, so only {sorted(_BATCH_PARAMS)} are"
            )
        self.input: BatchConverter = _NO_CONVERTER
        if self.on_batches:
            batch_type = dofn.get_input_batch_type(element_type)
            if batch_type is None:
                raise TypeError(
                    f"{where}: process_batch needs a type hint on its batch parameter (list[int], "
                    "numpy.ndarray, pyarrow.Array, ...) so the runtime knows what batches to build"
                )
            try:
                self.input = BatchConverter.from_typehints(element_type=element_type, batch_type=batch_type)
            except TypeError as e:
                raise TypeError(f"{where}: {e}") from None
        self.yields_elements = self.on_batches and yields(dofn.process_batch) == "elements"
        self.output: BatchConverter = self.input
        if self.process_yields_batches or (self.on_batches and not self.yields_elements):
            out_type = dofn.get_output_batch_type(element_type)
            if out_type is None:
                raise TypeError(f"{where}: a method yielding batches needs an Iterator[B] return type hint")
            if out_type != getattr(self.input, "batch_type", None):
                try:
                    self.output = BatchConverter.from_typehints(element_type=None, batch_type=out_type)
                except TypeError as e:
                    raise TypeError(f"{where}: {e}") from None
        self._process = dofn.process
        #: numpy / pyarrow batches explode into plain scalars: no TimestampedValue or TaggedOutput to look for
        self.plain_outputs = not self.yields_elements and isinstance(self.output, _PLAIN_CONVERTERS)

    @staticmethod
    def of(dofn: DoFn, label: str) -> BatchedDoFn | None:
        """The batched view of `dofn`, or None for an element-wise DoFn."""
        if isinstance(dofn, CallableWrapperDoFn):
            return None
        cls = type(dofn)
        if cls.process_batch is DoFn.process_batch and yields(dofn.process) != "batches":
            return None
        return BatchedDoFn(dofn, label)

    def outputs(self, result: Any) -> list[Any]:
        """The elements of what `process_batch` returned (batches, or elements under `yields_elements`)."""
        if result is None:
            return []
        if self.yields_elements:
            return list(result)
        out: list[Any] = []
        explode = self.output.explode_batch
        for b in result:
            out.extend(explode(b))
        return out

    def exploding_process(self, element: Any, *args: Any, **kwargs: Any) -> Any:
        """`process` of a `yields_batches` DoFn, with its batches exploded into elements."""
        result = self._process(element, *args, **kwargs)
        if result is None:
            return None
        explode = self.output.explode_batch
        return (e for b in result for e in explode(b))


_PLAIN_CONVERTERS = (NumpyBatchConverter, PyarrowBatchConverter)
_BATCH_PARAMS = frozenset({"TimestampParam", "WindowParam", "PaneInfoParam"})


class _NoConverter(BatchConverter):
    """Stands for the input converter of a DoFn that takes elements (a `yields_batches` process)."""


_NO_CONVERTER = _NoConverter(None, None)


def _declared_input_type(dofn: DoFn) -> Any:
    """The element type: the annotation of `process`'s element (None without one)."""
    if type(dofn).process is not DoFn.process:
        return first_param_hint(dofn.process)
    return None
