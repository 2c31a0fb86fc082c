"""Exactly-once Kafka -> windowed aggregation -> Kafka against the real broker.

The output is read back with ``isolation_level=read_committed`` and compared with an independent computation;
the job is killed with SIGKILL at random instants (often with a transaction open) and at every numbered step of
the checkpoint protocol, and after each kill we check that every committed output row follows from committed
input (all the records of its window lie before the consumer group's committed offsets, which are committed in
the same transaction).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any

import pytest

from .conftest import KafkaBroker, TopicFactory
from .test_kafka_jobs import (
    WINDOW_S,
    build,
    end_offsets,
    expected_sums,
    group_offsets,
    kafka_job,
    make_events,
    output_rows,
    read_all,
)
from support.jobs import until
from support.kill9 import KilledJob

pytestmark = pytest.mark.kafka

WAIT_S = 60.0


async def produce_tracked(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Produce events keyed by user with their event time; returns each event's (partition, offset)."""
    from aiokafka import AIOKafkaProducer

    async with AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5) as producer:
        futures = [
            await producer.send(topic, json.dumps(e).encode(), key=e["k"].encode(), timestamp_ms=e["ts"])
            for e in events
        ]
        await producer.flush()
        return [((m := await f).partition, m.offset) for f in futures]


def txn_seq(offsets: dict[Any, Any]) -> int:
    """The newest transaction sequence number in a group's offset metadata (0 if none)."""
    from millstream.connectors.kafka.offsets import parse_offset_metadata

    seqs = [
        int(m["seq"]) for om in offsets.values() if (m := parse_offset_metadata(om.metadata)) and "seq" in m
    ]
    return max(seqs, default=0)


async def consumed_all(bootstrap: str, group: str, topic: str) -> bool:
    """Whether the group's committed offsets reached the end of every partition of `topic`."""
    ends = await end_offsets(bootstrap, topic)
    offsets = await group_offsets(bootstrap, group)
    return all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items())


async def check_committed_output_follows_committed_input(
    bootstrap: str, group: str, output: str, events: list[dict[str, Any]], where: list[tuple[int, int]]
) -> int:
    """Every committed output row is the full sum of its window, and all of that window's input records lie
    before the group's committed offsets (output and offsets commit atomically). Returns the row count."""
    offsets = {tp.partition: om.offset for tp, om in (await group_offsets(bootstrap, group)).items()}
    rows = await output_rows(bootstrap, output, settled=False)  # what is committed now (a txn may be open)
    expected = {(k, s): v for k, s, v in expected_sums(events)}
    inputs: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for e, at in zip(events, where):
        inputs.setdefault((e["k"], e["ts"] // 1000 // WINDOW_S * WINDOW_S), []).append(at)
    seen = set()
    for k, start, total in rows:
        assert (k, start) not in seen, f"window {(k, start)} committed twice"
        seen.add((k, start))
        assert expected.get((k, start)) == total, (
            f"window {(k, start)}: {total} != {expected.get((k, start))}"
        )
        for partition, offset in inputs[(k, start)]:
            assert offset < offsets.get(partition, 0), (
                f"output {(k, start)} is committed but its input {partition}@{offset} is not "
                f"(committed offsets {offsets})"
            )
    return len(rows)


async def test_kafka_to_windows_to_kafka_with_dead_letters(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any
) -> None:
    """In-process: the read-back output equals the independent computation; bad values go to the dead-letter
    topic (in the same transaction) while the job keeps running and processes what follows them."""
    import millstream as beam
    from millstream.connectors.kafka.offsets import parse_offset_metadata
    from millstream.options.pipeline_options import PipelineOptions

    bootstrap = kafka_broker.bootstrap
    source, output, dlq = await kafka_topic(3), await kafka_topic(2), await kafka_topic(1)
    events = make_events(4000, seed=3)
    bad_values = [b"{oops", b"\xff\xfe not utf-8"]
    await produce_tracked(bootstrap, source, events[:2000])
    from .test_kafka_jobs import produce

    await produce(bootstrap, source, [], raw=bad_values)
    await produce_tracked(bootstrap, source, events[2000:])
    group = f"e2e-{os.getpid()}-{time.monotonic_ns()}"
    p = beam.Pipeline(
        options=PipelineOptions(
            [
                "--streaming",
                f"--state_dir={tmp_path / 'state'}",
                "--checkpoint_interval=0.3",
                f"--job_name={group}",
            ]
        )
    )
    build(p, bootstrap, source, output, dlq)
    job = await p.start()
    try:
        await until(lambda: consumed_all(bootstrap, group, source), "all input consumed", WAIT_S, poll_s=0.05)
        assert job.state == "RUNNING", job.error
        assert await job.drain(timeout=60) == "DONE"
    finally:
        if job.state not in ("DONE", "FAILED", "CANCELLED", "STOPPED"):
            await job.cancel()

    assert sorted(await output_rows(bootstrap, output)) == expected_sums(events)
    dead = await read_all(bootstrap, dlq, settled=True)
    assert sorted(r.value for r in dead) == sorted(bad_values)
    for r in dead:
        headers = dict(r.headers)
        assert headers["millstream.reason"].startswith(b"value: ")
        assert headers["millstream.origin"].startswith(source.encode() + b"/")
    # The consumed offsets were committed inside the transactions, naming transaction and checkpoint.
    offsets = await group_offsets(bootstrap, group)
    metas = [parse_offset_metadata(om.metadata) for om in offsets.values()]
    assert metas and all(
        m is not None and m["txn"] == f"millstream.{group}.shard-0" and int(m["ckpt"]) > 0 for m in metas
    )


@pytest.mark.crash
@pytest.mark.parametrize("step", [3, 4, 5, 6])
async def test_crash_at_checkpoint_step(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any, step: int
) -> None:
    """SIGKILL on entering a step of the 3rd checkpoint (5 = COMMIT_SINKS: the state holds the checkpoint, the
    Kafka transaction is open and dies with the process), restart, finish: exactly the expected output."""
    bootstrap = kafka_broker.bootstrap
    topics = (await kafka_topic(2), await kafka_topic(2), await kafka_topic(1))
    events = make_events(3000, seed=step)
    await produce_tracked(bootstrap, topics[0], events)
    name = f"crash{step}-{time.monotonic_ns()}"
    with kafka_job(
        bootstrap,
        topics,
        str(tmp_path / "state"),
        "--checkpoint_interval=0.2",
        "--batch_size=100",
        job_name=name,
    ) as job:
        await job.acrash_at(step, 3)
        await finish(job, bootstrap, name, topics[0])
    rows = await output_rows(bootstrap, topics[1])
    assert sorted(rows) == expected_sums(events)
    if step == 5:
        assert "restoring checkpoint 2, not the latest (3)" in job.log()


@pytest.mark.crash
async def test_random_kills_lose_and_duplicate_nothing(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any
) -> None:
    """Input keeps arriving while the job is SIGKILLed 10 times at random instants after progress (often with
    a transaction open) and 4 times at crash points of the checkpoint protocol; after every kill the committed
    output follows from committed input, and at the end it equals the independent computation: nothing lost,
    nothing duplicated."""
    bootstrap = kafka_broker.bootstrap
    source, output, dlq = await kafka_topic(4), await kafka_topic(3), await kafka_topic(1)
    topics = (source, output, dlq)
    events = make_events(12000, seed=11)
    where: list[tuple[int, int]] = []
    name = f"soak-{time.monotonic_ns()}"
    job = kafka_job(
        bootstrap,
        topics,
        str(tmp_path / "state"),
        "--checkpoint_interval=0.15",
        "--batch_size=200",
        job_name=name,
    )
    rng = random.Random(5)
    producing = asyncio.Lock()

    async def feed() -> None:
        for i in range(0, len(events), 600):
            async with producing:
                where.extend(await produce_tracked(bootstrap, source, events[i : i + 600]))
            await asyncio.sleep(0.25)

    runs: list[tuple[int, int] | None] = [None] * 10 + [(5, 2), (3, 2), (5, 3), (4, 2)]
    rng.shuffle(runs)
    feeder = asyncio.create_task(feed())
    committed_midway = 0
    try:
        with job:
            for crash_at in runs:
                if crash_at is None:
                    before = txn_seq(await group_offsets(bootstrap, name))
                    await job.akill_after(
                        job.start(), lambda b=before: progressed(bootstrap, name, b), rng, 0.3
                    )
                else:
                    await job.acrash_at(*crash_at)
                async with producing:
                    committed_midway = await check_committed_output_follows_committed_input(
                        bootstrap, name, output, events[: len(where)], where
                    )
            await feeder
            await finish(job, bootstrap, name, source)
    finally:
        feeder.cancel()
    rows = await output_rows(bootstrap, output)
    assert committed_midway > len(rows) // 3, "the killed runs committed too little to test anything"
    assert len(rows) == len({(k, s) for k, s, _ in rows}), "a (key, window) result was committed twice"
    assert sorted(rows) == expected_sums(events)
    assert await check_committed_output_follows_committed_input(
        bootstrap, name, output, events, where
    ) == len(rows)


async def progressed(bootstrap: str, group: str, before: int) -> bool:
    """Whether the group committed a transaction newer than sequence number `before`."""
    return txn_seq(await group_offsets(bootstrap, group)) > before


async def finish(job: KilledJob, bootstrap: str, group: str, source: str) -> None:
    """Run the job until it committed once more and consumed all of `source`, then drain it (exit 0)."""
    before = txn_seq(await group_offsets(bootstrap, group))
    proc = job.start()
    await job.until(lambda: progressed(bootstrap, group, before), "a commit", proc)
    await job.until(lambda: consumed_all(bootstrap, group, source), "all input consumed", proc)
    await job.adrain(proc)
