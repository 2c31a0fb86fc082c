"""WriteToPubSub against the real (pstest) server: nothing is published before the checkpoint commits; then every
message, with its attributes, event-time attribute, ordering key and a deterministic id; a repeated commit
republishes the same ids."""

from __future__ import annotations

import re
from typing import Any

import pytest

import millstream as beam
from millstream.connectors.pubsub.sink import PubSubSink, PubSubSinkWriter
from millstream.io.pubsub import PubsubMessage, ReadFromPubSub, WriteToPubSub

from .conftest import PubSubServer, PubSubTopic
from support.pubsub import drain_subscription, options, publish_many, stat, wait_until

pytestmark = pytest.mark.pubsub


def _sink_node(job: Any) -> Any:
    (node,) = [n for n in job.plan.nodes.values() if hasattr(n, "writer")]
    return node


async def test_published_after_the_checkpoint_with_ids_and_attributes(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path
) -> None:
    source_sub = pubsub_topic.create_subscription()
    out_topic = pubsub_server.create_topic()
    out_sub = pubsub_server.create_subscription(out_topic)
    n = 50
    publish_many(
        pubsub_server,
        pubsub_topic.path,
        [(f"r{i}".encode(), {"ts": str(1_700_000_000_000 + i), "dev": f"d{i % 3}"}) for i in range(n)],
    )

    def relabel(m: PubsubMessage) -> PubsubMessage:
        assert m.data is not None and m.attributes is not None
        return PubsubMessage(m.data.upper(), {"dev": m.attributes["dev"]}, ordering_key=m.attributes["dev"])

    p = beam.Pipeline(options=options(tmp_path, interval=3600))  # only the drain's final checkpoint
    (
        p
        | ReadFromPubSub(subscription=source_sub, with_attributes=True, timestamp_attribute="ts")
        | beam.Map(relabel)
        | WriteToPubSub(
            out_topic, with_attributes=True, timestamp_attribute="event_ms", publish_with_ordering_key=True
        )
    )
    job = await p.start()
    sink = _sink_node(job)
    await wait_until(lambda: stat(job, "emitted") == n and sink.elements_in == n, "every message at the sink")
    # Nothing is published before a checkpoint commits: a sentinel published now is the only message there.
    sentinel = pubsub_server.publish(out_topic, b"sentinel")
    assert [m.message.message_id for m in pubsub_server.pull(out_sub)] == [sentinel]
    pubsub_server.ack(out_sub, [m.ack_id for m in pubsub_server.pull(out_sub, min_messages=0, timeout=0)])
    await job.drain()
    got = drain_subscription(
        pubsub_server, out_sub, lambda ms: len([m for m in ms if m.data != b"sentinel"]) >= n
    )
    got = [m for m in got if m.data != b"sentinel"]
    assert sorted(m.data for m in got) == sorted(f"R{i}".encode() for i in range(n))
    ids = [m.attributes["millstream_id"] for m in got]
    assert len(set(ids)) == n
    run = sink.writer.run
    assert all(re.fullmatch(rf"{run}-\d+-\d+", i) for i in ids)
    for m in got:
        i = int(m.data[1:])
        assert m.attributes["dev"] == f"d{i % 3}" == m.ordering_key
        assert m.attributes["event_ms"] == str(1_700_000_000_000 + i)  # the element's event time, in ms


async def test_a_repeated_commit_republishes_the_same_ids(pubsub_server: PubSubServer, tmp_path) -> None:
    topic = pubsub_server.create_topic()
    sub = pubsub_server.create_subscription(topic)

    class Job:
        state_dir = str(tmp_path / "state")
        job_name = "repeat"

    sink = PubSubSink(topic)
    writer = sink.create_writer(None, Job())
    assert isinstance(writer, PubSubSinkWriter)

    def recovering_writer() -> PubSubSinkWriter:  # a writer of the restarted job, for the same sink
        w = sink.create_writer(None, Job())
        assert isinstance(w, PubSubSinkWriter)
        w.tag = writer.tag
        return w

    await writer.recover(None, None)
    await writer.write([(f"x{i}".encode(), {"k": str(i)}, "") for i in range(20)])
    record = await writer.prepare(7)
    # The crash the kill -9 tests force: the epoch is published, and the process dies before marking it done.
    values = [(f"x{i}".encode(), {"k": str(i)}, "") for i in range(20)]
    writer._publish(7, record["run"], values)
    first = drain_subscription(pubsub_server, sub, lambda ms: len(ms) >= 20)
    # After the restart, recovery finishes the commit of the durable checkpoint: the same messages again.
    await recovering_writer().recover(7, record)
    second = drain_subscription(pubsub_server, sub, lambda ms: len(ms) >= 20)
    ids1 = {m.attributes["millstream_id"]: m.data for m in first}
    ids2 = {m.attributes["millstream_id"]: m.data for m in second}
    assert len(ids1) == 20 and ids1 == ids2  # consumers de-duplicating by the id see each message once
    # The epoch is now marked done: recovering again publishes nothing more.
    third = recovering_writer()
    await third.recover(7, record)
    assert third.published == 0
