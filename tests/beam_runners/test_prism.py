"""The same pipelines run locally and on Beam's Prism runner (LOOPBACK and EXTERNAL worker pool): equal outputs.

Each pipeline is built by one function from `millstream` only; it runs once on millstream's runner and once
translated to Beam (`engine/translate/beam`) on Prism, capturing its outputs into files (a worker pool is
another process). (a) the Beam-compatibility programs, (b) conformance scenarios in Beam-compat mode,
(c) a stateful DoFn with timers, (d) a file-to-file job with windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("apache_beam")

from support.loading import load_by_value  # noqa: E402

HERE = Path(__file__).resolve().parent
cap = load_by_value(HERE / "capture.py", "_ms_prism_capture")
ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = ROOT / "tests" / "beam_compat" / "programs"

LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "The dog's bark; the fox's den -- and the 2 foxes' dens!",
    "über naïve café, the end",
]


def program(name: str) -> Any:
    return load_by_value(PROGRAMS / f"{name}.py", f"_ms_prism_program_{name}")


def run_program(name: str, out: Path, flags: list[str], *args: Any) -> dict[str, list[Any]]:
    out.mkdir(parents=True)
    module = program(name)
    import millstream

    module.run(*args, argv=flags, capture=lambda pc, label: cap.capture(millstream, pc, label, str(out)))
    return cap.read(str(out))


#: Outputs that are random samples (combiners_library's Sample transforms).
RANDOM = {"sample", "sample_per_key"}

COMPAT = [
    ("wordcount", (LINES,)),
    ("side_inputs", ()),
    ("multiple_outputs", ()),
    ("combiners_library", ()),
    ("cogroupbykey_join", ()),
    ("user_metrics", (LINES,)),
]


@pytest.mark.parametrize("name,args", COMPAT, ids=[c[0] for c in COMPAT])
def test_beam_compat_program_on_prism_equals_local(name, args, prism_flags, tmp_path):
    local = run_program(name, tmp_path / "local", ["--runner=DirectRunner"], *args)
    on_prism = run_program(name, tmp_path / "prism", prism_flags, *args)
    assert local and any(local.values()), "the program captured nothing locally"
    assert sorted(on_prism) == sorted(local)
    for label in local:
        if label in RANDOM:  # random samples: the same number of samples, each of the same size
            assert [len(v[1]) if isinstance(v, tuple) else v for v in on_prism[label]] == [
                len(v[1]) if isinstance(v, tuple) else v for v in local[label]
            ], label
        else:
            assert on_prism[label] == local[label], label
