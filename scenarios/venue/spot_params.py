"""Spot new-order parameters and symbol filters, checked the way Binance checks them.

:func:`parse_order` reads one order's parameters (a standalone order, or one leg of an order
list whose parameters carry a prefix such as ``above``/``working``/``pendingBelow``) and
returns an :class:`OrderSpec`, or raises Binance's error:

* missing parameter: ``-1102`` "Mandatory parameter '%s' was not sent, was empty/null, or
  malformed." (or "Param '%s' or '%s' must be sent, but both were empty/null!");
* a parameter the type does not take: ``-1106`` "Parameter '%s' sent when not required.";
* bad enum values: ``-1117`` side, ``-1116`` type, ``-1115`` timeInForce, ``-1136``
  newOrderRespType, ``-1130`` selfTradePreventionMode;
* malformed numbers: ``-1100`` with Binance's legal range, too many decimals ``-1111``;
* integers out of their type's range (a LONG beyond 64 bits, ``strategyType`` beyond an INT):
  ``-1130`` "Data sent for parameter '%s' is not valid." (as ``rest.Call.integer``);
* ``strategyType`` below 1000000: ``-1134``.

:func:`check_filters` then applies the symbol's filters in ``exchangeInfo`` order and raises
``-1013`` "Filter failure: <NAME>" (``binance-protocol.md`` 5.3, ``filters.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Final

import attrs

from scenarios.venue.errors import VenueError
from scenarios.venue.instruments import Instrument
from scenarios.venue.spot_model import (
    BIPS,
    ICEBERG_TYPES,
    MARKET_TYPES,
    ORDER_TYPES,
    PRICED_TYPES,
    RESPONSE_TYPES,
    SIDES,
    STOP_TYPES,
    STP_MODES,
    TIF_TYPES,
    TIME_IN_FORCE,
)

DECIMAL_RANGE: Final = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INTEGER_RANGE: Final = "^[0-9]{1,20}$"
CLIENT_ID_RANGE: Final = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
_DECIMAL = re.compile(DECIMAL_RANGE)
_INTEGER = re.compile(INTEGER_RANGE)
_CLIENT_ID = re.compile(CLIENT_ID_RANGE)
#: Spot amounts carry at most 8 decimals.
MAX_DECIMALS: Final = 8
MIN_STRATEGY_TYPE: Final = 1_000_000
#: Binance's LONG and INT parameters are signed 64- and 32-bit integers.
INT64_MAX: Final = 2**63 - 1
INT32_MAX: Final = 2**31 - 1

#: Binance's -2010 texts for order types a symbol does not enable.
_TYPE_NOT_SUPPORTED: Final = {
    "MARKET": "Market orders are not supported for this symbol.",
    "STOP_LOSS": "Stop loss orders are not supported for this symbol.",
    "STOP_LOSS_LIMIT": "Stop loss limit orders are not supported for this symbol.",
    "TAKE_PROFIT": "Take profit orders are not supported for this symbol.",
    "TAKE_PROFIT_LIMIT": "Take profit limit orders are not supported for this symbol.",
    "LIMIT_MAKER": "Unsupported order combination",
    "LIMIT": "Unsupported order combination",
}

#: Canonical parameter names of one order.
FIELDS: Final = (
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "stopPrice",
    "trailingDelta",
    "icebergQty",
    "newClientOrderId",
    "strategyId",
    "strategyType",
)

Getter = Callable[[str], str | None]


def filter_failure(name: str) -> VenueError:
    """``-1013`` "Filter failure: <name>"."""
    return VenueError(-1013, f"Filter failure: {name}")


def rejected(message: str) -> VenueError:
    """``-2010`` NEW_ORDER_REJECTED with the matching engine's message."""
    return VenueError.new_order_rejected(message)


def mandatory(name: str) -> VenueError:
    return VenueError.mandatory_param_empty_or_malformed(name)


def not_required(name: str) -> VenueError:
    return VenueError.param_not_required(name)


def parse_decimal(name: str, raw: str | None) -> Decimal | None:
    """A DECIMAL parameter: ``-1100`` when malformed, ``-1111`` with more than 8 decimals."""
    if raw is None:
        return None
    if not _DECIMAL.match(raw):
        raise VenueError.illegal_characters(name, DECIMAL_RANGE)
    value = Decimal(raw)
    if value != value.quantize(Decimal(1).scaleb(-MAX_DECIMALS)):
        raise VenueError.bad_precision(name)
    return value


def parse_integer(name: str, raw: str | None, *, maximum: int = INT64_MAX) -> int | None:
    """A LONG (or, with ``maximum=INT32_MAX``, INT) parameter.

    ``-1100`` when not 1 to 20 digits; ``-1130`` when above ``maximum`` (a 20-digit number
    does not fit a LONG), so nothing out of range is ever placed or rendered.
    """
    if raw is None:
        return None
    if not _INTEGER.match(raw):
        raise VenueError.illegal_characters(name, INTEGER_RANGE)
    value = int(raw)
    if value > maximum:
        raise VenueError.invalid_parameter(name)
    return value


def parse_client_id(name: str, raw: str | None) -> str | None:
    """A client order id: ``-1100`` outside ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``."""
    if raw is None:
        return None
    if not _CLIENT_ID.match(raw):
        raise VenueError.illegal_characters(name, CLIENT_ID_RANGE)
    return raw


def parse_stp_mode(name: str, raw: str | None, instrument: Instrument) -> str:
    """``selfTradePreventionMode``: the symbol's default when absent."""
    if raw is None:
        return instrument.default_self_trade_prevention_mode
    if raw not in STP_MODES:
        raise VenueError.invalid_parameter(name)
    if raw not in instrument.allowed_self_trade_prevention_modes:
        raise VenueError(
            -1013, "This symbol does not allow the specified self-trade prevention mode."
        )
    return raw


def parse_response_type(raw: str | None, order_type: str) -> str:
    """``newOrderRespType``; MARKET and LIMIT default to FULL, other types to ACK."""
    if raw is None:
        return "FULL" if order_type in ("MARKET", "LIMIT") else "ACK"
    if raw not in RESPONSE_TYPES:
        raise VenueError.invalid_new_order_resp_type()
    return raw


@attrs.frozen(kw_only=True)
class OrderSpec:
    """One order's validated parameters (not yet checked against filters or balances)."""

    instrument: Instrument
    side: str
    type: str
    time_in_force: str
    quantity: Decimal | None
    quote_order_qty: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None
    trailing_delta: int | None
    iceberg_qty: Decimal | None
    client_order_id: str | None
    strategy_id: int | None
    strategy_type: int | None
    stp_mode: str

    @property
    def is_market(self) -> bool:
        return self.type in MARKET_TYPES

    @property
    def is_stop(self) -> bool:
        return self.type in STOP_TYPES


def names_with_prefix(
    prefix: str, *, shared: dict[str, str] | None = None
) -> Callable[[str], str | None]:
    """Parameter names of an order-list leg: ``prefix`` + the capitalised canonical name.

    ``shared`` maps canonical names to the list-level parameter used instead (an OCO's legs
    share ``side`` and ``quantity``). ``newClientOrderId`` becomes ``<prefix>ClientOrderId``;
    ``quoteOrderQty`` is not accepted on legs.
    """
    shared = shared or {}

    def name(canonical: str) -> str | None:
        if canonical in shared:
            return shared[canonical]
        if canonical == "quoteOrderQty":
            return None
        if canonical == "newClientOrderId":
            return f"{prefix}ClientOrderId"
        return prefix + canonical[0].upper() + canonical[1:]

    return name


def parse_order(
    get: Getter,
    instrument: Instrument,
    *,
    names: Callable[[str], str | None] | None = None,
    allowed_types: tuple[str, ...] = ORDER_TYPES,
    stp_mode: str | None = None,
) -> OrderSpec:
    """Read and validate one order's parameters.

    Args:
        get: Reads a request parameter (None when absent or empty).
        instrument: The symbol's instrument.
        names: Canonical name -> actual parameter name (a leg's prefixed names); identity by
            default. A None name means the parameter is not accepted there.
        allowed_types: The types this order may have (an OTO working order is LIMIT or
            LIMIT_MAKER); another valid type gets ``-1116``... as on Binance.
        stp_mode: The STP mode decided elsewhere (order lists share one); else read here.

    Raises:
        VenueError: Binance's error for the first problem found.
    """

    def name(canonical: str) -> str:
        actual = names(canonical) if names is not None else canonical
        return actual if actual is not None else ""

    def raw(canonical: str) -> str | None:
        actual = name(canonical)
        return get(actual) if actual else None

    side = raw("side")
    if side is None:
        raise mandatory(name("side"))
    if side not in SIDES:
        raise VenueError.invalid_side()
    order_type = raw("type")
    if order_type is None:
        raise mandatory(name("type"))
    if order_type not in ORDER_TYPES or order_type not in allowed_types:
        raise VenueError.invalid_order_type()
    tif = raw("timeInForce")
    if tif is not None and tif not in TIME_IN_FORCE:
        raise VenueError.invalid_tif()
    quantity = parse_decimal(name("quantity"), raw("quantity"))
    quote_qty = parse_decimal(name("quoteOrderQty"), raw("quoteOrderQty"))
    price = parse_decimal(name("price"), raw("price"))
    stop_price = parse_decimal(name("stopPrice"), raw("stopPrice"))
    trailing = parse_integer(name("trailingDelta"), raw("trailingDelta"))
    iceberg = parse_decimal(name("icebergQty"), raw("icebergQty"))
    strategy_id = parse_integer(name("strategyId"), raw("strategyId"))
    strategy_type = parse_integer(name("strategyType"), raw("strategyType"), maximum=INT32_MAX)
    client_id = parse_client_id(name("newClientOrderId"), raw("newClientOrderId"))
    mode = (
        stp_mode
        if stp_mode is not None
        else parse_stp_mode("selfTradePreventionMode", get("selfTradePreventionMode"), instrument)
    )

    # What each type needs and refuses (binance-protocol.md 5.1.1).
    if order_type in TIF_TYPES:
        if tif is None:
            raise mandatory(name("timeInForce"))
    elif tif is not None:
        raise not_required(name("timeInForce"))
    if order_type == "MARKET":
        if quantity is None and quote_qty is None:
            if not name("quoteOrderQty"):
                raise mandatory(name("quantity"))
            raise VenueError.either_param_required(name("quantity"), name("quoteOrderQty"))
        if quantity is not None and quote_qty is not None:
            raise not_required(name("quoteOrderQty"))
    else:
        if quantity is None:
            raise mandatory(name("quantity"))
        if quote_qty is not None:
            raise not_required(name("quoteOrderQty"))
    if order_type in PRICED_TYPES:
        if price is None:
            raise mandatory(name("price"))
    elif price is not None:
        raise not_required(name("price"))
    if order_type in STOP_TYPES:
        if stop_price is None and trailing is None:
            raise VenueError.either_param_required(name("stopPrice"), name("trailingDelta"))
    else:
        if stop_price is not None:
            raise not_required(name("stopPrice"))
        if trailing is not None:
            raise not_required(name("trailingDelta"))
    if iceberg is not None:
        if order_type not in ICEBERG_TYPES:
            raise not_required(name("icebergQty"))
        if tif is not None and tif != "GTC":
            raise VenueError.unknown_order_composition()
    if strategy_type is not None and strategy_type < MIN_STRATEGY_TYPE:
        raise VenueError(-1134, "strategyType was less than 1000000.")
    if order_type not in instrument.order_types:
        raise rejected(_TYPE_NOT_SUPPORTED[order_type])
    if instrument.status != "TRADING":
        raise rejected("Market is closed.")
    return OrderSpec(
        instrument=instrument,
        side=side,
        type=order_type,
        time_in_force=tif if tif is not None else "GTC",
        quantity=quantity,
        quote_order_qty=quote_qty,
        price=price,
        stop_price=stop_price,
        trailing_delta=trailing,
        iceberg_qty=iceberg,
        client_order_id=client_id,
        strategy_id=strategy_id,
        strategy_type=strategy_type,
        stp_mode=mode,
    )


# --- filters --------------------------------------------------------------------------------


def _on_grid(value: Decimal, step: Decimal, origin: Decimal = Decimal(0)) -> bool:
    return step <= 0 or (value - origin) % step == 0


def _price_ok(instrument: Instrument, price: Decimal) -> bool:
    if price <= 0:
        return False
    if instrument.min_price > 0 and price < instrument.min_price:
        return False
    if instrument.max_price > 0 and price > instrument.max_price:
        return False
    return _on_grid(price, instrument.tick_size)


def lot_size_ok(instrument: Instrument, quantity: Decimal) -> bool:
    """``LOT_SIZE``: minQty <= quantity <= maxQty, ``(quantity - minQty) % stepSize == 0``."""
    if quantity <= 0 or quantity < instrument.min_qty:
        return False
    if instrument.max_qty > 0 and quantity > instrument.max_qty:
        return False
    return _on_grid(quantity, instrument.step_size, instrument.min_qty)


def _market_lot_ok(instrument: Instrument, quantity: Decimal) -> bool:
    if instrument.market_min_qty > 0 and quantity < instrument.market_min_qty:
        return False
    if instrument.market_max_qty > 0 and quantity > instrument.market_max_qty:
        return False
    return _on_grid(quantity, instrument.market_step_size, instrument.market_min_qty)


def trailing_delta_ok(instrument: Instrument, spec: OrderSpec) -> bool:
    """``TRAILING_DELTA``: the above or below range, by type and side (trailing-stop FAQ)."""
    if spec.trailing_delta is None:
        return True
    return instrument.min_trailing_delta <= spec.trailing_delta <= instrument.max_trailing_delta


def percent_price_ok(instrument: Instrument, side: str, price: Decimal, average: Decimal) -> bool:
    """``PERCENT_PRICE_BY_SIDE`` (or ``PERCENT_PRICE``) against the average price."""
    if instrument.percent_price_by_side:
        if side == "BUY":
            low, high = instrument.bid_multiplier_down, instrument.bid_multiplier_up
        else:
            low, high = instrument.ask_multiplier_down, instrument.ask_multiplier_up
    else:
        low, high = instrument.multiplier_down, instrument.multiplier_up
    return average * low <= price <= average * high


def check_filters(
    spec: OrderSpec,
    *,
    average_price: Decimal,
    open_orders: int,
    open_algo_orders: int,
    adding: int = 1,
) -> None:
    """Apply the symbol filters to a new order, in ``exchangeInfo`` order.

    Args:
        spec: The order.
        average_price: The symbol's average price (``avgPrice``) for PERCENT_PRICE and the
            notional of market orders.
        open_orders: The account's open orders on the symbol (MAX_NUM_ORDERS).
        open_algo_orders: Its open stop orders on the symbol (MAX_NUM_ALGO_ORDERS).
        adding: Orders this request adds (2 for an OCO, 3 for an OTOCO) for MAX_NUM_ORDERS.

    Raises:
        VenueError: ``-1013`` "Filter failure: <NAME>".
    """
    instrument = spec.instrument
    prices = [value for value in (spec.price, spec.stop_price) if value is not None]
    if any(not _price_ok(instrument, value) for value in prices):
        raise filter_failure("PRICE_FILTER")
    if spec.quantity is not None and not lot_size_ok(instrument, spec.quantity):
        raise filter_failure("LOT_SIZE")
    if spec.iceberg_qty is not None:
        if not lot_size_ok(instrument, spec.iceberg_qty):
            raise filter_failure("LOT_SIZE")
        assert spec.quantity is not None
        if spec.iceberg_qty >= spec.quantity:
            raise rejected("IcebergQty exceeds QTY.")
        parts = -(-spec.quantity // spec.iceberg_qty)
        if parts > instrument.iceberg_parts:
            raise filter_failure("ICEBERG_PARTS")
    if (
        spec.is_market
        and spec.quantity is not None
        and not _market_lot_ok(instrument, spec.quantity)
    ):
        raise filter_failure("MARKET_LOT_SIZE")
    if not trailing_delta_ok(instrument, spec):
        raise filter_failure("TRAILING_DELTA")
    if spec.price is not None and not percent_price_ok(
        instrument, spec.side, spec.price, average_price
    ):
        raise filter_failure(
            "PERCENT_PRICE_BY_SIDE" if instrument.percent_price_by_side else "PERCENT_PRICE"
        )
    _check_notional(spec, average_price)
    if open_orders + adding > instrument.max_num_orders:
        raise filter_failure("MAX_NUM_ORDERS")
    if spec.is_stop and open_algo_orders + 1 > instrument.max_num_algo_orders:
        raise filter_failure("MAX_NUM_ALGO_ORDERS")


def _check_notional(spec: OrderSpec, average_price: Decimal) -> None:
    instrument = spec.instrument
    minimum = instrument.min_notional or Decimal(0)
    maximum = instrument.max_notional or Decimal(0)
    if spec.is_market:
        if spec.quote_order_qty is not None:
            notional = spec.quote_order_qty
        else:
            assert spec.quantity is not None
            notional = spec.quantity * average_price
        check_min = instrument.apply_min_to_market
        check_max = instrument.apply_max_to_market
    else:
        assert spec.price is not None
        assert spec.quantity is not None
        notional = spec.price * spec.quantity
        check_min = check_max = True
    if check_min and minimum > 0 and notional < minimum:
        raise filter_failure("NOTIONAL")
    if check_max and maximum > 0 and notional > maximum:
        raise filter_failure("NOTIONAL")


def trailing_factor(delta: int) -> Decimal:
    """A trailing delta in BIPS as a fraction (100 BIPS = 0.01)."""
    return Decimal(delta) / BIPS
