"""Crash recovery, corruption handling, the read-only reader and tail following."""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.journal import (
    HEADER_SIZE,
    FsyncPolicy,
    JournalCorrupted,
    JournalNotFound,
    Recovery,
    SegmentStats,
    TornTail,
    encode_frame,
    follow,
    open_file_store,
    open_reader,
)
from events.journal import segment as segment_module

# ``events.journal.follow`` is the function re-exported by the package; this is its module.
follow_module = importlib.import_module("events.journal.follow")

SEGMENT_BYTES = 256
recovery_settings = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# At least 10 records of at least 10 bytes: more than 300 bytes, so at least two segments.
payload_lists = st.lists(st.binary(min_size=10, max_size=120), min_size=10, max_size=40)


def write_journal(
    directory: Path, payloads: list[bytes], batch_size: int = 4
) -> list[tuple[int, bytes]]:
    records = [(index + 1, payload) for index, payload in enumerate(payloads)]
    with open_file_store(
        directory, fsync=FsyncPolicy.NONE, max_segment_bytes=SEGMENT_BYTES
    ) as store:
        for start in range(0, len(records), batch_size):
            store.append(records[start : start + batch_size])
    return records


def reopen(directory: Path):
    return open_file_store(directory, fsync=FsyncPolicy.NONE, max_segment_bytes=SEGMENT_BYTES)


def segment_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def first_seq_of(path: Path) -> int:
    return int(path.name.removesuffix(".seg"))


def boundaries(records: list[tuple[int, bytes]]) -> list[int]:
    """Frame boundaries of a segment holding ``records``, starting with 0."""
    offsets = [0]
    for _seq, payload in records:
        offsets.append(offsets[-1] + HEADER_SIZE + len(payload))
    return offsets


def file_states(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Size, mtime and content of every file under ``directory``."""
    states = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            status = path.stat()
            states[str(path.relative_to(directory))] = (
                status.st_size,
                status.st_mtime_ns,
                path.read_bytes(),
            )
    return states


def append_raw(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


@pytest.fixture
def journal(tmp_path) -> tuple[Path, list[tuple[int, bytes]]]:
    """A closed journal of 60 records spread over several segments."""
    payloads = [f"payload {index:03d} ".encode() * 3 for index in range(60)]
    records = write_journal(tmp_path, payloads)
    assert len(segment_paths(tmp_path)) >= 4
    return tmp_path, records


# --------------------------------------------------------------------------- torn tails


@recovery_settings
@given(payloads=payload_lists, batch_size=st.integers(1, 8), data=st.data())
def test_cutting_the_last_segment_anywhere_keeps_exactly_a_prefix(payloads, batch_size, data):
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        records = write_journal(directory, payloads, batch_size)
        paths = segment_paths(directory)
        assert len(paths) >= 2
        last = paths[-1]
        first_seq = first_seq_of(last)
        offsets = boundaries(records[first_seq - 1 :])
        assert last.stat().st_size == offsets[-1]
        cut = data.draw(st.integers(0, offsets[-1]), label="cut")
        os.truncate(last, cut)
        whole = max(index for index, offset in enumerate(offsets) if offset <= cut)
        kept = first_seq - 1 + whole

        with reopen(directory) as store:
            assert list(store.read()) == records[:kept]
            assert store.next_seq == kept + 1
            if cut == offsets[whole]:
                assert store.recovery is None
            else:
                recovery = store.recovery
                assert recovery is not None
                assert recovery.segment == last.name
                assert recovery.truncated_bytes == cut - offsets[whole]
                assert recovery.last_seq == kept
                assert recovery.reason in {
                    f"short header at offset {offsets[whole]}",
                    f"truncated payload at offset {offsets[whole]}",
                }
            assert last.stat().st_size == offsets[whole]
            store.append([(kept + 1, b"after recovery"), (kept + 2, b"and more")])
        expected = [*records[:kept], (kept + 1, b"after recovery"), (kept + 2, b"and more")]
        with reopen(directory) as store:
            assert store.recovery is None
            assert list(store.read()) == expected
            assert store.next_seq == kept + 3


@recovery_settings
@given(payloads=payload_lists, garbage=st.binary(min_size=1, max_size=100))
def test_garbage_after_the_last_frame_is_cut_off(payloads, garbage):
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        records = write_journal(directory, payloads)
        last = segment_paths(directory)[-1]
        intact_size = last.stat().st_size
        append_raw(last, garbage)

        with reopen(directory) as store:
            assert list(store.read()) == records
            assert store.recovery is not None
            assert store.recovery.truncated_bytes == len(garbage)
            assert store.recovery.last_seq == len(records)
            assert store.recovery.reason.endswith(f"at offset {intact_size}")
            assert last.stat().st_size == intact_size
            assert store.next_seq == len(records) + 1


def test_an_intact_journal_loses_nothing(journal):
    directory, records = journal
    before = file_states(directory)
    with reopen(directory) as store:
        assert store.recovery is None
        assert store.next_seq == len(records) + 1
        assert list(store.read()) == records
    after = file_states(directory)
    segments_before = {name: state for name, state in before.items() if name.endswith(".seg")}
    assert {name: after[name] for name in segments_before} == segments_before


def test_a_damaged_frame_in_the_last_segment_cuts_it_and_everything_after(journal):
    directory, records = journal
    last = segment_paths(directory)[-1]
    first_seq = first_seq_of(last)
    offsets = boundaries(records[first_seq - 1 :])
    assert len(offsets) >= 3
    content = bytearray(last.read_bytes())
    content[offsets[1] + HEADER_SIZE] ^= 0x40  # first payload byte of the second frame
    last.write_bytes(bytes(content))
    with reopen(directory) as store:
        assert store.recovery == Recovery(
            segment=last.name,
            truncated_bytes=offsets[-1] - offsets[1],
            last_seq=first_seq,
            reason=f"crc mismatch at offset {offsets[1]}",
        )
        assert list(store.read()) == records[:first_seq]


def test_an_empty_last_segment_left_by_a_rotation_is_fine(journal):
    directory, records = journal
    empty = directory / f"{len(records) + 1:020d}.seg"
    if not empty.exists():
        empty.touch()
    with reopen(directory) as store:
        assert store.recovery is None
        assert store.next_seq == len(records) + 1
        store.append([(len(records) + 1, b"next")])
    assert empty.stat().st_size == HEADER_SIZE + len(b"next")


def test_a_full_last_segment_is_sealed_on_open(journal):
    directory, records = journal
    last = segment_paths(directory)[-1]
    size = last.stat().st_size
    assert size > 0
    with open_file_store(directory, fsync="none", max_segment_bytes=size) as store:
        assert store.segment_name == f"{len(records) + 1:020d}.seg"
        store.append([(len(records) + 1, b"next")])
        assert list(store.read(len(records))) == [records[-1], (len(records) + 1, b"next")]


# --------------------------------------------------------------------------- corruption


@pytest.mark.parametrize(
    ("where", "delta"),
    [("magic", 0), ("length", 5), ("seq", 9), ("crc", 17), ("payload", HEADER_SIZE + 2)],
)
def test_damage_in_a_sealed_segment_refuses_to_start(journal, where, delta):
    directory, records = journal
    sealed = segment_paths(directory)[0]
    next_first_seq = first_seq_of(segment_paths(directory)[1])
    offsets = boundaries(records[: next_first_seq - 1])
    frame_start = offsets[1]
    content = bytearray(sealed.read_bytes())
    content[frame_start + delta] ^= 0x10
    sealed.write_bytes(bytes(content))
    before = file_states(directory)

    with pytest.raises(JournalCorrupted) as raised:
        reopen(directory)

    error = raised.value
    assert error.path == str(sealed)
    assert error.offset == frame_start
    message = str(error)
    assert str(sealed) in message
    assert f"byte offset {frame_start}" in message
    assert "refuses to start" in message
    segments_after = {
        name: state for name, state in file_states(directory).items() if name != "LOCK"
    }
    segments_before = {name: state for name, state in before.items() if name != "LOCK"}
    assert segments_after == segments_before, "a sealed segment must never be repaired"
    with pytest.raises(JournalCorrupted):  # the lock was released: the same error again
        reopen(directory)


def test_a_truncated_sealed_segment_refuses_to_start(journal):
    directory, _records = journal
    sealed = segment_paths(directory)[1]
    size = sealed.stat().st_size
    os.truncate(sealed, size - 3)
    with pytest.raises(JournalCorrupted, match="truncated payload in a sealed segment"):
        reopen(directory)
    assert sealed.stat().st_size == size - 3


def test_an_empty_sealed_segment_refuses_to_start(journal):
    directory, _records = journal
    sealed = segment_paths(directory)[1]
    os.truncate(sealed, 0)
    with pytest.raises(JournalCorrupted, match="sealed segment is empty") as raised:
        reopen(directory)
    assert raised.value.path == str(sealed)


def test_a_missing_middle_segment_refuses_to_start(journal):
    directory, _records = journal
    paths = segment_paths(directory)
    paths[1].unlink()
    expected_end = first_seq_of(paths[1]) - 1
    with pytest.raises(JournalCorrupted) as raised:
        reopen(directory)
    assert raised.value.path == str(paths[2])
    assert raised.value.offset == 0
    assert (
        f"segment name says it starts at seq {first_seq_of(paths[2])}, but the previous segment "
        f"{paths[0].name} ends at seq {expected_end}" in str(raised.value)
    )


def test_a_misnamed_last_segment_refuses_to_start(journal):
    directory, _records = journal
    last = segment_paths(directory)[-1]
    renamed = directory / f"{first_seq_of(last) + 1:020d}.seg"
    last.rename(renamed)
    with pytest.raises(JournalCorrupted, match="segment name says it starts at seq") as raised:
        reopen(directory)
    assert raised.value.path == str(renamed)


def test_a_missing_first_segment_refuses_to_start(journal):
    directory, _records = journal
    segment_paths(directory)[0].unlink()
    with pytest.raises(JournalCorrupted, match="but a journal starts at seq 1"):
        reopen(directory)


def test_an_unparseable_segment_name_refuses_to_start(journal):
    directory, _records = journal
    (directory / "not-a-seq.seg").write_bytes(b"")
    with pytest.raises(JournalCorrupted, match="does not parse") as raised:
        reopen(directory)
    assert raised.value.path == str(directory / "not-a-seq.seg")


def test_open_without_create_needs_an_existing_journal(tmp_path):
    with pytest.raises(JournalNotFound, match=f"no journal at {tmp_path / 'missing'}"):
        open_file_store(tmp_path / "missing", create=False)
    with pytest.raises(JournalNotFound, match="holds no segment files"):
        open_file_store(tmp_path, create=False)
    assert list(tmp_path.iterdir()) == [], "a refused open must not create anything"


def test_create_makes_the_directory_and_an_empty_first_segment(tmp_path):
    directory = tmp_path / "a" / "b"
    with open_file_store(directory, fsync="none") as store:
        assert store.next_seq == 1
    assert sorted(path.name for path in directory.iterdir()) == [
        "00000000000000000001.seg",
        "LOCK",
        "snapshots",
    ]


# --------------------------------------------------------------------------- reader


def test_the_reader_never_modifies_files_and_reports_a_torn_tail(journal):
    directory, records = journal
    last = segment_paths(directory)[-1]
    intact_size = last.stat().st_size
    torn = encode_frame(len(records) + 1, b"never committed")[:-4]
    append_raw(last, torn)
    before = file_states(directory)

    reader = open_reader(directory)
    assert reader.tail_problem is None
    assert list(reader.read()) == records
    expected_tail = TornTail(
        segment=last.name, offset=intact_size, reason="truncated payload", last_seq=len(records)
    )
    assert reader.tail_problem == expected_tail
    assert list(reader.read(len(records) - 2)) == records[-3:]
    assert reader.tail_problem == expected_tail
    assert list(reader.read(1, 5)) == records[:5]
    assert reader.tail_problem is None, "a read stopping at to_seq did not look at the tail"
    assert reader.last_seq == len(records)
    assert reader.tail_problem == expected_tail
    stats = reader.stats()
    assert stats.total_records == len(records)
    assert stats.total_bytes == sum(path.stat().st_size for path in segment_paths(directory))
    assert stats.segments[-1] == SegmentStats(
        last.name, first_seq_of(last), len(records), intact_size + len(torn)
    )
    assert reader.tail_problem == expected_tail

    assert file_states(directory) == before


def test_reader_stats_describe_every_segment(journal):
    directory, records = journal
    stats = open_reader(directory).stats()
    paths = segment_paths(directory)
    assert [item.name for item in stats.segments] == [path.name for path in paths]
    for item, following in zip(stats.segments, stats.segments[1:], strict=False):
        assert following.first_seq == item.last_seq + 1
    assert stats.segments[0].first_seq == 1
    assert stats.segments[-1].last_seq == len(records)
    assert [item.size_bytes for item in stats.segments] == [path.stat().st_size for path in paths]
    assert stats.total_records == len(records)


def test_the_reader_sees_a_writer_append_and_rotate(tmp_path):
    reader_directory = tmp_path
    with open_file_store(tmp_path, fsync="none", max_segment_bytes=SEGMENT_BYTES) as store:
        reader = open_reader(reader_directory)
        assert list(reader.read()) == []
        assert reader.last_seq == 0
        written = []
        for seq in range(1, 41):
            record = (seq, f"live {seq}".encode() * 4)
            store.append([record])
            written.append(record)
            assert list(reader.read(max(1, seq - 2))) == written[max(0, seq - 3) :]
        assert len(segment_paths(tmp_path)) > 3
        assert reader.last_seq == 40
        assert reader.tail_problem is None


def test_the_reader_yields_a_frame_only_once_it_is_complete(journal):
    directory, records = journal
    last = segment_paths(directory)[-1]
    frame = encode_frame(len(records) + 1, b"slowly written")
    reader = open_reader(directory)
    append_raw(last, frame[:7])
    assert list(reader.read(len(records))) == [records[-1]]
    assert reader.tail_problem is not None
    assert reader.tail_problem.reason == "short header"
    append_raw(last, frame[7 : HEADER_SIZE + 3])
    assert list(reader.read(len(records))) == [records[-1]]
    assert reader.tail_problem is not None
    assert reader.tail_problem.reason == "truncated payload"
    append_raw(last, frame[HEADER_SIZE + 3 :])
    assert list(reader.read(len(records))) == [records[-1], (len(records) + 1, b"slowly written")]
    assert reader.tail_problem is None


def test_the_reader_refuses_to_read_past_a_damaged_sealed_segment(journal):
    directory, records = journal
    sealed = segment_paths(directory)[0]
    content = bytearray(sealed.read_bytes())
    content[-1] ^= 0x01
    sealed.write_bytes(bytes(content))
    reader = open_reader(directory)
    seen = []
    with pytest.raises(JournalCorrupted, match="reading cannot continue past it") as raised:
        seen.extend(reader.read())
    assert raised.value.path == str(sealed)
    next_first_seq = first_seq_of(segment_paths(directory)[1])
    assert seen == records[: next_first_seq - 2]
    with pytest.raises(JournalCorrupted):
        reader.stats()


def test_open_reader_needs_a_journal(tmp_path):
    with pytest.raises(JournalNotFound, match=f"no journal at {tmp_path / 'missing'}"):
        open_reader(tmp_path / "missing")
    with pytest.raises(JournalNotFound, match="holds no segment files"):
        open_reader(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "chunk_bytes", [1, 7, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, 50, 333]
)
def test_reading_in_tiny_chunks_gives_the_same_answers(journal, monkeypatch, chunk_bytes):
    """Frames straddling chunk boundaries must be re-read whole, never cut or skipped."""
    directory, records = journal
    last = segment_paths(directory)[-1]
    torn = encode_frame(len(records) + 1, b"torn")[:-2]
    append_raw(last, torn)
    expected_tail = TornTail(
        last.name, last.stat().st_size - len(torn), "truncated payload", len(records)
    )
    copy = directory.parent / f"copy-{chunk_bytes}"
    shutil.copytree(directory, copy)
    reader = open_reader(directory)
    expected_stats = reader.stats()

    monkeypatch.setattr(segment_module, "READ_CHUNK_BYTES", chunk_bytes)

    for from_seq in (1, 2, 17, len(records), len(records) + 1):
        assert list(reader.read(from_seq)) == records[from_seq - 1 :]
        assert reader.tail_problem == expected_tail
    assert list(reader.read(5, 23)) == records[4:23]
    assert reader.stats() == expected_stats
    assert reader.last_seq == len(records)
    with reopen(copy) as store:
        assert store.recovery == Recovery(
            last.name,
            len(torn),
            len(records),
            f"truncated payload at offset {expected_tail.offset}",
        )
        assert list(store.read()) == records


# --------------------------------------------------------------------------- follow


async def test_follow_yields_existing_then_new_records_across_rotations(tmp_path, autojump_clock):
    poll_interval = 0.2
    store = open_file_store(tmp_path, fsync="none", max_segment_bytes=SEGMENT_BYTES)
    appended_at = {}

    def append(count: int) -> None:
        first = store.next_seq
        store.append([(seq, f"record {seq}".encode() * 3) for seq in range(first, first + count)])
        for seq in range(first, first + count):
            appended_at[seq] = trio.current_time()

    append(10)
    received = []

    async def consume() -> None:
        async for seq, payload in follow(tmp_path, 1, poll_interval=poll_interval):
            received.append((seq, payload, trio.current_time()))
            if len(received) == 60:
                return

    with store, trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            for _ in range(10):
                await trio.sleep(1)
                append(5)
        assert len(segment_paths(tmp_path)) > 3
        assert [(seq, payload) for seq, payload, _at in received] == list(store.read())
    for seq, _payload, at in received:
        assert appended_at[seq] <= at <= appended_at[seq] + poll_interval + 1e-9


async def test_follow_waits_for_a_frame_being_written(journal, autojump_clock):
    directory, records = journal
    last = segment_paths(directory)[-1]
    follower = follow(directory, len(records) - 1)
    with trio.fail_after(1):
        assert await follower.__anext__() == records[-2]
        assert await follower.__anext__() == records[-1]
    frame = encode_frame(len(records) + 1, b"in progress")
    append_raw(last, frame[: HEADER_SIZE + 2])
    with trio.move_on_after(10) as scope:
        await follower.__anext__()
    assert scope.cancelled_caught, "a partial frame must not be yielded"
    append_raw(last, frame[HEADER_SIZE + 2 :])
    with trio.fail_after(10):
        assert await follower.__anext__() == (len(records) + 1, b"in progress")


async def test_follow_from_a_future_seq_waits_for_it(journal, autojump_clock):
    directory, records = journal
    start = len(records) + 3
    received = []

    async def consume() -> None:
        async for record in follow(open_reader(directory), start, poll_interval=0.5):
            received.append(record)
            return

    with reopen(directory) as store, trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            for seq in range(len(records) + 1, len(records) + 40):
                await trio.sleep(0.3)
                store.append([(seq, f"later {seq}".encode() * 5)])
    assert received == [(start, f"later {start}".encode() * 5)]


def test_follow_rereads_a_segment_that_was_completed_and_sealed_meanwhile(journal, monkeypatch):
    """The writer finishes the frame and rotates between the follower's read and its listing."""
    directory, records = journal
    last = segment_paths(directory)[-1]
    next_seq = len(records) + 1
    frame = encode_frame(next_seq, b"finished late")
    append_raw(last, frame[:HEADER_SIZE])
    follower = follow(directory, next_seq - 1)
    assert follower.poll() == [records[-1]]
    real_list_segments = follow_module.list_segments

    def list_segments_after_the_writer_moved_on(path):
        if not (directory / f"{next_seq + 1:020d}.seg").exists():
            append_raw(last, frame[HEADER_SIZE:])
            append_raw(directory / f"{next_seq + 1:020d}.seg", encode_frame(next_seq + 1, b"new"))
        return real_list_segments(path)

    monkeypatch.setattr(follow_module, "list_segments", list_segments_after_the_writer_moved_on)
    # The read finds only the header; the listing then shows a newer segment, so the follower
    # must read this segment once more instead of calling its unfinished tail corruption.
    assert follower.poll() == [(next_seq, b"finished late")]
    assert follower.poll() == [(next_seq + 1, b"new")]


def test_follow_poll_raises_on_damage_in_a_sealed_segment(journal):
    directory, _records = journal
    paths = segment_paths(directory)
    content = bytearray(paths[0].read_bytes())
    content[HEADER_SIZE] ^= 0x01  # first payload byte of record 1
    paths[0].write_bytes(bytes(content))
    follower = follow(open_reader(directory), 1)
    with pytest.raises(JournalCorrupted, match="a newer segment exists") as raised:
        follower.poll()
    assert raised.value.path == str(paths[0])
    assert raised.value.offset == 0


def test_follow_rejects_bad_arguments(journal, tmp_path):
    directory, _records = journal
    with pytest.raises(ValueError, match="from_seq must be at least 1"):
        follow(directory, 0)
    with pytest.raises(ValueError, match="poll_interval must be a positive"):
        follow(directory, 1, poll_interval=0)
    with pytest.raises(JournalNotFound):
        follow(tmp_path / "missing", 1)
