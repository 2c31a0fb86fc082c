"""Beam's state and timers API for keyed DoFns (`apache_beam.transforms.userstate`, `...transforms.timeutil`).

A DoFn declares state cells (`BagStateSpec`, `CombiningValueStateSpec`, `ReadModifyWriteStateSpec`,
`SetStateSpec`, `OrderedListStateSpec`) and timers (`TimerSpec`) and asks for them with
``DoFn.StateParam(spec)`` / ``DoFn.TimerParam(spec)`` defaults in ``process`` and in the methods decorated
with ``@on_timer(spec)``. The runtime (`millstream.engine.runtime.operators.stateful_pardo`) keeps one cell per
(key, window, spec) and fires timers per (key, window).

This module is the model: specs, the decorator, validation and the abstract runtime interfaces users see.
Coders are accepted for compatibility and ignored: values are kept as Python objects (they must be
msgpack- or pickle-able to go into a checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from millstream.engine.model.dofn import DoFn, _DoFnParam, param_markers

CallableT = TypeVar("CallableT", bound=Callable[..., Any])

__all__ = [
    "AccumulatingRuntimeState",
    "BagRuntimeState",
    "BagStateSpec",
    "BaseTimer",
    "CombiningValueRuntimeState",
    "CombiningValueStateSpec",
    "OrderedListRuntimeState",
    "OrderedListStateSpec",
    "ReadModifyWriteRuntimeState",
    "ReadModifyWriteStateSpec",
    "RuntimeState",
    "SetRuntimeState",
    "SetStateSpec",
    "StateSpec",
    "TimeDomain",
    "TimerSpec",
    "get_dofn_specs",
    "is_stateful_dofn",
    "on_timer",
    "validate_stateful_dofn",
]


class TimeDomain:
    """Time domain of a timer (Beam's `apache_beam.transforms.timeutil.TimeDomain`)."""

    #: Event time: the timer fires when the input watermark reaches its timestamp.
    WATERMARK = "WATERMARK"
    #: Processing time: the timer fires when the job's clock reaches its timestamp.
    REAL_TIME = "REAL_TIME"
    #: Beam's synchronized processing time; accepted by `from_string`, not by `TimerSpec` (as in Beam).
    DEPENDENT_REAL_TIME = "DEPENDENT_REAL_TIME"

    @staticmethod
    def from_string(domain: str) -> str:
        """Validate a time domain name; raises ValueError for an unknown one."""
        if domain in (TimeDomain.WATERMARK, TimeDomain.REAL_TIME, TimeDomain.DEPENDENT_REAL_TIME):
            return domain
        raise ValueError(f"Unknown time domain: {domain}")

    @staticmethod
    def is_event_time(domain: str) -> bool:
        """True for the watermark (event-time) domain."""
        return TimeDomain.from_string(domain) == TimeDomain.WATERMARK


# ------------------------------------------------------------------------------------------------------
# Specs


class StateSpec:
    """Specification of a user state cell: a name unique within the DoFn, and a coder (ignored)."""

    #: A short name of the kind of cell (part of the pipeline's state layout).
    kind = "state"

    def __init__(self, name: str, coder: Any = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"state name is not a string: {name!r}")
        self.name = name
        self.coder = coder

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class ReadModifyWriteStateSpec(StateSpec):
    """A single value per key and window: `read()`, `write(value)`, `clear()` (Beam's ValueState)."""

    kind = "value"


class BagStateSpec(StateSpec):
    """An unordered collection per key and window: `add(value)`, `read()`, `clear()`."""

    kind = "bag"


class SetStateSpec(StateSpec):
    """A set of distinct values per key and window: `add(value)`, `read()`, `clear()`."""

    kind = "set"


class OrderedListStateSpec(StateSpec):
    """(timestamp, value) pairs kept in timestamp order: `add`, `read`, `read_range`, `clear_range`, `clear`."""

    kind = "ordered_list"


class CombiningValueStateSpec(StateSpec):
    """A value combined incrementally with a CombineFn (or a callable such as `sum`) per key and window.

    As in Beam, both ``CombiningValueStateSpec(name, combine_fn)`` and
    ``CombiningValueStateSpec(name, coder, combine_fn)`` are accepted.
    """

    kind = "combining"

    def __init__(self, name: str, coder: Any = None, combine_fn: Any = None) -> None:
        from millstream.engine.model.combinefn import CombineFn

        if combine_fn is None:
            if coder is None:
                raise ValueError("combine_fn must be provided")
            coder, combine_fn = None, coder
        self.combine_fn = CombineFn.maybe_from_callable(combine_fn)
        super().__init__(name, coder)


class TimerSpec:
    """Specification of a user timer: a name and a time domain; its callback is set with `@on_timer`."""

    #: Beam prefixes timer names so they never collide with state names.
    prefix = "ts-"

    def __init__(self, name: str, time_domain: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"timer name is not a string: {name!r}")
        if time_domain not in (TimeDomain.WATERMARK, TimeDomain.REAL_TIME):
            raise ValueError(f"Unsupported TimeDomain: {time_domain!r}.")
        self.name = self.prefix + name
        self.time_domain = time_domain
        self._attached_callback: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


def on_timer(timer_spec: TimerSpec) -> Callable[[CallableT], CallableT]:
    """Decorator marking the DoFn method called when `timer_spec`'s timer fires (Beam's `on_timer`)."""
    if not isinstance(timer_spec, TimerSpec):
        raise ValueError("@on_timer decorator expected TimerSpec.")

    def _inner(method: CallableT) -> CallableT:
        if not callable(method):
            raise ValueError("@on_timer decorator expected callable.")
        if timer_spec._attached_callback is not None:
            raise ValueError(f"Multiple on_timer callbacks registered for {timer_spec!r}.")
        timer_spec._attached_callback = method
        return method

    return _inner


#: millstream-internal (not on `DoFn`): in an ``on_timer`` method, the processing time at which the timer loop
#: fires the timer (`DoFn.TimestampParam` is the timer's own time), so a catching-up timer emits everything
#: due at once. Beam's translation passes the timer's timestamp, as Beam has no such parameter.
ProcessingTimeParam = _DoFnParam("ProcessingTimeParam")

# ------------------------------------------------------------------------------------------------------
# Introspection


def _method_markers(dofn: Any) -> dict[str, dict[str, _DoFnParam]]:
    """The DoFn parameter markers of every method of `dofn` that declares some, by method name."""
    from millstream.engine.model.core import CallableWrapperDoFn

    if isinstance(dofn, CallableWrapperDoFn):
        return {"process": dict(dofn.markers)}
    found: dict[str, dict[str, _DoFnParam]] = {}
    for name in dir(type(dofn)):
        if name.startswith("__"):
            continue
        attr = getattr(type(dofn), name, None)
        if not callable(attr) or isinstance(attr, type):
            continue
        markers = param_markers(getattr(dofn, name))
        if markers:
            found[name] = markers
    return found


def get_dofn_specs(dofn: Any) -> tuple[set[StateSpec], set[TimerSpec]]:
    """The state and timer specs a DoFn's methods ask for (Beam's `get_dofn_specs`)."""
    states: set[StateSpec] = set()
    timers: set[TimerSpec] = set()
    for method, markers in _method_markers(dofn).items():
        names = [m.name for m in markers.values()]
        for m in markers.values():
            if m.name == "StateParam":
                states.add(m.spec)
            elif m.name == "TimerParam":
                timers.add(m.spec)
        plain = [n for n in names if n not in ("StateParam", "TimerParam")]
        if len(plain) != len(set(plain)):
            raise ValueError(f"DoFn {dofn!r} has duplicate {method} method parameters: {names}.")
    return states, timers


def is_stateful_dofn(dofn: Any) -> bool:
    """Whether a DoFn uses user state or timers (its `process` asks for a StateParam or TimerParam)."""
    from millstream.engine.model.core import CallableWrapperDoFn

    if isinstance(dofn, CallableWrapperDoFn):
        markers = dofn.markers
    elif isinstance(dofn, DoFn):
        markers = param_markers(dofn.process)
    else:
        return False
    return any(m.name in ("StateParam", "TimerParam") for m in markers.values())


def validate_stateful_dofn(dofn: Any, step: str | None = None) -> None:
    """Check a stateful DoFn's declarations (Beam's `validate_stateful_dofn`); raises ValueError/TypeError.

    Every StateParam must name a StateSpec and every TimerParam a TimerSpec; names are unique per kind;
    every TimerSpec has an `@on_timer` method of this DoFn. `step` (a label) is named in the message.
    """
    where = f"step '{step}': " if step else ""
    for method, markers in _method_markers(dofn).items():
        for arg, m in markers.items():
            if m.name == "StateParam" and not isinstance(m.spec, StateSpec):
                raise TypeError(
                    f"{where}DoFn.StateParam for argument '{arg}' of {type(dofn).__name__}.{method} needs a "
                    f"StateSpec (BagStateSpec, CombiningValueStateSpec, ...), got {m.spec!r}"
                )
            if m.name == "TimerParam" and not isinstance(m.spec, TimerSpec):
                raise TypeError(
                    f"{where}DoFn.TimerParam for argument '{arg}' of {type(dofn).__name__}.{method} needs a "
                    f"TimerSpec, got {m.spec!r}"
                )
    states, timers = get_dofn_specs(dofn)
    if len(states) != len({s.name for s in states}):
        raise ValueError(
            f"{where}DoFn {dofn!r} has multiple StateSpecs with the same name: {sorted(map(repr, states))}."
        )
    if len(timers) != len({t.name for t in timers}):
        raise ValueError(
            f"{where}DoFn {dofn!r} has multiple TimerSpecs with the same name: {sorted(map(repr, timers))}."
        )
    for spec in timers:
        callback = spec._attached_callback
        if callback is None:
            raise ValueError(
                f"{where}DoFn {type(dofn).__name__} has a TimerSpec without an associated on_timer callback: "
                f"{spec!r} (decorate the method to call with @on_timer(<that TimerSpec>))."
            )
        bound = getattr(dofn, callback.__name__, None)
        if getattr(bound, "__func__", None) is not callback:
            raise ValueError(
                f"{where}The on_timer callback for {spec!r} is not the specified .{callback.__name__} method "
                f"for DoFn {type(dofn).__name__} (perhaps it was overwritten?)."
            )


def timer_callbacks(dofn: Any) -> dict[str, tuple[TimerSpec, Callable[..., Any]]]:
    """The bound `@on_timer` method of each timer a (validated) DoFn uses, by timer name."""
    _, timers = get_dofn_specs(dofn)
    out: dict[str, tuple[TimerSpec, Callable[..., Any]]] = {}
    for spec in timers:
        callback = spec._attached_callback
        assert callback is not None
        out[spec.name] = (spec, getattr(dofn, callback.__name__))
    return out


# ------------------------------------------------------------------------------------------------------
# What user code receives (implemented by the runtime)


class RuntimeState:
    """A state cell as user code sees it, bound to the current key and window."""

    __slots__ = ()

    def prefetch(self) -> None:
        """Beam's read-ahead hint; state is in memory, so there is nothing to do."""

    def finalize(self) -> None:
        """Beam's end-of-bundle hook; nothing to do."""


class ReadModifyWriteRuntimeState(RuntimeState):
    """A single value: `read()` (None when unset), `write(value)`, `clear()`."""

    __slots__ = ()

    def read(self) -> Any:
        """The value, or None."""
        raise NotImplementedError(type(self))

    def write(self, value: Any) -> None:
        """Replace the value."""
        raise NotImplementedError(type(self))

    def clear(self) -> None:
        """Forget the value."""
        raise NotImplementedError(type(self))

    def commit(self) -> None:
        """Beam's explicit commit; writes are visible at once here."""


class AccumulatingRuntimeState(RuntimeState):
    """A cell values are added to: `add(value)`, `read()`, `clear()`."""

    __slots__ = ()

    def read(self) -> Any:
        """The accumulated contents."""
        raise NotImplementedError(type(self))

    def add(self, value: Any) -> None:
        """Add one value."""
        raise NotImplementedError(type(self))

    def clear(self) -> None:
        """Empty the cell."""
        raise NotImplementedError(type(self))

    def commit(self) -> None:
        """Beam's explicit commit; writes are visible at once here."""


class BagRuntimeState(AccumulatingRuntimeState):
    """Bag state: `read()` returns the values added so far (a snapshot, in insertion order)."""

    __slots__ = ()


class SetRuntimeState(AccumulatingRuntimeState):
    """Set state: `read()` returns the distinct values added so far."""

    __slots__ = ()


class CombiningValueRuntimeState(AccumulatingRuntimeState):
    """Combining state: `read()` returns the CombineFn's output for the values added so far."""

    __slots__ = ()


class OrderedListRuntimeState(AccumulatingRuntimeState):
    """Ordered list state: (Timestamp, value) pairs in timestamp order."""

    __slots__ = ()

    def read_range(self, min_timestamp: Any, limit_timestamp: Any) -> Iterable[tuple[Any, Any]]:
        """The pairs with ``min_timestamp <= timestamp < limit_timestamp``."""
        raise NotImplementedError(type(self))

    def clear_range(self, min_timestamp: Any, limit_timestamp: Any) -> None:
        """Remove the pairs with ``min_timestamp <= timestamp < limit_timestamp``."""
        raise NotImplementedError(type(self))


class BaseTimer:
    """A timer as user code sees it, bound to the current key and window."""

    __slots__ = ()

    def set(self, timestamp: Any, dynamic_timer_tag: str = "", output_timestamp: Any = None) -> None:
        """Fire at `timestamp` (event time or processing time, per the spec); replaces an earlier setting.

        `output_timestamp` (millstream's, as Beam Java's ``withOutputTimestamp``; Beam Python has none) is the
        event time a processing-time timer's outputs get and holds the output watermark at until it fires: by
        default the timestamp of the element (or timer) that set it, as in Beam. As in Beam Java, it may be
        neither before that timestamp nor after the window's max timestamp + allowed lateness (a ValueError
        naming the step and both timestamps); a drain drops such held timers unfired."""
        raise NotImplementedError(type(self))

    def clear(self, dynamic_timer_tag: str = "") -> None:
        """Cancel the timer."""
        raise NotImplementedError(type(self))
