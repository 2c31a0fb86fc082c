"""`ValueProvider`s accepted by every IO argument Beam accepts them for: each IO built with a
StaticValueProvider and with a template parameter from the options (given on the command line, or left to its
default: Beam's RuntimeValueProvider), then run, or for Pub/Sub inspected, to see the value arrived."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.options.value_provider import RuntimeValueProvider, StaticValueProvider, ValueProvider
from millstream.testing.util import assert_that, equal_to


class _PathOptions(PipelineOptions):
    """Template parameters as Beam's examples declare them."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_value_provider_argument("--vp_input", type=str, help="input pattern")
        parser.add_value_provider_argument("--vp_output", type=str, help="output prefix")


_FRESH = itertools.count()

#: How a test gets its ValueProvider for a path: built directly, from a flag, or from a default.
Provide = Callable[[str, str], ValueProvider]


def _static(name: str, value: str) -> ValueProvider:
    return StaticValueProvider(str, value)


def _from_flag(name: str, value: str) -> ValueProvider:
    vp = getattr(PipelineOptions([f"--{name}={value}"]).view_as(_PathOptions), name)
    assert isinstance(vp, StaticValueProvider)
    return vp


def _from_default(name: str, value: str) -> ValueProvider:
    """A parameter left off the command line: Beam's RuntimeValueProvider with the declared default."""
    # a fresh option name per call: options classes are global, and a name declared twice keeps the first
    option = f"{name}_default_{next(_FRESH)}"

    class Defaulted(PipelineOptions):
        @classmethod
        def _add_argparse_args(cls, parser: Any) -> None:
            parser.add_value_provider_argument(f"--{option}", type=str, default=value)

    vp = getattr(PipelineOptions([]).view_as(Defaulted), option)
    assert isinstance(vp, RuntimeValueProvider)
    return vp


def _pipeline(tmp_path: Path, name: str = "state") -> beam.Pipeline:
    return beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path / name}"]))


PROVIDERS = pytest.mark.parametrize(
    "provide", [_static, _from_flag, _from_default], ids=["static", "flag", "default"]
)


@PROVIDERS
def test_text_read_and_write(tmp_path: Path, provide: Provide) -> None:
    (tmp_path / "in.txt").write_text("a\nb\n")
    with _pipeline(tmp_path, "s1") as p:
        lines = p | beam.io.ReadFromText(provide("vp_input", str(tmp_path / "in.txt")))
        assert_that(lines, equal_to(["a", "b"]))
        lines | beam.io.WriteToText(
            provide("vp_output", str(tmp_path / "out")), StaticValueProvider(str, ".txt")
        )
    written = sorted(tmp_path.glob("out*.txt"))
    assert written and sorted("".join(f.read_text() for f in written).split()) == ["a", "b"]


@PROVIDERS
def test_avro_write_then_read(tmp_path: Path, provide: Provide) -> None:
    schema = {"type": "record", "name": "R", "fields": [{"name": "n", "type": "long"}]}
    with _pipeline(tmp_path, "s2") as p:
        _ = (
            p
            | beam.Create([{"n": 1}, {"n": 2}])
            | beam.io.WriteToAvro(
                provide("vp_output", str(tmp_path / "recs")), schema, file_name_suffix=".avro"
            )
        )
    assert list(tmp_path.glob("recs*.avro"))
    with _pipeline(tmp_path, "s3") as p:
        rows = p | beam.io.ReadFromAvro(provide("vp_input", str(tmp_path / "recs*.avro")))
        assert_that(rows, equal_to([{"n": 1}, {"n": 2}]))


@PROVIDERS
def test_parquet_write_then_read(tmp_path: Path, provide: Provide) -> None:
    with _pipeline(tmp_path, "s4") as p:
        _ = (
            p
            | beam.Create([{"n": 1}, {"n": 2}])
            | beam.io.WriteToParquet(
                provide("vp_output", str(tmp_path / "rows")), file_name_suffix=".parquet"
            )
        )
    assert list(tmp_path.glob("rows*.parquet"))
    with _pipeline(tmp_path, "s5") as p:
        rows = p | beam.io.ReadFromParquet(provide("vp_input", str(tmp_path / "rows*.parquet")))
        assert_that(rows, equal_to([{"n": 1}, {"n": 2}]))


@PROVIDERS
def test_json_and_csv_reads(tmp_path: Path, provide: Provide) -> None:
    (tmp_path / "in.jsonl").write_text(json.dumps({"a": 1}) + "\n")
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    with _pipeline(tmp_path, "s6") as p:
        js = p | "Json" >> beam.io.ReadFromJson(provide("vp_input", str(tmp_path / "in.jsonl")))
        csv = p | "Csv" >> beam.io.ReadFromCsv(provide("vp_input", str(tmp_path / "in.csv")))
        assert_that(js, equal_to([{"a": 1}]), label="json")
        assert_that(csv, equal_to([{"a": "1", "b": "2"}]), label="csv")


@PROVIDERS
def test_match_files(tmp_path: Path, provide: Provide) -> None:
    from millstream.io import fileio

    (tmp_path / "x.txt").write_text("x")
    with _pipeline(tmp_path, "s7") as p:
        paths = (
            p | fileio.MatchFiles(provide("vp_input", str(tmp_path / "*.txt"))) | beam.Map(lambda m: m.path)
        )
        assert_that(paths, equal_to([str(tmp_path / "x.txt")]))


@PROVIDERS
def test_pubsub_names(provide: Provide) -> None:
    """Pub/Sub needs a server to run; the resolved names on the built source and sink are what matter."""
    from millstream.io.gcp.pubsub import ReadFromPubSub, ReadStringsFromPubSub, WriteToPubSub

    sub = "projects/my-project/subscriptions/s"
    read = ReadFromPubSub(
        subscription=provide("vp_input", sub), timestamp_attribute=StaticValueProvider(str, "ts")
    )
    assert read.source.subscription == sub
    assert read.source.timestamp_attribute == "ts"
    assert (
        ReadFromPubSub(topic=provide("vp_input", "projects/my-project/topics/t")).source.topic
        == "projects/my-project/topics/t"
    )
    assert (
        ReadStringsFromPubSub(subscription=provide("vp_input", sub)).label == f"ReadStringsFromPubSub({sub})"
    )
    assert (
        WriteToPubSub(provide("vp_output", "projects/my-project/topics/out")).sink.topic
        == "projects/my-project/topics/out"
    )


def test_a_parameter_without_value_or_default_is_named() -> None:
    vp = PipelineOptions([]).view_as(_PathOptions).vp_input
    assert isinstance(vp, RuntimeValueProvider)
    with pytest.raises(ValueError, match=r"ReadFromAvro\(file_pattern\).*--vp_input was not given"):
        beam.io.ReadFromAvro(vp)


def test_runtime_options_take_precedence_over_the_default() -> None:
    vp = RuntimeValueProvider("vp_input", int, 1)
    try:
        RuntimeValueProvider.set_runtime_options({"vp_input": "7"})
        assert vp.get() == 7
    finally:
        RuntimeValueProvider.set_runtime_options(None)
    assert vp.get() == 1


@pytest.mark.parametrize(
    ("options", "name", "value_type", "default"),
    [
        (None, "n", int, 5),
        ({}, "n", int, 5),
        ({"n": "7"}, "n", int, 5),
        ({"n": ""}, "n", str, "d"),
        ({"other": "x"}, "n", str, "d"),
    ],
)
def test_get_value_is_beams_class_level_lookup(
    options: dict[str, str] | None, name: str, value_type: type, default: object
) -> None:
    """`RuntimeValueProvider.get_value` answers as Beam's does for the same runtime options."""
    from apache_beam.options.value_provider import RuntimeValueProvider as BeamRVP

    try:
        RuntimeValueProvider.set_runtime_options(options)
        BeamRVP.runtime_options = options
        ours = RuntimeValueProvider.get_value(name, value_type, default)
        assert ours == BeamRVP.get_value(name, value_type, default)
    finally:
        RuntimeValueProvider.set_runtime_options(None)
        BeamRVP.runtime_options = None
