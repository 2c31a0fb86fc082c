"""Tests for the injected clock: SystemClock basics and FakeClock's deterministic sleepers."""

from __future__ import annotations

import time

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from millstream.engine.runtime.exec.clock import Clock, FakeClock, SystemClock


def test_clocks_satisfy_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FakeClock(), Clock)


def test_system_clock_reads_wall_and_monotonic_time() -> None:
    clock = SystemClock()
    before = time.time_ns() // 1000
    now = clock.now_us()
    after = time.time_ns() // 1000
    assert isinstance(now, int)
    assert before <= now <= after
    m1 = clock.monotonic_us()
    m2 = clock.monotonic_us()
    assert isinstance(m1, int) and m1 <= m2


async def test_system_clock_sleep_until_reaches_deadline() -> None:
    clock = SystemClock()
    await clock.sleep_until(clock.now_us() - 1_000_000)  # in the past: returns at once
    target = clock.now_us() + 2_000
    await clock.sleep_until(target)
    assert clock.now_us() >= target


def test_fake_clock_moves_only_forward() -> None:
    clock = FakeClock(start_us=1_000)
    assert clock.now_us() == 1_000 and clock.monotonic_us() == 0
    clock.advance(250)
    assert clock.now_us() == 1_250 and clock.monotonic_us() == 250
    clock.set(2_000)
    assert clock.now_us() == 2_000 and clock.monotonic_us() == 1_000
    clock.set(2_000)  # standing still is allowed
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(1_999)
    assert clock.now_us() == 2_000


async def test_fake_clock_wakes_exactly_due_sleepers_in_deadline_order() -> None:
    clock = FakeClock()
    woken: list[int] = []

    async def sleeper(deadline: int) -> None:
        await clock.sleep_until(deadline)
        woken.append(deadline)

    async with anyio.create_task_group() as tg:
        for deadline in (30, 10, 20, 10, 50):
            tg.start_soon(sleeper, deadline)
        await anyio.wait_all_tasks_blocked()
        assert clock.pending() == 5 and clock.next_deadline() == 10 and woken == []

        clock.advance(9)
        await anyio.wait_all_tasks_blocked()
        assert woken == []

        clock.advance(11)  # now 20: the two 10s and the 20 are due
        await anyio.wait_all_tasks_blocked()
        assert woken == [10, 10, 20]
        assert clock.pending() == 2 and clock.next_deadline() == 30

        clock.set(49)
        await anyio.wait_all_tasks_blocked()
        assert woken == [10, 10, 20, 30]

        clock.set(1_000)
        await anyio.wait_all_tasks_blocked()
        assert woken == [10, 10, 20, 30, 50]
        assert clock.pending() == 0 and clock.next_deadline() is None


async def test_fake_clock_past_deadline_returns_without_parking() -> None:
    clock = FakeClock(start_us=100)
    await clock.sleep_until(100)
    await clock.sleep_until(5)
    assert clock.pending() == 0


async def test_fake_clock_cancelled_sleeper_is_forgotten() -> None:
    clock = FakeClock()
    with anyio.move_on_after(0):
        await clock.sleep_until(10)
    assert clock.pending() == 0
    clock.advance(20)  # must not trip over the abandoned sleeper


@settings(max_examples=60, deadline=None)
@given(
    deadlines=st.lists(st.integers(min_value=0, max_value=1_000), min_size=1, max_size=12),
    steps=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=8),
)
def test_fake_clock_wakes_exactly_the_waiters_whose_deadline_passed(
    deadlines: list[int], steps: list[int]
) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        clock.advance(1)  # deadline 0 is in the past and returns at once; others must wait
        woken: list[int] = []

        async def sleeper(index: int) -> None:
            await clock.sleep_until(deadlines[index])
            woken.append(index)

        async with anyio.create_task_group() as tg:
            for i in range(len(deadlines)):
                tg.start_soon(sleeper, i)
            await anyio.wait_all_tasks_blocked()
            for step in steps:
                expected = {i for i, d in enumerate(deadlines) if d <= clock.now_us()}
                assert set(woken) == expected
                clock.advance(step)
                await anyio.wait_all_tasks_blocked()
                expected = {i for i, d in enumerate(deadlines) if d <= clock.now_us()}
                assert set(woken) == expected
                assert len(woken) == len(expected)  # each woke exactly once
                assert clock.pending() == len(deadlines) - len(expected)
            clock.set(max(clock.now_us(), *deadlines))
        assert sorted(woken) == list(range(len(deadlines)))

    anyio.run(scenario)
