"""The Dataflow job graph, built offline (``--dry_run`` with ``--no_auth``): its steps, its windowing
strategies, and that every pickled payload loads in a fresh interpreter that has only what Dataflow workers get
(millstream and apache_beam installed), so no step pickles a reference to a module the workers would lack.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apache_beam")
pytest.importorskip(
    "apache_beam.runners.dataflow.internal.apiclient",
    reason="the DataflowRunner needs apache-beam[gcp] (in the dev extra)",
    exc_type=ImportError,  # a partial install (no google-cloud-dataflow-client) fails inside the import
)

from apache_beam.portability import common_urns, python_urns  # noqa: E402
from apache_beam.portability.api import beam_runner_api_pb2  # noqa: E402

import millstream as beam  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402
from millstream.transforms import trigger, window  # noqa: E402

from support.jobs import run_job, script_command  # noqa: E402
from support.loading import load_by_value  # noqa: E402

HERE = Path(__file__).resolve().parent
jobs = load_by_value(HERE / "pipelines.py", "_ms_prism_pipelines")

DATAFLOW = [
    "--runner=DataflowRunner",
    "--project=millstream-ci",
    "--region=us-central1",
    "--temp_location=gs://millstream-ci/tmp",
    "--staging_location=gs://millstream-ci/staging",
    "--job_name=millstream-dry-run",
    "--sdk_location=container",
    "--no_auth",
    "--dry_run=True",
]
PICKLED = {v for k, v in vars(python_urns).items() if k.startswith("PICKLED_")}


def build(p: Any) -> None:
    """A stateful DoFn with timers, and a triggered windowed sum with lateness."""
    jobs.stateful(p)
    (
        p
        | "Scores" >> beam.Create([("a", 1, 1.0), ("b", 2, 3.0), ("a", 3, 9.5)])
        | "StampScores" >> beam.Map(lambda e: window.TimestampedValue((e[0], e[1]), e[2]))
        | "Minute"
        >> beam.WindowInto(
            window.FixedWindows(60),
            trigger=trigger.AfterWatermark(early=trigger.AfterCount(2), late=trigger.AfterCount(1)),
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            allowed_lateness=window.Duration(seconds=30),
        )
        | "SumPerKey" >> beam.CombinePerKey(sum)
    )


def dry_run(builder: Any, *flags: str) -> beam_runner_api_pb2.Pipeline:
    p = beam.Pipeline(options=PipelineOptions([*DATAFLOW, *flags]))
    builder(p)
    result = p.run()
    assert result.wait_until_finish() == "DONE"
    proto: beam_runner_api_pb2.Pipeline = result.beam_result.job.proto_pipeline
    return proto


def pickled_payloads(proto: beam_runner_api_pb2.Pipeline) -> list[tuple[str, str, str]]:
    """Every Python-pickled FunctionSpec in the graph: (where, urn, base64 payload)."""
    found: list[tuple[str, str, str]] = []

    def walk(message: Any, where: str) -> None:
        if isinstance(message, beam_runner_api_pb2.FunctionSpec) and message.urn in PICKLED:
            found.append((where, message.urn, base64.b64encode(message.payload).decode()))
        for field, value in message.ListFields():
            if field.message_type is None:
                continue
            if field.is_repeated:
                items = value.items() if hasattr(value, "items") else enumerate(value)
                for key, item in items:
                    if not isinstance(item, (str, bytes)):
                        walk(item, f"{where}/{field.name}[{key}]")
            else:
                walk(value, f"{where}/{field.name}")
        # ParDo and Combine payloads are bytes holding more FunctionSpecs
        if isinstance(message, beam_runner_api_pb2.PTransform):
            for urn, kind in (
                (common_urns.primitives.PAR_DO.urn, beam_runner_api_pb2.ParDoPayload),
                (common_urns.composites.COMBINE_PER_KEY.urn, beam_runner_api_pb2.CombinePayload),
            ):
                if message.spec.urn == urn:
                    walk(kind.FromString(message.spec.payload), f"step '{message.unique_name}'")

    walk(proto, "pipeline")
    return found


def unloadable(payloads: list[tuple[str, str, str]], tmp_path: Path) -> list[dict[str, str]]:
    """The payloads a fresh interpreter with only installed packages cannot unpickle (a worker's view)."""
    path = tmp_path / "payloads.json"
    path.write_text(json.dumps(payloads))
    proc = run_job(
        script_command(str(HERE / "worker_unpickle.py"), str(path)),
        cwd=str(tmp_path),
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_dataflow_dry_run_builds_the_job_graph_offline(tmp_path):
    proto = dry_run(build)
    names = {t.unique_name for t in proto.components.transforms.values()}
    for label in ("Events", "Stamp", "Window", "Buffer", "Scores", "StampScores", "Minute", "SumPerKey"):
        assert label in names, f"{label} missing from {sorted(names)}"
    by_label = {t.unique_name: t for t in proto.components.transforms.values()}
    (buffer_step,) = [
        t
        for name, t in by_label.items()
        if name.startswith("Buffer") and t.spec.urn == common_urns.primitives.PAR_DO.urn
    ]
    buffer = beam_runner_api_pb2.ParDoPayload.FromString(buffer_step.spec.payload)
    assert set(buffer.state_specs) == {"buf", "seen"}
    assert set(buffer.timer_family_specs) == {"ts-flush"}  # Beam's name for the timer family of timer "flush"
    assert buffer.timer_family_specs["ts-flush"].time_domain == beam_runner_api_pb2.TimeDomain.EVENT_TIME

    def strategy_of(label: str) -> beam_runner_api_pb2.WindowingStrategy:
        out = next(iter(by_label[label].outputs.values()))
        ws_id = proto.components.pcollections[out].windowing_strategy_id
        return proto.components.windowing_strategies[ws_id]

    fixed10 = strategy_of("Window")
    assert fixed10.window_fn.urn == common_urns.fixed_windows.urn
    from apache_beam.portability.api import standard_window_fns_pb2

    assert (
        standard_window_fns_pb2.FixedWindowsPayload.FromString(fixed10.window_fn.payload).size.seconds == 10
    )
    minute = strategy_of("Minute")
    assert standard_window_fns_pb2.FixedWindowsPayload.FromString(minute.window_fn.payload).size.seconds == 60
    assert minute.accumulation_mode == beam_runner_api_pb2.AccumulationMode.ACCUMULATING
    assert minute.allowed_lateness == 30_000  # milliseconds
    assert minute.trigger.HasField("after_end_of_window")
    assert minute.trigger.after_end_of_window.early_firings.element_count.element_count == 2
    assert minute.trigger.after_end_of_window.late_firings.element_count.element_count == 1

    payloads = pickled_payloads(proto)
    assert any("Buffer" in where for where, _, _ in payloads), (
        "the stateful DoFn's pickled payload was not found"
    )
    assert unloadable(payloads, tmp_path) == []


def test_the_worker_check_catches_a_module_workers_lack(tmp_path, monkeypatch):
    """The check above can fail: a DoFn imported from a local module is pickled by reference to it."""
    (tmp_path / "ms_only_on_my_laptop.py").write_text("def double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import ms_only_on_my_laptop  # type: ignore[import-not-found]

    def local(p: Any) -> None:
        _ = p | "Nums" >> beam.Create([1, 2]) | "Double" >> beam.Map(ms_only_on_my_laptop.double)

    try:
        payloads = pickled_payloads(dry_run(local))
    finally:
        sys.modules.pop("ms_only_on_my_laptop", None)
    work = tmp_path / "worker"
    work.mkdir()
    failures = unloadable(payloads, work)
    assert [f["where"] for f in failures] and all("Double" in f["where"] for f in failures), failures
    assert "No module named 'ms_only_on_my_laptop'" in failures[0]["error"]


def test_dataflow_dry_run_has_the_pubsub_read_and_write_steps():
    from millstream.io.gcp.pubsub import ReadFromPubSub, WriteToPubSub

    subscription = "projects/millstream-ci/subscriptions/readings"
    topic = "projects/millstream-ci/topics/alerts"

    def pubsub(p: Any) -> None:
        readings = p | "Readings" >> ReadFromPubSub(
            subscription=subscription, with_attributes=True, timestamp_attribute="ts", id_label="uid"
        )
        _ = readings | "Alerts" >> WriteToPubSub(topic, with_attributes=True, timestamp_attribute="ts")

    proto = dry_run(pubsub, "--streaming")
    steps = list(proto.components.transforms.values())
    (read,) = [t for t in steps if t.spec.urn == common_urns.composites.PUBSUB_READ.urn]
    read_payload = beam_runner_api_pb2.PubSubReadPayload.FromString(read.spec.payload)
    assert read_payload.subscription == subscription and read_payload.with_attributes
    assert read_payload.timestamp_attribute == "ts" and read_payload.id_attribute == "uid"
    (write,) = [t for t in steps if t.spec.urn == common_urns.composites.PUBSUB_WRITE.urn]
    write_payload = beam_runner_api_pb2.PubSubWritePayload.FromString(write.spec.payload)
    # the event-time attribute is set by millstream's ToPubsubMessage step; Dataflow adds the id attribute
    assert write_payload.topic == topic and write_payload.id_attribute == "millstream_id"
