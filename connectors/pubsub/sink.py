"""The Pub/Sub sink: each checkpoint's messages are published after the checkpoint is durable.

Two-phase, like the file sink (`connectors.files.sink`):

* ``write`` buffers the epoch's messages in memory;
* ``prepare(checkpoint_id)`` spills them to ``<state_dir>.pubsub/<sink>/<checkpoint id>-<run>.msgpack``
  (fsynced) and returns that file's name as the pending-commit record stored in the checkpoint;
* ``commit(checkpoint_id, record)`` publishes the file's messages, waits for every publish future, and renames
  the file to ``.done`` (the markers of the last `KEEP_DONE` commits are kept, so repeating one is a no-op).
  A commit interrupted by a crash is repeated by ``recover`` after the restart, from the same file.

Pub/Sub publishing is at-least-once: a repeated commit publishes messages that may already have been published
(and the client itself may retry a publish whose answer was lost). So every message carries a deterministic id
attribute (``id_label``, default ``millstream_id``; a value the element already has is kept): ``<run>-<checkpoint
id>-<index in the epoch>``, where ``<run>`` is random per process run and recorded with the epoch, so a repeated
commit reproduces the same ids and output of different runs never collides (not even after ``--from_scratch``
restarts checkpoint ids). Consumers that de-duplicate by that attribute (for example a millstream
``ReadFromPubSub(id_label="millstream_id")``) see every message exactly once: effectively-once, not
exactly-once delivery. One more case duplicates output: when the newest checkpoint is unreadable and recovery
falls back to an older one, output published by the lost checkpoint is recomputed and published again under
new ids (files can be deleted; published messages cannot).

The environment variable ``MILLSTREAM_PUBSUB_CRASH_AFTER_PUBLISH=<n>`` kills the process with SIGKILL after the
n-th commit in this process has published its messages but before it is marked done (the kill -9 tests use it
to force a repeated commit).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import signal
import weakref
from typing import Any

import anyio
import msgpack

from millstream.connectors.files.filesystem import fsync_dir
from millstream.connectors.pubsub.message import PubsubMessage, parse_topic
from millstream.engine.model.io import Sink, SinkWriter
from millstream.engine.model.timestamp import MAX_MICROS, MIN_MICROS
from millstream.engine.translate.beam.hooks import register_beam_io
from millstream.state.encryption import StoreCipher

log = logging.getLogger("millstream.pubsub")

#: The id attribute of published messages when `id_label` is not given.
DEFAULT_ID_ATTRIBUTE = "millstream_id"
#: How long a commit waits for one publish to be confirmed (the client retries meanwhile).
PUBLISH_TIMEOUT_S = 300.0
#: Commit markers kept (more than the checkpoints the state store retains).
KEEP_DONE = 5
_SPILL = re.compile(r"(\d{8,})-([0-9a-f]+)\.(msgpack|done)$")

__all__ = ["DEFAULT_ID_ATTRIBUTE", "PubSubSink", "PubSubSinkWriter", "publish_record"]


def publish_record(
    element: Any, micros: int, with_attributes: bool, timestamp_attribute: str | None, ordering: bool
) -> tuple[bytes, dict[str, str] | None, str]:
    """An element as ``(data, attributes or None, ordering key)``, checked against Pub/Sub's limits.

    With `with_attributes` the element must be a `PubsubMessage`; otherwise bytes (str is encoded as UTF-8).
    `timestamp_attribute` gets the element's event time in milliseconds since the epoch.
    """
    key = ""
    if with_attributes:
        if not isinstance(element, PubsubMessage):
            raise TypeError(
                f"WriteToPubSub(with_attributes=True) needs PubsubMessage elements, got "
                f"{type(element).__name__}: {element!r:.200}"
            )
        data: Any = element.data if element.data is not None else b""
        attrs = dict(element.attributes) if element.attributes else {}
        if ordering:
            key = element.ordering_key or ""
    else:
        data, attrs = element, {}
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(
            f"WriteToPubSub needs bytes (or str) message data, got {type(data).__name__}: {data!r:.200}"
        )
    if timestamp_attribute is not None and MIN_MICROS < micros < MAX_MICROS:
        attrs[timestamp_attribute] = str(micros // 1000)
    if len(data) > 10_000_000:
        raise ValueError("A pubsub message data field must not exceed 10MB")
    if len(attrs) > 100:
        raise ValueError("A pubsub message must not have more than 100 attributes.")
    for k, v in attrs.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"Pub/Sub attributes must be str -> str, got {k!r}: {v!r:.100}")
        if len(k.encode()) > 256:
            raise ValueError("A pubsub message attribute key must not exceed 256 bytes.")
        if len(v.encode()) > 1024:
            raise ValueError("A pubsub message attribute value must not exceed 1024 bytes")
    if len(key.encode()) > 1024:
        raise ValueError("A pubsub message ordering key must not exceed 1024 bytes.")
    return data, attrs or None, key


#: Sinks per job, in plan order: the n-th Pub/Sub sink of a job spills into its own folder.
_ORDINALS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


class PubSubSink(Sink):
    """Publishes records made by `publish_record` to `topic`, exactly once per committed checkpoint (module doc)."""

    def __init__(
        self, topic: str, id_label: str | None = None, publish_with_ordering_key: bool = False
    ) -> None:
        parse_topic(topic)
        self.topic = topic
        self.id_attribute = id_label or DEFAULT_ID_ATTRIBUTE
        self.ordering = publish_with_ordering_key

    def validate(self) -> None:
        parse_topic(self.topic)

    def create_writer(self, options: Any, job: Any) -> SinkWriter:
        try:
            ordinal = _ORDINALS.get(job, 0)
            _ORDINALS[job] = ordinal + 1
        except TypeError:  # a job object that cannot be weakly referenced
            ordinal = 0
        tag = f"{hashlib.sha1(self.topic.encode()).hexdigest()[:8]}-{ordinal}"
        return PubSubSinkWriter(self, job, tag)

    def display_name(self) -> str:
        return f"PubSub({self.topic})"


class PubSubSinkWriter(SinkWriter):
    """Buffers an epoch, spills it at `prepare`, publishes it at `commit` (see the module docstring)."""

    def __init__(self, sink: PubSubSink, job: Any, tag: str) -> None:
        self.sink = sink
        self.job = job
        self.tag = tag
        self.run = secrets.token_hex(6)
        self.buffer: list[Any] = []
        self.publisher: Any = None
        self.commits = 0
        #: Messages published by this writer (a repeated commit counts again).
        self.published = 0

    def root(self) -> str:
        """The folder holding every Pub/Sub sink's spilled epochs of this job (beside the state directory)."""
        state_dir = getattr(self.job, "state_dir", None) or os.path.join(
            ".millstream", getattr(self.job, "job_name", "millstream")
        )
        return os.path.abspath(state_dir) + ".pubsub"

    def folder(self) -> str:
        """This sink's folder."""
        return os.path.join(self.root(), self.tag)

    async def open(self) -> None:
        os.makedirs(self.folder(), exist_ok=True)

    async def recover(self, checkpoint_id: int | None, record: Any) -> None:
        folder = self.folder()
        os.makedirs(folder, exist_ok=True)
        if checkpoint_id is not None and record:
            await self.commit(checkpoint_id, record)
        for name in os.listdir(folder):
            m = _SPILL.match(name)
            if m is None or m.group(3) == "done":
                continue  # committed epochs: pruned by later commits
            # An epoch written after the restored checkpoint (never durable), or one no checkpoint refers to.
            if checkpoint_id is not None and int(m.group(1)) <= checkpoint_id:
                log.warning(
                    "%s: discarding %s, an epoch no checkpoint refers to", self.sink.display_name(), name
                )
            os.remove(os.path.join(folder, name))

    async def write(self, values: list[Any]) -> None:
        self.buffer.extend(values)

    async def prepare(self, checkpoint_id: int) -> Any:
        if not self.buffer:
            return None
        values, self.buffer = self.buffer, []
        folder = self.folder()
        name = f"{checkpoint_id:08d}-{self.run}.msgpack"
        await anyio.to_thread.run_sync(self._spill, folder, name, values, self._cipher())
        return {"file": os.path.join(self.tag, name), "run": self.run, "count": len(values)}

    def _cipher(self) -> StoreCipher | None:
        """The job's state cipher when its state is encrypted: spilled epochs hold user data."""
        cipher = getattr(self.job, "state_cipher", None)
        return cipher if isinstance(cipher, StoreCipher) else None

    @staticmethod
    def _spill(folder: str, name: str, values: list[Any], cipher: StoreCipher | None = None) -> None:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        data = msgpack.packb(values, use_bin_type=True)
        if cipher is not None:
            data = cipher.seal(name.encode(), data)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(folder)

    async def commit(self, checkpoint_id: int, record: Any) -> None:
        if not record:
            return
        await anyio.to_thread.run_sync(self._commit, checkpoint_id, record)

    def _commit(self, checkpoint_id: int, record: dict[str, Any]) -> None:
        path = os.path.join(self.root(), record["file"])
        done = path.removesuffix(".msgpack") + ".done"
        if not os.path.exists(path):
            if os.path.exists(done):
                return  # committed before
            raise FileNotFoundError(
                f"cannot commit checkpoint {checkpoint_id} to {self.sink.topic}: "
                f"neither {path} nor {done} exists"
            )
        with open(path, "rb") as f:
            data = f.read()
        cipher = self._cipher()
        if cipher is not None:
            data = cipher.open(os.path.basename(path).encode(), data, path)
        values = msgpack.unpackb(data, raw=False, use_list=False)
        self._publish(checkpoint_id, record["run"], values)
        self.commits += 1
        crash = os.environ.get("MILLSTREAM_PUBSUB_CRASH_AFTER_PUBLISH")
        if crash and int(crash) == self.commits:
            log.error("MILLSTREAM_PUBSUB_CRASH_AFTER_PUBLISH=%s: killing the process", crash)
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace(path, done)
        # Keep the markers of the last few commits: recovery may repeat a commit of one of the retained
        # checkpoints (a crash before the next one, or a fallback when the newest is unreadable).
        folder = os.path.dirname(path)
        marks = sorted(
            (int(m.group(1)), name)
            for name in os.listdir(folder)
            if (m := _SPILL.match(name)) is not None and m.group(3) == "done"
        )
        for _, name in marks[:-KEEP_DONE]:
            os.remove(os.path.join(folder, name))

    def _client(self) -> Any:
        if self.publisher is None:
            from google.cloud import pubsub_v1

            self.publisher = pubsub_v1.PublisherClient(
                batch_settings=pubsub_v1.types.BatchSettings(
                    max_messages=1000, max_bytes=5_000_000, max_latency=0.01
                ),
                publisher_options=pubsub_v1.types.PublisherOptions(
                    enable_message_ordering=self.sink.ordering
                ),
            )
        return self.publisher

    def _publish(self, checkpoint_id: int, run: str, values: Any) -> None:
        client = self._client()
        topic, id_attr = self.sink.topic, self.sink.id_attribute
        futures = []
        for i, (data, attrs, key) in enumerate(values):
            attributes = dict(attrs) if attrs else {}
            attributes.setdefault(id_attr, f"{run}-{checkpoint_id}-{i}")
            futures.append(client.publish(topic, data, ordering_key=key or "", **attributes))
        for fut in futures:
            fut.result(timeout=PUBLISH_TIMEOUT_S)
        self.published += len(futures)

    async def abort(self) -> None:
        self.buffer = []

    async def close(self) -> None:
        self.buffer = []
        if self.publisher is not None:
            publisher, self.publisher = self.publisher, None
            await anyio.to_thread.run_sync(publisher.stop)


# Beam's runners use Beam's Pub/Sub IO (connectors/pubsub/beam_io.py; imported lazily).
register_beam_io(PubSubSink, "millstream.connectors.pubsub.beam_io:write_pubsub")
