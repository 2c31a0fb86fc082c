"""Which Prism binary `--runner=PrismRunner` runs: ``--prism_location``, else ``$MILLSTREAM_PRISM``, else the
cached build (``$MILLSTREAM_CACHE/prism/<apache-beam version>/prism``); a clear error otherwise, never a
download. The binaries here are small executable files: nothing is started."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("apache_beam")

import apache_beam  # noqa: E402
from apache_beam.options.pipeline_options import PrismRunnerOptions  # noqa: E402
from apache_beam.runners.portability.prism_runner import PrismJobServer  # noqa: E402

import millstream as beam  # noqa: E402
from millstream.engine.translate.beam.runner import (  # noqa: E402
    PRISM_ENV,
    PrismRunner,
    RunnerSetupError,
    beam_options,
    resolve_prism_location,
    set_prism_location,
)
from millstream.options.pipeline_options import PipelineOptions  # noqa: E402


def _binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An option binary, an env-var binary and a cached build, all present; the env var not yet set."""
    monkeypatch.delenv(PRISM_ENV, raising=False)
    monkeypatch.setenv("MILLSTREAM_CACHE", str(tmp_path / "cache"))
    return {
        "option": _binary(tmp_path / "opt" / "prism"),
        "env": _binary(tmp_path / "env" / "prism"),
        "cache": _binary(tmp_path / "cache" / "prism" / apache_beam.__version__ / "prism"),
    }


def test_the_option_comes_first_then_the_env_var_then_the_cache(places, monkeypatch):
    monkeypatch.setenv(PRISM_ENV, str(places["env"]))
    assert resolve_prism_location(str(places["option"])) == str(places["option"])
    assert resolve_prism_location(None) == str(places["env"])
    monkeypatch.delenv(PRISM_ENV)
    assert resolve_prism_location(None) == str(places["cache"])


def test_a_given_location_that_is_not_a_binary_is_an_error_not_a_fall_through(places, monkeypatch, tmp_path):
    monkeypatch.setenv(PRISM_ENV, str(places["env"]))
    with pytest.raises(RunnerSetupError, match=r"--prism_location=.*/missing is not an executable file"):
        resolve_prism_location(str(tmp_path / "missing"))
    not_executable = tmp_path / "plain"
    not_executable.write_text("")
    monkeypatch.setenv(PRISM_ENV, str(not_executable))
    with pytest.raises(RunnerSetupError, match=rf"\${PRISM_ENV}=.*/plain is not an executable file"):
        resolve_prism_location(None)
    # a URL is not fetched (Beam's own lookup would download it)
    with pytest.raises(RunnerSetupError, match="nothing is downloaded"):
        resolve_prism_location("https://github.com/apache/beam/releases/tag/v2.78.0")


def test_no_binary_anywhere_names_the_three_places(places, monkeypatch):
    places["cache"].unlink()
    with pytest.raises(RunnerSetupError) as raised:
        resolve_prism_location(None)
    message = str(raised.value)
    assert "--prism_location" in message and f"${PRISM_ENV}" in message and str(places["cache"]) in message
    assert "nothing is downloaded" in message


def test_a_pipeline_without_a_binary_fails_before_submission(places):
    places["cache"].unlink()
    p = beam.Pipeline(runner="PrismRunner")
    _ = p | beam.Create([1]) | beam.Map(lambda x: x)
    with pytest.raises(RunnerSetupError, match="PrismRunner needs the prism binary"):
        p.run()


def test_beams_prism_server_gets_the_resolved_binary_and_downloads_nothing(places):
    """Beam's own job-server lookup, given the options we built, resolves to the cached binary itself."""
    opts = beam_options(PipelineOptions(["--runner=PrismRunner"]), "PrismRunner")
    assert opts.view_as(PrismRunnerOptions).prism_location is None
    assert set_prism_location(opts) == str(places["cache"])
    assert opts.view_as(PrismRunnerOptions).prism_location == str(places["cache"])
    assert PrismJobServer(opts)._resolve_source_path() == str(places["cache"])


def test_the_pipeline_submitted_to_prism_carries_the_resolved_binary(places):
    """What `run()` submits: the translated pipeline's own options (a copy Beam made) name the binary."""
    p = beam.Pipeline(runner="PrismRunner")
    _ = p | beam.Create([1]) | beam.Map(lambda x: x)
    bp = PrismRunner().prepare(p, p.options)
    assert bp.options.view_as(PrismRunnerOptions).prism_location == str(places["cache"])
    assert PrismJobServer(bp.options)._resolve_source_path() == str(places["cache"])
