"""The executor: one task per stage in an anyio task group, bounded channels between stages.

A stage whose nodes have processing-time timers also runs a timer task that sleeps on the job's clock until
the earliest timer (woken early when a node reports an earlier one) and fires it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream

from millstream.engine.model.metrics import MetricsContainer, set_current_container, set_current_step
from millstream.engine.runtime.checkpoint.coordinator import InFlight, run_all
from millstream.engine.runtime.exec.clock import Clock
from millstream.engine.runtime.graph.batch import Watermark
from millstream.engine.runtime.graph.capabilities import (
    AsyncNode,
    BundleFinalizingNode,
    ClosableDriver,
    LingeringNode,
    TimerNode,
)
from millstream.engine.runtime.graph.node import Node, PipelineError
from millstream.engine.runtime.graph.planner import Plan, Stage


async def execute(
    plan: Plan,
    container: MetricsContainer,
    channel_capacity: int,
    make_checkpointer: Callable[[Plan], Any] | None = None,
) -> None:
    """Run every stage of `plan` to completion; the first failure cancels the rest and is re-raised.

    With a checkpointer, the latest checkpoint is restored first, checkpoints are taken periodically while
    the stages run, and a final one commits the last output once they have all finished.
    """
    set_current_container(container)
    plan.in_flight = CountingInFlight()
    for stage in plan.stages:
        for sender in stage.senders:
            sender.in_flight = plan.in_flight
    checkpointer = make_checkpointer(plan) if make_checkpointer is not None else None
    plan.coordinator = checkpointer
    if checkpointer is not None:
        try:
            for sink in checkpointer.sinks:
                await sink.writer.open()
            await checkpointer.restore()
        except BaseException:
            checkpointer.close()
            raise
    container.now_us = plan.clock.now_us
    receivers: dict[int, ObjectReceiveStream[Any]] = {}
    for stage in plan.stages:
        if stage.entries:
            send, receive = anyio.create_memory_object_stream[Any](max_buffer_size=channel_capacity)
            receivers[id(stage)] = receive
            for other in plan.stages:
                for sender in other.senders:
                    if sender.target is stage:
                        sender.stream = send.clone()
            send.close()
    control = plan.control
    # One checkpoint at a time: periodic ones, the stop checkpoint, and the end of the stages all take it.
    checkpoint_lock = anyio.Lock()
    try:
        async with anyio.create_task_group() as outer:
            if checkpointer is not None:
                outer.start_soon(
                    _periodic_checkpoints, checkpointer, control, checkpoint_lock, plan, name="checkpoints"
                )
                outer.start_soon(checkpointer.write_ahead, name="checkpoint write-ahead")
            if control is not None:
                outer.start_soon(_stop_when_asked, checkpointer, control, checkpoint_lock, name="stop")
            async with anyio.create_task_group() as tg:
                if control is not None:
                    control.stages_scope = tg.cancel_scope
                for stage in plan.stages:
                    tg.start_soon(
                        _run_stage, stage, receivers.get(id(stage)), plan, name=f"stage {stage.name}"
                    )
            if control is not None and control.state == "CANCELLING":
                outer.cancel_scope.cancel()
            else:
                # A checkpoint in progress finishes first: cut off between its durable write and its sink
                # commit, its epoch would stay uncommitted while the final checkpoint moves past it.
                async with checkpoint_lock:
                    outer.cancel_scope.cancel()
        ended_early = control is not None and (control.stop_requested or control.state == "CANCELLING")
        if checkpointer is not None and not ended_early:
            await checkpointer.checkpoint(final=True)
        if checkpointer is not None and ended_early:
            await checkpointer.abort_sinks()
        if checkpointer is None and not ended_early:
            # nothing is checkpointed: a bundle's output is final once every stage has finished
            finalize = [
                node.take_bundle_callbacks()
                for stage in plan.stages
                for node in stage.nodes
                if isinstance(node, BundleFinalizingNode)
            ]
            await anyio.to_thread.run_sync(run_all, finalize)
    except BaseExceptionGroup as group:
        err = _first_error(group)
        raise err from err.__cause__
    finally:
        set_current_container(None)
        for stage in plan.stages:
            if isinstance(stage.driver, ClosableDriver):
                with anyio.CancelScope(shield=True):
                    await stage.driver.close()
        if checkpointer is not None:
            checkpointer.close()


class CountingInFlight(InFlight):
    """`InFlight` that also counts every message sent and processed, so a supervisor can estimate how long
    the oldest unprocessed message has waited (system lag) by sampling the totals."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_total = 0
        self.done_total = 0

    def add(self) -> None:
        super().add()
        self.sent_total += 1

    def done(self) -> None:
        super().done()
        self.done_total += 1


async def _periodic_checkpoints(checkpointer: Any, control: Any, lock: anyio.Lock, plan: Plan) -> None:
    """Take a checkpoint every `interval_s` seconds while sources run, or while a step lingers after they
    ended (a splittable DoFn's residuals, a periodic sequence: their progress is committed as it is made);
    none once a stop, drain or cancel began (the job's end takes the last one)."""
    while True:
        await anyio.sleep(checkpointer.interval_s)
        if all(s.finished for s in checkpointer.sources) and not _lingers(plan):
            continue  # the end of the stages cancels this loop
        async with lock:
            if control is not None and (
                control.stop_event.is_set() or control.drain_requested or control.state == "CANCELLING"
            ):
                return
            await checkpointer.checkpoint()


def _lingers(plan: Plan) -> bool:
    """Whether a step still has held processing-time timers to fire after its input ended."""
    return any(isinstance(n, LingeringNode) and n.lingers() for stage in plan.stages for n in stage.nodes)


async def _stop_when_asked(checkpointer: Any, control: Any, lock: anyio.Lock) -> None:
    """On `Job.stop()`: checkpoint, then end the stages before any source reads past the checkpoint.

    A source that reaches a batch boundary after the stop request parks (`JobControl.source_should_end`), and
    the stages are cancelled in the same step as the checkpoint returns, so no window fires and no record is
    read after the cut.
    """
    await control.stop_event.wait()
    async with lock:
        control.stop_requested = True
        if checkpointer is not None:
            # the sources stop at this cut: it is not deferred (`Checkpointer.checkpoint`'s `bounded`)
            await checkpointer.checkpoint(bounded=False)
        if control.stages_scope is not None:
            control.stages_scope.cancel()


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The user-facing error of a failed run: the first error attributed to a step, else the first error."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)

    walk(group)
    for e in leaves:
        if isinstance(e, PipelineError) or getattr(e, "millstream_step", None) is not None:
            return e
    return leaves[0]


class _StageRun:
    """The running state of one stage: its outbox flushing and its processing-time timers."""

    def __init__(self, stage: Stage, plan: Plan) -> None:
        self.stage = stage
        self.clock: Clock = plan.clock
        self.coordinator = plan.coordinator
        self.control = plan.control
        self.lock = anyio.Lock()
        self.timer_nodes: list[TimerNode] = [n for n in stage.nodes if isinstance(n, TimerNode)]
        self.wakeup = anyio.Event()
        for node in self.timer_nodes:
            node.timer_changed = self.wakeup.set
        #: Set (and replaced) each time the timer loop has fired timers.
        self.fired = anyio.Event()

    def _lingering(self) -> bool:
        return any(isinstance(n, LingeringNode) and n.lingers() for n in self.timer_nodes)

    async def linger(self) -> None:
        """After the stage's input ended: wait while a node still has held processing-time timers to fire
        (a periodic sequence still running); the timer loop fires them on the clock. A drain (asked before or
        meanwhile) truncates them instead, so the job ends within its drain budget even with an unbounded
        sequence."""
        while self._lingering():
            if self.control is not None and self.control.drain_requested:
                if self.coordinator is not None and self.coordinator.holding:
                    await self.coordinator.wait_resumed()  # outputs never cross a checkpoint's cut
                for node in self.timer_nodes:
                    if isinstance(node, LingeringNode) and node.lingers():
                        node.truncate_held()
                return
            fired = self.fired
            async with anyio.create_task_group() as tg:

                async def wake_on(event: Any, tg: Any = tg) -> None:
                    await event.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(wake_on, fired)
                if self.control is not None:
                    tg.start_soon(wake_on, self.control.drain_event)

    async def flush(self) -> None:
        outbox = self.stage.outbox
        if not outbox:
            return
        async with self.lock:
            while outbox:
                stream, message = outbox.popleft()
                await stream.send(message)

    def next_deadline(self) -> int | None:
        deadlines = [t for n in self.timer_nodes if (t := n.next_timer()) is not None]
        return min(deadlines) if deadlines else None

    async def timer_loop(self) -> None:
        """Fire processing-time timers as the clock reaches them."""
        while True:
            deadline = self.next_deadline()
            if self.wakeup.is_set():
                self.wakeup = anyio.Event()
                for node in self.timer_nodes:
                    node.timer_changed = self.wakeup.set
            wakeup = self.wakeup
            if deadline is None:
                await wakeup.wait()
                continue
            async with anyio.create_task_group() as tg:

                async def sleeper(tg: Any = tg, deadline: int = deadline) -> None:
                    await self.clock.sleep_until(deadline)
                    tg.cancel_scope.cancel()

                async def waker(tg: Any = tg, wakeup: Any = wakeup) -> None:
                    await wakeup.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(sleeper)
                tg.start_soon(waker)
            if self.coordinator is not None and self.coordinator.holding:
                await self.coordinator.wait_resumed()
                if self.control is not None and self.control.stop_requested:
                    # the stop checkpoint was the job's last cut: park until the stages are cancelled
                    await anyio.sleep_forever()
            now = self.clock.now_us()
            if now >= deadline:
                for node in self.timer_nodes:
                    t = node.next_timer()
                    if t is not None and t <= now:
                        node.advance_processing_time(now)
                await self.flush()
                fired, self.fired = self.fired, anyio.Event()
                fired.set()


async def _run_stage(stage: Stage, receive: ObjectReceiveStream[Any] | None, plan: Plan) -> None:
    run = _StageRun(stage, plan)
    in_flight = plan.in_flight
    opened: list[Node] = []
    try:
        for node in stage.nodes:
            set_current_step(node.label)
            node.open()
            opened.append(node)
        async with anyio.create_task_group() as tg:
            if run.timer_nodes:
                tg.start_soon(run.timer_loop)
            if stage.driver is not None:
                await stage.driver.run(run.flush)
                if plan.coordinator is not None:
                    plan.coordinator.source_finished()
            if receive is not None:
                entries = stage.entries
                # per entry, the node's pending work to await after each message (`AsyncNode`), found once
                pending = [node.run_pending if isinstance(node, AsyncNode) else None for node, _ in entries]
                async with receive:
                    async for entry, message in receive:
                        node, index = entries[entry]
                        if type(message) is Watermark:
                            node.watermark(index, message.micros)
                        else:
                            node.push(index, message)
                        run_pending = pending[entry]
                        if run_pending is not None:
                            await run_pending()
                        if stage.outbox:
                            await run.flush()
                        in_flight.done()
            await run.linger()
            await run.flush()
            tg.cancel_scope.cancel()
    finally:
        for sender in stage.senders:
            if sender.stream is not None:
                sender.stream.close()
        for node in opened:
            node.close()
