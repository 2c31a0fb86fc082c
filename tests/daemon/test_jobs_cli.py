"""`millstream jobs` against real running jobs: list (with stale entries cleaned), describe (consistent with
/metrics), drain / cancel, exit codes; and the JSON log records carrying job and step."""

from __future__ import annotations

import json
import os

import pytest

import support.daemon as h
from support.jobs import code_command, run_job


class Outcome:
    """What `millstream jobs ...` returned and printed."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def jobs(capsys):
    """`millstream jobs ...` run in this process (it talks to the jobs over real HTTP all the same)."""
    from millstream.daemon.cli import main

    def call(*args: str, jobs_dir: str) -> Outcome:
        capsys.readouterr()
        code = main(["jobs", *args, "--jobs_dir", jobs_dir])
        out = capsys.readouterr()
        return Outcome(code, out.out, out.err)

    return call


def stale_entries(jobs_dir: str) -> list[str]:
    """One entry of a process that has exited, one of a live pid that belongs to another process (reused)."""
    dead = run_job(code_command("import os; print(os.getpid())"))
    paths = []
    for job_id, pid, pid_start in (
        ("deadbeef0001", int(dead.stdout), None),
        ("deadbeef0002", os.getpid(), 1),
    ):
        path = os.path.join(jobs_dir, f"{job_id}.json")
        with open(path, "w") as f:
            json.dump(
                {
                    "job_id": job_id,
                    "name": "ghost",
                    "pid": pid,
                    "pid_start": pid_start,
                    "host": "127.0.0.1",
                    "port": 9,
                    "started": 0.0,
                    "token_file": None,
                    "pipeline": "ghost.py",
                    "state_dir": None,
                },
                f,
            )
        paths.append(path)
    return paths


def flatten(metrics: dict) -> dict[tuple, float]:
    return {
        (name, tuple(sorted(labels.items()))): value
        for name, samples in metrics.items()
        for labels, value in samples
    }


def test_list_describe_drain_cancel_and_json_logs(daemons, jobs):
    a = daemons(name="sums-a", checkpoint_interval=3600, extra=("--log_format", "json"))
    b = daemons(name="sums-b", checkpoint_interval=3600)
    events = h.write_events(a.input, 0, 60, bad=(5,))
    a.start()
    b.start()
    for d in (a, b):
        d.wait_processed(60, 59)
    ghosts = stale_entries(a.jobs_dir)

    listed = jobs("list", "--json", jobs_dir=a.jobs_dir)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted((r["name"], r["state"]) for r in rows) == [("sums-a", "RUNNING"), ("sums-b", "RUNNING")]
    assert {r["pid"] for r in rows} == {a.proc.pid, b.proc.pid}
    assert not any(os.path.exists(p) for p in ghosts), "entries of processes that are gone are removed"
    table = jobs("list", jobs_dir=a.jobs_dir)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["JOB", "ID", "NAME"]
    assert "sums-a" in table.stdout and "sums-b" in table.stdout and "ghost" not in table.stdout

    described = jobs("describe", "sums-a", "--json", jobs_dir=a.jobs_dir)
    assert described.returncode == 0, described.stderr
    doc = json.loads(described.stdout)
    scraped = h.http(a.url + "/metrics", token=a.admin_token).body.decode()
    from millstream.daemon.jobs_cli import parse_metrics

    metrics = flatten(parse_metrics(scraped))
    steps = {s["step"]: s for s in doc["steps"]}
    for label, step in steps.items():
        labels = (("step", label),)
        assert step["elements_in"] == metrics[("millstream_step_elements_in_total", labels)]
        assert step["elements_out"] == metrics[("millstream_step_elements_out_total", labels)]
        assert step["dropped_late"] == metrics[("millstream_step_dropped_late_total", labels)]
        assert step.get("output_watermark") == metrics.get(
            ("millstream_step_output_watermark_seconds", labels)
        )
    assert steps["Read"]["elements_out"] == 60 and steps["Sum"]["elements_in"] == 59
    assert (
        steps["Check"]["dead_letters"]
        == 1
        == metrics[("millstream_step_dead_letters_total", (("step", "Check"),))]
    )
    source = doc["sources"][0]
    assert (
        source["records_read"] == 60 == metrics[("millstream_source_records_read_total", (("step", "Read"),))]
    )
    assert source["backlog"] == 0 == metrics[("millstream_source_backlog", (("step", "Read"),))]
    assert doc["output_watermark"] == metrics[("millstream_output_watermark_seconds", ())] == 29.5
    checked = next(m for m in doc["user_metrics"] if m["name"] == "checked")
    assert (
        checked["value"]
        == 59
        == metrics[
            ("millstream_user_counter_total", (("name", "checked"), ("namespace", "sums"), ("step", "Check")))
        ]
    )
    human = jobs("describe", "sums-a", jobs_dir=a.jobs_dir)
    assert human.returncode == 0 and "sums:checked" in human.stdout and "Sum" in human.stdout

    assert jobs("describe", "nosuch", jobs_dir=a.jobs_dir).returncode == 1
    refused = jobs("stop", "sums-b", "--token", "not-a-valid-token-000000", jobs_dir=a.jobs_dir)
    assert refused.returncode == 3 and "401" in refused.stderr
    assert b.status()["state"] == "RUNNING"

    drained = jobs("drain", "sums-a", "--wait", jobs_dir=a.jobs_dir)
    assert drained.returncode == 0, drained.stderr
    assert a.exit_code() == 0
    assert sorted(h.committed_rows(a.output)) == h.expected_sums(events)
    cancelled = jobs("cancel", b.entry["job_id"], "--wait", jobs_dir=a.jobs_dir)
    assert cancelled.returncode == 0, cancelled.stderr
    assert b.exit_code() == 3
    assert json.loads(jobs("list", "--json", jobs_dir=a.jobs_dir).stdout) == []

    records = [json.loads(line) for line in a.log().splitlines() if line.startswith("{")]
    assert records and all(r["job"] == "sums-a" for r in records)
    rejected = [r for r in records if r["message"].startswith("rejecting event")]
    assert len(rejected) == 1 and rejected[0]["step"] == "Check" and rejected[0]["logger"] == "sums"
    assert rejected[0]["job_id"] == a.entry["job_id"]
