"""Smoke tests of the real Pub/Sub test server through the real google-cloud-pubsub client.

They pin the server behaviours the Pub/Sub connector relies on: publish/pull/ack, attributes,
redelivery after a nack or an expired ack deadline (same message_id, new ack_id), streaming pull,
and a restart on the same address.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from .conftest import MIN_ACK_DEADLINE_SECONDS, PubSubServer, PubSubTopic

pytestmark = pytest.mark.pubsub

WAIT_S = 60.0  # generous upper bound for conditions; tests finish as soon as the condition holds


def _nack_then_pull(server: PubSubServer, sub: str, ack_ids: list[str], expect: int) -> list[Any]:
    """Nack `ack_ids` (deadline 0) and pull: a message still pending comes straight back."""
    server.modify_ack_deadline(sub, ack_ids, 0)
    return server.pull(sub, min_messages=expect)


def test_client_is_pointed_at_the_server(pubsub_server: PubSubServer) -> None:
    assert os.environ["PUBSUB_EMULATOR_HOST"] == pubsub_server.host
    assert pubsub_server.host.startswith("127.0.0.1:")
    assert pubsub_server.running


def test_subscription_ack_deadline_defaults_and_limits(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic
) -> None:
    subscriber = pubsub_server.subscriber
    unset = pubsub_server.subscription_path(pubsub_server.unique_name("sub"))
    subscriber.create_subscription(request={"name": unset, "topic": pubsub_topic.path}, timeout=30)
    pubsub_topic.subscriptions.append(unset)  # deleted with the topic
    # Like the real service, an unset (0) deadline means 10 s.
    got = subscriber.get_subscription(request={"subscription": unset}, timeout=30)
    assert got.ack_deadline_seconds == 10

    short = pubsub_topic.create_subscription(ack_deadline_seconds=MIN_ACK_DEADLINE_SECONDS)
    got = subscriber.get_subscription(request={"subscription": short}, timeout=30)
    assert got.ack_deadline_seconds == MIN_ACK_DEADLINE_SECONDS
    # Out of range is InvalidArgument (not retried by the client), on create and on update.
    with pytest.raises(gexc.InvalidArgument, match="ack_deadline_seconds"):
        pubsub_topic.create_subscription(ack_deadline_seconds=601)
    with pytest.raises(gexc.InvalidArgument, match="ack_deadline_seconds"):
        subscriber.update_subscription(
            request={
                "subscription": {"name": short, "ack_deadline_seconds": MIN_ACK_DEADLINE_SECONDS - 1},
                "update_mask": {"paths": ["ack_deadline_seconds"]},
            },
            timeout=30,
        )
    updated = subscriber.update_subscription(
        request={
            "subscription": {"name": short, "ack_deadline_seconds": 600},
            "update_mask": {"paths": ["ack_deadline_seconds"]},
        },
        timeout=30,
    )
    assert updated.ack_deadline_seconds == 600


def test_publish_pull_ack(pubsub_server: PubSubServer, pubsub_topic: PubSubTopic) -> None:
    sub = pubsub_topic.create_subscription()
    sent = {pubsub_topic.publish(f"m{i}".encode()): f"m{i}".encode() for i in range(3)}

    got = pubsub_server.pull(sub, min_messages=3)

    assert {m.message.message_id: m.message.data for m in got} == sent
    acked_ids = [m.ack_id for m in got]
    pubsub_server.ack(sub, acked_ids)

    # Prove the acks stuck: nacking the old ack ids would bring back any message still pending, so the
    # next pull must return only the fresh sentinel.
    sentinel = pubsub_topic.publish(b"sentinel")
    again = _nack_then_pull(pubsub_server, sub, acked_ids, expect=1)
    assert [m.message.message_id for m in again] == [sentinel]


def test_attributes_and_binary_data_round_trip(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic
) -> None:
    sub = pubsub_topic.create_subscription()
    data = bytes(range(256))
    attrs = {"event_time": "2024-01-02T03:04:05.123456Z", "key": "ünïcode ✓", "empty": ""}
    message_id = pubsub_topic.publish(data, **attrs)

    (received,) = pubsub_server.pull(sub)

    assert received.message.message_id == message_id
    assert received.message.data == data
    assert dict(received.message.attributes) == attrs
    assert received.message.publish_time.timestamp() > 0
    pubsub_server.ack(sub, [received.ack_id])


def test_nack_redelivers_same_message_immediately(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic
) -> None:
    # A long deadline: the only way the message can come back within the test is the nack.
    sub = pubsub_topic.create_subscription(ack_deadline_seconds=600)
    message_id = pubsub_topic.publish(b"again", n="1")
    (first,) = pubsub_server.pull(sub)

    (second,) = _nack_then_pull(pubsub_server, sub, [first.ack_id], expect=1)

    assert second.message.message_id == message_id == first.message.message_id
    assert second.message.data == b"again"
    assert dict(second.message.attributes) == {"n": "1"}
    assert second.ack_id != first.ack_id  # each delivery has its own ack id
    pubsub_server.ack(sub, [second.ack_id])


def test_expired_ack_deadline_redelivers(pubsub_server: PubSubServer, pubsub_topic: PubSubTopic) -> None:
    # The server allows 1 s (real Pub/Sub: 10 s); the pull loop waits for the redelivery itself.
    sub = pubsub_topic.create_subscription(ack_deadline_seconds=1)
    message_id = pubsub_topic.publish(b"slow consumer")
    (first,) = pubsub_server.pull(sub)

    redelivered = pubsub_server.pull(sub, min_messages=1, timeout=WAIT_S)

    assert [m.message.message_id for m in redelivered] == [message_id]
    assert redelivered[0].ack_id != first.ack_id
    pubsub_server.ack(sub, [redelivered[0].ack_id])


def test_streaming_pull_receives_every_message(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic
) -> None:
    n = 50
    sub = pubsub_topic.create_subscription()
    sent = {pubsub_topic.publish(f"s{i}".encode(), i=str(i)) for i in range(n)}
    lock = threading.Lock()
    received: list[str] = []
    all_in = threading.Event()

    def on_message(message: Any) -> None:
        with lock:
            received.append(message.message_id)
            if len(set(received)) >= n:
                all_in.set()
        message.ack()

    future = pubsub_server.subscriber.subscribe(sub, callback=on_message)
    try:
        assert all_in.wait(WAIT_S), f"only {len(set(received))} of {n} messages arrived"
    finally:
        future.cancel()
        future.result(timeout=WAIT_S)  # joins the streaming-pull threads

    assert set(received) == sent


def test_restart_on_same_address_starts_empty(pubsub_server: PubSubServer) -> None:
    topic = pubsub_server.create_topic()
    host = pubsub_server.host
    port = int(host.rsplit(":", 1)[1])

    pubsub_server.stop()
    assert not pubsub_server.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

    pubsub_server.start()
    assert pubsub_server.host == host
    # The fake is in-memory: everything created before the restart is gone.
    with pytest.raises(gexc.NotFound):
        pubsub_server.publisher.get_topic(request={"topic": topic}, timeout=30)
    topic = pubsub_server.create_topic()
    sub = pubsub_server.create_subscription(topic)
    message_id = pubsub_server.publish(topic, b"after restart")
    assert [m.message.message_id for m in pubsub_server.pull(sub)] == [message_id]
