"""Real Kafka broker fixtures for millstream's Kafka tests (no mocks, no fakes).

``kafka_broker`` (session scope) is a real single-node KRaft broker on loopback, started with
``tests/infra/kafka/broker.sh`` (Kafka fetched once with Maven into ``~/.cache/millstream``), or an
external broker named by ``MILLSTREAM_KAFKA_BOOTSTRAP``. ``kafka_topic`` creates fresh topics.

Environment:
  MILLSTREAM_KAFKA_BOOTSTRAP  use this broker ("host:port") instead of starting one (not restartable)
  MILLSTREAM_KAFKA_VERSION    Kafka version broker.sh fetches and starts (default: broker.sh's, 3.9.x)
  MILLSTREAM_CACHE            cache root for the Kafka jars (default ~/.cache/millstream)
  CI                          when set, a missing Java/Maven fails the run instead of skipping it
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from support.servers import in_ci, run_infra, unavailable

BROKER_SH = Path(__file__).resolve().parents[1] / "infra" / "kafka" / "broker.sh"
FETCH_TIMEOUT_S = 900.0
START_TIMEOUT_S = 120.0
TOPIC_READY_TIMEOUT_S = 30.0


def _run_broker_sh(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run broker.sh with the given arguments, capturing its output."""
    return run_infra(BROKER_SH, *args, timeout=timeout)


class KafkaBroker:
    """A Kafka broker under test: one this session started (restartable) or an external one.

    ``bootstrap`` is "host:port". ``stop()``/``start()`` take a started broker down and bring it back
    on the same port with the same log directory (data, topics, committed offsets and transactions
    survive); ``stop(kill=True)`` is a crash (SIGKILL). The ``a*`` variants run them off the event
    loop for async tests.
    """

    def __init__(self, bootstrap: str, *, directory: Path | None, version: str | None) -> None:
        self.bootstrap = bootstrap
        self.directory = directory
        self.version = version
        self._running = True
        self._closed = False

    @property
    def external(self) -> bool:
        """True for a broker named by MILLSTREAM_KAFKA_BOOTSTRAP, which tests cannot restart."""
        return self.directory is None

    @property
    def running(self) -> bool:
        """Whether the broker is up (as far as this object's start/stop calls know)."""
        return self._running

    def _require_own(self) -> Path:
        if self.directory is None:
            unavailable(
                f"the external broker {self.bootstrap} (MILLSTREAM_KAFKA_BOOTSTRAP) cannot be restarted"
            )
        if self._closed:
            raise RuntimeError("the Kafka broker was already closed at session end")
        return self.directory

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker, keeping its port and data for ``start()``; ``kill=True`` sends SIGKILL."""
        directory = self._require_own()
        args = ["stop", "--dir", str(directory), "--keep"] + (["--kill"] if kill else [])
        done = _run_broker_sh(*args, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"broker.sh stop failed ({done.returncode}):\n{done.stderr}")
        self._running = False

    def start(self) -> None:
        """Start a stopped broker again on the same port with the same log directory."""
        directory = self._require_own()
        if self._running:
            raise RuntimeError("the Kafka broker is already running")
        bootstrap = _start(directory)
        self._running = True
        if bootstrap != self.bootstrap:
            raise RuntimeError(f"restarted broker came back on {bootstrap}, not {self.bootstrap}")

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or crash, with ``kill=True``) and start the broker again."""
        self.stop(kill=kill)
        self.start()

    async def astop(self, *, kill: bool = False) -> None:
        """``stop()`` without blocking the event loop."""
        await asyncio.to_thread(self.stop, kill=kill)

    async def astart(self) -> None:
        """``start()`` without blocking the event loop."""
        await asyncio.to_thread(self.start)

    async def arestart(self, *, kill: bool = False) -> None:
        """``restart()`` without blocking the event loop."""
        await asyncio.to_thread(self.restart, kill=kill)

    def close(self) -> None:
        """Stop the broker for good and delete its directory (idempotent; session teardown)."""
        if self._closed or self.directory is None:
            return
        self._closed = True
        self._running = False
        done = _run_broker_sh("stop", "--dir", str(self.directory), timeout=60)
        if done.returncode != 0:
            sys.stderr.write(f"millstream: broker.sh stop failed ({done.returncode}):\n{done.stderr}\n")

    def __repr__(self) -> str:
        where = "external" if self.external else str(self.directory)
        return f"KafkaBroker({self.bootstrap!r}, {where}, version={self.version!r})"


def _start(directory: Path) -> str:
    """Start (or restart) the broker in ``directory``; return its bootstrap address."""
    # --watch-pid: the broker dies with this pytest process even if it is SIGKILLed.
    done = _run_broker_sh(
        "start",
        "--dir",
        str(directory),
        "--watch-pid",
        str(os.getpid()),
        "--timeout",
        str(int(START_TIMEOUT_S) - 10),
        timeout=START_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"broker.sh start failed ({done.returncode}):\n{done.stderr}")
    sys.stderr.write(done.stderr)
    return done.stdout.strip().splitlines()[-1]


def _fetch() -> None:
    """Fetch the Kafka jars once (cached); skip/fail clearly when Java or Maven is missing."""
    if shutil.which("java") is None:
        unavailable("Java is not installed (the real Kafka broker for the Kafka tests needs Java 17+)")
    began = time.monotonic()
    done = _run_broker_sh("fetch", timeout=FETCH_TIMEOUT_S)
    if done.returncode == 0:
        if done.stderr:
            sys.stderr.write(done.stderr)
        return
    if shutil.which("mvn") is None:
        unavailable(
            f"Maven (mvn) is not installed; it fetches Kafka once for the Kafka tests:\n{done.stderr}"
        )
    message = f"fetching Kafka with Maven failed after {time.monotonic() - began:.0f} s:\n{done.stderr}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    # Locally the usual cause is no network on a cold cache, which is not a test failure.
    pytest.skip(message)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """The session's real Kafka broker; see ``KafkaBroker``."""
    external = os.environ.get("MILLSTREAM_KAFKA_BOOTSTRAP", "").strip()
    if external:
        yield KafkaBroker(external, directory=None, version=None)
        return
    _fetch()
    directory = Path(tempfile.mkdtemp(prefix="millstream-kafka-"))
    broker = KafkaBroker("", directory=directory, version=os.environ.get("MILLSTREAM_KAFKA_VERSION"))
    # Belt and braces: the fixture's finally covers failing tests, atexit covers an aborted session,
    # broker.sh's watchdog covers a killed interpreter.
    atexit.register(broker.close)
    try:
        broker.bootstrap = _start(directory)
        yield broker
    finally:
        broker.close()
        atexit.unregister(broker.close)


@pytest.fixture(autouse=True)
def _kafka_broker_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """Bring the session broker back up if a test stopped it and did not restart it (e.g. it
    failed in between), so one test's crash drill cannot break the tests after it."""
    yield
    if "kafka_broker" in request.fixturenames:
        broker: KafkaBroker = request.getfixturevalue("kafka_broker")
        if not broker.external and not broker.running:
            broker.start()


class TopicFactory(Protocol):
    """Creates a fresh, uniquely named topic and returns its name once every partition has a leader."""

    def __call__(self, partitions: int = 1, *, config: Mapping[str, str] | None = None) -> Awaitable[str]: ...


@pytest.fixture
async def kafka_topic(
    kafka_broker: KafkaBroker, request: pytest.FixtureRequest
) -> AsyncIterator[TopicFactory]:
    """Factory for new topics on ``kafka_broker``: ``name = await kafka_topic(partitions=3)``."""
    admin: AIOKafkaAdminClient | None = None
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name)[:80].strip("-.")

    async def create(partitions: int = 1, *, config: Mapping[str, str] | None = None) -> str:
        nonlocal admin
        if admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
            await admin.start()
        name = f"ms-{stem}-{uuid.uuid4().hex[:10]}"
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=dict(config or {}))], timeout_ms=30_000
        )
        for topic_error in response.topic_errors:
            if topic_error[1] != 0:
                raise for_code(topic_error[1])(f"creating topic {name}: {topic_error}")
        # Wait until the broker serves metadata with a leader for every partition, so the test's
        # first produce or assignment does not race topic creation.
        deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
        while True:
            described = await admin.describe_topics([name])
            if (
                described
                and described[0]["error_code"] == 0
                and len(described[0]["partitions"]) == partitions
                and all(p["leader"] >= 0 for p in described[0]["partitions"])
            ):
                return name
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"topic {name} had no leaders after {TOPIC_READY_TIMEOUT_S} s: {described}"
                )
            await asyncio.sleep(0.05)

    try:
        yield create
    finally:
        if admin is not None:
            await admin.close()
