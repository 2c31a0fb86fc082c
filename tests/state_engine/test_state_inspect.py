"""`millstream state inspect` reports every stateful step of a checkpoint — incremental ones (windowed
aggregations, user state) included — with keys and open (key, window) pairs counted from the input."""

from __future__ import annotations

import json
from typing import Any

import millstream as beam
from millstream.io import ReadFromJson
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import trigger, window
from millstream.transforms.userstate import BagStateSpec

from support.jobs import cli

DoFn = beam.DoFn
KEYS = 30


class Buffer(DoFn):
    """Keeps every value of its key (global window)."""

    VALUES = BagStateSpec("values", None)

    def process(self, element: Any, values: Any = DoFn.StateParam(VALUES)) -> Any:
        values.add(element[1])
        return []


def _pipeline(src: str, state: str) -> Any:
    opts = PipelineOptions(["--streaming", f"--state_dir={state}", "--checkpoint_interval=100000"])
    p = beam.Pipeline(options=opts)
    kv = (
        p
        | ReadFromJson(
            src, timestamp_fn=lambda e: e["t"], max_out_of_orderness=1000.0, watch=True, poll_interval=0.02
        )
        | beam.Map(lambda e: (e["k"], e["v"]))
    )
    _ = kv | "Fixed" >> (beam.WindowInto(window.FixedWindows(10)) | beam.CombinePerKey(sum))
    _ = kv | "Sessions" >> (beam.WindowInto(window.Sessions(5)) | beam.CombinePerKey(sum))
    _ = kv | "Early" >> (
        beam.WindowInto(
            window.FixedWindows(10),
            trigger=trigger.AfterWatermark(early=trigger.AfterCount(100)),
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
        )
        | beam.CombinePerKey(sum)
    )
    _ = kv | "Buffer" >> beam.ParDo(Buffer())
    return p


async def test_state_inspect_counts_keys_and_open_windows_of_every_stateful_step(
    tmp_path: Any, until: Any
) -> None:
    src = str(tmp_path / "in.jsonl")
    state = str(tmp_path / "state")
    with open(src, "w") as f:
        for i in range(KEYS):  # every key in two fixed windows and two sessions: [0, 10) / [10, 20)
            for t in (1, 2, 15):
                f.write(json.dumps({"k": f"k{i}", "t": t, "v": 1}) + "\n")
    job = await _pipeline(src, state).start()
    buffer = next(n for n in job.plan.nodes.values() if n.label.startswith("Buffer"))
    await until(lambda: buffer.elements_in >= 3 * KEYS, "the input")
    await job.stop()
    out = cli("state", "inspect", "--json", "--state_dir", state)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    by_prefix = {s["step"].split("/")[0]: s for s in doc["steps"]}
    assert {"Fixed", "Sessions", "Early", "Buffer"} <= set(by_prefix), doc
    expected = {"Fixed": 2 * KEYS, "Sessions": 2 * KEYS, "Early": 2 * KEYS, "Buffer": KEYS}
    for step, windows in expected.items():
        row = by_prefix[step]
        assert (row["keys"], row["open_windows"]) == (KEYS, windows), row
        assert row["bytes"] > 0
