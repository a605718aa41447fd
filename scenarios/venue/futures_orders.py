"""Futures order records and Binance's exact JSON for them.

Records: :class:`FuturesOrder` (a regular order in the matching engine), :class:`AlgoOrder` (a
conditional order waiting in the Algo Service, section 4.2.1 of ``binance-protocol.md``) and
:class:`Fill` (one trade of one order, a ``userTrades`` row).

Renderers (pure functions of a record and its instrument):

* :func:`order_result` - the body of ``POST/PUT/DELETE /order`` (no ``avgPrice``/``cumQuote``
  since the 2026 CM-UM integration; ``cumQty`` instead), :func:`order_query` - ``GET /order``,
  ``openOrders``, ``allOrders`` (with ``avgPrice``, ``cumQuote``/``cumBase``, ``time``);
* :func:`order_trade_update` - ``ORDER_TRADE_UPDATE`` (every field: ``AP``, ``cr``, ``rp``,
  ``V``, ``pm``, ``gtd``, ``er``; COIN-M adds ``ma`` and the account alias ``i`` and has no
  ``gtd``), :func:`trade_lite` (USD-M only);
* :func:`algo_result`, :func:`algo_query`, :func:`algo_update` - the Algo Order API bodies and
  ``ALGO_UPDATE``;
* :func:`user_trade` - a ``userTrades`` row.

COIN-M differences: quantities are contracts, the second amount is ``cumBase``/``baseQty``
(base asset), ``pair`` is added, ``goodTillDate`` does not exist.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any, Final, Generic, TypeVar

import attrs

from scenarios.venue.futures_accounts import ZERO, amount, trim
from scenarios.venue.instruments import Instrument, Product
from scenarios.venue.payloads import format_decimal

_T = TypeVar("_T")

OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED"})
ALGO_OPEN_STATUSES: Final = frozenset({"NEW", "TRIGGERING"})
TRAILING: Final = "TRAILING_STOP_MARKET"


@attrs.define(eq=False)
class FuturesOrder:
    """A regular futures order (LIMIT or MARKET; LIQUIDATION etc. for exchange orders).

    Attributes:
        order_id: ``orderId``.
        account: The owner's API key.
        symbol: The symbol.
        client_order_id: ``clientOrderId``.
        side: ``BUY`` / ``SELL``.
        position_side: ``BOTH`` / ``LONG`` / ``SHORT``.
        type: ``type`` (``LIMIT``, ``MARKET``, ``LIQUIDATION``...).
        orig_type: ``origType`` (the algo type for a triggered conditional order).
        time_in_force: ``GTC``, ``IOC``, ``FOK``, ``GTX``, ``GTD``.
        quantity: ``origQty`` (contracts on COIN-M).
        price: ``price`` (0 for MARKET).
        stop_price: ``stopPrice`` (the trigger price of a triggered conditional order).
        reduce_only: ``reduceOnly``.
        close_position: ``closePosition``.
        working_type: ``workingType``.
        price_protect: ``priceProtect``.
        price_match: ``priceMatch``.
        stp_mode: ``selfTradePreventionMode``.
        good_till_date: ``goodTillDate`` (0 unless GTD).
        activate_price: ``activatePrice`` of a triggered trailing stop.
        price_rate: ``priceRate`` (callback rate) of a triggered trailing stop.
        time: Creation time, epoch ms.
        update_time: Last change, epoch ms.
        status: ``NEW``, ``PARTIALLY_FILLED``, ``FILLED``, ``CANCELED``, ``EXPIRED``...
        executed: ``executedQty``.
        cum_quote: USD-M ``cumQuote`` (sum price x qty); COIN-M ``cumBase`` (sum of the
            base-asset value of each fill).
        realized: Realized PnL of its fills.
        expiry_reason: ``er`` of its last event.
        modifications: Number of amendments so far.
        amendments: ``orderAmendment`` history rows.
        algo_id: The conditional order it came from, if any.
        system: An exchange-originated order (liquidation, ADL, settlement).
        stop: The waiting condition of a legacy conditional order (COIN-M ``/order`` with
            ``stopPrice``...) until it triggers; None for every other order and once it
            triggered.
        active_type: The type a legacy conditional order trades as once triggered
            (``LIMIT`` for STOP/TAKE_PROFIT, ``MARKET`` for the others): the events show it as
            ``o`` while ``type`` keeps the conditional type, as Binance's queries do.
    """

    order_id: int
    account: str
    symbol: str
    client_order_id: str
    side: str
    position_side: str
    type: str
    orig_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    time: int
    update_time: int
    stop_price: Decimal = ZERO
    reduce_only: bool = False
    close_position: bool = False
    working_type: str = "CONTRACT_PRICE"
    price_protect: bool = False
    price_match: str = "NONE"
    stp_mode: str = "NONE"
    good_till_date: int = 0
    activate_price: Decimal | None = None
    price_rate: Decimal | None = None
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    realized: Decimal = ZERO
    expiry_reason: int = 0
    modifications: int = 0
    amendments: list[dict[str, Any]] = attrs.field(factory=list)
    algo_id: int | None = None
    system: bool = False
    stop: AlgoOrder | None = None
    active_type: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def kind(self) -> str:
        """The type it trades as (``active_type`` of a triggered legacy conditional order)."""
        return self.active_type or self.type

    @property
    def waiting(self) -> bool:
        """A legacy conditional order whose condition has not held yet (not on the book)."""
        return self.stop is not None

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed

    @property
    def is_buy(self) -> bool:
        return self.side == "BUY"


@attrs.define(eq=False)
class AlgoOrder:
    """A conditional order in the Algo Service (``/algoOrder``).

    Attributes mirror the Algo API fields; ``trailing_extreme`` is the best price seen since a
    trailing stop was activated, ``actual`` the regular order it became on triggering.
    ``legacy`` is set for the hidden condition of a legacy conditional order placed through
    COIN-M ``/order``: that order itself (it is not an Algo Service order and never shows in
    the Algo API).
    """

    algo_id: int
    account: str
    client_algo_id: str
    symbol: str
    side: str
    position_side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    trigger_price: Decimal
    create_time: int
    update_time: int
    working_type: str = "CONTRACT_PRICE"
    price_match: str = "NONE"
    close_position: bool = False
    price_protect: bool = False
    reduce_only: bool = False
    activate_price: Decimal | None = None
    callback_rate: Decimal | None = None
    stp_mode: str = "NONE"
    good_till_date: int = 0
    status: str = "NEW"
    trigger_time: int = 0
    fail_reason: str = ""
    activated: bool = False
    trailing_extreme: Decimal | None = None
    actual: FuturesOrder | None = None
    legacy: FuturesOrder | None = None

    @property
    def is_open(self) -> bool:
        return self.status in ALGO_OPEN_STATUSES

    @property
    def actual_type(self) -> str:
        """The type of the order it places when triggered."""
        return "LIMIT" if self.order_type in ("STOP", "TAKE_PROFIT") else "MARKET"


@attrs.frozen
class Fill:
    """One trade of one order (a ``userTrades`` row and a ``TRADE`` execution).

    Attributes:
        trade_id: ``id`` (the public trade id).
        order_id: ``orderId``.
        account: The owner's API key.
        symbol: The symbol.
        side: The order's side.
        position_side: The order's position side.
        price: Fill price.
        quantity: Fill quantity.
        quote_quantity: USD-M ``quoteQty`` (price x qty); COIN-M ``baseQty``.
        realized_pnl: ``realizedPnl``.
        commission: ``commission``.
        commission_asset: ``commissionAsset`` (the margin asset).
        time: Trade time, epoch ms.
        maker: Whether the order was the maker.
    """

    trade_id: int
    order_id: int
    account: str
    symbol: str
    side: str
    position_side: str
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    realized_pnl: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    maker: bool


_Record = TypeVar("_Record", FuturesOrder, AlgoOrder)


def latest_open(candidates: Sequence[_Record] | None) -> _Record | None:
    """Of the records sharing a client id (oldest first): the latest open one, else the
    latest; None when there are none."""
    if not candidates:
        return None
    for record in reversed(candidates):
        if record.is_open:
            return record
    return candidates[-1]


class OpenIndex(Generic[_T]):
    """Open records (orders or conditional orders) by account and symbol, in creation order,
    so that the work for one account and symbol does not grow with everyone else's."""

    def __init__(self) -> None:
        self._by: dict[str, dict[str, dict[int, _T]]] = {}
        self._counts: dict[str, int] = {}
        self._total = 0

    def add(self, account: str, symbol: str, key: int, item: _T) -> None:
        bucket = self._by.setdefault(account, {}).setdefault(symbol, {})
        if key not in bucket:
            self._counts[account] = self._counts.get(account, 0) + 1
            self._total += 1
        bucket[key] = item

    def remove(self, account: str, symbol: str, key: int) -> None:
        symbols = self._by.get(account)
        if symbols is None:
            return
        bucket = symbols.get(symbol)
        if bucket is None or bucket.pop(key, None) is None:
            return
        self._total -= 1
        self._counts[account] -= 1
        if not bucket:
            del symbols[symbol]
        if not symbols:
            del self._by[account]
            del self._counts[account]

    def of(self, account: str, symbol: str) -> Collection[_T]:
        """The account's open records on ``symbol`` (creation order)."""
        symbols = self._by.get(account)
        if symbols is None:
            return ()
        bucket = symbols.get(symbol)
        return () if bucket is None else bucket.values()

    def of_account(self, account: str, symbols: Collection[str] | None = None) -> list[_T]:
        """The account's open records (of ``symbols``), by symbol then creation."""
        found = self._by.get(account, {})
        return [
            item
            for symbol, bucket in found.items()
            if symbols is None or symbol in symbols
            for item in bucket.values()
        ]

    def symbols(self, account: str) -> list[str]:
        return list(self._by.get(account, ()))

    def count(self, account: str, symbol: str | None = None) -> int:
        if symbol is None:
            return self._counts.get(account, 0)
        return len(self.of(account, symbol))

    def __len__(self) -> int:
        return self._total


# --- formatting helpers ----------------------------------------------------------------------


def price_text(value: Decimal, instrument: Instrument) -> str:
    return format_decimal(value, instrument.price_precision)


def qty_text(value: Decimal, instrument: Instrument) -> str:
    return format_decimal(value, instrument.quantity_precision)


def _zero_or_price(value: Decimal | None, instrument: Instrument) -> str:
    return "0" if value is None or value == 0 else price_text(value, instrument)


def quote_text(value: Decimal, instrument: Instrument) -> str:
    """USD-M quote amounts (price decimals + quantity decimals); COIN-M base amounts (8)."""
    if instrument.product is Product.COINM:
        return format_decimal(value, 8)
    return format_decimal(value, instrument.price_precision + instrument.quantity_precision)


def average_price(order: FuturesOrder, instrument: Instrument) -> Decimal:
    """The average fill price: USD-M cumQuote/executed; COIN-M the harmonic mean."""
    if order.executed == 0:
        return ZERO
    if instrument.product is Product.COINM:
        if order.cum_quote == 0:
            return ZERO
        return order.executed * instrument.contract_size / order.cum_quote
    return order.cum_quote / order.executed


def average_text(order: FuturesOrder, instrument: Instrument) -> str:
    """``avgPrice``/``ap``: at least 5 decimals on USD-M (``"0.00000"``), the price decimals
    on COIN-M."""
    minimum = 5 if instrument.product is Product.USDM else instrument.price_precision
    return trim(average_price(order, instrument), max(minimum, instrument.price_precision))


# --- REST order bodies -----------------------------------------------------------------------


def _with_order_tail(
    body: dict[str, Any], order: FuturesOrder, instrument: Instrument
) -> dict[str, Any]:
    """Add the fields both REST order bodies end with to ``body`` and return it: the
    trailing-stop fields (``activatePrice``, ``priceRate``) when the order is one, then
    ``updateTime`` to ``selfTradePreventionMode`` and, on USD-M, ``goodTillDate``."""
    if order.orig_type == TRAILING:
        body["activatePrice"] = _zero_or_price(order.activate_price, instrument)
        body["priceRate"] = trim(order.price_rate or ZERO, 1, 2)
    body.update(
        updateTime=order.update_time,
        workingType=order.working_type,
        priceProtect=order.price_protect,
        priceMatch=order.price_match,
        selfTradePreventionMode=order.stp_mode,
    )
    if instrument.product is not Product.COINM:
        body["goodTillDate"] = order.good_till_date
    return body


def order_result(order: FuturesOrder, instrument: Instrument) -> dict[str, Any]:
    """``POST``/``PUT``/``DELETE /order`` (and batch items): the post-2026 shape."""
    coinm = instrument.product is Product.COINM
    body: dict[str, Any] = {
        "clientOrderId": order.client_order_id,
        "cumQty": qty_text(order.executed, instrument),
        "executedQty": qty_text(order.executed, instrument),
        "orderId": order.order_id,
        "origQty": qty_text(order.quantity, instrument),
        "price": price_text(order.price, instrument),
        "reduceOnly": order.reduce_only,
        "side": order.side,
        "positionSide": order.position_side,
        "status": order.status,
        "stopPrice": price_text(order.stop_price, instrument),
        "closePosition": order.close_position,
        "symbol": order.symbol,
    }
    if coinm:
        body["pair"] = instrument.pair
    body.update(
        timeInForce=order.time_in_force,
        type=order.type,
        origType=order.orig_type,
    )
    return _with_order_tail(body, order, instrument)


def order_query(order: FuturesOrder, instrument: Instrument) -> dict[str, Any]:
    """``GET /order``, ``/openOrder``, ``/openOrders``, ``/allOrders``."""
    coinm = instrument.product is Product.COINM
    body: dict[str, Any] = {
        "avgPrice": average_text(order, instrument),
        "clientOrderId": order.client_order_id,
    }
    if coinm:
        body["cumBase"] = quote_text(order.cum_quote, instrument)
    else:
        body["cumQuote"] = quote_text(order.cum_quote, instrument)
    body.update(
        executedQty=qty_text(order.executed, instrument),
        orderId=order.order_id,
        origQty=qty_text(order.quantity, instrument),
        origType=order.orig_type,
        price=price_text(order.price, instrument),
        reduceOnly=order.reduce_only,
        side=order.side,
        positionSide=order.position_side,
        status=order.status,
        stopPrice=price_text(order.stop_price, instrument),
        closePosition=order.close_position,
        symbol=order.symbol,
    )
    if coinm:
        body["pair"] = instrument.pair
    body.update(time=order.time, timeInForce=order.time_in_force, type=order.type)
    return _with_order_tail(body, order, instrument)


def user_trade(fill: Fill, instrument: Instrument) -> dict[str, Any]:
    """A ``userTrades`` row."""
    coinm = instrument.product is Product.COINM
    row: dict[str, Any] = {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
    }
    if coinm:
        row["pair"] = instrument.pair
    row.update(
        side=fill.side,
        price=price_text(fill.price, instrument),
        qty=qty_text(fill.quantity, instrument),
        realizedPnl=amount(fill.realized_pnl),
        marginAsset=fill.commission_asset,
    )
    if coinm:
        row["baseQty"] = quote_text(fill.quote_quantity, instrument)
    else:
        row["quoteQty"] = quote_text(fill.quote_quantity, instrument)
    row.update(
        commission=amount(fill.commission),
        commissionAsset=fill.commission_asset,
        time=fill.time,
        positionSide=fill.position_side,
        buyer=fill.side == "BUY",
        maker=fill.maker,
    )
    return row


# --- user-data events ------------------------------------------------------------------------


def order_trade_update(
    order: FuturesOrder,
    instrument: Instrument,
    execution_type: str,
    now_ms: int,
    *,
    fill: Fill | None = None,
    bids_notional: Decimal = ZERO,
    asks_notional: Decimal = ZERO,
    account_alias: str = "",
    modify_id: int | None = None,
) -> dict[str, Any]:
    """The ``ORDER_TRADE_UPDATE`` event of one execution (``x``) of ``order``.

    Args:
        order: The order, in its state after the execution.
        instrument: Its instrument.
        execution_type: ``NEW``, ``TRADE``, ``CANCELED``, ``EXPIRED``, ``AMENDMENT``,
            ``CALCULATED``.
        now_ms: Event and transaction time.
        fill: The fill of a ``TRADE``/``CALCULATED`` execution.
        bids_notional: ``b``, the account's open bid notional on the symbol.
        asks_notional: ``a``, the open ask notional.
        account_alias: COIN-M's top-level ``i``.
        modify_id: ``M`` of an ``AMENDMENT``.
    """
    coinm = instrument.product is Product.COINM
    body: dict[str, Any] = {
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.kind,
        "f": order.time_in_force,
        "q": qty_text(order.quantity, instrument),
        "p": price_text(order.price, instrument),
        "ap": average_text(order, instrument),
        "sp": _zero_or_price(order.stop_price, instrument),
        "x": execution_type,
        "X": order.status,
        "i": order.order_id,
        "l": qty_text(fill.quantity if fill else ZERO, instrument),
        "z": qty_text(order.executed, instrument),
        "L": price_text(fill.price if fill else ZERO, instrument),
    }
    if coinm:
        body["ma"] = instrument.margin_asset
    body.update(
        N=instrument.margin_asset,
        n=amount(fill.commission if fill else ZERO),
        T=fill.time if fill else now_ms,
        t=fill.trade_id if fill else 0,
        b=trim(bids_notional, 0),
        a=trim(asks_notional, 0),
        m=fill.maker if fill else False,
        R=order.reduce_only,
        wt=order.working_type,
        ot=order.orig_type,
        ps=order.position_side,
        cp=order.close_position,
        AP=_zero_or_price(order.activate_price, instrument),
        cr=trim(order.price_rate, 1, 2) if order.price_rate is not None else "0",
        pP=order.price_protect,
        si=0,
        ss=0,
        rp=amount(fill.realized_pnl if fill else ZERO),
        V=order.stp_mode,
        pm=order.price_match,
    )
    if not coinm:
        body["gtd"] = order.good_till_date
    body["er"] = str(order.expiry_reason)
    if modify_id is not None:
        body["M"] = modify_id
    event: dict[str, Any] = {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": now_ms}
    if coinm:
        event["i"] = account_alias
    event["o"] = body
    return event


def trade_lite(order: FuturesOrder, instrument: Instrument, fill: Fill) -> dict[str, Any]:
    """``TRADE_LITE`` (USD-M, TRADE executions only)."""
    return {
        "e": "TRADE_LITE",
        "E": fill.time,
        "T": fill.time,
        "s": order.symbol,
        "q": qty_text(order.quantity, instrument),
        "p": price_text(order.price, instrument),
        "m": fill.maker,
        "c": order.client_order_id,
        "S": order.side,
        "L": price_text(fill.price, instrument),
        "l": qty_text(fill.quantity, instrument),
        "t": fill.trade_id,
        "i": order.order_id,
    }


# --- algo orders -----------------------------------------------------------------------------


def _optional_price(value: Decimal | None, instrument: Instrument) -> str:
    return "" if value is None else price_text(value, instrument)


def algo_result(algo: AlgoOrder, instrument: Instrument) -> dict[str, Any]:
    """``POST /algoOrder`` body."""
    return {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.order_type,
        "symbol": algo.symbol,
        "side": algo.side,
        "positionSide": algo.position_side,
        "timeInForce": algo.time_in_force,
        "quantity": qty_text(algo.quantity, instrument),
        "algoStatus": algo.status,
        "triggerPrice": price_text(algo.trigger_price, instrument),
        "price": price_text(algo.price, instrument),
        "icebergQuantity": None,
        "selfTradePreventionMode": algo.stp_mode,
        "workingType": algo.working_type,
        "priceMatch": algo.price_match,
        "closePosition": algo.close_position,
        "priceProtect": algo.price_protect,
        "reduceOnly": algo.reduce_only,
        "activatePrice": _optional_price(algo.activate_price, instrument),
        "callbackRate": "" if algo.callback_rate is None else trim(algo.callback_rate, 1, 2),
        "createTime": algo.create_time,
        "updateTime": algo.update_time,
        "triggerTime": algo.trigger_time,
        "goodTillDate": algo.good_till_date,
    }


def algo_query(algo: AlgoOrder, instrument: Instrument) -> dict[str, Any]:
    """``GET /algoOrder``, ``/openAlgoOrders``, ``/allAlgoOrders`` rows: the POST body plus
    ``type`` (as older payloads name ``orderType``), the actual order and the TP/SL fields."""
    body = algo_result(algo, instrument)
    body["type"] = algo.order_type
    actual = algo.actual
    body["actualOrderId"] = "" if actual is None else str(actual.order_id)
    body["actualPrice"] = (
        price_text(ZERO, instrument) if actual is None else average_text(actual, instrument)
    )
    body["actualQty"] = qty_text(ZERO if actual is None else actual.executed, instrument)
    body["tpOrderType"] = ""
    body["tpTriggerPrice"] = "0"
    body["tpPrice"] = "0"
    body["slTriggerPrice"] = "0"
    body["slPrice"] = "0"
    return body


def algo_update(algo: AlgoOrder, instrument: Instrument, now_ms: int) -> dict[str, Any]:
    """``ALGO_UPDATE`` of ``algo`` in its current status (``ai``/``ap``/``aq``/``act`` are
    filled once it has triggered; ``TRIGGERING`` carries none of them)."""
    body: dict[str, Any] = {
        "caid": algo.client_algo_id,
        "aid": algo.algo_id,
        "at": "CONDITIONAL",
        "o": algo.order_type,
        "s": algo.symbol,
        "S": algo.side,
        "ps": algo.position_side,
        "f": algo.time_in_force,
        "q": qty_text(algo.quantity, instrument),
        "X": algo.status,
        "ai": "" if algo.actual is None else str(algo.actual.order_id),
    }
    if algo.status != "TRIGGERING":
        actual = algo.actual
        body["ap"] = average_text(actual, instrument) if actual is not None else trim(ZERO, 5)
        body["aq"] = qty_text(ZERO if actual is None else actual.executed, instrument)
        body["act"] = algo.actual_type if actual is not None else "0"
    body.update(
        tp=trim(algo.trigger_price, 0),
        p=trim(algo.price, 0),
        V=algo.stp_mode,
        wt=algo.working_type,
        pm=algo.price_match,
        cp=algo.close_position,
        pP=algo.price_protect,
        R=algo.reduce_only,
        tt=algo.trigger_time,
        gtd=algo.good_till_date,
        rm=algo.fail_reason,
    )
    if algo.order_type == TRAILING:
        body["AP"] = "0" if algo.activate_price is None else trim(algo.activate_price, 0)
        body["cr"] = "0" if algo.callback_rate is None else trim(algo.callback_rate, 1, 2)
        body["ia"] = algo.activated
    return {"e": "ALGO_UPDATE", "T": now_ms, "E": now_ms, "o": body}
