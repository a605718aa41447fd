"""Spot trading state: orders, order lists, fills and accounts, as Binance keeps them.

Plain mutable records (``@attrs.define(eq=False)``: an order is compared by identity, which is
also how :class:`~scenarios.venue.market.MarketState` knows a resting order). The engine
(:mod:`scenarios.venue.spot`) changes them; :mod:`scenarios.venue.spot_json` renders them.

Quantities follow Binance's bookkeeping for an order: ``quantity`` (``origQty``) is split into
what executed (``executedQty``), what self-trade prevention removed (``preventedQuantity``) and
what is still open, so ``remaining = quantity - executed - prevented`` (``stp_faq.md``).
"""

from __future__ import annotations

import hashlib
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Final

import attrs

#: Binance's spot order types (``orderTypes``).
ORDER_TYPES: Final = (
    "LIMIT",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
    "LIMIT_MAKER",
)
#: Contingent types: they wait for a stop price or a trailing delta (MAX_NUM_ALGO_ORDERS).
STOP_TYPES: Final = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
#: Types that carry a limit price.
PRICED_TYPES: Final = frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
#: Types that need ``timeInForce``.
TIF_TYPES: Final = frozenset({"LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
#: Types that execute as market orders (now or once triggered).
MARKET_TYPES: Final = frozenset({"MARKET", "STOP_LOSS", "TAKE_PROFIT"})
#: Types that may be icebergs.
ICEBERG_TYPES: Final = frozenset({"LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
TIME_IN_FORCE: Final = ("GTC", "IOC", "FOK")
SIDES: Final = ("BUY", "SELL")
RESPONSE_TYPES: Final = ("ACK", "RESULT", "FULL")
#: Every STP mode Binance knows; the ones a symbol allows are in its instrument.
STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER")
OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED", "PENDING_NEW"})
#: The "not in a list" order list id.
NO_LIST: Final = -1
#: ``workingTime`` of an order that is not working yet (an untriggered stop, a pending leg).
NOT_WORKING: Final = -1
#: Trailing deltas are in basis points.
BIPS: Final = Decimal(10000)

#: Default fee tier: Binance's regular user (0.1% maker and taker).
DEFAULT_MAKER_RATE: Final = Decimal("0.001")
DEFAULT_TAKER_RATE: Final = Decimal("0.001")


@attrs.define(eq=False)
class SpotOrder:
    """One spot order (a standalone order or a member of an order list).

    Attributes:
        account: The API key that owns it.
        symbol: The symbol.
        order_id: ``orderId``.
        client_order_id: ``clientOrderId`` (the one given or generated at placement; a cancel
            or amend may change it).
        side: ``BUY`` or ``SELL``.
        type: The order type, which stays the same after a stop triggers (as on Binance).
        time_in_force: ``GTC``/``IOC``/``FOK``; ``GTC`` for types without one.
        quantity: ``origQty``. A ``quoteOrderQty`` market order has the quantity it executed.
        price: The limit price, 0 when none.
        stop_price: ``stopPrice``, 0 when none.
        trailing_delta: ``trailingDelta`` in BIPS, or None.
        iceberg_qty: ``icebergQty``, 0 when not an iceberg.
        quote_order_qty: ``origQuoteOrderQty``, 0 when the order gave a quantity.
        strategy_id: ``strategyId`` or None.
        strategy_type: ``strategyType`` or None.
        stp_mode: ``selfTradePreventionMode``.
        order_list_id: The list it belongs to, -1 when none.
        time_ms: Creation time (``time``, ``O``).
        update_time_ms: Last change (``updateTime``).
        working_time_ms: When it started working (``workingTime``); -1 while contingent.
        status: Binance's order status.
        executed: ``executedQty``.
        cumulative_quote: ``cummulativeQuoteQty``.
        prevented: ``preventedQuantity``.
        prevented_match_id: The last prevented match it took part in, or None.
        trailing_time_ms: When trailing started (``trailingTime``), or None.
        trailing_extreme: The best price seen since trailing started.
        triggered: Whether a contingent order has triggered.
        lock_asset: The asset it holds locked.
        locked: How much of ``lock_asset`` is locked for it now.
        expiry_reason: Binance's ``expiryReason`` once expired.
        amendments: How many times it was amended (MAX_NUM_ORDER_AMENDS).
        original_quantity: The quantity before any amendment.
    """

    account: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    stop_price: Decimal
    trailing_delta: int | None
    iceberg_qty: Decimal
    quote_order_qty: Decimal
    strategy_id: int | None
    strategy_type: int | None
    stp_mode: str
    order_list_id: int
    time_ms: int
    update_time_ms: int
    working_time_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    cumulative_quote: Decimal = Decimal(0)
    prevented: Decimal = Decimal(0)
    prevented_match_id: int | None = None
    trailing_time_ms: int | None = None
    trailing_extreme: Decimal | None = None
    triggered: bool = False
    lock_asset: str = ""
    locked: Decimal = Decimal(0)
    expiry_reason: str | None = None
    amendments: int = 0
    original_quantity: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        """Quantity still open: ``origQty - executedQty - preventedQuantity``."""
        return self.quantity - self.executed - self.prevented

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_contingent(self) -> bool:
        """A stop order that has not triggered yet."""
        return self.type in STOP_TYPES and not self.triggered

    @property
    def is_pending(self) -> bool:
        """A pending leg of an OTO/OTOCO list, not placed yet."""
        return self.status == "PENDING_NEW"

    @property
    def is_working(self) -> bool:
        """Binance's ``isWorking``: on the book or executed, not waiting for a trigger."""
        return self.working_time_ms != NOT_WORKING

    @property
    def is_buy(self) -> bool:
        return self.side == "BUY"


@attrs.define(eq=False)
class OrderList:
    """An OCO, OTO or OTOCO list.

    Attributes:
        order_list_id: ``orderListId``.
        list_client_order_id: ``listClientOrderId``.
        contingency_type: ``OCO`` or ``OTO`` (OTOCO lists say ``OTO``, as on Binance).
        kind: ``OCO``, ``OTO`` or ``OTOCO``.
        symbol: The symbol.
        account: The owner.
        orders: The members, in Binance's order (OCO: below then above; OTO: working then
            pending).
        working: The working order of an OTO/OTOCO, None for an OCO.
        status: ``listOrderStatus``: ``EXECUTING`` or ``ALL_DONE``.
        status_type: ``listStatusType`` of its last change.
        transaction_time_ms: ``transactionTime`` of its last change.
        shared_lock: Funds locked once for an OCO pair (both legs spend the same funds).
        shared_asset: The asset of ``shared_lock``.
        resolved: The OCO pair has resolved: one leg triggered or traded and the other
            expired.
    """

    order_list_id: int
    list_client_order_id: str
    contingency_type: str
    kind: str
    symbol: str
    account: str
    orders: list[SpotOrder]
    working: SpotOrder | None
    status: str = "EXECUTING"
    status_type: str = "EXEC_STARTED"
    transaction_time_ms: int = 0
    shared_lock: Decimal = Decimal(0)
    shared_asset: str = ""
    resolved: bool = False

    @property
    def pair(self) -> list[SpotOrder]:
        """The OCO pair: every member except the OTO working order."""
        return [order for order in self.orders if order is not self.working]


@attrs.frozen(kw_only=True)
class Fill:
    """One side of one trade of a user order (a row of ``myTrades``)."""

    account: str
    symbol: str
    trade_id: int
    order_id: int
    order_list_id: int
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_buyer: bool
    is_maker: bool


@attrs.define
class Balance:
    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@attrs.define(eq=False)
class Account:
    """A spot account: one API key's balances and fee tier."""

    api_key: str
    balances: dict[str, Balance]
    maker_rate: Decimal = DEFAULT_MAKER_RATE
    taker_rate: Decimal = DEFAULT_TAKER_RATE
    update_time_ms: int = 0

    @property
    def uid(self) -> int:
        """A stable numeric ``uid`` derived from the key."""
        return int.from_bytes(hashlib.sha256(self.api_key.encode()).digest()[:4]) % 10**9

    def balance(self, asset: str) -> Balance:
        found = self.balances.get(asset)
        if found is None:
            found = self.balances[asset] = Balance()
        return found

    def free(self, asset: str) -> Decimal:
        found = self.balances.get(asset)
        return found.free if found is not None else Decimal(0)

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked (the caller checked it is there)."""
        if amount <= 0:
            return
        balance = self.balance(asset)
        balance.free -= amount
        balance.locked += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        if amount <= 0:
            return
        balance = self.balance(asset)
        balance.locked -= amount
        balance.free += amount


def commission_for(received: Decimal, rate: Decimal, precision: int) -> Decimal:
    """Commission on a received amount: ``received * rate`` rounded up to ``precision`` decimals.

    Binance charges the commission in the asset received (``commission_faq.md``: "the received
    amount is multiplied with the sum of the rates") and never in fractions below the asset's
    commission precision; the venue rounds the fraction up, so the charge is never understated.
    """
    if rate <= 0 or received <= 0:
        return Decimal(0)
    return (received * rate).quantize(Decimal(1).scaleb(-precision), rounding=ROUND_UP)


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step``."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step
