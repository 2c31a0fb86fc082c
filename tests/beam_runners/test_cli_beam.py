"""`millstream run pipeline.py --runner PrismRunner` from the user's side, as a real subprocess: the job runs on
Prism (not locally), with progress lines and the local runner's exit codes; `millstream jobs list` says where
Beam-runner jobs are watched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

from support.jobs import installed_cli_command, run_job  # noqa: E402

SCRIPT = """
import sys
import millstream as beam
from millstream.options.pipeline_options import PipelineOptions

def fail(x):
    if x == "boom":
        raise RuntimeError("bad element " + x)
    return x

with beam.Pipeline(options=PipelineOptions(sys.argv[1:])) as p:
    words = p | "Lines" >> beam.Create(sys.argv[-1].split(",")) | "Check" >> beam.Map(fail)
    (words | "Count" >> beam.combiners.Count.PerElement()
     | "Print" >> beam.Map(lambda kv: print("count", kv[0], kv[1], flush=True)))
"""

LATE = """
import sys
import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import window

with beam.Pipeline(options=PipelineOptions(sys.argv[1:])) as p:
    kv = p | beam.Create([("a", 1)]) | beam.WindowInto(window.FixedWindows(10))
    _ = kv | "Group" >> beam.GroupByKey().with_late_data("late")
"""

KAFKA = """
import sys
import millstream as beam
from millstream.io.kafka import WriteToKafka
from millstream.options.pipeline_options import PipelineOptions

with beam.Pipeline(options=PipelineOptions(sys.argv[1:])) as p:
    _ = p | beam.Create([(b"k", b"v")]) | WriteToKafka({"bootstrap.servers": "localhost:1"}, "out")
"""


def millstream(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_job(
        installed_cli_command(*args),
        cwd=str(tmp_path),
        env_extra={"MILLSTREAM_JOBS_DIR": str(tmp_path / "jobs")},
        timeout=300,
    )


def test_run_on_prism_prints_progress_and_exits_0(prism_binary, tmp_path):
    (tmp_path / "wc.py").write_text(SCRIPT)
    proc = millstream(
        tmp_path,
        "run",
        "wc.py",
        "--runner",
        "PrismRunner",
        "--environment_type=LOOPBACK",
        f"--prism_location={prism_binary}",
        "a,b,b,c",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(proc.stdout.splitlines()) == ["count a 1", "count b 2", "count c 1"]
    assert "job wc submitted to PrismRunner: watch it in Prism's log" in proc.stderr
    assert "PrismRunner job ended: DONE" in proc.stderr
    assert "millstream.daemon: job wc" not in proc.stderr  # it ran on Prism, not on the local runner
    assert "apache_beam.runners.worker" not in proc.stderr  # Beam's per-channel INFO logs are quiet


def test_a_failing_job_on_prism_exits_1(prism_binary, tmp_path):
    (tmp_path / "wc.py").write_text(SCRIPT)
    proc = millstream(
        tmp_path,
        "run",
        "wc.py",
        "--runner",
        "PrismRunner",
        "--environment_type=LOOPBACK",
        f"--prism_location={prism_binary}",
        "a,boom",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "bad element boom" in proc.stderr


def test_an_untranslatable_step_exits_2_with_one_line_before_submission(tmp_path):
    (tmp_path / "late.py").write_text(LATE)
    # streaming: late data can occur, and Beam drops it (a bounded batch job translates: it has none)
    args = ("run", "late.py", "--runner", "PrismRunner", "--prism_location=/nonexistent", "--streaming")
    proc = millstream(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("millstream run:")]
    assert errors == [
        "millstream run: step 'Group': with_late_data() has no Beam counterpart (Beam drops late "
        "data); remove it to run on Beam (only a bounded batch job, which has no late data, keeps it, as "
        "an empty output)"
    ]
    assert "Traceback" not in proc.stderr and "submitted" not in proc.stderr


def test_an_untranslatable_io_exits_2_with_one_line_before_submission(tmp_path):
    (tmp_path / "kafka.py").write_text(KAFKA)
    proc = millstream(tmp_path, "run", "kafka.py", "--runner", "PrismRunner", "--prism_location=/nonexistent")
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("millstream run:")]
    assert errors == [
        "millstream run: step 'Write(Kafka(out))': an exactly-once WriteToKafka has no counterpart in Beam's "
        "Python WriteToKafka (at least once there); pass exactly_once=False to run on Beam"
    ]
    assert "Traceback" not in proc.stderr and "submitted" not in proc.stderr


def test_help_and_jobs_list_say_where_beam_jobs_are_watched(tmp_path):
    (tmp_path / "wc.py").write_text(SCRIPT)
    helped = millstream(tmp_path, "run", "wc.py", "--runner", "PrismRunner", "--help")
    assert helped.returncode == 0 and "usage" in (helped.stdout + helped.stderr).lower(), helped.stderr
    listed = millstream(tmp_path, "jobs", "list", "--jobs_dir", str(tmp_path / "jobs"))
    assert listed.returncode == 0
    assert "no running jobs" in listed.stdout
    assert "jobs on Beam's runners are not listed here" in listed.stderr and "Dataflow" in listed.stderr
