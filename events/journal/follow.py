"""Follow a file journal as it grows (``tern journal tail``)."""

from __future__ import annotations

import collections
import math
import os
from pathlib import Path

import trio

from .errors import JournalCorrupted
from .segment import (
    FileJournalStore,
    JournalReader,
    SegmentCursor,
    list_segments,
    open_reader,
    segment_containing,
)

__all__ = ["JournalFollower", "follow"]

_SEALED = (
    "a newer segment exists, so this segment is sealed and the bytes are not a record still "
    "being written; following cannot continue past them"
)


class JournalFollower:
    """Async iterator over a journal's records from a seq onwards, waiting for new ones forever.

    Each poll reads whatever was committed since the previous one, following rotations to the
    next segment. A frame that is still being written (or torn) at the end of the last segment
    is never yielded: the follower waits for it to complete. The follower keeps its position
    (segment and byte offset) between polls, so a poll costs only the new bytes.

    File reads are synchronous and bounded to ``batch_size`` records per poll, so each one blocks
    the trio thread only briefly.

    Cancellation: every ``__anext__`` is a checkpoint; cancelling it loses no record (the next
    ``__anext__`` yields the record that would have been returned).
    """

    def __init__(
        self,
        directory: Path,
        from_seq: int,
        *,
        poll_interval: float = 0.2,
        batch_size: int = 1024,
    ) -> None:
        if from_seq < 1:
            raise ValueError(f"from_seq must be at least 1 (seqs start at 1), got {from_seq}")
        if not poll_interval > 0 or math.isinf(poll_interval):
            raise ValueError(
                f"poll_interval must be a positive number of seconds, got {poll_interval}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._directory = directory
        self._next_seq = from_seq
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._cursor: SegmentCursor | None = None
        self._pending: collections.deque[tuple[int, bytes]] = collections.deque()

    @property
    def next_seq(self) -> int:
        """The seq of the next record to be read from disk (records already buffered excluded)."""
        return self._next_seq

    def __aiter__(self) -> JournalFollower:
        return self

    async def __anext__(self) -> tuple[int, bytes]:
        await trio.lowlevel.checkpoint()
        while not self._pending:
            self._pending.extend(self.poll())
            if not self._pending:
                await trio.sleep(self._poll_interval)
        return self._pending.popleft()

    def poll(self) -> list[tuple[int, bytes]]:
        """Read, without waiting, up to ``batch_size`` records committed since the last poll.

        Returns:
            The new records, in order; empty when there is nothing new yet.

        Raises:
            JournalCorrupted: A sealed segment is damaged or the next segment's name does not
                continue the previous one.
        """
        while True:
            if self._cursor is None:
                segments = list_segments(self._directory)
                if not segments:
                    return []
                self._cursor = SegmentCursor(segments[segment_containing(segments, self._next_seq)])
            cursor = self._cursor
            records = self._read(cursor)
            if records:
                return records
            # Nothing new in this segment. Did the writer move on to a newer one?
            following = [
                segment
                for segment in list_segments(self._directory)
                if segment.first_seq > cursor.segment.first_seq
            ]
            if not following:
                return []
            # The writer finishes a segment before creating the next one, so whatever this one
            # holds now is final: read it once more, then move on.
            records = self._read(cursor)
            if records:
                return records
            if cursor.stop is not None:
                raise JournalCorrupted(
                    cursor.segment.path, cursor.stop.offset, cursor.stop.reason, consequence=_SEALED
                )
            successor = following[0]
            if successor.first_seq != cursor.next_seq:
                raise JournalCorrupted(
                    successor.path,
                    0,
                    f"segment name says it starts at seq {successor.first_seq}, but the previous "
                    f"segment {cursor.segment.name} ends at seq {cursor.next_seq - 1}",
                    consequence="following cannot continue past it",
                )
            self._cursor = SegmentCursor(successor)

    def _read(self, cursor: SegmentCursor) -> list[tuple[int, bytes]]:
        records = list(cursor.records(self._next_seq, limit=self._batch_size))
        if records:
            self._next_seq = records[-1][0] + 1
        return records


def follow(
    source: JournalReader | FileJournalStore | str | os.PathLike[str],
    from_seq: int = 1,
    *,
    poll_interval: float = 0.2,
) -> JournalFollower:
    """Follow a file journal: yield its records from ``from_seq`` on, then new ones forever.

    Use as ``async for seq, payload in follow(directory, from_seq): ...``.

    Args:
        source: A reader, a file store, or the journal directory.
        from_seq: First seq to yield.
        poll_interval: Seconds to sleep between polls when there is nothing new.

    Returns:
        A `JournalFollower` (an async iterator of ``(seq, payload)``).

    Raises:
        JournalNotFound: ``source`` is a path with no journal.
        ValueError: ``from_seq`` is below 1 or ``poll_interval`` is not positive.
    """
    if isinstance(source, (JournalReader, FileJournalStore)):
        directory = source.directory
    else:
        directory = open_reader(source).directory
    return JournalFollower(directory, from_seq, poll_interval=poll_interval)
