"""The web console in a real headless Chromium against real `millstream run` jobs: the graph and the numbers
agree with /metrics, the watermark advances live, a viewer gets no action buttons, an admin drains the job and
sees it reach DONE, `millstream console` links to the jobs, and axe-core finds no accessibility violations.
A screenshot of each view is kept in tests/artifacts/console/."""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import signal
import subprocess
from typing import Any

import pytest

from millstream.daemon.jobs_cli import parse_metrics

import support.daemon as h
from support.browser import DEADLINE_MS, log_in, open_console

pytestmark = pytest.mark.browser


def tokens_file(path: str) -> dict[str, str]:
    """A tokens file (mode 0600) with one token per role."""
    tokens = {role: secrets.token_urlsafe(24) for role in ("viewer", "developer", "admin")}
    with open(path, "w") as f:
        f.writelines(f"{role} {token}\n" for role, token in tokens.items())
    os.chmod(path, 0o600)
    return tokens


def cell(page: Any, step: str, key: str) -> Any:
    return page.locator(f'#steps tr[data-step="{step}"] [data-key="{key}"]')


def no_accessibility_violations(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_admin_sees_the_live_job_and_drains_it(browser, daemons, tmp_path, artifacts):
    from playwright.sync_api import expect

    tokens = tokens_file(str(tmp_path / "tokens"))
    d = daemons(
        name="console-admin",
        extra=(
            "--tokens_file",
            str(tmp_path / "tokens"),
            "--console_poll=0.2",
            "--console_history_interval=0.2",
            "--linger=120",
        ),
    )
    h.write_events(d.input, 0, 120, bad=(7, 50))
    d.start()
    d.wait_processed(118)
    page = open_console(browser, d.url + "/")
    expect(page.locator("#login")).to_be_visible()
    log_in(page, tokens["admin"])
    assert tokens["admin"] not in page.url, "the token never goes into the URL"
    assert page.evaluate("sessionStorage.getItem('millstream.token')") == tokens["admin"]
    expect(page.locator("#role-text")).to_have_text("logged in as admin")
    expect(page.locator("#actions")).to_be_visible()

    # the graph: one box per step, the edges with their element counts
    steps = [s["step"] for s in d.status()["steps"]]
    expect(page.locator("#graph g.node")).to_have_count(len(steps))
    expect(page.locator('#graph g[data-edge="Check->Gate"] text')).to_have_text("118")
    # the numbers are /metrics' (the job is idle: they stand still)
    metrics = parse_metrics(h.http(d.url + "/metrics", token=tokens["viewer"]).body.decode())
    for name, key in (
        ("millstream_step_elements_in_total", "elements_in"),
        ("millstream_step_elements_out_total", "elements_out"),
        ("millstream_step_dead_letters_total", "dead_letters"),
    ):
        for labels, value in metrics[name]:
            expect(cell(page, labels["step"], key)).to_have_text(str(int(value)))
    expect(page.locator("#dead-latest tbody tr")).to_have_count(2)
    expect(page.locator("#dead-latest")).to_contain_text("ValueError: bad event")
    expect(page.locator("#checkpoints tbody tr").first).to_contain_text(re.compile(r"^\d+"))

    # the watermark advances live: more events, later event times, the page follows without a reload
    before = cell(page, "Sum", "input_watermark").inner_text()
    h.write_events(d.input, 120, 200)
    expect(cell(page, "Read", "elements_out")).to_have_text("320", timeout=DEADLINE_MS)
    expect(cell(page, "Sum", "input_watermark")).not_to_have_text(before, timeout=DEADLINE_MS)
    after = cell(page, "Sum", "input_watermark").inner_text()
    assert after > before, (before, after)  # ISO 8601 times sort as text
    page.get_by_role("button", name="History of Sum").click()
    expect(page.locator('[data-chart="input watermark"] polyline')).to_have_count(1)
    page.screenshot(path=str(artifacts / "job-admin.png"), full_page=True)
    no_accessibility_violations(page)

    # drain, confirmed in a dialog; the state changes live until DONE
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Drain").click()
    expect(page.locator("#job-state")).to_have_text("DONE", timeout=DEADLINE_MS)
    expect(page.locator("#action-result")).to_contain_text("draining (202)")
    page.screenshot(path=str(artifacts / "job-drained.png"), full_page=True)
    assert page.errors == []
    d.signal(signal.SIGTERM)  # ends --linger
    assert d.exit_code() == 0


def test_a_viewer_gets_no_action_buttons_and_cannot_act(browser, daemons, tmp_path, artifacts):
    from playwright.sync_api import expect

    tokens = tokens_file(str(tmp_path / "tokens"))
    d = daemons(
        name="console-viewer", extra=("--tokens_file", str(tmp_path / "tokens"), "--console_poll=0.2")
    )
    h.write_events(d.input, 0, 40)
    d.start()
    d.wait_processed(40)
    page = open_console(browser, d.url + "/")
    # a wrong token is refused in the form, and nothing is shown
    page.fill("#token", "z" * 40)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_have_text("That token was not accepted.")
    expect(page.locator("#console")).to_be_hidden()
    log_in(page, tokens["viewer"])
    expect(page.locator("#role-text")).to_have_text("logged in as viewer")
    expect(page.locator("#actions")).to_be_hidden()
    for name in ("Drain", "Stop", "Cancel"):
        expect(page.get_by_role("button", name=name)).to_have_count(
            0
        )  # hidden: not in the accessibility tree
    # the page holds no more power than the token: the same POST the button would send is refused
    status = page.evaluate("""async () => (await fetch('/drain', {method: 'POST',
        headers: {Authorization: 'Bearer ' + sessionStorage.getItem('millstream.token')}})).status""")
    assert status == 403
    assert d.status()["state"] == "RUNNING"
    page.screenshot(path=str(artifacts / "job-viewer.png"), full_page=True)
    no_accessibility_violations(page)
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('millstream.token')") is None
    assert page.errors == []


def test_millstream_console_lists_and_links_the_jobs(browser, daemons, artifacts):
    from playwright.sync_api import expect

    d = daemons(name="console-listed")
    h.write_events(d.input, 0, 20)
    d.start()
    d.wait_processed(20)
    with h.console(d.jobs_dir, "--poll=0.2") as console:
        page = open_console(browser, console.url + "/")
        log_in_overview(page, console.token())
        row = page.locator(f'#jobs tr[data-job="{d.entry["job_id"]}"]')
        expect(row).to_contain_text("RUNNING")
        expect(row.get_by_role("link", name="console-listed")).to_have_attribute("href", d.url + "/")
        page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
        no_accessibility_violations(page)
        row.get_by_role("link", name="console-listed").click()
        expect(page.locator("#login")).to_be_visible()  # the job's own page, asking for the job's token
        log_in(page, d.admin_token)
        expect(page.locator("#job-name")).to_have_text("console-listed")
        assert page.errors == []


def log_in_overview(page: Any, token: str) -> None:
    page.locator("#token").focus()
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.locator("#list").wait_for(state="visible", timeout=DEADLINE_MS)


def test_two_hundred_steps_are_all_drawn(browser, tmp_path, artifacts):
    from playwright.sync_api import expect

    jobs_dir = str(tmp_path / "jobs")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wide_job.py")
    log_path = str(tmp_path / "wide.log")
    with open(log_path, "wb") as log:
        proc = h.start_job(
            h.cli_command("run", script, f"--jobs_dir={jobs_dir}", "--linger=120", "--console_poll=0.5"),
            cwd=str(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        entry = h.wait_for(
            lambda: next(iter(glob.glob(os.path.join(jobs_dir, "*.json"))), None),
            "the job's entry",
            proc=proc,
            log_path=log_path,
        )
        doc = json.load(open(entry))
        token = open(doc["token_file"]).read().strip()
        url = f"http://127.0.0.1:{doc['port']}"
        h.wait_for(
            lambda: h.http(url + "/status", token=token).json()["state"] == "DONE",
            "the job to finish",
            proc=proc,
            log_path=log_path,
        )
        page = open_console(browser, url + "/")
        log_in(page, token)
        expect(page.locator("#graph g.node")).to_have_count(200)
        expect(page.locator("#steps tbody tr")).to_have_count(200)
        expect(page.locator("#graph g[data-edge]")).to_have_count(199)
        expect(cell(page, "Step199", "elements_out")).to_have_text("1000")
        page.get_by_role("button", name="History of Step199").click()  # the table is usable at this size
        expect(page.locator("#chart-step")).to_have_text("Step199")
        page.screenshot(path=str(artifacts / "job-200-steps.png"))
        assert page.errors == []
        proc.send_signal(signal.SIGTERM)  # ends --linger
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
