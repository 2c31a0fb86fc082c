"""File sources for every format (text, JSON lines, CSV, Avro, Parquet); the sink is in `files.sink`.

Sources
-------
A file source expands its pattern into *splits* (`FileSplit`): a whole file, or, for a large uncompressed
line-oriented file, a byte range that starts and ends on line boundaries (computed once from the file's bytes,
so the same file always gives the same splits). `FileSourceReader` reads the splits one after another, each
through a format's `SplitCursor`, and keeps one position per split (the split's name is the file path, or
``path@start`` for a later byte range). Positions are small lists such as ``[byte offset, lines read]`` for
lines, ``[block offset, records read in block]`` for Avro, ``[row group, row]`` for Parquet; a finished split
is ``"done"``. A checkpoint records them, so a restored job neither skips nor re-reads.

The splits of one source are read in order (sorted file names, then byte ranges), so for event time they are
one stream: every batch carries the source's single watermark split id (the pattern), which finishes only
when the last split is read. (Estimating a watermark per file would let the first file's end move the
watermark to +infinity in streaming mode and drop every later file as late.)

Lines that cannot be decoded become dead-letter records ``{"file", "line", "offset", "raw", "reason"}``
(line numbers count from 1 in the whole file, also inside a later byte range). Compressed data that is corrupt
or truncated ends its file with one such record: the offset is the uncompressed bytes decoded before the damage,
``raw`` the incomplete last line; the lines before it are read as usual.

``gs://`` objects are splits too (`FileSplit.generation` pins the version read): their names in positions carry
the generation (``gs://b/o#1712345678``), so a restored job resumes only the same version of an object; an
object overwritten while a bounded source reads it fails the job with `gcs.ObjectChangedError`.
"""

from __future__ import annotations

import codecs
import functools
import gzip
import itertools
import logging
import lzma
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import orjson

from millstream.connectors.files.filesystem import (
    CompressionTypes,
    FileInputError,
    expand_pattern,
    file_infos,
    local_path,
    open_input,
    open_raw,
)
from millstream.connectors.files.progress import wrap_progress
from millstream.engine.model.io import Source, SourceBatch, SourceReader
from millstream.engine.translate.beam.hooks import register_beam_io

log = logging.getLogger("millstream.files")

#: Default size of a byte-range split of an uncompressed line file (Beam's desired bundle size).
DEFAULT_SPLIT_SIZE = 64 << 20
#: The position of a split that has been read to its end.
DONE = "done"

__all__ = [
    "DEFAULT_SPLIT_SIZE",
    "FileInputError",
    "FileSourceReader",
    "FileSplit",
    "JsonDecoder",
    "LineCursor",
    "LineDecoder",
    "LineFileSource",
    "SplitCursor",
    "TextDecoder",
    "decode_json",
    "decode_text",
    "expand_pattern",
    "local_path",
    "plan_line_splits",
]


# ------------------------------------------------------------------------------------------------------------
# splits and the generic reader


@dataclass(frozen=True)
class FileSplit:
    """A piece of input read in one go: a whole file, or a line-aligned byte range of an uncompressed file."""

    path: str
    #: Byte offset where the split's first line starts (0 for whole files).
    start: int = 0
    #: Byte offset just after the split's last line; None reads to the end of the file.
    end: int | None = None
    compression: str = CompressionTypes.UNCOMPRESSED
    #: On-disk bytes this split covers (progress and backlog).
    size: int = 0
    #: The object generation read (object stores); None for local files.
    generation: int | None = None

    @property
    def name(self) -> str:
        """The split's key in checkpoint positions: the path (``path#generation`` for an object), with
        ``@start`` for a later byte range."""
        base = self.path if self.generation is None else f"{self.path}#{self.generation}"
        return base if self.start == 0 else f"{base}@{self.start}"


class SplitCursor:
    """Reads one split from a position; owned by `FileSourceReader`, one open at a time."""

    def read_batch(self, max_records: int) -> tuple[list[Any], list[dict[str, Any]], bool]:
        """Up to `max_records` values and the bad records among them; True once the split is exhausted."""
        raise NotImplementedError

    def position(self) -> Any:
        """The msgpack-able position just after the last batch."""
        raise NotImplementedError

    def progress_bytes(self) -> int:
        """On-disk bytes of the split consumed so far (progress, backlog)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""


OpenCursor = Callable[[FileSplit, Any], SplitCursor]


class FileSourceReader(SourceReader):
    """Reads splits in order through `open_cursor`; one position per split; one watermark split (`stream`)."""

    def __init__(
        self, splits: list[FileSplit], open_cursor: OpenCursor, batch_size: int, stream: str
    ) -> None:
        self.splits = splits
        self.open_cursor = open_cursor
        self.batch_size = max(1, batch_size)
        self.stream = stream
        self.pos: dict[str, Any] = {}
        self.index = 0
        self.cursor: SplitCursor | None = None
        self.cursor_base = 0
        self.total_bytes = sum(s.size for s in splits)
        self.done_bytes = 0

    async def open(self, positions: dict[str, Any] | None) -> None:
        names = {s.name for s in self.splits}
        for name, p in (positions or {}).items():
            if name in names:
                self.pos[name] = p
        self.done_bytes = sum(s.size for s in self.splits if self.pos.get(s.name) == DONE)

    def positions(self) -> dict[str, Any]:
        return dict(self.pos)

    def total(self) -> int | None:
        return self.total_bytes

    def backlog(self) -> int | None:
        current = self.cursor.progress_bytes() if self.cursor is not None else 0
        return max(0, self.total_bytes - self.done_bytes - current)

    def backlog_per_split(self) -> dict[str, int | None]:
        """Unread on-disk bytes of every split (`SplitBacklogReader`): 0 once read, all of it before."""
        out: dict[str, int | None] = {}
        for i, split in enumerate(self.splits):
            if self.pos.get(split.name) == DONE:
                out[split.name] = 0
            elif i == self.index and self.cursor is not None:
                out[split.name] = max(0, split.size - self.cursor.progress_bytes())
            else:
                # not opened yet, or positioned by a checkpoint without an open cursor: what it covers
                out[split.name] = split.size
        return out

    async def read(self) -> SourceBatch | None:
        while self.index < len(self.splits):
            split = self.splits[self.index]
            if self.pos.get(split.name) == DONE:
                self.index += 1
                continue
            if self.cursor is None:
                self.cursor = self.open_cursor(split, self.pos.get(split.name))
                self.cursor_base = self.cursor.progress_bytes()
            cursor = self.cursor
            values, errors, exhausted = cursor.read_batch(self.batch_size)
            progressed = cursor.progress_bytes()
            nbytes = progressed - self.cursor_base
            self.cursor_base = progressed
            if exhausted:
                self.pos[split.name] = DONE
                self.done_bytes += split.size
                nbytes += split.size - progressed
                cursor.close()
                self.cursor = None
                self.index += 1
            else:
                self.pos[split.name] = cursor.position()
            last = self.index >= len(self.splits)
            if values or errors or last:
                return SourceBatch(self.stream, values, None, errors, finished=last, nbytes=max(0, nbytes))
        return None

    async def close(self) -> None:
        if self.cursor is not None:
            self.cursor.close()
            self.cursor = None


# ------------------------------------------------------------------------------------------------------------
# line-oriented files


class LineDecoder:
    """Turns raw lines (without their newline) of one file into values, reporting those it cannot decode."""

    def decode(self, lines: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
        """The decoded values and, for each bad line, (its index in `lines`, the reason)."""
        raise NotImplementedError


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


#: What damaged compressed data raises (a plain OSError is bz2's "Invalid data stream"); last must be OSError.
_CORRUPT: tuple[type[BaseException], ...] = (
    EOFError,
    gzip.BadGzipFile,
    zlib.error,
    lzma.LZMAError,
    zipfile.BadZipFile,
    OSError,
)


class FunctionDecoder(LineDecoder):
    """Decodes each line with a function; blank lines are skipped when `skip_blank`."""

    def __init__(self, fn: Callable[[bytes], Any], skip_blank: bool = False) -> None:
        self.fn = fn
        self.skip_blank = skip_blank

    def decode(self, lines: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
        fn = self.fn
        values: list[Any] = []
        errors: list[tuple[int, str]] = []
        if not self.skip_blank:
            # one C-level pass that goes on after a bad line (list.extend keeps what it appended before the
            # error, and the iterator is past the bad line): each line decoded once, bad ones or not
            it = iter(lines)
            while True:
                try:
                    values.extend(map(fn, it))
                    return values, errors
                except Exception as e:
                    errors.append((len(values) + len(errors), _reason(e)))
        try:
            return [fn(line) for line in lines], []
        except Exception:
            pass
        for i, line in enumerate(lines):
            if self.skip_blank and not line.strip():
                continue
            try:
                values.append(fn(line))
            except Exception as e:
                errors.append((i, _reason(e)))
        return values, errors


class TextDecoder(FunctionDecoder):
    """Lines as text; undecodable bytes are bad records."""

    def __init__(self, encoding: str = "utf-8") -> None:
        codec = encoding

        def decode(raw: bytes) -> str:
            return raw.decode(codec)

        super().__init__(decode)
        # the whole batch in one C-level pass (no Python call per line); `decode` finds a bad line
        self.batch_decode: Callable[[bytes], str] = (
            bytes.decode
            if codecs.lookup(codec).name == "utf-8"
            else functools.partial(bytes.decode, encoding=codec)
        )

    def decode(self, lines: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
        try:
            return list(map(self.batch_decode, lines)), []
        except UnicodeDecodeError:
            return super().decode(lines)


class JsonDecoder(FunctionDecoder):
    """Lines as JSON (orjson); blank lines are skipped."""

    def __init__(self) -> None:
        super().__init__(orjson.loads, skip_blank=True)


def decode_text(raw: bytes) -> str:
    """A line as text (UTF-8)."""
    return raw.decode("utf-8")


def decode_json(raw: bytes) -> Any:
    """A line as JSON."""
    return orjson.loads(raw)


#: Makes the decoder of one file: (path, compression) -> decoder.
DecoderFactory = Callable[[str, str], LineDecoder]


def plan_line_splits(
    path: str, size: int, split_size: int, generation: int | None = None
) -> list[tuple[int, int | None]]:
    """Line-aligned byte ranges of an uncompressed file of `size` bytes, about `split_size` each.

    Each boundary is moved forward to just after the next newline, so every line lies in exactly one range;
    the last range reads to the end of the file.
    """
    if size <= split_size or split_size <= 0:
        return [(0, None)]
    starts = [0]
    with open_raw(path, generation) as f:
        nominal = split_size
        while nominal < size:
            f.seek(nominal - 1)
            found = -1
            where = nominal - 1
            while found < 0:
                chunk = f.read(1 << 16)
                if not chunk:
                    break
                nl = chunk.find(b"\n")
                if nl >= 0:
                    found = where + nl + 1
                where += len(chunk)
            if found < 0 or found >= size:
                break
            if found > starts[-1]:
                starts.append(found)
            nominal = max(found, starts[-1]) + split_size
    bounds: list[tuple[int, int | None]] = [(s, e) for s, e in zip(starts, starts[1:])]
    bounds.append((starts[-1], None))
    return bounds


class LineCursor(SplitCursor):
    """Reads the lines of one split; position ``[byte offset of the next line, lines read in the split]``.

    For a compressed file the offset counts uncompressed bytes (restoring decompresses up to it). With
    `tail`, an unterminated last line is left unread (a file still being written) unless `final` says the
    file is complete.
    """

    BLOCK = 1 << 20

    def __init__(
        self,
        split: FileSplit,
        position: Any,
        decoder: LineDecoder,
        skip_header_lines: int = 0,
        strip_trailing_newlines: bool = True,
        tail: bool = False,
    ) -> None:
        self.split = split
        self.decoder = decoder
        self.skip_header_lines = skip_header_lines if split.start == 0 else 0
        self.strip = strip_trailing_newlines
        self.tail = tail
        self.final = True
        offset, line = (split.start, 0) if position is None else (int(position[0]), int(position[1]))
        self.offset = offset
        self.line = line
        self.line_base: int | None = 0 if split.start == 0 else None
        self.fh: Any
        self.raw: IO[bytes]
        self.fh, self.raw = open_input(split.path, split.compression, split.generation)
        self.damaged: dict[str, Any] | None = None
        self.fh.seek(offset)
        self.read_to = offset  # uncompressed bytes handed to `buf` so far
        self.buf: list[bytes] = []
        self.bi = 0
        self.partial = b""
        self.has_cr = False

    def position(self) -> Any:
        return [self.offset, self.line]

    def progress_bytes(self) -> int:
        if self.split.compression == CompressionTypes.UNCOMPRESSED:
            return self.offset - self.split.start
        try:
            return min(self.split.size, self.raw.tell())
        except (OSError, ValueError):
            return 0

    def _fill(self) -> bool:
        """Read the next block into `buf`; False at the end of the split's data."""
        want = self.BLOCK
        end = self.split.end
        if end is not None:
            want = min(want, end - self.read_to)
            if want <= 0:
                return False
        if self.damaged is not None:
            return False
        try:
            # read1 for compressed data: what decompressed before a damaged spot is kept, not lost with it
            chunk = self.fh.read(want) if self.fh is self.raw else self.fh.read1(want)
        except _CORRUPT as e:
            if self.split.compression == CompressionTypes.UNCOMPRESSED or (
                type(e) is not OSError and not isinstance(e, _CORRUPT[:-1])
            ):
                raise  # a network or disk error, not damaged data
            self._damage(e)
            return False
        if not chunk:
            return False
        self.read_to += len(chunk)
        if self.partial:
            chunk = self.partial + chunk
        parts = chunk.split(b"\n")
        self.partial = parts.pop()
        self.buf = parts
        self.bi = 0
        self.has_cr = self.has_cr or b"\r" in chunk  # sticky: lines of earlier blocks may still be pending
        return True

    def _damage(self, e: BaseException) -> None:
        """Corrupt or truncated compressed data: the rest of the split becomes one dead-letter record."""
        self.damaged = {
            "file": self.split.path,
            "line": -1,
            "offset": self.read_to,
            "raw": self.partial,
            "reason": f"corrupt or truncated {self.split.compression} data: {_reason(e)}",
        }
        self.partial = b""

    def _take(self, n: int) -> tuple[list[bytes], bool, bool]:
        """Up to n raw lines; whether the last one is an unterminated final line; whether data ran out."""
        lines: list[bytes] = []
        while len(lines) < n:
            avail = len(self.buf) - self.bi
            if avail > 0:
                k = min(avail, n - len(lines))
                lines.extend(self.buf[self.bi : self.bi + k])
                self.bi += k
                continue
            if self._fill():
                continue
            if self.partial and (self.final or not self.tail):
                lines.append(self.partial)
                self.partial = b""
                return lines, True, True
            return lines, False, True
        return lines, False, False

    def read_batch(self, max_records: int) -> tuple[list[Any], list[dict[str, Any]], bool]:
        start_offset, start_line = self.offset, self.line
        lines, unterminated, out = self._take(max_records)
        consumed = sum(map(len, lines)) + len(lines) - (1 if unterminated else 0)
        self.offset += consumed
        self.line += len(lines)
        skip = 0
        if start_line < self.skip_header_lines:
            skip = min(len(lines), self.skip_header_lines - start_line)
        body = lines[skip:] if skip else lines
        cr = self.has_cr
        if self.strip:
            if cr:
                body = [b[:-1] if b.endswith(b"\r") else b for b in body]
        else:
            body = [b + b"\n" for b in body]
            if unterminated and body:
                body[-1] = body[-1][:-1]
        values, bad = self.decoder.decode(body) if body else ([], [])
        errors: list[dict[str, Any]] = []
        if bad:
            errors = self._errors(bad, lines, skip, start_offset, start_line)
        if out and self.damaged is not None and self.damaged["line"] == -1:
            self.damaged["line"] = self._line_base() + self.line + 1
            errors.append(self.damaged)
        return values, errors, out

    def _errors(
        self, bad: list[tuple[int, str]], lines: list[bytes], skip: int, start_offset: int, start_line: int
    ) -> list[dict[str, Any]]:
        base = self._line_base()
        # line j starts after lines 0..j-1 and their newlines: in C, not a Python loop over the whole batch
        ends = list(itertools.accumulate(map(len, lines), initial=start_offset))
        out = []
        for i, reason in bad:
            j = i + skip
            raw = lines[j]
            if self.strip and raw.endswith(b"\r"):
                raw = raw[:-1]
            out.append(
                {
                    "file": self.split.path,
                    "line": base + start_line + j + 1,
                    "offset": ends[j] + j,
                    "raw": raw,
                    "reason": reason,
                }
            )
        return out

    def _line_base(self) -> int:
        """Lines in the file before this split (counted once, only when a bad record needs a line number)."""
        if self.line_base is None:
            count, left = 0, self.split.start
            with open_raw(self.split.path, self.split.generation) as f:
                while left > 0:
                    chunk = f.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    count += chunk.count(b"\n")
                    left -= len(chunk)
            self.line_base = count
        return self.line_base

    def close(self) -> None:
        self.fh.close()
        if self.raw is not self.fh:
            self.raw.close()


def line_splits(
    files: list[str] | list[tuple[str, int, int | None]], compression_type: str, split_size: int
) -> list[FileSplit]:
    """The splits of line files: byte ranges of large uncompressed files, whole compressed files.

    `files` are paths, or (path, size, generation) as `pattern_files` gives them (no second metadata request).
    """
    splits = []
    for entry in files:
        path, size, generation = (entry, os.path.getsize(entry), None) if isinstance(entry, str) else entry
        compression = CompressionTypes.resolve(compression_type, path)
        if compression != CompressionTypes.UNCOMPRESSED:
            splits.append(FileSplit(path, 0, None, compression, size, generation))
            continue
        for start, end in plan_line_splits(path, size, split_size, generation):
            splits.append(
                FileSplit(path, start, end, compression, (size if end is None else end) - start, generation)
            )
    return splits


def pattern_files(pattern: str) -> list[tuple[str, int, int | None]]:
    """(path, size, generation) of the files a pattern names (objects: one listing); fails when there are none."""
    if "://" in local_path(pattern):
        infos = file_infos(pattern)
        if not infos:
            expand_pattern(pattern)
        return [(i.path, i.size, i.generation) for i in infos]
    return [(f, os.path.getsize(f), None) for f in expand_pattern(pattern)]


def pattern_splits(pattern: str) -> list[FileSplit]:
    """One whole-file split per matched file (Avro, Parquet), objects pinned to their generation."""
    return [
        FileSplit(p, 0, None, CompressionTypes.UNCOMPRESSED, size, gen)
        for p, size, gen in pattern_files(pattern)
    ]


class LineFileSource(Source):
    """Local line files (a path, directory or glob; compressed or not), each line decoded by the file's decoder.

    `decode` is a per-line function (bytes -> value) or a `DecoderFactory`-producing `decoder_factory`. With
    `watch`, the source is unbounded: it polls the pattern for new files and for lines appended to known ones
    (see `connectors.watch`).
    """

    def __init__(
        self,
        file_pattern: str,
        decode: Callable[[bytes], Any] = decode_text,
        skip_header_lines: int = 0,
        name: str = "Text",
        *,
        decoder_factory: DecoderFactory | None = None,
        compression_type: str = "auto",
        strip_trailing_newlines: bool = True,
        split_size: int = DEFAULT_SPLIT_SIZE,
        watch: bool = False,
        poll_interval: float = 5.0,
    ) -> None:
        local_path(file_pattern)
        self.file_pattern = file_pattern
        self.decode = decode
        if decoder_factory is None:
            fn = decode

            def decoder_factory(path: str, compression: str) -> LineDecoder:
                return FunctionDecoder(fn)

        self.decoder_factory: DecoderFactory = decoder_factory
        if skip_header_lines < 0:
            raise ValueError(f"skip_header_lines must be >= 0, got {skip_header_lines}")
        self.skip_header_lines = skip_header_lines
        self.compression_type = CompressionTypes.normalize(compression_type)
        self.strip_trailing_newlines = strip_trailing_newlines
        self.split_size = split_size
        self.name = name
        self.watch = watch
        if watch and poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval}")
        self.poll_interval = poll_interval
        self.is_bounded = not watch

    #: False (Beam's ``validate=False``): paths are checked only when the job opens the source.
    validate_paths = True

    def validate(self) -> None:
        if not self.validate_paths:
            return
        if self.watch:
            from millstream.connectors.files.filesystem import check_watchable

            check_watchable(self.file_pattern)
        else:
            expand_pattern(self.file_pattern)

    def cursor(self, split: FileSplit, position: Any, tail: bool = False) -> LineCursor:
        """A cursor over one split of this source."""
        return LineCursor(
            split,
            position,
            self.decoder_factory(split.path, split.compression),
            self.skip_header_lines,
            self.strip_trailing_newlines,
            tail,
        )

    def create_reader(self, options: Any) -> SourceReader:
        from millstream.engine.model.options import MillstreamOptions

        batch_size = options.view_as(MillstreamOptions).batch_size
        if self.watch:
            from millstream.connectors.files.watch import WatchReader

            return WatchReader(self, batch_size)
        splits = line_splits(pattern_files(self.file_pattern), self.compression_type, self.split_size)
        reader = FileSourceReader(splits, self.cursor, batch_size, self.file_pattern)
        return wrap_progress(reader, options, self.display_name())

    def display_name(self) -> str:
        return f"{self.name}({self.file_pattern})"

    def signature(self) -> Any:
        if getattr(self, "watch", False):
            return None  # an unbounded source never completes
        from millstream.connectors.files.filesystem import files_signature

        return files_signature(self.file_pattern)


# Beam's runners read line files with Beam's ReadFromText (connectors/files/beam_io.py; imported lazily).
register_beam_io(LineFileSource, "millstream.connectors.files.beam_io:read_lines")
