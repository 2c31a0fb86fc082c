"""Running a pipeline as a long-lived job: signals, the control endpoint, the jobs directory, exit codes.

`supervise(pipeline, settings, auth)` starts the pipeline on the running loop (`await pipeline.start()`) and
watches it until it ends:

* SIGTERM or SIGINT: **drain** (stop reading, watermarks to +infinity, every open window fires, final
  checkpoint and sink commit); if the drain takes longer than ``--drain_timeout`` the job is cancelled.
  A second SIGTERM/SIGINT: **cancel** (open sink transactions are aborted; the last checkpoint stays, so a
  restart is exactly-once); it interrupts user code that blocks the loop (`millstream.daemon.blocked_cancel`).
* SIGUSR1: **stop** (checkpoint, then exit without firing windows; a restart resumes with them open).
* The control endpoint (`millstream.daemon.control`) offers the same actions plus status and metrics.

Exit codes of ``millstream run``:

= ================================================================================
0 the job finished, drained or stopped
1 the job failed
2 usage or configuration error, reported before any data is read
3 the job was cancelled (a second signal, ``POST /cancel``, ``millstream jobs cancel``)
4 a drain did not finish within ``--drain_timeout`` and the job was cancelled
= ================================================================================

Plain Beam scripts run under `DaemonRunner`, which ``millstream run`` installs as the runner of
`Pipeline.run()` for the duration of the script, so they are supervised the same way.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import anyio

from millstream.daemon.blocked_cancel import cancel_blocked_code
from millstream.daemon.control import (
    Auth,
    ControlServer,
    Request,
    Response,
    Route,
    check_bind,
    endpoint_url,
    json_response,
    load_tokens,
)
from millstream.daemon.control import write_secret as _write_secret
from millstream.daemon.control_security import AuditLog, server_tls_context
from millstream.daemon.jobs_cli import (
    default_jobs_dir,
    ensure_jobs_dir,
    process_start_time,
    remove_entry,
    write_entry,
)
from millstream.daemon.logs import IDENTITY, set_level
from millstream.engine.runtime.exec.job import JobState

log = logging.getLogger("millstream.daemon")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED, EXIT_DRAIN_TIMEOUT = 0, 1, 2, 3, 4


class DaemonConfigError(ValueError):
    """The daemon cannot start as configured (one line for the user; exit code 2)."""


@dataclass
class DaemonSettings:
    """How `millstream run` supervises a job (its daemon flags)."""

    drain_timeout: float = 60.0
    control_port: int = 0
    control_bind: str = "127.0.0.1"
    allow_remote_control: bool = False
    tokens_file: str | None = None
    control_tls_cert: str | None = None
    control_tls_key: str | None = None
    control_tls_client_ca: str | None = None
    audit_log: str | None = None
    jobs_dir: str = field(default_factory=default_jobs_dir)
    log_format: str = "text"
    log_level: str = "INFO"
    pipeline: str = ""
    console_poll: float = 2.0
    console_history_interval: float = 10.0
    linger: float = 0.0


def add_daemon_arguments(parser: argparse.ArgumentParser) -> None:
    """The daemon flags of `millstream run`."""
    group = parser.add_argument_group("daemon flags")
    group.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a template parameter (repeatable)"
    )
    group.add_argument(
        "--drain_timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="cancel a drain that takes longer (exit code 4; default: %(default)s); keep it below "
        "the time your process manager waits before SIGKILL",
    )
    group.add_argument(
        "--control_port",
        type=int,
        default=0,
        metavar="PORT",
        help="port of the control endpoint (default: a free one)",
    )
    group.add_argument(
        "--control_bind",
        default="127.0.0.1",
        metavar="ADDR",
        help="address of the control endpoint (default: %(default)s)",
    )
    group.add_argument(
        "--insecure_remote_control",
        "--allow_remote_control",
        dest="allow_remote_control",
        action="store_true",
        help="allow --control_bind beyond loopback in plain HTTP (without TLS; a trusted network only)",
    )
    group.add_argument(
        "--control_tls_cert", default=None, metavar="PEM", help="serve the control endpoint over TLS"
    )
    group.add_argument(
        "--control_tls_key", default=None, metavar="PEM", help="the private key of --control_tls_cert"
    )
    group.add_argument(
        "--control_tls_client_ca",
        default=None,
        metavar="PEM",
        help="mutual TLS: require client certificates signed by this CA (tokens-file lines "
        "'role cert:<subject CN>' give them roles)",
    )
    group.add_argument(
        "--audit_log",
        default=None,
        metavar="PATH",
        help="append one JSON line per mutating control request (also logged to millstream.audit)",
    )
    group.add_argument(
        "--tokens_file",
        default=None,
        metavar="PATH",
        help="bearer tokens, lines 'role token' (roles: viewer, developer, admin); mode 0600",
    )
    group.add_argument(
        "--jobs_dir",
        default=None,
        metavar="DIR",
        help="where running jobs are registered (default: $MILLSTREAM_JOBS_DIR or ~/.millstream/jobs)",
    )
    group.add_argument("--log_format", choices=["text", "json"], default="text", help="log record format")
    group.add_argument("--log_level", default="INFO", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    group.add_argument(
        "--console_poll",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often the web console's page refreshes (default: %(default)s)",
    )
    group.add_argument(
        "--console_history_interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="spacing of the console's history samples; it keeps 360 (default: %(default)s, an hour)",
    )
    group.add_argument(
        "--linger",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after the job ends, keep the control endpoint (and console) answering this long so "
        "the final state can be seen; a signal ends it early (default: %(default)s)",
    )


def settings_from_args(args: argparse.Namespace, pipeline: str) -> DaemonSettings:
    """DaemonSettings from parsed daemon flags."""
    return DaemonSettings(
        drain_timeout=args.drain_timeout,
        control_port=args.control_port,
        control_bind=args.control_bind,
        allow_remote_control=args.allow_remote_control,
        tokens_file=args.tokens_file,
        control_tls_cert=args.control_tls_cert,
        control_tls_key=args.control_tls_key,
        control_tls_client_ca=args.control_tls_client_ca,
        audit_log=args.audit_log,
        jobs_dir=args.jobs_dir or default_jobs_dir(),
        log_format=args.log_format,
        log_level=args.log_level,
        pipeline=pipeline,
        console_poll=getattr(args, "console_poll", 2.0),
        console_history_interval=getattr(args, "console_history_interval", 10.0),
        linger=getattr(args, "linger", 0.0),
    )


def preflight(settings: DaemonSettings) -> Auth:
    """Check everything the daemon needs before the pipeline is built or any data read; returns the tokens."""
    from millstream.daemon.control import ControlConfigError
    from millstream.daemon.logs import parse_level

    try:
        parse_level(settings.log_level)
        if not (0 <= settings.control_port <= 65535):
            raise ControlConfigError(f"--control_port {settings.control_port} is not a port number")
        if not (settings.drain_timeout > 0 and math.isfinite(settings.drain_timeout)):
            raise ControlConfigError("--drain_timeout must be a positive number of seconds")
        if (settings.control_tls_cert is None) != (settings.control_tls_key is None):
            raise ControlConfigError("--control_tls_cert and --control_tls_key go together")
        if settings.control_tls_client_ca is not None and settings.control_tls_cert is None:
            raise ControlConfigError("--control_tls_client_ca needs --control_tls_cert/--control_tls_key")
        check_bind(
            settings.control_bind, settings.allow_remote_control, tls=settings.control_tls_cert is not None
        )
        tls_context(settings)
        for flag, value in (
            ("--console_poll", settings.console_poll),
            ("--console_history_interval", settings.console_history_interval),
        ):
            if not (value > 0 and math.isfinite(value)):
                raise ControlConfigError(f"{flag} must be a positive number of seconds, not {value:g}")
        if not (settings.linger >= 0 and math.isfinite(settings.linger)):
            raise ControlConfigError(
                f"--linger must be zero or a positive number of seconds, not {settings.linger:g}"
            )
        auth = load_tokens(settings.tokens_file) if settings.tokens_file else Auth()
    except ValueError as e:
        raise DaemonConfigError(str(e)) from e
    try:
        settings.jobs_dir = ensure_jobs_dir(settings.jobs_dir)
    except OSError as e:
        raise DaemonConfigError(f"cannot use the jobs directory {settings.jobs_dir}: {e}") from e
    return auth


def tls_context(settings: DaemonSettings) -> ssl.SSLContext | None:
    """The control endpoint's TLS context from the daemon flags (None: plain HTTP on loopback)."""
    if settings.control_tls_cert is None or settings.control_tls_key is None:
        return None
    return server_tls_context(
        settings.control_tls_cert, settings.control_tls_key, settings.control_tls_client_ca
    )


def _jsonable(value: Any) -> Any:
    """Status as JSON: infinite watermarks become the string "+inf" (JSON has no infinity)."""
    if isinstance(value, float) and math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class Supervisor:
    """Owns one running job: turns signals and control requests into drain / stop / cancel."""

    def __init__(self, job: Any, settings: DaemonSettings, auth: Auth) -> None:
        from millstream.daemon.metrics import (
            JobCollector,
            Sampler,
            attach_dead_letter_counters,
            make_registry,
        )

        self.job = job
        self.settings = settings
        self.auth = auth
        self.reason: str | None = None
        self.tg: Any = None
        #: set by a signal once the job has ended: stops `--linger` early
        self.linger_over = anyio.Event()
        self.dead_letters = attach_dead_letter_counters(job)
        self.sampler = Sampler(job)
        from millstream.daemon.console.model import ConsoleModel, attach_dead_letter_samples

        collector = JobCollector(job, self.sampler, self.dead_letters)
        self.registry = make_registry(collector)
        self.console = ConsoleModel(
            job,
            collector,
            attach_dead_letter_samples(job),
            history_interval_s=settings.console_history_interval,
        )

    # -- actions (shared by signals and the endpoint) ---------------------------------------------------------
    def drain(self, via: str) -> tuple[bool, str]:
        """Start a drain with its deadline; (accepted, message)."""
        state = self.job.state
        if state == JobState.DRAINING:
            return True, "already draining"
        if state not in (JobState.RUNNING, JobState.STARTING):
            return False, f"cannot drain a job that is {state}"
        log.info(
            "drain requested (%s): reading stops, every open window fires, then a final checkpoint; "
            "cancelling if not done within %gs",
            via,
            self.settings.drain_timeout,
        )
        self.job.request_drain()
        self.tg.start_soon(self._drain_deadline)
        return True, "draining"

    def stop(self, via: str) -> tuple[bool, str]:
        """Start a stop (checkpoint, exit without firing windows); (accepted, message)."""
        state = self.job.state
        if state == JobState.STOPPING:
            return True, "already stopping"
        if state not in (JobState.RUNNING, JobState.STARTING):
            return False, f"cannot stop a job that is {state}"
        if self.job.make_checkpointer is None:
            log.warning(
                "stop requested (%s), but the job keeps no durable state: open windows are discarded", via
            )
        else:
            log.info("stop requested (%s): checkpoint, then exit with windows still open", via)
        self.job.request_stop()
        return True, "stopping"

    def cancel(self, via: str) -> tuple[bool, str]:
        """Cancel now; (accepted, message)."""
        state = self.job.state
        if state == JobState.CANCELLING:
            return True, "already cancelling"
        if state in JobState.TERMINAL:
            return False, f"cannot cancel a job that is {state}"
        log.warning("cancel requested (%s): uncommitted output is discarded; the last checkpoint stays", via)
        self.reason = self.reason or "cancel"
        self.job.request_cancel()
        return True, "cancelling"

    async def _drain_deadline(self) -> None:
        with anyio.move_on_after(self.settings.drain_timeout):
            await self.job.finished()
            return
        if self.job.state not in JobState.TERMINAL and self.job.state != JobState.CANCELLING:
            log.error("the drain did not finish within %gs: cancelling", self.settings.drain_timeout)
            self.reason = "drain_timeout"
            self.job.request_cancel()

    async def _signals(self, receiver: Any) -> None:
        async for signum in receiver:
            name = signal.Signals(signum).name
            state = self.job.state
            if signum == signal.SIGUSR1:
                if state in (JobState.RUNNING, JobState.STARTING):
                    self.stop(name)
                else:
                    log.warning("%s ignored: the job is %s (SIGTERM/SIGINT cancels)", name, state)
                continue
            if state in (JobState.RUNNING, JobState.STARTING):
                self.drain(name)
            elif state in (JobState.DRAINING, JobState.STOPPING):
                self.cancel(f"second signal, {name}")
            elif state in JobState.TERMINAL:
                self.linger_over.set()
            else:
                log.warning("%s ignored: the job is already %s", name, state)

    # -- the control endpoint ---------------------------------------------------------------------------------
    def routes(self) -> dict[tuple[str, str], Route]:
        """The control endpoint's routes and the role each needs (the web console's among them)."""
        from millstream.daemon.console.routes import console_routes

        return {
            **console_routes(self.console, self.settings.console_poll),
            ("GET", "/status"): Route("viewer", self._status),
            ("GET", "/metrics"): Route("viewer", self._metrics),
            ("POST", "/drain"): Route("developer", self._action("drain")),
            ("POST", "/stop"): Route("developer", self._action("stop")),
            ("POST", "/cancel"): Route("developer", self._action("cancel")),
            ("POST", "/log_level"): Route("admin", self._log_level),
        }

    async def _status(self, request: Request) -> Response:
        doc = self.job.status()
        doc["pid"] = os.getpid()
        doc["pipeline"] = self.settings.pipeline
        return json_response(200, _jsonable(doc))

    async def _metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from millstream.daemon.metrics import render

        return Response(200, render(self.registry), CONTENT_TYPE_LATEST)

    def _action(self, name: str) -> Any:
        async def handle(request: Request) -> Response:
            accepted, message = getattr(self, name)(f"POST /{name}")
            doc = {"job_id": self.job.job_id, "action": name, "state": self.job.state, "message": message}
            if not accepted:
                return json_response(409, {**doc, "error": message})
            return json_response(202, doc)

        return handle

    async def _log_level(self, request: Request) -> Response:
        from urllib.parse import parse_qs

        fields = parse_qs(request.body.decode("utf-8", "replace")) or parse_qs(request.query)
        level = (fields.get("level") or [""])[0]
        try:
            value = set_level(level)
        except ValueError as e:
            return json_response(400, {"error": str(e)})
        log.warning("log level set to %s (POST /log_level)", logging.getLevelName(value))
        return json_response(200, {"level": logging.getLevelName(value)})

    # -- exit -------------------------------------------------------------------------------------------------
    def exit_code(self) -> int:
        """The process exit code for the job's final state."""
        state = self.job.state
        if state in (JobState.DONE, JobState.STOPPED):
            return EXIT_OK
        if state == JobState.CANCELLED:
            return EXIT_DRAIN_TIMEOUT if self.reason == "drain_timeout" else EXIT_CANCELLED
        return EXIT_FAILED


@contextmanager
def _signal_receiver() -> Iterator[Any]:
    """anyio's receiver for SIGTERM, SIGINT and SIGUSR1 (None off the main thread, where Python cannot)."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGUSR1) as receiver:
        yield receiver


async def supervise(pipeline: Any, settings: DaemonSettings, auth: Auth) -> tuple[int, Any]:
    """Run `pipeline` as a supervised job until it ends; returns (exit code, job).

    Raises DaemonConfigError when the endpoint cannot listen, and the pipeline's own errors when it cannot
    start (bad options); a failure while running is reported in the log and returned as exit code 1.
    """
    from millstream.daemon.control import ControlConfigError

    with _signal_receiver() as receiver:
        server = ControlServer(
            {},
            auth,
            settings.control_bind,
            settings.control_port,
            tls=tls_context(settings),
            audit=AuditLog(settings.audit_log),
        )
        try:
            await server.bind()
        except ControlConfigError as e:
            raise DaemonConfigError(str(e)) from e
        try:
            job = await pipeline.start()
        except BaseException:
            await server.listener.aclose()
            raise
        IDENTITY.name, IDENTITY.job_id = job.name, job.job_id
        sup = Supervisor(job, settings, auth)
        server.routes = sup.routes()
        token_file = os.path.join(settings.jobs_dir, f"{job.job_id}.token")
        entry = {
            "job_id": job.job_id,
            "name": job.name,
            "pid": os.getpid(),
            "pid_start": process_start_time(os.getpid()),
            "host": settings.control_bind,
            "port": server.port,
            "started": time.time(),
            "token_file": token_file,
            "pipeline": settings.pipeline,
            "tls": server.tls is not None,
            "state_dir": getattr(job.plan, "state_dir", None),
        }
        try:
            try:
                _write_secret(token_file, auth.new_token("admin"))
                write_entry(settings.jobs_dir, entry)
            except OSError as e:
                job.request_cancel()
                await job.finished()
                await server.listener.aclose()
                raise DaemonConfigError(f"cannot register the job in {settings.jobs_dir}: {e}") from e
            log.info(
                "job %s (id %s) running; control endpoint %s; %s",
                job.name,
                job.job_id,
                endpoint_url(
                    settings.control_bind, server.port, "https" if settings.control_tls_cert else "http"
                ),
                "signals: TERM/INT drain, again cancels, USR1 stops"
                if receiver is not None
                else "not on the main thread: no signal handling",
            )
            async with anyio.create_task_group() as tg:
                sup.tg = tg
                if receiver is not None:
                    tg.start_soon(sup._signals, receiver)
                tg.start_soon(server.serve)
                tg.start_soon(sup.sampler.run)
                tg.start_soon(sup.console.run)
                with cancel_blocked_code(sup) if receiver is not None else nullcontext():
                    state = await job.finished()
                if settings.linger > 0:
                    # the endpoint keeps answering (actions get 409) so pages and scrapers see the final state
                    log.info(
                        "job %s ended: %s; the control endpoint stays up for %gs (--linger)",
                        job.name,
                        state,
                        settings.linger,
                    )
                    with anyio.move_on_after(settings.linger):
                        await sup.linger_over.wait()
                tg.cancel_scope.cancel()
        finally:
            remove_entry(settings.jobs_dir, job.job_id)
        code = sup.exit_code()
        if state == JobState.FAILED and job.error is not None:
            _report_failure(job)
        elif code == EXIT_OK:
            log.info("job %s ended: %s", job.name, state)
        else:
            log.error("job %s ended: %s (exit code %d)", job.name, state, code)
        return code, job


def _report_failure(job: Any) -> None:
    """A failure attributed to a user step gets its traceback; infrastructure errors one line."""
    err = job.error
    if getattr(err, "millstream_step", None) is not None or type(err).__name__ == "PipelineError":
        log.error("job %s failed: %s", job.name, err, exc_info=err)
    else:
        log.error("job %s failed: %s: %s", job.name, type(err).__name__, err)


# -- plain Beam scripts ----------------------------------------------------------------------------------------
_ACTIVE: tuple[DaemonSettings, Auth] | None = None


class JobEndedExit(SystemExit):
    """Ends a plain script whose job was cancelled (its exit code is the daemon's)."""


class DaemonRunner:
    """The runner `Pipeline.run()` uses inside `millstream run script.py`: the job runs supervised."""

    def run_pipeline(self, pipeline: Any, options: Any) -> Any:
        """Run the pipeline as a supervised job; returns a PipelineResult (raises the job's failure)."""
        from millstream.engine.model.options import MillstreamOptions
        from millstream.engine.runtime.exec.runner import PipelineResult, run_coroutine

        assert _ACTIVE is not None, "DaemonRunner is installed by `millstream run`"
        settings, auth = _ACTIVE
        options.validate_flags()
        use_uvloop = options.view_as(MillstreamOptions).uvloop
        code, job = run_coroutine(supervise, pipeline, settings, auth, use_uvloop=use_uvloop)
        if job.state == JobState.FAILED and job.error is not None:
            job.error.millstream_reported = True  # logged already; the CLI adds no second traceback
            raise job.error
        if code != EXIT_OK:
            raise JobEndedExit(code)
        result = PipelineResult(job.container)
        result._state = job.state
        return result

    async def start_pipeline(self, pipeline: Any, options: Any) -> Any:
        """`await pipeline.start()` inside a script is the library API: not supervised."""
        from millstream.engine.runtime.exec.runner import MillstreamRunner

        return await MillstreamRunner().start_pipeline(pipeline, options)


@contextmanager
def daemon_runner(settings: DaemonSettings, auth: Auth) -> Iterator[None]:
    """Make `Pipeline.run()` (runner MillstreamRunner or one of its aliases) run supervised, for a script."""
    from millstream.engine.model import pipeline as model

    global _ACTIVE
    previous = model.RUNNERS["MillstreamRunner"]
    model.RUNNERS["MillstreamRunner"] = f"{__name__}:DaemonRunner"
    _ACTIVE = (settings, auth)
    try:
        yield
    finally:
        model.RUNNERS["MillstreamRunner"] = previous
        _ACTIVE = None


__all__ = [
    "DaemonConfigError",
    "DaemonRunner",
    "DaemonSettings",
    "Supervisor",
    "add_daemon_arguments",
    "daemon_runner",
    "preflight",
    "settings_from_args",
    "supervise",
]
