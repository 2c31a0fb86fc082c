"""Beam's batching transforms (`GroupIntoBatches`, `WithShardedKey`, `BatchElements`), composed from ParDo and state."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.core import Map, ParDo
from millstream.engine.model.dofn import DoFn, WindowedValue
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.pvalue import PCollection
from millstream.engine.model.typehints import with_input_types, with_output_types
from millstream.engine.model.userstate import (
    BagStateSpec,
    CombiningValueStateSpec,
    TimeDomain,
    TimerSpec,
    on_timer,
)


def _positive(name: str, value: Any, where: str) -> int:
    """`value` as a positive int, or a ValueError naming the argument and the transform."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


class _CountFn(CombineFn):
    """Counts inputs; the size of the batch buffered so far."""

    def create_accumulator(self) -> int:
        return 0

    def add_input(self, accumulator: int, element: Any) -> int:
        return accumulator + 1

    def merge_accumulators(self, accumulators: Any) -> int:
        return sum(accumulators)

    def extract_output(self, accumulator: int) -> int:
        return accumulator


class _GroupIntoBatchesDoFn(DoFn):
    """Buffers values per key and window; emits `(key, [values])` when `batch_size` are buffered, at the window's
    end, and (if set) `max_buffering_duration_secs` of processing time after a batch's first element."""

    BUFFER = BagStateSpec("buffer", None)
    COUNT = CombiningValueStateSpec("count", None, _CountFn())
    WINDOW_END = TimerSpec("window_end", TimeDomain.WATERMARK)
    BUFFERING = TimerSpec("buffering", TimeDomain.REAL_TIME)

    def __init__(self, batch_size: int, max_buffering_duration_secs: float | None, clock: Any) -> None:
        self.batch_size = batch_size
        self.max_buffering_duration_secs = max_buffering_duration_secs
        self.clock = clock

    def process(
        self,
        element: Any,
        window: Any = DoFn.WindowParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        count: Any = DoFn.StateParam(COUNT),
        window_end: Any = DoFn.TimerParam(WINDOW_END),
        buffering: Any = DoFn.TimerParam(BUFFERING),
    ) -> Iterator[Any]:
        key, value = element
        size = count.read()
        if size == 0:
            # Beam flushes what is left when the window closes, so a partial batch is never lost.
            window_end.set(window.max_timestamp())
            if self.max_buffering_duration_secs:
                # Beam's own choice: the buffering deadline is on the `clock` argument (time.time by default).
                buffering.set(self.clock() + self.max_buffering_duration_secs)
        buffer.add(value)
        count.add(1)
        if size + 1 >= self.batch_size:
            yield from self._flush(key, buffer, count)

    @staticmethod
    def _flush(key: Any, buffer: Any, count: Any) -> Iterator[Any]:
        batch = list(buffer.read())
        buffer.clear()
        count.clear()
        if batch:
            yield key, batch

    @on_timer(WINDOW_END)
    def on_window_end(
        self,
        key: Any = DoFn.KeyParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        count: Any = DoFn.StateParam(COUNT),
    ) -> Iterator[Any]:
        """The window closed: emit the partial batch."""
        yield from self._flush(key, buffer, count)

    @on_timer(BUFFERING)
    def on_buffering_timeout(
        self,
        key: Any = DoFn.KeyParam,
        buffer: Any = DoFn.StateParam(BUFFER),
        count: Any = DoFn.StateParam(COUNT),
    ) -> Iterator[Any]:
        """A batch waited `max_buffering_duration_secs`: emit it even if it is not full."""
        yield from self._flush(key, buffer, count)


class ShardedKey:
    """A key with a shard id (Beam's `apache_beam.utils.sharded_key.ShardedKey`): spreads one hot key over workers.

    >>> ShardedKey("k", b"1").key
    'k'
    """

    __slots__ = ("key", "shard_id")

    def __init__(self, key: Any, shard_id: bytes) -> None:
        self.key = key
        self.shard_id = shard_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShardedKey) and (self.key, self.shard_id) == (other.key, other.shard_id)

    def __hash__(self) -> int:
        return hash((self.key, self.shard_id))

    def __reduce__(self) -> tuple[Any, ...]:
        return (ShardedKey, (self.key, self.shard_id))

    def __repr__(self) -> str:
        return f"ShardedKey(key={self.key!r}, shard_id={self.shard_id!r})"


# The type variables of Beam's hints on the batching transforms: bound to the input's types when a pipeline is built
T: Any = TypeVar("T")  # type: ignore[misc]  # a value in hints, not an annotation
K: Any = TypeVar("K")  # type: ignore[misc]  # a value in hints, not an annotation
V: Any = TypeVar("V")  # type: ignore[misc]  # a value in hints, not an annotation


@with_input_types(tuple[K, V])
@with_output_types(tuple[K, Iterable[V]])
class GroupIntoBatches(PTransform):
    """Batches the values of each key (Beam's `GroupIntoBatches`): `(key, value)` in, `(key, [values])` out.

    A batch is emitted when `batch_size` values of a key and window are buffered, when the window closes, or
    `max_buffering_duration_secs` after its first value (processing time).

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = p | beam.Create([("a", 1), ("a", 2), ("a", 3)]) | beam.GroupIntoBatches(2) | beam.Map(print)
    ('a', [1, 2])
    ('a', [3])
    """

    def __init__(
        self,
        batch_size: int,
        max_buffering_duration_secs: float | None = None,
        clock: Any = None,
        label: str | None = None,
    ) -> None:
        super().__init__(label)
        self.batch_size = _positive("batch_size", batch_size, "GroupIntoBatches")
        if max_buffering_duration_secs is not None and max_buffering_duration_secs < 0:
            raise ValueError(
                "GroupIntoBatches: max_buffering_duration_secs must be >= 0, "
                f"got {max_buffering_duration_secs!r}"
            )
        self.max_buffering_duration_secs = max_buffering_duration_secs
        self.clock = clock or time.time

    def expand(self, pcoll: PCollection) -> PCollection:
        """Batch the values of each key with a stateful DoFn (Beam's `GroupIntoBatches.expand`)."""
        fn = _GroupIntoBatchesDoFn(self.batch_size, self.max_buffering_duration_secs, self.clock)
        return pcoll | "ParDo" >> ParDo(fn)

    @with_input_types(tuple[K, V])  # Beam's; its output's sharded key type is not modelled here
    class WithShardedKey(PTransform):
        """`GroupIntoBatches` with each key spread over shards: `(ShardedKey(key, shard_id), [values])` out.

        >>> import millstream as beam
        >>> with beam.Pipeline() as p:
        ...     _ = (p | beam.Create([("a", 1), ("a", 2)]) | beam.GroupIntoBatches.WithShardedKey(2)
        ...          | beam.Map(lambda kv: print(kv[0].key, sorted(kv[1]))))
        a [1, 2]
        """

        def __init__(
            self,
            batch_size: int,
            max_buffering_duration_secs: float | None = None,
            clock: Any = None,
            label: str | None = None,
        ) -> None:
            super().__init__(label)
            self.batch_size = _positive("batch_size", batch_size, "GroupIntoBatches.WithShardedKey")
            self.max_buffering_duration_secs = max_buffering_duration_secs
            self.clock = clock

        def expand(self, pcoll: PCollection) -> PCollection:
            """Key elements by `ShardedKey` (one shard per process), then batch (Beam's `WithShardedKey.expand`)."""
            # One shard per process, as Beam's shard id is per worker thread: one loop here.
            shard_id = uuid.uuid4().bytes
            return (
                pcoll
                | "ShardKey" >> Map(lambda kv: (ShardedKey(kv[0], shard_id), kv[1]))
                | "Batch" >> GroupIntoBatches(self.batch_size, self.max_buffering_duration_secs, self.clock)
            )


class _BatchElementsDoFn(DoFn):
    """Buffers elements per window within a bundle; a batch is emitted when full and at the bundle's end."""

    def __init__(self, min_batch_size: int, max_batch_size: int) -> None:
        self.min_batch_size = min_batch_size
        self.max_batch_size = max_batch_size
        self._buffers: dict[Any, list[Any]] = {}

    def start_bundle(self) -> None:
        self._buffers = {}

    def process(self, element: Any, window: Any = DoFn.WindowParam) -> Iterator[Any]:
        buffer = self._buffers.setdefault(window, [])
        buffer.append(element)
        if len(buffer) >= self.max_batch_size:
            del self._buffers[window]
            yield WindowedValue(buffer, window.max_timestamp(), [window])

    def finish_bundle(self) -> Iterator[Any]:
        buffers, self._buffers = self._buffers, {}
        for window, buffer in buffers.items():
            yield WindowedValue(buffer, window.max_timestamp(), [window])


@with_input_types(T)
@with_output_types(list[T])
class BatchElements(PTransform):
    """Groups elements into lists of `min_batch_size`..`max_batch_size` elements (Beam's `BatchElements`).

    Batches never span windows; the last batch of a bundle may be smaller than `min_batch_size`. Beam tunes
    the size by timing downstream work; here batches are filled to `max_batch_size`.

    >>> import millstream as beam
    >>> with beam.Pipeline() as p:
    ...     _ = p | beam.Create([1, 2, 3]) | beam.BatchElements(max_batch_size=5) | beam.Map(print)
    [1, 2, 3]
    """

    def __init__(
        self,
        min_batch_size: int = 1,
        max_batch_size: int = 10000,
        target_batch_overhead: float = 0.05,
        target_batch_duration_secs: float = 10,
        variance: float = 0.25,
        clock: Any = None,
        element_size_fn: Any = None,
        max_batch_weight: Any = None,
        label: str | None = None,
        **unused: Any,
    ) -> None:
        super().__init__(label)
        self.min_batch_size = _positive("min_batch_size", min_batch_size, "BatchElements")
        self.max_batch_size = _positive("max_batch_size", max_batch_size, "BatchElements")
        if self.min_batch_size > self.max_batch_size:
            raise ValueError(
                f"BatchElements: min_batch_size {min_batch_size} > max_batch_size {max_batch_size}"
            )

    def expand(self, pcoll: PCollection) -> PCollection:
        """Batch the elements per window within each bundle (Beam's `BatchElements.expand`)."""
        return pcoll | "ParDo" >> ParDo(_BatchElementsDoFn(self.min_batch_size, self.max_batch_size))


__all__ = ["BatchElements", "GroupIntoBatches", "ShardedKey"]
