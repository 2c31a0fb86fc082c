"""The IoT example end to end on the real (pstest) server, in process: readings published -> windowed job ->
aggregates, alerts and dead letters equal an independent computation."""

from __future__ import annotations

import json
import time

import pytest

import millstream as beam

from .conftest import PubSubServer, PubSubTopic
from support.pubsub import (
    assert_aggregates,
    committed_rows,
    drain_subscription,
    expected_aggregates,
    expected_alerts,
    final_panes,
    iot_readings,
    load_example,
    options,
    publish_many,
    stat,
    unique_by_id,
    wait_until,
)

pytestmark = pytest.mark.pubsub


async def test_iot_example_end_to_end(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path
) -> None:
    example = load_example()
    readings_sub = pubsub_topic.create_subscription(ack_deadline_seconds=2)
    alerts_topic = pubsub_server.create_topic()
    alerts_sub = pubsub_server.create_subscription(alerts_topic)
    devices = example.write_devices(str(tmp_path / "devices.jsonl"))
    start_ms = int(time.time() * 1000) // 60_000 * 60_000
    readings = iot_readings(example, 600, seed=3, start_ms=start_ms)
    bad = [
        (b'{"device": "dev-001", "value": "hot"}', {"ts": str(start_ms)}),  # the Parse step rejects it
        (b"\xff\xfe not json", {"ts": str(start_ms)}),
        (b'{"device": "dev-001", "value": 1}', {"ts": "tomorrow"}),  # the source rejects its event time
        (b'{"device": "dev-001", "value": 1}', {}),
    ]
    ids = publish_many(pubsub_server, pubsub_topic.path, readings + bad)
    cfg = example.Config(
        devices=str(tmp_path / "devices.jsonl"),
        output=str(tmp_path / "out"),
        subscription=readings_sub,
        alerts_topic=alerts_topic,
        window=2.0,
        early_every=0.3,
        allowed_lateness=3600,
        max_out_of_orderness=1.0,
    )
    p = beam.Pipeline(options=options(tmp_path))
    example.build(p, cfg)
    job = await p.start()
    total = len(readings) + len(bad)
    await wait_until(lambda: stat(job, "emitted") + stat(job, "dead_letters") >= total, "every message read")
    await job.drain()

    rows = committed_rows(str(tmp_path / "out" / "aggregates"))
    assert_aggregates(rows, expected_aggregates(example, readings, devices, cfg.window))
    assert final_panes(rows)[("unknown", example.iso(start_ms * 1000))]["count"] == 1
    dead = {d["message_id"]: d for d in committed_rows(str(tmp_path / "out" / "dead-letters"))}
    bad_ids = ids[len(readings) :]
    assert sorted(dead) == sorted(bad_ids)
    assert [dead[i]["step"] for i in bad_ids] == ["Parse", "Parse", "ReadReadings", "ReadReadings"]
    assert "value is not a number" in dead[bad_ids[0]]["reason"]
    assert "not JSON" in dead[bad_ids[1]]["reason"]
    assert "tomorrow" in dead[bad_ids[2]]["reason"] and "missing" in dead[bad_ids[3]]["reason"]

    want = expected_alerts(readings, ids, devices)
    assert want  # the demo data has readings above their limits
    alerts = unique_by_id(
        drain_subscription(pubsub_server, alerts_sub, lambda ms: len(unique_by_id(ms)) >= len(want))
    )
    got = sorted(json.loads(m.data)["message_id"] for m in alerts.values())
    assert got == want
    published = {mid: attrs for (_, attrs), mid in zip(readings, ids)}
    for m in alerts.values():  # each alert carries its reading's event time
        assert m.attributes["ts"] == published[json.loads(m.data)["message_id"]]["ts"]
