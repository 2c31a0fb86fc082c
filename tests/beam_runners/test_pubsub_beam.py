"""Pub/Sub on Beam's runners: millstream's ReadFromPubSub/WriteToPubSub become Beam's.

Beam's Python Pub/Sub read is a native source only Dataflow executes: its translation is checked in the graph
(the portable pipeline's ``pubsub_read`` step with subscription, topic and attributes; the Dataflow dry run
checks it too). The write runs on Prism against the pstest server (Beam's Python publisher honours
``PUBSUB_EMULATOR_HOST``) and publishes what the local run publishes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apache_beam")

from apache_beam.portability import common_urns  # noqa: E402
from apache_beam.portability.api import beam_runner_api_pb2  # noqa: E402

import millstream as beam  # noqa: E402
from millstream.engine.translate.beam.hooks import UntranslatableIOError  # noqa: E402
from millstream.engine.translate.beam.translator import translate  # noqa: E402
from millstream.io.gcp.pubsub import PubsubMessage, ReadFromPubSub, WriteToPubSub  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402
from millstream.transforms import window  # noqa: E402


def _pubsub_fixtures() -> Any:
    """tests/pubsub/conftest.py (the pstest server fixtures), loaded by path under its own name."""
    name = "_ms_beam_pubsub_fixtures"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "pubsub" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


pubsub_server = _pubsub_fixtures().pubsub_server
pubsub_topic = _pubsub_fixtures().pubsub_topic

SUBSCRIPTION = "projects/my-project/subscriptions/readings"
TOPIC = "projects/my-project/topics/alerts"


def pipeline_steps(p: Any) -> dict[str, beam_runner_api_pb2.PTransform]:
    proto = translate(p).to_runner_api()
    return {t.unique_name: t for t in proto.components.transforms.values()}


def test_read_becomes_beams_pubsub_read_with_subscription_and_attributes():
    p = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    _ = p | "Readings" >> ReadFromPubSub(
        subscription=SUBSCRIPTION, with_attributes=True, timestamp_attribute="ts", id_label="uid"
    )
    steps = pipeline_steps(p)
    reads = [t for t in steps.values() if t.spec.urn == common_urns.composites.PUBSUB_READ.urn]
    assert [t.unique_name for t in reads] == ["Readings/Read/ReadFromPubSub/Read"]
    payload = beam_runner_api_pb2.PubSubReadPayload.FromString(reads[0].spec.payload)
    assert payload.subscription == SUBSCRIPTION and payload.topic == ""
    assert payload.timestamp_attribute == "ts" and payload.id_attribute == "uid" and payload.with_attributes
    assert "Readings/Read/ToMessage" in steps  # Beam's messages become millstream's PubsubMessage


def test_read_of_a_topic_keeps_the_topic():
    p = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    _ = p | "Alerts" >> ReadFromPubSub(topic=TOPIC)
    (read,) = [t for t in pipeline_steps(p).values() if t.spec.urn == common_urns.composites.PUBSUB_READ.urn]
    payload = beam_runner_api_pb2.PubSubReadPayload.FromString(read.spec.payload)
    assert payload.topic == TOPIC and payload.subscription == "" and not payload.with_attributes


def test_dead_letters_on_a_pubsub_read_are_refused_in_one_line():
    p = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    _ = p | ReadFromPubSub(subscription=SUBSCRIPTION, timestamp_attribute="ts", with_dead_letters=True)
    with pytest.raises(
        UntranslatableIOError, match=r"with_dead_letters\(\) on Pub/Sub has no Beam counterpart"
    ):
        translate(p)


EVENTS = [(b"alpha", 1.5), (b"beta", 2.25), (b"gamma", 3.0)]


def publish(p: Any, topic: str) -> None:
    """Messages with an attribute and their event time in ``ts`` (milliseconds)."""
    _ = (
        p
        | "Events" >> beam.Create(EVENTS)
        | "Stamp" >> beam.Map(lambda e: window.TimestampedValue(PubsubMessage(e[0], {"kind": "test"}), e[1]))
        | "Alerts" >> WriteToPubSub(topic, with_attributes=True, timestamp_attribute="ts")
    )


def received(server: Any, subscription: str) -> list[tuple[bytes, dict[str, str]]]:
    messages = server.pull(subscription, min_messages=len(EVENTS), timeout=30)
    server.ack(subscription, [m.ack_id for m in messages])
    return sorted((m.message.data, dict(m.message.attributes)) for m in messages)


def test_write_on_prism_publishes_what_the_local_run_publishes(
    prism_endpoint: str, pubsub_server: Any, pubsub_topic: Any, tmp_path: Path
) -> None:
    # LOOPBACK: the SDK harness is this process, which has PUBSUB_EMULATOR_HOST (a worker pool started before
    # the pstest server would publish to the real service)
    prism = ["--runner=PortableRunner", f"--job_endpoint={prism_endpoint}", "--environment_type=LOOPBACK"]
    subscription = pubsub_topic.create_subscription()
    runs = {}
    for name, flags in (("local", ["--runner=DirectRunner", f"--state_dir={tmp_path}"]), ("prism", prism)):
        with beam.Pipeline(options=PipelineOptions(flags)) as p:
            publish(p, pubsub_topic.path)
        runs[name] = received(pubsub_server, subscription)
    assert [data for data, _ in runs["local"]] == [b"alpha", b"beta", b"gamma"]
    assert [attrs["ts"] for _, attrs in runs["local"]] == ["1500", "2250", "3000"]
    # the local sink adds its deterministic id attribute; Beam's publisher sets one only on Dataflow
    assert all("millstream_id" in attrs for _, attrs in runs["local"])
    without_id = [
        (data, {k: v for k, v in attrs.items() if k != "millstream_id"}) for data, attrs in runs["local"]
    ]
    assert runs["prism"] == without_id
