"""Run a conformance scenario (the Beam oracle's JSON format) directly on millstream's reducer.

Each ``elements`` event is one ``process_bundle``, each ``watermarks`` one ``advance_input_watermark``, each
``processing_time`` an advance of a fake clock (starting at 0). At the end of the stream processing time
advances by 10^6 s if the trigger uses processing time (the oracle's convention), then the watermark goes
to +infinity. The output is the oracle's canonical pane JSON (same fields, ``step`` included).

Reusable pieces (the TestStream runner builds on them): `build_window_fn`, `build_trigger`,
`reducer_kwargs`, `canonical_pane`, `canonical_result` (takes ``[(step, pane), ...]``) and `dumps`.

    python tests/conformance/driver.py CASE.json [--compat] [-o OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from millstream.engine.model import trigger as T
from millstream.engine.model import window as W
from millstream.engine.model.timestamp import END_OF_GLOBAL_WINDOW_MICROS, MAX_MICROS, MIN_MICROS, to_micros
from millstream.engine.runtime.windowing.combine_fns import ListCombineFn, SumCombineFn
from millstream.engine.runtime.windowing.panes import Pane
from millstream.engine.runtime.windowing.reduce_fn_runner import create_reducer

FORMAT_VERSION = 1
END_OF_STREAM_PROCESSING_TIME_ADVANCE = 10**6

Spec = dict[str, Any]


def build_window_fn(spec: Any) -> W.WindowFn:
    """The window fn of a scenario's ``window`` field."""
    if spec is None:
        spec = {"type": "global"}
    kind = spec.get("type")
    if kind == "fixed":
        return W.FixedWindows(spec["size"], spec.get("offset", 0))
    if kind == "sliding":
        return W.SlidingWindows(spec["size"], spec["period"], spec.get("offset", 0))
    if kind == "sessions":
        return W.Sessions(spec["gap"])
    if kind == "global":
        return W.GlobalWindows()
    raise ValueError(f"unknown window type: {spec!r}")


def build_trigger(spec: Any) -> T.TriggerFn:
    """The trigger of a scenario's nested ``trigger`` expression."""
    if spec is None or spec == "Default":
        return T.DefaultTrigger()
    if spec == "Never":
        return T.Never()
    if spec == "Always":
        return T.Always()
    if spec == "AfterWatermark":
        return T.AfterWatermark()
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"bad trigger expression: {spec!r}")
    ((name, arg),) = spec.items()
    if name in ("Default", "Never", "Always"):
        return build_trigger(name)
    if name == "AfterWatermark":
        arg = arg or {}
        early = build_trigger(arg["early"]) if arg.get("early") else None
        late = build_trigger(arg["late"]) if arg.get("late") else None
        return T.AfterWatermark(early=early, late=late)
    if name == "AfterCount":
        return T.AfterCount(int(arg))
    if name == "AfterProcessingTime":
        if isinstance(arg, dict):
            arg = arg.get("delay", 0)
        return T.AfterProcessingTime(arg)
    if name == "Repeatedly":
        return T.Repeatedly(build_trigger(arg))
    if name in ("AfterAny", "AfterFirst"):
        return T.AfterAny(*[build_trigger(t) for t in arg])
    if name == "AfterAll":
        return T.AfterAll(*[build_trigger(t) for t in arg])
    if name == "AfterEach":
        return T.AfterEach(*[build_trigger(t) for t in arg])
    if name == "OrFinally":
        return T.OrFinally(build_trigger(arg[0]), build_trigger(arg[1]))
    raise ValueError(f"unknown trigger: {name!r}")


_ACCUMULATION = {"accumulating": T.AccumulationMode.ACCUMULATING, "discarding": T.AccumulationMode.DISCARDING}
_COMBINERS = {
    "end_of_window": W.TimestampCombiner.OUTPUT_AT_EOW,
    "earliest": W.TimestampCombiner.OUTPUT_AT_EARLIEST,
    "latest": W.TimestampCombiner.OUTPUT_AT_LATEST,
}


def reducer_kwargs(spec: Spec) -> dict[str, Any]:
    """Constructor arguments of a `Reducer` for a scenario's windowing strategy and aggregation."""
    aggregation = spec.get("aggregation", "collect")
    return {
        "window_fn": build_window_fn(spec.get("window")),
        "trigger": build_trigger(spec.get("trigger", "Default")),
        "accumulation_mode": _ACCUMULATION[spec.get("accumulation", "accumulating")],
        "allowed_lateness_us": to_micros(spec.get("allowed_lateness", 0)),
        "timestamp_combiner": _COMBINERS[spec.get("timestamp_combiner", "end_of_window")],
        "combine_fn": SumCombineFn() if aggregation == "sum" else ListCombineFn(),
    }


def run_scenario(spec: Spec, reducer_factory: Any = create_reducer, **options: Any) -> list[tuple[int, Pane]]:
    """Feed a scenario to a fresh reducer (by default the production choice, fast paths included).

    Returns ``[(step, pane), ...]`` in emission order.
    """
    kwargs = reducer_kwargs(spec)
    reducer = reducer_factory(**kwargs, **options)
    out: list[tuple[int, Pane]] = []
    now = 0
    events = spec.get("events", [])
    for step, ev in enumerate(events):
        ((kind, arg),) = ev.items()
        if kind == "elements":
            panes = reducer.process_bundle(
                [e[0] for e in arg], [e[1] for e in arg], [to_micros(e[2]) for e in arg]
            )
        elif kind == "watermark":
            wm = to_micros(arg)
            panes = reducer.advance_input_watermark(max(wm, reducer.input_watermark))
        elif kind == "processing_time":
            now += to_micros(arg)
            panes = reducer.advance_processing_time(now)
        else:
            raise ValueError(f"unknown event {kind!r}")
        out.extend((step, p) for p in panes)
    n = len(events)
    if kwargs["trigger"].uses_processing_time():
        now += to_micros(END_OF_STREAM_PROCESSING_TIME_ADVANCE)
        out.extend((n, p) for p in reducer.advance_processing_time(now))
    out.extend((n, p) for p in reducer.advance_input_watermark(MAX_MICROS))
    return out


def _num(micros: int) -> int | float:
    if micros % 1_000_000 == 0:
        return micros // 1_000_000
    return round(micros / 1e6, 6)


def canonical_time(micros: int) -> int | float | str:
    """Seconds (µs exact), or the oracle's names for the ends of time."""
    if micros >= MAX_MICROS:
        return "+inf"
    if micros <= MIN_MICROS:
        return "-inf"
    if micros >= END_OF_GLOBAL_WINDOW_MICROS:
        return "END_OF_GLOBAL_WINDOW"
    return _num(micros)


def canonical_window(window: W.BoundedWindow) -> Any:
    """``[start, end]`` in seconds, or "GLOBAL"."""
    if isinstance(window, W.GlobalWindow):
        return "GLOBAL"
    return [canonical_time(window.start_us), canonical_time(window.end_us)]


def _sort_key(v: Any) -> tuple[Any, ...]:
    return (type(v).__name__ != "str", type(v).__name__, v)


def canonical_pane(pane: Pane, aggregation: str, step: int) -> dict[str, Any]:
    """One pane in the oracle's canonical form."""
    key, window, value, ts, info = pane
    out: dict[str, Any] = {"key": key, "window": canonical_window(window)}
    if aggregation == "sum":
        out["value"] = value
    else:
        out["values"] = sorted(value, key=_sort_key)
    out.update(
        {
            "timing": info.timing.name,
            "is_first": info.is_first,
            "is_last": info.is_last,
            "index": info.index,
            "nonspeculative_index": info.nonspeculative_index,
            "timestamp": canonical_time(ts),
            "step": step,
        }
    )
    return out


def _window_sort_key(w: Any) -> tuple[Any, ...]:
    if w == "GLOBAL":
        return (0, 0, 0)
    return (
        1,
        *(
            float("inf") if x in ("+inf", "END_OF_GLOBAL_WINDOW") else float("-inf") if x == "-inf" else x
            for x in w
        ),
    )


def pane_sort_key(p: dict[str, Any]) -> tuple[Any, ...]:
    """The oracle's pane order: key, window, index, step."""
    return (
        str(p["key"]),
        _window_sort_key(p["window"]),
        p["index"],
        p.get("step", 0),
        json.dumps(p, sort_keys=True),
    )


def canonical_result(
    spec: Spec, step_panes: list[tuple[int, Pane]], engine: str = "millstream reducer"
) -> dict[str, Any]:
    """The canonical result document for ``[(step, pane), ...]`` of a scenario."""
    aggregation = spec.get("aggregation", "collect")
    panes = sorted((canonical_pane(p, aggregation, step) for step, p in step_panes), key=pane_sort_key)
    return {
        "format_version": FORMAT_VERSION,
        "oracle": engine,
        "name": spec.get("name"),
        "aggregation": aggregation,
        "num_events": len(spec.get("events", [])),
        "panes": panes,
    }


def dumps(result: dict[str, Any]) -> str:
    """JSON with one pane per line, like the oracle's files."""
    lines = ["{"]
    for k, v in result.items():
        if k != "panes":
            lines.append(f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)},")
    panes = result.get("panes", [])
    if not panes:
        lines.append(' "panes": []')
    else:
        lines.append(' "panes": [')
        lines.extend(f"  {json.dumps(p)}{',' if i + 1 < len(panes) else ''}" for i, p in enumerate(panes))
        lines.append(" ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: print the canonical result of a scenario file."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("--compat", action="store_true", help="Beam Python SDK semantics (no deviations)")
    ap.add_argument("-o", "--output")
    args = ap.parse_args(argv)
    with open(args.scenario) as f:
        spec = json.load(f)
    text = dumps(canonical_result(spec, run_scenario(spec, beam_python_compat=args.compat)))
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
