"""Word count, the Beam way: split, pair, CombinePerKey(sum), top words.

Runs on text embedded in every Python (the Zen of Python) unless `--input FILE` is given, so it needs no
broker and no download: `millstream run examples/streaming/wordcount.py`.
"""

from __future__ import annotations

import argparse
import codecs
import re

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions


def zen_lines() -> list[str]:
    """The Zen of Python, from the standard library's `this` module (stored ROT13-encoded there)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import this
    return codecs.decode(this.s, "rot13").splitlines()


def run(argv: list[str] | None = None) -> None:
    """Count words and print the ten most frequent."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", default=None, help="a text file (default: the Zen of Python)")
    known, pipeline_args = parser.parse_known_args(argv)
    lines = zen_lines()
    if known.input:
        with open(known.input, encoding="utf-8") as f:
            lines = f.read().splitlines()
    with beam.Pipeline(options=PipelineOptions(pipeline_args)) as p:
        counts = (
            p
            | "Read" >> beam.Create(lines)
            | "Split" >> beam.FlatMap(lambda line: re.findall(r"[a-z']+", line.lower()))
            | "Pair" >> beam.Map(lambda w: (w, 1))
            | "Count" >> beam.CombinePerKey(sum)
        )
        (
            counts
            | "Top" >> beam.combiners.Top.Of(10, key=lambda kv: (kv[1], kv[0]))
            | "Print" >> beam.Map(lambda top: print("\n".join(f"{n:4d}  {w}" for w, n in top)))
        )


if __name__ == "__main__":
    run()
