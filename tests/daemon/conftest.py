"""The `daemons` fixture (the helpers are `support.daemon`)."""

from __future__ import annotations

from typing import Any

import pytest

import support.daemon as helpers


@pytest.fixture
def daemons(tmp_path: Any) -> Any:
    """A factory of Daemons in `tmp_path`; kills any still running at the end."""
    started: list[Any] = []

    def make(**kwargs: Any) -> Any:
        d = helpers.Daemon(str(tmp_path), **kwargs)
        started.append(d)
        return d

    yield make
    for d in started:
        d.kill()
