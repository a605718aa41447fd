"""The frame codec: layout, round trips, and detection of every single-byte damage."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.journal import (
    HEADER_SIZE,
    encode_frame,
    encode_frames,
    scan_frames,
    skip_frames,
    verify_frames,
)

payload_lists = st.lists(st.binary(max_size=300), max_size=40)
seqs = st.integers(min_value=1, max_value=2**64 - 1000)


def frame_offsets(payloads: list[bytes]) -> list[int]:
    """Start offset of every frame, plus the end offset of the last one."""
    offsets = [0]
    for payload in payloads:
        offsets.append(offsets[-1] + HEADER_SIZE + len(payload))
    return offsets


def test_header_layout_is_the_documented_one():
    frame = encode_frame(7, b"abc")
    magic, flags, length, seq, crc = struct.unpack("<HHIQI", frame[:HEADER_SIZE])
    assert (magic, flags, length, seq) == (0x7E4E, 0, 3, 7)
    assert crc == zlib.crc32(frame[:16] + b"abc")
    assert frame[HEADER_SIZE:] == b"abc"
    # Golden bytes: changing any of them breaks every journal already written.
    assert frame.hex() == "4e7e00000300000007000000000000003a521b21616263"


@given(payloads=payload_lists, first_seq=seqs)
def test_round_trip(payloads, first_seq):
    records = [(first_seq + index, payload) for index, payload in enumerate(payloads)]
    buffer = encode_frames(records)
    assert buffer == b"".join(encode_frame(seq, payload) for seq, payload in records)

    scan = scan_frames(buffer, expected_seq=first_seq)
    found = list(scan)

    assert [(seq, payload) for seq, payload, _end in found] == records
    assert [end for _seq, _payload, end in found] == frame_offsets(payloads)[1:]
    assert scan.stop is None
    assert scan.end_offset == len(buffer)
    assert all(type(payload) is bytes for _seq, payload, _end in found)


@given(payloads=payload_lists, first_seq=seqs)
def test_views_and_bytearrays_scan_like_bytes(payloads, first_seq):
    records = [(first_seq + index, payload) for index, payload in enumerate(payloads)]
    buffer = encode_frames(records)
    for variant in (memoryview(buffer), bytearray(buffer)):
        found = [(seq, payload) for seq, payload, _end in scan_frames(variant, 0, first_seq)]
        assert found == records
        assert all(type(payload) is bytes for _seq, payload in found)


@given(payloads=payload_lists, first_seq=seqs)
def test_verify_counts_what_scan_yields(payloads, first_seq):
    records = [(first_seq + index, payload) for index, payload in enumerate(payloads)]
    buffer = encode_frames(records)
    summary = verify_frames(buffer, 0, first_seq)
    assert summary.frame_count == len(records)
    assert summary.end_offset == len(buffer)
    assert summary.last_seq == (records[-1][0] if records else None)
    assert summary.stop is None


@given(data=st.data(), payloads=st.lists(st.binary(max_size=60), min_size=1, max_size=12))
def test_every_single_byte_flip_is_detected(data, payloads):
    records = [(index + 1, payload) for index, payload in enumerate(payloads)]
    buffer = bytearray(encode_frames(records))
    position = data.draw(st.integers(0, len(buffer) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    buffer[position] ^= mask
    offsets = frame_offsets(payloads)
    damaged = max(index for index, offset in enumerate(offsets[:-1]) if offset <= position)

    scan = scan_frames(bytes(buffer), 0, 1)
    found = [(seq, payload) for seq, payload, _end in scan]

    assert found == records[:damaged]
    assert scan.stop is not None
    assert scan.stop.offset == offsets[damaged]
    summary = verify_frames(bytes(buffer), 0, 1)
    assert (summary.frame_count, summary.end_offset) == (damaged, offsets[damaged])
    assert summary.stop == scan.stop


def test_every_byte_of_a_small_buffer_is_covered():
    """Exhaustive companion of the hypothesis test: each byte, two different flips."""
    payloads = [b"", b"a", b"hello world"]
    records = [(index + 1, payload) for index, payload in enumerate(payloads)]
    original = encode_frames(records)
    offsets = frame_offsets(payloads)
    for position in range(len(original)):
        damaged = max(index for index, offset in enumerate(offsets[:-1]) if offset <= position)
        for mask in (0x01, 0xFF):
            buffer = bytearray(original)
            buffer[position] ^= mask
            scan = scan_frames(bytes(buffer), 0, 1)
            assert [(seq, payload) for seq, payload, _end in scan] == records[:damaged]
            assert scan.stop is not None
            assert scan.stop.offset == offsets[damaged], (position, mask)


@given(data=st.data(), payloads=st.lists(st.binary(max_size=60), min_size=1, max_size=12))
def test_every_truncation_stops_at_the_last_whole_frame(data, payloads):
    records = [(index + 1, payload) for index, payload in enumerate(payloads)]
    buffer = encode_frames(records)
    cut = data.draw(st.integers(0, len(buffer)), label="cut")
    offsets = frame_offsets(payloads)
    whole = max(index for index, offset in enumerate(offsets) if offset <= cut)

    scan = scan_frames(buffer[:cut], 0, 1)
    found = [(seq, payload) for seq, payload, _end in scan]

    assert found == records[:whole]
    assert scan.end_offset == offsets[whole]
    if cut == offsets[whole]:
        assert scan.stop is None
    else:
        assert scan.stop is not None
        assert scan.stop.offset == offsets[whole]
        assert scan.stop.incomplete
        assert scan.stop.reason in {"short header", "truncated payload"}
        frame_size = HEADER_SIZE + len(payloads[whole])
        expected_need = HEADER_SIZE if cut - offsets[whole] < HEADER_SIZE else frame_size
        assert scan.stop.needed_bytes == expected_need


@pytest.mark.parametrize(
    ("seqs_written", "expected_seq", "found", "reason"),
    [
        ([1, 2, 4], 1, [1, 2], "seq gap (expected 3, found 4)"),
        ([1, 2, 2], 1, [1, 2], "seq gap (expected 3, found 2)"),
        ([5, 6], 1, [], "seq gap (expected 1, found 5)"),
        ([5, 6, 8], None, [5, 6], "seq gap (expected 7, found 8)"),
    ],
)
def test_non_consecutive_seqs_stop_the_scan(seqs_written, expected_seq, found, reason):
    buffer = encode_frames([(seq, b"payload") for seq in seqs_written])
    scan = scan_frames(buffer, 0, expected_seq)
    assert [seq for seq, _payload, _end in scan] == found
    assert scan.stop is not None
    assert scan.stop.reason == reason
    assert scan.stop.offset == len(found) * (HEADER_SIZE + len(b"payload"))
    assert not scan.stop.incomplete


def test_stop_reasons_name_the_problem():
    frame = encode_frame(1, b"abcd")
    bad_magic = b"\x00" + frame[1:]
    bad_flags = frame[:2] + b"\x01\x00" + frame[4:]
    bad_crc = frame[:-1] + b"X"
    long_length = frame[:4] + struct.pack("<I", 1000) + frame[8:]
    cases = {
        frame[:10]: "short header",
        bad_magic: "bad magic",
        bad_flags: "unsupported flags 0x0001",
        bad_crc: "crc mismatch",
        long_length: "truncated payload",
    }
    for buffer, reason in cases.items():
        scan = scan_frames(buffer, 0, 1)
        assert list(scan) == []
        assert scan.stop is not None
        assert (scan.stop.offset, scan.stop.reason) == (0, reason)


def test_scan_starts_at_the_given_offset():
    buffer = b"junk" + encode_frames([(3, b"c"), (4, b"d")])
    scan = scan_frames(buffer, 4, 3)
    assert next(scan) == (3, b"c", 4 + HEADER_SIZE + 1)
    assert scan.end_offset == 4 + HEADER_SIZE + 1
    assert scan.last_seq == 3


@given(payloads=st.lists(st.binary(max_size=50), min_size=1, max_size=20), data=st.data())
def test_skip_lands_on_the_target_frame(payloads, data):
    records = [(index + 1, payload) for index, payload in enumerate(payloads)]
    buffer = encode_frames(records)
    target = data.draw(st.integers(1, len(records) + 3), label="target")
    offsets = frame_offsets(payloads)
    summary = skip_frames(buffer, 0, 1, target)
    skipped = min(target - 1, len(records))
    assert summary.frame_count == skipped
    assert summary.end_offset == offsets[skipped]
    assert summary.stop is None
    rest = [seq for seq, _payload, _end in scan_frames(buffer, summary.end_offset, skipped + 1)]
    assert rest == [seq for seq, _payload in records[skipped:]]


def test_skip_reports_a_damaged_header():
    buffer = encode_frames([(1, b"a"), (3, b"b")])
    summary = skip_frames(buffer, 0, 1, 10)
    assert summary.frame_count == 1
    assert summary.stop is not None
    assert summary.stop.reason == "seq gap (expected 2, found 3)"
