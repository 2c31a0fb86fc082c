"""A tiny unbounded source for the daemon tests: follows a JSON-lines file as it grows (``tail -f``).

Its position is the byte offset after the last complete line, so a restored job neither skips nor re-reads a
line. `read` returns an empty batch after a short poll when nothing new is there, so checkpoints and drains are
never held up by an idle source.
"""

from __future__ import annotations

import json
import os
from typing import Any

import anyio

from millstream.io import Source, SourceBatch, SourceReader

POLL_S = 0.01


class FollowReader(SourceReader):
    """Reads complete lines appended to one file."""

    def __init__(self, path: str, batch_size: int) -> None:
        self.path = path
        self.batch_size = batch_size
        self.offset = 0

    async def open(self, positions: dict[str, Any] | None) -> None:
        if positions:
            self.offset = int(positions["follow"])

    def positions(self) -> dict[str, Any]:
        return {"follow": self.offset}

    def backlog(self) -> int | None:
        try:
            return max(0, os.path.getsize(self.path) - self.offset)
        except OSError:
            return None

    async def read(self) -> SourceBatch | None:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(1 << 16)
        end = data.rfind(b"\n")
        if end < 0:
            await anyio.sleep(POLL_S)  # nothing new: an idle source polls
            return SourceBatch("follow", [])
        lines = data[: end + 1].split(b"\n")[:-1][: self.batch_size]
        consumed = sum(len(line) + 1 for line in lines)
        self.offset += consumed
        return SourceBatch("follow", [json.loads(line) for line in lines], nbytes=consumed)


class FollowSource(Source):
    """An unbounded JSON-lines file source."""

    is_bounded = False

    def __init__(self, path: str) -> None:
        self.path = path

    def create_reader(self, options: Any) -> SourceReader:
        from millstream.options.pipeline_options import MillstreamOptions

        batch_size = options.view_as(MillstreamOptions).batch_size
        return FollowReader(self.path, batch_size)

    def display_name(self) -> str:
        return "Follow"
