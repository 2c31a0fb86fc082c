"""`Job`: a running pipeline, driven from inside an asyncio program or by the blocking `Pipeline.run()`.

    job = await pipeline.start()          # returns at once; the job runs on the caller's loop
    async for row in job.tap(pcoll): ...  # stream a PCollection's elements (bounded; `break` detaches the tap)
    await job.drain()                     # stop reading, fire every window, final checkpoint, commit
    await job.stop()                      # checkpoint and end without firing windows (resume later)
    await job.cancel()                    # end now; uncommitted output is discarded
    state = await job.wait()

Cancelling the task that awaits `wait()` cancels the job. Lifecycle states use Beam's names.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from typing import Any

import anyio

from millstream.engine.model.metrics import MetricResults, MetricsContainer
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.exec.interrupt import is_interrupted
from millstream.engine.runtime.exec.tap import Tap, TapChannel
from millstream.engine.runtime.graph.capabilities import WindowedNode


class JobState:
    """Job states (Beam's PipelineState names plus DRAINING/STOPPED)."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    DRAINING = "DRAINING"
    STOPPING = "STOPPING"
    CANCELLING = "CANCELLING"
    DONE = "DONE"
    STOPPED = "STOPPED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    TERMINAL = frozenset({DONE, STOPPED, CANCELLED, FAILED})


class JobControl:
    """What sources and the executor consult: has the job been asked to stop reading?"""

    def __init__(self) -> None:
        self.state = JobState.STARTING
        self.drain_requested = False
        self.stop_requested = False
        self.stages_scope: anyio.CancelScope | None = None
        #: Set by `Job.stop()`; the executor then takes the stop checkpoint inside its own task group (so a
        #: cancel or a failure meanwhile cancels it, and no checkpoint ever overlaps another).
        self.stop_event = anyio.Event()
        #: Set with `drain_requested`, so a stage waiting on held timers (`_StageRun.linger`) wakes at once.
        self.drain_event = anyio.Event()

    async def source_should_end(self) -> bool:
        """Asked by a source at every batch boundary (after any checkpoint pause): True once it should end
        (a drain: the watermark then goes to +infinity and every window fires). After a stop the source parks
        here until the stages are cancelled: the stop checkpoint is the job's last cut, and no window fires."""
        if self.stop_requested:
            await anyio.sleep_forever()
        return self.drain_requested


class _GcTuning:
    """While jobs run, the cyclic garbage collector runs less often: the runtime allocates many short-lived
    lists per batch and almost no cycles, and full collections over a large heap of state were measured at
    20-45% of a run. Process-wide (reference-counted over the jobs of the process); off with --no_gc_tuning."""

    def __init__(self) -> None:
        self.users = 0
        self.saved: tuple[int, int, int] | None = None

    def acquire(self) -> None:
        """A job starts."""
        if self.users == 0:
            self.saved = gc.get_threshold()
            gc.freeze()  # objects alive before the run (imports, the pipeline) are never scanned again
            gc.set_threshold(50_000, 20, 100)
        self.users += 1

    def release(self) -> None:
        """A job ended."""
        self.users -= 1
        if self.users == 0 and self.saved is not None:
            gc.set_threshold(*self.saved)
            gc.unfreeze()


_GC_TUNING = _GcTuning()


class Job:
    """A running (or finished) pipeline."""

    def __init__(
        self, plan: Any, container: MetricsContainer, channel_capacity: int, make_checkpointer: Any
    ) -> None:
        self.plan = plan
        self.container = container
        self.channel_capacity = channel_capacity
        self.make_checkpointer = make_checkpointer
        self.job_id = uuid.uuid4().hex[:12]
        self.name = plan.job_name
        self.control = JobControl()
        plan.control = self.control
        self.started_monotonic = time.monotonic()
        self.error: BaseException | None = None
        self._task: asyncio.Task[Any] | None = None
        self._done = asyncio.Event()
        self._tap_channels: list[TapChannel] = []

    # -- lifecycle --------------------------------------------------------------------------------------------
    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._main(), name=f"millstream job {self.name}")

    async def _main(self) -> None:
        from millstream.engine.runtime.exec.executor import execute

        if self.control.state == JobState.STARTING:  # a drain/stop/cancel asked before the start stands
            self.control.state = JobState.RUNNING
        from millstream.engine.model.options import MillstreamOptions

        tune_gc = bool(self.plan.options.view_as(MillstreamOptions).gc_tuning)
        if tune_gc:
            _GC_TUNING.acquire()
        try:
            await execute(self.plan, self.container, self.channel_capacity, self.make_checkpointer)
        except asyncio.CancelledError:
            self.control.state = JobState.CANCELLED
            raise
        except BaseException as e:
            if is_interrupted(e):  # a cancel that interrupted blocking user code
                self.control.state = JobState.CANCELLED
                return
            self.error = e
            self.control.state = JobState.FAILED
        else:
            if self.control.state == JobState.CANCELLING:
                self.control.state = JobState.CANCELLED
            elif self.control.state == JobState.STOPPING:
                self.control.state = JobState.STOPPED
            else:
                self.control.state = JobState.DONE
        finally:
            if tune_gc:
                _GC_TUNING.release()
            for channel in self._tap_channels:  # a tap never waits for a job that has ended
                channel.end()
            self._done.set()

    async def finished(self) -> str:
        """Wait until the job ends and return its state; unlike `wait()`, neither re-raises a failure nor
        cancels the job when the waiter is cancelled (for supervisors that watch a job they do not own)."""
        await self._done.wait()
        return self.state

    @property
    def state(self) -> str:
        """The job's state."""
        return self.control.state

    async def wait(self) -> str:
        """Wait until the job ends; re-raises its failure. Cancelling the waiter cancels the job."""
        try:
            await self._done.wait()
        except asyncio.CancelledError:
            await self.cancel()
            raise
        if self.error is not None:
            raise self.error
        return self.state

    def request_drain(self) -> None:
        """Ask for a drain (see `drain`) without waiting for it; a signal handler or an endpoint calls this.
        A job already stopping or cancelling goes on doing that (its end is decided)."""
        if self.state in JobState.TERMINAL or self.state in (JobState.STOPPING, JobState.CANCELLING):
            return
        self.control.state = JobState.DRAINING
        self.control.drain_requested = True
        self.control.drain_event.set()

    def request_stop(self) -> None:
        """Ask for a stop (see `stop`) without waiting for it."""
        if self.state in JobState.TERMINAL:
            return
        self.control.state = JobState.STOPPING
        self.control.stop_event.set()

    def request_cancel(self) -> None:
        """Ask for a cancel (see `cancel`) without waiting for it."""
        if self.state in JobState.TERMINAL:
            return
        self.control.state = JobState.CANCELLING
        if self.control.stages_scope is not None:
            self.control.stages_scope.cancel()
        elif self._task is not None:
            self._task.cancel()

    async def drain(self, timeout: float | None = None) -> str:
        """Stop reading, let every window fire (watermark to +infinity), commit a final checkpoint."""
        if self.state in JobState.TERMINAL:
            return self.state
        self.request_drain()
        if timeout is None:
            return await self.wait()
        with anyio.move_on_after(timeout):
            return await self.wait()
        await self.cancel()
        return self.state

    async def stop(self) -> str:
        """Checkpoint and end without firing open windows, so a restart resumes them.

        The executor takes the checkpoint (after one already in progress, never overlapping it) and then ends
        the stages before any source can read past it.
        """
        if self.state in JobState.TERMINAL:
            return self.state
        self.request_stop()
        await self._done.wait()
        return self.state

    async def cancel(self) -> str:
        """End now: uncommitted output is discarded; the last checkpoint stays intact."""
        if self.state in JobState.TERMINAL:
            return self.state
        self.request_cancel()
        await self._done.wait()
        return self.state

    # -- observation ------------------------------------------------------------------------------------------
    def metrics(self) -> MetricResults:
        """User metrics so far."""
        return MetricResults(self.container)

    def status(self) -> dict[str, Any]:
        """Job id, name, state, uptime, and per step: elements in/out and watermarks."""

        def wm(micros: int) -> float | None:
            if micros <= MIN_MICROS:
                return None
            if micros >= MAX_MICROS:
                return float("inf")
            return micros / 1e6

        steps = []
        for label, node in self.plan.nodes.items():
            steps.append(
                {
                    "step": label,
                    "elements_in": node.elements_in,
                    "elements_out": node.elements_out,
                    "input_watermark": wm(node.input_wm),
                    "output_watermark": wm(node.output_wm),
                    "dropped_late": node.dropped_late if isinstance(node, WindowedNode) else 0,
                }
            )
        coordinator = self.plan.coordinator
        return {
            "job_id": self.job_id,
            "name": self.name,
            "state": self.state,
            "uptime_s": round(time.monotonic() - self.started_monotonic, 3),
            "steps": steps,
            "checkpoints": None
            if coordinator is None
            else {
                "taken": coordinator.count,
                "last_duration_s": coordinator.last_duration_s,
                "last_stall_s": coordinator.last_stall_s,
                "last_loop_stall_s": coordinator.last_loop_stall_s,
                "max_duration_s": coordinator.max_duration_s,
                "max_stall_s": coordinator.max_stall_s,
                "max_loop_stall_s": coordinator.max_loop_stall_s,
                "last_records_written": coordinator.incremental.last_written,
                "last_wall_time": coordinator.last_checkpoint_wall or None,
                "step": coordinator.step.name,
                "state_dir": coordinator.state_dir,
                # set when this run accepted a fallback to an older checkpoint (--accept_checkpoint_fallback)
                "fallback": coordinator.fallback,
                # per incremental step: entries in memory, evicted to the spill area, loaded back
                "state": coordinator.incremental.stats(),
            },
        }

    def tap(self, pcoll: Any, max_buffered_batches: int = 8, on_full: str = "wait") -> Tap:
        """Stream the elements of `pcoll` produced from now on, until it completes or the job ends.

        The tap is attached when this is called (before the job processes anything if called right after
        `start()`). At most `max_buffered_batches` batches wait for the caller; then, with ``on_full="wait"``
        the job waits too (backpressure), with ``on_full="drop"`` newer batches are dropped and counted in
        `Tap.dropped`. Closing the tap (``break``, ``aclose()``, ``async with``) only detaches it.
        """
        tap = Tap(max_buffered_batches, on_full)
        if self.state in JobState.TERMINAL:
            tap.channel.end()
            return tap
        node, tag = self.plan.node_for(pcoll)
        tap.attach(node, tag, self.plan.stage_of_node(node))
        self._tap_channels.append(tap.channel)
        return tap


async def start_job(pipeline: Any, options: Any) -> Job:
    """Plan `pipeline` and start it on the running loop; returns at once."""
    from millstream.engine.runtime.exec.runner import prepare

    plan, container, capacity, make_checkpointer = prepare(pipeline, options)
    job = Job(plan, container, capacity, make_checkpointer)
    job._start()  # scheduled, not yet running: taps attached right after start() see every element
    return job
