"""The console's backlog per split (a real multi-file job: unread bytes per file go down to 0, asked for
through ``GET /console/source``) and its latest late-dropped records per step with their reasons (bounded)."""

from __future__ import annotations

import os

import anyio

import millstream as beam
from millstream.daemon.console.model import ConsoleModel, attach_dead_letter_samples
from millstream.daemon.metrics import JobCollector, Sampler, attach_dead_letter_counters
from millstream.engine.runtime.windowing.reduce_fn_runner import LATE_SAMPLES_KEPT
from millstream.options.pipeline_options import PipelineOptions, StandardOptions
from millstream.transforms import window

import support.daemon as h


def _model(job: object) -> ConsoleModel:
    return ConsoleModel(
        job,
        JobCollector(job, Sampler(job), attach_dead_letter_counters(job)),
        attach_dead_letter_samples(job),
    )


async def test_a_file_job_shows_unread_bytes_per_file_going_down(tmp_path):
    sizes = {}
    for name in ("a", "b", "c"):
        path = tmp_path / f"{name}.txt"
        path.write_text("".join(f"{name} line {i:05d}\n" for i in range(2000)))
        sizes[str(path)] = os.path.getsize(path)
    p = beam.Pipeline(options=PipelineOptions(["--batch_size=50", f"--state_dir={tmp_path / 'state'}"]))
    p | "Read" >> beam.io.ReadFromText(str(tmp_path / "*.txt")) | "Len" >> beam.Map(len)
    job = await p.start()
    model = _model(job)
    snapshots = []
    with anyio.fail_after(60):
        while job.state not in ("DONE", "FAILED"):
            doc = model.source_splits("Read/Read")
            assert doc is not None
            if doc["splits"] is None:  # the driver has not opened its reader yet
                assert "not open" in doc["note"] and not snapshots
                await anyio.sleep(0)
                continue
            snapshots.append({s["split"]: s["backlog"] for s in doc["splits"]})
            await anyio.sleep(0)
    assert await job.wait() == "DONE"
    final = model.source_splits("Read/Read")
    assert final is not None
    assert {s["split"]: s["backlog"] for s in final["splits"]} == dict.fromkeys(sizes, 0)
    first, *later = sorted(sizes)
    assert all(snapshots[0][f] == sizes[f] for f in later), "at first, the later files are whole"
    for split in sizes:  # per file, the unread bytes never grow
        series = [snap[split] for snap in snapshots]
        assert series == sorted(series, reverse=True), split
    # seen part-way: one file partly read while a later one is still whole
    assert any(0 < snap[split] < sizes[split] for snap in snapshots for split in sizes)
    assert any(snap[first] == 0 and snap[later[-1]] == sizes[later[-1]] for snap in snapshots)
    assert model.source_splits("Len") is None, "not a source"


def test_the_source_route_needs_a_source_step(daemons):
    d = daemons(name="console-splits")
    h.write_events(d.input, 0, 10)
    d.start()
    d.wait_processed(10)
    answer = h.http(d.url + "/console/source?step=Read", token=d.admin_token)
    assert answer.status == 200
    doc = answer.json()
    assert doc["step"] == "Read" and (doc["splits"] is None or isinstance(doc["splits"], list))
    assert h.http(d.url + "/console/source?step=Read").status == 401
    assert h.http(d.url + "/console/source", token=d.admin_token).status == 400
    missing = h.http(d.url + "/console/source?step=Nope", token=d.admin_token)
    assert missing.status == 404 and "Nope" in missing.json()["error"]


async def test_the_latest_late_records_are_kept_per_step_with_their_reasons(tmp_path):
    from millstream.testing.test_stream import TestStream

    late = [window.TimestampedValue(("k", 100 + i), 2) for i in range(3 * LATE_SAMPLES_KEPT)]
    stream = (
        TestStream()
        .add_elements([window.TimestampedValue(("k", 1), 1)])
        .advance_watermark_to(20)
        .add_elements([*late, window.TimestampedValue(("k", 3), 25)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions([f"--state_dir={tmp_path / 'state'}"])
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    (
        p
        | "Events" >> stream
        | "Window" >> beam.WindowInto(window.FixedWindows(10))
        | "Sum" >> beam.CombinePerKey(sum)
    )
    job = await p.start()
    model = _model(job)
    assert await job.wait() == "DONE"
    doc = model.document()
    steps = {s["step"]: s for s in doc["steps"]}
    assert steps["Sum"]["dropped_late"] == len(late)
    kept = doc["late_data"]["Sum"]
    assert len(kept) == LATE_SAMPLES_KEPT, "a bounded ring, whatever was dropped"
    assert kept[0]["record"] == repr(("k", 100 + len(late) - 1)), "newest first"
    assert [r["record"] for r in kept] == [repr(("k", 100 + i)) for i in reversed(range(len(late)))][
        :LATE_SAMPLES_KEPT
    ]
    first = kept[0]
    assert first["reason"] == "beyond allowed lateness"
    assert first["window"] == "[1970-01-01T00:00:00Z, 1970-01-01T00:00:10Z)"
    assert first["watermark"] == 20.0 and first["timestamp"] == 2.0
    assert list(doc["late_data"]) == ["Sum"], "only steps that dropped something"


async def test_a_late_records_repr_is_truncated(tmp_path):
    from millstream.testing.test_stream import TestStream

    stream = (
        TestStream()
        .advance_watermark_to(20)
        .add_elements([window.TimestampedValue(("k", "x" * 10_000), 2)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions([f"--state_dir={tmp_path / 'state'}"])
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    (
        p
        | "Events" >> stream
        | "Window" >> beam.WindowInto(window.FixedWindows(10))
        | "Group" >> beam.GroupByKey()
    )
    job = await p.start()
    model = _model(job)
    assert await job.wait() == "DONE"
    record = model.document()["late_data"]["Group"][0]["record"]
    assert len(record) <= 310 and record.startswith("('k', 'xxx")
