"""Compare the protocol versions a Kafka broker accepts with the ones the installed aiokafka can send.

Usage (from the repository root):  .venv/bin/python -P tests/infra/kafka/api_versions.py 127.0.0.1:PORT

Prints one line per request type aiokafka implements: aiokafka's version range, the broker's range
(from its ApiVersions response) and the version aiokafka will pick (the highest in both). Exits 1 if
a request millstream relies on has no common version. Evidence for COMPATIBILITY.md; rerun it when
upgrading aiokafka or the Kafka the tests or users run. Uses aiokafka internals (create_conn and the
negotiated version table), so it may need adjusting after an aiokafka upgrade.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import sys
from typing import Any, cast

import aiokafka
import aiokafka.protocol
from aiokafka.conn import create_conn
from aiokafka.protocol.api import Request

# Requests millstream's Kafka source and exactly-once sink need (DESIGN.md section 5).
REQUIRED = {
    "ProduceRequest",
    "FetchRequest",
    "OffsetRequest",
    "MetadataRequest",
    "OffsetCommitRequest",
    "OffsetFetchRequest",
    "FindCoordinatorRequest",
    "JoinGroupRequest",
    "HeartbeatRequest",
    "LeaveGroupRequest",
    "SyncGroupRequest",
    "InitProducerIdRequest",
    "AddPartitionsToTxnRequest",
    "AddOffsetsToTxnRequest",
    "EndTxnRequest",
    "TxnOffsetCommitRequest",
}


def aiokafka_requests() -> dict[int, tuple[str, int, int]]:
    """API key -> (request class name, lowest and highest version aiokafka can build)."""
    found: dict[int, tuple[str, int, int]] = {}
    for info in pkgutil.iter_modules(aiokafka.protocol.__path__):
        module = importlib.import_module(f"aiokafka.protocol.{info.name}")
        for name, obj in vars(module).items():
            if not (inspect.isclass(obj) and issubclass(obj, Request)) or obj is Request:
                continue
            if obj.__module__ != module.__name__:
                continue
            request_type = cast("type[Request[Any]]", obj)
            versions = [struct.API_VERSION for struct in request_type._CLASSES]
            found[request_type.API_KEY] = (name, min(versions), max(versions))
    return found


async def broker_versions(bootstrap: str) -> dict[int, tuple[int, int]]:
    """API key -> (min, max) version from the broker's ApiVersions response."""
    host, port = bootstrap.rsplit(":", 1)
    conn = await create_conn(host, int(port))
    try:
        return dict(conn._versions)
    finally:
        conn.close()


def main(bootstrap: str) -> int:
    """Print the comparison; return 1 if a required request has no common version."""
    broker = asyncio.run(broker_versions(bootstrap))
    print(f"aiokafka {aiokafka.__version__} against {bootstrap}")
    broken = []
    for key, (name, low, high) in sorted(aiokafka_requests().items()):
        if key not in broker:
            verdict, usable = "broker lacks this API", []
        else:
            bmin, bmax = broker[key]
            usable = [v for v in range(low, high + 1) if bmin <= v <= bmax]
            verdict = f"broker v{bmin}-v{bmax}  -> " + (
                f"sends v{max(usable)}" if usable else "NO COMMON VERSION"
            )
        if not usable and name in REQUIRED:
            broken.append(name)
        print(f"{key:3} {name:36} aiokafka v{low}-v{high}  {verdict}")
    if broken:
        print(f"unusable requests millstream needs: {', '.join(broken)}")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
