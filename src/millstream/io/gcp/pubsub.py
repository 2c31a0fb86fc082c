"""Beam's module path ``apache_beam.io.gcp.pubsub``: the same objects as `millstream.io.pubsub`, so Beam
programs importing ``from apache_beam.io.gcp.pubsub import ReadFromPubSub`` need only the package renamed."""

from millstream.io.pubsub import (
    DEFAULT_ID_ATTRIBUTE,
    PubsubMessage,
    ReadFromPubSub,
    ReadStringsFromPubSub,
    WriteStringsToPubSub,
    WriteToPubSub,
    parse_subscription,
    parse_topic,
)

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
