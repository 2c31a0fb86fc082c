"""Kafka configuration shared by the source and the sink: shards of a job, client keyword arguments from
Beam/Java-style config, and the configuration error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from millstream.engine.model.options import PipelineOptions

_CONSUMER_RESERVED = {
    "enable_auto_commit": "offsets are committed with checkpoints",
    "key_deserializer": "use key_deserializer=",
    "value_deserializer": "use value_deserializer=",
}
_PRODUCER_RESERVED = {
    "enable_idempotence": "exactly_once= chooses",
    "key_serializer": "use key_serializer=",
    "value_serializer": "use value_serializer=",
}


class KafkaConfigError(ValueError):
    """A Kafka source or sink is configured wrongly; the message is one line for the user."""


class KafkaOptions(PipelineOptions):
    """Scale-out: which shard of the job this process is (``--shard_id``) out of ``--num_shards``."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--shard_id",
            type=int,
            default=0,
            help="this process's shard of the job: it reads Kafka partitions p with p %% num_shards == shard_id",
        )
        parser.add_argument(
            "--num_shards", type=int, default=1, help="how many processes share the job's Kafka partitions"
        )


def shard_of(options: Any) -> tuple[int, int]:
    """``(shard_id, num_shards)`` from the pipeline options, checked."""
    view = options.view_as(KafkaOptions) if options is not None else None
    shard = int(getattr(view, "shard_id", 0) or 0) if view is not None else 0
    num = int(getattr(view, "num_shards", 1) or 1) if view is not None else 1
    if num < 1 or not 0 <= shard < num:
        raise KafkaConfigError(f"--shard_id={shard} --num_shards={num}: need 0 <= shard_id < num_shards")
    return shard, num


def job_name_of(options: Any) -> str:
    """The job's name as the runner computes it (--job_name, else the main script's stem)."""
    from millstream.engine.model.options import job_name

    return job_name(options)


def cluster_key(bootstrap_servers: str | Sequence[str]) -> str:
    """A canonical name of a cluster: its bootstrap addresses, sorted."""
    items = bootstrap_servers.split(",") if isinstance(bootstrap_servers, str) else list(bootstrap_servers)
    return ",".join(sorted(s.strip() for s in items if s.strip()))


def _java_to_python(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Beam/Java style keys (``group.id``) as aiokafka's keyword names (``group_id``); digit strings as ints."""
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = str(key).replace(".", "_").replace("-", "_")
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        elif isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        out[name] = value
    return out


def _accepted(cls: Any) -> set[str]:
    import inspect

    return {p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "loop", "topics")}


def _check_keys(kind: str, given: dict[str, Any], cls: Any, reserved: Mapping[str, str]) -> None:
    accepted = _accepted(cls)
    for name in given:
        if name in reserved:
            raise KafkaConfigError(f"{kind}: '{name}' is set by millstream ({reserved[name]}); remove it")
        if name not in accepted:
            import difflib

            close = difflib.get_close_matches(name, sorted(accepted), n=1)
            hint = f" (did you mean {close[0].replace('_', '.')}?)" if close else ""
            raise KafkaConfigError(f"{kind}: unknown setting '{name}'{hint}")


def consumer_kwargs(config: Mapping[str, Any] | None, bootstrap_servers: str | None) -> dict[str, Any]:
    """aiokafka consumer keyword arguments from a Beam-style ``consumer_config`` (validated)."""
    from aiokafka import AIOKafkaConsumer

    kwargs = _java_to_python(config)
    _check_keys("consumer_config", kwargs, AIOKafkaConsumer, _CONSUMER_RESERVED)
    if bootstrap_servers:
        kwargs["bootstrap_servers"] = bootstrap_servers
    if not kwargs.get("bootstrap_servers"):
        raise KafkaConfigError("Kafka needs bootstrap_servers (or 'bootstrap.servers' in the config)")
    level = kwargs.setdefault("isolation_level", "read_committed")
    if level not in ("read_committed", "read_uncommitted"):
        raise KafkaConfigError(f"isolation.level must be read_committed or read_uncommitted, got {level!r}")
    reset = kwargs.setdefault("auto_offset_reset", "latest")
    if reset not in ("earliest", "latest", "none"):
        raise KafkaConfigError(f"auto.offset.reset must be earliest, latest or none, got {reset!r}")
    return kwargs


def producer_kwargs(config: Mapping[str, Any] | None, bootstrap_servers: str | None) -> dict[str, Any]:
    """aiokafka producer keyword arguments from a Beam-style ``producer_config`` (validated)."""
    from aiokafka import AIOKafkaProducer

    kwargs = _java_to_python(config)
    # Java's names for the batch settings.
    if "batch_size" in kwargs:
        kwargs["max_batch_size"] = kwargs.pop("batch_size")
    _check_keys("producer_config", kwargs, AIOKafkaProducer, _PRODUCER_RESERVED)
    if bootstrap_servers:
        kwargs["bootstrap_servers"] = bootstrap_servers
    if not kwargs.get("bootstrap_servers"):
        raise KafkaConfigError("Kafka needs bootstrap_servers (or 'bootstrap.servers' in the config)")
    return kwargs
