"""One system of the peer comparison, run as a whole process: read the input file, compute, write a TSV.

Started by `bench.peers` once per (system, task, run), so each run pays what a user's process pays
(interpreter start, imports, reading, computing, writing). Every system writes the same rows
``key<TAB>start_ms<TAB>end_ms<TAB>count<TAB>sum`` to `--out`; `bench.peers` verifies them against the bare
reference. Systems:

* ``bare`` / ``bare-wm``: the bare-Python loops of `bench.reference` over the msgpack file (the anchors'
  speed of light, without and with watermark/emission); ``bare-csv``: the ``bare`` loop over the CSV file
  parsed with the program's own split/float/int (what the text input costs a plain script);
* ``millstream-text``: the anchors' Beam program with ``import millstream as beam``, ``ReadFromText`` of
  the CSV file ... ``WriteToText``; ``millstream-create``: the same program from ``beam.Create`` of the
  events read from the msgpack file;
* ``beam-text``: the same program on Apache Beam's FnApiRunner (when ``apache-beam`` is installed);
* ``bytewax``: Bytewax's ``fold_window`` over the msgpack file (when ``bytewax`` is installed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from typing import Any

from bench import pipelines, reference

SYSTEMS = ("bare", "bare-wm", "bare-csv", "millstream-text", "millstream-create", "beam-text", "bytewax")


def _load_msgpack(path: str) -> list[Any]:
    import msgpack

    with open(path, "rb") as f:
        return list(msgpack.Unpacker(f, use_list=False, read_size=1 << 20))


def _write_rows(path: str, rows: Iterable[Any]) -> None:
    with open(path, "w") as f:
        f.writelines(f"{k}\t{s}\t{e}\t{c}\t{sm}\n" for k, s, e, c, sm in rows)


def _beam_program(beam: Any, window: Any, task: str, source: str, inp: str, out: str, **opts: Any) -> None:
    if source == "text":
        with beam.Pipeline(**opts) as p:
            lines = p | "Read" >> beam.io.ReadFromText(inp)
            stamped = lines | "Parse" >> beam.Map(pipelines.parse_and_stamp(window))
            pipelines.file_program(beam, window, task, stamped, out)
    else:
        events = _load_msgpack(inp)
        with beam.Pipeline(**opts) as p:
            created = p | "Create" >> beam.Create(events)
            del events  # the pipeline holds the input now; this process should not hold a second copy
            stamped = created | "Stamp" >> beam.Map(lambda e: window.TimestampedValue((e[0], e[2]), e[1]))
            pipelines.file_program(beam, window, task, stamped, out)


def _bytewax(task: str, inp: str, out: str) -> int:
    """Bytewax 0.21 `fold_window` with an event clock waiting 5 s (the data's disorder); returns late items."""
    from datetime import UTC, datetime, timedelta
    from operator import itemgetter

    import bytewax.operators as op
    import bytewax.operators.windowing as win
    import msgpack
    from bytewax.dataflow import Dataflow
    from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
    from bytewax.testing import TestingSink, run_main

    utc = UTC
    epoch = datetime(1970, 1, 1, tzinfo=utc)
    ms = timedelta(milliseconds=1)

    class Part(StatefulSourcePartition):  # type: ignore[misc,type-arg]
        def __init__(self) -> None:
            self.f = open(inp, "rb")
            self.it = iter(msgpack.Unpacker(self.f, use_list=False, read_size=1 << 20))

        def next_batch(self) -> list[Any]:
            batch = [(k, datetime.fromtimestamp(t, utc), v) for k, t, v in _take(self.it, 1000)]
            if not batch:
                raise StopIteration()
            return batch

        def snapshot(self) -> None:
            return None

        def close(self) -> None:
            self.f.close()

    class Source(FixedPartitionedSource):  # type: ignore[misc,type-arg]
        def list_parts(self) -> list[str]:
            return ["single"]

        def build_part(self, step_id: str, for_part: str, resume_state: Any) -> Part:
            return Part()

    if task == "W1":
        windower: Any = win.TumblingWindower(length=timedelta(seconds=pipelines.SIZE_S), align_to=epoch)
    elif task == "W2":
        windower = win.SlidingWindower(
            length=timedelta(seconds=pipelines.SIZE_S),
            offset=timedelta(seconds=pipelines.PERIOD_S),
            align_to=epoch,
        )
    else:
        windower = win.SessionWindower(gap=timedelta(seconds=pipelines.GAP_S))

    def folder(acc: list[int], e: Any) -> list[int]:
        acc[0] += 1
        acc[1] += e[2]
        return acc

    down: list[Any] = []
    meta: list[Any] = []
    late: list[Any] = []
    flow = Dataflow("peers_" + task)
    keyed = op.key_on("key", op.input("in", flow, Source()), itemgetter(0))
    clock = win.EventClock(itemgetter(1), wait_for_system_duration=timedelta(seconds=5))
    wo = win.fold_window(
        "agg",
        keyed,
        clock,
        windower,
        lambda: [0, 0],
        folder,
        lambda a, b: [a[0] + b[0], a[1] + b[1]],
        ordered=False,
    )
    op.output("down", wo.down, TestingSink(down))
    op.output("meta", wo.meta, TestingSink(meta))
    op.output("late", wo.late, TestingSink(late))
    run_main(flow)
    metas = {(k, wid): m for k, (wid, m) in meta}
    gap_ms = pipelines.GAP_S * 1000
    rows = []
    for k, (wid, (c, s)) in down:
        m = metas[(k, wid)]
        start = (m.open_time - epoch) // ms
        # Bytewax reports a session's end as its last event; Beam's (and the reference's) is last + gap
        end = (m.close_time - epoch) // ms + (gap_ms if task == "W3" else 0)
        rows.append((k, start, end, c, s))
    _write_rows(out, rows)
    return len(late)


def _take(it: Any, n: int) -> list[Any]:
    out = []
    for x in it:
        out.append(x)
        if len(out) >= n:
            break
    return out


def run(system: str, task: str, csv_path: str, msgpack_path: str, out: str) -> dict[str, Any]:
    """Run one system on one task; returns what it reports about itself (written as JSON by `main`)."""
    t0 = time.perf_counter()
    info: dict[str, Any] = {}
    if system == "bare-csv":
        with open(csv_path) as f:
            events = [(k, float(t), int(v)) for k, t, v in (line.split(",") for line in f)]
        _write_rows(out, reference.bare(task, events))
    elif system in ("bare", "bare-wm"):
        events = _load_msgpack(msgpack_path)
        fn = reference.bare if system == "bare" else reference.bare_stream
        _write_rows(out, fn(task, events))
    elif system.startswith("millstream-"):
        import millstream as beam
        from millstream import window

        source = system.split("-", 1)[1]
        _beam_program(beam, window, task, source, csv_path if source == "text" else msgpack_path, out)
    elif system == "beam-text":
        import apache_beam as abeam
        from apache_beam.options.pipeline_options import PipelineOptions
        from apache_beam.transforms import window as awindow

        _beam_program(
            abeam,
            awindow,
            task,
            "text",
            csv_path,
            out,
            options=PipelineOptions(flags=[], runner="FnApiRunner"),
        )
    elif system == "bytewax":
        info["late"] = _bytewax(task, msgpack_path, out)
    else:
        raise SystemExit(f"bench.peer_worker: unknown system {system!r}; known: {', '.join(SYSTEMS)}")
    info["in_process_s"] = round(time.perf_counter() - t0, 4)
    info["peak_rss_mib"] = peak_rss_mib()
    return info


def peak_rss_mib() -> float | None:
    """This process's own peak resident set (VmHWM), in MiB. Not ``ru_maxrss``: Linux carries the spawning
    process's peak into a child's across fork and exec, so a large parent would inflate every child."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def main(argv: list[str]) -> int:
    """``--system S --task W1|W2|W3 --csv PATH --msgpack PATH --out PATH [--info PATH]``."""
    ap = argparse.ArgumentParser(prog="bench.peer_worker")
    ap.add_argument("--system", required=True, choices=SYSTEMS)
    ap.add_argument("--task", required=True, choices=sorted(pipelines.WINDOWED))
    ap.add_argument("--csv", required=True)
    ap.add_argument("--msgpack", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--info", default="")
    a = ap.parse_args(argv)
    info = run(a.system, a.task, a.csv, a.msgpack, a.out)
    if a.info:
        with open(a.info, "w") as f:
            json.dump(info, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
