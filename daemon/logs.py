"""Logging for running jobs: every record carries the job's name and id and the pipeline step it came from.

`configure_logging(...)` installs one handler on the root logger, so records from millstream, from user
DoFns (`logging.getLogger(__name__).info(...)`) and from libraries all get the same fields:

* text (default): ``2024-05-01 12:00:00,123 INFO [clicks/Count] millstream.daemon: message``, or
  ``[clicks]`` for a record no step is known for
* json (``--log_format json``): one object per line with ``time, level, logger, job, job_id, step, message``
  (and ``exc_info`` when there is a traceback), for log shippers.

The step is the one the runtime last attributed work to in the current job context (the same attribution
user metrics use, see `millstream.engine.model.metrics.set_current_step`); records logged outside any
step (the daemon's own, the checkpointer's before a step ran) have the step ``-`` and show only the job.
"""

from __future__ import annotations

import datetime
import logging
import sys
from typing import Any

import orjson

from millstream.engine.model import metrics as _metrics

#: Text format of the default handler.
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(where)s] %(name)s: %(message)s"
#: What the metrics container calls a step before the runtime attributed any work to one.
_NO_STEP = "<unknown>"


class JobIdentity:
    """The job a process runs; filled in as the job starts (a process runs one job at a time)."""

    def __init__(self, name: str = "-", job_id: str = "-") -> None:
        self.name = name
        self.job_id = job_id


#: The identity every record of this process is stamped with.
IDENTITY = JobIdentity()


def current_step() -> str:
    """The step the running code belongs to, or "-" outside a job."""
    container = _metrics._current.get()
    if container is None or container.step == _NO_STEP:
        return "-"
    return container.step


class JobContextFilter(logging.Filter):
    """Adds `job`, `job_id`, `step` and `where` (``job/step``, or ``job`` without a step) to every record it
    sees (never drops a record)."""

    def __init__(self, identity: JobIdentity = IDENTITY) -> None:
        super().__init__()
        self.identity = identity

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "job"):
            record.job = self.identity.name
        if not hasattr(record, "job_id"):
            record.job_id = self.identity.job_id
        if not hasattr(record, "step"):
            record.step = current_step()
        if not hasattr(record, "where"):
            job, step = getattr(record, "job", "-"), getattr(record, "step", "-")
            record.where = job if step in ("-", _NO_STEP) else f"{job}/{step}"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "job": getattr(record, "job", "-"),
            "job_id": getattr(record, "job_id", "-"),
            "step": getattr(record, "step", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def parse_level(text: str) -> int:
    """A level name (DEBUG, INFO, WARNING, ERROR, CRITICAL; any case) or number; ValueError otherwise."""
    value = text.strip().upper()
    if value.isdigit():
        return int(value)
    level = logging.getLevelNamesMapping().get(value)
    if level is None:
        raise ValueError(f"unknown log level {text!r} (use DEBUG, INFO, WARNING, ERROR or CRITICAL)")
    return level


def configure_logging(
    log_format: str = "text", level: str | int = "INFO", stream: Any = None
) -> logging.Handler:
    """Route all logging of this process through one handler with job and step fields; returns the handler.

    Replaces handlers an earlier call installed (so a process running several jobs in turn keeps one).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(JobContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.millstream_handler = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "millstream_handler", False):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else parse_level(level))
    return handler


def set_level(level: str | int) -> int:
    """Change the process's log level at run time (the control endpoint's admin route); returns it."""
    value = level if isinstance(level, int) else parse_level(level)
    logging.getLogger().setLevel(value)
    return value
