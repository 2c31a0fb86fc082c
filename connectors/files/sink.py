"""The exactly-once file sink, for every format (text, JSON lines, CSV, Avro, Parquet).

`FileSink` writes each checkpoint epoch to hidden temporary files beside the output (one per shard, each with
the format's header and footer); `prepare` finishes and fsyncs them and returns their names, `commit` renames
them to their final names (atomic, idempotent: a missing temp file whose final file exists was already
committed), and `recover` finishes the commit of the last durable checkpoint and deletes temporary files of
any later, uncommitted epoch and committed files of checkpoints newer than the restored one.

On ``gs://`` (no rename) `gcs_sink.GcsSinkWriter` keeps these names (batch names too) and commits by conditional
upload.

Committed names keep the checkpoint id, which recovery needs::

    <prefix>-c<checkpoint id, 8+ digits><shard_name_template expanded><suffix>
    e.g. out/counts-c00000012-00001-of-00004.txt   (shard 1 of 4 written by checkpoint 12)

`shard_name_template` is Beam's (default ``-SSSSS-of-NNNNN``: a run of S is the shard index, a run of N the
shard count, both zero-padded to the run's length; ``""`` means one unnumbered file per checkpoint). With
``num_shards`` > 1 every epoch that has output writes all its shards, the records spread round-robin in the
order they reached the sink (deterministic for a given input order). An epoch without records writes nothing.
Those are the names of streaming jobs, and the names of a bounded job's checkpoints while it runs.

A bounded (non-streaming) run that reads all its input ends with Beam's batch names, exactly::

    <prefix><shard_name_template expanded><suffix>
    e.g. out/counts-00001-of-00004.txt, or out/counts.txt with shard_name_template=""

The final checkpoint of such a run (`prepare_end_of_input`) records, per shard, the target name and the
committed per-checkpoint files that make it up (this epoch's included); its commit concatenates them in
checkpoint order (`FileFormat.concat`: one header, one footer, one compressed stream; a single file is just
renamed) into a temporary file, renames that to the target, then deletes the parts. A restart repeats the
commit from the durable record: a shard whose parts all exist is merged (again), one whose target exists and
some part is gone was finished. Every shard file is written, empty ones too, as Beam does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections.abc import Callable
from typing import IO, Any

import orjson

from millstream.connectors.files.filesystem import (
    CompressionTypes,
    FileInputError,
    fsync_dir,
    local_path,
    open_input,
    open_output,
)
from millstream.engine.model.io import Sink, SinkEncodeError, SinkWriter
from millstream.engine.model.portable import portable
from millstream.engine.translate.beam.hooks import register_beam_io

log = logging.getLogger("millstream.files")

__all__ = [
    "FileFormat",
    "FileSink",
    "FileSinkWriter",
    "ShardWriter",
    "TextFormat",
    "encode_json",
    "encode_text",
    "parse_shard_template",
]


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def encode_json(value: Any) -> bytes:
    """One JSON line; bytes (as in dead-letter records) are written as text or base64 (`portable`)."""
    try:
        return orjson.dumps(value, option=_JSON_OPTIONS) + b"\n"
    except TypeError:
        return orjson.dumps(portable(value), option=_JSON_OPTIONS) + b"\n"


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

    def concat(self, parts: list[str], raw: IO[bytes]) -> None:
        """Write into `raw` one file of this format holding the records of the files `parts`, in order
        (used for the batch names of a bounded run); `parts` has at least two files."""
        raise NotImplementedError(f"{type(self).__name__} cannot concatenate files")


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

    def __init__(
        self,
        encode: Callable[[Any], bytes] = encode_text,
        header: bytes | None = None,
        footer: bytes | None = None,
        compression: str = CompressionTypes.UNCOMPRESSED,
        inner_name: str = "data",
    ) -> None:
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
        try:
            return b"".join([encode(v) for v in values])
        except Exception:
            for v in values:  # find the element to name it; the fast path above stays a comprehension
                try:
                    encode(v)
                except Exception as e:
                    raise SinkEncodeError(v, e) from e
            raise

    def open_shard(self, raw: IO[bytes], shard: int, num_shards: int) -> ShardWriter:
        return _TextShard(raw, open_output(raw, self.compression, self.inner_name), self)

    def header_lines(self, firsts: list[bytes]) -> bool:
        """Whether each file starts with a header line, given every file's first line (`concat`)."""
        return False

    def concat(self, parts: list[str], raw: IO[bytes]) -> None:
        firsts = []
        for part in parts:
            reader, f = open_input(part, self.compression)
            with f, reader:
                firsts.append(reader.readline())
        skip_line = self.header_lines(firsts)
        header = self.header or b""
        footer = self.footer or b""
        out = open_output(raw, self.compression, self.inner_name)
        for i, part in enumerate(parts):
            reader, f = open_input(part, self.compression)
            with f, reader:
                if i > 0:  # the header stays only at the start of the whole file
                    if skip_line:
                        reader.readline()
                    elif header:
                        reader.read(len(header))
                _copy_without_tail(reader, out, footer if i < len(parts) - 1 else b"")
        if out is not raw:
            out.close()
        raw.flush()


def _copy_without_tail(reader: Any, out: Any, tail: bytes, chunk: int = 1 << 20) -> None:
    """Copy `reader` to `out`, leaving out its last ``len(tail)`` bytes (a footer, which must be `tail`)."""
    held = b""
    while True:
        data = reader.read(chunk)
        if not data:
            break
        data = held + data
        keep = len(data) - len(tail)
        if keep > 0:
            out.write(data[:keep])
            held = data[keep:]
        else:
            held = data
    if held != tail:
        raise ValueError(f"a part file does not end with the footer {tail!r}")


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

    def __init__(
        self,
        prefix: str,
        suffix: str,
        fmt: FileFormat,
        job_name: str,
        num_shards: int = 1,
        shard_name_template: str = "-SSSSS-of-NNNNN",
        batch: bool = False,
    ) -> None:
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
        self.committed = re.compile(
            re.escape(self.base) + r"-c(\d{8,})" + _shard_regex(shard_name_template) + re.escape(suffix) + "$"
        )
        self.job_name = job_name
        self.handles: list[IO[bytes]] = []
        self.shards: list[ShardWriter] = []
        self.tmp_paths: list[str] = []
        self.epoch_seq = 0
        self.rotation = 0
        self.current_shard = 0
        # a bounded job: a completed run ends with Beam's batch names (module doc); `completed` once it has
        self.batch = batch
        self.completed = False

    def final_name(self, checkpoint_id: int, shard: int = 0) -> str:
        """The committed file of one shard of one checkpoint's epoch."""
        return f"{self.prefix}-c{checkpoint_id:08d}{self.shard_name(shard, self.num_shards)}{self.suffix}"

    def batch_name(self, shard: int) -> str:
        """Beam's name of one shard of a completed bounded run's output."""
        return f"{self.prefix}{self.shard_name(shard, self.num_shards)}{self.suffix}"

    def io_path(self) -> str:
        """The file being written (for an I/O error that names none): the shard's temp file, else the folder."""
        if self.tmp_paths:
            return self.tmp_paths[min(self.current_shard, len(self.tmp_paths) - 1)]
        return self.directory

    async def open(self) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        os.makedirs(self.tmp_dir, exist_ok=True)
        if checkpoint_id is not None and record:
            await self.commit(checkpoint_id, record)
        if self.batch and not self.completed:
            # a run that starts (afresh or resumed) and has not completed yet: Beam overwrites the output
            for shard in range(self.num_shards):
                if os.path.exists(self.batch_name(shard)):
                    os.remove(self.batch_name(shard))
        for name in os.listdir(self.tmp_dir):  # epochs after the last durable checkpoint
            if name.startswith(self.tag + "-"):
                os.remove(os.path.join(self.tmp_dir, name))
        # After a fallback to an older checkpoint, output committed by newer ones is replayed: remove it.
        restored = checkpoint_id or 0
        for name in os.listdir(self.directory):
            m = self.committed.match(name)
            if m and int(m.group(1)) > restored:
                os.remove(os.path.join(self.directory, name))

    async def committed_after(self, checkpoint_id: int) -> list[str]:
        names = []
        for name in sorted(os.listdir(self.directory)):
            m = self.committed.match(name)
            if m and int(m.group(1)) > checkpoint_id:
                names.append(os.path.join(self.directory, name))
        return names

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
            self.current_shard = 0
            self.shards[0].write(values)
            return
        r = self.rotation
        for shard in range(n):
            part = values[(shard - r) % n :: n]
            if part:
                self.current_shard = shard
                self.shards[shard].write(part)
        self.rotation = (r + len(values)) % n

    async def prepare(self, checkpoint_id: int) -> Any:
        if not self.shards:
            return []
        record = []
        for shard, (writer, raw, tmp) in enumerate(zip(self.shards, self.handles, self.tmp_paths)):
            self.current_shard = shard
            writer.finish()
            raw.flush()
            os.fsync(raw.fileno())
            raw.close()
            record.append([tmp, self.final_name(checkpoint_id, shard)])
        self.shards, self.handles, self.tmp_paths = [], [], []
        return record

    async def prepare_end_of_input(self, checkpoint_id: int) -> Any:
        """The last epoch of a completed bounded run, and how its whole output gets Beam's batch names."""
        epoch = await self.prepare(checkpoint_id)
        if not self.batch:
            return epoch
        if self.completed:  # a restart finished the completion; this run read nothing more
            return {"completed": True}
        this = {final for _, final in epoch}
        merge = []
        for shard in range(self.num_shards):
            name = re.compile(
                re.escape(self.base)
                + r"-c(\d{8,})"
                + re.escape(self.shard_name(shard, self.num_shards))
                + re.escape(self.suffix)
                + "$"
            )
            parts = []
            for entry in os.listdir(self.directory):
                m = name.match(entry)
                path = os.path.join(self.directory, entry)
                if m and (int(m.group(1)) < checkpoint_id or path in this):
                    parts.append((int(m.group(1)), path))
            final_part = self.final_name(checkpoint_id, shard)
            if final_part in this:
                parts.append((checkpoint_id, final_part))
            merge.append([self.batch_name(shard), [path for _, path in sorted(set(parts))]])
        return {"epoch": epoch, "merge": merge}

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        if isinstance(record, dict):
            if not record.get("completed"):
                for tmp, part in record["epoch"]:  # a part already merged is checked by `_finish_shard`
                    if os.path.exists(tmp):
                        os.replace(tmp, part)
                for shard, (target, parts) in enumerate(record["merge"]):
                    self._finish_shard(shard, target, parts)
                fsync_dir(self.directory)
            self.completed = True
            return
        for tmp, final in record or []:
            if os.path.exists(tmp):
                os.replace(tmp, final)
            elif not os.path.exists(final):
                raise FileNotFoundError(
                    f"cannot commit checkpoint {checkpoint_id}: neither {tmp} nor {final} exists"
                )
        if record:
            fsync_dir(self.directory)

    def _finish_shard(self, shard: int, target: str, parts: list[str]) -> None:
        """Give one shard of a completed bounded run its batch name (idempotent: module doc)."""
        present = [p for p in parts if os.path.exists(p)]
        if len(present) < len(parts):
            if not os.path.exists(target):
                raise FileNotFoundError(
                    f"cannot finish {target}: parts of it are missing and it does not exist"
                )
            for p in present:  # the merge was done and renamed; a crash stopped the clean-up
                os.remove(p)
            return
        if len(parts) == 1:
            os.replace(parts[0], target)
            return
        os.makedirs(self.tmp_dir, exist_ok=True)
        tmp = os.path.join(self.tmp_dir, f"{self.tag}-{self.run_token}-final-{shard}.tmp")
        with open(tmp, "wb") as raw:
            self.current_shard = shard
            if parts:
                self.fmt.concat(parts, raw)
            else:  # no record for this shard: Beam writes the (empty) file all the same
                try:
                    self.fmt.open_shard(raw, shard, self.num_shards).finish()
                except ValueError as e:  # e.g. Parquet without a schema and no record to infer one from
                    log.warning("%s: not written: %s", target, e)
                    raw.close()
                    os.remove(tmp)
                    return
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
        fsync_dir(self.directory)
        for p in parts:
            os.remove(p)

    async def abort(self) -> None:
        for raw in self.handles:
            raw.close()
        for path in self.tmp_paths:
            if os.path.exists(path):
                os.remove(path)
        self.shards, self.handles, self.tmp_paths = [], [], []

    async def close(self) -> None:
        await self.abort()
        if self.completed:
            try:  # Beam leaves nothing but the output; a sink sharing the folder may still use it
                os.rmdir(self.tmp_dir)
            except OSError:
                pass


class FileSink(Sink):
    """Exactly-once files: each checkpoint's epoch is committed as `num_shards` files (naming: module doc)."""

    def __init__(
        self,
        file_path_prefix: str,
        file_name_suffix: str = "",
        encode: Callable[[Any], bytes] = encode_text,
        header: str | None = None,
        footer: str | None = None,
        name: str = "Text",
        *,
        fmt: FileFormat | None = None,
        num_shards: int = 0,
        shard_name_template: str | None = None,
        compression_type: str = "auto",
    ) -> None:
        self.prefix = local_path(file_path_prefix)
        if not os.path.basename(self.prefix):
            raise ValueError(
                f"file_path_prefix={file_path_prefix!r} must end with a file name prefix, not a folder"
            )
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
        if "://" in self.prefix:
            from millstream.connectors.files.gcs import GcsFileSystem, split_path
            from millstream.connectors.files.schemes import filesystem_for

            fs = filesystem_for(self.prefix)
            bucket = split_path(self.prefix)[0]
            if isinstance(fs, GcsFileSystem) and not fs.bucket_exists(bucket):
                raise FileInputError(f"{self.prefix}: the bucket {bucket} does not exist")
            self.fmt.validate()
            return
        directory = os.path.dirname(os.path.abspath(self.prefix))
        if not os.path.isdir(directory):
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise FileInputError(f"{self.prefix}: cannot create the output directory: {e}") from e
        self.fmt.validate()

    def create_writer(self, options: Any, job: Any) -> SinkWriter:
        from millstream.engine.model.options import StandardOptions

        batch = options is not None and not options.view_as(StandardOptions).streaming
        if self.prefix.startswith("gs://"):
            from millstream.connectors.files.gcs_sink import GcsSinkWriter

            return GcsSinkWriter(
                self.prefix,
                self.suffix,
                self.fmt,
                getattr(job, "job_name", "millstream"),
                self.num_shards,
                self.template,
                batch=batch,
            )
        return FileSinkWriter(
            self.prefix,
            self.suffix,
            self.fmt,
            getattr(job, "job_name", "millstream"),
            self.num_shards,
            self.template,
            batch=batch,
        )

    def display_name(self) -> str:
        return f"{self.name}({self.prefix}*{self.suffix})"


# Beam's runners write with Beam's WriteToText/WriteToAvro/WriteToParquet (connectors/files/beam_io.py; lazily).
register_beam_io(FileSink, "millstream.connectors.files.beam_io:write_files")
