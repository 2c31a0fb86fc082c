"""Templates on the command line: --help, `template describe`, parameters checked before any data is read
(one line, exit code 2), Beam custom options as parameters, and plain Beam scripts run as before."""

from __future__ import annotations

import json
import logging
import os

import pytest

import support.daemon as h

HERE = os.path.dirname(os.path.abspath(__file__))
OPTIONS_JOB = os.path.join(HERE, "options_job.py")
PLAIN = os.path.join(HERE, "plain_script.py")


def run(tmp_path, *args: str):
    return h.cli("run", *args, "--jobs_dir", str(tmp_path / "jobs"), cwd=str(tmp_path))


class Outcome:
    """What an in-process `millstream ...` returned and printed."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def in_process(tmp_path, capsys, monkeypatch):
    """`millstream run ...` in this process, for the checks that end before a job starts (no subprocess)."""
    from millstream.daemon.cli import main

    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def call(*args: str) -> Outcome:
        capsys.readouterr()
        try:
            code = main(["run", *args, "--jobs_dir", str(tmp_path / "jobs")])
        finally:
            root.handlers[:], root.level = handlers, level
        out = capsys.readouterr()
        return Outcome(code, out.out, out.err)

    return call


def one_line_error(out) -> str:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def nothing_started(tmp_path) -> None:
    jobs = tmp_path / "jobs"
    assert not jobs.exists() or not os.listdir(jobs)
    assert not (tmp_path / ".millstream").exists() and not (tmp_path / "out").exists()


def test_help_lists_the_parameters(tmp_path, in_process):
    out = in_process(h.SUMS_JOB, "--help")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "sums: Per-key sums in fixed windows, exactly once." in text
    for line in (
        "--input TEXT",
        "JSON-lines file to follow (required; must match: .+\\.jsonl)",
        "--window NUMBER",
        "window size in seconds (default: 10.0)",
        "--drain_timeout",
        "--tokens_file",
    ):
        assert line in text, line
    nothing_started(tmp_path)


def test_describe_prints_flex_template_metadata():
    out = h.cli("template", "describe", h.SUMS_JOB)
    assert out.returncode == 0, out.stderr
    meta = json.loads(out.stdout)
    assert meta["name"] == "sums" and meta["description"] == "Per-key sums in fixed windows, exactly once."
    params = {p["name"]: p for p in meta["parameters"]}
    assert params["input"] == {
        "name": "input",
        "label": "Input",
        "helpText": "JSON-lines file to follow",
        "isOptional": False,
        "paramType": "TEXT",
        "regexes": [r".+\.jsonl"],
    }
    assert params["window"]["isOptional"] is True and params["window"]["defaultValue"] == "10.0"
    assert params["window"]["paramType"] == "NUMBER"

    out = h.cli("template", "describe", OPTIONS_JOB)
    params = {p["name"]: p for p in json.loads(out.stdout)["parameters"]}
    assert params["lines_from"]["isOptional"] is False and params["lines_from"]["helpText"] == "a text file"
    assert params["limit"]["defaultValue"] == "10" and params["limit"]["paramType"] == "NUMBER"


def test_missing_and_bad_parameters_are_one_line_and_exit_2(tmp_path, in_process):
    (tmp_path / "in.jsonl").write_text("")
    line = one_line_error(in_process(h.SUMS_JOB, "--input", "in.jsonl", "--streaming"))
    assert "missing required parameter: output" in line
    args = (h.SUMS_JOB, "--param", "input=in.jsonl", "--param", "output=out/x")
    assert "parameter 'window': invalid number value 'abc'" in one_line_error(
        in_process(*args, "--param", "window=abc")
    )
    assert "unknown parameter 'windw' (did you mean window?)" in one_line_error(
        in_process(*args, "--param", "windw=3")
    )
    assert "does not match" in one_line_error(in_process(h.SUMS_JOB, "--input", "in.txt", "--output", "o"))
    assert "--strmaing (did you mean --streaming?)" in one_line_error(in_process(*args, "--strmaing"))
    assert "no such pipeline file" in one_line_error(in_process("nowhere.py"))
    assert "--param is for templates" in one_line_error(in_process(PLAIN, "--param", "x=1"))
    nothing_started(tmp_path)


def test_beam_custom_options_are_template_parameters(tmp_path):
    (tmp_path / "lines.txt").write_text("a\nb\nc\nd\n")
    out = run(tmp_path, OPTIONS_JOB, "--lines_from", "lines.txt", "--limit", "2")
    assert out.returncode == 0, out.stderr
    assert "count 2" in out.stdout
    out = run(tmp_path, OPTIONS_JOB, "--param", "lines_from=lines.txt")
    assert out.returncode == 0 and "count 4" in out.stdout, out.stderr
    assert "the following arguments are required: --lines_from" in one_line_error(run(tmp_path, OPTIONS_JOB))
    assert "invalid int value: 'many'" in one_line_error(
        run(tmp_path, OPTIONS_JOB, "--lines_from", "lines.txt", "--param", "limit=many")
    )
    # the same template named as a module (found on PYTHONPATH) and with its function
    env = {**os.environ, "PYTHONPATH": HERE}
    for spec in ("options_job", "options_job:pipeline"):
        out = h.cli(
            "run",
            spec,
            "--lines_from",
            "lines.txt",
            "--limit",
            "3",
            "--jobs_dir",
            str(tmp_path / "jobs"),
            cwd=str(tmp_path),
            env=env,
        )
        assert out.returncode == 0 and "count 3" in out.stdout, out.stderr


def test_plain_beam_scripts_run_supervised_as_before(tmp_path):
    out = run(tmp_path, PLAIN, "--word", "hi")
    assert out.returncode == 0, out.stderr
    assert "count 3 of hi" in out.stdout
    assert "job plain_script (id" in out.stderr and "ended: DONE" in out.stderr
    out = run(tmp_path, PLAIN + ":run", "--word", "ho")  # a function called with the remaining arguments
    assert out.returncode == 0 and "count 3 of ho" in out.stdout, out.stderr
    assert not os.listdir(tmp_path / "jobs"), "the jobs' entries are gone"
    assert "unknown pipeline option(s): --bogus" in one_line_error(
        run(tmp_path, PLAIN, "--bogus", "--strict_options")
    )


def test_log_level_and_format(tmp_path, in_process):
    quiet = run(tmp_path, PLAIN, "--log_level", "WARNING")
    assert quiet.returncode == 0 and "count 3 of x" in quiet.stdout
    assert "running" not in quiet.stderr, "INFO records are below WARNING"
    text = run(tmp_path, PLAIN)
    assert "INFO [plain_script] millstream.daemon: job plain_script (id" in text.stderr
    assert "unknown log level 'LOUD'" in one_line_error(in_process(PLAIN, "--log_level", "LOUD"))
