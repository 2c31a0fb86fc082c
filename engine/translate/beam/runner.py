"""Beam runners for millstream pipelines: translate the graph (`translator.translate`) and hand it to Beam.

`Pipeline.run()` picks these by name (`--runner=PrismRunner`, `PortableRunner`, `DataflowRunner`,
`FlinkRunner`, `SparkRunner`; see `engine/model/pipeline.py`'s RUNNERS). Pipeline options pass through to
Beam unchanged (``--project``, ``--region``, ``--temp_location``, ``--job_name``, ``--environment_type``,
``--sdk_location=container``, ``--requirements_file``/``--setup_file`` ...); millstream's own runtime options
are ignored by Beam. For Prism the binary is ``--prism_location``, else ``$MILLSTREAM_PRISM``, else the one
``tests/infra/go-build.sh prism`` built (``$MILLSTREAM_CACHE/prism/<apache-beam version>/prism``); nothing is
downloaded (`resolve_prism_location`). The result has the local runner's API: `wait_until_finish()`, `state`,
`metrics()`.

>>> import millstream as ms
>>> p = ms.Pipeline(argv=["--runner=PrismRunner", "--environment_type=LOOPBACK"])
>>> _ = p | ms.Create([1, 2, 3]) | ms.Map(print)
>>> p.run().wait_until_finish()  # doctest: +SKIP
'DONE'
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from millstream.engine.model.metrics import MetricsFilter
from millstream.engine.model.options import PipelineOptions

log = logging.getLogger(__name__)

#: Where the Prism binary is looked for when ``--prism_location`` is not given.
PRISM_ENV = "MILLSTREAM_PRISM"

#: Where a user watches a job on each runner (the progress line says it; `millstream jobs` lists local jobs only).
WATCH = {
    "PrismRunner": "Prism's log (and its web UI when started with --serve_http)",
    "PortableRunner": "the job server's UI (Prism, Flink or Spark)",
    "DataflowRunner": "the Dataflow page of the Cloud console, or `gcloud dataflow jobs list`",
    "FlinkRunner": "the Flink web UI",
    "SparkRunner": "the Spark web UI",
}


class RunnerSetupError(ValueError):
    """A Beam runner cannot be set up as configured (e.g. no Prism binary); raised before submission."""


def _cached_prism() -> str:
    """Where tests/infra/go-build.sh prism puts the binary for the installed apache-beam version."""
    import apache_beam

    cache = os.environ.get("MILLSTREAM_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "millstream"
    )
    return os.path.join(cache, "prism", apache_beam.__version__, "prism")


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def resolve_prism_location(option: str | None = None) -> str:
    """The Prism binary to run, looked up in a fixed order and never downloaded.

    1. `option` (``--prism_location``), 2. ``$MILLSTREAM_PRISM``, 3. the cached build of
    tests/infra/go-build.sh prism, ``$MILLSTREAM_CACHE/prism/<apache-beam version>/prism`` (``$MILLSTREAM_CACHE``
    defaults to ``~/.cache/millstream``). The first one given wins: a given location that is not an executable
    file is an error naming where it came from, never a fall-through to the next place (nor to Beam's own
    lookup, which downloads a release from GitHub). Returns an absolute path; raises `RunnerSetupError`.
    """
    for where, value in (("--prism_location", option), (f"${PRISM_ENV}", os.environ.get(PRISM_ENV))):
        if value:
            if not _executable(value):
                raise RunnerSetupError(
                    f"PrismRunner: {where}={value} is not an executable file (a local Prism binary is needed; "
                    "nothing is downloaded)"
                )
            return os.path.abspath(value)
    cached = _cached_prism()
    if _executable(cached):
        return cached
    raise RunnerSetupError(
        f"PrismRunner needs the prism binary: none at --prism_location, ${PRISM_ENV} or {cached}; build it with "
        "tests/infra/go-build.sh prism (Go) or pass --prism_location=PATH (nothing is downloaded)"
    )


def default_prism_location() -> str | None:
    """The binary `resolve_prism_location` finds without ``--prism_location``, or None when there is none."""
    try:
        return resolve_prism_location(None)
    except RunnerSetupError:
        return None


def beam_options(options: PipelineOptions, runner: str) -> Any:
    """Beam's PipelineOptions from millstream's: the same flags and keyword values, the runner named.

    For ``PrismRunner`` the Prism binary is not resolved here (so that a step that cannot be translated is
    reported first): `set_prism_location` does it before submission."""
    from apache_beam.options.pipeline_options import PipelineOptions as BeamOptions

    flags = [f for f in options._flags if not f.startswith("--runner")]
    overrides = dict(options._overrides)
    overrides.pop("runner", None)
    # Beam warns about every millstream-only flag ("Discarding unparseable args"); they are expected here.
    logging.getLogger("apache_beam.options.pipeline_options").setLevel(logging.ERROR)
    return BeamOptions(flags, runner=runner, **overrides)


def set_prism_location(beam_opts: Any) -> str:
    """Put the binary `resolve_prism_location` finds into Beam's options (``prism_location``) and return it."""
    from apache_beam.options.pipeline_options import PrismRunnerOptions

    view = beam_opts.view_as(PrismRunnerOptions)
    view.prism_location = resolve_prism_location(view.prism_location)
    return str(view.prism_location)


def _beam_filter(f: Any) -> Any:
    from apache_beam.metrics.metric import MetricsFilter as BeamFilter

    if f is None or not isinstance(f, MetricsFilter):
        return f
    out = BeamFilter()
    for name in f.names:
        out = out.with_name(name)
    for ns in f.namespaces:
        out = out.with_namespace(ns)
    for step in f.steps:
        out = out.with_step(step)
    return out


class BeamMetrics:
    """The run's metrics from Beam's result; `query` takes millstream's or Beam's `MetricsFilter`."""

    def __init__(self, beam_metrics: Any) -> None:
        self._metrics = beam_metrics

    def query(self, filter: Any = None) -> dict[str, list[Any]]:
        """Counters, distributions and gauges matching `filter` (Beam's MetricResult objects)."""
        result: dict[str, list[Any]] = self._metrics.query(_beam_filter(filter))
        return result


class BeamPipelineResult:
    """A pipeline run on a Beam runner: `wait_until_finish()`, `state`, `metrics()`, and `beam_result`."""

    def __init__(self, beam_result: Any, runner: str) -> None:
        self.beam_result = beam_result
        self.runner = runner

    @property
    def state(self) -> str:
        """Beam's job state name (``DONE``, ``RUNNING``, ``FAILED``, ...)."""
        return str(self.beam_result.state)

    def wait_until_finish(self, duration: Any = None) -> str:
        """Wait for the job (at most `duration` ms, as in Beam); raises if the job failed."""
        started = time.monotonic()
        self.beam_result.wait_until_finish(duration)
        log.info("%s job ended: %s (%.1f s)", self.runner, self.state, time.monotonic() - started)
        return self.state

    def metrics(self) -> BeamMetrics:
        """The job's metrics, as Beam reports them."""
        return BeamMetrics(self.beam_result.metrics())


class BeamRunner:
    """Runs a millstream pipeline on the Beam runner named `runner_name`."""

    runner_name = "PrismRunner"

    def prepare(self, pipeline: Any, options: PipelineOptions) -> Any:
        """The Beam pipeline to submit: `pipeline` translated (failing first if a step cannot be), then, for
        Prism, the binary resolved into its options."""
        from millstream.engine.translate.beam.translator import translate

        bp = translate(pipeline, beam_options(options, self.runner_name), options)
        if self.runner_name == "PrismRunner":
            set_prism_location(bp.options)  # Beam's Pipeline keeps a deep copy of the options given to it
        return bp

    def run_pipeline(self, pipeline: Any, options: PipelineOptions) -> BeamPipelineResult:
        """Translate `pipeline` (failing before submission if a step cannot be), then submit it."""
        bp = self.prepare(pipeline, options)
        bopts = bp.options
        # named as `millstream run` names local jobs: --job_name, else the script's name
        name = bopts.get_all_options().get("job_name") or os.path.splitext(os.path.basename(sys.argv[0]))[0]
        log.info(
            "job %s submitted to %s: watch it in %s",
            name,
            self.runner_name,
            WATCH.get(self.runner_name, "the runner's UI"),
        )
        return BeamPipelineResult(bp.run(), self.runner_name)


def _runner(name: str) -> type[BeamRunner]:
    return type(
        name, (BeamRunner,), {"runner_name": name, "__doc__": f"Beam's {name}, through the translator."}
    )


PrismRunner = _runner("PrismRunner")
PortableRunner = _runner("PortableRunner")
DataflowRunner = _runner("DataflowRunner")
FlinkRunner = _runner("FlinkRunner")
SparkRunner = _runner("SparkRunner")

__all__ = [
    "BeamPipelineResult",
    "BeamRunner",
    "DataflowRunner",
    "FlinkRunner",
    "PortableRunner",
    "PrismRunner",
    "RunnerSetupError",
    "SparkRunner",
    "beam_options",
    "default_prism_location",
    "resolve_prism_location",
    "set_prism_location",
]
