"""The Kafka source (aiokafka): manually assigned partitions per shard, checkpointed offsets, event time.

Reading
-------
`KafkaSource` reads topics (a list, or a regular expression) with **manually assigned** partitions: a pipeline
process is one *shard* of its job (``--shard_id=i --num_shards=n``, default 0 of 1) and reads partition ``p`` of
every topic exactly when ``p % n == i``. Every partition is one split ("topic/partition") with its own
watermark estimator in the runtime (bounded out-of-orderness, idleness), so the source watermark is the minimum
over the shard's partitions. A split's position is the offset of the next record to read; a checkpoint stores
them and a restore seeks to them. Partitions without a checkpointed position start at the consumer group's
committed offset, else at ``auto.offset.reset`` (Kafka's default ``latest``; the resolved offset is recorded at
once, so a restart never skips what arrived meanwhile). Partitions added later (more partitions, or a new
topic matching the pattern) are found every 30 s and read from their committed offset, else from the start.

Why shards and not consumer-group rebalancing: keyed state (open windows, timers) lives in the process's
RocksDB state directory. If a rebalance moved a partition to another process, that process would lack the
state of the partition's keys (open windows would lose what the old owner had aggregated), and aiokafka's
transactional offset commit (TxnOffsetCommit v0, see tests/infra/kafka/COMPATIBILITY.md) cannot fence a
stale member of the group, only an older producer with the same transactional id. With fixed shards, a
partition's records and its keys' state always belong to the same shard, and the shard's transactional id
fences its own zombies. A failed shard's partitions wait until the shard is restarted with its state
directory (systemd, Kubernetes); the other shards go on. ``--num_shards`` cannot change for existing state.

Event time is the record's timestamp (``timestamp_policy="create_time"``, or ``"log_append_time"``, which
requires the topic's ``message.timestamp.type=LogAppendTime``) unless the `Read` has a ``timestamp_fn``.
Values are ``(key, value)`` pairs as Beam's ReadFromKafka gives them, or `KafkaRecord` with ``with_metadata``.
A record whose key or value the deserializer rejects (or without a timestamp) is a dead letter
``{"topic", "partition", "offset", "timestamp", "key", "raw", "reason", "split"}``.

Offsets are never auto-committed. With an exactly-once Kafka sink on the same cluster, the sink commits the
consumed offsets inside its transaction (`millstream.connectors.kafka.sink`); otherwise the reader commits
them to the group once the checkpoint covering them is durable (for monitoring and a fresh start's position;
exactly-once rests on the checkpointed positions, not on these commits). The offset metadata names the
checkpoint: ``millstream/1 ckpt=<id>`` (plus ``txn=`` and ``seq=`` when written by a transaction).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from millstream.connectors.kafka.config import (
    KafkaConfigError,
    cluster_key,
    consumer_kwargs,
    job_name_of,
    shard_of,
)
from millstream.connectors.kafka.offsets import format_offset_metadata
from millstream.connectors.kafka.serde import (
    resolve_deserializer,
)
from millstream.engine.model.io import Source, SourceBatch, SourceReader
from millstream.engine.translate.beam.hooks import register_beam_io

log = logging.getLogger("millstream.kafka")

__all__ = ["KafkaRecord", "KafkaSource", "KafkaSourceReader"]

#: Seconds between looks for new partitions and topics.
DISCOVERY_INTERVAL_S = 30.0
#: How long one `read` waits for records before it returns an empty batch (checkpoints must not wait).
POLL_MS = 100
#: Kafka's record timestamp types.
CREATE_TIME, LOG_APPEND_TIME = 0, 1
#: The key in a reader's positions that records which shard wrote them.
SHARD_KEY = "@shard"


@dataclass(slots=True)
class KafkaRecord:
    """A record with its metadata (``with_metadata=True``), shaped like Beam's KafkaRecord."""

    topic: str
    partition: int
    offset: int
    #: Milliseconds since the epoch (create or log-append time, see `timestamp_type`).
    timestamp: int
    #: 0 = CreateTime, 1 = LogAppendTime.
    timestamp_type: int
    key: Any
    value: Any
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class JobKafka:
    """Kafka readers and transactions of one pipeline run (found through the run's options object)."""

    def __init__(self, plan: Any) -> None:
        self.plan = plan
        #: id(KafkaSource) -> the reader of this run.
        self.readers: dict[int, KafkaSourceReader] = {}
        #: cluster key -> the shared transaction of the run's exactly-once sinks on that cluster.
        self.txns: dict[str, Any] = {}


_JOBS: dict[int, tuple[Any, JobKafka]] = {}


def job_kafka(options: Any, plan: Any = None) -> JobKafka:
    """The registry of the run using `options`; a sink passing a new `plan` starts a fresh one."""
    entry = _JOBS.get(id(options))
    if entry is not None and entry[0] is options and (plan is None or entry[1].plan is plan):
        return entry[1]
    registry = JobKafka(plan)
    _JOBS[id(options)] = (options, registry)
    return registry


def close_when_task_ends(closer: Callable[[], Any]) -> None:
    """Run the coroutine function `closer` when the current task ends: the backstop for clients the runtime
    does not close itself (a transaction's producer) and for a task that ends before the executor closes its
    readers (`close` is idempotent)."""
    try:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return

    def done(_: Any) -> None:
        if loop.is_closed():
            return
        try:
            loop.create_task(closer())
        except RuntimeError:  # the loop is shutting down: nothing left to close for
            pass

    if task is not None:
        task.add_done_callback(done)


TIMESTAMP_POLICIES = {
    "create_time": CREATE_TIME,
    "CreateTime": CREATE_TIME,
    "log_append_time": LOG_APPEND_TIME,
    "LogAppendTime": LOG_APPEND_TIME,
}


class KafkaSource(Source):
    """Topics of one cluster, read by the shard's partitions (see the module docstring)."""

    is_bounded = False
    stamps_event_time = True
    #: Beam's expansion service (``host:port``) when the pipeline runs on a Beam runner; None: Beam's default.
    expansion_service: Any = None

    def __init__(
        self,
        *,
        bootstrap_servers: str | None = None,
        topics: Sequence[str] | str | None = None,
        topic_pattern: str | None = None,
        consumer_config: Mapping[str, Any] | None = None,
        key_deserializer: Any = None,
        value_deserializer: Any = None,
        with_metadata: bool = False,
        timestamp_policy: str = "create_time",
    ) -> None:
        if isinstance(topics, str):
            topics = [topics]
        self.topics = list(topics or [])
        self.topic_pattern = topic_pattern
        if bool(self.topics) == bool(topic_pattern):
            raise KafkaConfigError("ReadFromKafka needs either topics= or topic_pattern= (not both)")
        self.pattern = re.compile(topic_pattern) if topic_pattern else None
        self.consumer_config = dict(consumer_config or {})
        self.kwargs = consumer_kwargs(self.consumer_config, bootstrap_servers)
        self.bootstrap = self.kwargs["bootstrap_servers"]
        self.cluster = cluster_key(self.bootstrap)
        self.key_deserializer = resolve_deserializer(key_deserializer, "key_deserializer")
        self.value_deserializer = resolve_deserializer(value_deserializer, "value_deserializer")
        self.with_metadata = with_metadata
        if timestamp_policy == "ProcessingTime":
            raise KafkaConfigError(
                "timestamp_policy='ProcessingTime' is not supported: event time never comes from processing "
                "time here; use 'create_time' or 'log_append_time', or timestamp_fn="
            )
        if timestamp_policy not in TIMESTAMP_POLICIES:
            raise KafkaConfigError(
                f"timestamp_policy={timestamp_policy!r}: use 'create_time' or 'log_append_time'"
            )
        self.timestamp_type = TIMESTAMP_POLICIES[timestamp_policy]

    def group_id(self, options: Any) -> str:
        """The consumer group: ``group.id`` of the config, else the job's name."""
        return str(self.kwargs.get("group_id") or job_name_of(options))

    def create_reader(self, options: Any) -> SourceReader:
        from millstream.engine.model.options import MillstreamOptions

        batch_size = int(options.view_as(MillstreamOptions).batch_size)
        return KafkaSourceReader(self, options, batch_size)

    def display_name(self) -> str:
        what = ",".join(self.topics) if self.topics else f"/{self.topic_pattern}/"
        return f"Kafka({what})"


def _split(tp: Any) -> str:
    return f"{tp.topic}/{tp.partition}"


class KafkaSourceReader(SourceReader):
    """Reads the shard's partitions with one aiokafka consumer; one split per partition."""

    def __init__(self, source: KafkaSource, options: Any, batch_size: int) -> None:
        self.source = source
        self.options = options
        self.batch_size = max(1, batch_size)
        self.shard, self.num_shards = shard_of(options)
        self.group = source.group_id(options)
        self.consumer: Any = None
        self.assigned_partitions: list[Any] = []
        #: split -> offset of the next record to hand out (positions).
        self.pos: dict[str, int] = {}
        self.tp_of: dict[str, Any] = {}
        self.queue: deque[tuple[Any, list[Any]]] = deque()
        self.announce: deque[str] = deque()
        self.next_discovery = 0.0
        self.read_committed = source.kwargs.get("isolation_level") == "read_committed"
        self.closed = False

    # -- lifecycle ----------------------------------------------------------------------------------------------
    async def open(self, positions: dict[str, Any] | None) -> None:
        from aiokafka import AIOKafkaConsumer

        restored = dict(positions or {})
        recorded = restored.pop(SHARD_KEY, None)
        if recorded is not None and list(recorded) != [self.shard, self.num_shards]:
            raise KafkaConfigError(
                f"the checkpoint was written as shard {recorded[0]} of {recorded[1]}, this process is shard "
                f"{self.shard} of {self.num_shards}: keyed state cannot move between shards; keep --shard_id and "
                "--num_shards, or start over with --from_scratch"
            )
        kwargs = dict(self.source.kwargs)
        kwargs["group_id"] = self.group
        kwargs["enable_auto_commit"] = False
        kwargs.setdefault("client_id", f"millstream-{self.group}-{self.shard}")
        self.consumer = AIOKafkaConsumer(**kwargs)
        await self.consumer.start()
        close_when_task_ends(self.close)
        self.pos = {k: int(v) for k, v in restored.items()}
        await self._assign(initial=True)
        job_kafka(self.options).readers[id(self.source)] = self

    async def close(self) -> None:
        if self.closed or self.consumer is None:
            return
        self.closed = True
        try:
            await self.consumer.stop()
        except Exception:  # closing is best effort
            log.debug("closing the Kafka consumer", exc_info=True)

    # -- assignment ---------------------------------------------------------------------------------------------
    async def _assign(self, initial: bool) -> None:
        from aiokafka import TopicPartition

        consumer = self.consumer
        # aiokafka's public partitions_for_topic knows only assigned topics: read the cluster's metadata.
        cluster = await consumer._client.fetch_all_metadata()
        if self.source.pattern is None:
            topics = list(self.source.topics)
        else:
            pattern = self.source.pattern
            topics = sorted(t for t in cluster.topics() if pattern.fullmatch(t) and not t.startswith("__"))
        wanted: list[Any] = []
        for topic in topics:
            parts = cluster.partitions_for_topic(topic)
            if not parts:
                if initial and self.source.pattern is None:
                    raise KafkaConfigError(f"Kafka topic {topic!r} does not exist on {self.source.bootstrap}")
                continue
            wanted.extend(
                TopicPartition(topic, p) for p in sorted(parts) if p % self.num_shards == self.shard
            )
        if not initial and set(wanted) == set(self.assigned_partitions):
            return
        new = [tp for tp in wanted if _split(tp) not in self.pos]
        self.assigned_partitions = wanted
        self.tp_of = {_split(tp): tp for tp in wanted}
        self.queue.clear()  # re-assigning resets the fetch positions: records queued now come again
        consumer.assign(wanted)
        for tp in wanted:
            offset = self.pos.get(_split(tp))
            if offset is not None:
                consumer.seek(tp, offset)
        if new and not initial:
            # A partition that appeared while running is read from its committed offset, else from its start.
            for tp in new:
                committed = await consumer.committed(tp)
                if committed is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
        for tp in new:
            # Resolve committed offset / auto.offset.reset now, so a checkpoint records a concrete position.
            self.pos[_split(tp)] = int(await consumer.position(tp))
            log.info("Kafka %s: reading %s from offset %d", self.group, _split(tp), self.pos[_split(tp)])
        self.announce.extend(_split(tp) for tp in (wanted if initial else new))
        self.next_discovery = time.monotonic() + DISCOVERY_INTERVAL_S

    # -- reading ------------------------------------------------------------------------------------------------
    async def read(self) -> SourceBatch | None:
        if self.announce:  # every assigned partition holds the watermark from the start, data or not
            return SourceBatch(self.announce.popleft(), [])
        if self.queue:
            return self._next_batch()
        if time.monotonic() >= self.next_discovery:
            try:
                await asyncio.wait_for(self._assign(initial=False), timeout=0.5)
            except Exception as e:  # discovery is retried later (timeouts included)
                log.debug("Kafka partition discovery: %s", e)
                self.next_discovery = time.monotonic() + DISCOVERY_INTERVAL_S
            if self.announce:
                return SourceBatch(self.announce.popleft(), [])
        if self.assigned_partitions:
            data = await self.consumer.getmany(timeout_ms=POLL_MS, max_records=self.batch_size)
            for tp, records in data.items():
                if records:
                    self.queue.append((tp, records))
            if self.queue:
                return self._next_batch()
            return SourceBatch(_split(self.assigned_partitions[0]), [])
        await asyncio.sleep(POLL_MS / 1000)
        return SourceBatch(f"{self.source.display_name()}/unassigned", [])

    def _next_batch(self) -> SourceBatch:
        tp, records = self.queue.popleft()
        split = _split(tp)
        source = self.source
        kd, vd = source.key_deserializer, source.value_deserializer
        errors: list[dict[str, Any]] = []
        ts_type = source.timestamp_type
        values: list[Any]
        timestamps: list[int]
        try:
            if ts_type == LOG_APPEND_TIME and any(r.timestamp_type != LOG_APPEND_TIME for r in records):
                raise KafkaConfigError(
                    f"timestamp_policy='log_append_time' but topic {tp.topic!r} stores CreateTime timestamps; "
                    "set message.timestamp.type=LogAppendTime on the topic or use 'create_time'"
                )
            timestamps = [r.timestamp * 1000 for r in records]
            if min(timestamps) < 0:
                raise ValueError("a record has no timestamp")
            if source.with_metadata:
                values = [
                    KafkaRecord(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.timestamp,
                        r.timestamp_type,
                        r.key if kd is None else kd(r.key),
                        r.value if vd is None else vd(r.value),
                        list(r.headers),
                    )
                    for r in records
                ]
            elif kd is None and vd is None:
                values = [(r.key, r.value) for r in records]
            elif kd is None and vd is not None:
                values = [(r.key, vd(r.value)) for r in records]
            elif kd is not None and vd is None:
                values = [(kd(r.key), r.value) for r in records]
            else:
                assert kd is not None and vd is not None
                values = [(kd(r.key), vd(r.value)) for r in records]
        except KafkaConfigError:
            raise
        except Exception:
            values, timestamps, errors = self._decode_slowly(records, split)
        self.pos[split] = records[-1].offset + 1
        nbytes = sum(
            [r.serialized_key_size + r.serialized_value_size for r in records]
        )  # a null key counts -1
        return SourceBatch(split, values, timestamps, errors, nbytes=nbytes)

    def _decode_slowly(
        self, records: list[Any], split: str
    ) -> tuple[list[Any], list[int], list[dict[str, Any]]]:
        source = self.source
        kd, vd = source.key_deserializer, source.value_deserializer
        values: list[Any] = []
        timestamps: list[int] = []
        errors: list[dict[str, Any]] = []

        def bad(r: Any, reason: str) -> None:
            errors.append(
                {
                    "topic": r.topic,
                    "partition": r.partition,
                    "offset": r.offset,
                    "timestamp": r.timestamp,
                    "key": r.key,
                    "raw": r.value,
                    "headers": list(r.headers),
                    "reason": reason,
                    "split": split,
                }
            )

        for r in records:
            if r.timestamp < 0:
                bad(r, "the record has no timestamp")
                continue
            try:
                key = r.key if kd is None else kd(r.key)
            except Exception as e:
                bad(r, f"key: {type(e).__name__}: {e}")
                continue
            try:
                value = r.value if vd is None else vd(r.value)
            except Exception as e:
                bad(r, f"value: {type(e).__name__}: {e}")
                continue
            if source.with_metadata:
                values.append(
                    KafkaRecord(
                        r.topic,
                        r.partition,
                        r.offset,
                        r.timestamp,
                        r.timestamp_type,
                        key,
                        value,
                        list(r.headers),
                    )
                )
            else:
                values.append((key, value))
            timestamps.append(r.timestamp * 1000)
        return values, timestamps, errors

    # -- positions, backlog, commits ----------------------------------------------------------------------------
    def positions(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.pos)
        out[SHARD_KEY] = [self.shard, self.num_shards]
        return out

    def offsets(self) -> dict[Any, int]:
        """TopicPartition -> next offset, for the shard's assigned partitions (what a checkpoint covers)."""
        return {tp: self.pos[s] for s, tp in self.tp_of.items() if s in self.pos}

    def backlog(self) -> int | None:
        if self.consumer is None or not self.assigned_partitions:
            return None
        total = 0
        known = False
        for split, tp in self.tp_of.items():
            end = self.consumer.last_stable_offset(tp) if self.read_committed else self.consumer.highwater(tp)
            if end is None:
                continue
            known = True
            total += max(0, end - self.pos.get(split, end))
        return total if known else None

    def backlog_per_split(self) -> dict[str, int | None]:
        """Consumer lag of every assigned partition (`SplitBacklogReader`); None where its end is unknown."""
        out: dict[str, int | None] = {}
        for split, tp in self.tp_of.items():
            end = None
            if self.consumer is not None:
                end = (
                    self.consumer.last_stable_offset(tp)
                    if self.read_committed
                    else self.consumer.highwater(tp)
                )
            out[split] = None if end is None else max(0, end - self.pos.get(split, end))
        return out

    async def on_checkpoint_durable(self, checkpoint_id: int) -> None:
        if self.consumer is None or self.closed:
            return
        txn = job_kafka(self.options).txns.get(self.source.cluster)
        if txn is not None and txn.takes_offsets_of(self):
            return  # committed inside the sink's transaction
        offsets = {
            tp: (offset, format_offset_metadata(checkpoint_id)) for tp, offset in self.offsets().items()
        }
        if not offsets:
            return
        try:
            await asyncio.wait_for(self.consumer.commit(offsets), timeout=5.0)
        except Exception as e:  # the checkpoint is durable; a missed commit only delays monitoring
            log.warning(
                "Kafka %s: committing offsets of checkpoint %d failed: %s", self.group, checkpoint_id, e
            )


# Beam's runners use Beam's cross-language Kafka IO (connectors/kafka/beam_io.py; imported lazily).
register_beam_io(KafkaSource, "millstream.connectors.kafka.beam_io:read_kafka")
