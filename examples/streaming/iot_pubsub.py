"""IoT sensor readings from Pub/Sub: per device type and minute, count/mean/min/max with early panes, enriched from
a device-metadata file; readings above their device's limit are published as alerts to another Pub/Sub topic.

    millstream run examples/streaming/iot_pubsub.py \\
        --subscription projects/P/subscriptions/readings --devices devices.jsonl \\
        --alerts_topic projects/P/topics/alerts --output out/iot

Against the local pstest server or Google's emulator (``PUBSUB_EMULATOR_HOST`` set) the ``setup`` and ``publish``
commands create the topics, subscriptions and a devices file, and publish random readings; ``alerts`` prints the
alerts (de-duplicated by their id attribute). docs/pubsub.md walks through it.

**Input.** Each message is one reading, JSON ``{"device": "dev-007", "value": 21.5}``, with its event time in the
attribute ``ts`` (RFC 3339, or milliseconds since the epoch; ``--timestamp_attribute ""`` uses the publish time).
A message whose attribute is missing or bad, and one whose payload is not such JSON (the ``Parse`` step's
exception handling), go to ``OUTPUT/dead-letters-*.json`` with the reason. Messages are de-duplicated by message
id and acknowledged only after the checkpoint covering them is durable (`millstream.io.pubsub`).

**Enrichment.** ``--devices`` is a JSON-lines file ``{"device", "type", "site", "max_value"}`` read as a side input
(a dict by device); a reading of an unknown device has type ``"unknown"`` and no limit. The file is a lookup
table, not a stream: `DeviceFile` reads it whole at every start of the job and records no position in the
checkpoint, so a restarted job has its side input again (and picks up edits to the file). (A checkpointed file
source, such as ``ReadFromJson``, is finished after the first run and would give a restarted job an empty side
input: the runtime does not keep side-input contents in checkpoints yet.)

**Aggregates.** Fixed windows of ``--window`` seconds (default 60) per device type; panes fire early every
``--early_every`` seconds of processing time, on time when the watermark (latest event time minus
``--max_out_of_orderness``) passes the window's end, and late for each late reading within
``--allowed_lateness``. Panes accumulate, so the pane with the highest ``pane_index`` of a (type, window) is the
final one. Rows go to ``OUTPUT/aggregates-*.json``, exactly once (files committed per checkpoint).

**Alerts.** A reading above its device's ``max_value`` is published to ``--alerts_topic`` as JSON with the
reading's event time in the ``ts`` attribute. Publishing happens after each checkpoint commits; a commit repeated
after a crash republishes with the same ``millstream_id`` attribute, so consumers de-duplicating by it see each
alert once.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

import millstream as beam
from millstream.io import Read, Source, SourceBatch, SourceReader, WriteToJson
from millstream.io.pubsub import ReadFromPubSub, WriteToPubSub
from millstream.options.pipeline_options import PipelineOptions
from millstream.pvalue import AsDict
from millstream.transforms import trigger, window

#: Device types of the demo fleet and the limit above which a reading is an alert.
DEMO_TYPES = {"thermostat": 30.0, "humidity": 80.0, "pressure": 1050.0}


@dataclass
class Config:
    """What the pipeline reads and writes, and its windowing."""

    devices: str
    output: str
    subscription: str | None = None
    topic: str | None = None
    alerts_topic: str | None = None
    window: float = 60.0
    early_every: float = 10.0
    allowed_lateness: float = 600.0
    max_out_of_orderness: float = 10.0
    timestamp_attribute: str | None = "ts"


# -- steps ----------------------------------------------------------------------------------------------------


class DeviceFile(Source):
    """The devices file as a bounded source read whole at every start (see the module docstring)."""

    is_bounded = True

    def __init__(self, path: str) -> None:
        self.path = path

    def validate(self) -> None:
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"devices file {self.path} does not exist")

    def create_reader(self, options: Any) -> SourceReader:
        return _DeviceFileReader(self.path)

    def display_name(self) -> str:
        return f"Devices({self.path})"


class _DeviceFileReader(SourceReader):
    """Reads the devices file in one batch; keeps no position, so every start reads it again."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.done = False

    async def read(self) -> SourceBatch | None:
        if self.done:
            return None
        self.done = True
        with open(self.path, "rb") as f:
            devices = [orjson.loads(line) for line in f if line.strip()]
        return SourceBatch("devices", devices, finished=True)

    def positions(self) -> dict[str, Any]:
        return {}


class BadReading(ValueError):
    """A message whose payload is not a reading."""


def parse_reading(msg: Any) -> dict[str, Any]:
    """A message's reading: ``{"device", "value", "message_id"}``; raises BadReading for anything else."""
    try:
        obj = orjson.loads(msg.data)
    except orjson.JSONDecodeError as e:
        raise BadReading(f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise BadReading(f"not a JSON object: {type(obj).__name__}")
    device, value = obj.get("device"), obj.get("value")
    if not isinstance(device, str) or not device:
        raise BadReading("no device")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadReading(f"value is not a number: {value!r}")
    return {"device": device, "value": float(value), "message_id": msg.message_id}


def enrich(reading: dict[str, Any], devices: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The reading with its device's type, site and limit (type "unknown" for a device not in the file)."""
    meta = devices.get(reading["device"])
    if meta is None:
        return {**reading, "type": "unknown", "site": None, "max_value": None}
    return {
        **reading,
        "type": meta.get("type", "unknown"),
        "site": meta.get("site"),
        "max_value": meta.get("max_value"),
    }


def iso(micros: int) -> str:
    """Microseconds since the epoch as RFC 3339 (UTC, milliseconds)."""
    dt = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(microseconds=micros)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert(reading: dict[str, Any], timestamp: Any = beam.DoFn.TimestampParam) -> list[bytes]:
    """An alert (JSON bytes) for a reading above its device's limit, else nothing."""
    limit = reading["max_value"]
    if limit is None or reading["value"] <= limit:
        return []
    return [orjson.dumps({**reading, "event_time": iso(timestamp.micros)})]


class ReadingStats(beam.CombineFn):
    """Count, sum, min and max of the readings of one (type, window); output with the mean."""

    def create_accumulator(self, *args: Any, **kwargs: Any) -> list[float]:
        return [0, 0.0, float("inf"), float("-inf")]

    def add_input(self, accumulator: list[float], element: float, *args: Any, **kwargs: Any) -> list[float]:
        accumulator[0] += 1
        accumulator[1] += element
        if element < accumulator[2]:
            accumulator[2] = element
        if element > accumulator[3]:
            accumulator[3] = element
        return accumulator

    def merge_accumulators(
        self, accumulators: Iterable[list[float]], *args: Any, **kwargs: Any
    ) -> list[float]:
        out = self.create_accumulator()
        for n, s, lo, hi in accumulators:
            out[0] += n
            out[1] += s
            out[2] = min(out[2], lo)
            out[3] = max(out[3], hi)
        return out

    def extract_output(self, accumulator: list[float], *args: Any, **kwargs: Any) -> Any:
        n, s, lo, hi = accumulator
        return {
            "count": int(n),
            "sum": round(s, 6),
            "mean": round(s / n, 6) if n else None,
            "min": lo if n else None,
            "max": hi if n else None,
        }


def to_row(
    kv: tuple[str, dict[str, Any]], w: Any = beam.DoFn.WindowParam, pane: Any = beam.DoFn.PaneInfoParam
) -> dict[str, Any]:
    """One output row: the type, the window, its statistics and which pane this is."""
    kind, stats = kv
    return {
        "type": kind,
        "window_start": iso(w.start.micros),
        "window_end": iso(w.end.micros),
        **stats,
        "pane": pane.timing.name,
        "pane_index": pane.index,
        "is_last": pane.is_last,
    }


def time_dead_letter(bad: dict[str, Any]) -> dict[str, Any]:
    """A message the source could not give an event time, as JSON."""
    return {
        "step": "ReadReadings",
        "message_id": bad.get("message_id"),
        "data": bad["raw"].decode("utf-8", "replace"),
        "attributes": bad.get("attributes"),
        "reason": bad["reason"],
    }


def parse_dead_letter(bad: tuple[Any, Any]) -> dict[str, Any]:
    """A message the Parse step rejected, as JSON."""
    msg, error = bad
    return {
        "step": "Parse",
        "message_id": msg.message_id,
        "data": msg.data.decode("utf-8", "replace"),
        "attributes": msg.attributes,
        "reason": f"{error[0].__name__}: {error[1]}",
    }


def build(p: beam.Pipeline, cfg: Config) -> dict[str, Any]:
    """The pipeline; returns its main PCollections by name."""
    messages, bad_time = p | "ReadReadings" >> ReadFromPubSub(
        topic=cfg.topic,
        subscription=cfg.subscription,
        with_attributes=True,
        timestamp_attribute=cfg.timestamp_attribute or None,
        max_out_of_orderness=cfg.max_out_of_orderness,
        with_dead_letters=True,
    )
    readings, bad_json = messages | "Parse" >> beam.Map(parse_reading).with_exception_handling()
    devices = (
        p
        | "ReadDevices" >> Read(DeviceFile(cfg.devices))
        | "KeyDevices" >> beam.Map(lambda d: (d["device"], d))
    )
    enriched = readings | "Enrich" >> beam.Map(enrich, devices=AsDict(devices))
    aggregates = (
        enriched
        | "ByType" >> beam.Map(lambda r: (r["type"], r["value"]))
        | "Minutes"
        >> beam.WindowInto(
            window.FixedWindows(cfg.window),
            trigger=trigger.AfterWatermark(
                early=trigger.AfterProcessingTime(cfg.early_every), late=trigger.AfterCount(1)
            ),
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            allowed_lateness=cfg.allowed_lateness,
        )
        | "Stats" >> beam.CombinePerKey(ReadingStats())
        | "Rows" >> beam.Map(to_row)
    )
    aggregates | "WriteAggregates" >> WriteToJson(os.path.join(cfg.output, "aggregates"))
    alerts = enriched | "Alerts" >> beam.FlatMap(alert)
    if cfg.alerts_topic:
        alerts | "PublishAlerts" >> WriteToPubSub(cfg.alerts_topic, timestamp_attribute="ts")
    dead = (
        bad_time | "TimeDeadLetters" >> beam.Map(time_dead_letter),
        bad_json | "ParseDeadLetters" >> beam.Map(parse_dead_letter),
    ) | "DeadLetters" >> beam.Flatten()
    dead | "WriteDeadLetters" >> WriteToJson(os.path.join(cfg.output, "dead-letters"))
    return {"aggregates": aggregates, "alerts": alerts, "dead_letters": dead, "enriched": enriched}


# -- the demo around it ---------------------------------------------------------------------------------------


def setup_demo(
    project: str, devices_path: str, n_devices: int = 12, ack_deadline: int = 10
) -> dict[str, str]:
    """Create the demo's topics and subscriptions (if missing) and write a devices file; returns the paths."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    names = {
        "readings_topic": f"projects/{project}/topics/readings",
        "readings_subscription": f"projects/{project}/subscriptions/readings",
        "alerts_topic": f"projects/{project}/topics/alerts",
        "alerts_subscription": f"projects/{project}/subscriptions/alerts",
    }
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    for topic, sub in (
        (names["readings_topic"], names["readings_subscription"]),
        (names["alerts_topic"], names["alerts_subscription"]),
    ):
        try:
            publisher.create_topic(request={"name": topic}, timeout=30)
        except gexc.AlreadyExists:
            pass
        try:
            subscriber.create_subscription(
                request={"name": sub, "topic": topic, "ack_deadline_seconds": ack_deadline}, timeout=30
            )
        except gexc.AlreadyExists:
            pass
    write_devices(devices_path, n_devices)
    subscriber.close()
    publisher.stop()
    return names


def write_devices(path: str, n_devices: int = 12) -> list[dict[str, Any]]:
    """The demo fleet's metadata file (JSON lines): device i has the i-th type of `DEMO_TYPES`, cyclically."""
    kinds = list(DEMO_TYPES)
    devices = [
        {
            "device": f"dev-{i:03d}",
            "type": kinds[i % len(kinds)],
            "site": f"site-{i % 4}",
            "max_value": DEMO_TYPES[kinds[i % len(kinds)]],
        }
        for i in range(n_devices)
    ]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        for d in devices:
            f.write(json.dumps(d) + "\n")
    return devices


def demo_readings(
    count: int, n_devices: int = 12, seed: int = 0, start_ms: int | None = None, spacing_ms: int = 100
) -> list[tuple[bytes, dict[str, str]]]:
    """`count` random readings (data, attributes) of the demo fleet, `spacing_ms` apart in event time."""
    rng = random.Random(seed)
    start = int(time.time() * 1000) if start_ms is None else start_ms
    kinds = list(DEMO_TYPES)
    out = []
    for i in range(count):
        d = rng.randrange(n_devices)
        limit = DEMO_TYPES[kinds[d % len(kinds)]]
        value = round(rng.uniform(0.5, 1.1) * limit, 2)  # about one in six readings is above its limit
        out.append(
            (orjson.dumps({"device": f"dev-{d:03d}", "value": value}), {"ts": str(start + i * spacing_ms)})
        )
    return out


def publish_demo(topic: str, count: int, rate: float, seed: int = 0) -> None:
    """Publish `count` demo readings at about `rate` per second (event time: now, advancing with them)."""
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    started = time.monotonic()
    futures = []
    for i, (data, attrs) in enumerate(demo_readings(count, seed=seed, spacing_ms=max(1, round(1000 / rate)))):
        futures.append(publisher.publish(topic, data, **attrs))
        delay = started + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for fut in futures:
        fut.result(timeout=60)
    publisher.stop()
    print(f"published {count} readings to {topic}")


def print_alerts(subscription: str, wait: float) -> None:
    """Pull alerts for `wait` seconds, acknowledge them, print each `millstream_id` once."""
    from google.cloud import pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    seen: set[str] = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        resp = subscriber.pull(
            request={"subscription": subscription, "max_messages": 100}, timeout=max(1.0, wait)
        )
        for m in resp.received_messages:
            key = m.message.attributes.get("millstream_id", m.message.message_id)
            if key not in seen:
                seen.add(key)
                print(m.message.data.decode())
        if resp.received_messages:
            subscriber.acknowledge(
                request={"subscription": subscription, "ack_ids": [m.ack_id for m in resp.received_messages]}
            )
    subscriber.close()


COMMANDS = ("run", "setup", "publish", "alerts")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The command (the first argument if it is one of `COMMANDS`, else "run"), the example's own flags, and
    everything else as pipeline options."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    parser = argparse.ArgumentParser(
        usage="iot_pubsub.py [run|setup|publish|alerts] [flags] [pipeline flags]",
        description="run the pipeline (default), or the demo's setup / publish / alerts",
    )
    parser.add_argument("--subscription", default=None, help="readings: projects/P/subscriptions/S")
    parser.add_argument(
        "--topic", default=None, help="readings topic (a subscription is created for the job)"
    )
    parser.add_argument("--devices", default="out/iot/devices.jsonl", help="device metadata, JSON lines")
    parser.add_argument("--output", default="out/iot", help="output folder")
    parser.add_argument("--alerts_topic", default=None, help="where alerts go: projects/P/topics/T")
    parser.add_argument("--window", type=float, default=60.0, help="window size, seconds")
    parser.add_argument("--early_every", type=float, default=10.0, help="seconds between early panes")
    parser.add_argument("--allowed_lateness", type=float, default=600.0, help="seconds")
    parser.add_argument("--max_out_of_orderness", type=float, default=10.0, help="watermark bound, seconds")
    parser.add_argument("--timestamp_attribute", default="ts", help='event-time attribute ("": publish time)')
    parser.add_argument("--project", default="millstream-demo", help="setup/publish/alerts: the project")
    parser.add_argument("--count", type=int, default=1000, help="publish: how many readings")
    parser.add_argument("--rate", type=float, default=100.0, help="publish: readings per second")
    parser.add_argument("--wait", type=float, default=5.0, help="alerts: seconds to listen")
    args, rest = parser.parse_known_args(argv)
    args.command = command
    return args, rest


def run(argv: list[str] | None = None) -> None:
    """Run the pipeline, or one of the demo's commands."""
    args, pipeline_args = parse_args(argv)
    if args.command == "setup":
        names = setup_demo(args.project, args.devices)
        print("\n".join(f"{k}: {v}" for k, v in names.items()) + f"\ndevices: {args.devices}")
        return
    if args.command == "publish":
        publish_demo(args.topic or f"projects/{args.project}/topics/readings", args.count, args.rate)
        return
    if args.command == "alerts":
        print_alerts(args.subscription or f"projects/{args.project}/subscriptions/alerts", args.wait)
        return
    if args.subscription is None and args.topic is None:
        args.subscription = f"projects/{args.project}/subscriptions/readings"
    cfg = Config(
        devices=args.devices,
        output=args.output,
        subscription=args.subscription,
        topic=args.topic,
        alerts_topic=args.alerts_topic,
        window=args.window,
        early_every=args.early_every,
        allowed_lateness=args.allowed_lateness,
        max_out_of_orderness=args.max_out_of_orderness,
        timestamp_attribute=args.timestamp_attribute or None,
    )
    if "--streaming" not in pipeline_args:
        pipeline_args.append("--streaming")
    if not any(a == "--job_name" or a.startswith("--job_name=") for a in pipeline_args):
        pipeline_args.append("--job_name=iot_pubsub")
    with beam.Pipeline(options=PipelineOptions(pipeline_args)) as p:
        build(p, cfg)


if __name__ == "__main__":
    run(sys.argv[1:])
