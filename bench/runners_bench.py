"""Benchmark: the W1 pipeline on millstream locally, translated to Beam on Prism, and on Beam's local runner.

One run, the same program (`bench/pipelines.py`'s W1: stamp, 60 s fixed windows, count+sum per key, window
bounds attached) over the same `dense` events, written as text by each; the outputs are compared before
anything is reported. Figures are events per second (wall time, pipeline construction to finished output) and
ratios to millstream's local run. Prism runs LOOPBACK (the SDK harness in this process) with the binary built
by tests/infra/go-build.sh prism. The flights example (the whole year, its dead-letter output included) runs
locally and on Prism too; its three outputs are compared and both wall times reported.

    .venv/bin/python -P bench/runners_bench.py [--events 50000]
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # `bench` as a package, after site-packages (see bench/__main__.py)

from bench import data, pipelines  # noqa: E402


def _lines(prefix: str) -> list[str]:
    out: list[str] = []
    for path in sorted(glob.glob(prefix + "*")):
        with open(path) as f:
            out.extend(line for line in f.read().splitlines() if line)
    return sorted(out)


def run_millstream(events: list[Any], prefix: str, flags: list[str]) -> list[str]:
    """W1 with millstream's API: locally (no flags) or translated to a Beam runner."""
    import millstream as ms
    from millstream import window
    from millstream.options.pipeline_options import PipelineOptions

    with ms.Pipeline(options=PipelineOptions(flags)) as p:
        rows = pipelines.windowed(ms, window, "W1", p | "Create" >> ms.Create(events))
        rows | "Str" >> ms.Map(repr) | "Write" >> ms.io.WriteToText(prefix, num_shards=1)
    return _lines(prefix)


def run_beam(events: list[Any], prefix: str) -> list[str]:
    """W1 with apache_beam's API on Beam's local runner (DirectRunner: the FnApiRunner for batch)."""
    import apache_beam as ab
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.transforms import window

    with ab.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        rows = pipelines.windowed(ab, window, "W1", p | "Create" >> ab.Create(events))
        rows | "Str" >> ab.Map(repr) | "Write" >> ab.io.WriteToText(prefix, num_shards=1)
    return _lines(prefix)


def flights_both() -> str:
    """The flights example locally and on Prism (LOOPBACK): wall times, or where their outputs differ."""
    import millstream as ms
    from millstream.options.pipeline_options import PipelineOptions

    spec = importlib.util.spec_from_file_location(
        "flights_example", ROOT / "examples" / "streaming" / "flights.py"
    )
    assert spec is not None and spec.loader is not None
    flights = importlib.util.module_from_spec(spec)
    sys.modules["flights_example"] = flights
    spec.loader.exec_module(flights)
    seconds: dict[str, float] = {}
    outputs: dict[str, dict[str, list[str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in (
            ("local", [f"--state_dir={tmp}/state"]),
            ("Prism", ["--runner=PrismRunner", "--environment_type=LOOPBACK"]),
        ):
            out = os.path.join(tmp, name)
            started = time.perf_counter()
            with ms.Pipeline(options=PipelineOptions(flags)) as p:
                flights.build(p, flights.Inputs.packaged(), out)
            seconds[name] = time.perf_counter() - started
            outputs[name] = {
                kind: sorted(line for f in glob.glob(os.path.join(out, f"{kind}-*.json")) for line in open(f))
                for kind in ("hourly", "cancelled", "late")
            }
    differ = [kind for kind in outputs["local"] if outputs["local"][kind] != outputs["Prism"][kind]]
    if differ:
        return f"OUTPUT MISMATCH in {', '.join(differ)}"
    rows, dead = len(outputs["local"]["hourly"]), len(outputs["local"]["cancelled"])
    return (
        f"{rows} hourly rows and {dead} dead letters, identical; local {seconds['local']:.1f} s, "
        f"Prism (LOOPBACK) {seconds['Prism']:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the three systems on the same events; print events/s and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=50_000)
    args = ap.parse_args(argv)
    events = data.events("dense", args.events)
    results: dict[str, tuple[float, list[str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        systems = {
            "millstream (local)": lambda: run_millstream(events, os.path.join(tmp, "local", "w1"), []),
            "millstream -> Prism (LOOPBACK)": lambda: run_millstream(
                events,
                os.path.join(tmp, "prism", "w1"),
                ["--runner=PrismRunner", "--environment_type=LOOPBACK"],
            ),
            "Beam DirectRunner (apache_beam API)": lambda: run_beam(events, os.path.join(tmp, "beam", "w1")),
        }
        for name, run in systems.items():
            started = time.perf_counter()
            out = run()
            results[name] = (time.perf_counter() - started, out)
    reference = results["millstream (local)"][1]
    for name, (_, out) in results.items():
        if out != reference:
            print(f"OUTPUT MISMATCH: {name} wrote {len(out)} rows, millstream local {len(reference)}")
            return 1
    base = results["millstream (local)"][0]
    print(f"W1, {args.events} dense events, {len(reference)} output rows (identical across systems)")
    for name, (seconds, _) in results.items():
        print(
            f"  {name:38s} {args.events / seconds:10,.0f} events/s   {seconds:7.2f} s   "
            f"x{base / seconds:.2f} of millstream local"
        )
    print(f"flights example (whole year): {flights_both()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
