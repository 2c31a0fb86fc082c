"""`Node`: an operator in the runtime graph. Nodes push batches and watermarks to their consumers synchronously.

A stage is a set of nodes owned by one task; `await` happens only at stage boundaries (channels), sources,
async DoFns and sinks. Each node tracks the watermark of each of its inputs; its input watermark is the
minimum, and it never moves backwards.
"""

from __future__ import annotations

from typing import Any, NoReturn

from millstream.engine.model.metrics import set_current_step
from millstream.engine.model.timestamp import MIN_MICROS
from millstream.engine.runtime.graph.batch import Batch


class PipelineError(Exception):
    """A user-code failure in a step: names the step label and the (truncated) element."""

    def __init__(self, step: str, element: Any, cause: BaseException) -> None:
        self.step = step
        self.element = element
        self.cause = cause
        super().__init__(
            f"step '{step}' failed on element {truncate_repr(element)}: {type(cause).__name__}: {cause}"
        )


def user_error(step: str, element: Any, cause: BaseException) -> BaseException:
    """The error a failed run raises for a user-code failure, as Beam does it: the same exception type with
    the step label and the (truncated) element in its message, the original as `__cause__`; a PipelineError
    when the type cannot be rebuilt from a message."""
    if getattr(cause, "millstream_step", None) is not None:
        return cause
    message = f"{cause} [while running '{step}' on element {truncate_repr(element)}]"
    err: BaseException
    try:
        err = type(cause)(message)
        if str(err) != message:
            raise TypeError("message not preserved")
    except Exception:
        err = PipelineError(step, element, cause)
    err.millstream_step = step  # type: ignore[attr-defined]
    err.millstream_element = element  # type: ignore[attr-defined]
    return err


def raise_user_error(step: str, element: Any, cause: BaseException) -> NoReturn:
    """Raise `user_error(step, element, cause)`; an error already attributed to a step passes unchanged."""
    err = user_error(step, element, cause)
    if err is cause:
        raise cause
    raise err from cause


def truncate_repr(value: Any, limit: int = 200) -> str:
    """`repr(value)` cut to `limit` characters."""
    try:
        text = repr(value)
    except Exception as e:  # a broken __repr__ must not hide the real error
        text = f"<unrepresentable {type(value).__name__}: {e}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Node:
    """Base of runtime operators: wiring, per-input watermarks, and emission to consumers."""

    def __init__(self, label: str, num_inputs: int = 1) -> None:
        self.label = label
        self.consumers: dict[str | None, list[tuple[Node, int]]] = {None: []}
        self.input_wms = [MIN_MICROS] * num_inputs
        self.input_wm = MIN_MICROS
        self.output_wm = MIN_MICROS
        self.elements_in = 0
        self.elements_out = 0

    def connect(self, consumer: Node, input_index: int, tag: str | None = None) -> None:
        """Send this node's output `tag` to `consumer`'s input `input_index`."""
        self.consumers.setdefault(tag, []).append((consumer, input_index))

    def add_input(self) -> int:
        """Reserve one more input; returns its index."""
        self.input_wms.append(MIN_MICROS)
        return len(self.input_wms) - 1

    # -- data -------------------------------------------------------------------------------------------
    def push(self, index: int, batch: Batch) -> None:
        """Receive a batch on input `index`."""
        raise NotImplementedError

    def emit(self, batch: Batch, tag: str | None = None) -> None:
        """Send a batch to every consumer of output `tag`."""
        if not batch.values:
            return
        self.elements_out += len(batch.values)
        for node, index in self.consumers.get(tag, ()):
            node.push(index, batch)
        set_current_step(self.label)

    # -- time -------------------------------------------------------------------------------------------
    def watermark(self, index: int, micros: int) -> None:
        """Receive a watermark on input `index`; advances the input watermark to the minimum of all inputs."""
        wms = self.input_wms
        if micros < wms[index]:
            raise AssertionError(
                f"watermark of input {index} of step '{self.label}' moved backwards: {micros} < {wms[index]}"
            )
        wms[index] = micros
        new = min(wms)
        if new > self.input_wm:
            self.input_wm = new
            self.on_input_watermark(new)

    def on_input_watermark(self, micros: int) -> None:
        """React to an advanced input watermark; by default pass it on unchanged."""
        self.advance_output_watermark(micros)

    def advance_output_watermark(self, micros: int) -> None:
        """Send a (monotonic) output watermark to every consumer of every output."""
        if micros <= self.output_wm:
            return
        self.output_wm = micros
        for consumers in self.consumers.values():
            for node, index in consumers:
                node.watermark(index, micros)

    # -- lifecycle --------------------------------------------------------------------------------------
    def open(self) -> None:
        """Called once before the first batch (DoFn.setup and the like)."""

    def close(self) -> None:
        """Called once at the end, also after a failure (DoFn.teardown and the like)."""
