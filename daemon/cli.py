"""The `millstream` command line.

* ``millstream run PIPELINE [--param NAME=VALUE ...] [pipeline flags] [daemon flags]`` runs a pipeline as a
  supervised job (signals, control endpoint, jobs directory; see `millstream.daemon.supervise`). PIPELINE is
  ``path/to/file.py``, ``package.module``, or either with ``:function``: a template (`millstream.daemon.template`),
  or a plain Beam script, which runs as ``__main__`` with `Pipeline.run()` supervised.
  ``millstream run PIPELINE --help`` lists its parameters.
* ``millstream template describe PIPELINE`` prints a template's metadata (Dataflow Flex Template style JSON).
* ``millstream jobs list|describe|drain|stop|cancel`` talks to running jobs (`millstream.daemon.jobs_cli`).
* ``millstream checkpoints list|inspect`` and ``millstream state inspect`` read a state directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from millstream import __version__

log = logging.getLogger("millstream.daemon.cli")

EXIT_USAGE = 2


def _error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"millstream run: {message}", file=sys.stderr)
    return code


@contextmanager
def _argv(argv: list[str]) -> Iterator[None]:
    old = sys.argv
    sys.argv = argv
    try:
        yield
    finally:
        sys.argv = old


def _daemon_help(run_parser: argparse.ArgumentParser) -> str:
    """The daemon-flags section of `run`'s help."""
    text = run_parser.format_help()
    start = text.find("daemon flags:")
    return text[start:] if start >= 0 else text


def _load(spec: str) -> Any:
    from millstream.daemon.template import TemplateError, load_target

    try:
        return load_target(spec)
    except TemplateError:
        raise
    except SystemExit:
        raise
    except Exception as e:
        log.debug("loading %s failed", spec, exc_info=True)
        raise TemplateError(f"cannot load {spec}: {type(e).__name__}: {e}") from e


def _run(args: argparse.Namespace, rest: list[str], run_parser: argparse.ArgumentParser) -> int:
    from millstream.daemon.logs import configure_logging, parse_level
    from millstream.daemon.supervise import DaemonConfigError, preflight, settings_from_args
    from millstream.daemon.template import TemplateError, describe_script

    if args.pipeline is None:
        run_parser.print_help()
        return 0 if args.help else EXIT_USAGE
    settings = settings_from_args(args, args.pipeline)
    try:
        parse_level(settings.log_level)
    except ValueError as e:
        return _error(str(e))
    configure_logging(settings.log_format, settings.log_level)
    if parse_level(settings.log_level) > logging.DEBUG:
        # A job on a Beam runner: Beam logs every channel and worker step at INFO; the progress lines are ours.
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
        logging.getLogger("apache_beam.utils.subprocess_server").setLevel(logging.ERROR)
    try:
        target = _load(args.pipeline)
        if args.help:
            print(describe_script(target).help_text(_daemon_help(run_parser)), end="")
            return 0
    except TemplateError as e:
        return _error(str(e))
    if target.kind == "template":
        return _run_template(target, args, rest, settings)
    if args.param:
        return _error(
            f"--param is for templates, and {args.pipeline} is a plain script "
            "(declare PARAMETERS or a @template function to make it one)"
        )
    try:
        auth = preflight(settings)
    except DaemonConfigError as e:
        return _error(str(e))
    return _run_script(target, rest, settings, auth)


def _run_template(target: Any, args: argparse.Namespace, rest: list[str], settings: Any) -> int:
    from millstream.daemon.supervise import DaemonConfigError, preflight, supervise
    from millstream.daemon.template import TemplateError
    from millstream.engine.model.options import MillstreamOptions, PipelineOptions
    from millstream.engine.model.pipeline import Pipeline
    from millstream.engine.runtime.exec.runner import run_coroutine

    try:
        params, flags = target.parse(args.param, rest)
        options = PipelineOptions(flags)
        # a template declares its parameters, so any flag it does not know is a mistake worth one line
        options.validate_flags(strict=True)
    except (TemplateError, ValueError) as e:
        return _error(str(e))
    try:
        auth = preflight(settings)
    except DaemonConfigError as e:
        return _error(str(e))
    with _argv([target.argv0, *flags]):
        pipeline = Pipeline(options=options)
        try:
            target.build(pipeline, params)
        except Exception as e:
            log.debug("building %s failed", target.spec, exc_info=True)
            return _error(f"cannot build the pipeline: {type(e).__name__}: {e}")
        try:
            code, _job = run_coroutine(
                supervise, pipeline, settings, auth, use_uvloop=options.view_as(MillstreamOptions).uvloop
            )
        except DaemonConfigError as e:
            return _error(str(e))
        except ValueError as e:  # options or plan rejected before any data is read
            return _error(str(e))
        except KeyboardInterrupt:  # before the signal handlers were installed
            return 130
    return int(code)


def _run_script(target: Any, rest: list[str], settings: Any, auth: Any) -> int:
    from millstream.daemon.supervise import DaemonConfigError, daemon_runner

    if target.path is not None:
        argv0 = target.path
    else:
        import importlib.util

        spec = importlib.util.find_spec(target.module_name)
        argv0 = spec.origin if spec is not None and spec.origin else target.module_name
    try:
        with daemon_runner(settings, auth), _argv([argv0, *rest]):
            if target.kind == "function":
                target.builder(rest)
            elif target.path is not None:
                runpy.run_path(target.path, run_name="__main__")
            else:
                runpy.run_module(target.module_name, run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except DaemonConfigError as e:
        return _error(str(e))
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if getattr(e, "millstream_reported", False):  # the job's log has its traceback already
            return 1
        if isinstance(e, ValueError) and "pipeline option" in str(e):
            return _error(str(e))
        if _before_beam_submission(e):  # an untranslatable step or a runner not set up: one line, usage
            return _error(str(e))
        raise
    return 0


def _before_beam_submission(e: BaseException) -> bool:
    """Whether `e` is the translator's or a Beam runner's refusal before submission (never imports Beam)."""
    kinds: list[type[BaseException]] = []
    for module, name in (
        ("millstream.engine.translate.beam.dofns", "UntranslatableError"),
        ("millstream.engine.translate.beam.hooks", "UntranslatableIOError"),
        ("millstream.engine.translate.beam.runner", "RunnerSetupError"),
    ):
        loaded = sys.modules.get(module)
        if loaded is not None:
            kinds.append(getattr(loaded, name))
    return isinstance(e, tuple(kinds))


def _template_describe(args: argparse.Namespace) -> int:
    from millstream.daemon.template import TemplateError, describe_script

    try:
        target = describe_script(_load(args.pipeline))
    except TemplateError as e:
        print(f"millstream template: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(target.metadata(), indent=2))
    return 0


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    from millstream.daemon import cli_state, jobs_cli
    from millstream.daemon.console import overview
    from millstream.daemon.supervise import add_daemon_arguments

    parser = argparse.ArgumentParser(prog="millstream", description="millstream stream processing engine")
    parser.add_argument("--version", action="version", version=f"millstream {__version__}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser(
        "run",
        add_help=False,
        allow_abbrev=False,
        help="run a pipeline (template or Beam script) as a supervised job",
        usage="millstream run PIPELINE [--param NAME=VALUE ...] [pipeline flags] [daemon flags]",
        description="Run PIPELINE (path/to/file.py, package.module, or either with :function) as a job: "
        "SIGTERM/SIGINT drain (a second one cancels), SIGUSR1 stops; a control endpoint serves "
        "status, metrics, drain/stop/cancel. `millstream run PIPELINE --help` lists its parameters. "
        "Exit codes: 0 done/drained/stopped, 1 failed, 2 usage or configuration error, "
        "3 cancelled, 4 drain timed out.",
    )
    run.add_argument("pipeline", nargs="?", help="path/to/file.py, package.module, or either with :function")
    run.add_argument("-h", "--help", action="store_true", help="show the pipeline's parameters and exit")
    add_daemon_arguments(run)
    tpl = sub.add_parser("template", help="inspect pipeline templates")
    tpl_sub = tpl.add_subparsers(dest="action", required=True)
    describe = tpl_sub.add_parser(
        "describe", help="a template's metadata as JSON (Flex Template metadata.json)"
    )
    describe.add_argument("pipeline", help="path/to/file.py, package.module, or either with :function")
    describe.set_defaults(handler=_template_describe)
    jobs_cli.add_commands(sub)
    cli_state.add_commands(sub)
    overview.add_commands(sub)
    return parser, run


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `millstream` console script."""
    parser, run_parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "run":
        return _run(args, rest, run_parser)
    if getattr(args, "handler", None) is not None:
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return int(args.handler(args))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
