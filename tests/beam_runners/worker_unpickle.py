"""Run in a fresh interpreter, as a Beam worker would: unpickle every pickled payload of a job graph.

    python -P worker_unpickle.py PAYLOADS.json

PAYLOADS.json is ``[[where, urn, base64 of the payload], ...]``. Prints one JSON line per payload that does not load:
``{"where": ..., "error": "ModuleNotFoundError: No module named 'x'"}``; exit code 1 if any did not.
Started with ``-P`` from a neutral directory so that only installed packages (millstream, apache_beam, the
standard library) are importable, as on a worker that got millstream through ``--requirements_file``.
"""

from __future__ import annotations

import base64
import json
import sys


def main(path: str) -> int:
    """Unpickle each payload in `path`; print the failures."""
    from apache_beam.internal import pickler

    with open(path) as f:
        payloads = json.load(f)
    failed = 0
    for where, urn, encoded in payloads:
        payload = base64.b64decode(encoded)
        try:
            if urn == "beam:coder:pickled_python:v1":
                # a BytesValue holding b"ClassName$" and the coder pickled with zlib (Beam's serialize_coder)
                from google.protobuf.wrappers_pb2 import BytesValue

                pickler.loads(BytesValue.FromString(payload).value.split(b"$", 1)[1], use_zlib=True)
            else:
                pickler.loads(payload)
        except Exception as e:  # every failure is a finding, whatever its type
            failed += 1
            print(json.dumps({"where": where, "error": f"{type(e).__name__}: {e}"}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
