"""ReadFromText / WriteToText: globs, compression, byte-range splits, headers, sharding, dead letters, errors."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import millstream as beam
from millstream.connectors.files.source import DONE, LineCursor
from millstream.io import ReadFromJson, ReadFromText, WriteToJson, WriteToText
from millstream.options.pipeline_options import PipelineOptions
from millstream.transforms import window


def run(tmp_path, build, *flags):
    with beam.Pipeline(options=PipelineOptions([f"--state_dir={tmp_path}/state", *flags])) as p:
        build(p)


def collect(p, pcoll, sink, label="collect"):
    pcoll | label >> beam.Map(sink.append)


def output_files(prefix):
    d = os.path.dirname(prefix)
    base = os.path.basename(prefix)
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.startswith(base) and not n.startswith("."))


def test_sharded_output_with_header_and_footer_round_trips(tmp_path):
    lines = [f"line {i}" for i in range(1000)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    prefix = str(tmp_path / "out" / "t")
    run(
        tmp_path,
        lambda p: (
            p
            | ReadFromText(str(tmp_path / "in.txt"))
            | WriteToText(prefix, ".txt", num_shards=3, header="HEAD", footer="FOOT")
        ),
        "--batch_size=64",
    )
    files = output_files(prefix)
    assert [os.path.basename(f) for f in files] == [  # a bounded run: Beam's batch names
        "t-00000-of-00003.txt",
        "t-00001-of-00003.txt",
        "t-00002-of-00003.txt",
    ]
    bodies = []
    for f in files:
        got = open(f).read().splitlines()
        assert got[0] == "HEAD" and got[-1] == "FOOT"
        bodies.append(got[1:-1])
    assert sorted(x for b in bodies for x in b) == sorted(lines)
    assert max(map(len, bodies)) - min(map(len, bodies)) <= 1  # round-robin spreads evenly


def test_shard_name_templates(tmp_path):
    (tmp_path / "in.txt").write_text("a\nb\nc\n")
    run(
        tmp_path,
        lambda p: (
            p
            | ReadFromText(str(tmp_path / "in.txt"))
            | "single" >> WriteToText(str(tmp_path / "o1" / "x"), ".txt", shard_name_template="")
        ),
    )
    run(
        tmp_path,
        lambda p: (
            p
            | ReadFromText(str(tmp_path / "in.txt"))
            | "custom"
            >> WriteToText(str(tmp_path / "o2" / "x"), num_shards=2, shard_name_template="_SS_of_NN")
        ),
        "--from_scratch",
    )
    assert sorted(os.listdir(tmp_path / "o1")) == ["x.txt"]  # "" is exactly the prefix (and the suffix)
    assert sorted(os.listdir(tmp_path / "o2")) == ["x_00_of_02", "x_01_of_02"]
    with pytest.raises(ValueError, match="needs a shard_name_template with S"):
        WriteToText(str(tmp_path / "o3" / "x"), num_shards=2, shard_name_template="")
    with pytest.raises(ValueError, match="window .W. and pane .P. placeholders are not supported"):
        WriteToText(str(tmp_path / "o3" / "x"), shard_name_template="-W-P")


async def test_glob_directory_and_file_url_read_every_file_in_name_order(tmp_path, read, source):
    d = tmp_path / "d"
    d.mkdir()
    for name in ["b.txt", "a.txt", "c.log", ".hidden.txt"]:
        (d / name).write_text(f"{name}-1\n{name}-2\n")
    values, _, _ = await read(source(ReadFromText(str(d / "*.txt"))))
    assert values == ["a.txt-1", "a.txt-2", "b.txt-1", "b.txt-2"]
    values, _, _ = await read(source(ReadFromText(str(d))))
    assert values == ["a.txt-1", "a.txt-2", "b.txt-1", "b.txt-2", "c.log-1", "c.log-2"]
    values, _, _ = await read(source(ReadFromText(f"file://{d}/c.log")))
    assert values == ["c.log-1", "c.log-2"]


def _compress(kind, path, data):
    if kind == "gzip":
        path = path + ".gz"
        with gzip.open(path, "wb") as f:
            f.write(data)
    elif kind == "bz2":
        path = path + ".bz2"
        with bz2.open(path, "wb") as f:
            f.write(data)
    elif kind == "xz":
        path = path + ".xz"
        with lzma.open(path, "wb") as f:
            f.write(data)
    else:
        path = path + ".zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("inner.txt", data)
    return path


@pytest.mark.parametrize("kind", ["gzip", "bz2", "zip", "xz"])
async def test_compressed_inputs_by_extension_and_restore_mid_file(tmp_path, read, source, kind):
    lines = [f"row {i} " + "x" * (i % 17) for i in range(500)]
    path = _compress(kind, str(tmp_path / "in.txt"), ("\n".join(lines) + "\n").encode())
    src = source(ReadFromText(path, desired_split_size=100))
    values, _, positions = await read(src, batch_size=40)
    assert values == lines
    assert positions == {path: DONE}  # compressed: one split, however small the split size
    first, _, middle = await read(src, batch_size=40, max_batches=4)
    rest, _, _ = await read(src, batch_size=40, positions=middle)
    assert first + rest == lines and len(first) == 160


async def test_explicit_compression_type_and_bad_zip(tmp_path, read, source):
    with gzip.open(tmp_path / "noext", "wb") as f:
        f.write(b"a\nb\n")
    values, _, _ = await read(source(ReadFromText(str(tmp_path / "noext"), compression_type="gzip")))
    assert values == ["a", "b"]
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as z:
        z.writestr("x", "1\n")
        z.writestr("y", "2\n")
    with pytest.raises(ValueError, match="must hold exactly one file, this one holds 2"):
        await read(source(ReadFromText(str(tmp_path / "two.zip"))))
    with pytest.raises(ValueError, match="compression_type='snappy' is not supported"):
        ReadFromText(str(tmp_path / "noext"), compression_type="snappy")


@pytest.mark.parametrize("suffix", [".txt.gz", ".txt.bz2", ".txt.zip"])
def test_compressed_output_by_suffix_round_trips(tmp_path, suffix):
    lines = [f"{i}" for i in range(300)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    prefix = str(tmp_path / "out" / "z")
    run(
        tmp_path,
        lambda p: (
            p | ReadFromText(str(tmp_path / "in.txt")) | WriteToText(prefix, suffix, num_shards=2, header="h")
        ),
    )
    got = []
    run(
        tmp_path,
        lambda p: collect(p, p | ReadFromText(prefix + "-*" + suffix, skip_header_lines=1), got),
        "--from_scratch",
    )
    assert sorted(got) == sorted(lines)


async def test_skip_header_lines_applies_to_each_file(tmp_path, read, source):
    (tmp_path / "a.csv").write_text("h1\nh2\na1\na2\n")
    (tmp_path / "b.csv").write_text("h1\nh2\nb1\n")
    values, _, _ = await read(
        source(ReadFromText(str(tmp_path / "*.csv"), skip_header_lines=2)), batch_size=1
    )
    assert values == ["a1", "a2", "b1"]


async def test_trailing_newlines_kept_or_stripped(tmp_path, read, source):
    (tmp_path / "in.txt").write_bytes(b"a\r\nb\n\nc")
    stripped, _, _ = await read(source(ReadFromText(str(tmp_path / "in.txt"))))
    kept, _, _ = await read(source(ReadFromText(str(tmp_path / "in.txt"), strip_trailing_newlines=False)))
    assert stripped == ["a", "b", "", "c"]
    assert kept == ["a\r\n", "b\n", "\n", "c"]


async def test_undecodable_lines_are_dead_letters_with_file_line_and_offset(tmp_path, read, source):
    good = [f"ok {i}".encode() for i in range(200)]
    data = list(good)
    data[3] = b"bad \xff start"
    data[150] = b"bad \xfe late"  # lies in a later byte range split
    path = tmp_path / "in.txt"
    raw = b"\n".join(data) + b"\n"
    path.write_bytes(raw)
    values, errors, positions = await read(source(ReadFromText(str(path), desired_split_size=256)))
    assert len(positions) > 3  # several byte-range splits
    assert values == [d.decode() for i, d in enumerate(data) if i not in (3, 150)]
    assert [(e["line"], e["raw"]) for e in errors] == [(4, data[3]), (151, data[150])]
    for e in errors:
        assert e["file"] == str(path) and "UnicodeDecodeError" in e["reason"]
        assert raw[e["offset"] :].startswith(e["raw"])


def test_dead_letters_in_a_pipeline(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"a\n\xffb\nc\n")
    got, bad = [], []

    def build(p):
        good, errors = p | ReadFromText(str(tmp_path / "in.txt"), with_dead_letters=True)
        collect(p, good, got)
        collect(p, errors | beam.Map(lambda e: (e["line"], e["raw"])), bad, "bad")

    run(tmp_path, build)
    assert sorted(got) == ["a", "c"] and bad == [(2, b"\xffb")]
    with pytest.raises(Exception, match=r"bad record \(file=.*line=2, offset=2\).*with_dead_letters"):
        run(tmp_path, lambda p: p | "strict" >> ReadFromText(str(tmp_path / "in.txt")), "--from_scratch")


# Lines often end in "\r" (CRLF files), which must be stripped whichever read block the pair falls in.
lines_strategy = st.lists(
    st.tuples(st.text(alphabet="ab\r\xe9 ", max_size=12), st.booleans()).map(lambda t: t[0] + "\r" * t[1]),
    max_size=40,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=lines_strategy,
    final_newline=st.booleans(),
    split_size=st.integers(1, 64),
    batch=st.integers(1, 9),
    block=st.integers(1, 16),
)
def test_byte_range_splits_read_exactly_the_lines_of_one_split(
    tmp_path_factory, read, source, lines, final_newline, split_size, batch, block
):
    import anyio

    path = tmp_path_factory.mktemp("split") / "in.txt"
    data = "\n".join(lines) + ("\n" if final_newline and lines else "")
    path.write_bytes(data.encode())
    whole, _, _ = anyio.run(read, source(ReadFromText(str(path))), 1000)
    LineCursor.BLOCK = block  # tiny read blocks: lines and CRLF pairs straddle block boundaries too
    try:
        split, _, positions = anyio.run(
            read, source(ReadFromText(str(path), desired_split_size=split_size)), batch
        )
    finally:
        LineCursor.BLOCK = 1 << 20
    assert split == whole
    assert (
        whole
        == [line.removesuffix("\r") for line in data.split("\n")][
            : len(data.split("\n")) - (1 if data.endswith("\n") or not data else 0)
        ]
    )
    assert all(p == DONE for p in positions.values())


async def test_restore_inside_a_byte_range_split_neither_skips_nor_rereads(tmp_path, read, source):
    lines = [f"{i:05d}" for i in range(3000)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    src = source(ReadFromText(str(tmp_path / "in.txt"), desired_split_size=4000))
    out = []
    positions = None
    while True:  # restore after every 5 batches, as a job killed between checkpoints would
        values, _, positions = await read(src, batch_size=97, positions=positions, max_batches=5)
        out.extend(values)
        if not values:
            break
    assert out == lines
    assert len(positions) == 5 and all(p == DONE for p in positions.values())


def test_missing_inputs_fail_before_reading_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    cases = [
        (lambda: ReadFromText(str(tmp_path / "nope.txt")), "no such file or directory"),
        (lambda: ReadFromText(str(tmp_path / "*.txt")), "the glob matches no files"),
        (lambda: ReadFromJson(str(tmp_path / "empty")), "the directory has no files"),
        (
            lambda: ReadFromText("hdfs://bucket/x.txt"),
            "hdfs:// scheme is not supported; supported: local paths, file://, gs://",
        ),
        (lambda: WriteToText("s3://bucket/x"), "s3:// scheme is not supported"),
    ]
    for make, message in cases:
        p = beam.Pipeline()
        with pytest.raises(ValueError, match=message) as info:
            transform = make()
            if isinstance(transform, WriteToText):
                p | beam.Create(["x"]) | transform
            else:
                p | transform
        assert "\n" not in str(info.value)


def test_streaming_replay_of_several_files_keeps_later_files_on_time(tmp_path):
    """Files are one event-time stream: the end of the first file does not move the watermark to the end."""
    for n, name in enumerate(["a.jsonl", "b.jsonl"]):
        (tmp_path / name).write_text("".join(f'{{"t": {n * 20 + i}}}\n' for i in range(20)))
    got = []
    run(
        tmp_path,
        lambda p: collect(
            p,
            (
                p
                | ReadFromJson(str(tmp_path / "*.jsonl"), timestamp_fn=lambda e: e["t"])
                | beam.Map(lambda e: ("k", 1))
                | beam.WindowInto(window.FixedWindows(10))
                | beam.CombinePerKey(sum)
            ),
            got,
        ),
        "--streaming",
        "--batch_size=5",
    )
    assert got == [("k", 10)] * 4


def test_json_round_trip_and_rerun_adds_nothing(tmp_path):
    rows = [{"k": i % 3, "v": [i, str(i)], "n": None} for i in range(100)]
    (tmp_path / "in.jsonl").write_text("".join(__import__("json").dumps(r) + "\n" for r in rows) + "\n\n")
    prefix = str(tmp_path / "out" / "j")
    for _ in range(2):
        run(
            tmp_path,
            lambda p: p | ReadFromJson(str(tmp_path / "in.jsonl")) | WriteToJson(prefix, num_shards=2),
        )
    got = []
    with beam.Pipeline(options=PipelineOptions(["--state_backend=memory"])) as p:
        collect(p, p | ReadFromJson(prefix + "-*"), got)
    assert sorted(got, key=str) == sorted(rows, key=str)


class _IntCoder:
    """A coder whose decode raises on lines that are not integers."""

    def decode(self, line: bytes) -> int:
        return int(line)

    def encode(self, value: int) -> bytes:
        return str(value).encode()


async def test_a_coder_decodes_each_line_once_around_bad_lines(tmp_path, read, source):
    # bad lines first, last, side by side and scattered in one batch: values keep their order, each dead
    # letter names its own line and offset
    data = [str(i).encode() for i in range(60)]
    bad_at = (0, 7, 8, 9, 31, 59)
    for i in bad_at:
        data[i] = b"x" + data[i]
    raw = b"\n".join(data) + b"\n"
    path = tmp_path / "in.txt"
    path.write_bytes(raw)
    values, errors, _ = await read(source(ReadFromText(str(path), coder=_IntCoder())))
    assert values == [i for i in range(60) if i not in bad_at]
    assert [(e["line"], e["raw"]) for e in errors] == [(i + 1, data[i]) for i in bad_at]
    for e in errors:
        assert raw[e["offset"] :].startswith(e["raw"] + b"\n") and "ValueError" in e["reason"]


@pytest.mark.parametrize(
    ("lines", "expected_micros"),
    [
        (["1", "2", "-3", "1700000000"], [1_000_000, 2_000_000, -3_000_000, 1_700_000_000_000_000]),  # ints
        (["1.5", "0.0000005", "-2.25"], [1_500_000, 1, -2_250_000]),  # floats: nearest microsecond
        (["1", "2.5"], [1_000_000, 2_500_000]),  # both in one batch
    ],
)
def test_timestamp_fn_seconds_become_exact_microseconds(tmp_path, lines, expected_micros):
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    got = []

    def parse(line: str) -> float:
        return float(line) if "." in line else int(line)

    def build(p):
        stamped = p | ReadFromText(str(tmp_path / "in.txt"), timestamp_fn=parse)
        collect(p, stamped | beam.Map(lambda v, ts=beam.DoFn.TimestampParam: (v, ts.micros)), got)

    run(tmp_path, build)
    assert sorted(got) == sorted(zip(lines, expected_micros, strict=True))
