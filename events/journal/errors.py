"""Exceptions raised by the journal.

Every message names the file or directory involved and, where it applies, the byte offset and the
reason, so an operator can act on it without reading code.
"""

from __future__ import annotations

import os

__all__ = [
    "JournalClosed",
    "JournalCorrupted",
    "JournalError",
    "JournalLocked",
    "JournalNotFound",
]


class JournalError(Exception):
    """Base class of every error the journal raises on purpose."""


class JournalLocked(JournalError):
    """Another store object, in this process or another, holds the journal's writer lock.

    Attributes:
        directory: The journal directory.
        pid: The pid recorded in the ``LOCK`` file by the holder, or None when it could not be read
            (the holder may have taken the lock but not written its pid yet).
    """

    def __init__(self, directory: str | os.PathLike[str], pid: int | None) -> None:
        self.directory = os.fspath(directory)
        self.pid = pid
        if pid is None:
            holder = "another process (its pid could not be read from the LOCK file)"
        elif pid == os.getpid():
            holder = f"pid {pid} (this process: another store object still holds it)"
        else:
            holder = f"pid {pid}"
        super().__init__(
            f"journal directory {self.directory} is already open for writing by {holder}; "
            "only one writer may hold it at a time"
        )


class JournalCorrupted(JournalError):
    """A segment holds bytes that are not a torn tail and that the journal will not repair.

    Attributes:
        path: The segment file.
        offset: Byte offset of the first bad frame (0 for problems with the file as a whole, such
            as its name).
        reason: What is wrong, e.g. ``"crc mismatch"`` or ``"seq gap (expected 7, found 9)"``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        offset: int,
        reason: str,
        *,
        consequence: str = "the journal refuses to start; sealed segments are never repaired",
    ) -> None:
        self.path = os.fspath(path)
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"journal segment {self.path} is corrupted at byte offset {offset}: {reason}; "
            f"{consequence}"
        )


class JournalNotFound(JournalError):
    """The journal directory does not exist or holds no segment.

    Attributes:
        directory: The path that was looked at.
    """

    def __init__(self, directory: str | os.PathLike[str], detail: str) -> None:
        self.directory = os.fspath(directory)
        super().__init__(f"no journal at {self.directory}: {detail}")


class JournalClosed(JournalError):
    """The store was used after ``close()``."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is closed; open the journal again to use it")
