"""Metrics of a running job in Prometheus text format (`GET /metrics`), and the samples behind the rates.

Every value is read from the job when it is scraped, except two that need history, which `Sampler` keeps by
sampling the job a few times a second: throughput (elements per second over the last `RATE_WINDOW_S`) and
system lag.

=====================================================  ======================================================
``millstream_job_info{job_id,job_name,state}``         1 (labels say which job and its state)
``millstream_job_uptime_seconds``                      since the job started
``millstream_step_elements_in_total{step}``            elements a step received
``millstream_step_elements_out_total{step}``           elements a step emitted (all outputs)
``millstream_step_throughput_elements_per_second``     elements out per second, last `RATE_WINDOW_S`
``millstream_throughput_elements_per_second``          elements read per second by all sources
``millstream_step_{input,output}_watermark_seconds``   event time (absent while -infinity, +Inf at the end)
``millstream_output_watermark_seconds``                min over the job's terminal steps
``millstream_data_watermark_age_seconds``              now - that output watermark (Dataflow's data freshness)
``millstream_system_lag_seconds``                      how long the oldest unprocessed channel message has
                                                       waited (sampled, ~`SAMPLE_INTERVAL_S` resolution)
``millstream_source_{records,bytes}_read_total``       what sources read (bytes where data enters the process)
``millstream_source_backlog``                          what is left to read, as the source counts it
``millstream_source_total``/``_progress_ratio``        size of a bounded input and the part read
``millstream_step_dropped_late_total{step}``           data dropped as later than the allowed lateness
``millstream_step_dead_letters_total{step}``           records routed to a dead-letter output
``millstream_state_size_bytes``                        size of the state directory on disk
``millstream_checkpoints_total``, ``..._duration_seconds``, ``..._stall_seconds``, ``..._age_seconds``,
``..._in_progress``, ``..._loop_stall_seconds``,       the checkpoint coordinator
``..._records_written``, ``..._fallback``,             (``..._fallback`` is 1 after an accepted fallback to
``..._fallback_outputs_redone``                        an older checkpoint)
``millstream_state_entries_{in_memory,evicted_total,   incremental state per step: entries held in memory,
loaded_total}{step}``                                  evicted to the spill area, read back
``millstream_user_counter_total{step,namespace,name}`` ``Metrics.counter``; distributions as
                                                       ``millstream_user_distribution_{count,sum,min,max}``,
                                                       numeric gauges as ``millstream_user_gauge``
``process_*``                                          the process's CPU, memory and file descriptors
=====================================================  ======================================================

Bytes are counted where data crosses the process boundary (what sources read; what sinks write when their
writer reports ``bytes_written``): between steps elements are Python objects whose size in bytes is not
defined without serialising them, which would cost more than most steps.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import anyio
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node

SAMPLE_INTERVAL_S = 0.25
RATE_WINDOW_S = 10.0
#: How far back system-lag samples reach; a lag beyond it is reported as at least this old.
LAG_HISTORY_S = 600.0
STATE_SIZE_CACHE_S = 2.0


class DeadLetterCounter(Node):
    """Counts the records a step routes to its dead-letter output (attached next to its real consumers)."""

    def __init__(self, label: str) -> None:
        super().__init__(f"dead-letters:{label}")
        self.count = 0

    def push(self, index: int, batch: Batch) -> None:
        self.count += len(batch.values)


def attach_dead_letter_counters(job: Any) -> dict[str, DeadLetterCounter]:
    """Count every step's dead letters; call right after `pipeline.start()`, before the job runs."""
    counters: dict[str, DeadLetterCounter] = {}
    for label, node in job.plan.nodes.items():
        tag = getattr(node, "dead_tag", None)
        if tag is not None:
            counter = DeadLetterCounter(label)
            node.connect(counter, 0, tag)
            counters[label] = counter
    return counters


def _seconds(micros: int) -> float | None:
    if micros <= MIN_MICROS:
        return None
    if micros >= MAX_MICROS:
        return math.inf
    return micros / 1e6


def _source_drivers(job: Any) -> list[Any]:
    return [stage.driver for stage in job.plan.stages if stage.driver is not None]


def _is_leaf(node: Node) -> bool:
    return not any(
        consumers
        for consumers in node.consumers.values()
        if not all(isinstance(c, DeadLetterCounter) for c, _ in consumers)
    )


class Sampler:
    """Samples a job's counters for rates (throughput) and system lag."""

    def __init__(self, job: Any) -> None:
        self.job = job
        self.outs: deque[tuple[float, dict[str, int]]] = deque()
        self.sent: deque[tuple[float, int]] = deque()

    def sample(self, now: float | None = None) -> None:
        """Record the current counters."""
        now = time.monotonic() if now is None else now
        self.outs.append((now, {label: n.elements_out for label, n in self.job.plan.nodes.items()}))
        while len(self.outs) > 1 and now - self.outs[1][0] >= RATE_WINDOW_S:
            self.outs.popleft()
        in_flight: Any = getattr(self.job.plan, "in_flight", None)
        sent_total = getattr(in_flight, "sent_total", None)
        if sent_total is not None:
            if not self.sent or self.sent[-1][1] != sent_total:
                self.sent.append((now, sent_total))
            done_total = in_flight.done_total
            # keep the newest sample at or below what is processed: it bounds the oldest message's send time
            while len(self.sent) > 1 and (
                self.sent[1][1] <= done_total or now - self.sent[1][0] > LAG_HISTORY_S
            ):
                self.sent.popleft()

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.sample()
            await anyio.sleep(SAMPLE_INTERVAL_S)

    def rates(self, now: float | None = None) -> dict[str, float]:
        """Elements out per second per step over the sampled window (0 before there is a window)."""
        now = time.monotonic() if now is None else now
        if not self.outs:
            return {}
        t0, old = self.outs[0]
        span = now - t0
        out = {}
        for label, node in self.job.plan.nodes.items():
            out[label] = (node.elements_out - old.get(label, 0)) / span if span >= SAMPLE_INTERVAL_S else 0.0
        return out

    def system_lag(self, now: float | None = None) -> float:
        """Seconds the oldest unprocessed channel message has waited (0 when nothing is in flight)."""
        now = time.monotonic() if now is None else now
        in_flight = getattr(self.job.plan, "in_flight", None)
        if in_flight is None or getattr(in_flight, "sent_total", None) is None or in_flight.count <= 0:
            return 0.0
        done = in_flight.done_total
        for t, sent in self.sent:
            if sent > done:  # the oldest unprocessed message was sent no later than this sample
                return max(0.0, now - t)
        return 0.0  # sent after the newest sample: younger than one sampling interval


class JobCollector(Collector):
    """A prometheus_client collector reading one job."""

    def __init__(self, job: Any, sampler: Sampler, dead_letters: dict[str, DeadLetterCounter]) -> None:
        self.job = job
        self.sampler = sampler
        self.dead_letters = dead_letters
        self._state_size: tuple[float, int | None] = (0.0, None)

    def state_size(self) -> int | None:
        """Bytes of the state directory (cached for a moment: scrapes must not walk it in a loop)."""
        coordinator = self.job.plan.coordinator
        if coordinator is None:
            return None
        now = time.monotonic()
        if now - self._state_size[0] < STATE_SIZE_CACHE_S and self._state_size[1] is not None:
            return self._state_size[1]
        total = 0
        for root, _dirs, files in os.walk(coordinator.state_dir):
            for name in files:
                try:
                    total += os.path.getsize(os.path.join(root, name))
                except OSError:
                    pass  # a file compacted away meanwhile
        self._state_size = (now, total)
        return total

    def collect(self) -> Iterator[Metric]:
        job = self.job
        plan = job.plan
        now_wall = time.time()
        info = GaugeMetricFamily(
            "millstream_job_info",
            "The job (value 1); labels give its id, name and state",
            labels=["job_id", "job_name", "state"],
        )
        info.add_metric([job.job_id, job.name, job.state], 1)
        yield info
        yield GaugeMetricFamily(
            "millstream_job_uptime_seconds",
            "Seconds since the job started",
            value=time.monotonic() - job.started_monotonic,
        )

        e_in = CounterMetricFamily("millstream_step_elements_in", "Elements a step received", labels=["step"])
        e_out = CounterMetricFamily(
            "millstream_step_elements_out", "Elements a step emitted", labels=["step"]
        )
        rate = GaugeMetricFamily(
            "millstream_step_throughput_elements_per_second",
            f"Elements a step emitted per second over the last {RATE_WINDOW_S:g} s",
            labels=["step"],
        )
        wm_in = GaugeMetricFamily(
            "millstream_step_input_watermark_seconds",
            "A step's input watermark (event time)",
            labels=["step"],
        )
        wm_out = GaugeMetricFamily(
            "millstream_step_output_watermark_seconds",
            "A step's output watermark (event time)",
            labels=["step"],
        )
        late = CounterMetricFamily(
            "millstream_step_dropped_late", "Elements dropped as too late", labels=["step"]
        )
        dead = CounterMetricFamily(
            "millstream_step_dead_letters", "Records routed to dead letters", labels=["step"]
        )
        rates = self.sampler.rates()
        leaves_wm: list[int] = []
        for label, node in plan.nodes.items():
            e_in.add_metric([label], node.elements_in)
            e_out.add_metric([label], node.elements_out)
            rate.add_metric([label], rates.get(label, 0.0))
            for fam, micros in ((wm_in, node.input_wm), (wm_out, node.output_wm)):
                value = _seconds(micros)
                if value is not None:
                    fam.add_metric([label], value)
            late.add_metric([label], int(getattr(node, "dropped_late", 0) or 0))
            if label in self.dead_letters:
                dead.add_metric([label], self.dead_letters[label].count)
            if _is_leaf(node):
                leaves_wm.append(node.output_wm)
        drivers = _source_drivers(job)
        for driver in drivers:
            bad = getattr(driver, "bad_records", None)
            if bad is not None:
                dead.add_metric([driver.node.label], bad)
        yield from (e_in, e_out, rate, wm_in, wm_out, late, dead)

        source_labels = [d.node.label for d in drivers]
        yield GaugeMetricFamily(
            "millstream_throughput_elements_per_second",
            f"Elements read per second by all sources over the last {RATE_WINDOW_S:g} s",
            value=sum(rates.get(label, 0.0) for label in source_labels),
        )
        if leaves_wm:
            out_wm = _seconds(min(leaves_wm))
            if out_wm is not None:
                yield GaugeMetricFamily(
                    "millstream_output_watermark_seconds",
                    "The job's output watermark: the minimum over its terminal steps",
                    value=out_wm,
                )
                yield GaugeMetricFamily(
                    "millstream_data_watermark_age_seconds",
                    "Wall-clock seconds minus the output watermark (0 once it is +infinity)",
                    value=0.0 if math.isinf(out_wm) else max(0.0, now_wall - out_wm),
                )
        yield GaugeMetricFamily(
            "millstream_system_lag_seconds",
            "How long the oldest unprocessed message between stages has waited",
            value=self.sampler.system_lag(),
        )

        recs = CounterMetricFamily("millstream_source_records_read", "Records a source read", labels=["step"])
        nbytes = CounterMetricFamily("millstream_source_bytes_read", "Bytes a source read", labels=["step"])
        backlog = GaugeMetricFamily(
            "millstream_source_backlog", "What a source has left to read (its own unit)", labels=["step"]
        )
        total = GaugeMetricFamily(
            "millstream_source_total", "Size of a bounded source's input", labels=["step"]
        )
        progress = GaugeMetricFamily(
            "millstream_source_progress_ratio", "Part of a bounded input read", labels=["step"]
        )
        for driver in drivers:
            label = driver.node.label
            if hasattr(driver, "records"):
                recs.add_metric([label], driver.records)
            if hasattr(driver, "bytes"):
                nbytes.add_metric([label], driver.bytes)
            reader = getattr(driver, "reader", None)
            if reader is None:
                continue
            left = _safe(reader.backlog)
            size = _safe(reader.total)
            if left is not None:
                backlog.add_metric([label], left)
            if size:
                total.add_metric([label], size)
                if left is not None:
                    progress.add_metric([label], max(0.0, min(1.0, 1 - left / size)))
        yield from (recs, nbytes, backlog, total, progress)
        written = CounterMetricFamily("millstream_sink_bytes_written", "Bytes a sink wrote", labels=["step"])
        for label, node in plan.nodes.items():
            value = getattr(getattr(node, "writer", None), "bytes_written", None)
            if isinstance(value, int):
                written.add_metric([label], value)
        yield written

        size = self.state_size()
        if size is not None:
            yield GaugeMetricFamily(
                "millstream_state_size_bytes", "Bytes of the state directory on disk", value=size
            )
        coordinator = plan.coordinator
        if coordinator is not None:
            yield CounterMetricFamily(
                "millstream_checkpoints", "Checkpoints started", value=coordinator.count
            )
            yield GaugeMetricFamily(
                "millstream_checkpoint_duration_seconds",
                "Duration of the last checkpoint",
                value=coordinator.last_duration_s,
            )
            yield GaugeMetricFamily(
                "millstream_checkpoint_stall_seconds",
                "How long the last checkpoint held up processing (snapshot and write)",
                value=coordinator.last_stall_s,
            )
            yield GaugeMetricFamily(
                "millstream_checkpoint_loop_stall_seconds",
                "Longest time the event loop could not run during the last checkpoint",
                value=coordinator.last_loop_stall_s,
            )
            yield GaugeMetricFamily(
                "millstream_checkpoint_records_written",
                "State records the last checkpoint wrote (incremental steps)",
                value=coordinator.incremental.last_written,
            )
            hot = GaugeMetricFamily(
                "millstream_state_entries_in_memory",
                "Entries of a step's incremental state held in memory",
                labels=["step"],
            )
            evicted = CounterMetricFamily(
                "millstream_state_entries_evicted",
                "Entries of a step's state evicted from memory",
                labels=["step"],
            )
            loaded = CounterMetricFamily(
                "millstream_state_entries_loaded",
                "Entries of a step's state read back from the store",
                labels=["step"],
            )
            for label, stats in coordinator.incremental.stats().items():
                hot.add_metric([label], stats["hot_entries"])
                evicted.add_metric([label], stats["evicted"])
                loaded.add_metric([label], stats["loaded"])
            yield from (hot, evicted, loaded)
            if coordinator.last_checkpoint_wall:
                yield GaugeMetricFamily(
                    "millstream_checkpoint_age_seconds",
                    "Seconds since the last checkpoint",
                    value=max(0.0, now_wall - coordinator.last_checkpoint_wall),
                )
            fallback = coordinator.fallback
            yield GaugeMetricFamily(
                "millstream_checkpoint_fallback",
                "1 when this run restored an older checkpoint than the newest",
                value=0 if fallback is None else 1,
            )
            yield GaugeMetricFamily(
                "millstream_checkpoint_fallback_outputs_redone",
                "Committed output files the fallback deleted to write them again",
                value=0 if fallback is None else len(fallback["redone_outputs"]),
            )
            yield GaugeMetricFamily(
                "millstream_checkpoint_in_progress",
                "1 while a checkpoint is being taken",
                value=0 if int(coordinator.step) == 0 else 1,
            )
        yield from _user_metrics(job.container)


def _safe(fn: Any) -> Any:
    try:
        value = fn()
    except Exception:  # a source's estimate must never break a scrape
        return None
    return value if isinstance(value, (int, float)) else None


def _user_metrics(container: Any) -> Iterator[Metric]:
    counters = CounterMetricFamily(
        "millstream_user_counter", "User counters (Metrics.counter)", labels=["step", "namespace", "name"]
    )
    for key, value in list(container.counters.items()):
        counters.add_metric([key.step, key.metric.namespace, key.metric.name], value)
    yield counters
    parts = {
        p: GaugeMetricFamily(
            f"millstream_user_distribution_{p}",
            f"User distributions: {p}",
            labels=["step", "namespace", "name"],
        )
        for p in ("count", "sum", "min", "max")
    }
    for key, d in list(container.distributions.items()):
        labels = [key.step, key.metric.namespace, key.metric.name]
        parts["count"].add_metric(labels, d.count)
        parts["sum"].add_metric(labels, d.sum)
        if d.min is not None:
            parts["min"].add_metric(labels, d.min)
        if d.max is not None:
            parts["max"].add_metric(labels, d.max)
    yield from parts.values()
    gauges = GaugeMetricFamily(
        "millstream_user_gauge",
        "User gauges (Metrics.gauge), numeric values",
        labels=["step", "namespace", "name"],
    )
    for key, g in list(container.gauges.items()):
        if isinstance(g.value, (int, float)) and not isinstance(g.value, bool):
            gauges.add_metric([key.step, key.metric.namespace, key.metric.name], g.value)
    yield gauges


def make_registry(collector: JobCollector) -> CollectorRegistry:
    """A registry with the job's metrics and the process's (CPU, memory, file descriptors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of `registry`."""
    return generate_latest(registry)


__all__ = [
    "DeadLetterCounter",
    "JobCollector",
    "Sampler",
    "attach_dead_letter_counters",
    "make_registry",
    "render",
]
