"""What the Beam example suite runs: every `*_test.py` under `apache_beam/examples` except the exclusions below,
each with its reason. Known failures (tests that run but do not pass yet) are listed in `known_failures.txt`."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

#: Patterns (relative to `apache_beam/examples`) of test modules that are not run, and why.
EXCLUDED: dict[str, str] = {
    "*_it_test.py": "integration test: needs a cloud service (GCS, BigQuery, Pub/Sub, Dataflow)",
    "dataframe/*": "needs Beam's DataFrame API (apache_beam.dataframe, pandas)",
    "inference/*": "needs an ML stack (RunInference with PyTorch/TensorFlow/scikit-learn models)",
    "ml_transform/*": "needs an ML stack (MLTransform with TensorFlow Transform)",
    "snippets/transforms/elementwise/mltransform_test.py": "needs an ML stack (MLTransform)",
    "snippets/transforms/elementwise/runinference_test.py": "needs an ML stack (RunInference)",
    "snippets/transforms/elementwise/enrichment_test.py": "needs cloud services (Bigtable, Vertex AI, Cloud SQL) "
    "and sqlalchemy/Milvus",
    "cookbook/bigquery_side_input_test.py": "needs BigQuery (apache_beam.io.gcp)",
    "cookbook/bigquery_tornadoes_test.py": "needs BigQuery (apache_beam.io.gcp)",
    "cookbook/filters_test.py": "imports BigQuery's test helpers (apache_beam.io.gcp.tests: BigqueryMatcher, utils) "
    "at module level for its BigQuery integration test",
}

KNOWN_FAILURES_FILE = Path(__file__).resolve().parent / "known_failures.txt"


def excluded_reason(module: str) -> str | None:
    """Why `module` (e.g. `snippets/snippets_test.py`) is not run, or None when it is run."""
    for pattern, reason in EXCLUDED.items():
        if fnmatch(module, pattern):
            return reason
    return None


def selected_modules(examples: Path) -> tuple[list[str], dict[str, str]]:
    """(test modules to run, {excluded module: reason}), paths relative to `examples`."""
    run: list[str] = []
    excluded: dict[str, str] = {}
    for path in sorted(examples.rglob("*_test.py")):
        module = path.relative_to(examples).as_posix()
        reason = excluded_reason(module)
        if reason is None:
            run.append(module)
        else:
            excluded[module] = reason
    return run, excluded


def known_failures() -> dict[str, str]:
    """{test id: reason} from `known_failures.txt` (lines `id | reason`; `#` comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for n, line in enumerate(KNOWN_FAILURES_FILE.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        ident, sep, reason = line.partition(" | ")
        if not sep or not reason.strip():
            raise ValueError(f"{KNOWN_FAILURES_FILE.name}:{n}: expected 'test id | reason', got {line!r}")
        out[ident.strip()] = reason.strip()
    return out
