"""Reading what a job committed: its exactly-once JSON-lines files (``<prefix>-c*``, one per checkpoint).

Kept apart from the process runners so that an in-process test reading output is not marked `subprocess`
(tests/conftest.py marks the users of support.jobs / support.kill9).
"""

from __future__ import annotations

import glob
import json
from typing import Any

__all__ = ["committed_json_rows"]


def committed_json_rows(prefix: str) -> list[Any]:
    """Every row of the committed JSON-lines files ``<prefix>-c*``, in file order; fails on a torn line."""
    rows = []
    for name in sorted(glob.glob(prefix + "-c*")):
        with open(name) as f:
            for line in f:
                assert line.endswith("\n"), f"torn line in {name}: {line!r}"
                rows.append(json.loads(line))
    return rows
