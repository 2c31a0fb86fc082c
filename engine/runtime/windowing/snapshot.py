"""The windowed reducer's state as plain data: one key's windows and timers, and the windowing strategy.

Incremental checkpoints (`checkpoint.reducer_records`) store each key's general state as
`encode_key_state` writes it and rebuild it with `decode_key_state`; they record the strategy (`strategy`)
and refuse state written under another one (`check_strategy`). What is stored is in docs/state.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from millstream.engine.runtime.windowing.window_state import KeyState, WinState

if TYPE_CHECKING:
    from millstream.engine.runtime.windowing.reduce_fn_runner import Reducer

__all__ = ["check_strategy", "decode_key_state", "encode_key_state", "strategy"]


def _encode_name(name: Any) -> Any:
    # timer names are a node id, or (node id, window) for DefaultTrigger
    if isinstance(name, tuple):
        return [name[0], name[1][0], name[1][1]]
    return name


def _decode_name(enc: Any) -> Any:
    if isinstance(enc, list):
        return (enc[0], (enc[1], enc[2]))
    return enc


def strategy(r: Reducer) -> list[Any]:
    """The windowing strategy a checkpoint records (restore refuses state written under another one)."""
    return _strategy(r)


def _strategy(r: Reducer) -> list[Any]:
    return [
        repr(r.window_fn),
        repr(r.trigger),
        int(r.accumulation_mode),
        r.allowed_lateness_us,
        r.timestamp_combiner.value,
        r.compat,
        _processing_time_semantics(r),
    ]


def check_strategy(r: Reducer, stored: Any, what: str) -> None:
    """Refuse state (`what`, e.g. "state was written") recorded under another strategy than
    `r`'s, naming the cause when it is only deviation 3's switch (pane timing of processing-time triggers)."""
    current = _strategy(r)
    stored = list(stored)
    if stored == current:
        return
    if len(stored) == len(current) and stored[:-1] == current[:-1]:
        before = (
            "before deviation 3 of docs/semantics.md became the default"
            if current[-1]
            else "with deviation 3 of docs/semantics.md on"
        )
        raise ValueError(
            f"the {what} {before}: the processing-time trigger {current[1]} now times its panes differently "
            "(a processing-time timer no longer moves the event-time clock), so this windowing strategy's "
            "state cannot be resumed; start again with --from_scratch (the windows' state is discarded and "
            "the input read again)"
        )
    raise ValueError(f"the {what} by a reducer with another class or windowing strategy")


def _processing_time_semantics(r: Reducer) -> bool:
    # Only a trigger with processing-time timers behaves differently under deviation 3; recording the switch
    # for other triggers would refuse their checkpoints taken before it became the default.
    return bool(
        r.processing_timers_see_watermark and r.trigger is not None and r.trigger.uses_processing_time()
    )


def encode_key_state(ks: KeyState) -> list[Any]:
    """One key's general state (windows and timers) as plain data: ``[windows, timers]``."""
    windows = [
        [
            ws.window[0],
            ws.window[1],
            ws.acc,
            ws.pending,
            ws.index,
            ws.nonspeculative_index,
            ws.trigger_finished,
            ws.hold,
            ws.hold_min,
            list(ws.trigger_slots),
            list(ws.ids),
        ]
        for ws in ks.windows.values()
    ]
    timers = [
        [tid, [[_encode_name(name), dom, ts] for name, (dom, ts) in d.items()]]
        for tid, d in ks.timers.items()
    ]
    return [windows, timers]


def decode_key_state(windows: list[Any], timers: list[Any]) -> KeyState:
    """One key's general state rebuilt from what `encode_key_state` wrote (the reducer indexes it)."""
    ks = KeyState()
    for (
        start,
        end,
        acc,
        pending,
        index,
        nonspeculative_index,
        trigger_finished,
        hold,
        hold_min,
        trigger_slots,
        ids,
    ) in windows:
        w = (start, end)
        ws = WinState(w, acc, list(trigger_slots), list(ids))
        ws.pending = pending
        ws.index = index
        ws.nonspeculative_index = nonspeculative_index
        ws.trigger_finished = trigger_finished
        ws.hold = hold
        ws.hold_min = hold_min
        ks.windows[w] = ws
        for tid in ws.ids:
            ks.window_by_owner[tid] = ws
    for tid, entries in timers:
        d = ks.timers[tid] = {}
        for enc, dom, ts in entries:
            d[_decode_name(enc)] = (dom, ts)
    return ks
