"""Runs a benchmark pipeline on Apache Beam in its own process and writes timings and output rows as JSON.

Started by the suite (see `core.python_argv`); imports only Beam and bench's input/pipeline modules, never
millstream. The same pipeline code as millstream's (`bench.pipelines`) is built with `apache_beam`.

Runner: by default none is named, so Beam uses its default, `DirectRunner` (= SwitchingDirectRunner). In Beam
2.77 that first tries PrismRunner, which downloads a binary from GitHub (fails at once offline) and then falls
back to the in-process FnApiRunner; the worker records what happened in `note`.
Timed: pipeline construction + run (imports and input generation excluded), best of `--repeat`.
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import resource
import shutil
import tempfile
import time
from typing import Any

from bench import data, pipelines


class _RunnerLog(logging.Handler):
    """Collects the DirectRunner's INFO messages (Prism attempt and fallback) without printing them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _runner_note(runner: str | None, messages: list[str]) -> str:
    if runner:
        return f"runner {runner}"
    prism_failed = any("Exception with PrismRunner" in m for m in messages)
    fell_back = any("Falling back" in m for m in messages)
    tried_prism = any("PrismRunner" in m for m in messages)
    if prism_failed and fell_back:
        return "default DirectRunner: Prism failed (offline) -> fallback to FnApiRunner"
    if tried_prism:
        return "default DirectRunner: ran on Prism"
    return "default DirectRunner (FnApiRunner, Prism not attempted)"


def _read_rows(prefix: str) -> list[str]:
    lines: list[str] = []
    for path in sorted(glob.glob(prefix + "*")):
        with open(path) as f:
            lines.extend(line.rstrip("\n") for line in f)
    return lines


def main(argv: list[str]) -> int:
    """Entry point: ``--task wordcount|W1|W2|W3 --events N --repeat K --out result.json``."""
    ap = argparse.ArgumentParser(prog="bench.beam_worker")
    ap.add_argument("--task", required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--source", choices=["create", "text"], default="create")
    ap.add_argument("--runner", default="", help="empty: Beam's default runner")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.transforms import window

    import_s = time.perf_counter() - t0
    log = _RunnerLog()
    runner_logger = logging.getLogger("apache_beam.runners.direct.direct_runner")
    runner_logger.setLevel(logging.INFO)
    runner_logger.addHandler(log)
    runner_logger.propagate = False

    tmp = tempfile.mkdtemp(prefix="ms-bench-beam-")
    try:
        return _run(a, beam, PipelineOptions, window, tmp, log, import_s)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(
    a: argparse.Namespace,
    beam: Any,
    PipelineOptions: Any,
    window: Any,
    tmp: str,  # noqa: N803
    log: _RunnerLog,
    import_s: float,
) -> int:
    inp: Any
    if a.task == "wordcount":
        inp = data.word_lines(a.events)
        text_path = os.path.join(tmp, "input.txt")
        if a.source == "text":
            data.write_lines(inp, text_path)
    else:
        variant = pipelines.WINDOWED[a.task][0]
        inp = data.events(variant, a.events)
        text_path = os.path.join(tmp, "input.csv")
        if a.source == "text":
            data.write_csv(inp, text_path)

    runs: list[float] = []
    cpu: list[float] = []
    prefix = os.path.join(tmp, "out")
    for _ in range(a.repeat):
        for old in glob.glob(prefix + "*"):
            os.remove(old)
        opts: dict[str, Any] = {"runner": a.runner} if a.runner else {}
        c1 = time.process_time()
        t1 = time.perf_counter()
        with beam.Pipeline(options=PipelineOptions(flags=[], **opts)) as p:
            if a.source == "text":
                src = p | "Read" >> beam.io.ReadFromText(text_path)
                if a.task != "wordcount":
                    src = src | "Parse" >> beam.Map(pipelines.parse_csv_event)
            else:
                src = p | "Create" >> beam.Create(inp)
            if a.task == "wordcount":
                out = pipelines.wordcount(beam, src) | "Fmt" >> beam.Map(lambda kv: f"{kv[0]}\t{kv[1]}")
            else:
                out = pipelines.windowed(beam, window, a.task, src) | "Fmt" >> beam.Map(
                    lambda r: "\t".join(map(str, r))
                )
            out | "Write" >> beam.io.WriteToText(prefix, num_shards=1, shard_name_template="")
        runs.append(time.perf_counter() - t1)
        cpu.append(time.process_time() - c1)

    rows: list[Any] = []
    for line in _read_rows(prefix):
        parts = line.split("\t")
        rows.append([parts[0], *map(int, parts[1:])])
    result = {
        "runs": runs,
        "cpu": cpu,
        "rows": rows,
        "import_s": import_s,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "note": f"{_runner_note(a.runner, log.messages)}; source={a.source}; imports {import_s:.1f} s untimed",
    }
    with open(a.out, "w") as f:
        json.dump(result, f)
    return 0
