"""The control endpoint of a running job: a small HTTP/1.1 server on the job's own event loop.

Routes (each needs a bearer token, ``Authorization: Bearer <token>``, whose role allows it):

=========================  ==========  =====================================================
``GET  /status``           viewer      job id, name, state, uptime, steps, watermarks (JSON)
``GET  /metrics``          viewer      Prometheus text format
``POST /drain``            developer   stop reading, fire every window, final checkpoint, exit 0
``POST /stop``             developer   checkpoint and exit without firing windows (resumable)
``POST /cancel``           developer   end now; uncommitted output is discarded
``POST /log_level``        admin       change the log level (body: ``level=DEBUG``)
``GET  /``, ``/console/*``  public      the web console's page and assets (no data: the page
                                       asks for a token and calls the routes above with it)
=========================  ==========  =====================================================

Roles are Dataflow's: a developer can do what a viewer can, an admin everything. Without a token, or with a
malformed ``Authorization`` header or an unknown token, the answer is 401; a valid token whose role is too
low gets 403. A refused request changes nothing. Tokens are compared in constant time.

Over TLS (`control_security`), a client certificate whose subject CN a tokens-file line ``role cert:<CN>``
names authenticates without a token; every POST is written to the audit log, and an address whose
authentication keeps failing gets slower answers (``Retry-After`` says how much).

Tokens come from a file (``--tokens_file``, lines ``role token``, ``#`` comments) that must not be
accessible by group or others; in addition the daemon always creates one random admin token for the local
``millstream jobs`` command, written with mode 0600 next to the job's entry in the jobs directory, so only
the job's own user (who may signal the process anyway) can read it. There is no anonymous access, not even
for reads: anyone who can open a loopback port is not necessarily the job's owner.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
import ssl
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.tls import TLSAttribute

from millstream.daemon.control_security import (
    AuditLog,
    FailureLimiter,
    QuietTLSListener,
    subject_cn,
    token_id,
)

log = logging.getLogger("millstream.daemon.control")

ROLES = {"viewer": 1, "developer": 2, "admin": 3}
#: The role of routes anyone may call: static assets only (see `Route`).
PUBLIC = "public"
#: RFC 6750's b64token.
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
MIN_TOKEN_LENGTH = 16
#: A salted token hash (`control_security.hash_token`).
_HASHED = re.compile(r"^sha256\$[0-9a-f]{16}\$[0-9a-f]{64}$")
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
#: A client has this long to send its request (a stuck client must not hold a connection forever).
REQUEST_TIMEOUT_S = 10.0

REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


class ControlConfigError(ValueError):
    """The control endpoint cannot be set up as asked (bad tokens file, remote bind not allowed, ...)."""


# -- tokens --------------------------------------------------------------------------------------------------
class Auth:
    """Bearer tokens (or their salted hashes) and client-certificate subjects, and their roles."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self.tokens: dict[str, str] = dict(tokens or {})
        #: Client-certificate subject CN -> role (mutual TLS).
        self.subjects: dict[str, str] = {}

    def add(self, token: str, role: str) -> None:
        """Accept `token` with `role`."""
        if role not in ROLES:
            raise ControlConfigError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        self.tokens[token] = role

    def new_token(self, role: str = "admin") -> str:
        """Create, register and return a random token."""
        token = secrets.token_urlsafe(32)
        self.add(token, role)
        return token

    def role_of(self, token: str) -> str | None:
        """The role of `token`, or None; compares every token in constant time."""
        from millstream.daemon.control_security import token_matches

        found = None
        for known, role in self.tokens.items():
            if token_matches(known, token):
                found = role
        return found


def load_tokens(path: str, auth: Auth | None = None) -> Auth:
    """Read a tokens file (lines ``role token``); refuse one that group or others may access, one that is not
    UTF-8 text and one without any token, hashed token or certificate subject (which would leave the endpoint
    usable by the jobs command only)."""
    auth = auth or Auth()
    try:
        st = os.stat(path)
    except OSError as e:
        raise ControlConfigError(f"cannot read tokens file {path}: {e.strerror}") from e
    if not stat.S_ISREG(st.st_mode):
        raise ControlConfigError(f"tokens file {path} is not a regular file")
    if st.st_mode & 0o077:
        raise ControlConfigError(
            f"tokens file {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        bad_line = e.object[: e.start].count(b"\n") + 1
        raise ControlConfigError(
            f"{path}:{bad_line}: the tokens file is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start})"
        ) from e
    except OSError as e:
        raise ControlConfigError(f"cannot read tokens file {path}: {e.strerror}") from e
    seen: dict[str, str] = {}
    entries = 0
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ControlConfigError(f"{path}:{number}: expected 'role token'")
        role, token = parts
        if role not in ROLES:
            raise ControlConfigError(f"{path}:{number}: unknown role {role!r} (roles: {', '.join(ROLES)})")
        entries += 1
        if token.startswith("cert:") and len(token) > 5:
            auth.subjects[token[5:]] = role
            continue
        if _HASHED.match(token):
            auth.add(token, role)
            continue
        if not _TOKEN.match(token) or len(token) < MIN_TOKEN_LENGTH:
            raise ControlConfigError(
                f"{path}:{number}: a token must be at least {MIN_TOKEN_LENGTH} characters of A-Z a-z 0-9 -._~+/ "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if token in seen and seen[token] != role:
            raise ControlConfigError(f"{path}:{number}: the same token is given two roles")
        seen[token] = role
        auth.add(token, role)
    if not entries:
        raise ControlConfigError(
            f"tokens file {path} has no tokens: add lines 'role token' (roles: {', '.join(ROLES)}), "
            "or leave out --tokens_file"
        )
    return auth


def write_secret(path: str, text: str) -> None:
    """Create `path` readable and writable by this user only (never following or reusing an existing file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def endpoint_url(host: str, port: int, scheme: str = "http") -> str:
    """The endpoint's base URL, an IPv6 address in brackets (RFC 3986).

    >>> endpoint_url("::1", 8080), endpoint_url("127.0.0.1", 8080)
    ('http://[::1]:8080', 'http://127.0.0.1:8080')
    """
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def check_bind(host: str, allow_remote: bool, tls: bool = False) -> None:
    """Binding to anything but loopback needs TLS, or `allow_remote` (``--insecure_remote_control``)."""
    if host in ("localhost",):
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError as e:
        raise ControlConfigError(f"--control_bind {host!r} is not an IP address") from e
    if not loopback and not allow_remote and not tls:
        raise ControlConfigError(
            f"--control_bind {host} would expose the control endpoint beyond this machine in plain HTTP; "
            "serve TLS (--control_tls_cert/--control_tls_key) or add --insecure_remote_control "
            "(formerly --allow_remote_control) to do so deliberately"
        )


# -- HTTP ------------------------------------------------------------------------------------------------------
@dataclass
class Request:
    """A parsed HTTP request."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    #: The client's address ("" in process), and its verified certificate's subject CN under mutual TLS.
    remote: str = ""
    subject: str | None = None
    #: the caller's role, set once the request is authorised (None on public routes)
    role: str | None = None


@dataclass
class Response:
    """An HTTP response."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    """A route: the least role allowed to call it (``public``: no token needed) and its handler.

    Public routes serve only static assets that hold no data of the job (the web console's page).
    """

    role: str
    handler: Handler


def json_response(status: int, doc: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON response."""
    import orjson

    return Response(
        status, orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=_json_default) + b"\n", headers=headers
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, float):
        return str(value)
    return repr(value)


def _challenge(error: str | None, description: str) -> tuple[tuple[str, str], ...]:
    value = 'Bearer realm="millstream"'
    if error:
        value += f', error="{error}", error_description="{description}"'
    return (("WWW-Authenticate", value),)


class ControlServer:
    """Serves `routes` ({(method, path): Route}) to authenticated clients."""

    def __init__(
        self,
        routes: dict[tuple[str, str], Route],
        auth: Auth,
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        audit: AuditLog | None = None,
        limiter: FailureLimiter | None = None,
    ) -> None:
        self.routes = routes
        self.auth = auth
        #: Server TLS (and mutual TLS when it verifies clients); None serves plain HTTP.
        self.tls = tls
        self.audit = audit or AuditLog()
        self.limiter = limiter or FailureLimiter()
        self.host = host
        self.requested_port = port
        self.listener: Any = None
        self.port = 0

    async def bind(self) -> int:
        """Open the listening socket; returns the port (a random free one when asked for 0)."""
        try:
            self.listener = await anyio.create_tcp_listener(
                local_host=self.host, local_port=self.requested_port
            )
        except OSError as e:
            raise ControlConfigError(
                f"cannot listen on {self.host}:{self.requested_port} for the control endpoint: {e.strerror or e}"
            ) from e
        self.port = int(self.listener.extra(SocketAttribute.local_port))
        if self.tls is not None:
            self.listener = QuietTLSListener(
                self.listener, self.tls, standard_compatible=False, handshake_timeout=REQUEST_TIMEOUT_S
            )
        return self.port

    async def serve(self) -> None:
        """Accept connections until cancelled."""
        assert self.listener is not None
        async with self.listener:
            await self.listener.serve(self._connection)

    async def _connection(self, stream: SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(REQUEST_TIMEOUT_S):
                    request = await self._read_request(stream)
                remote = stream.extra(SocketAttribute.remote_address, "")
                request.remote = str(remote[0] if isinstance(remote, tuple) else remote)
                request.subject = subject_cn(stream.extra(TLSAttribute.peer_certificate, None))
                # a client whose authentication keeps failing waits (only this connection waits)
                await anyio.sleep(self.limiter.delay(request.remote))
            except TimeoutError:
                return
            except _BadRequest as e:
                await self._send(stream, json_response(e.status, {"error": str(e)}))
                return
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, OSError):
                return
            try:
                response = await self.dispatch(request)
            except Exception as e:  # a bug in a handler must not take the job down
                log.exception("control request %s %s failed", request.method, request.path)
                response = json_response(500, {"error": f"{type(e).__name__}: {e}"})
            await self._send(stream, response)

    async def _read_request(self, stream: SocketStream) -> Request:
        buffered = BufferedByteReceiveStream(stream)
        try:
            head = await buffered.receive_until(b"\r\n\r\n", MAX_HEADER_BYTES)
        except anyio.DelimiterNotFound as e:
            raise _BadRequest(413, "request header too large") from e
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "malformed request line")
        method, target, _ = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise _BadRequest(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            raise _BadRequest(400, "bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request body too large")
        body = await buffered.receive_exactly(length) if length else b""
        path, _, query = target.partition("?")
        return Request(method.upper(), path, query, headers, body)

    async def dispatch(self, request: Request) -> Response:
        """Authenticate, authorise and run one request (also the seam for in-process use); audit mutations."""
        public = self.routes.get((request.method, request.path))
        if public is not None and public.role == PUBLIC:
            return await public.handler(request)
        who, response = await self._dispatch(request)
        if response.status == 401:
            self.limiter.failed(request.remote)
            delay = self.limiter.delay(request.remote)
            response.headers = (*response.headers, ("Retry-After", f"{delay:g}"))
        elif who != "anonymous":
            self.limiter.succeeded(request.remote)
        if request.method == "POST":
            self.audit.record(
                who=who,
                remote=request.remote,
                route=f"{request.method} {request.path}",
                status=response.status,
            )
        return response

    async def _dispatch(self, request: Request) -> tuple[str, Response]:
        header = request.headers.get("authorization")
        role: str | None = None
        who = "anonymous"
        if header is None and request.subject is not None:
            role = self.auth.subjects.get(request.subject)
            who = f"{role}/cert:{request.subject}"
            if role is None:
                return who, json_response(
                    401,
                    {"error": f"client certificate {request.subject!r} has no role"},
                    _challenge("invalid_token", "unknown client certificate"),
                )
        elif header is None:
            return who, json_response(401, {"error": "a bearer token is required"}, _challenge(None, ""))
        else:
            scheme, _, token = header.strip().partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token or " " in token or not _TOKEN.match(token):
                return who, json_response(
                    401,
                    {"error": "malformed Authorization header; expected 'Bearer <token>'"},
                    _challenge("invalid_request", "malformed Authorization header"),
                )
            role = self.auth.role_of(token)
            who = f"{role}/{token_id(token)}"
            if role is None:
                return who, json_response(
                    401, {"error": "unknown token"}, _challenge("invalid_token", "unknown token")
                )
        return who, await self._authorised(request, role)

    async def _authorised(self, request: Request, role: str) -> Response:
        methods = {m for (m, p) in self.routes if p == request.path}
        if not methods:
            return json_response(404, {"error": f"no route {request.path}"})
        route = self.routes.get((request.method, request.path))
        if route is None:
            return json_response(
                405,
                {"error": f"{request.path} accepts {', '.join(sorted(methods))}"},
                (("Allow", ", ".join(sorted(methods))),),
            )
        if ROLES[role] < ROLES[route.role]:
            return json_response(
                403,
                {
                    "error": f"{request.method} {request.path} needs the {route.role} role; "
                    f"this token has {role}"
                },
                _challenge("insufficient_scope", f"needs role {route.role}"),
            )
        request.role = role
        return await route.handler(request)

    @staticmethod
    async def _send(stream: SocketStream, response: Response) -> None:
        reason = REASONS.get(response.status, "")
        head = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Connection: close",
            "Cache-Control: no-store",
        ]
        head += [f"{k}: {v}" for k, v in response.headers]
        try:
            await stream.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


__all__ = [
    "PUBLIC",
    "ROLES",
    "Auth",
    "ControlConfigError",
    "ControlServer",
    "Request",
    "Response",
    "Route",
    "check_bind",
    "json_response",
    "load_tokens",
    "write_secret",
]
