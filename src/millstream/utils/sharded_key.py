"""Beam's `apache_beam.utils.sharded_key`: ShardedKey, the key `GroupIntoBatches.WithShardedKey` outputs."""

from millstream.engine.model.util_batch import ShardedKey

__all__ = ["ShardedKey"]
