"""Beam's coders, FileSystems, testing helpers and runner names, at Beam's module paths."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import millstream as beam
from millstream.coders import (
    BytesCoder,
    FastPrimitivesCoder,
    IterableCoder,
    PickleCoder,
    StrUtf8Coder,
    TupleCoder,
    VarIntCoder,
    registry,
)
from millstream.io.filesystems import BeamIOError, FileSystems
from millstream.runners.runner import PipelineState
from millstream.testing.test_utils import TempDir, compute_hash, create_file, read_files_from_pattern
from millstream.testing.util import open_shards


@pytest.mark.parametrize(
    ("coder", "value"),
    [
        (PickleCoder(), {"a": [1, 2.5]}),
        (FastPrimitivesCoder(), ("k", 3)),
        (StrUtf8Coder(), "héllo"),
        (BytesCoder(), b"\x00\xff"),
        (VarIntCoder(), -(2**40)),
        (VarIntCoder(), 300),
        (TupleCoder([StrUtf8Coder(), VarIntCoder()]), ("key", 7)),
        (IterableCoder(VarIntCoder()), [1, 128, -1]),
    ],
)
def test_coders_round_trip(coder: beam.coders.Coder, value: object) -> None:
    assert coder.decode(coder.encode(value)) == value


def test_varint_matches_beams_encoding() -> None:
    assert VarIntCoder().encode(300) == b"\xac\x02"
    assert len(VarIntCoder().encode(-1)) == 10  # negatives as 64-bit two's complement, as Beam


def test_registry_registers_a_coder_class() -> None:
    class Point:
        pass

    class PointCoder(PickleCoder):
        pass

    registry.register_coder(Point, PointCoder)
    assert isinstance(registry.get_coder(Point), PointCoder)
    assert isinstance(registry.get_coder(str), StrUtf8Coder)
    with pytest.raises(TypeError, match="Coder subclass"):
        registry.register_coder(Point, PointCoder())  # type: ignore[arg-type]


def test_filesystems_create_match_open_rename_delete(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "a.txt.gz")
    with FileSystems.create(path) as f:
        f.write(b"one\ntwo\n")
    assert gzip.decompress(Path(path).read_bytes()) == b"one\ntwo\n"
    with FileSystems.open(path) as f:
        assert f.read() == b"one\ntwo\n"
    [result] = FileSystems.match([str(tmp_path / "sub" / "*.gz")])
    assert [m.path for m in result.metadata_list] == [path]
    moved = str(tmp_path / "b.txt.gz")
    FileSystems.rename([path], [moved])
    assert not FileSystems.exists(path) and FileSystems.exists("file://" + moved)
    FileSystems.delete([moved])
    with pytest.raises(BeamIOError, match="Delete operation failed"):
        FileSystems.delete([moved])


def test_filesystems_rejects_unsupported_schemes() -> None:
    # gs:// is supported (tests/gcs/test_gcs_filesystems.py); a scheme without a filesystem fails naming it
    with pytest.raises(ValueError, match=r"s3://bucket/x.*not supported.*gs://"):
        FileSystems.open("s3://bucket/x")


def test_testing_file_helpers(tmp_path: Path) -> None:
    create_file(str(tmp_path / "out-00000-of-00002"), "a\n")
    create_file(str(tmp_path / "out-00001-of-00002"), "b\n")
    assert read_files_from_pattern(str(tmp_path / "out-*")) == "a\nb"
    assert open_shards(str(tmp_path / "out-*")).read() == "a\nb\n"
    assert compute_hash(["b", "a"]) == compute_hash(["a", "b"]) != compute_hash(["a"])
    with TempDir() as d:
        name = d.create_temp_file(".txt", [b"x\n"])
        assert Path(name).read_bytes() == b"x\n"
    assert not Path(d.get_path()).exists()


def test_runner_names_and_result_state() -> None:
    p = beam.Pipeline(runner=beam.runners.DirectRunner())
    _ = p | beam.Create([1])
    assert p.run().state == PipelineState.DONE


def test_typehint_decorators_are_accepted() -> None:
    @beam.typehints.with_input_types(int)
    @beam.typehints.with_output_types(beam.typehints.Tuple[int, int])
    def pair(x: int) -> tuple[int, int]:
        return (x, x)

    from millstream.engine.model.typehints import declared_hints

    assert declared_hints(pair)["input"] == ((int,), {})
    with beam.Pipeline() as p:
        out = p | beam.Create([1]) | beam.Map(pair)
        from millstream.testing.util import assert_that, equal_to

        assert_that(out, equal_to([(1, 1)]))
