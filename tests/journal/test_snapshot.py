"""Snapshot stores: saving, loading the newest valid one, surviving crashes and corruption."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from events.journal import (
    FileSnapshotStore,
    FsyncPolicy,
    MemorySnapshotStore,
    SnapshotStore,
    open_file_store,
)


@pytest.fixture(params=["memory", "file"])
def snapshots(request, tmp_path) -> SnapshotStore:
    if request.param == "memory":
        return MemorySnapshotStore()
    return FileSnapshotStore(tmp_path / "snapshots")


@pytest.fixture
def file_snapshots(tmp_path) -> FileSnapshotStore:
    return FileSnapshotStore(tmp_path / "snapshots")


def test_save_and_load(snapshots):
    assert isinstance(snapshots, SnapshotStore)
    snapshots.save("orders", 5, b"five")
    snapshots.save("orders", 12, b"")
    snapshots.save("orders", 9, b"nine" * 1000)
    assert snapshots.list("orders") == [5, 9, 12]
    assert snapshots.load_latest("orders") == (12, b"")
    assert snapshots.load_latest("orders", at_or_below=11) == (9, b"nine" * 1000)
    assert snapshots.load_latest("orders", at_or_below=5) == (5, b"five")
    assert snapshots.load_latest("orders", at_or_below=4) is None
    assert snapshots.load_latest("positions") is None
    assert snapshots.list("positions") == []


def test_prune_keeps_the_newest(snapshots):
    for seq in (3, 1, 7, 5):
        snapshots.save("orders", seq, f"s{seq}".encode())
    snapshots.save("other", 2, b"o")
    snapshots.prune("orders", keep=2)
    assert snapshots.list("orders") == [5, 7]
    assert snapshots.load_latest("orders") == (7, b"s7")
    snapshots.prune("orders", keep=5)
    assert snapshots.list("orders") == [5, 7]
    snapshots.prune("absent", keep=1)
    assert snapshots.list("other") == [2]
    with pytest.raises(ValueError, match="keep at least one"):
        snapshots.prune("orders", keep=0)


def test_actors_are_kept_apart(snapshots):
    snapshots.save("a", 1, b"a1")
    snapshots.save("b", 2, b"b2")
    assert snapshots.load_latest("a") == (1, b"a1")
    assert snapshots.load_latest("b") == (2, b"b2")


@pytest.mark.parametrize(
    ("actor", "problem"),
    [
        ("", "it is empty"),
        ("a/b", "it contains a path separator"),
        ("..", "it starts with '.'"),
        ("a\\b", "it contains a path separator"),
        ("x" * 201, "it is longer than 200 characters"),
        ("spa ce", "it may only contain ASCII letters"),
        ("naïve", "it may only contain ASCII letters"),
    ],
)
def test_unsafe_actor_names_are_rejected(snapshots, actor, problem):
    message = f"invalid snapshot actor name {actor!r}: {problem}"
    for call in (
        lambda: snapshots.save(actor, 1, b"x"),
        lambda: snapshots.load_latest(actor),
        lambda: snapshots.list(actor),
    ):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
            call()


@pytest.mark.parametrize(
    ("seq", "data", "message"),
    [
        (-1, b"x", "snapshot seq must be an int between 0 and"),
        (10**20, b"x", "snapshot seq must be an int between 0 and"),
        (1, "text", "snapshot data must be bytes, got str"),
    ],
)
def test_bad_seqs_and_data_are_rejected(snapshots, seq, data, message):
    with pytest.raises(ValueError, match=message):
        snapshots.save("orders", seq, data)


def test_the_file_layout_is_actor_then_padded_seq(file_snapshots, tmp_path):
    file_snapshots.save("book.BTCUSDT", 42, b"state")
    path = tmp_path / "snapshots" / "book.BTCUSDT" / "00000000000000000042.snap"
    assert path.is_file()
    assert path == file_snapshots.path_for("book.BTCUSDT", 42)
    assert path.read_bytes().endswith(b"state")
    assert sorted(os.listdir(path.parent)) == [path.name], "no temporary file is left behind"


def damage_flip_last_byte(path: Path) -> None:
    content = bytearray(path.read_bytes())
    content[-1] ^= 0x01
    path.write_bytes(bytes(content))


def damage_truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 1)


def damage_header(path: Path) -> None:
    path.write_bytes(b"JUNK" + path.read_bytes()[4:])


def damage_too_short(path: Path) -> None:
    path.write_bytes(b"TSNP")


def damage_wrong_seq(path: Path) -> None:
    """Valid content, but saved for another seq: a renamed file must not be trusted."""
    other = FileSnapshotStore(path.parent.parent / "elsewhere")
    other.save(path.parent.name, 1, b"from seq 1")
    path.write_bytes(other.path_for(path.parent.name, 1).read_bytes())


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (damage_flip_last_byte, "crc mismatch"),
        (damage_truncate, "header says 6 data bytes but the file holds 5"),
        (damage_header, "bad magic b'JUNK'"),
        (damage_too_short, "file is 4 bytes, shorter than the 24-byte header"),
        (damage_wrong_seq, "header says seq 1 but the file name says 30"),
    ],
)
def test_a_corrupt_newest_snapshot_falls_back_to_the_previous_one(
    file_snapshots, caplog, damage, reason
):
    file_snapshots.save("orders", 10, b"older")
    file_snapshots.save("orders", 30, b"newest")
    newest = file_snapshots.path_for("orders", 30)
    damage(newest)
    with caplog.at_level(logging.WARNING, logger="events.journal.snapshot"):
        assert file_snapshots.load_latest("orders") == (10, b"older")
    assert f"skipping corrupt snapshot {newest}: {reason}" in caplog.text
    assert file_snapshots.list("orders") == [10, 30], "listing does not judge contents"


def test_all_snapshots_corrupt_means_none(file_snapshots):
    file_snapshots.save("orders", 3, b"x")
    damage_flip_last_byte(file_snapshots.path_for("orders", 3))
    assert file_snapshots.load_latest("orders") is None


def test_temporary_files_left_by_a_crash_are_ignored(file_snapshots, tmp_path):
    file_snapshots.save("orders", 10, b"committed")
    actor_directory = tmp_path / "snapshots" / "orders"
    # What a crash between writing the temporary file and renaming it leaves behind: a complete,
    # valid snapshot under a temporary name, and an empty one.
    valid = file_snapshots.path_for("orders", 10).read_bytes().replace(b"committed", b"newer!!!!")
    (actor_directory / "00000000000000000020.snap.4242-deadbeef.tmp").write_bytes(valid)
    (actor_directory / "00000000000000000030.snap.4243-feedface.tmp").write_bytes(b"")
    assert file_snapshots.list("orders") == [10]
    assert file_snapshots.load_latest("orders") == (10, b"committed")
    file_snapshots.save("orders", 20, b"really newer")
    assert file_snapshots.load_latest("orders") == (20, b"really newer")


def test_snapshots_live_next_to_a_file_journal_and_survive_reopening(tmp_path):
    with open_file_store(tmp_path, fsync=FsyncPolicy.NONE) as store:
        store.append([(1, b"event")])
        store.snapshots.save("orders", 1, b"state after 1")
    with open_file_store(tmp_path, fsync=FsyncPolicy.NONE) as store:
        assert store.snapshots.load_latest("orders") == (1, b"state after 1")
    assert (tmp_path / "snapshots" / "orders" / "00000000000000000001.snap").is_file()
