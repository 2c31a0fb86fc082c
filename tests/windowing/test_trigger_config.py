"""Trigger configuration objects: Beam's names, wrapping rules, equality, immutability; their compilation."""

from __future__ import annotations

import pytest

from millstream.engine.model import trigger as T
from millstream.engine.runtime.windowing.trigger_state_machine import SLOT_MAX, SLOT_SUM, compile_trigger


def test_after_watermark_wraps_early_and_late_in_repeatedly() -> None:
    """As Beam: early/late sub-triggers are repeated (subtlety 15), unless they already are."""
    t = T.AfterWatermark(early=T.AfterCount(2), late=T.Repeatedly(T.AfterCount(1)))
    assert t.early == T.Repeatedly(T.AfterCount(2))
    assert t.late == T.Repeatedly(T.AfterCount(1))
    assert repr(t) == "AfterWatermark(early=AfterCount(2), late=AfterCount(1))"
    assert T.AfterWatermark().early is None and T.AfterWatermark().may_finish()
    assert not t.may_finish()


def test_equality_hash_repr() -> None:
    """Configurations compare by value and print like Beam's."""
    a = T.AfterAny(T.AfterCount(2), T.AfterProcessingTime(5))
    assert a == T.AfterAny(T.AfterCount(2), T.AfterProcessingTime(5)) and hash(a) == hash(
        T.AfterAny(T.AfterCount(2), T.AfterProcessingTime(5))
    )
    assert a != T.AfterAll(T.AfterCount(2), T.AfterProcessingTime(5))
    assert T.OrFinally(T.Always(), T.AfterCount(1)) != T.AfterAny(T.Always(), T.AfterCount(1))
    assert repr(a) == "AfterAny(AfterCount(2), AfterProcessingTime(delay=5))"
    assert repr(T.Repeatedly(T.DefaultTrigger())) == "Repeatedly(DefaultTrigger())"
    assert T._Never is T.Never and repr(T.Never()) == "Never"
    assert T.AfterProcessingTime(1.5).delay_us == 1_500_000


def test_immutable_and_validated() -> None:
    """Configurations cannot be changed and reject bad arguments."""
    t = T.AfterCount(3)
    with pytest.raises(AttributeError):
        t.count = 4  # type: ignore[misc]
    with pytest.raises(ValueError):
        T.AfterCount(0)
    with pytest.raises(TypeError):
        T.Repeatedly("AfterCount(1)")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        T.AfterAll()


def test_properties() -> None:
    """has_ontime_pane and uses_processing_time, as Beam defines them."""
    assert T.DefaultTrigger().has_ontime_pane() and T.AfterWatermark().has_ontime_pane()
    assert not T.AfterCount(1).has_ontime_pane() and not T.Never().has_ontime_pane()
    assert T.AfterEach(T.AfterCount(1), T.AfterWatermark()).has_ontime_pane()
    assert T.AfterWatermark(early=T.AfterProcessingTime(1)).uses_processing_time()
    assert not T.Repeatedly(T.AfterCount(2)).uses_processing_time()
    assert T.AccumulationMode.ACCUMULATING != T.AccumulationMode.DISCARDING


def test_compiled_layout() -> None:
    """Compilation allocates one slot per stateful node, with its merge rule."""
    c = compile_trigger(
        T.AfterEach(
            T.AfterCount(2), T.AfterWatermark(late=T.AfterProcessingTime(1)), T.Repeatedly(T.AfterCount(3))
        )
    )
    assert c.slot_kinds.count(SLOT_SUM) == 2  # the two counts add up when sessions merge
    assert c.slot_kinds.count(SLOT_MAX) == 3  # AfterEach index, late flag, timer flag
    assert c.has_ontime_pane and c.uses_processing_time
    assert c.merge_states([[1, 0, 2, 1, 0][: c.n_slots], [0, 1, 1, 0, 3][: c.n_slots]]) == [
        max(a, b) if k == SLOT_MAX else a + b
        for a, b, k in zip([1, 0, 2, 1, 0], [0, 1, 1, 0, 3], c.slot_kinds)
    ]
    assert compile_trigger(None).config == T.DefaultTrigger()
