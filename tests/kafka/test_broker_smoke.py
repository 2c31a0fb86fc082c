"""Smoke tests of the real Kafka broker fixture with aiokafka: what millstream's Kafka IO relies on.

Round trips, transactions (commit/abort seen through read_committed), consumed offsets committed
inside a transaction with checkpoint metadata (DESIGN.md section 5), and a broker crash/restart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from .conftest import KafkaBroker, TopicFactory

pytestmark = pytest.mark.kafka

READ_TIMEOUT_S = 30.0


@asynccontextmanager
async def _consumer(bootstrap: str, *topics: str, **config: object) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer from the earliest offset, stopped on exit."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **config,  # type: ignore[arg-type]
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def _read_until(
    consumer: AIOKafkaConsumer, done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool]
) -> list[ConsumerRecord[bytes, bytes]]:
    """Collect records until ``done(records)`` holds; raise if that takes longer than READ_TIMEOUT_S."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    while not done(records):
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(records)} records after {READ_TIMEOUT_S} s: {records[-5:]}")
        batches = await consumer.getmany(timeout_ms=200)
        for batch in batches.values():
            records.extend(batch)
    return records


async def _read_to_end(
    consumer: AIOKafkaConsumer, *tps: TopicPartition
) -> list[ConsumerRecord[bytes, bytes]]:
    """Collect every record up to the partitions' current end (the last stable offset under
    read_committed), so a test can assert that nothing else is there."""
    consumer.assign(list(tps))
    ends = await consumer.end_offsets(list(tps))
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    while any([await consumer.position(tp) < ends[tp] for tp in tps]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not at end offsets {ends} after {READ_TIMEOUT_S} s; read {records[-5:]}")
        batches = await consumer.getmany(*tps, timeout_ms=200)
        for batch in batches.values():
            records.extend(batch)
    return records


def _txn_producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"ms-smoke-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True,
    )


async def test_produce_consume_round_trip(kafka_broker: KafkaBroker, kafka_topic: TopicFactory) -> None:
    topic = await kafka_topic(partitions=3)
    sent = {(f"k{i % 5}".encode(), f"v{i}".encode()) for i in range(60)}
    async with AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all") as producer:
        for i in range(60):
            await producer.send(topic, key=f"k{i % 5}".encode(), value=f"v{i}".encode())
        await producer.flush()

    async with _consumer(kafka_broker.bootstrap, topic) as consumer:
        records = await _read_until(consumer, lambda rs: len(rs) >= len(sent))

    assert {(r.key, r.value) for r in records} == sent
    assert len(records) == len(sent)
    # Keys hash to one partition each, and each partition keeps send order.
    for key in {r.key for r in records}:
        assert len({r.partition for r in records if r.key == key}) == 1
        values = [int(r.value[1:]) for r in records if r.key == key and r.value is not None]
        assert values == sorted(values)


async def test_transactions_commit_and_abort_read_committed(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory
) -> None:
    topic = await kafka_topic(partitions=2)
    async with _txn_producer(kafka_broker.bootstrap) as producer:
        async with producer.transaction():
            for i in range(5):
                await producer.send(topic, value=f"c{i}".encode(), partition=i % 2)
        await producer.begin_transaction()
        for i in range(5):
            await producer.send(topic, value=f"a{i}".encode(), partition=i % 2)
        await producer.flush()  # the aborted records really reach the log, then get aborted
        await producer.abort_transaction()
        async with producer.transaction():
            for i in range(5, 10):
                await producer.send(topic, value=f"c{i}".encode(), partition=i % 2)

    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    async with _consumer(kafka_broker.bootstrap, isolation_level="read_committed") as consumer:
        read = await _read_to_end(consumer, *tps)
    by_partition = {p: [r.value for r in read if r.partition == p] for p in (0, 1)}
    assert by_partition == {0: [b"c0", b"c2", b"c4", b"c6", b"c8"], 1: [b"c1", b"c3", b"c5", b"c7", b"c9"]}

    # The aborted records are in the log; only read_committed hides them.
    async with _consumer(kafka_broker.bootstrap, isolation_level="read_uncommitted") as consumer:
        raw = await _read_to_end(consumer, *tps)
    assert sorted(r.value or b"" for r in raw) == sorted(
        [f"c{i}".encode() for i in range(10)] + [f"a{i}".encode() for i in range(5)]
    )


async def test_send_offsets_to_transaction(kafka_broker: KafkaBroker, kafka_topic: TopicFactory) -> None:
    source, sink = await kafka_topic(partitions=1), await kafka_topic(partitions=1)
    group = f"ms-smoke-group-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(source, 0)
    async with AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap) as plain:
        for i in range(6):
            await plain.send(source, value=f"in{i}".encode(), partition=0)
        await plain.flush()

    async with (
        _consumer(
            kafka_broker.bootstrap, source, group_id=group, isolation_level="read_committed"
        ) as consumer,
        _txn_producer(kafka_broker.bootstrap) as producer,
    ):
        inputs = await _read_until(consumer, lambda rs: len(rs) >= 6)
        # Checkpoint 1 covers in0..in2 and commits; checkpoint 2 covers in3..in5 and aborts.
        async with producer.transaction():
            for record in inputs[:3]:
                await producer.send(sink, value=b"out-" + (record.value or b""), partition=0)
            await producer.send_offsets_to_transaction(
                {tp: OffsetAndMetadata(inputs[2].offset + 1, "checkpoint=1")}, group
            )
        await producer.begin_transaction()
        for record in inputs[3:]:
            await producer.send(sink, value=b"out-" + (record.value or b""), partition=0)
        await producer.send_offsets_to_transaction(
            {tp: OffsetAndMetadata(inputs[5].offset + 1, "checkpoint=2")}, group
        )
        await producer.flush()
        await producer.abort_transaction()

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    assert offsets[tp] == OffsetAndMetadata(inputs[2].offset + 1, "checkpoint=1")

    async with _consumer(kafka_broker.bootstrap, isolation_level="read_committed") as consumer:
        outputs = await _read_to_end(consumer, TopicPartition(sink, 0))
    assert [r.value for r in outputs] == [b"out-in0", b"out-in1", b"out-in2"]


async def test_broker_crash_restart_keeps_data(kafka_broker: KafkaBroker, kafka_topic: TopicFactory) -> None:
    topic = await kafka_topic(partitions=1)
    bootstrap = kafka_broker.bootstrap
    async with _txn_producer(bootstrap) as producer:
        async with producer.transaction():
            await producer.send(topic, value=b"before", partition=0)

    await kafka_broker.astop(kill=True)
    assert not kafka_broker.running
    await kafka_broker.astart()
    assert kafka_broker.running
    assert kafka_broker.bootstrap == bootstrap

    async with _txn_producer(bootstrap) as producer:
        async with producer.transaction():
            await producer.send(topic, value=b"after", partition=0)
    async with _consumer(bootstrap, isolation_level="read_committed") as consumer:
        records = await _read_to_end(consumer, TopicPartition(topic, 0))
    assert [r.value for r in records] == [b"before", b"after"]
