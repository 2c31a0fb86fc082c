"""Beam's legacy IO API (`io.iobase`, `io.range_trackers`): a BoundedSource read in bundles through our source
machinery (resumable from checkpointed positions), and a Beam Sink written through the two-phase sink."""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import millstream as beam
from millstream.engine.model.legacy_io import BeamSinkWriter, BoundedSourceAdapter
from millstream.io import iobase
from millstream.io.range_trackers import OffsetRangeTracker, UnsplittableRangeTracker
from millstream.testing.util import assert_that, equal_to


class Counting(iobase.BoundedSource):
    """0 .. n-1, split into bundles of `desired_bundle_size` offsets (the snippets' CountingSource)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.bundle_sizes: list[int] = []

    def estimate_size(self) -> int:
        return self.n

    def get_range_tracker(self, start: Any, stop: Any) -> OffsetRangeTracker:
        return OffsetRangeTracker(0 if start is None else start, self.n if stop is None else stop)

    def read(self, tracker: Any) -> Iterator[int]:
        for i in range(tracker.start_position(), tracker.stop_position()):
            if not tracker.try_claim(i):
                return
            yield i

    def split(self, desired_bundle_size: int, start: Any = None, stop: Any = None) -> Iterator[Any]:
        start = 0 if start is None else start
        stop = self.n if stop is None else stop
        while start < stop:
            end = min(stop, start + desired_bundle_size)
            self.bundle_sizes.append(end - start)
            yield iobase.SourceBundle(end - start, self, start, end)
            start = end


def test_read_of_a_bounded_source_through_beam_io_read() -> None:
    with beam.Pipeline() as p:
        out = p | beam.io.Read(Counting(2500), desired_bundle_size=700) | beam.Map(lambda x: x + 1)
        assert_that(out, equal_to(list(range(1, 2501))))


def test_the_source_is_split_by_the_desired_bundle_size_and_each_bundle_is_a_split() -> None:
    source = Counting(2500)
    reader = BoundedSourceAdapter(source, 700).create_reader(None)

    async def read_all() -> dict[str, list[int]]:
        await reader.open(None)
        got: dict[str, list[int]] = {}
        while (batch := await reader.read()) is not None:
            got.setdefault(batch.split, []).extend(batch.values)
        return got

    got = anyio.run(read_all)
    assert source.bundle_sizes == [700, 700, 700, 400]
    assert [len(v) for v in got.values()] == [700, 700, 700, 400]
    assert sorted(x for v in got.values() for x in v) == list(range(2500))


def test_beams_default_bundle_size_grows_with_the_square_root_of_the_size() -> None:
    assert iobase.get_desired_chunk_size(100) == 1 << 20
    assert iobase.get_desired_chunk_size(10**12) == 1000 * 10**6
    assert iobase.get_desired_chunk_size(None) == 64 << 20


def test_a_reader_resumes_from_its_positions_without_losing_or_repeating_records() -> None:
    adapter = BoundedSourceAdapter(Counting(2500), 1500)

    async def first_part() -> tuple[list[int], dict[str, Any]]:
        reader = adapter.create_reader(None)
        await reader.open(None)
        seen: list[int] = []
        for _ in range(2):  # 1000 records of bundle 0, then its last 500
            batch = await reader.read()
            assert batch is not None
            seen += batch.values
        seen += (await reader.read()).values  # type: ignore[union-attr]  # 1000 of bundle 1
        return seen, reader.positions()

    async def rest(positions: dict[str, Any]) -> list[int]:
        reader = adapter.create_reader(None)
        await reader.open(positions)
        seen: list[int] = []
        while (batch := await reader.read()) is not None:
            seen += batch.values
        return seen

    before, positions = anyio.run(first_part)
    assert positions == {
        "bundle-00000": {"done": 1500, "finished": True},
        "bundle-00001": {"done": 1000, "finished": False},
    }
    after = anyio.run(rest, positions)
    assert before + after == list(range(2500))


def test_positions_from_another_split_are_refused() -> None:
    reader = BoundedSourceAdapter(Counting(100), 50).create_reader(None)
    with pytest.raises(ValueError, match="split must return the same bundles"):
        anyio.run(reader.open, {"bundle-00007": {"done": 1, "finished": False}})


def test_read_stops_where_the_tracker_refuses_a_claim() -> None:
    tracker = OffsetRangeTracker(0, 10)
    records = Counting(10).read(tracker)
    assert [next(records) for _ in range(3)] == [0, 1, 2]
    assert tracker.try_split(5) == (5, 0.5)
    assert list(records) == [3, 4]


def test_offset_range_tracker_claims_splits_and_reports_progress() -> None:
    t = OffsetRangeTracker(10, 20)
    assert t.try_split(15) is None  # nothing read yet: Beam refuses
    assert t.try_claim(10) and t.try_claim(14)
    assert t.fraction_consumed() == pytest.approx(0.4)
    assert t.try_split(12) is None  # already read past it
    assert t.try_split(16) == (16, 0.6)
    assert not t.try_claim(16)
    assert t.position_at_fraction(0.5) == 13
    with pytest.raises(ValueError, match="claims must increase"):
        t.try_claim(15)
    with pytest.raises(ValueError, match="start 5 is after end 2"):
        OffsetRangeTracker(5, 2)


def test_an_unsplittable_tracker_refuses_splits_and_delegates_the_rest() -> None:
    t = UnsplittableRangeTracker(OffsetRangeTracker(0, 4))
    assert t.try_claim(0) and t.try_split(2) is None and t.stop_position() == 4
    assert t.split_points() == (0, 1)


class TableSink(iobase.Sink):
    """Writes each bundle to a temporary file and renames them all when finalized (the snippets' KV sink)."""

    def __init__(self, folder: str, calls: list[str]) -> None:
        self.folder = folder
        self.calls = calls

    def initialize_write(self) -> str:
        self.calls.append("init")
        return "token"

    def open_writer(self, init_result: str, uid: str) -> TableWriter:
        assert init_result == "token"
        return TableWriter(os.path.join(self.folder, "tmp-" + uid))

    def pre_finalize(self, init_result: str, writer_results: list[str]) -> int:
        self.calls.append("pre_finalize")
        return len(writer_results)

    def finalize_write(self, init_result: str, writer_results: list[str], pre: int) -> None:
        self.calls.append(f"finalize {pre}")
        for i, path in enumerate(writer_results):
            os.rename(path, os.path.join(self.folder, f"final-{i}"))


class TableWriter(iobase.Writer):
    def __init__(self, path: str) -> None:
        self.path = path
        self.file = open(path, "w")  # noqa: SIM115 - closed in close()

    def write(self, record: Any) -> None:
        self.file.write(f"{record}\n")

    def close(self) -> str:
        self.file.close()
        return self.path


def test_a_beam_sink_is_initialized_written_and_finalized_once(tmp_path: Any) -> None:
    calls: list[str] = []
    with beam.Pipeline() as p:
        _ = p | beam.Create(range(50)) | beam.io.Write(TableSink(str(tmp_path), calls))
    names = sorted(os.listdir(tmp_path))
    assert names and all(n.startswith("final-") for n in names)  # every writer's file was renamed
    assert calls == ["init", "pre_finalize", f"finalize {len(names)}"]
    lines = [line for n in names for line in (tmp_path / n).read_text().split()]
    assert sorted(int(x) for x in lines) == list(range(50))


def test_the_sink_writers_results_survive_a_restore(tmp_path: Any) -> None:
    calls: list[str] = []
    sink = TableSink(str(tmp_path), calls)

    async def before_crash() -> Any:
        writer = BeamSinkWriter(sink)
        await writer.write([1, 2])
        return await writer.prepare(1)  # the checkpoint's record; the process then dies

    async def after_restore(record: Any) -> None:
        writer = BeamSinkWriter(sink)
        await writer.recover(1, record)
        await writer.write([3])
        await writer.commit(2, await writer.prepare_end_of_input(2))

    record = anyio.run(before_crash)
    assert pickle.loads(record["state"])["init"] == "token" and not record["final"]
    anyio.run(after_restore, record)
    assert calls == ["init", "pre_finalize", "finalize 2"]  # initialized once, both epochs finalized
    assert sorted((tmp_path / n).read_text() for n in os.listdir(tmp_path)) == ["1\n2\n", "3\n"]


def test_read_and_write_name_what_they_cannot_take() -> None:
    with pytest.raises(TypeError, match="Read needs a Source"):
        beam.io.Read(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="desired_bundle_size applies to a BoundedSource only"):
        beam.io.Read(BoundedSourceAdapter(Counting(1), 1), desired_bundle_size=5)
    with pytest.raises(ValueError, match="desired_bundle_size must be positive"):
        beam.io.Read(Counting(1), desired_bundle_size=0)


async def test_a_stopped_run_resumes_the_bundles_where_its_checkpoint_left_them(tmp_path: Any) -> None:
    import glob
    import json

    from millstream.options.pipeline_options import PipelineOptions

    out = str(tmp_path / "out" / "rows")
    flags = [
        "--streaming",
        f"--state_dir={tmp_path / 'state'}",
        "--batch_size=10",
        "--checkpoint_interval=3600",
    ]

    def build(p: beam.Pipeline) -> None:
        _ = p | beam.io.Read(Counting(3000), desired_bundle_size=1000) | beam.io.WriteToJson(out)

    p = beam.Pipeline(options=PipelineOptions(flags))
    build(p)
    job = await p.start()
    assert await job.stop() == "STOPPED"  # a checkpoint part-way, then exit
    first = [json.loads(line) for f in glob.glob(out + "*") for line in open(f)]
    assert len(first) < 3000

    p = beam.Pipeline(options=PipelineOptions(flags))
    build(p)
    job = await p.start()
    assert await job.wait() == "DONE"
    rows = [json.loads(line) for f in glob.glob(out + "*") for line in open(f)]
    assert sorted(rows) == list(range(3000))  # nothing lost, nothing written twice


class EpochSink(iobase.Sink):
    """Renames each writer's file to a name of its own when finalized; finalizing again changes nothing."""

    def __init__(self, folder: str, calls: list[str]) -> None:
        self.folder = folder
        self.calls = calls

    def initialize_write(self) -> str:
        self.calls.append("init")
        return "token"

    def open_writer(self, init_result: str, uid: str) -> TableWriter:
        return TableWriter(os.path.join(self.folder, "tmp-" + uid))

    def pre_finalize(self, init_result: str, writer_results: list[str]) -> None:
        self.calls.append("pre_finalize")

    def finalize_write(self, init_result: str, writer_results: list[str], pre: None) -> None:
        self.calls.append(f"finalize {len(writer_results)}")
        for path in writer_results:
            final = os.path.join(self.folder, "final-" + os.path.basename(path)[4:])
            if os.path.exists(path):
                os.rename(path, final)


def _finals(folder: Any) -> list[str]:
    return sorted((folder / n).read_text() for n in os.listdir(folder) if n.startswith("final-"))


def test_per_checkpoint_each_epoch_is_a_write_finalized_when_it_commits(tmp_path: Any) -> None:
    calls: list[str] = []
    sink = EpochSink(str(tmp_path), calls)

    async def run() -> None:
        writer = BeamSinkWriter(sink, per_checkpoint=True)
        await writer.write([1, 2])
        await writer.commit(1, await writer.prepare(1))
        assert calls == ["init", "pre_finalize", "finalize 1"] and _finals(tmp_path) == ["1\n2\n"]
        await writer.commit(2, await writer.prepare(2))  # an epoch without values writes nothing
        assert calls == ["init", "pre_finalize", "finalize 1"]
        await writer.write([3])
        await writer.commit(3, await writer.prepare_end_of_input(3))

    anyio.run(run)
    assert calls == ["init", "pre_finalize", "finalize 1"] * 2
    assert _finals(tmp_path) == ["1\n2\n", "3\n"]


def test_per_checkpoint_an_epoch_not_yet_committed_is_finalized_on_recover(tmp_path: Any) -> None:
    calls: list[str] = []
    sink = EpochSink(str(tmp_path), calls)

    async def before_crash() -> Any:
        writer = BeamSinkWriter(sink, per_checkpoint=True)
        await writer.write([1, 2])
        return await writer.prepare(1)  # durable in the checkpoint; the process dies before the commit

    async def after_restore(record: Any) -> None:
        writer = BeamSinkWriter(sink, per_checkpoint=True)
        await writer.recover(1, record)
        await writer.recover(1, record)  # a second crash: finalizing again changes nothing

    record = pickle.loads(pickle.dumps(anyio.run(before_crash)))
    assert _finals(tmp_path) == []
    anyio.run(after_restore, record)
    assert _finals(tmp_path) == ["1\n2\n"]
    assert calls == ["init"] + ["pre_finalize", "finalize 1"] * 2


def test_a_beam_sink_of_an_unbounded_pcollection_is_finalized_per_checkpoint(tmp_path: Any) -> None:
    """A streaming run of an unbounded source: every epoch is initialized, written and finalized on its own,
    and every element is in exactly one finalized file."""
    from millstream.options.pipeline_options import PipelineOptions
    from millstream.transforms.periodicsequence import PeriodicImpulse, RebaseMode

    calls: list[str] = []
    out = tmp_path / "out"
    out.mkdir()
    write = beam.io.Write(EpochSink(str(out), calls))
    flags = ["--streaming", f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=0.05"]
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        ticks = p | PeriodicImpulse(0, 0.3, 0.01, rebase=RebaseMode.REBASE_ALL)
        _ = ticks | beam.Map(lambda t: round(t, 2)) | write
    assert write.sink.per_checkpoint
    finalized = [c for c in calls if c.startswith("finalize")]
    assert finalized and set(finalized) == {"finalize 1"}  # one writer per epoch, each finalized alone
    assert calls.count("init") == len(finalized)
    values = [line for text in _finals(out) for line in text.split()]
    assert len(values) == len(set(values)) == 30  # one per 0.01 s of [0, 0.3), each once
    assert not [n for n in os.listdir(out) if n.startswith("tmp-")]


def test_a_beam_sink_of_a_bounded_pcollection_waits_for_the_end_of_the_input() -> None:
    p = beam.Pipeline()
    write = beam.io.Write(EpochSink("/nonexistent", []))
    _ = p | beam.Create([1]) | write
    assert not write.sink.per_checkpoint


class ThreadRecordingSink(TableSink):
    """Records which thread ran each of the Sink's and its writers' calls."""

    def __init__(self, folder: str, calls: list[str], threads: set[str]) -> None:
        super().__init__(folder, calls)
        self.threads = threads

    def _seen(self) -> None:
        self.threads.add(threading.current_thread().name)

    def initialize_write(self) -> str:
        self._seen()
        return super().initialize_write()

    def open_writer(self, init_result: str, uid: str) -> TableWriter:
        self._seen()
        writer = super().open_writer(init_result, uid)
        write, close = writer.write, writer.close

        def seen_write(record: Any) -> None:
            self._seen()
            write(record)

        def seen_close() -> str:
            self._seen()
            return close()

        writer.write, writer.close = seen_write, seen_close  # type: ignore[method-assign]
        return writer

    def pre_finalize(self, init_result: str, writer_results: list[str]) -> int:
        self._seen()
        return super().pre_finalize(init_result, writer_results)

    def finalize_write(self, init_result: str, writer_results: list[str], pre: int) -> None:
        self._seen()
        super().finalize_write(init_result, writer_results, pre)


@pytest.mark.parametrize("streaming", [False, True])
def test_the_sinks_user_code_runs_off_the_event_loop(tmp_path: Any, streaming: bool) -> None:
    from millstream.options.pipeline_options import PipelineOptions
    from millstream.transforms.periodicsequence import PeriodicImpulse, RebaseMode

    calls: list[str] = []
    threads: set[str] = set()
    out = tmp_path / "out"
    out.mkdir()
    flags = [f"--state_dir={tmp_path / 'state'}", "--checkpoint_interval=0.05"]
    with beam.Pipeline(options=PipelineOptions(flags + (["--streaming"] if streaming else []))) as p:
        if streaming:
            values = p | PeriodicImpulse(0, 0.1, 0.01, rebase=RebaseMode.REBASE_ALL)
        else:
            values = p | beam.Create(range(10))
        _ = values | beam.io.Write(ThreadRecordingSink(str(out), calls, threads))
    assert "finalize" in " ".join(calls)  # every call kind ran...
    assert threads and threading.main_thread().name not in threads  # ...none of them on the loop's thread
