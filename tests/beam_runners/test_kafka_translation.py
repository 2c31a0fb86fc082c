"""Kafka on Beam's runners: millstream's ReadFromKafka/WriteToKafka become Beam's cross-language transforms.

Beam's Kafka IO is Java, expanded by Beam's expansion service, which needs Java and Beam's jar (not served
here): these tests check the transforms the translation builds (URN, payload, expansion service passed
through) and the one-line refusals, without expanding or running them.
"""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("apache_beam")

import apache_beam  # noqa: E402
from apache_beam.io import kafka as beam_kafka  # noqa: E402

import millstream as beam  # noqa: E402
from millstream.connectors.kafka.beam_io import java_config, read_kafka, write_kafka  # noqa: E402
from millstream.engine.translate.beam.hooks import UntranslatableIOError  # noqa: E402
from millstream.engine.translate.beam.translator import translate  # noqa: E402
from millstream.io.kafka import ReadFromKafka, WriteToKafka  # noqa: E402

EXPANSION = "localhost:8097"


def payload(external: object) -> dict:
    """The configuration a cross-language transform sends to the expansion service, decoded."""
    from apache_beam.coders import RowCoder
    from apache_beam.portability.api import external_transforms_pb2

    proto = external_transforms_pb2.ExternalConfigurationPayload.FromString(external._payload)  # type: ignore[attr-defined]
    row = RowCoder(proto.schema).decode(proto.payload)
    return {name: getattr(row, name) for name in row._fields}


def test_read_becomes_beams_cross_language_read_with_the_expansion_service_passed_through():
    read = ReadFromKafka(
        {"bootstrap.servers": "broker:9092", "group_id": "g1", "check_crcs": False},
        ["clicks", "views"],
        value_deserializer=lambda b: b.decode(),
        timestamp_policy="log_append_time",
        expansion_service=EXPANSION,
    )._read
    external = read_kafka(read, apache_beam).external
    assert isinstance(external, beam_kafka.ReadFromKafka)
    assert external._urn == beam_kafka.ReadFromKafka.URN_WITHOUT_METADATA
    assert external._expansion_service == EXPANSION
    config = payload(external)
    assert config["consumer_config"] == {
        "bootstrap.servers": "broker:9092",
        "group.id": "g1",
        "check.crcs": "false",
    }
    assert config["topics"] == ["clicks", "views"]
    # bytes cross the language boundary; millstream's deserializers run in Python after the read
    assert (
        config["key_deserializer"]
        == config["value_deserializer"]
        == beam_kafka.ReadFromKafka.byte_array_deserializer
    )
    assert config["timestamp_policy"] == "LogAppendTime"


def test_dead_letters_read_with_metadata():
    read = ReadFromKafka({"bootstrap.servers": "broker:9092"}, ["t"], with_dead_letters=True)._read
    external = read_kafka(read, apache_beam).external
    assert external._urn == beam_kafka.ReadFromKafka.URN_WITH_METADATA
    assert payload(external)["timestamp_policy"] == "CreateTime"


def test_write_becomes_beams_cross_language_write():
    sink = WriteToKafka(
        {"bootstrap.servers": "a:9092,b:9092"}, "counts", exactly_once=False, expansion_service=EXPANSION
    )
    from millstream.engine.model.io import Write

    external = write_kafka(Write(sink.sink), apache_beam).external
    assert isinstance(external, beam_kafka.WriteToKafka)
    assert external._expansion_service == EXPANSION
    config = payload(external)
    assert config["producer_config"] == {"bootstrap.servers": "a:9092,b:9092"}
    assert config["topic"] == "counts"
    assert config["value_serializer"] == beam_kafka.WriteToKafka.byte_array_serializer


def test_java_config_names_and_values():
    assert java_config({"auto_offset_reset": "earliest", "max.poll.records": 5}, ["a:1", "b:2"]) == {
        "auto.offset.reset": "earliest",
        "max.poll.records": "5",
        "bootstrap.servers": "a:1,b:2",
    }


def test_exactly_once_write_is_refused_in_one_line():
    p = beam.Pipeline()
    _ = p | beam.Create([(b"k", b"v")]) | "Out" >> WriteToKafka({"bootstrap.servers": "b:9092"}, "t")
    with pytest.raises(
        UntranslatableIOError, match=r"^step 'Write\(Kafka\(t\)\)': an exactly-once WriteToKafka"
    ):
        translate(p)


def test_topic_pattern_is_refused_in_one_line():
    p = beam.Pipeline()
    _ = p | ReadFromKafka({"bootstrap.servers": "b:9092"}, topic_pattern="clicks-.*")
    with pytest.raises(UntranslatableIOError, match=r"topic_pattern= has no counterpart"):
        translate(p)


def test_an_unreachable_expansion_service_is_one_line_naming_the_step():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = beam.Pipeline()
    _ = p | ReadFromKafka({"bootstrap.servers": "b:9092"}, ["t"], expansion_service=f"localhost:{port}")
    with pytest.raises(UntranslatableIOError) as info:
        translate(p)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("step 'Read(Kafka(t))': Beam's Kafka IO is cross-language")
    assert f"localhost:{port}" in message


def test_the_python_half_gives_the_local_connectors_values_and_dead_letters(tmp_path):
    """The Java read's metadata rows (as Java KafkaIO shapes them) through the translation's Python step, run
    on Beam's local runner: values as the local connector gives them, rejected records as its dead letters."""
    import json

    from apache_beam.testing.util import assert_that, equal_to

    read = ReadFromKafka(
        {"bootstrap.servers": "b:9092"}, ["t"], value_deserializer=json.loads, with_dead_letters=True
    )._read
    decode = read_kafka(read, apache_beam).decode

    def row(offset: int, value: bytes) -> apache_beam.Row:
        return apache_beam.Row(
            topic="t",
            partition=0,
            offset=offset,
            timestamp=1_000 + offset,
            timestampTypeId=0,
            timestampTypeName="CreateTime",
            key=b"k",
            value=value,
            headers=[apache_beam.Row(key="h", value=b"1")],
        )

    with apache_beam.Pipeline() as p:
        result = p | apache_beam.Create([row(0, b'{"n": 1}'), row(1, b"not json")]) | decode
        assert_that(result["main"], equal_to([(b"k", {"n": 1})]), label="values")
        assert_that(
            result["bad"]
            | apache_beam.Map(lambda r: (r["offset"], r["raw"], r["headers"], r["reason"][:25])),
            equal_to([(1, b"not json", [("h", b"1")], "value: JSONDecodeError: E")]),
            label="dead letters",
        )


def test_headers_on_a_write_are_refused_before_submission_in_one_line():
    """(key, value, headers) elements: their type is known when the pipeline is built (Beam infers it from
    Create's values, or the step declares it), so the refusal comes from the translation, not the workers."""
    p = beam.Pipeline()
    rows = [(b"k", b"v", [("h", b"1")])]
    _ = (
        p
        | beam.Create(rows)
        | "Out" >> WriteToKafka({"bootstrap.servers": "b:9092"}, "t", exactly_once=False)
    )
    with pytest.raises(UntranslatableIOError) as info:
        translate(p)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "step 'Write(Kafka(t))': Kafka headers ((key, value, headers) elements) have no"
    )

    declared = beam.Pipeline()
    _ = (
        declared
        | beam.Create([b"k"])
        | "WithHeaders" >> beam.Map(lambda k: (k, k, [])).with_output_types(tuple[bytes, bytes, list])
        | "Out" >> WriteToKafka({"bootstrap.servers": "b:9092"}, "t", exactly_once=False)
    )
    with pytest.raises(UntranslatableIOError, match=r"^step 'Write\(Kafka\(t\)\)': Kafka headers"):
        translate(declared)


def test_a_fault_of_the_translation_itself_is_not_taken_for_an_unreachable_service():
    from millstream.connectors.kafka.beam_io import _expand

    class Broken(apache_beam.PTransform):
        def expand(self, pbegin):
            raise RuntimeError("a bug in the translation")

    with pytest.raises(RuntimeError, match="a bug in the translation") as info:
        _expand(apache_beam.Pipeline(), "ReadFromKafka", Broken(), EXPANSION, "step 'Read(Kafka(t))'")
    assert not isinstance(info.value, UntranslatableIOError)
