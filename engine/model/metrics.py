"""User metrics with Beam's API: `Metrics.counter / distribution / gauge`, queried from the run result."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricName:
    """A metric's namespace and name."""

    namespace: str
    name: str


@dataclass(frozen=True)
class MetricKey:
    """A metric as reported: the step it was updated in and its name."""

    step: str
    metric: MetricName


@dataclass
class DistributionResult:
    """Count, sum, min and max of the values a distribution saw."""

    count: int = 0
    sum: float = 0
    min: float | None = None
    max: float | None = None

    @property
    def mean(self) -> float | None:
        """The mean, or None when empty."""
        return self.sum / self.count if self.count else None


@dataclass
class GaugeResult:
    """The last value set on a gauge and the processing time (µs) it was set at."""

    value: Any = None
    timestamp: int = 0


@dataclass
class MetricResult:
    """One metric's value; `committed` and `attempted` are equal on one machine."""

    key: MetricKey
    committed: Any
    attempted: Any

    @property
    def result(self) -> Any:
        """The committed value."""
        return self.committed


class MetricsContainer:
    """All metric cells of one run, keyed by (step, namespace, name)."""

    def __init__(self) -> None:
        self.counters: dict[MetricKey, int] = {}
        self.distributions: dict[MetricKey, DistributionResult] = {}
        self.gauges: dict[MetricKey, GaugeResult] = {}
        self.step = "<unknown>"
        self.now_us: Any = lambda: 0


#: The metrics container of the job whose code is running (a context variable: each job's tasks inherit it).
_current: contextvars.ContextVar[MetricsContainer | None] = contextvars.ContextVar(
    "millstream_metrics", default=None
)


def set_current_container(container: MetricsContainer | None) -> None:
    """Make `container` receive metric updates in this context (the runtime sets it per job)."""
    _current.set(container)


def set_current_step(step: str) -> None:
    """Attribute subsequent metric updates to `step` (the runtime sets it before user code runs)."""
    c = _current.get()
    if c is not None:
        c.step = step


class Metrics:
    """Factory of user metrics, as in Beam: `Metrics.counter(namespace, name).inc()`."""

    @staticmethod
    def _ns(namespace: Any) -> str:
        if isinstance(namespace, type):
            return f"{namespace.__module__}.{namespace.__name__}"  # Beam's Metrics.get_namespace
        return str(namespace)

    @staticmethod
    def counter(namespace: Any, name: str) -> Counter:
        """A counter (sum of increments)."""
        return Counter(MetricName(Metrics._ns(namespace), name))

    @staticmethod
    def distribution(namespace: Any, name: str) -> Distribution:
        """A distribution (count, sum, min, max of updates)."""
        return Distribution(MetricName(Metrics._ns(namespace), name))

    @staticmethod
    def gauge(namespace: Any, name: str) -> Gauge:
        """A gauge (last value set)."""
        return Gauge(MetricName(Metrics._ns(namespace), name))


class _Metric:
    __slots__ = ("metric_name",)

    def __init__(self, metric_name: MetricName) -> None:
        self.metric_name = metric_name

    def _key(self) -> tuple[MetricsContainer | None, MetricKey | None]:
        c = _current.get()
        if c is None:
            return None, None
        return c, MetricKey(c.step, self.metric_name)


class Counter(_Metric):
    """A metric that sums increments."""

    def inc(self, n: int = 1) -> None:
        """Add `n`."""
        c, key = self._key()
        if c is not None and key is not None:
            c.counters[key] = c.counters.get(key, 0) + n

    def dec(self, n: int = 1) -> None:
        """Subtract `n`."""
        self.inc(-n)


class Distribution(_Metric):
    """A metric that tracks count, sum, min and max of values."""

    def update(self, value: float) -> None:
        """Record one value."""
        c, key = self._key()
        if c is None or key is None:
            return
        d = c.distributions.get(key)
        if d is None:
            d = c.distributions[key] = DistributionResult()
        d.count += 1
        d.sum += value
        d.min = value if d.min is None or value < d.min else d.min
        d.max = value if d.max is None or value > d.max else d.max


class Gauge(_Metric):
    """A metric that keeps the last value set."""

    def set(self, value: Any) -> None:
        """Set the current value."""
        c, key = self._key()
        if c is not None and key is not None:
            c.gauges[key] = GaugeResult(value, c.now_us())


class MetricsFilter:
    """Select metrics by name, namespace or step (Beam's MetricsFilter)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.namespaces: set[str] = set()
        self.steps: set[str] = set()

    def with_name(self, name: str) -> MetricsFilter:
        """Only metrics with this name."""
        self.names.add(name)
        return self

    def with_names(self, names: Any) -> MetricsFilter:
        """Only metrics with these names."""
        self.names.update(names)
        return self

    def with_namespace(self, namespace: Any) -> MetricsFilter:
        """Only metrics in this namespace."""
        self.namespaces.add(Metrics._ns(namespace))
        return self

    def with_namespaces(self, namespaces: Any) -> MetricsFilter:
        """Only metrics in these namespaces."""
        self.namespaces.update(Metrics._ns(n) for n in namespaces)
        return self

    def with_step(self, step: str) -> MetricsFilter:
        """Only metrics updated in this step (a full label or a sub-path of one)."""
        self.steps.add(step)
        return self

    def matches(self, key: MetricKey) -> bool:
        """True when `key` passes the filter."""
        if self.names and key.metric.name not in self.names:
            return False
        if self.namespaces and key.metric.namespace not in self.namespaces:
            return False
        if self.steps and not any(
            s == key.step or s in key.step.split("/") or key.step.startswith(s + "/") for s in self.steps
        ):
            return False
        return True


class MetricResults:
    """The metrics of a run; `query(filter)` returns counters, distributions and gauges."""

    COUNTERS = "counters"
    DISTRIBUTIONS = "distributions"
    GAUGES = "gauges"

    def __init__(self, container: MetricsContainer) -> None:
        self._container = container

    def query(self, filter: MetricsFilter | None = None) -> dict[str, list[MetricResult]]:  # noqa: A002
        """Metrics matching `filter`, grouped by kind."""
        f = filter or MetricsFilter()
        c = self._container
        return {
            self.COUNTERS: [MetricResult(k, v, v) for k, v in c.counters.items() if f.matches(k)],
            self.DISTRIBUTIONS: [MetricResult(k, v, v) for k, v in c.distributions.items() if f.matches(k)],
            self.GAUGES: [MetricResult(k, v, v) for k, v in c.gauges.items() if f.matches(k)],
        }
