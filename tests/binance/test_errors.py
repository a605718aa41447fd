"""Binance errors parsed once at the edge: the classification table and odd bodies."""

from __future__ import annotations

import orjson
import pytest

from actors.binance.errors import BinanceError, ErrorKind, classify, select_headers

RETRYABLE = ErrorKind.RETRYABLE
FINAL = ErrorKind.FINAL
UNKNOWN = ErrorKind.UNKNOWN_OUTCOME
LIMITED = ErrorKind.RATE_LIMITED
BANNED = ErrorKind.IP_BANNED
TIMESTAMP = ErrorKind.TIMESTAMP


@pytest.mark.parametrize(
    ("status", "code", "read", "write"),
    [
        # certainly not carried out: safe to send again whatever the method
        (503, -1001, RETRYABLE, RETRYABLE),
        (400, -1001, RETRYABLE, RETRYABLE),
        (503, -1008, RETRYABLE, RETRYABLE),
        (503, -1004, RETRYABLE, RETRYABLE),
        # unknown outcome: a read is repeated, a write is never reported as a rejection
        (400, -1006, RETRYABLE, UNKNOWN),
        (408, -1007, RETRYABLE, UNKNOWN),
        (500, -1000, RETRYABLE, UNKNOWN),
        (503, None, RETRYABLE, UNKNOWN),
        (502, None, RETRYABLE, UNKNOWN),
        (408, None, RETRYABLE, UNKNOWN),
        (0, None, RETRYABLE, UNKNOWN),
        (500, -2010, RETRYABLE, UNKNOWN),  # a rejection code on a 5xx is not trusted
        # limits
        (429, -1003, LIMITED, LIMITED),
        (429, -1015, LIMITED, LIMITED),
        (429, None, LIMITED, LIMITED),
        (418, -1003, BANNED, BANNED),
        (418, None, BANNED, BANNED),
        # clock
        (400, -1021, TIMESTAMP, TIMESTAMP),
        (400, -5028, TIMESTAMP, TIMESTAMP),
        # final rejections
        (400, -1013, FINAL, FINAL),
        (400, -1100, FINAL, FINAL),
        (400, -1102, FINAL, FINAL),
        (400, -1121, FINAL, FINAL),
        (400, -2010, FINAL, FINAL),
        (400, -2011, FINAL, FINAL),
        (400, -2013, FINAL, FINAL),
        (401, -2015, FINAL, FINAL),
        (400, -1022, FINAL, FINAL),
        (400, -4164, FINAL, FINAL),
        (400, -5022, FINAL, FINAL),
        (403, None, FINAL, FINAL),
        (404, None, FINAL, FINAL),
        (405, None, FINAL, FINAL),
    ],
)
def test_classification_table(status, code, read, write) -> None:
    assert classify(status, code, mutating=False) is read
    assert classify(status, code, mutating=True) is write


def error(status: int, body: bytes, method: str = "POST", **headers: str) -> BinanceError:
    return BinanceError.from_response(status, body, headers, method=method, path="/api/v3/order")


def test_a_binance_error_body_gives_code_and_message() -> None:
    body = b'{"code":-2010,"msg":"Account has insufficient balance for requested action."}'
    parsed = error(400, body, **{"X-MBX-USED-WEIGHT-1M": "3", "Content-Type": "json"})
    assert (parsed.status, parsed.code, parsed.kind) == (400, -2010, FINAL)
    assert parsed.message == "Account has insufficient balance for requested action."
    assert parsed.body == body.decode()
    assert parsed.headers == {"x-mbx-used-weight-1m": "3"}
    assert str(parsed) == (
        "POST /api/v3/order: HTTP 400 -2010 Account has insufficient balance for requested "
        "action. (final)"
    )


def test_a_code_sent_as_text_is_still_a_code() -> None:
    assert error(400, b'{"code":"-1013","msg":"Filter failure: LOT_SIZE"}').code == -1013


def test_a_waf_html_page_is_described_not_parsed() -> None:
    page = (
        b"<!DOCTYPE html><html><head><title>ERROR: The request could not be satisfied"
        b"</title></head><body>" + b"x" * 5000 + b"</body></html>"
    )
    parsed = error(403, page, **{"content-type": "text/html"})
    assert (parsed.code, parsed.kind) == (None, FINAL)
    assert "non-JSON body (text/html" in parsed.message
    assert "The request could not be satisfied" in parsed.message
    assert "firewall (WAF)" in parsed.message
    assert len(parsed.message) < 400  # the page itself stays in ``body``
    assert parsed.body.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("status", "method", "kind", "phrase"),
    [
        (403, "POST", FINAL, "firewall (WAF)"),
        (503, "POST", UNKNOWN, "outcome is not known"),
        (503, "GET", RETRYABLE, "outcome is not known"),
        (400, "GET", FINAL, "empty body"),
    ],
)
def test_an_empty_body_is_described(status, method, kind, phrase) -> None:
    parsed = error(status, b"", method)
    assert (parsed.code, parsed.kind) == (None, kind)
    assert f"HTTP {status} with an empty body" in parsed.message
    assert phrase in parsed.message


def test_plain_text_and_foreign_json_are_described() -> None:
    text = error(502, b"Bad Gateway\n", "DELETE")
    assert (text.kind, text.code) == (UNKNOWN, None)
    assert "'Bad Gateway'" in text.message
    foreign = error(400, b'{"error": "nope"}', "GET")
    assert (foreign.kind, foreign.code) == (FINAL, None)
    assert "not a Binance error" in foreign.message
    broken = error(400, b'{"code": -1013, "msg"', "GET")
    assert (broken.kind, broken.code) == (FINAL, None)
    assert "non-JSON" in broken.message


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert error(429, b"", **{"Retry-After": "7"}).retry_after_s == 7.0
    dated = error(
        429,
        b"",
        **{"Retry-After": "Wed, 21 Oct 2026 07:28:30 GMT", "Date": "Wed, 21 Oct 2026 07:28:00 GMT"},
    )
    assert dated.retry_after_s == 30.0
    assert error(429, b"").retry_after_s is None
    assert error(429, b"", **{"Retry-After": "soon"}).retry_after_s is None


def test_the_end_of_a_ban_is_read_from_the_message() -> None:
    body = orjson.dumps(
        {
            "code": -1003,
            "msg": "Way too much request weight used; IP banned until 1767225720000. Please use "
            "WebSocket Streams for live updates to avoid bans.",
        }
    )
    banned = error(418, body, "GET", **{"Retry-After": "120"})
    assert (banned.kind, banned.code, banned.banned_until_ms) == (BANNED, -1003, 1767225720000)
    assert banned.retry_after_s == 120.0
    assert error(418, b"").banned_until_ms is None


def test_no_answer_depends_on_whether_the_request_left() -> None:
    never = BinanceError.no_answer(
        "ConnectError: refused", written=False, method="post", path="/api/v3/order"
    )
    assert (never.kind, never.written, never.status, never.method) == (
        RETRYABLE,
        False,
        0,
        "POST",
    )
    assert "not sent" in never.message
    lost = BinanceError.no_answer(
        "no answer within 10 s", written=True, method="POST", path="/api/v3/order"
    )
    assert (lost.kind, lost.written) == (UNKNOWN, True)
    assert str(lost) == (
        "POST /api/v3/order: no answer within 10 s; the request was sent, no answer came back "
        "(unknown_outcome)"
    )
    read = BinanceError.no_answer("ReadError", written=True, method="GET", path="/api/v3/depth")
    assert read.kind is RETRYABLE


def test_select_headers_keeps_limits_date_and_retry_after() -> None:
    kept = select_headers(
        {
            "X-MBX-USED-WEIGHT-1M": "10",
            "x-mbx-order-count-10s": "1",
            "Date": "Wed, 21 Oct 2026 07:28:00 GMT",
            "Retry-After": "3",
            "Content-Type": "application/json",
            "Set-Cookie": "a=b",
        }
    )
    assert kept == {
        "x-mbx-used-weight-1m": "10",
        "x-mbx-order-count-10s": "1",
        "date": "Wed, 21 Oct 2026 07:28:00 GMT",
        "retry-after": "3",
    }


def test_a_partly_successful_cancel_replace_is_never_a_rejection() -> None:
    from actors.binance.errors import ErrorKind, classify

    assert classify(409, -2021, mutating=True) is ErrorKind.UNKNOWN_OUTCOME
    assert classify(400, -2022, mutating=True) is ErrorKind.FINAL  # nothing happened
