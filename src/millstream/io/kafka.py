"""Kafka with Beam's names (``apache_beam.io.kafka``): `ReadFromKafka` and exactly-once `WriteToKafka`."""

from millstream.connectors.kafka.kafkaio import (
    KafkaConfigError,
    KafkaFencedError,
    KafkaOptions,
    KafkaRecord,
    KafkaTransactionError,
    ReadFromKafka,
    WriteToKafka,
    dead_letter_record,
)

__all__ = [
    "KafkaConfigError",
    "KafkaFencedError",
    "KafkaOptions",
    "KafkaRecord",
    "KafkaTransactionError",
    "ReadFromKafka",
    "WriteToKafka",
    "dead_letter_record",
]
