"""The Google Cloud Pub/Sub source: pulls messages, acknowledges them after the covering checkpoint, de-duplicates.

The source (`PubSubSource`, read by `PubSubReader`) and the sink (`connectors.pubsub.sink`) plug into the
Source/Sink protocols of `millstream.engine.model.io`; `millstream.connectors.pubsub.pubsubio` gives them Beam's names.

Reading
-------
Two background threads pull with the synchronous Pull RPC (up to 1,000 messages a call) into a thread-safe
queue; `read()` drains the queue on the event loop, waiting at most `READ_WAIT_S` for the next message, so
checkpoints and drains never wait on an RPC. A third thread keeps the leases: every message received and not
yet acknowledged has its ack deadline extended (ModifyAckDeadline) before it runs out, for up to
``max_lease_duration`` seconds after it arrived. Flow control: at most ``max_outstanding_messages`` received and
unacknowledged, and at most a few batches waiting in the queue; beyond that the messages wait at Pub/Sub.

Why not the client library's streaming pull (callbacks): its flow control and lease manager assume a message is
acked soon after its callback, its acks are fire-and-forget, and its threads must be stopped explicitly; here a
message stays unacknowledged for a whole checkpoint interval, the acks must be known to have been sent, and the
threads end by themselves when the source's task ends (the runtime does not close readers yet) or the event loop
closes. Why not one `anyio.to_thread` Pull per `read()`: a Pull can block for seconds, and cancelling one that is
already carrying messages would strand them until their deadline.

Acknowledgement and exactly-once
--------------------------------
A message is acknowledged only once the checkpoint covering its effects is durable: `positions()` (called in the
checkpoint's snapshot step) seals the ack ids returned by `read()` so far, and `on_checkpoint_durable` acks the
sealed ids. A crash before that leaves them unacknowledged, so Pub/Sub redelivers them to the restarted job,
which replays them from the restored checkpoint.

Pub/Sub delivers at least once (a message can come back after an ack deadline expired, an ack was lost, or a
crash), so every message is de-duplicated by its message id, or by the ``id_label`` attribute when given (a
message without that attribute falls back to its message id). The ids seen are kept in the checkpointed
position as 64-bit hashes (BLAKE2b) in buckets of 10 s, for the last ``dedup_horizon`` seconds (default 600,
the window Dataflow documents for its de-duplication) of the *reader's running time* (time the job was down
does not count, so messages left unacknowledged by a crash are still recognised when they come back after a
restart), and at most ``dedup_max_ids`` ids (default 250,000: 2 MB per checkpoint; above ~400 messages/s the
count, not the time, bounds the horizon). A duplicate arriving after its id left the horizon is processed again.

Event time and watermark
------------------------
Event time is the message's publish time, or the ``timestamp_attribute`` parsed as Beam does: milliseconds since
the epoch (an integer) or RFC 3339 with a UTC offset (``2015-10-29T23:41:41.123Z``; up to microseconds are
kept). A missing or unparsable attribute makes the message a dead letter (``SourceBatch.errors``). The
subscription is one watermark split (named by the subscription path); the runtime's estimator for it is
bounded out-of-orderness (max event time seen minus ``max_out_of_orderness``), see
`millstream.connectors.pubsub.pubsubio`.

`backlog()` is the number of outstanding messages: received and not yet acknowledged.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime
import heapq
import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Any

import anyio

from millstream.connectors.pubsub.dedup import DedupWindow
from millstream.connectors.pubsub.message import (
    EPOCH,
    PubsubMessage,
    default_subscription_name,
    hash_id,
    parse_event_time,
    parse_subscription,
    parse_topic,
)
from millstream.engine.model.io import Source, SourceBatch, SourceReader
from millstream.engine.translate.beam.hooks import register_beam_io

log = logging.getLogger("millstream.pubsub")

#: Longest a `read()` waits for a message before returning an empty batch (checkpoints pause between reads).
READ_WAIT_S = 0.1
#: Messages asked for per Pull call (the service's maximum).
PULL_MAX = 1000
#: Pull calls in flight at once (threads): one waits for the service while another hands over messages.
PULL_THREADS = 2
#: Deadline of one Pull call; the service holds an empty Pull open for a while before answering.
PULL_TIMEOUT_S = 10.0
#: Ack ids per Acknowledge / ModifyAckDeadline request (the client library's batch size).
ACK_CHUNK = 2500


__all__ = ["PubSubReader", "PubSubSource"]


class PubSubSource(Source):
    """An unbounded Pub/Sub source: an existing subscription, or a topic (a subscription is then created for the
    job; see `default_subscription_name`). Options beyond Beam's are described in
    `millstream.connectors.pubsub.pubsubio`."""

    is_bounded = False
    stamps_event_time = True

    def __init__(
        self,
        topic: str | None = None,
        subscription: str | None = None,
        id_label: str | None = None,
        with_attributes: bool = False,
        timestamp_attribute: str | None = None,
        *,
        dedup_horizon: float = 600.0,
        dedup_max_ids: int = 250_000,
        max_outstanding_messages: int = 100_000,
        lease_extension: float | None = None,
        max_lease_duration: float = 3600.0,
    ) -> None:
        self.topic = topic
        self.subscription = subscription
        self.id_label = id_label
        self.with_attributes = with_attributes
        self.timestamp_attribute = timestamp_attribute
        self.dedup_horizon = dedup_horizon
        self.dedup_max_ids = dedup_max_ids
        self.max_outstanding_messages = max_outstanding_messages
        self.lease_extension = lease_extension
        self.max_lease_duration = max_lease_duration
        self.validate()

    def validate(self) -> None:
        if (self.topic is None) == (self.subscription is None):
            raise ValueError("ReadFromPubSub: exactly one of topic or subscription must be given")
        if self.topic is not None:
            parse_topic(self.topic)
        if self.subscription is not None:
            parse_subscription(self.subscription)
        if self.dedup_horizon < 0:
            raise ValueError(f"dedup_horizon must be >= 0 seconds, got {self.dedup_horizon}")
        if self.dedup_max_ids < 1:
            raise ValueError(f"dedup_max_ids must be >= 1, got {self.dedup_max_ids}")
        if self.max_outstanding_messages < 1:
            raise ValueError(f"max_outstanding_messages must be >= 1, got {self.max_outstanding_messages}")
        if self.lease_extension is not None and not 1 <= self.lease_extension <= 600:
            raise ValueError(
                f"lease_extension must be 1..600 seconds (Pub/Sub's range), got {self.lease_extension}"
            )
        if self.max_lease_duration < 0:
            raise ValueError(f"max_lease_duration must be >= 0 seconds, got {self.max_lease_duration}")

    def create_reader(self, options: Any) -> SourceReader:
        from millstream.engine.model.options import MillstreamOptions

        opts = options.view_as(MillstreamOptions)
        default_sub = None
        if self.topic is not None:
            from millstream.engine.model.options import job_name

            name = job_name(options)
            state_dir = opts.state_dir or os.path.join(".millstream", name)  # the runner's default
            default_sub = default_subscription_name(self.topic, name, state_dir)
        return PubSubReader(self, opts.batch_size, default_sub)

    def display_name(self) -> str:
        return f"PubSub({self.subscription or self.topic})"


class PubSubReader(SourceReader):
    """Reads one subscription: pull threads and a lease thread feed `read()` (see the module docstring)."""

    def __init__(self, source: PubSubSource, batch_size: int, default_subscription: str | None) -> None:
        self.source = source
        self.batch_size = max(1, batch_size)
        self.subscription = source.subscription or default_subscription or ""
        self.split = self.subscription
        self.dedup = DedupWindow(source.dedup_horizon, source.dedup_max_ids)
        self.id_label = source.id_label
        self.ts_attr = source.timestamp_attribute
        self.with_attributes = source.with_attributes
        self.max_lease_s = source.max_lease_duration
        #: The subscription's ack deadline (what a pulled message starts with) and the extension we ask for.
        self.deadline_s = 10.0
        self.lease_s = float(source.lease_extension or 10)
        self.max_outstanding = source.max_outstanding_messages
        self.max_queued = max(4 * self.batch_size, PULL_MAX)
        # Ack ids returned by read() since the last positions() call, and those sealed by it (to ack once durable).
        self.pending: list[str] = []
        self.sealed: list[list[str]] = []
        #: Counters: received (pulled, incl. redeliveries), emitted, duplicates, dead_letters, acked, extended,
        #: nacked, ack_errors.
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "received",
                "emitted",
                "duplicates",
                "dead_letters",
                "acked",
                "extended",
                "nacked",
                "ack_errors",
            ),
            0,
        )
        self._run_base_s = 0.0
        self._opened_at = time.monotonic()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._queue: deque[Any] = deque()
        self._leased: dict[str, float] = {}  # ack id -> when it was received (monotonic)
        self._expiry: list[tuple[float, int, list[str]]] = []  # heap of (lease runs out, seq, ack ids)
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._reading_done = False
        self._fatal: BaseException | None = None
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------------------------
    async def open(self, positions: dict[str, Any] | None) -> None:
        pos = next(iter(positions.values()), None) if positions else None
        if isinstance(pos, dict):
            if pos.get("subscription") and self.source.subscription is None:
                self.subscription = self.split = pos["subscription"]
            self._run_base_s = float(pos.get("clock", 0.0))
            self.dedup.restore(pos.get("dedup", ()))
        self._opened_at = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        await anyio.to_thread.run_sync(self._connect)
        task = asyncio.current_task()
        if task is not None:
            # The runtime does not close readers yet: when the source's task ends (drain, stop, cancel, failure),
            # stop pulling; leases of read messages are kept until the final checkpoint acks them.
            task.add_done_callback(self._on_task_done)
        _LIVE.add(self)
        workers = [(self._pull_loop, f"pull-{i}") for i in range(PULL_THREADS)] + [
            (self._lease_loop, "lease")
        ]
        for target, name in workers:
            t = threading.Thread(target=target, name=f"millstream-pubsub-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def _connect(self) -> None:
        from google.api_core import exceptions as gexc
        from google.cloud import pubsub_v1

        client = pubsub_v1.SubscriberClient()
        topic = self.source.topic
        try:
            if topic is not None:
                try:
                    client.create_subscription(
                        request={"name": self.subscription, "topic": topic}, timeout=60
                    )
                    log.info("created subscription %s on %s", self.subscription, topic)
                except gexc.AlreadyExists:
                    pass
            try:
                sub = client.get_subscription(request={"subscription": self.subscription}, timeout=60)
            except gexc.NotFound:
                raise ValueError(f"subscription {self.subscription} does not exist") from None
        except BaseException:
            client.close()
            raise
        if topic is not None and sub.topic != topic:
            client.close()
            raise ValueError(f"subscription {self.subscription} reads {sub.topic}, not {topic}")
        self.deadline_s = float(sub.ack_deadline_seconds or 10)
        if self.source.lease_extension is None:
            self.lease_s = self.deadline_s
        self._client = client

    def _on_task_done(self, task: Any) -> None:
        self._reading_done = True
        with self._lock:
            self._room.notify_all()

    def _finished(self) -> bool:
        loop = self._loop
        return self._stop.is_set() or loop is None or loop.is_closed()

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.shutdown)

    def shutdown(self) -> None:
        """Stop the threads and nack every message not covered by a durable checkpoint (queued, or read since
        the last one), so Pub/Sub redelivers them at once. Blocking; safe to call more than once."""
        if self._stop.is_set():
            return
        self._reading_done = True
        self._stop.set()
        with self._lock:
            self._room.notify_all()
            nack = (
                [m.ack_id for m in self._queue] + self.pending + [i for batch in self.sealed for i in batch]
            )
            self._queue.clear()
            self.pending, self.sealed = [], []
            for ack_id in nack:
                self._leased.pop(ack_id, None)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2 * READ_WAIT_S)
        if nack and self._client is not None:
            self._modack(nack, 0)
            self._count("nacked", len(nack))
        _LIVE.discard(self)

    # -- the event-loop side -------------------------------------------------------------------------------------
    def _run_now(self) -> float:
        """Seconds of running time (restored from the checkpoint, plus time since open)."""
        return self._run_base_s + (time.monotonic() - self._opened_at)

    async def read(self) -> SourceBatch | None:
        if self._fatal is not None:
            raise self._fatal
        queue = self._queue
        if not queue:
            assert self._wakeup is not None
            self._wakeup.clear()
            if not queue:
                with anyio.move_on_after(READ_WAIT_S):
                    await self._wakeup.wait()
                if self._fatal is not None:
                    raise self._fatal
        with self._lock:
            n = min(len(queue), self.batch_size)
            msgs = [queue.popleft() for _ in range(n)]
            if n:
                self._room.notify_all()
        if not msgs:
            return SourceBatch(self.split, [], [])
        return self._decode(msgs)

    def _decode(self, msgs: list[Any]) -> SourceBatch:
        now = self._run_now()
        dedup = self.dedup
        dedup.expire(now)
        id_label, ts_attr, with_attrs = self.id_label, self.ts_attr, self.with_attributes
        pending = self.pending
        values: list[Any] = []
        stamps: list[int] = []
        errors: list[dict[str, Any]] = []
        nbytes = 0
        duplicates = 0
        for rm in msgs:
            pending.append(rm.ack_id)
            m = rm.message
            attrs = m.attributes
            key = (attrs.get(id_label) or m.message_id) if id_label else m.message_id
            if not dedup.add(hash_id(key), now):
                duplicates += 1
                continue
            data = m.data
            nbytes += len(data)
            if ts_attr is not None:
                raw = attrs.get(ts_attr)
                try:
                    if raw is None:
                        raise ValueError(f"timestamp attribute {ts_attr!r} is missing")
                    ts = parse_event_time(raw)
                except ValueError as e:
                    errors.append(
                        {
                            "subscription": self.subscription,
                            "message_id": m.message_id,
                            "raw": data,
                            "attributes": dict(attrs),
                            "reason": f"bad event time: {e}",
                        }
                    )
                    continue
            else:
                pt = m.publish_time
                ts = pt.seconds * 1_000_000 + pt.nanos // 1000
            stamps.append(ts)
            if with_attrs:
                pt = m.publish_time
                values.append(
                    PubsubMessage(
                        data,
                        dict(attrs),
                        m.message_id,
                        EPOCH + datetime.timedelta(seconds=pt.seconds, microseconds=pt.nanos // 1000),
                        m.ordering_key,
                    )
                )
            else:
                values.append(data)
        st = self.stats
        st["emitted"] += len(values)
        st["duplicates"] += duplicates
        st["dead_letters"] += len(errors)
        return SourceBatch(self.split, values, stamps, errors, nbytes=nbytes)

    def positions(self) -> dict[str, Any]:
        if self.pending:
            self.sealed.append(self.pending)
            self.pending = []
        now = self._run_now()
        self.dedup.expire(now)
        return {self.split: {"subscription": self.subscription, "clock": now, "dedup": self.dedup.snapshot()}}

    def backlog(self) -> int | None:
        return len(self._leased)

    def backlog_per_split(self) -> dict[str, int | None]:
        """The subscription is one split (`SplitBacklogReader`): its leased, unacked messages."""
        return {self.split: len(self._leased)}

    async def on_checkpoint_durable(self, checkpoint_id: int) -> None:
        if not self.sealed:
            return
        ids = [i for batch in self.sealed for i in batch]
        self.sealed = []
        with self._lock:
            for ack_id in ids:
                self._leased.pop(ack_id, None)
            self._room.notify_all()
        await anyio.to_thread.run_sync(self._ack, ids)

    # -- the threads -----------------------------------------------------------------------------------------------
    def _count(self, name: str, n: int) -> None:
        """Add to a counter from any thread."""
        with self._lock:
            self.stats[name] += n

    def _wake_loop(self) -> None:
        loop, wakeup = self._loop, self._wakeup
        if loop is None or wakeup is None:
            return
        try:
            loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:  # the loop closed meanwhile
            self._stop.set()

    def _ack(self, ids: list[str]) -> None:
        for i in range(0, len(ids), ACK_CHUNK):
            chunk = ids[i : i + ACK_CHUNK]
            try:
                self._client.acknowledge(
                    request={"subscription": self.subscription, "ack_ids": chunk}, timeout=30
                )
                self._count("acked", len(chunk))
            except Exception as e:  # the messages come back and are recognised as duplicates
                self._count("ack_errors", len(chunk))
                log.warning("acknowledging %d messages of %s failed: %s", len(chunk), self.subscription, e)

    def _modack(self, ids: list[str], seconds: int) -> bool:
        ok = True
        for i in range(0, len(ids), ACK_CHUNK):
            try:
                # No client-side retries: the lease thread tries again at its next tick, and a nack at shutdown
                # must not hang on a server that is gone.
                self._client.modify_ack_deadline(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": ids[i : i + ACK_CHUNK],
                        "ack_deadline_seconds": seconds,
                    },
                    retry=None,
                    timeout=5,
                )
            except Exception as e:  # an expired lease only means a redelivery, which de-duplication handles
                ok = False
                log.warning(
                    "extending the ack deadline of %d messages of %s failed: %s",
                    len(ids[i : i + ACK_CHUNK]),
                    self.subscription,
                    e,
                )
        return ok

    def _pull_loop(self) -> None:
        from google.api_core import exceptions as gexc

        backoff = 0.1
        while not self._finished() and not self._reading_done:
            with self._lock:
                room = min(self.max_outstanding - len(self._leased), self.max_queued - len(self._queue))
                if room <= 0:
                    self._room.wait(READ_WAIT_S)
                    continue
            asked_at = time.monotonic()
            try:
                resp = self._client.pull(
                    request={"subscription": self.subscription, "max_messages": min(PULL_MAX, room)},
                    retry=None,
                    timeout=PULL_TIMEOUT_S,
                )
            except gexc.DeadlineExceeded:
                continue
            except (gexc.NotFound, gexc.PermissionDenied, gexc.InvalidArgument) as e:
                self._fatal = RuntimeError(
                    f"{self.source.display_name()}: cannot pull {self.subscription}: {e}"
                )
                self._wake_loop()
                return
            except Exception as e:
                log.warning("pulling from %s failed (retrying in %.1f s): %s", self.subscription, backoff, e)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.1
            msgs = list(resp._pb.received_messages)
            if not msgs:
                continue
            ids = [m.ack_id for m in msgs]
            if self._reading_done or self._finished():
                self._modack(ids, 0)  # nobody will read them: let Pub/Sub redeliver them at once
                self._count("nacked", len(ids))
                break
            with self._lock:
                self._queue.extend(msgs)
                leased = self._leased
                for ack_id in ids:
                    leased[ack_id] = asked_at
                # The deadline started when the service handed them out, after `asked_at`: renew by then.
                heapq.heappush(self._expiry, (asked_at + self.deadline_s, next(self._seq), ids))
            self._count("received", len(msgs))
            self._wake_loop()
        # Reading ended (drain, stop, cancel): queued messages will never be read.
        with self._lock:
            rest = [m.ack_id for m in self._queue]
            self._queue.clear()
            for ack_id in rest:
                self._leased.pop(ack_id, None)
        if rest and not self._stop.is_set():
            self._modack(rest, 0)
            self._count("nacked", len(rest))

    def _lease_loop(self) -> None:
        # Renew a lease when less than half of the shorter deadline is left, checking four times as often.
        shortest = min(self.deadline_s, self.lease_s)
        tick = max(0.05, min(shortest / 4, 2.0))
        margin = shortest / 2
        while not self._stop.wait(tick):
            if self._finished() or (self._reading_done and not self._leased):
                return
            now = time.monotonic()
            due: list[str] = []
            with self._lock:
                expiry, leased = self._expiry, self._leased
                while expiry and expiry[0][0] < now + margin:
                    _, _, ids = heapq.heappop(expiry)
                    for ack_id in ids:
                        received = leased.get(ack_id)
                        if received is not None and now - received < self.max_lease_s:
                            due.append(ack_id)
            if not due:
                continue
            if self._modack(due, round(self.lease_s)):
                self._count("extended", len(due))
                runs_out = now + self.lease_s
            else:
                runs_out = now  # try again at the next tick
            with self._lock:
                heapq.heappush(self._expiry, (runs_out, next(self._seq), due))


#: Readers whose threads may still run: stopped at interpreter exit, so no gRPC call outlives the interpreter.
_LIVE: weakref.WeakSet[PubSubReader] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    for reader in list(_LIVE):
        try:
            reader.shutdown()
        except Exception:  # best effort at exit: unacked messages come back after their deadline anyway
            log.debug("shutting down a Pub/Sub reader at exit", exc_info=True)


# Beam's runners use Beam's Pub/Sub IO (connectors/pubsub/beam_io.py; imported lazily).
register_beam_io(PubSubSource, "millstream.connectors.pubsub.beam_io:read_pubsub")
