"""The control endpoint over TLS and mutual TLS, its audit log, backoff and hashed tokens: a real ControlServer on
a loopback port, real TLS handshakes with certificates generated here (cryptography's x509 builder)."""

from __future__ import annotations

import datetime
import json
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from millstream.daemon.control import (
    Auth,
    ControlConfigError,
    ControlServer,
    Request,
    Route,
    check_bind,
    json_response,
    load_tokens,
)
from millstream.daemon.control_security import AuditLog, FailureLimiter, hash_token
from millstream.daemon.jobs_cli import client_tls_context

TOKEN = "developer-token-0123456789abcdef"
NOW = datetime.datetime.now(datetime.UTC)


class CA:
    """A certificate authority made in the test."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.name = subject
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = root / f"{name}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, cn: str, *, expired: bool = False, server: bool = True) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        start, end = (
            (NOW - datetime.timedelta(days=3), NOW - datetime.timedelta(days=2))
            if expired
            else (NOW - datetime.timedelta(hours=1), NOW + datetime.timedelta(days=1))
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )
        if server:
            import ipaddress

            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.root / f"{cn}.crt", self.root / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return str(cert_path), str(key_path)


async def _ok(request: Request) -> Any:
    return json_response(200, {"ok": True})


ROUTES = {("GET", "/status"): Route("viewer", _ok), ("POST", "/drain"): Route("developer", _ok)}


class Served:
    def __init__(self, server: ControlServer) -> None:
        self.server = server

    async def request(
        self, method: str, path: str, *, context: ssl.SSLContext | None, token: str | None = TOKEN
    ) -> tuple[int, dict[str, str], bytes]:
        stream: Any = await anyio.connect_tcp(
            "127.0.0.1", self.server.port, ssl_context=context, tls_standard_compatible=False
        )
        async with stream:
            head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
            if token:
                head += f"Authorization: Bearer {token}\r\n"
            await stream.send((head + "\r\n").encode())
            data = b""
            try:
                while True:
                    data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError):
                pass
        if not data.startswith(b"HTTP/1.1 "):
            raise ConnectionError(f"no HTTP answer ({data[:20]!r})")
        top, _, body = data.partition(b"\r\n\r\n")
        lines = top.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), headers, body


@asynccontextmanager
async def tls_server(tmp_path: Path) -> AsyncIterator[Any]:
    from millstream.daemon.control_security import server_tls_context

    ca = CA(tmp_path, "job-ca")
    cert, key = ca.issue("127.0.0.1")
    auth = Auth({TOKEN: "developer"})
    auth.subjects["ops-admin"] = "admin"
    server = ControlServer(
        ROUTES,
        auth,
        "127.0.0.1",
        0,
        tls=server_tls_context(cert, key, str(ca.pem)),
        audit=AuditLog(str(tmp_path / "audit.jsonl")),
        limiter=FailureLimiter(base_s=0.0),
    )
    await server.bind()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        yield Served(server), ca, tmp_path
        tg.cancel_scope.cancel()


async def test_tls_with_token_and_client_certificate(tmp_path: Path) -> None:
    async with tls_server(tmp_path) as (served, ca, root):
        client_cert = ca.issue("ops-admin", server=False)
        ctx = client_tls_context(str(ca.pem), *client_cert)
        status, _, body = await served.request("GET", "/status", context=ctx)
        assert status == 200 and json.loads(body) == {"ok": True}
        # mutual TLS: the certificate's subject has a role, no token needed
        status, _, _ = await served.request("POST", "/drain", context=ctx, token=None)
        assert status == 200
        unknown = client_tls_context(str(ca.pem), *ca.issue("stranger", server=False))
        status, _, _ = await served.request("POST", "/drain", context=unknown, token=None)
        assert status == 401
        audit = [json.loads(line) for line in (root / "audit.jsonl").read_text().splitlines()]
        assert [(a["who"], a["route"], a["outcome"]) for a in audit] == [
            ("admin/cert:ops-admin", "POST /drain", "accepted"),
            ("None/cert:stranger", "POST /drain", "refused"),
        ]
        assert all(a["remote"] == "127.0.0.1" and a["time"] > 0 for a in audit)


async def test_server_refuses_clients_without_a_certificate_from_its_ca(tmp_path: Path) -> None:
    async with tls_server(tmp_path) as (served, ca, root):
        other = CA(root, "other-ca")
        for cert in (
            None,
            other.issue("ops-admin", server=False),
            ca.issue("late", server=False, expired=True),
        ):
            ctx = client_tls_context(str(ca.pem), *cert) if cert else client_tls_context(str(ca.pem))
            with pytest.raises((ssl.SSLError, anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError)):
                status, _, _ = await served.request("GET", "/status", context=ctx)
                pytest.fail(f"answered {status} to a client without a certificate from the CA")


async def test_client_refuses_a_wrong_ca_an_expired_certificate_and_plain_http_gets_nothing(
    tmp_path: Path,
) -> None:
    from millstream.daemon.control_security import server_tls_context

    ca, wrong = CA(tmp_path, "job-ca"), CA(tmp_path, "wrong-ca")
    for cert, trusted, expected in (
        (ca.issue("127.0.0.1"), wrong, "certificate verify failed"),
        (ca.issue("127.0.0.1", expired=True), ca, "certificate has expired"),
    ):
        server = ControlServer(
            ROUTES, Auth({TOKEN: "developer"}), "127.0.0.1", 0, tls=server_tls_context(*cert)
        )
        await server.bind()
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            with pytest.raises(ssl.SSLCertVerificationError, match=expected):
                await Served(server).request("GET", "/status", context=client_tls_context(str(trusted.pem)))
            # a plain-HTTP client against the TLS port gets no HTTP answer, and the server keeps serving
            with pytest.raises(ConnectionError, match="no HTTP answer"):
                await Served(server).request("GET", "/status", context=None)
            tg.cancel_scope.cancel()


async def test_audit_backoff_and_no_token_in_the_log(tmp_path: Path, caplog: Any) -> None:
    clock = [0.0]
    limiter = FailureLimiter(base_s=0.0, clock=lambda: clock[0])
    server = ControlServer(
        ROUTES,
        Auth({TOKEN: "developer"}),
        "127.0.0.1",
        0,
        audit=AuditLog(str(tmp_path / "audit.jsonl")),
        limiter=limiter,
    )
    retry = []
    with caplog.at_level("INFO", logger="millstream.audit"):
        for _ in range(4):
            response = await server.dispatch(
                Request(
                    "POST",
                    "/drain",
                    "",
                    {"authorization": "Bearer wrong-token-xxxxxxxxxx"},
                    b"",
                    remote="10.1.2.3",
                )
            )
            assert response.status == 401
            retry.append(dict(response.headers)["Retry-After"])
        ok = await server.dispatch(
            Request("POST", "/drain", "", {"authorization": f"Bearer {TOKEN}"}, b"", remote="10.1.2.3")
        )
        viewer_refused = await server.dispatch(Request("POST", "/drain", "", {}, b"", remote="10.9.9.9"))
    assert ok.status == 200 and viewer_refused.status == 401
    assert retry == ["0", "0", "0", "0"]  # base 0 here; the growth is below with a real base
    text = (tmp_path / "audit.jsonl").read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) == 6 and [r["outcome"] for r in records] == ["refused"] * 4 + ["accepted", "refused"]
    assert records[4]["who"].startswith("developer/token:") and records[4]["remote"] == "10.1.2.3"
    assert TOKEN not in text and "wrong-token" not in text and TOKEN not in caplog.text
    assert sum("POST /drain" in r.getMessage() for r in caplog.records) == 6

    limiter = FailureLimiter(base_s=0.1, max_s=1.0, forget_s=60, clock=lambda: clock[0])
    delays = []
    for _ in range(6):
        limiter.failed("10.1.2.3")
        delays.append(limiter.delay("10.1.2.3"))
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0] and limiter.delay("10.7.7.7") == 0.0
    clock[0] = 61.0
    assert limiter.delay("10.1.2.3") == 0.0


def test_hashed_tokens_file_and_remote_bind_rules(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"developer {hash_token(TOKEN)}\nadmin cert:ops-admin\n")
    path.chmod(0o600)
    auth = load_tokens(str(path))
    assert auth.role_of(TOKEN) == "developer" and auth.role_of(TOKEN + "x") is None
    assert auth.subjects == {"ops-admin": "admin"} and TOKEN not in path.read_text()
    with pytest.raises(
        ControlConfigError, match="--control_tls_cert/--control_tls_key.*--insecure_remote_control"
    ):
        check_bind("0.0.0.0", allow_remote=False)
    check_bind("0.0.0.0", allow_remote=False, tls=True)
    check_bind("0.0.0.0", allow_remote=True)


async def test_a_failed_handshake_is_one_warning_naming_the_peer_not_an_error_traceback(
    tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    async with tls_server(tmp_path) as (served, ca, root):
        with pytest.raises(ConnectionError, match="no HTTP answer"):
            await served.request("GET", "/status", context=None)  # plain HTTP against the TLS port
        # the server logs after closing; wait for the line (bounded) rather than sleeping
        with anyio.fail_after(10):
            while not any("TLS handshake" in r.getMessage() for r in caplog.records):
                await anyio.sleep(0.01)
        # and it keeps serving
        ctx = client_tls_context(str(ca.pem), *ca.issue("ops-admin", server=False))
        status, _, _ = await served.request("GET", "/status", context=ctx)
        assert status == 200
    handshake = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert len(handshake) == 1, [r.getMessage() for r in handshake]
    assert handshake[0].levelno == logging.WARNING and handshake[0].exc_info is None
    assert "127.0.0.1:" in handshake[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
