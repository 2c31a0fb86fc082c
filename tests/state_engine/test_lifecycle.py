"""What drain, stop and cancel do to a job started again (docs/state.md, "Drain, stop, cancel and restart"):
sources, windows, user state and outputs, one test per row, each checked against an independent count of the
input. A watched directory of JSON-lines files, fixed 60 s windows with an early processing-time trigger,
accumulating counts per key, exactly-once JSON output, RocksDB state."""

from __future__ import annotations

import glob
import json
from collections import Counter
from typing import Any

import millstream as beam
from millstream.engine.runtime.windowing.operator import ReducerNode
from millstream.io import ReadFromJson, WriteToJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import trigger, window
from millstream.transforms.userstate import ReadModifyWriteStateSpec

W = 60


def _events(key: str, start: int, n: int) -> list[dict[str, Any]]:
    return [{"k": key, "t": start + i % 50} for i in range(n)]


class Seq(beam.DoFn):
    """Numbers each key's elements 1, 2, ... in a user-state counter (the global window)."""

    N = ReadModifyWriteStateSpec("n", None)

    def process(self, element: Any, n: Any = beam.DoFn.StateParam(N)) -> Any:
        count = (n.read() or 0) + 1
        n.write(count)
        yield {"k": element[0], "seq": count}


def _pipeline(tmp_path: Any) -> beam.Pipeline:
    (tmp_path / "in").mkdir(exist_ok=True)
    opts = PipelineOptions(
        ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=100000"]
    )
    p = beam.Pipeline(options=opts)
    events = p | ReadFromJson(
        str(tmp_path / "in" / "*.jsonl"), timestamp_fn=lambda e: e["t"], watch=True, poll_interval=0.02
    )
    (
        events
        | beam.Map(lambda e: (e["k"], 1))
        | beam.WindowInto(
            window.FixedWindows(W),
            trigger=trigger.AfterWatermark(early=trigger.AfterProcessingTime(5)),
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            allowed_lateness=3600,
        )
        | beam.CombinePerKey(sum)
        | beam.Map(
            lambda kv, w=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam: {
                "k": kv[0],
                "w": int(w.start),
                "n": kv[1],
                "index": pane.index,
                "last": pane.is_last,
            }
        )
        | "panes" >> WriteToJson(str(tmp_path / "out" / "panes"))
    )
    (
        events
        | "kv" >> beam.Map(lambda e: (e["k"], e["t"]))
        | beam.ParDo(Seq())
        | "seqs" >> WriteToJson(str(tmp_path / "out" / "seqs"))
    )
    return p


def _add(tmp_path: Any, name: str, rows: list[dict[str, Any]]) -> None:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.tmp").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / f"{name}.tmp").rename(folder / f"{name}.jsonl")  # appears whole to the watcher


def _rows(tmp_path: Any, what: str) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(glob.glob(str(tmp_path / "out" / what) + "-c*")):
        with open(name) as f:
            rows.extend(json.loads(line) for line in f)
    return rows


def _one_pane_sequence_each(panes: list[dict[str, Any]]) -> dict[tuple[str, int], int]:
    """Checks every (key, window) has exactly one first and one last pane; returns its final count."""
    firsts = Counter((p["k"], p["w"]) for p in panes if p["index"] == 0)
    lasts = Counter((p["k"], p["w"]) for p in panes if p["last"])
    assert all(c == 1 for c in firsts.values()), f"a window emitted a second first pane: {firsts}"
    assert all(c == 1 for c in lasts.values()), f"a window emitted a second last pane: {lasts}"
    assert set(firsts) == set(lasts)
    return {(p["k"], p["w"]): p["n"] for p in panes if p["last"]}


async def _run(
    tmp_path: Any, until: Any, feed: list[tuple[str, list[dict[str, Any]]]], end: str, reread: int = 0
) -> Any:
    """Start the job, add the files of `feed`, wait until it read them (and `reread` elements read again),
    then end it with `end`."""
    job = await _pipeline(tmp_path).start()
    reducer = next(n for n in job.plan.nodes.values() if isinstance(n, ReducerNode))
    before = reducer.elements_in
    for name, rows in feed:
        _add(tmp_path, name, rows)
    total = sum(len(rows) for _, rows in feed) + reread
    await until(lambda: reducer.elements_in >= before + total, "the new input")
    state = await getattr(job, end)()
    return job, reducer, state


async def test_restart_after_a_drain_keeps_finalised_windows_closed(tmp_path: Any, until: Any) -> None:
    _, _, state = await _run(tmp_path, until, [("a", _events("u", 0, 27))], "drain")
    assert state == "DONE"
    # the restart continues the source (file a is not read again) and refuses window [0, 60) the drain closed
    _, reducer, state = await _run(
        tmp_path, until, [("b", _events("u", 0, 20) + _events("u", 120, 5))], "drain"
    )
    assert state == "DONE"
    assert reducer.dropped_late == 20
    assert _one_pane_sequence_each(_rows(tmp_path, "panes")) == {("u", 0): 27, ("u", 120): 5}


async def test_restart_after_a_stop_continues_the_same_windows(tmp_path: Any, until: Any) -> None:
    _, _, state = await _run(tmp_path, until, [("a", _events("u", 0, 27))], "stop")
    assert state == "STOPPED"
    _, reducer, _ = await _run(tmp_path, until, [("b", _events("u", 0, 20))], "drain")
    assert reducer.dropped_late == 0
    assert _one_pane_sequence_each(_rows(tmp_path, "panes")) == {("u", 0): 47}
    assert [r["seq"] for r in _rows(tmp_path, "seqs")] == list(range(1, 48)), (
        "user state continues after a stop"
    )


async def test_restart_after_a_cancel_resumes_the_last_checkpoint(tmp_path: Any, until: Any) -> None:
    _, _, state = await _run(tmp_path, until, [("a", _events("u", 0, 27))], "cancel")
    assert state == "CANCELLED"
    assert _rows(tmp_path, "panes") == [] and _rows(tmp_path, "seqs") == [], (
        "uncommitted output was discarded"
    )
    # no checkpoint was taken: the restart reads file a again
    await _run(tmp_path, until, [("b", _events("u", 0, 20))], "drain", reread=27)
    assert _one_pane_sequence_each(_rows(tmp_path, "panes")) == {("u", 0): 47}
    assert sorted(r["seq"] for r in _rows(tmp_path, "seqs")) == list(range(1, 48))


async def test_a_drain_empties_user_state_and_the_restart_continues_the_source(
    tmp_path: Any, until: Any
) -> None:
    await _run(tmp_path, until, [("a", _events("u", 0, 3))], "drain")
    await _run(tmp_path, until, [("b", _events("u", 200, 2))], "drain")
    assert [r["seq"] for r in _rows(tmp_path, "seqs")] == [1, 2, 3, 1, 2], (
        "file a read once; counter restarted"
    )
    assert _one_pane_sequence_each(_rows(tmp_path, "panes")) == {("u", 0): 3, ("u", 180): 2}
