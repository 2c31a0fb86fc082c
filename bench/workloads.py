"""The registered benchmarks: word count (the Foundation target) and the event-time workloads W1/W2/W3."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench import data, pipelines, reference
from bench.core import Benchmark, ExternalSystem, InProcessSystem, python_argv, register


def _beam(
    task: str, max_events: int, repeat: int, source: str = "create", runner: str = ""
) -> ExternalSystem:
    """Beam running the same pipeline in a child process (default runner unless `runner` is given)."""
    name = f"beam {runner or 'default runner'}" + (", ReadFromText" if source == "text" else "")

    def argv(events: int, rep: int, out: str) -> list[str]:
        args = [
            "--task",
            task,
            "--events",
            str(events),
            "--repeat",
            str(rep),
            "--source",
            source,
            "--out",
            out,
        ]
        if runner:
            args += ["--runner", runner]
        return python_argv("beam_worker", *args)

    return ExternalSystem(name, argv, max_events=max_events, repeat=repeat, is_beam=True)


# -- word count ---------------------------------------------------------------------------------------------


def wordcount_bare(lines: list[str]) -> dict[str, int]:
    """The same counts with a plain dict loop."""
    counts: dict[str, int] = {}
    get = counts.get
    for line in lines:
        for w in line.split():
            counts[w] = get(w, 0) + 1
    return counts


def wordcount_counter(lines: list[str]) -> dict[str, int]:
    """The same counts with `collections.Counter` (its counting loop is in C): a lower bound, for information."""
    counts: Counter[str] = Counter()
    update = counts.update
    for line in lines:
        update(line.split())
    return counts


def wordcount_millstream(lines: list[str]) -> list[tuple[str, int]]:
    """millstream: Create | FlatMap(str.split) | Map((w, 1)) | CombinePerKey(sum), collected in memory."""
    import millstream as ms

    out: list[tuple[str, int]] = []
    with ms.Pipeline() as p:
        pipelines.wordcount(ms, p | "Create" >> ms.Create(lines)) | "Collect" >> ms.Map(out.append)
    return out


def _wordcount_canonical(out: Any) -> dict[str, int]:
    if isinstance(out, dict):
        return dict(out)
    return {w: c for w, c in out}


@register("wordcount")
def wordcount() -> Benchmark:
    """Word count over Zipf-distributed words: the Foundation issue's throughput target."""
    return Benchmark(
        name="wordcount",
        description="lines of 10 Zipf words (10k vocabulary) -> per-word counts",
        unit="words",
        default_events=1_000_000,
        make_input=data.word_lines,
        count=lambda lines: sum(line.count(" ") + 1 for line in lines),
        bare=InProcessSystem("bare Python (dict loop)", "bare", wordcount_bare),
        systems=[
            InProcessSystem("bare Python (Counter.update)", "reference", wordcount_counter),
            InProcessSystem("millstream", "millstream", wordcount_millstream),
        ],
        canonical=_wordcount_canonical,
        # Beam runs the same pipeline (Create: slow, pickles the input into the graph; for information, on a
        # smaller input) and, reading a text file (its fast natural source, the one the ratio uses), at full size
        externals=[_beam("wordcount", 200_000, 1), _beam("wordcount", 1_000_000, 2, source="text")],
        targets={"bare": 0.35, "beam": 10.0},
        user_builtins=("<method 'split' of 'str' objects>",),
    )


# -- event-time workloads ----------------------------------------------------------------------------------


def _windowed_millstream(task: str) -> Any:
    def run(events: list[data.Event]) -> list[reference.Row]:
        import millstream as ms
        from millstream import window

        out: list[reference.Row] = []
        with ms.Pipeline() as p:
            rows = pipelines.windowed(ms, window, task, p | "Create" >> ms.Create(events))
            rows | "Collect" >> ms.Map(out.append)
        return out

    return run


def _windowed(task: str) -> Benchmark:
    variant, description = pipelines.WINDOWED[task]
    return Benchmark(
        name=task,
        description=description + f" ({variant} events, bounded disorder <= 5 s)",
        unit="events",
        # the anchors use 1M; 500k keeps the default run short (--events 1000000 reproduces their size)
        default_events=500_000,
        make_input=lambda n: data.events(variant, n),
        count=len,
        bare=InProcessSystem("bare Python (dict)", "bare", lambda ev: reference.bare(task, ev)),
        systems=[
            InProcessSystem(
                "bare Python + watermark/emission", "reference", lambda ev: reference.bare_stream(task, ev)
            ),
            InProcessSystem(
                "millstream", "millstream", _windowed_millstream(task), failure="not yet supported"
            ),
        ],
        canonical=lambda rows: reference.canonical(task, rows),
        # Beam is slow here (15-45k events/s): a smaller input, measured once, keeps the default run short.
        externals=[_beam(task, 100_000, 1, source="text")],
    )


for _task in pipelines.WINDOWED:
    register(_task)(lambda t=_task: _windowed(t))  # type: ignore[misc]
