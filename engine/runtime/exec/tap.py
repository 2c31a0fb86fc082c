"""`Tap`: a caller's bounded, detachable view of the elements of one PCollection of a running job.

A tap is attached to the node producing the PCollection. Closing it (breaking out of ``async for``, leaving
``async with``, ``aclose()``, or dropping the last reference) detaches only the tap: the job runs on. When its
buffer is full a tap either makes the job wait (``on_full="wait"``: backpressure, nothing is lost) or drops
the newest batch and counts its elements in ``dropped`` (``on_full="drop"``: the job never waits for it).
A tap ends when its PCollection is complete or the job ends (drained, stopped, cancelled or failed).
"""

from __future__ import annotations

from typing import Any

import anyio

from millstream.engine.model.timestamp import MAX_MICROS
from millstream.engine.runtime.graph.batch import Batch
from millstream.engine.runtime.graph.node import Node

ON_FULL_POLICIES = ("wait", "drop")


class _TapSender:
    """The tap's end of the stream; sending to a closed tap is a no-op, so closing never fails the job."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    async def send(self, message: Any) -> None:
        """Deliver a batch of values (or the end marker, `None`) once there is room; dropped if closed."""
        try:
            await self.stream.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass


class TapChannel:
    """The job's side of a tap: the send stream, the full-buffer policy and the drop count (the graph holds
    this, not the `Tap`, so a tap the caller drops is collected and detaches itself)."""

    def __init__(self, max_buffered_batches: int, on_full: str) -> None:
        self.on_full = on_full
        self.dropped = 0
        self.closed = False
        self.send, self.receive = anyio.create_memory_object_stream[Any](max_buffer_size=max_buffered_batches)
        self.sender = _TapSender(self.send)

    def end(self) -> None:
        """No more elements: the caller reads what is buffered, then the iteration stops."""
        self.send.close()


class _TapNode(Node):
    """Copies a PCollection's elements into a tap: through the stage's outbox (the stage waits for room) or
    directly, dropping a batch that finds the buffer full."""

    def __init__(self, label: str, stage: Any, channel: TapChannel) -> None:
        super().__init__(label)
        self.stage = stage
        self.channel = channel

    def push(self, index: int, batch: Batch) -> None:
        channel = self.channel
        if channel.closed:
            return
        if channel.on_full == "wait":
            self.stage.outbox.append((channel.sender, batch.values))
            return
        try:
            channel.send.send_nowait(batch.values)
        except anyio.WouldBlock:
            channel.dropped += len(batch.values)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass

    def on_input_watermark(self, micros: int) -> None:
        if micros >= MAX_MICROS:
            if self.channel.on_full == "wait":
                self.stage.outbox.append((self.channel.sender, None))
            else:
                self.channel.end()


class Tap:
    """An async iterator over the elements of a PCollection, produced from the moment it was attached."""

    def __init__(self, max_buffered_batches: int, on_full: str) -> None:
        if on_full not in ON_FULL_POLICIES:
            raise ValueError(f"tap: on_full={on_full!r} is not a policy; use 'wait' or 'drop'")
        if max_buffered_batches < 1:
            raise ValueError(f"tap: max_buffered_batches must be >= 1, got {max_buffered_batches}")
        self.channel = TapChannel(max_buffered_batches, on_full)
        self.receive = self.channel.receive
        self._pending: list[Any] = []
        self._detach: Any = None

    def attach(self, node: Node, tag: str | None, stage: Any) -> None:
        """Start copying `node`'s output `tag` (run by `stage`) into this tap; ends at once if it is complete."""
        if node.output_wm >= MAX_MICROS:
            self.channel.end()
            return
        tap_node = _TapNode(f"tap:{node.label}", stage, self.channel)
        node.connect(tap_node, 0, tag)

        def detach() -> None:
            # a new list: an emit in progress keeps iterating over the old one
            node.consumers[tag] = [c for c in node.consumers.get(tag, []) if c[0] is not tap_node]

        self._detach = detach

    @property
    def dropped(self) -> int:
        """Elements discarded because the buffer was full (``on_full="drop"`` only)."""
        return self.channel.dropped

    @property
    def closed(self) -> bool:
        """True once the caller closed the tap or read its end."""
        return self.channel.closed

    def close(self) -> None:
        """Detach from the job and discard what is buffered (the job is not affected)."""
        if self.closed:
            return
        self.channel.closed = True
        if self._detach is not None:
            self._detach()
            self._detach = None
        self.receive.close()
        self.channel.send.close()

    async def aclose(self) -> None:
        """`close()`, as an awaitable (the async-iterator protocol)."""
        self.close()

    def __aiter__(self) -> Tap:
        return self

    async def __anext__(self) -> Any:
        while not self._pending:
            if self.closed:
                raise StopAsyncIteration
            try:
                values = await self.receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                self.close()
                raise StopAsyncIteration from None
            if values is None:
                self.close()
                raise StopAsyncIteration
            self._pending = list(reversed(values))
        return self._pending.pop()

    async def __aenter__(self) -> Tap:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # `async for x in job.tap(...): break` drops the last reference without closing: detach then
        if hasattr(self, "channel") and not self.closed:
            try:
                self.close()
            except Exception:  # at interpreter shutdown the loop may be gone; nothing to detach from then
                pass
