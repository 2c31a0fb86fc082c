"""The Kafka sink: exactly-once through Kafka transactions (aiokafka), or at-least-once.

The transaction itself is `millstream.connectors.kafka.transaction.KafkaTransaction`.

One transaction per checkpoint epoch
------------------------------------
All exactly-once Kafka sinks of a pipeline process share one transactional producer (`KafkaTransaction`),
with the stable transactional id ``<prefix>.shard-<shard_id>`` (prefix: ``transactional.id`` of the
producer config, else ``millstream.<job name>``). The records of one checkpoint epoch, to every topic of every
sink (results and dead letters alike), go into one Kafka transaction that begins with the epoch's first record
after the previous checkpoint. `prepare` (checkpoint step 3) flushes it; `commit` (step 5, after the state is
durable) adds the consumed offsets of the pipeline's Kafka source to it (``send_offsets_to_transaction`` with the
source's consumer group) and commits it. **The Kafka commit is the commit point.** Every transaction also
records which checkpoint it belongs to in the offset metadata: ``millstream/1 txn=<id> seq=<n> ckpt=<id>``,
``seq`` counting the transactional id's commits. With a Kafka source on the same cluster this metadata rides on
the source's offsets; otherwise (no Kafka source, another cluster, or a shard without partitions) on a marker
offset (the sink topic's partition 0, offset = seq) of the group ``<transactional id>.commits``. aiokafka
supports one consumer group per transaction, so the marker never shares a transaction with source offsets.

Recovery
--------
A Kafka transaction cannot be resumed by a new process: after a crash between the durable write of checkpoint
N and its Kafka commit, the new producer's initialisation aborts N's transaction while the state store holds N.
On start the sink therefore tells the checkpointer which checkpoint Kafka committed
(`KafkaSinkWriter.committed_checkpoint`: the newest ``seq`` of the transactional id, read after the new
producer fenced every older one), and the checkpointer restores that one (retained, with its source
positions), so the input after it is read again and its output written once. On start the sink also commits a
*claim* (a marker with the restored checkpoint id, ``0`` for a fresh state), so a zombie of the same shard sees
it was replaced, and a state started afresh is never matched with an old run's checkpoint ids.

Errors while running: a failed send, flush or commit (a transaction timeout, a broker failure the client could
not ride out) closes the producer and makes a new one (which aborts the failed transaction), checks that no
other instance has committed since (the newest ``seq`` is still this process's), and sends the epoch again
from a replay buffer (the epoch's serialised records, up to ``max_replay_bytes``; an epoch larger than that
cannot be replayed and the job fails instead, and its restart recovers as after a crash). If the lost commit
had in fact reached the broker, the marker shows it and nothing is sent twice. A producer fenced by a newer
instance of the same shard (its ``seq`` moved on) stops the job with `KafkaFencedError`.

Start-up checks: ``transaction.timeout.ms`` (default: three checkpoint intervals, at least 60 s, at most the
broker's default maximum of 15 min) must be at least twice ``--checkpoint_interval``, since a transaction stays
open for a whole interval. All exactly-once Kafka sinks of a pipeline must write to one cluster (a transaction
cannot span clusters) and use the same producer config.

At-least-once (``exactly_once=False``): an idempotent producer; `prepare` flushes and checks every send, and
the reader commits the source offsets after the checkpoint. Records are visible at once; a crash repeats the
output since the last checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from millstream.connectors.kafka.config import (
    KafkaConfigError,
    cluster_key,
    job_name_of,
    producer_kwargs,
    shard_of,
)
from millstream.connectors.kafka.serde import resolve_serializer
from millstream.connectors.kafka.source import (
    KafkaSource,
    job_kafka,
)
from millstream.connectors.kafka.transaction import (
    KafkaTransaction,
)
from millstream.engine.model.io import Sink, SinkWriter
from millstream.engine.translate.beam.hooks import register_beam_io

log = logging.getLogger("millstream.kafka")

__all__ = ["KafkaSink", "KafkaSinkWriter", "dead_letter_record"]

#: The broker's default ``transaction.max.timeout.ms``.
BROKER_MAX_TXN_TIMEOUT_MS = 900_000
#: Default bound of an epoch's replay buffer (serialised bytes).
DEFAULT_MAX_REPLAY_BYTES = 64 << 20


class KafkaSink(Sink):
    """Configuration of one Kafka output topic (see the module docstring)."""

    #: Beam's expansion service (``host:port``) when the pipeline runs on a Beam runner; None: Beam's default.
    expansion_service: Any = None

    def __init__(
        self,
        *,
        topic: str,
        bootstrap_servers: str | None = None,
        producer_config: Mapping[str, Any] | None = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        exactly_once: bool = True,
        max_replay_bytes: int = DEFAULT_MAX_REPLAY_BYTES,
    ) -> None:
        if not topic or not isinstance(topic, str):
            raise KafkaConfigError("WriteToKafka needs topic=")
        self.topic = topic
        self.config = dict(producer_config or {})
        self.kwargs = producer_kwargs(self.config, bootstrap_servers)
        self.prefix = self.kwargs.pop("transactional_id", None)
        self.cluster = cluster_key(self.kwargs["bootstrap_servers"])
        self.key_serializer = resolve_serializer(key_serializer, "key_serializer")
        self.value_serializer = resolve_serializer(value_serializer, "value_serializer")
        self.exactly_once = exactly_once
        self.max_replay_bytes = max_replay_bytes
        self.explicit_timeout = self.kwargs.pop("transaction_timeout_ms", None)
        #: The pipeline (set when applied): its Kafka sources decide whose offsets join the transaction.
        self.pipeline: Any = None

    def display_name(self) -> str:
        return f"Kafka({self.topic})"

    def _timeout_ms(self, interval_s: float) -> int:
        need = math.ceil(2 * interval_s * 1000)
        if self.explicit_timeout is not None:
            timeout = int(self.explicit_timeout)
            if timeout < need:
                raise KafkaConfigError(
                    f"WriteToKafka({self.topic}): transaction.timeout.ms={timeout} is too short for "
                    f"--checkpoint_interval={interval_s:g} (a transaction stays open for a whole interval); use at "
                    f"least {need} ms, or checkpoint more often"
                )
            return timeout
        timeout = max(60_000, math.ceil(3 * interval_s * 1000))
        if timeout > BROKER_MAX_TXN_TIMEOUT_MS:
            if need > BROKER_MAX_TXN_TIMEOUT_MS:
                raise KafkaConfigError(
                    f"WriteToKafka({self.topic}): --checkpoint_interval={interval_s:g} needs transactions of at least "
                    f"{need} ms, above the broker's default transaction.max.timeout.ms ({BROKER_MAX_TXN_TIMEOUT_MS}); "
                    "checkpoint more often, or raise the broker's limit and set transaction.timeout.ms"
                )
            timeout = BROKER_MAX_TXN_TIMEOUT_MS
        return timeout

    def _source_group(self, options: Any) -> tuple[str | None, set[int]]:
        """The consumer group of the pipeline's first Kafka source on this cluster, and its sources."""
        from millstream.engine.model.io import Read

        if self.pipeline is None:
            return None, set()
        sources = [
            applied.transform.source
            for applied in self.pipeline.primitives()
            if isinstance(applied.transform, Read)
            and isinstance(applied.transform.source, KafkaSource)
            and applied.transform.source.cluster == self.cluster
        ]
        if not sources:
            return None, set()
        group = sources[0].group_id(options)
        return group, {id(s) for s in sources if s.group_id(options) == group}

    def create_writer(self, options: Any, job: Any) -> SinkWriter:
        from millstream.engine.model.options import MillstreamOptions

        registry = job_kafka(options, job)
        txn: KafkaTransaction | None = registry.txns.get(self.cluster)
        if txn is None:
            if self.exactly_once:
                others = [c for c, t in registry.txns.items() if t.exactly_once]
                if others:
                    raise KafkaConfigError(
                        f"exactly-once Kafka sinks of one pipeline must write to one cluster (a transaction cannot "
                        f"span clusters): {others[0]} and {self.cluster}"
                    )
            shard, _ = shard_of(options)
            prefix = self.prefix or f"millstream.{job_name_of(options)}"
            interval = float(options.view_as(MillstreamOptions).checkpoint_interval)
            group, group_sources = self._source_group(options)
            txn = KafkaTransaction(
                registry=registry,
                cluster=self.cluster,
                kwargs=self.kwargs,
                transactional_id=f"{prefix}.shard-{shard}",
                exactly_once=self.exactly_once,
                group=group,
                group_sources=group_sources,
                timeout_ms=self._timeout_ms(interval) if self.exactly_once else 0,
                max_replay_bytes=self.max_replay_bytes,
            )
            registry.txns[self.cluster] = txn
        else:
            if txn.exactly_once != self.exactly_once or txn.kwargs != self.kwargs:
                raise KafkaConfigError(
                    f"WriteToKafka({self.topic}) shares a producer with the pipeline's other Kafka sinks on "
                    f"{self.cluster}: their producer_config and exactly_once must be the same"
                )
        txn.topics.append(self.topic)
        return KafkaSinkWriter(self, txn)


class KafkaSinkWriter(SinkWriter):
    """Serialises (key, value[, headers]) elements into the shared `KafkaTransaction`."""

    def __init__(self, sink: KafkaSink, txn: KafkaTransaction) -> None:
        self.sink = sink
        self.txn = txn
        self.topic = sink.topic

    async def committed_checkpoint(self) -> int | None:
        return await self.txn.committed_checkpoint()

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        await self.txn.recover(checkpoint_id)

    def _serialize(self, values: list[Any]) -> list[tuple[str, bytes | None, bytes | None, Any]]:
        topic, ks, vs = self.topic, self.sink.key_serializer, self.sink.value_serializer
        try:
            return [(topic, ks(k), vs(v), None) for k, v in values]
        except Exception:
            pass
        out: list[tuple[str, bytes | None, bytes | None, Any]] = []
        for element in values:
            if not isinstance(element, (tuple, list)) or len(element) not in (2, 3):
                raise TypeError(
                    f"WriteToKafka({topic}) writes (key, value) or (key, value, headers) elements, got {element!r:.200}"
                )
            key, value = element[0], element[1]
            headers = element[2] if len(element) == 3 else None
            try:
                kb, vb = ks(key), vs(value)
            except Exception as e:
                raise TypeError(f"WriteToKafka({topic}): cannot serialise {element!r:.200}: {e}") from e
            if kb is None and vb is None:
                raise ValueError(
                    f"WriteToKafka({topic}): a record needs a key or a value, got {element!r:.200}"
                )
            if headers is not None:
                headers = [(str(h), v.encode("utf-8") if isinstance(v, str) else v) for h, v in headers]
            out.append((topic, kb, vb, headers))
        return out

    async def write(self, values: list[Any]) -> None:
        await self.txn.send(self._serialize(values))

    async def prepare(self, checkpoint_id: int) -> Any:
        record = await self.txn.prepare(checkpoint_id)
        return {**record, "topic": self.topic}

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        await self.txn.commit(checkpoint_id)

    async def abort(self) -> None:
        await self.txn.abort()

    async def close(self) -> None:
        await self.txn.close()


def dead_letter_record(bad: Mapping[str, Any]) -> tuple[Any, Any, list[tuple[str, bytes]]]:
    """A dead-letter record of any millstream source as a Kafka record: the original key and raw bytes, with the
    reason and the origin in headers (``millstream.reason``, ``millstream.origin``), Kafka Connect's DLQ style."""
    raw = bad.get("raw")
    if raw is not None and not isinstance(raw, (bytes, str)):
        raw = repr(raw)
    if "topic" in bad:
        origin = f"{bad['topic']}/{bad.get('partition')}@{bad.get('offset')}"
    elif "file" in bad:
        origin = f"{bad['file']}:{bad.get('line')}"
    else:
        origin = str(bad.get("split", ""))
    headers = [
        ("millstream.reason", str(bad.get("reason", "")).encode("utf-8")),
        ("millstream.origin", origin.encode("utf-8")),
    ]
    key = bad.get("key")
    if raw is None and key is None:
        raw = b""
    return key, raw, headers


# Beam's runners use Beam's cross-language Kafka IO (connectors/kafka/beam_io.py; imported lazily).
register_beam_io(KafkaSink, "millstream.connectors.kafka.beam_io:write_kafka")
