"""Reading and checking futures request parameters the way Binance rejects them.

Every reader takes the request's parameter lookup (``Call.request.get``) and the product, and
raises the :class:`~scenarios.venue.errors.VenueError` Binance answers with: ``-1102`` for a
missing mandatory parameter, ``-1100`` for a malformed number, ``-1130`` for an invalid value,
``-1111`` for more decimals than the symbol allows, and the filter codes of section 5.3 of
``binance-protocol.md`` (``-4013``/``-4002``/``-4014`` price, ``-4003``/``-4004``/``-4005``/
``-4023`` quantity).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

from scenarios.venue import futures_errors as errors
from scenarios.venue.errors import ErrorKind, VenueError
from scenarios.venue.futures_rules import (
    GTD_MAX_MS,
    GTD_MIN_AHEAD_MS,
    POSITION_SIDES,
    PRICE_MATCHES,
    SEVEN_DAYS_MS,
    STP_MODES,
)
from scenarios.venue.instruments import Instrument

Lookup = Callable[[str], str | None]
_T = TypeVar("_T")

DECIMAL_RANGE: Final = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
_DECIMAL: Final = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_INTEGER: Final = re.compile(r"^[0-9]{1,20}$")
#: Binance reads integer parameters as signed 64-bit numbers (``rest.Call.integer``).
INT64_MAX: Final = 2**63 - 1
#: ``newClientOrderId`` / ``clientAlgoId``: Binance's pattern.
CLIENT_ID: Final = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def decimal(get: Lookup, name: str, product: str) -> Decimal | None:
    """A non-negative decimal parameter, or None when absent.

    Raises:
        VenueError: -1100 when it is not a plain decimal number.
    """
    raw = get(name)
    if raw is None:
        return None
    if not _DECIMAL.match(raw):
        raise VenueError.illegal_characters(name, DECIMAL_RANGE, product=product)
    try:
        return Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
        raise VenueError.illegal_characters(name, DECIMAL_RANGE, product=product) from None


def required_decimal(get: Lookup, name: str, product: str) -> Decimal:
    value = decimal(get, name, product)
    if value is None:
        raise VenueError.mandatory_param_empty_or_malformed(name, product=product)
    return value


def integer(get: Lookup, name: str, product: str) -> int | None:
    """A non-negative 64-bit integer parameter, or None when absent.

    Raises:
        VenueError: -1100 when it is not 1 to 20 digits, -1130 past the signed 64-bit range
            (as :meth:`scenarios.venue.rest.Call.integer`), so that no such value reaches the
            engine or the JSON encoder.
    """
    raw = get(name)
    if raw is None:
        return None
    if not _INTEGER.match(raw):
        raise VenueError.illegal_characters(name, "^[0-9]{1,20}$", product=product)
    value = int(raw)
    if value > INT64_MAX:
        raise VenueError.invalid_parameter(name, product=product)
    return value


def json_integer(value: Any) -> bool:
    """Whether a JSON list item is an integer Binance accepts as an id (signed 64-bit)."""
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and -INT64_MAX - 1 <= value <= INT64_MAX
    )


def boolean(get: Lookup, name: str, product: str) -> bool | None:
    """``"true"``/``"false"`` (any case), or None when absent; -1130 otherwise."""
    raw = get(name)
    if raw is None:
        return None
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise VenueError.invalid_parameter(name, product=product)
    return lowered == "true"


def choice(
    get: Lookup,
    name: str,
    allowed: Iterable[str],
    product: str,
    *,
    default: str | None = None,
    invalid: Callable[[], VenueError] | None = None,
) -> str | None:
    """An enumerated parameter (upper-cased); ``invalid`` builds the error for a bad value
    (default -1130)."""
    raw = get(name)
    if raw is None:
        return default
    value = raw.upper()
    if value not in set(allowed):
        if invalid is not None:
            raise invalid()
        raise VenueError.invalid_parameter(name, product=product)
    return value


def side(get: Lookup, product: str) -> str:
    """``side``: ``BUY`` or ``SELL``.

    Raises:
        VenueError: -1117 for another value, -1102 when absent.
    """
    value = choice(
        get,
        "side",
        ("BUY", "SELL"),
        product,
        invalid=lambda: VenueError.invalid_side(product=product),
    )
    if value is None:
        raise VenueError.mandatory_param_empty_or_malformed("side", product=product)
    return value


def order_type(get: Lookup, product: str) -> str:
    """``type``, upper-cased (-1102 when absent); which types are taken is the caller's
    check."""
    raw = get("type")
    if raw is None:
        raise VenueError.mandatory_param_empty_or_malformed("type", product=product)
    return raw.upper()


def defaulted_choice(
    get: Lookup,
    name: str,
    allowed: Iterable[str],
    product: str,
    *,
    default: str,
    invalid: ErrorKind,
) -> str:
    """An enumerated parameter with a default (:func:`choice`); ``invalid`` is the error
    of a value not in ``allowed``."""
    value = choice(
        get, name, allowed, product, default=default, invalid=lambda: invalid(product=product)
    )
    assert value is not None
    return value


def position_side(get: Lookup, product: str) -> str:
    """``positionSide``: ``BOTH`` (the default), ``LONG`` or ``SHORT``; -4060 otherwise."""
    return defaulted_choice(
        get,
        "positionSide",
        POSITION_SIDES,
        product,
        default="BOTH",
        invalid=errors.invalid_position_side,
    )


def price_match(get: Lookup, product: str) -> str:
    """``priceMatch``: ``NONE`` (the default) or one of ``OPPONENT``/``QUEUE`` levels;
    -5037 otherwise."""
    return defaulted_choice(
        get,
        "priceMatch",
        PRICE_MATCHES,
        product,
        default="NONE",
        invalid=errors.invalid_price_match,
    )


def stp_mode(get: Lookup, product: str, *, default: str) -> str:
    """``selfTradePreventionMode`` (``default`` when absent); -5039 otherwise."""
    return defaulted_choice(
        get,
        "selfTradePreventionMode",
        STP_MODES,
        product,
        default=default,
        invalid=errors.invalid_stp_mode,
    )


def response_type(get: Lookup, product: str) -> str:
    """``newOrderRespType``: ``ACK`` (the default) or ``RESULT``; -1136 otherwise."""
    return defaulted_choice(
        get,
        "newOrderRespType",
        ("ACK", "RESULT"),
        product,
        default="ACK",
        invalid=VenueError.invalid_new_order_resp_type,
    )


def check_price_match(
    price_match: str, price: Decimal | None, product: str, *, priced: bool
) -> None:
    """With a ``priceMatch``, the order type must take a price (``priced``: LIMIT, or STOP
    and TAKE_PROFIT for conditional orders) and ``price`` must not be sent.

    Raises:
        VenueError: -5038 for another type, -1106 when ``price`` is sent too.
    """
    if price_match == "NONE":
        return
    if not priced:
        raise errors.price_match_type(product=product)
    if price is not None:
        raise VenueError.param_not_required("price", product=product)


def check_price_sent(
    price: Decimal | None, price_match: str, product: str, *, priced: bool
) -> None:
    """A type that takes a price needs ``price`` unless ``priceMatch`` picks it; other types
    must not send one.

    Raises:
        VenueError: -1102 when a needed price is missing, -1106 for an unwanted one.
    """
    if priced:
        if price is None and price_match == "NONE":
            raise VenueError.mandatory_param_empty_or_malformed("price", product=product)
    elif price is not None:
        raise VenueError.param_not_required("price", product=product)


def good_till_date(get: Lookup, time_in_force: str, now_ms: int, product: str) -> int:
    """``goodTillDate`` of a GTD order, in whole seconds (0 for other time in force).

    Raises:
        VenueError: -1102 when a GTD order has none, -5040 when it is not more than 600 s
            ahead or not below :data:`~scenarios.venue.futures_rules.GTD_MAX_MS`.
    """
    if time_in_force != "GTD":
        return 0
    raw = integer(get, "goodTillDate", product)
    if raw is None:
        raise VenueError.mandatory_param_empty_or_malformed("goodTillDate", product=product)
    if raw <= now_ms + GTD_MIN_AHEAD_MS or raw >= GTD_MAX_MS:
        raise errors.good_till_date(product=product)
    return raw // 1000 * 1000


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def check_price(
    price: Decimal, instrument: Instrument, product: str, *, name: str = "price"
) -> None:
    """PRICE_FILTER: min, max and tick (``(price - minPrice) % tickSize == 0``).

    Raises:
        VenueError: -1111 past the symbol's decimals, -4013 below min, -4002 above max,
            -4014 off the tick grid (stop prices: -4006 / -4007).
    """
    if _decimals(price) > instrument.price_precision:
        raise VenueError.bad_precision(name, product=product)
    if price <= 0 and name != "price":
        raise errors.stop_price_not_positive(product=product)
    if price < instrument.min_price:
        raise errors.price_below_min(product=product)
    if instrument.max_price > 0 and price > instrument.max_price:
        if name != "price":
            raise errors.stop_price_above_max(product=product)
        raise errors.price_above_max(product=product)
    if instrument.tick_size > 0 and (price - instrument.min_price) % instrument.tick_size != 0:
        raise errors.price_not_tick(product=product)


def check_quantity(
    quantity: Decimal, instrument: Instrument, product: str, *, market: bool = False
) -> None:
    """LOT_SIZE (or MARKET_LOT_SIZE for MARKET orders): min, max and step.

    Raises:
        VenueError: -1111 past the symbol's decimals, -4003 zero, -4004 below min, -4005
            above max, -4023 off the step grid.
    """
    if _decimals(quantity) > instrument.quantity_precision:
        raise VenueError.bad_precision("quantity", product=product)
    if quantity <= 0:
        raise errors.quantity_not_positive(product=product)
    minimum = instrument.market_min_qty if market else instrument.min_qty
    maximum = instrument.market_max_qty if market else instrument.max_qty
    step = (
        instrument.market_step_size
        if market and instrument.market_step_size
        else (instrument.step_size)
    )
    if quantity < minimum:
        raise errors.quantity_below_min(product=product)
    if maximum > 0 and quantity > maximum:
        raise errors.quantity_above_max(product=product)
    if step > 0 and (quantity - minimum) % step != 0:
        raise errors.quantity_not_step(product=product)


def client_id(get: Lookup, name: str, product: str) -> str | None:
    """``newClientOrderId``/``clientAlgoId``: Binance's pattern, else -4015."""
    raw = get(name)
    if raw is None:
        return None
    if not CLIENT_ID.match(raw):
        raise errors.client_order_id_invalid(product=product)
    return raw


def order_reference(get: Lookup, product: str) -> tuple[int | None, str | None]:
    """``orderId`` or ``origClientOrderId`` (one must be sent: -1102)."""
    order_id = integer(get, "orderId", product)
    client = get("origClientOrderId")
    if order_id is None and client is None:
        raise VenueError.either_param_required("orderId", "origClientOrderId", product=product)
    return order_id, client


def query_limit(call: Any, default: int = 500, maximum: int = 1000) -> int:
    """``limit`` of a history query, clamped to ``[1, maximum]``."""
    value = call.integer("limit", default) or default
    return max(1, min(value, maximum))


def check_window(start: int | None, end: int | None, product: str) -> None:
    """A history query's ``[startTime, endTime]`` spans at most 7 days (else -1127)."""
    if start is not None and end is not None and end - start > SEVEN_DAYS_MS:
        raise VenueError.lookup_interval_too_big(168, product=product)


def within(time_ms: int, start: int | None, end: int | None) -> bool:
    """Whether ``time_ms`` lies in ``[start, end]`` (an absent bound does not limit)."""
    return (start is None or time_ms >= start) and (end is None or time_ms <= end)


def page(rows: list[_T], limit: int, *, from_start: bool) -> list[_T]:
    """A history query's answer: the first ``limit`` rows when it names where to start (an
    id or ``startTime``), else the most recent ``limit``."""
    return rows[:limit] if from_start else rows[-limit:]


def first(values: Iterable[_T | None]) -> _T | None:
    return next((value for value in values if value is not None), None)


def control_decimal(data: dict[str, Any], name: str, example: str) -> Decimal:
    """A decimal field of a control action's JSON (a string or an integer, e.g. ``example``);
    it may be negative or not finite, which the caller checks.

    Raises:
        ValueError: when it is missing, of another type or not a number.
    """
    raw = data.get(name)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError(f'{name} must be a decimal string such as "{example}", got {raw!r}')
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(
            f'{name} must be a decimal string such as "{example}", got {raw!r}'
        ) from None
