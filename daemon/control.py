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

Tokens come from a file (``--tokens_file``, lines ``role token``, ``#`` comments) that must not be
accessible by group or others; in addition the daemon always creates one random admin token for the local
``millstream jobs`` command, written with mode 0600 next to the job's entry in the jobs directory, so only
the job's own user (who may signal the process anyway) can read it. There is no anonymous access, not even
for reads: anyone who can open a loopback port is not necessarily the job's owner.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import secrets
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

log = logging.getLogger("millstream.daemon.control")

ROLES = {"viewer": 1, "developer": 2, "admin": 3}
#: The role of routes anyone may call: static assets only (see `Route`).
PUBLIC = "public"
#: RFC 6750's b64token.
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
MIN_TOKEN_LENGTH = 16
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
#: A client has this long to send its request (a stuck client must not hold a connection forever).
REQUEST_TIMEOUT_S = 10.0

REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
           500: "Internal Server Error"}


class ControlConfigError(ValueError):
    """The control endpoint cannot be set up as asked (bad tokens file, remote bind not allowed, ...)."""


# -- tokens --------------------------------------------------------------------------------------------------
class Auth:
    """Bearer tokens and their roles."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self.tokens: dict[str, str] = dict(tokens or {})

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
        found = None
        for known, role in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                found = role
        return found


def load_tokens(path: str, auth: Auth | None = None) -> Auth:
    """Read a tokens file (lines ``role token``); refuse one that group or others may access."""
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
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    seen: dict[str, str] = {}
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
        if not _TOKEN.match(token) or len(token) < MIN_TOKEN_LENGTH:
            raise ControlConfigError(
                f"{path}:{number}: a token must be at least {MIN_TOKEN_LENGTH} characters of A-Z a-z 0-9 -._~+/ "
                "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if token in seen and seen[token] != role:
            raise ControlConfigError(f"{path}:{number}: the same token is given two roles")
        seen[token] = role
        auth.add(token, role)
    return auth


def write_secret(path: str, text: str) -> None:
    """Create `path` readable and writable by this user only (never following or reusing an existing file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def check_bind(host: str, allow_remote: bool) -> None:
    """Binding to anything but loopback needs `allow_remote` (the endpoint speaks plain HTTP)."""
    if host in ("localhost",):
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError as e:
        raise ControlConfigError(f"--control_bind {host!r} is not an IP address") from e
    if not loopback and not allow_remote:
        raise ControlConfigError(
            f"--control_bind {host} would expose the control endpoint beyond this machine; "
            "add --allow_remote_control to do so deliberately"
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

    return Response(status, orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=_json_default) + b"\n",
                    headers=headers)


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

    def __init__(self, routes: dict[tuple[str, str], Route], auth: Auth, host: str, port: int) -> None:
        self.routes = routes
        self.auth = auth
        self.host = host
        self.requested_port = port
        self.listener: Any = None
        self.port = 0

    async def bind(self) -> int:
        """Open the listening socket; returns the port (a random free one when asked for 0)."""
        try:
            self.listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.requested_port)
        except OSError as e:
            raise ControlConfigError(
                f"cannot listen on {self.host}:{self.requested_port} for the control endpoint: {e.strerror or e}"
            ) from e
        self.port = int(self.listener.extra(SocketAttribute.local_port))
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
        """Authenticate, authorise and run one request (also the seam for in-process use)."""
        public = self.routes.get((request.method, request.path))
        if public is not None and public.role == PUBLIC:
            return await public.handler(request)
        header = request.headers.get("authorization")
        if header is None:
            return json_response(401, {"error": "a bearer token is required"}, _challenge(None, ""))
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token or not _TOKEN.match(token):
            return json_response(401, {"error": "malformed Authorization header; expected 'Bearer <token>'"},
                                 _challenge("invalid_request", "malformed Authorization header"))
        role = self.auth.role_of(token)
        if role is None:
            return json_response(401, {"error": "unknown token"}, _challenge("invalid_token", "unknown token"))
        methods = {m for (m, p) in self.routes if p == request.path}
        if not methods:
            return json_response(404, {"error": f"no route {request.path}"})
        route = self.routes.get((request.method, request.path))
        if route is None:
            return json_response(405, {"error": f"{request.path} accepts {', '.join(sorted(methods))}"},
                                 (("Allow", ", ".join(sorted(methods))),))
        if ROLES[role] < ROLES[route.role]:
            return json_response(403, {"error": f"{request.method} {request.path} needs the {route.role} role; "
                                                f"this token has {role}"},
                                 _challenge("insufficient_scope", f"needs role {route.role}"))
        request.role = role
        return await route.handler(request)

    @staticmethod
    async def _send(stream: SocketStream, response: Response) -> None:
        reason = REASONS.get(response.status, "")
        head = [f"HTTP/1.1 {response.status} {reason}", f"Content-Type: {response.content_type}",
                f"Content-Length: {len(response.body)}", "Connection: close", "Cache-Control: no-store"]
        head += [f"{k}: {v}" for k, v in response.headers]
        try:
            await stream.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


__all__ = ["PUBLIC", "ROLES", "Auth", "ControlConfigError", "ControlServer", "Request", "Response", "Route", "check_bind",
           "json_response", "load_tokens", "write_secret"]
