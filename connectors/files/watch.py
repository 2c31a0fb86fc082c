"""Continuous file input for streaming jobs (Beam's ``MatchContinuously`` + read): an unbounded line source.

`WatchReader` polls its pattern (a glob or a directory) every ``poll_interval`` seconds. New files are read
from their start, known files from where reading stopped, so lines appended to a file are read too (``tail
-f``). The checkpointed positions are every file seen with its ``[byte offset, lines read]`` (``"done"`` for a
compressed file, which is read whole), so a restarted job neither skips nor re-reads a line.

What counts as written:

* a line is read once its newline is there; an unterminated last line is read once the file's size and
  modification time have not changed for one poll interval (the writer is done with it);
* a compressed file is read whole once it has not changed for one poll interval;
* hidden files (leading dot) are ignored in a watched directory, as a glob's ``*`` ignores them, so a writer
  can create ``.name.tmp`` and rename it when complete (the robust way, as with Beam);
* a file that shrinks below what was read is reported in the log and not read again.

`read` returns within about one poll interval even when there is nothing new (an empty batch), so checkpoints
and drain are never held up longer than that. The source's event-time stream is one watermark split (the
pattern) that never finishes; drain moves the watermark to +infinity.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from millstream.connectors.files.filesystem import CompressionTypes, match_files
from millstream.engine.model.io import SourceBatch, SourceReader

if TYPE_CHECKING:
    from millstream.connectors.files.source import LineCursor, LineFileSource

log = logging.getLogger("millstream.files.watch")

DONE = "done"


class WatchReader(SourceReader):
    """Reads new files and appended lines of a watched pattern; unbounded."""

    def __init__(self, source: LineFileSource, batch_size: int) -> None:
        self.source = source
        self.batch_size = max(1, batch_size)
        self.stream = source.file_pattern
        self.interval = source.poll_interval
        self.pos: dict[str, Any] = {}
        self.seen: dict[str, tuple[int, int]] = {}
        self.sizes: dict[str, int] = {}
        self.queue: deque[tuple[str, bool]] = deque()
        self.cursor: LineCursor | None = None
        self.cursor_path = ""
        self.cursor_base = 0
        self.next_poll = 0.0
        self.warned: set[str] = set()

    async def open(self, positions: dict[str, Any] | None) -> None:
        self.pos = dict(positions or {})

    def positions(self) -> dict[str, Any]:
        return dict(self.pos)

    def backlog(self) -> int | None:
        left = 0
        for path, size in self.sizes.items():
            p = self.pos.get(path)
            if p != DONE:
                left += max(0, size - (int(p[0]) if p else 0))
        return left

    async def read(self) -> SourceBatch | None:
        while True:
            if self.cursor is None and self.queue:
                self._open_next()
            cursor = self.cursor
            if cursor is not None:
                values, errors, out = cursor.read_batch(self.batch_size)
                progressed = cursor.progress_bytes()
                nbytes, self.cursor_base = progressed - self.cursor_base, progressed
                compressed = cursor.split.compression != CompressionTypes.UNCOMPRESSED
                self.pos[self.cursor_path] = DONE if out and compressed else cursor.position()
                if out:
                    cursor.close()
                    self.cursor = None
                if values or errors:
                    return SourceBatch(self.stream, values, None, errors, nbytes=max(0, nbytes))
                continue
            now = time.monotonic()
            if now >= self.next_poll:
                self.next_poll = now + self.interval
                await self._poll()
                if self.queue:
                    continue
            await anyio.sleep(max(0.0, self.next_poll - time.monotonic()))
            return SourceBatch(self.stream, [])

    def _open_next(self) -> None:
        from millstream.connectors.files.source import FileSplit

        path, final = self.queue.popleft()
        compression = CompressionTypes.resolve(self.source.compression_type, path)
        size = self.sizes.get(path, 0)
        split = FileSplit(path, 0, None, compression, size)
        position = self.pos.get(path)
        try:
            cursor = self.source.cursor(split, position, tail=compression == CompressionTypes.UNCOMPRESSED)
        except FileNotFoundError:
            log.warning("%s disappeared before it could be read", path)
            return
        cursor.final = final
        self.cursor = cursor
        self.cursor_path = path
        self.cursor_base = cursor.progress_bytes()

    async def _poll(self) -> None:
        """Find files with unread data; queue them (oldest names first)."""
        pattern = self.source.file_pattern

        def scan() -> list[tuple[str, int, int]]:
            found = []
            for path in match_files(pattern):
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                found.append((path, st.st_size, st.st_mtime_ns))
            return found

        for path, size, mtime in await anyio.to_thread.run_sync(scan):
            p = self.pos.get(path)
            previous = self.seen.get(path)
            self.seen[path] = (size, mtime)
            self.sizes[path] = size
            if p == DONE:
                continue
            settled = previous == (size, mtime)
            compressed = CompressionTypes.resolve(self.source.compression_type, path) != CompressionTypes.UNCOMPRESSED
            if compressed:
                if settled and size > 0:
                    self.queue.append((path, True))
                continue
            offset = int(p[0]) if p else 0
            if size < offset:
                if path not in self.warned:
                    self.warned.add(path)
                    log.warning("%s shrank below the %d bytes already read; it is not read again", path, offset)
                continue
            if size > offset:
                self.queue.append((path, settled))

    async def close(self) -> None:
        if self.cursor is not None:
            self.cursor.close()
            self.cursor = None


__all__ = ["WatchReader"]
