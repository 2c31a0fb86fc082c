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

A bounded run ends with Beam's batch names, as on local files (`sink` module doc): its final checkpoint
(`prepare_end_of_input`) records, per shard, the target object and the committed per-checkpoint objects that
make it up. The commit downloads the parts, concatenates them with `FileFormat.concat` (one header, footer,
compressed stream, Avro or Parquet file) and uploads the target with ``ifGenerationMatch=0``, carrying an
identity of the merge (checkpoint id and parts) as metadata, then deletes the parts. Download and upload, not
``compose``: compose cannot drop repeated headers or merge Parquet/Avro, and the test server does not enforce
the precondition on it. A replayed commit whose target exists with the same identity only deletes leftover
parts; one with another identity fails with `CommitConflictError`. A new run of a bounded job deletes the
earlier batch objects first, as Beam overwrites its output.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
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

    def __init__(
        self,
        prefix: str,
        suffix: str,
        fmt: FileFormat,
        job_name: str,
        num_shards: int = 1,
        shard_name_template: str = "-SSSSS-of-NNNNN",
        fs: GcsFileSystem | None = None,
        batch: bool = False,
    ) -> None:
        super().__init__(prefix, suffix, fmt, job_name, num_shards, shard_name_template, batch=batch)
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
        return [
            [tmp, self.final_name(checkpoint_id, shard), gen]
            for shard, (tmp, gen) in enumerate(zip(paths, generations))
        ]

    def _commit_one(
        self, checkpoint_id: int, tmp: str, final: str, generation: int, merged: bool = False
    ) -> None:
        """Commit one temporary object; `merged`: its final object may be gone already, merged into a batch one."""
        from google.api_core import exceptions as gexc

        source = f"{tmp}#{generation}"
        with tempfile.TemporaryFile() as spool:
            try:
                self.fs.blob(tmp, generation).download_to_file(spool, raw_download=True)
            except gexc.NotFound:
                if self.fs.info(final) is None and not merged:
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
        if isinstance(record, dict):  # the final checkpoint of a completed bounded run
            if not record.get("completed"):
                await anyio.to_thread.run_sync(self._commit_end_of_input, checkpoint_id, record)
            self.completed = True
            return
        entries = [(str(t), str(f), int(g)) for t, f, g in record or []]

        def run() -> None:
            for tmp, final, gen in entries:
                self._commit_one(checkpoint_id, tmp, final, gen)
                self.pending.discard(tmp)
            if entries:
                self._sweep()

        await anyio.to_thread.run_sync(run)

    async def prepare_end_of_input(self, checkpoint_id: int) -> Any:
        """The last epoch of a completed bounded run, and the parts of each shard's batch-named object."""
        epoch = await self.prepare(checkpoint_id)
        if not self.batch:
            return epoch
        if self.completed:  # a restart finished the completion; this run read nothing more
            return {"completed": True}
        this = {final for _, final, _ in epoch}
        listed = await anyio.to_thread.run_sync(self._committed)
        merge = []
        for shard in range(self.num_shards):
            name = re.compile(
                re.escape(self.base)
                + r"-c(\d{8,})"
                + re.escape(self.shard_name(shard, self.num_shards))
                + re.escape(self.suffix)
                + "$"
            )
            parts = {
                (cid, path)
                for cid, path in listed
                if name.match(path.rpartition("/")[2]) and (cid < checkpoint_id or path in this)
            }
            final_part = self.final_name(checkpoint_id, shard)
            if final_part in this:
                parts.add((checkpoint_id, final_part))
            merge.append([self.batch_name(shard), [path for _, path in sorted(parts)]])
        return {"epoch": epoch, "merge": merge}

    def _commit_end_of_input(self, checkpoint_id: int, record: dict[str, Any]) -> None:
        for tmp, final, gen in record["epoch"]:
            self._commit_one(checkpoint_id, str(tmp), str(final), int(gen), merged=True)
            self.pending.discard(str(tmp))
        for shard, (target, parts) in enumerate(record["merge"]):
            self._finish_object(checkpoint_id, shard, str(target), [str(p) for p in parts])
        self._sweep()

    def _finish_object(self, checkpoint_id: int, shard: int, target: str, parts: list[str]) -> None:
        """Give one shard of a completed bounded run its batch-named object (idempotent: module doc)."""
        from google.api_core import exceptions as gexc

        identity = (
            f"merge-{checkpoint_id}-" + hashlib.sha1("\n".join([target, *parts]).encode()).hexdigest()[:16]
        )
        present = [p for p in parts if self.fs.info(p) is not None]
        if len(present) < len(parts):
            made_from = self._made_from(target)
            if made_from is None:
                raise FileNotFoundError(
                    f"cannot finish {target}: parts of it are missing and it does not exist"
                )
            self._check_identity(checkpoint_id, target, made_from, identity)
            self.fs.delete(present)  # the merge was uploaded; a crash stopped the clean-up
            return
        with (
            tempfile.TemporaryDirectory(prefix="millstream-merge-") as local,
            tempfile.TemporaryFile() as spool,
        ):
            copies = []
            for i, part in enumerate(parts):
                copy = os.path.join(local, f"{i:06d}-{part.rpartition('/')[2]}")
                with open(copy, "wb") as f:
                    self.fs.blob(part).download_to_file(f, raw_download=True)
                copies.append(copy)
            self.current_shard = shard
            if len(copies) == 1:
                with open(copies[0], "rb") as f:
                    shutil.copyfileobj(f, spool)
            elif copies:
                self.fmt.concat(copies, spool)
            else:  # no record for this shard: Beam writes the (empty) file all the same
                try:
                    self.fmt.open_shard(spool, shard, self.num_shards).finish()
                except ValueError as e:  # e.g. Parquet without a schema and no record to infer one from
                    log.warning("%s: not written: %s", target, e)
                    return
            spool.flush()
            spool.seek(0)
            try:
                self.fs.upload(target, spool, if_generation_match=0, metadata={SOURCE_KEY: identity})
            except gexc.PreconditionFailed:
                self._check_identity(checkpoint_id, target, self._made_from(target), identity)
        self.fs.delete(parts)

    def _made_from(self, path: str) -> str | None:
        """The identity recorded on a committed object ("" without one), None when it does not exist."""
        bucket, name = split_path(path)
        existing = self.fs.client.bucket(bucket).get_blob(name)
        return None if existing is None else str((existing.metadata or {}).get(SOURCE_KEY, ""))

    @staticmethod
    def _check_identity(checkpoint_id: int, target: str, made_from: str | None, identity: str) -> None:
        if made_from != identity:
            raise CommitConflictError(
                f"cannot commit checkpoint {checkpoint_id}: {target} already exists, made by "
                f"{made_from or 'an unknown writer'}, not by {identity}; another writer (a zombie of this job?) "
                "wrote it"
            )

    def _committed(self) -> list[tuple[int, str]]:
        bucket, name = split_path(self.directory + "/")
        out = []
        for blob in self.fs.list_objects(bucket, name, delimiter="/"):
            m = self.committed.match(blob.name[len(name) :])
            if m:
                out.append((int(m.group(1)), f"gs://{bucket}/{blob.name}"))
        return sorted(out)

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        if checkpoint_id is not None and record:
            await self.commit(checkpoint_id, record)
        restored = checkpoint_id or 0

        def clean() -> None:
            if self.batch and not self.completed:
                # a run that starts (afresh or resumed) and has not completed yet: Beam overwrites the output
                self.fs.delete([self.batch_name(shard) for shard in range(self.num_shards)])
            self.pending.clear()
            self._sweep()
            # After a fallback to an older checkpoint, output committed by newer ones is replayed: remove it.
            self.fs.delete([path for cid, path in self._committed() if cid > restored])

        await anyio.to_thread.run_sync(clean)

    async def committed_after(self, checkpoint_id: int) -> list[str]:
        found = await anyio.to_thread.run_sync(self._committed)
        return [path for cid, path in found if cid > checkpoint_id]

    async def close(self) -> None:
        await self.abort()  # object stores have no folders to remove

    async def abort(self) -> None:
        handles: list[IO[bytes]] = self.handles
        for spool in handles:
            spool.close()
        self.shards, self.handles, self.tmp_paths = [], [], []
