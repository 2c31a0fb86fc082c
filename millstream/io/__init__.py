"""Beam's `apache_beam.io`: connectors. File, Kafka and Pub/Sub connectors are added here as they land."""

__all__: list[str] = []
