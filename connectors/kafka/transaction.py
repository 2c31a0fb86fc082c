"""One Kafka transaction per checkpoint epoch, shared by a run's exactly-once sinks on one cluster.

Begin, send, the consumed offsets inside the transaction, commit, and fencing of zombies; see
`millstream.connectors.kafka.sink` for the protocol.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from millstream.connectors.kafka.offsets import format_offset_metadata, parse_offset_metadata
from millstream.connectors.kafka.source import (
    JobKafka,
    KafkaSourceReader,
    close_when_task_ends,
)

log = logging.getLogger("millstream.kafka")


class KafkaTransactionError(RuntimeError):
    """A Kafka transaction could not be completed or repeated; the job must restart (and then recovers)."""


class KafkaFencedError(KafkaTransactionError):
    """Another instance of this shard (same transactional id) took over: this one must stop."""


@dataclass(frozen=True)
class Marker:
    """The newest commit of a transactional id, as found in the offset metadata."""

    seq: int
    checkpoint_id: int
    holder: str


def _fatal_record_error(e: BaseException) -> bool:
    """Errors that sending the epoch again cannot fix (bad records, authorisation, configuration)."""
    from aiokafka import errors

    fatal = (
        errors.MessageSizeTooLargeError,
        errors.TopicAuthorizationFailedError,
        errors.TransactionalIdAuthorizationFailed,
        errors.GroupAuthorizationFailedError,
        errors.ClusterAuthorizationFailedError,
        errors.InvalidTopicError,
        errors.RecordListTooLargeError,
        errors.CorruptRecordException,
        errors.InvalidTimestampError,
        TypeError,
        ValueError,
        AssertionError,
    )
    return isinstance(e, fatal)


class KafkaTransaction:
    """The producer shared by a run's Kafka sinks on one cluster: epochs, commits, markers, recovery."""

    def __init__(
        self,
        *,
        registry: JobKafka,
        cluster: str,
        kwargs: dict[str, Any],
        transactional_id: str,
        exactly_once: bool,
        group: str | None,
        group_sources: set[int],
        timeout_ms: int,
        max_replay_bytes: int,
    ) -> None:
        self.registry = registry
        self.cluster = cluster
        self.kwargs = kwargs
        self.transactional_id = transactional_id
        self.exactly_once = exactly_once
        #: The consumer group whose offsets ride in the transaction (None: markers only).
        self.group = group
        self.group_sources = group_sources
        self.marker_group = f"{transactional_id}.commits"
        self.timeout_ms = timeout_ms
        self.max_replay_bytes = max_replay_bytes
        self.topics: list[str] = []
        self.producer: Any = None
        self.admin: Any = None
        self.lock = asyncio.Lock()
        self.known: Marker | None = None
        self.markers_read = False
        self.claimed = False
        self.committed_seq = 0
        self.committed_cid: int | None = None
        self.in_txn = False
        #: Delivery futures of the epoch's batches (checked before the commit).
        self.futures: list[asyncio.Future[Any]] = []
        #: topic -> its partitions, sorted (refreshed every epoch, so added partitions get used).
        self.partitions: dict[str, list[int]] = {}
        self.key_hashes: dict[bytes, int] = {}
        self.replay: list[tuple[str, bytes | None, bytes | None, Any]] | None = []
        self.replay_bytes = 0
        self.pending_offsets: dict[Any, int] = {}
        self.closed = False
        self.bound = False
        #: Counters for tests and metrics.
        self.recoveries = 0
        self.transactions = 0

    # -- producer lifecycle -------------------------------------------------------------------------------------
    async def _start_producer(self) -> None:
        from aiokafka import AIOKafkaProducer

        kwargs = dict(self.kwargs)
        kwargs.setdefault("client_id", f"millstream-{self.transactional_id}")
        kwargs.setdefault("linger_ms", 5)
        kwargs.setdefault("max_batch_size", 256 << 10)
        if self.exactly_once:
            kwargs["transactional_id"] = self.transactional_id
            kwargs["transaction_timeout_ms"] = self.timeout_ms
        else:
            kwargs["enable_idempotence"] = True
        producer = AIOKafkaProducer(**kwargs)
        try:
            await producer.start()  # a transactional producer's start also fences older instances
        except Exception as e:
            await _quietly(producer.stop())
            raise KafkaTransactionError(
                f"Kafka producer {self.transactional_id} on {self.cluster} could not start: {type(e).__name__}: {e}"
                + (
                    " (is transaction.timeout.ms above the broker's transaction.max.timeout.ms?)"
                    if "InvalidTransactionTimeout" in type(e).__name__
                    else ""
                )
            ) from e
        self.producer = producer
        self.in_txn = False
        if not self.bound:
            self.bound = True
            close_when_task_ends(self.close)

    async def _ensure_producer(self) -> Any:
        if self.closed:
            raise KafkaTransactionError(f"the Kafka sink {self.transactional_id} is closed")
        if self.producer is None:
            await self._start_producer()
        return self.producer

    async def _close_producer(self) -> None:
        producer, self.producer = self.producer, None
        self.in_txn = False
        if producer is not None:
            await _quietly(producer.stop(), timeout=10.0)
            _retrieve_failures(producer)

    async def close(self) -> None:
        """Abort an open transaction and close the producer (idempotent)."""
        if self.closed:
            return
        if self.in_txn and self.producer is not None:
            await _quietly(self.producer.abort_transaction(), timeout=5.0)
        self.closed = True
        await self._close_producer()
        if self.admin is not None:
            admin, self.admin = self.admin, None
            await _quietly(admin.close(), timeout=5.0)

    # -- markers ------------------------------------------------------------------------------------------------
    async def _admin_client(self) -> Any:
        from aiokafka.admin import AIOKafkaAdminClient

        if self.admin is None:
            admin_keys = (
                "bootstrap_servers",
                "security_protocol",
                "ssl_context",
                "sasl_mechanism",
                "sasl_plain_username",
                "sasl_plain_password",
                "sasl_kerberos_service_name",
                "sasl_kerberos_domain_name",
                "sasl_oauth_token_provider",
                "request_timeout_ms",
            )
            kwargs = {k: v for k, v in self.kwargs.items() if k in admin_keys}
            admin = AIOKafkaAdminClient(**kwargs)
            await admin.start()
            self.admin = admin
        return self.admin

    async def read_marker(self, deadline_s: float = 60.0) -> Marker | None:
        """The newest commit of this transactional id (markers and source offsets), retried until `deadline_s`."""
        groups = [self.marker_group] + ([self.group] if self.group else [])
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                admin = await self._admin_client()
                best: Marker | None = None
                for group in groups:
                    offsets = await admin.list_consumer_group_offsets(group)
                    for om in offsets.values():
                        meta = parse_offset_metadata(getattr(om, "metadata", None))
                        if not meta or meta.get("txn") != self.transactional_id or "seq" not in meta:
                            continue
                        marker = Marker(int(meta["seq"]), int(meta.get("ckpt", 0)), meta.get("host", "?"))
                        if best is None or marker.seq > best.seq:
                            best = marker
                return best
            except Exception as e:
                if time.monotonic() > deadline:
                    raise KafkaTransactionError(
                        f"cannot read the commit markers of {self.transactional_id} on {self.cluster}: {e}"
                    ) from e
                log.warning("reading Kafka commit markers of %s: %s; retrying", self.transactional_id, e)
                if self.admin is not None:
                    admin, self.admin = self.admin, None
                    await _quietly(admin.close(), timeout=2.0)
                await asyncio.sleep(0.5)

    async def _ensure_markers(self) -> None:
        if self.markers_read:
            return
        await self._ensure_producer()  # first fence older instances: their transactions are then final
        self.known = await self.read_marker()
        self.committed_seq = self.known.seq if self.known is not None else 0
        self.markers_read = True

    async def committed_checkpoint(self) -> int | None:
        """The checkpoint Kafka committed for this transactional id (0: a claim of a fresh state), or None."""
        if not self.exactly_once:
            return None
        async with self.lock:
            await self._ensure_markers()
            return self.known.checkpoint_id if self.known is not None else None

    async def recover(self, checkpoint_id: int | None) -> None:
        """Check the restored checkpoint against Kafka's and claim the transactional id (once per run)."""
        if not self.exactly_once:
            return
        async with self.lock:
            if self.claimed:
                return
            await self._ensure_markers()
            known = self.known
            if checkpoint_id is not None and known is not None and known.checkpoint_id > checkpoint_id:
                raise KafkaTransactionError(
                    f"Kafka holds the output of checkpoint {known.checkpoint_id} of {self.transactional_id} "
                    f"(committed by {known.holder}), but the restored state is checkpoint {checkpoint_id}: the state "
                    "directory is older than the output (a backup? another shard's directory?); use the right "
                    "--state_dir, or --from_scratch to start over from the committed offsets"
                )
            await self._claim(checkpoint_id or 0)
            self.claimed = True

    async def _claim(self, checkpoint_id: int) -> None:
        from aiokafka import TopicPartition
        from aiokafka.structs import OffsetAndMetadata

        producer = await self._ensure_producer()
        topic = self.topics[0]
        await producer.partitions_for(topic)  # the marker's partition must exist (auto-creates if allowed)
        seq = self.committed_seq + 1
        meta = format_offset_metadata(checkpoint_id, self.transactional_id, seq)
        try:
            await producer.begin_transaction()
            self.in_txn = True
            await producer.send_offsets_to_transaction(
                {TopicPartition(topic, 0): OffsetAndMetadata(seq, meta)}, self.marker_group
            )
            await producer.commit_transaction()
        except Exception as e:
            from aiokafka.errors import ProducerFenced

            if isinstance(e, ProducerFenced):
                raise KafkaFencedError(
                    f"another instance took over Kafka transactional id {self.transactional_id} while this one "
                    "started (two processes with the same --shard_id?)"
                ) from e
            raise
        finally:
            self.in_txn = False
        self.committed_seq = seq
        self.committed_cid = checkpoint_id
        log.info("Kafka %s: claimed at checkpoint %d (seq %d)", self.transactional_id, checkpoint_id, seq)

    # -- epochs -------------------------------------------------------------------------------------------------
    async def send(self, records: list[tuple[str, bytes | None, bytes | None, Any]]) -> None:
        """Send serialised records (topic, key, value, headers) into the current epoch."""
        if not records:
            return
        async with self.lock:
            if self.replay is not None:
                self.replay.extend(records)
                self.replay_bytes += sum(len(k or b"") + len(v or b"") + 64 for _, k, v, _ in records)
                if self.replay_bytes > self.max_replay_bytes:
                    log.info(
                        "Kafka %s: the epoch exceeds max_replay_bytes=%d; it cannot be replayed after an "
                        "error (a restart recovers instead)",
                        self.transactional_id,
                        self.max_replay_bytes,
                    )
                    self.replay = None
            try:
                await self._send(records)
            except Exception as e:
                await self._recover_epoch(e, "write")

    async def _send(self, records: list[tuple[str, bytes | None, bytes | None, Any]]) -> None:
        """Append records to per-partition batches (Java's partitioning: murmur2 of the key) and queue them."""
        from aiokafka.partitioner import murmur2

        producer = await self._ensure_producer()
        if self.exactly_once and not self.in_txn:
            await producer.begin_transaction()
            self.in_txn = True
        builders: dict[tuple[str, int], Any] = {}
        hashes = self.key_hashes
        if len(hashes) > 200_000:
            hashes.clear()
        sticky: dict[str, int] = {}
        for topic, key, value, headers in records:
            parts = self.partitions.get(topic)
            if parts is None:
                parts = self.partitions[topic] = sorted(await producer.partitions_for(topic))
            if key is None:
                partition = sticky.get(topic)
                if partition is None:
                    partition = sticky[topic] = random.choice(parts)
            else:
                h = hashes.get(key)
                if h is None:
                    h = hashes[key] = murmur2(key) & 0x7FFFFFFF
                partition = parts[h % len(parts)]
            builder = builders.get((topic, partition))
            if builder is None:
                builder = builders[(topic, partition)] = producer.create_batch()
            if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
                self.futures.append(await producer.send_batch(builder, topic, partition=partition))
                builder = builders[(topic, partition)] = producer.create_batch()
                if builder.append(key=key, value=value, timestamp=None, headers=headers or []) is None:
                    from aiokafka.errors import MessageSizeTooLargeError

                    raise MessageSizeTooLargeError(
                        f"a record of {len(key or b'') + len(value or b'')} bytes does not fit in a batch "
                        "(max_batch_size)"
                    )
        for (topic, partition), builder in builders.items():
            self.futures.append(await producer.send_batch(builder, topic, partition=partition))

    async def _flush_checked(self) -> None:
        producer = self.producer
        if producer is None:
            return
        await producer.flush()
        futures, self.futures = self.futures, []
        if futures:
            results = await asyncio.gather(*futures, return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException):
                    raise r

    async def prepare(self, checkpoint_id: int) -> dict[str, Any]:
        """Flush the epoch (checking every send) and note the source offsets the checkpoint covers."""
        async with self.lock:
            try:
                await self._flush_checked()
            except Exception as e:
                if not self.exactly_once:
                    raise KafkaTransactionError(
                        f"Kafka sink {self.transactional_id}: a send failed: {e}"
                    ) from e
                await self._recover_epoch(e, "prepare")
            self.pending_offsets = self._source_offsets()
            return {"txn": self.transactional_id, "epoch_records": len(self.replay or ())}

    def _source_offsets(self) -> dict[Any, int]:
        if not self.exactly_once or self.group is None:
            return {}
        offsets: dict[Any, int] = {}
        for source_id in self.group_sources:
            reader = self.registry.readers.get(source_id)
            if reader is not None:
                offsets.update(reader.offsets())
        return offsets

    def takes_offsets_of(self, reader: KafkaSourceReader) -> bool:
        """Whether the reader's offsets are committed inside this transaction."""
        return self.exactly_once and id(reader.source) in self.group_sources

    def _offsets_for(self, checkpoint_id: int, seq: int) -> tuple[dict[Any, Any], str]:
        from aiokafka import TopicPartition
        from aiokafka.structs import OffsetAndMetadata

        meta = format_offset_metadata(checkpoint_id, self.transactional_id, seq)
        if self.group is not None and self.pending_offsets:
            return {
                tp: OffsetAndMetadata(offset, meta) for tp, offset in self.pending_offsets.items()
            }, self.group
        return {TopicPartition(self.topics[0], 0): OffsetAndMetadata(seq, meta)}, self.marker_group

    async def commit(self, checkpoint_id: int) -> None:
        """Commit the epoch sealed by `prepare(checkpoint_id)` with the offsets and marker (idempotent)."""
        async with self.lock:
            if self.committed_cid == checkpoint_id:
                return
            if not self.exactly_once:
                self.committed_cid = checkpoint_id
                self._epoch_done()
                return
            seq = self.committed_seq + 1
            try:
                await self._commit(checkpoint_id, seq)
            except Exception as e:
                await self._recover_epoch(e, "commit", checkpoint_id, seq)
            self.committed_seq = seq
            self.committed_cid = checkpoint_id
            self.transactions += 1
            self._epoch_done()

    async def _commit(self, checkpoint_id: int, seq: int) -> None:
        producer = await self._ensure_producer()
        if not self.in_txn:
            await producer.begin_transaction()
            self.in_txn = True
        offsets, group = self._offsets_for(checkpoint_id, seq)
        await producer.send_offsets_to_transaction(offsets, group)
        await producer.commit_transaction()
        self.in_txn = False

    def _epoch_done(self) -> None:
        self.partitions = {}
        self.replay = []
        self.replay_bytes = 0
        self.futures = []
        self.pending_offsets = {}

    async def abort(self) -> None:
        """Abort the open transaction (a cancelled job): its records never become visible."""
        async with self.lock:
            if self.exactly_once and self.in_txn and self.producer is not None:
                await _quietly(self.producer.abort_transaction(), timeout=10.0)
                self.in_txn = False
            self._epoch_done()

    # -- recovery from a failed transaction ---------------------------------------------------------------------
    async def _recover_epoch(
        self, error: BaseException, stage: str, checkpoint_id: int | None = None, seq: int | None = None
    ) -> None:
        """Make a new producer and repeat the epoch in a new transaction (see the module docstring)."""
        if not self.exactly_once or _fatal_record_error(error):
            raise error
        deadline = time.monotonic() + max(60.0, 2 * self.timeout_ms / 1000)
        while True:
            self.recoveries += 1
            log.warning(
                "Kafka transaction %s failed during %s (%s: %s): making a new producer and repeating "
                "the epoch",
                self.transactional_id,
                stage,
                type(error).__name__,
                error,
            )
            self._check_not_replaced(await self.read_marker(), stage, seq)
            await self._close_producer()
            try:
                await self._start_producer()
                marker = await self.read_marker()
                if stage == "commit" and marker is not None and marker.seq == seq:
                    log.info(
                        "Kafka %s: the commit of checkpoint %s had reached the broker",
                        self.transactional_id,
                        checkpoint_id,
                    )
                    return
                self._check_not_replaced(marker, stage, seq)
                if self.replay is None:
                    raise KafkaTransactionError(
                        f"the Kafka transaction of {self.transactional_id} failed ({type(error).__name__}: {error}) "
                        "and its epoch is larger than max_replay_bytes, so it cannot be repeated; restart the job "
                        "(it resumes from the last checkpoint Kafka committed)"
                    ) from error
                self.futures = []
                await self._send(list(self.replay))
                if stage in ("prepare", "commit"):
                    await self._flush_checked()
                if stage == "commit":
                    assert checkpoint_id is not None and seq is not None
                    await self._commit(checkpoint_id, seq)
                return
            except KafkaTransactionError:
                raise
            except Exception as e:
                if _fatal_record_error(e):
                    raise
                if time.monotonic() > deadline:
                    raise KafkaTransactionError(
                        f"the Kafka transaction of {self.transactional_id} kept failing: {type(e).__name__}: {e}"
                    ) from e
                error = e
                await asyncio.sleep(0.5)

    def _check_not_replaced(self, marker: Marker | None, stage: str, seq: int | None) -> None:
        if marker is None or marker.seq <= self.committed_seq:
            return
        if stage == "commit" and marker.seq == seq:
            return
        raise KafkaFencedError(
            f"another instance ({marker.holder}) took over Kafka transactional id {self.transactional_id} and "
            f"committed checkpoint {marker.checkpoint_id}; this process stops (is a second process running with the "
            "same --shard_id?)"
        )


def _retrieve_failures(producer: Any) -> None:
    """Mark a discarded producer's failed transaction future as seen (its error was handled here), so asyncio
    does not log "Future exception was never retrieved" for it."""
    waiter = getattr(getattr(producer, "_txn_manager", None), "_transaction_waiter", None)
    if isinstance(waiter, asyncio.Future) and waiter.done() and not waiter.cancelled():
        waiter.exception()


async def _quietly(awaitable: Any, timeout: float = 10.0) -> None:
    """Await a clean-up step, ignoring its failure (and giving up after `timeout`)."""
    try:
        await asyncio.wait_for(awaitable, timeout=timeout)
    except Exception:
        log.debug("Kafka clean-up step failed", exc_info=True)
