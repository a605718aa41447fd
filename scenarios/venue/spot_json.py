"""Binance's exact Spot trading JSON: order responses, reports, lists, trades, accounts.

Pure functions from the records of :mod:`scenarios.venue.spot_model` to dicts ready for
``orjson``. Every amount is a JSON string with 8 decimals (Spot prints prices, quantities and
quote amounts that way); ids and times are JSON integers; flags are booleans.

The shapes follow ``binance-protocol.md`` 4.1 and 9.1 and the recorded payloads in
``shared/fixtures/binance`` (``new_order_full_response``, ``order_response``,
``cancel_order_response``, ``cancel_open_orders_response``, ``account_response``,
``account_trades_response``, the ``executionReport`` and ``listStatus`` events). Fields that
Binance sends only when they apply (``stopPrice``, ``icebergQty``, ``trailingDelta``,
``strategyId``, ``preventedMatchId``... in responses; ``d``, ``D``, ``j``, ``J``, ``v``, ``A``,
``B``, ``U``, ``Cs``, ``pl``, ``pL``, ``pY``, ``W``, ``eR`` in reports) appear only then.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from scenarios.venue.payloads import format_decimal
from scenarios.venue.spot_model import NOT_WORKING, Account, Fill, OrderList, SpotOrder

JsonObject = dict[str, Any]
SPOT_DECIMALS = 8
ZERO = Decimal(0)


def amount(value: Decimal) -> str:
    """A spot amount: 8 decimals (``"0.01000000"``)."""
    return format_decimal(value, SPOT_DECIMALS)


def _trailing_time(order: SpotOrder) -> int:
    return order.trailing_time_ms if order.trailing_time_ms is not None else -1


def _conditional(order: SpotOrder, *, with_stop_and_iceberg: bool) -> JsonObject:
    """The conditional fields of order responses, in Binance's order."""
    extra: JsonObject = {}
    if with_stop_and_iceberg and order.iceberg_qty > 0:
        extra["icebergQty"] = amount(order.iceberg_qty)
    if order.prevented_match_id is not None:
        extra["preventedMatchId"] = order.prevented_match_id
        extra["preventedQuantity"] = amount(order.prevented)
    if with_stop_and_iceberg and order.stop_price > 0:
        extra["stopPrice"] = amount(order.stop_price)
    if order.strategy_id is not None:
        extra["strategyId"] = order.strategy_id
    if order.strategy_type is not None:
        extra["strategyType"] = order.strategy_type
    if order.trailing_delta is not None:
        extra["trailingDelta"] = order.trailing_delta
        extra["trailingTime"] = _trailing_time(order)
    if order.expiry_reason is not None and order.status in ("EXPIRED", "EXPIRED_IN_MATCH"):
        extra["expiryReason"] = order.expiry_reason
    return extra


def _kind_and_status(order: SpotOrder) -> JsonObject:
    """``status``, ``timeInForce``, ``type`` and ``side``, as every order body has them."""
    return {
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
    }


def _result_fields(order: SpotOrder) -> JsonObject:
    """What new-order (RESULT, FULL) and cancel bodies share: price, quantities, kind, status."""
    return {
        "price": amount(order.price),
        "origQty": amount(order.quantity),
        "executedQty": amount(order.executed),
        "origQuoteOrderQty": amount(order.quote_order_qty),
        "cummulativeQuoteQty": amount(order.cumulative_quote),
        **_kind_and_status(order),
    }


# --- REST order bodies ---------------------------------------------------------------------


def order_ack(order: SpotOrder, transact_time: int) -> JsonObject:
    """``newOrderRespType=ACK``: ``{symbol, orderId, orderListId, clientOrderId, transactTime}``."""
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "transactTime": transact_time,
    }


def order_result(
    order: SpotOrder,
    transact_time: int,
    *,
    fills: Iterable[Fill] | None = None,
    prevented_matches: list[JsonObject] | None = None,
) -> JsonObject:
    """``RESULT`` (``fills`` None) or ``FULL`` (``fills`` given) new-order body."""
    body = order_ack(order, transact_time)
    body.update(_result_fields(order))
    body["workingTime"] = order.working_time_ms
    if fills is not None:
        body["fills"] = [fill_entry(fill) for fill in fills]
    if prevented_matches:
        body["preventedMatches"] = prevented_matches
    body["selfTradePreventionMode"] = order.stp_mode
    body.update(_conditional(order, with_stop_and_iceberg=True))
    return body


def fill_entry(fill: Fill) -> JsonObject:
    """One element of a FULL response's ``fills``."""
    return {
        "price": amount(fill.price),
        "qty": amount(fill.quantity),
        "commission": amount(fill.commission),
        "commissionAsset": fill.commission_asset,
        "tradeId": fill.trade_id,
    }


def order_query(order: SpotOrder) -> JsonObject:
    """``GET /api/v3/order`` (and each element of ``openOrders``/``allOrders``)."""
    body: JsonObject = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "price": amount(order.price),
        "origQty": amount(order.quantity),
        "executedQty": amount(order.executed),
        "cummulativeQuoteQty": amount(order.cumulative_quote),
        **_kind_and_status(order),
        "stopPrice": amount(order.stop_price),
        "icebergQty": amount(order.iceberg_qty),
        "time": order.time_ms,
        "updateTime": order.update_time_ms,
        "isWorking": order.is_working,
        "workingTime": order.working_time_ms,
        "origQuoteOrderQty": amount(order.quote_order_qty),
        "selfTradePreventionMode": order.stp_mode,
    }
    body.update(_conditional(order, with_stop_and_iceberg=False))
    return body


def cancel_report(
    order: SpotOrder, transact_time: int, *, orig_client_order_id: str, client_order_id: str
) -> JsonObject:
    """``DELETE /api/v3/order``: the cancelled order, ``clientOrderId`` being the cancel's id."""
    body: JsonObject = {
        "symbol": order.symbol,
        "origClientOrderId": orig_client_order_id,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": client_order_id,
        "transactTime": transact_time,
        **_result_fields(order),
    }
    if order.stop_price > 0:
        body["stopPrice"] = amount(order.stop_price)
    if order.iceberg_qty > 0:
        body["icebergQty"] = amount(order.iceberg_qty)
    body["selfTradePreventionMode"] = order.stp_mode
    body.update(_conditional(order, with_stop_and_iceberg=False))
    return body


def amend_report(
    order: SpotOrder,
    transact_time: int,
    execution_id: int,
    *,
    orig_client_order_id: str,
    order_list: OrderList | None,
) -> JsonObject:
    """``PUT /api/v3/order/amend/keepPriority``."""
    amended: JsonObject = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "origClientOrderId": orig_client_order_id,
        "clientOrderId": order.client_order_id,
        "price": amount(order.price),
        "qty": amount(order.quantity),
        "executedQty": amount(order.executed),
        "preventedQty": amount(order.prevented),
        "quoteOrderQty": amount(order.quote_order_qty),
        "cumulativeQuoteQty": amount(order.cumulative_quote),
        **_kind_and_status(order),
        "workingTime": order.working_time_ms,
    }
    if order.iceberg_qty > 0:
        amended["icebergQty"] = amount(order.iceberg_qty)
    if order.stop_price > 0:
        amended["stopPrice"] = amount(order.stop_price)
    amended["selfTradePreventionMode"] = order.stp_mode
    body: JsonObject = {
        "transactTime": transact_time,
        "executionId": execution_id,
        "amendedOrder": amended,
    }
    if order_list is not None:
        body["listStatus"] = {
            "orderListId": order_list.order_list_id,
            "contingencyType": order_list.contingency_type,
            "listOrderStatus": order_list.status,
            "listClientOrderId": order_list.list_client_order_id,
            "symbol": order_list.symbol,
            "orders": list_members(order_list),
        }
    return body


def list_members(order_list: OrderList) -> list[JsonObject]:
    return [
        {"symbol": order.symbol, "orderId": order.order_id, "clientOrderId": order.client_order_id}
        for order in order_list.orders
    ]


def list_object(order_list: OrderList, *, reports: list[JsonObject] | None = None) -> JsonObject:
    """An order list: ``{orderListId, contingencyType, ..., orders[, orderReports]}``."""
    body: JsonObject = {
        "orderListId": order_list.order_list_id,
        "contingencyType": order_list.contingency_type,
        "listStatusType": order_list.status_type,
        "listOrderStatus": order_list.status,
        "listClientOrderId": order_list.list_client_order_id,
        "transactionTime": order_list.transaction_time_ms,
        "symbol": order_list.symbol,
        "orders": list_members(order_list),
    }
    if reports is not None:
        body["orderReports"] = reports
    return body


def trade_row(fill: Fill) -> JsonObject:
    """One element of ``GET /api/v3/myTrades``."""
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": fill.order_list_id,
        "price": amount(fill.price),
        "qty": amount(fill.quantity),
        "quoteQty": amount(fill.quote_quantity),
        "commission": amount(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time_ms,
        "isBuyer": fill.is_buyer,
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


# --- accounts -------------------------------------------------------------------------------


def _bips(rate: Decimal) -> int:
    return int(rate * 10000)


def _rates(account: Account) -> JsonObject:
    """The account's maker and taker rates; buyer and seller rates are always zero."""
    return {
        "maker": amount(account.maker_rate),
        "taker": amount(account.taker_rate),
        "buyer": amount(ZERO),
        "seller": amount(ZERO),
    }


def account_info(
    account: Account, assets: Iterable[str], *, omit_zero: bool, now_ms: int
) -> JsonObject:
    """``GET /api/v3/account``."""
    balances = []
    for asset in assets:
        balance = account.balance(asset)
        if omit_zero and balance.free == 0 and balance.locked == 0:
            continue
        balances.append(
            {"asset": asset, "free": amount(balance.free), "locked": amount(balance.locked)}
        )
    return {
        "makerCommission": _bips(account.maker_rate),
        "takerCommission": _bips(account.taker_rate),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": _rates(account),
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": account.update_time_ms or now_ms,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": account.uid,
    }


def _discount() -> JsonObject:
    # The venue has no BNB fee discount.
    return {
        "enabledForAccount": False,
        "enabledForSymbol": False,
        "discountAsset": "BNB",
        "discount": amount(ZERO),
    }


def account_commission(account: Account, symbol: str) -> JsonObject:
    """``GET /api/v3/account/commission``."""
    zeros = {"maker": amount(ZERO), "taker": amount(ZERO), "buyer": amount(ZERO)}
    zeros["seller"] = amount(ZERO)
    return {
        "symbol": symbol,
        "standardCommission": _rates(account),
        "specialCommission": dict(zeros),
        "taxCommission": dict(zeros),
        "discount": _discount(),
    }


def order_commission(account: Account) -> JsonObject:
    """``POST /api/v3/order/test`` with ``computeCommissionRates=true``."""
    zeros = {"maker": amount(ZERO), "taker": amount(ZERO)}
    return {
        "standardCommissionForOrder": {
            "maker": amount(account.maker_rate),
            "taker": amount(account.taker_rate),
        },
        "specialCommissionForOrder": dict(zeros),
        "taxCommissionForOrder": dict(zeros),
        "discount": _discount(),
    }


# --- user-data events ---------------------------------------------------------------------


def execution_report(
    order: SpotOrder,
    *,
    event_time: int,
    transact_time: int,
    execution_type: str,
    execution_id: int,
    client_order_id: str | None = None,
    orig_client_order_id: str = "",
    reject_reason: str = "NONE",
    last_quantity: Decimal = ZERO,
    last_price: Decimal = ZERO,
    commission: Decimal | None = None,
    commission_asset: str | None = None,
    trade_id: int = -1,
    is_maker: bool = False,
    last_prevented: Decimal | None = None,
    counter_order_id: int | None = None,
    counter_symbol: str | None = None,
    prevented_execution: tuple[Decimal, Decimal] | None = None,
    trade_group_id: int | None = None,
    on_book: bool = False,
) -> JsonObject:
    """An ``executionReport`` (``binance-protocol.md`` 9.1), every field Binance sends.

    A ``TRADE_PREVENTION`` report is not a trade: ``l``, ``L`` and ``Y`` stay zero (Binance's
    2023-12 change); what would have traded is in ``pl``/``pL``/``pY``, the quantity this
    prevention expired from the order in ``B`` and the order's total in ``A``, with the other
    order in ``U`` and ``Cs``. ``u`` (tradeGroupId) is only sent for accounts in a trade group.

    Args:
        order: The order after the change.
        event_time: ``E``.
        transact_time: ``T``.
        execution_type: ``x``: NEW, CANCELED, REPLACED, REJECTED, TRADE, EXPIRED,
            TRADE_PREVENTION.
        execution_id: ``I``.
        client_order_id: ``c`` when it differs from the order's (a cancel's new id).
        orig_client_order_id: ``C``: the cancelled (or amended) order's id, else "".
        reject_reason: ``r``.
        last_quantity: ``l``.
        last_price: ``L``.
        commission: ``n`` of a trade (None: no commission, rendered ``"0"``).
        commission_asset: ``N`` (None renders ``null``).
        trade_id: ``t``; -1 when not a trade.
        is_maker: ``m``.
        last_prevented: ``B`` of a TRADE_PREVENTION report.
        counter_order_id: ``U``: the other order of a prevented match.
        counter_symbol: ``Cs``: the other order's symbol.
        prevented_execution: (``pl``, ``pL``): the quantity and price that would have traded;
            ``pY`` is their product.
        trade_group_id: ``u``, for an account in a trade group (None: not sent).
        on_book: ``w``: whether the order rests on the book after this change.
    """
    is_trade = execution_type == "TRADE"
    payload: JsonObject = {
        "e": "executionReport",
        "E": event_time,
        "s": order.symbol,
        "c": order.client_order_id if client_order_id is None else client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": amount(order.quantity),
        "p": amount(order.price),
        "P": amount(order.stop_price),
        "F": amount(order.iceberg_qty),
        "g": order.order_list_id,
        "C": orig_client_order_id,
        "x": execution_type,
        "X": order.status,
        "r": reject_reason,
        "i": order.order_id,
        "l": amount(last_quantity),
        "z": amount(order.executed),
        "L": amount(last_price),
        "n": "0" if commission is None else amount(commission),
        "N": commission_asset,
        "T": transact_time,
        "t": trade_id,
    }
    if order.trailing_delta is not None:
        payload["d"] = order.trailing_delta
        if order.trailing_time_ms is not None:
            payload["D"] = order.trailing_time_ms
    if order.strategy_id is not None:
        payload["j"] = order.strategy_id
    if order.strategy_type is not None:
        payload["J"] = order.strategy_type
    if order.prevented_match_id is not None:
        payload["v"] = order.prevented_match_id
    payload.update(
        {
            "I": execution_id,
            "w": on_book,
            "m": is_maker,
            "M": is_trade,
            "O": order.time_ms,
            "Z": amount(order.cumulative_quote),
            "Y": amount(last_quantity * last_price),
            "Q": amount(order.quote_order_qty),
        }
    )
    if order.working_time_ms != NOT_WORKING:
        payload["W"] = order.working_time_ms
    payload["V"] = order.stp_mode
    if execution_type == "TRADE_PREVENTION" and trade_group_id is not None:
        payload["u"] = trade_group_id
    if execution_type == "TRADE_PREVENTION" and counter_order_id is not None:
        payload["U"] = counter_order_id
    if order.prevented_match_id is not None:
        payload["A"] = amount(order.prevented)
    if execution_type == "TRADE_PREVENTION":
        if last_prevented is not None:
            payload["B"] = amount(last_prevented)
        if counter_symbol is not None:
            payload["Cs"] = counter_symbol
        if prevented_execution is not None:
            quantity, price = prevented_execution
            payload["pl"] = amount(quantity)
            payload["pL"] = amount(price)
            payload["pY"] = amount(quantity * price)
    if order.status in ("EXPIRED", "EXPIRED_IN_MATCH") and order.expiry_reason is not None:
        payload["eR"] = order.expiry_reason
    return payload


def list_status_event(
    order_list: OrderList, *, event_time: int, reject_reason: str = "NONE"
) -> JsonObject:
    """A ``listStatus`` event."""
    return {
        "e": "listStatus",
        "E": event_time,
        "s": order_list.symbol,
        "g": order_list.order_list_id,
        "c": order_list.contingency_type,
        "l": order_list.status_type,
        "L": order_list.status,
        "r": reject_reason,
        "C": order_list.list_client_order_id,
        "T": order_list.transaction_time_ms,
        "O": [
            {"s": order.symbol, "i": order.order_id, "c": order.client_order_id}
            for order in order_list.orders
        ],
    }


def account_position(account: Account, assets: Iterable[str], *, event_time: int) -> JsonObject:
    """``outboundAccountPosition`` for the changed assets."""
    return {
        "e": "outboundAccountPosition",
        "E": event_time,
        "u": account.update_time_ms,
        "B": [
            {
                "a": asset,
                "f": amount(account.balance(asset).free),
                "l": amount(account.balance(asset).locked),
            }
            for asset in assets
        ],
    }


def balance_update(asset: str, delta: Decimal, *, event_time: int, clear_time: int) -> JsonObject:
    """``balanceUpdate`` (a deposit, withdrawal or transfer)."""
    return {"e": "balanceUpdate", "E": event_time, "a": asset, "d": amount(delta), "T": clear_time}
