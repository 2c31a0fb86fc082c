"""Beam idioms met in Beam's snippets: context-manager DoFn parameters, `element=DoFn.ElementParam`,
`LogElements`, Beam's `Timestamp` printing, `PrismRunner`, and composites that skip `PTransform.__init__`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import millstream as beam
from millstream.testing.util import assert_that, equal_to
from millstream.transforms import userstate
from millstream.utils.timestamp import Duration, Timestamp


def test_setup_and_bundle_context_params_are_entered_and_exited() -> None:
    events: list[str] = []

    @contextlib.contextmanager
    def resource(kind: str) -> Iterator[str]:
        events.append(f"enter {kind}")
        yield kind
        events.append(f"exit {kind}")

    with beam.Pipeline() as p:
        # The formatter would join the lambda's parameters into one line over 120 characters.
        # fmt: off
        out = (
            p
            | beam.Create(["a", "b"])
            | beam.Map(
                lambda x,
                s=beam.DoFn.SetupContextParam(resource, args=("setup",)),
                b=beam.DoFn.BundleContextParam(resource, args=("bundle",)): (
                    f"{x} {s} {b}"
                )
            )
        )
        # fmt: on
        assert_that(out, equal_to(["a setup bundle", "b setup bundle"]))
    assert events[0] == "enter setup" and events[-1] == "exit setup"
    assert events.count("enter bundle") == events.count("exit bundle") >= 1


def test_a_constructed_context_manager_is_refused() -> None:
    with pytest.raises(TypeError, match="context manager constructor"):
        beam.DoFn.SetupContextParam(contextlib.nullcontext())


class _CountPerKey(beam.DoFn):
    COUNT = userstate.ReadModifyWriteStateSpec("n", beam.coders.PickleCoder())

    def process(self, element: Any = beam.DoFn.ElementParam, count: Any = beam.DoFn.StateParam(COUNT)) -> Any:
        n = (count.read() or 0) + 1
        count.write(n)
        yield element[0], n


def test_element_as_a_keyword_marker_in_plain_and_stateful_dofns() -> None:
    class Echo(beam.DoFn):
        def process(self, element: Any = beam.DoFn.ElementParam, ts: Any = beam.DoFn.TimestampParam) -> Any:
            yield element

    with beam.Pipeline() as p:
        kvs = p | beam.Create([("k", 1), ("k", 2), ("j", 3)])
        assert_that(
            kvs | "echo" >> beam.ParDo(Echo()), equal_to([("k", 1), ("k", 2), ("j", 3)]), label="plain"
        )
        assert_that(
            kvs | "count" >> beam.ParDo(_CountPerKey()),
            equal_to([("k", 1), ("k", 2), ("j", 1)]),
            label="stateful",
        )


def test_log_elements_prints_or_logs_with_timestamp_and_window(capsys: Any, caplog: Any) -> None:
    with beam.Pipeline() as p:
        xs = p | beam.Create([1]) | beam.Map(lambda x: beam.window.TimestampedValue(x, 60))
        xs | "print" >> beam.LogElements(prefix="x=", with_timestamp=True)
        (
            xs
            | beam.WindowInto(beam.window.FixedWindows(60))
            | "log" >> beam.LogElements(with_window=True, level=logging.WARNING)
        )
    assert capsys.readouterr().out == "x=1, timestamp='1970-01-01T00:01:00Z'\n"
    assert "1, window(start=1970-01-01T00:01:00Z, end=1970-01-01T00:02:00Z)" in caplog.text


def test_timestamps_print_as_in_beam() -> None:
    assert repr(Timestamp(60)) == "Timestamp(60)" and repr(Timestamp(1.5)) == "Timestamp(1.500000)"
    assert repr(Duration(-2)) == "Duration(-2)"
    assert type(Timestamp(0)).__module__ == "millstream.utils.timestamp"
    assert Timestamp(0).to_utc_datetime().tzinfo is None
    assert str(Timestamp(0).to_utc_datetime(has_tz=True)) == "1970-01-01 00:00:00+00:00"
    assert Timestamp(61).to_rfc3339() == "1970-01-01T00:01:01Z"
