"""The async library API: start a pipeline inside a running loop, tap a PCollection, drain, cancel."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import anyio
import pytest

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions


def opts(*flags: str) -> PipelineOptions:
    return PipelineOptions(list(flags))


async def test_start_returns_at_once_and_tap_streams_every_element():
    p = beam.Pipeline(options=opts("--batch_size=10", "--job_name=squares"))
    squares = p | beam.Create(range(100)) | beam.Map(lambda x: x * x)
    job = await p.start()
    assert job.state in ("STARTING", "RUNNING")
    seen = [x async for x in job.tap(squares)]
    assert await job.wait() == "DONE"
    assert sorted(seen) == [x * x for x in range(100)]
    status = job.status()
    assert status["state"] == "DONE" and status["name"] == "squares"
    step = next(s for s in status["steps"] if s["step"].startswith("Map"))
    assert step["elements_in"] == 100 and step["elements_out"] == 100


class Blocked(beam.DoFn):
    release = None

    async def process(self, x):
        await Blocked.release.wait()
        yield x


async def test_cancel_ends_a_stuck_job_cleanly():
    Blocked.release = anyio.Event()
    p = beam.Pipeline()
    p | beam.Create([1, 2, 3]) | beam.ParDo(Blocked())
    job = await p.start()
    await anyio.wait_all_tasks_blocked()
    assert job.state == "RUNNING"
    assert await job.cancel() == "CANCELLED"
    assert [t for t in asyncio.all_tasks() if "millstream" in t.get_name() and not t.done()] == []


async def test_cancelling_the_waiting_task_cancels_the_job():
    Blocked.release = anyio.Event()
    p = beam.Pipeline()
    p | beam.Create([1]) | beam.ParDo(Blocked())
    job = await p.start()
    waiter = asyncio.get_running_loop().create_task(job.wait())
    await anyio.wait_all_tasks_blocked()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert job.state == "CANCELLED"


async def test_drain_stops_reading_and_fires_what_was_read():
    p = beam.Pipeline(options=opts("--batch_size=5"))
    nums = p | beam.Create(range(10_000))
    total = nums | beam.CombineGlobally(sum)
    job = await p.start()
    totals = job.tap(total)
    seen = []
    async for x in job.tap(nums):
        seen.append(x)
        if len(seen) == 1:
            drained = asyncio.get_running_loop().create_task(job.drain())
    results = [x async for x in totals]
    assert await drained == "DONE"
    read = next(s for s in job.status()["steps"] if s["step"] == "Create")["elements_out"]
    assert 0 < read < 10_000
    assert sorted(seen) == list(range(read))
    assert results == [sum(range(read))]


async def test_failure_is_raised_from_wait():
    p = beam.Pipeline()
    p | beam.Create([1]) | "Boom" >> beam.Map(lambda x: 1 / 0)
    job = await p.start()
    with pytest.raises(ZeroDivisionError, match="while running 'Boom'"):
        await job.wait()
    assert job.state == "FAILED"


def test_the_job_name_defaults_to_the_main_script_or_its_package(monkeypatch: Any) -> None:
    from millstream.engine.model.options import job_name

    monkeypatch.setattr(sys, "argv", ["/srv/jobs/clicks_hourly.py"])
    assert job_name(PipelineOptions()) == "clicks_hourly"
    monkeypatch.setattr(sys, "argv", ["/srv/jobs/clicks/__main__.py"])  # python -m clicks
    assert job_name(PipelineOptions()) == "clicks"
    monkeypatch.setattr(sys, "argv", ["-c"])
    assert job_name(PipelineOptions()) == "millstream"
    assert job_name(PipelineOptions(["--job_name=nightly"])) == "nightly"
