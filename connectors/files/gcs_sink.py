"""The exactly-once file sink on Cloud Storage: temporary objects per epoch, committed under preconditions.

Object stores have no atomic rename, so `GcsSinkWriter` keeps `FileSinkWriter`'s protocol and names (module
doc of `sink`) with these steps:

* an epoch is encoded into local spool files (one per shard); `prepare` uploads each as a temporary object
  ``<dir>/.<base>.millstream-tmp/<tag>-<run>-<epoch>-<shard>.tmp`` with ``ifGenerationMatch=0`` and records
  ``[temporary object, final object, its generation]`` in the checkpoint;
* `commit` copies each temporary object's bytes to its final object by an upload with ``ifGenerationMatch=0``
  (the object is created only if it does not exist) carrying the temporary object's name and generation as
  metadata, then deletes the temporary object under ``ifGenerationMatch`` of its generation. A replayed
  commit finds the final object made from the same temporary object (412, same metadata) and only deletes;
  a zombie writer whose final object already exists from another writer fails loudly instead of
  overwriting. An upload, not a server-side copy: the test server (fake-gcs-server 1.56.1) enforces the
  precondition on uploads only, so this is the path whose fencing the tests prove (real GCS enforces it on
  copies too);
* after a successful commit, temporary objects of this sink not pending in a checkpoint of this writer
  (left by a killed run) are deleted; `recover` finishes the restored checkpoint's commit, deletes every
  temporary object of the sink and the committed objects of checkpoints newer than the restored one.
"""

from __future__ import annotations

import logging
import tempfile
from typing import IO, Any

import anyio

from millstream.connectors.files.gcs import GcsFileSystem, split_path
from millstream.connectors.files.sink import FileFormat, FileSinkWriter

log = logging.getLogger("millstream.files.gcs")

__all__ = ["CommitConflictError", "GcsSinkWriter"]

#: Custom metadata on a committed object: the temporary object (``path#generation``) it was made from.
SOURCE_KEY = "millstream-temp"


class CommitConflictError(RuntimeError):
    """A final object exists but was not made from this checkpoint's temporary object (another writer's)."""


class GcsSinkWriter(FileSinkWriter):
    """`FileSinkWriter` on ``gs://``: uploads temporary objects on prepare, commits by conditional upload."""

    def __init__(self, prefix: str, suffix: str, fmt: FileFormat, job_name: str, num_shards: int = 1,
                 shard_name_template: str = "-SSSSS-of-NNNNN", fs: GcsFileSystem | None = None) -> None:
        super().__init__(prefix, suffix, fmt, job_name, num_shards, shard_name_template)
        self.fs = fs or GcsFileSystem()
        self.directory, _, self.base = prefix.rpartition("/")
        self.tmp_dir = f"{self.directory}/.{self.base}.millstream-tmp"
        self.pending: set[str] = set()

    async def open(self) -> None:
        return None

    def _start_epoch(self) -> None:
        self.epoch_seq += 1
        self.rotation = 0
        for shard in range(self.num_shards):
            path = f"{self.tmp_dir}/{self.tag}-{self.run_token}-{self.epoch_seq}-{shard}.tmp"
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - held for the epoch
            self.tmp_paths.append(path)
            self.handles.append(spool)
            self.shards.append(self.fmt.open_shard(spool, shard, self.num_shards))

    async def prepare(self, checkpoint_id: int) -> Any:
        if not self.shards:
            return []
        for shard, writer in enumerate(self.shards):
            self.current_shard = shard
            writer.finish()
        spools, paths = list(self.handles), list(self.tmp_paths)

        def upload() -> list[int]:
            generations = []
            for spool, path in zip(spools, paths):
                spool.flush()
                spool.seek(0)
                generations.append(self.fs.upload(path, spool, if_generation_match=0))
            return generations

        try:
            generations = await anyio.to_thread.run_sync(upload)
        finally:
            for spool in spools:
                spool.close()
            self.shards, self.handles, self.tmp_paths = [], [], []
        self.pending.update(paths)
        return [[tmp, self.final_name(checkpoint_id, shard), gen]
                for shard, (tmp, gen) in enumerate(zip(paths, generations))]

    def _commit_one(self, checkpoint_id: int, tmp: str, final: str, generation: int) -> None:
        from google.api_core import exceptions as gexc

        source = f"{tmp}#{generation}"
        with tempfile.TemporaryFile() as spool:
            try:
                self.fs.blob(tmp, generation).download_to_file(spool, raw_download=True)
            except gexc.NotFound:
                if self.fs.info(final) is None:
                    raise FileNotFoundError(
                        f"cannot commit checkpoint {checkpoint_id}: neither {tmp} (generation {generation}) "
                        f"nor {final} exists"
                    ) from None
                return  # committed before, and the temporary object is already gone
            spool.seek(0)
            try:
                self.fs.upload(final, spool, if_generation_match=0, metadata={SOURCE_KEY: source})
            except gexc.PreconditionFailed:
                existing = self.fs.client.bucket(split_path(final)[0]).get_blob(split_path(final)[1])
                made_from = (existing.metadata or {}).get(SOURCE_KEY) if existing is not None else None
                if made_from != source:
                    raise CommitConflictError(
                        f"cannot commit checkpoint {checkpoint_id}: {final} already exists, made from "
                        f"{made_from or 'an unknown writer'}, not from {source}; another writer (a zombie "
                        "of this job?) committed it"
                    ) from None
        try:
            self.fs.blob(tmp).delete(if_generation_match=generation)
        except (gexc.NotFound, gexc.PreconditionFailed):
            pass

    def _sweep(self) -> None:
        """Delete this sink's temporary objects that no pending checkpoint of this writer needs."""
        bucket, name = split_path(self.tmp_dir)
        for blob in self.fs.list_objects(bucket, f"{name}/{self.tag}-"):
            path = f"gs://{bucket}/{blob.name}"
            if path not in self.pending:
                self.fs.delete([path])

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        entries = [(str(t), str(f), int(g)) for t, f, g in record or []]

        def run() -> None:
            for tmp, final, gen in entries:
                self._commit_one(checkpoint_id, tmp, final, gen)
                self.pending.discard(tmp)
            if entries:
                self._sweep()

        await anyio.to_thread.run_sync(run)

    def _committed(self) -> list[tuple[int, str]]:
        bucket, name = split_path(self.directory + "/")
        out = []
        for blob in self.fs.list_objects(bucket, name, delimiter="/"):
            m = self.committed.match(blob.name[len(name):])
            if m:
                out.append((int(m.group(1)), f"gs://{bucket}/{blob.name}"))
        return sorted(out)

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        if checkpoint_id is not None and record:
            await self.commit(checkpoint_id, record)
        restored = checkpoint_id or 0

        def clean() -> None:
            self.pending.clear()
            self._sweep()
            # After a fallback to an older checkpoint, output committed by newer ones is replayed: remove it.
            self.fs.delete([path for cid, path in self._committed() if cid > restored])

        await anyio.to_thread.run_sync(clean)

    async def committed_after(self, checkpoint_id: int) -> list[str]:
        found = await anyio.to_thread.run_sync(self._committed)
        return [path for cid, path in found if cid > checkpoint_id]

    async def abort(self) -> None:
        handles: list[IO[bytes]] = self.handles
        for spool in handles:
            spool.close()
        self.shards, self.handles, self.tmp_paths = [], [], []
