"""`millstream checkpoints`: a directory that is not a state directory is one line, not a traceback; `inspect`
shows accumulation modes by name."""

from __future__ import annotations

import json

import pytest

import millstream as beam
from millstream.daemon.cli import main
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import trigger, window


def test_list_on_a_directory_that_is_not_a_state_dir_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not state")
    with pytest.raises(SystemExit) as exc:
        main(["checkpoints", "list", "--state_dir", str(tmp_path)])
    assert str(exc.value).startswith(f"millstream: {tmp_path} is not a job's state directory")
    assert "\n" not in str(exc.value)


def test_inspect_names_the_accumulation_mode(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"k": "a", "t": 1}\n{"k": "a", "t": 2}\n')
    state = tmp_path / "state"
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={state}"])) as p:
        (
            p
            | beam.io.ReadFromJson(str(src), timestamp_fn=lambda e: e["t"])
            | beam.WindowInto(
                window.FixedWindows(60),
                trigger=trigger.AfterWatermark(),
                accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            )
            | beam.Map(lambda e: (e["k"], 1))
            | beam.CombinePerKey(sum)
            | beam.io.WriteToText(str(tmp_path / "out"))
        )
    capsys.readouterr()
    assert main(["checkpoints", "inspect", "--state_dir", str(state)]) == 0
    doc = json.loads(capsys.readouterr().out)
    accumulations = [s.get("accumulation") for s in doc["steps"].values() if isinstance(s, dict)]
    assert "AccumulationMode.ACCUMULATING" in accumulations, doc["steps"]
