"""Checkpoints: the coordinator's commit protocol, incremental capture, the versioned operator store,
per-operator records."""
