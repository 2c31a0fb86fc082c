"""The `millstream` command line: `millstream run PIPELINE [args...]`."""

from __future__ import annotations

import argparse
import os
import runpy
import sys

from millstream import __version__


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    target = args.pipeline
    module, _, function = target.partition(":")
    if module.endswith(".py") and not os.path.exists(module):
        print(f"millstream run: no such pipeline file: {module}", file=sys.stderr)
        return 2
    old_argv = sys.argv
    sys.argv = [module, *rest]
    try:
        if function:
            namespace = runpy.run_path(module) if module.endswith(".py") else runpy.run_module(module)
            fn = namespace.get(function)
            if not callable(fn):
                print(f"millstream run: {module} has no function {function!r}", file=sys.stderr)
                return 2
            fn(rest)
        elif module.endswith(".py"):
            runpy.run_path(module, run_name="__main__")
        else:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except ValueError as e:
        if "pipeline option" in str(e):
            print(f"millstream run: {e}", file=sys.stderr)
            return 2
        raise
    finally:
        sys.argv = old_argv
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `millstream` console script."""
    parser = argparse.ArgumentParser(prog="millstream", description="millstream stream processing engine")
    parser.add_argument("--version", action="version", version=f"millstream {__version__}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a pipeline file or module (extra arguments go to the pipeline)")
    run.add_argument("pipeline", help="path/to/file.py, package.module, or either with :function")
    from millstream.cli_state import add_commands

    add_commands(sub)
    args, rest = parser.parse_known_args(argv)
    if args.command == "run":
        return _run(args, rest)
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
