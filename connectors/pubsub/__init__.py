"""Google Cloud Pub/Sub: the source (acknowledged after checkpoints, de-duplicated by id) and the sink."""
