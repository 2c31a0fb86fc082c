"""A plain Beam script whose DoFn blocks the thread for 300 ms per element (time.sleep, as blocking I/O would).

It creates the file named by $MARKER when it starts on its first element, so a test knows the job is inside
a long synchronous batch (``--batch_size=50`` makes one batch take 15 s).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions


class Blocking(beam.DoFn):
    """Sleeps 300 ms per element."""

    def process(self, x: int) -> Iterator[int]:
        if x == 0:
            open(os.environ["MARKER"], "w").close()
        time.sleep(0.3)
        yield x


def run() -> None:
    with beam.Pipeline(options=PipelineOptions(sys.argv[1:])) as p:
        p | beam.Create(range(200)) | beam.ParDo(Blocking()) | beam.io.WriteToText(os.environ["OUT"])


if __name__ == "__main__":
    run()
