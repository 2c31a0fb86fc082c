"""What a new user hit on a first run (issue 13's smaller items), through the real `millstream run`:
log records without a step show just the job, the start-up line brackets an IPv6 address, and a tokens file
that is not UTF-8 or holds no token is refused in one line naming the file."""

from __future__ import annotations

import os
import secrets

import support.daemon as h

PLAIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plain_script.py")

REPLAY = """
import millstream as beam
from millstream.io import ReadFromJson, WriteToJson

if __name__ == "__main__":
    with beam.Pipeline() as p:
        p | ReadFromJson("in.jsonl") | beam.Map(lambda e: e["k"]) | WriteToJson("out/keys")
"""


def run(tmp_path, *args: str):
    return h.cli("run", *args, "--jobs_dir", str(tmp_path / "jobs"), cwd=str(tmp_path))


def test_a_record_logged_before_any_step_shows_just_the_job(tmp_path):
    (tmp_path / "replay.py").write_text(REPLAY)
    (tmp_path / "in.jsonl").write_text('{"k": "a"}\n')
    assert run(tmp_path, "replay.py").returncode == 0
    again = run(tmp_path, "replay.py")  # the checkpointer logs that it starts afresh, before any step ran
    assert again.returncode == 0, again.stderr
    assert "INFO [replay] millstream.checkpoint: the job in" in again.stderr, again.stderr
    assert "<unknown>" not in again.stderr and "/-]" not in again.stderr


def test_the_start_up_line_shows_an_ipv6_endpoint_in_brackets(tmp_path):
    out = run(tmp_path, PLAIN, "--control_bind", "::1")
    assert out.returncode == 0, out.stderr
    assert "control endpoint http://[::1]:" in out.stderr, out.stderr


def refused(tmp_path, content: bytes) -> str:
    path = str(tmp_path / "tokens")
    with open(path, "wb") as f:
        f.write(content)
    os.chmod(path, 0o600)
    d = h.Daemon(str(tmp_path), extra=("--tokens_file", path))
    out = h.cli(*d.args()[4:], cwd=str(tmp_path))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert not os.path.exists(d.state_dir), "refused before the pipeline was built"
    return lines[0]


def test_a_tokens_file_that_is_not_utf8_is_refused_naming_the_file_and_line(tmp_path):
    token = secrets.token_urlsafe(24)
    message = refused(tmp_path, f"admin {token}\nviewer caf\xe9-{token}\n".encode("latin-1"))
    assert f"{tmp_path / 'tokens'}:2:" in message and "not UTF-8" in message and "0xe9" in message


def test_an_empty_tokens_file_is_refused(tmp_path):
    for content in (b"", b"# tokens for the clicks job\n\n"):
        message = refused(tmp_path, content)
        assert f"tokens file {tmp_path / 'tokens'} has no tokens" in message
        assert "role token" in message
