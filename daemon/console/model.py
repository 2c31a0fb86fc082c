"""What the web console shows of a running job: its graph, the /metrics numbers, an hour of history.

Every number comes from the job's Prometheus collector (`millstream.daemon.metrics.JobCollector`), read the
same way ``GET /metrics`` reads it, so the page and ``/metrics`` agree. What needs history is kept here, in
memory and bounded whatever the uptime: a ring of `HISTORY_POINTS` samples taken every
`HISTORY_INTERVAL_S` (an hour by default; it survives page reloads, not restarts), the last
`CHECKPOINTS_KEPT` checkpoints and the latest `DEAD_LETTERS_KEPT` dead letters of each step.

>>> ConsoleModel.step_state(dead_letters_rising=False, watermark_age_s=3.0, backlog_age_s=60.0, job_state="RUNNING")
'running'
"""

from __future__ import annotations

import math
import time
from array import array
from collections import deque
from typing import Any

from millstream.daemon.metrics import JobCollector
from millstream.engine.model.io import SplitBacklogReader
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.capabilities import LateDataSampler
from millstream.engine.runtime.graph.node import Node

HISTORY_INTERVAL_S = 10.0
HISTORY_POINTS = 360
CHECKPOINTS_KEPT = 20
#: How often the console looks for a finished checkpoint.
CHECKPOINT_POLL_S = 0.25
DEAD_LETTERS_KEPT = 5
#: A step whose input watermark is older than this (wall clock) is shown as backlogged.
BACKLOG_AGE_S = 60.0
#: Longest text kept of one dead-letter record or reason (the page shows the latest few, not archives).
RECORD_TEXT_MAX = 300

#: Values kept per step and history sample: input wm, output wm, wm age, elements in, elements out.
FIELDS = 5
_NAN = math.nan

Samples = dict[str, list[tuple[dict[str, str], float]]]


class DeadLetterSample(Node):
    """Keeps the latest dead-letter records of one step, with their reasons (beside `DeadLetterCounter`)."""

    def __init__(self, label: str, keep: int = DEAD_LETTERS_KEPT) -> None:
        super().__init__(f"dead-letter-sample:{label}")
        self.latest: deque[dict[str, Any]] = deque(maxlen=keep)

    def push(self, index: int, batch: Batch) -> None:
        now = time.time()
        for value in batch.values[-(self.latest.maxlen or 1) :]:
            record, reason = _split_dead_letter(value)
            self.latest.append({"time": now, "record": _clip(repr(record)), "reason": _clip(reason)})


def _split_dead_letter(value: Any) -> tuple[Any, str]:
    """(record, reason) of a dead letter: ParDo's ``(element, ErrorInfo)``, or a source's bad record."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], tuple):
        info = value[1]
        message = getattr(info, "message", None)
        if message is None and len(info) >= 2:
            message = str(info[1])
        kind = info[0].__name__ if len(info) and isinstance(info[0], type) else "error"
        return value[0], f"{kind}: {message}"
    reason = getattr(value, "error", None) or getattr(value, "reason", None)
    return value, str(reason) if reason is not None else "undecodable record"


def _clip(text: str) -> str:
    return text if len(text) <= RECORD_TEXT_MAX else text[: RECORD_TEXT_MAX - 1] + "…"


def attach_dead_letter_samples(job: Any) -> dict[str, DeadLetterSample]:
    """Keep every step's latest dead letters; call right after `pipeline.start()`, before the job runs."""
    samples: dict[str, DeadLetterSample] = {}
    for label, node in job.plan.nodes.items():
        tag = getattr(node, "dead_tag", None)
        if tag is None:
            tag = getattr(getattr(node, "transform", None), "dead_letter_tag", None)
        if tag is not None:
            sample = DeadLetterSample(label)
            node.connect(sample, 0, tag)
            samples[label] = sample
    return samples


def collect_samples(collector: JobCollector) -> Samples:
    """The collector's samples as {sample name: [(labels, value)]}: exactly what ``/metrics`` renders."""
    out: Samples = {}
    for family in collector.collect():
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def _finite(value: float | None) -> float | str | None:
    """JSON has no infinity: +inf becomes the string "+inf" (as in ``/status``)."""
    if value is None or math.isfinite(value):
        return value
    return "+inf" if value > 0 else "-inf"


class ConsoleModel:
    """The console's view of one job: call `tick` on a timer, `document` for the page."""

    def __init__(
        self,
        job: Any,
        collector: JobCollector,
        dead_letter_samples: dict[str, DeadLetterSample],
        *,
        history_interval_s: float = HISTORY_INTERVAL_S,
        history_points: int = HISTORY_POINTS,
        backlog_age_s: float = BACKLOG_AGE_S,
    ) -> None:
        if history_interval_s <= 0 or history_points < 2:
            raise ValueError("the console history needs an interval > 0 and at least 2 points")
        self.job = job
        self.collector = collector
        self.dead_letter_samples = dead_letter_samples
        self.history_interval_s = history_interval_s
        self.backlog_age_s = backlog_age_s
        #: (wall time, one flat array of FIELDS per step in `labels` order (NaN: none), system lag); flat
        #: float arrays, not dicts of tuples: 200 steps x 360 samples take ~3 MB instead of ~12 MB
        self.labels = list(job.plan.nodes)
        self._position = {label: i for i, label in enumerate(self.labels)}
        self.history: deque[tuple[float, array, float]] = deque(maxlen=history_points)
        self.checkpoints: deque[dict[str, Any]] = deque(maxlen=CHECKPOINTS_KEPT)
        self._checkpoints_seen = 0
        self._dead_before: dict[str, float] = {}
        self._dead_now: dict[str, float] = {}

    # -- sampling --------------------------------------------------------------------------------------------
    def tick(self, now_wall: float | None = None) -> None:
        """Take one history sample and note a finished checkpoint (call every `history_interval_s`)."""
        now_wall = time.time() if now_wall is None else now_wall
        samples = collect_samples(self.collector)
        self.note_checkpoint(now_wall)
        wm_in, wm_out = (
            _per_step(samples, "millstream_step_input_watermark_seconds"),
            _per_step(samples, "millstream_step_output_watermark_seconds"),
        )
        e_in, e_out = (
            _per_step(samples, "millstream_step_elements_in_total"),
            _per_step(samples, "millstream_step_elements_out_total"),
        )
        point = array("d")
        for label in self.labels:
            i, o = wm_in.get(label), wm_out.get(label)
            point.extend(
                _NAN if v is None else v for v in (i, o, _age(now_wall, i), e_in.get(label), e_out.get(label))
            )
        self.history.append((now_wall, point, _scalar(samples, "millstream_system_lag_seconds") or 0.0))
        self._dead_before = self._dead_now
        self._dead_now = _per_step(samples, "millstream_step_dead_letters_total")

    def note_checkpoint(self, now_wall: float | None = None) -> None:
        """Record the last checkpoint if it is new (call often: one taken between two calls is not listed)."""
        now_wall = time.time() if now_wall is None else now_wall
        coordinator = self.job.plan.coordinator
        if coordinator is None or coordinator.count == self._checkpoints_seen or int(coordinator.step) != 0:
            return
        self._checkpoints_seen = coordinator.count
        self.checkpoints.append(
            {
                "id": coordinator.next_id - 1,
                "finished": coordinator.last_checkpoint_wall or now_wall,
                "duration_s": coordinator.last_duration_s,
                "sources_paused_s": coordinator.last_stall_s,
                "loop_stall_s": coordinator.last_loop_stall_s,
                "records_written": coordinator.incremental.last_written,
                "state_size_bytes": self.collector.state_size(),
                "taken_so_far": coordinator.count,
            }
        )

    async def run(self) -> None:
        """Sample until cancelled (the first sample at once, so a fresh page has a point to show).

        Checkpoints are looked for every `CHECKPOINT_POLL_S`, more often than history is sampled, so that
        the list shows most checkpoints even with a long history interval.
        """
        import anyio

        next_tick = 0.0
        while True:
            now = time.monotonic()
            if now >= next_tick:
                self.tick()
                next_tick = now + self.history_interval_s
            else:
                self.note_checkpoint()
            await anyio.sleep(min(CHECKPOINT_POLL_S, max(0.0, next_tick - time.monotonic())))

    # -- the page's documents --------------------------------------------------------------------------------
    @staticmethod
    def step_state(
        *, dead_letters_rising: bool, watermark_age_s: float | None, backlog_age_s: float, job_state: str
    ) -> str:
        """How a step is coloured: ``failing``, ``backlogged``, ``running``, or the job's terminal state."""
        if job_state == "FAILED" or dead_letters_rising:
            return "failing"
        if watermark_age_s is not None and watermark_age_s > backlog_age_s:
            return "backlogged"
        return "running"

    def graph(self) -> dict[str, Any]:
        """Fused stages, their steps, and the edges between steps (across stages through the channels)."""
        plan = self.job.plan
        label_of = {id(node): label for label, node in plan.nodes.items()}
        stages = []
        for stage in plan.stages:
            steps = [label_of[id(n)] for n in stage.nodes if id(n) in label_of]
            if steps:
                stages.append({"name": stage.name, "steps": steps})
        edges = []
        for label, node in plan.nodes.items():
            for tag, consumers in node.consumers.items():
                for consumer, _index in consumers:
                    target = label_of.get(id(consumer))
                    if target is None and hasattr(consumer, "target") and hasattr(consumer, "entry"):
                        entry_node = consumer.target.entries[consumer.entry][0]  # a channel to another stage
                        target = label_of.get(id(entry_node))
                    if target is not None:
                        edges.append(
                            {
                                "from": label,
                                "to": target,
                                "tag": tag,
                                "dead_letters": tag is not None
                                and tag == getattr(node, "dead_tag", object()),
                            }
                        )
        return {"stages": stages, "edges": edges}

    def document(self, now_wall: float | None = None) -> dict[str, Any]:
        """Everything the page shows now: job, steps, edges with counts, sources, checkpoints, dead letters."""
        now_wall = time.time() if now_wall is None else now_wall
        samples = collect_samples(self.collector)
        job = self.job
        per = {
            name: _per_step(samples, metric)
            for name, metric in {
                "elements_in": "millstream_step_elements_in_total",
                "elements_out": "millstream_step_elements_out_total",
                "out_per_s": "millstream_step_throughput_elements_per_second",
                "input_watermark": "millstream_step_input_watermark_seconds",
                "output_watermark": "millstream_step_output_watermark_seconds",
                "dropped_late": "millstream_step_dropped_late_total",
                "dead_letters": "millstream_step_dead_letters_total",
                "state_entries_in_memory": "millstream_state_entries_in_memory",
                "state_entries_evicted": "millstream_state_entries_evicted_total",
            }.items()
        }
        in_rates = self._in_rates()
        graph = self.graph()
        stage_of = {step: s["name"] for s in graph["stages"] for step in s["steps"]}
        steps = []
        for label, node in job.plan.nodes.items():
            age = _age(now_wall, per["input_watermark"].get(label))
            rising = (
                per["dead_letters"].get(label, 0.0) > self._dead_before.get(label, 0.0)
                and label in self._dead_before
            )
            doc: dict[str, Any] = {
                "step": label,
                "stage": stage_of.get(label),
                "kind": type(node).__name__,
                "in_per_s": in_rates.get(label, 0.0),
                "watermark_age_s": _finite(age),
                "state": self.step_state(
                    dead_letters_rising=rising,
                    watermark_age_s=age,
                    backlog_age_s=self.backlog_age_s,
                    job_state=job.state,
                ),
            }
            for key, values in per.items():
                doc[key] = _finite(values.get(label))
            if job.state in ("DONE", "STOPPED", "CANCELLED"):
                doc["state"] = job.state.lower()
            steps.append(doc)
        elements_out = per["elements_out"]
        elements_in = per["elements_in"]
        for edge in graph["edges"]:
            # a single-input consumer's count is exactly what crossed this edge; else the producer's output
            target = job.plan.nodes[edge["to"]]
            if edge["dead_letters"]:
                edge["elements"] = per["dead_letters"].get(edge["from"], 0.0)
            elif len(target.input_wms) == 1 and _inputs_of(graph, edge["to"]) == 1:
                edge["elements"] = elements_in.get(edge["to"], 0.0)
            else:
                edge["elements"] = elements_out.get(edge["from"], 0.0)
        return {
            "job": {
                "job_id": job.job_id,
                "name": job.name,
                "state": job.state,
                "uptime_s": _scalar(samples, "millstream_job_uptime_seconds"),
            },
            "totals": {
                "throughput_eps": _scalar(samples, "millstream_throughput_elements_per_second"),
                "system_lag_s": _scalar(samples, "millstream_system_lag_seconds"),
                "output_watermark": _finite(_scalar(samples, "millstream_output_watermark_seconds")),
                "data_watermark_age_s": _scalar(samples, "millstream_data_watermark_age_seconds"),
                "state_size_bytes": _scalar(samples, "millstream_state_size_bytes"),
                "checkpoints_total": _scalar(samples, "millstream_checkpoints_total"),
                "checkpoint_in_progress": _scalar(samples, "millstream_checkpoint_in_progress"),
            },
            "steps": steps,
            "edges": graph["edges"],
            "stages": graph["stages"],
            "sources": self._sources(samples),
            "checkpoints": list(reversed(self.checkpoints)),
            "dead_letters": {
                label: list(reversed(s.latest)) for label, s in self.dead_letter_samples.items() if s.latest
            },
            "late_data": self.late_data(),
            "history_interval_s": self.history_interval_s,
        }

    def late_data(self) -> dict[str, list[dict[str, Any]]]:
        """Per step that dropped late data: its latest late elements, newest first, with their reasons."""
        out = {}
        for label, node in self.job.plan.nodes.items():
            if isinstance(node, LateDataSampler):
                latest = node.latest_late()
                if latest:
                    out[label] = latest
        return out

    def source_splits(self, step: str) -> dict[str, Any] | None:
        """The backlog of one source step per split (`SplitBacklogReader`), read now; None if `step` is not
        a source. ``splits`` is None when the source cannot tell its backlog per split."""
        for stage in self.job.plan.stages:
            driver = stage.driver
            if driver is None or driver.node.label != step:
                continue
            reader = getattr(driver, "reader", None)
            if reader is None:
                return {"step": step, "splits": None, "note": "the source is not open (yet, or any more)"}
            if not isinstance(reader, SplitBacklogReader):
                return {"step": step, "splits": None, "note": "this source cannot tell its backlog per split"}
            per_split = reader.backlog_per_split()
            return {
                "step": step,
                "splits": [{"split": name, "backlog": left} for name, left in sorted(per_split.items())],
            }
        return None

    def _in_rates(self) -> dict[str, float]:
        if len(self.history) < 2:
            return {}
        (t0, p0, _), (t1, p1, _) = self.history[-2], self.history[-1]
        span = t1 - t0
        out = {}
        for position, label in enumerate(self.labels):
            now, before = p1[position * FIELDS + 3], p0[position * FIELDS + 3]
            if span > 0 and not (math.isnan(now) or math.isnan(before)):
                out[label] = (now - before) / span
        return out

    @staticmethod
    def _sources(samples: Samples) -> list[dict[str, Any]]:
        sources: dict[str, dict[str, Any]] = {}
        for key, metric in {
            "records_read": "millstream_source_records_read_total",
            "bytes_read": "millstream_source_bytes_read_total",
            "backlog": "millstream_source_backlog",
            "progress": "millstream_source_progress_ratio",
        }.items():
            for step, value in _per_step(samples, metric).items():
                sources.setdefault(step, {"step": step})[key] = value
        return list(sources.values())

    def history_document(self, step: str | None = None) -> dict[str, Any]:
        """The ring as columns: times, system lag, and per step (all, or `step`) the watermarks and age."""
        times = [t for t, _, _ in self.history]
        steps = [step] if step is not None else self.labels
        series: dict[str, dict[str, list[Any]]] = {}
        for label in steps:
            base = self._position[label] * FIELDS
            series[label] = {
                name: [
                    _finite(None if math.isnan(point[base + k]) else point[base + k])
                    for _, point, _ in self.history
                ]
                for k, name in enumerate(("input_watermark", "output_watermark", "watermark_age_s"))
            }
        return {
            "interval_s": self.history_interval_s,
            "capacity": self.history.maxlen,
            "times": times,
            "system_lag_s": [lag for _, _, lag in self.history],
            "steps": series,
        }


def _inputs_of(graph: dict[str, Any], step: str) -> int:
    return sum(1 for e in graph["edges"] if e["to"] == step)


def _per_step(samples: Samples, name: str) -> dict[str, float]:
    return {labels["step"]: value for labels, value in samples.get(name, []) if "step" in labels}


def _scalar(samples: Samples, name: str) -> float | None:
    values = samples.get(name)
    return values[0][1] if values else None


def _age(now_wall: float, watermark: float | None) -> float | None:
    if watermark is None:
        return None
    if math.isinf(watermark):
        return 0.0
    return max(0.0, now_wall - watermark)


__all__ = ["ConsoleModel", "DeadLetterSample", "attach_dead_letter_samples", "collect_samples"]
