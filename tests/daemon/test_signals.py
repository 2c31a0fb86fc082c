"""Signals on a real `millstream run` process: drain, stop, cancel, a drain that times out, and signals that
arrive while a checkpoint is in progress. Each test checks the exit code, which windows were emitted, the
checkpoint (through `millstream checkpoints inspect`) and that a restart yields every result exactly once."""

from __future__ import annotations

import os
import signal

import support.daemon as h

WINDOW_STARTS_BELOW_WATERMARK = {0, 10, 20, 30}  # events at 0..49.5 s: the watermark 49.5 closes these


def windows(rows: list[list]) -> set[int]:
    return {r[1] for r in rows}


def test_sigterm_drains_every_window_and_exits_0(daemons):
    d = daemons()
    events = h.write_events(d.input, 0, 100)
    d.start()
    d.wait_processed(100)
    # before the drain only the windows behind the watermark can have been emitted
    assert windows(h.committed_rows(d.output)) <= WINDOW_STARTS_BELOW_WATERMARK
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 0, d.log()
    assert "drain requested (SIGTERM)" in d.log()
    assert sorted(h.committed_rows(d.output)) == h.expected_sums(events)  # the open window [40, 50) fired too
    ck = h.inspect_checkpoint(d.state_dir)
    assert ck["final"] is True
    assert ck["sources"]["Read"]["positions"]["follow"] == os.path.getsize(d.input)
    assert not os.listdir(d.jobs_dir), "the job's entry and token are removed when it ends"


def test_a_restart_after_a_drain_emits_nothing_twice(daemons):
    d = daemons()
    events = h.write_events(d.input, 0, 100)
    d.start()
    d.wait_processed(100)
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 0, d.log()
    more = h.write_events(d.input, 100, 30)
    d.start()
    d.wait_watermark(64.5)
    d.signal(signal.SIGINT)
    assert d.exit_code() == 0, d.log()
    rows = h.committed_rows(d.output)
    assert len(rows) == len({(r[0], r[1], r[2]) for r in rows}), "no result was committed twice"
    assert sum(r[2] for r in rows) == sum(e["v"] for e in events + more), "every event counted exactly once"


def test_sigusr1_stops_with_windows_open_and_a_restart_resumes_them(daemons):
    d = daemons()
    first = h.write_events(d.input, 0, 100)
    d.start()
    d.wait_processed(100)
    d.signal(signal.SIGUSR1)
    assert d.exit_code() == 0, d.log()
    rows = h.committed_rows(d.output)
    assert windows(rows) == WINDOW_STARTS_BELOW_WATERMARK, "stop fires no window"
    assert sorted(rows) == [r for r in h.expected_sums(first) if r[1] in WINDOW_STARTS_BELOW_WATERMARK]
    ck = h.inspect_checkpoint(d.state_dir)
    assert ck["final"] is False
    assert ck["sources"]["Read"]["positions"]["follow"] == os.path.getsize(d.input)

    # [40, 50) stayed open in the checkpoint: after the restart its sums include the events read before the stop
    second = h.write_events(d.input, 100, 30)  # 50..64.5 s: completes [40, 50), opens [50, 60) and [60, 70)
    d.start()
    d.wait_watermark(64.5)
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 0, d.log()
    rows = h.committed_rows(d.output)
    assert sorted(rows) == h.expected_sums(first + second), "every window exactly once across the stop"


def test_second_signal_cancels_and_the_last_checkpoint_restarts_exactly_once(daemons, tmp_path):
    gate = str(tmp_path / "gate")
    d = daemons(gate=gate)
    first = h.write_events(d.input, 0, 100)
    d.start()
    d.wait_processed(100)
    taken = d.status()["checkpoints"]["taken"]
    d.wait(lambda: d.status()["checkpoints"]["taken"] > taken + 1, "a checkpoint covering the first events")
    open(gate, "w").close()  # from now on batches wait in the Gate step: the drain cannot finish
    second = h.write_events(d.input, 100, 60)
    d.wait(lambda: d.step("Read")["elements_out"] >= 120, "the source to read on while Gate holds")
    d.signal(signal.SIGTERM)
    d.wait(lambda: d.status()["state"] == "DRAINING", "the drain to start")
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 3, d.log()
    assert "cancel requested (second signal, SIGTERM)" in d.log()
    rows = h.committed_rows(d.output)
    all_sums = h.expected_sums(first + second)
    assert windows(rows) <= WINDOW_STARTS_BELOW_WATERMARK, "nothing held in Gate was emitted"
    assert all(r in all_sums for r in rows)
    ck = h.inspect_checkpoint(d.state_dir)
    assert ck["final"] is False
    assert ck["sources"]["Read"]["positions"]["follow"] < os.path.getsize(d.input)

    os.remove(gate)
    d.start()
    d.wait_watermark(79.5)  # the restarted job has read and summed everything
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 0, d.log()
    assert sorted(h.committed_rows(d.output)) == all_sums


def test_a_drain_that_outlasts_drain_timeout_is_cancelled_with_exit_code_4(daemons, tmp_path):
    gate = str(tmp_path / "gate")
    open(gate, "w").close()
    d = daemons(gate=gate, extra=("--drain_timeout", "0.5"))
    h.write_events(d.input, 0, 40)
    d.start()
    d.wait(lambda: d.step("Read")["elements_out"] > 0, "the source to read")
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 4, d.log()
    assert "did not finish within 0.5s" in d.log()
    assert h.committed_rows(d.output) == []


def _checkpoint_in_progress(d, gate: str) -> tuple[list[dict], list[dict]]:
    """Bring the job to a checkpoint that waits (in its DRAIN step) for a batch the Gate step holds."""
    first = h.write_events(d.input, 0, 100)
    d.start()
    d.wait_processed(100)
    open(gate, "w").close()
    second = h.write_events(d.input, 100, 60)
    d.wait(lambda: d.status()["checkpoints"]["step"] == "DRAIN", "a checkpoint waiting for the gated batch")
    return first, second


def test_sigterm_during_a_checkpoint_drains_after_it(daemons, tmp_path):
    gate = str(tmp_path / "gate")
    d = daemons(gate=gate)
    first, second = _checkpoint_in_progress(d, gate)
    d.signal(signal.SIGTERM)
    d.wait(lambda: d.status()["state"] == "DRAINING", "the drain to be requested")
    assert d.status()["checkpoints"]["step"] == "DRAIN", "the checkpoint is still in progress"
    os.remove(gate)
    assert d.exit_code() == 0, d.log()
    ck = h.inspect_checkpoint(d.state_dir)
    assert ck["final"] is True
    position = ck["sources"]["Read"]["positions"]["follow"]
    read = h.events_read(d.input, position)  # the drain stopped reading where the final checkpoint says
    assert len(read) > len(first)
    assert sorted(h.committed_rows(d.output)) == h.expected_sums(read), "every window of what was read fired"
    assert read == (first + second)[: len(read)]


def test_sigusr1_during_a_checkpoint_stops_after_it_and_resumes_exactly_once(daemons, tmp_path):
    gate = str(tmp_path / "gate")
    d = daemons(gate=gate)
    first, second = _checkpoint_in_progress(d, gate)
    d.signal(signal.SIGUSR1)
    d.wait(lambda: d.status()["state"] == "STOPPING", "the stop to be requested")
    assert d.status()["checkpoints"]["step"] == "DRAIN", "the checkpoint is still in progress"
    os.remove(gate)
    assert d.exit_code() == 0, d.log()
    rows = h.committed_rows(d.output)
    all_sums = h.expected_sums(first + second)
    assert all(r in all_sums for r in rows)
    assert 70 not in windows(rows), "the window [70, 80) is still open: a stop fires nothing"
    assert h.inspect_checkpoint(d.state_dir)["final"] is False

    d.start()
    d.wait_watermark(79.5)
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 0, d.log()
    assert sorted(h.committed_rows(d.output)) == all_sums


class _Ticks(h.Daemon):
    """`millstream run` of ticks_job.py: an unbounded periodic sequence, with a short drain deadline."""

    def args(self) -> list[str]:
        job = os.path.join(os.path.dirname(h.SUMS_JOB), "ticks_job.py")
        return [
            *h.cli_command("run", job),
            "--param",
            f"output={self.output}",
            "--streaming",
            f"--job_name={self.name}",
            f"--state_dir={self.state_dir}",
            f"--checkpoint_interval={self.checkpoint_interval}",
            f"--jobs_dir={self.jobs_dir}",
            "--drain_timeout",
            "20",
        ]


def test_sigterm_drains_an_unbounded_periodic_sequence_and_exits_0(tmp_path):
    """The drain truncates the sequence's held timer, so the job ends within the drain budget (not exit 4)."""
    d = _Ticks(str(tmp_path), name="ticks")
    try:
        d.start()
        d.wait(lambda: d.step("Index")["elements_out"] >= 3, "three ticks")
        d.signal(signal.SIGTERM)
        assert d.exit_code() == 0, d.log()
        rows = h.committed_rows(d.output)
        assert len(rows) >= 3
        assert sorted(rows) == list(range(len(rows))), "each tick committed once, none skipped"
        assert h.inspect_checkpoint(d.state_dir)["final"] is True
    finally:
        d.kill()
