"""`--dead_letters PATH`: a job whose source meets an undecodable record fails once with a message naming the
way out, and the same job run with the flag writes the record (with its reason) to PATH and finishes."""

from __future__ import annotations

import json
import os

import support.daemon as h

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad_line_script.py")


def run(tmp_path, *args: str):
    return h.cli("run", SCRIPT, "in.jsonl", *args, "--jobs_dir", str(tmp_path / "jobs"), cwd=str(tmp_path))


def test_bad_line_fails_once_then_dead_letters_flag_lets_the_job_finish(tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"v": 1}\nnot json\n{"v": 2}\n\xff\n{"v": 4}\n')
    failed = run(tmp_path, f"--state_dir={tmp_path}/state")
    assert failed.returncode == 1
    assert "run with --dead_letters PATH" in failed.stderr
    assert failed.stderr.count("Traceback (most recent call last)") == 1, failed.stderr

    ok = run(tmp_path, f"--state_dir={tmp_path}/state", "--dead_letters=dlq/bad.jsonl")
    assert ok.returncode == 0, ok.stderr
    assert "total 7" in ok.stdout
    rows = [json.loads(line) for line in (tmp_path / "dlq" / "bad.jsonl").read_text().splitlines()]
    assert [(r["line"], r["raw"], r["raw_encoding"], r["step"]) for r in rows] == [
        (2, "not json", "utf-8", "Read/Read"),
        (4, "/w==", "base64", "Read/Read"),
    ]
    assert all(r["reason"] and r["file"] == "in.jsonl" for r in rows)


def test_an_unwritable_dead_letters_path_is_one_clear_line(tmp_path):
    (tmp_path / "in.jsonl").write_bytes(b'{"v": 1}\nnot json\n')
    (tmp_path / "taken").write_text("a file, not a directory")
    out = run(tmp_path, f"--state_dir={tmp_path}/state", "--dead_letters=taken/bad.jsonl")
    assert out.returncode == 1
    assert "--dead_letters taken/bad.jsonl: cannot open for appending" in out.stderr
