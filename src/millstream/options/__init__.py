"""Beam's `apache_beam.options`."""
