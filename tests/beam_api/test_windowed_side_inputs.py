"""Side inputs in windows: each main-input window sees the side window that holds its last timestamp (Beam's
default window mapping), compared with Beam's own runner on the same pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import millstream as beam
from millstream.testing.util import assert_that, equal_to

MAIN = [("m1", 1), ("m12", 12), ("m25", 25), ("m39", 39)]
SIDE = [("a", 2), ("b", 5), ("c", 15), ("d", 31)]


def _pipeline(b: Any, p: Any, main_windows: Any, view: str) -> Any:
    """The same pipeline for millstream (`b` = millstream) and for Beam (`b` = apache_beam); a singleton view
    gets at most one side value per window (Beam refuses more), so window [20, 30) shows the default."""
    side = (
        p
        | "Side" >> b.Create(SIDE if view == "list" else [sv for sv in SIDE if sv[0] != "b"])
        | "StampSide" >> b.MapTuple(lambda v, t: b.window.TimestampedValue(v, t))
        | "SideWindows" >> b.WindowInto(b.window.FixedWindows(10))
    )
    main = (
        p
        | "Main" >> b.Create(MAIN)
        | "StampMain" >> b.MapTuple(lambda v, t: b.window.TimestampedValue(v, t))
        | "MainWindows" >> b.WindowInto(main_windows)
    )
    if view == "list":
        return main | "Join" >> b.Map(lambda m, s: (m, sorted(s)), s=b.pvalue.AsList(side))
    return main | "Join" >> b.Map(lambda m, s: (m, s), s=b.pvalue.AsSingleton(side, default_value="none"))


def _beams(main_windows: Any, view: str, tmp_path: Any) -> list[Any]:
    """What Beam's own runner gives for the pipeline (through a file: Beam runs a pickled copy of the matcher)."""
    ab = pytest.importorskip("apache_beam")
    from apache_beam.testing.util import assert_that as beam_assert_that

    path = str(tmp_path / "beam.json")

    def keep(actual: list[Any]) -> None:
        with open(path, "w") as f:
            json.dump(actual, f)

    with ab.Pipeline(runner="DirectRunner") as p:
        beam_assert_that(_pipeline(ab, p, main_windows(ab), view), keep)
    with open(path) as f:
        return [(m, s) for m, s in json.load(f)]


@pytest.mark.parametrize(
    "main_windows",
    [
        lambda b: b.window.FixedWindows(10),
        lambda b: b.window.SlidingWindows(20, 10),
        lambda b: b.window.FixedWindows(5),
    ],
    ids=["fixed-10", "sliding-20-10", "fixed-5"],
)
def test_as_list_per_window_is_beams(main_windows: Any, tmp_path: Any) -> None:
    expected = _beams(main_windows, "list", tmp_path)
    with beam.Pipeline() as p:
        assert_that(_pipeline(beam, p, main_windows(beam), "list"), equal_to(expected))


def test_as_singleton_with_default_per_window_is_beams(tmp_path: Any) -> None:
    def fixed(b: Any) -> Any:
        return b.window.FixedWindows(10)

    expected = _beams(fixed, "singleton", tmp_path)
    with beam.Pipeline() as p:
        assert_that(_pipeline(beam, p, fixed(beam), "singleton"), equal_to(expected))


def test_a_windowed_side_input_survives_a_checkpoint_with_its_windows() -> None:
    from millstream.engine.model.timestamp import MAX_MICROS
    from millstream.engine.model.window import FixedWindows, GlobalWindows, IntervalWindow
    from millstream.engine.model.windowing import Windowing
    from millstream.engine.runtime.graph.batch import Batch
    from millstream.engine.runtime.operators.pardo import ParDoNode
    from millstream.state.codecs import MsgpackCodec

    def node() -> ParDoNode:
        p = beam.Pipeline()
        side = p | "S" >> beam.Create([]) | beam.WindowInto(FixedWindows(10))
        step = beam.Map(lambda m, s: (m, s), beam.pvalue.AsList(side))
        return ParDoNode("Join", step, Windowing(GlobalWindows()), [Windowing(FixedWindows(10))])

    before = node()
    before.push(1, Batch(["a", "c", "b"], [2_000_000, 15_000_000, 5_000_000]))
    before.watermark(1, MAX_MICROS)
    codec = MsgpackCodec(allow_pickle=True)
    after = node()
    after.restore_state(codec.decode(codec.encode(before.snapshot_state())))
    args, _ = after._side_args_for(IntervalWindow(10, 20))
    assert list(args[0]) == ["c"]
    args, _ = after._side_args_for(IntervalWindow(0, 10))
    assert list(args[0]) == ["a", "b"]


class _Stateful(beam.DoFn):
    """Keeps every main element in its key's bag (so the step is stateful) and joins it with the side input."""

    from millstream.transforms.userstate import BagStateSpec

    BAG = BagStateSpec("bag", beam.coders.PickleCoder())

    def process(self, kv: Any, s: Any, bag: Any = beam.DoFn.StateParam(BAG)) -> Any:
        bag.add(kv[1])
        yield kv[1], sorted(s)


class _Batched(beam.DoFn):
    """Joins a whole batch of main elements with the side input (`process_batch`)."""

    def process_batch(self, batch: list[str], s: Any) -> Iterator[list[tuple[str, list[str]]]]:
        yield [(m, sorted(s)) for m in batch]


class _Async(beam.DoFn):
    """Joins each main element with the side input in an `async def process`."""

    async def process(self, m: str, s: Any) -> Any:
        return [(m, sorted(s))]


def test_a_stateful_dofns_windowed_side_input_survives_a_snapshot_with_its_windows() -> None:
    from millstream.engine.model.timestamp import MAX_MICROS
    from millstream.engine.model.window import FixedWindows, GlobalWindows, IntervalWindow
    from millstream.engine.model.windowing import Windowing
    from millstream.engine.runtime.graph.batch import Batch
    from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode
    from millstream.state.codecs import MsgpackCodec

    def node() -> StatefulParDoNode:
        p = beam.Pipeline()
        side = p | "S" >> beam.Create([]) | beam.WindowInto(FixedWindows(10))
        step = beam.ParDo(_Stateful(), beam.pvalue.AsList(side))
        return StatefulParDoNode("Join", step, Windowing(GlobalWindows()), [Windowing(FixedWindows(10))])

    before = node()
    before.push(1, Batch(["a", "c", "b"], [2_000_000, 15_000_000, 5_000_000]))
    before.watermark(1, MAX_MICROS)
    assert before.state_dirty()
    codec = MsgpackCodec(allow_pickle=True)
    after = node()
    after.restore_state(codec.decode(codec.encode(before.snapshot_state())))
    assert after.side_done == [True]
    args, _ = after._side_args_for(IntervalWindow(10, 20))
    assert list(args[0]) == ["c"]
    args, _ = after._side_args_for(IntervalWindow(0, 10))
    assert list(args[0]) == ["a", "b"]


def _join(kind: str, main: Any, side: Any) -> Any:
    """The Join step of `_pipeline` written as a stateful, a batched or an async DoFn."""
    view = beam.pvalue.AsList(side)
    if kind == "stateful":
        return main | "Key" >> beam.Map(lambda m: ("k", m)) | "Join" >> beam.ParDo(_Stateful(), view)
    if kind == "process_batch":
        return main | "Join" >> beam.ParDo(_Batched(), view)
    return main | "Join" >> beam.ParDo(_Async(), view)


@pytest.mark.parametrize("kind", ["stateful", "process_batch", "async"])
@pytest.mark.parametrize(
    "main_windows",
    [lambda b: b.window.FixedWindows(10), lambda b: b.window.SlidingWindows(20, 10)],
    ids=["fixed-10", "sliding-20-10"],
)
def test_stateful_batched_and_async_dofns_see_the_side_input_per_window_as_beams_map(
    kind: str, main_windows: Any, tmp_path: Any
) -> None:
    """Which side window a main window sees does not depend on the kind of DoFn: each gives what Beam's runner
    gives for the plain Map."""
    expected = _beams(main_windows, "list", tmp_path)
    with beam.Pipeline() as p:
        side = (
            p
            | "Side" >> beam.Create(SIDE)
            | "StampSide" >> beam.MapTuple(lambda v, t: beam.window.TimestampedValue(v, t))
            | "SideWindows" >> beam.WindowInto(beam.window.FixedWindows(10))
        )
        main = (
            p
            | "Main" >> beam.Create(MAIN)
            | "StampMain" >> beam.MapTuple(lambda v, t: beam.window.TimestampedValue(v, t))
            | "MainWindows" >> beam.WindowInto(main_windows(beam))
        )
        assert_that(_join(kind, main, side), equal_to(expected))


def _windowed_join_node(side_windowings: Any = None) -> Any:
    """A stateful join with a side input in fixed windows of 10 s; `side_windowings` as given to the node."""
    from millstream.engine.model.window import FixedWindows, GlobalWindows
    from millstream.engine.model.windowing import Windowing
    from millstream.engine.runtime.operators.stateful_pardo import StatefulParDoNode

    p = beam.Pipeline()
    side = p | "S" >> beam.Create([]) | beam.WindowInto(FixedWindows(10))
    step = beam.ParDo(_Stateful(), beam.pvalue.AsList(side))
    if side_windowings is None:
        return StatefulParDoNode("Join", step, Windowing(GlobalWindows()))  # type: ignore[call-arg]
    return StatefulParDoNode("Join", step, Windowing(GlobalWindows()), side_windowings)


def test_a_node_without_its_side_windowings_is_refused_not_made_global() -> None:
    """A node built without its side windowings is refused by name, not run as if its side inputs were global."""
    with pytest.raises(TypeError, match="side_windowings"):
        _windowed_join_node()
    with pytest.raises(ValueError, match=r"step 'Join': 1 side input\(s\) but 0 side windowing\(s\)"):
        _windowed_join_node([])


def test_the_per_window_views_are_evicted_once_the_main_watermark_passes_them() -> None:
    """The views cached per side window go when the main input's watermark passes the window, and a
    late main element still sees its window's values."""
    from millstream.engine.model.timestamp import MAX_MICROS
    from millstream.engine.model.window import FixedWindows, IntervalWindow
    from millstream.engine.model.windowing import Windowing
    from millstream.engine.runtime.graph.batch import Batch

    node = _windowed_join_node([Windowing(FixedWindows(10))])
    node.push(1, Batch(["a", "c", "b"], [2_000_000, 15_000_000, 5_000_000]))
    node.watermark(1, MAX_MICROS)
    for start in (0, 10, 20):
        node._side_args_for(IntervalWindow(start, start + 10))
    assert sorted(w.start_us for _, w in node.sides.views) == [0, 10_000_000, 20_000_000]
    node.watermark(0, 15_000_000)  # past [0, 10) only
    assert sorted(w.start_us for _, w in node.sides.views) == [10_000_000, 20_000_000]
    node.watermark(0, 30_000_000)
    assert node.sides.views == {}
    args, _ = node._side_args_for(IntervalWindow(0, 10))
    assert list(args[0]) == ["a", "b"]
