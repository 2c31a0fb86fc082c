"""A stateful ParDo's incremental records (`checkpoint.userstate_records`) at node level: what a restore
rebuilds from the records of several checkpoints written by different runs."""

from __future__ import annotations

from typing import Any

from millstream.engine.model.dofn import DoFn
from millstream.engine.model.window import GlobalWindows
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.checkpoint.versioned_store import SpillArea, StateTier
from millstream.state import MemoryBackend
from millstream.transforms.timeutil import TimeDomain
from millstream.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer

from support.stateful_node import S, batch, make


class Run:
    """One run of a DoFn's node on a store: checkpoints written like the Checkpointer writes them."""

    def __init__(self, fn: DoFn, backend: Any, restore_from: int | None = None) -> None:
        self.node, self.sink = make(fn, Windowing(GlobalWindows()))
        self.backend = backend
        self.tier = StateTier(self.node.label, backend, SpillArea(None), 0)
        self.node.attach_state_tier(self.tier)
        if restore_from is not None:
            self.node.restore_incremental(self.tier.restore(restore_from))

    def process(self, *elements: tuple[Any, Any, float]) -> None:
        self.node.process(batch(*elements))

    def checkpoint(self, cid: int) -> None:
        cap = self.node.capture_incremental()
        ck = self.tier.checkpoint(cid, cid, cap.header, cap.entries, cap.deletes, cap.encoded)
        self.backend.write_batch(list(ck.puts()), list(ck.deletes()), sync=True)
        self.tier.committed(ck)
        cap.release()

    def fire_all(self) -> list[Any]:
        self.node.watermark(0, 10_000 * S)
        return [v for v, _ in self.sink.out]


class TieAt100(DoFn):
    """Every key sets its timer at t=100 (ties fire in the order set); "noop" resets a timer 20 times."""

    V = ReadModifyWriteStateSpec("v", None)
    T = TimerSpec("t", TimeDomain.WATERMARK)

    def process(self, element: Any, v: Any = DoFn.StateParam(V), t: Any = DoFn.TimerParam(T)) -> Any:
        v.write(element[1])
        if element[1] == "noop":
            for i in range(20):
                t.set(1000 + i)
            t.clear()
        else:
            t.set(100)
        return []

    @on_timer(T)
    def fire(self, key: Any = DoFn.KeyParam) -> Any:
        yield key


def test_timer_ties_fire_in_the_order_set_across_two_restarts() -> None:
    backend = MemoryBackend()
    run = Run(TieAt100(), backend)
    for i in range(50):  # timers set and cleared: sequence numbers used up in this run
        run.process((f"x{i}", "noop", 1))
    run.process(("first", 1, 1))
    run.checkpoint(1)
    run = Run(TieAt100(), backend, restore_from=1)
    run.process(("second", 1, 1))  # set after "first" (in a later run, whose counter started afresh)
    run.checkpoint(2)
    assert Run(TieAt100(), backend, restore_from=2).fire_all() == ["first", "second"]


class LastValue(DoFn):
    """Keeps the last value of a key and emits it at t=100; "clear" clears state and timer."""

    V = ReadModifyWriteStateSpec("v", None)
    T = TimerSpec("t", TimeDomain.WATERMARK)

    def process(self, element: Any, v: Any = DoFn.StateParam(V), t: Any = DoFn.TimerParam(T)) -> Any:
        if element[1] == "clear":
            v.clear()
            t.clear()
        else:
            v.write(element[1])
            t.set(100)
        return []

    @on_timer(T)
    def fire(self, key: Any = DoFn.KeyParam, v: Any = DoFn.StateParam(V)) -> Any:
        yield (key, v.read())


def test_equal_keys_of_different_types_leave_one_record() -> None:
    """1 and 1.0 are one key in memory (Python equality); their records must not both survive."""
    backend = MemoryBackend()
    run = Run(LastValue(), backend)
    run.process((1.0, "x", 1))
    run.checkpoint(1)
    run.process((1.0, "clear", 1), (1, "y", 1))
    run.checkpoint(2)
    run.process((1, "z", 1))
    run.checkpoint(3)
    assert Run(LastValue(), backend, restore_from=3).fire_all() == [(1, "z")]
