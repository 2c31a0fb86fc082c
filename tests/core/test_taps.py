"""`Job.tap`: closing a tap only detaches it, several taps, slow taps (both full-buffer policies), late taps."""

from __future__ import annotations

import glob
from typing import Any

import anyio
import pytest

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path, monkeypatch):
    """Each test's jobs keep their default state dir (./.millstream/<job>) under its own tmp_path."""
    monkeypatch.chdir(tmp_path)


def opts(*flags: str) -> PipelineOptions:
    return PipelineOptions(["--no_progress", *flags])


def committed_lines(prefix: str) -> list[str]:
    lines: list[str] = []
    for path in glob.glob(f"{prefix}*"):
        with open(path) as f:
            lines.extend(f.read().splitlines())
    return lines


async def test_breaking_out_of_a_tap_detaches_it_and_the_job_runs_on(tmp_path: Any) -> None:
    out = str(tmp_path / "out" / "nums")
    p = beam.Pipeline(options=opts("--batch_size=10"))
    nums = p | beam.Create(range(1000))
    nums | beam.io.WriteToText(out)
    job = await p.start()
    seen = []
    with anyio.fail_after(30):
        async for x in job.tap(nums, max_buffered_batches=1):
            seen.append(x)
            if len(seen) == 3:
                break
        assert await job.wait() == "DONE"
    assert seen == [0, 1, 2]
    assert sorted(int(line) for line in committed_lines(out)) == list(range(1000))


async def test_a_drain_after_breaking_out_of_a_tap_commits_what_was_read(tmp_path: Any) -> None:
    out = str(tmp_path / "out" / "nums")
    p = beam.Pipeline(options=opts("--batch_size=10"))
    nums = p | beam.Create(range(100_000))
    nums | beam.io.WriteToText(out)
    job = await p.start()
    with anyio.fail_after(30):
        async for _ in job.tap(nums, max_buffered_batches=1):
            break
        assert await job.drain() == "DONE"
    read = next(s for s in job.status()["steps"] if s["step"] == "Create")["elements_out"]
    assert read > 0
    assert sorted(int(line) for line in committed_lines(out)) == list(range(read))


async def test_closing_one_of_several_taps_leaves_the_others_complete() -> None:
    p = beam.Pipeline(options=opts("--batch_size=7"))
    nums = p | beam.Create(range(500))
    doubled = nums | beam.Map(lambda x: 2 * x)
    job = await p.start()
    early = job.tap(nums, max_buffered_batches=1)
    full_nums = job.tap(nums)
    full_doubled = job.tap(doubled)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            results: dict[str, list[int]] = {}

            async def collect(name: str, tap: Any) -> None:
                results[name] = [x async for x in tap]

            tg.start_soon(collect, "nums", full_nums)
            tg.start_soon(collect, "doubled", full_doubled)
            first = await early.__anext__()
            await early.aclose()
        assert await job.wait() == "DONE"
    assert first == 0
    assert sorted(results["nums"]) == list(range(500))
    assert sorted(results["doubled"]) == [2 * x for x in range(500)]


async def test_a_slow_tap_that_waits_holds_the_job_back_and_loses_nothing() -> None:
    p = beam.Pipeline(options=opts("--batch_size=10", "--channel_capacity=1"))
    nums = p | beam.Create(range(10_000))
    job = await p.start()
    tap = job.tap(nums, max_buffered_batches=2)
    await anyio.wait_all_tasks_blocked()
    read = next(s for s in job.status()["steps"] if s["step"] == "Create")["elements_out"]
    # bounded buffering: the source is held back by the unread tap, a few batches ahead at most
    assert 0 < read <= 100
    assert job.state == "RUNNING"
    with anyio.fail_after(30):
        seen = [x async for x in tap]
        assert await job.wait() == "DONE"
    assert seen == list(range(10_000))


async def test_a_slow_tap_that_drops_never_holds_the_job_back_and_counts_what_it_dropped() -> None:
    p = beam.Pipeline(options=opts("--batch_size=10"))
    nums = p | beam.Create(range(10_000))
    job = await p.start()
    tap = job.tap(nums, max_buffered_batches=3, on_full="drop")
    with anyio.fail_after(30):
        assert await job.wait() == "DONE"
        seen = [x async for x in tap]
    assert seen == list(range(30))  # the first three batches filled the buffer; later ones were dropped
    assert tap.dropped == 10_000 - 30


def test_a_bad_full_buffer_policy_is_named() -> None:
    p = beam.Pipeline(options=opts())
    nums = p | beam.Create([1])

    async def main() -> None:
        job = await p.start()
        with pytest.raises(ValueError, match="on_full='block'.*'wait' or 'drop'"):
            job.tap(nums, on_full="block")
        await job.wait()

    anyio.run(main)


class Gate(beam.DoFn):
    """Holds the element `at` until `release` is set."""

    release: anyio.Event | None = None

    def __init__(self, at: int) -> None:
        self.at = at

    async def process(self, x: int) -> Any:
        if x == self.at:
            assert Gate.release is not None
            await Gate.release.wait()
        yield x


async def test_a_tap_opened_after_the_job_started_sees_what_comes_after() -> None:
    Gate.release = anyio.Event()
    p = beam.Pipeline(options=opts("--batch_size=1"))
    gated = p | beam.Create(range(100)) | beam.ParDo(Gate(at=40))
    job = await p.start()
    await anyio.wait_all_tasks_blocked()
    assert job.state == "RUNNING"
    tap = job.tap(gated)
    Gate.release.set()
    with anyio.fail_after(30):
        seen = [x async for x in tap]
        assert await job.wait() == "DONE"
    assert seen and seen[-1] == 99
    assert set(seen) <= set(range(40, 100))
    late = job.tap(gated)  # after the end: empty, and it ends at once
    with anyio.fail_after(5):
        assert [x async for x in late] == []


async def test_a_tap_ends_when_the_job_is_cancelled() -> None:
    Gate.release = anyio.Event()
    p = beam.Pipeline(options=opts("--batch_size=1"))
    gated = p | beam.Create(range(100)) | beam.ParDo(Gate(at=5))
    job = await p.start()
    tap = job.tap(gated)
    await anyio.wait_all_tasks_blocked()
    assert await job.cancel() == "CANCELLED"
    with anyio.fail_after(5):
        seen = [x async for x in tap]
    assert seen == list(range(5))


async def test_a_tap_used_as_a_context_manager_detaches_on_exit() -> None:
    p = beam.Pipeline(options=opts("--batch_size=5"))
    nums = p | beam.Create(range(200))
    job = await p.start()
    with anyio.fail_after(30):
        async with job.tap(nums, max_buffered_batches=1) as tap:
            assert await tap.__anext__() == 0
        assert await job.wait() == "DONE"
