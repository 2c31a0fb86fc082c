"""(b) A sample of the conformance scenarios: millstream's reducer in Beam-compat mode (``beam_python_compat``,
which equals Beam's oracle, tests/conformance) and the same scenario translated to Beam and run on Prism
(LOOPBACK and EXTERNAL) give identical panes: key, window, value, timestamp and every PaneInfo field but one.

Differences, as docs/runners.md says: timestamps compare in milliseconds (a window's max timestamp is
9.999999 here and 9.999 on Prism); Prism marks the pane fired at window expiry ``is_last`` (checked exactly);
the TestStream step a pane came out at is not compared (Prism does not expose it). Processing-time scenarios
are not sampled (Prism runs them on its own clock).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apache_beam")

import apache_beam  # noqa: E402

import millstream as beam  # noqa: E402
from millstream.engine.model.timestamp import to_micros  # noqa: E402
from millstream.engine.model.window import GlobalWindow  # noqa: E402
from millstream.options.pipeline_options import PipelineOptions, StandardOptions  # noqa: E402

from support.loading import load_by_value, load_module  # noqa: E402

HERE = Path(__file__).resolve().parent
cap = load_by_value(HERE / "capture.py", "_ms_prism_capture")
sample = load_by_value(HERE / "conformance_sample.py", "_ms_prism_conformance_sample")
direct = load_by_value(HERE / "beam_direct.py", "_ms_prism_beam_direct")
CONFORMANCE = Path(__file__).resolve().parents[1] / "conformance"


def _driver() -> Any:
    return load_module(CONFORMANCE / "driver.py", "millstream_conformance_driver")


#: Scenarios on which Prism and Beam's Python SDK agree (default trigger, timestamp combiners, watermark
#: trigger with late firings in discarding mode). Where Prism differs from the Python SDK it is Prism's own
#: behaviour (PRISM_OWN below, docs/runners.md); those scenarios are not normalised away here.
CASES = [
    "beam_transcripts/00_fixed_default",
    "beam_transcripts/03_timestamp_combiner_earliest",
    "beam_transcripts/04_timestamp_combiner_latest",
    "random/001_fixed-watermark_late-disc-lat0",
]


def _ms(micros: int) -> int:
    return micros // 1000  # Beam's portable runners keep milliseconds; floor maps x.999999 to x.999


def local_panes(spec: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The reducer's panes in Beam-compat mode, in the recorded form, timestamps in ms."""
    out = []
    for _step, (key, w, value, ts, info) in _driver().run_scenario(spec, beam_python_compat=True):
        where = "GLOBAL" if isinstance(w, GlobalWindow) else (_ms(w.start_us), _ms(w.end_us))
        out.append(
            (
                key,
                where,
                value if isinstance(value, int) else sorted(value),
                _ms(ts),
                info.timing.name,
                info.is_first,
                info.is_last,
                info.index,
                info.nonspeculative_index,
            )
        )
    return sorted(out, key=repr)


def prism_panes(spec: dict[str, Any], flags: list[str], out: Path) -> list[tuple[Any, ...]]:
    out.mkdir()
    options = PipelineOptions(flags)
    options.view_as(StandardOptions).streaming = True
    with beam.Pipeline(options=options) as p:
        sample.build(
            p,
            spec,
            _driver().reducer_kwargs(spec),
            to_micros,
            lambda pc: cap.capture(beam, pc, "panes", str(out)),
        )
    with open(out / "panes.lines", "rb") as f:
        import base64
        import pickle

        raw = [pickle.loads(base64.b64decode(line)) for line in f if line.strip()]
    return sorted(
        (
            (k, w if w == "GLOBAL" else (_ms(w[0]), _ms(w[1])), v, _ms(ts), *info)
            for k, w, v, ts, *info in raw
        ),
        key=repr,
    )


@pytest.mark.parametrize("case", CASES)
def test_conformance_scenario_on_prism_equals_compat_mode(case, prism_flags, tmp_path):
    with open(CONFORMANCE / "cases" / f"{case}.json") as f:
        spec = json.load(f)
    assert not _driver().reducer_kwargs(spec)["trigger"].uses_processing_time()
    local = local_panes(spec)
    assert local, "the scenario produced no panes locally"
    on_prism = prism_panes(spec, prism_flags, tmp_path / "prism")
    assert [p[:6] + p[7:] for p in on_prism] == [p[:6] + p[7:] for p in local]  # all but is_last (index 6)
    # is_last: Prism, as Java, marks the pane fired when the window expires as the last one; Python never does
    # at that moment. Every other pane agrees.
    last_index = {}
    for p in on_prism:
        last_index[(p[0], p[1])] = max(last_index.get((p[0], p[1]), -1), p[7])
    for mine, theirs in zip(local, on_prism):
        if mine[6] != theirs[6]:
            assert (mine[6], theirs[6]) == (False, True) and theirs[7] == last_index[
                (theirs[0], theirs[1])
            ], theirs


#: One scenario per way Prism's panes differ from Beam's Python SDK (docs/runners.md, "Prism's own
#: behaviour"): each is run through millstream's translation and written directly with apache_beam, on the
#: same Prism, and the two must agree -- so the difference is Prism's, not the translation's.
PRISM_OWN = {
    # a final pane repeating the last one when the window expires (closing behaviour EMIT_ALWAYS)
    "beam_transcripts/01_fixed_default_late_data": "closing pane",
    # no empty ON_TIME pane in discarding mode after early firings took every element
    "beam_transcripts/09_discarding_early_fixed": "no empty on-time pane",
    # AfterAny(...) finished on an early firing in Python; Prism still fires the ON_TIME pane
    "random/004_fixed-any-accu-lat0": "fires after the trigger finished",
    # nested AfterEach in the global window: an extra early pane and a final ON_TIME pane per key
    "random/012_global-nested-accu-lat0": "nested triggers, global window",
    # earliest-timestamp combiner with late data: Prism's pane timestamp counts the late element's
    "beam_transcripts/11_known_late_data_watermark": "pane timestamp with late data",
    # merging windows with a stateful trigger are refused by Prism (apache/beam#31438)
    "beam_transcripts/08_early_late_sessions": "sessions refused",
}


def _direct_panes(spec: dict[str, Any], flags: list[str], out: Path) -> list[tuple[Any, ...]]:
    from apache_beam.options.pipeline_options import PipelineOptions as BeamOptions
    from apache_beam.options.pipeline_options import StandardOptions as BeamStandardOptions

    out.mkdir()
    path = str(out / "panes.lines")
    open(path, "ab").close()
    options = BeamOptions(flags)
    options.view_as(BeamStandardOptions).streaming = True
    with apache_beam.Pipeline(options=options) as p:
        direct.build(p, spec, path)
    return cap_rows(path)


def cap_rows(path: str) -> list[tuple[Any, ...]]:
    """Recorded panes, timestamps in ms, sorted."""
    import base64
    import pickle

    with open(path, "rb") as f:
        raw = [pickle.loads(base64.b64decode(line)) for line in f if line.strip()]
    return sorted(
        (
            (k, w if w == "GLOBAL" else (_ms(w[0]), _ms(w[1])), v, _ms(ts), *info)
            for k, w, v, ts, *info in raw
        ),
        key=repr,
    )


def _outcome(run: Any) -> Any:
    """The panes, or the first line of the error's details (Prism refuses some pipelines at submission)."""
    try:
        return run()
    except Exception as e:  # both ways must fail alike; the message is compared
        text = str(e)
        marker = "unsupported feature"
        return ("error", text[text.index(marker) :].splitlines()[0] if marker in text else type(e).__name__)


@pytest.mark.parametrize("case", sorted(PRISM_OWN), ids=lambda c: PRISM_OWN[c].replace(" ", "_"))
def test_prism_differences_are_prisms_own(case, prism_flags, tmp_path):
    with open(CONFORMANCE / "cases" / f"{case}.json") as f:
        spec = json.load(f)
    flags = [*prism_flags, "--allow_unsafe_triggers"]  # Beam refuses AfterAny(... finishing) without it
    ours = _outcome(lambda: prism_panes(spec, flags, tmp_path / "ours"))
    theirs = _outcome(lambda: _direct_panes(spec, flags, tmp_path / "direct"))
    assert ours == theirs
    if isinstance(ours, tuple):
        assert "merging windows" in ours[1]
    else:  # the scenario still shows a difference from Beam's Python SDK beyond is_last
        assert [p[:6] + p[7:] for p in ours] != [p[:6] + p[7:] for p in local_panes(spec)]
