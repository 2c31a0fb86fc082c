"""Line-oriented file sources and the exactly-once file sink.

`LineFileSource` reads local files matched by a glob, one split per file, and decodes each line (UTF-8 text,
or JSON with orjson). Its position per split is (byte offset, line number) of the next unread line, so a
checkpoint records exactly where reading stopped and a restored job neither skips nor re-reads.

`FileSink` writes each checkpoint epoch to hidden temporary files beside the output; `prepare` flushes and
fsyncs them and returns their names, `commit` renames them to their final names (atomic, idempotent: a
missing temp file whose final file exists was already committed), and `recover` finishes the commit of the
last durable checkpoint and deletes temporary files of any later, uncommitted epoch.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import Any

import orjson

from millstream.engine.model.io import Sink, SinkWriter, Source, SourceBatch, SourceReader

SUPPORTED_SCHEMES = ("local paths", "file://")


class FileInputError(ValueError):
    """An input path or glob that cannot be read: names the pattern and why."""


def local_path(pattern: str) -> str:
    """The local path of `pattern`; other URL schemes fail with a message listing what is supported."""
    if pattern.startswith("file://"):
        return pattern[len("file://") :]
    if "://" in pattern:
        scheme = pattern.split("://", 1)[0]
        raise FileInputError(
            f"{pattern}: the {scheme}:// scheme is not supported; supported: {', '.join(SUPPORTED_SCHEMES)}"
        )
    return pattern


def expand_pattern(pattern: str) -> list[str]:
    """The files a path or glob names, sorted; fails before reading when there are none."""
    path = local_path(pattern)
    if any(c in path for c in "*?["):
        files = sorted(f for f in glob.glob(path, recursive=True) if os.path.isfile(f))
        if not files:
            raise FileInputError(f"{pattern}: the glob matches no files")
        return files
    if not os.path.exists(path):
        raise FileInputError(f"{pattern}: no such file or directory")
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if os.path.isfile(os.path.join(path, f))
                       and not f.startswith("."))
        if not files:
            raise FileInputError(f"{pattern}: the directory has no files")
        return files
    return [path]


def decode_text(raw: bytes) -> str:
    """A line as text (UTF-8)."""
    return raw.decode("utf-8")


def decode_json(raw: bytes) -> Any:
    """A line as JSON."""
    return orjson.loads(raw)


class LineFileReader(SourceReader):
    """Reads files line by line in batches; one split per file, read in order."""

    def __init__(self, files: list[str], decode: Callable[[bytes], Any], batch_size: int, skip_header_lines: int,
                 block_size: int = 1 << 20) -> None:
        self.files = files
        self.decode = decode
        self.batch_size = batch_size
        self.skip_header_lines = skip_header_lines
        self.block_size = block_size
        self.pos: dict[str, list[int]] = {f: [0, 0] for f in files}
        self.done: set[str] = set()
        self.index = 0
        self.handle: Any = None
        self.pending = b""
        self.total_bytes = sum(os.path.getsize(f) for f in files)

    async def open(self, positions: dict[str, Any] | None) -> None:
        if positions:
            for f, p in positions.items():
                if f in self.pos:
                    offset, line = p
                    self.pos[f] = [int(offset), int(line)]
                    if offset < 0:
                        self.done.add(f)

    def positions(self) -> dict[str, Any]:
        return {f: list(p) if f not in self.done else [-1, p[1]] for f, p in self.pos.items()}

    def total(self) -> int | None:
        return self.total_bytes

    def backlog(self) -> int | None:
        read = sum(p[0] for f, p in self.pos.items() if f not in self.done)
        finished = sum(os.path.getsize(f) for f in self.done)
        return max(0, self.total_bytes - read - finished)

    async def read(self) -> SourceBatch | None:
        while self.index < len(self.files):
            name = self.files[self.index]
            if name in self.done:
                self.index += 1
                continue
            if self.handle is None:
                self.handle = open(name, "rb")  # noqa: SIM115 - held across read() calls
                self.handle.seek(self.pos[name][0])
                self.pending = b""
            return self._read_batch(name)
        return None

    def _read_batch(self, name: str) -> SourceBatch:
        pos = self.pos[name]
        offset, line_no = pos
        values: list[Any] = []
        errors: list[dict[str, Any]] = []
        decode = self.decode
        start_offset = offset
        eof = False
        while len(values) + len(errors) < self.batch_size:
            nl = self.pending.find(b"\n")
            if nl < 0:
                chunk = self.handle.read(self.block_size)
                if not chunk:
                    eof = True
                    if not self.pending:
                        break
                    raw, self.pending = self.pending, b""
                    consumed = len(raw)
                else:
                    self.pending += chunk
                    continue
            else:
                raw = self.pending[:nl]
                self.pending = self.pending[nl + 1 :]
                consumed = nl + 1
            line_no += 1
            line_offset = offset
            offset += consumed
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if line_no <= self.skip_header_lines:
                continue
            try:
                values.append(decode(raw))
            except Exception as e:
                errors.append({"file": name, "line": line_no, "offset": line_offset, "raw": raw,
                               "reason": f"{type(e).__name__}: {e}"})
        pos[0], pos[1] = offset, line_no
        if eof:
            self.done.add(name)
            self.handle.close()
            self.handle = None
            self.index += 1
        return SourceBatch(name, values, None, errors, finished=eof, nbytes=offset - start_offset)

    async def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class LineFileSource(Source):
    """Local files (a path, directory or glob) read line by line, decoded by `decode`."""

    is_bounded = True

    def __init__(self, file_pattern: str, decode: Callable[[bytes], Any] = decode_text, skip_header_lines: int = 0,
                 name: str = "Text") -> None:
        self.file_pattern = file_pattern
        self.decode = decode
        self.skip_header_lines = skip_header_lines
        self.name = name

    def validate(self) -> None:
        expand_pattern(self.file_pattern)

    def create_reader(self, options: Any) -> SourceReader:
        from millstream.engine.model.options import MillstreamOptions

        batch_size = options.view_as(MillstreamOptions).batch_size
        return LineFileReader(expand_pattern(self.file_pattern), self.decode, batch_size, self.skip_header_lines)

    def display_name(self) -> str:
        return f"{self.name}({self.file_pattern})"


def encode_json(value: Any) -> bytes:
    """One JSON line."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY) + b"\n"


def encode_text(value: Any) -> bytes:
    """One text line (str() of the value)."""
    return (value if isinstance(value, str) else str(value)).encode("utf-8") + b"\n"


class FileSinkWriter(SinkWriter):
    """Writes epochs to temporary files and renames them on commit."""

    def __init__(self, prefix: str, suffix: str, encode: Callable[[Any], bytes], job_name: str,
                 header: bytes | None = None, footer: bytes | None = None) -> None:
        self.prefix = prefix
        self.suffix = suffix
        self.encode = encode
        self.header = header
        self.footer = footer
        directory = os.path.dirname(os.path.abspath(prefix))
        self.directory = directory
        self.tmp_dir = os.path.join(directory, f".{os.path.basename(prefix)}.millstream-tmp")
        self.job_name = job_name
        self.handle: Any = None
        self.tmp_path: str | None = None
        self.epoch_seq = 0

    def final_name(self, checkpoint_id: int) -> str:
        """The committed file of one checkpoint's epoch."""
        return f"{self.prefix}-c{checkpoint_id:08d}-00000-of-00001{self.suffix}"

    async def open(self) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)
        if checkpoint_id is not None and record:
            await self.commit(checkpoint_id, record)
        for name in os.listdir(self.tmp_dir):  # epochs after the last durable checkpoint
            os.remove(os.path.join(self.tmp_dir, name))
        # After a fallback to an older checkpoint, output committed by newer ones is replayed: remove it.
        restored = checkpoint_id or 0
        stem = os.path.basename(self.prefix) + "-c"
        for name in os.listdir(self.directory):
            if name.startswith(stem) and name.endswith(self.suffix):
                digits = name[len(stem) : len(stem) + 8]
                if digits.isdigit() and int(digits) > restored:
                    os.remove(os.path.join(self.directory, name))

    async def write(self, values: list[Any]) -> None:
        if self.handle is None:
            os.makedirs(self.tmp_dir, exist_ok=True)
            self.epoch_seq += 1
            self.tmp_path = os.path.join(self.tmp_dir, f"epoch-{os.getpid()}-{self.epoch_seq}.tmp")
            self.handle = open(self.tmp_path, "wb")  # noqa: SIM115 - held for the epoch
            if self.header is not None:
                self.handle.write(self.header)
        encode = self.encode
        self.handle.write(b"".join([encode(v) for v in values]))

    async def prepare(self, checkpoint_id: int) -> Any:
        if self.handle is None:
            return []
        if self.footer is not None:
            self.handle.write(self.footer)
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        self.handle = None
        tmp, self.tmp_path = self.tmp_path, None
        return [[tmp, self.final_name(checkpoint_id)]]

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        for tmp, final in record or []:
            if os.path.exists(tmp):
                os.replace(tmp, final)
            elif not os.path.exists(final):
                raise FileNotFoundError(
                    f"cannot commit checkpoint {checkpoint_id}: neither {tmp} nor {final} exists"
                )
        if record:
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    async def abort(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.tmp_path and os.path.exists(self.tmp_path):
            os.remove(self.tmp_path)
        self.tmp_path = None

    async def close(self) -> None:
        await self.abort()


class FileSink(Sink):
    """Exactly-once files: one file per checkpoint epoch, `<prefix>-c<checkpoint>-00000-of-00001<suffix>`."""

    def __init__(self, file_path_prefix: str, file_name_suffix: str = "", encode: Callable[[Any], bytes] = encode_text,
                 header: str | None = None, footer: str | None = None, name: str = "Text") -> None:
        self.prefix = local_path(file_path_prefix)
        self.suffix = file_name_suffix
        self.encode = encode
        self.header = None if header is None else header.encode("utf-8") + b"\n"
        self.footer = None if footer is None else footer.encode("utf-8") + b"\n"
        self.name = name

    def validate(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.prefix))
        if not os.path.isdir(directory):
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise FileInputError(f"{self.prefix}: cannot create the output directory: {e}") from e

    def create_writer(self, options: Any, job: Any) -> SinkWriter:
        return FileSinkWriter(self.prefix, self.suffix, self.encode, getattr(job, "job_name", "millstream"),
                              self.header, self.footer)

    def display_name(self) -> str:
        return f"{self.name}({self.prefix}*{self.suffix})"
