"""Kafka -> windowed count -> Kafka on a local broker: throughput, end-to-end latency, exactly-once vs
at-least-once.

    python -P bench/kafka_bench.py                       # starts a broker with tests/infra/kafka/broker.sh
    python -P bench/kafka_bench.py --bootstrap HOST:PORT # or uses yours
    python -P bench/kafka_bench.py --events 400000 --rate 20000 --latency_s 20

Throughput: ``--events`` click records are produced first (``--partitions`` partitions, keyed by user); the
job (a separate process) then reads them all, counts clicks per user in 10 s windows and writes the counts;
the time from the job's first read to its last commit gives events/s (the job's process start and restore are
not counted). Latency: a producer sends ``--rate`` records/s with the wall clock as their timestamp for
``--latency_s`` seconds into 1 s windows (watermark bound 0.2 s); a ``read_committed`` consumer sees each
count and its latency is the time from the window's end until then: the watermark bound and the partitions'
record spacing, plus, with exactly-once, the wait for the checkpoint that commits the transaction
(``--checkpoint_interval``). Each is run exactly-once and at-least-once. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKER_SH = os.path.join(ROOT, "tests", "infra", "kafka", "broker.sh")


# ------------------------------------------------------------------------------------------------------------
# the job (runs in a child process)


def job_main(argv: list[str]) -> None:
    """The benchmarked pipeline: clicks -> fixed windows -> count per user -> Kafka."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--exactly_once", type=int, default=1)
    known, flags = parser.parse_known_args(argv)

    import millstream as beam
    from millstream.io.kafka import ReadFromKafka, WriteToKafka
    from millstream.options.pipeline_options import PipelineOptions
    from millstream.transforms import window

    async def main() -> None:
        p = beam.Pipeline(options=PipelineOptions(["--streaming", *flags]))
        (
            p
            | ReadFromKafka(
                consumer_config={"bootstrap.servers": known.bootstrap, "auto.offset.reset": "earliest"},
                topics=[known.input],
                max_out_of_orderness=known.delay,
                idle_timeout=2.0,
            )
            | beam.Map(lambda kv: (kv[0], 1))
            | beam.WindowInto(window.FixedWindows(known.window))
            | beam.CombinePerKey(sum)
            | beam.Map(lambda kv, w=beam.DoFn.WindowParam: (kv[0], f"{float(w.end)},{kv[1]}"))
            | WriteToKafka(
                producer_config={"bootstrap.servers": known.bootstrap},
                topic=known.output,
                exactly_once=bool(known.exactly_once),
            )
        )
        job = await p.start()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, job.request_drain)
        await job.wait()

    asyncio.run(main())


# ------------------------------------------------------------------------------------------------------------
# the driver


async def create_topics(bootstrap: str, *specs: tuple[str, int]) -> None:
    """Create topics and wait until they have leaders."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, n, 1) for name, n in specs])
        for _ in range(200):
            described = await admin.describe_topics([name for name, _ in specs])
            if all(
                d["error_code"] == 0 and d["partitions"] and all(p["leader"] >= 0 for p in d["partitions"])
                for d in described
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def committed(bootstrap: str, group: str) -> dict[Any, int]:
    """The group's committed offsets (empty while there are none)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {tp: om.offset for tp, om in (await admin.list_consumer_group_offsets(group)).items()}
    except Exception:
        return {}
    finally:
        await admin.close()


def start_job(
    bootstrap: str,
    source: str,
    output: str,
    exactly_once: bool,
    state: str,
    name: str,
    interval: float,
    window: float,
) -> subprocess.Popen[bytes]:
    """The job in a child process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-P",
            os.path.abspath(__file__),
            "job",
            f"--bootstrap={bootstrap}",
            f"--input={source}",
            f"--output={output}",
            f"--exactly_once={int(exactly_once)}",
            f"--window={window}",
            f"--state_dir={state}",
            f"--job_name={name}",
            f"--checkpoint_interval={interval}",
            "--batch_size=4096",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(state + ".log", "wb"),  # noqa: SIM115
    )


async def produce_bulk(bootstrap: str, topic: str, n: int, users: int) -> None:
    """`n` records keyed by user, timestamps spread over n/1000 seconds, as fast as possible."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.partitioner import murmur2

    base = int(time.time() * 1000) - n  # 1 ms of event time per record
    async with AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 << 10
    ) as producer:
        parts = sorted(await producer.partitions_for(topic))
        keys = [f"user{u}".encode() for u in range(users)]
        where = [parts[(murmur2(k) & 0x7FFFFFFF) % len(parts)] for k in keys]
        value = b"x" * 40
        builders = {p: producer.create_batch() for p in parts}
        futures = []
        for i in range(n):
            u = i % users
            b = builders[where[u]]
            if b.append(key=keys[u], value=value, timestamp=base + i, headers=[]) is None:
                futures.append(await producer.send_batch(b, topic, partition=where[u]))
                b = builders[where[u]] = producer.create_batch()
                b.append(key=keys[u], value=value, timestamp=base + i, headers=[])
        for p, b in builders.items():
            futures.append(await producer.send_batch(b, topic, partition=p))
        await producer.flush()
        for f in futures:
            await f


async def throughput(
    bootstrap: str, events: int, partitions: int, exactly_once: bool, interval: float, workdir: str
) -> float:
    """Events per second of the job on a pre-produced backlog."""
    tag = uuid.uuid4().hex[:8]
    source, output = f"bench-in-{tag}", f"bench-out-{tag}"
    await create_topics(bootstrap, (source, partitions), (output, partitions))
    await produce_bulk(bootstrap, source, events, users=1000)
    name = f"bench-{tag}"
    state = os.path.join(workdir, name)
    proc = start_job(bootstrap, source, output, exactly_once, state, name, interval, window=10.0)
    started = None
    try:
        while True:
            offsets = await committed(bootstrap, name)
            done = sum(offsets.values())
            if started is None and done > 0:
                started = time.monotonic(), done
            if done >= events:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"the job exited: {open(state + '.log').read()[-2000:]}")
            await asyncio.sleep(0.02)
        assert started is not None
        t0, n0 = started
        return (events - n0) / max(1e-9, time.monotonic() - t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)


async def latency(
    bootstrap: str,
    rate: int,
    seconds: float,
    partitions: int,
    exactly_once: bool,
    interval: float,
    workdir: str,
) -> list[float]:
    """Seconds from each window's end until its count is readable (read_committed), at `rate` records/s."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    tag = uuid.uuid4().hex[:8]
    source, output = f"lat-in-{tag}", f"lat-out-{tag}"
    await create_topics(bootstrap, (source, partitions), (output, partitions))
    name = f"lat-{tag}"
    state = os.path.join(workdir, name)
    proc = start_job(bootstrap, source, output, exactly_once, state, name, interval, window=1.0)
    consumer = AIOKafkaConsumer(
        output,
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    latencies: list[float] = []
    stop = asyncio.Event()

    async def consume() -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50)
            now = time.time()
            for records in batches.values():
                for r in records:
                    end = float(r.value.split(b",")[0])
                    latencies.append(now - end)

    reader = asyncio.create_task(consume())
    try:
        await asyncio.sleep(2.0)  # let the job start and restore
        async with AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1) as producer:
            t0 = time.monotonic()
            sent = 0
            value = b"x" * 40
            while time.monotonic() - t0 < seconds:
                due = int((time.monotonic() - t0) * rate)
                while sent < due:
                    await producer.send(
                        source, value, key=f"user{sent % 100}".encode(), timestamp_ms=int(time.time() * 1000)
                    )
                    sent += 1
                await asyncio.sleep(0.002)
        await asyncio.sleep(interval + 2.0)
    finally:
        stop.set()
        await reader
        await consumer.stop()
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
    warm = [x for x in latencies if x < 60]  # counts of the backlog before the start are not latencies
    return warm


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(args: argparse.Namespace) -> None:
    """Run the benchmark: start a local broker unless ``--bootstrap`` is given, measure, print the results."""
    bootstrap = args.bootstrap
    broker_dir = None
    if not bootstrap:
        broker_dir = tempfile.mkdtemp(prefix="millstream-kafka-bench-")
        done = subprocess.run(
            ["bash", BROKER_SH, "start", "--dir", broker_dir], capture_output=True, text=True, check=True
        )
        bootstrap = done.stdout.strip().splitlines()[-1]
    workdir = tempfile.mkdtemp(prefix="millstream-kafka-bench-state-")
    results: dict[str, Any] = {
        "events": args.events,
        "partitions": args.partitions,
        "rate": args.rate,
        "checkpoint_interval": args.checkpoint_interval,
    }
    try:
        for eo in (True, False):
            mode = "exactly-once" if eo else "at-least-once"
            rates = [
                await throughput(
                    bootstrap, args.events, args.partitions, eo, args.checkpoint_interval, workdir
                )
                for _ in range(args.repeat)
            ]
            lat = await latency(
                bootstrap, args.rate, args.latency_s, args.partitions, eo, args.checkpoint_interval, workdir
            )
            results[mode] = {
                "throughput_eps": round(max(rates)),
                "throughput_runs": [round(r) for r in rates],
                "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
                "latency_p99_s": round(pct(lat, 0.99), 3) if lat else None,
                "latency_samples": len(lat),
            }
            print(
                f"{mode:14s} throughput {results[mode]['throughput_eps']:>9,d} events/s  "
                f"latency p50 {results[mode]['latency_p50_s']} s  p99 {results[mode]['latency_p99_s']} s  "
                f"({len(lat)} windows)",
                flush=True,
            )
        eo_r, alo_r = results["exactly-once"], results["at-least-once"]
        results["exactly_once_throughput_ratio"] = round(eo_r["throughput_eps"] / alo_r["throughput_eps"], 3)
        print(json.dumps(results, indent=2))
    finally:
        if broker_dir is not None:
            subprocess.run(["bash", BROKER_SH, "stop", "--dir", broker_dir], capture_output=True, check=False)


def main(argv: list[str] | None = None) -> None:
    """Command line: the benchmark, or (`job ...`) the benchmarked job itself."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["job"]:
        job_main(argv[1:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default=os.environ.get("MILLSTREAM_KAFKA_BOOTSTRAP", ""))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=int, default=5_000, help="records/s of the latency run")
    parser.add_argument("--latency_s", type=float, default=15.0)
    parser.add_argument("--checkpoint_interval", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
