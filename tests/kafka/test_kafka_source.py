"""ReadFromKafka against the real broker (topic patterns, metadata, event time, shards) and the configuration
errors of both Kafka transforms, which must come before any data is read."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from .conftest import KafkaBroker, TopicFactory

pytestmark = pytest.mark.kafka


async def _produce(
    bootstrap: str,
    topic: str,
    n: int,
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    base_ms: int = 1_700_000_000_000,
) -> None:
    from aiokafka import AIOKafkaProducer

    async with AIOKafkaProducer(bootstrap_servers=bootstrap) as producer:
        for i in range(n):
            await producer.send(
                topic,
                f"v{i}".encode(),
                key=f"k{i}".encode(),
                partition=partition,
                timestamp_ms=base_ms + i * 1000,
                headers=headers,
            )
        await producer.flush()


async def _collect(p: Any, pcoll: Any, n: int, timeout: float = 30.0) -> tuple[list[Any], Any]:
    """Start the pipeline, take `n` elements of `pcoll` from a tap, cancel the job."""
    job = await p.start()
    got: list[Any] = []

    async def take() -> None:
        async for element in job.tap(pcoll):
            got.append(element)
            if len(got) >= n:
                return

    try:
        await asyncio.wait_for(take(), timeout)
    finally:
        await job.cancel()
    return got, job


def _pipeline(tmp_path: Any, *flags: str) -> Any:
    import millstream as beam
    from millstream.options.pipeline_options import PipelineOptions

    return beam.Pipeline(
        options=PipelineOptions(
            [
                "--streaming",
                f"--state_dir={tmp_path / 'state'}",
                f"--job_name=src-{time.monotonic_ns()}",
                *flags,
            ]
        )
    )


async def test_pattern_metadata_and_event_time(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any
) -> None:
    """A topic pattern reads every matching topic; with_metadata gives KafkaRecords; the record timestamp is
    the element's event time."""
    import millstream as beam
    from millstream.io.kafka import KafkaRecord, ReadFromKafka

    bootstrap = kafka_broker.bootstrap
    a, b = await kafka_topic(2), await kafka_topic(1)
    prefix = a[: a.rindex("-")]  # both topics share the test's stem
    assert b.startswith(prefix)
    await _produce(bootstrap, a, 4, headers=[("h", b"1")])
    await _produce(bootstrap, b, 3)
    p = _pipeline(tmp_path)
    records = p | ReadFromKafka(
        consumer_config={"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"},
        topic_pattern=f"{prefix}-.*",
        with_metadata=True,
        key_deserializer=bytes.decode,
    )
    stamped = records | beam.Map(lambda r, t=beam.DoFn.TimestampParam: (r, float(t)))
    got, _ = await _collect(p, stamped, 7)
    assert all(isinstance(r, KafkaRecord) for r, _ in got)
    assert sorted((r.topic, r.key, r.value) for r, _ in got) == sorted(
        [(a, f"k{i}", f"v{i}".encode()) for i in range(4)]
        + [(b, f"k{i}", f"v{i}".encode()) for i in range(3)]
    )
    for r, t in got:
        assert t == r.timestamp / 1000 and r.timestamp_type == 0
        assert r.headers == ([("h", b"1")] if r.topic == a else [])
        assert r.offset >= 0 and r.partition in (0, 1)


async def test_a_shard_reads_its_partitions(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any
) -> None:
    """Shard 1 of 2 reads exactly the odd partitions."""
    from millstream.io.kafka import ReadFromKafka

    bootstrap = kafka_broker.bootstrap
    topic = await kafka_topic(4)
    for partition in range(4):
        await _produce(bootstrap, topic, 3, partition=partition)
    p = _pipeline(tmp_path, "--shard_id=1", "--num_shards=2")
    records = p | ReadFromKafka(
        consumer_config={"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"},
        topics=[topic],
        with_metadata=True,
    )
    got, _ = await _collect(p, records, 6)
    assert sorted((r.partition, r.offset) for r in got) == [(p, o) for p in (1, 3) for o in range(3)]


async def test_log_append_time_on_a_create_time_topic_fails_clearly(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any
) -> None:
    import millstream as beam
    from millstream.io.kafka import ReadFromKafka

    bootstrap = kafka_broker.bootstrap
    topic = await kafka_topic(1)
    await _produce(bootstrap, topic, 2)
    p = _pipeline(tmp_path)
    (
        p
        | ReadFromKafka(
            consumer_config={"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"},
            topics=[topic],
            timestamp_policy="log_append_time",
        )
        | beam.Map(lambda x: x)
    )
    job = await p.start()
    with pytest.raises(ValueError, match="message.timestamp.type=LogAppendTime"):
        await asyncio.wait_for(job.wait(), 30)


async def test_log_append_time(kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any) -> None:
    """On a LogAppendTime topic the broker's append time is the event time, whatever the producer set."""
    import millstream as beam
    from millstream.io.kafka import ReadFromKafka

    bootstrap = kafka_broker.bootstrap
    topic = await kafka_topic(1, config={"message.timestamp.type": "LogAppendTime"})
    before = time.time()
    await _produce(bootstrap, topic, 2, base_ms=1000)
    p = _pipeline(tmp_path)
    stamped = (
        p
        | ReadFromKafka(
            consumer_config={"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"},
            topics=[topic],
            timestamp_policy=ReadFromKafka.log_append_time,
        )
        | beam.Map(lambda kv, t=beam.DoFn.TimestampParam: float(t))
    )
    got, _ = await _collect(p, stamped, 2)
    assert all(before - 5 <= t <= time.time() + 5 for t in got), got


async def test_unknown_topic_fails_before_reading(kafka_broker: KafkaBroker, tmp_path: Any) -> None:
    import millstream as beam
    from millstream.io.kafka import ReadFromKafka

    p = _pipeline(tmp_path)
    (
        p
        | ReadFromKafka(
            consumer_config={"bootstrap.servers": kafka_broker.bootstrap}, topics=["no-such-topic-here"]
        )
        | beam.Map(lambda x: x)
    )
    job = await p.start()
    with pytest.raises(Exception, match="'no-such-topic-here' does not exist"):
        await asyncio.wait_for(job.wait(), 30)


def test_configuration_errors(tmp_path: Any) -> None:
    """Mistakes are reported in one line when the pipeline is built or planned (no broker is contacted)."""
    import millstream as beam
    from millstream.io.kafka import KafkaConfigError, ReadFromKafka, WriteToKafka
    from millstream.options.pipeline_options import PipelineOptions

    config = {"bootstrap.servers": "127.0.0.1:1"}
    with pytest.raises(KafkaConfigError, match=r"unknown setting 'group_idd' \(did you mean group.id\?\)"):
        ReadFromKafka(consumer_config={**config, "group.idd": "x"}, topics=["t"])
    with pytest.raises(KafkaConfigError, match="either topics= or topic_pattern="):
        ReadFromKafka(consumer_config=config, topics=["t"], topic_pattern="t.*")
    with pytest.raises(KafkaConfigError, match="ProcessingTime"):
        ReadFromKafka(
            consumer_config=config, topics=["t"], timestamp_policy=ReadFromKafka.processing_time_policy
        )
    with pytest.raises(KafkaConfigError, match="enable_auto_commit"):
        ReadFromKafka(consumer_config={**config, "enable.auto.commit": "true"}, topics=["t"])
    with pytest.raises(KafkaConfigError, match="max_num_records"):
        ReadFromKafka(consumer_config=config, topics=["t"], max_num_records=10)

    def plan(producer_config: dict[str, Any], *flags: str) -> None:
        from millstream.engine.runtime.exec.runner import prepare

        p = beam.Pipeline(options=PipelineOptions(["--streaming", f"--state_dir={tmp_path / 's'}", *flags]))
        p | beam.Create([(b"k", b"v")]) | WriteToKafka(producer_config=producer_config, topic="out")
        prepare(p, p.options)

    with pytest.raises(
        KafkaConfigError,
        match=r"transaction.timeout.ms=20000 is too short for "
        r"--checkpoint_interval=30.*at least 60000 ms",
    ):
        plan({**config, "transaction.timeout.ms": "20000"}, "--checkpoint_interval=30")
    with pytest.raises(KafkaConfigError, match="above the broker's default transaction.max.timeout.ms"):
        plan(config, "--checkpoint_interval=600")
    with pytest.raises(KafkaConfigError, match="need 0 <= shard_id < num_shards"):
        plan(config, "--shard_id=2", "--num_shards=2")
    plan({**config, "transaction.timeout.ms": "60000"}, "--checkpoint_interval=30")  # just enough
