"""Pipeline templates: parameters declared with types, defaults and help, validated before any data is read.

A template is a module whose pipeline is built by a function from a `Pipeline` and its parameters:

    from millstream.daemon.template import Param, template

    @template(
        Param("input", str, required=True, help="JSON-lines file to read", regexes=[r".+\\.jsonl?"]),
        Param("window", float, default=60.0, help="window size in seconds"),
        name="clicks-per-user",
        description="Counts clicks per user in fixed windows.",
    )
    def pipeline(p, params):
        p | ReadFromJson(params.input) | ...

or, without the decorator, a module-level ``PARAMETERS = [Param(...), ...]`` and a ``pipeline(p, params)``
function (name it with ``PIPELINE:function`` when it is called differently).

Beam's custom options are template parameters too: a `PipelineOptions` subclass defined in the module with
``_add_argparse_args`` declares them (``parser.add_argument("--input", required=True, help=...)``); they are
passed as pipeline flags (``--input=x``) or as ``--param input=x`` and read in the pipeline with
``p.options.view_as(MyOptions)``.

`millstream run PIPELINE` passes template parameters as ``--param name=value`` or ``--name value``; every
parameter is converted and checked (type, regexes, choices, required) before the pipeline is built, and a
missing or bad one is reported in one line. `millstream template describe PIPELINE` prints the metadata as
JSON in the shape of a Dataflow Flex Template's ``metadata.json``.

A module with neither ``PARAMETERS`` nor a ``@template`` function is a plain Beam script and runs as
``__main__`` (``if __name__ == "__main__": run()``), as ``python script.py`` would run it.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRUE = {"true", "1", "yes", "on", "y", "t"}
_FALSE = {"false", "0", "no", "off", "n", "f"}


class TemplateError(ValueError):
    """A template, its target or one of its parameters is wrong; the message is one line for the user."""


def _type_name(kind: Any) -> str:
    if kind is bool:
        return "boolean"
    if kind is int:
        return "integer"
    if kind is float:
        return "number"
    if kind is str:
        return "text"
    return getattr(kind, "__name__", "value")


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(text)


@dataclass(frozen=True)
class Param:
    """One template parameter: its name, a type (a callable from text), default, help and checks.

    `regexes` must each match the whole text of the value (as in Dataflow's parameter metadata); `choices`
    lists the allowed values. A parameter is optional unless `required`; an optional one without a default
    is None when not given.
    """

    name: str
    type: Callable[[str], Any] = str
    default: Any = None
    required: bool = False
    help: str = ""
    label: str | None = None
    regexes: Sequence[str] = ()
    choices: Sequence[Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise TemplateError(f"parameter name {self.name!r} is not a Python identifier")
        if not callable(self.type):
            raise TemplateError(
                f"parameter '{self.name}': type must be callable (str, int, float, bool, ...)"
            )
        if self.required and self.default is not None:
            raise TemplateError(f"parameter '{self.name}' is required and cannot have a default")
        for rx in self.regexes:
            try:
                re.compile(rx)
            except re.error as e:
                raise TemplateError(f"parameter '{self.name}': bad regex {rx!r}: {e}") from e

    def convert(self, text: str) -> Any:
        """The value of `text` for this parameter, checked; TemplateError (one line) when it is bad."""
        for rx in self.regexes:
            if not re.fullmatch(rx, text):
                raise TemplateError(f"parameter '{self.name}': value {text!r} does not match {rx!r}")
        try:
            value = _parse_bool(text) if self.type is bool else self.type(text)
        except Exception as e:
            detail = f": {e}" if str(e) and str(e) != text else ""
            raise TemplateError(
                f"parameter '{self.name}': invalid {_type_name(self.type)} value {text!r}{detail}"
            ) from e
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise TemplateError(f"parameter '{self.name}': {text!r} is not one of: {allowed}")
        return value

    def metadata(self) -> dict[str, Any]:
        """This parameter in Dataflow's ParameterMetadata shape."""
        doc: dict[str, Any] = {
            "name": self.name,
            "label": self.label or self.name.replace("_", " ").capitalize(),
            "helpText": self.help,
            "isOptional": not self.required,
            "paramType": _param_type(self.type, self.choices),
        }
        if self.regexes:
            doc["regexes"] = list(self.regexes)
        if self.default is not None:
            doc["defaultValue"] = (
                str(self.default).lower() if isinstance(self.default, bool) else str(self.default)
            )
        if self.choices is not None:
            doc["enumOptions"] = [{"value": str(c)} for c in self.choices]
        return doc

    def usage(self) -> tuple[str, str]:
        """(flag column, help column) for `--help`."""
        flag = f"--{self.name} {_type_name(self.type).upper()}"
        notes = []
        if self.required:
            notes.append("required")
        elif self.default is not None and self.default != "":
            notes.append(f"default: {self.default}")
        if self.choices is not None:
            notes.append("one of: " + ", ".join(str(c) for c in self.choices))
        if self.regexes:
            notes.append("must match: " + " ".join(self.regexes))
        text = self.help + (f" ({'; '.join(notes)})" if notes else "")
        return flag, text.strip()


def _param_type(kind: Any, choices: Any) -> str:
    if choices is not None:
        return "ENUM"
    if kind is bool:
        return "BOOLEAN"
    if kind in (int, float):
        return "NUMBER"
    return "TEXT"


class Params(Mapping[str, Any]):
    """The validated parameter values of a run: `params.input` or `params["input"]`."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no template parameter {name!r}; declared: {', '.join(self._values)}"
            ) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Params({self._values!r})"


@dataclass(frozen=True)
class TemplateSpec:
    """What `@template(...)` records on the pipeline function."""

    params: tuple[Param, ...]
    name: str | None = None
    description: str | None = None


def template(*params: Param, name: str | None = None, description: str | None = None) -> Callable[[Any], Any]:
    """Declare a pipeline function `fn(p, params)` as a template with these parameters."""
    _check_unique(params)

    def mark(fn: Any) -> Any:
        if not callable(fn):
            raise TemplateError("@template decorates a function pipeline(p, params)")
        fn.__millstream_template__ = TemplateSpec(tuple(params), name, description)
        return fn

    return mark


def _check_unique(params: Sequence[Any]) -> None:
    seen: set[str] = set()
    for prm in params:
        if not isinstance(prm, Param):
            raise TemplateError(f"template parameters must be millstream.daemon.template.Param, got {prm!r}")
        if prm.name in seen:
            raise TemplateError(f"parameter '{prm.name}' is declared twice")
        seen.add(prm.name)


# -- Beam custom options as parameters ---------------------------------------------------------------------
@dataclass(frozen=True)
class OptionParam:
    """A Beam custom option (declared in `_add_argparse_args`) seen as a template parameter."""

    name: str
    flag: str
    help: str
    required: bool
    default: Any
    choices: Sequence[Any] | None
    is_switch: bool
    owner: str
    type_name: str = "text"

    def metadata(self) -> dict[str, Any]:
        """This option in Dataflow's ParameterMetadata shape."""
        if self.is_switch:
            param_type = "BOOLEAN"
        elif self.choices:
            param_type = "ENUM"
        elif self.type_name in ("int", "float"):
            param_type = "NUMBER"
        else:
            param_type = "TEXT"
        doc: dict[str, Any] = {
            "name": self.name,
            "label": self.name.replace("_", " ").capitalize(),
            "helpText": self.help,
            "isOptional": not self.required,
            "paramType": param_type,
        }
        if self.default is not None and not self.is_switch:
            doc["defaultValue"] = str(getattr(self.default, "value", self.default))
        if self.choices:
            doc["enumOptions"] = [{"value": str(c)} for c in self.choices]
        return doc

    def as_flags(self, text: str) -> list[str]:
        """Pipeline flags giving this option the value `text` (from ``--param name=text``)."""
        if self.is_switch:
            try:
                return [self.flag] if _parse_bool(text) else []
            except ValueError:
                raise TemplateError(f"option '{self.name}': invalid boolean value {text!r}") from None
        return [f"{self.flag}={text}"]


def module_options(module: ModuleType) -> list[OptionParam]:
    """The options declared by `PipelineOptions` subclasses defined in `module` (Beam's custom options)."""
    from millstream.engine.model.options import PipelineOptions, _BeamArgumentParser

    out: list[OptionParam] = []
    for obj in vars(module).values():
        if not (isinstance(obj, type) and issubclass(obj, PipelineOptions) and obj is not PipelineOptions):
            continue
        if obj.__module__ != module.__name__ or "_add_argparse_args" not in obj.__dict__:
            continue
        parser = _BeamArgumentParser(add_help=False, allow_abbrev=False)
        obj.__dict__["_add_argparse_args"].__get__(None, obj)(parser)
        for action in parser._actions:
            long_flags = [f for f in action.option_strings if f.startswith("--")]
            if not long_flags:
                continue
            is_switch = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
            kind = getattr(action.type, "__name__", "str") if action.type is not None else "str"
            out.append(
                OptionParam(
                    name=action.dest,
                    flag=long_flags[0],
                    help=action.help or "",
                    required=bool(action.required),
                    default=action.default,
                    choices=list(action.choices) if action.choices else None,
                    is_switch=is_switch,
                    owner=obj.__name__,
                    type_name=kind,
                )
            )
    return out


# -- loading a pipeline target -----------------------------------------------------------------------------
@dataclass
class Target:
    """A pipeline named on the command line: a template, a plain script, or a plain function `fn(argv)`."""

    spec: str
    kind: str  # "template" | "script" | "function"
    path: str | None
    module_name: str | None
    function: str | None
    name: str
    description: str
    params: tuple[Param, ...] = ()
    options: list[OptionParam] = field(default_factory=list)
    builder: Callable[..., Any] | None = None
    module: ModuleType | None = None

    @property
    def argv0(self) -> str:
        """What `sys.argv[0]` is while the pipeline runs (its file; the job name defaults to its stem)."""
        return self.path or self.module_name or self.spec

    # -- parameters ----------------------------------------------------------------------------------------
    def parse(self, param_args: Sequence[str], rest: Sequence[str]) -> tuple[Params, list[str]]:
        """Validate `--param name=value` items and `--name value` flags in `rest`; returns the parameter values
        and the remaining pipeline flags (with ``--param`` items for Beam options turned into flags)."""
        declared = {p.name: p for p in self.params}
        options = {o.name: o for o in self.options}
        parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, prog="millstream run")

        def fail(message: str) -> Any:
            raise TemplateError(message)

        parser.error = fail  # type: ignore[method-assign]
        for prm in self.params:
            parser.add_argument(f"--{prm.name}", dest=prm.name, default=argparse.SUPPRESS)
        try:
            direct, flags = parser.parse_known_args(list(rest))
        except TemplateError as e:
            raise TemplateError(f"bad parameter: {e}") from None
        texts: dict[str, str] = dict(vars(direct))
        for item in param_args:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or not key:
                raise TemplateError(f"--param needs NAME=VALUE, got {item!r}")
            if key in declared:
                if key in texts and texts[key] != value:
                    raise TemplateError(f"parameter '{key}' is given twice ({texts[key]!r} and {value!r})")
                texts[key] = value
            elif key in options:
                flags.extend(options[key].as_flags(value))
            else:
                known = [*declared, *options]
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                listing = ", ".join(known) if known else "none"
                raise TemplateError(f"unknown parameter '{key}'{hint}; {self.name} declares: {listing}")
        missing = [p.name for p in self.params if p.required and p.name not in texts]
        if missing:
            raise TemplateError(
                f"missing required parameter{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
                f"(pass --param NAME=VALUE; see millstream run {self.spec} --help)"
            )
        values = {p.name: p.convert(texts[p.name]) if p.name in texts else p.default for p in self.params}
        return Params(values), flags

    def build(self, pipeline: Any, params: Params) -> None:
        """Apply the template's transforms to `pipeline`."""
        assert self.builder is not None
        try:
            arity = len(inspect.signature(self.builder).parameters)
        except (TypeError, ValueError):
            arity = 2
        if arity == 1:
            self.builder(pipeline)
        else:
            self.builder(pipeline, params)

    # -- metadata ------------------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """Dataflow Flex Template style metadata: name, description, parameters."""
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "parameters": [p.metadata() for p in self.params] + [o.metadata() for o in self.options],
        }

    def help_text(self, daemon_help: str) -> str:
        """What `millstream run PIPELINE --help` prints."""
        lines = [f"usage: millstream run {self.spec} [parameters] [pipeline flags] [daemon flags]", ""]
        lines.append(f"{self.name}: {self.description}" if self.description else self.name)
        rows: list[tuple[str, str]] = [p.usage() for p in self.params]
        if self.kind != "template":
            lines.append("")
            lines.append(
                "a plain Beam script: it parses its own arguments (declare PARAMETERS or a @template "
                "function to have them checked and listed here)"
            )
        if rows:
            lines += ["", "template parameters (--NAME VALUE or --param NAME=VALUE):"]
            lines += _columns(rows)
        if self.options:
            lines += ["", "pipeline options declared by the pipeline (--NAME=VALUE or --param NAME=VALUE):"]
            orows = []
            for o in self.options:
                flag = o.flag if o.is_switch else f"{o.flag} {o.type_name.upper()}"
                notes = ["required"] if o.required else []
                if o.default is not None and not o.is_switch:
                    notes.append(f"default: {getattr(o.default, 'value', o.default)}")
                orows.append((flag, (o.help + (f" ({'; '.join(notes)})" if notes else "")).strip()))
            lines += _columns(orows)
        lines += [
            "",
            "common pipeline flags: --streaming, --job_name NAME, --state_dir DIR, --checkpoint_interval S,",
            "  --batch_size N, --from_scratch, --state_backend {rocksdb,memory} (Beam's and millstream's options)",
            "",
            daemon_help.rstrip(),
        ]
        return "\n".join(lines) + "\n"


def _columns(rows: list[tuple[str, str]]) -> list[str]:
    width = min(30, max((len(a) for a, _ in rows), default=0))
    out = []
    for a, b in rows:
        if len(a) > width:
            out.append(f"  {a}")
            out.append(f"  {'':<{width}}  {b}")
        else:
            out.append(f"  {a:<{width}}  {b}")
    return out


def _scan_source(path: str) -> tuple[bool, list[str], bool, str]:
    """(declares PARAMETERS, names of functions decorated with `template`, has a __main__ block, docstring)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except SyntaxError as e:
        raise TemplateError(f"{path}: syntax error at line {e.lineno}: {e.msg}") from e
    except OSError as e:
        raise TemplateError(f"cannot read {path}: {e.strerror}") from e
    has_params = False
    decorated: list[str] = []
    has_main = False
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PARAMETERS" for t in node.targets
        ):
            has_params = True
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "PARAMETERS"
        ):
            has_params = True
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                target = dec.func if isinstance(dec, ast.Call) else dec
                leaf = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
                if leaf == "template":
                    decorated.append(node.name)
        elif (
            isinstance(node, ast.If)
            and "__main__" in ast.dump(node.test)
            and "__name__" in ast.dump(node.test)
        ):
            has_main = True
    return has_params, decorated, has_main, ast.get_docstring(tree) or ""


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def _import_file(path: str) -> ModuleType:
    """Import a pipeline file under its stem (registered in sys.modules, so pickled state can find it)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]  # stable across runs, unlike hash()
    name = stem if _NAME.match(stem) and stem not in sys.modules else f"millstream_pipeline_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TemplateError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def locate(spec: str) -> tuple[str | None, str | None, str | None, str]:
    """Split a PIPELINE argument into (file path, module name, function, source file)."""
    target, _, fn_name = spec.partition(":")
    function = fn_name or None
    if function is not None and not _NAME.match(function):
        raise TemplateError(f"{spec!r}: {function!r} is not a function name")
    if target.endswith(".py") or os.sep in target or (os.altsep and os.altsep in target):
        if not os.path.isfile(target):
            raise TemplateError(f"no such pipeline file: {target}")
        path = os.path.abspath(target)
        return path, None, function, path
    try:
        found = importlib.util.find_spec(target)
    except (ImportError, ValueError) as e:
        raise TemplateError(f"cannot find module {target!r}: {e}") from e
    if found is None or not found.origin or not os.path.isfile(found.origin):
        raise TemplateError(f"no such pipeline file or module: {target}")
    return None, target, function, found.origin


def load_target(spec: str) -> Target:
    """Resolve a PIPELINE argument: a template (loaded, parameters known) or a plain script/function.

    A plain script is inspected without being executed (its top level runs once, as `__main__`, when it runs).
    """
    path, module_name, function, source = locate(spec)
    if path is not None:
        directory = os.path.dirname(path)
        if directory not in sys.path:
            sys.path.insert(0, directory)  # as `python script.py` does: sibling modules import
    has_params, decorated, _has_main, doc = _scan_source(source)
    stem = os.path.splitext(os.path.basename(source))[0]
    if stem == "__init__" or stem == "__main__":
        stem = (module_name or os.path.basename(os.path.dirname(source))).rsplit(".", 1)[-1]
    is_template = (
        has_params or (function is None and decorated) or (function is not None and function in decorated)
    )
    if not is_template and function is None:
        return Target(spec, "script", path, module_name, None, stem, _first_paragraph(doc))
    module = _import_file(path) if path is not None else importlib.import_module(module_name or "")
    if function is not None:
        fn = getattr(module, function, None)
        if not callable(fn):
            raise TemplateError(f"{spec}: the module has no function {function!r}")
    mark = getattr(fn, "__millstream_template__", None) if function is not None else None
    if function is not None and mark is None and not has_params:
        return Target(
            spec,
            "function",
            path,
            module_name,
            function,
            stem,
            _first_paragraph(doc),
            builder=fn,
            module=module,
        )
    if function is None:
        marked = [n for n in decorated if getattr(getattr(module, n, None), "__millstream_template__", None)]
        if len(marked) > 1:
            raise TemplateError(
                f"{spec} has several templates ({', '.join(marked)}): name one as {spec}:FUNCTION"
            )
        if marked:
            fn = getattr(module, marked[0])
            mark = fn.__millstream_template__
        else:
            fn = getattr(module, "pipeline", None)
            if not callable(fn):
                raise TemplateError(f"{spec} declares PARAMETERS but has no function pipeline(p, params)")
    if mark is not None:
        params = tuple(mark.params)
        name = mark.name or stem
        description = mark.description or _first_paragraph(inspect.getdoc(fn) or doc)
    else:
        raw = getattr(module, "PARAMETERS", ())
        if not isinstance(raw, (list, tuple)):
            raise TemplateError(f"{spec}: PARAMETERS must be a list of millstream.daemon.template.Param")
        _check_unique(raw)
        params = tuple(raw)
        name = str(getattr(module, "TEMPLATE_NAME", stem))
        description = _first_paragraph(doc)
    target = Target(
        spec,
        "template",
        path,
        module_name,
        function,
        name,
        description,
        params,
        module_options(module),
        fn,
        module,
    )
    _check_no_clash(target)
    return target


def describe_script(target: Target) -> Target:
    """Import a plain script (not as `__main__`) to list the custom options it declares."""
    if target.kind == "script" and target.module is None:
        module = (
            _import_file(target.path) if target.path else importlib.import_module(target.module_name or "")
        )
        target.module = module
        target.options = module_options(module)
    return target


def _check_no_clash(target: Target) -> None:
    """A template parameter may not shadow a pipeline option (its flag would be ambiguous)."""
    import argparse

    from millstream.engine.model.options import PipelineOptions, _all_subclasses, _BeamArgumentParser

    # millstream's own options and the template module's: options classes that other code in this process
    # happens to define (tests, notebooks) are not part of this pipeline's command line.
    parser = _BeamArgumentParser(add_help=False)
    module_name = getattr(getattr(target, "module", None), "__name__", None)
    for cls in [PipelineOptions, *_all_subclasses(PipelineOptions)]:
        own = cls.__module__.startswith("millstream.") or cls.__module__ == module_name
        add = cls.__dict__.get("_add_argparse_args")
        if own and add is not None:
            add.__get__(None, cls)(parser)
    known = {a.dest for a in parser._actions if not isinstance(a, argparse._HelpAction)}
    for prm in target.params:
        if prm.name in known:
            raise TemplateError(
                f"template parameter '{prm.name}' has the name of a pipeline option; rename the parameter"
            )


__all__ = ["Param", "Params", "Target", "TemplateError", "load_target", "template"]
