"""Beam's `LogElements` (`apache_beam.transforms.util`): print or log each element, composed from ParDo."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, TypeVar

from millstream.engine.model.core import ParDo
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.typehints import with_input_types, with_output_types

# The type variable of Beam's hints on LogElements: its output has its input's type
T: Any = TypeVar("T")  # type: ignore[misc]  # a value in hints, not an annotation

_LOGGER = logging.getLogger("millstream.transforms.util")

__all__ = ["LogElements"]


class _LoggingFn(DoFn):
    """Formats one line per element as Beam does and prints it (no `level`) or logs it at `level`."""

    def __init__(
        self,
        prefix: str,
        with_timestamp: bool,
        with_window: bool,
        level: int | None,
        with_pane_info: bool,
        use_epoch_time: bool,
    ) -> None:
        self.prefix = prefix
        self.with_timestamp = with_timestamp
        self.with_window = with_window
        self.level = level
        self.with_pane_info = with_pane_info
        self.use_epoch_time = use_epoch_time

    def format_timestamp(self, timestamp: Any) -> Any:
        """Seconds since the epoch, or RFC 3339 text (the bounds of time, outside datetime's range, as repr)."""
        if self.use_epoch_time:
            return timestamp.seconds()
        try:
            return timestamp.to_rfc3339()
        except OverflowError:
            return str(timestamp)

    def process(
        self,
        element: Any,
        timestamp: Any = DoFn.TimestampParam,
        window: Any = DoFn.WindowParam,
        pane_info: Any = DoFn.PaneInfoParam,
    ) -> Iterator[Any]:
        line = self.prefix + str(element)
        if self.with_timestamp:
            line += ", timestamp=" + repr(self.format_timestamp(timestamp))
        if self.with_window:
            line += ", window(start=" + str(self.format_timestamp(window.start))
            line += ", end=" + str(self.format_timestamp(window.end)) + ")"
        if self.with_pane_info:
            line += ", pane_info=" + repr(pane_info)
        if self.level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
            _LOGGER.log(self.level, line)
        else:
            print(line)
        yield element


@with_input_types(T)
@with_output_types(T)
class LogElements(PTransform):
    """Print each element (or log it at `level`), optionally with its timestamp, window and pane; the output
    is the input unchanged.

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = p | beam.Create(["a"]) | beam.LogElements(prefix="got ")
    got a
    """

    def __init__(
        self,
        label: str | None = None,
        prefix: str = "",
        with_timestamp: bool = False,
        with_window: bool = False,
        level: int | None = None,
        with_pane_info: bool = False,
        use_epoch_time: bool = False,
    ) -> None:
        super().__init__(label)
        self.fn = _LoggingFn(prefix, with_timestamp, with_window, level, with_pane_info, use_epoch_time)

    def expand(self, pcoll: Any) -> Any:
        """Log each element with the logging DoFn, passing it through (Beam's LogElements.expand)."""
        return pcoll | ParDo(self.fn)
