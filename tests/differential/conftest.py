"""Makes the Beam harness (tests/beam_compat/beam_harness.py) importable as `_millstream_beam_harness`."""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parent.parent / "beam_compat" / "beam_harness.py"
_spec = importlib.util.spec_from_file_location("_bootstrap_beam_harness", _path)
assert _spec is not None and _spec.loader is not None
_bootstrap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bootstrap)
_bootstrap.load_harness()
