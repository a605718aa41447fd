"""Futures order rules shared by the engine modules: the accepted enumerations, limits and
the parsed form of a new order (:class:`OrderRequest`).

Values follow ``binance-protocol.md`` sections 4.2, 4.2.1 and 5.2.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import attrs

from scenarios.venue.futures_accounts import ZERO
from scenarios.venue.instruments import Product

ORDER_TYPES: Final = ("LIMIT", "MARKET")
CONDITIONAL_TYPES: Final = (
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)
TIME_IN_FORCE: Final = {Product.USDM: ("GTC", "IOC", "FOK", "GTX", "GTD")}
TIME_IN_FORCE[Product.COINM] = ("GTC", "IOC", "FOK", "GTX")
STP_MODES: Final = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
PRICE_MATCHES: Final = {
    "NONE": None,
    "OPPONENT": (True, 1),
    "OPPONENT_5": (True, 5),
    "OPPONENT_10": (True, 10),
    "OPPONENT_20": (True, 20),
    "QUEUE": (False, 1),
    "QUEUE_5": (False, 5),
    "QUEUE_10": (False, 10),
    "QUEUE_20": (False, 20),
}
POSITION_SIDES: Final = ("BOTH", "LONG", "SHORT")
WORKING_TYPES: Final = ("MARK_PRICE", "CONTRACT_PRICE")
#: ``goodTillDate`` must be more than this far ahead, and below :data:`GTD_MAX_MS`.
GTD_MIN_AHEAD_MS: Final = 600_000
GTD_MAX_MS: Final = 253_402_300_799_000
MAX_MODIFICATIONS: Final = 10_000
#: Open conditional orders per account (all symbols), since the 2025-12 migration.
MAX_OPEN_ALGO_ORDERS: Final = 200
BATCH_PLACE_MAX: Final = 5
BATCH_CANCEL_MAX: Final = 10
CALLBACK_RATE_MIN: Final = Decimal("0.1")
CALLBACK_RATE_MAX: Final = Decimal(10)
CANCEL_ALL_DONE: Final = "The operation of cancel all open order is done."
QUERY_LIMIT_DEFAULT: Final = 500
QUERY_LIMIT_MAX: Final = 1000
SEVEN_DAYS_MS: Final = 7 * 24 * 3_600_000
#: ``er`` (expiry reason) values of ``ORDER_TRADE_UPDATE`` used by the engine.
REDUCE_ONLY_EXPIRED: Final = 4
GTE_UNSATISFIED: Final = 6
#: "The initial order has expired after the stop order is triggered" (legacy conditional).
STOP_TRIGGERED: Final = 8
#: Trigger rounds per check (a triggered order may move the price and trigger more).
TRIGGER_ROUNDS: Final = 50


@attrs.define
class SharedFuturesSettings:
    """Settings USD-M and COIN-M share per account: the position mode (``dualSidePosition``)."""

    dual: dict[str, bool] = attrs.field(factory=dict)


@attrs.frozen
class OrderRequest:
    """A new regular order after its parameters were read (see :meth:`FuturesEngine.parse`)."""

    symbol: str
    side: str
    position_side: str
    type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal | None
    price_match: str = "NONE"
    reduce_only: bool = False
    close_position: bool = False
    client_order_id: str | None = None
    stp_mode: str = "EXPIRE_MAKER"
    good_till_date: int = 0
    response_type: str = "ACK"
    orig_type: str | None = None
    stop_price: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    activate_price: Decimal | None = None
    price_rate: Decimal | None = None
    algo_id: int | None = None
    system: bool = False
    execution_type: str = "TRADE"
