"""The file journal: segment files in one directory, one writer, any number of readers.

Directory layout::

    00000000000000000001.seg   segments, named by the seq of their first record (20 digits)
    00000000000000004711.seg   the last segment is the only one ever written to
    LOCK                       flock()ed by the writer for its whole life; holds its pid
    snapshots/                 see `events.journal.snapshot`

A segment is a plain concatenation of frames (`events.journal.frame`). Once the writer rotates to
a new segment, the old one is *sealed*: it was fsynced before the new one was created and is never
written again. Hence the two rules of crash recovery, applied when a writer opens the journal:

* a problem in the **last** segment is a torn tail (a write that a crash interrupted): it is cut
  off at the last intact frame and reported as `Recovery`;
* a problem in a **sealed** segment is corruption: `JournalCorrupted` is raised and the journal
  refuses to start. Nothing repairs sealed segments.

Opening for writing checks the crc of every frame of every segment, so it costs one sequential read
of the whole journal (about 2 million ~200-byte records per second on one core).

Readers (`open_reader`, and ``read`` on the writer's store) list the directory on each ``read``,
so they see rotations made by a writer in another process, and they read each segment only up to
the size it had when they opened it: a frame that is still being written is never yielded.
"""

from __future__ import annotations

import bisect
import contextlib
import enum
import fcntl
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs

from .errors import JournalClosed, JournalCorrupted, JournalError, JournalLocked, JournalNotFound
from .frame import ScanStop, ScanSummary, encode_frames, scan_frames, skip_frames, verify_frames
from .snapshot import FileSnapshotStore
from .store import FsyncPolicy, Recovery, TornTail, check_batch_seqs, check_read_range

__all__ = [
    "DEFAULT_MAX_SEGMENT_BYTES",
    "FileJournalStore",
    "JournalReader",
    "JournalStats",
    "SegmentStats",
    "open_file_store",
    "open_reader",
]

DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024
LOCK_NAME = "LOCK"
SNAPSHOTS_NAME = "snapshots"
SEGMENT_SUFFIX = ".seg"

_SEGMENT_NAME = re.compile(r"(\d{20})\.seg")
_MAX_FIRST_SEQ = 10**20 - 1
_sync_data = getattr(os, "fdatasync", os.fsync)

_READ_CONSEQUENCE = "a sealed segment must be intact, so reading cannot continue past it"


def segment_name(first_seq: int) -> str:
    """Return the file name of the segment whose first record has seq ``first_seq``."""
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


@attrs.frozen
class SegmentFile:
    """A segment file found in a journal directory.

    Attributes:
        first_seq: Seq of its first record, from its name.
        path: Its path.
    """

    first_seq: int
    path: Path

    @property
    def name(self) -> str:
        """The file name."""
        return self.path.name


def list_segments(directory: Path) -> list[SegmentFile]:
    """List the segments of a journal directory, ordered by first seq.

    Args:
        directory: The journal directory.

    Returns:
        The segments; empty when there is none.

    Raises:
        JournalNotFound: The directory does not exist.
        JournalCorrupted: A ``*.seg`` file name does not parse, or the first segment does not
            start at seq 1.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise JournalNotFound(directory, "the directory does not exist") from None
    except NotADirectoryError:
        raise JournalNotFound(directory, "the path is not a directory") from None
    segments = []
    for name in names:
        if not name.endswith(SEGMENT_SUFFIX):
            continue
        match = _SEGMENT_NAME.fullmatch(name)
        if match is None or int(match.group(1)) == 0:
            raise JournalCorrupted(
                directory / name,
                0,
                "segment file name does not parse as '<20-digit first seq, at least 1>.seg'",
            )
        segments.append(SegmentFile(int(match.group(1)), directory / name))
    segments.sort(key=lambda segment: segment.first_seq)
    if segments and segments[0].first_seq != 1:
        raise JournalCorrupted(
            segments[0].path,
            0,
            f"the first segment starts at seq {segments[0].first_seq}, but a journal starts at "
            "seq 1 (are segments missing?)",
        )
    return segments


def segment_containing(segments: Sequence[SegmentFile], seq: int) -> int:
    """Return the index of the segment that holds ``seq`` (judged by names only)."""
    first_seqs = [segment.first_seq for segment in segments]
    return max(bisect.bisect_right(first_seqs, seq) - 1, 0)


def _successor_problem(segment: SegmentFile, previous: SegmentFile, expected: int) -> str | None:
    if segment.first_seq == expected:
        return None
    return (
        f"segment name says it starts at seq {segment.first_seq}, but the previous segment "
        f"{previous.name} ends at seq {expected - 1}"
    )


def _open_for_reading(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise JournalError(
            f"journal segment {path} disappeared while reading; segments are never deleted by "
            "the journal, so something else removed it"
        ) from None


class SegmentCursor:
    """Reads the frames of one segment, resuming where the previous read stopped.

    The cursor always sits on a frame boundary. Each call of `records` reads the file up to the
    size it has at that moment, in chunks of at most ``chunk_bytes`` (larger only when a single
    frame is larger), skipping frames below ``from_seq`` by their headers alone.

    Attributes:
        segment: The segment read.
        offset: Byte offset just past the last frame consumed.
        next_seq: Seq the next frame must carry.
        stop: Why the last `records` call ended before the end of the file, or None when it reached
            the end (or ``to_seq``, or ``limit``). An incomplete frame at the end of the file also
            shows up here; whether that is a torn tail or a write in progress is for the caller to
            judge.
    """

    def __init__(self, segment: SegmentFile, chunk_bytes: int | None = None) -> None:
        self.segment = segment
        self.offset = 0
        self.next_seq = segment.first_seq
        self.stop: ScanStop | None = None
        self._chunk_bytes = READ_CHUNK_BYTES if chunk_bytes is None else chunk_bytes

    def records(
        self, from_seq: int, to_seq: int | None = None, limit: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` of intact frames with ``from_seq <= seq <= to_seq``.

        Args:
            from_seq: Frames below it are skipped without checking their crc.
            to_seq: Last seq wanted, inclusive; None for no bound.
            limit: Yield at most this many records; None for no bound.
        """
        self.stop = None
        descriptor = _open_for_reading(self.segment.path)
        try:
            size = os.fstat(descriptor).st_size
            if size < self.offset:
                self.stop = ScanStop(
                    self.offset, f"segment shrank to {size} bytes, below the read position"
                )
                return
            needed = 0
            count = 0
            while self.offset < size:
                if to_seq is not None and self.next_seq > to_seq:
                    return
                base = self.offset
                requested = min(max(self._chunk_bytes, needed), size - base)
                chunk = os.pread(descriptor, requested, base)
                if len(chunk) < requested:  # the file shrank under us; trust only what is there
                    size = base + len(chunk)
                position = 0
                stop = None
                if self.next_seq < from_seq:
                    skipped = skip_frames(chunk, 0, self.next_seq, from_seq)
                    position = skipped.end_offset
                    self.offset = base + position
                    self.next_seq += skipped.frame_count
                    stop = skipped.stop
                if stop is None:
                    scan = scan_frames(chunk, position, self.next_seq)
                    for seq, payload, end in scan:
                        if to_seq is not None and seq > to_seq:
                            return
                        self.offset = base + end
                        self.next_seq = seq + 1
                        yield seq, payload
                        count += 1
                        if limit is not None and count >= limit:
                            return
                    stop = scan.stop
                needed = 0
                if stop is not None:
                    absolute = base + stop.offset
                    if stop.incomplete and absolute + stop.needed_bytes <= size:
                        needed = stop.needed_bytes  # the frame continues past this chunk
                        continue
                    self.stop = ScanStop(absolute, stop.reason, stop.needed_bytes)
                    return
        finally:
            os.close(descriptor)


def verify_segment(segment: SegmentFile, chunk_bytes: int | None = None) -> tuple[int, ScanSummary]:
    """Check every frame of a segment (crc and seqs) without keeping any payload.

    Args:
        segment: The segment to check; its first frame must carry ``segment.first_seq``.
        chunk_bytes: Read size; None for `READ_CHUNK_BYTES`.

    Returns:
        The file size when it was opened, and a summary with absolute offsets.
    """
    if chunk_bytes is None:
        chunk_bytes = READ_CHUNK_BYTES
    descriptor = _open_for_reading(segment.path)
    try:
        size = os.fstat(descriptor).st_size
        offset = 0
        count = 0
        last_seq: int | None = None
        needed = 0
        while offset < size:
            requested = min(max(chunk_bytes, needed), size - offset)
            chunk = os.pread(descriptor, requested, offset)
            if len(chunk) < requested:
                size = offset + len(chunk)
            expected = segment.first_seq if last_seq is None else last_seq + 1
            summary = verify_frames(chunk, 0, expected)
            count += summary.frame_count
            if summary.last_seq is not None:
                last_seq = summary.last_seq
            offset += summary.end_offset
            needed = 0
            stop = summary.stop
            if stop is not None:
                if stop.incomplete and offset + stop.needed_bytes <= size:
                    needed = stop.needed_bytes
                    continue
                absolute_stop = ScanStop(offset, stop.reason, stop.needed_bytes)
                return size, ScanSummary(offset, count, last_seq, absolute_stop)
        return size, ScanSummary(offset, count, last_seq, None)
    finally:
        os.close(descriptor)


def _read_directory(
    directory: Path,
    from_seq: int,
    to_seq: int | None,
    report_tail: Callable[[TornTail], None],
) -> Iterator[tuple[int, bytes]]:
    """Yield records across segments; the shared core of every ``read``."""
    segments = list_segments(directory)
    if not segments:
        return
    start = segment_containing(segments, from_seq)
    expected = segments[start].first_seq
    for index in range(start, len(segments)):
        segment = segments[index]
        if index > start:
            problem = _successor_problem(segment, segments[index - 1], expected)
            if problem is not None:
                raise JournalCorrupted(segment.path, 0, problem, consequence=_READ_CONSEQUENCE)
        cursor = SegmentCursor(segment)
        yield from cursor.records(from_seq, to_seq)
        if to_seq is not None and cursor.next_seq > to_seq:
            return
        stop = cursor.stop
        if stop is not None:
            if index == len(segments) - 1:
                report_tail(TornTail(segment.name, stop.offset, stop.reason, cursor.next_seq - 1))
                return
            raise JournalCorrupted(
                segment.path, stop.offset, stop.reason, consequence=_READ_CONSEQUENCE
            )
        expected = cursor.next_seq


def _ignore_tail(tail: TornTail) -> None:
    """The writer reads only committed records, so a tail it meets is a write in progress."""


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def _read_lock_pid(descriptor: int) -> int | None:
    try:
        return int(os.pread(descriptor, 32, 0).strip())
    except (OSError, ValueError):
        return None


def _acquire_lock(directory: Path) -> tuple[int, int | None]:
    """Take the writer lock. Returns the descriptor and the pid a previous writer left in the
    lock file: a clean ``close`` empties it, so a pid means that writer died holding it."""
    descriptor = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_lock_pid(descriptor)
        os.close(descriptor)
        raise JournalLocked(directory, pid) from None
    except BaseException:
        os.close(descriptor)
        raise
    previous_pid = _read_lock_pid(descriptor)
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        os.fsync(descriptor)
    except BaseException:
        _release_lock(descriptor)
        raise
    return descriptor, previous_pid


def _release_lock(descriptor: int) -> None:
    try:
        os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # closing the last descriptor releases the flock


class _OpenState(enum.Enum):
    OPEN = "open"
    FAILED = "failed"
    CLOSED = "closed"


class FileJournalStore:
    """A `JournalStore` writing segment files; create it with `open_file_store`.

    ``append``, ``sync`` and ``close`` are serialised by an internal lock, so an interval timer may
    call ``sync`` while ``append`` runs in a worker thread. ``read`` takes no lock and may run
    concurrently with ``append``.

    If a write, fsync or rotation fails, the store becomes unusable (every later call except
    ``close`` raises `JournalError`): the batch may or may not be on disk, and only reopening the
    journal (which runs recovery) can tell.
    """

    def __init__(
        self,
        *,
        directory: Path,
        lock_descriptor: int,
        segment: SegmentFile,
        segment_size: int,
        next_seq: int,
        recovery: Recovery | None,
        fsync: FsyncPolicy,
        interval_ms: float,
        max_segment_bytes: int,
    ) -> None:
        self._directory = directory
        self._lock_descriptor = lock_descriptor
        self._segment = segment
        self._segment_size = segment_size
        self._next_seq = next_seq
        self._recovery = recovery
        self._fsync = fsync
        self._interval_seconds = interval_ms / 1000
        self._max_segment_bytes = max_segment_bytes
        self._snapshots = FileSnapshotStore(directory / SNAPSHOTS_NAME)
        self._mutex = threading.Lock()
        self._state = _OpenState.OPEN
        self._failure = ""
        self._unsynced = False
        self._last_sync = time.monotonic()
        self._descriptor = os.open(segment.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)

    @property
    def directory(self) -> Path:
        """The journal directory."""
        return self._directory

    @property
    def next_seq(self) -> int:
        """The seq the next appended record must carry (1 for an empty journal)."""
        return self._next_seq

    @property
    def recovery(self) -> Recovery | None:
        """What opening the journal cut from the last segment, or None if nothing."""
        return self._recovery

    @property
    def blocking(self) -> bool:
        """True unless the fsync policy is ``NONE`` (then ``append`` only fills the page cache)."""
        return self._fsync is not FsyncPolicy.NONE

    @property
    def fsync_policy(self) -> FsyncPolicy:
        """The fsync policy the store was opened with."""
        return self._fsync

    @property
    def segment_name(self) -> str:
        """File name of the segment being written."""
        return self._segment.name

    @property
    def snapshots(self) -> FileSnapshotStore:
        """Snapshots under ``<directory>/snapshots``."""
        return self._snapshots

    def append(self, records: Sequence[tuple[int, bytes]]) -> None:
        """Append a batch with one ``write()``, apply the fsync policy, rotate if full.

        Blocking (unless the policy is ``NONE``): run it in a worker thread from async code.
        The batch is checked before anything is written, so a rejected batch changes nothing.

        Args:
            records: ``(seq, payload)`` pairs with seqs ``next_seq``, ``next_seq + 1``, ... .

        Raises:
            ValueError: A seq is out of order or a payload is not bytes.
            JournalClosed: The store was closed.
            JournalError: Writing, fsyncing or rotating failed; the store is now unusable.
        """
        with self._mutex:
            self._check_usable()
            if not records:
                return
            check_batch_seqs(records, self._next_seq)
            data = encode_frames(records)
            try:
                _write_all(self._descriptor, data)
            except OSError as error:
                self._undo_partial_write()
                raise self._fail(
                    f"writing {len(data)} bytes (seqs {self._next_seq}.."
                    f"{self._next_seq + len(records) - 1}) to {self._segment.path} at offset "
                    f"{self._segment_size} failed: {error}"
                ) from error
            self._segment_size += len(data)
            self._unsynced = True
            if self._fsync is FsyncPolicy.PER_BATCH or (
                self._fsync is FsyncPolicy.INTERVAL
                and time.monotonic() - self._last_sync >= self._interval_seconds
            ):
                self._sync_segment()
            self._next_seq += len(records)
            if self._segment_size >= self._max_segment_bytes:
                self._rotate()

    def sync(self) -> None:
        """fsync the current segment if anything was written since the last fsync.

        Blocking. Works under every policy, including ``NONE``.

        Raises:
            JournalClosed: The store was closed.
            JournalError: fsync failed; the store is now unusable.
        """
        with self._mutex:
            self._check_usable()
            if self._unsynced:
                self._sync_segment()

    def read(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` for ``from_seq <= seq <= to_seq`` in order.

        Only records whose ``append`` had returned (including its fsync) when ``read`` was called
        are yielded. Synchronous and blocking (file reads).

        Raises:
            ValueError: ``from_seq`` is below 1.
            JournalClosed: The store was closed.
            JournalCorrupted: A sealed segment turned out damaged while reading.
        """
        if self._state is _OpenState.CLOSED:
            raise JournalClosed(f"journal store for {self._directory}")
        check_read_range(from_seq, to_seq)
        last_seq = self._next_seq - 1
        if to_seq is not None:
            last_seq = min(last_seq, to_seq)
        if from_seq > last_seq:
            return iter(())
        return _read_directory(self._directory, from_seq, last_seq, _ignore_tail)

    def close(self) -> None:
        """fsync (unless the policy is ``NONE``), close the segment and release the lock.

        Idempotent. The lock is released even when the final fsync fails (which is re-raised).
        """
        with self._mutex:
            if self._state is _OpenState.CLOSED:
                return
            try:
                if (
                    self._state is _OpenState.OPEN
                    and self._unsynced
                    and self._fsync is not FsyncPolicy.NONE
                ):
                    self._sync_segment()
            finally:
                self._state = _OpenState.CLOSED
                try:
                    os.close(self._descriptor)
                finally:
                    _release_lock(self._lock_descriptor)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<FileJournalStore {self._directory} next_seq={self._next_seq} "
            f"fsync={self._fsync.value} {self._state.value}>"
        )

    def _check_usable(self) -> None:
        if self._state is _OpenState.CLOSED:
            raise JournalClosed(f"journal store for {self._directory}")
        if self._state is _OpenState.FAILED:
            raise JournalError(
                f"journal store for {self._directory} is unusable after an earlier failure "
                f"({self._failure}); close it and open the journal again to run recovery"
            )

    def _fail(self, message: str) -> JournalError:
        self._state = _OpenState.FAILED
        self._failure = message
        return JournalError(f"{message}; the store is now unusable, reopen the journal to recover")

    def _undo_partial_write(self) -> None:
        # If this fails too, recovery on the next open cuts the partial frames instead.
        with contextlib.suppress(OSError):
            os.ftruncate(self._descriptor, self._segment_size)

    def _sync_segment(self) -> None:
        try:
            _sync_data(self._descriptor)
        except OSError as error:
            raise self._fail(f"fsync of {self._segment.path} failed: {error}") from error
        self._unsynced = False
        self._last_sync = time.monotonic()

    def _rotate(self) -> None:
        """Seal the current segment and start a new one named by ``next_seq``."""
        new_segment = SegmentFile(self._next_seq, self._directory / segment_name(self._next_seq))
        try:
            os.fsync(self._descriptor)
            descriptor = os.open(
                new_segment.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                0o644,
            )
        except OSError as error:
            raise self._fail(
                f"rotating from {self._segment.path} to {new_segment.path} failed: {error}"
            ) from error
        os.close(self._descriptor)
        self._descriptor = descriptor
        self._segment = new_segment
        self._segment_size = 0
        self._unsynced = False
        self._last_sync = time.monotonic()
        try:
            _fsync_directory(self._directory)
        except OSError as error:
            raise self._fail(f"fsync of directory {self._directory} failed: {error}") from error


@attrs.frozen
class _RecoveredTail:
    segment: SegmentFile
    size: int
    next_seq: int
    recovery: Recovery | None


def _recover(directory: Path, segments: list[SegmentFile]) -> _RecoveredTail:
    """Check every segment, cut a torn tail off the last one and say where appending resumes."""
    expected = 1
    for index, segment in enumerate(segments):
        if index > 0:
            problem = _successor_problem(segment, segments[index - 1], expected)
            if problem is not None:
                raise JournalCorrupted(segment.path, 0, problem)
        size, summary = verify_segment(segment)
        if index < len(segments) - 1:
            if summary.stop is not None:
                raise JournalCorrupted(
                    segment.path, summary.stop.offset, f"{summary.stop.reason} in a sealed segment"
                )
            if summary.frame_count == 0:
                raise JournalCorrupted(
                    segment.path, 0, "sealed segment is empty (only the last segment may be)"
                )
            expected += summary.frame_count
            continue
        expected += summary.frame_count
        if summary.stop is None:
            return _RecoveredTail(segment, size, expected, None)
        _truncate(segment.path, summary.end_offset)
        recovery = Recovery(
            segment=segment.name,
            truncated_bytes=size - summary.end_offset,
            last_seq=expected - 1,
            reason=f"{summary.stop.reason} at offset {summary.stop.offset}",
        )
        return _RecoveredTail(segment, summary.end_offset, expected, recovery)
    # No segment yet: start the journal with an empty segment 1.
    first = SegmentFile(1, directory / segment_name(1))
    descriptor = os.open(first.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    _fsync_directory(directory)
    return _RecoveredTail(first, 0, 1, None)


def _unclean_close(tail: _RecoveredTail, previous_pid: int) -> _RecoveredTail:
    """Report that the previous writer died without closing, even when its last write was
    whole (a kill between two appends leaves no torn bytes but is still a crash)."""
    note = f"the previous writer (pid {previous_pid}) did not close the journal"
    if tail.recovery is not None:
        recovery = attrs.evolve(tail.recovery, reason=f"{tail.recovery.reason}; {note}")
    else:
        recovery = Recovery(
            segment=tail.segment.name, truncated_bytes=0, last_seq=tail.next_seq - 1, reason=note
        )
    return attrs.evolve(tail, recovery=recovery)


def _truncate(path: Path, length: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(descriptor, length)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _ensure_directory(directory: Path, *, create: bool) -> None:
    if directory.is_dir():
        return
    if directory.exists():
        raise JournalNotFound(directory, "the path exists but is not a directory")
    if not create:
        raise JournalNotFound(directory, "the directory does not exist (and create=False)")
    missing = [directory, *(parent for parent in directory.parents if not parent.exists())]
    directory.mkdir(parents=True, exist_ok=True)
    for created in missing:
        _fsync_directory(created.parent)


def open_file_store(
    directory: str | os.PathLike[str],
    *,
    fsync: FsyncPolicy | str = FsyncPolicy.PER_BATCH,
    interval_ms: float = 50,
    max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES,
    create: bool = True,
) -> FileJournalStore:
    """Open a journal directory for writing, recovering a torn tail if there is one.

    Takes the directory's writer lock (held until ``close``), checks every segment (one sequential
    read of the whole journal), cuts a torn tail off the last segment (reported as
    ``store.recovery``) and opens the last segment for appending. If the last segment is already
    full it rotates at once. Blocking.

    Args:
        directory: The journal directory.
        fsync: When appends are fsynced (a `FsyncPolicy` or its value).
        interval_ms: Minimum time between fsyncs under ``FsyncPolicy.INTERVAL``.
        max_segment_bytes: Rotate once the current segment reaches this size.
        create: Create the directory and the first segment when missing; when False a missing
            or empty journal raises `JournalNotFound`.

    Returns:
        The open store; use it as a context manager or call ``close``.

    Raises:
        JournalLocked: Another store object holds the directory.
        JournalCorrupted: A segment name is out of sequence or a sealed segment is damaged.
        JournalNotFound: ``create`` is False and there is no journal.
        ValueError: An argument is out of range.
    """
    policy = FsyncPolicy(fsync)
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    if max_segment_bytes <= 0:
        raise ValueError(f"max_segment_bytes must be positive, got {max_segment_bytes}")
    path = Path(directory)
    _ensure_directory(path, create=create)
    if not create and not list_segments(path):
        raise JournalNotFound(path, "the directory holds no segment files (*.seg)")
    lock_descriptor, previous_pid = _acquire_lock(path)
    try:
        (path / SNAPSHOTS_NAME).mkdir(exist_ok=True)
        tail = _recover(path, list_segments(path))
        if previous_pid is not None:
            tail = _unclean_close(tail, previous_pid)
        store = FileJournalStore(
            directory=path,
            lock_descriptor=lock_descriptor,
            segment=tail.segment,
            segment_size=tail.size,
            next_seq=tail.next_seq,
            recovery=tail.recovery,
            fsync=policy,
            interval_ms=interval_ms,
            max_segment_bytes=max_segment_bytes,
        )
    except BaseException:
        _release_lock(lock_descriptor)
        raise
    if tail.size >= max_segment_bytes:
        # A crash (or a smaller max_segment_bytes) left a full last segment: seal it now.
        try:
            with store._mutex:
                store._rotate()
        except BaseException:
            store.close()
            raise
    return store


@attrs.frozen
class SegmentStats:
    """One segment as seen by `JournalReader.stats`.

    Attributes:
        name: File name.
        first_seq: Seq of its first record (from its name).
        last_seq: Seq of its last intact record (``first_seq - 1`` when it holds none).
        size_bytes: File size, including any torn tail.
    """

    name: str
    first_seq: int
    last_seq: int
    size_bytes: int


@attrs.frozen
class JournalStats:
    """What `JournalReader.stats` found.

    Attributes:
        segments: Every segment, in order.
        total_records: Intact records in the journal.
        total_bytes: Sum of the segment file sizes.
    """

    segments: tuple[SegmentStats, ...]
    total_records: int
    total_bytes: int


class JournalReader:
    """Read-only access to a journal directory; create it with `open_reader`.

    A reader never writes, never truncates and takes no lock, so it may run while a writer (in
    this or another process) appends. It never yields a partial frame: an incomplete frame at the
    end of the last segment is treated as not committed yet and recorded in `tail_problem`.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._tail_problem: TornTail | None = None

    @property
    def directory(self) -> Path:
        """The journal directory."""
        return self._directory

    @property
    def tail_problem(self) -> TornTail | None:
        """The torn (or still being written) record found by the last read that reached the end.

        None before any such read, after one that found the last segment intact, and after a
        read that stopped at ``to_seq`` before reaching the end.
        """
        return self._tail_problem

    @property
    def last_seq(self) -> int:
        """Seq of the last intact record (0 for an empty journal).

        Checks the last segment on every access (one sequential read of it) and updates
        `tail_problem`.
        """
        segments = list_segments(self._directory)
        if not segments:
            return 0
        last = segments[-1]
        _size, summary = verify_segment(last)
        self._set_tail(last, summary)
        return last.first_seq + summary.frame_count - 1

    def read(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` for ``from_seq <= seq <= to_seq`` in order.

        Frames before ``from_seq`` are skipped by their headers, without decoding payloads.
        The directory is listed when iteration starts.

        Raises:
            ValueError: ``from_seq`` is below 1.
            JournalCorrupted: A sealed segment is damaged or segment names are not contiguous.
        """
        check_read_range(from_seq, to_seq)
        return self._read(from_seq, to_seq)

    def _read(self, from_seq: int, to_seq: int | None) -> Iterator[tuple[int, bytes]]:
        self._tail_problem = None
        yield from _read_directory(self._directory, from_seq, to_seq, self._record_tail)

    def stats(self) -> JournalStats:
        """Check every segment and summarise them; updates `tail_problem`.

        Raises:
            JournalCorrupted: A sealed segment is damaged or segment names are not contiguous.
        """
        segments = list_segments(self._directory)
        found = []
        expected = 1
        self._tail_problem = None
        for index, segment in enumerate(segments):
            if index > 0:
                problem = _successor_problem(segment, segments[index - 1], expected)
                if problem is not None:
                    raise JournalCorrupted(segment.path, 0, problem, consequence=_READ_CONSEQUENCE)
            size, summary = verify_segment(segment)
            if summary.stop is not None and index < len(segments) - 1:
                raise JournalCorrupted(
                    segment.path,
                    summary.stop.offset,
                    summary.stop.reason,
                    consequence=_READ_CONSEQUENCE,
                )
            self._set_tail(segment, summary)
            expected = segment.first_seq + summary.frame_count
            found.append(SegmentStats(segment.name, segment.first_seq, expected - 1, size))
        return JournalStats(
            segments=tuple(found),
            total_records=sum(item.last_seq - item.first_seq + 1 for item in found),
            total_bytes=sum(item.size_bytes for item in found),
        )

    def _set_tail(self, segment: SegmentFile, summary: ScanSummary) -> None:
        stop = summary.stop
        if stop is None:
            self._tail_problem = None
            return
        last_seq = segment.first_seq + summary.frame_count - 1
        self._tail_problem = TornTail(segment.name, stop.offset, stop.reason, last_seq)

    def _record_tail(self, tail: TornTail) -> None:
        self._tail_problem = tail

    def __repr__(self) -> str:
        return f"<JournalReader {self._directory}>"


def open_reader(directory: str | os.PathLike[str]) -> JournalReader:
    """Open a journal directory read-only (for replay, ``journal show``, ``journal tail``).

    Args:
        directory: The journal directory.

    Returns:
        A reader; it holds no file open between calls, so it needs no closing.

    Raises:
        JournalNotFound: The directory does not exist or holds no segment.
        JournalCorrupted: A segment file name does not parse.
    """
    path = Path(directory)
    if not list_segments(path):
        raise JournalNotFound(path, "the directory holds no segment files (*.seg)")
    return JournalReader(path)
