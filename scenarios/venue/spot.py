"""The Spot trading engine: orders, order lists, balances and user-data events, as Binance.

:class:`SpotEngine` owns every spot account (one per API key, funded from
``VenueConfig.balances["spot"]``) and every spot order. Orders trade on the venue's
:class:`~scenarios.venue.market.MarketState` books, against background liquidity and against
each other, with Binance's rules (``binance-protocol.md`` 5.1):

* **Balances.** A new order locks what it may spend: a BUY locks ``price * quantity`` of the
  quote asset (a market BUY the cost of walking the book, or its ``quoteOrderQty``), a SELL
  locks its quantity of the base asset. Fills are paid from the lock; what is left is
  released when the order ends. An order going on the book keeps only what it can still
  spend (a BUY that took at better prices than its own rests with ``remaining * price``),
  and quantity that self-trade prevention expires releases its share. The two legs of an OCO
  pair spend the same funds, so the pair locks once (the larger of the two needs).
* **Commissions** are charged in the asset received, at the account's taker rate for taking
  fills and its maker rate for resting ones, rounded up to the symbol's commission precision
  (see :func:`~scenarios.venue.spot_model.commission_for`).
* **Matching** goes through :meth:`MarketState.match`, with self-trade prevention decided by
  the taker's ``selfTradePreventionMode`` when it meets a resting order of the same account
  (``stp_faq.md``): TRADE_PREVENTION reports (not trades: ``l``/``L``/``Y`` zero, the
  would-be execution in ``pl``/``pL``/``pY``), ``EXPIRED_IN_MATCH``, prevented quantities and
  ``preventedMatches`` in the response.
* **Stops** (``STOP_LOSS[_LIMIT]``, ``TAKE_PROFIT[_LIMIT]``) wait for the last price: after
  every trade of the symbol they are checked in trade order, trailing stops following the best
  price since placement (or since their ``stopPrice`` was reached). A triggered stop keeps
  its type, gets its ``workingTime``, is reported ``NEW`` again (now working) and executes as a
  market order or as a limit order at its price.
* **Order lists**: OCO (one leg trading or triggering expires the other), OTO (the pending
  order is placed once the working order is filled; cancelling either cancels both) and OTOCO.
* **User data**: every change is published with ``venue.user_data.publish``: one
  ``executionReport`` per change (every field of ``binance-protocol.md`` 9.1), ``listStatus``
  for lists, and one ``outboundAccountPosition`` per account with the assets that changed,
  after the reports of one request.

Fills of resting orders by background takers arrive in :meth:`SpotEngine.on_market` as
:class:`~scenarios.venue.market.MakerFill`. The venue hands those events to the public feeds
right after this engine, so anything that would change the book in response (stops that
trigger, OTO pending orders that are placed) is done in :meth:`SpotEngine.on_time`, which
follows every activity tick; the public feeds thus see book changes in update-id order.

The REST and WS-API handlers are in :mod:`scenarios.venue.spot_api`; payloads in
:mod:`scenarios.venue.spot_json`; parameter checks and filters in
:mod:`scenarios.venue.spot_params`.
"""

from __future__ import annotations

import contextlib
import random
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from scenarios.venue import spot_json
from scenarios.venue.instruments import Instrument, Product
from scenarios.venue.market import BookSide, MakerFill, MarketState, MatchResult, Side, StpAction
from scenarios.venue.market import Trade as MarketTrade
from scenarios.venue.spot_model import (
    MARKET_TYPES,
    NO_LIST,
    NOT_WORKING,
    PRICED_TYPES,
    STOP_TYPES,
    Account,
    Balance,
    Fill,
    OrderList,
    SpotOrder,
    commission_for,
    floor_to_step,
)
from scenarios.venue.spot_params import (
    OrderSpec,
    check_filters,
    filter_failure,
    rejected,
    trailing_factor,
)

if TYPE_CHECKING:
    from scenarios.venue.rest import Route
    from scenarios.venue.trading import WsMethod

SPOT = Product.SPOT
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
WOULD_TAKE = "Order would immediately match and take."
WOULD_TRIGGER = "Order would trigger immediately."
DUPLICATE = "Duplicate order sent."
#: ``r`` of a rejected cancel-replace order, by the -2010 message.
_REJECT_REASONS = {
    INSUFFICIENT_BALANCE: "INSUFFICIENT_BALANCES",
    WOULD_TRIGGER: "STOP_PRICE_WOULD_TRIGGER_IMMEDIATELY",
    WOULD_TAKE: "WOULD_MATCH_IMMEDIATELY",
    "The relationship of the prices for the orders is not correct.": "OCO_BAD_PRICES",
}
_CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
_CLIENT_ID_LENGTH = 22
#: Levels walked to estimate what a market order will cost.
_ESTIMATE_LEVELS = 1000
#: Rounds of stops triggering stops before the engine stops chasing them in one request.
_MAX_TRIGGER_ROUNDS = 50


@attrs.define
class _Batch:
    """The user-data events of one request (or one market callback), published at its end."""

    now: int
    events: list[tuple[str, dict[str, Any]]] = attrs.Factory(list)
    touched: dict[str, dict[str, None]] = attrs.Factory(dict)


@attrs.define
class Run:
    """What one order did within one request: its fills and prevented matches (FULL)."""

    fills: list[Fill] = attrs.Factory(list)
    prevented_matches: list[dict[str, Any]] = attrs.Factory(list)


class SpotEngine:
    """The venue's Spot engine (see the module docstring)."""

    def __init__(self, venue: Any) -> None:
        self.venue = venue
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, SpotOrder] = {}
        self.order_lists: dict[int, OrderList] = {}
        self.fills: list[Fill] = []
        #: Commission collected, per asset (the venue's side of balance conservation).
        self.commissions: dict[str, Decimal] = {}
        self._orders_of: dict[str, list[SpotOrder]] = {}
        #: Orders and fills by (account, symbol), oldest first (allOrders, myTrades).
        self._symbol_orders: dict[tuple[str, str], list[SpotOrder]] = {}
        self._symbol_fills: dict[tuple[str, str], list[Fill]] = {}
        self._fills_of: dict[str, list[Fill]] = {}
        self._fills_by_order: dict[int, list[Fill]] = {}
        self._list_of: dict[int, OrderList] = {}
        self._lists_of: dict[str, list[OrderList]] = {}
        #: EXECUTING lists by account (MAX_NUM_ORDER_LISTS, openOrderList).
        self._open_lists: dict[str, dict[int, OrderList]] = {}
        #: Lists by (account, listClientOrderId), oldest first.
        self._lists_by_client: dict[tuple[str, str], list[OrderList]] = {}
        self._open: dict[str, dict[int, SpotOrder]] = {}
        #: Open orders by (account, symbol) (MAX_NUM_ORDERS, openOrders).
        self._open_of: dict[tuple[str, str], dict[int, SpotOrder]] = {}
        #: Orders by (account, symbol, clientOrderId), oldest first.
        self._by_client: dict[tuple[str, str, str], list[SpotOrder]] = {}
        self._next_order_id = 1
        self._next_list_id = 1
        self._next_execution_id = 1
        self._next_prevented_id: dict[str, int] = {}
        self._rng = random.Random(f"{venue.config.seed}:spot-engine")
        self._batch: _Batch | None = None
        self._closing_list: OrderList | None = None
        # Prices of this engine's own trades, checked against stops before a request ends.
        self._fresh_prices: dict[str, list[Decimal]] = {}
        # Work deferred from market callbacks to on_time (see the module docstring).
        self._in_callback = False
        self._background_prices: dict[str, list[Decimal]] = {}
        self._deferred: list[Callable[[int], None]] = []
        self._late_feed: list[tuple[str, list[Any]]] = []

    # --- the engine contract -------------------------------------------------------------

    def routes(self) -> Mapping[tuple[str, str], Route]:
        """The Spot trading and account endpoints (:mod:`scenarios.venue.spot_api`)."""
        from scenarios.venue.spot_api import rest_routes

        return rest_routes(self)

    def ws_api_methods(self) -> Mapping[str, WsMethod]:
        """The Spot WS-API trading and account methods."""
        from scenarios.venue.spot_api import ws_methods

        return ws_methods(self)

    def control_actions(self) -> Mapping[str, Callable[[dict[str, Any]], Any]]:
        """``fund``, ``fee_tier``, ``orders``, ``fills``, ``balances``."""
        from scenarios.venue.spot_api import control_actions

        return control_actions(self)

    def on_market(self, symbol: str, events: Sequence[Any]) -> None:
        """Background activity traded: apply fills of resting orders, note prices for stops.

        Book-changing reactions wait for :meth:`on_time` (the feeds see these events next).
        """
        fills = [event for event in events if isinstance(event, MakerFill)]
        prices = [event.price for event in events if isinstance(event, MarketTrade)]
        if prices and self._has_contingent(symbol):
            self._background_prices.setdefault(symbol, []).extend(prices)
        if not fills:
            return
        now = self.venue.clock.now_ms()
        self._in_callback = True
        try:
            with self.batch(now):
                for fill in fills:
                    if isinstance(fill.order, SpotOrder) and fill.order.is_open:
                        self._maker_traded(fill.order, fill.trade, fill.remaining, now)
        finally:
            self._in_callback = False

    def on_time(self, now_ms: int) -> None:
        """Publish book changes held back during market callbacks; run stops and OTO legs."""
        late, self._late_feed = self._late_feed, []
        for symbol, events in late:
            self.venue.feeds.on_market(SPOT, symbol, events)
        if not self._deferred and not self._background_prices:
            return
        with self.batch(now_ms):
            deferred, self._deferred = self._deferred, []
            for action in deferred:
                action(now_ms)
            prices, self._background_prices = self._background_prices, {}
            for symbol, seen in prices.items():
                self._run_triggers(symbol, seen, now_ms)

    # --- lookups -------------------------------------------------------------------------

    def account(self, api_key: str) -> Account:
        """The account of ``api_key``, opened with the configured starting balances."""
        found = self.accounts.get(api_key)
        if found is None:
            initial = self.venue.config.balances.get(SPOT.value, {})
            found = Account(
                api_key,
                {asset: Balance(Decimal(amount)) for asset, amount in initial.items()},
                update_time_ms=self.venue.clock.now_ms(),
            )
            self.accounts[api_key] = found
        return found

    def instrument(self, symbol: str) -> Instrument:
        return self.venue.instruments[SPOT][symbol]

    def market(self, symbol: str) -> MarketState:
        return self.venue.markets[(SPOT, symbol)]

    def orders_of(self, api_key: str) -> list[SpotOrder]:
        """Every order of an account, oldest first."""
        return self._orders_of.get(api_key, [])

    def symbol_orders(self, api_key: str, symbol: str) -> list[SpotOrder]:
        """An account's orders on one symbol, by order id."""
        return self._symbol_orders.get((api_key, symbol), [])

    def fills_of(self, api_key: str) -> list[Fill]:
        """Every fill of an account, oldest first."""
        return self._fills_of.get(api_key, [])

    def symbol_fills(self, api_key: str, symbol: str) -> list[Fill]:
        """An account's fills on one symbol, oldest first."""
        return self._symbol_fills.get((api_key, symbol), [])

    def fills_of_order(self, order_id: int) -> list[Fill]:
        """The fills of one order, oldest first."""
        return self._fills_by_order.get(order_id, [])

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[SpotOrder]:
        """An account's open orders (pending OTO legs included), by order id."""
        symbols = [symbol] if symbol is not None else sorted(self._open)
        found = [
            order for name in symbols for order in self._open_of.get((api_key, name), {}).values()
        ]
        return sorted(found, key=lambda order: order.order_id)

    def lists_of(self, api_key: str) -> list[OrderList]:
        """Every order list of an account, by list id."""
        return self._lists_of.get(api_key, [])

    def open_lists(self, api_key: str) -> list[OrderList]:
        """An account's EXECUTING order lists, by list id."""
        return list(self._open_lists.get(api_key, {}).values())

    def list_of(self, order: SpotOrder) -> OrderList | None:
        return self._list_of.get(order.order_id)

    def find_order(
        self, api_key: str, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> SpotOrder | None:
        """An account's order by ``orderId`` and/or ``origClientOrderId`` (both must match)."""
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is None or order.account != api_key or order.symbol != symbol:
                return None
            if client_order_id is not None and client_order_id != order.client_order_id:
                return None
            return order
        if client_order_id is None:
            return None
        candidates = self._by_client.get((api_key, symbol, client_order_id), [])
        if not candidates:
            return None
        open_ones = [order for order in candidates if order.is_open]
        return (open_ones or candidates)[-1]

    def find_list(
        self, api_key: str, order_list_id: int | None, list_client_order_id: str | None
    ) -> OrderList | None:
        if order_list_id is not None:
            found = self.order_lists.get(order_list_id)
            if found is None or found.account != api_key:
                return None
            if (
                list_client_order_id is not None
                and found.list_client_order_id != list_client_order_id
            ):
                return None
            return found
        if list_client_order_id is None:
            return None
        matches = self._lists_by_client.get((api_key, list_client_order_id))
        return matches[-1] if matches else None

    def new_client_id(self) -> str:
        """A client order id like the ones Binance generates (22 letters and digits)."""
        return "".join(self._rng.choices(_CLIENT_ID_ALPHABET, k=_CLIENT_ID_LENGTH))

    def next_execution_id(self) -> int:
        execution_id = self._next_execution_id
        self._next_execution_id += 1
        return execution_id

    # --- events ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self, now: int) -> Iterator[_Batch]:
        """Group one request's changes; publish its events (and chase its stops) at the end."""
        if self._batch is not None:
            yield self._batch
            return
        current = self._batch = _Batch(now)
        try:
            yield current
            self._drain_triggers(now)
        finally:
            self._batch = None
            self._flush(current)

    def _flush(self, batch: _Batch) -> None:
        publish = self.venue.user_data.publish
        for account, payload in batch.events:
            publish(SPOT, account, payload)
        for api_key, assets in batch.touched.items():
            account = self.accounts[api_key]
            publish(
                SPOT,
                api_key,
                spot_json.account_position(account, list(assets), event_time=batch.now),
            )

    def _emit(self, account: str, payload: dict[str, Any]) -> None:
        if self._batch is None:
            self.venue.user_data.publish(SPOT, account, payload)
        else:
            self._batch.events.append((account, payload))

    def emit_balance_update(self, account: Account, asset: str, delta: Decimal, now: int) -> None:
        """A ``balanceUpdate`` (deposit/withdrawal) of ``delta`` that is already applied."""
        self._emit(
            account.api_key,
            spot_json.balance_update(asset, delta, event_time=now, clear_time=now),
        )
        self._touch(account, asset, now)

    def _touch(self, account: Account, asset: str, now: int) -> None:
        account.update_time_ms = now
        if self._batch is not None:
            self._batch.touched.setdefault(account.api_key, {})[asset] = None

    def _report(self, order: SpotOrder, execution_type: str, now: int, **fields: Any) -> dict:
        if not self.venue.user_data.listening(SPOT, order.account):
            # Nobody hears it: spend the execution id (ids stay what they would have been)
            # but skip building an event no one receives.
            self.next_execution_id()
            return {}
        fields.setdefault("on_book", self.market(order.symbol).resting(order) is not None)
        payload = spot_json.execution_report(
            order,
            event_time=now,
            transact_time=now,
            execution_type=execution_type,
            execution_id=self.next_execution_id(),
            **fields,
        )
        self._emit(order.account, payload)
        return payload

    def _report_new(self, order: SpotOrder, now: int) -> None:
        """``x=NEW``: the order was accepted, or (a stop) triggered, or (an OTO leg) placed."""
        self._report(order, "NEW", now, on_book=_goes_on_book(order))

    def _report_trade(self, order: SpotOrder, fill: Fill, now: int, *, on_book: bool) -> dict:
        """``x=TRADE`` for one of the order's fills (maker or taker, as the fill says)."""
        return self._report(
            order,
            "TRADE",
            now,
            last_quantity=fill.quantity,
            last_price=fill.price,
            commission=fill.commission,
            commission_asset=fill.commission_asset,
            trade_id=fill.trade_id,
            is_maker=fill.is_maker,
            on_book=on_book,
        )

    def _report_prevented(
        self,
        order: SpotOrder,
        other: SpotOrder,
        prevented: Decimal,
        prevention: Any,
        now: int,
        *,
        on_book: bool,
    ) -> dict:
        """``x=TRADE_PREVENTION`` for ``order``, whose match with ``other`` was prevented."""
        return self._report(
            order,
            "TRADE_PREVENTION",
            now,
            last_prevented=prevented,
            counter_order_id=other.order_id,
            counter_symbol=other.symbol,
            prevented_execution=(prevention.quantity, prevention.price),
            on_book=on_book,
        )

    def _list_status(self, order_list: OrderList, now: int) -> None:
        self._emit(order_list.account, spot_json.list_status_event(order_list, event_time=now))

    def _feed(self, symbol: str, events: list[Any]) -> None:
        if not events:
            return
        if self._in_callback:
            self._late_feed.append((symbol, events))
        else:
            self.venue.feeds.on_market(SPOT, symbol, events)

    # --- balances -------------------------------------------------------------------------

    def _lock(self, order: SpotOrder, asset: str, amount: Decimal, now: int) -> None:
        account = self.accounts[order.account]
        order.lock_asset = asset
        if amount <= 0:
            return
        account.lock(asset, amount)
        order.locked += amount
        self._touch(account, asset, now)

    def _unlock(self, api_key: str, asset: str, amount: Decimal, now: int) -> None:
        """Give ``amount`` (positive) of an account's locked ``asset`` back to its free balance."""
        account = self.accounts[api_key]
        account.unlock(asset, amount)
        self._touch(account, asset, now)

    def _release(self, order: SpotOrder, now: int) -> None:
        if order.locked > 0:
            self._unlock(order.account, order.lock_asset, order.locked, now)
            order.locked = Decimal(0)

    def _pay(self, order: SpotOrder, asset: str, amount: Decimal, now: int) -> None:
        """Spend ``amount`` for ``order``: from its lock first, the rest from free."""
        account = self.accounts[order.account]
        balance = account.balance(asset)
        from_lock = min(order.locked, amount) if order.lock_asset == asset else Decimal(0)
        balance.locked -= from_lock
        order.locked -= from_lock
        balance.free -= amount - from_lock
        self._touch(account, asset, now)

    def _credit(self, account: Account, asset: str, amount: Decimal, now: int) -> None:
        account.balance(asset).free += amount
        self._touch(account, asset, now)

    def requirement(
        self,
        instrument: Instrument,
        *,
        side: str,
        order_type: str,
        quantity: Decimal | None,
        quote_order_qty: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
    ) -> tuple[str, Decimal]:
        """The asset and amount an order locks when placed."""
        market = self.market(instrument.symbol)
        if side == "SELL":
            if quantity is not None:
                return instrument.base_asset, quantity
            assert quote_order_qty is not None
            bids, _ = market.top(_ESTIMATE_LEVELS)
            return instrument.base_asset, _base_for_quote(bids, quote_order_qty, instrument)
        if order_type in PRICED_TYPES:
            assert price is not None
            assert quantity is not None
            return instrument.quote_asset, price * quantity
        if quote_order_qty is not None:
            return instrument.quote_asset, quote_order_qty
        assert quantity is not None
        if order_type == "MARKET":
            _, asks = market.top(_ESTIMATE_LEVELS)
            return instrument.quote_asset, _cost_of(asks, quantity)
        reference = stop_price if stop_price else market.last_price
        return instrument.quote_asset, reference * quantity

    def spec_requirement(self, spec: OrderSpec) -> tuple[str, Decimal]:
        return self.requirement(
            spec.instrument,
            side=spec.side,
            order_type=spec.type,
            quantity=spec.quantity,
            quote_order_qty=spec.quote_order_qty,
            price=spec.price,
            stop_price=spec.stop_price,
        )

    def _order_requirement(self, order: SpotOrder) -> tuple[str, Decimal]:
        return self.requirement(
            self.instrument(order.symbol),
            side=order.side,
            order_type=order.type,
            quantity=order.remaining if order.quote_order_qty == 0 else None,
            quote_order_qty=order.quote_order_qty or None,
            price=order.price or None,
            stop_price=order.stop_price or None,
        )

    # --- validation -----------------------------------------------------------------------

    def count_open(self, api_key: str, symbol: str) -> tuple[int, int]:
        """(open orders, open stop orders) of an account on a symbol."""
        open_orders = self._open_of.get((api_key, symbol), {})
        algo = sum(1 for order in open_orders.values() if order.type in STOP_TYPES)
        return len(open_orders), algo

    def count_open_lists(self, api_key: str, symbol: str) -> int:
        """An account's EXECUTING order lists on a symbol (MAX_NUM_ORDER_LISTS)."""
        return sum(
            1
            for order_list in self._open_lists.get(api_key, {}).values()
            if order_list.symbol == symbol
        )

    def _rename(self, order: SpotOrder, client_order_id: str) -> None:
        """Give an order a new clientOrderId, keeping the index in step."""
        old = self._by_client.get((order.account, order.symbol, order.client_order_id))
        if old is not None and order in old:
            old.remove(order)
        order.client_order_id = client_order_id
        self._by_client.setdefault((order.account, order.symbol, client_order_id), []).append(order)

    def check_client_id(self, api_key: str, symbol: str, client_order_id: str | None) -> None:
        """``-2010`` "Duplicate order sent." when an open order already has the id."""
        if client_order_id is None:
            return
        for order in self._by_client.get((api_key, symbol, client_order_id), ()):
            if order.is_open:
                raise rejected(DUPLICATE)

    def validate(self, api_key: str, spec: OrderSpec, now: int, *, adding: int = 1) -> None:
        """Filters, duplicates, trigger direction and LIMIT_MAKER crossing of a new order."""
        symbol = spec.instrument.symbol
        market = self.market(symbol)
        open_orders, open_algo = self.count_open(api_key, symbol)
        check_filters(
            spec,
            average_price=market.avg_price(now).price,
            open_orders=open_orders,
            open_algo_orders=open_algo,
            adding=adding,
        )
        self.check_client_id(api_key, symbol, spec.client_order_id)
        if (
            spec.is_stop
            and spec.stop_price is not None
            and _would_trigger(spec.side, spec.type, spec.stop_price, market.last_price)
        ):
            raise rejected(WOULD_TRIGGER)
        if spec.type == "LIMIT_MAKER":
            assert spec.price is not None
            if _would_take(market, spec.side, spec.price):
                raise rejected(WOULD_TAKE)

    def check_funds(self, api_key: str, asset: str, amount: Decimal) -> None:
        if amount > self.account(api_key).free(asset):
            raise rejected(INSUFFICIENT_BALANCE)

    # --- placing --------------------------------------------------------------------------

    def place(self, api_key: str, spec: OrderSpec, now: int) -> tuple[SpotOrder, Run]:
        """Place a standalone order; Binance's errors when it is refused.

        Returns:
            The order (its state after matching) and what it did in this request.
        """
        self.account(api_key)
        self.validate(api_key, spec, now)
        asset, amount = self.spec_requirement(spec)
        self.check_funds(api_key, asset, amount)
        run = Run()
        with self.batch(now):
            order = self.create_order(api_key, spec, now)
            self._lock(order, asset, amount, now)
            self.start(order, now, run)
        return order, run

    def create_order(
        self,
        api_key: str,
        spec: OrderSpec,
        now: int,
        *,
        order_list_id: int = NO_LIST,
        pending: bool = False,
    ) -> SpotOrder:
        """Record a new order (nothing is locked, reported or matched yet)."""
        order = self.build_order(
            api_key,
            spec,
            now,
            order_id=self._next_order_id,
            order_list_id=order_list_id,
            pending=pending,
        )
        self._next_order_id += 1
        self.orders[order.order_id] = order
        self._orders_of.setdefault(api_key, []).append(order)
        self._symbol_orders.setdefault((api_key, order.symbol), []).append(order)
        self._by_client.setdefault((api_key, order.symbol, order.client_order_id), []).append(order)
        self._open.setdefault(order.symbol, {})[order.order_id] = order
        self._open_of.setdefault((api_key, order.symbol), {})[order.order_id] = order
        return order

    def build_order(
        self,
        api_key: str,
        spec: OrderSpec,
        now: int,
        *,
        order_id: int,
        order_list_id: int = NO_LIST,
        pending: bool = False,
    ) -> SpotOrder:
        """A :class:`SpotOrder` for ``spec`` (not recorded anywhere)."""
        working = not (spec.is_stop or pending)
        quantity = spec.quantity if spec.quantity is not None else Decimal(0)
        return SpotOrder(
            account=api_key,
            symbol=spec.instrument.symbol,
            order_id=order_id,
            client_order_id=spec.client_order_id or self.new_client_id(),
            side=spec.side,
            type=spec.type,
            time_in_force=spec.time_in_force,
            quantity=quantity,
            price=spec.price if spec.price is not None else Decimal(0),
            stop_price=spec.stop_price if spec.stop_price is not None else Decimal(0),
            trailing_delta=spec.trailing_delta,
            iceberg_qty=spec.iceberg_qty if spec.iceberg_qty is not None else Decimal(0),
            quote_order_qty=(
                spec.quote_order_qty if spec.quote_order_qty is not None else Decimal(0)
            ),
            strategy_id=spec.strategy_id,
            strategy_type=spec.strategy_type,
            stp_mode=spec.stp_mode,
            order_list_id=order_list_id,
            time_ms=now,
            update_time_ms=now,
            working_time_ms=now if working else NOT_WORKING,
            status="PENDING_NEW" if pending else "NEW",
            original_quantity=quantity,
        )

    def start(self, order: SpotOrder, now: int, run: Run) -> None:
        """Report a new order and set it going: armed if a stop, else matched and rested.

        A stop is armed before its NEW report, so a trailing stop's report carries ``D``.
        """
        if order.type in STOP_TYPES:
            self._arm(order, now)
        self._report_new(order, now)
        if order.type not in STOP_TYPES:
            self._work(order, now, run)

    def _arm(self, order: SpotOrder, now: int) -> None:
        """A stop starts waiting; a trailing stop without stopPrice trails from now."""
        if order.trailing_delta is not None and order.stop_price == 0:
            order.trailing_time_ms = now
            order.trailing_extreme = self.market(order.symbol).last_price

    # --- matching -------------------------------------------------------------------------

    def _caps(self, order: SpotOrder) -> tuple[Decimal | None, Decimal | None]:
        """(quantity, quote budget) the order may trade now without overspending."""
        instrument = self.instrument(order.symbol)
        account = self.accounts[order.account]
        quote_mode = order.quote_order_qty > 0
        if order.is_buy:
            held = order.locked if order.lock_asset == instrument.quote_asset else Decimal(0)
            budget = account.free(instrument.quote_asset) + held
            if quote_mode:
                return None, min(budget, order.quote_order_qty - order.cumulative_quote)
            return order.remaining, budget
        held = order.locked if order.lock_asset == instrument.base_asset else Decimal(0)
        have = floor_to_step(account.free(instrument.base_asset) + held, instrument.step_size)
        if quote_mode:
            return have, order.quote_order_qty - order.cumulative_quote
        return min(order.remaining, have), None

    def _stp_action(self, taker: SpotOrder, maker: Any) -> StpAction | None:
        if not isinstance(maker, SpotOrder) or maker.account != taker.account:
            return None
        if taker.stp_mode == "NONE":
            return None
        if taker.stp_mode == "TRANSFER":
            return StpAction.DECREMENT
        return StpAction(taker.stp_mode)

    def _work(self, order: SpotOrder, now: int, run: Run) -> None:
        """Match a working order against the book, then rest or expire what is left."""
        market = self.market(order.symbol)
        side = Side(order.side)
        limit = order.price if order.type in PRICED_TYPES else None
        if order.type == "LIMIT_MAKER" and _would_take(market, order.side, order.price):
            # Only a pending OTO leg gets here (new orders are refused): it never takes.
            self._expire(order, now, "REJECTED")
            return
        if order.time_in_force == "FOK" and market.available(side, limit) < order.remaining:
            self._expire(order, now, "UNFILLED_FOK_ORDER_EXPIRED")
            return
        quantity, budget = self._caps(order)
        if (quantity is not None and quantity <= 0) or (budget is not None and budget <= 0):
            self._finish(order, now, market, last_report=None)
            return
        result = market.match(
            side,
            quantity,
            now,
            limit_price=limit,
            quote_budget=budget,
            self_trade=lambda maker: self._stp_action(order, maker),
        )
        self._feed(order.symbol, result.events)
        if result.trades:
            self._fresh_prices.setdefault(order.symbol, []).extend(
                trade.price for trade in result.trades
            )
        last_report = self._apply(order, result, now, run)
        self._finish(order, now, market, last_report=last_report)

    def _apply(
        self, order: SpotOrder, result: MatchResult, now: int, run: Run
    ) -> dict[str, Any] | None:
        """Book the fills and prevented matches of a taker; returns its last TRADE report."""
        maker_fills = {id(fill.trade): fill for fill in result.maker_fills}
        last_report = None
        for trade, maker in zip(result.trades, result.makers, strict=True):
            if isinstance(maker, SpotOrder):
                maker_fill = maker_fills.get(id(trade))
                remaining = maker_fill.remaining if maker_fill is not None else Decimal(0)
                self._maker_traded(maker, trade, remaining, now)
            fill = self._book_fill(order, trade, is_maker=False, now=now)
            run.fills.append(fill)
            last_report = self._report_trade(order, fill, now, on_book=False)
        for prevention in result.preventions:
            last_report = self._prevent(order, prevention, now, run) or last_report
        return last_report

    def _prevent(
        self, taker: SpotOrder, prevention: Any, now: int, run: Run
    ) -> dict[str, Any] | None:
        """Book one prevented match; returns the taker's report, if it got one."""
        maker: SpotOrder = prevention.order
        action: StpAction = prevention.action
        match_id = self._next_prevented_id.get(taker.symbol, 0)
        self._next_prevented_id[taker.symbol] = match_id + 1
        maker_prevented = maker.remaining - prevention.remaining
        if action is StpAction.DECREMENT:
            taker_prevented = prevention.quantity
        elif action in (StpAction.EXPIRE_TAKER, StpAction.EXPIRE_BOTH):
            taker_prevented = Decimal(0) if taker.quote_order_qty > 0 else taker.remaining
        else:
            taker_prevented = Decimal(0)
        entry: dict[str, Any] = {
            "preventedMatchId": match_id,
            "makerOrderId": maker.order_id,
            "price": spot_json.amount(prevention.price),
        }
        taker_hit = action is not StpAction.EXPIRE_MAKER
        maker_hit = action is not StpAction.EXPIRE_TAKER
        if taker_hit:
            entry["takerPreventedQuantity"] = spot_json.amount(taker_prevented)
        if maker_hit:
            entry["makerPreventedQuantity"] = spot_json.amount(maker_prevented)
        run.prevented_matches.append(entry)
        if maker_hit:
            maker.prevented += maker_prevented
            maker.prevented_match_id = match_id
            maker.update_time_ms = now
            gone = prevention.remaining <= 0
            if gone:
                maker.status = "EXPIRED_IN_MATCH"
            self._report_prevented(maker, taker, maker_prevented, prevention, now, on_book=not gone)
            if gone:
                self._close(maker, now)
            else:
                # The prevented part is gone from the order: so is what it locked.
                self._trim_lock(maker, now)
                maker_list = self.list_of(maker)
                if maker_list is not None and maker_list.shared_lock > 0:
                    self._trim_shared_lock(maker_list, now)
        if not taker_hit:
            return None
        taker.prevented += taker_prevented
        taker.prevented_match_id = match_id
        taker.update_time_ms = now
        if action is not StpAction.DECREMENT or (
            taker.quote_order_qty == 0 and taker.remaining <= 0
        ):
            taker.status = "EXPIRED_IN_MATCH"
        return self._report_prevented(taker, maker, taker_prevented, prevention, now, on_book=False)

    def _finish(
        self,
        order: SpotOrder,
        now: int,
        market: MarketState,
        *,
        last_report: dict[str, Any] | None,
    ) -> None:
        """After matching: close, expire or rest what the order has left."""
        if not order.is_open:  # expired in match
            self._close(order, now)
            return
        if order.quote_order_qty > 0:
            left = order.quote_order_qty - order.cumulative_quote
            opposite = market.best(BookSide.ASK if order.is_buy else BookSide.BID)
            step = self.instrument(order.symbol).step_size
            spent = order.executed > 0 and (opposite is None or left < opposite * step)
            if spent:
                order.status = "FILLED"
                if last_report is not None:
                    last_report["X"] = "FILLED"
                self._close(order, now)
            else:
                self._expire(order, now, "INSUFFICIENT_LIQUIDITY")
            return
        if order.remaining <= 0:
            self._close(order, now)
        elif order.type in MARKET_TYPES:
            self._expire(order, now, "INSUFFICIENT_LIQUIDITY")
        elif order.time_in_force == "IOC":
            self._expire(order, now, "UNFILLED_IOC_QUANTITY_EXPIRED")
        elif order.time_in_force == "FOK":
            self._expire(order, now, "UNFILLED_FOK_ORDER_EXPIRED")
        else:
            # Release what it can no longer spend (a BUY that took at better prices than its
            # own, prevented quantity): on the book a BUY locks remaining x price, a SELL its
            # remaining quantity.
            self._trim_lock(order, now)
            self._rest(order, now)

    def _rest(self, order: SpotOrder, now: int) -> None:
        market = self.market(order.symbol)
        visible = order.iceberg_qty if order.iceberg_qty > 0 else None
        try:
            update = market.rest(
                order, Side(order.side), order.price, order.remaining, now, visible=visible
            )
        except ValueError:  # could not afford to take what it crosses
            self._expire(order, now, "INSUFFICIENT_LIQUIDITY")
            return
        self._feed(order.symbol, [update])

    def _book_fill(self, order: SpotOrder, trade: MarketTrade, *, is_maker: bool, now: int) -> Fill:
        """Apply one trade to an order and its account (balances, commission, status)."""
        self._resolve_pair_of(order, now)
        instrument = self.instrument(order.symbol)
        account = self.accounts[order.account]
        quantity, price = trade.quantity, trade.price
        quote = price * quantity
        rate = account.maker_rate if is_maker else account.taker_rate
        if order.is_buy:
            self._pay(order, instrument.quote_asset, quote, now)
            asset = instrument.base_asset
            commission = commission_for(quantity, rate, instrument.base_commission_precision)
            self._credit(account, asset, quantity - commission, now)
        else:
            self._pay(order, instrument.base_asset, quantity, now)
            asset = instrument.quote_asset
            commission = commission_for(quote, rate, instrument.quote_commission_precision)
            self._credit(account, asset, quote - commission, now)
        self.commissions[asset] = self.commissions.get(asset, Decimal(0)) + commission
        order.executed += quantity
        order.cumulative_quote += quote
        if order.quote_order_qty > 0:
            order.quantity = order.executed + order.prevented
        order.update_time_ms = now
        order.status = (
            "FILLED" if order.quote_order_qty == 0 and order.remaining <= 0 else "PARTIALLY_FILLED"
        )
        fill = Fill(
            account=order.account,
            symbol=order.symbol,
            trade_id=trade.trade_id,
            order_id=order.order_id,
            order_list_id=order.order_list_id,
            price=price,
            quantity=quantity,
            quote_quantity=quote,
            commission=commission,
            commission_asset=asset,
            time_ms=trade.time_ms,
            is_buyer=order.is_buy,
            is_maker=is_maker,
        )
        self.fills.append(fill)
        self._fills_of.setdefault(order.account, []).append(fill)
        self._symbol_fills.setdefault((order.account, order.symbol), []).append(fill)
        self._fills_by_order.setdefault(order.order_id, []).append(fill)
        return fill

    def _maker_traded(
        self, order: SpotOrder, trade: MarketTrade, remaining: Decimal, now: int
    ) -> None:
        """A resting order was hit (by this engine's taker or by background activity)."""
        fill = self._book_fill(order, trade, is_maker=True, now=now)
        self._report_trade(order, fill, now, on_book=remaining > 0)
        if order.remaining <= 0:
            self._close(order, now)

    def _expire(self, order: SpotOrder, now: int, reason: str | None) -> None:
        order.status = "EXPIRED"
        order.expiry_reason = reason
        order.update_time_ms = now
        self._withdraw(order, now)
        self._report(order, "EXPIRED", now, on_book=False)
        self._close(order, now)

    def _withdraw(self, order: SpotOrder, now: int) -> None:
        update = self.market(order.symbol).withdraw(order, now)
        if update is not None:
            self._feed(order.symbol, [update])

    def _close(self, order: SpotOrder, now: int) -> None:
        """An order ended: release its lock, forget it as open, update its list."""
        self._release(order, now)
        self._open.get(order.symbol, {}).pop(order.order_id, None)
        self._open_of.get((order.account, order.symbol), {}).pop(order.order_id, None)
        order_list = self.list_of(order)
        if order_list is not None:
            self._member_closed(order_list, order, now)

    # --- cancelling -----------------------------------------------------------------------

    def cancel(
        self, order: SpotOrder, now: int, cancel_client_id: str, *, status: str = "CANCELED"
    ) -> dict[str, Any]:
        """Cancel one open order; returns Binance's cancel body."""
        orig = order.client_order_id
        order.status = status
        order.update_time_ms = now
        self._withdraw(order, now)
        self._report(
            order,
            "CANCELED",
            now,
            client_order_id=cancel_client_id,
            orig_client_order_id=orig,
            on_book=False,
        )
        body = spot_json.cancel_report(
            order, now, orig_client_order_id=orig, client_order_id=cancel_client_id
        )
        self._close(order, now)
        return body

    def cancel_list(self, order_list: OrderList, now: int, cancel_client_id: str) -> dict[str, Any]:
        """Cancel every open member of a list; returns the list object with its reports."""
        reports = []
        self._closing_list = order_list
        try:
            for order in order_list.orders:
                if order.is_open:
                    reports.append(self.cancel(order, now, cancel_client_id))
                else:
                    reports.append(
                        spot_json.cancel_report(
                            order,
                            now,
                            orig_client_order_id=order.client_order_id,
                            client_order_id=order.client_order_id,
                        )
                    )
        finally:
            self._closing_list = None
        self._end_list(order_list, now)
        return spot_json.list_object(order_list, reports=reports)

    # --- amending -------------------------------------------------------------------------

    def amend(
        self, order: SpotOrder, new_quantity: Decimal, new_client_id: str, now: int
    ) -> tuple[int, str, OrderList | None]:
        """Lower an open order's quantity in place (OCO legs together); keeps priority.

        Returns:
            (executionId, the previous clientOrderId, the order's list or None).
        """
        order_list = self.list_of(order)
        targets = [order]
        unresolved = self._unresolved_pair_of(order)
        if unresolved is not None:
            # OCO legs share one quantity: amending one amends both.
            targets += [m for m in unresolved.pair if m is not order and m.is_open]
        orig = order.client_order_id
        execution_id = self._next_execution_id
        for target in targets:
            target_orig = target.client_order_id
            target.quantity = new_quantity
            target.amendments += 1
            target.update_time_ms = now
            if target is order:
                self._rename(target, new_client_id)
            update = self.market(target.symbol).reduce(target, target.remaining, now)
            if update is not None:
                self._feed(target.symbol, [update])
            self._trim_lock(target, now)
            self._report(
                target,
                "REPLACED",
                now,
                orig_client_order_id=target_orig,
            )
        if order_list is not None:
            if order_list.shared_lock > 0:
                self._trim_shared_lock(order_list, now)
            if orig != new_client_id:
                order_list.status_type = "UPDATED"
                order_list.transaction_time_ms = now
                self._list_status(order_list, now)
        return execution_id, orig, order_list

    def _trim_lock(self, order: SpotOrder, now: int) -> None:
        """Release what an order no longer needs locked after its quantity went down."""
        if order.locked <= 0:
            return
        _, needed = self._order_requirement(order)
        excess = order.locked - needed
        if excess > 0:
            self._unlock(order.account, order.lock_asset, excess, now)
            order.locked -= excess

    def _trim_shared_lock(self, order_list: OrderList, now: int) -> None:
        needed = max(self._order_requirement(member)[1] for member in order_list.pair)
        excess = order_list.shared_lock - needed
        if excess > 0:
            self._unlock(order_list.account, order_list.shared_asset, excess, now)
            order_list.shared_lock -= excess

    # --- stops ----------------------------------------------------------------------------

    def _has_contingent(self, symbol: str) -> bool:
        return any(order.is_contingent for order in self._open.get(symbol, {}).values())

    def _drain_triggers(self, now: int) -> None:
        for _ in range(_MAX_TRIGGER_ROUNDS):
            if not self._fresh_prices:
                return
            prices, self._fresh_prices = self._fresh_prices, {}
            for symbol, seen in prices.items():
                self._run_triggers(symbol, seen, now)

    def _run_triggers(self, symbol: str, prices: list[Decimal], now: int) -> None:
        """Check a symbol's stops against its trades, in order; trigger those that fire."""
        waiting = sorted(
            (
                order
                for order in self._open.get(symbol, {}).values()
                if order.is_contingent and order.status == "NEW"
            ),
            key=lambda order: order.order_id,
        )
        if not waiting:
            return
        fired: list[SpotOrder] = []
        for price in prices:
            for order in waiting:
                if order not in fired and _should_trigger(order, price, now):
                    fired.append(order)
        for order in sorted(fired, key=lambda order: order.order_id):
            if order.is_open and order.is_contingent:
                self._trigger(order, now)

    def _trigger(self, order: SpotOrder, now: int) -> None:
        """A stop fires: its OCO partner expires, it starts working as a market/limit order."""
        order.triggered = True
        order.working_time_ms = now
        order.update_time_ms = now
        self._resolve_pair_of(order, now)
        if order.is_buy and order.type in MARKET_TYPES:
            # A market buy needs the cost of the book now; top the lock up where it can.
            asset, needed = self._order_requirement(order)
            extra = min(needed - order.locked, self.accounts[order.account].free(asset))
            if extra > 0:
                self._lock(order, asset, extra, now)
        self._report_new(order, now)
        self._work(order, now, Run())

    def _trigger_if_due(self, order: SpotOrder, now: int) -> None:
        """A stop placed late (an OCO or OTO leg) fires at once if the last price is past it."""
        last = self.market(order.symbol).last_price
        if order.stop_price > 0 and _would_trigger(order.side, order.type, order.stop_price, last):
            self._trigger(order, now)

    # --- order lists ----------------------------------------------------------------------

    def new_list_id(self) -> int:
        list_id = self._next_list_id
        self._next_list_id += 1
        return list_id

    def register_list(self, order_list: OrderList) -> None:
        """Record a new (EXECUTING) list and index it."""
        list_id, account = order_list.order_list_id, order_list.account
        self.order_lists[list_id] = order_list
        self._lists_of.setdefault(account, []).append(order_list)
        self._open_lists.setdefault(account, {})[list_id] = order_list
        key = (account, order_list.list_client_order_id)
        self._lists_by_client.setdefault(key, []).append(order_list)
        for order in order_list.orders:
            self._list_of[order.order_id] = order_list

    def start_pair(
        self,
        order_list: OrderList,
        asset: str,
        amount: Decimal,
        now: int,
        *,
        announce: bool = False,
    ) -> None:
        """Lock an OCO pair's funds once, report its legs and set them going.

        ``announce`` sends the list's ``EXEC_STARTED`` status after the legs' reports.
        """
        account = self.accounts[order_list.account]
        order_list.shared_asset = asset
        order_list.shared_lock = amount
        if amount > 0:
            account.lock(asset, amount)
            self._touch(account, asset, now)
        pair = order_list.pair
        for order in pair:
            order.lock_asset = asset
            order.status = "NEW"
            if order.type in STOP_TYPES:
                self._arm(order, now)  # before the report: a trailing leg's NEW carries D
            self._report_new(order, now)
        if announce:
            self.list_started(order_list, now)
        for order in pair:
            if not order.is_open or order_list.resolved:
                continue
            if order.type in STOP_TYPES:
                self._trigger_if_due(order, now)
            else:
                self._work(order, now, Run())

    def start_oto(self, order_list: OrderList, asset: str, amount: Decimal, now: int) -> None:
        """Lock and report an OTO/OTOCO working order, report its pending legs, start it."""
        working = order_list.working
        assert working is not None
        self._lock(working, asset, amount, now)
        self._report_new(working, now)
        for order in order_list.pair:
            self._report(order, "NEW", now, on_book=False)
        self.list_started(order_list, now)
        self._work(working, now, Run())

    def report_rejected(self, api_key: str, spec: OrderSpec, now: int, error: Exception) -> None:
        """``x=REJECTED`` for the new order of a cancel-replace whose cancel went through."""
        order = self.build_order(api_key, spec, now, order_id=-1)
        order.status = "REJECTED"
        order.working_time_ms = NOT_WORKING
        message = getattr(error, "msg", "")
        reason = _REJECT_REASONS.get(message, "NONE")
        self._report(order, "REJECTED", now, reject_reason=reason, on_book=False)

    def _unresolved_pair_of(self, order: SpotOrder) -> OrderList | None:
        """The list of which ``order`` is an OCO leg, while neither leg has traded or fired."""
        order_list = self.list_of(order)
        if order_list is not None and order in order_list.pair and not order_list.resolved:
            return order_list
        return None

    def _resolve_pair_of(self, order: SpotOrder, now: int) -> None:
        """``order`` trades or fires: if it is a leg of an unresolved pair, it wins the pair."""
        order_list = self._unresolved_pair_of(order)
        if order_list is not None:
            self._resolve_pair(order_list, order, now)

    def _resolve_pair(self, order_list: OrderList, survivor: SpotOrder, now: int) -> None:
        """One OCO leg trades or triggers: it takes the pair's lock, the others expire."""
        order_list.resolved = True
        if order_list.shared_lock > 0:
            survivor.lock_asset = order_list.shared_asset
            survivor.locked += order_list.shared_lock
            order_list.shared_lock = Decimal(0)
            if survivor.type in PRICED_TYPES:
                # The pair locked for its costlier leg; a priced survivor needs its own price.
                self._trim_lock(survivor, now)
        for member in order_list.pair:
            if member is not survivor and member.is_open:
                self._expire(member, now, "OCO_TRIGGER")
        self._maybe_done(order_list, now)

    def _member_closed(self, order_list: OrderList, order: SpotOrder, now: int) -> None:
        if order_list.status == "ALL_DONE" or order_list is self._closing_list:
            return
        if order is order_list.working:
            if order.status == "FILLED":
                if self._in_callback:
                    self._deferred.append(lambda at: self._activate_pending(order_list, at))
                else:
                    self._activate_pending(order_list, now)
                return
            for member in order_list.pair:
                if member.is_open:
                    if order.status == "CANCELED":
                        self.cancel(member, now, self.new_client_id())
                    else:
                        self._expire(member, now, "OTO_PHASE_ONE_EXPIRED")
        elif not order_list.resolved:
            # A pair leg ended without resolving the pair (expired in match): end the others.
            order_list.resolved = True
            self._unlock_shared(order_list, now)
            for member in order_list.pair:
                if member is not order and member.is_open:
                    self._expire(member, now, None)
        self._maybe_done(order_list, now)

    def _activate_pending(self, order_list: OrderList, now: int) -> None:
        """The OTO working order filled: place the pending order(s)."""
        if order_list.status == "ALL_DONE":
            return
        pending = [order for order in order_list.pair if order.status == "PENDING_NEW"]
        if not pending:
            return
        account = self.accounts[order_list.account]
        requirements = [self._order_requirement(order) for order in pending]
        asset = requirements[0][0]
        amount = max(need for _, need in requirements)
        if amount > account.free(asset):
            self._closing_list = order_list
            try:
                for order in pending:
                    order.status = "NEW"
                    self._expire(order, now, "REJECTED")
            finally:
                self._closing_list = None
            self._end_list(order_list, now)
            return
        for order in pending:
            if order.type not in STOP_TYPES:
                order.working_time_ms = now
            order.update_time_ms = now
        if len(pending) > 1:
            self.start_pair(order_list, asset, amount, now)
            return
        order = pending[0]
        order.status = "NEW"
        self._lock(order, asset, amount, now)
        self.start(order, now, Run())
        if order.is_contingent:
            self._trigger_if_due(order, now)

    def _maybe_done(self, order_list: OrderList, now: int) -> None:
        if order_list.status == "ALL_DONE":
            return
        members_open = any(member.is_open for member in order_list.orders)
        if order_list.kind == "OCO":
            done = order_list.resolved or not members_open
        elif order_list.kind == "OTOCO":
            working = order_list.working
            done = not members_open or (
                order_list.resolved and working is not None and not working.is_open
            )
        else:
            done = not members_open
        if done:
            self._end_list(order_list, now)

    def _end_list(self, order_list: OrderList, now: int) -> None:
        if order_list.status == "ALL_DONE":
            return
        self._unlock_shared(order_list, now)
        order_list.status = "ALL_DONE"
        order_list.status_type = "ALL_DONE"
        self._open_lists.get(order_list.account, {}).pop(order_list.order_list_id, None)
        order_list.transaction_time_ms = now
        self._list_status(order_list, now)

    def _unlock_shared(self, order_list: OrderList, now: int) -> None:
        if order_list.shared_lock > 0:
            self._unlock(order_list.account, order_list.shared_asset, order_list.shared_lock, now)
            order_list.shared_lock = Decimal(0)

    def list_started(self, order_list: OrderList, now: int) -> None:
        order_list.transaction_time_ms = now
        self._list_status(order_list, now)

    # --- the venue's own bookkeeping ----------------------------------------------------------

    def fund(self, api_key: str, asset: str, delta: Decimal, now: int) -> Balance:
        """Deposit (or withdraw, negative) ``delta`` of ``asset``: ``balanceUpdate`` and position.

        Raises:
            ValueError: a withdrawal larger than the free balance.
        """
        account = self.account(api_key)
        balance = account.balance(asset)
        if balance.free + delta < 0:
            raise ValueError(f"cannot withdraw {-delta} {asset}: only {balance.free} is free")
        with self.batch(now):
            balance.free += delta
            self.emit_balance_update(account, asset, delta, now)
        return balance

    def known_assets(self, account: Account) -> list[str]:
        """Assets ``/account`` lists: configured ones, the symbols' assets, then any other."""
        names: dict[str, None] = {}
        for asset in self.venue.config.balances.get(SPOT.value, {}):
            names[asset] = None
        for instrument in self.venue.instruments[SPOT].values():
            names[instrument.base_asset] = None
            names[instrument.quote_asset] = None
        for asset in sorted(account.balances):
            names[asset] = None
        return list(names)

    def check_invariants(self) -> None:
        """Assert the engine's books agree with themselves (tests call this).

        * no balance is negative;
        * every account's locked amount equals what its open orders and OCO pairs hold;
        * every open order is in the open index and nothing closed is.
        """
        held: dict[tuple[str, str], Decimal] = {}
        for order in self.orders.values():
            if order.locked > 0:
                key = (order.account, order.lock_asset)
                held[key] = held.get(key, Decimal(0)) + order.locked
            indexed = order.order_id in self._open.get(order.symbol, {})
            assert indexed == order.is_open, f"order {order.order_id} {order.status} index"
            assert not (order.is_open and order.status == "FILLED")
            if not order.is_open:
                assert order.locked == 0, f"closed order {order.order_id} still locks"
        for order_list in self.order_lists.values():
            if order_list.shared_lock > 0:
                key = (order_list.account, order_list.shared_asset)
                held[key] = held.get(key, Decimal(0)) + order_list.shared_lock
        for api_key, account in self.accounts.items():
            for asset, balance in account.balances.items():
                assert balance.free >= 0, f"{api_key} {asset} free {balance.free}"
                assert balance.locked >= 0, f"{api_key} {asset} locked {balance.locked}"
                expected = held.get((api_key, asset), Decimal(0))
                assert balance.locked == expected, (
                    f"{api_key} {asset} locked {balance.locked} but orders hold {expected}"
                )


# --- helpers -------------------------------------------------------------------------------


def _goes_on_book(order: SpotOrder) -> bool:
    """``w`` of a NEW report: a working GTC limit order goes on the book."""
    return (
        order.type in PRICED_TYPES
        and not order.is_contingent
        and order.time_in_force == "GTC"
        and order.status != "PENDING_NEW"
    )


def _triggers_upward(side: str, order_type: str) -> bool:
    """STOP_LOSS BUY and TAKE_PROFIT SELL fire when the price rises to the stop."""
    stop_loss = order_type.startswith("STOP_LOSS")
    return (stop_loss and side == "BUY") or (not stop_loss and side == "SELL")


def _would_trigger(side: str, order_type: str, stop_price: Decimal, last: Decimal) -> bool:
    """Binance's "Order would trigger immediately." check against the last price."""
    if _triggers_upward(side, order_type):
        return last >= stop_price
    return last <= stop_price


def _should_trigger(order: SpotOrder, price: Decimal, now: int) -> bool:
    """Whether a trade at ``price`` fires a waiting stop (trailing state is updated)."""
    upward = _triggers_upward(order.side, order.type)
    if order.trailing_delta is None:
        return price >= order.stop_price if upward else price <= order.stop_price
    if order.trailing_extreme is None:
        reached = price >= order.stop_price if upward else price <= order.stop_price
        if reached:
            order.trailing_extreme = price
            order.trailing_time_ms = now
        return False
    factor = trailing_factor(order.trailing_delta)
    if order.is_buy:
        order.trailing_extreme = min(order.trailing_extreme, price)
        return price >= order.trailing_extreme * (1 + factor)
    order.trailing_extreme = max(order.trailing_extreme, price)
    return price <= order.trailing_extreme * (1 - factor)


def _would_take(market: MarketState, side: str, price: Decimal) -> bool:
    if side == "BUY":
        best_ask = market.best(BookSide.ASK)
        return best_ask is not None and price >= best_ask
    best_bid = market.best(BookSide.BID)
    return best_bid is not None and price <= best_bid


def _cost_of(asks: list[tuple[Decimal, Decimal]], quantity: Decimal) -> Decimal:
    """Quote needed to buy ``quantity`` by walking the asks (what the book holds)."""
    cost = Decimal(0)
    left = quantity
    for price, size in asks:
        take = min(size, left)
        cost += take * price
        left -= take
        if left <= 0:
            break
    return cost


def _base_for_quote(
    bids: list[tuple[Decimal, Decimal]], quote: Decimal, instrument: Instrument
) -> Decimal:
    """Base needed to receive ``quote`` by walking the bids."""
    base = Decimal(0)
    left = quote
    for price, size in bids:
        value = price * size
        if value >= left:
            return base + floor_to_step(left / price, instrument.step_size)
        base += size
        left -= value
    return base


__all__ = ["Run", "SpotEngine", "filter_failure"]
