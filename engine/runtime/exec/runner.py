"""`MillstreamRunner`: plans a pipeline and runs it on an asyncio loop (uvloop when available)."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import anyio

from millstream.engine.model.metrics import MetricResults, MetricsContainer
from millstream.engine.model.options import MillstreamOptions, PipelineOptions, job_name
from millstream.engine.runtime.graph.event_time_hints import warn_event_time_hints
from millstream.engine.runtime.graph.planner import plan_pipeline
from millstream.engine.runtime.operators import io, test_stream  # noqa: F401 - register their operators


class PipelineState:
    """The states of a pipeline run (Beam's names)."""

    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class PipelineResult:
    """The outcome of `Pipeline.run()`: its state and metrics."""

    def __init__(self, container: MetricsContainer) -> None:
        self._container = container
        self._state = PipelineState.RUNNING

    @property
    def state(self) -> str:
        """The run's state."""
        return self._state

    def wait_until_finish(self, duration: Any = None) -> str:
        """The run is synchronous: it has finished by the time `run()` returns."""
        return self._state

    def metrics(self) -> MetricResults:
        """The user metrics of the run."""
        return MetricResults(self._container)


def _uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run_coroutine(fn: Any, *args: Any, use_uvloop: bool = True) -> Any:
    """Run `fn(*args)` to completion on a fresh event loop, also when the caller is inside a running loop."""
    backend_options = {"use_uvloop": use_uvloop and _uvloop_available()}
    try:
        asyncio.get_running_loop()
        inside_loop = True
    except RuntimeError:
        inside_loop = False
    if not inside_loop:  # outside the except block, so user errors carry no unrelated exception context
        return anyio.run(fn, *args, backend="asyncio", backend_options=backend_options)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = anyio.run(fn, *args, backend="asyncio", backend_options=backend_options)
        except BaseException as e:  # re-raised in the caller's thread
            outcome["error"] = e

    thread = threading.Thread(target=target, name="millstream-run")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _keeps_durable_state(plan: Any) -> bool:
    """Jobs that read a checkpointable source or write a two-phase sink keep durable state."""
    from millstream.engine.runtime.operators.io import ReadDriver, SinkNode

    return any(
        isinstance(stage.driver, ReadDriver) or any(isinstance(n, SinkNode) for n in stage.nodes)
        for stage in plan.stages
    )


def prepare(pipeline: Any, options: PipelineOptions) -> tuple[Any, MetricsContainer, int, Any]:
    """Validate options and plan the pipeline; everything a Job needs to start."""
    options.validate_flags()
    opts = options.view_as(MillstreamOptions)
    plan = plan_pipeline(pipeline, options)
    warn_event_time_hints(pipeline)
    plan.job_name = job_name(options)
    plan.state_dir = opts.state_dir or os.path.join(".millstream", plan.job_name)
    make_checkpointer = None
    if _keeps_durable_state(plan):

        def make_checkpointer(p: Any) -> Any:
            from millstream.engine.runtime.checkpoint.coordinator import Checkpointer

            return Checkpointer(
                p,
                p.state_dir,
                opts.state_backend,
                opts.checkpoint_interval,
                opts.from_scratch,
                accept_fallback=opts.accept_checkpoint_fallback,
                encryption_key=opts.state_encryption_key,
            )

    return plan, MetricsContainer(), opts.channel_capacity, make_checkpointer


class MillstreamRunner:
    """Runs pipelines on millstream's batched asyncio runtime."""

    def run_pipeline(self, pipeline: Any, options: PipelineOptions) -> PipelineResult:
        """Validate options, plan, and run the pipeline to completion (blocking)."""
        from millstream.engine.runtime.exec.job import Job

        plan, container, capacity, make_checkpointer = prepare(pipeline, options)
        opts = options.view_as(MillstreamOptions)
        result = PipelineResult(container)

        async def main() -> str:
            job = Job(plan, container, capacity, make_checkpointer)
            job._start()
            return await job.wait()

        try:
            result._state = run_coroutine(main, use_uvloop=opts.uvloop)
        except BaseException:
            result._state = PipelineState.FAILED
            raise
        return result

    async def start_pipeline(self, pipeline: Any, options: PipelineOptions) -> Any:
        """Start the pipeline on the running loop; returns a Job at once."""
        from millstream.engine.runtime.exec.job import start_job

        return await start_job(pipeline, options)
