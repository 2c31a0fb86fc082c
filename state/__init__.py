"""Durable keyed state: backends, codecs, write-back cache, checkpoints (knows nothing of windows)."""
