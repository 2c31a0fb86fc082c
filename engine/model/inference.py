"""Return types of unannotated callables inferred from their source, as Beam's ``trivial_inference`` infers them
from bytecode, so that ``Map(lambda x: (x, 1))`` gives its output PCollection an element type that the next
transform's declared input type is checked against.

Why the source and not the bytecode: CPython's opcodes change with every minor version (users run 3.9 to 3.13),
while the `ast` of a lambda or a function is stable. The callable's node is found in its file's parsed source
by the code object's first line and argument names (and, from 3.11, the columns its instructions come from),
once the file's current text is known to compile to that very code object (a module edited since it was
imported is not its code's source); a callable without findable source (built in a REPL, by `exec`, a builtin,
or its file changed since) is Any.

What is inferred follows Beam's rules, so that an inferred type is never narrower than Beam's (a narrower one
could refuse a pipeline Beam accepts): literals and containers built from known parts, the input element and
constant indexing of a Tuple or List, arithmetic on numbers (Beam's promotion ladder), comparisons and `not`
(bool), `and`/`or` and conditional expressions (Union), f-strings (str), the builtins Beam knows (`len`,
`hash`, classes called as constructors: `int(x)` is int, `list(x)` is List[Any], a user's class is itself),
calls of Python functions and lambdas (their bodies inferred, four levels deep at most), methods of a user's
class, and generator functions (Iterable of what they yield). Methods of builtin types (`str.split`), and
builtins such as `abs`, `sum`, `min`, `sorted`, are Any, as in Beam. Anything not modelled is Any.

>>> infer_return_type(lambda x: (x, 1), [str])
typing.Tuple[str, int]
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import inspect
import linecache
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

__all__ = ["element_type", "generic", "infer_return_type", "instance_type", "key_value_types", "union"]

#: Beam's default inference depth: a callable, and what it calls, four levels down.
DEFAULT_DEPTH = 5

_NUMERIC_LADDER: tuple[type, ...] = (bool, int, float, complex)
_CONSTRUCTED: dict[Any, Any] = {
    list: typing.List[Any],  # noqa: UP006 - Beam's spelling of the hints
    set: typing.Set[Any],  # noqa: UP006
    frozenset: typing.FrozenSet[Any],  # noqa: UP006
    tuple: typing.Tuple[Any, ...],  # noqa: UP006
    dict: typing.Dict[Any, Any],  # noqa: UP006
}
_KNOWN_RETURNS: dict[Any, Any] = {len: int, hash: int}
_SEQUENCES = (
    list,
    set,
    frozenset,
    collections.abc.Iterable,
    collections.abc.Iterator,
    collections.abc.Generator,
)


class _Known:
    """A value known while inferring (a constant, or a function, class or module a name refers to)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Unbound:
    """A method of a user's class looked up on an instance whose type (not value) is known."""

    __slots__ = ("func", "owner")

    def __init__(self, func: types.FunctionType, owner: type) -> None:
        self.func, self.owner = func, owner


#: Builtin containers spelled as typing's names, as Beam's hints compare equal to them.
_SPELLED: dict[Any, Any] = {
    tuple: typing.Tuple,  # noqa: UP006
    list: typing.List,  # noqa: UP006
    dict: typing.Dict,  # noqa: UP006
    set: typing.Set,  # noqa: UP006
    frozenset: typing.FrozenSet,  # noqa: UP006
}


def generic(alias: Any, *args: Any) -> Any:
    """``alias[args]`` built at run time (the hints are values here, not annotations), in typing's spelling."""
    return _SPELLED.get(alias, alias)[args if len(args) != 1 else args[0]]


def union(*hints: Any) -> Any:
    """The Union of `hints` (one hint when they are equal), flattened and without repeats; as Beam's ``Union``,
    its Dict arms merge into one Dict of the Unions of their keys and values (Lists, Sets stay apart)."""
    parts: list[Any] = []
    merged: int | None = None  # where the one Dict arm is
    for h in hints:
        for p in typing.get_args(h) if typing.get_origin(h) is typing.Union else (h,):
            args = typing.get_args(p)
            if typing.get_origin(p) is dict and len(args) == 2:
                if merged is None:
                    merged = len(parts)
                    parts.append(generic(dict, *args))
                else:
                    k, v = typing.get_args(parts[merged])
                    parts[merged] = generic(dict, union(k, args[0]), union(v, args[1]))
            elif p not in parts:
                parts.append(p)
    if Any in parts:
        return Any
    if len(parts) == 1:
        return parts[0]
    return typing.Union[tuple(parts)]  # noqa: UP007 - Beam's Union


def instance_type(value: Any) -> Any:
    """The hint of a constant (Beam's ``instance_to_type``): its class, with containers' element types."""
    if value is None:
        return type(None)
    t = type(value)
    if t is tuple:
        return typing.Tuple[tuple(instance_type(v) for v in value)] if value else typing.Tuple[()]  # noqa: UP006
    if t in (list, set, frozenset):
        if not value:
            return _CONSTRUCTED[t]
        return _CONSTRUCTED[t].copy_with((union(*(instance_type(v) for v in value)),))
    if t is dict:
        if not value:
            return _CONSTRUCTED[dict]
        keys = union(*(instance_type(k) for k in value))
        return generic(dict, keys, union(*(instance_type(v) for v in value.values())))
    return t


def _hint(value: Any) -> Any:
    """A known value as its type; a hint as itself."""
    return instance_type(value.value) if isinstance(value, _Known) else value


def element_type(hint: Any) -> Any:
    """What iterating over a value of `hint` gives, as Beam reads it: the element of a List, Set, Iterable,
    Iterator or Generator, the Union of a Tuple's parts; Any for anything else (a str, a Dict, a class)."""
    hint = _hint(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return union(*args) if args and args != ((),) else Any
    if origin in _SEQUENCES and args:
        return args[0]
    return Any


def key_value_types(hint: Any) -> tuple[Any, Any]:
    """The key and value types of a two-part Tuple hint; (Any, Any) for anything else."""
    args = typing.get_args(hint) if typing.get_origin(hint) is tuple else ()
    if len(args) == 2 and args[1] is not Ellipsis:
        return args[0], args[1]
    return Any, Any


def infer_return_type(fn: Any, input_types: Sequence[Any], depth: int = DEFAULT_DEPTH) -> Any:
    """The type `fn` returns when called with arguments of `input_types` (Beam's
    ``trivial_inference.infer_return_type``); Any when it cannot tell. Never raises."""
    try:
        return _call(fn, [_hint(t) for t in input_types], depth)
    except RecursionError:
        return Any
    except Exception:  # an inference failure must never fail a pipeline: unknown is Any
        return Any


def _call(fn: Any, args: list[Any], depth: int) -> Any:
    """The result type of calling the value `fn` with arguments of types `args`."""
    try:
        if fn in _KNOWN_RETURNS:
            return _KNOWN_RETURNS[fn]
    except TypeError:  # unhashable callables are not in the table
        pass
    if isinstance(fn, types.FunctionType):
        return _infer_function(fn, args, depth)
    if isinstance(fn, types.MethodType) and isinstance(fn.__func__, types.FunctionType):
        return _infer_function(fn.__func__, [_Known(fn.__self__), *args], depth)
    if isinstance(fn, _Unbound):
        return _infer_function(fn.func, [fn.owner, *args], depth)
    if inspect.isclass(fn):
        return _CONSTRUCTED.get(fn, fn)
    return Any


# -- finding a callable's syntax tree -------------------------------------------------------------------------

#: The syntax of a callable: a lambda or a function definition.
_Def = typing.Union[ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef]  # noqa: UP007 - a runtime alias (3.9)

#: (file, code) -> its node: code objects compare equal across files (and `exec`'d strings) when their
#: bytecode, names and lines are equal, so the file is part of the key
_NODES: dict[tuple[str, types.CodeType], _Def | None] = {}
#: (file, hash of its text) -> its definitions by first line, and every code object its text compiles to
_MODULES: dict[tuple[str, int], tuple[dict[int, list[_Def]], frozenset[types.CodeType]]] = {}
_CACHE_LIMIT = 4096


def _definitions(filename: str) -> tuple[dict[int, list[_Def]], frozenset[types.CodeType]]:
    """The lambdas and functions of `filename` by the lines they start on (a decorated function also by its
    first decorator's line), and the code objects its text compiles to; parsed once per text of the file,
    empty when the source is not readable."""
    linecache.checkcache(filename)  # the file may have been edited since linecache read it
    lines = linecache.getlines(filename)
    if not lines:
        return {}, frozenset()
    text = "".join(lines)
    key = (filename, hash(text))
    if key not in _MODULES:
        if len(_MODULES) > 256:
            _MODULES.clear()
        index: dict[int, list[_Def]] = {}
        codes: set[types.CodeType] = set()
        try:
            tree = ast.parse(text, filename)
            # compiled as an import compiles it (the file's own __future__ flags only), to tell the code
            # objects this text makes from those of another version of the file
            pending = [compile(tree, filename, "exec", dont_inherit=True)]
        except (SyntaxError, ValueError):
            tree, pending = None, []
        while pending:
            code = pending.pop()
            codes.add(code)
            pending.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        for node in ast.walk(tree) if tree is not None else ():
            if isinstance(node, (ast.Lambda, ast.FunctionDef, ast.AsyncFunctionDef)):
                starts = {node.lineno}
                if not isinstance(node, ast.Lambda) and node.decorator_list:
                    starts.add(node.decorator_list[0].lineno)
                for line in starts:
                    index.setdefault(line, []).append(node)
        _MODULES[key] = (index, frozenset(codes))
    return _MODULES[key]


def _params(node: _Def) -> list[str]:
    """The names of a definition's positional parameters (what `co_varnames[:co_argcount]` holds)."""
    a = node.args
    return [p.arg for p in (*a.posonlyargs, *a.args)]


def _code_columns(code: types.CodeType) -> set[tuple[int, int]]:
    """The (line, column) starts of the code's instructions (3.11+), to tell lambdas on one line apart."""
    positions = getattr(code, "co_positions", None)
    if positions is None:
        return set()
    return {
        (line, col)
        for line, end_line, col, end_col in positions()
        # RESUME and the implicit return have an empty span at column 0: they say nothing of where the code is
        if line is not None and col is not None and (end_line, end_col) != (line, col) and end_col != 0
    }


def _within_body(node: _Def, line: int, col: int) -> bool:
    """Whether (line, col) lies in the body of `node` (a nested lambda's own code lies in its body; the code
    that makes it, in its enclosing one's, lies on its `lambda` keyword, outside it)."""
    first, last = (node.body, node.body) if isinstance(node, ast.Lambda) else (node.body[0], node.body[-1])
    start = (first.lineno, first.col_offset)
    end = (getattr(last, "end_lineno", None) or last.lineno, getattr(last, "end_col_offset", None) or 0)
    return start <= (line, col) < end


def _function_node(code: types.CodeType) -> _Def | None:
    """The Lambda or FunctionDef node that compiled to `code`, found once per code object; None when the
    source cannot be found or the candidates on its line cannot be told apart."""
    key = (code.co_filename, code)
    if key in _NODES:
        return _NODES[key]
    node = _find_node(code)
    if len(_NODES) > _CACHE_LIMIT:
        _NODES.clear()
    _NODES[key] = node
    return node


def _find_node(code: types.CodeType) -> _Def | None:
    """The definitions starting on the code's first line with its name and parameters; one of them by the
    columns of its instructions when there are several. None unless the file's current text compiles to
    `code` (code objects compare by their bytecode, constants, names and line table)."""
    index, codes = _definitions(code.co_filename)
    if code not in codes:
        # the file's text is not the code's source (edited since it was imported, or compiled otherwise)
        return None
    params = list(code.co_varnames[: code.co_argcount])
    candidates = [
        node
        for node in index.get(code.co_firstlineno, ())
        if (node.name if not isinstance(node, ast.Lambda) else "<lambda>") == code.co_name
        and _params(node) == params
    ]
    if len(candidates) > 1:
        # the innermost candidate holding every instruction of the code (3.11+ records their columns)
        columns = _code_columns(code)
        holding = [c for c in candidates if columns and all(_within_body(c, ln, col) for ln, col in columns)]
        if holding:
            return min(holding, key=_span)
        dumps = {ast.dump(c) for c in candidates}
        return candidates[0] if len(dumps) == 1 else None  # identical lambdas infer alike
    return candidates[0] if candidates else None


def _span(node: _Def) -> tuple[int, int]:
    """A node's extent, to pick the innermost of nested candidates."""
    end_line = getattr(node, "end_lineno", None) or node.lineno
    end_col = getattr(node, "end_col_offset", None) or 0
    return (end_line - node.lineno, end_col - node.col_offset)


# -- evaluating the tree --------------------------------------------------------------------------------------


class _Frame:
    """One function's inference: its names' types, the resolution of free names, and what it returns."""

    def __init__(self, fn: types.FunctionType, depth: int) -> None:
        self.fn = fn
        self.depth = depth
        self.env: dict[str, Any] = {}
        self.returns: list[Any] = []
        self.yields: list[Any] = []
        cells = fn.__closure__ or ()
        self.free = dict(zip(fn.__code__.co_freevars, cells))

    def lookup(self, name: str, env: dict[str, Any]) -> Any:
        """A name's type: a local's, else the known value of a closure cell, a global or a builtin, else Any."""
        if name in env:
            return env[name]
        if name in self.free:
            try:
                return _Known(self.free[name].cell_contents)
            except ValueError:  # an empty cell
                return Any
        if name in self.fn.__globals__:
            return _Known(self.fn.__globals__[name])
        if hasattr(builtins, name):
            return _Known(getattr(builtins, name))
        return Any


def _infer_function(fn: types.FunctionType, args: list[Any], depth: int) -> Any:
    """What `fn` returns for arguments of types `args` (missing ones Any): a lambda's body, or the Union of a
    function's returns (None when it can fall off its end), or Iterable of what a generator yields."""
    node = _function_node(fn.__code__)
    if node is None:
        return Any
    frame = _Frame(fn, depth)
    params = _params(node)  # type: ignore[arg-type]
    env: dict[str, Any] = {}
    for i, name in enumerate(params):
        env[name] = args[i] if i < len(args) else Any
    for name in _stored_names(node):
        env.setdefault(name, Any)
    if isinstance(node, ast.Lambda):
        return _hint(_expr(node.body, env, frame))
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    if isinstance(node, ast.AsyncFunctionDef):
        return Any
    falls_through = _block(node.body, env, frame)
    if _yields(node):
        return generic(typing.Iterable, union(*frame.yields) if frame.yields else Any)
    results = list(frame.returns)
    if falls_through:
        results.append(type(None))
    return union(*(_hint(r) for r in results)) if results else Any


def _own_nodes(node: ast.AST) -> list[ast.AST]:
    """The nodes of a function's body, not descending into nested functions, lambdas or classes."""
    out: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(node))
    while stack:
        n = stack.pop()
        out.append(n)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(n))
    return out


def _yields(node: ast.AST) -> bool:
    """Whether the function `node` is a generator."""
    return any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(node))


def _stored_names(node: ast.AST) -> set[str]:
    """The names a function body binds (its locals), not looking into nested definitions."""
    names: set[str] = set()
    for n in _own_nodes(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            names.add(n.name)
    return names


def _assign(target: ast.AST, value: Any, env: dict[str, Any]) -> None:
    """Bind `target` to `value`'s type; tuple targets take a Tuple's parts, anything unknown is Any."""
    if isinstance(target, ast.Name):
        env[target.id] = value
    elif isinstance(target, (ast.Tuple, ast.List)):
        hint = _hint(value)
        args = typing.get_args(hint) if typing.get_origin(hint) is tuple else ()
        fixed = len(args) == len(target.elts) and not (len(args) == 2 and args[1] is Ellipsis)
        for i, t in enumerate(target.elts):
            if isinstance(t, ast.Starred):
                _assign(t.value, Any, env)
            else:
                _assign(t, args[i] if fixed else element_type(hint), env)
    else:
        for n in ast.walk(target):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                env[n.id] = Any


def _merge(into: dict[str, Any], *branches: dict[str, Any]) -> None:
    """Names after branches: the union of what each branch leaves them as."""
    for name in set().union(*branches):
        values = [b.get(name, Any) for b in branches]
        into[name] = union(*(_hint(v) for v in values)) if len({id(v) for v in values}) > 1 else values[0]


def _block(stmts: list[ast.stmt], env: dict[str, Any], frame: _Frame) -> bool:
    """Infer `stmts` in order, updating `env`; whether control can fall off the end."""
    for stmt in stmts:
        if not _stmt(stmt, env, frame):
            return False
    return True


def _stmt(stmt: ast.stmt, env: dict[str, Any], frame: _Frame) -> bool:
    """Infer one statement; whether control continues after it."""
    if isinstance(stmt, ast.Return):
        frame.returns.append(_expr(stmt.value, env, frame) if stmt.value is not None else type(None))
        return False
    if isinstance(stmt, ast.Expr):
        _expr(stmt.value, env, frame)
        return True
    if isinstance(stmt, ast.Assign):
        value = _expr(stmt.value, env, frame)
        for t in stmt.targets:
            _assign(t, value, env)
        return True
    if isinstance(stmt, ast.AnnAssign):
        if stmt.value is not None:
            _assign(stmt.target, _expr(stmt.value, env, frame), env)
        return True
    if isinstance(stmt, ast.AugAssign):
        value = _binop(stmt.op, _expr(stmt.target, env, frame), _expr(stmt.value, env, frame))
        _assign(stmt.target, value, env)
        return True
    if isinstance(stmt, ast.If) and isinstance(stmt.test, ast.Constant):
        # CPython compiles the dead branch away, so Beam never sees it: neither do we
        return _block(stmt.body if stmt.test.value else stmt.orelse, env, frame)
    if isinstance(stmt, ast.If):
        _expr(stmt.test, env, frame)
        left, right = dict(env), dict(env)
        a = _block(stmt.body, left, frame)
        b = _block(stmt.orelse, right, frame)
        live = [e for e, ok in ((left, a), (right, b)) if ok]
        _merge(env, *(live or [left, right]))
        return a or b
    if isinstance(stmt, (ast.For, ast.While)):
        for _ in range(2):  # twice, so that names reassigned in the body take the union of both passes
            body = dict(env)
            if isinstance(stmt, ast.For):
                _assign(stmt.target, element_type(_expr(stmt.iter, env, frame)), body)
            else:
                _expr(stmt.test, env, frame)
            _block(stmt.body, body, frame)
            _merge(env, env, body)
        _block(stmt.orelse, env, frame)
        endless = (
            isinstance(stmt, ast.While) and isinstance(stmt.test, ast.Constant) and bool(stmt.test.value)
        )
        # `while True:` ends only by a break (or a return, counted already)
        return not endless or any(isinstance(n, ast.Break) for n in _own_nodes(stmt))
    if isinstance(stmt, (ast.Pass, ast.Break, ast.Continue)):
        return True
    if isinstance(stmt, ast.Raise):
        return False
    if isinstance(stmt, ast.Try) or (sys.version_info >= (3, 11) and type(stmt).__name__ == "TryStar"):
        body = dict(env)
        ok = _block(stmt.body, body, frame)  # type: ignore[attr-defined]
        outcomes = [body] if ok else []
        for handler in stmt.handlers:  # type: ignore[attr-defined]
            h = dict(env)
            _merge(h, env, body)
            if handler.name:
                h[handler.name] = Any
            if _block(handler.body, h, frame):
                outcomes.append(h)
        if outcomes:
            _merge(env, *outcomes)
        if ok:
            _block(stmt.orelse, env, frame)  # type: ignore[attr-defined]
        _block(stmt.finalbody, env, frame)  # type: ignore[attr-defined]
        return bool(outcomes)
    # with, match, nested definitions, imports, del, global ...: their names become unknown
    for n in ast.walk(stmt):
        if isinstance(n, (ast.Yield, ast.YieldFrom)):
            frame.yields.append(Any)
        if isinstance(n, ast.Return):
            frame.returns.append(Any)
    for name in _stored_names(ast.Module(body=[stmt], type_ignores=[])):
        env[name] = Any
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        env[stmt.name] = Any
    return True


def _binop(op: ast.operator, left: Any, right: Any) -> Any:
    """Beam's rule for a binary operator's result: equal types keep theirs (int / int is float), sequences
    of one kind join, int times str/bytes/a sequence is that, numbers promote along bool < int < float <
    complex; anything else is Any."""
    a, b = _hint(left), _hint(right)
    if a == b:
        if a is int and isinstance(op, ast.Div):
            return float
        return a
    oa, ob = typing.get_origin(a), typing.get_origin(b)
    if (
        oa is not None
        and oa is ob
        and oa in (list, set, frozenset)
        and typing.get_args(a)
        and typing.get_args(b)
    ):
        return _CONSTRUCTED[oa].copy_with((union(element_type(a), element_type(b)),))
    if a is int and (b in (bytes, str) or ob in (list, set, frozenset)):
        return b
    if b is int and (a in (bytes, str) or oa in (list, set, frozenset)):
        return a
    if a in _NUMERIC_LADDER and b in _NUMERIC_LADDER:
        return _NUMERIC_LADDER[max(_NUMERIC_LADDER.index(a), _NUMERIC_LADDER.index(b))]
    return Any


def _subscript(base: Any, index: Any) -> Any:
    """`base[index]`: a str stays str, a constant index picks a Tuple's part or a List's element, a constant
    slice keeps a Tuple's parts; anything else is the element type."""
    hint = _hint(base)
    if hint is str:
        return str
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if (
        isinstance(index, _Known)
        and isinstance(index.value, (int, slice))
        and not isinstance(index.value, bool)
    ):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis) and args != ((),):
            try:
                part = args[index.value]
            except IndexError:
                return element_type(hint)
            return typing.Tuple[part] if isinstance(index.value, slice) else part  # noqa: UP006
        if isinstance(index.value, slice) and origin in (list, tuple):
            return hint
        return element_type(hint)
    return element_type(hint)


def _expr(node: ast.expr | None, env: dict[str, Any], frame: _Frame) -> Any:  # noqa: C901 - one case per node kind
    """The type (or known value) of expression `node`."""
    if node is None:
        return type(None)
    if isinstance(node, ast.Constant):
        return _Known(node.value)
    if isinstance(node, ast.Name):
        return frame.lookup(node.id, env)
    if isinstance(node, ast.Tuple):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            return Any
        parts = [_hint(_expr(e, env, frame)) for e in node.elts]
        return typing.Tuple[tuple(parts)] if parts else typing.Tuple[()]  # noqa: UP006
    if isinstance(node, (ast.List, ast.Set)):
        kind = list if isinstance(node, ast.List) else set
        if any(isinstance(e, ast.Starred) for e in node.elts):
            return _CONSTRUCTED[kind]
        parts = [_hint(_expr(e, env, frame)) for e in node.elts]
        return _CONSTRUCTED[kind].copy_with((union(*parts),)) if parts else _CONSTRUCTED[kind]
    if isinstance(node, ast.Dict):
        if not node.keys or any(k is None for k in node.keys):
            return _CONSTRUCTED[dict]
        keys = union(*(_hint(_expr(k, env, frame)) for k in node.keys))
        values = union(*(_hint(_expr(v, env, frame)) for v in node.values))
        return generic(dict, keys, values)
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        inner = dict(env)
        for gen in node.generators:
            _assign(gen.target, element_type(_expr(gen.iter, inner, frame)), inner)
        if isinstance(node, ast.DictComp):
            key, value = _hint(_expr(node.key, inner, frame)), _hint(_expr(node.value, inner, frame))
            return generic(dict, key, value)
        elt = _hint(_expr(node.elt, inner, frame))
        if isinstance(node, ast.ListComp):
            return generic(list, elt)
        if isinstance(node, ast.SetComp):
            return generic(set, elt)
        return generic(typing.Iterable, elt)
    if isinstance(node, ast.BinOp):
        return _binop(node.op, _expr(node.left, env, frame), _expr(node.right, env, frame))
    if isinstance(node, ast.UnaryOp):
        value = _expr(node.operand, env, frame)
        if (
            isinstance(value, _Known)
            and isinstance(value.value, (int, float))
            and not isinstance(node.op, ast.Not)
        ):
            # CPython folds `-1` into a constant (so `kv[-1]` indexes by a known value, as in Beam's bytecode)
            try:
                return _Known(_UNARY[type(node.op)](value.value))
            except Exception:
                return _hint(value)
        return bool if isinstance(node.op, ast.Not) else _hint(value)
    if isinstance(node, ast.BoolOp):
        return union(*(_hint(_expr(v, env, frame)) for v in node.values))
    if isinstance(node, ast.Compare):
        return bool
    if isinstance(node, ast.IfExp):
        _expr(node.test, env, frame)
        return union(_hint(_expr(node.body, env, frame)), _hint(_expr(node.orelse, env, frame)))
    if isinstance(node, (ast.JoinedStr, ast.FormattedValue)):
        return str
    if isinstance(node, ast.NamedExpr):
        value = _expr(node.value, env, frame)
        env[node.target.id] = value
        return value
    if isinstance(node, ast.Subscript):
        base = _expr(node.value, env, frame)
        index = _expr(node.slice, env, frame)
        return _subscript(base, index)
    if isinstance(node, ast.Slice):
        parts = [None if p is None else _expr(p, env, frame) for p in (node.lower, node.upper, node.step)]
        if all(p is None or (isinstance(p, _Known) and isinstance(p.value, int)) for p in parts):
            return _Known(slice(*(None if p is None else p.value for p in parts)))
        return slice
    if isinstance(node, ast.Attribute):
        return _attribute(_expr(node.value, env, frame), node.attr)
    if isinstance(node, ast.Lambda):
        return types.FunctionType  # a function value, as Beam types it
    if isinstance(node, ast.Call):
        return _call_expr(node, env, frame)
    if isinstance(node, (ast.Yield, ast.YieldFrom)):
        value = _expr(node.value, env, frame) if node.value is not None else type(None)
        frame.yields.append(_hint(value) if isinstance(node, ast.Yield) else element_type(value))
        return Any
    return Any


def _attribute(base: Any, name: str) -> Any:
    """`base.name`: an attribute of a known value is known; a method of a user's class on an instance of it is
    that method; anything else (a builtin type's method, a data attribute) is Any."""
    if isinstance(base, _Known):
        try:
            raw = inspect.getattr_static(base.value, name)
        except AttributeError:
            return Any
        if isinstance(raw, property) or (
            hasattr(type(raw), "__get__")
            and not isinstance(raw, _PLAIN_ATTRIBUTES)
            and not inspect.isclass(raw)
        ):
            return Any  # a property or other descriptor: reading it would run user code
        try:
            return _Known(getattr(base.value, name))
        except Exception:
            return Any
    if inspect.isclass(base) and base.__module__ != "builtins":
        attr = inspect.getattr_static(base, name, None)
        if isinstance(attr, types.FunctionType):
            return _Unbound(attr, base)
    return Any


_UNARY: dict[type, Any] = {ast.USub: lambda v: -v, ast.UAdd: lambda v: +v, ast.Invert: lambda v: ~v}

#: Attributes read without running user code: functions and methods become bound methods or stay functions.
_PLAIN_ATTRIBUTES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.ClassMethodDescriptorType,
    staticmethod,
    classmethod,
)


def _call_expr(node: ast.Call, env: dict[str, Any], frame: _Frame) -> Any:
    """A call: the callee's inferred result for positional arguments; with keywords or unpacking, Any."""
    args = [_expr(a, env, frame) for a in node.args]
    for k in node.keywords:
        _expr(k.value, env, frame)
    if isinstance(node.func, ast.Lambda):  # (lambda y: ...)(x): its body, with its names bound here
        if node.keywords or len(node.args) != len(_params(node.func)):
            return Any
        inner = dict(env)
        inner.update(zip(_params(node.func), args))
        return _hint(_expr(node.func.body, inner, frame))
    callee = _expr(node.func, env, frame)
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        return Any
    if frame.depth <= 0:  # as Beam: at the depth bound, every call is Any
        return Any
    if isinstance(callee, _Known):
        fn = callee.value
        if (
            fn is getattr
            and len(args) == 2
            and isinstance(args[1], _Known)
            and isinstance(args[1].value, str)
        ):
            return _attribute(args[0], args[1].value)
        return _call(fn, args, frame.depth - 1)
    if isinstance(callee, _Unbound):
        return _call(callee, args, frame.depth - 1)
    return Any
