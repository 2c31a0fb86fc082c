"""Driving the operator console in headless Chromium (Playwright): open it, log in with the keyboard."""

from __future__ import annotations

from typing import Any

#: How long a browser test waits for the console to show something (ms).
DEADLINE_MS = 30_000


def open_console(browser: Any, url: str) -> Any:
    """A new page on `url` in a 1280x900 context; its JavaScript errors collect in ``page.errors``."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    return page


def log_in(page: Any, token: str) -> None:
    """With the keyboard only: focus the field, type, Enter submits the form."""
    page.locator("#token").focus()
    page.keyboard.type(token)
    page.keyboard.press("Enter")
    page.locator("#console").wait_for(state="visible", timeout=DEADLINE_MS)
