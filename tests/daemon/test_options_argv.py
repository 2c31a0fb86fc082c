"""`PipelineOptions()` reads the command line as Beam's does: `millstream run script.py --flag=value` works,
a missing required option exits like argparse, and unknown flags are discarded with a warning unless
``--strict_options``."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from millstream.options.pipeline_options import PipelineOptions, StandardOptions

import support.daemon as h

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "argv_options_script.py")


def run(tmp_path, *args: str):
    return h.cli("run", SCRIPT, *args, "--jobs_dir", str(tmp_path / "jobs"), cwd=str(tmp_path))


def test_millstream_run_passes_flags_to_pipeline_options(tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    out = run(tmp_path, "--input_file=in.txt")
    assert out.returncode == 0, out.stderr
    assert "lines 3" in out.stdout


def test_missing_required_option_exits_2_with_usage(tmp_path):
    out = run(tmp_path)
    assert out.returncode == 2, out.stderr
    assert "usage: argv_options_script.py" in out.stderr
    assert "error: the following arguments are required: --input_file" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_flags_warn_and_run_unless_strict(tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\n")
    out = run(tmp_path, "--input_file=in.txt", "--strming")
    assert out.returncode == 0, out.stderr
    assert "lines 2" in out.stdout
    assert "Discarding unparseable args: --strming (did you mean --streaming?)" in out.stderr
    strict = run(tmp_path, "--input_file=in.txt", "--strming", "--strict_options")
    assert strict.returncode == 2
    assert "unknown pipeline option(s): --strming (did you mean --streaming?)" in strict.stderr


def test_flags_default_to_sys_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["job.py", "--streaming", "--job_name=j1"])
    for options in (PipelineOptions(), PipelineOptions(None), PipelineOptions(flags=None)):
        assert options.view_as(StandardOptions).streaming is True
        assert options.job_name == "j1"
    assert PipelineOptions([]).view_as(StandardOptions).streaming is False


def test_missing_required_option_in_process_is_system_exit_2(monkeypatch, capsys):
    class NeedsInput(PipelineOptions):
        @classmethod
        def _add_argparse_args(cls, parser):
            parser.add_argument("--needs_input_xyz", required=True)

    monkeypatch.setattr(sys, "argv", ["job.py"])
    try:
        with pytest.raises(SystemExit) as exc:
            print(PipelineOptions().view_as(NeedsInput).needs_input_xyz)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: job.py") and "required: --needs_input_xyz" in err
    finally:
        NeedsInput._add_argparse_args = classmethod(lambda cls, parser: None)  # later tests build parsers too


def test_unknown_flag_warned_once(caplog):
    options = PipelineOptions(["--bogus_flag"])
    with caplog.at_level(logging.WARNING, logger="millstream.options"):
        options.validate_flags()
        options.validate_flags()
    assert [r.getMessage() for r in caplog.records].count(
        "Discarding unparseable args: --bogus_flag (pass --strict_options to fail on them instead)"
    ) == 1
    with pytest.raises(ValueError, match="unknown pipeline option"):
        PipelineOptions(["--bogus_flag"], strict_options=True).validate_flags()
