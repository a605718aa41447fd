"""The venue's instruments and Binance's ``exchangeInfo`` for them.

An :class:`Instrument` holds everything ``exchangeInfo`` publishes about one symbol of one
product line (spot, USDⓈ-M futures, COIN-M futures) plus the venue's own ``start_price``. The
defaults (:func:`default_instruments`) copy their filters and precisions from real Binance
payloads (``shared/fixtures/binance/python_tests/http_responses``) where the symbol exists
there, and from Binance's documented shapes otherwise (COIN-M has no fixture). A config table
can override or extend them (:func:`instruments_from_config`).

:func:`symbol_json` and :func:`exchange_info_json` render Binance's exact JSON: field names
per product, numbers as JSON strings where Binance uses strings, integers where it uses
integers, and filters as objects tagged with ``filterType``. Differences worth knowing:

* Spot prints every price and quantity of a filter with 8 decimals (``"0.01000000"``) and uses
  ``NOTIONAL`` (which replaced spot ``MIN_NOTIONAL`` in 2023) and, per instrument, either
  ``PERCENT_PRICE_BY_SIDE`` (the current default) or ``PERCENT_PRICE``.
* USD-M prints decimals as Binance stores them (``"0.10"``, ``"402"``) and has
  ``MIN_NOTIONAL {notional}``; its top level adds ``futuresType`` and ``assets``.
* COIN-M says ``contractStatus`` instead of ``status``, adds ``contractSize`` (an integer) and
  ``equalQtyPrecision``, and has no notional filter (quantities are contracts).

Every price and quantity is a ``Decimal``; floats are refused.
"""

from __future__ import annotations

import calendar
import datetime
import enum
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

__all__ = [
    "PERPETUAL_DELIVERY_DATE_MS",
    "Instrument",
    "Product",
    "default_instruments",
    "exchange_info_json",
    "instruments_from_config",
    "quarterly_delivery_ms",
    "symbol_json",
    "validate_instrument",
]


class Product(enum.Enum):
    """One of Binance's three product lines."""

    SPOT = "spot"
    USDM = "usdm"
    COINM = "coinm"


#: The ``deliveryDate`` Binance gives perpetual contracts (2100-12-25 08:00 UTC). ccxt treats
#: this exact value as "no expiry".
PERPETUAL_DELIVERY_DATE_MS: Final = 4133404800000

_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
_QUARTER_MONTHS: Final = (3, 6, 9, 12)
_FRIDAY: Final = 4  # datetime.weekday()
_DELIVERY_HOUR_UTC: Final = 8

_SPOT_DECIMALS: Final = 8
_SPOT_STATUSES: Final = frozenset({"TRADING", "END_OF_DAY", "HALT", "BREAK", "CANCEL_ONLY"})
_FUTURES_STATUSES: Final = frozenset(
    {
        "TRADING",
        "PENDING_TRADING",
        "PRE_DELIVERING",
        "DELIVERING",
        "DELIVERED",
        "PRE_SETTLE",
        "SETTLING",
        "CLOSE",
    }
)
_CONTRACT_TYPES: Final = frozenset(
    {"PERPETUAL", "CURRENT_MONTH", "NEXT_MONTH", "CURRENT_QUARTER", "NEXT_QUARTER"}
)
_QUARTER_OFFSETS: Final = {"CURRENT_QUARTER": 0, "NEXT_QUARTER": 1}

_SPOT_ORDER_TYPES: Final = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
_FUTURES_ORDER_TYPES: Final = (
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)
_SPOT_TIME_IN_FORCE: Final = ("GTC", "IOC", "FOK")
_USDM_TIME_IN_FORCE: Final = ("GTC", "IOC", "FOK", "GTX", "GTD")
_COINM_TIME_IN_FORCE: Final = ("GTC", "IOC", "FOK", "GTX")
_STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")

#: USD-M ``assets`` entries: (asset, autoAssetExchange), in the style of the fixture.
_USDM_ASSETS: Final = (
    ("USDT", "-10000"),
    ("USDC", "-10000"),
    ("BTC", "-0.10000000"),
    ("BNB", "-0"),
    ("ETH", "-0"),
)


@attrs.frozen(kw_only=True)
class Instrument:
    """One symbol of one product line, with everything ``exchangeInfo`` publishes about it.

    Futures-only fields are ``None`` on spot; spot-only fields are ignored on futures.
    Decimal fields keep the exponent they were written with, because USD-M and COIN-M
    ``exchangeInfo`` print them that way (``Decimal("0.10")`` -> ``"0.10"``).

    Attributes:
        product: The product line.
        symbol: Binance's symbol (``BTCUSDT``, ``BTCUSDT_260925``, ``BTCUSD_PERP``).
        pair: The underlying pair (``BTCUSDT``, ``BTCUSD``); equals the symbol on spot.
        base_asset: Base asset (``BTC``).
        quote_asset: Quote asset (``USDT``; ``USD`` on COIN-M).
        margin_asset: Margin asset (futures): the quote on USD-M, the base on COIN-M.
        status: ``TRADING`` or another Binance symbol status.
        contract_type: ``PERPETUAL``, ``CURRENT_QUARTER``, ``NEXT_QUARTER``... (futures).
        delivery_date_ms: Delivery time, epoch ms (futures; perpetuals use
            :data:`PERPETUAL_DELIVERY_DATE_MS`).
        onboard_date_ms: Listing time, epoch ms (futures).
        contract_size: Quote value of one contract (COIN-M: 100 for BTCUSD, 10 for others);
            1 elsewhere.
        price_precision: ``pricePrecision`` (decimals of prices).
        quantity_precision: ``quantityPrecision`` (decimals of quantities).
        base_asset_precision: ``baseAssetPrecision``.
        quote_precision: ``quotePrecision`` (and spot ``quoteAssetPrecision``).
        base_commission_precision: Spot ``baseCommissionPrecision``.
        quote_commission_precision: Spot ``quoteCommissionPrecision``.
        equal_qty_precision: COIN-M ``equalQtyPrecision``.
        tick_size: ``PRICE_FILTER.tickSize``.
        min_price: ``PRICE_FILTER.minPrice``.
        max_price: ``PRICE_FILTER.maxPrice``.
        step_size: ``LOT_SIZE.stepSize``.
        min_qty: ``LOT_SIZE.minQty``.
        max_qty: ``LOT_SIZE.maxQty``.
        market_step_size: ``MARKET_LOT_SIZE.stepSize`` (0 means disabled, as on spot).
        market_min_qty: ``MARKET_LOT_SIZE.minQty``.
        market_max_qty: ``MARKET_LOT_SIZE.maxQty``.
        min_notional: Spot ``NOTIONAL.minNotional`` / USD-M ``MIN_NOTIONAL.notional``;
            ``None`` on COIN-M.
        max_notional: Spot ``NOTIONAL.maxNotional``.
        apply_min_to_market: Spot ``NOTIONAL.applyMinToMarket``.
        apply_max_to_market: Spot ``NOTIONAL.applyMaxToMarket``.
        percent_price_by_side: Spot only: publish ``PERCENT_PRICE_BY_SIDE`` (True) or
            ``PERCENT_PRICE`` (False).
        multiplier_up: ``PERCENT_PRICE.multiplierUp``.
        multiplier_down: ``PERCENT_PRICE.multiplierDown``.
        multiplier_decimal: Futures ``PERCENT_PRICE.multiplierDecimal``.
        bid_multiplier_up: Spot ``PERCENT_PRICE_BY_SIDE.bidMultiplierUp``.
        bid_multiplier_down: Spot ``PERCENT_PRICE_BY_SIDE.bidMultiplierDown``.
        ask_multiplier_up: Spot ``PERCENT_PRICE_BY_SIDE.askMultiplierUp``.
        ask_multiplier_down: Spot ``PERCENT_PRICE_BY_SIDE.askMultiplierDown``.
        avg_price_mins: Spot ``avgPriceMins`` of the price and notional filters.
        iceberg_parts: Spot ``ICEBERG_PARTS.limit``.
        min_trailing_delta: Spot ``TRAILING_DELTA`` minimum (above and below), in BIPS.
        max_trailing_delta: Spot ``TRAILING_DELTA`` maximum (above and below), in BIPS.
        max_num_orders: ``MAX_NUM_ORDERS`` (spot ``maxNumOrders``, futures ``limit``).
        max_num_algo_orders: ``MAX_NUM_ALGO_ORDERS``.
        max_num_order_lists: Spot ``MAX_NUM_ORDER_LISTS.maxNumOrderLists``.
        max_num_order_amends: Spot ``MAX_NUM_ORDER_AMENDS.maxNumOrderAmends``.
        order_types: ``orderTypes``.
        time_in_force: Futures ``timeInForce``; on spot, the values the venue accepts.
        start_price: The venue's opening price for this market (tick aligned).
        maint_margin_percent: Futures ``maintMarginPercent``.
        required_margin_percent: Futures ``requiredMarginPercent``.
        trigger_protect: Futures ``triggerProtect``.
        liquidation_fee: Futures ``liquidationFee``.
        market_take_bound: Futures ``marketTakeBound``.
        underlying_type: Futures ``underlyingType``.
        underlying_sub_type: Futures ``underlyingSubType``.
        settle_plan: USD-M ``settlePlan``.
        max_move_order_limit: Futures ``maxMoveOrderLimit``.
        permission_sets: Spot ``permissionSets``.
        is_margin_trading_allowed: Spot ``isMarginTradingAllowed``.
        default_self_trade_prevention_mode: Spot ``defaultSelfTradePreventionMode``.
        allowed_self_trade_prevention_modes: Spot ``allowedSelfTradePreventionModes``.
    """

    product: Product
    symbol: str
    pair: str
    base_asset: str
    quote_asset: str
    margin_asset: str | None = None
    status: str = "TRADING"
    contract_type: str | None = None
    delivery_date_ms: int | None = None
    onboard_date_ms: int | None = None
    contract_size: Decimal = Decimal(1)
    price_precision: int
    quantity_precision: int
    base_asset_precision: int = 8
    quote_precision: int = 8
    base_commission_precision: int = 8
    quote_commission_precision: int = 8
    equal_qty_precision: int = 4
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_step_size: Decimal
    market_min_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal | None
    max_notional: Decimal | None = None
    apply_min_to_market: bool = True
    apply_max_to_market: bool = False
    percent_price_by_side: bool = True
    multiplier_up: Decimal
    multiplier_down: Decimal
    multiplier_decimal: int = 4
    bid_multiplier_up: Decimal = Decimal(5)
    bid_multiplier_down: Decimal = Decimal("0.2")
    ask_multiplier_up: Decimal = Decimal(5)
    ask_multiplier_down: Decimal = Decimal("0.2")
    avg_price_mins: int = 5
    iceberg_parts: int = 100
    min_trailing_delta: int = 10
    max_trailing_delta: int = 2000
    max_num_orders: int = 200
    max_num_algo_orders: int
    max_num_order_lists: int = 20
    max_num_order_amends: int = 10
    order_types: tuple[str, ...]
    time_in_force: tuple[str, ...]
    start_price: Decimal
    maint_margin_percent: Decimal | None = None
    required_margin_percent: Decimal | None = None
    trigger_protect: Decimal | None = None
    liquidation_fee: Decimal | None = None
    market_take_bound: Decimal | None = None
    underlying_type: str = "COIN"
    underlying_sub_type: tuple[str, ...] = ()
    settle_plan: int = 0
    max_move_order_limit: int = 10000
    permission_sets: tuple[tuple[str, ...], ...] = (("SPOT", "MARGIN"),)
    is_margin_trading_allowed: bool = True
    default_self_trade_prevention_mode: str = "EXPIRE_MAKER"
    allowed_self_trade_prevention_modes: tuple[str, ...] = _STP_MODES

    @property
    def is_futures(self) -> bool:
        """True for USD-M and COIN-M instruments."""
        return self.product is not Product.SPOT

    @property
    def is_perpetual(self) -> bool:
        """True for perpetual futures."""
        return self.contract_type == "PERPETUAL"


# --- delivery dates ------------------------------------------------------------------------


def _last_friday_delivery_ms(year: int, month: int) -> int:
    last_day = calendar.monthrange(year, month)[1]
    day = datetime.date(year, month, last_day)
    day -= datetime.timedelta(days=(day.weekday() - _FRIDAY) % 7)
    moment = datetime.datetime(
        day.year, day.month, day.day, _DELIVERY_HOUR_UTC, tzinfo=datetime.UTC
    )
    return int(moment.timestamp()) * 1000


def quarterly_delivery_ms(now_ms: int, offset: int = 0) -> int:
    """Delivery time of a quarterly contract, as Binance schedules them.

    Binance quarterlies deliver on the last Friday of March, June, September and December at
    08:00 UTC.

    Args:
        now_ms: The current time, epoch ms.
        offset: 0 for the first delivery strictly after ``now_ms`` (``CURRENT_QUARTER``),
            1 for the one after (``NEXT_QUARTER``), and so on; -1 for the last delivery at or
            before ``now_ms``.

    Returns:
        The delivery time, epoch ms.
    """
    moment = datetime.datetime.fromtimestamp(now_ms // 1000, tz=datetime.UTC)
    year = moment.year
    quarter = (moment.month - 1) // 3  # 0..3: the quarter whose last month may deliver next
    deliveries: list[int] = []
    # Enough candidates around now to satisfy any small offset.
    for index in range(-2, 8 + max(offset, 0) * 1):
        absolute = quarter + index
        candidate_year = year + absolute // 4
        candidate_month = _QUARTER_MONTHS[absolute % 4]
        deliveries.append(_last_friday_delivery_ms(candidate_year, candidate_month))
    upcoming = [value for value in deliveries if value > now_ms]
    if offset >= 0:
        return upcoming[offset]
    past = [value for value in deliveries if value <= now_ms]
    return past[offset]


def _yymmdd(epoch_ms: int) -> str:
    return datetime.datetime.fromtimestamp(epoch_ms // 1000, tz=datetime.UTC).strftime("%y%m%d")


# --- defaults ------------------------------------------------------------------------------


def _spot(
    *,
    symbol: str,
    base: str,
    quote: str,
    tick: str,
    step: str,
    max_qty: str,
    market_max_qty: str,
    start_price: str,
    by_side: bool = True,
) -> Instrument:
    tick_size = Decimal(tick)
    step_size = Decimal(step)
    return Instrument(
        product=Product.SPOT,
        symbol=symbol,
        pair=symbol,
        base_asset=base,
        quote_asset=quote,
        price_precision=-tick_size.normalize().as_tuple().exponent,
        quantity_precision=-step_size.normalize().as_tuple().exponent,
        tick_size=tick_size,
        min_price=tick_size,
        max_price=Decimal(1000000),
        step_size=step_size,
        min_qty=step_size,
        max_qty=Decimal(max_qty),
        market_step_size=Decimal(0),
        market_min_qty=Decimal(0),
        market_max_qty=Decimal(market_max_qty),
        min_notional=Decimal(5),
        max_notional=Decimal(9000000),
        percent_price_by_side=by_side,
        multiplier_up=Decimal(5),
        multiplier_down=Decimal("0.2"),
        max_num_algo_orders=5,
        order_types=_SPOT_ORDER_TYPES,
        time_in_force=_SPOT_TIME_IN_FORCE,
        start_price=Decimal(start_price),
    )


def default_instruments(now_ms: int) -> tuple[Instrument, ...]:
    """The venue's standard instruments.

    Spot BTCUSDT, ETHUSDT and BNBUSDT; USD-M BTCUSDT and ETHUSDT perpetuals and the
    ``CURRENT_QUARTER`` BTCUSDT delivery contract; COIN-M BTCUSD_PERP and the
    ``CURRENT_QUARTER`` BTCUSD delivery contract. Delivery symbols and dates follow from
    ``now_ms`` (see :func:`quarterly_delivery_ms`); a delivery contract's onboard date is the
    previous quarterly delivery. Filters and precisions come from the real payloads in the
    fixtures where the symbol is there (spot BTCUSDT/ETHUSDT, USD-M BTCUSDT/ETHUSDT and the
    quarterly), updated to Binance's current spot filter set.

    Args:
        now_ms: The current time, epoch ms.

    Returns:
        The instruments, spot first, then USD-M, then COIN-M.
    """
    delivery_ms = quarterly_delivery_ms(now_ms, 0)
    previous_delivery_ms = quarterly_delivery_ms(now_ms, -1)
    suffix = _yymmdd(delivery_ms)
    spot = (
        _spot(
            symbol="BTCUSDT",
            base="BTC",
            quote="USDT",
            tick="0.01",
            step="0.00001",
            max_qty="9000",
            market_max_qty="112.21108820",
            start_price="60650.00",
        ),
        _spot(
            symbol="ETHUSDT",
            base="ETH",
            quote="USDT",
            tick="0.01",
            step="0.0001",
            max_qty="9000",
            market_max_qty="1630.44517663",
            start_price="3000.00",
        ),
        _spot(
            symbol="BNBUSDT",
            base="BNB",
            quote="USDT",
            tick="0.01",
            step="0.001",
            max_qty="900000",
            market_max_qty="3174.44013194",
            start_price="600.00",
            by_side=False,
        ),
    )
    usdm_common: dict[str, Any] = {
        "product": Product.USDM,
        "quote_asset": "USDT",
        "margin_asset": "USDT",
        "max_num_algo_orders": 10,
        "min_notional": Decimal(10),
        "order_types": _FUTURES_ORDER_TYPES,
        "time_in_force": _USDM_TIME_IN_FORCE,
        "maint_margin_percent": Decimal("2.5000"),
        "required_margin_percent": Decimal("5.0000"),
        "trigger_protect": Decimal("0.0500"),
        "onboard_date_ms": 1569398400000,
    }
    usdm = (
        Instrument(
            **usdm_common,
            symbol="BTCUSDT",
            pair="BTCUSDT",
            base_asset="BTC",
            contract_type="PERPETUAL",
            delivery_date_ms=PERPETUAL_DELIVERY_DATE_MS,
            price_precision=2,
            quantity_precision=3,
            tick_size=Decimal("0.10"),
            min_price=Decimal("402"),
            max_price=Decimal("1246396.60"),
            step_size=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            max_qty=Decimal("1000"),
            market_step_size=Decimal("0.001"),
            market_min_qty=Decimal("0.001"),
            market_max_qty=Decimal("1000"),
            multiplier_up=Decimal("1.1000"),
            multiplier_down=Decimal("0.5454"),
            liquidation_fee=Decimal("0.012000"),
            market_take_bound=Decimal("0.30"),
            underlying_sub_type=("PoW",),
            start_price=Decimal("60680.00"),
        ),
        Instrument(
            **usdm_common,
            symbol="ETHUSDT",
            pair="ETHUSDT",
            base_asset="ETH",
            contract_type="PERPETUAL",
            delivery_date_ms=PERPETUAL_DELIVERY_DATE_MS,
            price_precision=2,
            quantity_precision=3,
            tick_size=Decimal("0.01"),
            min_price=Decimal("28.23"),
            max_price=Decimal("144004.03"),
            step_size=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            max_qty=Decimal("10000"),
            market_step_size=Decimal("0.001"),
            market_min_qty=Decimal("0.001"),
            market_max_qty=Decimal("10000"),
            multiplier_up=Decimal("1.1000"),
            multiplier_down=Decimal("0.9000"),
            liquidation_fee=Decimal("0.030000"),
            market_take_bound=Decimal("0.10"),
            underlying_sub_type=("Layer-1",),
            start_price=Decimal("3001.50"),
        ),
        Instrument(
            **{**usdm_common, "onboard_date_ms": previous_delivery_ms},
            symbol=f"BTCUSDT_{suffix}",
            pair="BTCUSDT",
            base_asset="BTC",
            contract_type="CURRENT_QUARTER",
            delivery_date_ms=delivery_ms,
            price_precision=1,
            quantity_precision=3,
            tick_size=Decimal("0.1"),
            min_price=Decimal("1093.3"),
            max_price=Decimal("1822332.8"),
            step_size=Decimal("0.001"),
            min_qty=Decimal("0.001"),
            max_qty=Decimal("500"),
            market_step_size=Decimal("0.001"),
            market_min_qty=Decimal("0.001"),
            market_max_qty=Decimal("500"),
            multiplier_up=Decimal("1.0500"),
            multiplier_down=Decimal("0.9500"),
            liquidation_fee=Decimal("0.010000"),
            market_take_bound=Decimal("0.05"),
            underlying_sub_type=("PoW",),
            start_price=Decimal("61250.0"),
        ),
    )
    coinm_common: dict[str, Any] = {
        "product": Product.COINM,
        "pair": "BTCUSD",
        "base_asset": "BTC",
        "quote_asset": "USD",
        "margin_asset": "BTC",
        "contract_size": Decimal(100),
        "price_precision": 1,
        "quantity_precision": 0,
        "tick_size": Decimal("0.1"),
        "min_price": Decimal("1000"),
        "max_price": Decimal("4520958"),
        "step_size": Decimal("1"),
        "min_qty": Decimal("1"),
        "max_qty": Decimal("1000000"),
        "market_step_size": Decimal("1"),
        "market_min_qty": Decimal("1"),
        "market_max_qty": Decimal("60000"),
        "min_notional": None,
        "multiplier_up": Decimal("1.0500"),
        "multiplier_down": Decimal("0.9500"),
        "max_num_algo_orders": 100,
        "order_types": _FUTURES_ORDER_TYPES,
        "time_in_force": _COINM_TIME_IN_FORCE,
        "maint_margin_percent": Decimal("2.5000"),
        "required_margin_percent": Decimal("5.0000"),
        "trigger_protect": Decimal("0.0500"),
        "liquidation_fee": Decimal("0.015000"),
        "market_take_bound": Decimal("0.05"),
    }
    coinm = (
        Instrument(
            **coinm_common,
            symbol="BTCUSD_PERP",
            contract_type="PERPETUAL",
            delivery_date_ms=PERPETUAL_DELIVERY_DATE_MS,
            onboard_date_ms=1597042800000,
            start_price=Decimal("60700.0"),
        ),
        Instrument(
            **coinm_common,
            symbol=f"BTCUSD_{suffix}",
            contract_type="CURRENT_QUARTER",
            delivery_date_ms=delivery_ms,
            onboard_date_ms=previous_delivery_ms,
            start_price=Decimal("61300.0"),
        ),
    )
    instruments = (*spot, *usdm, *coinm)
    for instrument in instruments:
        validate_instrument(instrument)
    return instruments


# --- validation ----------------------------------------------------------------------------


def _is_multiple(value: Decimal, unit: Decimal) -> bool:
    return unit > 0 and value % unit == 0


def validate_instrument(instrument: Instrument) -> None:
    """Check that an instrument's filters are internally consistent.

    Rules: positive tick and step; ``0 <= minPrice < maxPrice``; both price bounds and the
    start price are multiples of the tick (so Binance's spot rule ``price % tickSize == 0`` and
    the futures rule ``(price - minPrice) % tickSize == 0`` agree); ``0 < minQty <= maxQty``,
    both multiples of the step; the market lot bounds likewise when its step is not 0 (0 means
    disabled); the start price inside the price bounds; ``multiplierDown < 1 < multiplierUp``;
    precisions that can express the tick and the step; futures carry a contract type,
    delivery and onboard dates and their margin fields; COIN-M contract sizes are positive
    integers.

    Args:
        instrument: The instrument to check.

    Raises:
        ValueError: The first rule broken, naming the symbol, the field and the value.
    """
    name = f"instrument {instrument.symbol!r} ({instrument.product.value})"

    def fail(field: str, value: object, rule: str) -> None:
        raise ValueError(f"{name}: {field}={value!s} is invalid: {rule}")

    if not instrument.symbol or not instrument.symbol.isascii():
        fail("symbol", instrument.symbol, "must be a non-empty ASCII name")
    if instrument.tick_size <= 0:
        fail("tick_size", instrument.tick_size, "must be positive")
    if instrument.step_size <= 0:
        fail("step_size", instrument.step_size, "must be positive")
    if instrument.min_price < 0:
        fail("min_price", instrument.min_price, "must not be negative")
    if instrument.max_price <= instrument.min_price:
        fail("max_price", instrument.max_price, f"must exceed min_price {instrument.min_price}")
    for field in ("min_price", "max_price", "start_price"):
        value = getattr(instrument, field)
        if not _is_multiple(value, instrument.tick_size):
            fail(field, value, f"must be a multiple of tick_size {instrument.tick_size}")
    if not instrument.min_price <= instrument.start_price <= instrument.max_price:
        fail("start_price", instrument.start_price, "must lie within [min_price, max_price]")
    if instrument.start_price <= 0:
        fail("start_price", instrument.start_price, "must be positive")
    if instrument.min_qty <= 0:
        fail("min_qty", instrument.min_qty, "must be positive")
    if instrument.max_qty < instrument.min_qty:
        fail("max_qty", instrument.max_qty, f"must be at least min_qty {instrument.min_qty}")
    for field in ("min_qty", "max_qty"):
        value = getattr(instrument, field)
        if not _is_multiple(value, instrument.step_size):
            fail(field, value, f"must be a multiple of step_size {instrument.step_size}")
    if instrument.market_step_size < 0:
        fail("market_step_size", instrument.market_step_size, "must not be negative")
    if instrument.market_max_qty < instrument.market_min_qty:
        fail("market_max_qty", instrument.market_max_qty, "must be at least market_min_qty")
    if instrument.market_step_size > 0:
        for field in ("market_min_qty", "market_max_qty"):
            value = getattr(instrument, field)
            if not _is_multiple(value, instrument.market_step_size):
                fail(field, value, f"must be a multiple of {instrument.market_step_size}")
    if instrument.min_notional is not None and instrument.min_notional < 0:
        fail("min_notional", instrument.min_notional, "must not be negative")
    if (
        instrument.max_notional is not None
        and instrument.min_notional is not None
        and instrument.max_notional < instrument.min_notional
    ):
        fail("max_notional", instrument.max_notional, "must be at least min_notional")
    if not instrument.multiplier_down < 1 < instrument.multiplier_up:
        fail(
            "multiplier_down/multiplier_up",
            f"{instrument.multiplier_down}/{instrument.multiplier_up}",
            "need multiplier_down < 1 < multiplier_up",
        )
    if not instrument.bid_multiplier_down < 1 < instrument.bid_multiplier_up:
        fail("bid_multiplier_down/up", instrument.bid_multiplier_down, "need down < 1 < up")
    if not instrument.ask_multiplier_down < 1 < instrument.ask_multiplier_up:
        fail("ask_multiplier_down/up", instrument.ask_multiplier_down, "need down < 1 < up")
    for field in (
        "price_precision",
        "quantity_precision",
        "base_asset_precision",
        "quote_precision",
        "avg_price_mins",
        "max_num_orders",
        "max_num_algo_orders",
    ):
        value = getattr(instrument, field)
        if value < 0:
            fail(field, value, "must not be negative")
    places = Decimal(1).scaleb(-instrument.price_precision)
    if instrument.tick_size % places != 0:
        fail("price_precision", instrument.price_precision, "cannot express tick_size")
    places = Decimal(1).scaleb(-instrument.quantity_precision)
    if instrument.step_size % places != 0:
        fail("quantity_precision", instrument.quantity_precision, "cannot express step_size")
    if not instrument.order_types:
        fail("order_types", instrument.order_types, "must not be empty")
    if not instrument.time_in_force:
        fail("time_in_force", instrument.time_in_force, "must not be empty")
    if instrument.product is Product.SPOT:
        if instrument.status not in _SPOT_STATUSES:
            fail("status", instrument.status, f"must be one of {sorted(_SPOT_STATUSES)}")
        if instrument.pair != instrument.symbol:
            fail("pair", instrument.pair, "must equal the symbol on spot")
        return
    if instrument.status not in _FUTURES_STATUSES:
        fail("status", instrument.status, f"must be one of {sorted(_FUTURES_STATUSES)}")
    if instrument.contract_type not in _CONTRACT_TYPES:
        fail("contract_type", instrument.contract_type, f"must be one of {sorted(_CONTRACT_TYPES)}")
    if instrument.delivery_date_ms is None or instrument.onboard_date_ms is None:
        fail("delivery_date_ms/onboard_date_ms", None, "futures need both dates")
    elif instrument.onboard_date_ms >= instrument.delivery_date_ms:
        fail("onboard_date_ms", instrument.onboard_date_ms, "must precede delivery_date_ms")
    if instrument.margin_asset is None:
        fail("margin_asset", None, "futures need a margin asset")
    for field in (
        "maint_margin_percent",
        "required_margin_percent",
        "trigger_protect",
        "liquidation_fee",
        "market_take_bound",
    ):
        value = getattr(instrument, field)
        if value is None or value < 0:
            fail(field, value, "futures need a non-negative value")
    if instrument.product is Product.USDM:
        if instrument.min_notional is None:
            fail("min_notional", None, "USD-M publishes MIN_NOTIONAL")
        if instrument.margin_asset != instrument.quote_asset:
            fail("margin_asset", instrument.margin_asset, "USD-M margin is the quote asset")
        if instrument.contract_size != 1:
            fail("contract_size", instrument.contract_size, "USD-M contracts are 1 base unit")
    else:
        if instrument.margin_asset != instrument.base_asset:
            fail("margin_asset", instrument.margin_asset, "COIN-M margin is the base asset")
        if instrument.contract_size <= 0 or instrument.contract_size % 1 != 0:
            fail("contract_size", instrument.contract_size, "must be a positive integer")


# --- configuration -------------------------------------------------------------------------

_DECIMAL_FIELDS: Final = frozenset(
    {
        "contract_size",
        "tick_size",
        "min_price",
        "max_price",
        "step_size",
        "min_qty",
        "max_qty",
        "market_step_size",
        "market_min_qty",
        "market_max_qty",
        "multiplier_up",
        "multiplier_down",
        "bid_multiplier_up",
        "bid_multiplier_down",
        "ask_multiplier_up",
        "ask_multiplier_down",
        "start_price",
    }
)
_OPTIONAL_DECIMAL_FIELDS: Final = frozenset(
    {
        "min_notional",
        "max_notional",
        "maint_margin_percent",
        "required_margin_percent",
        "trigger_protect",
        "liquidation_fee",
        "market_take_bound",
    }
)
_INT_FIELDS: Final = frozenset(
    {
        "price_precision",
        "quantity_precision",
        "base_asset_precision",
        "quote_precision",
        "base_commission_precision",
        "quote_commission_precision",
        "equal_qty_precision",
        "multiplier_decimal",
        "avg_price_mins",
        "iceberg_parts",
        "min_trailing_delta",
        "max_trailing_delta",
        "max_num_orders",
        "max_num_algo_orders",
        "max_num_order_lists",
        "max_num_order_amends",
        "settle_plan",
        "max_move_order_limit",
    }
)
_OPTIONAL_INT_FIELDS: Final = frozenset({"delivery_date_ms", "onboard_date_ms"})
_STR_FIELDS: Final = frozenset(
    {
        "pair",
        "base_asset",
        "quote_asset",
        "status",
        "underlying_type",
        "default_self_trade_prevention_mode",
    }
)
_OPTIONAL_STR_FIELDS: Final = frozenset({"margin_asset", "contract_type"})
_BOOL_FIELDS: Final = frozenset(
    {
        "apply_min_to_market",
        "apply_max_to_market",
        "percent_price_by_side",
        "is_margin_trading_allowed",
    }
)
_STR_TUPLE_FIELDS: Final = frozenset(
    {
        "order_types",
        "time_in_force",
        "underlying_sub_type",
        "allowed_self_trade_prevention_modes",
    }
)
_NESTED_TUPLE_FIELDS: Final = frozenset({"permission_sets"})
_CONFIGURABLE: Final = (
    _DECIMAL_FIELDS
    | _OPTIONAL_DECIMAL_FIELDS
    | _INT_FIELDS
    | _OPTIONAL_INT_FIELDS
    | _STR_FIELDS
    | _OPTIONAL_STR_FIELDS
    | _BOOL_FIELDS
    | _STR_TUPLE_FIELDS
    | _NESTED_TUPLE_FIELDS
)
_ROW_KEYS: Final = frozenset({"product", "symbol", "enabled"})
_REQUIRED_FOR_NEW: Final = ("base_asset", "quote_asset", "tick_size", "step_size", "start_price")


def _bad(where: str, key: str, value: object, expected: str) -> ValueError:
    return ValueError(f"{where}: bad value for {key!r}: {value!r} (expected {expected})")


def _to_decimal(where: str, key: str, value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise _bad(where, key, value, "a decimal string such as '0.01'; floats are refused")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise _bad(where, key, value, "a decimal string such as '0.01'") from None
    else:
        raise _bad(where, key, value, "a decimal string such as '0.01'")
    if not result.is_finite():
        raise _bad(where, key, value, "a finite decimal")
    return result


def _convert(where: str, key: str, value: object) -> object:
    optional = key in _OPTIONAL_DECIMAL_FIELDS | _OPTIONAL_INT_FIELDS | _OPTIONAL_STR_FIELDS
    if value is None:
        if optional:
            return None
        raise _bad(where, key, value, "a value (null is not allowed here)")
    if key in _DECIMAL_FIELDS or key in _OPTIONAL_DECIMAL_FIELDS:
        return _to_decimal(where, key, value)
    if key in _INT_FIELDS or key in _OPTIONAL_INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(where, key, value, "an integer")
        return value
    if key in _STR_FIELDS or key in _OPTIONAL_STR_FIELDS:
        if not isinstance(value, str) or not value:
            raise _bad(where, key, value, "a non-empty string")
        return value
    if key in _BOOL_FIELDS:
        if not isinstance(value, bool):
            raise _bad(where, key, value, "true or false")
        return value
    if key in _STR_TUPLE_FIELDS:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise _bad(where, key, value, "a list of strings")
        return tuple(value)
    # _NESTED_TUPLE_FIELDS
    if not isinstance(value, list | tuple) or not all(
        isinstance(group, list | tuple) and all(isinstance(v, str) for v in group)
        for group in value
    ):
        raise _bad(where, key, value, "a list of lists of strings")
    return tuple(tuple(group) for group in value)


def _derived_new_instrument(
    product: Product, symbol: str, values: Mapping[str, Any], now_ms: int
) -> Instrument:
    """Build an instrument not among the defaults from a few required keys."""
    tick: Decimal = values["tick_size"]
    step: Decimal = values["step_size"]
    start: Decimal = values["start_price"]
    base: str = values["base_asset"]
    quote: str = values["quote_asset"]
    price_places = max(0, -tick.as_tuple().exponent)
    quantity_places = max(0, -step.as_tuple().exponent)
    max_price = (start * 1000).quantize(tick) if start * 1000 > tick else tick * 1000
    fields: dict[str, Any] = {
        "product": product,
        "symbol": symbol,
        "pair": symbol if product is Product.SPOT else f"{base}{quote}",
        "base_asset": base,
        "quote_asset": quote,
        "price_precision": price_places,
        "quantity_precision": quantity_places,
        "tick_size": tick,
        "min_price": tick,
        "max_price": max_price,
        "step_size": step,
        "min_qty": step,
        "max_qty": step * 10**9,
        "market_step_size": Decimal(0) if product is Product.SPOT else step,
        "market_min_qty": Decimal(0) if product is Product.SPOT else step,
        "market_max_qty": step * 10**8,
        "start_price": start,
    }
    if product is Product.SPOT:
        fields.update(
            min_notional=Decimal(5),
            max_notional=Decimal(9000000),
            multiplier_up=Decimal(5),
            multiplier_down=Decimal("0.2"),
            max_num_algo_orders=5,
            order_types=_SPOT_ORDER_TYPES,
            time_in_force=_SPOT_TIME_IN_FORCE,
        )
    else:
        contract_type = values.get("contract_type") or "PERPETUAL"
        if contract_type == "PERPETUAL":
            delivery_ms = PERPETUAL_DELIVERY_DATE_MS
            onboard_ms = now_ms - now_ms % _DAY_MS
        elif contract_type in _QUARTER_OFFSETS:
            delivery_ms = quarterly_delivery_ms(now_ms, _QUARTER_OFFSETS[contract_type])
            onboard_ms = quarterly_delivery_ms(now_ms, -1)
        else:
            delivery_ms = None  # must come from the row
            onboard_ms = now_ms - now_ms % _DAY_MS
        fields.update(
            contract_type=contract_type,
            delivery_date_ms=delivery_ms,
            onboard_date_ms=onboard_ms,
            multiplier_up=Decimal("1.0500"),
            multiplier_down=Decimal("0.9500"),
            max_num_algo_orders=10 if product is Product.USDM else 100,
            order_types=_FUTURES_ORDER_TYPES,
            maint_margin_percent=Decimal("2.5000"),
            required_margin_percent=Decimal("5.0000"),
            trigger_protect=Decimal("0.0500"),
            liquidation_fee=Decimal("0.015000"),
            market_take_bound=Decimal("0.05"),
        )
        if product is Product.USDM:
            fields.update(
                margin_asset=quote,
                min_notional=Decimal(5),
                time_in_force=_USDM_TIME_IN_FORCE,
            )
        else:
            fields.update(
                margin_asset=base,
                min_notional=None,
                contract_size=Decimal(100) if base == "BTC" else Decimal(10),
                time_in_force=_COINM_TIME_IN_FORCE,
            )
    fields.update(values)
    return Instrument(**fields)


def instruments_from_config(table: list[dict], now_ms: int) -> tuple[Instrument, ...]:
    """Override or extend the default instruments from a config table.

    Each row names ``product`` (``"spot"``, ``"usdm"``, ``"coinm"``) and ``symbol``; every
    other key is an :class:`Instrument` field name (``tick_size``, ``start_price``,
    ``max_num_orders``...). A row whose (product, symbol) is a default instrument overrides
    the given fields; ``enabled = false`` removes it. Any other row adds an instrument and
    must give ``base_asset``, ``quote_asset``, ``tick_size``, ``step_size`` and
    ``start_price``; the rest is derived (precisions from the tick and step, permissive price
    and quantity bounds, the product's usual order types and margin fields; a futures
    ``contract_type`` of ``CURRENT_QUARTER``/``NEXT_QUARTER`` gets its delivery date). Decimal
    fields take strings or integers; floats are refused, so no price is ever rounded through
    binary floating point.

    Args:
        table: The rows, e.g. a TOML ``[[venue.instruments]]`` array.
        now_ms: The current time, epoch ms (for delivery dates).

    Returns:
        The defaults with the overrides applied and removals dropped, in their order, followed
        by the added instruments in row order.

    Raises:
        ValueError: A row that is not a table, a missing or unknown key, a value of the wrong
            type (naming the key and the value), a duplicate row, or an instrument whose
            filters are inconsistent (see :func:`validate_instrument`).
    """
    instruments: dict[tuple[Product, str], Instrument | None] = {
        (instrument.product, instrument.symbol): instrument
        for instrument in default_instruments(now_ms)
    }
    seen: set[tuple[Product, str]] = set()
    for index, row in enumerate(table):
        where = f"instruments[{index}]"
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a table of instrument fields, got {row!r}")
        unknown = sorted(set(row) - _CONFIGURABLE - _ROW_KEYS)
        if unknown:
            raise ValueError(
                f"{where}: unknown key {unknown[0]!r} (value {row[unknown[0]]!r}); known keys: "
                f"{', '.join(sorted(_CONFIGURABLE | _ROW_KEYS))}"
            )
        raw_product = row.get("product")
        try:
            product = Product(raw_product)
        except ValueError:
            raise _bad(where, "product", raw_product, "'spot', 'usdm' or 'coinm'") from None
        symbol = row.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise _bad(where, "symbol", symbol, "a non-empty string such as 'BTCUSDT'")
        where = f"{where} ({product.value} {symbol})"
        key = (product, symbol)
        if key in seen:
            raise ValueError(f"{where}: duplicate row for this product and symbol")
        seen.add(key)
        enabled = row.get("enabled", True)
        if not isinstance(enabled, bool):
            raise _bad(where, "enabled", enabled, "true or false")
        if not enabled:
            if key not in instruments:
                raise ValueError(f"{where}: enabled=false names no default instrument")
            instruments[key] = None
            continue
        values = {
            name: _convert(where, name, value)
            for name, value in row.items()
            if name not in _ROW_KEYS
        }
        existing = instruments.get(key)
        if existing is not None:
            instrument = attrs.evolve(existing, **values)
        else:
            missing = [name for name in _REQUIRED_FOR_NEW if name not in values]
            if missing:
                raise ValueError(
                    f"{where}: a new instrument needs key {missing[0]!r} "
                    f"(required: {', '.join(_REQUIRED_FOR_NEW)})"
                )
            try:
                instrument = _derived_new_instrument(product, symbol, values, now_ms)
            except TypeError as error:
                raise ValueError(f"{where}: {error}") from None
        validate_instrument(instrument)
        instruments[key] = instrument
    return tuple(instrument for instrument in instruments.values() if instrument is not None)


# --- JSON ----------------------------------------------------------------------------------


def _plain(value: Decimal) -> str:
    """A decimal as Binance's futures exchangeInfo prints it: as stored, never exponent form."""
    return format(value, "f")


def _spot_fixed(value: Decimal) -> str:
    """A spot filter price or quantity: always 8 decimals (``"0.01000000"``)."""
    return format(value.quantize(Decimal(1).scaleb(-_SPOT_DECIMALS)), "f")


def _spot_symbol_json(instrument: Instrument) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": _spot_fixed(instrument.min_price),
            "maxPrice": _spot_fixed(instrument.max_price),
            "tickSize": _spot_fixed(instrument.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": _spot_fixed(instrument.min_qty),
            "maxQty": _spot_fixed(instrument.max_qty),
            "stepSize": _spot_fixed(instrument.step_size),
        },
        {"filterType": "ICEBERG_PARTS", "limit": instrument.iceberg_parts},
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": _spot_fixed(instrument.market_min_qty),
            "maxQty": _spot_fixed(instrument.market_max_qty),
            "stepSize": _spot_fixed(instrument.market_step_size),
        },
        {
            "filterType": "TRAILING_DELTA",
            "minTrailingAboveDelta": instrument.min_trailing_delta,
            "maxTrailingAboveDelta": instrument.max_trailing_delta,
            "minTrailingBelowDelta": instrument.min_trailing_delta,
            "maxTrailingBelowDelta": instrument.max_trailing_delta,
        },
    ]
    if instrument.percent_price_by_side:
        filters.append(
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": _plain(instrument.bid_multiplier_up),
                "bidMultiplierDown": _plain(instrument.bid_multiplier_down),
                "askMultiplierUp": _plain(instrument.ask_multiplier_up),
                "askMultiplierDown": _plain(instrument.ask_multiplier_down),
                "avgPriceMins": instrument.avg_price_mins,
            }
        )
    else:
        filters.append(
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": _plain(instrument.multiplier_up),
                "multiplierDown": _plain(instrument.multiplier_down),
                "avgPriceMins": instrument.avg_price_mins,
            }
        )
    min_notional = instrument.min_notional if instrument.min_notional is not None else Decimal(0)
    max_notional = instrument.max_notional if instrument.max_notional is not None else Decimal(0)
    filters += [
        {
            "filterType": "NOTIONAL",
            "minNotional": _spot_fixed(min_notional),
            "applyMinToMarket": instrument.apply_min_to_market,
            "maxNotional": _spot_fixed(max_notional),
            "applyMaxToMarket": instrument.apply_max_to_market,
            "avgPriceMins": instrument.avg_price_mins,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": instrument.max_num_orders},
        {"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": instrument.max_num_order_lists},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": instrument.max_num_algo_orders},
        {
            "filterType": "MAX_NUM_ORDER_AMENDS",
            "maxNumOrderAmends": instrument.max_num_order_amends,
        },
    ]
    return {
        "symbol": instrument.symbol,
        "status": instrument.status,
        "baseAsset": instrument.base_asset,
        "baseAssetPrecision": instrument.base_asset_precision,
        "quoteAsset": instrument.quote_asset,
        "quotePrecision": instrument.quote_precision,
        "quoteAssetPrecision": instrument.quote_precision,
        "baseCommissionPrecision": instrument.base_commission_precision,
        "quoteCommissionPrecision": instrument.quote_commission_precision,
        "orderTypes": list(instrument.order_types),
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "opoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "pegInstructionsAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": instrument.is_margin_trading_allowed,
        "filters": filters,
        "permissions": [],
        "permissionSets": [list(group) for group in instrument.permission_sets],
        "defaultSelfTradePreventionMode": instrument.default_self_trade_prevention_mode,
        "allowedSelfTradePreventionModes": list(instrument.allowed_self_trade_prevention_modes),
    }


def _futures_filters(instrument: Instrument) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": _plain(instrument.min_price),
            "maxPrice": _plain(instrument.max_price),
            "tickSize": _plain(instrument.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": _plain(instrument.min_qty),
            "maxQty": _plain(instrument.max_qty),
            "stepSize": _plain(instrument.step_size),
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": _plain(instrument.market_min_qty),
            "maxQty": _plain(instrument.market_max_qty),
            "stepSize": _plain(instrument.market_step_size),
        },
        {"filterType": "MAX_NUM_ORDERS", "limit": instrument.max_num_orders},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": instrument.max_num_algo_orders},
    ]
    if instrument.product is Product.USDM and instrument.min_notional is not None:
        filters.append({"filterType": "MIN_NOTIONAL", "notional": _plain(instrument.min_notional)})
    filters.append(
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": _plain(instrument.multiplier_up),
            "multiplierDown": _plain(instrument.multiplier_down),
            "multiplierDecimal": str(instrument.multiplier_decimal),
        }
    )
    return filters


def _optional_plain(value: Decimal | None) -> str:
    return "" if value is None else _plain(value)


def _usdm_symbol_json(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "pair": instrument.pair,
        "contractType": instrument.contract_type,
        "deliveryDate": instrument.delivery_date_ms,
        "onboardDate": instrument.onboard_date_ms,
        "status": instrument.status,
        "maintMarginPercent": _optional_plain(instrument.maint_margin_percent),
        "requiredMarginPercent": _optional_plain(instrument.required_margin_percent),
        "baseAsset": instrument.base_asset,
        "quoteAsset": instrument.quote_asset,
        "marginAsset": instrument.margin_asset,
        "pricePrecision": instrument.price_precision,
        "quantityPrecision": instrument.quantity_precision,
        "baseAssetPrecision": instrument.base_asset_precision,
        "quotePrecision": instrument.quote_precision,
        "underlyingType": instrument.underlying_type,
        "underlyingSubType": list(instrument.underlying_sub_type),
        "settlePlan": instrument.settle_plan,
        "triggerProtect": _optional_plain(instrument.trigger_protect),
        "liquidationFee": _optional_plain(instrument.liquidation_fee),
        "marketTakeBound": _optional_plain(instrument.market_take_bound),
        "maxMoveOrderLimit": instrument.max_move_order_limit,
        "filters": _futures_filters(instrument),
        "orderTypes": list(instrument.order_types),
        "timeInForce": list(instrument.time_in_force),
    }


def _coinm_symbol_json(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "pair": instrument.pair,
        "contractType": instrument.contract_type,
        "deliveryDate": instrument.delivery_date_ms,
        "onboardDate": instrument.onboard_date_ms,
        "contractStatus": instrument.status,
        "contractSize": int(instrument.contract_size),
        "marginAsset": instrument.margin_asset,
        "maintMarginPercent": _optional_plain(instrument.maint_margin_percent),
        "requiredMarginPercent": _optional_plain(instrument.required_margin_percent),
        "baseAsset": instrument.base_asset,
        "quoteAsset": instrument.quote_asset,
        "pricePrecision": instrument.price_precision,
        "quantityPrecision": instrument.quantity_precision,
        "baseAssetPrecision": instrument.base_asset_precision,
        "quotePrecision": instrument.quote_precision,
        "equalQtyPrecision": instrument.equal_qty_precision,
        "maxMoveOrderLimit": instrument.max_move_order_limit,
        "triggerProtect": _optional_plain(instrument.trigger_protect),
        "underlyingType": instrument.underlying_type,
        "underlyingSubType": list(instrument.underlying_sub_type),
        "filters": _futures_filters(instrument),
        "orderTypes": list(instrument.order_types),
        "timeInForce": list(instrument.time_in_force),
        "liquidationFee": _optional_plain(instrument.liquidation_fee),
        "marketTakeBound": _optional_plain(instrument.market_take_bound),
    }


def symbol_json(instrument: Instrument) -> dict[str, Any]:
    """The instrument's element of ``exchangeInfo.symbols``, in its product's exact shape.

    Args:
        instrument: The instrument.

    Returns:
        A JSON-ready dict (strings, ints, bools, lists, dicts only).
    """
    if instrument.product is Product.SPOT:
        return _spot_symbol_json(instrument)
    if instrument.product is Product.USDM:
        return _usdm_symbol_json(instrument)
    return _coinm_symbol_json(instrument)


def _usdm_assets(instruments: Iterable[Instrument]) -> list[dict[str, Any]]:
    assets = [
        {"asset": asset, "marginAvailable": True, "autoAssetExchange": exchange}
        for asset, exchange in _USDM_ASSETS
    ]
    known = {asset for asset, _ in _USDM_ASSETS}
    for instrument in instruments:
        margin = instrument.margin_asset
        if margin is not None and margin not in known:
            known.add(margin)
            assets.append({"asset": margin, "marginAvailable": True, "autoAssetExchange": "0"})
    return assets


def exchange_info_json(
    product: Product,
    instruments: Iterable[Instrument],
    rate_limits: list[dict],
    server_time_ms: int,
) -> dict[str, Any]:
    """The full ``exchangeInfo`` response of one product line.

    Spot: ``{timezone, serverTime, rateLimits, exchangeFilters, symbols}``. USD-M adds
    ``futuresType: "U_MARGINED"`` and ``assets`` (margin assets with ``marginAvailable`` and
    ``autoAssetExchange``). COIN-M has the spot keys only.

    Args:
        product: The product line; instruments of other products are left out.
        instruments: The venue's instruments (any products).
        rate_limits: The ``rateLimits`` entries, passed through unchanged.
        server_time_ms: ``serverTime``, epoch ms.

    Returns:
        A JSON-ready dict.
    """
    chosen = [instrument for instrument in instruments if instrument.product is product]
    response: dict[str, Any] = {"timezone": "UTC", "serverTime": server_time_ms}
    if product is Product.USDM:
        response["futuresType"] = "U_MARGINED"
    response["rateLimits"] = [dict(limit) for limit in rate_limits]
    response["exchangeFilters"] = []
    if product is Product.USDM:
        response["assets"] = _usdm_assets(chosen)
    response["symbols"] = [symbol_json(instrument) for instrument in chosen]
    return response
