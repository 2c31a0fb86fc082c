"""The two-phase file sink on its own: naming, interrupted commits, recovery after a fallback, sinks that share
a prefix, abort."""

from __future__ import annotations

import os

from millstream.connectors.files.sink import FileSink


def writer(prefix, suffix=".txt", **kw):
    return FileSink(prefix, suffix, header=kw.pop("header", None), **kw).create_writer(None, None)


def visible(directory):
    return sorted(n for n in os.listdir(directory) if not n.startswith("."))


async def test_a_commit_interrupted_between_shard_renames_is_finished_by_recovery(tmp_path):
    w = writer(str(tmp_path / "o"), num_shards=3, header="H")
    await w.recover(None, None)
    await w.write([f"r{i}" for i in range(7)])
    record = await w.prepare(4)
    assert [os.path.basename(final) for _, final in record] == [
        "o-c00000004-00000-of-00003.txt",
        "o-c00000004-00001-of-00003.txt",
        "o-c00000004-00002-of-00003.txt",
    ]
    os.replace(*record[0])  # the process died after the first rename
    w2 = writer(str(tmp_path / "o"), num_shards=3, header="H")
    await w2.recover(4, record)
    assert visible(tmp_path) == [os.path.basename(f) for _, f in record]
    bodies = [open(f).read().splitlines() for _, f in record]
    assert [b[0] for b in bodies] == ["H"] * 3
    assert [b[1:] for b in bodies] == [["r0", "r3", "r6"], ["r1", "r4"], ["r2", "r5"]]
    await w2.commit(4, record)  # committing again is harmless
    assert len(visible(tmp_path)) == 3


async def test_recovery_discards_uncommitted_epochs_and_output_of_newer_checkpoints(tmp_path):
    w = writer(str(tmp_path / "o"))
    await w.recover(None, None)
    for cid in (1, 2, 3):
        await w.write([f"c{cid}"])
        await w.commit(cid, await w.prepare(cid))
    await w.write(["never committed"])
    await w.prepare(4)
    (tmp_path / "other-c00000009-00000-of-00001.txt").write_text("not ours")
    (tmp_path / "o-c00000009-notes.txt").write_text("not ours either")
    w2 = writer(str(tmp_path / "o"))
    await w2.recover(2, [])  # checkpoint 3 was unreadable: the job falls back to 2 and replays after it
    assert visible(tmp_path) == [
        "o-c00000001-00000-of-00001.txt",
        "o-c00000002-00000-of-00001.txt",
        "o-c00000009-notes.txt",
        "other-c00000009-00000-of-00001.txt",
    ]
    assert os.listdir(tmp_path / ".o.millstream-tmp") == []


async def test_sinks_sharing_a_prefix_keep_to_their_own_files(tmp_path):
    text = writer(str(tmp_path / "o"), ".txt")
    csv = writer(str(tmp_path / "o"), ".csv")
    await text.recover(None, None)
    await csv.recover(None, None)
    await text.write(["t"])
    await csv.write(["c"])
    text_record = await text.prepare(1)
    await csv.recover(None, None)  # e.g. restarting one must not delete the other's pending epoch
    await text.commit(1, text_record)
    assert visible(tmp_path) == ["o-c00000001-00000-of-00001.txt"]


async def test_abort_and_empty_epochs_leave_nothing(tmp_path):
    w = writer(str(tmp_path / "o"))
    await w.recover(None, None)
    assert await w.prepare(1) == []
    await w.write(["x"])
    await w.abort()
    assert visible(tmp_path) == [] and os.listdir(tmp_path / ".o.millstream-tmp") == []
