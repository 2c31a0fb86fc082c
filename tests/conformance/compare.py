"""Pane-by-pane comparison of canonical pane lists (the logic of the oracle's compare.py).

Panes are paired by identity (key, window, index); every field of a pair is compared (timestamps and
sums with 1 µs tolerance, ``values`` as a multiset); unpaired panes are MISSING (only expected) or EXTRA
(only actual). ``ignore`` drops fields; ignoring ``index`` pairs the panes of a (key, window) in step order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

IDENTITY = ("key", "window", "index")
FIELD_ORDER = (
    "key",
    "window",
    "index",
    "values",
    "value",
    "timing",
    "is_first",
    "is_last",
    "nonspeculative_index",
    "timestamp",
    "step",
)

PaneDict = dict[str, Any]


def _freeze(x: Any) -> str:
    return json.dumps(x, sort_keys=True)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def values_equal(field: str, a: Any, b: Any) -> bool:
    """Field equality with compare.py's tolerances."""
    if field in ("timestamp", "value") and _is_number(a) and _is_number(b):
        return abs(a - b) <= 1e-6 * (1 + 1e-9)
    if field == "values" and isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and sorted(a, key=_freeze) == sorted(b, key=_freeze)
    return bool(a == b)


def match_panes(
    expected: list[PaneDict], actual: list[PaneDict], ignore: Iterable[str] = ()
) -> tuple[list[tuple[PaneDict, PaneDict]], list[PaneDict], list[PaneDict]]:
    """Pair panes: (pairs, missing, extra)."""
    ignore = set(ignore)
    pairs: list[tuple[PaneDict, PaneDict]] = []
    missing: list[PaneDict] = []
    extra: list[PaneDict] = []
    if "index" not in ignore:

        def ident(p: PaneDict) -> tuple[str, ...]:
            return tuple(_freeze(p.get(f)) for f in IDENTITY)

        by_ident: dict[tuple[str, ...], list[PaneDict]] = {}
        for p in actual:
            by_ident.setdefault(ident(p), []).append(p)
        for e in expected:
            lst = by_ident.get(ident(e))
            if lst:
                pairs.append((e, lst.pop(0)))
            else:
                missing.append(e)
        for lst in by_ident.values():
            extra.extend(lst)
    else:
        exp_g: dict[tuple[str, str], list[PaneDict]] = {}
        act_g: dict[tuple[str, str], list[PaneDict]] = {}
        for p in expected:
            exp_g.setdefault((_freeze(p.get("key")), _freeze(p.get("window"))), []).append(p)
        for p in actual:
            act_g.setdefault((_freeze(p.get("key")), _freeze(p.get("window"))), []).append(p)
        for g in list(exp_g) + [g for g in act_g if g not in exp_g]:
            es = sorted(exp_g.get(g, []), key=lambda p: p.get("step", 0))
            acts = sorted(act_g.get(g, []), key=lambda p: p.get("step", 0))
            for i in range(max(len(es), len(acts))):
                if i < len(es) and i < len(acts):
                    pairs.append((es[i], acts[i]))
                elif i < len(es):
                    missing.append(es[i])
                else:
                    extra.append(acts[i])
    return pairs, missing, extra


def compare(expected: list[PaneDict], actual: list[PaneDict], ignore: Iterable[str] = ()) -> list[str]:
    """Human-readable differences (empty when equal)."""
    ignore = set(ignore)
    diffs: list[str] = []
    pairs, missing, extra = match_panes(expected, actual, ignore)

    def ident(p: PaneDict) -> str:
        return f"key={json.dumps(p.get('key'))} window={json.dumps(p.get('window'))} index={p.get('index')}"

    def strip(p: PaneDict) -> PaneDict:
        return {k: v for k, v in p.items() if k not in ignore}

    for e, a in sorted(pairs, key=lambda ea: _freeze([ea[0].get(f) for f in IDENTITY])):
        fields = [f for f in FIELD_ORDER if f in e or f in a]
        fields += sorted((set(e) | set(a)) - set(fields))
        for f in fields:
            if f in ignore:
                continue
            if f not in e:
                diffs.append(f"{ident(e)}: field {f!r} only in actual ({json.dumps(a[f])})")
            elif f not in a:
                diffs.append(f"{ident(e)}: field {f!r} missing in actual (expected {json.dumps(e[f])})")
            elif not values_equal(f, e[f], a[f]):
                diffs.append(f"{ident(e)}: {f} expected {json.dumps(e[f])}, actual {json.dumps(a[f])}")
    for p in missing:
        diffs.append(f"MISSING pane {json.dumps(strip(p))}")
    for p in extra:
        diffs.append(f"EXTRA pane {json.dumps(strip(p))}")
    return diffs
