"""Pub/Sub's message type (Beam's `PubsubMessage`), resource names, and event time from attributes."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from typing import Any

_PROJECT_RE = re.compile(r"[a-z][-a-z0-9:.]{4,61}[a-z0-9]")
_TOPIC_RE = re.compile(r"projects/([^/]+)/topics/(.+)")
_SUBSCRIPTION_RE = re.compile(r"projects/([^/]+)/subscriptions/(.+)")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class PubsubMessage:
    """A Pub/Sub message as Beam represents it (``apache_beam.io.gcp.pubsub.PubsubMessage``).

    ``data`` (bytes), ``attributes`` (dict of str), and for received messages ``message_id`` and
    ``publish_time`` (an aware UTC datetime); ``ordering_key`` is "" when unset. Equality and hashing use
    data and attributes only, as in Beam.
    """

    __slots__ = ("data", "attributes", "message_id", "publish_time", "ordering_key")

    def __init__(
        self,
        data: bytes | None,
        attributes: dict[str, str] | None,
        message_id: str | None = None,
        publish_time: datetime.datetime | None = None,
        ordering_key: str = "",
    ) -> None:
        if data is None and not attributes:
            raise ValueError(f"Either data ({data!r}) or attributes ({attributes!r}) must be set.")
        self.data = data
        self.attributes = attributes
        self.message_id = message_id
        self.publish_time = publish_time
        self.ordering_key = ordering_key

    def __hash__(self) -> int:
        return hash((self.data, frozenset((self.attributes or {}).items())))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PubsubMessage)
            and self.data == other.data
            and self.attributes == other.attributes
        )

    def __repr__(self) -> str:
        return f"PubsubMessage({self.data!r}, {self.attributes!r})"

    def __reduce__(self) -> Any:
        return (
            PubsubMessage,
            (self.data, self.attributes, self.message_id, self.publish_time, self.ordering_key),
        )


def _check_project(project: str) -> None:
    if not _PROJECT_RE.fullmatch(project):
        raise ValueError(f"Invalid PubSub project name: {project!r}.")


def parse_topic(full_topic: str) -> tuple[str, str]:
    """(project, topic name) of ``projects/<project>/topics/<topic>``; ValueError otherwise (Beam's rule)."""
    m = _TOPIC_RE.fullmatch(full_topic or "")
    if not m:
        raise ValueError(
            f'PubSub topic must be in the form "projects/<project>/topics/<topic>" (got {full_topic!r}).'
        )
    _check_project(m.group(1))
    return m.group(1), m.group(2)


def parse_subscription(full_subscription: str) -> tuple[str, str]:
    """(project, name) of ``projects/<project>/subscriptions/<name>``; ValueError otherwise (Beam's rule)."""
    m = _SUBSCRIPTION_RE.fullmatch(full_subscription or "")
    if not m:
        raise ValueError(
            'PubSub subscription must be in the form "projects/<project>/subscriptions/<subscription>" '
            f"(got {full_subscription!r})."
        )
    _check_project(m.group(1))
    return m.group(1), m.group(2)


def parse_event_time(text: str) -> int:
    """An event-time attribute as microseconds since the epoch: an integer is milliseconds since the epoch,
    anything else must be RFC 3339 with a UTC offset (``2015-10-29T23:41:41.123Z``). Raises ValueError."""
    s = text.strip()
    if s.lstrip("-").isdigit():
        return int(s) * 1000
    try:
        dt = datetime.datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"not milliseconds since the epoch nor an RFC 3339 timestamp: {text!r}") from None
    if dt.tzinfo is None:
        raise ValueError(f"RFC 3339 timestamp without a UTC offset: {text!r}")
    return (dt - EPOCH) // datetime.timedelta(microseconds=1)


def hash_id(key: str) -> int:
    """The 64-bit (signed) hash a message id or id attribute is de-duplicated by; stable across processes."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def default_subscription_name(topic: str, job_name: str, state_dir: str) -> str:
    """The subscription a topic read creates: named after the job and stable across its restarts.

    It is derived from the job's name and state directory, so a restarted job finds it again (with the messages
    published while the job was down) and two jobs never share one.
    """
    project, _ = parse_topic(topic)
    slug = re.sub(r"[^A-Za-z0-9_.~+-]", "-", job_name)[:40].strip("-") or "job"
    digest = hashlib.sha1(f"{topic}|{os.path.abspath(state_dir)}".encode()).hexdigest()[:16]
    return f"projects/{project}/subscriptions/millstream-{slug}-{digest}"
