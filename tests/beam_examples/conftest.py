"""Makes this folder's helpers importable: tests run in importlib mode, without packages."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
