"""One behavioural suite that every journal store must pass: memory and file alike."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.journal import (
    FsyncPolicy,
    JournalClosed,
    JournalStore,
    MemoryJournalStore,
    SnapshotStore,
    encode_frame,
    open_file_store,
)
from events.journal import segment as segment_module

SMALL_SEGMENT_BYTES = 4096


def make_payload(seq: int) -> bytes:
    """A payload whose size varies with seq (0 to ~250 bytes) and that names its seq."""
    return f"record {seq} ".encode() + bytes(range(seq % 7)) * (seq % 37)


def make_records(first_seq: int, count: int) -> list[tuple[int, bytes]]:
    return [(seq, make_payload(seq)) for seq in range(first_seq, first_seq + count)]


def segment_count(directory: Path) -> int:
    return len(list(directory.glob("*.seg")))


class Opener:
    """Opens (and reopens) the store under test and closes what it opened."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.opened: list[JournalStore] = []

    def open(self) -> JournalStore:
        if self.kind == "memory":
            store: JournalStore = MemoryJournalStore()
        else:
            store = open_file_store(
                self.directory, fsync=FsyncPolicy.NONE, max_segment_bytes=SMALL_SEGMENT_BYTES
            )
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=["memory", "file"])
def opener(request, tmp_path) -> Iterator[Opener]:
    opener = Opener(request.param, tmp_path / "journal")
    yield opener
    opener.close_all()


@pytest.fixture
def store(opener) -> JournalStore:
    return opener.open()


def fill(store: JournalStore, count: int, batch_size: int = 7) -> list[tuple[int, bytes]]:
    records = make_records(store.next_seq, count)
    for start in range(0, count, batch_size):
        store.append(records[start : start + batch_size])
    return records


class TestJournalStoreConformance:
    def test_a_new_store_is_empty(self, store):
        assert isinstance(store, JournalStore)
        assert store.next_seq == 1
        assert store.recovery is None
        assert list(store.read()) == []
        assert isinstance(store.snapshots, SnapshotStore)

    def test_neither_memory_nor_unsynced_file_store_blocks(self, store):
        assert store.blocking is False

    def test_append_then_read_round_trips(self, store, opener):
        records = fill(store, 200)
        assert list(store.read()) == records
        if opener.kind == "file":
            assert segment_count(opener.directory) > 3, "the test should cross rotations"

    def test_batches_of_any_size_including_empty(self, store):
        records = make_records(1, 40)
        store.append([])
        store.append(records[:1])
        store.append(records[1:40])
        store.append([])
        assert store.next_seq == 41
        assert list(store.read()) == records

    def test_next_seq_follows_appends(self, store):
        for expected in range(1, 60, 3):
            assert store.next_seq == expected
            store.append(make_records(expected, 3))

    def test_read_from_any_seq_to_any_seq(self, store):
        records = fill(store, 120)
        count = len(records)
        for from_seq in range(1, count + 3):
            for to_seq in (None, from_seq - 1, from_seq, from_seq + 9, count, count + 5):
                expected = [
                    record
                    for record in records
                    if record[0] >= from_seq and (to_seq is None or record[0] <= to_seq)
                ]
                assert list(store.read(from_seq, to_seq)) == expected, (from_seq, to_seq)

    def test_read_rejects_seqs_below_one(self, store):
        with pytest.raises(ValueError, match="from_seq must be at least 1"):
            store.read(0)

    @pytest.mark.parametrize(
        ("batch", "message"),
        [
            ([(0, b"x")], "record 0 of the batch has seq 0 but the journal expects 6"),
            ([(7, b"x")], "record 0 of the batch has seq 7 but the journal expects 6"),
            ([(6, b"x"), (8, b"y")], "record 1 of the batch has seq 8 but the journal expects 7"),
            ([(6, b"x"), (6, b"y")], "record 1 of the batch has seq 6 but the journal expects 7"),
            ([(6, "text")], "has a str payload"),
        ],
    )
    def test_a_wrong_batch_raises_and_changes_nothing(self, store, batch, message):
        records = fill(store, 5)
        with pytest.raises(ValueError, match=message):
            store.append(batch)
        assert store.next_seq == 6
        assert list(store.read()) == records
        store.append([(6, b"after")])
        assert list(store.read(6)) == [(6, b"after")]

    def test_reading_while_appending_sees_what_was_committed_at_the_call(self, store):
        records = fill(store, 50)
        reader = store.read()
        first_half = [next(reader) for _ in range(25)]
        more = fill(store, 100)
        rest = list(reader)
        assert first_half + rest == records
        assert list(store.read()) == records + more

    def test_appending_one_record_per_record_read_terminates(self, store):
        fill(store, 30)
        seen = []
        for seq, _payload in store.read():
            seen.append(seq)
            store.append(make_records(store.next_seq, 1))
        assert seen == list(range(1, 31))
        assert store.next_seq == 61

    def test_close_is_idempotent_and_later_use_raises(self, store):
        fill(store, 3)
        store.close()
        store.close()
        with pytest.raises(JournalClosed, match="is closed"):
            store.append(make_records(4, 1))

    def test_context_manager_closes(self, opener):
        with opener.open() as store:
            fill(store, 2)
        with pytest.raises(JournalClosed):
            store.append(make_records(3, 1))

    def test_reopen_keeps_records_and_continues_seqs(self, store, opener):
        if opener.kind == "memory":
            pytest.skip("a memory journal does not outlive its object")
        records = fill(store, 150)
        store.close()
        reopened = opener.open()
        assert reopened.recovery is None
        assert reopened.next_seq == 151
        assert list(reopened.read()) == records
        more = fill(reopened, 20)
        assert list(reopened.read(140)) == (records + more)[139:]

    def test_snapshots_save_and_load(self, store):
        snapshots = store.snapshots
        assert snapshots.load_latest("orders") is None
        assert snapshots.list("orders") == []
        snapshots.save("orders", 10, b"ten")
        snapshots.save("orders", 30, b"thirty")
        snapshots.save("orders", 20, b"twenty")
        snapshots.save("book.BTCUSDT", 25, b"book")
        assert snapshots.list("orders") == [10, 20, 30]
        assert snapshots.load_latest("orders") == (30, b"thirty")
        assert snapshots.load_latest("orders", at_or_below=29) == (20, b"twenty")
        assert snapshots.load_latest("orders", at_or_below=20) == (20, b"twenty")
        assert snapshots.load_latest("orders", at_or_below=9) is None
        assert snapshots.load_latest("book.BTCUSDT") == (25, b"book")
        snapshots.save("orders", 30, b"thirty again")
        assert snapshots.load_latest("orders") == (30, b"thirty again")

    @pytest.mark.parametrize("actor", ["", "a/b", "..", ".", "a\\b", "spa ce"])
    def test_snapshots_reject_unsafe_actor_names(self, store, actor):
        with pytest.raises(ValueError, match="invalid snapshot actor name"):
            store.snapshots.save(actor, 1, b"x")
        with pytest.raises(ValueError, match="invalid snapshot actor name"):
            store.snapshots.load_latest(actor)


class FsyncCounter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, descriptor: int) -> None:
        self.calls += 1


class FakeMonotonicClock:
    """Stands in for the `time` module inside the segment module."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fsync_counter(monkeypatch) -> FsyncCounter:
    counter = FsyncCounter()
    monkeypatch.setattr(segment_module, "_sync_data", counter)
    return counter


class TestFileStore:
    """File-store specifics: fsync policies (rotations always fsync separately), rotation, and
    reads racing appends made by another thread."""

    def test_per_batch_syncs_every_append(self, tmp_path, fsync_counter):
        with open_file_store(tmp_path, fsync=FsyncPolicy.PER_BATCH) as store:
            assert store.blocking is True
            for _ in range(5):
                fill(store, 3, batch_size=3)
            assert fsync_counter.calls == 5
        assert fsync_counter.calls == 5, "close has nothing left to sync"

    def test_interval_syncs_when_the_interval_elapsed_and_on_sync_and_close(
        self, tmp_path, fsync_counter
    ):
        with open_file_store(tmp_path, fsync="interval", interval_ms=3_600_000) as store:
            assert store.blocking is True
            fill(store, 10)
            assert fsync_counter.calls == 0
            store.sync()
            assert fsync_counter.calls == 1
            store.sync()
            assert fsync_counter.calls == 1, "nothing new to sync"
            fill(store, 1)
        assert fsync_counter.calls == 2

    def test_interval_syncs_on_append_once_due(self, tmp_path, fsync_counter, monkeypatch):
        clock = FakeMonotonicClock()
        monkeypatch.setattr(segment_module, "time", clock)
        with open_file_store(tmp_path, fsync=FsyncPolicy.INTERVAL, interval_ms=50) as store:
            calls_by_time = []
            for now in (0.0, 0.049, 0.050, 0.060, 0.099, 0.100, 0.5):
                clock.now = now
                fill(store, 1)
                calls_by_time.append((now, fsync_counter.calls))
        assert calls_by_time == [
            (0.0, 0),
            (0.049, 0),
            (0.050, 1),
            (0.060, 1),
            (0.099, 1),
            (0.100, 2),
            (0.5, 3),
        ]

    def test_none_never_syncs_appends_but_sync_still_works(self, tmp_path, fsync_counter):
        with open_file_store(tmp_path, fsync=FsyncPolicy.NONE) as store:
            fill(store, 10)
            assert fsync_counter.calls == 0
            store.sync()
            assert fsync_counter.calls == 1
            fill(store, 1)
        assert fsync_counter.calls == 1

    def test_rotation_creates_a_segment_named_by_the_next_seq(self, tmp_path):
        with open_file_store(tmp_path, fsync="none", max_segment_bytes=100) as store:
            store.append([(1, b"a" * 90)])
            assert store.segment_name == "00000000000000000002.seg"
            store.append([(2, b"b"), (3, b"c")])
            store.append([(4, b"d" * 90)])
            assert store.segment_name == "00000000000000000005.seg"
        names = sorted(path.name for path in tmp_path.glob("*.seg"))
        assert names == [
            "00000000000000000001.seg",
            "00000000000000000002.seg",
            "00000000000000000005.seg",
        ]
        assert (tmp_path / "00000000000000000005.seg").stat().st_size == 0

    def test_invalid_options_are_rejected(self, tmp_path):
        with pytest.raises(ValueError, match="'sometimes' is not a valid FsyncPolicy"):
            open_file_store(tmp_path, fsync="sometimes")
        with pytest.raises(ValueError, match="interval_ms must be positive"):
            open_file_store(tmp_path, interval_ms=0)
        with pytest.raises(ValueError, match="max_segment_bytes must be positive"):
            open_file_store(tmp_path, max_segment_bytes=0)

    def test_read_yields_only_records_whose_append_returned(self, tmp_path):
        with open_file_store(tmp_path, fsync="none") as store:
            records = fill(store, 3)
            # What a concurrent append in a worker thread may have written but not returned from.
            with (tmp_path / store.segment_name).open("ab") as segment:
                segment.write(encode_frame(4, b"not yet committed"))
            assert list(store.read()) == records
            assert list(store.read(4)) == []
            assert store.next_seq == 4

    def test_reads_racing_a_writer_thread_see_gap_free_prefixes(self, tmp_path):
        store = open_file_store(tmp_path, fsync="none", max_segment_bytes=SMALL_SEGMENT_BYTES)
        records = make_records(1, 3000)
        failures: list[BaseException] = []

        def write() -> None:
            try:
                for start in range(0, len(records), 5):
                    store.append(records[start : start + 5])
            except BaseException as error:  # reported by the main thread
                failures.append(error)

        with store:
            writer = threading.Thread(target=write)
            writer.start()
            longest = 0
            while writer.is_alive() or longest < len(records):
                seen = list(store.read())
                assert seen == records[: len(seen)]
                longest = max(longest, len(seen))
            writer.join()
        assert failures == []
        assert longest == len(records)

    def test_rotation_fsyncs_the_sealed_segment_then_the_directory_even_under_none(
        self, tmp_path, monkeypatch
    ):
        synced: list[str] = []
        real_fsync = os.fsync

        def recording_fsync(descriptor: int) -> None:
            synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
            real_fsync(descriptor)

        with open_file_store(tmp_path, fsync="none", max_segment_bytes=100) as store:
            monkeypatch.setattr(os, "fsync", recording_fsync)
            store.append([(1, b"a" * 10)])
            assert synced == []
            store.append([(2, b"b" * 90)])
            monkeypatch.undo()
        assert synced == [str(tmp_path / "00000000000000000001.seg"), str(tmp_path)]
