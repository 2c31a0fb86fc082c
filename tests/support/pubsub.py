"""Helpers shared by the Pub/Sub connector tests: waiting on conditions, finding a running job's Pub/Sub
reader, reading committed JSON output, the IoT example (examples/streaming/iot_pubsub.py) and its expected
output computed independently."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from millstream.connectors.pubsub.source import PubSubReader
from millstream.options.pipeline_options import PipelineOptions

from support.examples import example_path
from support.examples import load_example as load_example_program
from support.jobs import until, wait_for
from support.outputs import committed_json_rows as committed_rows

__all__ = [
    "EXAMPLE",
    "WAIT_S",
    "assert_aggregates",
    "committed_rows",
    "drain_subscription",
    "env_for_subprocess",
    "expected_aggregates",
    "expected_alerts",
    "final_panes",
    "iot_readings",
    "load_example",
    "options",
    "publish_many",
    "reader_of",
    "stat",
    "unique_by_id",
    "wait_until",
    "wait_until_sync",
]

EXAMPLE = example_path("iot_pubsub")
#: Upper bound for conditions; tests go on as soon as the condition holds.
WAIT_S = 60.0


async def wait_until(cond: Callable[[], Any], what: str, timeout: float = WAIT_S) -> None:
    """Poll `cond` (on the running loop, so the job keeps running) until it is true; fail after `timeout`."""
    await until(cond, what, timeout)


def wait_until_sync(cond: Callable[[], Any], what: str, timeout: float = WAIT_S) -> None:
    """`wait_until` for conditions on other processes (the job runs in a subprocess)."""
    wait_for(cond, what, timeout)


def options(tmp_path: Path, *flags: str, interval: float = 0.2) -> PipelineOptions:
    """Streaming options with state in `tmp_path` and frequent checkpoints."""
    return PipelineOptions(
        ["--streaming", f"--state_dir={tmp_path / 'state'}", f"--checkpoint_interval={interval}", *flags]
    )


def reader_of(job: Any) -> PubSubReader:
    """The Pub/Sub reader of a running job (its only one)."""
    readers = [
        st.driver.reader
        for st in job.plan.stages
        if st.driver is not None and isinstance(getattr(st.driver, "reader", None), PubSubReader)
    ]
    assert len(readers) == 1, readers
    return readers[0]


def stat(job: Any, name: str) -> int:
    """A counter of the job's Pub/Sub reader (0 before the reader exists)."""
    for st in job.plan.stages:
        reader = getattr(st.driver, "reader", None) if st.driver is not None else None
        if isinstance(reader, PubSubReader):
            return reader.stats[name]
    return 0


def load_example() -> Any:
    """The IoT example module."""
    return load_example_program("iot_pubsub")


def publish_many(server: Any, topic: str, messages: list[tuple[bytes, dict[str, str]]]) -> list[str]:
    """Publish (data, attributes) pairs and return their message ids, in order."""
    futures = [server.publisher.publish(topic, data, **attrs) for data, attrs in messages]
    return [str(f.result(timeout=60)) for f in futures]


def drain_subscription(
    server: Any, subscription: str, until: Callable[[list[Any]], bool], timeout: float = WAIT_S
) -> list[Any]:
    """Pull and ack until `until(messages so far)` holds; then one more pull collects anything already
    available (a duplicate published before the condition held is delivered by it)."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    done = False
    while True:
        resp = server.subscriber.pull(
            request={"subscription": subscription, "max_messages": 1000}, timeout=30
        )
        msgs = list(resp.received_messages)
        if msgs:
            server.ack(subscription, [m.ack_id for m in msgs])
            got.extend(m.message for m in msgs)
        if done and not msgs:
            return got
        if until(got):
            done = True
        elif time.monotonic() > deadline:
            raise AssertionError(f"timed out with {len(got)} messages from {subscription}")


def env_for_subprocess(server: Any) -> dict[str, str]:
    """The environment of a job subprocess: the test server, and no inherited crash points."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
    env["PUBSUB_EMULATOR_HOST"] = server.host
    env["PUBSUB_PROJECT_ID"] = server.project
    return env


# -- the IoT example's expected output ------------------------------------------------------------------------


def iot_readings(example: Any, count: int, seed: int, start_ms: int) -> list[tuple[bytes, dict[str, str]]]:
    """`count` demo readings 10 ms apart in event time, plus one reading of a device not in the devices file."""
    readings = example.demo_readings(count, seed=seed, start_ms=start_ms, spacing_ms=10)
    readings.append((b'{"device": "dev-999", "value": 5}', {"ts": str(start_ms + 5)}))
    return readings


def expected_aggregates(
    example: Any, readings: list[tuple[bytes, dict[str, str]]], devices: list[dict[str, Any]], window_s: float
) -> dict[tuple[str, str], dict[str, Any]]:
    """(type, window start) -> count, sum, min, max of the readings, computed independently of the pipeline."""
    kinds = {d["device"]: d["type"] for d in devices}
    width = int(window_s * 1000)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for data, attrs in readings:
        r = json.loads(data)
        start = int(attrs["ts"]) // width * width
        key = (kinds.get(r["device"], "unknown"), example.iso(start * 1000))
        a = out.setdefault(key, {"count": 0, "sum": 0.0, "min": float("inf"), "max": float("-inf")})
        a["count"] += 1
        a["sum"] += r["value"]
        a["min"] = min(a["min"], r["value"])
        a["max"] = max(a["max"], r["value"])
    return out


def final_panes(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The pane with the highest index of every (type, window); checks the panes of each are distinct and
    accumulate (counts never shrink as the index grows)."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_key.setdefault((r["type"], r["window_start"]), []).append(r)
    final = {}
    for key, panes in by_key.items():
        panes.sort(key=lambda r: r["pane_index"])
        indexes = [r["pane_index"] for r in panes]
        assert len(indexes) == len(set(indexes)), f"{key}: a pane was committed twice: {indexes}"
        counts = [r["count"] for r in panes]
        assert counts == sorted(counts), f"{key}: accumulating panes shrank: {counts}"
        final[key] = panes[-1]
    return final


def assert_aggregates(rows: list[dict[str, Any]], expected: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The final panes equal the independent computation (sums to rounding)."""
    final = final_panes(rows)
    assert sorted(final) == sorted(expected)
    for key, want in expected.items():
        got = final[key]
        assert (got["count"], got["min"], got["max"]) == (want["count"], want["min"], want["max"]), key
        assert abs(got["sum"] - want["sum"]) < 1e-4, key


def expected_alerts(
    readings: list[tuple[bytes, dict[str, str]]], ids: list[str], devices: list[dict[str, Any]]
) -> list[str]:
    """Message ids of the readings above their device's limit (sorted)."""
    limits = {d["device"]: d["max_value"] for d in devices}
    out = []
    for (data, _), mid in zip(readings, ids):
        r = json.loads(data)
        limit = limits.get(r["device"])
        if limit is not None and r["value"] > limit:
            out.append(mid)
    return sorted(out)


def unique_by_id(messages: list[Any]) -> dict[str, Any]:
    """Messages de-duplicated by their `millstream_id` attribute, as a consumer would."""
    return {m.attributes["millstream_id"]: m for m in messages}
