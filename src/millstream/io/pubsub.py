"""Google Cloud Pub/Sub with Beam's names and arguments (``apache_beam.io.gcp.pubsub``)."""

from millstream.connectors.pubsub.pubsubio import (
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
