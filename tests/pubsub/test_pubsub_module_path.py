"""Beam's module path for Pub/Sub, `apache_beam.io.gcp.pubsub`, exists here too (`millstream.io.gcp.pubsub`)."""

from __future__ import annotations


def test_beams_module_path_apache_beam_io_gcp_pubsub_is_mirrored() -> None:
    import apache_beam.io.gcp.pubsub as beam_pubsub

    import millstream.io.gcp.pubsub as at_beams_path
    import millstream.io.pubsub as ours

    for name in (
        "PubsubMessage",
        "ReadFromPubSub",
        "WriteToPubSub",
        "ReadStringsFromPubSub",
        "WriteStringsToPubSub",
    ):
        assert hasattr(beam_pubsub, name), name
        assert getattr(at_beams_path, name) is getattr(ours, name), name
