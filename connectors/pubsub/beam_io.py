"""Beam's IO for the Pub/Sub connector: `Read`/`Write` of Pub/Sub become Beam's ``ReadFromPubSub`` and
``WriteToPubSub`` (``apache_beam.io.gcp.pubsub``).

Registered with the translator's hook by `source.py` and `sink.py`; imported only when a pipeline is
translated. The read keeps the topic or subscription, ``id_label``, ``with_attributes`` and
``timestamp_attribute`` (the runner then reads event time from the attribute and de-duplicates by the id);
Beam's messages become millstream's `PubsubMessage`. The write publishes what millstream's
``ToPubsubMessage`` step made (data, attributes with the event-time attribute already set, ordering key) with
``with_attributes=True``; on Dataflow the sink's id attribute is Beam's ``id_label`` (Dataflow fills it with a
unique id per message), elsewhere Beam's Python publisher cannot set one and messages carry no id attribute.

Beam's Python read is a native source that only Dataflow (and Beam's Python DirectRunner in streaming mode)
executes; portable runners such as Prism cannot run it, so Pub/Sub reads move to Dataflow. The write runs on
Prism too (Beam's Python publisher, which honours ``PUBSUB_EMULATOR_HOST``). Not translated (one
line before submission): ``with_dead_letters()`` on the read (on Dataflow the runner parses the timestamp
attribute itself; a bad one never reaches the pipeline).

>>> from millstream.connectors.pubsub.sink import PubSubSink
>>> from millstream.engine.translate.beam.hooks import beam_io_target
>>> beam_io_target(PubSubSink("projects/p/topics/t"))
'millstream.connectors.pubsub.beam_io:write_pubsub'
"""

from __future__ import annotations

import datetime
from typing import Any

from millstream.connectors.pubsub.message import PubsubMessage
from millstream.connectors.pubsub.sink import PubSubSink
from millstream.connectors.pubsub.source import PubSubSource
from millstream.engine.translate.beam.hooks import UntranslatableIOError


def _publish_time(value: Any) -> datetime.datetime | None:
    """Beam's publish time (a datetime, or Beam's Timestamp) as an aware UTC datetime."""
    if value is None or isinstance(value, datetime.datetime):
        return value
    to_utc = getattr(value, "to_utc_datetime", None)
    if callable(to_utc):
        result: datetime.datetime = to_utc(has_tz=True)
        return result
    return None


def to_message(message: Any) -> PubsubMessage:
    """Beam's ``PubsubMessage`` as millstream's (data, attributes, id, publish time, ordering key)."""
    return PubsubMessage(
        message.data,
        dict(message.attributes or {}),
        message.message_id,
        _publish_time(message.publish_time),
        getattr(message, "ordering_key", "") or "",
    )


def read_pubsub(read: Any, beam: Any) -> Any:
    """``Read(PubSubSource)`` as Beam's ``ReadFromPubSub`` with the same subscription or topic and options."""
    from apache_beam.io.gcp.pubsub import ReadFromPubSub

    source: PubSubSource = read.source
    if read.dead_letter_tag is not None:
        raise UntranslatableIOError(
            f"step '{read.label}': with_dead_letters() on Pub/Sub has no Beam counterpart (on Dataflow the "
            "runner reads the timestamp attribute itself); remove it to run on Beam"
        )
    external = ReadFromPubSub(
        topic=source.topic if source.subscription is None else None,
        subscription=source.subscription,
        id_label=source.id_label,
        with_attributes=source.with_attributes,
        timestamp_attribute=source.timestamp_attribute,
    )
    if not source.with_attributes:
        return external

    class _ReadPubSub(beam.PTransform):
        """Beam's read, then its messages as millstream's."""

        def expand(self, pbegin: Any) -> Any:
            return pbegin | "ReadFromPubSub" >> external | "ToMessage" >> beam.Map(to_message)

    return _ReadPubSub()


def write_pubsub(write: Any, beam: Any) -> Any:
    """``Write(PubSubSink)`` as Beam's ``WriteToPubSub`` of the messages millstream's ``ToPubsubMessage`` made."""
    from apache_beam.io.gcp.pubsub import PubsubMessage as BeamMessage
    from apache_beam.io.gcp.pubsub import WriteToPubSub

    sink: PubSubSink = write.sink

    def to_beam(record: Any) -> Any:
        data, attributes, ordering_key = record
        return BeamMessage(data, attributes or {}, ordering_key=ordering_key)

    class _WritePubSub(beam.PTransform):
        """millstream's publish records as Beam's messages, then Beam's write."""

        def expand(self, pcoll: Any) -> Any:
            options = pcoll.pipeline.options
            runner = str(options.get_all_options().get("runner") or "") if options is not None else ""
            # Beam writes the id attribute only on Dataflow (its Python publisher refuses id_label elsewhere)
            id_label = sink.id_attribute if "Dataflow" in runner else None
            return (
                pcoll
                | "ToBeamMessage" >> beam.Map(to_beam)
                | "WriteToPubSub"
                >> WriteToPubSub(
                    sink.topic,
                    with_attributes=True,
                    id_label=id_label,
                    publish_with_ordering_key=sink.ordering,
                )
            )

    return _WritePubSub()


__all__ = ["read_pubsub", "to_message", "write_pubsub"]
