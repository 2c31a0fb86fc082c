"""Pub/Sub sink with encrypted state, against the real (pstest) server: the epochs it spills beside the state
directory hold user data, so they are sealed with the state's cipher; every message is still published."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import msgpack
import pytest

import millstream as beam
from millstream.io.pubsub import ReadFromPubSub, WriteToPubSub

from .conftest import PubSubServer, PubSubTopic
from support.pubsub import drain_subscription, options, publish_many, stat, wait_until

pytestmark = pytest.mark.pubsub

MARK = "SEALEDMARKERzq"


async def test_spilled_epochs_are_sealed_and_every_message_is_published(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path: Path
) -> None:
    key = tmp_path / "key"
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    source_sub = pubsub_topic.create_subscription()
    out_topic = pubsub_server.create_topic()
    out_sub = pubsub_server.create_subscription(out_topic)
    n = 40
    publish_many(pubsub_server, pubsub_topic.path, [(f"{MARK}{i}".encode(), {}) for i in range(n)])
    p = beam.Pipeline(options=options(tmp_path, f"--state_encryption_key=file:{key}", interval=3600))
    p | ReadFromPubSub(subscription=source_sub) | beam.Map(bytes.upper) | WriteToPubSub(out_topic)
    job: Any = await p.start()
    await wait_until(lambda: stat(job, "emitted") == n, "every message read")
    await job.drain()
    got = drain_subscription(pubsub_server, out_sub, lambda ms: len(ms) >= n)
    assert sorted(m.data for m in got) == sorted(f"{MARK}{i}".upper().encode() for i in range(n))
    spilled = [f for f in (tmp_path / "state.pubsub").rglob("*") if f.is_file()]
    assert spilled, "the sink spilled its epoch beside the state directory"
    for f in spilled:
        data = f.read_bytes()
        assert MARK.upper().encode() not in data, f"{f} holds plaintext"
        # sealed by the job's cipher under the epoch's name (the .done marker keeps the sealed bytes)
        name = f.name.removesuffix(".done") + ".msgpack" if f.name.endswith(".done") else f.name
        values = msgpack.unpackb(job.plan.state_cipher.open(name.encode(), data, str(f)), raw=False)
        assert any(MARK.upper().encode() in bytes(v[0]) for v in values)
