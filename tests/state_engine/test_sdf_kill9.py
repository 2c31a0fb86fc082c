"""Splittable DoFns under kill -9, a graceful stop and a drain: a job whose restrictions take many activations (see
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
from millstream.engine.model import splittable
from millstream.engine.runtime.operators.splittable_pardo import SplittableParDoNode
from millstream.io import WriteToJson
from millstream.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from millstream.options.pipeline_options import PipelineOptions
from millstream.utils.timestamp import Duration

from support.outputs import committed_json_rows

JOB = os.path.join(os.path.dirname(__file__), "sdf_kill_job.py")


def make_input(path: str, rows: int, seed: int, sizes: tuple[int, int] = (500, 4000)) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = [{"id": i, "n": rng.randrange(*sizes), "t": round(i * 0.01, 3)} for i in range(rows)]
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
    tmp_path: Any, until: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Job.stop()` ends the run at a checkpoint with residuals pending; the restarted run restores them."""
    spec = importlib.util.spec_from_file_location("sdf_kill_job", JOB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(
        splittable, "SPLIT_AFTER_OUTPUTS", module.SPLIT_AFTER_OUTPUTS
    )  # as the job's main does
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


class _UnboundedTracker(OffsetRestrictionTracker):
    """An offset tracker whose restriction is declared unbounded (a stream read forever)."""

    def is_bounded(self) -> bool:
        return False


class OnePerFiveSeconds(beam.DoFn, beam.transforms.core.RestrictionProvider):
    """Elements ``(name, n)``: one position per activation, the rest deferred 5 s; a range of a million
    positions or more is unbounded."""

    def initial_restriction(self, element: tuple[str, int]) -> OffsetRange:
        return OffsetRange(0, element[1])

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return (_UnboundedTracker if restriction.stop >= 1_000_000 else OffsetRestrictionTracker)(restriction)

    def process(self, element: tuple[str, int], tracker: Any = beam.DoFn.RestrictionParam()) -> Any:
        pos = tracker.current_restriction().start
        if tracker.try_claim(pos):
            yield element[0], pos
            tracker.defer_remainder(Duration(seconds=5))


async def test_a_drain_finishes_bounded_residuals_and_truncates_unbounded_ones(
    tmp_path: Any, until: Any
) -> None:
    """A streaming job whose input ended lingers on deferred residuals; a drain ends it: the bounded element's
    positions are all committed, the unbounded one's (Beam's default `truncate`) no more than it had."""
    out = str(tmp_path / "out" / "rows")
    p = beam.Pipeline(
        options=PipelineOptions(
            ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=0.05"]
        )
    )
    _ = (
        p
        | beam.Create([("bounded", 4), ("unbounded", 10**9)])
        | beam.ParDo(OnePerFiveSeconds())
        | beam.Map(list)
        | WriteToJson(out)
    )
    job = await p.start()
    (node,) = [n for n in job.plan.nodes.values() if isinstance(n, SplittableParDoNode)]
    await until(node.lingers, "the input to end, residuals pending")
    assert await job.drain(timeout=30) == "DONE"
    assert sorted(map(tuple, committed_json_rows(out))) == [("bounded", i) for i in range(4)] + [
        ("unbounded", 0)
    ]


# -- a polling splittable DoFn acking each batch with its bundle finalizer (sdf_ack_job.py) ---------------------

ACK_JOB = os.path.join(os.path.dirname(__file__), "sdf_ack_job.py")


def _lines(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def ack_job(killed_job: Any, tmp_path: Any) -> Any:
    out = str(tmp_path / "out" / "rows")
    args = [
        str(tmp_path / "in.jsonl"),
        out,
        str(tmp_path / "acks.jsonl"),
        str(tmp_path / "tried.jsonl"),
        f"--state_dir={tmp_path / 'state'}",
        "--checkpoint_interval=0.02",
    ]
    return killed_job(ACK_JOB, args, out, timeout=120)


def check_acks(acks: list[dict[str, Any]], rows: list[Any]) -> None:
    """Every ack ran after its batch was committed (the callback saw it in a committed file), at most once per
    batch, and acks exactly what the batch output."""
    assert all(a["committed"] for a in acks), [a for a in acks if not a["committed"]][:5]
    batches = collections.Counter((a["id"], a["start"]) for a in acks)
    assert not [b for b, c in batches.items() if c > 1], "a batch was acked twice"
    committed = {(r[0], r[1]) for r in rows}
    for a in acks:
        assert {(a["id"], pos) for pos in range(a["start"], a["stop"])} <= committed


@pytest.mark.parametrize("step", [2, 4])
def test_finalizer_callbacks_of_an_uncommitted_activation_never_run_and_the_restored_run_redoes_it(
    tmp_path: Any, killed_job: Any, step: int
) -> None:
    """A crash inside the 3rd checkpoint, before its commit: the activations that checkpoint would have
    committed ran (their rows are in the tried file) but never acked; the restored run redoes them (outputs
    exactly once) and acks them after its own commits, so every committed batch is acked exactly once."""
    events = make_input(str(tmp_path / "in.jsonl"), 12, seed=10 + step, sizes=(40, 120))
    j = ack_job(killed_job, tmp_path)
    j.crash_at(step, 3)
    out = str(tmp_path / "out" / "rows")
    first_rows = {(r[0], r[1]) for r in committed_json_rows(out)}
    first_acks = _lines(str(tmp_path / "acks.jsonl"))
    tried = {(t["id"], t["start"]) for t in _lines(str(tmp_path / "tried.jsonl"))}
    assert first_acks, "no checkpoint committed before the crash"
    check_acks(first_acks, committed_json_rows(out))
    size = {e["id"]: e["n"] for e in events}
    lost = {b for b in tried if b not in first_rows and b[1] < size[b[0]]}  # not an empty last activation
    assert lost, "no activation ran after the last committed checkpoint"
    assert not lost & {(a["id"], a["start"]) for a in first_acks}, "an uncommitted activation was acked"

    j.finish()
    rows = j.committed_rows()
    check(rows, events)
    acks = _lines(str(tmp_path / "acks.jsonl"))
    check_acks(acks, rows)
    acked = {(a["id"], a["start"]) for a in acks}
    redone = {(a["id"], a["start"]) for a in acks[len(first_acks) :]}
    assert lost <= redone, "a lost activation was not redone and acked by the restored run"
    # every batch of every row is acked once: the crash lost no callback of a committed activation
    expected = {(e["id"], s) for e in events for s in range(0, e["n"], _ack_batch())}
    assert acked == expected


def test_a_polling_finalizing_dofn_survives_random_kills(tmp_path: Any, killed_job: Any) -> None:
    """Random kill -9s: outputs exactly once, and no callback ever ran before its batch was committed or
    twice (a kill between a commit and its callbacks may lose them: Beam's best effort)."""
    events = make_input(str(tmp_path / "in.jsonl"), 20, seed=3, sizes=(40, 120))
    j = ack_job(killed_job, tmp_path)
    hit = j.kill_repeatedly(5, random.Random(4))
    j.finish()
    assert hit >= 3, f"only {hit} kills hit a running job"
    rows = j.committed_rows()
    check(rows, events)
    check_acks(_lines(str(tmp_path / "acks.jsonl")), rows)


def _ack_batch() -> int:
    spec = importlib.util.spec_from_file_location("sdf_ack_job", ACK_JOB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.BATCH)
