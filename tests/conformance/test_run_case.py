"""Every conformance case, run as a TestStream pipeline on the production runtime (`run_case.py`), gives the
same panes as the reducer driven directly by `driver.py` (which `test_conformance.py` holds to Beam's
output plus the reviewed deviations): the runtime adds nothing and loses nothing — bundles, watermark and
processing-time advances, pane metadata and step attribution included."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

import pytest

from support.loading import load_module

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name: str) -> Any:
    """A module of this suite (also run as scripts, so not a package) by its file name."""
    return load_module(Path(HERE) / f"{name}.py", f"millstream_conformance_{name}")


CASES = sorted(p for p in glob.glob(os.path.join(HERE, "cases", "*", "*.json")) if "/expected/" not in p)


@pytest.mark.parametrize(
    "path", CASES, ids=[os.path.relpath(p, os.path.join(HERE, "cases"))[:-5] for p in CASES]
)
def test_runtime_matches_reducer(path):
    with open(path) as f:
        spec = json.load(f)
    driver = _load("driver")
    try:
        direct = driver.canonical_result(spec, driver.run_scenario(spec))
    except Exception as e:  # cases the oracle rejects (bad_* transcripts) must fail on the runtime too
        with pytest.raises(type(e)):
            _load("run_case").run_case(spec)
        return
    on_runtime = _load("run_case").run_case(spec)
    assert on_runtime["panes"] == direct["panes"]
