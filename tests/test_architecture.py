"""The tree is the architecture: docs/architecture.md's tree matches the modules, and the import rules hold.

The rules (docs/architecture.md, "Layers and the import rules") are checked on every import statement of the
code, module level or inside functions, by reading the source: nothing is imported to check them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {
    "engine": "millstream.engine",
    "state": "millstream.state",
    "connectors": "millstream.connectors",
    "daemon": "millstream.daemon",
    "src/millstream": "millstream",
}
DOC = ROOT / "docs" / "architecture.md"


def modules() -> dict[str, str]:
    """Every module of the package: repository path -> import name (links inside src/millstream skipped)."""
    found: dict[str, str] = {}
    for room, prefix in ROOMS.items():
        base = ROOT / room
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base)
            if any((base / p).is_symlink() for p in rel.parents if str(p) != "."):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[str(path.relative_to(ROOT))] = ".".join([prefix, *parts])
    return found


def imports_of(path: Path, name: str) -> list[str]:
    """The absolute names of our package that a module imports, relative imports resolved."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]
    return [m for m in out if m == "millstream" or m.startswith("millstream.")]


def within(name: str, *prefixes: str) -> bool:
    """Whether `name` is one of `prefixes` or inside one of them."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_documented_tree_is_the_tree():
    text = DOC.read_text()
    block = text.split("<!-- tree:begin -->", 1)[1].split("<!-- tree:end -->", 1)[0]
    documented = set(re.findall(r"^(\S+\.py)\b", block, re.M))
    actual = {p for p in modules() if not p.endswith("__init__.py")}
    assert sorted(actual - documented) == [], "modules missing from docs/architecture.md's tree"
    assert sorted(documented - actual) == [], "docs/architecture.md lists modules that do not exist"


def test_nothing_at_the_root_shadows_the_package():
    assert not (ROOT / "millstream").exists(), (
        "a millstream/ folder at the root shadows the installed package"
    )
    for room in ("engine", "state", "connectors", "daemon"):
        link = ROOT / "src" / "millstream" / room
        assert link.is_symlink() and link.resolve() == (ROOT / room).resolve(), f"src/millstream/{room}"


RULES: list[tuple[str, tuple[str, ...], str]] = [
    # (importer prefix, what it may import of ours, why)
    ("millstream.engine.model", ("millstream.engine.model",), "the model knows no runtime"),
    ("millstream.state", ("millstream.state",), "state/ knows nothing of ours"),
    ("millstream.engine.runtime.watermarks", ("millstream.engine.model",), "watermark tracking is pure"),
    (
        "millstream.engine",
        ("millstream.engine", "millstream.state"),
        "the engine knows no connector or daemon",
    ),
    (
        "millstream.engine.translate",
        ("millstream.engine.model", "millstream.engine.translate"),
        "the Beam translator works on the model, never the runtime",
    ),
    (
        "millstream.connectors",
        (
            "millstream.engine.model",
            "millstream.state",
            "millstream.connectors",
            "millstream.engine.runtime.exec.clock",
            "millstream.engine.translate.beam.hooks",
        ),
        "connectors use only the engine's public interfaces",
    ),
]


@pytest.mark.parametrize("importer,allowed,why", RULES, ids=[r[0] for r in RULES])
def test_import_rules(importer, allowed, why):
    broken = []
    for rel, name in modules().items():
        if not within(name, importer):
            continue
        for imported in imports_of(ROOT / rel, name):
            if not within(imported, *allowed):
                broken.append(f"{rel} imports {imported}")
    assert broken == [], f"{why}: " + "; ".join(broken)


def test_the_rule_checker_sees_a_violation(tmp_path):
    """The checker itself can fail: a runtime import inside a function is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from millstream.engine.runtime.exec import runner\n    from . import x\n")
    found = imports_of(bad, "millstream.engine.model.bad")
    assert "millstream.engine.runtime.exec" in found and "millstream.engine.model.x" in found


def test_the_public_package_only_re_exports():
    """src/millstream holds Beam's module paths; what they name is defined in the rooms."""
    defining = []
    for rel, _ in modules().items():
        if not rel.startswith("src/millstream/"):
            continue
        tree = ast.parse((ROOT / rel).read_text())
        defining += [
            f"{rel}: {n.name}"
            for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        ]
    assert defining == [], "define these in engine/, connectors/ or daemon/ and re-export them"
