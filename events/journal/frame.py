"""The on-disk frame: a fixed header followed by opaque payload bytes.

Layout, little-endian, 20 header bytes::

    magic u16 (0x7E4E) | flags u16 (0) | length u32 | seq u64 | crc32 u32 | payload (length bytes)

``crc32`` is ``zlib.crc32`` over the first 16 header bytes followed by the payload, so a damaged
length, seq or payload is detected. Frames carry no sync marker: after a bad frame nothing further
in the same buffer can be trusted, which is why every scanner here stops at the first problem and
reports where and why instead of raising.

Everything in this module is pure and synchronous.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

import attrs

__all__ = [
    "FLAGS",
    "HEADER_SIZE",
    "MAGIC",
    "FrameScan",
    "ScanStop",
    "ScanSummary",
    "encode_frame",
    "encode_frames",
    "scan_frames",
    "skip_frames",
    "verify_frames",
]

MAGIC = 0x7E4E
FLAGS = 0
HEADER_SIZE = 20

_PREFIX = struct.Struct("<HHIQ")  # magic, flags, length, seq: the 16 bytes covered by the crc
_CRC = struct.Struct("<I")
_HEADER = struct.Struct("<HHIQI")
_PREFIX_SIZE = _PREFIX.size

_crc32 = zlib.crc32

Buffer = bytes | bytearray | memoryview


@attrs.frozen
class ScanStop:
    """Where and why a scan stopped before the end of its buffer.

    Attributes:
        offset: Offset of the frame that could not be accepted. Every frame before it is intact,
            so this is also the last good frame boundary.
        reason: One of ``"short header"``, ``"bad magic"``, ``"unsupported flags 0x...."``,
            ``"truncated payload"``, ``"crc mismatch"`` or ``"seq gap (expected N, found M)"``.
        needed_bytes: For ``"short header"`` and ``"truncated payload"``, how many bytes from
            ``offset`` the frame would need (as announced by its header, when one was read); a
            caller reading a file in chunks uses it to tell "frame continues in the next chunk"
            from "file ends inside a frame". 0 for every other reason.
    """

    offset: int
    reason: str
    needed_bytes: int = 0

    @property
    def incomplete(self) -> bool:
        """True when the buffer simply ended inside a frame (more bytes might complete it)."""
        return self.needed_bytes > 0


@attrs.frozen
class ScanSummary:
    """The outcome of `verify_frames` or `skip_frames`.

    Attributes:
        end_offset: Offset just past the last frame accepted (or skipped).
        frame_count: How many frames were accepted.
        last_seq: Seq of the last accepted frame, None when there was none.
        stop: Why the walk ended early, or None when it reached the end of the buffer (or, for
            `skip_frames`, the first frame at or above the target seq).
    """

    end_offset: int
    frame_count: int
    last_seq: int | None
    stop: ScanStop | None


def encode_frame(seq: int, payload: bytes) -> bytes:
    """Encode one record as a frame.

    Args:
        seq: The record's sequence number (unsigned 64-bit).
        payload: Opaque payload bytes, at most 4 GiB - 1.

    Returns:
        The header followed by the payload.
    """
    prefix = _PREFIX.pack(MAGIC, FLAGS, len(payload), seq)
    return b"".join((prefix, _CRC.pack(_crc32(payload, _crc32(prefix))), payload))


def encode_frames(records: Iterable[tuple[int, bytes]]) -> bytes:
    """Encode records as consecutive frames in one buffer.

    Args:
        records: ``(seq, payload)`` pairs, in the order they are to be written. Seqs are not
            checked here; the store checks them.

    Returns:
        All frames concatenated (built with a single join).
    """
    pack_prefix = _PREFIX.pack
    pack_crc = _CRC.pack
    crc32 = _crc32
    parts: list[bytes] = []
    append = parts.append
    for seq, payload in records:
        prefix = pack_prefix(MAGIC, FLAGS, len(payload), seq)
        append(prefix)
        append(pack_crc(crc32(payload, crc32(prefix))))
        append(payload)
    return b"".join(parts)


def _header_problem(
    buffer_length: int, offset: int, magic: int, flags: int, length: int
) -> ScanStop | None:
    if magic != MAGIC:
        return ScanStop(offset, "bad magic")
    if flags != FLAGS:
        return ScanStop(offset, f"unsupported flags 0x{flags:04x}")
    if offset + HEADER_SIZE + length > buffer_length:
        return ScanStop(offset, "truncated payload", HEADER_SIZE + length)
    return None


class FrameScan:
    """Iterator over the intact frames of a buffer; see `scan_frames`.

    Attributes:
        end_offset: Offset just past the last frame yielded so far (the start offset before any).
        last_seq: Seq of the last frame yielded so far, None before any.
        stop: Set once iteration ended early, to why and where; None while iterating and after a
            scan that consumed the whole buffer.
    """

    def __init__(self, buffer: Buffer, offset: int, expected_seq: int | None) -> None:
        self.end_offset = offset
        self.last_seq: int | None = None
        self.stop: ScanStop | None = None
        self._frames = self._generate(buffer, offset, expected_seq)

    def __iter__(self) -> Iterator[tuple[int, bytes, int]]:
        return self._frames

    def __next__(self) -> tuple[int, bytes, int]:
        return next(self._frames)

    def _generate(
        self, buffer: Buffer, offset: int, expected_seq: int | None
    ) -> Iterator[tuple[int, bytes, int]]:
        # Slicing bytes is faster than slicing a memoryview and gives the payload directly.
        data = buffer if isinstance(buffer, bytes) else memoryview(buffer)
        copy = data is not buffer
        size = len(data)
        unpack_from = _HEADER.unpack_from
        crc32 = _crc32
        while offset < size:
            if size - offset < HEADER_SIZE:
                self.stop = ScanStop(offset, "short header", HEADER_SIZE)
                return
            magic, flags, length, seq, crc = unpack_from(data, offset)
            problem = _header_problem(size, offset, magic, flags, length)
            if problem is not None:
                self.stop = problem
                return
            end = offset + HEADER_SIZE + length
            payload = data[offset + HEADER_SIZE : end]
            actual = crc32(payload, crc32(data[offset : offset + _PREFIX_SIZE]))
            if actual != crc:
                self.stop = ScanStop(offset, "crc mismatch")
                return
            if copy:
                payload = bytes(payload)
            if expected_seq is not None and seq != expected_seq:
                self.stop = ScanStop(offset, f"seq gap (expected {expected_seq}, found {seq})")
                return
            expected_seq = seq + 1
            offset = end
            self.end_offset = end
            self.last_seq = seq
            yield seq, payload, end


def scan_frames(buffer: Buffer, offset: int = 0, expected_seq: int | None = None) -> FrameScan:
    """Iterate over the intact frames of ``buffer``, stopping at the first problem.

    The scan never raises on bad data and never yields a damaged payload. It stops at the first
    short header, bad magic, unsupported flags, length past the end of the buffer, crc mismatch
    or non-consecutive seq; afterwards ``scan.stop`` says where and why.

    Args:
        buffer: The bytes to scan (bytes slices are fastest; memoryviews work, e.g. over mmap).
        offset: Where the first frame starts.
        expected_seq: The seq the first frame must carry. When None, the first frame's seq is
            accepted and the following frames must continue from it.

    Returns:
        A `FrameScan` yielding ``(seq, payload, end_offset)``, where ``end_offset`` is the offset
        just past that frame.
    """
    return FrameScan(buffer, offset, expected_seq)


def verify_frames(buffer: Buffer, offset: int = 0, expected_seq: int | None = None) -> ScanSummary:
    """Check frames like `scan_frames` without copying any payload.

    Args:
        buffer: The bytes to check.
        offset: Where the first frame starts.
        expected_seq: The seq the first frame must carry, or None to accept any.

    Returns:
        How far the frames are intact, how many there are and why checking stopped, if it did.
    """
    data = buffer if isinstance(buffer, bytes) else memoryview(buffer)
    size = len(data)
    unpack_from = _HEADER.unpack_from
    crc32 = _crc32
    count = 0
    last_seq: int | None = None
    while offset < size:
        if size - offset < HEADER_SIZE:
            return ScanSummary(
                offset, count, last_seq, ScanStop(offset, "short header", HEADER_SIZE)
            )
        magic, flags, length, seq, crc = unpack_from(data, offset)
        problem = _header_problem(size, offset, magic, flags, length)
        if problem is not None:
            return ScanSummary(offset, count, last_seq, problem)
        end = offset + HEADER_SIZE + length
        if (
            crc32(data[offset + HEADER_SIZE : end], crc32(data[offset : offset + _PREFIX_SIZE]))
            != crc
        ):
            return ScanSummary(offset, count, last_seq, ScanStop(offset, "crc mismatch"))
        if expected_seq is not None and seq != expected_seq:
            reason = f"seq gap (expected {expected_seq}, found {seq})"
            return ScanSummary(offset, count, last_seq, ScanStop(offset, reason))
        expected_seq = seq + 1
        last_seq = seq
        count += 1
        offset = end
    return ScanSummary(offset, count, last_seq, None)


def skip_frames(buffer: Buffer, offset: int, expected_seq: int, until_seq: int) -> ScanSummary:
    """Walk frame headers, without reading payloads, up to the first frame at or above a seq.

    Only the headers are checked (magic, flags, length within the buffer, consecutive seqs); the
    crc of a skipped frame is not, since its payload is never used.

    Args:
        buffer: The bytes to walk.
        offset: Where the first frame starts.
        expected_seq: The seq the first frame must carry.
        until_seq: Stop in front of the first frame whose seq is at least this.

    Returns:
        ``end_offset`` is the offset of the first frame at or above ``until_seq`` (or the end of
        the buffer, or the problem frame); ``frame_count``/``last_seq`` describe the frames skipped.
    """
    view = memoryview(buffer)
    size = len(view)
    unpack_from = _HEADER.unpack_from
    count = 0
    last_seq: int | None = None
    while offset < size and expected_seq < until_seq:
        if size - offset < HEADER_SIZE:
            return ScanSummary(
                offset, count, last_seq, ScanStop(offset, "short header", HEADER_SIZE)
            )
        magic, flags, length, seq, _crc = unpack_from(view, offset)
        problem = _header_problem(size, offset, magic, flags, length)
        if problem is not None:
            return ScanSummary(offset, count, last_seq, problem)
        if seq != expected_seq:
            reason = f"seq gap (expected {expected_seq}, found {seq})"
            return ScanSummary(offset, count, last_seq, ScanStop(offset, reason))
        last_seq = seq
        expected_seq = seq + 1
        count += 1
        offset += HEADER_SIZE + length
    return ScanSummary(offset, count, last_seq, None)
