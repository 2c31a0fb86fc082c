"""The job-wide dead-letter file (``--dead_letters PATH``): undecodable records of sources without their own
dead-letter output are appended there as JSON lines instead of failing the job.

Each line is the source's dead-letter record (bytes as text or base64, see `portable`) plus ``step``, the
label of the reading step. Lines are flushed and fsynced per batch; a restore that re-reads input after the
last checkpoint appends its bad records again, so the file is at-least-once.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import orjson

from millstream.engine.model.portable import portable

__all__ = ["DeadLetterFile", "dead_letter_file"]

_OPEN: dict[str, DeadLetterFile] = {}
_LOCK = threading.Lock()


class DeadLetterFile:
    """An append-only JSON-lines file of bad records."""

    def __init__(self, path: str) -> None:
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(parent, exist_ok=True)
            self._fh = open(path, "ab")  # noqa: SIM115 - kept open for the job's lifetime
        except OSError as e:
            raise ValueError(f"--dead_letters {path}: cannot open for appending: {e.strerror}") from e

    def append(self, step: str, records: list[dict[str, Any]]) -> None:
        """Append `records` read by `step`, durably."""
        lines = [orjson.dumps(portable({"step": step, **r}), option=orjson.OPT_NON_STR_KEYS) for r in records]
        self._fh.write(b"\n".join(lines) + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())


def dead_letter_file(path: str) -> DeadLetterFile:
    """The one open DeadLetterFile of `path` (several sources of a job share it)."""
    key = os.path.abspath(path)
    with _LOCK:
        if key not in _OPEN:
            _OPEN[key] = DeadLetterFile(path)
        return _OPEN[key]
