"""Operating an exactly-once Kafka job against the real broker: a broker restart under a running job, two
shards of one job with one of them killed, and zombies (an old instance of a shard) fenced by a new one."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from typing import Any

import pytest

from .conftest import KafkaBroker, TopicFactory
from .test_kafka_exactly_once import consumed_all, produce_tracked, progressed, txn_seq
from .test_kafka_jobs import expected_sums, group_offsets, kafka_job, make_events, output_rows, read_all
from support.kill9 import KilledJob

pytestmark = pytest.mark.kafka

FLAGS = ("--checkpoint_interval=0.2", "--batch_size=200")


async def _feed(
    bootstrap: str, topic: str, events: list[dict[str, Any]], chunk: int = 500, pause: float = 0.2
) -> None:
    for i in range(0, len(events), chunk):
        await produce_tracked(bootstrap, topic, events[i : i + chunk])
        await asyncio.sleep(pause)


async def test_broker_restart_mid_run(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any
) -> None:
    """The broker crashes (SIGKILL) and comes back while the job reads, writes and commits: the job rides it
    out without exiting or any manual step, and the output is exactly once."""
    bootstrap = kafka_broker.bootstrap
    topics = (await kafka_topic(2), await kafka_topic(2), await kafka_topic(1))
    events = make_events(6000, seed=21)
    state = str(tmp_path / "state")
    name = f"restart-{time.monotonic_ns()}"
    await produce_tracked(bootstrap, topics[0], events[:3000])
    with kafka_job(bootstrap, topics, state, *FLAGS, job_name=name) as job:
        proc = job.start()
        await job.until(lambda: progressed(bootstrap, name, 0), "a commit", proc)
        await kafka_broker.arestart(kill=True)
        assert proc.poll() is None, f"the job exited during the broker restart:\n{job.tail(proc)}"
        before = txn_seq(await group_offsets(bootstrap, name))
        await produce_tracked(bootstrap, topics[0], events[3000:])
        await job.until(lambda: progressed(bootstrap, name, before), "a commit after the restart", proc)
        await job.until(lambda: consumed_all(bootstrap, name, topics[0]), "all input consumed", proc)
        await job.adrain(proc)
    assert sorted(await output_rows(bootstrap, topics[1])) == expected_sums(events)


@pytest.mark.crash
async def test_two_shards_one_killed(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any
) -> None:
    """Two processes of one job share the topic's partitions as shards 0 and 1 of 2. Shard 0 is SIGKILLed
    mid-run; shard 1 goes on committing meanwhile; shard 0 restarts from its state directory. Every key's
    window results appear exactly once."""
    bootstrap = kafka_broker.bootstrap
    topics = (await kafka_topic(4), await kafka_topic(3), await kafka_topic(1))
    events = make_events(9000, seed=31)
    name = f"shards-{time.monotonic_ns()}"
    shards: list[KilledJob] = [
        kafka_job(
            bootstrap,
            topics,
            str(tmp_path / f"shard{shard}"),
            *FLAGS,
            "--num_shards=2",
            f"--shard_id={shard}",
            job_name=name,
        )
        for shard in (0, 1)
    ]

    def shard_seq(offsets: dict[Any, Any], shard: int) -> int:
        return txn_seq({tp: om for tp, om in offsets.items() if tp.partition % 2 == shard})

    async def committed_by_owner() -> set[int]:
        """The partitions whose committed offsets were written by their own shard's transactions."""
        return {
            tp.partition
            for tp, om in (await group_offsets(bootstrap, name)).items()
            if f".shard-{tp.partition % 2} " in (om.metadata or "")
        }

    async def both_committed() -> bool:
        return await committed_by_owner() == {0, 1, 2, 3}

    feeder = asyncio.create_task(_feed(bootstrap, topics[0], events))
    try:
        with shards[0], shards[1]:
            procs = [shards[0].start(), shards[1].start()]
            await shards[0].until(both_committed, "both shards commit their partitions", procs[0])
            running = shard_seq(await group_offsets(bootstrap, name), 0)

            async def shard0_progressed() -> bool:
                return shard_seq(await group_offsets(bootstrap, name), 0) > running

            # killed mid-stream: after one more of its own commits
            await shards[0].until(shard0_progressed, "shard 0 commits again", procs[0])
            assert shards[0].kill(procs[0]), f"shard 0 ended before the kill: {shards[0].tail(procs[0])}"
            # While shard 0 is down its partitions wait for it, and shard 1 keeps committing its own.
            down = shard_seq(await group_offsets(bootstrap, name), 1)

            async def shard1_progressed() -> bool:
                return shard_seq(await group_offsets(bootstrap, name), 1) > down + 2

            await shards[1].until(shard1_progressed, "shard 1 commits while shard 0 is down", procs[1])
            assert await committed_by_owner() == {0, 1, 2, 3}, (
                "each shard commits the offsets of its own partitions"
            )
            procs[0] = shards[0].start()
            await feeder
            await shards[0].until(
                lambda: consumed_all(bootstrap, name, topics[0]), "all input consumed", procs[0]
            )
            for shard, proc in zip(shards, procs):
                await shard.adrain(proc)
    finally:
        feeder.cancel()
    rows = await output_rows(bootstrap, topics[1])
    assert len(rows) == len({(k, s) for k, s, _ in rows}), "a (key, window) result was written twice"
    assert sorted(rows) == expected_sums(events)


async def test_zombie_producer_writes_nothing_visible(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory
) -> None:
    """An instance of a shard pauses with a transaction open; a new instance takes over (fencing it) and
    commits; the old one wakes up, fails to commit, and none of its records becomes visible."""
    from millstream.connectors.kafka.sink import KafkaSink
    from millstream.connectors.kafka.transaction import KafkaFencedError
    from millstream.options.pipeline_options import PipelineOptions

    bootstrap = kafka_broker.bootstrap
    topic = await kafka_topic(2)
    job = f"zombie-{time.monotonic_ns()}"

    def writer() -> Any:
        sink = KafkaSink(topic=topic, bootstrap_servers=bootstrap)
        return sink.create_writer(PipelineOptions([f"--job_name={job}", "--checkpoint_interval=1"]), object())

    old = writer()
    assert await old.committed_checkpoint() is None
    await old.recover(None, None)
    await old.write([(b"k", b"old-1"), (b"k", b"old-2")])
    await old.prepare(1)
    # The old instance stalls here (GC pause, SIGSTOP, network partition); a new one takes over.
    new = writer()
    assert await new.committed_checkpoint() == 0  # the old instance's claim of a fresh state
    await new.recover(None, None)
    await new.write([(b"k", b"new-1")])
    record = await new.prepare(1)
    await new.commit(1, record)
    with pytest.raises(KafkaFencedError, match="took over"):
        await old.commit(1, {})
    await old.close()
    await new.close()
    assert [r.value for r in await read_all(bootstrap, topic, settled=True)] == [b"new-1"]


async def test_zombie_process_is_fenced(
    kafka_broker: KafkaBroker, kafka_topic: TopicFactory, tmp_path: Any
) -> None:
    """A running job is frozen (SIGSTOP); a replacement starts from a copy of its state directory with the same
    shard; the frozen one is thawed: it is fenced and stops, the replacement finishes, exactly once."""
    bootstrap = kafka_broker.bootstrap
    topics = (await kafka_topic(2), await kafka_topic(2), await kafka_topic(1))
    events = make_events(6000, seed=41)
    name = f"zproc-{time.monotonic_ns()}"
    state_old, state_new = str(tmp_path / "old"), str(tmp_path / "new")
    await produce_tracked(bootstrap, topics[0], events[:2000])
    with (
        kafka_job(bootstrap, topics, state_old, *FLAGS, job_name=name) as zombie,
        kafka_job(bootstrap, topics, state_new, *FLAGS, job_name=name) as replacement,
    ):
        old = zombie.start()
        await zombie.until(lambda: progressed(bootstrap, name, 0), "a commit", old)
        running = txn_seq(await group_offsets(bootstrap, name))
        feeder = asyncio.create_task(_feed(bootstrap, topics[0], events[2000:4000], chunk=250, pause=0.05))
        # frozen mid-stream: after it committed some of the new input
        await zombie.until(lambda: progressed(bootstrap, name, running), "a commit of new input", old)
        old.send_signal(signal.SIGSTOP)
        await feeder
        shutil.copytree(state_old, state_new)
        before = txn_seq(await group_offsets(bootstrap, name))
        new = replacement.start()
        await replacement.until(lambda: progressed(bootstrap, name, before), "the replacement commits", new)
        old.send_signal(signal.SIGCONT)
        await produce_tracked(bootstrap, topics[0], events[4000:])
        code = await zombie.aexit_code(old)
        assert code == 1, f"the zombie exited with {code}:\n{zombie.tail(old)}"
        assert "KafkaFencedError" in zombie.log()
        await replacement.until(lambda: consumed_all(bootstrap, name, topics[0]), "all input consumed", new)
        await replacement.adrain(new)
    rows = await output_rows(bootstrap, topics[1])
    assert sorted(rows) == expected_sums(events)
