"""The control endpoint over real HTTP: every route with no token, a malformed header, an unknown token and
each role; refused requests change nothing; a tokens file others can read, or a remote bind without the
explicit flag, is refused before the job starts."""

from __future__ import annotations

import os
import secrets
import signal

import support.daemon as h

ROUTES = [
    ("GET", "/status"),
    ("GET", "/metrics"),
    ("POST", "/drain"),
    ("POST", "/stop"),
    ("POST", "/cancel"),
    ("POST", "/log_level"),
]
LEAST_ROLE = {
    "/status": "viewer",
    "/metrics": "viewer",
    "/drain": "developer",
    "/stop": "developer",
    "/cancel": "developer",
    "/log_level": "admin",
}
RANK = {"viewer": 1, "developer": 2, "admin": 3}
MALFORMED = [
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer two tokens",
    "Bearer t\u00f6ken-with-umlaut-xx",
    "token-without-scheme-xxxxxxxx",
]


def tokens_file(path: str) -> dict[str, str]:
    tokens = {role: secrets.token_urlsafe(24) for role in RANK}
    with open(path, "w") as f:
        f.write("# role token\n")
        for role, token in tokens.items():
            f.write(f"{role} {token}\n")
    os.chmod(path, 0o600)
    return tokens


def test_every_route_with_every_kind_of_credentials(daemons, tmp_path):
    tokens = tokens_file(str(tmp_path / "tokens"))
    d = daemons(extra=("--tokens_file", str(tmp_path / "tokens")))
    first = h.write_events(d.input, 0, 100)
    d.start()
    d.wait_processed(100)
    checkpoints_before = d.status()["checkpoints"]["taken"]

    for method, path in ROUTES:
        url = d.url + path
        answer = h.http(url, method)
        assert answer.status == 401, (method, path)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        for header in MALFORMED:
            answer = h.http(url, method, authorization=header.encode("utf-8").decode("latin-1"))
            assert answer.status == 401, (method, path, header)
        assert h.http(url, method, token="x" * 40).status == 401, "an unknown token"
        for role, token in tokens.items():
            if RANK[role] >= RANK[LEAST_ROLE[path]]:
                continue
            answer = h.http(url, method, token=token)
            assert answer.status == 403, (method, path, role)
            assert "insufficient_scope" in answer.headers["WWW-Authenticate"]

    # nothing changed: still running, still taking checkpoints, no action was logged
    status = d.status()
    assert status["state"] == "RUNNING"
    d.wait(lambda: d.status()["checkpoints"]["taken"] > checkpoints_before, "checkpoints to go on")
    for action in ("drain requested", "stop requested", "cancel requested", "log level set"):
        assert action not in d.log()

    # what each role may do
    for role in ("viewer", "developer", "admin"):
        status = h.http(d.url + "/status", token=tokens[role])
        assert status.status == 200 and status.json()["name"] == "sums"
        metrics = h.http(d.url + "/metrics", token=tokens[role])
        assert metrics.status == 200 and metrics.headers["Content-Type"].startswith("text/plain")
        assert b'millstream_step_elements_in_total{step="Sum"} 100.0' in metrics.body
    assert h.http(d.url + "/status", "POST", token=tokens["admin"]).status == 405
    assert h.http(d.url + "/nowhere", token=tokens["admin"]).status == 404
    assert h.http(d.url + "/log_level", "POST", token=tokens["admin"], body=b"level=debug").status == 200
    assert "log level set to DEBUG" in d.log()
    assert h.http(d.url + "/log_level", "POST", token=tokens["admin"], body=b"level=loud").status == 400

    # a developer stops the job (POST /stop): windows stay open, a restart resumes them exactly once
    answer = h.http(d.url + "/stop", "POST", token=tokens["developer"])
    assert answer.status == 202 and answer.json()["state"] == "STOPPING"
    assert d.exit_code() == 0, d.log()
    assert {r[1] for r in h.committed_rows(d.output)} == {0, 10, 20, 30}
    assert h.inspect_checkpoint(d.state_dir)["final"] is False
    second = h.write_events(d.input, 100, 20)
    d.start()
    d.wait_watermark(59.5)
    answer = h.http(d.url + "/drain", "POST", token=tokens["developer"])
    assert answer.status == 202 and answer.json()["state"] == "DRAINING"
    assert d.exit_code() == 0, d.log()
    assert sorted(h.committed_rows(d.output)) == h.expected_sums(first + second)


def test_actions_the_state_does_not_allow_are_409_and_post_cancel_exits_3(daemons, tmp_path):
    gate = str(tmp_path / "gate")
    open(gate, "w").close()  # the Gate step holds every batch: the drain stays in progress
    d = daemons(gate=gate)
    h.write_events(d.input, 0, 40)
    d.start()
    d.wait(lambda: d.step("Read")["elements_out"] > 0, "the source to read")
    post = lambda path: h.http(d.url + path, "POST", token=d.admin_token)  # noqa: E731
    answer = post("/drain")
    assert answer.status == 202 and answer.json()["state"] == "DRAINING"
    assert post("/drain").status == 202, "drain is idempotent"
    answer = post("/stop")
    assert answer.status == 409 and "DRAINING" in answer.json()["error"]
    assert d.status()["state"] == "DRAINING", "the refused stop changed nothing"
    answer = post("/cancel")
    assert answer.status == 202 and answer.json()["state"] == "CANCELLING"
    assert d.exit_code() == 3, d.log()
    assert "cancel requested (POST /cancel)" in d.log()
    assert h.committed_rows(d.output) == []


def test_a_tokens_file_others_can_read_is_refused_before_anything_starts(tmp_path):
    path = str(tmp_path / "tokens")
    tokens_file(path)
    os.chmod(path, 0o640)
    d = h.Daemon(str(tmp_path), extra=("--tokens_file", path))
    h.write_events(d.input, 0, 10)
    out = h.cli(*d.args()[4:], cwd=str(tmp_path))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "chmod 600" in lines[0] and "0640" in lines[0], out.stderr
    assert not os.path.exists(d.state_dir) and not os.path.exists(os.path.dirname(d.output))
    assert not os.path.exists(d.jobs_dir) or not os.listdir(d.jobs_dir)


def test_a_bad_tokens_file_line_is_refused(tmp_path):
    path = str(tmp_path / "tokens")
    with open(path, "w") as f:
        f.write("owner " + secrets.token_urlsafe(24) + "\n")
    os.chmod(path, 0o600)
    d = h.Daemon(str(tmp_path), extra=("--tokens_file", path))
    out = h.cli(*d.args()[4:], cwd=str(tmp_path))
    assert out.returncode == 2 and "unknown role 'owner'" in out.stderr


def test_binding_beyond_loopback_needs_the_explicit_flag(daemons, tmp_path):
    d = h.Daemon(str(tmp_path), extra=("--control_bind", "0.0.0.0"))
    out = h.cli(*d.args()[4:], cwd=str(tmp_path))
    assert out.returncode == 2 and "--allow_remote_control" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1

    d = daemons(extra=("--control_bind", "0.0.0.0", "--allow_remote_control"))
    d.start()  # reachable (through loopback here), so it listens on every interface
    assert d.entry["host"] == "0.0.0.0"
    taken = h.Daemon(str(tmp_path), name="other", extra=("--control_port", str(d.entry["port"])))
    out = h.cli(*taken.args()[4:], cwd=str(tmp_path))
    assert out.returncode == 2 and "cannot listen on 127.0.0.1:" in out.stderr, out.stderr
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 0, d.log()
