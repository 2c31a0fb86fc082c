"""Kafka with Beam's names (``apache_beam.io.kafka``): `ReadFromKafka` and exactly-once `WriteToKafka`.

    p | ReadFromKafka(consumer_config={"bootstrap.servers": "localhost:9092", "auto.offset.reset": "earliest"},
                      topics=["clicks"], max_out_of_orderness=5, idle_timeout=30)
      | ...
      | WriteToKafka(producer_config={"bootstrap.servers": "localhost:9092"}, topic="counts")

Reads yield ``(key, value)`` pairs (bytes unless deserializers are given) or `KafkaRecord` with
``with_metadata=True``; event time is the record timestamp (``timestamp_policy``) or ``timestamp_fn``.
Writes take ``(key, value)`` or ``(key, value, headers)`` elements and are exactly-once through Kafka
transactions committed with the checkpoints, the consumed offsets inside the same transaction. Scale-out:
processes of one job run as shards (``--shard_id``, ``--num_shards``). The full story is in docs/kafka.md and
in `millstream.connectors.kafka.source` / `millstream.connectors.kafka.sink`.

Differences from Beam: the transforms are native (no Java expansion service; ``expansion_service`` is used
only when the pipeline runs on a Beam runner, where these become Beam's cross-language transforms:
`millstream.connectors.kafka.beam_io`), deserializers/serializers are
Python functions (Beam's Java ByteArray/String class names are understood too), the default timestamp policy
is the record's create time (``'ProcessingTime'`` is refused: event time never comes from processing time),
and ``max_num_records``/``max_read_time``/``start_read_time`` (bounded reads) are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from millstream.connectors.kafka.config import KafkaConfigError, KafkaOptions
from millstream.connectors.kafka.sink import DEFAULT_MAX_REPLAY_BYTES, KafkaSink, dead_letter_record
from millstream.connectors.kafka.source import KafkaRecord, KafkaSource
from millstream.connectors.kafka.transaction import KafkaFencedError, KafkaTransactionError
from millstream.engine.model.io import Read, Write
from millstream.engine.model.ptransform import PTransform

__all__ = [
    "KafkaConfigError",
    "KafkaFencedError",
    "KafkaOptions",
    "KafkaRecord",
    "KafkaTransactionError",
    "ReadFromKafka",
    "WriteToKafka",
    "dead_letter_record",
]


class ReadFromKafka(PTransform):
    """Read Kafka topics as an unbounded source with per-partition watermarks (see the module docstring).

    ``consumer_config`` takes Kafka's consumer settings with Java names (``group.id``, ``auto.offset.reset``,
    ``isolation.level`` (default ``read_committed``), ...) or aiokafka's; the group defaults to the job's name.
    ``.with_dead_letters()`` (or ``with_dead_letters=True``) returns ``(good, bad)``: records the deserializers
    reject, as ``{"topic", "partition", "offset", "timestamp", "key", "raw", "reason"}``, instead of failing.
    """

    create_time_policy = "CreateTime"
    log_append_time = "LogAppendTime"
    processing_time_policy = "ProcessingTime"

    def __init__(
        self,
        consumer_config: Mapping[str, Any] | None = None,
        topics: Sequence[str] | str | None = None,
        key_deserializer: Any = None,
        value_deserializer: Any = None,
        start_read_time: int | None = None,
        max_num_records: int | None = None,
        max_read_time: int | None = None,
        commit_offset_in_finalize: bool = True,
        timestamp_policy: str = "create_time",
        with_metadata: bool = False,
        expansion_service: Any = None,
        *,
        topic_pattern: str | None = None,
        bootstrap_servers: str | None = None,
        timestamp_fn: Callable[[Any], Any] | None = None,
        max_out_of_orderness: float = 0.0,
        idle_timeout: float | None = None,
        with_dead_letters: bool = False,
    ) -> None:
        for name, value in (
            ("start_read_time", start_read_time),
            ("max_num_records", max_num_records),
            ("max_read_time", max_read_time),
        ):
            if value is not None:
                raise KafkaConfigError(
                    f"ReadFromKafka: {name} is not supported (reads are unbounded; drain the job to end it)"
                )
        source = KafkaSource(
            bootstrap_servers=bootstrap_servers,
            topics=topics,
            topic_pattern=topic_pattern,
            consumer_config=consumer_config,
            key_deserializer=key_deserializer,
            value_deserializer=value_deserializer,
            with_metadata=with_metadata,
            timestamp_policy=timestamp_policy,
        )
        #: Beam's expansion service for the cross-language read on Beam's runners (`kafka.beam_io`).
        source.expansion_service = expansion_service
        self.source = source
        super().__init__(f"ReadFromKafka({source.display_name()[6:-1]})")
        self._read = Read(source, timestamp_fn, max_out_of_orderness, idle_timeout)
        if with_dead_letters:
            self._read = self._read.with_dead_letters()

    def with_dead_letters(self, tag: str = "bad") -> ReadFromKafka:
        """Return (good, bad) instead of failing on records that cannot be deserialized."""
        self._read = self._read.with_dead_letters(tag)
        return self

    def expand(self, pbegin: Any) -> Any:
        return pbegin | "Read" >> self._read


class WriteToKafka(PTransform):
    """Write ``(key, value)`` (or ``(key, value, headers)``) elements to a topic, exactly once by default.

    ``producer_config`` takes Kafka's producer settings (``bootstrap.servers``, ``transactional.id`` (a
    prefix), ``transaction.timeout.ms``, ``compression.type``, ``linger.ms``, ...). Serializers turn keys and
    values into bytes (default: bytes as they are, str as UTF-8). Every exactly-once Kafka sink of a pipeline
    shares one transaction per checkpoint, so results and dead letters (``bad | beam.Map(dead_letter_record) |
    WriteToKafka(topic="dlq")``) commit together with the consumed offsets. ``exactly_once=False`` writes
    at once, at least once.
    """

    def __init__(
        self,
        producer_config: Mapping[str, Any] | None = None,
        topic: str | None = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        expansion_service: Any = None,
        *,
        bootstrap_servers: str | None = None,
        exactly_once: bool = True,
        max_replay_bytes: int = DEFAULT_MAX_REPLAY_BYTES,
    ) -> None:
        if topic is None:
            raise KafkaConfigError("WriteToKafka needs topic=")
        self.sink = KafkaSink(
            topic=topic,
            bootstrap_servers=bootstrap_servers,
            producer_config=producer_config,
            key_serializer=key_serializer,
            value_serializer=value_serializer,
            exactly_once=exactly_once,
            max_replay_bytes=max_replay_bytes,
        )
        #: Beam's expansion service for the cross-language write on Beam's runners (`kafka.beam_io`).
        self.sink.expansion_service = expansion_service
        super().__init__(f"WriteToKafka({topic})")

    def expand(self, pcoll: Any) -> Any:
        self.sink.pipeline = pcoll.pipeline
        return pcoll | "Write" >> Write(self.sink)
