"""A journal store in memory, for tests and backtests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Self

from .errors import JournalClosed
from .snapshot import MemorySnapshotStore
from .store import Recovery, check_batch_seqs, check_read_range

__all__ = ["MemoryJournalStore"]


class MemoryJournalStore:
    """A `JournalStore` keeping its records in a list.

    Nothing survives the object, so ``recovery`` is always None and ``sync`` does nothing.
    ``append`` does no I/O, so ``blocking`` is False.
    """

    def __init__(self) -> None:
        self._payloads: list[bytes] = []
        self._snapshots = MemorySnapshotStore()
        self._closed = False

    @property
    def next_seq(self) -> int:
        """The seq the next appended record must carry (1 for an empty journal)."""
        return len(self._payloads) + 1

    @property
    def recovery(self) -> Recovery | None:
        """Always None: a memory journal has no torn tail to repair."""
        return None

    @property
    def blocking(self) -> bool:
        """Always False: appending to memory does not block."""
        return False

    @property
    def snapshots(self) -> MemorySnapshotStore:
        """Snapshots kept in a dict."""
        return self._snapshots

    def append(self, records: Sequence[tuple[int, bytes]]) -> None:
        """Append a batch of ``(seq, payload)`` records.

        The batch is checked first, so a rejected batch leaves the journal unchanged.

        Raises:
            ValueError: The seqs are not exactly ``next_seq``, ``next_seq + 1``, ... .
            JournalClosed: The store was closed.
        """
        self._check_open()
        check_batch_seqs(records, self.next_seq)
        self._payloads.extend(payload for _seq, payload in records)

    def sync(self) -> None:
        """Do nothing: there is no stable storage behind this store."""
        self._check_open()

    def read(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` for ``from_seq <= seq <= to_seq`` in order.

        The range is fixed when ``read`` is called: records appended while the iterator is
        consumed are not yielded.

        Raises:
            ValueError: ``from_seq`` is below 1.
            JournalClosed: The store was closed.
        """
        self._check_open()
        check_read_range(from_seq, to_seq)
        last_seq = len(self._payloads)
        if to_seq is not None:
            last_seq = min(last_seq, to_seq)
        return self._records(from_seq, last_seq)

    def _records(self, from_seq: int, last_seq: int) -> Iterator[tuple[int, bytes]]:
        payloads = self._payloads
        for seq in range(from_seq, last_seq + 1):
            yield seq, payloads[seq - 1]

    def close(self) -> None:
        """Mark the store closed; idempotent. Later calls raise `JournalClosed`."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise JournalClosed("memory journal store")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
