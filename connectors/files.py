"""File sources and the exactly-once file sink, for every format (text, JSON lines, CSV, Avro, Parquet).

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
(line numbers count from 1 in the whole file, also inside a later byte range).

Sink
----
`FileSink` writes each checkpoint epoch to hidden temporary files beside the output (one per shard, each with
the format's header and footer); `prepare` finishes and fsyncs them and returns their names, `commit` renames
them to their final names (atomic, idempotent: a missing temp file whose final file exists was already
committed), and `recover` finishes the commit of the last durable checkpoint and deletes temporary files of
any later, uncommitted epoch and committed files of checkpoints newer than the restored one.

Committed names keep the checkpoint id, which recovery needs::

    <prefix>-c<checkpoint id, 8+ digits><shard_name_template expanded><suffix>
    e.g. out/counts-c00000012-00001-of-00004.txt   (shard 1 of 4 written by checkpoint 12)

`shard_name_template` is Beam's (default ``-SSSSS-of-NNNNN``: a run of S is the shard index, a run of N the
shard count, both zero-padded to the run's length; ``""`` means one unnumbered file per checkpoint). With
``num_shards`` > 1 every epoch that has output writes all its shards, the records spread round-robin in the
order they reached the sink (deterministic for a given input order). An epoch without records writes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import orjson

from millstream.connectors.filesystem import (
    CompressionTypes,
    FileInputError,
    expand_pattern,
    fsync_dir,
    local_path,
    open_input,
    open_output,
)
from millstream.connectors.progress import wrap_progress
from millstream.engine.model.io import Sink, SinkWriter, Source, SourceBatch, SourceReader

log = logging.getLogger("millstream.files")

#: Default size of a byte-range split of an uncompressed line file (Beam's desired bundle size).
DEFAULT_SPLIT_SIZE = 64 << 20
#: The position of a split that has been read to its end.
DONE = "done"

__all__ = [
    "DEFAULT_SPLIT_SIZE",
    "FileInputError",
    "FileSink",
    "FileSinkWriter",
    "FileSourceReader",
    "FileSplit",
    "JsonDecoder",
    "LineCursor",
    "LineDecoder",
    "LineFileSource",
    "ShardWriter",
    "SplitCursor",
    "TextDecoder",
    "TextFormat",
    "decode_json",
    "decode_text",
    "encode_json",
    "encode_text",
    "expand_pattern",
    "local_path",
    "parse_shard_template",
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

    @property
    def name(self) -> str:
        """The split's key in checkpoint positions: the path, or ``path@start`` for a later byte range."""
        return self.path if self.start == 0 else f"{self.path}@{self.start}"


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

    def __init__(self, splits: list[FileSplit], open_cursor: OpenCursor, batch_size: int, stream: str) -> None:
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


class FunctionDecoder(LineDecoder):
    """Decodes each line with a function; blank lines are skipped when `skip_blank`."""

    def __init__(self, fn: Callable[[bytes], Any], skip_blank: bool = False) -> None:
        self.fn = fn
        self.skip_blank = skip_blank

    def decode(self, lines: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
        fn = self.fn
        try:
            return [fn(line) for line in lines], []
        except Exception:
            pass
        values: list[Any] = []
        errors: list[tuple[int, str]] = []
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


def plan_line_splits(path: str, size: int, split_size: int) -> list[tuple[int, int | None]]:
    """Line-aligned byte ranges of an uncompressed file of `size` bytes, about `split_size` each.

    Each boundary is moved forward to just after the next newline, so every line lies in exactly one range;
    the last range reads to the end of the file.
    """
    if size <= split_size or split_size <= 0:
        return [(0, None)]
    starts = [0]
    with open(path, "rb") as f:
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

    def __init__(self, split: FileSplit, position: Any, decoder: LineDecoder, skip_header_lines: int = 0,
                 strip_trailing_newlines: bool = True, tail: bool = False) -> None:
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
        self.fh, self.raw = open_input(split.path, split.compression)
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
        chunk = self.fh.read(want)
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
        return values, errors, out

    def _errors(self, bad: list[tuple[int, str]], lines: list[bytes], skip: int, start_offset: int,
                start_line: int) -> list[dict[str, Any]]:
        base = self._line_base()
        offsets = [start_offset]
        for line in lines:
            offsets.append(offsets[-1] + len(line) + 1)
        out = []
        for i, reason in bad:
            j = i + skip
            raw = lines[j]
            if self.strip and raw.endswith(b"\r"):
                raw = raw[:-1]
            out.append({"file": self.split.path, "line": base + start_line + j + 1, "offset": offsets[j],
                        "raw": raw, "reason": reason})
        return out

    def _line_base(self) -> int:
        """Lines in the file before this split (counted once, only when a bad record needs a line number)."""
        if self.line_base is None:
            count, left = 0, self.split.start
            with open(self.split.path, "rb") as f:
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


def line_splits(files: list[str], compression_type: str, split_size: int) -> list[FileSplit]:
    """The splits of line files: byte ranges of large uncompressed files, whole compressed files."""
    splits = []
    for path in files:
        size = os.path.getsize(path)
        compression = CompressionTypes.resolve(compression_type, path)
        if compression != CompressionTypes.UNCOMPRESSED:
            splits.append(FileSplit(path, 0, None, compression, size))
            continue
        for start, end in plan_line_splits(path, size, split_size):
            splits.append(FileSplit(path, start, end, compression, (size if end is None else end) - start))
    return splits


class LineFileSource(Source):
    """Local line files (a path, directory or glob; compressed or not), each line decoded by the file's decoder.

    `decode` is a per-line function (bytes -> value) or a `DecoderFactory`-producing `decoder_factory`. With
    `watch`, the source is unbounded: it polls the pattern for new files and for lines appended to known ones
    (see `connectors.watch`).
    """

    def __init__(self, file_pattern: str, decode: Callable[[bytes], Any] = decode_text, skip_header_lines: int = 0,
                 name: str = "Text", *, decoder_factory: DecoderFactory | None = None,
                 compression_type: str = "auto", strip_trailing_newlines: bool = True,
                 split_size: int = DEFAULT_SPLIT_SIZE, watch: bool = False, poll_interval: float = 5.0) -> None:
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
            from millstream.connectors.filesystem import check_watchable

            check_watchable(self.file_pattern)
        else:
            expand_pattern(self.file_pattern)

    def cursor(self, split: FileSplit, position: Any, tail: bool = False) -> LineCursor:
        """A cursor over one split of this source."""
        return LineCursor(split, position, self.decoder_factory(split.path, split.compression),
                          self.skip_header_lines, self.strip_trailing_newlines, tail)

    def create_reader(self, options: Any) -> SourceReader:
        from millstream.engine.model.options import MillstreamOptions

        batch_size = options.view_as(MillstreamOptions).batch_size
        if self.watch:
            from millstream.connectors.watch import WatchReader

            return WatchReader(self, batch_size)
        splits = line_splits(expand_pattern(self.file_pattern), self.compression_type, self.split_size)
        reader = FileSourceReader(splits, self.cursor, batch_size, self.file_pattern)
        return wrap_progress(reader, options, self.display_name())

    def display_name(self) -> str:
        return f"{self.name}({self.file_pattern})"

    def signature(self) -> Any:
        if getattr(self, "watch", False):
            return None  # an unbounded source never completes
        from millstream.connectors.filesystem import files_signature

        return files_signature(self.file_pattern)


# ------------------------------------------------------------------------------------------------------------
# the sink


def encode_json(value: Any) -> bytes:
    """One JSON line."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def encode_text(value: Any) -> bytes:
    """One text line (str() of the value)."""
    return (value if isinstance(value, str) else str(value)).encode("utf-8") + b"\n"


class ShardWriter:
    """Writes one output file of one epoch in some format, into an open binary file it does not close."""

    def write(self, values: list[Any]) -> None:
        """Append values."""
        raise NotImplementedError

    def finish(self) -> None:
        """Write the trailer (footer, index) and flush; the sink then fsyncs and closes the file."""


class FileFormat:
    """How a sink encodes its files: `open_shard` starts one file."""

    def validate(self) -> None:
        """Check the configuration before any data is read."""

    def open_shard(self, raw: IO[bytes], shard: int, num_shards: int) -> ShardWriter:
        """A writer for one new (temporary) output file."""
        raise NotImplementedError


class _TextShard(ShardWriter):
    """One text file: header on first use, encoded lines, footer; `out` may compress into `raw`."""

    def __init__(self, raw: IO[bytes], out: Any, fmt: TextFormat) -> None:
        self.raw = raw
        self.out = out
        self.fmt = fmt
        self.started = False

    def write(self, values: list[Any]) -> None:
        if not self.started:
            self._start(values)
        self.out.write(self.fmt.encode_batch(values))

    def _start(self, values: list[Any]) -> None:
        self.started = True
        header = self.fmt.header_bytes(values)
        if header is not None:
            self.out.write(header)

    def finish(self) -> None:
        if not self.started:
            self._start([])
        if self.fmt.footer is not None:
            self.out.write(self.fmt.footer)
        if self.out is not self.raw:
            self.out.close()  # ends the compressed stream; the raw file stays open for fsync
        self.raw.flush()


class TextFormat(FileFormat):
    """Lines of encoded values with an optional header and footer line per file, optionally compressed."""

    def __init__(self, encode: Callable[[Any], bytes] = encode_text, header: bytes | None = None,
                 footer: bytes | None = None, compression: str = CompressionTypes.UNCOMPRESSED,
                 inner_name: str = "data") -> None:
        self.encode = encode
        self.header = header
        self.footer = footer
        self.compression = compression
        self.inner_name = inner_name

    def header_bytes(self, values: list[Any]) -> bytes | None:
        """The header of a new file (CSV derives it from the first values)."""
        return self.header

    def encode_batch(self, values: list[Any]) -> bytes:
        """Values as the bytes of their lines."""
        encode = self.encode
        return b"".join([encode(v) for v in values])

    def open_shard(self, raw: IO[bytes], shard: int, num_shards: int) -> ShardWriter:
        return _TextShard(raw, open_output(raw, self.compression, self.inner_name), self)


_TEMPLATE_RUN = re.compile(r"S+|N+")


def parse_shard_template(template: str) -> Callable[[int, int], str]:
    """Beam's shard name template as a function (shard index, shard count) -> name part."""
    if re.search(r"W+|P+", template):
        raise ValueError(
            f"shard_name_template={template!r}: window (W) and pane (P) placeholders are not supported; "
            "use S (shard index) and N (shard count)"
        )

    def expand(shard: int, num: int) -> str:
        def sub(m: re.Match[str]) -> str:
            run = m.group(0)
            return f"{shard if run[0] == 'S' else num:0{len(run)}d}"

        return _TEMPLATE_RUN.sub(sub, template)

    return expand


def _shard_regex(template: str) -> str:
    parts = []
    pos = 0
    for m in _TEMPLATE_RUN.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        parts.append(rf"\d{{{len(m.group(0))},}}")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return "".join(parts)


class FileSinkWriter(SinkWriter):
    """Writes epochs to temporary files (one per shard) and renames them on commit."""

    def __init__(self, prefix: str, suffix: str, fmt: FileFormat, job_name: str, num_shards: int = 1,
                 shard_name_template: str = "-SSSSS-of-NNNNN") -> None:
        self.prefix = prefix
        self.suffix = suffix
        self.fmt = fmt
        self.num_shards = max(1, num_shards)
        self.template = shard_name_template
        self.shard_name = parse_shard_template(shard_name_template)
        directory = os.path.dirname(os.path.abspath(prefix))
        self.directory = directory
        self.base = os.path.basename(prefix)
        self.tmp_dir = os.path.join(directory, f".{self.base}.millstream-tmp")
        # Sinks sharing a prefix (different suffixes) share the temporary folder: each touches only its own.
        self.tag = hashlib.sha1(f"{suffix}|{shard_name_template}".encode()).hexdigest()[:8]
        # Unique per writer: a checkpoint record names its temp files, so a later run (the same pid after a
        # restart in one process, or a reused pid) must never write a temp file under a recorded name.
        self.run_token = uuid.uuid4().hex[:12]
        self.committed = re.compile(re.escape(self.base) + r"-c(\d{8,})" + _shard_regex(shard_name_template)
                                    + re.escape(suffix) + "$")
        self.job_name = job_name
        self.handles: list[IO[bytes]] = []
        self.shards: list[ShardWriter] = []
        self.tmp_paths: list[str] = []
        self.epoch_seq = 0
        self.rotation = 0

    def final_name(self, checkpoint_id: int, shard: int = 0) -> str:
        """The committed file of one shard of one checkpoint's epoch."""
        return f"{self.prefix}-c{checkpoint_id:08d}{self.shard_name(shard, self.num_shards)}{self.suffix}"

    async def open(self) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)
        if checkpoint_id is not None and record:
            await self.commit(checkpoint_id, record)
        for name in os.listdir(self.tmp_dir):  # epochs after the last durable checkpoint
            if name.startswith(self.tag + "-"):
                os.remove(os.path.join(self.tmp_dir, name))
        # After a fallback to an older checkpoint, output committed by newer ones is replayed: remove it.
        restored = checkpoint_id or 0
        for name in os.listdir(self.directory):
            m = self.committed.match(name)
            if m and int(m.group(1)) > restored:
                os.remove(os.path.join(self.directory, name))

    def _start_epoch(self) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)
        self.epoch_seq += 1
        self.rotation = 0
        for shard in range(self.num_shards):
            path = os.path.join(self.tmp_dir, f"{self.tag}-{self.run_token}-{self.epoch_seq}-{shard}.tmp")
            raw = open(path, "wb")  # noqa: SIM115 - held for the epoch
            self.tmp_paths.append(path)
            self.handles.append(raw)
            self.shards.append(self.fmt.open_shard(raw, shard, self.num_shards))

    async def write(self, values: list[Any]) -> None:
        if not values:
            return
        if not self.shards:
            self._start_epoch()
        n = self.num_shards
        if n == 1:
            self.shards[0].write(values)
            return
        r = self.rotation
        for shard in range(n):
            part = values[(shard - r) % n :: n]
            if part:
                self.shards[shard].write(part)
        self.rotation = (r + len(values)) % n

    async def prepare(self, checkpoint_id: int) -> Any:
        if not self.shards:
            return []
        record = []
        for shard, (writer, raw, tmp) in enumerate(zip(self.shards, self.handles, self.tmp_paths)):
            writer.finish()
            raw.flush()
            os.fsync(raw.fileno())
            raw.close()
            record.append([tmp, self.final_name(checkpoint_id, shard)])
        self.shards, self.handles, self.tmp_paths = [], [], []
        return record

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        for tmp, final in record or []:
            if os.path.exists(tmp):
                os.replace(tmp, final)
            elif not os.path.exists(final):
                raise FileNotFoundError(
                    f"cannot commit checkpoint {checkpoint_id}: neither {tmp} nor {final} exists"
                )
        if record:
            fsync_dir(self.directory)

    async def abort(self) -> None:
        for raw in self.handles:
            raw.close()
        for path in self.tmp_paths:
            if os.path.exists(path):
                os.remove(path)
        self.shards, self.handles, self.tmp_paths = [], [], []

    async def close(self) -> None:
        await self.abort()


class FileSink(Sink):
    """Exactly-once files: each checkpoint's epoch is committed as `num_shards` files (naming: module doc)."""

    def __init__(self, file_path_prefix: str, file_name_suffix: str = "", encode: Callable[[Any], bytes] = encode_text,
                 header: str | None = None, footer: str | None = None, name: str = "Text", *,
                 fmt: FileFormat | None = None, num_shards: int = 0, shard_name_template: str | None = None,
                 compression_type: str = "auto") -> None:
        self.prefix = local_path(file_path_prefix)
        if not os.path.basename(self.prefix):
            raise ValueError(f"file_path_prefix={file_path_prefix!r} must end with a file name prefix, not a folder")
        self.suffix = file_name_suffix
        if num_shards < 0:
            raise ValueError(f"num_shards must be >= 0, got {num_shards}")
        self.num_shards = max(1, num_shards)
        template = "-SSSSS-of-NNNNN" if shard_name_template is None else shard_name_template
        parse_shard_template(template)
        if self.num_shards > 1 and "S" not in template:
            raise ValueError(
                f"num_shards={num_shards} needs a shard_name_template with S (shard index), got {template!r}"
            )
        self.template = template
        self.compression = CompressionTypes.resolve(compression_type, file_name_suffix or "")
        if fmt is None:
            fmt = TextFormat(
                encode,
                None if header is None else header.encode("utf-8") + b"\n",
                None if footer is None else footer.encode("utf-8") + b"\n",
                self.compression,
                inner_name=os.path.basename(self.prefix) + file_name_suffix.removesuffix(".zip"),
            )
        self.fmt = fmt
        self.name = name

    def validate(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.prefix))
        if not os.path.isdir(directory):
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise FileInputError(f"{self.prefix}: cannot create the output directory: {e}") from e
        self.fmt.validate()

    def create_writer(self, options: Any, job: Any) -> SinkWriter:
        return FileSinkWriter(self.prefix, self.suffix, self.fmt, getattr(job, "job_name", "millstream"),
                              self.num_shards, self.template)

    def display_name(self) -> str:
        return f"{self.name}({self.prefix}*{self.suffix})"

