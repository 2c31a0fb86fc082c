"""Progress of bounded replays on a terminal: bytes and records read, rate and ETA (tqdm).

A bar is shown only when stderr is a TTY and the job was not started with ``--no_progress`` (declared by
`ProgressOptions`, registered when this module is imported). File sources wrap their reader with
`wrap_progress`, which updates the bar after every batch from what the reader returns (`SourceBatch.nbytes`,
the number of values) and `SourceReader.total()`; the bar closes when the source is read to its end.

A terminal that reports 0 columns (a serial console, some containers' pseudo-terminals, ``stty cols 0``)
(or 0 rows) gets a bar of ``$COLUMNS`` or 80 columns: tqdm alone would draw nothing there.
"""

from __future__ import annotations

import io
import os
import sys
import time
from typing import IO, Any

from millstream.engine.model.io import SourceBatch, SourceReader
from millstream.engine.model.options import PipelineOptions


class ProgressOptions(PipelineOptions):
    """``--no_progress``: never draw progress bars (they are drawn only on a terminal anyway)."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--no_progress",
            dest="progress",
            default=True,
            action="store_false",
            help="do not show progress bars for bounded replays (shown only when stderr is a terminal)",
        )


def progress_wanted(options: Any, stream: IO[str] | None = None) -> bool:
    """Whether to draw progress: the option allows it and `stream` (default stderr) is a terminal."""
    if options is not None and not getattr(options.view_as(ProgressOptions), "progress", True):
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


#: The size assumed for a terminal that does not tell its own (reports 0 columns or rows).
FALLBACK_COLUMNS, FALLBACK_ROWS = 80, 24


def terminal_size(stream: IO[str]) -> tuple[int, int] | None:
    """(columns, rows) of the terminal behind `stream`; None when it reports 0 for either or cannot be asked."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return None
    return (size.columns, size.lines) if size.columns and size.lines else None


def _from_env(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


class ProgressBar:
    """One source's bar: bytes (with rate and ETA against `total`) and records (count and rate)."""

    def __init__(self, label: str, total: int | None, stream: IO[str]) -> None:
        from tqdm import tqdm

        self.started = time.monotonic()
        self.records = 0
        # follow the terminal's size as it is resized, unless it reports none: tqdm then draws nothing
        # (0 columns, and 0 rows make it think the bar is below the screen)
        sized = terminal_size(stream) is not None
        fixed: dict[str, Any] = (
            {}
            if sized
            else {"ncols": _from_env("COLUMNS", FALLBACK_COLUMNS), "nrows": _from_env("LINES", FALLBACK_ROWS)}
        )
        self.bar = tqdm(
            total=total,
            desc=label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=stream,
            mininterval=0.2,
            dynamic_ncols=sized,
            leave=True,
            **fixed,
        )

    def update(self, nbytes: int, records: int) -> None:
        """Count one batch."""
        self.records += records
        elapsed = max(1e-9, time.monotonic() - self.started)
        self.bar.set_postfix_str(
            f"{self.records:,} records, {self.records / elapsed:,.0f} records/s", refresh=False
        )
        self.bar.update(nbytes)

    def close(self) -> None:
        """Draw the final state and release the line."""
        self.bar.close()


class ProgressReader(SourceReader):
    """A reader that draws its progress after every batch; everything else is the wrapped reader's."""

    def __init__(self, inner: SourceReader, label: str, stream: IO[str]) -> None:
        self.inner = inner
        self.label = label
        self.stream = stream
        self.bar: ProgressBar | None = None

    async def open(self, positions: dict[str, Any] | None) -> None:
        await self.inner.open(positions)
        total = self.inner.total()
        self.bar = ProgressBar(self.label, total, self.stream)
        backlog = self.inner.backlog()
        if total is not None and backlog is not None and total > backlog:
            self.bar.bar.update(total - backlog)  # already read before the restored checkpoint

    async def read(self) -> SourceBatch | None:
        batch = await self.inner.read()
        bar = self.bar
        if bar is not None:
            if batch is not None:
                bar.update(batch.nbytes, len(batch.values))
            if batch is None or batch.finished:
                bar.close()
                self.bar = None
        return batch

    def positions(self) -> dict[str, Any]:
        return self.inner.positions()

    def backlog(self) -> int | None:
        return self.inner.backlog()

    def total(self) -> int | None:
        return self.inner.total()

    async def on_checkpoint_durable(self, checkpoint_id: int) -> None:
        await self.inner.on_checkpoint_durable(checkpoint_id)

    async def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        await self.inner.close()


def wrap_progress(
    reader: SourceReader, options: Any, label: str, stream: IO[str] | None = None
) -> SourceReader:
    """`reader` with a progress bar when `progress_wanted`, else `reader` itself."""
    stream = sys.stderr if stream is None else stream
    if not progress_wanted(options, stream):
        return reader
    try:
        import tqdm  # noqa: F401
    except ImportError:  # progress is a convenience: without tqdm the replay runs without it
        return reader
    return ProgressReader(reader, label, stream)


__all__ = ["ProgressBar", "ProgressOptions", "ProgressReader", "progress_wanted", "wrap_progress"]
