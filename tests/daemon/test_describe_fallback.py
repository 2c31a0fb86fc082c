"""`millstream jobs describe` shows a checkpoint fallback: a real job stopped, its newest checkpoint manifest
scribbled over in the real RocksDB store, started again with --accept_checkpoint_fallback, described by the
real command line over HTTP."""

from __future__ import annotations

import json
import signal

from millstream.state import CheckpointStore, RocksDBBackend
from millstream.state.checkpoints import MANIFEST_PREFIX
from millstream.state.keys import encode_u64

import support.daemon as h


def scribble_newest_manifest(state_dir: str) -> int:
    backend = RocksDBBackend(state_dir)
    try:
        newest = CheckpointStore(backend).latest()
        assert newest is not None
        backend.write_batch([(MANIFEST_PREFIX + encode_u64(newest.checkpoint_id), b"\x93garbage")], sync=True)
        return int(newest.checkpoint_id)
    finally:
        backend.close()


def test_describe_shows_the_fallback_warning(daemons):
    d = daemons(checkpoint_interval=3600)
    for start in (0, 20):  # two runs, each stopped (checkpoint and exit, resumable): two checkpoints
        h.write_events(d.input, start, 20)
        d.start()
        d.wait_processed(20)
        d.signal(signal.SIGUSR1)
        assert d.exit_code() == 0, d.log()
    damaged = scribble_newest_manifest(d.state_dir)

    d.extra = ("--accept_checkpoint_fallback",)
    d.start()
    text = h.cli("jobs", "describe", d.name, "--jobs_dir", d.jobs_dir)
    assert text.returncode == 0, text.stderr
    warning = [line for line in text.stdout.splitlines() if line.startswith("WARNING")]
    assert len(warning) == 1, text.stdout
    assert (
        f"checkpoint(s) [{damaged}]" in warning[0]
        and f"falling back to checkpoint {damaged - 1}" in warning[0]
    )
    assert warning[0].endswith("(accepted with --accept_checkpoint_fallback)")
    as_json = h.cli("jobs", "describe", d.name, "--json", "--jobs_dir", d.jobs_dir)
    assert json.loads(as_json.stdout)["checkpoint_fallback"]["restored"] == damaged - 1
    d.signal(signal.SIGTERM)
    assert d.exit_code() == 0, d.log()
