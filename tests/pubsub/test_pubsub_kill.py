"""Exactly-once with Pub/Sub under kill -9: the IoT example runs as a real subprocess (`millstream run`) and is
SIGKILLed at random instants while readings are being published, at protocol steps of a checkpoint, and between
publishing a commit's alerts and marking it done; after a final run that drains, every reading is counted once in
the committed aggregates (exactly), and once in the alerts after de-duplication by their id attribute.

The pstest server keeps everything in memory, so the job is killed, never the server; messages the killed job
had leased come back when their 2 s ack deadline expires."""

from __future__ import annotations

import glob
import json
import os
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import PubSubServer, PubSubTopic
from support.jobs import cli_command
from support.kill9 import KilledJob
from support.pubsub import (
    EXAMPLE,
    assert_aggregates,
    committed_rows,
    drain_subscription,
    env_for_subprocess,
    expected_aggregates,
    expected_alerts,
    final_panes,
    iot_readings,
    load_example,
    publish_many,
    unique_by_id,
    wait_until_sync,
)

pytestmark = [pytest.mark.pubsub, pytest.mark.crash]

WINDOW_S = 2.0


class Run:
    """One test's job: its subscriptions, files, and how to start it."""

    def __init__(self, server: PubSubServer, topic: PubSubTopic, tmp: Path) -> None:
        self.server = server
        self.topic = topic
        self.subscription = topic.create_subscription(ack_deadline_seconds=2)
        self.alerts_topic = server.create_topic()
        self.alerts_sub = server.create_subscription(self.alerts_topic)
        self.tmp = tmp
        self.example = load_example()
        self.devices = self.example.write_devices(str(tmp / "devices.jsonl"))
        self.out = str(tmp / "out")
        self.start_ms = int(time.time() * 1000) // 60_000 * 60_000

    def job(self, interval: float = 0.2) -> KilledJob:
        """The example as a `millstream run` job, whose progress is its committed aggregate files."""
        args = cli_command(
            "run",
            str(EXAMPLE),
            "--subscription",
            self.subscription,
            "--devices",
            str(self.tmp / "devices.jsonl"),
            "--output",
            self.out,
            "--alerts_topic",
            self.alerts_topic,
            "--window",
            str(WINDOW_S),
            "--early_every",
            "0.3",
            "--allowed_lateness",
            "3600",
            "--max_out_of_orderness",
            "1",
            f"--state_dir={self.tmp / 'state'}",
            f"--checkpoint_interval={interval}",
            "--batch_size=50",
            "--jobs_dir",
            str(self.tmp / "jobs"),
            "--log_level",
            "WARNING",
        )
        return KilledJob(
            args,
            lambda: set(glob.glob(os.path.join(self.out, "aggregates-c*"))),
            env=env_for_subprocess(self.server),
            timeout=90,
            progress_timeout=30,
            poll_s=0.01,
        )

    def counted(self) -> int:
        """Readings counted in the committed output so far (final panes)."""
        return sum(
            r["count"] for r in final_panes(committed_rows(os.path.join(self.out, "aggregates"))).values()
        )

    def registered(self, proc: subprocess.Popen[bytes]) -> bool:
        """Whether `proc` runs its job with signals handled (`millstream run` registered it in the jobs folder)."""
        for name in glob.glob(str(self.tmp / "jobs" / "*.json")):
            try:
                with open(name) as f:
                    if json.load(f).get("pid") == proc.pid:
                        return True
            except (OSError, ValueError):
                continue
        return False

    def finish(self, readings: list[Any]) -> None:
        """Run until every reading is counted in committed output, then drain (SIGTERM) and check the result."""
        with self.job() as job:
            proc = job.start()
            # Earlier runs may have committed everything already: wait for this one to run before draining it.
            wait_until_sync(
                lambda: self.registered(proc) or proc.poll() is not None, "the final run to start"
            )
            wait_until_sync(
                lambda: self.counted() >= len(readings) or proc.poll() is not None,
                "every reading in the committed aggregates",
                timeout=90,
            )
            assert proc.poll() is None, job.tail(proc)
            job.drain(proc)

    def check(self, readings: list[Any], ids: list[str]) -> list[Any]:
        """The committed aggregates and the de-duplicated alerts equal the independent computation; returns the
        raw alert messages (with any duplicates)."""
        rows = committed_rows(os.path.join(self.out, "aggregates"))
        assert_aggregates(rows, expected_aggregates(self.example, readings, self.devices, WINDOW_S))
        want = expected_alerts(readings, ids, self.devices)
        assert want
        raw = drain_subscription(self.server, self.alerts_sub, lambda ms: len(unique_by_id(ms)) >= len(want))
        got = sorted(json.loads(m.data)["message_id"] for m in unique_by_id(raw).values())
        assert got == want
        return raw


class Publisher(threading.Thread):
    """Publishes readings in batches of 50 every ~0.1 s (about 500 a second), collecting their message ids."""

    def __init__(self, run: Run, readings: list[Any]) -> None:
        super().__init__(daemon=True)
        self.run_ = run
        self.readings = readings
        self.ids: list[str] = []

    def run(self) -> None:
        for i in range(0, len(self.readings), 50):
            self.ids.extend(publish_many(self.run_.server, self.run_.topic.path, self.readings[i : i + 50]))
            time.sleep(0.1)


def test_random_kills_while_readings_arrive(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path: Path
) -> None:
    run = Run(pubsub_server, pubsub_topic, tmp_path)
    readings = iot_readings(run.example, 1500, seed=11, start_ms=run.start_ms)
    publisher = Publisher(run, readings)  # readings keep arriving across the kills
    publisher.start()
    try:
        # each start must progress and still run at the kill: a streaming job never ends by itself
        kills = run.job().kill_repeatedly(3, random.Random(5), 0.3, streaming=True)
    finally:
        publisher.join()
    assert kills == 3
    run.finish(readings)
    run.check(readings, publisher.ids)


@pytest.mark.parametrize(
    "crash",
    [
        {"MILLSTREAM_CRASH_AT": "4:2"},  # writing checkpoint 2: not durable, nothing acknowledged for it
        {
            "MILLSTREAM_CRASH_AT": "5:2"
        },  # checkpoint 2 durable; its sink commits and acks not done: redelivered
        {"MILLSTREAM_PUBSUB_CRASH_AFTER_PUBLISH": "1"},  # alerts published, the commit not marked done
    ],
    ids=["before-durable", "before-commit-and-ack", "mid-publish"],
)
def test_crash_points(
    pubsub_server: PubSubServer, pubsub_topic: PubSubTopic, tmp_path: Path, crash: dict[str, str]
) -> None:
    run = Run(pubsub_server, pubsub_topic, tmp_path)
    readings = iot_readings(run.example, 2000, seed=7, start_ms=run.start_ms)
    # Readings keep arriving for ~5 s and checkpoints are 1 s apart, so the second one (the first covers nothing:
    # it is taken before the first read) covers about a second of readings (the job starts in ~1-2 s).
    publisher = Publisher(run, readings)
    publisher.start()
    try:
        run.job(interval=1.0).crash_with(crash)
    finally:
        publisher.join()
    run.finish(readings)
    raw = run.check(readings, publisher.ids)
    if "MILLSTREAM_PUBSUB_CRASH_AFTER_PUBLISH" in crash:
        # The interrupted commit was repeated after the restart: its alerts were published twice, same ids.
        assert len(raw) > len(unique_by_id(raw))
