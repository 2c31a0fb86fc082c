"""`millstream console`: one page listing every local job (from the jobs directory) with its state and lag.

It serves, on loopback, a page that lists the jobs registered in the jobs directory with their state,
uptime, throughput, system lag and data watermark age, each linking to the job's own console (``GET /`` of
its control endpoint). The figures are read from each job's ``/status`` and ``/metrics`` with the job's local
token, so they agree with ``millstream jobs describe``. The page itself is behind a bearer token like the
jobs' endpoints: a fresh random one, written mode 0600 to ``console.token`` beside the job entries, since
whoever can read the jobs directory may read the jobs' tokens anyway.

>>> overview_row_keys()
['job_id', 'name', 'state', 'uptime_s', 'throughput_eps', 'system_lag_s', 'data_watermark_age_s', 'url']
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

import anyio

from millstream.daemon.console.routes import SECURITY_HEADERS, asset
from millstream.daemon.control import (
    PUBLIC,
    Auth,
    ControlConfigError,
    ControlServer,
    Request,
    Response,
    Route,
    check_bind,
    json_response,
    write_secret,
)
from millstream.daemon.jobs_cli import (
    CallFailed,
    JobEntry,
    call,
    default_jobs_dir,
    get_json,
    parse_metrics,
    read_entries,
    summarize,
    token_for,
)

TOKEN_FILE = "console.token"


def overview_row_keys() -> list[str]:
    """The fields of one job's row (the JSON of ``GET /jobs``)."""
    return [
        "job_id",
        "name",
        "state",
        "uptime_s",
        "throughput_eps",
        "system_lag_s",
        "data_watermark_age_s",
        "url",
    ]


def job_row(entry: JobEntry) -> dict[str, Any]:
    """One job's row, read from its endpoint (state UNREACHABLE or REFUSED when that fails)."""
    row: dict[str, Any] = dict.fromkeys(overview_row_keys())
    row.update(job_id=entry.job_id, name=entry.name, url=entry.url + "/")
    token = token_for(entry, None)
    try:
        status = get_json(entry, "/status", token)
        summary = summarize(parse_metrics(call(entry, "GET", "/metrics", token)[1].decode()))
    except CallFailed as e:
        row["state"] = "REFUSED" if e.status in (401, 403) else "UNREACHABLE"
        return row
    row.update(
        state=status.get("state"),
        uptime_s=status.get("uptime_s"),
        throughput_eps=summary["throughput_eps"],
        system_lag_s=summary["system_lag_s"],
        data_watermark_age_s=summary["data_watermark_age_s"],
    )
    return row


def overview_routes(jobs_dir: str, poll_interval_s: float) -> dict[tuple[str, str], Route]:
    """The overview's routes: the page (public) and ``GET /jobs`` (viewer)."""

    def page(name: str, kind: str) -> Any:
        body = asset(name)

        async def handle(request: Request) -> Response:
            return Response(200, body, kind, SECURITY_HEADERS)

        return handle

    async def jobs(request: Request) -> Response:
        entries = read_entries(jobs_dir, clean=False)
        # blocking HTTP to each job: off the loop, so one slow job does not stall the page's server
        rows = [await anyio.to_thread.run_sync(job_row, entry) for entry in entries]
        return json_response(200, {"jobs_dir": jobs_dir, "jobs": rows, "poll_interval_s": poll_interval_s})

    return {
        ("GET", "/"): Route(PUBLIC, page("jobs.html", "text/html; charset=utf-8")),
        ("GET", "/console/jobs.js"): Route(PUBLIC, page("jobs.js", "text/javascript; charset=utf-8")),
        ("GET", "/console/app.css"): Route(PUBLIC, page("app.css", "text/css; charset=utf-8")),
        ("GET", "/jobs"): Route("viewer", jobs),
    }


async def serve(jobs_dir: str, host: str, port: int, poll_interval_s: float, ready: Any = None) -> None:
    """Serve the overview until cancelled; `ready(port, token_path)` is called once it listens."""
    auth = Auth()
    token_path = os.path.join(jobs_dir, TOKEN_FILE)
    try:
        os.remove(token_path)  # a previous console's token: never reused
    except FileNotFoundError:
        pass
    write_secret(token_path, auth.new_token("viewer"))
    server = ControlServer(overview_routes(jobs_dir, poll_interval_s), auth, host, port)
    try:
        await server.bind()
        if ready is not None:
            ready(server.port, token_path)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            if threading.current_thread() is threading.main_thread():
                tg.start_soon(_until_signal, tg.cancel_scope)
    finally:
        try:
            os.remove(token_path)
        except FileNotFoundError:
            pass


async def _until_signal(scope: Any) -> None:
    """SIGTERM or SIGINT ends the console cleanly (its token file is removed)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


def cmd_console(args: argparse.Namespace) -> int:
    """Run the overview page until interrupted."""
    jobs_dir = os.path.abspath(args.jobs_dir)
    try:
        check_bind(args.bind, False)
        if not (args.poll > 0):
            raise ControlConfigError(f"--poll must be a positive number of seconds, not {args.poll:g}")
        if not os.path.isdir(jobs_dir):
            raise ControlConfigError(f"the jobs directory {jobs_dir} does not exist (no job ever ran here)")
    except ControlConfigError as e:
        print(f"millstream console: {e}", file=sys.stderr)
        return 2

    def ready(port: int, token_path: str) -> None:
        print(
            f"millstream console: http://{args.bind}:{port}/ lists the jobs in {jobs_dir}; "
            f"log in with the token in {token_path}",
            flush=True,
        )

    try:
        anyio.run(serve, jobs_dir, args.bind, args.port, args.poll, ready)
    except ControlConfigError as e:
        print(f"millstream console: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def add_commands(sub: Any) -> None:
    """Register `millstream console`."""
    p = sub.add_parser("console", help="a web page listing every local job, linking to each job's console")
    p.add_argument("--jobs_dir", default=default_jobs_dir(), help="the jobs directory (default: %(default)s)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument("--bind", default="127.0.0.1", help="loopback address to listen on (default: %(default)s)")
    p.add_argument(
        "--poll", type=float, default=2.0, help="seconds between page refreshes (default: %(default)s)"
    )
    p.set_defaults(handler=cmd_console)


__all__ = ["add_commands", "cmd_console", "job_row", "overview_routes", "serve"]
