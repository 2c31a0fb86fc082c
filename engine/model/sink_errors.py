"""`SinkIOError`: an operating-system error of a sink, naming the sink's step and the path it concerned.

Sinks raise plain `OSError`s (a full disk, a read-only folder, a file-size limit); the runtime re-raises them
as `SinkIOError`, still an `OSError` with the same ``errno``, so one line tells which step failed on which file::

    sink step 'WriteCounts' could not write /data/out/.counts.millstream-tmp/…tmp: [Errno 28] No space left on device
"""

from __future__ import annotations

__all__ = ["SinkIOError", "sink_io_error"]


class SinkIOError(OSError):
    """A sink's I/O failed: ``step`` is the sink's step label, ``path`` the file (or target) concerned."""

    def __init__(self, step: str, path: str, operation: str, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause), path)
        self.step = step
        self.path = path
        self.operation = operation

    def __str__(self) -> str:
        detail = f"[Errno {self.errno}] {self.strerror}" if self.errno is not None else str(self.strerror)
        return f"sink step '{self.step}' could not {self.operation} {self.path}: {detail}"


def sink_io_error(step: str, operation: str, cause: OSError, fallback_path: str) -> SinkIOError:
    """`cause` as a SinkIOError of `step`; its own file name wins over `fallback_path` (the sink's target)."""
    if isinstance(cause, SinkIOError):
        return cause
    path = cause.filename if cause.filename is not None else fallback_path
    return SinkIOError(step, str(path), operation, cause)
