"""Trigger runtime: a trigger configuration compiled into a tree of small node evaluators.

Beam's Python SDK runs a trigger as a tree of TriggerFn objects that keep their state in tagged state cells
per window. Here the configuration (`millstream.engine.model.trigger`) is compiled once into evaluator
nodes that hold no per-window data: every window owns one flat list of integer slots (counts, flags, the
AfterEach index), each node knows its slot, and the reducer passes the window's context to the node
methods. The semantics are those of Beam's ``GeneralTriggerDriver`` (apache-beam 2.77) method by method:

* ``on_element(c, n)``: ``n`` elements of one bundle were added to the window (Beam calls it once per
  element; every node's effect is the same for n calls, so it is batched);
* ``on_merge(c, merged, result)``: windows ``merged`` became ``result`` (slots are already merged);
* ``should_fire(c, domain, ts)``: may clear timers, exactly where Beam does (short-circuit included);
* ``on_fire(c, ts)`` returns whether the trigger finished; ``reset(c)`` clears the node's state.

Slots merge on window merge by SUM (AfterCount counts) or MAX (flags and AfterEach's index), as Beam's
combining state cells do. Timers are named by node id (plus the window for DefaultTrigger, whose Beam
timer name is the window's string).
"""

from __future__ import annotations

from typing import Any, Protocol

from millstream.engine.model import trigger as T

__all__ = ["CompiledTrigger", "RT", "SLOT_MAX", "SLOT_SUM", "TriggerContext", "WM", "compile_trigger"]

#: Time domains of timers: event time (watermark) and processing time (Beam's REAL_TIME).
WM = 0
RT = 1

#: How a slot merges when windows merge.
SLOT_SUM = 0
SLOT_MAX = 1

Window = tuple[int, int]


class TriggerContext(Protocol):
    """What a node sees of the window being evaluated (implemented by the reducer)."""

    trigger_slots: list[int]
    window: Window
    end: int

    @property
    def now(self) -> int:
        """Current processing time (µs)."""

    def set_timer(self, name: Any, domain: int, ts: int) -> None:
        """Set (or move) the named timer of this window."""

    def clear_timer(self, name: Any) -> None:
        """Delete the named timer in every part of this (possibly merged) window."""


class Node:
    """Base evaluator: a trigger that never fires and keeps no state."""

    __slots__ = ("nid", "ontime")
    #: Beam's has_ontime_pane() of the node kind (composites compute it from their children).
    HAS_ONTIME_PANE = False

    def __init__(self, nid: int) -> None:
        self.nid = nid
        self.ontime = self.HAS_ONTIME_PANE

    def on_element(self, c: TriggerContext, n: int) -> None:
        """Elements were added."""

    def on_merge(self, c: TriggerContext, merged: list[Window], result: Window) -> None:
        """Windows merged into ``result``."""

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Whether the window should fire now."""
        return False

    def on_fire(self, c: TriggerContext, ts: int) -> bool:
        """The window fired; returns whether this trigger is finished."""
        return True

    def reset(self, c: TriggerContext) -> None:
        """Clear this node's state."""


class NeverNode(Node):
    """`Never`: never fires."""

    __slots__ = ()


class AlwaysNode(Node):
    """`Always`: fires on every evaluation, never finishes."""

    __slots__ = ()

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Always."""
        return True

    def on_fire(self, c: TriggerContext, ts: int) -> bool:
        """Never finished."""
        return False


class DefaultNode(Node):
    """`DefaultTrigger`: a watermark timer per window; fires whenever the watermark is past the end."""

    __slots__ = ()
    HAS_ONTIME_PANE = True

    def on_element(self, c: TriggerContext, n: int) -> None:
        """Set the end-of-window timer."""
        c.set_timer((self.nid, c.window), WM, c.end)

    def on_merge(self, c: TriggerContext, merged: list[Window], result: Window) -> None:
        """Drop the timers of the merged windows."""
        nid = self.nid
        for w in merged:
            c.clear_timer((nid, w))

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Past the end of the window (the timer is cleared so late data does not re-fire it)."""
        if ts >= c.end:
            c.clear_timer((self.nid, c.window))
            return True
        return False

    def on_fire(self, c: TriggerContext, ts: int) -> bool:
        """Never finishes."""
        return False

    def reset(self, c: TriggerContext) -> None:
        """Drop the timer."""
        c.clear_timer((self.nid, c.window))


class ProcessingTimeNode(Node):
    """`AfterProcessingTime(delay)`: a processing-time timer at first element + delay; fires once."""

    __slots__ = ("slot", "delay")

    def __init__(self, nid: int, slot: int, delay: int) -> None:
        super().__init__(nid)
        self.slot = slot
        self.delay = delay

    def on_element(self, c: TriggerContext, n: int) -> None:
        """Start the delay at the pane's first element."""
        slots = c.trigger_slots
        if not slots[self.slot]:
            c.set_timer(self.nid, RT, c.now + self.delay)
        slots[self.slot] = 1

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Only when its processing-time timer fires."""
        return domain == RT

    def reset(self, c: TriggerContext) -> None:
        """Forget the timer flag (the timer itself stays, as in Beam)."""
        c.trigger_slots[self.slot] = 0


class CountNode(Node):
    """`AfterCount(n)`: fires once the pane has n elements."""

    __slots__ = ("slot", "count")

    def __init__(self, nid: int, slot: int, count: int) -> None:
        super().__init__(nid)
        self.slot = slot
        self.count = count

    def on_element(self, c: TriggerContext, n: int) -> None:
        """Count."""
        c.trigger_slots[self.slot] += n

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Enough elements."""
        return c.trigger_slots[self.slot] >= self.count

    def reset(self, c: TriggerContext) -> None:
        """Back to zero."""
        c.trigger_slots[self.slot] = 0


class RepeatNode(Node):
    """`Repeatedly(t)`: resets ``t`` whenever it finishes; never finishes itself."""

    __slots__ = ("child",)

    def __init__(self, nid: int, child: Node) -> None:
        super().__init__(nid)
        self.child = child
        self.ontime = child.ontime

    def on_element(self, c: TriggerContext, n: int) -> None:
        """Delegate."""
        self.child.on_element(c, n)

    def on_merge(self, c: TriggerContext, merged: list[Window], result: Window) -> None:
        """Delegate."""
        self.child.on_merge(c, merged, result)

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Delegate."""
        return self.child.should_fire(c, domain, ts)

    def on_fire(self, c: TriggerContext, ts: int) -> bool:
        """Reset a finished child."""
        if self.child.on_fire(c, ts):
            self.child.reset(c)
        return False

    def reset(self, c: TriggerContext) -> None:
        """Delegate."""
        self.child.reset(c)


class WatermarkNode(Node):
    """`AfterWatermark(early, late)`; ``slot`` (only with a late trigger) records that the window is late."""

    __slots__ = ("slot", "early", "late")
    HAS_ONTIME_PANE = True

    def __init__(self, nid: int, slot: int, early: Node | None, late: Node | None) -> None:
        super().__init__(nid)
        self.slot = slot
        self.early = early
        self.late = late

    def on_element(self, c: TriggerContext, n: int) -> None:
        """Late elements go to the late trigger; others set the end-of-window timer and feed early."""
        late = self.late
        if late is not None and c.trigger_slots[self.slot]:
            late.on_element(c, n)
            return
        c.set_timer(self.nid, WM, c.end)
        if self.early is not None:
            self.early.on_element(c, n)

    def on_merge(self, c: TriggerContext, merged: list[Window], result: Window) -> None:
        """As Beam: clear the timer if any merged window ends elsewhere, then delegate."""
        late = self.late
        if late is not None and c.trigger_slots[self.slot]:
            late.on_merge(c, merged, result)
            return
        for w in merged:
            if w[1] != result[1]:
                c.clear_timer(self.nid)
        if self.early is not None:
            self.early.on_merge(c, merged, result)

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Late trigger once late; else the watermark; else the early trigger."""
        late = self.late
        if late is not None and c.trigger_slots[self.slot]:
            return late.should_fire(c, domain, ts)
        if ts >= c.end:
            c.clear_timer(self.nid)
            return True
        if self.early is not None:
            return self.early.should_fire(c, domain, ts)
        return False

    def on_fire(self, c: TriggerContext, ts: int) -> bool:
        """The ON_TIME firing makes the window late; finished then unless there is a late trigger."""
        late = self.late
        if late is not None and c.trigger_slots[self.slot]:
            return late.on_fire(c, ts)
        if ts >= c.end:
            if late is not None:
                c.trigger_slots[self.slot] = 1
            return late is None
        if self.early is not None:
            self.early.on_fire(c, ts)
        return False

    def reset(self, c: TriggerContext) -> None:
        """Clear the late flag and the sub-triggers."""
        if self.late is not None:
            c.trigger_slots[self.slot] = 0
        if self.early is not None:
            self.early.reset(c)
        if self.late is not None:
            self.late.reset(c)


class AnyNode(Node):
    """`AfterAny` / `OrFinally`: fires when any child would; finishes when a fired child finishes."""

    __slots__ = ("children",)

    def __init__(self, nid: int, children: list[Node]) -> None:
        super().__init__(nid)
        self.children = children
        self.ontime = any(ch.ontime for ch in children)

    def on_element(self, c: TriggerContext, n: int) -> None:
        """All children."""
        for ch in self.children:
            ch.on_element(c, n)

    def on_merge(self, c: TriggerContext, merged: list[Window], result: Window) -> None:
        """All children."""
        for ch in self.children:
            ch.on_merge(c, merged, result)

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Short-circuit, as Python's any() over a generator (later children keep their timers)."""
        for ch in self.children:
            if ch.should_fire(c, domain, ts):
                return True
        return False

    def on_fire(self, c: TriggerContext, ts: int) -> bool:
        """Fire every child ready in the watermark domain (Beam re-asks with WATERMARK)."""
        finished = [ch.on_fire(c, ts) for ch in self.children if ch.should_fire(c, WM, ts)]
        return any(finished)

    def reset(self, c: TriggerContext) -> None:
        """All children."""
        for ch in self.children:
            ch.reset(c)


class AllNode(AnyNode):
    """`AfterAll`: fires when every child would; finishes when every fired child finished."""

    __slots__ = ()

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """Short-circuit, as Python's all() over a generator."""
        for ch in self.children:
            if not ch.should_fire(c, domain, ts):
                return False
        return True

    def on_fire(self, c: TriggerContext, ts: int) -> bool:
        """all() of the finished flags of the children that fired (True when none did, as in Beam)."""
        finished = [ch.on_fire(c, ts) for ch in self.children if ch.should_fire(c, WM, ts)]
        return all(finished)


class EachNode(Node):
    """`AfterEach`: the children in sequence; ``slot`` is the index of the current one."""

    __slots__ = ("slot", "children")

    def __init__(self, nid: int, slot: int, children: list[Node]) -> None:
        super().__init__(nid)
        self.slot = slot
        self.children = children
        self.ontime = any(ch.ontime for ch in children)

    def on_element(self, c: TriggerContext, n: int) -> None:
        """The current child."""
        ix = c.trigger_slots[self.slot]
        if ix < len(self.children):
            self.children[ix].on_element(c, n)

    def on_merge(self, c: TriggerContext, merged: list[Window], result: Window) -> None:
        """The current child."""
        ix = c.trigger_slots[self.slot]
        if ix < len(self.children):
            self.children[ix].on_merge(c, merged, result)

    def should_fire(self, c: TriggerContext, domain: int, ts: int) -> bool:
        """The current child."""
        ix = c.trigger_slots[self.slot]
        if ix < len(self.children):
            return self.children[ix].should_fire(c, domain, ts)
        return False

    def on_fire(self, c: TriggerContext, ts: int) -> bool:
        """Advance when the current child finishes; finished after the last."""
        ix = c.trigger_slots[self.slot]
        n = len(self.children)
        if ix < n:
            if self.children[ix].on_fire(c, ts):
                ix += 1
                c.trigger_slots[self.slot] = ix
            return ix == n
        return False

    def reset(self, c: TriggerContext) -> None:
        """Back to the first child, all children reset."""
        c.trigger_slots[self.slot] = 0
        for ch in self.children:
            ch.reset(c)


class CompiledTrigger:
    """A compiled trigger: the root evaluator plus the layout of the per-window slot list."""

    __slots__ = ("root", "slot_kinds", "n_slots", "has_ontime_pane", "uses_processing_time", "config")

    def __init__(self, config: T.TriggerFn, root: Node, slot_kinds: list[int]) -> None:
        self.config = config
        self.root = root
        self.slot_kinds = slot_kinds
        self.n_slots = len(slot_kinds)
        self.has_ontime_pane = root.ontime
        self.uses_processing_time = config.uses_processing_time()

    def new_state(self) -> list[int]:
        """A fresh slot list."""
        return [0] * self.n_slots

    def merge_states(self, states: list[list[int]]) -> list[int]:
        """Slots of merged windows: SUM or MAX per slot."""
        out = [0] * self.n_slots
        for i, kind in enumerate(self.slot_kinds):
            if kind == SLOT_SUM:
                out[i] = sum(s[i] for s in states)
            else:
                out[i] = max((s[i] for s in states), default=0)
        return out


def compile_trigger(config: T.TriggerFn | None) -> CompiledTrigger:
    """Compile a trigger configuration (None = DefaultTrigger) into evaluators and a slot layout."""
    if config is None:
        config = T.DefaultTrigger()
    kinds: list[int] = []
    counter = [0]

    def slot(kind: int) -> int:
        kinds.append(kind)
        return len(kinds) - 1

    def build(t: T.TriggerFn) -> Node:
        nid = counter[0]
        counter[0] += 1
        if isinstance(t, T.DefaultTrigger):
            return DefaultNode(nid)
        if isinstance(t, T.AfterWatermark):
            early = build(t.early) if t.early is not None else None
            late = build(t.late) if t.late is not None else None
            s = slot(SLOT_MAX) if late is not None else -1
            return WatermarkNode(nid, s, early, late)
        if isinstance(t, T.AfterProcessingTime):
            return ProcessingTimeNode(nid, slot(SLOT_MAX), t.delay_us)
        if isinstance(t, T.AfterCount):
            return CountNode(nid, slot(SLOT_SUM), t.count)
        if isinstance(t, T.Repeatedly):
            return RepeatNode(nid, build(t.underlying))
        if isinstance(t, T.AfterEach):
            s = slot(SLOT_MAX)
            return EachNode(nid, s, [build(ch) for ch in t.triggers])
        if isinstance(t, T.AfterAll):
            return AllNode(nid, [build(ch) for ch in t.triggers])
        if isinstance(t, T.AfterAny):  # includes OrFinally, which Beam's Python SDK runs as AfterAny
            return AnyNode(nid, [build(ch) for ch in t.triggers])
        if isinstance(t, T.Always):
            return AlwaysNode(nid)
        if isinstance(t, T.Never):
            return NeverNode(nid)
        raise TypeError(f"unsupported trigger {t!r}")

    root = build(config)
    return CompiledTrigger(config, root, kinds)
