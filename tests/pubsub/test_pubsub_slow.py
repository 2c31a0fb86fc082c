"""A slow job on a subscription with a short ack deadline: messages are held for several deadlines before the
checkpoint that acknowledges them. With lease extension nothing is redelivered; without it (max_lease_duration=0)
Pub/Sub redelivers every expired message, and de-duplication keeps each effect to one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import millstream as beam
from millstream.io.pubsub import ReadFromPubSub

from .conftest import PubSubServer, PubSubTopic
from support.pubsub import options, publish_many, reader_of, wait_until

pytestmark = pytest.mark.pubsub

N = 150
#: Per element: N of them hold the first checkpoint (and so the first ack) back for N * SLOW_S = 3 s.
SLOW_S = 0.02


def slow(data: bytes) -> int:
    """A slow step: it blocks the job's loop (as heavy CPU work would) while the lease thread keeps running."""
    time.sleep(SLOW_S)
    return int(data)


async def _run(
    server: PubSubServer,
    topic: PubSubTopic,
    tmp_path: Any,
    deadline: int,
    until_duplicates: bool,
    **read_args: Any,
) -> tuple[list[int], dict[str, int]]:
    sub = topic.create_subscription(ack_deadline_seconds=deadline)
    publish_many(server, topic.path, [(b"%d" % i, {}) for i in range(N)])
    p = beam.Pipeline(options=options(tmp_path, "--batch_size=25"))
    out = p | ReadFromPubSub(subscription=sub, **read_args) | beam.Map(slow)
    job = await p.start()
    got: list[int] = []

    async def collect() -> None:
        async for v in job.tap(out):
            got.append(v)

    task = asyncio.create_task(collect())
    await wait_until(lambda: len(got) >= N, f"{N} results")
    if until_duplicates:
        # Redelivered copies may still wait in the reader's queue when the results are complete.
        await wait_until(lambda: reader_of(job).stats["duplicates"] > 0, "a redelivered copy to be dropped")
    await job.drain()
    await task
    return got, dict(reader_of(job).stats)


async def test_leases_are_extended_while_the_job_is_slow(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path
) -> None:
    got, stats = await _run(pubsub_server, pubsub_topic, tmp_path, deadline=2, until_duplicates=False)
    assert sorted(got) == list(range(N))
    assert stats["extended"] >= N  # every message outlived its 2 s deadline and was extended
    assert stats["received"] == N and stats["duplicates"] == 0  # so none came back
    assert stats["acked"] == N


async def test_expired_messages_are_redelivered_and_deduplicated(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path
) -> None:
    got, stats = await _run(
        pubsub_server, pubsub_topic, tmp_path, deadline=1, until_duplicates=True, max_lease_duration=0
    )
    assert sorted(got) == list(range(N))  # each message's effect once
    assert stats["extended"] == 0
    # Held for up to ~3 s with a 1 s deadline: Pub/Sub redelivered them, and the copies were dropped.
    assert stats["received"] > N and stats["duplicates"] > 0
    assert stats["emitted"] == N
