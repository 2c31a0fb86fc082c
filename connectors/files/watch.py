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

A watched ``gs://`` prefix or glob is listed incrementally: object listings come in name order and can start
at a name, so a poll asks only for names at or after the greatest one seen (one request however large the
prefix), and every `FULL_RESCAN_EVERY`-th poll lists everything (paged, only the prefix before the first glob
character) to find objects whose names sort before it: such an object is read within that many polls.
Objects are immutable and appear whole, so each generation is read once, as soon as it is
listed; positions are keyed ``gs://bucket/name#generation``. An object overwritten later is a new generation:
it is read again from its start as new input; one overwritten while being read stops that read (the log says
so) and the new generation is read whole.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from millstream.connectors.files.filesystem import CompressionTypes, FileInputError, file_infos
from millstream.connectors.files.schemes import FileInfo, IncrementalLister, filesystem_for, is_remote
from millstream.engine.model.io import SourceBatch, SourceReader

if TYPE_CHECKING:
    from millstream.connectors.files.source import LineCursor, LineFileSource

log = logging.getLogger("millstream.files.watch")

DONE = "done"
#: A watched object store is listed whole every this many polls (incrementally in between): how many polls
#: an object whose name sorts before every name seen may wait before it is found.
FULL_RESCAN_EVERY = 10


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
        #: (position key, path, generation or None, whether the file is complete)
        self.queue: deque[tuple[str, str, int | None, bool]] = deque()
        self.cursor: LineCursor | None = None
        self.cursor_path = ""
        self.cursor_base = 0
        self.next_poll = 0.0
        self.warned: set[str] = set()
        #: The greatest path listed so far (object stores only): incremental listings start there.
        self.last_listed: str | None = None
        self.full_rescan_every = FULL_RESCAN_EVERY
        self.polls = 0
        self.full_polls = 0
        #: How many files the last poll's listing returned (what it cost, for tests and the benchmark).
        self.listed = 0

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
                try:
                    values, errors, out = cursor.read_batch(self.batch_size)
                except FileInputError as e:
                    if cursor.split.generation is None:
                        raise
                    log.warning("%s; its next generation is read as new input", e)
                    self.pos[self.cursor_path] = DONE
                    cursor.close()
                    self.cursor = None
                    continue
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

        key, path, generation, final = self.queue.popleft()
        compression = CompressionTypes.resolve(self.source.compression_type, path)
        size = self.sizes.get(key, 0)
        split = FileSplit(path, 0, None, compression, size, generation)
        position = self.pos.get(key)
        tail = compression == CompressionTypes.UNCOMPRESSED and generation is None
        try:
            cursor = self.source.cursor(split, position, tail=tail)
        except (FileNotFoundError, FileInputError) as e:
            if isinstance(e, FileInputError) and generation is None:
                raise
            log.warning("%s disappeared before it could be read", path)
            self.pos[key] = DONE
            return
        cursor.final = final
        self.cursor = cursor
        self.cursor_path = key
        self.cursor_base = cursor.progress_bytes()

    async def _poll(self) -> None:
        """Find files with unread data; queue them (oldest names first)."""
        infos = await anyio.to_thread.run_sync(self._list)
        for info in infos:
            path, size, mtime, generation = info.path, info.size, info.mtime_ns, info.generation
            key = path if generation is None else f"{path}#{generation}"
            p = self.pos.get(key)
            previous = self.seen.get(key)
            self.seen[key] = (size, mtime)
            self.sizes[key] = size
            if p == DONE:
                continue
            if generation is not None:  # an object: complete once listed, never appended to
                self.queue.append((key, path, generation, True))
                continue
            settled = previous == (size, mtime)
            compressed = (
                CompressionTypes.resolve(self.source.compression_type, path) != CompressionTypes.UNCOMPRESSED
            )
            if compressed:
                if settled and size > 0:
                    self.queue.append((key, path, None, True))
                continue
            offset = int(p[0]) if p else 0
            if size < offset:
                if path not in self.warned:
                    self.warned.add(path)
                    log.warning(
                        "%s shrank below the %d bytes already read; it is not read again", path, offset
                    )
                continue
            if size > offset:
                self.queue.append((key, path, None, settled))

    def _list(self) -> list[FileInfo]:
        """This poll's listing: from the last name seen on an object store between full rescans, else all."""
        pattern = self.source.file_pattern
        fs = filesystem_for(pattern) if is_remote(pattern) else None
        incremental = (
            isinstance(fs, IncrementalLister)
            and self.last_listed is not None
            and self.polls % max(1, self.full_rescan_every) != 0
        )
        self.polls += 1
        if incremental:
            assert isinstance(fs, IncrementalLister) and self.last_listed is not None
            infos = fs.match_from(pattern, self.last_listed)
        else:
            self.full_polls += 1
            infos = file_infos(pattern)
        self.listed = len(infos)
        if isinstance(fs, IncrementalLister) and infos:
            # inclusive start: a new generation of the greatest name is listed again and read as new input
            self.last_listed = max(self.last_listed or "", max(i.path for i in infos))
        return infos

    async def close(self) -> None:
        if self.cursor is not None:
            self.cursor.close()
            self.cursor = None


__all__ = ["WatchReader"]
