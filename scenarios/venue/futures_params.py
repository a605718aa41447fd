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
from scenarios.venue.errors import VenueError
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


def first(values: Iterable[_T | None]) -> _T | None:
    return next((value for value in values if value is not None), None)
