"""Spot trading and account endpoints: REST handlers, the WS-API methods, control actions.

Every handler takes a :class:`~scenarios.venue.rest.Call` and returns Binance's JSON body; the
WS-API methods are the same handlers (``order.place`` answers exactly what ``POST
/api/v3/order`` does), registered with the WS-API's security, weight and order count.

Endpoints (``binance-protocol.md`` 4.1, 5.1): ``POST /order`` and ``/order/test``,
``GET``/``DELETE /order``, ``GET``/``DELETE /openOrders``, ``GET /allOrders``,
``POST /order/cancelReplace``, ``PUT /order/amend/keepPriority``, ``POST /orderList/oco``,
``/orderList/oto``, ``/orderList/otoco``, ``GET``/``DELETE /orderList``, ``GET
/openOrderList``, ``/allOrderList``, ``GET /myTrades``, ``/account``, ``/account/commission``
and ``/rateLimit/order``.

Control actions (``POST /_venue/spot/<name>``, JSON in and out; ``account`` is an API key and
defaults to the venue's first key where noted):

* ``fund`` ``{account?, asset, delta}``: credit (or debit) a balance; the account hears
  ``balanceUpdate`` and ``outboundAccountPosition``. Returns the balance.
* ``fee_tier`` ``{account?, maker, taker}``: the account's commission rates (fractions).
* ``orders`` ``{account?, symbol?}``: every order (all accounts when none is named), as
  ``GET /order`` shows it plus ``account``.
* ``fills`` ``{account?}``: every fill (all accounts when none is named), as ``myTrades``
  rows plus ``account``.
* ``balances`` ``{account?}``: ``{asset: {free, locked}}`` of one account.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from scenarios.venue import spot_json
from scenarios.venue.auth import Security
from scenarios.venue.errors import VenueError
from scenarios.venue.instruments import Instrument, Product
from scenarios.venue.spot_model import STOP_TYPES, OrderList, SpotOrder
from scenarios.venue.spot_params import (
    OrderSpec,
    check_filters,
    filter_failure,
    lot_size_ok,
    mandatory,
    names_with_prefix,
    parse_client_id,
    parse_decimal,
    parse_order,
    parse_response_type,
    parse_stp_mode,
    rejected,
)
from scenarios.venue.trading import WsMethod

if TYPE_CHECKING:
    from scenarios.venue.rest import Call, Route
    from scenarios.venue.spot import Run, SpotEngine

Handler = Callable[["SpotEngine", "Call"], Any]

#: Lookups cover at most this much time (``allOrders``, ``myTrades``).
LOOKUP_WINDOW_MS = 24 * 3_600_000
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
CANCEL_RESTRICTIONS = {"ONLY_NEW": "NEW", "ONLY_PARTIALLY_FILLED": "PARTIALLY_FILLED"}
REPLACE_MODES = ("STOP_ON_FAILURE", "ALLOW_FAILURE")
RATE_LIMIT_MODES = ("DO_NOTHING", "CANCEL_ONLY")
OCO_ABOVE_TYPES = (
    "STOP_LOSS_LIMIT",
    "STOP_LOSS",
    "LIMIT_MAKER",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
OCO_BELOW_TYPES = OCO_ABOVE_TYPES
AMEND_REJECTED = -2038
BAD_OCO_PRICES = "The relationship of the prices for the orders is not correct."


class CancelReplaceError(VenueError):
    """A cancel-replace that failed in part or in whole: the body carries ``data``."""

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg, "data": self.data}


def _key(call: Call) -> str:
    assert call.key is not None  # TRADE and USER_DATA endpoints always authenticate
    return call.key.api_key


def _pegs_refused(call: Call) -> None:
    for name in ("pegPriceType", "pegOffsetValue", "pegOffsetType"):
        if call.request.get(name) is not None:
            raise VenueError.unsupported_operation()


def _restrictions(call: Call) -> str | None:
    raw = call.request.get("cancelRestrictions")
    if raw is not None and raw not in CANCEL_RESTRICTIONS:
        raise VenueError(
            -1145, "cancelRestrictions has to be either ONLY_NEW or ONLY_PARTIALLY_FILLED."
        )
    return raw


def _check_restrictions(order: SpotOrder, restriction: str | None) -> None:
    if restriction is not None and order.status != CANCEL_RESTRICTIONS[restriction]:
        raise VenueError.cancel_rejected("Order was not canceled due to cancel restrictions.")


def _order_ids(call: Call, id_name: str, client_name: str) -> tuple[int | None, str | None]:
    order_id = call.integer(id_name)
    client_id = call.request.get(client_name)
    if order_id is None and client_id is None:
        raise VenueError.either_param_required(client_name, id_name)
    return order_id, client_id


def order_response(order: SpotOrder, run: Run, response_type: str, now: int) -> dict[str, Any]:
    """A new order's body in the requested ``newOrderRespType``."""
    if response_type == "ACK":
        return spot_json.order_ack(order, now)
    return spot_json.order_result(
        order,
        now,
        fills=run.fills if response_type == "FULL" else None,
        prevented_matches=run.prevented_matches,
    )


def _parse_new_order(call: Call, instrument: Instrument) -> tuple[OrderSpec, str]:
    """A new order's parameters and its ``newOrderRespType``; pegged orders are refused."""
    spec = parse_order(call.request.get, instrument)
    response_type = parse_response_type(call.request.get("newOrderRespType"), spec.type)
    _pegs_refused(call)
    return spec, response_type


def _cancel_open_order(
    engine: SpotEngine,
    api_key: str,
    symbol: str,
    ids: tuple[int | None, str | None],
    restriction: str | None,
    cancel_id: str | None,
    now: int,
) -> Any:
    """Cancel an open order (the whole list, for a list member); its body.

    Raises ``-2011`` when there is no such open order or its status breaks ``restriction``.
    """
    order = engine.find_order(api_key, symbol, *ids)
    if order is None or not order.is_open:
        raise VenueError.cancel_rejected()
    _check_restrictions(order, restriction)
    cancel_id = cancel_id or engine.new_client_id()
    order_list = engine.list_of(order)
    if order_list is not None:
        return engine.cancel_list(order_list, now, cancel_id)
    return engine.cancel(order, now, cancel_id)


# --- orders -------------------------------------------------------------------------------


def new_order(engine: SpotEngine, call: Call) -> Any:
    """``POST /api/v3/order``."""
    api_key = _key(call)
    spec, response_type = _parse_new_order(call, call.instrument())
    order, run = engine.place(api_key, spec, call.now_ms)
    return order_response(order, run, response_type, call.now_ms)


def order_test(engine: SpotEngine, call: Call) -> Any:
    """``POST /api/v3/order/test``: validated like a new order, never placed."""
    api_key = _key(call)
    instrument = call.instrument()
    spec, _ = _parse_new_order(call, instrument)
    compute = call.request.get("computeCommissionRates")
    if compute not in (None, "true", "false"):
        raise VenueError.invalid_parameter("computeCommissionRates")
    market = engine.market(instrument.symbol)
    open_orders, open_algo = engine.count_open(api_key, instrument.symbol)
    check_filters(
        spec,
        average_price=market.avg_price(call.now_ms).price,
        open_orders=open_orders,
        open_algo_orders=open_algo,
    )
    if compute == "true":
        return spot_json.order_commission(engine.account(api_key))
    return {}


def query_order(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/order``."""
    instrument = call.instrument()
    order_id, client_id = _order_ids(call, "orderId", "origClientOrderId")
    order = engine.find_order(_key(call), instrument.symbol, order_id, client_id)
    if order is None:
        raise VenueError.no_such_order()
    return spot_json.order_query(order)


def cancel_order(engine: SpotEngine, call: Call) -> Any:
    """``DELETE /api/v3/order``; a member of a list cancels the whole list."""
    api_key = _key(call)
    instrument = call.instrument()
    ids = _order_ids(call, "orderId", "origClientOrderId")
    cancel_id = parse_client_id("newClientOrderId", call.request.get("newClientOrderId"))
    restriction = _restrictions(call)
    with engine.batch(call.now_ms):
        return _cancel_open_order(
            engine, api_key, instrument.symbol, ids, restriction, cancel_id, call.now_ms
        )


def cancel_open_orders(engine: SpotEngine, call: Call) -> Any:
    """``DELETE /api/v3/openOrders``: every open order of the symbol; lists as list objects."""
    api_key = _key(call)
    instrument = call.instrument()
    orders = engine.open_orders(api_key, instrument.symbol)
    if not orders:
        raise VenueError.cancel_rejected()
    cancel_id = engine.new_client_id()
    results: list[Any] = []
    seen_lists: set[int] = set()
    with engine.batch(call.now_ms):
        for order in orders:
            order_list = engine.list_of(order)
            if order_list is not None:
                if order_list.order_list_id not in seen_lists:
                    seen_lists.add(order_list.order_list_id)
                    results.append(engine.cancel_list(order_list, call.now_ms, cancel_id))
            elif order.is_open:
                results.append(engine.cancel(order, call.now_ms, cancel_id))
    return results


def open_orders(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/openOrders`` (``symbol`` optional)."""
    instrument = call.optional_instrument()
    symbol = instrument.symbol if instrument is not None else None
    return [spot_json.order_query(order) for order in engine.open_orders(_key(call), symbol)]


def _limit(call: Call) -> int:
    limit = call.integer("limit", DEFAULT_LIMIT)
    assert limit is not None
    if limit <= 0:
        raise VenueError.invalid_parameter("limit")
    return min(limit, MAX_LIMIT)


def _window(call: Call) -> tuple[int | None, int | None]:
    start, end = call.times()
    if start is not None and end is not None and end - start > LOOKUP_WINDOW_MS:
        raise VenueError.lookup_interval_too_big(24)
    return start, end


def _in_window(time_ms: int, start: int | None, end: int | None) -> bool:
    return (start is None or time_ms >= start) and (end is None or time_ms <= end)


def _page(
    rows: list[Any],
    from_id: int | None,
    window: tuple[int | None, int | None],
    limit: int,
    *,
    by: tuple[str, str],
) -> list[Any]:
    """Up to ``limit`` of ``rows``: from ``from_id`` upward, else the first ones within the
    ``(start, end)`` window, else the latest ones.

    ``by`` names the rows' id and time attributes; the rows are sorted by id.
    """
    id_name, time_name = by
    start, end = window
    if from_id is not None:
        start_at = bisect.bisect_left(rows, from_id, key=operator.attrgetter(id_name))
        return rows[start_at : start_at + limit]
    if start is not None or end is not None:
        return [row for row in rows if _in_window(getattr(row, time_name), start, end)][:limit]
    return rows[-limit:]


def all_orders(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/allOrders``: by ``orderId`` upward, by time, or the latest ``limit``."""
    instrument = call.instrument()
    from_id = call.integer("orderId")
    window = _window(call)
    limit = _limit(call)
    orders = engine.symbol_orders(_key(call), instrument.symbol)
    chosen = _page(orders, from_id, window, limit, by=("order_id", "time_ms"))
    return [spot_json.order_query(order) for order in chosen]


def my_trades(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/myTrades`` with Binance's parameter combinations."""
    instrument = call.instrument()
    order_id = call.integer("orderId")
    from_id = call.integer("fromId")
    start, end = _window(call)
    limit = _limit(call)
    timed = start is not None or end is not None
    if (from_id is not None and timed) or (order_id is not None and timed):
        raise VenueError.optional_params_bad_combo()
    api_key = _key(call)
    if order_id is not None:
        fills = [
            fill
            for fill in engine.fills_of_order(order_id)
            if fill.account == api_key and fill.symbol == instrument.symbol
        ]
    else:
        fills = engine.symbol_fills(api_key, instrument.symbol)
    if from_id is not None:
        chosen = [fill for fill in fills if fill.trade_id >= from_id][:limit]
    elif timed:
        chosen = [fill for fill in fills if _in_window(fill.time_ms, start, end)][:limit]
    else:
        chosen = fills[-limit:]
    return [spot_json.trade_row(fill) for fill in chosen]


# --- cancel-replace and amend ---------------------------------------------------------------


def _error_body(error: VenueError) -> dict[str, Any]:
    return {"code": error.code, "msg": error.msg}


def cancel_replace(engine: SpotEngine, call: Call) -> Any:
    """``POST /api/v3/order/cancelReplace`` (``binance-protocol.md`` 5.1.6)."""
    api_key = _key(call)
    instrument = call.instrument()
    get = call.request.get
    mode = get("cancelReplaceMode")
    if mode is None:
        raise mandatory("cancelReplaceMode")
    if mode not in REPLACE_MODES:
        raise VenueError.invalid_parameter("cancelReplaceMode")
    rate_mode = get("orderRateLimitExceededMode")
    if rate_mode is not None and rate_mode not in RATE_LIMIT_MODES:
        raise VenueError.invalid_parameter("orderRateLimitExceededMode")
    restriction = _restrictions(call)
    cancel_ids = _order_ids(call, "cancelOrderId", "cancelOrigClientOrderId")
    cancel_id = parse_client_id("cancelNewClientOrderId", get("cancelNewClientOrderId"))
    spec, response_type = _parse_new_order(call, instrument)
    now = call.now_ms
    cancel_body: Any = None
    new_body: Any = None
    cancel_error: VenueError | None = None
    new_error: VenueError | None = None
    with engine.batch(now):
        try:
            cancel_body = _cancel_open_order(
                engine, api_key, instrument.symbol, cancel_ids, restriction, cancel_id, now
            )
        except VenueError as error:
            cancel_error = error
        if cancel_error is not None and mode == "STOP_ON_FAILURE":
            raise CancelReplaceError(
                -2022,
                "Order cancel-replace failed.",
                400,
                data={
                    "cancelResult": "FAILURE",
                    "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": _error_body(cancel_error),
                    "newOrderResponse": None,
                },
            )
        try:
            new, run = engine.place(api_key, spec, now)
            new_body = order_response(new, run, response_type, now)
        except VenueError as error:
            new_error = error
            if cancel_error is None:
                engine.report_rejected(api_key, spec, now, error)
    if cancel_error is None and new_error is None:
        return {
            "cancelResult": "SUCCESS",
            "newOrderResult": "SUCCESS",
            "cancelResponse": cancel_body,
            "newOrderResponse": new_body,
        }
    data = {
        "cancelResult": "FAILURE" if cancel_error is not None else "SUCCESS",
        "newOrderResult": "FAILURE" if new_error is not None else "SUCCESS",
        "cancelResponse": _error_body(cancel_error) if cancel_error is not None else cancel_body,
        "newOrderResponse": _error_body(new_error) if new_error is not None else new_body,
    }
    if cancel_error is not None and new_error is not None:
        raise CancelReplaceError(-2022, "Order cancel-replace failed.", 400, data=data)
    raise CancelReplaceError(-2021, "Order cancel-replace partially failed.", 409, data=data)


def amend_keep_priority(engine: SpotEngine, call: Call) -> Any:
    """``PUT /api/v3/order/amend/keepPriority``: lower the quantity, keep the queue place."""
    api_key = _key(call)
    instrument = call.instrument()
    order_id, client_id = _order_ids(call, "orderId", "origClientOrderId")
    new_quantity = parse_decimal("newQty", call.request.get("newQty"))
    if new_quantity is None:
        raise mandatory("newQty")
    new_client_id = parse_client_id("newClientOrderId", call.request.get("newClientOrderId"))
    order = engine.find_order(api_key, instrument.symbol, order_id, client_id)
    if order is None:
        raise VenueError.no_such_order()
    if not order.is_open:
        raise VenueError(AMEND_REJECTED, "ORDER_AMEND_REJECTED")
    if not lot_size_ok(instrument, new_quantity):
        raise filter_failure("LOT_SIZE")
    if new_quantity > order.quantity:
        raise VenueError(AMEND_REJECTED, "Order amend (quantity increase) is not supported.")
    if new_quantity == order.quantity:
        raise VenueError(AMEND_REJECTED, "The requested action would change no state; rejecting")
    if new_quantity <= order.executed + order.prevented:
        raise VenueError(AMEND_REJECTED, "ORDER_AMEND_REJECTED")
    if order.amendments >= instrument.max_num_order_amends:
        raise VenueError(AMEND_REJECTED, "Filter failure: MAX_NUM_ORDER_AMENDS")
    new_client_id = new_client_id or engine.new_client_id()
    if new_client_id != order.client_order_id:
        engine.check_client_id(api_key, instrument.symbol, new_client_id)
    with engine.batch(call.now_ms):
        execution_id, orig, order_list = engine.amend(
            order, new_quantity, new_client_id, call.now_ms
        )
    return spot_json.amend_report(
        order, call.now_ms, execution_id, orig_client_order_id=orig, order_list=order_list
    )


# --- order lists --------------------------------------------------------------------------


def _list_response_type(call: Call) -> str:
    raw = call.request.get("newOrderRespType")
    if raw is None:
        return "RESULT"
    return parse_response_type(raw, "LIMIT")


def _list_response(order_list: OrderList, response_type: str, engine: SpotEngine, now: int) -> Any:
    reports = []
    for order in order_list.orders:
        if response_type == "ACK":
            reports.append(spot_json.order_ack(order, now))
        else:
            fills = engine.fills_of_order(order.order_id) if response_type == "FULL" else None
            reports.append(spot_json.order_result(order, now, fills=fills))
    return spot_json.list_object(order_list, reports=reports)


def _reference(spec: OrderSpec) -> Decimal | None:
    """The price an OCO leg is placed by: its limit price, or its stop price."""
    if spec.type == "LIMIT_MAKER":
        return spec.price
    return spec.stop_price


def _check_oco_legs(side: str, above: OrderSpec, below: OrderSpec) -> None:
    """Which leg may sit where (``-1165`` ... ``-1199``), and one leg must be contingent."""
    if above.type == "LIMIT_MAKER" and below.type == "LIMIT_MAKER":
        raise VenueError(-1168, "At least one OCO order must be contingent.")
    if side == "BUY":
        if above.type == "LIMIT_MAKER":
            raise VenueError(-1165, "A limit order in a buy OCO must be below.")
        if above.type.startswith("TAKE_PROFIT"):
            raise VenueError(-1198, "A take profit order in a buy OCO must be below.")
        if below.type.startswith("STOP_LOSS"):
            raise VenueError(-1196, "A stop loss order in a buy OCO must be above.")
    else:
        if below.type == "LIMIT_MAKER":
            raise VenueError(-1166, "A limit order in a sell OCO must be above.")
        if below.type.startswith("TAKE_PROFIT"):
            raise VenueError(-1199, "A take profit order in a sell OCO must be above.")
        if above.type.startswith("STOP_LOSS"):
            raise VenueError(-1197, "A stop loss order in a sell OCO must be below.")


def _oco_types(call: Call, above_name: str, below_name: str) -> None:
    for name in (above_name, below_name):
        value = call.request.get(name)
        if value is None:
            raise mandatory(name)
        if value not in OCO_ABOVE_TYPES:
            raise VenueError(-1158, "Order type not supported in OCO.")


def _parse_pair(
    call: Call, instrument: Instrument, prefixes: tuple[str, str], stp: str, shared: dict[str, str]
) -> tuple[OrderSpec, OrderSpec]:
    """The two legs of an OCO pair (``above...`` and ``below...`` parameters)."""
    get = call.request.get
    above_prefix, below_prefix = prefixes
    above = parse_order(
        get, instrument, names=names_with_prefix(above_prefix, shared=shared), stp_mode=stp
    )
    below = parse_order(
        get, instrument, names=names_with_prefix(below_prefix, shared=shared), stp_mode=stp
    )
    return above, below


def _list_checks(
    engine: SpotEngine, api_key: str, instrument: Instrument, specs: list[OrderSpec], now: int
) -> None:
    """Filters with the list's order count, list count, and distinct client ids."""
    symbol = instrument.symbol
    if engine.count_open_lists(api_key, symbol) + 1 > instrument.max_num_order_lists:
        raise filter_failure("MAX_NUM_ORDER_LISTS")
    market = engine.market(symbol)
    open_orders, open_algo = engine.count_open(api_key, symbol)
    average = market.avg_price(now).price
    algo_added = sum(1 for spec in specs if spec.type in STOP_TYPES)
    for spec in specs:
        check_filters(
            spec,
            average_price=average,
            open_orders=open_orders,
            open_algo_orders=open_algo + algo_added - (1 if spec.is_stop else 0),
            adding=len(specs),
        )
        engine.check_client_id(api_key, symbol, spec.client_order_id)
    ids = [spec.client_order_id for spec in specs if spec.client_order_id is not None]
    if len(ids) != len(set(ids)):
        raise rejected("Duplicate order sent.")


def _pair_requirement(engine: SpotEngine, specs: list[OrderSpec]) -> tuple[str, Decimal]:
    needs = [engine.spec_requirement(spec) for spec in specs]
    return needs[0][0], max(amount for _, amount in needs)


def _new_list(
    engine: SpotEngine,
    call: Call,
    instrument: Instrument,
    kind: str,
    orders: list[SpotOrder],
    list_id: int,
    working: SpotOrder | None,
) -> OrderList:
    list_client_id = (
        parse_client_id("listClientOrderId", call.request.get("listClientOrderId"))
        or engine.new_client_id()
    )
    order_list = OrderList(
        order_list_id=list_id,
        list_client_order_id=list_client_id,
        contingency_type="OCO" if kind == "OCO" else "OTO",
        kind=kind,
        symbol=instrument.symbol,
        account=_key(call),
        orders=orders,
        working=working,
        transaction_time_ms=call.now_ms,
    )
    engine.register_list(order_list)
    return order_list


def _stop_loss_first(spec: OrderSpec) -> int:
    return 0 if spec.type.startswith("STOP_LOSS") else 1


def place_oco(engine: SpotEngine, call: Call) -> Any:
    """``POST /api/v3/orderList/oco``."""
    api_key = _key(call)
    instrument = call.instrument()
    parse_client_id("listClientOrderId", call.request.get("listClientOrderId"))
    stp = parse_stp_mode(
        "selfTradePreventionMode", call.request.get("selfTradePreventionMode"), instrument
    )
    _oco_types(call, "aboveType", "belowType")
    above, below = _parse_pair(
        call, instrument, ("above", "below"), stp, {"side": "side", "quantity": "quantity"}
    )
    response_type = _list_response_type(call)
    _check_oco_legs(above.side, above, below)
    now = call.now_ms
    engine.account(api_key)
    _list_checks(engine, api_key, instrument, [above, below], now)
    last = engine.market(instrument.symbol).last_price
    above_at, below_at = _reference(above), _reference(below)
    if (above_at is not None and above_at <= last) or (below_at is not None and below_at >= last):
        raise rejected(BAD_OCO_PRICES)
    for leg in (above, below):
        engine.validate(api_key, leg, now, adding=2)
    asset, amount = _pair_requirement(engine, [above, below])
    engine.check_funds(api_key, asset, amount)
    with engine.batch(now):
        list_id = engine.new_list_id()
        orders = [
            engine.create_order(api_key, leg, now, order_list_id=list_id)
            for leg in sorted([above, below], key=_stop_loss_first)
        ]
        order_list = _new_list(engine, call, instrument, "OCO", orders, list_id, None)
        engine.start_pair(order_list, asset, amount, now, announce=True)
    return _list_response(order_list, response_type, engine, now)


def _place_oto(engine: SpotEngine, call: Call, *, with_pair: bool) -> Any:
    api_key = _key(call)
    instrument = call.instrument()
    get = call.request.get
    parse_client_id("listClientOrderId", get("listClientOrderId"))
    stp = parse_stp_mode("selfTradePreventionMode", get("selfTradePreventionMode"), instrument)
    working = parse_order(
        get,
        instrument,
        names=names_with_prefix("working"),
        allowed_types=("LIMIT", "LIMIT_MAKER"),
        stp_mode=stp,
    )
    if with_pair:
        _oco_types(call, "pendingAboveType", "pendingBelowType")
        above, below = _parse_pair(
            call,
            instrument,
            ("pendingAbove", "pendingBelow"),
            stp,
            {"side": "pendingSide", "quantity": "pendingQuantity"},
        )
        _check_oco_legs(above.side, above, below)
        pending = sorted([above, below], key=_stop_loss_first)
    else:
        pending = [parse_order(get, instrument, names=names_with_prefix("pending"), stp_mode=stp)]
    response_type = _list_response_type(call)
    now = call.now_ms
    engine.account(api_key)
    _list_checks(engine, api_key, instrument, [working, *pending], now)
    engine.validate(api_key, working, now, adding=1 + len(pending))
    asset, amount = engine.spec_requirement(working)
    engine.check_funds(api_key, asset, amount)
    with engine.batch(now):
        list_id = engine.new_list_id()
        working_order = engine.create_order(api_key, working, now, order_list_id=list_id)
        pending_orders = [
            engine.create_order(api_key, leg, now, order_list_id=list_id, pending=True)
            for leg in pending
        ]
        order_list = _new_list(
            engine,
            call,
            instrument,
            "OTOCO" if with_pair else "OTO",
            [working_order, *pending_orders],
            list_id,
            working_order,
        )
        engine.start_oto(order_list, asset, amount, now)
    return _list_response(order_list, response_type, engine, now)


def place_oto(engine: SpotEngine, call: Call) -> Any:
    """``POST /api/v3/orderList/oto``."""
    return _place_oto(engine, call, with_pair=False)


def place_otoco(engine: SpotEngine, call: Call) -> Any:
    """``POST /api/v3/orderList/otoco``."""
    return _place_oto(engine, call, with_pair=True)


def cancel_order_list(engine: SpotEngine, call: Call) -> Any:
    """``DELETE /api/v3/orderList``."""
    api_key = _key(call)
    instrument = call.instrument()
    list_id, list_client_id = _order_ids(call, "orderListId", "listClientOrderId")
    cancel_id = parse_client_id("newClientOrderId", call.request.get("newClientOrderId"))
    order_list = engine.find_list(api_key, list_id, list_client_id)
    if order_list is None or order_list.symbol != instrument.symbol:
        raise VenueError.cancel_rejected("Order list does not exist.")
    if order_list.status == "ALL_DONE":
        raise VenueError.cancel_rejected()
    with engine.batch(call.now_ms):
        return engine.cancel_list(order_list, call.now_ms, cancel_id or engine.new_client_id())


def query_order_list(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/orderList``."""
    list_id, list_client_id = _order_ids(call, "orderListId", "origClientOrderId")
    order_list = engine.find_list(_key(call), list_id, list_client_id)
    if order_list is None:
        raise VenueError(-2013, "Order list does not exist.")
    return spot_json.list_object(order_list)


def open_order_lists(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/openOrderList``."""
    return [spot_json.list_object(order_list) for order_list in engine.open_lists(_key(call))]


def all_order_lists(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/allOrderList``."""
    api_key = _key(call)
    from_id = call.integer("fromId")
    window = _window(call)
    if from_id is not None and window != (None, None):
        raise VenueError.optional_params_bad_combo()
    limit = _limit(call)
    lists = engine.lists_of(api_key)
    chosen = _page(lists, from_id, window, limit, by=("order_list_id", "transaction_time_ms"))
    return [spot_json.list_object(order_list) for order_list in chosen]


# --- account ------------------------------------------------------------------------------


def account_info(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/account``."""
    omit = call.request.get("omitZeroBalances")
    if omit not in (None, "true", "false"):
        raise VenueError.invalid_parameter("omitZeroBalances")
    account = engine.account(_key(call))
    return spot_json.account_info(
        account, engine.known_assets(account), omit_zero=omit == "true", now_ms=call.now_ms
    )


def account_commission(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/account/commission``."""
    instrument = call.instrument()
    return spot_json.account_commission(engine.account(_key(call)), instrument.symbol)


def rate_limit_orders(engine: SpotEngine, call: Call) -> Any:
    """``GET /api/v3/rateLimit/order``: the ORDERS limits with this account's counts
    (Binance counts orders per account)."""
    limiter = engine.venue.limiter
    pool = limiter.pool(Product.SPOT.value)
    return [
        entry
        for entry in limiter.report(pool, call.request.client, call.now_ms, account=_key(call))
        if entry["rateLimitType"] == "ORDERS"
    ]


# --- tables -------------------------------------------------------------------------------

_REST: tuple[tuple[str, str, Security, Handler], ...] = (
    ("POST", "/api/v3/order", Security.TRADE, new_order),
    ("POST", "/api/v3/order/test", Security.TRADE, order_test),
    ("GET", "/api/v3/order", Security.USER_DATA, query_order),
    ("DELETE", "/api/v3/order", Security.TRADE, cancel_order),
    ("DELETE", "/api/v3/openOrders", Security.TRADE, cancel_open_orders),
    ("GET", "/api/v3/openOrders", Security.USER_DATA, open_orders),
    ("GET", "/api/v3/allOrders", Security.USER_DATA, all_orders),
    ("POST", "/api/v3/order/cancelReplace", Security.TRADE, cancel_replace),
    ("PUT", "/api/v3/order/amend/keepPriority", Security.TRADE, amend_keep_priority),
    ("POST", "/api/v3/orderList/oco", Security.TRADE, place_oco),
    ("POST", "/api/v3/orderList/oto", Security.TRADE, place_oto),
    ("POST", "/api/v3/orderList/otoco", Security.TRADE, place_otoco),
    ("DELETE", "/api/v3/orderList", Security.TRADE, cancel_order_list),
    ("GET", "/api/v3/orderList", Security.USER_DATA, query_order_list),
    ("GET", "/api/v3/openOrderList", Security.USER_DATA, open_order_lists),
    ("GET", "/api/v3/allOrderList", Security.USER_DATA, all_order_lists),
    ("GET", "/api/v3/myTrades", Security.USER_DATA, my_trades),
    ("GET", "/api/v3/account", Security.USER_DATA, account_info),
    ("GET", "/api/v3/account/commission", Security.USER_DATA, account_commission),
    ("GET", "/api/v3/rateLimit/order", Security.USER_DATA, rate_limit_orders),
)

#: WS-API method -> (handler, security, weight, unfilled orders counted).
_WS: tuple[tuple[str, Handler, Security, int, int], ...] = (
    ("order.place", new_order, Security.TRADE, 1, 1),
    ("order.test", order_test, Security.TRADE, 1, 0),
    ("order.status", query_order, Security.USER_DATA, 4, 0),
    ("order.cancel", cancel_order, Security.TRADE, 1, 0),
    ("order.cancelReplace", cancel_replace, Security.TRADE, 1, 1),
    ("order.amend.keepPriority", amend_keep_priority, Security.TRADE, 4, 0),
    ("openOrders.status", open_orders, Security.USER_DATA, 6, 0),
    ("openOrders.cancelAll", cancel_open_orders, Security.TRADE, 1, 0),
    ("orderList.place.oco", place_oco, Security.TRADE, 1, 2),
    ("orderList.place.oto", place_oto, Security.TRADE, 1, 2),
    ("orderList.place.otoco", place_otoco, Security.TRADE, 1, 3),
    ("orderList.cancel", cancel_order_list, Security.TRADE, 1, 0),
    ("orderList.status", query_order_list, Security.USER_DATA, 4, 0),
    ("openOrderLists.status", open_order_lists, Security.USER_DATA, 6, 0),
    ("allOrderLists", all_order_lists, Security.USER_DATA, 20, 0),
    ("allOrders", all_orders, Security.USER_DATA, 20, 0),
    ("myTrades", my_trades, Security.USER_DATA, 20, 0),
    ("account.status", account_info, Security.USER_DATA, 20, 0),
    ("account.commission", account_commission, Security.USER_DATA, 20, 0),
    ("account.rateLimits.orders", rate_limit_orders, Security.USER_DATA, 40, 0),
)


def _bind(engine: SpotEngine, handler: Handler) -> Callable[[Call], Any]:
    def bound(call: Call) -> Any:
        return handler(engine, call)

    bound.__name__ = handler.__name__
    bound.__doc__ = handler.__doc__
    return bound


def rest_routes(engine: SpotEngine) -> dict[tuple[str, str], Route]:
    """The engine's REST endpoints for the venue's pipeline."""
    from scenarios.venue.rest import Route

    return {
        (method, path): Route(Product.SPOT, security, _bind(engine, handler))
        for method, path, security, handler in _REST
    }


def ws_methods(engine: SpotEngine) -> dict[str, WsMethod]:
    """The engine's WS-API methods (the REST handlers, Binance's weights)."""
    return {
        name: WsMethod(_bind(engine, handler), security, weight, orders)
        for name, handler, security, weight, orders in _WS
    }


# --- control actions ----------------------------------------------------------------------


def _account_of(engine: SpotEngine, data: dict[str, Any], *, default_first: bool) -> str | None:
    raw = data.get("account")
    if raw is None:
        return engine.venue.first_key.api_key if default_first else None
    if not isinstance(raw, str) or raw not in engine.venue.keys:
        raise ValueError(f"account must be a registered API key, got {raw!r}")
    return raw


def _decimal(data: dict[str, Any], name: str) -> Decimal:
    raw = data.get(name)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ValueError(f"{name} must be a decimal string, got {raw!r}")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} must be a decimal string, got {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {raw!r}")
    return value


def _fund(engine: SpotEngine, data: dict[str, Any]) -> Any:
    api_key = _account_of(engine, data, default_first=True)
    assert api_key is not None
    asset = data.get("asset")
    if not isinstance(asset, str) or not asset:
        raise ValueError(f"asset must be a name such as 'USDT', got {asset!r}")
    delta = _decimal(data, "delta")
    if delta == 0:
        raise ValueError("delta must not be zero")
    balance = engine.fund(api_key, asset.upper(), delta, engine.venue.clock.now_ms())
    return {
        "account": api_key,
        "asset": asset.upper(),
        "free": spot_json.amount(balance.free),
        "locked": spot_json.amount(balance.locked),
    }


def _fee_tier(engine: SpotEngine, data: dict[str, Any]) -> Any:
    api_key = _account_of(engine, data, default_first=True)
    assert api_key is not None
    maker, taker = _decimal(data, "maker"), _decimal(data, "taker")
    for name, rate in (("maker", maker), ("taker", taker)):
        if not 0 <= rate < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1), got {rate}")
    account = engine.account(api_key)
    account.maker_rate, account.taker_rate = maker, taker
    return {
        "account": api_key,
        "maker": spot_json.amount(maker),
        "taker": spot_json.amount(taker),
    }


def _orders(engine: SpotEngine, data: dict[str, Any]) -> Any:
    api_key = _account_of(engine, data, default_first=False)
    symbol = data.get("symbol")
    if symbol is not None and (
        not isinstance(symbol, str) or symbol.upper() not in engine.venue.instruments[Product.SPOT]
    ):
        raise ValueError(f"no spot symbol {symbol!r}")
    rows = []
    for order in engine.orders.values():
        if api_key is not None and order.account != api_key:
            continue
        if symbol is not None and order.symbol != symbol.upper():
            continue
        rows.append({"account": order.account, **spot_json.order_query(order)})
    return rows


def _fills(engine: SpotEngine, data: dict[str, Any]) -> Any:
    api_key = _account_of(engine, data, default_first=False)
    return [
        {"account": fill.account, **spot_json.trade_row(fill)}
        for fill in engine.fills
        if api_key is None or fill.account == api_key
    ]


def _balances(engine: SpotEngine, data: dict[str, Any]) -> Any:
    api_key = _account_of(engine, data, default_first=True)
    assert api_key is not None
    account = engine.account(api_key)
    return {
        asset: {"free": spot_json.amount(balance.free), "locked": spot_json.amount(balance.locked)}
        for asset, balance in account.balances.items()
    }


def control_actions(engine: SpotEngine) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """The Spot control actions (see the module docstring)."""
    return {
        "fund": lambda data: _fund(engine, data),
        "fee_tier": lambda data: _fee_tier(engine, data),
        "orders": lambda data: _orders(engine, data),
        "fills": lambda data: _fills(engine, data),
        "balances": lambda data: _balances(engine, data),
    }
