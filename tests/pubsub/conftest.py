"""Real Pub/Sub server fixtures: Google's pstest fake served over the real gRPC API on loopback.

`pubsub_server` (session) builds `tests/infra/pubsub` once (`tests/infra/go-build.sh pubsub`, cached by
content hash), runs it on a free 127.0.0.1 port and points the real google-cloud-pubsub client at it through
PUBSUB_EMULATOR_HOST.
`pubsub_topic` (function) gives each test a fresh, uniquely named topic and a way to add subscriptions.

The fake keeps everything in memory: `stop()` + `start()` (same port) loses every topic, subscription
and message, as a crashed emulator would.
"""

from __future__ import annotations

import atexit
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from support.servers import build_go_server, read_ready_line, start_server, terminate, wait_for_port

PROJECT = "millstream-test"
# Real Pub/Sub's minimum ack deadline is 10 s; the fake is told to allow 1 s so expiry tests stay short.
MIN_ACK_DEADLINE_SECONDS = 1
_READY_TIMEOUT_S = 60.0


class PubSubServer:
    """A running pstest server process plus admin clients bound to it.

    Attributes: `host` ("127.0.0.1:PORT", stable across restarts), `project`, `binary`, `log_path`.
    """

    def __init__(self, binary: Path, log_path: Path, project: str = PROJECT) -> None:
        self.binary = binary
        self.log_path = log_path
        self.project = project
        self.host = ""
        self._port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        self._publisher: pubsub_v1.PublisherClient | None = None
        self._subscriber: pubsub_v1.SubscriberClient | None = None

    # -- process lifecycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (first time on a free port, afterwards on the same port) and wait until ready."""
        if self.running:
            raise RuntimeError("pstest server is already running")
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            proc = self._spawn()
            line = read_ready_line(proc, deadline)
            if line is not None:
                break
            # A restart can race a lingering socket of the old process; retry only that case.
            terminate(proc)
            if self._port and "address already in use" in self._log_tail() and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            raise RuntimeError(
                f"pstest server did not become ready; log {self.log_path}:\n{self._log_tail()}"
            )
        self._proc = proc
        host = line.rsplit(" ", 1)[-1]
        self._port = int(host.rsplit(":", 1)[1])
        self.host = host
        wait_for_port(self._port, "the pstest server", max(deadline - time.monotonic(), 0.0))
        # Fresh clients: a gRPC channel that saw the old server go away sits in reconnect backoff.
        self._close_clients()

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server: SIGTERM (or SIGKILL with kill=True), escalating to SIGKILL if it lingers."""
        self._close_clients()
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate(proc, sig=signal.SIGKILL if kill else signal.SIGTERM)

    def close(self) -> None:
        """Stop the server and release the log file; safe to call more than once."""
        self.stop()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self._log is None:
            self._log = open(self.log_path, "ab")  # lives as long as the server object
        self._log_offset = self._log.tell()
        cmd = [
            str(self.binary),
            "-port",
            str(self._port),
            "-min-ack-deadline",
            f"{MIN_ACK_DEADLINE_SECONDS}s",
            "-exit-on-stdin-eof",
        ]
        return start_server(cmd, self._log, ready_line=True)

    def _log_tail(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            data = self.log_path.read_bytes()[self._log_offset :]
        except OSError:
            return ""
        return data.decode(errors="replace")[-4000:]

    # -- clients and admin helpers -----------------------------------------------------------

    @property
    def publisher(self) -> pubsub_v1.PublisherClient:
        """A publisher client bound to this server (recreated after a restart)."""
        if self._publisher is None:
            self._publisher = pubsub_v1.PublisherClient()
        return self._publisher

    @property
    def subscriber(self) -> pubsub_v1.SubscriberClient:
        """A subscriber client bound to this server (recreated after a restart)."""
        if self._subscriber is None:
            self._subscriber = pubsub_v1.SubscriberClient()
        return self._subscriber

    def _close_clients(self) -> None:
        pub, self._publisher = self._publisher, None
        sub, self._subscriber = self._subscriber, None
        if pub is not None:
            pub.stop()
        if sub is not None:
            sub.close()

    def unique_name(self, prefix: str) -> str:
        """A Pub/Sub-legal resource name unique within the session."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    def topic_path(self, name: str) -> str:
        """projects/{project}/topics/{name}."""
        return f"projects/{self.project}/topics/{name}"

    def subscription_path(self, name: str) -> str:
        """projects/{project}/subscriptions/{name}."""
        return f"projects/{self.project}/subscriptions/{name}"

    def create_topic(self, name: str | None = None) -> str:
        """Create a topic (unique name unless given) and return its path."""
        path = self.topic_path(name or self.unique_name("topic"))
        self.publisher.create_topic(request={"name": path}, timeout=30)
        return path

    def create_subscription(
        self,
        topic: str,
        *,
        ack_deadline_seconds: int = 10,
        name: str | None = None,
        **fields: Any,
    ) -> str:
        """Create a pull subscription on `topic`; extra `fields` go into the Subscription message.

        The server accepts ack deadlines of MIN_ACK_DEADLINE_SECONDS..600 (0 means the default 10 s).
        """
        path = self.subscription_path(name or self.unique_name("sub"))
        request = {"name": path, "topic": topic, "ack_deadline_seconds": ack_deadline_seconds, **fields}
        self.subscriber.create_subscription(request=request, timeout=30)
        return path

    def publish(self, topic: str, data: bytes, **attributes: str) -> str:
        """Publish one message and return its server-assigned message_id."""
        return str(self.publisher.publish(topic, data, **attributes).result(timeout=30))

    def pull(
        self, subscription: str, *, min_messages: int = 1, max_messages: int = 100, timeout: float = 30.0
    ) -> list[Any]:
        """Synchronously pull until at least `min_messages` arrived (or `timeout` passes); no acking.

        Returns the ReceivedMessage list (possibly shorter than min_messages on timeout, so callers
        assert on it). The fake's Pull already blocks ~0.5 s when empty, so the loop does not spin.
        """
        got: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(got) < min_messages and time.monotonic() < deadline:
            resp = self.subscriber.pull(
                request={"subscription": subscription, "max_messages": max_messages - len(got)},
                timeout=max(1.0, deadline - time.monotonic()),
            )
            got.extend(resp.received_messages)
        return got

    def ack(self, subscription: str, ack_ids: list[str]) -> None:
        """Acknowledge the given ack ids."""
        self.subscriber.acknowledge(request={"subscription": subscription, "ack_ids": ack_ids}, timeout=30)

    def modify_ack_deadline(self, subscription: str, ack_ids: list[str], seconds: int) -> None:
        """ModifyAckDeadline; seconds=0 is a nack (immediately redeliverable)."""
        self.subscriber.modify_ack_deadline(
            request={"subscription": subscription, "ack_ids": ack_ids, "ack_deadline_seconds": seconds},
            timeout=30,
        )


class PubSubTopic:
    """A per-test topic on the session server, plus the subscriptions created for it."""

    def __init__(self, server: PubSubServer) -> None:
        self.server = server
        self.path = server.create_topic()
        self.subscriptions: list[str] = []

    def __str__(self) -> str:
        return self.path

    def create_subscription(self, *, ack_deadline_seconds: int = 10, **fields: Any) -> str:
        """Create a uniquely named subscription on this topic and return its path."""
        path = self.server.create_subscription(self.path, ack_deadline_seconds=ack_deadline_seconds, **fields)
        self.subscriptions.append(path)
        return path

    def publish(self, data: bytes, **attributes: str) -> str:
        """Publish one message to this topic and return its message_id."""
        return self.server.publish(self.path, data, **attributes)

    def delete(self) -> None:
        """Delete the subscriptions and the topic, ignoring ones a restart already dropped."""
        if not self.server.running:
            return
        for sub in self.subscriptions:
            try:
                self.server.subscriber.delete_subscription(request={"subscription": sub}, timeout=30)
            except gexc.NotFound:
                pass
        try:
            self.server.publisher.delete_topic(request={"topic": self.path}, timeout=30)
        except gexc.NotFound:
            pass


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pubsub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PubSubServer]:
    """The session's pstest server with PUBSUB_EMULATOR_HOST pointing at it; always stopped at the end."""
    binary = build_go_server("pubsub", "the Pub/Sub test server (tests/infra/pubsub)")
    server = PubSubServer(binary, tmp_path_factory.mktemp("pubsub") / "pstest-server.log")
    # atexit covers an interpreter exit that skips fixture teardown; stdin EOF covers a hard kill.
    atexit.register(server.close)
    mp = pytest.MonkeyPatch()
    try:
        server.start()
        mp.setenv("PUBSUB_EMULATOR_HOST", server.host)
        mp.setenv("PUBSUB_PROJECT_ID", server.project)
        yield server
    finally:
        server.close()
        mp.undo()
        atexit.unregister(server.close)


@pytest.fixture
def pubsub_topic(pubsub_server: PubSubServer) -> Iterator[PubSubTopic]:
    """A fresh topic for one test; `.path`, `.create_subscription(ack_deadline_seconds=...)`, `.publish()`."""
    if not pubsub_server.running:
        # A previous test stopped the server without restarting it: bring it back for this one.
        pubsub_server.start()
    topic = PubSubTopic(pubsub_server)
    try:
        yield topic
    finally:
        topic.delete()
