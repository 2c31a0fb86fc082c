"""Google Cloud Pub/Sub with Beam's names and arguments (``apache_beam.io.gcp.pubsub``).

    messages = p | ReadFromPubSub(subscription="projects/my-project/subscriptions/readings",
                                  with_attributes=True, timestamp_attribute="ts")
    alerts | WriteToPubSub(topic="projects/my-project/topics/alerts")

The client is google-cloud-pubsub; ``PUBSUB_EMULATOR_HOST`` points it at an emulator (docs/pubsub.md).

**Reading** (`ReadFromPubSub`) is exactly-once in effect: a message is acknowledged only after the checkpoint that
covers its effects is durable, its ack deadline is extended meanwhile, and redeliveries are de-duplicated by
message id (or the ``id_label`` attribute) over a bounded horizon kept in the checkpoint. With ``topic=`` a
subscription is created for the job (named after the job and its state directory, so a restart reuses it and
gets what was published meanwhile; it is not deleted when the job ends). Details: `millstream.connectors.pubsub.source`.

Arguments beyond Beam's (keyword-only):

* ``max_out_of_orderness`` (seconds, default 10): the watermark bound. The subscription is one watermark split;
  the runtime's estimator for it is bounded out-of-orderness: watermark = the latest event time read minus this
  bound. Pub/Sub delivers roughly, not strictly, in publish order, and a redelivered message is as old as its
  first delivery; such a message is late (dropped or late-fired by the window's allowed lateness) if it falls
  behind the watermark. ``idle_timeout`` (seconds, default none): a subscription without messages for that long
  stops holding the watermark of a join with other inputs.
* ``with_dead_letters``: return ``(messages, dead_letters)``; a message whose ``timestamp_attribute`` is missing
  or unparsable becomes ``{"subscription", "message_id", "raw", "attributes", "reason"}`` instead of failing the
  run.
* ``dedup_horizon`` (seconds of running time, default 600) and ``dedup_max_ids`` (default 250,000): how long and
  how many message ids are remembered for de-duplication.
* ``max_outstanding_messages`` (default 100,000): messages received and not yet acknowledged, at most (flow
  control: messages wait at Pub/Sub beyond that; they are acknowledged at each checkpoint, so this also bounds
  throughput to about this many per ``--checkpoint_interval``).
* ``lease_extension`` (seconds, default the subscription's ack deadline) and ``max_lease_duration`` (seconds,
  default 3600): each outstanding message's deadline is extended by ``lease_extension`` before it runs out, for
  at most ``max_lease_duration`` after it arrived (0: never extended).

**Writing** (`WriteToPubSub`) publishes each checkpoint's messages after the checkpoint is durable and waits for
Pub/Sub to confirm them. Publishing is at-least-once (a commit interrupted by a crash is repeated after the
restart), so every message carries a deterministic id attribute, ``id_label`` or ``"millstream_id"`` by default;
consumers that de-duplicate by it get effectively-once output. ``timestamp_attribute`` gets each element's event
time (milliseconds since the epoch), which `ReadFromPubSub(timestamp_attribute=...)` reads back.
``publish_with_ordering_key`` publishes `PubsubMessage.ordering_key` (message ordering on the publisher).

Beam's module path is ``apache_beam.io.gcp.pubsub``; this module is ``millstream.connectors.pubsub.pubsubio``
(to be mirrored as ``millstream.io.gcp.pubsub``).
"""

from __future__ import annotations

from typing import Any

from millstream.connectors.pubsub.message import PubsubMessage, parse_subscription, parse_topic
from millstream.connectors.pubsub.sink import DEFAULT_ID_ATTRIBUTE, PubSubSink, publish_record
from millstream.connectors.pubsub.source import PubSubSource
from millstream.engine.model.core import Map
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.io import Read, Write
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.value_providers import resolve_value

__all__ = [
    "DEFAULT_ID_ATTRIBUTE",
    "PubsubMessage",
    "ReadFromPubSub",
    "ReadStringsFromPubSub",
    "WriteStringsToPubSub",
    "WriteToPubSub",
    "parse_subscription",
    "parse_topic",
]


class ReadFromPubSub(PTransform):
    """Messages of a Pub/Sub subscription (or of a topic, through a subscription created for the job).

    Yields ``bytes`` (message data), or `PubsubMessage` with ``with_attributes=True``; event time is the publish
    time or the ``timestamp_attribute``. See the module docstring for the arguments beyond Beam's.
    """

    def __init__(
        self,
        topic: str | None = None,
        subscription: str | None = None,
        id_label: str | None = None,
        with_attributes: bool = False,
        timestamp_attribute: str | None = None,
        *,
        max_out_of_orderness: float = 10.0,
        idle_timeout: float | None = None,
        with_dead_letters: bool = False,
        dedup_horizon: float = 600.0,
        dedup_max_ids: int = 250_000,
        max_outstanding_messages: int = 100_000,
        lease_extension: float | None = None,
        max_lease_duration: float = 3600.0,
    ) -> None:
        topic = resolve_value(topic, "ReadFromPubSub(topic)")
        subscription = resolve_value(subscription, "ReadFromPubSub(subscription)")
        id_label = resolve_value(id_label, "ReadFromPubSub(id_label)")
        timestamp_attribute = resolve_value(timestamp_attribute, "ReadFromPubSub(timestamp_attribute)")
        self.source = PubSubSource(
            topic,
            subscription,
            id_label,
            with_attributes,
            timestamp_attribute,
            dedup_horizon=dedup_horizon,
            dedup_max_ids=dedup_max_ids,
            max_outstanding_messages=max_outstanding_messages,
            lease_extension=lease_extension,
            max_lease_duration=max_lease_duration,
        )
        if max_out_of_orderness < 0:
            raise ValueError(f"max_out_of_orderness must be >= 0 seconds, got {max_out_of_orderness}")
        self.with_attributes = with_attributes
        self._read = Read(self.source, None, max_out_of_orderness, idle_timeout)
        if with_dead_letters:
            self._read = self._read.with_dead_letters()
        self.source_name = subscription or topic
        super().__init__(f"ReadFromPubSub({self.source_name})")

    def with_dead_letters(self, tag: str = "bad") -> ReadFromPubSub:
        """Return ``(messages, dead_letters)`` instead of failing on a bad timestamp attribute."""
        self._read = self._read.with_dead_letters(tag)
        return self

    def expand(self, pbegin: Any) -> Any:
        return pbegin | "Read" >> self._read


class WriteToPubSub(PTransform):
    """Publish ``bytes`` (or `PubsubMessage` with ``with_attributes=True``) to a topic, once per committed
    checkpoint, each with a deterministic id attribute (see the module docstring)."""

    def __init__(
        self,
        topic: str,
        with_attributes: bool = False,
        id_label: str | None = None,
        timestamp_attribute: str | None = None,
        publish_with_ordering_key: bool = False,
    ) -> None:
        topic = resolve_value(topic, "WriteToPubSub(topic)")
        id_label = resolve_value(id_label, "WriteToPubSub(id_label)")
        timestamp_attribute = resolve_value(timestamp_attribute, "WriteToPubSub(timestamp_attribute)")
        self.topic = topic
        self.with_attributes = with_attributes
        self.id_label = id_label
        self.timestamp_attribute = timestamp_attribute
        self.publish_with_ordering_key = publish_with_ordering_key
        self.sink = PubSubSink(topic, id_label, publish_with_ordering_key)
        super().__init__(f"WriteToPubSub({topic})")

    def expand(self, pcoll: Any) -> Any:
        with_attributes, ts_attr, ordering = (
            self.with_attributes,
            self.timestamp_attribute,
            self.publish_with_ordering_key,
        )

        def to_record(element: Any, timestamp: Any = DoFn.TimestampParam) -> Any:
            return publish_record(element, timestamp.micros, with_attributes, ts_attr, ordering)

        return pcoll | "ToPubsubMessage" >> Map(to_record) | "Write" >> Write(self.sink)


class ReadStringsFromPubSub(PTransform):
    """Beam's (deprecated) helper: message data decoded as UTF-8 text."""

    def __init__(
        self,
        topic: str | None = None,
        subscription: str | None = None,
        id_label: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._read = ReadFromPubSub(topic, subscription, id_label, **kwargs)
        super().__init__(f"ReadStringsFromPubSub({self._read.source_name})")

    def expand(self, pbegin: Any) -> Any:
        return pbegin | "Read" >> self._read | "Decode" >> Map(lambda data: data.decode("utf-8"))


class WriteStringsToPubSub(PTransform):
    """Beam's (deprecated) helper: text elements published as UTF-8 message data."""

    def __init__(self, topic: str) -> None:
        self._write = WriteToPubSub(topic)
        super().__init__(f"WriteStringsToPubSub({self._write.topic})")

    def expand(self, pcoll: Any) -> Any:
        return pcoll | "Encode" >> Map(lambda text: text.encode("utf-8")) | "Write" >> self._write
