"""The Source/Sink protocols and the `Read`/`Write` primitives every connector is built on.

Connectors (in `connectors/`) implement these classes; the runtime drives them without knowing any
connector by name. A source reports a position per split and can seek to it, so a checkpoint can record
where reading stopped; a sink is two-phase, so output becomes visible only when the checkpoint that covers it
is durable:

    write ... -> prepare(checkpoint_id) -> [checkpoint durable] -> commit(checkpoint_id, record)

`commit` is idempotent (recovery may repeat it), and on restart `recover` finishes the commit of the last
durable checkpoint and discards anything newer. A writer that names its output differently once a bounded run
has read all its input (the file sink's Beam batch names) implements `EndOfInputSinkWriter`: the final
checkpoint of such a run calls `prepare_end_of_input` instead of `prepare`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import DoOutputsTuple, PBegin, PCollection, PDone


@dataclass
class SourceBatch:
    """What a reader returns: one split's next values, their event times (µs) if known, and bad records."""

    split: str
    values: list[Any]
    timestamps: list[int] | None = None
    #: Records that could not be decoded: dicts with at least "reason" and where they came from.
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: True when this split has nothing more to read (a bounded split's end).
    finished: bool = False
    #: Bytes consumed by this batch (progress reporting).
    nbytes: int = 0
    #: A promise that no later value of this split has an event time before this (µs): in streaming the
    #: split's watermark advances to it at once (Beam's ``ManualWatermarkEstimator.set_watermark``), e.g. a
    #: periodic impulse's next fire time while it waits for it.
    watermark_us: int | None = None


class SourceReader:
    """Reads a source's splits. Positions are msgpack-able values, one per split."""

    async def open(self, positions: dict[str, Any] | None) -> None:
        """Start reading, from `positions` when restoring a checkpoint, else from the beginning."""

    async def read(self) -> SourceBatch | None:
        """The next batch of some split, or None once every split is finished (bounded sources only)."""
        raise NotImplementedError

    def positions(self) -> dict[str, Any]:
        """For every split, the position just after the last batch returned by `read`."""
        raise NotImplementedError

    def backlog(self) -> int | None:
        """How much is left to read (bytes, messages), if the source knows."""
        return None

    def total(self) -> int | None:
        """The total size of a bounded source (bytes), for progress reporting."""
        return None

    async def on_checkpoint_durable(self, checkpoint_id: int) -> None:
        """Called once the checkpoint covering everything read so far is durable (e.g. to ack messages)."""

    async def close(self) -> None:
        """Release resources."""


class Source:
    """Configuration of a source. `validate` fails before any data is read; `create_reader` opens it."""

    #: Bounded sources end; their watermark then jumps to +infinity.
    is_bounded = True
    #: True when the reader returns event times of its own (`SourceBatch.timestamps`: a Kafka record's
    #: timestamp, a Pub/Sub publish time); otherwise only `Read(timestamp_fn=...)` gives records event time
    #: and moves an unbounded source's watermark.
    stamps_event_time = False

    def validate(self) -> None:
        """Check the configuration (paths exist, options make sense); raise a clear error otherwise."""

    def create_reader(self, options: Any) -> SourceReader:
        """A reader for one run."""
        raise NotImplementedError

    def display_name(self) -> str:
        """How the source appears in status and errors."""
        return type(self).__name__

    def signature(self) -> Any:
        """Something that changes when the input changes (e.g. file sizes and mtimes), or None. A completed
        bounded job whose inputs changed runs afresh instead of finding nothing left to read."""
        return None


class SinkEncodeError(Exception):
    """A sink could not encode one element; the runtime reports it with the sink's step and the element."""

    def __init__(self, element: Any, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.element = element


class SinkWriter:
    """Writes one sink's output in epochs sealed by checkpoints (two-phase)."""

    async def open(self) -> None:
        """Prepare to write."""

    async def committed_checkpoint(self) -> int | None:
        """On start, before `recover`: the newest checkpoint whose output the sink's external system has
        committed, when the sink's commit cannot be finished after a crash (a Kafka transaction dies with its
        producer). Restore then picks that checkpoint instead of the latest one (it must still be retained),
        so input after it is read again and its output written once. ``0`` means no checkpoint of this state
        was committed (start afresh); None (the default) means "trust the latest checkpoint"."""
        return None

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        """On start: finish committing `record` of the last durable checkpoint (idempotent; None if there is
        none) and discard any output written after it."""

    async def committed_after(self, checkpoint_id: int) -> list[str]:
        """Committed output of checkpoints newer than `checkpoint_id` (names a reader may have consumed), which
        restoring `checkpoint_id` would discard and write again; empty when the sink cannot tell."""
        return []

    async def write(self, values: list[Any]) -> None:
        """Write values into the current (uncommitted) epoch."""
        raise NotImplementedError

    async def prepare(self, checkpoint_id: int) -> Any:
        """Seal the current epoch as belonging to `checkpoint_id`; return a msgpack-able pending-commit record
        (stored in the checkpoint) that `commit` needs."""
        raise NotImplementedError

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        """Make the epoch of `checkpoint_id` visible. Must be idempotent."""
        raise NotImplementedError

    async def abort(self) -> None:
        """Discard everything not yet committed (cancel)."""

    async def close(self) -> None:
        """Release resources."""


@runtime_checkable
class SplitBacklogReader(Protocol):
    """A source reader that can tell its backlog per split (a capability, asked for on demand, never per
    batch): unread bytes per file or byte range, consumer lag per Kafka partition, unacked messages of a
    Pub/Sub subscription. Splits whose backlog is unknown map to None.
    """

    def backlog_per_split(self) -> dict[str, int | None]:
        """{split name: what is left to read in it, in the unit of `SourceReader.backlog`}."""
        ...


@runtime_checkable
class ProcessingTimeReader(Protocol):
    """A source reader (or a watermark estimator) whose output depends on processing time (a capability): the
    runtime hands it the job's clock (`engine/runtime/exec/clock.py`) before `open` (before its first use), so
    it never reads the wall clock itself and runs deterministically on a fake clock (a periodic impulse waits
    for its fire times with ``sleep_until``)."""

    def use_clock(self, clock: Any) -> None:
        """Read processing time from `clock` (``now_us``, ``await sleep_until(t_us)``) from now on."""
        ...


@runtime_checkable
class EndOfInputSinkWriter(Protocol):
    """A sink writer whose last commit of a completed bounded run differs from the others (a capability).

    ``prepare_end_of_input(checkpoint_id)`` replaces `prepare` in the final checkpoint of a run that ended at
    the end of its input (not a drain); its record goes to `commit` (and to `recover` after a crash) like any
    other, so finishing the run's output is as idempotent as every commit.
    """

    async def prepare_end_of_input(self, checkpoint_id: int) -> Any:
        """Seal the last epoch and return the record that makes the run's whole output final on commit."""
        ...


class Sink:
    """Configuration of a sink. `validate` fails before any data is read."""

    def validate(self) -> None:
        """Check the configuration; raise a clear error otherwise."""

    def create_writer(self, options: Any, job: Any) -> SinkWriter:
        """A writer for one run of `job` (job name, state dir)."""
        raise NotImplementedError

    def display_name(self) -> str:
        """How the sink appears in status and errors."""
        return type(self).__name__


class Read(PTransform):
    """Read a Source. `timestamp_fn(value) -> seconds` gives event time from data; `.with_dead_letters()`
    returns (good, bad) where bad holds undecodable records instead of failing the run."""

    primitive = True

    def __init__(
        self,
        source: Source,
        timestamp_fn: Callable[[Any], Any] | None = None,
        max_out_of_orderness: float = 0.0,
        idle_timeout: float | None = None,
    ) -> None:
        if not isinstance(source, Source):
            raise TypeError(f"Read needs a Source, got {type(source).__name__}")
        self.source = source
        self.timestamp_fn = timestamp_fn
        self.max_out_of_orderness = max_out_of_orderness
        self.idle_timeout = idle_timeout
        self.dead_letter_tag: str | None = None
        super().__init__(f"Read({source.display_name()})")

    def with_dead_letters(self, tag: str = "bad") -> Read:
        """Route undecodable records (with file/offset/raw bytes/reason) to a second output."""
        new = copy.copy(self)
        new.dead_letter_tag = tag
        return new

    def expand(self, pbegin: Any) -> Any:
        """Validate the source; its output, plus the dead letters if asked for (Beam's Read.expand)."""
        if not isinstance(pbegin, PBegin):
            raise TypeError(f"{self.label} is a root transform: apply it to the pipeline")
        self.source.validate()
        main = PCollection(pbegin.pipeline, is_bounded=self.source.is_bounded)
        if self.dead_letter_tag is None:
            return main
        bad = PCollection(pbegin.pipeline, tag=self.dead_letter_tag, is_bounded=self.source.is_bounded)
        return DoOutputsTuple(main, {self.dead_letter_tag: bad}, None)


class Write(PTransform):
    """Write a PCollection to a Sink, exactly once through the checkpoint protocol."""

    primitive = True

    def __init__(self, sink: Sink) -> None:
        if not isinstance(sink, Sink):
            raise TypeError(f"Write needs a Sink, got {type(sink).__name__}")
        self.sink = sink
        super().__init__(f"Write({sink.display_name()})")

    def expand(self, pcoll: Any) -> PDone:
        """Validate the sink and return PDone (Beam's Write.expand)."""
        if not isinstance(pcoll, PCollection):
            raise TypeError(f"{self.label} must be applied to a PCollection")
        self.sink.validate()
        return PDone(pcoll.pipeline)


__all__ = [
    "ProcessingTimeReader",
    "Read",
    "Sink",
    "SinkWriter",
    "Source",
    "SourceBatch",
    "SourceReader",
    "SplitBacklogReader",
    "Write",
]
