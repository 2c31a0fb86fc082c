"""Runs the same Beam-API code on millstream and on Apache Beam's DirectRunner, and collects what it outputs.

Imported by its real name, `support.beam_harness` (tests/ is on pytest's path): Beam pickles every function it
runs, and a function of an importable module is pickled by reference, so `_store` appends to this module's
`STORE` (a function pickled by value would append to a copy, and the outputs would be lost).
"""

from __future__ import annotations

import logging
import math
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

PROGRAMS = Path(__file__).resolve().parent.parent / "beam_compat" / "programs"

#: Outputs of the run in progress: capture name -> elements, in arrival order.
STORE: dict[str, list[Any]] = {}


def _store(element: Any, name: str) -> None:
    STORE[name].append(element)


def engine(name: str) -> types.ModuleType:
    """The `beam` module of an engine: `millstream` or `apache_beam` (the latter imported quietly)."""
    if name == "millstream":
        import millstream

        return millstream
    if name == "beam":
        # Beam's import logs about optional Google Cloud clients it cannot find; they are irrelevant here. The
        # root level is restored at once so that other tests' log capture is untouched.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            import apache_beam
        finally:
            root.setLevel(level)
        return apache_beam
    raise ValueError(name)


def testing_util(name: str) -> types.ModuleType:
    """The `testing.util` module (assert_that, equal_to, ...) of an engine."""
    if name == "millstream":
        import millstream.testing.util as ms_util

        return ms_util
    engine("beam")
    import apache_beam.testing.util as beam_util

    return beam_util


def options_module(name: str) -> types.ModuleType:
    """The `options.pipeline_options` module of an engine."""
    if name == "millstream":
        import millstream.options.pipeline_options as ms_options

        return ms_options
    engine("beam")
    import apache_beam.options.pipeline_options as beam_options

    return beam_options


def construction_outcome(
    engine_name: str, build: Callable[[Any, Any], Any], flags: Iterable[str] = ()
) -> tuple[str, str]:
    """("refused", the TypeCheckError's message) or ("accepted", "") for `build(beam, pipeline)` on an engine's
    Pipeline with `flags` as its options; any other error propagates."""
    b = engine(engine_name)
    p = b.Pipeline(options=options_module(engine_name).PipelineOptions(list(flags)))
    try:
        build(b, p)
    except Exception as e:
        if type(e).__name__ == "TypeCheckError":
            return "refused", str(e)
        raise
    return "accepted", ""


def capture(beam: types.ModuleType, pcoll: Any, name: str) -> Any:
    """Record every element of `pcoll` under `name` when the pipeline runs (works on both engines)."""
    STORE.setdefault(name, [])
    return pcoll | f"Capture[{name}]" >> beam.Map(_store, name)


def run_collect(
    engine_name: str, build: Callable[[types.ModuleType, Any], None], flags: Iterable[str] = ()
) -> dict[str, list[Any]]:
    """Build a pipeline with `build(beam, p)` on one engine (Beam: DirectRunner), run it, return its captures."""
    beam = engine(engine_name)
    opts = options_module(engine_name).PipelineOptions(["--runner=DirectRunner", *flags])
    STORE.clear()
    p = beam.Pipeline(options=opts)
    build(beam, p)
    p.run().wait_until_finish()
    out = {k: list(v) for k, v in STORE.items()}
    STORE.clear()
    return out


def load_program(name: str, engine_name: str) -> types.ModuleType:
    """Load `programs/<name>.py` as written (millstream), or with `millstream` replaced by `apache_beam`.

    The module is registered in `sys.modules` so that Beam pickles its functions by reference.
    """
    path = PROGRAMS / f"{name}.py"
    source = path.read_text()
    if engine_name == "beam":
        engine("beam")
        source = source.replace("millstream", "apache_beam")
    elif engine_name != "millstream":
        raise ValueError(engine_name)
    module_name = f"_compat_{engine_name}_{name}"
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    sys.modules[module_name] = module
    exec(compile(source, f"{path} [{engine_name}]", "exec"), module.__dict__)
    return module


def canonical(value: Any) -> Any:
    """A comparable, hashable form of an output: iterables of values (GroupByKey's) become sorted tuples.

    Lists, tuples and Beam's lazy iterables are all "sequences" here, so a GroupByKey value compares equal
    whichever concrete type an engine hands out; NaN becomes a string so that it equals itself.
    """
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, tuple):
        return tuple(canonical(v) for v in value)
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((canonical(k), canonical(v)) for k, v in value.items()), key=repr)))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((canonical(v) for v in value), key=repr)))
    if isinstance(value, Iterable):
        return ("seq", tuple(sorted((canonical(v) for v in value), key=repr)))
    return value


def multiset(values: Iterable[Any]) -> list[Any]:
    """The canonical forms of `values`, sorted: equal lists mean equal multisets."""
    return sorted((canonical(v) for v in values), key=repr)
