"""The jobs directory and `millstream jobs list | describe | drain | stop | cancel JOB`.

Each running job writes ``<jobs_dir>/<job_id>.json`` (pid, control host and port, name, id, start time, the
path of its local admin token) and removes it when it ends. The jobs directory is ``--jobs_dir``, else
``$MILLSTREAM_JOBS_DIR``, else ``~/.millstream/jobs``; it is created with mode 0700. Entries whose process
is gone (killed, crashed) are removed when the directory is read.

JOB is a job id, a unique id prefix, or a job name. The commands talk to the job's control endpoint with the
token in ``--token`` or ``$MILLSTREAM_TOKEN``, else the job's local admin token file.

Exit codes (for scripts):

= ======================================================================
0 done
1 no such job
2 usage error (bad arguments; a name several running jobs share)
3 refused: the token is missing, unknown or its role is too low (401/403)
4 the job cannot be reached, or did not end within ``--timeout`` (``--wait``)
5 the job's state does not allow it (e.g. stop while draining; already ended)
= ======================================================================
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_CONFLICT = 0, 1, 2, 3, 4, 5
HTTP_TIMEOUT_S = 5.0


# -- the jobs directory ---------------------------------------------------------------------------------------
def default_jobs_dir() -> str:
    """``$MILLSTREAM_JOBS_DIR`` or ``~/.millstream/jobs``."""
    return os.environ.get("MILLSTREAM_JOBS_DIR") or os.path.join(
        os.path.expanduser("~"), ".millstream", "jobs"
    )


def ensure_jobs_dir(path: str) -> str:
    """Create the jobs directory (mode 0700) if needed; returns its absolute path."""
    path = os.path.abspath(path)
    os.makedirs(path, mode=0o700, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise PermissionError(f"the jobs directory {path} is not writable")
    return path


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (Linux; None elsewhere or when the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # the command name may contain spaces and parentheses


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of process `pid` (clock ticks since boot; Linux), to tell a reused pid apart."""
    fields = _proc_stat(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 of stat(5)
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """True when process `pid` runs (and, when known, is the process started at `start_time`).

    A zombie (ended, not yet reaped by its parent) does not run.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _proc_stat(pid)
    if fields is not None:
        if fields[0] in ("Z", "X"):
            return False
        if start_time is not None and process_start_time(pid) != start_time:
            return False
    return True


@dataclass
class JobEntry:
    """One job's record in the jobs directory."""

    job_id: str
    name: str
    pid: int
    host: str
    port: int
    started: float
    token_file: str | None
    pipeline: str
    state_dir: str | None
    pid_start: int | None
    path: str
    #: The endpoint serves TLS.
    tls: bool = False

    @property
    def url(self) -> str:
        """The control endpoint's base URL."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else ("[::1]" if self.host == "::" else self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def write_entry(jobs_dir: str, doc: dict[str, Any]) -> str:
    """Write a job's entry atomically (mode 0600); returns its path."""
    path = os.path.join(jobs_dir, f"{doc['job_id']}.json")
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, path)
    return path


def remove_entry(jobs_dir: str, job_id: str) -> None:
    """Remove a job's entry and its token file."""
    for suffix in (".json", ".token", ".json.tmp"):
        try:
            os.remove(os.path.join(jobs_dir, job_id + suffix))
        except FileNotFoundError:
            pass


def read_entries(jobs_dir: str, clean: bool = True) -> list[JobEntry]:
    """The entries of running jobs, oldest first; entries of processes that are gone are removed."""
    try:
        names = sorted(os.listdir(jobs_dir))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(jobs_dir, name)
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            entry = JobEntry(
                job_id=str(doc["job_id"]),
                name=str(doc["name"]),
                pid=int(doc["pid"]),
                host=str(doc["host"]),
                port=int(doc["port"]),
                started=float(doc["started"]),
                token_file=doc.get("token_file"),
                tls=bool(doc.get("tls")),
                pipeline=str(doc.get("pipeline", "")),
                state_dir=doc.get("state_dir"),
                pid_start=doc.get("pid_start"),
                path=path,
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours
        if not pid_alive(entry.pid, entry.pid_start):
            if clean:
                remove_entry(jobs_dir, entry.job_id)
            continue
        out.append(entry)
    out.sort(key=lambda e: e.started)
    return out


class LookupFailed(Exception):
    """JOB names no running job (exit 1) or several (exit 2)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def find_job(jobs_dir: str, ref: str) -> JobEntry:
    """The running job `ref` names: an id, a unique id prefix (4+ characters), or a unique name."""
    entries = read_entries(jobs_dir)
    for e in entries:
        if e.job_id == ref:
            return e
    by_name = [e for e in entries if e.name == ref]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        ids = ", ".join(e.job_id for e in by_name)
        raise LookupFailed(
            f"{len(by_name)} running jobs are named {ref!r} ({ids}); name one by its id", EXIT_USAGE
        )
    prefixed = [e for e in entries if len(ref) >= 4 and e.job_id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    if len(prefixed) > 1:
        raise LookupFailed(f"job id prefix {ref!r} is ambiguous", EXIT_USAGE)
    raise LookupFailed(f"no running job {ref!r} in {jobs_dir}", EXIT_NOT_FOUND)


# -- talking to a job -----------------------------------------------------------------------------------------
class CallFailed(Exception):
    """A control request failed; `code` is the exit code to use."""

    def __init__(self, message: str, code: int, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def token_for(entry: JobEntry, explicit: str | None) -> str | None:
    """`explicit`, else $MILLSTREAM_TOKEN, else the job's local admin token (None if unreadable)."""
    if explicit:
        return explicit
    if os.environ.get("MILLSTREAM_TOKEN"):
        return os.environ["MILLSTREAM_TOKEN"]
    if entry.token_file:
        try:
            with open(entry.token_file, encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return None
    return None


#: TLS settings of the jobs commands (``--ca_file``, ``--cert_file``/``--key_file``), set from the arguments.
TLS_FILES: dict[str, str | None] = {"ca_file": None, "cert_file": None, "key_file": None}


def client_tls_context(
    ca_file: str | None, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """A verifying client context: the job's CA (or the system's), and a client certificate for mutual TLS."""
    ctx = ssl.create_default_context(cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def call(
    entry: JobEntry, method: str, path: str, token: str | None, body: bytes | None = None
) -> tuple[int, bytes]:
    """One request to the job's endpoint; returns (status, body) for 2xx, raises CallFailed otherwise."""
    context = (
        client_tls_context(TLS_FILES["ca_file"], TLS_FILES["cert_file"], TLS_FILES["key_file"])
        if entry.tls
        else None
    )
    request = urllib.request.Request(
        entry.url + path,
        data=body if body is not None else (b"" if method == "POST" else None),
        method=method,
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        detail = _error_text(e.read())
        if e.code in (401, 403):
            raise CallFailed(f"refused ({e.code}): {detail}", EXIT_REFUSED, e.code) from None
        if e.code == 409:
            raise CallFailed(detail, EXIT_CONFLICT, e.code) from None
        raise CallFailed(f"HTTP {e.code}: {detail}", EXIT_UNREACHABLE, e.code) from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CallFailed(
            f"cannot reach job {entry.job_id} at {entry.url}: {reason}", EXIT_UNREACHABLE
        ) from None


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", body.decode(errors="replace")))
    except (ValueError, AttributeError):
        return body.decode(errors="replace").strip()


def get_json(entry: JobEntry, path: str, token: str | None) -> Any:
    """GET a JSON route."""
    return json.loads(call(entry, "GET", path, token)[1])


# -- metrics at a glance ---------------------------------------------------------------------------------------
def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> {sample name: [(labels, value), ...]}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def summarize(metrics: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, Any]:
    """The numbers `jobs describe` shows, taken from the job's /metrics samples (so they agree with it)."""

    def scalar(name: str) -> float | None:
        samples = metrics.get(name)
        return samples[0][1] if samples else None

    def per_step(name: str) -> dict[str, float]:
        return {labels["step"]: value for labels, value in metrics.get(name, [])}

    steps: dict[str, dict[str, Any]] = {}
    columns = {
        "elements_in": "millstream_step_elements_in_total",
        "elements_out": "millstream_step_elements_out_total",
        "throughput_eps": "millstream_step_throughput_elements_per_second",
        "output_watermark": "millstream_step_output_watermark_seconds",
        "dropped_late": "millstream_step_dropped_late_total",
        "dead_letters": "millstream_step_dead_letters_total",
        "state_entries_in_memory": "millstream_state_entries_in_memory",
    }
    for key, name in columns.items():
        for step, value in per_step(name).items():
            steps.setdefault(step, {"step": step})[key] = value
    sources: dict[str, dict[str, Any]] = {}
    for key, name in {
        "records_read": "millstream_source_records_read_total",
        "bytes_read": "millstream_source_bytes_read_total",
        "backlog": "millstream_source_backlog",
        "progress": "millstream_source_progress_ratio",
    }.items():
        for step, value in per_step(name).items():
            sources.setdefault(step, {"step": step})[key] = value
    user = []
    for metric, kind in (("millstream_user_counter_total", "counter"), ("millstream_user_gauge", "gauge")):
        for labels, value in metrics.get(metric, []):
            user.append(
                {
                    "kind": kind,
                    "step": labels["step"],
                    "namespace": labels["namespace"],
                    "name": labels["name"],
                    "value": value,
                }
            )
    dists: dict[tuple[str, str, str], dict[str, Any]] = {}
    for part in ("count", "sum", "min", "max"):
        for labels, value in metrics.get(f"millstream_user_distribution_{part}", []):
            ident = (labels["step"], labels["namespace"], labels["name"])
            entry = dists.setdefault(
                ident, {"kind": "distribution", "step": ident[0], "namespace": ident[1], "name": ident[2]}
            )
            entry[part] = value
    user.extend(dists.values())
    return {
        "throughput_eps": scalar("millstream_throughput_elements_per_second"),
        "system_lag_s": scalar("millstream_system_lag_seconds"),
        "data_watermark_age_s": scalar("millstream_data_watermark_age_seconds"),
        "output_watermark": scalar("millstream_output_watermark_seconds"),
        "state_size_bytes": scalar("millstream_state_size_bytes"),
        "checkpoints": {
            "count": scalar("millstream_checkpoints_total"),
            "last_duration_s": scalar("millstream_checkpoint_duration_seconds"),
            "last_stall_s": scalar("millstream_checkpoint_stall_seconds"),
            "last_loop_stall_s": scalar("millstream_checkpoint_loop_stall_seconds"),
            "last_records_written": scalar("millstream_checkpoint_records_written"),
            "age_s": scalar("millstream_checkpoint_age_seconds"),
            "in_progress": scalar("millstream_checkpoint_in_progress"),
            "fallback": scalar("millstream_checkpoint_fallback"),
        },
        "sources": list(sources.values()),
        "steps": list(steps.values()),
        "user_metrics": user,
    }


# -- output helpers --------------------------------------------------------------------------------------------
def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def _watermark(value: float | None) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "+inf"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value))


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _fail(message: str, code: int) -> int:
    print(f"millstream jobs: {message}", file=sys.stderr)
    return code


#: Where jobs on Beam's runners are watched: `millstream run --runner PrismRunner|DataflowRunner|...` hands the
#: job to that runner, so it has no control endpoint here (docs/runners.md).
BEAM_JOBS_NOTE = (
    "jobs on Beam's runners are not listed here: watch them where the runner shows jobs "
    "(Prism: its log and web UI; Dataflow: the Cloud console, `gcloud dataflow jobs list`; "
    "Flink / Spark: their web UI)"
)


# -- commands ---------------------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    """List running jobs with their state."""
    jobs_dir = os.path.abspath(args.jobs_dir)
    rows = []
    for entry in read_entries(jobs_dir):
        doc: dict[str, Any] = {
            "job_id": entry.job_id,
            "name": entry.name,
            "pid": entry.pid,
            "endpoint": entry.url,
            "started": entry.started,
            "pipeline": entry.pipeline,
        }
        try:
            status = get_json(entry, "/status", token_for(entry, args.token))
            doc["state"] = status.get("state")
            doc["uptime_s"] = status.get("uptime_s")
        except CallFailed as e:
            doc["state"] = "REFUSED" if e.code == EXIT_REFUSED else "UNREACHABLE"
            doc["uptime_s"] = time.time() - entry.started
        rows.append(doc)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print(f"no running jobs in {jobs_dir}")
    else:
        print(
            _table(
                [
                    [
                        r["job_id"],
                        r["name"],
                        str(r["state"]),
                        _duration(r["uptime_s"]),
                        str(r["pid"]),
                        r["endpoint"],
                    ]
                    for r in rows
                ],
                ["JOB ID", "NAME", "STATE", "UPTIME", "PID", "ENDPOINT"],
            )
        )
    print(BEAM_JOBS_NOTE, file=sys.stderr)
    return EXIT_OK


def cmd_describe(args: argparse.Namespace) -> int:
    """Show one job's status and its metrics at a glance (the same numbers /metrics serves)."""
    try:
        entry = find_job(os.path.abspath(args.jobs_dir), args.job)
        token = token_for(entry, args.token)
        status = get_json(entry, "/status", token)
        metrics = parse_metrics(call(entry, "GET", "/metrics", token)[1].decode())
    except LookupFailed as e:
        return _fail(str(e), e.code)
    except CallFailed as e:
        return _fail(str(e), e.code)
    summary = summarize(metrics)
    doc = {
        "job_id": entry.job_id,
        "name": entry.name,
        "state": status.get("state"),
        "uptime_s": status.get("uptime_s"),
        "pid": entry.pid,
        "endpoint": entry.url,
        "pipeline": entry.pipeline,
        "state_dir": entry.state_dir,
        **summary,
        "checkpoint_fallback": (status.get("checkpoints") or {}).get("fallback"),
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    ck = summary["checkpoints"]
    print(f"job        {entry.name}  (id {entry.job_id}, pid {entry.pid}, {entry.url})")
    print(f"state      {doc['state']}  up {_duration(doc['uptime_s'])}  pipeline {entry.pipeline}")
    print(
        f"throughput {_num(summary['throughput_eps'])} elements/s   system lag {_duration(summary['system_lag_s'])}"
        f"   data watermark age {_duration(summary['data_watermark_age_s'])}"
    )
    print(f"storage    {_bytes(summary['state_size_bytes'])} in {entry.state_dir or '-'}")
    if ck["count"] is not None:
        print(
            f"checkpoints {_num(ck['count'])}  last took {_duration(ck['last_duration_s'])}"
            f" (input paused {_duration(ck['last_stall_s'])}, loop blocked {_duration(ck['last_loop_stall_s'])},"
            f" {_num(ck['last_records_written'])} state records)"
            f"  {_duration(ck['age_s'])} ago{'  (in progress)' if ck['in_progress'] else ''}"
        )
    if doc["checkpoint_fallback"]:
        print(
            f"WARNING    {doc['checkpoint_fallback']['message']} (accepted with --accept_checkpoint_fallback)"
        )
    if summary["sources"]:
        print()
        print(
            _table(
                [
                    [
                        s["step"],
                        _num(s.get("records_read")),
                        _bytes(s.get("bytes_read")),
                        _num(s.get("backlog")),
                        "-" if s.get("progress") is None else f"{100 * s['progress']:.1f}%",
                    ]
                    for s in summary["sources"]
                ],
                ["SOURCE", "RECORDS", "READ", "BACKLOG", "PROGRESS"],
            )
        )
    print()
    print(
        _table(
            [
                [
                    s["step"],
                    _num(s.get("elements_in")),
                    _num(s.get("elements_out")),
                    _num(s.get("throughput_eps")),
                    _watermark(s.get("output_watermark")),
                    _num(s.get("dropped_late")),
                    _num(s.get("dead_letters")),
                ]
                for s in summary["steps"]
            ],
            ["STEP", "IN", "OUT", "OUT/S", "WATERMARK", "LATE", "DEAD"],
        )
    )
    if summary["user_metrics"]:
        print()
        rows = []
        for m in summary["user_metrics"]:
            value = (
                _num(m.get("value"))
                if m["kind"] != "distribution"
                else (
                    f"count {_num(m.get('count'))} sum {_num(m.get('sum'))} min {_num(m.get('min'))} "
                    f"max {_num(m.get('max'))}"
                )
            )
            rows.append([m["step"], f"{m['namespace']}:{m['name']}", m["kind"], value])
        print(_table(rows, ["STEP", "METRIC", "KIND", "VALUE"]))
    return EXIT_OK


def cmd_action(args: argparse.Namespace) -> int:
    """drain / stop / cancel a job; with --wait, until its process has ended."""
    action = args.action
    try:
        entry = find_job(os.path.abspath(args.jobs_dir), args.job)
        _, body = call(entry, "POST", f"/{action}", token_for(entry, args.token))
    except LookupFailed as e:
        return _fail(str(e), e.code)
    except CallFailed as e:
        return _fail(f"{action} {args.job}: {e}", e.code)
    answer = json.loads(body)
    if not args.wait:
        if args.json:
            print(json.dumps(answer, indent=2))
        else:
            print(f"{action} requested: job {entry.name} ({entry.job_id}) is {answer.get('state')}")
        return EXIT_OK
    deadline = time.monotonic() + args.timeout
    while pid_alive(entry.pid, entry.pid_start):
        if time.monotonic() > deadline:
            return _fail(f"job {entry.job_id} is still running after {args.timeout:g}s", EXIT_UNREACHABLE)
        time.sleep(0.05)  # polling another process's exit: there is nothing to wait on
    if args.json:
        print(json.dumps({**answer, "ended": True}, indent=2))
    else:
        print(f"job {entry.name} ({entry.job_id}) ended after {action}")
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Register `millstream jobs ...`."""
    jobs = sub.add_parser(
        "jobs",
        help="list running jobs, describe one, drain / stop / cancel it",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    jobs_sub = jobs.add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--jobs_dir", default=default_jobs_dir(), help="the jobs directory (default: %(default)s)"
        )
        p.add_argument(
            "--token",
            default=None,
            help="bearer token (default: $MILLSTREAM_TOKEN, else the job's local admin token)",
        )
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument(
            "--ca_file",
            default=None,
            help="CA certificate(s) verifying a TLS control endpoint (default: the system's)",
        )
        p.add_argument("--cert_file", default=None, help="client certificate for mutual TLS")
        p.add_argument("--key_file", default=None, help="the private key of --cert_file")

    lst = jobs_sub.add_parser(
        "list", help="running local jobs", description=f"Running local jobs; {BEAM_JOBS_NOTE}."
    )
    common(lst)
    lst.set_defaults(handler=_with_tls(cmd_list))
    desc = jobs_sub.add_parser("describe", help="a job's status and metrics at a glance")
    desc.add_argument("job", help="job id, id prefix, or name")
    common(desc)
    desc.set_defaults(handler=_with_tls(cmd_describe))
    helps = {
        "drain": "stop reading, fire every window, final checkpoint, then exit",
        "stop": "checkpoint and exit without firing windows (a restart resumes)",
        "cancel": "end now; uncommitted output is discarded",
    }
    for name, text in helps.items():
        p = jobs_sub.add_parser(name, help=text)
        p.add_argument("job", help="job id, id prefix, or name")
        common(p)
        p.add_argument("--wait", action="store_true", help="wait until the job's process has ended")
        p.add_argument(
            "--timeout", type=float, default=300.0, help="seconds --wait waits (default: %(default)s)"
        )
        p.set_defaults(handler=_with_tls(cmd_action), action=name)
    tokens = sub.add_parser("tokens", help="control endpoint tokens")
    tokens_sub = tokens.add_subparsers(dest="action", required=True)
    add = tokens_sub.add_parser("add", help="create a token, print it once, store only its salted hash")
    add.add_argument("--tokens_file", required=True)
    add.add_argument("--role", required=True, choices=["viewer", "developer", "admin"])
    add.set_defaults(handler=cmd_tokens_add)


def _with_tls(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        TLS_FILES.update(ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file)
        return int(handler(args))

    return run


def cmd_tokens_add(args: argparse.Namespace) -> int:
    """`millstream tokens add`: append ``role sha256$salt$digest`` to the tokens file (0600); print the token."""
    import secrets

    from millstream.daemon.control_security import hash_token

    token = secrets.token_urlsafe(32)
    fd = os.open(args.tokens_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"{args.role} {hash_token(token)}\n")
    print(token)
    return 0


__all__ = [
    "JobEntry",
    "add_commands",
    "default_jobs_dir",
    "find_job",
    "read_entries",
    "remove_entry",
    "summarize",
    "write_entry",
]
