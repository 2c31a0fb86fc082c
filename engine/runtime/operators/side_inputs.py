"""The side inputs of one ParDo: their elements until every side input is complete, then their views.

A side input in the global window is seen whole, resolved once. A side input in other windows is seen per
main-input window (Beam's default window mapping: the side window holding the main window's last timestamp):
its values are grouped by side window once, when the side inputs are complete, and each side window's view is
built on first use and cached until the main input's watermark passes that side window (a main element
arriving later still finds its view, rebuilt from the grouping).
"""

from __future__ import annotations

from typing import Any

from millstream.engine.model.pvalue import AsSideInput
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.model.windowing import Windowing
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.windowing.assign import WindowResolver

__all__ = ["SideInputs"]


class SideInputs:
    """What a ParDo's side inputs sent (with their windows, for windowed ones) and the views its DoFn sees."""

    def __init__(self, label: str, side_inputs: list[AsSideInput], side_windowings: list[Windowing]) -> None:
        if len(side_windowings) != len(side_inputs):
            raise ValueError(
                f"step '{label}': {len(side_inputs)} side input(s) but {len(side_windowings)} side windowing(s); "
                "give the windowing of every side input (the global one for a side input in the global window)"
            )
        self.side_inputs = side_inputs
        self.resolvers = [WindowResolver(w) for w in side_windowings]
        #: Whether some side input is seen per main window.
        self.windowed = any(not r.is_global for r in self.resolvers)
        self.values: list[list[Any]] = [[] for _ in side_inputs]
        #: The window of each of `values[i]`, for a windowed side input (empty for a global one).
        self.windows: list[list[Any]] = [[] for _ in side_inputs]
        #: Per windowed side input, its values by side window (built once, in `resolve`).
        self._by_window: list[dict[Any, list[Any]]] = [{} for _ in side_inputs]
        #: (side input index, side window) -> the view a DoFn sees there; evicted by `evict`.
        self.views: dict[tuple[int, Any], Any] = {}

    def push(self, i: int, batch: Batch) -> None:
        """Keep side input `i`'s elements (with their windows when it is windowed) until it is complete."""
        resolver = self.resolvers[i]
        if resolver.is_global:
            self.values[i].extend(batch.values)
            return
        for j, v in enumerate(batch.values):
            if batch.wins is not None:
                wins: Any = (batch.wins[j],)
            else:
                wins = resolver.assign(MIN_MICROS if batch.ts is None else batch.ts[j])
            for w in wins:
                self.values[i].append(v)
                self.windows[i].append(w)

    def resolve(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Every side input is complete: group windowed ones by window, and return the transform's `args` and
        `kwargs` with each global side input replaced by its view (windowed ones stay; see `args_for`)."""
        self.views = {}
        self._by_window = []
        whole: dict[int, Any] = {}
        for side, resolver, values, windows in zip(
            self.side_inputs, self.resolvers, self.values, self.windows
        ):
            groups: dict[Any, list[Any]] = {}
            if resolver.is_global:
                whole[id(side)] = side.view(values)
            else:
                for v, w in zip(values, windows):
                    group = groups.get(w)
                    if group is None:
                        group = groups[w] = []
                    group.append(v)
            self._by_window.append(groups)
        return (
            tuple(whole.get(id(a), a) if isinstance(a, AsSideInput) else a for a in args),
            {k: whole.get(id(v), v) if isinstance(v, AsSideInput) else v for k, v in kwargs.items()},
        )

    def args_for(
        self,
        main_window: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        resolved_args: tuple[Any, ...],
        resolved_kwargs: dict[str, Any],
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The DoFn's arguments (`args`/`kwargs` as written, `resolved_*` from `resolve`) with every windowed
        side input seen in the side window that holds `main_window`'s last timestamp."""
        views: dict[int, Any] = {}
        end = main_window.max_timestamp_micros() if main_window is not None else MAX_MICROS
        for i, (side, resolver) in enumerate(zip(self.side_inputs, self.resolvers)):
            if resolver.is_global:
                continue
            side_window = resolver.assign_one(end)
            key = (i, side_window)
            view = self.views.get(key)
            if view is None:
                view = self.views[key] = side.view(self._by_window[i].get(side_window, []))
            views[id(side)] = view
        return (
            tuple(views.get(id(a), r) for a, r in zip(args, resolved_args)),
            {k: views.get(id(v), resolved_kwargs[k]) for k, v in kwargs.items()},
        )

    def evict(self, main_watermark_us: int) -> None:
        """Forget the views of side windows the main input's watermark has passed: no on-time main window
        maps to them any more (the cache stays as small as the side windows still open)."""
        if not self.views:
            return
        for key in [k for k in self.views if k[1].max_timestamp_micros() < main_watermark_us]:
            del self.views[key]
