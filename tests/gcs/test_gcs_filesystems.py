"""Beam's `FileSystems` on gs://, against fake-gcs-server: match (globs, limits), create/open with
compression, exists, copy, rename, delete, and the errors Beam gives for missing paths."""

from __future__ import annotations

import gzip

import pytest

from millstream.io.filesystems import BeamIOError, FileSystems

pytestmark = pytest.mark.gcs


def test_create_then_open_round_trips_with_compression(gcs_bucket):
    path = gcs_bucket.url("d/a.txt.gz")
    with FileSystems.create(path) as f:
        f.write(b"hello\nworld\n")
    assert gzip.decompress(gcs_bucket.get("d/a.txt.gz")) == b"hello\nworld\n"  # compressed by its extension
    with FileSystems.open(path) as f:
        assert f.read() == b"hello\nworld\n"
    assert FileSystems.exists(path) and not FileSystems.exists(gcs_bucket.url("d/none.txt"))


def test_match_gives_metadata_for_globs_and_limits(gcs_bucket):
    for name, body in [("d/a.txt", "1"), ("d/b.txt", "22"), ("d/sub/c.txt", "333"), ("d/x.csv", "4")]:
        gcs_bucket.put(name, body)
    [result] = FileSystems.match([gcs_bucket.url("d/*.txt")])
    assert [(m.path, m.size_in_bytes) for m in result.metadata_list] == [
        (gcs_bucket.url("d/a.txt"), 1),
        (gcs_bucket.url("d/b.txt"), 2),
    ]
    assert all(m.last_updated_in_seconds > 1e9 for m in result.metadata_list)
    deep, limited = FileSystems.match([gcs_bucket.url("d/**.txt"), gcs_bucket.url("d/*")], [None, 1])
    assert [m.path for m in deep.metadata_list][-1] == gcs_bucket.url("d/sub/c.txt")
    assert [m.path for m in limited.metadata_list] == [gcs_bucket.url("d/a.txt")]


def test_copy_rename_delete(gcs_bucket, tmp_path):
    gcs_bucket.put("d/a.txt", "A")
    FileSystems.copy([gcs_bucket.url("d/a.txt")], [gcs_bucket.url("e/a.txt")])
    FileSystems.rename([gcs_bucket.url("e/a.txt")], [gcs_bucket.url("e/b.txt")])
    assert gcs_bucket.names() == ["d/a.txt", "e/b.txt"] and gcs_bucket.get("e/b.txt") == b"A"
    FileSystems.copy([gcs_bucket.url("d/a.txt")], [str(tmp_path / "local.txt")])  # across schemes
    assert (tmp_path / "local.txt").read_text() == "A"
    FileSystems.delete([gcs_bucket.url("d/a.txt"), gcs_bucket.url("e/b.txt")])
    assert gcs_bucket.names() == []


def test_missing_objects_fail_as_in_beam(gcs_bucket):
    missing = gcs_bucket.url("none.txt")
    with pytest.raises(BeamIOError) as err:
        FileSystems.delete([missing])
    assert list(err.value.exception_details) == [missing]
    with pytest.raises(BeamIOError, match="no such file"):
        FileSystems.open(missing)
    with pytest.raises(BeamIOError, match="rename operation failed"):
        FileSystems.rename([missing], [gcs_bucket.url("other.txt")])


def test_join_split_and_mkdirs_on_object_paths(gcs_bucket):
    assert FileSystems.join("gs://b/dir/", "sub", "x.txt") == "gs://b/dir/sub/x.txt"
    assert FileSystems.split("gs://b/dir/x.txt") == ("gs://b/dir", "x.txt")
    FileSystems.mkdirs(gcs_bucket.url("no/folders"))  # nothing to create on an object store
    assert gcs_bucket.names() == []
