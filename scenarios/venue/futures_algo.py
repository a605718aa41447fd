"""Conditional orders (the "Algo Service", ``/fapi/v1/algoOrder`` and ``/dapi/v1/algoOrder``).

STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET and TRAILING_STOP_MARKET orders wait here
until their condition holds (``binance-protocol.md`` 4.2.1 and 5.2):

* STOP/STOP_MARKET: BUY when the price reaches ``triggerPrice`` from below (>=), SELL from
  above (<=); TAKE_PROFIT/TAKE_PROFIT_MARKET the other way round. The price is the last price
  (``workingType=CONTRACT_PRICE``, the default) or the mark price (``MARK_PRICE``).
* TRAILING_STOP_MARKET: once activated (at ``activatePrice``, or at once without one) it
  tracks the best price since and fires when the price comes back by ``callbackRate`` percent.
* ``priceProtect``: no trigger while mark and last price differ by more than the symbol's
  ``triggerProtect``.
* ``closePosition``: closes the whole position when it fires and expires (GTE_GTC) when the
  position is closed before that.

A conditional order that fires becomes a regular order with its own ``orderId`` (LIMIT for
STOP/TAKE_PROFIT, MARKET for the others; ``origType`` keeps the conditional type and
``clientOrderId`` the ``clientAlgoId``), announced by ``ALGO_UPDATE`` TRIGGERING then
TRIGGERED, and FINISHED once that order is done; REJECTED when the order is refused (e.g. a
reduce-only order with nothing to reduce) with the reason in ``rm``. There is no margin check
before the trigger. At most :data:`~scenarios.venue.futures_rules.MAX_OPEN_ALGO_ORDERS` wait
per account.

**Legacy conditional orders** (COIN-M only): ``POST /dapi/v1/order`` (``/batchOrders``, ws-dapi
``order.place``) still takes the five conditional types with the pre-migration parameters
(``stopPrice``, ``activationPrice``, ``callbackRate``, ``workingType``, ``priceProtect``,
``closePosition``) until a later, separately announced date (``binance-protocol.md`` 4.3).
Such an order is a regular order from the start (its own ``orderId``, ``status`` NEW, ``type``
the conditional type, ``x=NEW``; it counts among the open orders and ``DELETE /order``
cancels it); its condition waits here with the Algo Service orders, without ``ALGO_UPDATE``.
When it fires the order keeps its ``orderId`` and ``type``: ``ORDER_TRADE_UPDATE`` shows the
conditional order expiring (``er=8``), then ``x=NEW`` with ``o`` LIMIT/MARKET and ``ot`` the
conditional type, then its trades (see :meth:`ConditionalOrders._trigger_legacy`). USD-M
``/fapi/v1/order`` refuses these types (``-4120``).

:class:`ConditionalOrders` is a part of :class:`~scenarios.venue.futures.FuturesEngine`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any

import attrs

from scenarios.venue import futures_errors as errors
from scenarios.venue import futures_params as params
from scenarios.venue.errors import VenueError
from scenarios.venue.futures_accounts import ZERO, FuturesAccount
from scenarios.venue.futures_orders import (
    TRAILING,
    AlgoOrder,
    FuturesOrder,
    OpenIndex,
    algo_query,
    algo_result,
    latest_open,
)
from scenarios.venue.futures_rules import (
    CALLBACK_RATE_MAX,
    CALLBACK_RATE_MIN,
    CANCEL_ALL_DONE,
    CONDITIONAL_TYPES,
    GTE_UNSATISFIED,
    MAX_OPEN_ALGO_ORDERS,
    REDUCE_ONLY_EXPIRED,
    STOP_TRIGGERED,
    TIME_IN_FORCE,
    TRIGGER_ROUNDS,
    WORKING_TYPES,
    OrderRequest,
)

if TYPE_CHECKING:
    from scenarios.venue.rest import Call


@attrs.frozen
class Condition:
    """The checked parameters of a conditional order (``POST /algoOrder``, or a legacy
    conditional order of COIN-M ``POST /order``)."""

    symbol: str
    side: str
    position_side: str
    order_type: str
    time_in_force: str
    working_type: str
    price_match: str
    close_position: bool
    reduce_only: bool
    price_protect: bool
    quantity: Decimal
    price: Decimal | None
    trigger: Decimal
    activate: Decimal | None
    callback: Decimal | None
    stp_mode: str
    client: str | None
    good_till_date: int
    response_type: str
    current: Decimal


class ConditionalOrders:
    """The engine's conditional orders (see the module docstring); a mixin of
    :class:`~scenarios.venue.futures.FuturesEngine`, whose state and order flow it uses."""

    # the engine's attributes and methods used here
    algos: dict[int, AlgoOrder]
    account_algos: dict[str, list[AlgoOrder]]
    open_algos: dict[int, AlgoOrder]
    algo_index: OpenIndex[AlgoOrder]
    waiting: dict[str, dict[int, AlgoOrder]]
    _client_algos: dict[tuple[str, str], list[AlgoOrder]]
    _checking_triggers: bool
    _next_algo_id: int
    name: str
    product: Any
    accounts: Any

    # --- bookkeeping ----------------------------------------------------------------------

    def _wait(self, algo: AlgoOrder) -> None:
        self.waiting.setdefault(algo.symbol, {})[algo.algo_id] = algo

    def _unwait(self, algo: AlgoOrder) -> None:
        bucket = self.waiting.get(algo.symbol)
        if bucket is not None:
            bucket.pop(algo.algo_id, None)
            if not bucket:
                del self.waiting[algo.symbol]

    def _algo_opened(self, algo: AlgoOrder) -> None:
        """Record a new Algo Service order (open, waiting for its trigger)."""
        self.algos[algo.algo_id] = algo
        self.account_algos.setdefault(algo.account, []).append(algo)
        self._client_algos.setdefault((algo.account, algo.client_algo_id), []).append(algo)
        self.open_algos[algo.algo_id] = algo
        self.algo_index.add(algo.account, algo.symbol, algo.algo_id, algo)
        self._wait(algo)

    def _algo_closed(self, algo: AlgoOrder) -> None:
        """An Algo Service order stopped waiting (triggered, cancelled or expired)."""
        self.open_algos.pop(algo.algo_id, None)
        self.algo_index.remove(algo.account, algo.symbol, algo.algo_id)
        self._unwait(algo)

    # --- conditions -----------------------------------------------------------------------

    def _trigger_price_now(self, algo: AlgoOrder) -> Decimal:
        market = self.market(algo.symbol)
        if algo.working_type == "MARK_PRICE":
            return self.mark_price(algo.symbol)
        return market.last_price

    def _would_trigger(self, order_type: str, side: str, trigger: Decimal, price: Decimal) -> bool:
        if order_type in ("STOP", "STOP_MARKET"):
            return price >= trigger if side == "BUY" else price <= trigger
        return price <= trigger if side == "BUY" else price >= trigger

    def _protected(self, algo: AlgoOrder) -> bool:
        """priceProtect: True while mark and last price are too far apart to trigger."""
        if not algo.price_protect:
            return False
        instrument = self.instrument(algo.symbol)
        limit = instrument.trigger_protect or Decimal("0.05")
        mark = self.mark_price(algo.symbol)
        last = self.market(algo.symbol).last_price
        return mark > 0 and abs(mark - last) / mark > limit

    def _trailing_stop(self, algo: AlgoOrder) -> Decimal:
        """The price a trailing stop fires at now (its tracked extreme moved back by the
        callback rate), on the tick grid; 0 before it is activated."""
        extreme = algo.trailing_extreme
        if not algo.activated or extreme is None:
            return ZERO
        rate = (algo.callback_rate or ZERO) / 100
        tick = self.instrument(algo.symbol).tick_size
        if algo.side == "SELL":
            return (extreme * (1 - rate) / tick).to_integral_value(ROUND_FLOOR) * tick
        return (extreme * (1 + rate) / tick).to_integral_value(ROUND_CEILING) * tick

    def _algo_fires(self, algo: AlgoOrder) -> bool:
        price = self._trigger_price_now(algo)
        if algo.order_type == "TRAILING_STOP_MARKET":
            rate = (algo.callback_rate or ZERO) / 100
            if not algo.activated:
                activation = algo.activate_price
                if activation is None or (
                    (algo.side == "SELL" and price >= activation)
                    or (algo.side == "BUY" and price <= activation)
                ):
                    algo.activated = True
                    algo.trailing_extreme = price
                else:
                    return False
            extreme = algo.trailing_extreme or price
            if algo.side == "SELL":
                extreme = max(extreme, price)
                algo.trailing_extreme = extreme
                fires = price <= extreme * (1 - rate)
            else:
                extreme = min(extreme, price)
                algo.trailing_extreme = extreme
                fires = price >= extreme * (1 + rate)
            if algo.legacy is not None:  # a legacy order shows where it would fire
                algo.legacy.stop_price = self._trailing_stop(algo)
            return fires and not self._protected(algo)
        if not self._would_trigger(algo.order_type, algo.side, algo.trigger_price, price):
            return False
        return not self._protected(algo)

    def _triggered_request(
        self, algo: AlgoOrder, quantity: Decimal, reduce_only: bool, client_order_id: str
    ) -> OrderRequest:
        """The regular order a conditional order becomes when it fires."""
        limit = algo.actual_type == "LIMIT"
        return OrderRequest(
            symbol=algo.symbol,
            side=algo.side,
            position_side=algo.position_side,
            type=algo.actual_type,
            time_in_force=algo.time_in_force if limit else "GTC",
            quantity=quantity,
            price=algo.price if limit and algo.price_match == "NONE" else None,
            price_match=algo.price_match,
            reduce_only=reduce_only,
            close_position=algo.close_position,
            client_order_id=client_order_id,
            stp_mode=algo.stp_mode,
            good_till_date=algo.good_till_date,
            orig_type=algo.order_type,
            stop_price=algo.trigger_price if algo.order_type != "TRAILING_STOP_MARKET" else ZERO,
            working_type=algo.working_type,
            price_protect=algo.price_protect,
            activate_price=algo.activate_price,
            price_rate=algo.callback_rate,
            algo_id=None if algo.legacy is not None else algo.algo_id,
        )

    def _trigger_quantity(self, algo: AlgoOrder, quantity: Decimal) -> tuple[Decimal, bool]:
        """``(quantity, reduceOnly)`` of the order a condition fires: a ``closePosition``
        order takes the whole position (0 when there is none)."""
        if not algo.close_position:
            return quantity, algo.reduce_only
        account = self.accounts.account(algo.account)
        cap = self._reducible(account, algo.symbol, algo.side, algo.position_side)
        return cap or ZERO, algo.position_side == "BOTH"

    def _trigger(self, algo: AlgoOrder, now_ms: int) -> None:
        """Turn a conditional order into a regular order (ALGO_UPDATE TRIGGERING, TRIGGERED,
        then the order's own events; REJECTED when the order is refused)."""
        if algo.legacy is not None:
            self._trigger_legacy(algo, now_ms)
            return
        algo.status = "TRIGGERING"
        algo.trigger_time = now_ms
        algo.update_time = now_ms
        self._algo_event(algo, now_ms)
        quantity, reduce_only = self._trigger_quantity(algo, algo.quantity)
        self._algo_closed(algo)
        if quantity <= 0:
            algo.status = "EXPIRED"
            algo.fail_reason = "Position is zero"
            self._algo_event(algo, now_ms)
            return
        request = self._triggered_request(algo, quantity, reduce_only, algo.client_algo_id)
        try:
            order = self._admit(algo.account, request, now_ms)
        except VenueError as error:
            algo.status = "REJECTED"
            algo.fail_reason = error.msg
            algo.update_time = now_ms
            self._algo_event(algo, now_ms)
            return
        algo.actual = order
        algo.status = "TRIGGERED"
        self._algo_event(algo, now_ms)
        self._start(order, now_ms)

    def _trigger_legacy(self, algo: AlgoOrder, now_ms: int) -> None:
        """A legacy conditional order (COIN-M ``/order``) fires: it keeps its ``orderId`` and
        ``type``; ``ORDER_TRADE_UPDATE`` shows it expiring as the conditional order
        (``er=8``, "the initial order has expired after the stop order is triggered"), then
        ``x=NEW`` as the order it trades as (``o`` LIMIT or MARKET, ``ot`` the conditional
        type), then its trades. Refused at the trigger (reduce-only with nothing to reduce,
        margin...) it just expires (``er=4`` for reduce-only); a ``closePosition`` order
        without a position expires with ``er=6`` (GTE condition unsatisfied)."""
        order = algo.legacy
        assert order is not None
        self._unwait(algo)
        algo.status = "TRIGGERED"
        algo.trigger_time = now_ms
        algo.update_time = now_ms
        quantity, reduce_only = self._trigger_quantity(algo, order.quantity)
        if quantity <= 0:
            order.stop = None
            self._end(order, "EXPIRED", now_ms, GTE_UNSATISFIED)
            return
        request = self._triggered_request(algo, quantity, reduce_only, order.client_order_id)
        try:
            self._admit(order.account, request, now_ms, existing=order)
        except VenueError as error:
            order.stop = None
            reason = REDUCE_ONLY_EXPIRED if error.code == errors.reduce_only_rejected.code else 0
            self._end(order, "EXPIRED", now_ms, reason)
            return
        order.status = "EXPIRED"
        order.expiry_reason = STOP_TRIGGERED
        order.update_time = now_ms
        self._order_event(order, "EXPIRED", now_ms)
        order.stop = None
        order.status = "NEW"
        order.expiry_reason = 0
        order.active_type = algo.actual_type
        self._start(order, now_ms)

    def _check_triggers(self, symbols: Iterable[str] | None, now_ms: int) -> None:
        """Trigger the conditional orders whose condition holds, until none does."""
        if self._checking_triggers:
            return
        self._checking_triggers = True
        try:
            wanted = None if symbols is None else set(symbols)
            for _ in range(TRIGGER_ROUNDS):
                names = [symbol for symbol in self.waiting if wanted is None or symbol in wanted]
                candidates = sorted(
                    (algo for symbol in names for algo in self.waiting[symbol].values()),
                    key=lambda item: item.algo_id,
                )
                fired = False
                for algo in candidates:
                    if algo.status != "NEW" or algo.algo_id not in self.waiting.get(
                        algo.symbol, {}
                    ):
                        continue  # ended by an earlier trigger of this round
                    if self._algo_fires(algo):
                        self._trigger(algo, now_ms)
                        fired = True
                if not fired:
                    break
        finally:
            self._checking_triggers = False

    def _after_activity(self, symbols: Iterable[str], now_ms: int) -> None:
        self._check_triggers(symbols, now_ms)

    def _expire_close_position_algos(
        self, account: FuturesAccount, symbol: str, now_ms: int
    ) -> None:
        """A ``closePosition`` order dies with its position (``EXPIRED``, GTE_GTC; a legacy
        one ``er=6``)."""
        for algo in list(self.waiting.get(symbol, {}).values()):
            if algo.account != account.key or not algo.close_position or algo.status != "NEW":
                continue
            cap = self._reducible(account, symbol, algo.side, algo.position_side)
            if cap is not None and cap > 0:
                continue
            if algo.legacy is not None:
                self._end(algo.legacy, "EXPIRED", now_ms, GTE_UNSATISFIED)
                continue
            algo.status = "EXPIRED"
            algo.update_time = now_ms
            self._algo_closed(algo)
            self._algo_event(algo, now_ms)

    # --- parsing --------------------------------------------------------------------------

    def parse_condition(self, call: Call, *, legacy: bool) -> Condition:
        """Read and check a conditional order's parameters.

        ``legacy``: COIN-M ``POST /order`` with the pre-migration names (``stopPrice``,
        ``activationPrice``, ``newClientOrderId``; STP default ``EXPIRE_MAKER`` as on
        ``/order``); otherwise ``POST /algoOrder`` (``algoType``, ``triggerPrice``,
        ``activatePrice``, ``clientAlgoId``; STP default ``NONE``).
        """
        get = call.request.get
        name = self.name
        key = self._key(call)
        if not legacy:
            algo_type = get("algoType")
            if algo_type is None:
                raise VenueError.mandatory_param_empty_or_malformed("algoType", product=name)
            if algo_type.upper() != "CONDITIONAL":
                raise VenueError.invalid_parameter("algoType", product=name)
        trigger_name = "stopPrice" if legacy else "triggerPrice"
        instrument = call.instrument()
        side = params.side(get, name)
        order_type = params.order_type(get, name)
        if order_type not in CONDITIONAL_TYPES:
            raise VenueError.invalid_order_type(product=name)
        position_side = params.position_side(get, name)
        self._check_position_side(key, position_side)
        time_in_force = params.defaulted_choice(
            get,
            "timeInForce",
            TIME_IN_FORCE[self.product],
            name,
            default="GTC",
            invalid=VenueError.invalid_tif,
        )
        working_type = params.defaulted_choice(
            get,
            "workingType",
            WORKING_TYPES,
            name,
            default="CONTRACT_PRICE",
            invalid=errors.invalid_working_type,
        )
        price_match = params.price_match(get, name)
        close_position = bool(params.boolean(get, "closePosition", name))
        reduce_only_raw = params.boolean(get, "reduceOnly", name)
        price_protect = bool(params.boolean(get, "priceProtect", name))
        quantity = params.decimal(get, "quantity", name)
        price = params.decimal(get, "price", name)
        trigger = params.decimal(get, trigger_name, name)
        activation_names = (
            ("activationPrice", "activatePrice") if legacy else ("activatePrice", "activationPrice")
        )
        activate = params.first(params.decimal(get, item, name) for item in activation_names)
        callback = params.decimal(get, "callbackRate", name)
        stp_mode = params.stp_mode(get, name, default="EXPIRE_MAKER" if legacy else "NONE")
        client = params.client_id(get, "newClientOrderId" if legacy else "clientAlgoId", name)
        response_type = params.response_type(get, name)
        if reduce_only_raw is not None and self.dual(key):
            raise VenueError.param_not_required("reduceOnly", product=name)
        if close_position:
            if order_type not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise VenueError.param_not_required("closePosition", product=name)
            if quantity is not None:
                raise errors.close_position_quantity(product=name)
            if reduce_only_raw is not None:
                raise errors.close_position_reduce_only(product=name)
            if (position_side, side) in (("LONG", "BUY"), ("SHORT", "SELL")):
                raise VenueError.optional_params_bad_combo(product=name)
            quantity = ZERO
        elif quantity is None:
            raise VenueError.mandatory_param_empty_or_malformed("quantity", product=name)
        else:
            params.check_quantity(quantity, instrument, name, market=order_type.endswith("MARKET"))
        priced = order_type in ("STOP", "TAKE_PROFIT")
        params.check_price_match(price_match, price, name, priced=priced)
        params.check_price_sent(price, price_match, name, priced=priced)
        if price is not None:
            params.check_price(price, instrument, name)
        market = self.market(instrument.symbol)
        current = (
            self.mark_price(instrument.symbol)
            if working_type == "MARK_PRICE"
            else market.last_price
        )
        if order_type == "TRAILING_STOP_MARKET":
            if callback is None:
                raise VenueError.mandatory_param_empty_or_malformed("callbackRate", product=name)
            if not CALLBACK_RATE_MIN <= callback <= CALLBACK_RATE_MAX or callback % Decimal("0.1"):
                raise VenueError.invalid_parameter("callbackRate", product=name)
            if activate is not None:
                params.check_price(activate, instrument, name, name=activation_names[0])
                if (side == "BUY" and activate >= current) or (
                    side == "SELL" and activate <= current
                ):
                    raise errors.would_immediately_trigger(product=name)
            trigger = activate if activate is not None else ZERO
        else:
            if callback is not None:
                raise VenueError.param_not_required("callbackRate", product=name)
            if trigger is None:
                raise VenueError.mandatory_param_empty_or_malformed(trigger_name, product=name)
            params.check_price(trigger, instrument, name, name=trigger_name)
            if self._would_trigger(order_type, side, trigger, current):
                raise errors.would_immediately_trigger(product=name)
        good_till_date = params.good_till_date(get, time_in_force, call.now_ms, name)
        return Condition(
            symbol=instrument.symbol,
            side=side,
            position_side=position_side,
            order_type=order_type,
            time_in_force="GTE_GTC" if close_position else time_in_force,
            working_type=working_type,
            price_match=price_match,
            close_position=close_position,
            reduce_only=bool(reduce_only_raw) or close_position,
            price_protect=price_protect,
            quantity=quantity,
            price=price,
            trigger=trigger,
            activate=activate if order_type == "TRAILING_STOP_MARKET" else None,
            callback=callback,
            stp_mode=stp_mode,
            client=client,
            good_till_date=good_till_date,
            response_type=response_type,
            current=current,
        )

    def _condition_algo(
        self, condition: Condition, account: str, client: str, now_ms: int
    ) -> AlgoOrder:
        """The waiting condition of ``condition`` (a new ``algoId``)."""
        self._next_algo_id += 1
        trailing = condition.order_type == "TRAILING_STOP_MARKET"
        return AlgoOrder(
            algo_id=self._next_algo_id,
            account=account,
            client_algo_id=client,
            symbol=condition.symbol,
            side=condition.side,
            position_side=condition.position_side,
            order_type=condition.order_type,
            time_in_force=condition.time_in_force,
            quantity=condition.quantity,
            price=condition.price or ZERO,
            trigger_price=condition.trigger,
            create_time=now_ms,
            update_time=now_ms,
            working_type=condition.working_type,
            price_match=condition.price_match,
            close_position=condition.close_position,
            price_protect=condition.price_protect,
            reduce_only=condition.reduce_only,
            activate_price=condition.activate,
            callback_rate=condition.callback,
            stp_mode=condition.stp_mode,
            good_till_date=condition.good_till_date,
            # without an activation price a trailing stop tracks from the current price
            activated=trailing and condition.activate is None,
            trailing_extreme=condition.current if condition.activate is None else None,
        )

    def parse_algo(self, call: Call) -> AlgoOrder:
        """Read, check and build a conditional order (``POST /algoOrder``)."""
        name = self.name
        key = self._key(call)
        condition = self.parse_condition(call, legacy=False)
        client = condition.client
        if client is not None and any(
            algo.is_open for algo in self._client_algos.get((key, client), ())
        ):
            raise errors.duplicate_client_order_id(product=name)
        if self.algo_index.count(key) >= MAX_OPEN_ALGO_ORDERS:
            raise errors.max_stop_orders(product=name)
        self._check_open_limits(key, condition.symbol)
        return self._condition_algo(condition, key, client or self._new_client_id(), call.now_ms)

    def legacy_conditional(self, call: Call, *, record: bool = True) -> FuturesOrder:
        """A legacy conditional order of COIN-M ``POST /order`` (``/batchOrders``, ws-dapi
        ``order.place``): STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET or
        TRAILING_STOP_MARKET with ``stopPrice``/``activationPrice``, as Binance still takes
        them on COIN-M until a later, separately announced date (``binance-protocol.md``
        4.3). It is a regular order (an ``orderId``, ``x=NEW``, counted among the open
        orders, cancelled by ``DELETE /order``) whose condition waits with the Algo Service
        orders; no margin is checked before it fires (see :meth:`_trigger_legacy`).
        ``record=False`` only checks it (``/order/test``).
        """
        key = self._key(call)
        condition = self.parse_condition(call, legacy=True)
        if condition.client is not None:
            self._check_client_id(key, condition.client)
        self._check_open_limits(key, condition.symbol)
        now_ms = call.now_ms
        order = FuturesOrder(
            order_id=self._new_order_id() if record else 0,
            account=key,
            symbol=condition.symbol,
            client_order_id=condition.client or self._new_client_id(),
            side=condition.side,
            position_side=condition.position_side,
            type=condition.order_type,
            orig_type=condition.order_type,
            time_in_force=condition.time_in_force,
            quantity=condition.quantity,
            price=condition.price or ZERO,
            time=now_ms,
            update_time=now_ms,
            stop_price=ZERO if condition.order_type == TRAILING else condition.trigger,
            reduce_only=condition.reduce_only,
            close_position=condition.close_position,
            working_type=condition.working_type,
            price_protect=condition.price_protect,
            price_match=condition.price_match,
            stp_mode=condition.stp_mode,
            activate_price=condition.activate,
            price_rate=condition.callback,
        )
        if not record:
            return order
        algo = self._condition_algo(condition, key, order.client_order_id, now_ms)
        algo.legacy = order
        order.stop = algo
        if algo.activated:
            order.stop_price = self._trailing_stop(algo)
        self._record(order)
        self._wait(algo)
        self._order_event(order, "NEW", now_ms)
        self._after_activity({order.symbol}, now_ms)
        return order

    def _referenced_algo(self, call: Call) -> AlgoOrder | None:
        """The account's conditional order that ``algoId`` or ``clientAlgoId`` names (one
        must be sent: -1102), None when there is none."""
        key = self._key(call)
        algo_id = call.integer("algoId")
        client = call.request.get("clientAlgoId")
        if algo_id is None and client is None:
            raise VenueError.either_param_required("algoId", "clientAlgoId", product=self.name)
        return self._find_algo(key, algo_id, client)

    def _find_algo(self, account: str, algo_id: int | None, client: str | None) -> AlgoOrder | None:
        if algo_id is not None:
            algo = self.algos.get(algo_id)
            return algo if algo is not None and algo.account == account else None
        assert client is not None
        return latest_open(self._client_algos.get((account, client)))

    # --- REST: algo orders ----------------------------------------------------------------

    def handle_new_algo(self, call: Call) -> Any:
        """``POST /algoOrder`` (and WS ``algoOrder.place``)."""
        algo = self.parse_algo(call)
        self._algo_opened(algo)
        body = algo_result(algo, self.instrument(algo.symbol))
        self._algo_event(algo, call.now_ms)
        self._after_activity({algo.symbol}, call.now_ms)
        return body

    def _cancel_algo(self, algo: AlgoOrder, now_ms: int) -> None:
        algo.status = "CANCELED"
        algo.update_time = now_ms
        self._algo_closed(algo)
        self._algo_event(algo, now_ms)

    def handle_cancel_algo(self, call: Call) -> Any:
        """``DELETE /algoOrder`` (and WS ``algoOrder.cancel``)."""
        algo = self._referenced_algo(call)
        if algo is None or algo.status != "NEW":
            raise VenueError.cancel_rejected(product=self.name)
        self._cancel_algo(algo, call.now_ms)
        return {
            "algoId": algo.algo_id,
            "clientAlgoId": algo.client_algo_id,
            "code": "200",
            "msg": "success",
        }

    def handle_cancel_all_algo(self, call: Call) -> Any:
        """``DELETE /algoOpenOrders``."""
        key = self._key(call)
        instrument = call.instrument()
        for algo in list(self.algo_index.of(key, instrument.symbol)):
            if algo.status == "NEW":
                self._cancel_algo(algo, call.now_ms)
        return {"code": 200, "msg": CANCEL_ALL_DONE}

    def handle_query_algo(self, call: Call) -> Any:
        """``GET /algoOrder``."""
        algo = self._referenced_algo(call)
        if algo is None:
            raise VenueError.no_such_order(product=self.name)
        return algo_query(algo, self.instrument(algo.symbol))

    def handle_open_algos(self, call: Call) -> Any:
        """``GET /openAlgoOrders``: ``algoType``, ``symbol``, ``algoId`` filters."""
        key = self._key(call)
        symbols = self._symbols_of(call, required=False)
        algo_id = call.integer("algoId")
        algo_type = call.request.get("algoType")
        if algo_type is not None and algo_type.upper() != "CONDITIONAL":
            raise VenueError.invalid_parameter("algoType", product=self.name)
        rows = sorted(self.algo_index.of_account(key, symbols), key=lambda item: item.algo_id)
        return [
            algo_query(algo, self.instrument(algo.symbol))
            for algo in rows
            if algo_id is None or algo.algo_id == algo_id
        ]

    def handle_all_algos(self, call: Call) -> Any:
        """``GET /allAlgoOrders``: ``symbol``, from ``algoId`` or in a time window."""
        key = self._key(call)
        symbols = self._symbols_of(call, required=True)
        assert symbols is not None
        from_id = call.integer("algoId")
        start, end = call.times()
        params.check_window(start, end, self.name)
        limit = params.query_limit(call, 100, 100)
        rows = [
            algo
            for algo in self.account_algos.get(key, ())
            if algo.symbol in symbols
            and (from_id is None or algo.algo_id >= from_id)
            and params.within(algo.create_time, start, end)
        ]
        rows = params.page(rows, limit, from_start=from_id is not None or start is not None)
        return [algo_query(algo, self.instrument(algo.symbol)) for algo in rows]
