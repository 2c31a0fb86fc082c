"""The file kill -9 job (tests/files/kill_files_job.py: a CSV replay into sharded text, JSON-lines and CSV)
on local files or a gs:// bucket: its input, the harness around it, and the check of what it committed.

A `Store` is where the job reads ``in/`` and writes ``out/``: `LocalStore` (a directory) or `BucketStore` (a
bucket of the GCS fixture); names are listed one level deep, as a directory listing shows them.

Example::

    >>> import tempfile
    >>> store = LocalStore(tempfile.mkdtemp())
    >>> len(make_input(store, 3, 2))
    5
    >>> sorted(n.rsplit("/", 1)[1] for n in store.names("in/"))
    ['a.csv', 'b.csv.gz']
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from typing import Any, Protocol

from support.kill9 import KilledJob, script_command

__all__ = ["JOB", "BucketStore", "LocalStore", "Store", "check_exactly_once", "make_input", "replay_job"]

#: The job script.
JOB = str(Path(__file__).resolve().parents[1] / "files" / "kill_files_job.py")


class Store(Protocol):
    """Where the job's input and output live."""

    #: What the name of a completed run's output matches: Beam's batch names only (the per-checkpoint
    #: files are merged into them).
    final: re.Pattern[str]

    def url(self, path: str) -> str:
        """The path or URL the job is given for `path`."""
        ...

    def put(self, path: str, data: bytes) -> None:
        """Write a file or object."""
        ...

    def get(self, name: str) -> bytes:
        """Read a file or object by a name `names` returned."""
        ...

    def names(self, prefix: str) -> list[str]:
        """The names (sorted) of what is directly in the folder of `prefix` and starts with it."""
        ...


class LocalStore:
    """A local directory."""

    final = re.compile(r"/(text|json|csv)-\d{5}-of-\d{5}(\.txt|\.json|\.csv)?$")

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = str(root)

    def url(self, path: str) -> str:
        """The local path of `path`."""
        return os.path.join(self.root, path)

    def put(self, path: str, data: bytes) -> None:
        """Write a file (its folder is created)."""
        os.makedirs(os.path.dirname(self.url(path)), exist_ok=True)
        with open(self.url(path), "wb") as f:
            f.write(data)

    def get(self, name: str) -> bytes:
        """Read a file by its local path."""
        with open(name, "rb") as f:
            return f.read()

    def names(self, prefix: str) -> list[str]:
        """The local paths of the entries of `prefix`'s folder (hidden ones too) starting with it."""
        folder, start = os.path.split(self.url(prefix))
        if not os.path.isdir(folder):
            return []
        return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.startswith(start))


class BucketStore:
    """A bucket of the GCS fixture (tests/gcs/conftest.py's `GcsBucket`)."""

    final = re.compile(r"/(text|json|csv)-\d{5}-of-\d{5}\.(txt|json|csv)$")

    def __init__(self, bucket: Any) -> None:
        self.bucket = bucket

    def url(self, path: str) -> str:
        """gs://BUCKET/path."""
        return str(self.bucket.url(path))

    def put(self, path: str, data: bytes) -> None:
        """Upload an object."""
        self.bucket.put(path, data)

    def get(self, name: str) -> bytes:
        """An object's bytes."""
        return bytes(self.bucket.get(name))

    def names(self, prefix: str) -> list[str]:
        """Every object name under `prefix`, sorted."""
        return list(self.bucket.names(prefix))


def make_input(store: Store, plain: int, gz: int) -> list[tuple[str, int]]:
    """Write ``in/a.csv`` (`plain` rows) and ``in/b.csv.gz`` (`gz` rows); returns every (id, v) row."""
    rows = [(f"a{i}", i * 7 % 1000) for i in range(plain)]
    more = [(f"b{i}", i % 13) for i in range(gz)]
    store.put("in/a.csv", ("id,v\n" + "".join(f"{k},{v}\n" for k, v in rows)).encode())
    store.put("in/b.csv.gz", gzip.compress(("id,v\n" + "".join(f"{k},{v}\n" for k, v in more)).encode()))
    return rows + more


def checkpoints_committed(store: Store) -> set[str]:
    """The checkpoint ids that have committed output so far."""
    return {m.group(1) for n in store.names("out/") if (m := re.search(r"-c(\d{8})-", n))}


def replay_job(store: Store, state: str, **harness: Any) -> KilledJob:
    """The replay job from ``in/*.csv*`` to ``out/``, whose progress is the set of checkpoints with committed
    output; `harness` goes to `KilledJob` (deadlines, polling)."""
    argv = script_command(JOB, store.url("in/*.csv*"), store.url("out"), f"--state_dir={state}")
    return KilledJob(argv, lambda: checkpoints_committed(store), **harness)


def committed(store: Store, sink: str, header: str | None) -> list[str]:
    """The lines a completed run of `sink` committed, without headers; checks every file is a final one,
    whole, and starts with `header`."""
    lines = []
    assert not store.names(f"out/{sink}-c"), "per-checkpoint output left after completion"
    names = store.names(f"out/{sink}-")
    assert names, f"no output of {sink}"
    for name in names:
        assert store.final.search(name), name
        text = store.get(name).decode()
        assert text.endswith("\n"), f"torn output {name}"
        got = text.splitlines()
        if header is not None:
            assert got[0] == header, f"{name} starts with {got[0]!r}"
            got = got[1:]
        lines.extend(got)
    return lines


def check_exactly_once(store: Store, rows: list[tuple[str, int]]) -> None:
    """Every sink of a completed run holds each input row exactly once."""
    assert sorted(committed(store, "text", "id:v")) == sorted(f"{k}:{v}" for k, v in rows)
    json_rows = [json.loads(line) for line in committed(store, "json", None)]
    assert sorted((r["id"], r["v"]) for r in json_rows) == sorted(rows)
    assert sorted(committed(store, "csv", "id,v2")) == sorted(f"{k},{v * 2}" for k, v in rows)
