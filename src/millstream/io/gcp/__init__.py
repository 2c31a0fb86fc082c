"""Beam's ``apache_beam.io.gcp`` package path: `millstream.io.gcp.pubsub`."""
