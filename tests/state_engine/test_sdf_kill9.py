"""Splittable DoFns under kill -9 and a graceful stop: a job whose restrictions take many activations (see
`sdf_kill_job.py`) is stopped or SIGKILLed part-way, restarted from its checkpoint until it finishes, and
its committed output holds every position of every row exactly once (a restored residual resumes where the
checkpoint left it; nothing is processed again from its initial restriction)."""

from __future__ import annotations

import collections
import glob
import importlib.util
import json
import os
import random
from typing import Any

import pytest

import millstream as beam
from millstream.engine.runtime.operators.splittable_pardo import SplittableParDoNode
from millstream.options.pipeline_options import PipelineOptions

from support.outputs import committed_json_rows

JOB = os.path.join(os.path.dirname(__file__), "sdf_kill_job.py")


def make_input(path: str, rows: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = [{"id": i, "n": rng.randrange(500, 4000), "t": round(i * 0.01, 3)} for i in range(rows)]
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    return events


def check(rows: list[Any], events: list[dict[str, Any]]) -> None:
    """Every (id, position) exactly once, nothing else."""
    seen = collections.Counter((r[0], r[1]) for r in rows)
    dup = [k for k, c in seen.items() if c > 1]
    assert not dup, f"{len(dup)} positions output more than once, e.g. {dup[:5]}"
    expected = {(e["id"], pos) for e in events for pos in range(e["n"])}
    lost = expected - set(seen)
    assert not lost, f"{len(lost)} positions never output, e.g. {sorted(lost)[:5]}"
    assert set(seen) == expected


def job(killed_job: Any, tmp_path: Any) -> Any:
    out = str(tmp_path / "out" / "rows")
    args = [
        str(tmp_path / "in.jsonl"),
        out,
        f"--state_dir={tmp_path / 'state'}",
        "--checkpoint_interval=0.02",
    ]
    return killed_job(JOB, args, out, timeout=120)


def test_a_splittable_dofn_survives_random_kills_exactly_once(tmp_path: Any, killed_job: Any) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 60, seed=1)
    j = job(killed_job, tmp_path)
    hit = j.kill_repeatedly(6, random.Random(2))
    j.finish()
    assert hit >= 4, f"only {hit} kills hit a running job"
    check(j.committed_rows(), events)


@pytest.mark.parametrize("step", [2, 4, 6])
def test_a_splittable_dofn_survives_a_crash_at_a_protocol_step(
    tmp_path: Any, killed_job: Any, step: int
) -> None:
    events = make_input(str(tmp_path / "in.jsonl"), 30, seed=step)
    j = job(killed_job, tmp_path)
    j.crash_at(step, 3)
    j.finish()
    check(j.committed_rows(), events)


async def test_a_graceful_stop_part_way_and_a_restart_output_every_position_once(
    tmp_path: Any, until: Any
) -> None:
    """`Job.stop()` ends the run at a checkpoint with residuals pending; the restarted run restores them."""
    spec = importlib.util.spec_from_file_location("sdf_kill_job", JOB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    events = make_input(str(tmp_path / "in.jsonl"), 40, seed=7)
    src, out = str(tmp_path / "in.jsonl"), str(tmp_path / "out" / "rows")
    options = ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=0.02"]

    p = beam.Pipeline(options=PipelineOptions(options))
    module.build(p, src, out)
    job = await p.start()
    await until(lambda: len(glob.glob(out + "-c*")) >= 2, "two committed checkpoints")
    assert await job.stop() == "STOPPED"
    (node,) = [n for n in job.plan.nodes.values() if isinstance(n, SplittableParDoNode)]
    assert node.key_windows, "no residual was pending at the stop checkpoint"
    first = committed_json_rows(out)
    done = collections.Counter(row[0] for row in first)
    size = {e["id"]: e["n"] for e in events}
    assert any(0 < count < size[i] for i, count in done.items()), "no row was committed part-way"

    p = beam.Pipeline(options=PipelineOptions(options))
    module.build(p, src, out)
    job = await p.start()
    assert await job.wait() == "DONE"
    check(committed_json_rows(out), events)


def test_the_verifier_catches_a_lost_and_a_duplicated_position() -> None:
    events = [{"id": 0, "n": 3, "t": 0}]
    check([[0, 0], [0, 1], [0, 2]], events)
    with pytest.raises(AssertionError, match="never output"):
        check([[0, 0], [0, 2]], events)
    with pytest.raises(AssertionError, match="more than once"):
        check([[0, 0], [0, 1], [0, 1], [0, 2]], events)
