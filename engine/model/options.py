"""Pipeline options with Beam's API: flags or keywords, `view_as`, custom options via `_add_argparse_args`."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
from typing import Any, NoReturn

log = logging.getLogger("millstream.options")


class ValueProvider:
    """A value known at construction time (Beam's ValueProvider API for template parameters)."""

    def get(self) -> Any:
        """The value."""
        raise NotImplementedError

    def is_accessible(self) -> bool:
        """Always true: millstream resolves every value before the pipeline runs."""
        return True


class StaticValueProvider(ValueProvider):
    """A ValueProvider holding a fixed value."""

    def __init__(self, value_type: Any, value: Any) -> None:
        self.value_type = value_type
        self.value = value

    def get(self) -> Any:
        """The fixed value (Beam's ValueProvider.get)."""
        return self.value

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return f"StaticValueProvider({self.value!r})"


class RuntimeValueProvider(ValueProvider):
    """A template parameter not given on the command line (Beam's RuntimeValueProvider): its value is the
    option's value in `runtime_options` when a runner set them, else the declared default.

    Beam makes it accessible only while the pipeline runs; millstream parses every option before it builds
    the pipeline, so there is no later value to wait for, and it is accessible at construction too (IO
    transforms resolve it then, see `engine/model/value_providers.py`).

    >>> RuntimeValueProvider("input", str, "gs://b/in.txt").get()
    'gs://b/in.txt'
    """

    runtime_options: dict[str, Any] | None = None

    def __init__(self, option_name: str, value_type: Any, default_value: Any) -> None:
        self.option_name = option_name
        self.value_type = value_type
        self.default_value = default_value

    @classmethod
    def set_runtime_options(cls, pipeline_options: dict[str, Any] | None) -> None:
        """Values by option name that take precedence over the defaults (Beam's runners call this)."""
        RuntimeValueProvider.runtime_options = pipeline_options

    @classmethod
    def get_value(cls, option_name: str, value_type: Any, default_value: Any) -> Any:
        """The runtime option `option_name` converted by `value_type` if a runner set it (and it is not
        empty), else `default_value` (Beam's class-level lookup, usable inside a DoFn without the provider)."""
        candidate = (RuntimeValueProvider.runtime_options or {}).get(option_name)
        if candidate:
            return candidate.get() if isinstance(candidate, ValueProvider) else value_type(candidate)
        return default_value

    def get(self) -> Any:
        """The runtime option's value (converted by the declared type) if set, else the default."""
        return RuntimeValueProvider.get_value(self.option_name, self.value_type, self.default_value)

    def __str__(self) -> str:
        return (
            f"RuntimeValueProvider(option: {self.option_name}, type: {getattr(self.value_type, '__name__', '?')}, "
            f"default_value: {self.default_value!r})"
        )

    __repr__ = __str__


class _BeamArgumentParser(argparse.ArgumentParser):
    """An argparse parser that tolerates options declared twice and knows value-provider arguments."""

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().add_argument(*args, **kwargs)
        except argparse.ArgumentError:
            return None  # declared by another options class already; Beam tolerates this too

    def add_value_provider_argument(self, *args: Any, **kwargs: Any) -> Any:
        """Declare a template parameter (as Beam): a value given on the command line is a
        StaticValueProvider, an absent one a RuntimeValueProvider holding the default."""
        if not args or not args[0]:
            raise ValueError("add_value_provider_argument needs the option's name, e.g. '--input'")
        if args[0][0] != "-":
            option_name = args[0]
            kwargs.setdefault("nargs", "?")  # a positional template parameter may be left out
        else:
            option_name = next((a[2:] for a in args if a.startswith("--")), args[0].lstrip("-"))
        value_type = kwargs.get("type") or str

        def convert(text: str) -> StaticValueProvider:
            return StaticValueProvider(value_type, value_type(text))

        kwargs["type"] = convert
        default = kwargs.get("default")
        if not isinstance(default, ValueProvider):
            kwargs["default"] = RuntimeValueProvider(option_name, value_type, default)
        return self.add_argument(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise _OptionError(message)


class _OptionError(ValueError):
    """A flag argparse rejects (a missing required option, a bad value); `PipelineOptions` decides how to fail."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bad pipeline option: {message}")
        self.argparse_message = message


def _all_subclasses(cls: type) -> list[type]:
    out: list[type] = []
    stack = [cls]
    while stack:
        c = stack.pop()
        sub: type
        for sub in c.__subclasses__():
            if sub not in out:
                out.append(sub)
                stack.append(sub)
    return out


class PipelineOptions:
    """Options of a pipeline run; `view_as(SomeOptions)` gives a typed view onto the same values."""

    def __init__(self, flags: list[str] | None = None, **kwargs: Any) -> None:
        """Options from `flags` (default: the command line, ``sys.argv[1:]``, as in Beam) and keyword overrides."""
        if isinstance(flags, str):
            raise TypeError("flags must be a list of strings such as ['--streaming'], not a str")
        if flags is None:
            flags = sys.argv[1:]
        object.__setattr__(self, "_flags", [str(f) for f in flags])
        object.__setattr__(self, "_overrides", dict(kwargs))
        object.__setattr__(self, "_warned", [False])

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        """Subclasses declare their options here, as in Beam."""

    @classmethod
    def from_dictionary(cls, options: dict[str, Any]) -> PipelineOptions:
        """Options from a dict of name -> value (Beam's helper)."""
        return cls(**options)

    def _parser(self) -> _BeamArgumentParser:
        parser = _BeamArgumentParser(add_help=False, allow_abbrev=False, prog="pipeline options")
        for cls in [PipelineOptions, *_all_subclasses(PipelineOptions)]:
            add = cls.__dict__.get("_add_argparse_args")
            if add is not None:
                add.__get__(None, cls)(parser)
        return parser

    def _parse(self, exit_on_error: bool = True) -> tuple[dict[str, Any], list[str]]:
        """Parse the flags; a rejected flag exits like argparse (usage line, status 2) as Beam's options do."""
        parser = self._parser()
        try:
            known, unknown = parser.parse_known_args(self._flags)
        except _OptionError as e:
            if not exit_on_error:
                raise
            parser.prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "pipeline"
            parser.print_usage(sys.stderr)
            parser.exit(2, f"{parser.prog}: error: {e.argparse_message}\n")
        return vars(known), unknown

    def get_all_options(
        self, drop_default: bool = False, retain_unknown_options: bool = False
    ) -> dict[str, Any]:
        """Every declared option with its value (flags, then keyword overrides)."""
        parsed, _ = self._parse()
        if drop_default:
            defaults = vars(self._parser().parse_known_args([])[0])
            parsed = {k: v for k, v in parsed.items() if defaults.get(k) != v}
        parsed.update(self._overrides)
        return parsed

    def unknown_flags(self) -> list[str]:
        """Flags no options class declares (reported as an error before the pipeline runs)."""
        return [f for f in self._parse()[1] if f.startswith("-")]

    def validate_flags(self, strict: bool | None = None) -> None:
        """Check the flags before a run.

        Unknown flags are discarded with a warning, as Beam does; with `strict` (default: the
        ``--strict_options`` flag) they fail with one clear line, and so does a flag argparse rejects.
        """
        if strict is None:
            strict = bool(self._overrides.get("strict_options", "--strict_options" in self._flags))
        unknown = [f for f in self._parse(exit_on_error=not strict)[1] if f.startswith("-")]
        if not unknown:
            return
        hints = self._hints(unknown)
        if strict:
            raise ValueError(
                "unknown pipeline option(s): "
                + hints
                + "; declare custom options in a PipelineOptions subclass's _add_argparse_args"
            )
        if not self._warned[0]:
            self._warned[0] = True
            log.warning(
                "Discarding unparseable args: %s (pass --strict_options to fail on them instead)", hints
            )

    def _hints(self, unknown: list[str]) -> str:
        """The unknown flags, each with the closest declared flag where one is close."""
        known = [a for action in self._parser()._actions for a in action.option_strings]
        hints = []
        for flag in unknown:
            name = flag.split("=", 1)[0]
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
        return ", ".join(hints)

    def view_as(self, cls: type[Any]) -> Any:
        """A view of these options as `cls`, sharing the same values."""
        view = object.__new__(cls)
        object.__setattr__(view, "_flags", self._flags)
        object.__setattr__(view, "_overrides", self._overrides)
        object.__setattr__(view, "_warned", self._warned)
        return view

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        overrides = object.__getattribute__(self, "_overrides")
        if name in overrides:
            return overrides[name]
        parsed, _ = self._parse()
        if name in parsed:
            return parsed[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self._overrides[name] = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_all_options(drop_default=True)})"


class StandardOptions(PipelineOptions):
    """Which runner, and whether the job is streaming."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--runner", default=None, help="runner name (MillstreamRunner; DirectRunner is an alias)"
        )
        parser.add_argument("--streaming", default=False, action="store_true", help="run in streaming mode")
        parser.add_argument("--no_pipeline_type_check", dest="pipeline_type_check", action="store_false")
        parser.add_argument("--pipeline_type_check", dest="pipeline_type_check", action="store_true")


class GoogleCloudOptions(PipelineOptions):
    """Beam's Google Cloud options; `job_name` names the job's state directory here."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--job_name", default=None, help="name of the job (default: the pipeline's name)")
        parser.add_argument("--project", default=None)
        parser.add_argument("--region", default=None)
        parser.add_argument("--temp_location", default=None)
        parser.add_argument("--staging_location", default=None)


class SetupOptions(PipelineOptions):
    """Beam's setup options, accepted for compatibility (a local run needs no staging)."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--save_main_session", default=False, action="store_true")
        parser.add_argument("--requirements_file", default=None)
        parser.add_argument("--setup_file", default=None)
        parser.add_argument("--pickle_library", default="default")


class DebugOptions(PipelineOptions):
    """Beam's debug options (`--experiments`)."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--experiments", "--experiment", dest="experiments", action="append", default=None
        )


class DirectOptions(PipelineOptions):
    """Beam's direct-runner options, accepted for compatibility."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--direct_num_workers", type=int, default=1)
        parser.add_argument("--direct_running_mode", default="in_memory")
        parser.add_argument("--allow_unsafe_triggers", default=False, action="store_true")


class TypeOptions(PipelineOptions):
    """Beam's type-checking options: ``--no_pipeline_type_check`` turns off the construction-time check,
    ``--runtime_type_check`` checks elements while the pipeline runs; the strictness options are accepted for
    compatibility."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--type_check_strictness", default="DEFAULT_TO_ANY")
        parser.add_argument("--type_check_additional", default="")
        parser.add_argument(
            "--runtime_type_check",
            default=False,
            action="store_true",
            help="check every ParDo's elements against its type hints while the pipeline runs",
        )
        parser.add_argument(
            "--performance_runtime_type_check",
            default=False,
            action="store_true",
            help="the same checks as --runtime_type_check (Beam samples the elements)",
        )
        parser.add_argument(
            "--no_pipeline_type_check",
            dest="pipeline_type_check",
            action="store_false",
            help="do not check type hints when the pipeline is built",
        )


class MillstreamOptions(PipelineOptions):
    """Options of millstream's runtime."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--batch_size", type=int, default=2048, help="elements per batch read from sources"
        )
        parser.add_argument(
            "--channel_capacity", type=int, default=16, help="batches buffered between stages (backpressure)"
        )
        parser.add_argument(
            "--async_concurrency", type=int, default=64, help="in-flight elements of an async DoFn per batch"
        )
        parser.add_argument(
            "--state_dir", default=None, help="state directory (default ./.millstream/<job_name>)"
        )
        parser.add_argument(
            "--checkpoint_interval", type=float, default=10.0, help="seconds between checkpoints (streaming)"
        )
        parser.add_argument(
            "--checkpoint_pause_budget",
            type=float,
            default=1.0,
            help="seconds a checkpoint may pause the sources: a larger backlog of state is written while they "
            "are paused up to this long, then they resume and the checkpoint is tried again (docs/state.md); "
            "0: no bound",
        )
        parser.add_argument("--state_backend", default="rocksdb", choices=["rocksdb", "memory"])
        parser.add_argument("--from_scratch", default=False, action="store_true", help="discard old state")
        parser.add_argument(
            "--state_encryption_key",
            default=None,
            metavar="SOURCE",
            help="encrypt the state at rest with this key: file:PATH (mode 0600), env:NAME, keyring:PATH or "
            "kms:projects/.../cryptoKeys/K (docs/security.md)",
        )
        parser.add_argument(
            "--accept_checkpoint_fallback",
            default=False,
            action="store_true",
            help="restore an older checkpoint when the newest is damaged even if output committed after it is "
            "then deleted and written again (without it such a start is refused)",
        )
        parser.add_argument(
            "--state_cache_entries",
            type=int,
            default=1_000_000,
            help="keyed state entries held in memory, job-wide (more are evicted to the state store); 0: no bound",
        )
        parser.add_argument(
            "--dead_letters",
            default=None,
            metavar="PATH",
            help="append records no source can decode (of sources without .with_dead_letters()) to PATH as "
            "JSON lines, with their reasons, instead of failing the job",
        )
        parser.add_argument(
            "--strict_options",
            default=False,
            action="store_true",
            help="fail on pipeline flags no options class declares (default: warn and discard them, as Beam)",
        )
        parser.add_argument("--no_uvloop", dest="uvloop", default=True, action="store_false")
        parser.add_argument(
            "--no_gc_tuning",
            dest="gc_tuning",
            default=True,
            action="store_false",
            help="leave Python's garbage-collector thresholds alone while jobs run",
        )


__all__ = [
    "PipelineOptions",
    "StandardOptions",
    "GoogleCloudOptions",
    "SetupOptions",
    "DebugOptions",
    "DirectOptions",
    "TypeOptions",
    "MillstreamOptions",
    "ValueProvider",
    "StaticValueProvider",
    "RuntimeValueProvider",
]


def job_name(options: PipelineOptions) -> str:
    """The job's name: --job_name, else the stem of the pipeline's main script (its package's name for a
    package run with ``python -m``), else "millstream"."""
    name = options.view_as(GoogleCloudOptions).job_name
    if name:
        return str(name)
    main = sys.argv[0] if sys.argv else ""
    if main.endswith(".py"):
        stem = os.path.splitext(os.path.basename(main))[0]
        if stem == "__main__":
            stem = os.path.basename(os.path.dirname(os.path.abspath(main))) or stem
        return stem
    return "millstream"
