"""The venue's error catalogue: Binance's codes, exact texts and HTTP statuses."""

from __future__ import annotations

import pytest

from scenarios.venue import errors
from scenarios.venue.errors import CATALOGUE, ErrorKind, VenueError, is_futures

# (helper, arguments, code, exact message, HTTP status), texts from Binance's errors.md.
EXPECTED = [
    ("unknown", (), -1000, "An unknown error occurred while processing the request.", 500),
    (
        "disconnected",
        (),
        -1001,
        "Internal error; unable to process your request. Please try again.",
        503,
    ),
    ("unauthorized", (), -1002, "You are not authorized to execute this request.", 401),
    (
        "timeout",
        (),
        -1007,
        "Timeout waiting for response from backend server. "
        "Send status unknown; execution status unknown.",
        408,
    ),
    ("unsupported_operation", (), -1020, "This operation is not supported.", 400),
    (
        "timestamp_outside_recv_window",
        (),
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
        400,
    ),
    (
        "timestamp_ahead_of_server",
        (),
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
        400,
    ),
    ("invalid_signature", (), -1022, "Signature for this request is not valid.", 400),
    (
        "illegal_characters",
        ("limit", "^[0-9]{1,20}$"),
        -1100,
        "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
        400,
    ),
    ("illegal_chars", (), -1100, "Illegal characters found in a parameter.", 400),
    ("too_many_parameters", (), -1101, "Too many parameters sent for this endpoint.", 400),
    ("duplicate_parameter", (), -1101, "Duplicate values for a parameter detected.", 400),
    (
        "mandatory_param_empty_or_malformed",
        ("symbol",),
        -1102,
        "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        400,
    ),
    (
        "either_param_required",
        ("orderId", "origClientOrderId"),
        -1102,
        "Param 'orderId' or 'origClientOrderId' must be sent, but both were empty/null!",
        400,
    ),
    (
        "value_too_large",
        ("recvWindow", 60000),
        -1102,
        "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
        400,
    ),
    (
        "unknown_param",
        (0, 1),
        -1104,
        "Not all sent parameters were read; read '0' parameter(s) but was sent '1'.",
        400,
    ),
    ("param_empty", ("symbol",), -1105, "Parameter 'symbol' was empty.", 400),
    ("param_not_required", ("price",), -1106, "Parameter 'price' sent when not required.", 400),
    ("bad_precision", ("price",), -1111, "Parameter 'price' has too much precision.", 400),
    ("empty_book", (), -1112, "No orders on book for symbol.", 400),
    ("invalid_tif", (), -1115, "Invalid timeInForce.", 400),
    ("invalid_order_type", (), -1116, "Invalid orderType.", 400),
    ("invalid_side", (), -1117, "Invalid side.", 400),
    ("bad_interval", (), -1120, "Invalid interval.", 400),
    ("bad_symbol", (), -1121, "Invalid symbol.", 400),
    ("invalid_listen_key", (), -1125, "This listenKey does not exist.", 400),
    (
        "invalid_parameter",
        ("interval",),
        -1130,
        "Data sent for parameter 'interval' is not valid.",
        400,
    ),
    ("bad_api_key_format", (), -2014, "API-key format invalid.", 401),
    ("rejected_mbx_key", (), -2015, "Invalid API-key, IP, or permissions for action.", 401),
]


@pytest.mark.parametrize(("helper", "args", "code", "message", "status"), EXPECTED)
def test_helpers_give_binance_code_text_and_status(helper, args, code, message, status):
    error = getattr(VenueError, helper)(*args)
    assert isinstance(error, VenueError)
    assert (error.code, error.msg, error.http_status) == (code, message, status)
    assert error.body() == {"code": code, "msg": message}
    assert error.headers == {}
    assert error.data is None


def test_module_level_helpers_are_the_class_rows():
    assert errors.bad_symbol is VenueError.bad_symbol
    assert errors.too_many_orders == VenueError.too_many_orders
    assert errors.invalid_signature().code == -1022
    with pytest.raises(AttributeError, match="no_such_helper"):
        errors.no_such_helper  # noqa: B018


def test_every_row_can_pick_one_template_per_argument_count():
    for name, kind in CATALOGUE.items():
        counts = [template.count("%s") for template in kind.templates]
        assert len(counts) == len(set(counts)), name
        assert kind.code < 0, name
        assert kind.http_status in (400, 401, 408, 500, 503), name
        for count in counts:
            assert kind(*(["x"] * count)).code == kind.code


def test_wrong_argument_count_is_a_programming_error():
    with pytest.raises(TypeError, match=r"BAD_SYMBOL \(-1121\) takes \[0\] message argument"):
        VenueError.bad_symbol("BTCUSDT")


def test_futures_texts_differ_where_binance_differs():
    assert VenueError.unknown(product="usdm").msg == (
        "An unknown error occured while processing the request."
    )
    assert VenueError.bad_precision("price", product="coinm").msg == (
        "Precision is over the maximum defined for this asset."
    )
    assert VenueError.server_busy(product="usdm").msg.startswith(
        "Request throttled by system-level protection."
    )
    assert VenueError.bad_symbol(product="usdm").msg == "Invalid symbol."


def test_status_headers_and_data_can_be_overridden_for_faults():
    error = VenueError.disconnected(http_status=502, headers={"X-Test": "1"}, data={"a": 1})
    assert (error.http_status, error.headers, error.data) == (502, {"X-Test": "1"}, {"a": 1})


def test_matches_compares_codes_only():
    assert VenueError.timestamp_ahead_of_server.matches(VenueError.timestamp_outside_recv_window())
    assert not VenueError.bad_symbol.matches(VenueError.invalid_side())
    assert not VenueError.bad_symbol.matches(ValueError("Invalid symbol."))


def test_str_and_repr_name_the_code():
    error = VenueError.bad_symbol()
    assert str(error) == "-1121 Invalid symbol."
    assert repr(error) == "VenueError(-1121, 'Invalid symbol.', http_status=400)"


def test_spot_weight_limit_reply():
    error = VenueError.too_many_requests(
        6000,
        "1 MINUTE",
        product="spot",
        server_time_ms=1_000_000_000_500,
        retry_at_ms=1_000_000_020_000,
        headers={"X-MBX-USED-WEIGHT-1M": "6001"},
    )
    assert (error.code, error.http_status) == (-1003, 429)
    assert error.msg == (
        "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    )
    assert error.headers == {"X-MBX-USED-WEIGHT-1M": "6001", "Retry-After": "20"}
    assert error.data == {"serverTime": 1_000_000_000_500, "retryAfter": 1_000_000_020_000}


def test_futures_weight_limit_reply():
    error = VenueError.too_many_requests(
        2400, "1 MINUTE", product="coinm", server_time_ms=0, retry_at_ms=1001
    )
    assert error.msg == (
        "Too many requests; current limit is 2400 requests per minute. "
        "Please use the websocket for live updates to avoid polling the API."
    )
    assert error.headers == {"Retry-After": "2"}  # seconds, rounded up


def test_raw_request_limit_reply_names_requests_not_weight():
    error = VenueError.too_many_requests(
        500, "5 MINUTE", product="usdm", server_time_ms=0, retry_at_ms=300_000, weight=False
    )
    assert error.msg.startswith("Too many requests; current limit is 500 requests per 5 MINUTE.")


@pytest.mark.parametrize(
    ("product", "message"),
    [
        (
            "spot",
            "Way too much request weight used; IP banned until 1700000120000. "
            "Please use WebSocket Streams for live updates to avoid bans.",
        ),
        (
            "usdm",
            "Way too many requests; IP banned until 1700000120000. "
            "Please use the websocket for live updates to avoid bans.",
        ),
    ],
)
def test_ban_reply(product, message):
    error = VenueError.ip_banned(
        1_700_000_120_000, product=product, server_time_ms=1_700_000_000_000
    )
    assert (error.code, error.http_status, error.msg) == (-1003, 418, message)
    assert error.headers == {"Retry-After": "120"}
    assert error.data == {"serverTime": 1_700_000_000_000, "retryAfter": 1_700_000_120_000}


def test_order_limit_reply():
    error = VenueError.too_many_orders(50, "10 SECOND", server_time_ms=5_000, retry_at_ms=10_000)
    assert (error.code, error.http_status) == (-1015, 429)
    assert error.msg == "Too many new orders; current limit is 50 orders per 10 SECOND."
    assert error.headers == {"Retry-After": "5"}


def test_products_are_checked():
    assert is_futures("usdm")
    assert is_futures("coinm")
    assert not is_futures("spot")
    with pytest.raises(ValueError, match="unknown product 'margin'"):
        is_futures("margin")


def test_error_kind_is_a_plain_record():
    kind = ErrorKind(-9999, "TEST", ("A %s.",), 400)
    assert kind("thing").msg == "A thing."
    assert kind.message("thing") == "A thing."
