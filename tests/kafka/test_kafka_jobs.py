"""The job the Kafka tests run in subprocesses, and the helpers they share (this module has no tests itself).

The job: JSON click events ``{"k": user, "v": n}`` from an input topic (event time = the record timestamp,
bounded out-of-orderness 2 s per partition) -> fixed 10 s windows -> sum per key -> ``[k, window start, sum]``
as JSON to an output topic, exactly once; undecodable values go to a dead-letter topic in the same
transaction. SIGTERM drains (every window fires, final checkpoint, commit) and exits 0.

    python -P tests/kafka/test_kafka_jobs.py BOOTSTRAP INPUT OUTPUT DLQ [pipeline flags]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from support.kill9 import KilledJob

JOB = os.path.abspath(__file__)
WINDOW_S = 10
READ_TIMEOUT_S = 60.0


# ------------------------------------------------------------------------------------------------------------
# the job (runs in a subprocess)


def build(p: Any, bootstrap: str, input_topic: str, output: str, dlq: str) -> None:
    """The pipeline: windowed sums per key, exactly once, dead letters to `dlq`."""
    import millstream as beam
    from millstream.io.kafka import ReadFromKafka, WriteToKafka, dead_letter_record
    from millstream.transforms import window

    good, bad = (
        p
        | "Clicks"
        >> ReadFromKafka(
            consumer_config={"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest"},
            topics=[input_topic],
            value_deserializer=json.loads,
            max_out_of_orderness=2.0,
        ).with_dead_letters()
    )
    (
        good
        | "KV" >> beam.Map(lambda kv: (kv[1]["k"], kv[1]["v"]))
        | "Window" >> beam.WindowInto(window.FixedWindows(WINDOW_S))
        | "Sum" >> beam.CombinePerKey(sum)
        | "Row"
        >> beam.Map(lambda kv, w=beam.DoFn.WindowParam: (kv[0], json.dumps([kv[0], int(w.start), kv[1]])))
        | "Out" >> WriteToKafka(producer_config={"bootstrap.servers": bootstrap}, topic=output)
    )
    (
        bad
        | "DLQ" >> beam.Map(dead_letter_record)
        | "WriteDLQ" >> WriteToKafka(producer_config={"bootstrap.servers": bootstrap}, topic=dlq)
    )


async def _main(argv: list[str]) -> int:
    import millstream as beam
    from millstream.options.pipeline_options import PipelineOptions

    bootstrap, input_topic, output, dlq, *flags = argv
    p = beam.Pipeline(options=PipelineOptions(["--streaming", *flags]))
    build(p, bootstrap, input_topic, output, dlq)
    job = await p.start()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, job.request_drain)
    if _TERM:  # SIGTERM arrived while starting up
        job.request_drain()
    await job.wait()
    return 0


_TERM: list[int] = []


def main(argv: list[str]) -> None:
    """Run the job until SIGTERM (then drain) or a failure."""
    signal.signal(signal.SIGTERM, lambda *_: _TERM.append(1))
    import logging

    logging.basicConfig(
        level=os.environ.get("MS_LOG", "WARNING"),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    sys.exit(asyncio.run(_main(argv)))


# ------------------------------------------------------------------------------------------------------------
# helpers for the tests


def make_events(n: int, seed: int, keys: int = 24, base_ms: int | None = None) -> list[dict[str, Any]]:
    """`n` click events, ~20 per second of event time, up to 1.5 s out of order (within the job's 2 s bound).

    24 users hash to every partition of a topic with up to 4 partitions, so no partition stays empty (an
    empty partition would hold the watermark, and no window would fire before the end)."""
    rng = random.Random(seed)
    base = base_ms if base_ms is not None else (int(time.time()) // 60 * 60 - 3600) * 1000
    events = []
    for i in range(n):
        t = base + i * 50 - int(rng.random() * 1500)
        events.append({"k": f"u{rng.randrange(keys)}", "v": rng.randrange(1, 100), "ts": max(base, t)})
    return events


def expected_sums(events: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """The job's output computed independently: [key, window start (s), sum], sorted."""
    sums: dict[tuple[str, int], int] = {}
    for e in events:
        start = e["ts"] // 1000 // WINDOW_S * WINDOW_S
        sums[(e["k"], start)] = sums.get((e["k"], start), 0) + e["v"]
    return sorted([k, s, v] for (k, s), v in sums.items())


async def produce(
    bootstrap: str, topic: str, events: list[dict[str, Any]], raw: Sequence[bytes] = ()
) -> None:
    """Produce events keyed by user (the key decides the partition) with their event time as timestamp."""
    from aiokafka import AIOKafkaProducer

    async with AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=256 << 10
    ) as producer:
        futures = []
        for e in events:
            futures.append(
                await producer.send(topic, json.dumps(e).encode(), key=e["k"].encode(), timestamp_ms=e["ts"])
            )
        for value in raw:
            futures.append(await producer.send(topic, value, key=b"bad"))
        await producer.flush()
        for f in futures:
            await f


async def read_all(
    bootstrap: str, topic: str, isolation_level: str = "read_committed", settled: bool = False
) -> list[Any]:
    """Every record of `topic` up to its current end (the last stable offset under read_committed).

    With `settled`, first wait until no transaction is open on the topic (last stable offset = high
    watermark): a commit returns before the broker has written its markers to every partition, so right after
    a job ends its last transaction can still be invisible for a moment."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation_level,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        assert tps, f"topic {topic} has no partitions in the metadata"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + READ_TIMEOUT_S
        if settled:
            high = await end_offsets(bootstrap, topic)
            while ends != high:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{topic}: a transaction stays open (stable {ends}, high {high})")
                await asyncio.sleep(0.05)
                ends = await consumer.end_offsets(tps)
                high = await end_offsets(bootstrap, topic)
        records: list[Any] = []
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not at the end offsets {ends} after {READ_TIMEOUT_S} s")
            batches = await consumer.getmany(*tps, timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def output_rows(bootstrap: str, topic: str, settled: bool = True) -> list[list[Any]]:
    """The job's committed output rows (by default once no transaction is open any more)."""
    return [json.loads(r.value) for r in await read_all(bootstrap, topic, settled=settled)]


async def group_offsets(bootstrap: str, group: str) -> dict[Any, Any]:
    """The committed offsets (with metadata) of a consumer group."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        while True:
            try:
                return dict(await admin.list_consumer_group_offsets(group))
            except KafkaError:  # e.g. the offsets topic is still being created
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def end_offsets(bootstrap: str, topic: str) -> dict[Any, int]:
    """The end offsets of every partition of `topic`."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(topic, p) for p in sorted(cluster.partitions_for_topic(topic) or ())]
        assert tps, f"topic {topic} has no partitions in the metadata"
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


def kafka_job(
    bootstrap: str,
    topics: tuple[str, str, str],
    state_dir: str,
    *flags: str,
    job_name: str = "kafka-test",
) -> KilledJob:
    """The job on (input, output, dead-letter) topics as the kill -9 harness runs it; its log (stderr of every
    run) goes next to the state directory. Its progress is read from the broker (`until`, `akill_after`)."""
    # imported here: this file is also the job script, which runs without tests/ on its path
    from support.kill9 import KilledJob, script_command

    argv = script_command(
        JOB, bootstrap, *topics, f"--state_dir={state_dir}", f"--job_name={job_name}", *flags
    )
    return KilledJob(argv, log_path=state_dir.rstrip("/") + ".log", timeout=60.0, poll_s=0.05)


if __name__ == "__main__":
    main(sys.argv[1:])
