"""Triggers and accumulation modes as configuration, with the names and meaning of `apache_beam.transforms.trigger`.

These classes are immutable descriptions (equality, hash, repr); they hold no state and run no logic.
The runtime compiles a trigger tree into small node evaluators over a flat per-window state record
(`millstream.engine.runtime.windowing.trigger_state_machine`), mirroring Beam's split between TriggerFn
configuration and the ReduceFnRunner/TriggerDriver that executes it.
"""

from __future__ import annotations

import enum
import numbers
from typing import Any

from millstream.engine.model.timestamp import to_micros

__all__ = [
    "AccumulationMode",
    "AfterAll",
    "AfterAny",
    "AfterCount",
    "AfterEach",
    "AfterProcessingTime",
    "AfterWatermark",
    "Always",
    "DefaultTrigger",
    "Never",
    "OrFinally",
    "Repeatedly",
    "TriggerFn",
]


class AccumulationMode(enum.IntEnum):
    """What happens to a window's data when a pane fires: kept (ACCUMULATING) or dropped (DISCARDING)."""

    DISCARDING = 1
    ACCUMULATING = 2


class TriggerFn:
    """Base of all trigger configurations: decides when a window emits a pane."""

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        return ()

    def children(self) -> tuple[TriggerFn, ...]:
        """Sub-triggers, in order."""
        return ()

    def has_ontime_pane(self) -> bool:
        """Whether this trigger guarantees an ON_TIME pane even when it is empty (Beam's has_ontime_pane)."""
        return False

    def uses_processing_time(self) -> bool:
        """Whether any part of this trigger sets processing-time timers."""
        return any(c.uses_processing_time() for c in self.children())

    def may_finish(self) -> bool:
        """Whether this trigger can finish, after which its window drops further data."""
        return False

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _init(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)


class DefaultTrigger(TriggerFn):
    """Fires each time the watermark passes the end of the window, and on every late bundle after it."""

    __slots__ = ()

    def has_ontime_pane(self) -> bool:
        """Always fires an ON_TIME pane."""
        return True

    def __repr__(self) -> str:
        return "DefaultTrigger()"


class Always(TriggerFn):
    """Fires on every bundle (and every timer) and never finishes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Always"


class Never(TriggerFn):
    """Never fires; data is released only when the window expires (Beam's ``_Never``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Never"


#: Beam's Python name of `Never`.
_Never = Never


class AfterProcessingTime(TriggerFn):
    """Fires once, ``delay`` seconds of processing time after the first element of the pane."""

    __slots__ = ("delay", "delay_us")

    delay: Any
    delay_us: int

    def __init__(self, delay: Any = 0) -> None:
        delay_us = to_micros(delay)
        if delay_us < 0:
            raise ValueError(f"delay ({delay}) must not be negative.")
        self._init(delay=delay, delay_us=delay_us)

    def _key(self) -> tuple[Any, ...]:
        return (self.delay_us,)

    def uses_processing_time(self) -> bool:
        """Yes."""
        return True

    def may_finish(self) -> bool:
        """Fires once."""
        return True

    def __repr__(self) -> str:
        return f"AfterProcessingTime(delay={self.delay})"


class AfterCount(TriggerFn):
    """Fires once when the pane holds at least ``count`` elements."""

    __slots__ = ("count",)

    count: int

    def __init__(self, count: int) -> None:
        if not isinstance(count, numbers.Integral) or count < 1:
            raise ValueError(f"count ({count}) must be a positive integer.")
        self._init(count=int(count))

    def _key(self) -> tuple[Any, ...]:
        return (self.count,)

    def may_finish(self) -> bool:
        """Fires once."""
        return True

    def __repr__(self) -> str:
        return f"AfterCount({self.count})"


class Repeatedly(TriggerFn):
    """Fires whenever ``underlying`` fires, resetting it each time; never finishes."""

    __slots__ = ("underlying",)

    underlying: TriggerFn

    def __init__(self, underlying: TriggerFn) -> None:
        _check_trigger(underlying)
        self._init(underlying=underlying)

    def _key(self) -> tuple[Any, ...]:
        return (self.underlying,)

    def children(self) -> tuple[TriggerFn, ...]:
        """The repeated trigger."""
        return (self.underlying,)

    def has_ontime_pane(self) -> bool:
        """As the underlying trigger."""
        return self.underlying.has_ontime_pane()

    def __repr__(self) -> str:
        return f"Repeatedly({self.underlying!r})"


class AfterWatermark(TriggerFn):
    """Fires ON_TIME when the watermark passes the end of the window, with optional early and late firings.

    As in Beam, ``early`` and ``late`` are wrapped in `Repeatedly` unless they already are one. Without
    ``late`` the trigger finishes with its ON_TIME pane.
    """

    __slots__ = ("early", "late")

    early: Repeatedly | None
    late: Repeatedly | None

    def __init__(self, early: TriggerFn | None = None, late: TriggerFn | None = None) -> None:
        self._init(early=self._wrap(early), late=self._wrap(late))

    @staticmethod
    def _wrap(trigger: TriggerFn | None) -> Repeatedly | None:
        if trigger is None:
            return None
        _check_trigger(trigger)
        return trigger if isinstance(trigger, Repeatedly) else Repeatedly(trigger)

    def _key(self) -> tuple[Any, ...]:
        return (self.early, self.late)

    def children(self) -> tuple[TriggerFn, ...]:
        """Early and late sub-triggers that are set."""
        return tuple(t for t in (self.early, self.late) if t is not None)

    def has_ontime_pane(self) -> bool:
        """Always fires an ON_TIME pane."""
        return True

    def may_finish(self) -> bool:
        """Finishes with the ON_TIME pane unless there is a late trigger."""
        return self.late is None

    def __repr__(self) -> str:
        parts = []
        if self.early is not None:
            parts.append(f"early={self.early.underlying!r}")
        if self.late is not None:
            parts.append(f"late={self.late.underlying!r}")
        return f"AfterWatermark({', '.join(parts)})"


class _Composite(TriggerFn):
    __slots__ = ("triggers",)

    triggers: tuple[TriggerFn, ...]

    def __init__(self, *triggers: TriggerFn) -> None:
        if not triggers:
            raise ValueError(f"{type(self).__name__} needs at least one sub-trigger")
        for t in triggers:
            _check_trigger(t)
        self._init(triggers=tuple(triggers))

    def _key(self) -> tuple[Any, ...]:
        return self.triggers

    def children(self) -> tuple[TriggerFn, ...]:
        """The sub-triggers."""
        return self.triggers

    def has_ontime_pane(self) -> bool:
        """Whether any sub-trigger has one."""
        return any(t.has_ontime_pane() for t in self.triggers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(t) for t in self.triggers)})"


class AfterAny(_Composite):
    """Fires when any sub-trigger fires; finishes when any sub-trigger finishes."""

    __slots__ = ()

    def may_finish(self) -> bool:
        """If any sub-trigger may finish."""
        return any(t.may_finish() for t in self.triggers)


class AfterAll(_Composite):
    """Fires when all sub-triggers are ready to fire; finishes when all of them finish."""

    __slots__ = ()

    def may_finish(self) -> bool:
        """If all sub-triggers may finish."""
        return all(t.may_finish() for t in self.triggers)


class AfterEach(_Composite):
    """Runs the sub-triggers one after the other; finishes when the last one finishes."""

    __slots__ = ()

    def may_finish(self) -> bool:
        """If all sub-triggers may finish."""
        return all(t.may_finish() for t in self.triggers)


class OrFinally(AfterAny):
    """``main`` until ``until`` fires. As in Beam's Python SDK it behaves exactly as ``AfterAny(main, until)``."""

    __slots__ = ()

    def __init__(self, main: TriggerFn, until: TriggerFn) -> None:
        super().__init__(main, until)

    @property
    def main(self) -> TriggerFn:
        """The trigger that fires."""
        return self.triggers[0]

    @property
    def until(self) -> TriggerFn:
        """The trigger that ends it."""
        return self.triggers[1]

    def __repr__(self) -> str:
        return f"OrFinally({self.triggers[0]!r}, {self.triggers[1]!r})"


def _check_trigger(t: object) -> None:
    """Sub-triggers must be trigger instances; a class is the usual slip, so say so."""
    if isinstance(t, type) and issubclass(t, TriggerFn):
        raise TypeError(
            f"expected a trigger, got the class {t.__name__}; pass an instance such as AfterCount(1)"
        )
    if not isinstance(t, TriggerFn):
        raise TypeError(f"expected a trigger, got {t!r}")
