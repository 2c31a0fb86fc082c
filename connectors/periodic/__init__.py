"""Periodic impulses (Beam's ``apache_beam.transforms.periodicsequence``): elements fired on processing time."""
