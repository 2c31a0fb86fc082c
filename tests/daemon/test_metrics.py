"""The metrics of a real in-process job: rates and system lag from samples taken at injected times (no clock
is read by the assertions), dead letters, late data and user metrics in the Prometheus text."""

from __future__ import annotations

import anyio

import millstream as beam
from millstream.daemon.jobs_cli import parse_metrics, summarize
from millstream.daemon.metrics import (
    JobCollector,
    Sampler,
    attach_dead_letter_counters,
    make_registry,
    render,
)
from millstream.metrics import Metrics
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import window


class Held(beam.DoFn):
    """Holds every element until the test releases it."""

    release: anyio.Event

    async def process(self, x):
        await Held.release.wait()
        yield x


async def test_system_lag_is_the_age_of_the_oldest_unprocessed_message():
    Held.release = anyio.Event()
    p = beam.Pipeline(options=PipelineOptions(["--batch_size=5"]))
    p | "Create" >> beam.Create(range(20)) | "Hold" >> beam.ParDo(Held())
    job = await p.start()
    sampler = Sampler(job)
    sampler.sample(now=100.0)  # before the job ran: nothing sent yet
    await anyio.wait_all_tasks_blocked()
    assert job.plan.in_flight.count > 0, "batches wait for the held step"
    sampler.sample(now=101.0)
    sampler.sample(now=102.0)
    assert sampler.system_lag(now=108.5) == 7.5, "sent between the samples at 100 and 101: waiting since 101"
    rates = sampler.rates(now=104.0)
    assert rates["Create"] == 20 / 4.0  # read everything since the first sample
    Held.release.set()
    assert await job.wait() == "DONE"
    sampler.sample(now=110.0)
    assert sampler.system_lag(now=111.0) == 0.0


counted = Metrics.counter("test", "seen")
sizes = Metrics.distribution("test", "size")


def parse(x):
    if x == "bad":
        raise ValueError("not a number")
    counted.inc()
    sizes.update(len(x))
    return int(x)


async def test_dead_letters_late_data_and_user_metrics_in_the_exposition():
    p = beam.Pipeline(options=PipelineOptions(["--batch_size=2"]))
    good, _bad = (
        p
        | "Create" >> beam.Create(["1", "22", "bad", "333"])
        | "Parse" >> beam.Map(parse).with_exception_handling()
    )
    (
        good
        | "Stamp" >> beam.Map(lambda n: window.TimestampedValue(n, n))
        | "Window" >> beam.WindowInto(window.FixedWindows(10))
        | "Sum" >> beam.CombineGlobally(sum).without_defaults()
    )
    job = await p.start()
    dead = attach_dead_letter_counters(job)
    sampler = Sampler(job)
    registry = make_registry(JobCollector(job, sampler, dead))
    assert await job.wait() == "DONE"
    text = render(registry).decode()
    summary = summarize(parse_metrics(text))
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["Parse"]["elements_in"] == 4 and steps["Parse"]["dead_letters"] == 1
    assert steps["Create"]["elements_out"] == 4
    user = {(m["kind"], m["name"]): m for m in summary["user_metrics"]}
    assert user[("counter", "seen")]["value"] == 3 and user[("counter", "seen")]["step"] == "Parse"
    assert user[("distribution", "size")]["count"] == 3 and user[("distribution", "size")]["max"] == 3
    assert summary["output_watermark"] == float("inf") and summary["data_watermark_age_s"] == 0.0
    assert f'millstream_job_info{{job_id="{job.job_id}",job_name="{job.name}",state="DONE"}} 1.0' in text
    assert "process_resident_memory_bytes" in text


async def test_late_data_dropped_is_counted_per_step():
    from millstream.options.pipeline_options import StandardOptions
    from millstream.testing.test_stream import TestStream

    stream = (
        TestStream()
        .add_elements([window.TimestampedValue(("k", 1), 1)])
        .advance_watermark_to(20)
        .add_elements([window.TimestampedValue(("k", 2), 2), window.TimestampedValue(("k", 3), 25)])
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    p = beam.Pipeline(options=options)
    (
        p
        | "Events" >> stream
        | "Window" >> beam.WindowInto(window.FixedWindows(10))
        | "Sum" >> beam.CombinePerKey(sum)
    )
    job = await p.start()
    registry = make_registry(JobCollector(job, Sampler(job), attach_dead_letter_counters(job)))
    assert await job.wait() == "DONE"
    steps = {s["step"]: s for s in summarize(parse_metrics(render(registry).decode()))["steps"]}
    assert steps["Sum"]["dropped_late"] == 1 and steps["Sum"]["elements_in"] == 3
