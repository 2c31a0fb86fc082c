"""Beam's `apache_beam.transforms.userstate`: state and timers for keyed DoFns.

    from millstream.transforms.userstate import BagStateSpec, TimerSpec, on_timer
    from millstream.transforms.timeutil import TimeDomain

A DoFn asks for state with ``DoFn.StateParam(spec)`` and for timers with ``DoFn.TimerParam(spec)`` defaults
in ``process`` and in its ``@on_timer(spec)`` methods; its input must be (key, value) pairs. Coders are
accepted and ignored.
"""

from millstream.engine.model.userstate import (
    AccumulatingRuntimeState,
    BagRuntimeState,
    BagStateSpec,
    BaseTimer,
    CombiningValueRuntimeState,
    CombiningValueStateSpec,
    OrderedListRuntimeState,
    OrderedListStateSpec,
    ReadModifyWriteRuntimeState,
    ReadModifyWriteStateSpec,
    RuntimeState,
    SetRuntimeState,
    SetStateSpec,
    StateSpec,
    TimeDomain,
    TimerSpec,
    get_dofn_specs,
    is_stateful_dofn,
    on_timer,
    validate_stateful_dofn,
)

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
