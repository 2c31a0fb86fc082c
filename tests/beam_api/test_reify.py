"""`beam.Reify` (Beam's ``apache_beam.transforms.util.Reify``): each form run on millstream and on Apache Beam's
DirectRunner, the outputs compared after turning timestamps and windows into plain numbers."""

from __future__ import annotations

import types
from typing import Any

import pytest

import millstream as beam
from millstream.transforms.util import Reify

from support.beam_harness import capture, multiset, run_collect

ENGINES = ["millstream", "beam"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """millstream keeps a pipeline's checkpoints under ./.millstream: each test gets its own directory."""
    monkeypatch.chdir(tmp_path)


def _plain(x: Any) -> Any:
    """Timestamps as float seconds, interval windows as (start, end) seconds, the global window as "global"."""
    if hasattr(x, "micros") and not hasattr(x, "value"):
        return x.micros / 1e6
    if type(x).__name__ == "GlobalWindow":
        return "global"
    if hasattr(x, "start") and hasattr(x, "end"):
        return ("window", x.start.micros / 1e6, x.end.micros / 1e6)
    if type(x).__name__ == "TimestampedValue":
        return ("tv", _plain(x.value), x.timestamp.micros / 1e6)
    if isinstance(x, tuple):
        return tuple(_plain(v) for v in x)
    return x


def _build(form: str, windowed: bool) -> Any:
    def build(b: types.ModuleType, p: Any) -> None:
        pcoll = (
            p
            | b.Create([("a", 1), ("b", 12), ("a", 25)])
            | b.Map(lambda kv: b.window.TimestampedValue(kv, kv[1]))
        )
        if windowed:
            pcoll = pcoll | b.WindowInto(b.window.FixedWindows(10))
        capture(b, pcoll | getattr(b.transforms.util.Reify, form)() | b.Map(_plain), "out")

    return build


@pytest.mark.parametrize("form", ["Timestamp", "Window", "TimestampInValue", "WindowInValue"])
@pytest.mark.parametrize("windowed", [False, True])
def test_reify_matches_beam(form: str, windowed: bool) -> None:
    results = {e: multiset(run_collect(e, _build(form, windowed))["out"]) for e in ENGINES}
    assert results["millstream"] == results["beam"]


def test_reify_window_values_spelled_out() -> None:
    """The expected values written by hand, so the comparison above cannot hide a shared mistake."""
    got = run_collect("millstream", _build("WindowInValue", True))["out"]
    assert sorted(got) == [
        ("a", (1, 1.0, ("window", 0.0, 10.0))),
        ("a", (25, 25.0, ("window", 20.0, 30.0))),
        ("b", (12, 12.0, ("window", 10.0, 20.0))),
    ]


def test_reify_at_beams_paths() -> None:
    assert beam.Reify is Reify
