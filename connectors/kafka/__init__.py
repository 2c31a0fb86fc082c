"""Kafka (aiokafka): the source, the exactly-once transactional sink, and what both share."""
