"""Makes the Beam harness importable as `_millstream_beam_harness` (see beam_harness.py for why)."""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("_bootstrap_beam_harness", Path(__file__).with_name("beam_harness.py"))
assert _spec is not None and _spec.loader is not None
_bootstrap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bootstrap)
_bootstrap.load_harness()
