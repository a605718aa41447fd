"""Snapshots of actor state, kept next to the journal.

A snapshot is opaque bytes saved under an actor name and the seq of the last journal record folded
into it. Snapshots are an optimisation: any of them may be deleted and rebuilt by replay, so a
snapshot that fails its check is skipped (with a warning) rather than trusted.

File layout: ``<snapshots directory>/<actor>/<20-digit seq>.snap``. A file holds a 24-byte
little-endian header, ``magic b"TSNP" | version u16 (1) | flags u16 (0) | seq u64 | length u32 |
crc32 u32``, then the data; the crc covers the first 20 header bytes and the data. Files are
written to a temporary name, fsynced, renamed into place with ``os.replace`` and the directory is
fsynced, so a crash leaves either the old set of snapshots or the new one, plus at worst a
temporary file that every reader ignores.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "FileSnapshotStore",
    "MemorySnapshotStore",
    "SnapshotStore",
    "validate_actor_name",
]

logger = logging.getLogger(__name__)

_MAGIC = b"TSNP"
_VERSION = 1
_PREFIX = struct.Struct("<4sHHQI")  # magic, version, flags, seq, length: covered by the crc
_CRC = struct.Struct("<I")
_HEADER_SIZE = _PREFIX.size + _CRC.size
_NAME = re.compile(r"(\d{20})\.snap")
_ACTOR = re.compile(r"[A-Za-z0-9_.@:+=-]+")
_MAX_ACTOR_LENGTH = 200
_MAX_SEQ = 10**20 - 1


@runtime_checkable
class SnapshotStore(Protocol):
    """Saves and loads per-actor snapshots keyed by seq."""

    def save(self, actor: str, seq: int, data: bytes) -> None:
        """Store ``data`` as the state of ``actor`` after folding record ``seq``."""
        ...

    def load_latest(self, actor: str, at_or_below: int | None = None) -> tuple[int, bytes] | None:
        """Return ``(seq, data)`` of the newest valid snapshot with ``seq <= at_or_below``."""
        ...

    def list(self, actor: str) -> builtins.list[int]:
        """Return the seqs ``actor`` has snapshots for, ascending."""
        ...

    def prune(self, actor: str, keep: int) -> None:
        """Delete all but the newest ``keep`` snapshots of ``actor``."""
        ...


def validate_actor_name(actor: str) -> None:
    """Check that an actor name is safe to use as a directory name.

    Args:
        actor: The name to check.

    Raises:
        ValueError: Saying what is wrong with the name.
    """
    problem = None
    if not isinstance(actor, str):
        problem = f"it is a {type(actor).__name__}, not a str"
    elif not actor:
        problem = "it is empty"
    elif "/" in actor or "\\" in actor or (os.altsep is not None and os.altsep in actor):
        problem = "it contains a path separator"
    elif actor.startswith("."):
        problem = "it starts with '.' (reserved for '.', '..' and hidden files)"
    elif len(actor) > _MAX_ACTOR_LENGTH:
        problem = f"it is longer than {_MAX_ACTOR_LENGTH} characters"
    elif _ACTOR.fullmatch(actor) is None:
        problem = "it may only contain ASCII letters, digits and _ . @ : + = -"
    if problem is not None:
        raise ValueError(f"invalid snapshot actor name {actor!r}: {problem}")


def _check_seq_and_data(seq: int, data: bytes) -> None:
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= _MAX_SEQ:
        raise ValueError(f"snapshot seq must be an int between 0 and {_MAX_SEQ}, got {seq!r}")
    if type(data) is not bytes:
        raise ValueError(f"snapshot data must be bytes, got {type(data).__name__}")


def _check_keep(keep: int) -> None:
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise ValueError(f"prune must keep at least one snapshot, got keep={keep!r}")


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _encode_snapshot(seq: int, data: bytes) -> bytes:
    prefix = _PREFIX.pack(_MAGIC, _VERSION, 0, seq, len(data))
    return b"".join((prefix, _CRC.pack(zlib.crc32(data, zlib.crc32(prefix))), data))


def _decode_snapshot(content: bytes, expected_seq: int) -> bytes:
    """Return the data of a snapshot file, or raise ValueError saying why it is not valid."""
    if len(content) < _HEADER_SIZE:
        raise ValueError(
            f"file is {len(content)} bytes, shorter than the {_HEADER_SIZE}-byte header"
        )
    magic, version, flags, seq, length = _PREFIX.unpack_from(content)
    (crc,) = _CRC.unpack_from(content, _PREFIX.size)
    if magic != _MAGIC:
        raise ValueError(f"bad magic {magic!r}")
    if version != _VERSION or flags != 0:
        raise ValueError(f"unsupported version {version} / flags 0x{flags:04x}")
    if length != len(content) - _HEADER_SIZE:
        raise ValueError(
            f"header says {length} data bytes but the file holds {len(content) - _HEADER_SIZE}"
        )
    data = content[_HEADER_SIZE:]
    if zlib.crc32(data, zlib.crc32(content[: _PREFIX.size])) != crc:
        raise ValueError("crc mismatch")
    if seq != expected_seq:
        raise ValueError(f"header says seq {seq} but the file name says {expected_seq}")
    return data


class FileSnapshotStore:
    """Snapshots as files under one directory (``<journal>/snapshots`` for a file journal).

    Args:
        directory: The snapshots directory. It is created on the first ``save``.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = Path(directory)

    @property
    def directory(self) -> Path:
        """The snapshots directory."""
        return self._directory

    def path_for(self, actor: str, seq: int) -> Path:
        """Return the file a snapshot of ``actor`` at ``seq`` is stored in."""
        validate_actor_name(actor)
        return self._directory / actor / f"{seq:020d}.snap"

    def save(self, actor: str, seq: int, data: bytes) -> None:
        """Durably store a snapshot, replacing any snapshot of the same actor and seq.

        Blocking: writes and fsyncs a file and two directories' worth of metadata.

        Args:
            actor: Actor name (ASCII letters, digits and ``_ . @ : + = -``; no path separator).
            seq: Seq of the last journal record folded into ``data``.
            data: The encoded state.

        Raises:
            ValueError: The actor name, seq or data is invalid.
        """
        validate_actor_name(actor)
        _check_seq_and_data(seq, data)
        actor_directory = self._directory / actor
        if not actor_directory.is_dir():
            actor_directory.mkdir(parents=True, exist_ok=True)
            _fsync_directory(self._directory)
            if self._directory.parent != self._directory:
                _fsync_directory(self._directory.parent)
        final_path = actor_directory / f"{seq:020d}.snap"
        unique = f"{os.getpid()}-{os.urandom(4).hex()}"
        temporary_path = actor_directory / f"{seq:020d}.snap.{unique}.tmp"
        content = _encode_snapshot(seq, data)
        descriptor = os.open(
            temporary_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644
        )
        try:
            view = memoryview(content)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        except BaseException:
            os.close(descriptor)
            temporary_path.unlink(missing_ok=True)
            raise
        os.close(descriptor)
        os.replace(temporary_path, final_path)
        _fsync_directory(actor_directory)

    def load_latest(self, actor: str, at_or_below: int | None = None) -> tuple[int, bytes] | None:
        """Return the newest snapshot that passes its check.

        A snapshot that fails its check (or vanishes while being read) is skipped with a warning
        naming the file and the reason, and the next older one is tried.

        Args:
            actor: Actor name.
            at_or_below: Only consider snapshots with ``seq <= at_or_below``; None for any.

        Returns:
            ``(seq, data)``, or None when there is no usable snapshot.
        """
        validate_actor_name(actor)
        for seq in reversed(self.list(actor)):
            if at_or_below is not None and seq > at_or_below:
                continue
            path = self._directory / actor / f"{seq:020d}.snap"
            try:
                return seq, _decode_snapshot(path.read_bytes(), seq)
            except FileNotFoundError:
                logger.warning("snapshot %s vanished while loading it; trying an older one", path)
            except ValueError as error:
                logger.warning("skipping corrupt snapshot %s: %s; trying an older one", path, error)
        return None

    def list(self, actor: str) -> builtins.list[int]:
        """Return the seqs ``actor`` has snapshot files for, ascending (contents unchecked)."""
        validate_actor_name(actor)
        try:
            names = os.listdir(self._directory / actor)
        except FileNotFoundError:
            return []
        return sorted(
            int(match.group(1)) for name in names if (match := _NAME.fullmatch(name)) is not None
        )

    def prune(self, actor: str, keep: int) -> None:
        """Delete all but the newest ``keep`` snapshot files of ``actor`` (blocking).

        The newest ones are kept even when corrupt: :meth:`load_latest` falls back past them.

        Raises:
            ValueError: ``keep`` is below 1 (the newest snapshot is never deleted).
        """
        _check_keep(keep)
        seqs = self.list(actor)
        for seq in seqs[: max(0, len(seqs) - keep)]:
            (self._directory / actor / f"{seq:020d}.snap").unlink(missing_ok=True)


class MemorySnapshotStore:
    """Snapshots in a dict, for the memory journal store and tests."""

    def __init__(self) -> None:
        self._snapshots: dict[str, dict[int, bytes]] = {}

    def save(self, actor: str, seq: int, data: bytes) -> None:
        """Store a snapshot, replacing any snapshot of the same actor and seq.

        Raises:
            ValueError: The actor name, seq or data is invalid.
        """
        validate_actor_name(actor)
        _check_seq_and_data(seq, data)
        self._snapshots.setdefault(actor, {})[seq] = data

    def load_latest(self, actor: str, at_or_below: int | None = None) -> tuple[int, bytes] | None:
        """Return ``(seq, data)`` of the newest snapshot with ``seq <= at_or_below``, or None."""
        validate_actor_name(actor)
        snapshots = self._snapshots.get(actor, {})
        eligible = [seq for seq in snapshots if at_or_below is None or seq <= at_or_below]
        if not eligible:
            return None
        seq = max(eligible)
        return seq, snapshots[seq]

    def list(self, actor: str) -> builtins.list[int]:
        """Return the seqs ``actor`` has snapshots for, ascending."""
        validate_actor_name(actor)
        return sorted(self._snapshots.get(actor, {}))

    def prune(self, actor: str, keep: int) -> None:
        """Delete all but the newest ``keep`` snapshots of ``actor``.

        Raises:
            ValueError: ``keep`` is below 1 (the newest snapshot is never deleted).
        """
        validate_actor_name(actor)
        _check_keep(keep)
        snapshots = self._snapshots.get(actor, {})
        for seq in sorted(snapshots)[: max(0, len(snapshots) - keep)]:
            del snapshots[seq]
