"""Which tests start processes, for the `subprocess` and `crash` markers tests/conftest.py applies: a small
static look at a test function, its fixtures and the test helpers they reach.

A test launches processes when its body (or a fixture it uses, or a helper of tests/ either calls, followed
through functions and classes to any depth) names `support.jobs.start_job` / `run_job`, the two places a
test process is started; naming `support.kill9.KilledJob` (or a subclass) makes it a `crash` test. Only
code under tests/ is followed, read from its source: a helper named in a test counts whether or not the run
reaches the call, so the marking errs towards marking. An in-process test in a module that imports a runner
is not marked.

Example::

    >>> from support.daemon import Daemon, cli, write_events
    >>> LaunchAnalysis().kind_of(cli)
    'subprocess'
    >>> LaunchAnalysis().kind_of(Daemon)
    'subprocess'
    >>> LaunchAnalysis().kind_of(write_events) is None
    True
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import support.jobs
import support.kill9

__all__ = ["CRASH", "SUBPROCESS", "LaunchAnalysis", "stronger"]

SUBPROCESS = "subprocess"
CRASH = "crash"
_RANK = {None: 0, SUBPROCESS: 1, CRASH: 2}
_TESTS_ROOT = Path(__file__).resolve().parents[1]
#: The objects that start a process, and what naming them makes a test.
_SEEDS: dict[Any, str] = {
    support.jobs.start_job: SUBPROCESS,
    support.jobs.run_job: SUBPROCESS,
    support.kill9.KilledJob: CRASH,
}


def stronger(a: str | None, b: str | None) -> str | None:
    """The stronger of two kinds: crash > subprocess > None."""
    return a if _RANK[a] >= _RANK[b] else b


@functools.cache
def _file_under_tests(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(_TESTS_ROOT)


def _under_tests(obj: Any) -> bool:
    """True when a function or class is defined in a file under tests/ (the only code followed)."""
    if inspect.isfunction(obj):
        return _file_under_tests(obj.__code__.co_filename)
    filename = getattr(sys.modules.get(obj.__module__), "__file__", None)
    return filename is not None and _file_under_tests(filename)


def _references(tree: ast.AST) -> Iterator[list[str]]:
    """Every name and dotted attribute chain rooted at a name (`h.cli` -> ["h", "cli"]) in `tree`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield [node.id]
        elif isinstance(node, ast.Attribute):
            chain = [node.attr]
            value = node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                yield [value.id, *reversed(chain)]


def _module(name: str) -> Any:
    """Module `name` if it is loaded, or is a test-support module (imported now); None otherwise, so that
    looking at a helper never imports a library at collection time."""
    module = sys.modules.get(name)
    if module is None and name.split(".")[0] == "support":
        try:
            module = importlib.import_module(name)
        except ImportError:
            return None
    return module


def _imported(tree: ast.AST, package: str | None) -> dict[str, Any]:
    """The names that import statements inside `tree` bind (a helper importing its runner where it runs)."""
    bound: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            try:
                module = _module(importlib.util.resolve_name("." * node.level + (node.module or ""), package))
            except ValueError:  # a relative import outside a package
                continue
            for alias in node.names:
                if hasattr(module, alias.name):
                    bound[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name if alias.asname else alias.name.split(".")[0]
                if (module := _module(name)) is not None:
                    bound[alias.asname or name] = module
    return bound


def _parsed(obj: Any) -> ast.AST | None:
    """The syntax tree of a function's or class's source (None when it has none, e.g. a lambda mid-line)."""
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return None


def _node(obj: Any) -> Any:
    """The function or class `obj` stands for when it is one the analysis follows (a runner or code under
    tests/), else None."""
    if callable(obj):
        obj = inspect.unwrap(getattr(obj, "__func__", obj))
    try:
        if obj in _SEEDS:
            return obj
    except TypeError:  # unhashable: not a function or class
        return None
    if (inspect.isfunction(obj) or inspect.isclass(obj)) and _under_tests(obj):
        return obj
    return None


def _owner_of(obj: Any, owner: type | None) -> type | None:
    """The class whose `self.`/`cls.` a function's body means: `owner` when the function is defined in it."""
    if inspect.isclass(obj):
        return obj
    if owner is not None and obj.__qualname__.startswith(owner.__qualname__ + "."):
        return owner
    return None


class LaunchAnalysis:
    """Answers "does this start processes?" for functions and classes, remembering what each one names and
    every answer (one instance per collection)."""

    def __init__(self) -> None:
        self._named: dict[tuple[Any, type | None], list[tuple[Any, type | None]]] = {}
        self._known: dict[tuple[Any, type | None], str | None] = {}

    def kind_of(self, obj: Any, owner: type | None = None) -> str | None:
        """`crash`, `subprocess` or None for a function, method or class; `owner` is the class of a method,
        which resolves its `self.`/`cls.` references."""
        node = _node(obj)
        if node is None:
            return None
        start = (node, _owner_of(node, owner))
        if start in self._known:
            return self._known[start]
        kind: str | None = None
        seen: set[tuple[Any, type | None]] = set()
        stack = [start]
        while stack and kind != CRASH:  # everything `start` reaches, whatever cycles it holds
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in self._known:  # a finished answer covers everything it reaches
                kind = stronger(kind, self._known[current])
            elif current[0] in _SEEDS:
                kind = stronger(kind, _SEEDS[current[0]])
            else:
                stack.extend(self._names_of(*current))
        self._known[start] = kind
        return kind

    def _names_of(self, obj: Any, owner: type | None) -> list[tuple[Any, type | None]]:
        """The followed functions and classes that `obj`'s source names (its bases, for a class)."""
        key = (obj, owner)
        if key not in self._named:
            found: list[tuple[Any, type | None]] = []
            if inspect.isclass(obj):
                found += [(base, base) for base in obj.__mro__[1:] if _node(base) is not None]
            tree = _parsed(obj)
            if tree is not None:
                module = inspect.getmodule(obj)
                namespace = obj.__globals__ if inspect.isfunction(obj) else getattr(module, "__dict__", {})
                local = _imported(tree, getattr(module, "__package__", None))
                if local:
                    namespace = {**namespace, **local}
                for chain in _references(tree):
                    for value in _resolve(chain, namespace, owner):
                        node = _node(value)
                        if node is not None:
                            found.append((node, _owner_of(node, owner)))
            self._named[key] = list(dict.fromkeys(found))
        return self._named[key]


def _resolve(chain: list[str], namespace: dict[str, Any], owner: type | None) -> Iterator[Any]:
    """Every object along a name chain (`h`, then `h.cli`), looked up in the defining module."""
    root, *rest = chain
    if root in ("self", "cls") and owner is not None:
        value: Any = owner
    elif root in namespace:
        value = namespace[root]
    else:
        return
    yield value
    for attr in rest:
        try:
            value = inspect.getattr_static(value, attr)
        except AttributeError:
            return
        yield value
