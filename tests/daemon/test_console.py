"""The web console's routes and data over real HTTP against real `millstream run` jobs (the page itself is
driven in a real browser by tests/browser): the page is public and holds no data, the data needs a token
and agrees with /metrics, history is a bounded ring, checkpoints and dead letters are listed, bad console
flags are refused before anything runs, and `millstream console` lists the local jobs."""

from __future__ import annotations

import os
import re
import secrets
import sys
import zipfile

import millstream as beam
from millstream.daemon.console.model import ConsoleModel, attach_dead_letter_samples
from millstream.daemon.jobs_cli import parse_metrics
from millstream.daemon.metrics import JobCollector, Sampler, attach_dead_letter_counters
from millstream.options.pipeline_options import PipelineOptions

import support.daemon as h
from support.jobs import run_job


def tokens_file(path: str) -> dict[str, str]:
    """A tokens file (mode 0600) with one token per role."""
    tokens = {role: secrets.token_urlsafe(24) for role in ("viewer", "developer", "admin")}
    with open(path, "w") as f:
        f.writelines(f"{role} {token}\n" for role, token in tokens.items())
    os.chmod(path, 0o600)
    return tokens


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


async def test_the_history_is_a_bounded_ring_of_the_latest_samples():
    p = beam.Pipeline(options=PipelineOptions(["--batch_size=10"]))
    p | "Numbers" >> beam.Create(range(100)) | "Square" >> beam.Map(lambda x: x * x)
    job = await p.start()
    model = ConsoleModel(
        job,
        JobCollector(job, Sampler(job), attach_dead_letter_counters(job)),
        attach_dead_letter_samples(job),
        history_interval_s=1.0,
        history_points=5,
    )
    await job.finished()
    for second in range(50):  # fifty samples of a job that has read everything: a week would be the same
        model.tick(now_wall=1000.0 + second)
    history = model.history_document()
    assert history["times"] == [1045.0, 1046.0, 1047.0, 1048.0, 1049.0]
    assert history["capacity"] == 5
    assert set(history["steps"]) == {"Numbers", "Square"}
    assert all(len(col) == 5 for cols in history["steps"].values() for col in cols.values())
    # the job ended: every watermark is +infinity, and its age is 0
    assert history["steps"]["Square"]["output_watermark"] == ["+inf"] * 5
    assert history["steps"]["Square"]["watermark_age_s"] == [0.0] * 5
    assert model.history_document("Square")["steps"].keys() == {"Square"}


def test_step_state_colours():
    state = ConsoleModel.step_state
    assert (
        state(dead_letters_rising=True, watermark_age_s=1.0, backlog_age_s=60, job_state="RUNNING")
        == "failing"
    )
    assert (
        state(dead_letters_rising=False, watermark_age_s=61.0, backlog_age_s=60, job_state="RUNNING")
        == "backlogged"
    )
    assert (
        state(dead_letters_rising=False, watermark_age_s=59.0, backlog_age_s=60, job_state="RUNNING")
        == "running"
    )
    assert (
        state(dead_letters_rising=False, watermark_age_s=None, backlog_age_s=60, job_state="FAILED")
        == "failing"
    )


def test_the_page_is_public_but_its_data_needs_a_token(daemons, tmp_path):
    tokens = tokens_file(str(tmp_path / "tokens"))
    d = daemons(name="console-auth", extra=("--tokens_file", str(tmp_path / "tokens")))
    h.write_events(d.input, 0, 30)
    d.start()
    d.wait_processed(30)
    for path, kind in (
        ("/", "text/html"),
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ):
        answer = h.http(d.url + path)
        assert answer.status == 200, path
        assert answer.headers["Content-Type"].startswith(kind)
        assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
        # static: nothing of the job is in it
        assert d.entry["job_id"].encode() not in answer.body and b"console-auth" not in answer.body
    page = h.http(d.url + "/").body.decode()
    assert not re.search(r"""(src|href)=["']https?://""", page), "the page loads nothing from elsewhere"
    for path in ("/console/data", "/console/history"):
        assert h.http(d.url + path).status == 401
        assert h.http(d.url + path, token="y" * 40).status == 401
    assert h.http(d.url + "/", "POST").status == 401, "only GET of the assets is public"
    viewer = h.http(d.url + "/console/data", token=tokens["viewer"]).json()
    assert viewer["viewer"] == {"role": "viewer", "can_act": False}
    assert viewer["job"]["name"] == "console-auth"
    developer = h.http(d.url + "/console/data", token=tokens["developer"]).json()
    assert developer["viewer"] == {"role": "developer", "can_act": True}
    assert h.http(d.url + "/console/history?step=Nope", token=tokens["viewer"]).status == 404


def test_the_console_numbers_are_the_metrics_numbers(daemons):
    d = daemons(name="console-numbers", extra=("--console_history_interval=0.05",))
    h.write_events(d.input, 0, 120, bad=(7, 50))
    d.start()
    d.wait_processed(118)
    d.wait(lambda: d.status()["checkpoints"]["taken"] >= 3, "three checkpoints")
    doc = h.http(d.url + "/console/data", token=d.admin_token).json()
    metrics = parse_metrics(h.http(d.url + "/metrics", token=d.admin_token).body.decode())
    for name, key in (
        ("millstream_step_elements_in_total", "elements_in"),
        ("millstream_step_elements_out_total", "elements_out"),
        ("millstream_step_dead_letters_total", "dead_letters"),
    ):
        expected = {labels["step"]: value for labels, value in metrics[name]}
        shown = {s["step"]: s[key] for s in doc["steps"] if s[key] is not None}
        assert shown == expected, name  # an idle job: the counters stand still between the two reads
    steps = {s["step"]: s for s in doc["steps"]}
    assert steps["Read"]["elements_out"] == 120 and steps["Check"]["dead_letters"] == 2
    assert {(e["from"], e["to"]) for e in doc["edges"]} >= {
        ("Read", "Check"),
        ("Check", "Gate"),
        ("Sum", "Format"),
    }
    edge = next(e for e in doc["edges"] if (e["from"], e["to"]) == ("Check", "Gate"))
    assert edge["elements"] == 118, "what crossed the edge: the good events"
    assert [s["name"] for s in doc["stages"]][0] == "Read"
    assert sum(len(s["steps"]) for s in doc["stages"]) == len(doc["steps"])
    # sources, checkpoints (newest first, ids rising), dead letters with their reasons
    assert doc["sources"][0]["step"] == "Read" and doc["sources"][0]["records_read"] == 120
    ids = [c["id"] for c in doc["checkpoints"]]
    assert ids and ids == sorted(ids, reverse=True) and len(ids) <= 20
    assert all(c["duration_s"] >= c["sources_paused_s"] >= 0 for c in doc["checkpoints"])
    latest = doc["dead_letters"]["Check"]
    assert len(latest) == 2 and all(r["reason"].startswith("ValueError: bad event") for r in latest)
    assert "'v': 50" in latest[0]["record"], "newest first"
    history = h.http(d.url + "/console/history?step=Sum", token=d.admin_token).json()
    assert len(history["times"]) >= 2 and history["capacity"] == 360
    assert history["steps"]["Sum"]["input_watermark"][-1] == steps["Sum"]["input_watermark"]


def test_bad_console_flags_are_refused_before_the_job_starts(tmp_path):
    for flag in ("--console_poll=0", "--console_history_interval=-1", "--linger=nan"):
        out = h.cli(
            "run",
            h.SUMS_JOB,
            "--param",
            f"input={tmp_path}/in.jsonl",
            "--param",
            f"output={tmp_path}/o",
            "--streaming",
            f"--jobs_dir={tmp_path}/jobs",
            flag,
            cwd=str(tmp_path),
        )
        assert out.returncode == 2, (flag, out.stderr)
        assert flag.split("=")[0] in out.stderr
        assert not os.path.exists(tmp_path / "jobs") or not os.listdir(tmp_path / "jobs")


def test_linger_keeps_the_final_state_visible_until_a_signal(daemons):
    d = daemons(name="console-linger", extra=("--linger=60",))
    h.write_events(d.input, 0, 10)
    d.start()
    d.wait_processed(10)
    assert h.http(d.url + "/drain", "POST", token=d.admin_token).status == 202
    d.wait(lambda: d.status()["state"] == "DONE", "the drained job to show DONE")
    answer = h.http(d.url + "/console/data", token=d.admin_token)
    assert answer.json()["job"]["state"] == "DONE"
    assert h.http(d.url + "/cancel", "POST", token=d.admin_token).status == 409
    d.signal(15)
    assert d.exit_code() == 0


def test_millstream_console_lists_the_local_jobs(daemons, tmp_path):
    d = daemons(name="listed")
    h.write_events(d.input, 0, 20)
    d.start()
    d.wait_processed(20)
    with h.console(d.jobs_dir) as console:
        url, token_path = console.url, console.token_path
        assert os.stat(token_path).st_mode & 0o077 == 0
        token = console.token()
        assert h.http(url + "/").status == 200
        assert h.http(url + "/jobs").status == 401
        rows = h.http(url + "/jobs", token=token).json()["jobs"]
        assert [(r["name"], r["state"], r["url"]) for r in rows] == [("listed", "RUNNING", d.url + "/")]
        assert rows[0]["throughput_eps"] is not None and rows[0]["system_lag_s"] is not None
    assert not os.path.exists(token_path), "the console's token goes with it"


def test_missing_jobs_directory_is_a_usage_error(tmp_path):
    out = h.cli("console", "--jobs_dir", str(tmp_path / "none"))
    assert out.returncode == 2 and "does not exist" in out.stderr


def test_the_wheel_ships_the_console_assets(tmp_path):
    built = run_job(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            ROOT,
            "-w",
            str(tmp_path),
            "--no-deps",
            "--no-build-isolation",
            "-q",
        ],
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(p for p in os.listdir(tmp_path) if p.endswith(".whl"))
    names = set(zipfile.ZipFile(tmp_path / wheel).namelist())
    for asset in ("index.html", "app.js", "app.css", "jobs.html", "jobs.js"):
        assert f"millstream/daemon/console/static/{asset}" in names


def test_checkpoints_are_listed_between_history_samples(daemons):
    # history every 10 s (the default), checkpoints every 0.05 s: the list must not wait for history samples
    d = daemons(name="console-checkpoints")
    h.write_events(d.input, 0, 10)
    d.start()

    def listed() -> list:
        doc = h.http(d.url + "/console/data", token=d.admin_token).json()
        return doc["checkpoints"] if len(doc["checkpoints"]) >= 5 else []

    checkpoints = d.wait(listed, "five checkpoints listed", timeout=9.0)
    ids = [c["id"] for c in checkpoints]
    assert ids == sorted(set(ids), reverse=True)
    assert all(c["state_size_bytes"] > 0 for c in checkpoints)


async def test_the_history_stops_growing_once_full():
    import tracemalloc

    p = beam.Pipeline(options=PipelineOptions(["--batch_size=10"]))
    numbers = p | "Numbers" >> beam.Create(range(100))
    for i in range(20):
        numbers | f"Branch{i}" >> beam.Map(lambda x: x)
    job = await p.start()
    model = ConsoleModel(
        job,
        JobCollector(job, Sampler(job), attach_dead_letter_counters(job)),
        attach_dead_letter_samples(job),
        history_interval_s=1.0,
        history_points=50,
    )
    await job.finished()
    tracemalloc.start()
    try:
        for second in range(50):
            model.tick(now_wall=float(second))
        full = tracemalloc.get_traced_memory()[0]
        for second in range(50, 500):  # nine more rings' worth: a week of uptime is the same
            model.tick(now_wall=float(second))
        later = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(model.history) == 50
    assert later - full < 0.05 * full, (full, later)
