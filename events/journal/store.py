"""The interface every journal store implements, and the values it reports.

A journal stores opaque payload bytes under caller-assigned sequence numbers: gap-free, starting
at 1. It knows nothing about events or codecs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import attrs

from .snapshot import SnapshotStore

__all__ = [
    "FsyncPolicy",
    "JournalStore",
    "Recovery",
    "TornTail",
    "check_batch_seqs",
    "check_read_range",
]


class FsyncPolicy(enum.Enum):
    """When a file store forces appended bytes to stable storage.

    Attributes:
        PER_BATCH: fsync after every ``append`` (group commit: one fsync per batch).
        INTERVAL: fsync after an ``append`` when at least ``interval_ms`` passed since the last
            fsync; a caller-side timer should also call ``sync()`` so a quiet journal is not left
            unsynced.
        NONE: never fsync appended records (tests, backtests). Segment rotation still fsyncs the
            sealed segment, so a sealed segment is always complete.
    """

    PER_BATCH = "per_batch"
    INTERVAL = "interval"
    NONE = "none"


@attrs.frozen
class Recovery:
    """What opening a journal for writing had to repair.

    Attributes:
        segment: File name of the repaired segment (``"memory"`` for the memory store).
        truncated_bytes: How many bytes were cut from its end.
        last_seq: Last intact seq kept (0 if the journal is now empty).
        reason: Why the tail was cut, e.g. ``"crc mismatch at offset 1234"``.
    """

    segment: str
    truncated_bytes: int
    last_seq: int
    reason: str


@attrs.frozen
class TornTail:
    """A torn record found at the end of the last segment by a read-only reader.

    A reader never repairs anything: the bytes stay until a writer opens the journal. While a
    writer is running this can also be a record that is still being written.

    Attributes:
        segment: File name of the last segment.
        offset: Byte offset of the first bytes that do not form an intact frame.
        reason: What is wrong with them, e.g. ``"truncated payload"``.
        last_seq: Last intact seq before them (0 if none).
    """

    segment: str
    offset: int
    reason: str
    last_seq: int


@runtime_checkable
class JournalStore(Protocol):
    """An append-only record store with caller-assigned, gap-free seqs starting at 1.

    A store has a single writer. ``read`` may run while ``append`` runs in a worker thread; the
    file store also serialises ``append``, ``sync`` and ``close`` with a lock, so a timer may call
    ``sync`` while an ``append`` is in flight.
    """

    @property
    def next_seq(self) -> int:
        """The seq the next appended record must carry (1 for an empty journal)."""
        ...

    @property
    def recovery(self) -> Recovery | None:
        """What opening the store repaired, or None when the tail was intact."""
        ...

    @property
    def blocking(self) -> bool:
        """True when ``append`` does blocking disk I/O worth running in a worker thread."""
        ...

    @property
    def snapshots(self) -> SnapshotStore:
        """The snapshot store kept next to this journal."""
        ...

    def append(self, records: Sequence[tuple[int, bytes]]) -> None:
        """Append a batch of ``(seq, payload)`` records, then apply the fsync policy.

        Raises:
            ValueError: The seqs are not exactly ``next_seq``, ``next_seq + 1``, ... .
        """
        ...

    def sync(self) -> None:
        """Force everything written so far to stable storage."""
        ...

    def read(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` for ``from_seq <= seq <= to_seq`` in order.

        Only records whose ``append`` had returned when ``read`` was called are yielded.
        """
        ...

    def close(self) -> None:
        """Sync per the fsync policy and release the store; idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


def check_batch_seqs(records: Sequence[tuple[int, bytes]], next_seq: int) -> None:
    """Check that a batch carries exactly the seqs ``next_seq``, ``next_seq + 1``, ... .

    Args:
        records: The batch about to be appended.
        next_seq: The seq the first record must carry.

    Raises:
        ValueError: Naming the first record whose seq is wrong, or whose payload is not bytes.
    """
    for index, (seq, payload) in enumerate(records):
        if seq != next_seq + index:
            raise ValueError(
                f"record {index} of the batch has seq {seq!r} but the journal expects "
                f"{next_seq + index} (seqs must be gap-free; next_seq is {next_seq})"
            )
        if type(payload) is not bytes:
            raise ValueError(
                f"record {index} of the batch (seq {seq}) has a {type(payload).__name__} "
                "payload; the journal stores bytes only"
            )


def check_read_range(from_seq: int, to_seq: int | None) -> None:
    """Reject a read range that cannot be meant.

    Raises:
        ValueError: ``from_seq`` is below 1.
    """
    if from_seq < 1:
        raise ValueError(f"from_seq must be at least 1 (seqs start at 1), got {from_seq}")
    if to_seq is not None and to_seq < 0:
        raise ValueError(f"to_seq must not be negative, got {to_seq}")
