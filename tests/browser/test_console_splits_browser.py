"""The console's *Splits* panel and late-data table in headless Chromium against a real `millstream run` job."""

from __future__ import annotations

import pytest

import support.daemon as h
from support.browser import DEADLINE_MS, log_in, open_console

pytestmark = pytest.mark.browser


def test_opening_a_source_shows_its_backlog_per_split(browser, daemons):
    from playwright.sync_api import expect

    d = daemons(name="console-splits", extra=("--console_poll=0.2",))
    h.write_events(d.input, 0, 30)
    d.start()
    d.wait_processed(30)
    page = open_console(browser, d.url + "/")
    log_in(page, d.admin_token)
    expect(page.locator("#late-latest tbody tr")).to_have_count(1)  # the "none" row: nothing dropped
    expect(page.locator("#late-latest")).to_contain_text("none")
    page.get_by_role("button", name="Backlog per split of Read").click()
    expect(page.locator("#splits-step")).to_have_text("Read", timeout=DEADLINE_MS)
    answer = h.http(d.url + "/console/source?step=Read", token=d.admin_token).json()
    if answer["splits"] is None:  # the test job's follow source cannot tell: the page says why
        expect(page.locator("#source-splits tbody")).to_contain_text(answer["note"])
    else:
        expect(page.locator("#source-splits tbody tr")).to_have_count(len(answer["splits"]))
    assert page.errors == []
