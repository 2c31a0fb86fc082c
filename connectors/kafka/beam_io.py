"""Beam's IO for the Kafka connector: `Read`/`Write` of Kafka become Beam's cross-language ``ReadFromKafka`` and
``WriteToKafka`` (Java KafkaIO, expanded by Beam's expansion service).

Registered with the translator's hook by `source.py` and `sink.py`; imported only when a pipeline is
translated. Applying these transforms contacts the expansion service (``expansion_service=`` of millstream's
`ReadFromKafka`/`WriteToKafka`, passed through; Beam's default starts its Java IO expansion-service jar, which
needs Java and Beam's jar). Keys and values cross the language boundary as bytes: millstream's
(de)serializers (Python functions, or the Java ByteArray/String names) run in Python steps next to the Java
transform (``Deserialize``/``Serialize``), so values are exactly what the local connector gives.
``with_dead_letters()`` and ``with_metadata=True`` read with Kafka's metadata and route records the
deserializers reject to the dead-letter output as locally (``topic``, ``partition``, ``offset``,
``timestamp``, ``key``, ``raw``, ``headers``, ``reason``). Not translated (one line before submission): a
``topic_pattern`` (Beam's Python ``ReadFromKafka`` takes topic names), an exactly-once write (Beam's Python
``WriteToKafka`` has no exactly-once mode; ``exactly_once=False`` translates) and a write whose elements are
known to carry headers (a 3-tuple element type; of undeclared type, they fail when serialized).

>>> from millstream.connectors.kafka.source import KafkaSource
>>> from millstream.engine.translate.beam.hooks import beam_io_target
>>> beam_io_target(KafkaSource(bootstrap_servers="localhost:9092", topics=["t"]))
'millstream.connectors.kafka.beam_io:read_kafka'
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from typing import Any

from millstream.connectors.kafka.sink import KafkaSink
from millstream.connectors.kafka.source import LOG_APPEND_TIME, KafkaRecord, KafkaSource
from millstream.engine.translate.beam.hooks import UntranslatableIOError

_BYTES_DESERIALIZER = "org.apache.kafka.common.serialization.ByteArrayDeserializer"
_BYTES_SERIALIZER = "org.apache.kafka.common.serialization.ByteArraySerializer"


def java_config(config: Mapping[str, Any], bootstrap: Any) -> dict[str, str]:
    """Kafka client settings with Java's names and string values, as Java KafkaIO takes them: aiokafka's
    ``snake_case`` names become ``dotted.names``; ``bootstrap.servers`` is the connector's (a list joined)."""
    out = {}
    for key, value in config.items():
        name = key if "." in key else key.replace("_", ".")
        out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    out["bootstrap.servers"] = bootstrap if isinstance(bootstrap, str) else ",".join(bootstrap)
    return out


def _log_append(row: Any) -> int:
    """KafkaRecord's timestamp type (0 CreateTime, 1 LogAppendTime) of Java KafkaIO's metadata row."""
    by_name = getattr(row, "timestampTypeName", None)
    if by_name is not None:
        return 1 if by_name == "LogAppendTime" else 0
    return 1 if getattr(row, "timestampTypeId", 0) == 1 else 0


#: the Beam module that starts an expansion service (Java, the jar): its RuntimeErrors and OSErrors mean the
#: service could not be brought up
_SERVICE_STARTER = "apache_beam/utils/subprocess_server.py"


def _service_unavailable(e: BaseException) -> bool:
    """Whether `e` says the expansion service is unreachable or could not be started, as opposed to a fault
    of the translation itself: a gRPC error, or an error raised while Beam started the service."""
    import grpc

    if isinstance(e, grpc.RpcError):
        return True
    if not isinstance(e, (RuntimeError, OSError)):
        return False
    frames = traceback.extract_tb(e.__traceback__)
    return any(f.filename.replace(os.sep, "/").endswith(_SERVICE_STARTER) for f in frames)


def _expand(pvalueish: Any, label: str, external: Any, service: Any, where: str) -> Any:
    """Apply Beam's cross-language transform; an expansion service that cannot be reached is one line."""
    try:
        return pvalueish | label >> external
    except Exception as e:
        if not _service_unavailable(e):
            raise
        what = service if isinstance(service, str) else "Beam's default (its Java IO expansion-service jar)"
        details = getattr(e, "details", None)
        text = str(details() if callable(details) else e).strip()
        first = text.splitlines()[0] if text else type(e).__name__
        raise UntranslatableIOError(
            f"{where}: Beam's Kafka IO is cross-language and its expansion service {what} cannot expand it "
            f"({first}); start one (needs Java) and pass expansion_service='host:port'"
        ) from e


def read_kafka(read: Any, beam: Any) -> Any:
    """``Read(KafkaSource)`` as Beam's cross-language ``ReadFromKafka`` of bytes, deserialized in Python."""
    from apache_beam.io.kafka import ReadFromKafka

    source: KafkaSource = read.source
    where = f"step '{read.label}'"
    if source.topic_pattern is not None:
        raise UntranslatableIOError(
            f"{where}: topic_pattern= has no counterpart in Beam's Python ReadFromKafka; name the topics"
        )
    tag: str | None = read.dead_letter_tag
    metadata = source.with_metadata or tag is not None
    external = ReadFromKafka(
        consumer_config=java_config(source.consumer_config, source.bootstrap),
        topics=list(source.topics),
        key_deserializer=_BYTES_DESERIALIZER,
        value_deserializer=_BYTES_DESERIALIZER,
        timestamp_policy=(
            ReadFromKafka.log_append_time
            if source.timestamp_type == LOG_APPEND_TIME
            else ReadFromKafka.create_time_policy
        ),
        with_metadata=metadata,
        expansion_service=source.expansion_service,
    )
    kd, vd = source.key_deserializer, source.value_deserializer
    with_metadata = source.with_metadata

    def deserialize(kv: Any) -> Any:
        key, value = kv
        return (key if kd is None else kd(key), value if vd is None else vd(value))

    class _Deserialize(beam.DoFn):  # type: ignore[misc]
        """Beam's metadata Row as the local connector's value, or a dead letter."""

        def process(self, row: Any) -> Any:
            headers = [(h.key, h.value) for h in (getattr(row, "headers", None) or [])]

            def bad(reason: str) -> Any:
                record = {
                    "topic": row.topic,
                    "partition": row.partition,
                    "offset": row.offset,
                    "timestamp": row.timestamp,
                    "key": row.key,
                    "raw": row.value,
                    "headers": headers,
                    "reason": reason,
                    "split": f"{row.topic}/{row.partition}",
                }
                if tag is None:
                    raise ValueError(f"{where}: bad record {record!r}")
                return beam.pvalue.TaggedOutput(tag, record)

            try:
                key = row.key if kd is None else kd(row.key)
            except Exception as e:
                yield bad(f"key: {type(e).__name__}: {e}")
                return
            try:
                value = row.value if vd is None else vd(row.value)
            except Exception as e:
                yield bad(f"value: {type(e).__name__}: {e}")
                return
            if with_metadata:
                yield KafkaRecord(
                    row.topic,
                    row.partition,
                    row.offset,
                    row.timestamp,
                    _log_append(row),
                    key,
                    value,
                    headers,
                )
            else:
                yield (key, value)

    class _Decode(beam.PTransform):
        """What the Java read gives (KV of bytes, or metadata rows) as the local connector's values (and
        dead letters): the Python half of the read."""

        def expand(self, raw: Any) -> Any:
            if not metadata:
                return raw | "Deserialize" >> beam.Map(deserialize)
            if tag is None:
                return raw | "Deserialize" >> beam.ParDo(_Deserialize())
            result = raw | "Deserialize" >> beam.ParDo(_Deserialize()).with_outputs(tag, main="main")
            return {"main": result["main"], tag: result[tag]}

    class _ReadKafka(beam.PTransform):
        """The Java read, then the Python (de)serialization step."""

        def __init__(self) -> None:
            super().__init__()
            #: Beam's cross-language transform (its payload and expansion service can be inspected).
            self.external = external
            #: The Python half, applicable to rows shaped like the Java read's output.
            self.decode = _Decode()

        def expand(self, pbegin: Any) -> Any:
            raw = _expand(pbegin, "ReadFromKafka", external, source.expansion_service, where)
            return raw | "Decode" >> self.decode

    return _ReadKafka()


def _refuse_headers(element_type: Any, where: str) -> None:
    """Refuse, before submission, a write whose elements are known to carry headers: a 3-tuple element type
    (declared, or inferred by Beam from `Create`'s values). Elements of unknown type are checked as they are
    serialized (`serialize`), since only then is it known whether they have headers."""
    from apache_beam.typehints import typehints

    types = getattr(element_type, "tuple_types", None)
    if isinstance(element_type, typehints.TupleConstraint) and types is not None and len(types) == 3:
        raise UntranslatableIOError(
            f"{where}: Kafka headers ((key, value, headers) elements) have no counterpart in Beam's Python "
            "WriteToKafka (it writes (key, value) pairs); drop the headers to run on Beam"
        )


def write_kafka(write: Any, beam: Any) -> Any:
    """``Write(KafkaSink)`` (``exactly_once=False``) as Beam's cross-language ``WriteToKafka`` of the bytes
    millstream's serializers produce."""
    from apache_beam.io.kafka import WriteToKafka

    sink: KafkaSink = write.sink
    if sink.exactly_once:
        raise UntranslatableIOError(
            f"step '{write.label}': an exactly-once WriteToKafka has no counterpart in Beam's Python WriteToKafka "
            "(at least once there); pass exactly_once=False to run on Beam"
        )
    config = java_config(sink.config, sink.kwargs["bootstrap_servers"])
    config.pop("transactional.id", None)
    external = WriteToKafka(
        producer_config=config,
        topic=sink.topic,
        key_serializer=_BYTES_SERIALIZER,
        value_serializer=_BYTES_SERIALIZER,
        expansion_service=sink.expansion_service,
    )
    ks, vs = sink.key_serializer, sink.value_serializer

    def serialize(element: Any) -> tuple[bytes, bytes]:
        if len(element) == 3 and element[2]:
            raise ValueError(f"step '{write.label}': Kafka headers are not translated to Beam's WriteToKafka")
        key, value = element[0], element[1]
        return (ks(key) or b"", vs(value) or b"")

    class _WriteKafka(beam.PTransform):
        """The Python serialization step, then the Java write."""

        def __init__(self) -> None:
            super().__init__()
            #: Beam's cross-language transform (its payload and expansion service can be inspected).
            self.external = external

        def expand(self, pcoll: Any) -> Any:
            _refuse_headers(pcoll.element_type, f"step '{write.label}'")
            typed = pcoll | "Serialize" >> beam.Map(serialize).with_output_types(tuple[bytes, bytes])
            return _expand(typed, "WriteToKafka", external, sink.expansion_service, f"step '{write.label}'")

    return _WriteKafka()


__all__ = ["java_config", "read_kafka", "write_kafka"]
