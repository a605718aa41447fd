"""Binance's error replies: the exception the venue raises and the catalogue of codes it uses.

Every rejection is a :class:`VenueError` carrying Binance's negative code, Binance's exact
message and the HTTP status Binance answers with; the HTTP layer turns it into
``{"code": ..., "msg": ...}`` and the WS-API layer into ``"error": {"code", "msg", "data"}``.

The catalogue is data: each row is an :class:`ErrorKind` (code, Binance's name, its message
templates, HTTP status). Rows are attributes of :class:`VenueError` and calling one builds the
error, so ``VenueError.bad_symbol()`` and
``VenueError.mandatory_param_empty_or_malformed("symbol")`` read like the helpers they are. The
same names are available at module level (``errors.bad_symbol()``). A row may hold several
templates; the one whose number of ``%s`` placeholders equals the number of arguments is used,
as Binance itself sends the parameter-less text in some places and the parameterised one in
others.

Messages are from ``binance/binance-spot-api-docs`` ``errors.md`` and the futures error pages
(see ``binance-protocol.md`` section 6). HTTP statuses follow Binance: 400 for request errors,
401 for API-key errors (``-2014``/``-2015``, also the WS-API status for ``-2015``), 429 and 418
for limits, 408 for the backend timeout, 5xx for the venue's own failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

SPOT = "spot"
FUTURES_PRODUCTS = frozenset({"usdm", "coinm", "futures"})
PRODUCTS = frozenset({SPOT}) | FUTURES_PRODUCTS

_TOO_MUCH_WEIGHT_SPOT = (
    "Too much request weight used; current limit is %s request weight per %s. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
_TOO_MANY_REQUESTS_FUTURES = (
    "Too many requests; current limit is %s requests per minute. "
    "Please use the websocket for live updates to avoid polling the API."
)
# Raw-request and side-bucket limits: Binance documents no text of its own for these.
_TOO_MANY_RAW_REQUESTS_SPOT = (
    "Too many requests; current limit is %s requests per %s. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
_TOO_MANY_RAW_REQUESTS_FUTURES = (
    "Too many requests; current limit is %s requests per %s. "
    "Please use the websocket for live updates to avoid polling the API."
)
_BANNED_SPOT = (
    "Way too much request weight used; IP banned until %s. "
    "Please use WebSocket Streams for live updates to avoid bans."
)
_BANNED_FUTURES = (
    "Way too many requests; IP banned until %s. "
    "Please use the websocket for live updates to avoid bans."
)
_TOO_MANY_ORDERS = "Too many new orders; current limit is %s orders per %s."


def is_futures(product: str) -> bool:
    """Whether ``product`` ("spot", "usdm", "coinm" or "futures") is a futures product.

    Raises:
        ValueError: for any other name.
    """
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; expected one of {sorted(PRODUCTS)}")
    return product in FUTURES_PRODUCTS


def _placeholders(template: str) -> int:
    return template.count("%s")


@attrs.frozen
class ErrorKind:
    """One row of Binance's error catalogue; calling it builds the :class:`VenueError`.

    Attributes:
        code: Binance's (negative) error code.
        name: Binance's symbolic name, e.g. ``BAD_SYMBOL``.
        templates: Binance's message texts for this code, with ``%s`` placeholders.
        http_status: the HTTP status Binance sends with it.
        futures_message: the futures text where it differs from spot's. It has no
            placeholders, so arguments (which only the spot text uses) are not shown.
    """

    code: int
    name: str
    templates: tuple[str, ...]
    http_status: int = 400
    futures_message: str | None = None

    def message(self, *args: object, product: str = SPOT) -> str:
        """The message text for ``args`` on ``product``.

        Raises:
            TypeError: when no template takes ``len(args)`` arguments (a programming error).
        """
        if self.futures_message is not None and is_futures(product):
            return self.futures_message
        for template in self.templates:
            if _placeholders(template) == len(args):
                return template % args
        counts = sorted({_placeholders(template) for template in self.templates})
        raise TypeError(
            f"{self.name} ({self.code}) takes {counts} message argument(s), got {len(args)}"
        )

    def __call__(
        self,
        *args: object,
        product: str = SPOT,
        http_status: int | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> VenueError:
        """Build the error; ``http_status`` overrides Binance's usual status (for faults)."""
        return VenueError(
            self.code,
            self.message(*args, product=product),
            self.http_status if http_status is None else http_status,
            headers=headers,
            data=data,
        )

    def matches(self, error: BaseException) -> bool:
        """Whether ``error`` is a :class:`VenueError` with this row's code."""
        return isinstance(error, VenueError) and error.code == self.code


def _retry_after(retry_at_ms: int, server_time_ms: int) -> tuple[dict[str, str], dict[str, int]]:
    """The ``Retry-After`` header (whole seconds, rounded up) and the WS-API ``error.data``."""
    seconds = max(0, -(-(retry_at_ms - server_time_ms) // 1000))
    return {"Retry-After": str(seconds)}, {"serverTime": server_time_ms, "retryAfter": retry_at_ms}


class VenueError(Exception):
    """A request rejected the way Binance rejects it.

    Args:
        code: Binance's negative error code.
        msg: Binance's message text, exactly.
        http_status: the HTTP status of the reply (the WS-API ``status`` too).
        headers: extra response headers, e.g. ``Retry-After``.
        data: the WS-API ``error.data`` object (``retryAfter``, ``serverTime``), if any.
    """

    def __init__(
        self,
        code: int,
        msg: str,
        http_status: int = 400,
        *,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code, msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.headers: dict[str, str] = dict(headers or {})
        self.data: dict[str, Any] | None = None if data is None else dict(data)

    def body(self) -> dict[str, Any]:
        """The JSON body Binance sends: ``{"code": ..., "msg": ...}``."""
        return {"code": self.code, "msg": self.msg}

    def __str__(self) -> str:
        return f"{self.code} {self.msg}"

    def __repr__(self) -> str:
        return f"VenueError({self.code!r}, {self.msg!r}, http_status={self.http_status!r})"

    # --- 10xx: general server or network issues ------------------------------------------
    unknown: ClassVar[ErrorKind] = ErrorKind(
        -1000,
        "UNKNOWN",
        ("An unknown error occurred while processing the request.",),
        500,
        futures_message="An unknown error occured while processing the request.",
    )
    disconnected: ClassVar[ErrorKind] = ErrorKind(
        -1001,
        "DISCONNECTED",
        ("Internal error; unable to process your request. Please try again.",),
        503,
    )
    unauthorized: ClassVar[ErrorKind] = ErrorKind(
        -1002, "UNAUTHORIZED", ("You are not authorized to execute this request.",), 401
    )
    unexpected_response: ClassVar[ErrorKind] = ErrorKind(
        -1006,
        "UNEXPECTED_RESP",
        ("An unexpected response was received from the message bus. Execution status unknown.",),
        503,
    )
    timeout: ClassVar[ErrorKind] = ErrorKind(
        -1007,
        "TIMEOUT",
        (
            "Timeout waiting for response from backend server. "
            "Send status unknown; execution status unknown.",
        ),
        408,
    )
    server_busy: ClassVar[ErrorKind] = ErrorKind(
        -1008,
        "SERVER_BUSY",
        ("Server is currently overloaded with other requests. Please try again in a few minutes.",),
        503,
        futures_message=(
            "Request throttled by system-level protection. "
            "Reduce-only/close-position orders are exempt. Please try again."
        ),
    )
    unknown_order_composition: ClassVar[ErrorKind] = ErrorKind(
        -1014, "UNKNOWN_ORDER_COMPOSITION", ("Unsupported order combination.",)
    )
    service_shutting_down: ClassVar[ErrorKind] = ErrorKind(
        -1016, "SERVICE_SHUTTING_DOWN", ("This service is no longer available.",), 503
    )
    unsupported_operation: ClassVar[ErrorKind] = ErrorKind(
        -1020, "UNSUPPORTED_OPERATION", ("This operation is not supported.",)
    )
    timestamp_outside_recv_window: ClassVar[ErrorKind] = ErrorKind(
        -1021, "INVALID_TIMESTAMP", ("Timestamp for this request is outside of the recvWindow.",)
    )
    timestamp_ahead_of_server: ClassVar[ErrorKind] = ErrorKind(
        -1021,
        "INVALID_TIMESTAMP",
        ("Timestamp for this request was 1000ms ahead of the server's time.",),
    )
    invalid_signature: ClassVar[ErrorKind] = ErrorKind(
        -1022, "INVALID_SIGNATURE", ("Signature for this request is not valid.",)
    )
    start_time_greater_than_end_time: ClassVar[ErrorKind] = ErrorKind(
        -1023, "START_TIME_GREATER_THAN_END_TIME", ("Start time is greater than end time.",)
    )

    # --- 11xx: request issues ------------------------------------------------------------
    illegal_characters: ClassVar[ErrorKind] = ErrorKind(
        -1100,
        "ILLEGAL_CHARS",
        (
            "Illegal characters found in a parameter.",
            "Illegal characters found in parameter '%s'.",
            "Illegal characters found in parameter '%s'; legal range is '%s'.",
        ),
    )
    illegal_chars: ClassVar[ErrorKind] = illegal_characters
    too_many_parameters: ClassVar[ErrorKind] = ErrorKind(
        -1101,
        "TOO_MANY_PARAMETERS",
        (
            "Too many parameters sent for this endpoint.",
            "Too many parameters; expected '%s' and received '%s'.",
        ),
    )
    duplicate_parameter: ClassVar[ErrorKind] = ErrorKind(
        -1101, "TOO_MANY_PARAMETERS", ("Duplicate values for a parameter detected.",)
    )
    mandatory_param_empty_or_malformed: ClassVar[ErrorKind] = ErrorKind(
        -1102,
        "MANDATORY_PARAM_EMPTY_OR_MALFORMED",
        (
            "A mandatory parameter was not sent, was empty/null, or malformed.",
            "Mandatory parameter '%s' was not sent, was empty/null, or malformed.",
        ),
    )
    either_param_required: ClassVar[ErrorKind] = ErrorKind(
        -1102,
        "MANDATORY_PARAM_EMPTY_OR_MALFORMED",
        ("Param '%s' or '%s' must be sent, but both were empty/null!",),
    )
    value_too_large: ClassVar[ErrorKind] = ErrorKind(
        -1102,
        "MANDATORY_PARAM_EMPTY_OR_MALFORMED",
        ("'%s' contains unexpected value. Cannot be greater than %s.",),
    )
    unread_parameters: ClassVar[ErrorKind] = ErrorKind(
        -1104,
        "UNREAD_PARAMETERS",
        (
            "Not all sent parameters were read.",
            "Not all sent parameters were read; read '%s' parameter(s) but was sent '%s'.",
        ),
    )
    # Binance answers an unexpected parameter with -1104 (not -1103 UNKNOWN_PARAM).
    unknown_param: ClassVar[ErrorKind] = unread_parameters
    param_empty: ClassVar[ErrorKind] = ErrorKind(
        -1105, "PARAM_EMPTY", ("A parameter was empty.", "Parameter '%s' was empty.")
    )
    param_not_required: ClassVar[ErrorKind] = ErrorKind(
        -1106,
        "PARAM_NOT_REQUIRED",
        ("A parameter was sent when not required.", "Parameter '%s' sent when not required."),
    )
    param_overflow: ClassVar[ErrorKind] = ErrorKind(
        -1108, "PARAM_OVERFLOW", ("Parameter '%s' overflowed.",)
    )
    bad_precision: ClassVar[ErrorKind] = ErrorKind(
        -1111,
        "BAD_PRECISION",
        ("Parameter '%s' has too much precision.",),
        futures_message="Precision is over the maximum defined for this asset.",
    )
    empty_book: ClassVar[ErrorKind] = ErrorKind(
        -1112, "NO_DEPTH", ("No orders on book for symbol.",)
    )
    tif_not_required: ClassVar[ErrorKind] = ErrorKind(
        -1114, "TIF_NOT_REQUIRED", ("TimeInForce parameter sent when not required.",)
    )
    invalid_tif: ClassVar[ErrorKind] = ErrorKind(-1115, "INVALID_TIF", ("Invalid timeInForce.",))
    invalid_order_type: ClassVar[ErrorKind] = ErrorKind(
        -1116, "INVALID_ORDER_TYPE", ("Invalid orderType.",)
    )
    invalid_side: ClassVar[ErrorKind] = ErrorKind(-1117, "INVALID_SIDE", ("Invalid side.",))
    empty_new_client_order_id: ClassVar[ErrorKind] = ErrorKind(
        -1118, "EMPTY_NEW_CL_ORD_ID", ("New client order ID was empty.",)
    )
    empty_original_client_order_id: ClassVar[ErrorKind] = ErrorKind(
        -1119, "EMPTY_ORG_CL_ORD_ID", ("Original client order ID was empty.",)
    )
    bad_interval: ClassVar[ErrorKind] = ErrorKind(-1120, "BAD_INTERVAL", ("Invalid interval.",))
    bad_symbol: ClassVar[ErrorKind] = ErrorKind(-1121, "BAD_SYMBOL", ("Invalid symbol.",))
    invalid_symbol_status: ClassVar[ErrorKind] = ErrorKind(
        -1122, "INVALID_SYMBOLSTATUS", ("Invalid symbolStatus.",)
    )
    invalid_listen_key: ClassVar[ErrorKind] = ErrorKind(
        -1125, "INVALID_LISTEN_KEY", ("This listenKey does not exist.",)
    )
    lookup_interval_too_big: ClassVar[ErrorKind] = ErrorKind(
        -1127,
        "MORE_THAN_XX_HOURS",
        ("Lookup interval is too big.", "More than %s hours between startTime and endTime."),
    )
    optional_params_bad_combo: ClassVar[ErrorKind] = ErrorKind(
        -1128, "OPTIONAL_PARAMS_BAD_COMBO", ("Combination of optional parameters invalid.",)
    )
    invalid_parameter: ClassVar[ErrorKind] = ErrorKind(
        -1130,
        "INVALID_PARAMETER",
        ("Invalid data sent for a parameter.", "Data sent for parameter '%s' is not valid."),
    )
    invalid_json: ClassVar[ErrorKind] = ErrorKind(
        -1135,
        "INVALID_JSON",
        ("Invalid JSON Request", "JSON sent for parameter '%s' is not valid"),
    )
    invalid_new_order_resp_type: ClassVar[ErrorKind] = ErrorKind(
        -1136, "INVALID_NEW_ORDER_RESP_TYPE", ("Invalid newOrderRespType.",)
    )
    invalid_ticker_type: ClassVar[ErrorKind] = ErrorKind(
        -1139, "INVALID_TICKER_TYPE", ("Invalid ticker type.",)
    )
    duplicate_symbols: ClassVar[ErrorKind] = ErrorKind(
        -1151, "DUPLICATE_SYMBOLS", ("Symbol is present multiple times in the list.",)
    )

    # --- 20xx: order and key issues ------------------------------------------------------
    new_order_rejected: ClassVar[ErrorKind] = ErrorKind(
        -2010, "NEW_ORDER_REJECTED", ("NEW_ORDER_REJECTED", "%s")
    )
    cancel_rejected: ClassVar[ErrorKind] = ErrorKind(
        -2011, "CANCEL_REJECTED", ("Unknown order sent.", "%s")
    )
    no_such_order: ClassVar[ErrorKind] = ErrorKind(
        -2013, "NO_SUCH_ORDER", ("Order does not exist.",)
    )
    bad_api_key_format: ClassVar[ErrorKind] = ErrorKind(
        -2014, "BAD_API_KEY_FMT", ("API-key format invalid.",), 401
    )
    rejected_mbx_key: ClassVar[ErrorKind] = ErrorKind(
        -2015, "REJECTED_MBX_KEY", ("Invalid API-key, IP, or permissions for action.",), 401
    )

    # --- limits (429 / 418): Retry-After and WS-API error.data --------------------------
    @classmethod
    def too_many_requests(
        cls,
        limit: int,
        per: str,
        *,
        product: str,
        server_time_ms: int,
        retry_at_ms: int,
        weight: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> VenueError:
        """HTTP 429 ``-1003``: an IP limit is exhausted until ``retry_at_ms``.

        Args:
            limit: the limit's value, e.g. 6000.
            per: the window as Binance prints it, e.g. ``"1 MINUTE"``.
            product: "spot" or a futures product (the texts differ).
            server_time_ms: the venue time now.
            retry_at_ms: when the window resets (``Retry-After`` and ``data.retryAfter``).
            weight: False for a raw-request or side-bucket limit rather than request weight.
            headers: extra headers to send with it (e.g. the used-weight headers).
        """
        futures = is_futures(product)
        if weight and futures:
            msg = _TOO_MANY_REQUESTS_FUTURES % limit
        elif weight:
            msg = _TOO_MUCH_WEIGHT_SPOT % (limit, per)
        else:
            template = _TOO_MANY_RAW_REQUESTS_FUTURES if futures else _TOO_MANY_RAW_REQUESTS_SPOT
            msg = template % (limit, per)
        retry_headers, data = _retry_after(retry_at_ms, server_time_ms)
        return cls(-1003, msg, 429, headers={**(headers or {}), **retry_headers}, data=data)

    @classmethod
    def ip_banned(cls, until_ms: int, *, product: str, server_time_ms: int) -> VenueError:
        """HTTP 418 ``-1003``: the IP is banned until ``until_ms`` (epoch milliseconds)."""
        template = _BANNED_FUTURES if is_futures(product) else _BANNED_SPOT
        retry_headers, data = _retry_after(until_ms, server_time_ms)
        return cls(-1003, template % until_ms, 418, headers=retry_headers, data=data)

    @classmethod
    def too_many_orders(
        cls,
        limit: int,
        per: str,
        *,
        server_time_ms: int,
        retry_at_ms: int,
        headers: Mapping[str, str] | None = None,
    ) -> VenueError:
        """HTTP 429 ``-1015``: the order count for the window ``per`` (e.g. "10 SECOND") is full."""
        retry_headers, data = _retry_after(retry_at_ms, server_time_ms)
        return cls(
            -1015,
            _TOO_MANY_ORDERS % (limit, per),
            429,
            headers={**(headers or {}), **retry_headers},
            data=data,
        )


CATALOGUE: dict[str, ErrorKind] = {
    name: value for name, value in vars(VenueError).items() if isinstance(value, ErrorKind)
}
"""Every catalogue row by helper name (aliases included)."""

_LIMIT_HELPERS = ("too_many_requests", "ip_banned", "too_many_orders")


def __getattr__(name: str) -> Any:
    """Module-level helpers: ``errors.bad_symbol()`` is ``VenueError.bad_symbol()``."""
    if name in CATALOGUE or name in _LIMIT_HELPERS:
        return getattr(VenueError, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
