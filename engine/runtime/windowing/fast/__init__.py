"""Fast paths of windowed aggregation for common strategies, each kept with its measured gain over the general path."""
