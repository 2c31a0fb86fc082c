"""ReadFromPubSub against the real (pstest) server: messages, attributes and event time, dead letters, acks only
after a durable checkpoint, and a topic read whose subscription survives a restart."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import orjson
import pytest

import millstream as beam
from millstream.io.pubsub import PubsubMessage, ReadFromPubSub

from .conftest import PubSubServer, PubSubTopic
from support.pubsub import options, publish_many, reader_of, stat, wait_until

pytestmark = pytest.mark.pubsub


async def _collect(job: Any, pcoll: Any, into: list[Any]) -> None:
    async for v in job.tap(pcoll):
        into.append(v)


async def test_messages_with_attributes_and_publish_time(pubsub_topic: PubSubTopic, tmp_path) -> None:
    sub = pubsub_topic.create_subscription()
    sent = {pubsub_topic.publish(f"m{i}".encode(), n=str(i)): i for i in range(5)}
    p = beam.Pipeline(options=options(tmp_path))
    stamped = (
        p
        | ReadFromPubSub(subscription=sub, with_attributes=True)
        | beam.Map(lambda m, t=beam.DoFn.TimestampParam: (m, t.micros))
    )
    job = await p.start()
    got: list[Any] = []
    task = asyncio.create_task(_collect(job, stamped, got))
    await wait_until(lambda: len(got) >= 5, "5 messages")
    await job.drain()
    await task
    assert {m.message_id: int(m.attributes["n"]) for m, _ in got} == sent
    for m, micros in got:
        assert isinstance(m, PubsubMessage)
        assert m.attributes is not None and m.publish_time is not None
        assert m.data == f"m{m.attributes['n']}".encode()
        assert m.publish_time.tzinfo is not None
        # Event time is the publish time (to the microsecond).
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
        assert micros == (m.publish_time - epoch) // datetime.timedelta(microseconds=1)
    assert reader_of(job).stats["acked"] == 5


async def test_timestamp_attribute_and_dead_letters(pubsub_topic: PubSubTopic, tmp_path) -> None:
    sub = pubsub_topic.create_subscription()
    messages = [
        (b'{"v": 1}', {"ts": "2024-05-01T12:00:00.250Z"}),
        (b'{"v": 2}', {"ts": "1714564800500"}),  # milliseconds since the epoch
        (b'{"v": 3}', {"ts": "yesterday"}),  # bad attribute -> the source's dead letters
        (b'{"v": 4}', {}),  # missing attribute -> the source's dead letters
        (b"{not json", {"ts": "1714564801000"}),  # malformed payload -> the Parse step's dead letters
    ]
    ids = publish_many(pubsub_topic.server, pubsub_topic.path, messages)
    p = beam.Pipeline(options=options(tmp_path))
    data, bad_time = p | ReadFromPubSub(subscription=sub, timestamp_attribute="ts", with_dead_letters=True)
    parsed, bad_json = data | "Parse" >> beam.Map(orjson.loads).with_exception_handling()
    stamped = parsed | beam.Map(lambda v, t=beam.DoFn.TimestampParam: (v["v"], t.micros))
    job = await p.start()
    got: dict[str, list[Any]] = {"good": [], "time": [], "json": []}
    tasks = [
        asyncio.create_task(_collect(job, pc, got[k]))
        for k, pc in (("good", stamped), ("time", bad_time), ("json", bad_json))
    ]
    await wait_until(lambda: len(got["good"]) + len(got["time"]) + len(got["json"]) >= 5, "all 5 messages")
    await job.drain()
    for t in tasks:
        await t
    assert sorted(got["good"]) == [(1, 1_714_564_800_250_000), (2, 1_714_564_800_500_000)]
    bad = {b["message_id"]: b for b in got["time"]}
    assert set(bad) == {ids[2], ids[3]}
    assert bad[ids[2]]["raw"] == b'{"v": 3}' and bad[ids[2]]["attributes"] == {"ts": "yesterday"}
    assert "bad event time" in bad[ids[2]]["reason"] and "yesterday" in bad[ids[2]]["reason"]
    assert "'ts' is missing" in bad[ids[3]]["reason"]
    assert bad[ids[2]]["subscription"] == sub
    ((raw, error),) = got["json"]
    assert raw == b"{not json" and error[0] is orjson.JSONDecodeError
    assert reader_of(job).stats["dead_letters"] == 2


async def test_bad_timestamp_without_dead_letters_fails_the_job(pubsub_topic: PubSubTopic, tmp_path) -> None:
    sub = pubsub_topic.create_subscription()
    pubsub_topic.publish(b"x", ts="not a time")
    p = beam.Pipeline(options=options(tmp_path))
    p | ReadFromPubSub(subscription=sub, timestamp_attribute="ts") | beam.Map(len)
    job = await p.start()
    with pytest.raises(Exception, match="bad event time"):
        await job.wait()


async def test_acks_only_after_the_checkpoint_is_durable(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path
) -> None:
    sub = pubsub_topic.create_subscription(ack_deadline_seconds=2)
    n = 300
    publish_many(pubsub_server, pubsub_topic.path, [(b"%d" % i, {}) for i in range(n)])
    # No periodic checkpoint within the test: the only one is the drain's final checkpoint.
    p = beam.Pipeline(options=options(tmp_path, interval=3600))
    p | ReadFromPubSub(subscription=sub) | beam.Map(int)
    job = await p.start()
    await wait_until(lambda: stat(job, "emitted") >= n, "every message read")
    reader = reader_of(job)
    assert reader.stats["acked"] == 0
    assert reader.backlog() == n  # received, not acknowledged: leased instead
    await wait_until(lambda: reader.stats["extended"] >= n, "leases extended past the 2 s deadline")
    assert reader.stats["duplicates"] == 0
    await job.drain()
    assert reader.stats["acked"] == n and reader.backlog() == 0
    # Server side: nothing is pending. Shut the reader down (it nacks whatever it still holds, so anything
    # unacknowledged would be redelivered at once), publish a sentinel and read the subscription: only the
    # sentinel arrives.
    reader.shutdown()
    sentinel = pubsub_topic.publish(b"sentinel")
    got = pubsub_server.pull(sub, min_messages=1)
    assert [m.message.message_id for m in got] == [sentinel]


async def test_topic_read_creates_a_subscription_a_restart_reuses(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path
) -> None:
    def build() -> tuple[Any, Any]:
        p = beam.Pipeline(options=options(tmp_path, "--job_name=topic-read"))
        return p, p | ReadFromPubSub(topic=pubsub_topic.path)

    p, data = build()
    job = await p.start()
    got: list[bytes] = []
    task = asyncio.create_task(_collect(job, data, got))

    def subscriptions() -> list[str]:
        return list(pubsub_server.publisher.list_topic_subscriptions(request={"topic": pubsub_topic.path}))

    await wait_until(lambda: len(subscriptions()) == 1, "the job's subscription")
    (created,) = subscriptions()
    pubsub_topic.subscriptions.append(created)  # deleted with the topic
    assert "topic-read" in created
    pubsub_topic.publish(b"before")
    await wait_until(lambda: got == [b"before"], "the first message")
    await job.stop()  # checkpoint (acks) and end; the subscription stays
    task.cancel()
    pubsub_topic.publish(b"while stopped")

    p, data = build()
    job = await p.start()
    got2: list[bytes] = []
    task = asyncio.create_task(_collect(job, data, got2))
    await wait_until(lambda: got2 == [b"while stopped"], "the message published while the job was stopped")
    assert subscriptions() == [created]
    pubsub_topic.publish(b"after")
    await wait_until(lambda: len(got2) == 2, "a message published after the restart")
    await job.drain()
    await task
    assert got2 == [b"while stopped", b"after"]


async def test_a_missing_subscription_fails_the_job_clearly(pubsub_server: PubSubServer, tmp_path) -> None:
    missing = pubsub_server.subscription_path(pubsub_server.unique_name("missing"))
    p = beam.Pipeline(options=options(tmp_path))
    p | ReadFromPubSub(subscription=missing) | beam.Map(len)
    job = await p.start()
    with pytest.raises(Exception, match=f"{missing} does not exist"):
        await job.wait()
