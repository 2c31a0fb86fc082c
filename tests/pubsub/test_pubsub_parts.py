"""The Pub/Sub connector's pure parts, without a server: names, event-time attributes, the de-duplication window,
the message type, and the checks on records to publish."""

from __future__ import annotations

import datetime
import hashlib
import pickle
import struct

import pytest

from millstream.connectors.pubsub.dedup import DedupWindow
from millstream.connectors.pubsub.message import (
    PubsubMessage,
    default_subscription_name,
    hash_id,
    parse_event_time,
    parse_subscription,
    parse_topic,
)
from millstream.connectors.pubsub.sink import publish_record
from millstream.connectors.pubsub.source import PubSubSource
from millstream.engine.model.timestamp import MIN_MICROS
from millstream.io.pubsub import ReadFromPubSub, WriteToPubSub

TOPIC = "projects/millstream-test/topics/readings"
SUB = "projects/millstream-test/subscriptions/readings"


def test_names_follow_beams_rules() -> None:
    assert parse_topic(TOPIC) == ("millstream-test", "readings")
    assert parse_subscription(SUB) == ("millstream-test", "readings")
    with pytest.raises(ValueError, match="projects/<project>/topics/<topic>"):
        parse_topic("readings")
    with pytest.raises(ValueError, match="subscriptions"):
        parse_subscription(TOPIC)
    with pytest.raises(ValueError, match="Invalid PubSub project name"):
        parse_topic("projects/p1/topics/t")  # project ids have at least 6 characters


def test_read_needs_exactly_one_of_topic_and_subscription() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ReadFromPubSub()
    with pytest.raises(ValueError, match="exactly one"):
        ReadFromPubSub(topic=TOPIC, subscription=SUB)
    with pytest.raises(ValueError, match="lease_extension"):
        ReadFromPubSub(subscription=SUB, lease_extension=601)
    with pytest.raises(ValueError, match="topics"):
        WriteToPubSub("not-a-topic")


@pytest.mark.parametrize(
    "text, micros",
    [
        ("1700000000123", 1_700_000_000_123_000),  # milliseconds since the epoch
        ("0", 0),
        ("2015-10-29T23:41:41.123Z", 1_446_162_101_123_000),
        ("2015-10-29T23:41:41Z", 1_446_162_101_000_000),
        ("2015-10-30T01:41:41.5+02:00", 1_446_162_101_500_000),
        ("2015-10-29T23:41:41.123456789Z", 1_446_162_101_123_456),  # beyond microseconds is dropped
    ],
)
def test_event_time_attribute_formats(text: str, micros: int) -> None:
    assert parse_event_time(text) == micros


@pytest.mark.parametrize("text", ["", "yesterday", "2015-10-29T23:41:41", "2015-10-29", "1.7e12", "12:00Z"])
def test_bad_event_time_attributes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_event_time(text)


def test_dedup_window_forgets_after_the_horizon() -> None:
    w = DedupWindow(horizon_s=60, max_ids=1000, bucket_s=10)
    assert w.add(1, now_s=0.0)
    assert not w.add(1, now_s=5.0)
    assert w.add(2, now_s=15.0)
    w.expire(now_s=69.0)  # bucket [0, 10) ends before 69 - 60: kept until it lies wholly outside
    assert not w.add(1, now_s=69.0)
    w.expire(now_s=71.0)
    assert 1 not in w.seen and 2 in w.seen
    assert w.add(1, now_s=71.0)  # outside the horizon: a redelivery now counts as new


def test_dedup_window_keeps_at_most_max_ids_dropping_the_oldest() -> None:
    w = DedupWindow(horizon_s=600, max_ids=5, bucket_s=10)
    for i in range(8):
        assert w.add(i, now_s=float(i * 3))
    assert len(w) == 5
    assert w.seen == {3, 4, 5, 6, 7}
    assert not w.add(7, now_s=30.0)
    assert w.add(0, now_s=30.0)


def test_dedup_snapshot_round_trips() -> None:
    w = DedupWindow(horizon_s=600, max_ids=100, bucket_s=10)
    ids = [hash_id(f"m{i}") for i in range(30)]
    for i, h in enumerate(ids):
        w.add(h, now_s=float(i))
    restored = DedupWindow(horizon_s=600, max_ids=100, bucket_s=10)
    restored.restore(w.snapshot())
    assert restored.seen == set(ids)
    assert [b[0] for b in restored.buckets] == [b[0] for b in w.buckets]
    assert all(not restored.add(h, now_s=40.0) for h in ids)


def test_hash_id_is_stable_and_64_bit() -> None:
    # Stored in checkpoints: must not depend on the process (str hashing is randomised per process).
    assert hash_id("m123") == hash_id("m123") != hash_id("m124")
    digest = hashlib.blake2b(b"1234567890123456", digest_size=8).digest()
    assert hash_id("1234567890123456") == struct.unpack("<q", digest)[0]
    assert -(2**63) <= hash_id("x") < 2**63


def test_default_subscription_is_stable_per_job_and_state_dir(tmp_path) -> None:
    a = default_subscription_name(TOPIC, "iot job", str(tmp_path / "a"))
    assert a == default_subscription_name(TOPIC, "iot job", str(tmp_path / "a"))
    assert a != default_subscription_name(TOPIC, "iot job", str(tmp_path / "b"))
    assert a.startswith("projects/millstream-test/subscriptions/millstream-iot-job-")
    parse_subscription(a)


def test_pubsub_message_like_beams() -> None:
    t = datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC)
    m = PubsubMessage(b"x", {"a": "1"}, "m1", t, "k")
    assert m == PubsubMessage(b"x", {"a": "1"})  # data and attributes only, as in Beam
    assert m != PubsubMessage(b"x", {"a": "2"})
    assert hash(m) == hash(PubsubMessage(b"x", {"a": "1"}))
    back = pickle.loads(pickle.dumps(m))
    assert (back.data, back.attributes, back.message_id, back.publish_time, back.ordering_key) == (
        b"x",
        {"a": "1"},
        "m1",
        t,
        "k",
    )
    with pytest.raises(ValueError):
        PubsubMessage(None, {})


def test_publish_record_checks_and_stamps() -> None:
    assert publish_record(b"x", 1_500_000, False, None, False) == (b"x", None, "")
    assert publish_record("tëxt", 0, False, None, False) == ("tëxt".encode(), None, "")
    assert publish_record(b"x", 1_500_000, False, "ts", False) == (b"x", {"ts": "1500"}, "")
    assert publish_record(b"x", MIN_MICROS, False, "ts", False) == (
        b"x",
        None,
        "",
    )  # no event time: no attribute
    msg = PubsubMessage(b"d", {"a": "1"}, ordering_key="dev-1")
    assert publish_record(msg, 0, True, None, True) == (b"d", {"a": "1"}, "dev-1")
    assert publish_record(msg, 0, True, None, False) == (b"d", {"a": "1"}, "")
    with pytest.raises(TypeError, match="PubsubMessage"):
        publish_record(b"x", 0, True, None, False)
    with pytest.raises(TypeError, match="bytes"):
        publish_record({"not": "bytes"}, 0, False, None, False)
    with pytest.raises(TypeError, match="str -> str"):
        publish_record(PubsubMessage(b"d", {"a": 1}), 0, True, None, False)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="1024"):
        publish_record(PubsubMessage(b"d", {"a": "v" * 1025}), 0, True, None, False)


def test_source_is_unbounded_and_named() -> None:
    src = PubSubSource(subscription=SUB)
    assert not src.is_bounded
    assert src.display_name() == f"PubSub({SUB})"
