"""`MillstreamRunner`: plans a pipeline and runs it on an asyncio loop (uvloop when available)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio

from millstream.engine.model.metrics import MetricResults, MetricsContainer
from millstream.engine.model.options import MillstreamOptions, PipelineOptions
from millstream.engine.runtime import test_stream_driver  # noqa: F401 - registers TestStream's operator
from millstream.engine.runtime.executor import execute
from millstream.engine.runtime.planner import plan_pipeline


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
    except RuntimeError:
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


class MillstreamRunner:
    """Runs pipelines on millstream's batched asyncio runtime."""

    def run_pipeline(self, pipeline: Any, options: PipelineOptions) -> PipelineResult:
        """Validate options, plan, and run the pipeline to completion."""
        options.validate_flags()
        opts = options.view_as(MillstreamOptions)
        plan = plan_pipeline(pipeline, options)
        container = MetricsContainer()
        result = PipelineResult(container)
        try:
            run_coroutine(execute, plan, container, opts.channel_capacity, use_uvloop=opts.uvloop)
        except BaseException:
            result._state = PipelineState.FAILED
            raise
        result._state = PipelineState.DONE
        return result
