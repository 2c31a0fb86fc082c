"""Google Cloud Storage (``gs://bucket/object``) as a `FileSystem`, through google-cloud-storage.

Why google-cloud-storage and not gcsfs: generation preconditions (``if_generation_match``) are arguments of
every call, which the exactly-once sink needs; it honours ``STORAGE_EMULATOR_HOST`` by itself (anonymous
credentials, plain HTTP) and otherwise takes Application Default Credentials; and it never probes the
bucket's type over gRPC (gcsfs waits 60 s on that probe before falling back unless told not to).

Globs have Beam's meaning: ``*`` and ``?`` stay within one ``/``-separated segment, ``**`` crosses them,
``[...]`` is a character class (``[!...]`` negated). Listing asks only for the prefix before the first glob
character. As with local folders, names with a segment starting with ``.`` are hidden (the sink's temporary
objects live under such a prefix). A path naming no object but a "folder" (prefix ending in ``/``) means the
objects directly in it.

Reads are ranged GETs pinned to the object's generation: if the object is overwritten or deleted while it is
read, the next read fails with `ObjectChangedError` (a `FileInputError`) instead of mixing two versions.
Example (needs a server: ``STORAGE_EMULATOR_HOST`` or credentials)::

    fs = GcsFileSystem()
    with fs.create("gs://my-bucket/in/a.txt") as f:
        f.write(b"hello\\n")
    [info.path for info in fs.match("gs://my-bucket/in/*.txt")]   # ['gs://my-bucket/in/a.txt']
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import threading
from typing import IO, Any

from millstream.connectors.files.filesystem import FileInputError
from millstream.connectors.files.schemes import FileInfo

__all__ = ["GcsFileSystem", "ObjectChangedError", "glob_regex", "split_path"]

#: Bytes fetched per ranged GET while reading.
READ_CHUNK = 8 << 20


class ObjectChangedError(FileInputError):
    """An object was overwritten or deleted while it was being read (its generation is gone)."""


def split_path(path: str) -> tuple[str, str]:
    """``gs://bucket/name`` -> (bucket, name); fails naming the path when there is no bucket."""
    if not path.startswith("gs://"):
        raise FileInputError(f"{path}: not a gs:// path")
    bucket, _, name = path[len("gs://") :].partition("/")
    if not bucket:
        raise FileInputError(f"{path}: a gs:// path needs a bucket: gs://BUCKET/OBJECT")
    return bucket, name


def has_glob(name: str) -> bool:
    """Whether an object name has glob characters."""
    return any(c in name for c in "*?[")


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Beam's glob over object names as a regex: ``*``/``?`` within a segment, ``**`` across them."""
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find(
                "]", i + 2 if pattern.startswith("[!", i) or pattern.startswith("[]", i) else i + 1
            )
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


class _RangeReader(io.RawIOBase):
    """A seekable raw reader of one object generation: each read is a ranged GET of that generation."""

    def __init__(self, blob: Any, size: int, path: str) -> None:
        self.blob = blob
        self.size = size
        self.path = path
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.size - self.pos)
        if n <= 0:
            return 0
        from google.api_core import exceptions as gexc

        try:
            data = self.blob.download_as_bytes(
                start=self.pos, end=self.pos + n - 1, raw_download=True, checksum=None
            )
        except gexc.NotFound as e:
            raise ObjectChangedError(
                f"{self.path}: the object was overwritten or deleted while being read (generation "
                f"{self.blob.generation} is gone, {self.pos} of {self.size} bytes read)"
            ) from e
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


class _UploadOnClose:
    """A local temporary file uploaded to its object when closed (the object appears whole, or not at all)."""

    def __init__(self, fs: GcsFileSystem, path: str) -> None:
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed with this writer
        self._fs = fs
        self._target = path
        self.closed = False

    def write(self, data: bytes) -> int:
        return self._spool.write(data)

    def flush(self) -> None:
        self._spool.flush()

    def tell(self) -> int:
        return self._spool.tell()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._spool.seek(0)
            self._fs.upload(self._target, self._spool)  # type: ignore[arg-type]
        finally:
            self._spool.close()

    def __enter__(self) -> _UploadOnClose:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.closed = True
            self._spool.close()


class GcsFileSystem:
    """``gs://`` paths on Cloud Storage or, with ``STORAGE_EMULATOR_HOST``, on an emulator."""

    scheme = "gs"

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The storage client, made on first use (ADC credentials, or anonymous against an emulator)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from google.cloud import storage

                    if os.environ.get("STORAGE_EMULATOR_HOST"):
                        from google.auth.credentials import AnonymousCredentials

                        self._client = storage.Client(
                            project=os.environ.get("GOOGLE_CLOUD_PROJECT", "millstream"),
                            credentials=AnonymousCredentials(),
                        )
                    else:
                        from google.auth.exceptions import DefaultCredentialsError

                        try:
                            self._client = storage.Client()
                        except DefaultCredentialsError as e:
                            raise FileInputError(
                                "gs://: no Google Cloud credentials found (Application Default Credentials): set "
                                "GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`; "
                                "for an emulator set STORAGE_EMULATOR_HOST"
                            ) from e
        return self._client

    def blob(self, path: str, generation: int | None = None) -> Any:
        """The client's blob object for `path` (no request is made)."""
        bucket, name = split_path(path)
        if not name:
            raise FileInputError(f"{path}: names a bucket, not an object")
        return self.client.bucket(bucket).blob(name, generation=generation)

    @staticmethod
    def _info(bucket: str, blob: Any) -> FileInfo:
        updated = blob.updated
        mtime = int(updated.timestamp() * 1_000_000_000) if updated is not None else 0
        return FileInfo(f"gs://{bucket}/{blob.name}", int(blob.size or 0), mtime, int(blob.generation))

    def list_objects(
        self, bucket: str, prefix: str, delimiter: str | None = None, start_offset: str | None = None
    ) -> list[Any]:
        """Every object under `prefix` (paged by the client: 1000 per request); with `start_offset`, only
        names that sort at or after it (the listing is in lexicographic order, so the server skips the rest)."""
        return list(
            self.client.list_blobs(bucket, prefix=prefix, delimiter=delimiter, start_offset=start_offset)
        )

    def match(self, pattern: str) -> list[FileInfo]:
        return self._match(pattern, None)

    def match_from(self, pattern: str, start: str) -> list[FileInfo]:
        """`match(pattern)` restricted to objects whose path sorts at or after `start` (a gs:// path in the
        same bucket): one listing request for what is new under a large prefix, instead of all of it."""
        bucket, _ = split_path(pattern)
        start_bucket, start_name = split_path(start)
        if start_bucket != bucket:
            raise FileInputError(f"{start}: a listing of {pattern} cannot start in another bucket")
        return self._match(pattern, start_name or None)

    def _match(self, pattern: str, start_offset: str | None) -> list[FileInfo]:
        bucket, name = split_path(pattern)
        from google.api_core import exceptions as gexc

        try:
            if has_glob(name):
                cut = min(i for i in (name.find("*"), name.find("?"), name.find("[")) if i >= 0)
                prefix = name[:cut]
                root = prefix[: prefix.rfind("/") + 1]
                rx = glob_regex(name)
                explicit_hidden = _hidden(name[len(root) :].replace("*", "x").replace("?", "x"))
                found = [
                    b
                    for b in self.list_objects(bucket, prefix, start_offset=start_offset)
                    if rx.match(b.name)
                    and not b.name.endswith("/")
                    and (explicit_hidden or not _hidden(b.name[len(root) :]))
                ]
            else:
                if name and not name.endswith("/"):
                    blob = self.client.bucket(bucket).get_blob(name)
                    if blob is not None:
                        return (
                            [self._info(bucket, blob)] if start_offset is None or name >= start_offset else []
                        )
                folder = name.rstrip("/") + "/" if name else ""
                found = [
                    b
                    for b in self.list_objects(bucket, folder, delimiter="/", start_offset=start_offset)
                    if not b.name.endswith("/") and not _hidden(b.name[len(folder) :])
                ]
        except gexc.NotFound as e:
            raise FileInputError(f"{pattern}: the bucket {bucket} does not exist") from e
        return sorted((self._info(bucket, b) for b in found), key=lambda i: i.path)

    def info(self, path: str) -> FileInfo | None:
        bucket, name = split_path(path)
        blob = self.client.bucket(bucket).get_blob(name)
        return None if blob is None else self._info(bucket, blob)

    def bucket_exists(self, bucket: str) -> bool:
        """Whether the bucket exists (one metadata request)."""
        return bool(self.client.bucket(bucket).exists())

    def missing_reason(self, pattern: str) -> str:
        bucket, name = split_path(pattern)
        if not self.bucket_exists(bucket):
            return f"the bucket {bucket} does not exist"
        return "the glob matches no objects" if has_glob(name) else "no such object or folder"

    def check_watchable(self, pattern: str) -> None:
        bucket, _ = split_path(pattern)
        if not self.bucket_exists(bucket):
            raise FileInputError(f"{pattern}: the bucket {bucket} does not exist")

    def open_read(self, path: str, generation: int | None = None) -> IO[bytes]:
        if generation is None:
            info = self.info(path)
            if info is None:
                raise FileNotFoundError(f"{path}: no such object")
            generation, size = info.generation, info.size
        else:
            blob = self.blob(path, generation)
            from google.api_core import exceptions as gexc

            try:
                blob.reload()
            except gexc.NotFound as e:
                raise ObjectChangedError(
                    f"{path}: generation {generation} is gone (overwritten or deleted)"
                ) from e
            size = int(blob.size or 0)
        raw = _RangeReader(self.blob(path, generation), size, path)
        return io.BufferedReader(raw, buffer_size=READ_CHUNK)

    def upload(
        self,
        path: str,
        data: IO[bytes],
        if_generation_match: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> int:
        """Upload `data` (from its current position) as `path`; returns the new generation.

        ``if_generation_match=0`` creates the object only if it does not exist (412 PreconditionFailed
        otherwise), which makes the sink's commit idempotent and fences zombie writers.
        """
        blob = self.blob(path)
        if metadata:
            blob.metadata = metadata
        blob.upload_from_file(
            data,
            if_generation_match=if_generation_match,
            rewind=False,
            content_type="application/octet-stream",
        )
        return int(blob.generation)

    def create(self, path: str) -> IO[bytes]:
        return _UploadOnClose(self, path)  # type: ignore[return-value]

    def delete(self, paths: list[str]) -> None:
        from google.api_core import exceptions as gexc

        for path in paths:
            try:
                self.blob(path).delete()
            except gexc.NotFound:
                pass

    def rename(self, sources: list[str], destinations: list[str]) -> None:
        # Cloud Storage has no rename: copy, then delete the source (as Beam's GCS filesystem does).
        for src, dst in zip(sources, destinations, strict=True):
            sb, sn = split_path(src)
            db, dn = split_path(dst)
            source_bucket = self.client.bucket(sb)
            source_bucket.copy_blob(source_bucket.blob(sn), self.client.bucket(db), dn)
            source_bucket.blob(sn).delete()
