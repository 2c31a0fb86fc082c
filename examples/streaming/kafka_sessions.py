"""Per-user click sessions from Kafka to Kafka, exactly once.

Clicks are JSON records ``{"user": "u7", "page": "/cart", "ts": 1767225600.25}`` on a Kafka topic. Each user's
clicks are grouped into **sessions** (a session ends after ``--gap`` seconds without a click, Beam's
`Sessions` windows), and the click count of every session is written as JSON to another topic:

    {"user": "u7", "start": ..., "end": ..., "clicks": 12, "pane": "EARLY", "pane_index": 0, "final": false}

Sessions fire **early** every ``--early_every`` seconds of processing time while they are open (so a
dashboard sees a session grow), **on time** when the watermark passes their end, and late for clicks that
arrive within ``--lateness`` seconds after that; panes accumulate, so the pane with ``"final": true`` (or the
highest ``pane_index``) is the session's count. Event time is the click's ``ts``; the watermark allows clicks
5 s out of order per partition, and a partition without clicks for 10 s stops holding it back.

Exactly once: the session counts of each checkpoint (``--checkpoint_interval``, 2 s here), and the click
offsets they consumed, are committed in one Kafka transaction; read the output with
``isolation.level=read_committed``. Kill the process at any moment (``kill -9``), start it again, and the
output has every pane exactly once. Clicks that are not JSON (or have no ``ts``) go, with the reason in the
record headers, to the dead-letter topic ``<clicks>.dead`` in the same transaction.

Try it on a local broker (Java 17+ and Maven fetch Kafka once):

    bash tests/infra/kafka/broker.sh start                 # prints the bootstrap address, e.g. 127.0.0.1:40123
    python -P examples/streaming/kafka_sessions.py --bootstrap 127.0.0.1:40123 --generate 3000 --live 20
    ...                                                    # panes print as they are emitted; Ctrl-C drains
    python -P examples/streaming/kafka_sessions.py --bootstrap 127.0.0.1:40123 --show
    bash tests/infra/kafka/broker.sh stop

``--generate N`` first produces N clicks of 20 users spread over the last N/10 seconds, ``--live R`` keeps
producing R clicks per second while the job runs, ``--show`` prints the committed sessions (the final pane of
each) and exits. Run two processes with ``--num_shards=2 --shard_id=0`` / ``--shard_id=1`` (and their own
``--state_dir``) to share the work (docs/kafka.md). Other pipeline flags pass through.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import threading
import time
from typing import Any

import millstream as beam
from millstream.io.kafka import ReadFromKafka, WriteToKafka, dead_letter_record
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import trigger, window

USERS = 20
PAGES = ["/", "/search", "/item", "/cart", "/checkout", "/help"]


def session_row(
    kv: tuple[str, int], w: Any = beam.DoFn.WindowParam, pane: Any = beam.DoFn.PaneInfoParam
) -> tuple[str, str]:
    """One pane of a session as a Kafka (key, value): the user, and the count as JSON."""
    user, clicks = kv
    row = {
        "user": user,
        "start": float(w.start),
        "end": float(w.end),
        "clicks": clicks,
        "pane": pane.timing.name,
        "pane_index": pane.index,
        "final": pane.is_last,
    }
    return user, json.dumps(row)


def build(p: Any, args: argparse.Namespace) -> Any:
    """The pipeline; returns the PCollection of emitted (user, JSON) panes."""
    config = {"bootstrap.servers": args.bootstrap, "auto.offset.reset": "earliest"}
    clicks, bad = (
        p
        | "ReadClicks"
        >> ReadFromKafka(
            consumer_config=config,
            topics=[args.clicks],
            key_deserializer=bytes.decode,
            value_deserializer=json.loads,
            timestamp_fn=lambda kv: kv[1]["ts"],
            max_out_of_orderness=5.0,
            idle_timeout=10.0,
        ).with_dead_letters()
    )
    panes = (
        clicks
        | "User" >> beam.Map(lambda kv: (kv[1]["user"], 1))
        | "Sessions"
        >> beam.WindowInto(
            window.Sessions(args.gap),
            trigger=trigger.AfterWatermark(
                early=trigger.AfterProcessingTime(args.early_every), late=trigger.AfterCount(1)
            ),
            accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
            allowed_lateness=args.lateness,
        )
        | "Count" >> beam.CombinePerKey(sum)
        | "Row" >> beam.Map(session_row)
    )
    producer = {"bootstrap.servers": args.bootstrap}
    panes | "WriteSessions" >> WriteToKafka(producer_config=producer, topic=args.sessions)
    (
        bad
        | "DeadLetter" >> beam.Map(dead_letter_record)
        | "WriteDeadLetters" >> WriteToKafka(producer_config=producer, topic=args.clicks + ".dead")
    )
    return panes


# ------------------------------------------------------------------------------------------------------------
# the demo's data and output


async def create_topics(args: argparse.Namespace) -> None:
    """Create the example's topics if they do not exist (3 partitions for clicks and sessions)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=args.bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(t, n, 1)
            for t, n in ((args.clicks, 3), (args.sessions, 3), (args.clicks + ".dead", 1))
            if t not in existing
        ]
        if wanted:
            await admin.create_topics(wanted)
    finally:
        await admin.close()


async def produce_clicks(
    args: argparse.Namespace, n: int, spread_s: float, rate: float = 0.0, stop: asyncio.Event | None = None
) -> None:
    """`n` clicks over the last `spread_s` seconds, then (with `rate`) live clicks until `stop`."""
    from aiokafka import AIOKafkaProducer

    rng = random.Random()
    async with AIOKafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=5) as producer:

        async def send(ts: float) -> None:
            user = f"u{rng.randrange(USERS)}"
            click = {"user": user, "page": rng.choice(PAGES), "ts": round(ts, 3)}
            await producer.send(args.clicks, json.dumps(click).encode(), key=user.encode())

        now = time.time()
        for i in range(n):
            await send(now - spread_s + spread_s * i / max(1, n))
        await producer.flush()
        while rate > 0 and stop is not None and not stop.is_set():
            await send(time.time())
            await asyncio.sleep(1.0 / rate)


async def show(args: argparse.Namespace) -> None:
    """Print the committed sessions: the final (or latest) pane of each."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(args.sessions, p)
            for p in sorted(cluster.partitions_for_topic(args.sessions) or ())
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        latest: dict[tuple[str, float], dict[str, Any]] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(*tps, timeout_ms=500)).values():
                for r in records:
                    row = json.loads(r.value)
                    key = (row["user"], row["start"])
                    if key not in latest or row["pane_index"] >= latest[key]["pane_index"]:
                        latest[key] = row
    finally:
        await consumer.stop()
    for row in sorted(latest.values(), key=lambda r: (r["start"], r["user"])):
        print(
            f"{row['user']:>4}  {time.strftime('%H:%M:%S', time.localtime(row['start']))}"
            f"-{time.strftime('%H:%M:%S', time.localtime(row['end']))}  clicks={row['clicks']:<4} "
            f"{'final' if row['final'] else row['pane'].lower()}"
        )
    print(f"{len(latest)} sessions", file=sys.stderr)


def run(argv: list[str] | None = None) -> None:
    """Run the sessions job (or --show its output)."""
    parser = argparse.ArgumentParser(description="Per-user click sessions from Kafka to Kafka, exactly once.")
    parser.add_argument("--bootstrap", default=os.environ.get("MILLSTREAM_KAFKA_BOOTSTRAP", "localhost:9092"))
    parser.add_argument("--clicks", default="clicks", help="input topic")
    parser.add_argument("--sessions", default="sessions", help="output topic")
    parser.add_argument("--gap", type=float, default=30.0, help="seconds without a click that end a session")
    parser.add_argument(
        "--early_every", type=float, default=5.0, help="early panes every N s of processing time"
    )
    parser.add_argument("--lateness", type=float, default=60.0, help="allowed lateness in seconds")
    parser.add_argument("--generate", type=int, default=0, help="first produce N clicks over the last N/10 s")
    parser.add_argument("--live", type=float, default=0.0, help="keep producing N clicks/s while running")
    parser.add_argument("--show", action="store_true", help="print the committed sessions and exit")
    args, pipeline_args = parser.parse_known_args(argv)
    if args.show:
        asyncio.run(show(args))
        return
    flags = ["--streaming", "--job_name=kafka-sessions", "--checkpoint_interval=2", *pipeline_args]
    options = PipelineOptions(flags)

    async def main() -> None:
        await create_topics(args)
        if args.generate:
            await produce_clicks(args, args.generate, args.generate / 10)
        p = beam.Pipeline(options=options)
        panes = build(p, args)
        job = await p.start()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        live = loop.create_task(produce_clicks(args, 0, 0, args.live, stop)) if args.live else None

        async def print_panes() -> None:
            async for _, value in job.tap(panes):
                row = json.loads(value)
                print(
                    f"{row['user']:>4} session from {time.strftime('%H:%M:%S', time.localtime(row['start']))}: "
                    f"{row['clicks']:<4} clicks  ({row['pane'].lower()} pane #{row['pane_index']})",
                    flush=True,
                )

        printer = loop.create_task(print_panes())
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            stop.set()
            print(
                "\ndraining: every open session fires, then a final checkpoint commits (signal again to "
                "cancel)",
                file=sys.stderr,
            )
            loop.create_task(job.drain() if signals == 1 else job.cancel())

        handled = threading.current_thread() is threading.main_thread()
        for sig in (signal.SIGINT, signal.SIGTERM) if handled else ():
            loop.add_signal_handler(sig, on_signal)
        try:
            await job.wait()
        finally:
            stop.set()
            for sig in (signal.SIGINT, signal.SIGTERM) if handled else ():
                loop.remove_signal_handler(sig)
            if live is not None:
                await asyncio.wait({live}, timeout=2.0)
            await asyncio.wait({printer}, timeout=1.0)
            printer.cancel()

    asyncio.run(main())


if __name__ == "__main__":
    run()
