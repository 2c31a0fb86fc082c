"""A sink's I/O errors name the sink step and the path; a rerun after the fault is fixed is exactly-once.

The full disk is real: a 1 MiB tmpfs mounted for the test (root only) and unmounted in its finalizer. The file
size limit is real too: RLIMIT_FSIZE on a `millstream run` subprocess (EFBIG), which needs no privileges.
"""

from __future__ import annotations

import errno
import glob
import os
import resource
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

import millstream as beam
from millstream.engine.model.sink_errors import SinkIOError
from millstream.options.pipeline_options import PipelineOptions

from support.jobs import cli_command, run_job

ROWS = 20_000  # about 2 MB of lines: twice the tiny filesystem


def row(i: int) -> str:
    return f"{i:08d} " + "x" * 90


def committed_rows(prefix: str) -> list[str]:
    lines: list[str] = []
    for path in glob.glob(f"{prefix}-*"):
        with open(path) as f:
            lines.extend(f.read().splitlines())
    return sorted(lines)


@pytest.fixture
def tiny_fs(tmp_path: Any) -> Iterator[str]:
    """A real 1 MiB tmpfs, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the RLIMIT_FSIZE test covers the unprivileged case)")
    mount = str(tmp_path / "tiny")
    os.makedirs(mount)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", mount], check=True)


def rows_pipeline(out: str, state_dir: str) -> beam.Pipeline:
    p = beam.Pipeline(
        options=PipelineOptions(
            [
                f"--state_dir={state_dir}",
                "--job_name=full",
                "--batch_size=500",
                "--no_progress",
            ]
        )
    )
    p | beam.Create(range(ROWS)) | beam.Map(row) | "WriteRows" >> beam.io.WriteToText(out)
    return p


async def test_a_full_disk_names_the_sink_step_and_the_path_and_a_rerun_is_exact(
    tiny_fs: str, tmp_path: Any
) -> None:
    out = os.path.join(tiny_fs, "out", "rows")
    state_dir = str(tmp_path / "state")  # the state store is elsewhere: only the output disk is full
    job = await rows_pipeline(out, state_dir).start()
    with pytest.raises(SinkIOError) as info:
        await job.wait()
    err = info.value
    assert err.errno == errno.ENOSPC
    assert err.step == "WriteRows/Write"
    assert err.path.startswith(os.path.join(tiny_fs, "out"))
    assert str(err).startswith(f"sink step 'WriteRows/Write' could not write {err.path}: [Errno 28]")
    assert isinstance(err, OSError)  # handlers of OSError still catch it

    subprocess.run(["mount", "-o", "remount,size=64m", tiny_fs], check=True)  # space freed
    job = await rows_pipeline(out, state_dir).start()
    assert await job.wait() == "DONE"
    assert committed_rows(out) == [row(i) for i in range(ROWS)]
    assert not os.path.exists(os.path.join(tiny_fs, "out", ".rows.millstream-tmp"))  # nothing left behind


JOB = textwrap.dedent('''
    """Writes 20000 rows of about 100 bytes to OUT as JSON lines."""
    import os
    import millstream as beam

    def run() -> None:
        with beam.Pipeline() as p:
            (p | beam.Create(range(20_000)) | beam.Map(lambda i: {"i": i, "pad": "x" * 90})
             | "WriteJson" >> beam.io.WriteToJson(os.environ["OUT"]))

    if __name__ == "__main__":
        run()
''')


def _limit_file_size() -> None:
    # EFBIG instead of the default SIGXFSZ kill, so the sink sees the error
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))


def test_a_file_size_limit_in_millstream_run_is_one_line_naming_the_step_and_the_path(tmp_path: Any) -> None:
    script = tmp_path / "write_json.py"
    script.write_text(JOB)
    out = str(tmp_path / "out" / "rows")
    done = run_job(
        cli_command("run", str(script), f"--state_dir={tmp_path / 'state'}"),
        cwd=str(tmp_path),
        env_extra={"OUT": out, "MILLSTREAM_JOBS_DIR": str(tmp_path / "jobs")},
        timeout=120,
        preexec_fn=_limit_file_size,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    tmp_dir = os.path.join(str(tmp_path / "out"), ".rows.millstream-tmp")
    assert f"sink step 'WriteJson/Write' could not write {tmp_dir}/" in done.stderr, done.stderr[-3000:]
    assert "[Errno 27] File too large" in done.stderr
    assert "Traceback" not in done.stderr
