"""`GuardedSinkWriter`: the runtime's wrapper of every sink writer, turning its `OSError`s into `SinkIOError`s
that name the sink's step and the path (the writer's `io_path()` when the error itself names no file)."""

from __future__ import annotations

from typing import Any

from millstream.engine.model.io import EndOfInputSinkWriter, SinkWriter
from millstream.engine.model.sink_errors import sink_io_error
from millstream.engine.runtime.graph.capabilities import PathNamingWriter


class GuardedSinkWriter(SinkWriter):
    """Delegates to `inner`; other attributes are the inner writer's."""

    def __init__(self, step: str, inner: SinkWriter) -> None:
        self.step = step
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy in progress): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _error(self, operation: str, cause: OSError) -> OSError:
        inner = self.inner
        fallback = inner.io_path() if isinstance(inner, PathNamingWriter) else type(inner).__name__
        return sink_io_error(self.step, operation, cause, fallback)

    async def open(self) -> None:
        """`SinkWriter.open`."""
        try:
            await self.inner.open()
        except OSError as e:
            raise self._error("open", e) from e

    async def committed_checkpoint(self) -> int | None:
        """`SinkWriter.committed_checkpoint`."""
        return await self.inner.committed_checkpoint()

    async def committed_after(self, checkpoint_id: int) -> list[str]:
        """`SinkWriter.committed_after`."""
        try:
            return await self.inner.committed_after(checkpoint_id)
        except OSError as e:
            raise self._error("list", e) from e

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        """`SinkWriter.recover`."""
        try:
            await self.inner.recover(checkpoint_id, record)
        except OSError as e:
            raise self._error("recover", e) from e

    async def write(self, values: list[Any]) -> None:
        """`SinkWriter.write`."""
        try:
            await self.inner.write(values)
        except OSError as e:
            raise self._error("write", e) from e

    async def prepare(self, checkpoint_id: int) -> Any:
        """`SinkWriter.prepare`."""
        try:
            return await self.inner.prepare(checkpoint_id)
        except OSError as e:
            raise self._error("write", e) from e

    async def prepare_end_of_input(self, checkpoint_id: int) -> Any:
        """`EndOfInputSinkWriter.prepare_end_of_input` when the inner writer has it, else `prepare`."""
        try:
            if isinstance(self.inner, EndOfInputSinkWriter):
                return await self.inner.prepare_end_of_input(checkpoint_id)
            return await self.inner.prepare(checkpoint_id)
        except OSError as e:
            raise self._error("write", e) from e

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        """`SinkWriter.commit`."""
        try:
            await self.inner.commit(checkpoint_id, record)
        except OSError as e:
            raise self._error("commit", e) from e

    async def abort(self) -> None:
        """`SinkWriter.abort`."""
        try:
            await self.inner.abort()
        except OSError as e:
            raise self._error("abort", e) from e

    async def close(self) -> None:
        """`SinkWriter.close`."""
        try:
            await self.inner.close()
        except OSError as e:
            raise self._error("close", e) from e
