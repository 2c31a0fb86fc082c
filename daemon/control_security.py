"""Security of the control endpoint: TLS and mutual TLS, an audit trail of mutating requests, a bounded backoff
after failed authentication, and salted token hashes.

* `server_tls_context` builds the server's `ssl.SSLContext` (``--control_tls_cert/--control_tls_key``; with
  ``--control_tls_client_ca`` clients must present a certificate signed by that CA, and a tokens-file line
  ``role cert:<subject CN>`` maps its subject to a role, instead of a bearer token).
* `AuditLog` writes one JSON record per mutating request, accepted or refused: time, who (role, the client
  certificate's subject or a token's non-reversible id, never the token), remote address, route, status.
* `FailureLimiter` slows one address down after repeated failed authentication: each failure doubles the
  delay before that address's next answer (0.1 s .. 5 s); other clients and the pipeline are unaffected.
* `hash_token` stores tokens as ``sha256$<salt>$<digest>`` (tokens are >= 16 random characters, so a salted
  SHA-256 is enough: there is no dictionary to search); ``millstream tokens add`` writes such lines.

>>> limiter = FailureLimiter(clock=lambda: 0.0)
>>> limiter.failed("10.0.0.1"); limiter.failed("10.0.0.1"); limiter.delay("10.0.0.1")
0.2
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import ssl
import time
from collections.abc import Callable
from typing import Any

from anyio import aclose_forcefully, get_cancelled_exc_class
from anyio.abc import AnyByteStream, SocketAttribute
from anyio.streams.tls import TLSListener

__all__ = ["AuditLog", "FailureLimiter", "hash_token", "server_tls_context", "token_matches", "token_id"]

audit_log = logging.getLogger("millstream.audit")
log = logging.getLogger("millstream.daemon")


def server_tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """TLS 1.2+ server context; with `client_ca`, a client certificate signed by it is required."""
    from millstream.daemon.control import ControlConfigError

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise ControlConfigError(f"--control_tls_cert {cert} / --control_tls_key {key}: {e}") from e
    if client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as e:
            raise ControlConfigError(f"--control_tls_client_ca {client_ca}: {e}") from e
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def subject_cn(peer_cert: dict[str, Any] | None) -> str | None:
    """The common name of a verified peer certificate (as `ssl.SSLSocket.getpeercert` returns it)."""
    if not peer_cert:
        return None
    for rdn in peer_cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


def token_id(token: str) -> str:
    """A short, non-reversible id of a token for the audit log."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:8]


def hash_token(token: str, salt: str | None = None) -> str:
    """The stored form of a token: ``sha256$<salt>$<hex digest of salt + token>``."""
    salt = salt or secrets.token_hex(8)
    return f"sha256${salt}${hashlib.sha256((salt + token).encode()).hexdigest()}"


def token_matches(stored: str, token: str) -> bool:
    """Whether `token` is the token `stored` (a hash from `hash_token`, or the token itself), in constant time."""
    if stored.startswith("sha256$"):
        _, salt, _ = stored.split("$", 2)
        return hmac.compare_digest(hash_token(token, salt).encode(), stored.encode())
    return hmac.compare_digest(stored.encode(), token.encode())


class FailureLimiter:
    """Bounded exponential backoff per remote address after failed authentication (forgotten after a minute)."""

    def __init__(
        self,
        base_s: float = 0.1,
        max_s: float = 5.0,
        forget_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.forget_s = forget_s
        self.clock = clock
        self._failures: dict[str, tuple[int, float]] = {}

    def failed(self, remote: str) -> None:
        """Count one failed authentication from `remote`."""
        count, _ = self._current(remote)
        self._failures[remote] = (count + 1, self.clock())
        if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
            oldest = min(self._failures, key=lambda r: self._failures[r][1])
            del self._failures[oldest]

    def succeeded(self, remote: str) -> None:
        """A successful authentication clears the address's failures."""
        self._failures.pop(remote, None)

    def _current(self, remote: str) -> tuple[int, float]:
        count, last = self._failures.get(remote, (0, 0.0))
        if count and self.clock() - last > self.forget_s:
            self._failures.pop(remote, None)
            return 0, 0.0
        return count, last

    def delay(self, remote: str) -> float:
        """Seconds to wait before answering `remote` (0 until it has failed)."""
        count, _ = self._current(remote)
        if count == 0:
            return 0.0
        return float(min(self.max_s, self.base_s * 2 ** (count - 1)))


class AuditLog:
    """One JSON record per mutating request, to the ``millstream.audit`` logger and, if given, a file (0600)."""

    def __init__(self, path: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        if path is not None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.close(fd)

    def record(self, *, who: str, remote: str, route: str, status: int) -> dict[str, Any]:
        """Write and return the record of one request."""
        doc = {
            "time": self.clock(),
            "who": who,
            "remote": remote,
            "route": route,
            "status": status,
            "outcome": "accepted" if status < 300 else "refused",
        }
        line = json.dumps(doc, sort_keys=True)
        audit_log.info("%s", line)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        return doc


class QuietTLSListener(TLSListener):
    """anyio's TLS listener, but a failed handshake is one WARNING line naming the peer, not an ERROR traceback.

    Port scanners, plain-HTTP clients and clients without an accepted certificate fail the handshake; that is
    the client's problem, and a traceback per attempt would bury the job's real errors.

        >>> issubclass(QuietTLSListener, TLSListener)
        True
    """

    @staticmethod
    async def handle_handshake_error(exc: BaseException, stream: AnyByteStream) -> None:
        """Close the connection and log one line; re-raise cancellation and non-Exception errors as anyio does."""
        try:
            peer = stream.extra(SocketAttribute.remote_address, None)
        except Exception:  # a stream already broken may not answer; the address is only for the log
            peer = None
        await aclose_forcefully(stream)
        if isinstance(exc, get_cancelled_exc_class()) or not isinstance(exc, Exception):
            raise exc
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "an unknown peer"
        log.warning(
            "control endpoint: TLS handshake with %s failed: %s: %s",
            where,
            type(exc).__name__,
            str(exc) or "connection closed",
        )
