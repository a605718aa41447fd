"""Futures trading engines: USDⓈ-M (``/fapi``) and COIN-M (``/dapi``).

One :class:`FuturesEngine` per product line. It owns the line's orders (regular and
conditional), accounts and positions (:mod:`scenarios.venue.futures_accounts`) and answers
the line's trading and account endpoints, its WS-API trading methods and its control actions.
Orders trade on the product's :class:`~scenarios.venue.market.MarketState` books, with the
background liquidity and with each other.

**Orders** (``POST /order``, Binance's rules, ``binance-protocol.md`` 4.2, 5.2, 5.3): LIMIT
and MARKET (on USD-M the conditional types get ``-4120`` and go to ``/algoOrder``; COIN-M
still takes them the legacy way, with ``stopPrice``, see :mod:`~scenarios.venue.futures_algo`;
``LIMIT_MAKER`` gets ``-1116``). Integer parameters past the signed 64-bit range get
``-1130`` before any work. Time in force GTC, IOC, FOK (an FOK that cannot fill in full
is rejected ``-5021`` and not recorded), GTX post-only (``-5022`` when it would take, not
recorded) and, on USD-M, GTD (``goodTillDate`` more than 600 s ahead, ``-5040``; expired by
:meth:`FuturesEngine.on_time`). ``priceMatch`` picks the price from the book (``OPPONENT``:
the best opposite price, ``OPPONENT_5``: the 5th; ``QUEUE``/``QUEUE_n``: the same side).
``reduceOnly`` (not in hedge mode: ``-1106``) is rejected ``-2022`` when it cannot reduce and
is shrunk to the position; hedge-mode closing orders (``SELL``+``LONG``, ``BUY``+``SHORT``)
behave the same way. Self-trade prevention (default ``EXPIRE_MAKER`` on ``/order``, ``NONE``
on algo orders) applies with GTC, IOC and GTD. Filters give ``-40xx`` codes, open orders
per symbol ``-2025``, and an order whose opening part needs more initial margin than is
available ``-2019``.

**Matching**: a new order first takes from the book, then rests (LIMIT GTC/GTX/GTD) or expires
(IOC ``er=2``, MARKET ``er=9``, STP ``er=1``/``3``, reduce-only ``er=4``). Every fill
updates the account (:meth:`FuturesAccounts.apply_fill`) and is published as
``ORDER_TRADE_UPDATE`` (``x=TRADE``) plus ``TRADE_LITE`` (USD-M), followed by one
``ACCOUNT_UPDATE`` (reason ``ORDER``) per account with the changed balance and positions.
Resting orders are filled by later takers, by background activity and by control hooks (seen
in :meth:`FuturesEngine.on_market` as :class:`~scenarios.venue.market.MakerFill`).

**Conditional orders** (``/algoOrder``): STOP, STOP_MARKET, TAKE_PROFIT, TAKE_PROFIT_MARKET and
TRAILING_STOP_MARKET wait in the "Algo Service" and are checked after every market event and
every tick against the last price (``CONTRACT_PRICE``) or the mark price (``MARK_PRICE``).
A triggered one becomes a regular order with a new ``orderId`` (``ALGO_UPDATE`` NEW ->
TRIGGERING -> TRIGGERED -> FINISHED, or REJECTED when the order is refused). COIN-M legacy
conditional orders (``/dapi/v1/order`` with ``stopPrice``) wait the same way but keep their
``orderId``.

**Indexes.** Open orders and open conditional orders are kept by account and symbol
(:class:`~scenarios.venue.futures_orders.OpenIndex`), orders by ``(account, symbol,
clientOrderId)``, waiting conditions by symbol and positions by symbol
(:attr:`FuturesAccounts.holders`), so that placing, cancelling and the events of one account
cost the same however many orders and accounts others have.

**Exchange orders**: :meth:`FuturesEngine.place_system_order` places liquidation, ADL and
settlement orders (``autoclose-``, ``adl_autoclose``, ``settlement_autoclose-`` client ids),
on the book or at a fixed price off the book.

**Risk** (:mod:`~scenarios.venue.futures_risk`, :attr:`FuturesEngine.risk`): funding payments
at the market's funding times, ``MARGIN_CALL``, liquidation (insurance fund, ``forceOrder``),
auto-deleveraging and the delivery of dated contracts. It runs from :meth:`FuturesEngine.on_time`
and, for the symbols whose book moved, from :meth:`FuturesEngine.drain`; its control actions
(``liquidate``, ``adl``, ``settle``, ``funding``, ``margin``) join the engine's.

Shared between the two engines (the 2026 CM-UM integration): the position mode
(``dualSidePosition``), which either line may change only when neither has open orders or
positions.

**Event order.** :meth:`FuturesEngine.on_market` runs before the venue feeds the market's
events to the public streams, so book changes the engine would make in response (shrinking
reduce-only orders, triggering conditional orders) wait for :meth:`FuturesEngine.drain`, which
:meth:`FuturesEngine.on_time`, every request and every control action run first.

**For later layers** (liquidation, ADL, funding, delivery): :attr:`FuturesEngine.accounts`
(:class:`~scenarios.venue.futures_accounts.FuturesAccounts`: wallets, positions, margins,
liquidation prices, ``ACCOUNT_UPDATE`` bodies), :meth:`FuturesEngine.place_system_order`,
:meth:`FuturesEngine.cancel_all`, :meth:`FuturesEngine.publish_account_update`,
:meth:`FuturesEngine.publish` (any user-data event, e.g. ``MARGIN_CALL``),
:meth:`FuturesEngine.add_income` (``GET /income`` rows such as ``FUNDING_FEE``),
:meth:`FuturesEngine.mark_price`, :meth:`FuturesEngine.has_positions`.

Modules: this one (order flow, REST and WS-API wiring), :mod:`~scenarios.venue.futures_algo`
(conditional orders), :mod:`~scenarios.venue.futures_accounts` (accounts and margin),
:mod:`~scenarios.venue.futures_views` (account endpoints, control actions),
:mod:`~scenarios.venue.futures_orders` (records and their JSON),
:mod:`~scenarios.venue.futures_params` and :mod:`~scenarios.venue.futures_rules` (request
checks and enumerations), :mod:`~scenarios.venue.futures_errors` (the futures error codes).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs
import orjson

from scenarios.venue import futures_errors as errors
from scenarios.venue import futures_params as params
from scenarios.venue.auth import Security
from scenarios.venue.errors import VenueError
from scenarios.venue.futures_accounts import (
    ZERO,
    FuturesAccount,
    FuturesAccounts,
    Position,
    amount,
    q8,
)
from scenarios.venue.futures_algo import ConditionalOrders
from scenarios.venue.futures_orders import (
    AlgoOrder,
    Fill,
    FuturesOrder,
    OpenIndex,
    algo_update,
    latest_open,
    order_query,
    order_result,
    order_trade_update,
    price_text,
    qty_text,
    trade_lite,
    user_trade,
)
from scenarios.venue.futures_rules import (
    BATCH_CANCEL_MAX,
    BATCH_PLACE_MAX,
    CANCEL_ALL_DONE,
    CONDITIONAL_TYPES,
    MAX_MODIFICATIONS,
    ORDER_TYPES,
    PRICE_MATCHES,
    SEVEN_DAYS_MS,
    TIME_IN_FORCE,
    OrderRequest,
    SharedFuturesSettings,
)
from scenarios.venue.http import Request
from scenarios.venue.instruments import Instrument, Product
from scenarios.venue.market import (
    BookSide,
    MakerFill,
    MarketState,
    Side,
    StpAction,
    Trade,
)
from scenarios.venue.trading import WsMethod

if TYPE_CHECKING:
    from scenarios.venue.rest import Call, Route

__all__ = ["FuturesEngine", "SharedFuturesSettings", "build_futures_engines"]

_CLIENT_ALPHABET: Final = string.ascii_letters + string.digits


class _Touched:
    """Accounts changed by one execution: which assets and positions, for ACCOUNT_UPDATE."""

    def __init__(self) -> None:
        self.accounts: dict[str, tuple[dict[str, None], list[Position]]] = {}
        self.symbols: set[tuple[str, str]] = set()

    def add(self, account: str, asset: str, position: Position) -> None:
        assets, positions = self.accounts.setdefault(account, ({}, []))
        assets[asset] = None
        if all(item is not position for item in positions):
            positions.append(position)
        self.symbols.add((account, position.symbol))


def _side(order: FuturesOrder | AlgoOrder) -> Side:
    return Side.BUY if order.side == "BUY" else Side.SELL


class FuturesEngine(ConditionalOrders):
    """The trading engine of one futures product line (see the module docstring).

    Args:
        venue: The venue (markets, feeds, user data, keys, clock, config).
        product: ``Product.USDM`` or ``Product.COINM``.
        shared: Settings shared with the other futures line.
    """

    def __init__(
        self, venue: Any, product: Product, shared: SharedFuturesSettings | None = None
    ) -> None:
        self.venue = venue
        self.product = product
        self.name = product.value
        self.shared = shared or SharedFuturesSettings()
        #: The other futures line (set by :func:`build_futures_engines`).
        self.sibling: FuturesEngine | None = None
        self.instruments: Mapping[str, Instrument] = venue.instruments[product]
        balances = venue.config.balances.get(product.value, {})
        self.accounts = FuturesAccounts(
            product,
            self.instruments,
            balances,
            mark_price=self.mark_price,
            open_order_margin=self.open_order_margin,
            funded_ms=int(venue.clock.now_ms()),
        )
        seed = getattr(venue.config, "seed", 1)
        self._rng = random.Random(f"{seed}:futures:{product.value}")
        self._next_order_id = 4_000_000_000 + self._rng.randrange(1_000_000_000)
        self._next_algo_id = 1_000_000_000_000_000 + self._rng.randrange(100_000_000)
        self._next_off_book_trade = 900_000_000 + self._rng.randrange(10_000_000)
        self._next_income_id = 1_000_000_000 + self._rng.randrange(1_000_000_000)
        #: Every order by id, and every account's orders in creation order.
        self.orders: dict[int, FuturesOrder] = {}
        self.account_orders: dict[str, list[FuturesOrder]] = {}
        #: Orders that are NEW or PARTIALLY_FILLED, by id (with legacy conditional orders
        #: still waiting for their trigger).
        self.open_orders: dict[int, FuturesOrder] = {}
        #: The same by account and symbol (placement work stays per account and symbol).
        self.open_index: OpenIndex[FuturesOrder] = OpenIndex()
        #: Every order by ``(account, symbol, clientOrderId)``, in creation order.
        self._client_orders: dict[tuple[str, str, str], list[FuturesOrder]] = {}
        #: Open orders by ``(account, clientOrderId)`` (duplicate client ids, ``-4116``).
        self._open_clients: dict[tuple[str, str], dict[int, FuturesOrder]] = {}
        #: Open GTD orders by id (expired by :meth:`on_time`).
        self._gtd: dict[int, FuturesOrder] = {}
        #: Algo Service orders: all by id, per account, and the open ones.
        self.algos: dict[int, AlgoOrder] = {}
        self.account_algos: dict[str, list[AlgoOrder]] = {}
        self.open_algos: dict[int, AlgoOrder] = {}
        self.algo_index: OpenIndex[AlgoOrder] = OpenIndex()
        self._client_algos: dict[tuple[str, str], list[AlgoOrder]] = {}
        #: Conditions waiting for their trigger by symbol: the open Algo Service orders and
        #: the legacy conditional orders of ``/dapi/v1/order``.
        self.waiting: dict[str, dict[int, AlgoOrder]] = {}
        self.fills: list[Fill] = []
        self.account_fills: dict[str, list[Fill]] = {}
        #: ``GET /income`` rows per account.
        self.income: dict[str, list[dict[str, Any]]] = {}
        #: countdownCancelAll deadlines by (account, symbol).
        self.countdowns: dict[tuple[str, str], tuple[int, int]] = {}
        #: COIN-M ``/order`` takes the conditional types the legacy way (Binance: until a
        #: later, separately announced date); False refuses them with ``-4120`` as USD-M does.
        self.accepts_legacy_conditional = self.coinm
        self._modify_ids = 0
        self._checking_triggers = False
        #: While :meth:`on_market` runs, the venue has not yet fed the market's events to the
        #: public streams: book changes of the engine's own (reduce-only shrinking, triggered
        #: orders) wait until :meth:`drain` so that depth updates stay in order.
        self._in_market_callback = False
        self._pending_sync: set[tuple[str, str]] = set()
        self._pending_triggers: set[str] = set()
        from scenarios.venue.futures_risk import FuturesRisk

        #: Funding, margin calls, liquidation, ADL and delivery
        #: (:mod:`~scenarios.venue.futures_risk`).
        self.risk = FuturesRisk(self)

    # --- infrastructure -------------------------------------------------------------------

    @property
    def coinm(self) -> bool:
        return self.product is Product.COINM

    def now(self) -> int:
        return int(self.venue.clock.now_ms())

    def market(self, symbol: str) -> MarketState:
        return self.venue.markets[(self.product, symbol)]

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments[symbol]

    def mark_price(self, symbol: str) -> Decimal:
        """The symbol's mark price now."""
        return self.market(symbol).mark_price(self.now())

    def dual(self, account: str) -> bool:
        """Whether the account is in hedge mode (shared by USD-M and COIN-M)."""
        return self.shared.dual.get(account, False)

    def _publish(self, account: str, event: dict[str, Any]) -> None:
        self.venue.user_data.publish(self.product, account, event)

    def _listening(self, account: str) -> bool:
        return bool(self.venue.user_data.listening(self.product, account))

    def _feed(self, symbol: str, events: list[Any]) -> None:
        if events:
            self.venue.feeds.on_market(self.product, symbol, events)

    def _new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    def _new_client_id(self) -> str:
        return "".join(self._rng.choice(_CLIENT_ALPHABET) for _ in range(22))

    def _key(self, call: Call) -> str:
        assert call.key is not None  # TRADE / USER_DATA routes always authenticate
        return call.key.api_key

    def _account(self, call: Call) -> FuturesAccount:
        return self.accounts.account(self._key(call))

    # --- exposure and margin --------------------------------------------------------------

    def _reducible(
        self, account: FuturesAccount, symbol: str, side: str, position_side: str
    ) -> Decimal | None:
        """How much an order of ``side``/``position_side`` could reduce, or None when the
        order is not a reducing one (one-way orders are reducing only when reduce-only)."""
        if position_side == "LONG":
            if side == "BUY":
                return None
            return max(ZERO, account.position(symbol, "LONG").amount)
        if position_side == "SHORT":
            if side == "SELL":
                return None
            return max(ZERO, -account.position(symbol, "SHORT").amount)
        position = account.position(symbol, "BOTH").amount
        if side == "BUY":
            return max(ZERO, -position)
        return max(ZERO, position)

    def _is_reducing(self, order: FuturesOrder) -> bool:
        """Reduce-only orders and hedge-mode closing orders."""
        return (
            order.reduce_only
            or (order.position_side == "LONG" and order.side == "SELL")
            or (order.position_side == "SHORT" and order.side == "BUY")
        )

    def _order_notional(self, symbol: str, quantity: Decimal, price: Decimal) -> Decimal:
        return abs(self.accounts.math(symbol).notional(quantity, price))

    def _exposure(
        self,
        account: FuturesAccount,
        symbol: str,
        extra: Iterable[tuple[str, str, Decimal, Decimal, bool]] = (),
        exclude: FuturesOrder | None = None,
    ) -> tuple[Decimal, Decimal, Decimal]:
        """``(bid notional, ask notional, open-order initial margin)`` of the account's open
        orders on ``symbol`` (plus ``extra`` hypothetical orders ``(side, position_side,
        quantity, price, reducing)``).

        The margin counts only the part of the orders that would open or increase a position:
        one-way, buys beyond the short position and sells beyond the long; hedge, BUY+LONG
        and SELL+SHORT. Binance charges the larger of the buy and sell sides.
        """
        rows: list[tuple[str, str, Decimal, Decimal, bool]] = [
            (
                order.side,
                order.position_side,
                order.remaining,
                order.price,
                self._is_reducing(order),
            )
            for order in self.open_index.of(account.key, symbol)
            if order is not exclude and not order.waiting
        ]
        rows.extend(extra)
        if not rows:
            return ZERO, ZERO, ZERO
        bids = asks = ZERO
        opening = {"BUY": [ZERO, ZERO], "SELL": [ZERO, ZERO]}  # [quantity, notional]
        for side, _position_side, quantity, price, reducing in rows:
            notional = self._order_notional(symbol, quantity, price)
            if side == "BUY":
                bids += notional
            else:
                asks += notional
            if reducing:
                continue
            opening[side][0] += quantity
            opening[side][1] += notional
        if not self.dual(account.key):
            position = account.position(symbol, "BOTH").amount
            for side, offset in (("BUY", max(ZERO, -position)), ("SELL", max(ZERO, position))):
                total_quantity, total_notional = opening[side]
                if total_quantity > 0:
                    kept = max(ZERO, total_quantity - offset)
                    opening[side][1] = total_notional * kept / total_quantity
        leverage = account.setting(symbol).leverage
        margin = max(opening["BUY"][1], opening["SELL"][1]) / leverage
        return bids, asks, margin

    def open_order_margin(self, account: FuturesAccount, symbol: str) -> Decimal:
        """Initial margin of the account's open orders on ``symbol``."""
        return self._exposure(account, symbol)[2]

    def _check_margin(
        self,
        account: FuturesAccount,
        symbol: str,
        side: str,
        position_side: str,
        quantity: Decimal,
        price: Decimal,
        replacing: FuturesOrder | None = None,
    ) -> None:
        """``-2019`` when the order's opening part needs more margin than is available
        (``replacing``: an open order the new one takes the place of, for amendments)."""
        before = self._exposure(account, symbol)[2]
        extra = [(side, position_side, quantity, price, False)]
        after = self._exposure(account, symbol, extra, exclude=replacing)[2]
        needed = after - before
        if needed <= 0:
            return
        _, taker = self.accounts.commission_rates(account)
        needed += self._order_notional(symbol, quantity, price) * taker
        if needed > self.accounts.available_for(account, symbol):
            raise errors.margin_insufficient(product=self.name)

    def _notional_sides(self, account: str, symbol: str) -> tuple[Decimal, Decimal]:
        bids, asks, _ = self._exposure(self.accounts.account(account), symbol)
        return bids, asks

    # --- order events ---------------------------------------------------------------------

    def _order_event(
        self,
        order: FuturesOrder,
        execution: str,
        now_ms: int,
        fill: Fill | None = None,
        modify_id: int | None = None,
    ) -> None:
        if not self._listening(order.account):
            return
        event = self._order_update_event(order, execution, now_ms, fill, modify_id)
        if fill is not None and execution == "TRADE" and not self.coinm and not order.system:
            self._publish(order.account, trade_lite(order, self.instrument(order.symbol), fill))
        self._publish(order.account, event)

    def _order_update_event(
        self,
        order: FuturesOrder,
        execution: str,
        now_ms: int,
        fill: Fill | None = None,
        modify_id: int | None = None,
    ) -> dict[str, Any]:
        """The ``ORDER_TRADE_UPDATE`` of ``order`` as its account sees it now (the account's
        alias and its bid/ask notional on the symbol)."""
        account = self.accounts.account(order.account)
        bids, asks = self._notional_sides(order.account, order.symbol)
        return order_trade_update(
            order,
            self.instrument(order.symbol),
            execution,
            now_ms,
            fill=fill,
            bids_notional=bids,
            asks_notional=asks,
            account_alias=account.alias,
            modify_id=modify_id,
        )

    def _algo_event(self, algo: AlgoOrder, now_ms: int) -> None:
        if self._listening(algo.account):
            self._publish(algo.account, algo_update(algo, self.instrument(algo.symbol), now_ms))

    def _flush(self, touched: _Touched, now_ms: int) -> None:
        """One ACCOUNT_UPDATE per changed account; then re-check reduce-only orders."""
        for key, (assets, positions) in touched.accounts.items():
            if self._listening(key):
                account = self.accounts.account(key)
                self._publish(
                    key,
                    self.accounts.account_update(
                        account, "ORDER", now_ms, assets=list(assets), positions=positions
                    ),
                )
        if self._in_market_callback:
            self._pending_sync.update(touched.symbols)
            return
        for key, symbol in sorted(touched.symbols):
            self._sync_reducing(self.accounts.account(key), symbol, now_ms)

    def add_income(
        self,
        account: str,
        symbol: str,
        income_type: str,
        value: Decimal,
        asset: str,
        time_ms: int,
        trade_id: int | str = "",
        info: str = "",
    ) -> None:
        """Record a ``GET /income`` row (REALIZED_PNL, COMMISSION, TRANSFER, FUNDING_FEE...)."""
        self._next_income_id += 1
        self.income.setdefault(account, []).append(
            {
                "symbol": symbol,
                "incomeType": income_type,
                "income": amount(value),
                "asset": asset,
                "info": info or income_type,
                "time": time_ms,
                "tranId": self._next_income_id,
                "tradeId": str(trade_id) if trade_id != "" else "",
            }
        )

    # --- order lifecycle ------------------------------------------------------------------

    def _record(self, order: FuturesOrder) -> None:
        self.orders[order.order_id] = order
        self.account_orders.setdefault(order.account, []).append(order)
        self._client_orders.setdefault(
            (order.account, order.symbol, order.client_order_id), []
        ).append(order)
        if order.is_open:
            self.open_orders[order.order_id] = order
            self.open_index.add(order.account, order.symbol, order.order_id, order)
            self._open_clients.setdefault((order.account, order.client_order_id), {})[
                order.order_id
            ] = order
            if order.good_till_date:
                self._gtd[order.order_id] = order

    def _finish(self, order: FuturesOrder, now_ms: int) -> None:
        """Bookkeeping once an order reached a final status."""
        if self.open_orders.pop(order.order_id, None) is not None:
            self.open_index.remove(order.account, order.symbol, order.order_id)
            self._gtd.pop(order.order_id, None)
            clients = self._open_clients.get((order.account, order.client_order_id))
            if clients is not None:
                clients.pop(order.order_id, None)
                if not clients:
                    del self._open_clients[(order.account, order.client_order_id)]
        if order.stop is not None:  # a legacy conditional order ended before its trigger
            self._unwait(order.stop)
            order.stop = None
        if order.algo_id is not None:
            algo = self.algos.get(order.algo_id)
            if algo is not None and algo.status == "TRIGGERED":
                algo.status = "FINISHED"
                algo.update_time = now_ms
                self._algo_event(algo, now_ms)

    def _end(
        self,
        order: FuturesOrder,
        status: str,
        now_ms: int,
        reason: int = 0,
        *,
        publish: bool = True,
    ) -> None:
        """Take an open order off the book and end it as CANCELED or EXPIRED."""
        update = self.market(order.symbol).withdraw(order, now_ms)
        if update is not None:
            self._feed(order.symbol, [update])
        order.status = status
        order.expiry_reason = reason
        order.update_time = now_ms
        if publish:
            self._order_event(order, "CANCELED" if status == "CANCELED" else "EXPIRED", now_ms)
        self._finish(order, now_ms)

    def _apply_trade(
        self,
        order: FuturesOrder,
        price: Decimal,
        quantity: Decimal,
        trade_id: int,
        time_ms: int,
        maker: bool,
        touched: _Touched,
        execution: str = "TRADE",
        *,
        commission_rate: Decimal | None = None,
        announce: Callable[[Fill], None] | None = None,
    ) -> Fill:
        """Apply one fill of ``order``: account, order state, records, events.

        ``commission_rate`` overrides the account's maker/taker rate (exchange orders such as
        COIN-M delivery pay none); ``announce`` replaces the ``ORDER_TRADE_UPDATE`` of the
        fill (the risk layer shapes the events of its exchange orders itself).
        """
        account = self.accounts.account(order.account)
        maker_rate, taker_rate = self.accounts.commission_rates(account)
        if commission_rate is None:
            commission_rate = maker_rate if maker else taker_rate
        outcome = self.accounts.apply_fill(
            account,
            order.symbol,
            order.position_side,
            order.side,
            quantity,
            price,
            commission_rate,
            time_ms,
        )
        math = self.accounts.math(order.symbol)
        order.executed += quantity
        order.cum_quote += abs(math.notional(quantity, price))
        order.realized += outcome.realized_pnl
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        order.update_time = time_ms
        fill = Fill(
            trade_id=trade_id,
            order_id=order.order_id,
            account=order.account,
            symbol=order.symbol,
            side=order.side,
            position_side=order.position_side,
            price=price,
            quantity=quantity,
            quote_quantity=q8(abs(math.notional(quantity, price))),
            realized_pnl=outcome.realized_pnl,
            commission=outcome.commission,
            commission_asset=outcome.asset,
            time=time_ms,
            maker=maker,
        )
        self.fills.append(fill)
        self.account_fills.setdefault(order.account, []).append(fill)
        if outcome.realized_pnl != 0:
            self.add_income(
                order.account,
                order.symbol,
                "REALIZED_PNL",
                outcome.realized_pnl,
                outcome.asset,
                time_ms,
                trade_id,
            )
        if outcome.commission != 0:
            self.add_income(
                order.account,
                order.symbol,
                "COMMISSION",
                -outcome.commission,
                outcome.asset,
                time_ms,
                trade_id,
            )
        touched.add(order.account, outcome.asset, outcome.position)
        if announce is not None:
            announce(fill)
        else:
            self._order_event(order, execution, time_ms, fill)
        if order.status == "FILLED":
            self._finish(order, time_ms)
        if outcome.position.amount == 0 and outcome.closed > 0:
            self._expire_close_position_algos(account, order.symbol, time_ms)
        return fill

    def _maker_fill(self, event: MakerFill, touched: _Touched) -> None:
        order = event.order
        trade = event.trade
        if not isinstance(order, FuturesOrder) or not order.is_open:
            return
        self._apply_trade(
            order, trade.price, trade.quantity, trade.trade_id, trade.time_ms, True, touched
        )
        if event.remaining == 0 and order.is_open:
            # shrunk to the position (reduce-only) and now used up: the rest expires
            self._end(order, "EXPIRED", trade.time_ms, 4)

    def _stp_callback(self, taker: FuturesOrder) -> Callable[[Any], StpAction | None] | None:
        if taker.stp_mode == "NONE" or taker.time_in_force not in ("GTC", "IOC", "GTD", "GTE_GTC"):
            return None
        action = StpAction[taker.stp_mode]

        def decide(maker: Any) -> StpAction | None:
            if isinstance(maker, FuturesOrder) and maker.account == taker.account:
                return action
            return None

        return decide

    def _execute(self, order: FuturesOrder, now_ms: int) -> None:
        """Match ``order`` against the book, then rest or expire what is left."""
        market = self.market(order.symbol)
        account = self.accounts.account(order.account)
        cap = (
            self._reducible(account, order.symbol, order.side, order.position_side)
            if self._is_reducing(order)
            else None
        )
        quantity = order.remaining
        if cap is not None:
            if cap <= 0:
                self._end(order, "EXPIRED", now_ms, 4)
                return
            quantity = min(quantity, cap)
        clipped = quantity < order.remaining
        if order.kind == "MARKET":
            limit = None if order.system else self._market_band(order)
        else:
            limit = order.price if order.price > 0 else None
        result = market.match(
            _side(order), quantity, now_ms, limit_price=limit, self_trade=self._stp_callback(order)
        )
        touched = _Touched()
        for trade in result.trades:  # user makers are applied from maker_fills below
            self._apply_trade(
                order, trade.price, trade.quantity, trade.trade_id, trade.time_ms, False, touched
            )
        for maker_fill in result.maker_fills:
            self._maker_fill(maker_fill, touched)
        for prevention in result.preventions:
            maker = prevention.order
            if (
                isinstance(maker, FuturesOrder)
                and maker.is_open
                and prevention.remaining == 0
                and prevention.action in (StpAction.EXPIRE_MAKER, StpAction.EXPIRE_BOTH)
            ):
                maker.status = "EXPIRED"
                maker.expiry_reason = 1
                maker.update_time = now_ms
                self._order_event(maker, "EXPIRED", now_ms)
                self._finish(maker, now_ms)
        events: list[Any] = list(result.events)
        if order.is_open:
            if result.stopped_by_stp:
                self._feed(order.symbol, events)
                events = []
                self._end(order, "EXPIRED", now_ms, 3 if order.time_in_force == "IOC" else 1)
            elif order.kind == "MARKET":
                self._feed(order.symbol, events)
                events = []
                reason = 4 if clipped else 9
                self._end(order, "EXPIRED", now_ms, reason)
            elif order.time_in_force in ("IOC", "FOK"):
                self._feed(order.symbol, events)
                events = []
                reason = 4 if clipped and result.filled == quantity else 2
                self._end(order, "EXPIRED", now_ms, reason)
            else:
                book_quantity = order.remaining
                if cap is not None:
                    left = self._reducible(account, order.symbol, order.side, order.position_side)
                    assert left is not None
                    book_quantity = min(book_quantity, left)
                if book_quantity <= 0:
                    self._feed(order.symbol, events)
                    events = []
                    self._end(order, "EXPIRED", now_ms, 4)
                else:
                    events.append(
                        market.rest(order, _side(order), order.price, book_quantity, now_ms)
                    )
        self._feed(order.symbol, events)
        self._flush(touched, now_ms)

    def _market_band(self, order: FuturesOrder) -> Decimal:
        """The worst price a MARKET order may reach: the PERCENT_PRICE band around the mark
        (mark x multiplierUp for a BUY, x multiplierDown for a SELL), on the tick grid; what
        lies beyond expires (``er=9``)."""
        instrument = self.instrument(order.symbol)
        mark = self.mark_price(order.symbol)
        tick = instrument.tick_size
        if order.side == "BUY":
            bound = (mark * instrument.multiplier_up / tick).to_integral_value(ROUND_FLOOR)
            return min(bound * tick, instrument.max_price)
        bound = (mark * instrument.multiplier_down / tick).to_integral_value(ROUND_CEILING)
        return max(bound * tick, instrument.min_price)

    def _sync_reducing(self, account: FuturesAccount, symbol: str, now_ms: int) -> None:
        """Shrink resting reduce-only (and hedge closing) orders to the position; expire
        those that can no longer reduce (``er=4``)."""
        for order in list(self.open_index.of(account.key, symbol)):
            if order.waiting or not order.is_open or not self._is_reducing(order):
                continue
            cap = self._reducible(account, symbol, order.side, order.position_side)
            assert cap is not None
            if cap <= 0:
                self._end(order, "EXPIRED", now_ms, 4)
                continue
            market = self.market(symbol)
            resting = market.resting(order)
            if resting is not None and resting > cap:
                update = market.reduce(order, cap, now_ms)
                if update is not None:
                    self._feed(symbol, [update])

    # --- parsing a new order --------------------------------------------------------------

    def parse(self, call: Call, *, system: bool = False) -> OrderRequest:
        """Read and check a ``POST /order`` request's parameters (no account state)."""
        get = call.request.get
        name = self.name
        instrument = call.instrument()
        side = params.side(get, name)
        order_type = params.order_type(get, name)
        if order_type in CONDITIONAL_TYPES:  # unless taken as legacy orders before this
            raise errors.stop_order_switch_algo(product=name)
        if order_type not in ORDER_TYPES:
            raise VenueError.invalid_order_type(product=name)
        position_side = params.position_side(get, name)
        reduce_only = params.boolean(get, "reduceOnly", name)
        if reduce_only is not None and self.dual(self._key(call)):
            raise VenueError.param_not_required("reduceOnly", product=name)
        close_position = params.boolean(get, "closePosition", name)
        if close_position:
            raise VenueError.param_not_required("closePosition", product=name)
        quantity = params.required_decimal(get, "quantity", name)
        price = params.decimal(get, "price", name)
        price_match = params.price_match(get, name)
        limit = order_type == "LIMIT"
        params.check_price_match(price_match, price, name, priced=limit)
        time_in_force = "GTC"
        if limit:
            tif = get("timeInForce")
            if tif is None:
                raise VenueError.mandatory_param_empty_or_malformed("timeInForce", product=name)
            if tif.upper() not in TIME_IN_FORCE[self.product]:
                raise VenueError.invalid_tif(product=name)
            time_in_force = tif.upper()
        params.check_price_sent(price, price_match, name, priced=limit)
        client_order_id = params.client_id(get, "newClientOrderId", name)
        stp_mode = params.stp_mode(get, name, default="EXPIRE_MAKER")
        response_type = params.response_type(get, name)
        good_till_date = params.good_till_date(get, time_in_force, call.now_ms, name)
        if price is not None:
            params.check_price(price, instrument, name)
        params.check_quantity(quantity, instrument, name, market=order_type == "MARKET")
        return OrderRequest(
            symbol=instrument.symbol,
            side=side,
            position_side=position_side,
            type=order_type,
            time_in_force=time_in_force,
            quantity=quantity,
            price=price,
            price_match=price_match,
            reduce_only=bool(reduce_only),
            close_position=False,
            client_order_id=client_order_id,
            stp_mode=stp_mode,
            good_till_date=good_till_date,
            response_type=response_type,
            system=system,
        )

    def _match_price(self, market: MarketState, side: str, price_match: str) -> Decimal:
        """The price ``priceMatch`` picks from the book (-5041 when the level is missing)."""
        spec = PRICE_MATCHES[price_match]
        assert spec is not None
        opponent, level = spec
        buy = side == "BUY"
        if opponent:
            book_side = BookSide.ASK if buy else BookSide.BID
        else:
            book_side = BookSide.BID if buy else BookSide.ASK
        price = market.level(book_side, level)
        if price is None:
            raise errors.bbo_rejected(product=self.name)
        return price

    # --- admission (account state) --------------------------------------------------------

    def _check_position_side(self, account: str, position_side: str) -> None:
        hedge = self.dual(account)
        if hedge == (position_side == "BOTH"):
            raise errors.position_side_mismatch(product=self.name)

    def _check_open_limits(self, account: str, symbol: str) -> None:
        instrument = self.instrument(symbol)
        count = self.open_index.count(account, symbol) + self.algo_index.count(account, symbol)
        if count >= instrument.max_num_orders:
            raise errors.max_open_orders(product=self.name)

    def _check_client_id(self, account: str, client_id: str) -> None:
        if self._open_clients.get((account, client_id)):
            raise errors.duplicate_client_order_id(product=self.name)

    def _check_percent_price(self, request: OrderRequest, price: Decimal | None) -> None:
        instrument = self.instrument(request.symbol)
        market = self.market(request.symbol)
        mark = self.mark_price(request.symbol)
        up = mark * instrument.multiplier_up
        down = mark * instrument.multiplier_down
        if request.type == "MARKET":
            best = market.best(BookSide.ASK if request.side == "BUY" else BookSide.BID)
            if best is not None and (
                (request.side == "BUY" and best > up) or (request.side == "SELL" and best < down)
            ):
                raise errors.market_percent_price(product=self.name)
            return
        assert price is not None
        if request.side == "BUY" and price > up:
            raise errors.price_above_multiplier(product=self.name)
        if request.side == "SELL" and price < down:
            raise errors.price_below_multiplier(product=self.name)

    def _admit(
        self,
        account_key: str,
        request: OrderRequest,
        now_ms: int,
        *,
        record: bool = True,
        existing: FuturesOrder | None = None,
    ) -> FuturesOrder:
        """Check ``request`` against the account and the book and record the new order
        (``record=False``: only check, for ``/order/test``; ``existing``: a triggered legacy
        conditional order that becomes ``request``, already recorded and counted).

        Raises:
            VenueError: -4061 position side, -2022 reduce-only, -4116 duplicate client id,
                -2025 open orders, -4016/-4024/-4131 percent price, -4164 notional, -5022
                post-only would take, -5021 FOK cannot fill, -2019 margin.
        """
        name = self.name
        account = self.accounts.account(account_key)
        symbol = request.symbol
        instrument = self.instrument(symbol)
        market = self.market(symbol)
        if not request.system:
            self._check_position_side(account_key, request.position_side)
        reducing = (
            request.reduce_only
            or (request.position_side == "LONG" and request.side == "SELL")
            or (request.position_side == "SHORT" and request.side == "BUY")
        )
        if reducing:
            cap = self._reducible(account, symbol, request.side, request.position_side)
            assert cap is not None
            if cap <= 0 or (request.position_side != "BOTH" and request.quantity > cap):
                raise errors.reduce_only_rejected(product=name)
        client_order_id = request.client_order_id or self._new_client_id()
        if (
            request.client_order_id is not None
            and not request.system
            and request.algo_id is None
            and existing is None
        ):
            self._check_client_id(account_key, client_order_id)
        price = request.price
        if request.price_match != "NONE":
            price = self._match_price(market, request.side, request.price_match)
        if not request.system:
            if existing is None:
                self._check_open_limits(account_key, symbol)
            self._check_percent_price(request, price)
            if instrument.min_notional is not None and not reducing:
                reference = price if price is not None else self.mark_price(symbol)
                if request.quantity * reference < instrument.min_notional:
                    raise errors.min_notional(
                        format(instrument.min_notional.normalize(), "f"), product=name
                    )
        buy = request.side == "BUY"
        if request.type == "LIMIT" and price is not None:
            if request.time_in_force == "GTX":
                best = market.best(BookSide.ASK if buy else BookSide.BID)
                if best is not None and ((buy and price >= best) or (not buy and price <= best)):
                    raise errors.gtx_rejected(product=name)
            if request.time_in_force == "FOK":
                wanted = request.quantity
                if reducing:
                    cap = self._reducible(account, symbol, request.side, request.position_side)
                    if cap is not None and cap < wanted:
                        raise errors.fok_rejected(product=name)
                if market.available(_side_of(request.side), price) < wanted:
                    raise errors.fok_rejected(product=name)
        if not request.system and not reducing:
            margin_price = price
            if margin_price is None:
                best = market.best(BookSide.ASK if buy else BookSide.BID)
                margin_price = (
                    max(best or ZERO, self.mark_price(symbol))
                    if buy
                    else (best or self.mark_price(symbol))
                )
            self._check_margin(
                account,
                symbol,
                request.side,
                request.position_side,
                request.quantity,
                margin_price,
            )
        if existing is not None:
            existing.quantity = request.quantity
            existing.price = price if price is not None else ZERO
            existing.update_time = now_ms
            return existing
        order = FuturesOrder(
            order_id=self._new_order_id() if record else 0,
            account=account_key,
            symbol=symbol,
            client_order_id=client_order_id,
            side=request.side,
            position_side=request.position_side,
            type=request.type,
            orig_type=request.orig_type or request.type,
            time_in_force=request.time_in_force,
            quantity=request.quantity,
            price=price if price is not None else ZERO,
            time=now_ms,
            update_time=now_ms,
            stop_price=request.stop_price,
            reduce_only=request.reduce_only,
            close_position=request.close_position,
            working_type=request.working_type,
            price_protect=request.price_protect,
            price_match=request.price_match,
            stp_mode=request.stp_mode,
            good_till_date=request.good_till_date,
            activate_price=request.activate_price,
            price_rate=request.price_rate,
            algo_id=request.algo_id,
            system=request.system,
        )
        if record:
            self._record(order)
        return order

    def _start(self, order: FuturesOrder, now_ms: int) -> None:
        """Announce a recorded order (``x=NEW``) and run it."""
        self._order_event(order, "NEW", now_ms)
        self._execute(order, now_ms)

    def submit(
        self, account_key: str, request: OrderRequest, now_ms: int
    ) -> tuple[FuturesOrder, dict[str, Any]]:
        """Admit and run a new order; returns it and its ``ACK`` body."""
        order = self._admit(account_key, request, now_ms)
        ack = order_result(order, self.instrument(order.symbol))
        self._start(order, now_ms)
        self._after_activity({order.symbol}, now_ms)
        return order, ack

    def place_system_order(
        self,
        account: str,
        symbol: str,
        side: str,
        position_side: str,
        quantity: Decimal,
        client_order_id: str,
        order_type: str = "LIMIT",
        price: Decimal | None = None,
        *,
        time_in_force: str = "IOC",
        reduce_only: bool = True,
        off_book: bool = False,
        execution_type: str = "TRADE",
        now_ms: int | None = None,
    ) -> FuturesOrder:
        """Place an exchange-originated order (liquidation, ADL, delivery settlement).

        No filters, margin or open-order limits apply. On the book (default) it takes like an
        IOC taker (``price`` as the limit, None for none) and the rest expires. With
        ``off_book`` the whole quantity fills at ``price`` without touching the book (ADL,
        settlement at the delivery price); the fill gets a venue trade id.

        Args:
            account: The API key.
            symbol: The symbol.
            side: ``BUY`` or ``SELL``.
            position_side: ``BOTH``, ``LONG`` or ``SHORT``.
            quantity: Contracts (COIN-M) or base quantity (USD-M).
            client_order_id: e.g. ``autoclose-<n>``, ``adl_autoclose``,
                ``settlement_autoclose-<n>``, ``delivery_autoclose-<n>``.
            order_type: ``type``/``origType`` shown (``LIMIT``, ``MARKET``, ``LIQUIDATION``).
            price: Limit price (required off the book).
            time_in_force: Shown ``timeInForce`` (Binance: IOC).
            reduce_only: Shown ``reduceOnly``; also caps the fill at the position.
            off_book: Fill at ``price`` without matching.
            execution_type: ``x`` of the fill events (``TRADE`` or ``CALCULATED``).
            now_ms: The time (default: now).

        Returns:
            The order in its final state.
        """
        now_ms = self.now() if now_ms is None else now_ms
        if off_book and price is None:
            raise ValueError("an off-book system order needs a price")
        order = self.record_system_order(
            account,
            symbol,
            side,
            position_side,
            quantity,
            client_order_id,
            order_type,
            price,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            now_ms=now_ms,
        )
        self._order_event(order, "NEW", now_ms)
        if not off_book:
            self._execute(order, now_ms)
            self._after_activity({symbol}, now_ms)
            return order
        touched = _Touched()
        fill_quantity = quantity
        if reduce_only:
            cap = self._reducible(self.accounts.account(account), symbol, side, position_side)
            fill_quantity = min(quantity, cap or ZERO)
        if fill_quantity > 0:
            assert price is not None
            self._next_off_book_trade += 1
            self._apply_trade(
                order,
                price,
                fill_quantity,
                self._next_off_book_trade,
                now_ms,
                False,
                touched,
                execution_type,
            )
        if order.is_open:
            self._end(order, "EXPIRED", now_ms, 4)
        self._flush(touched, now_ms)
        self._after_activity({symbol}, now_ms)
        return order

    def record_system_order(
        self,
        account: str,
        symbol: str,
        side: str,
        position_side: str,
        quantity: Decimal,
        client_order_id: str,
        order_type: str,
        price: Decimal | None,
        *,
        time_in_force: str = "IOC",
        reduce_only: bool = True,
        now_ms: int,
    ) -> FuturesOrder:
        """Record a new exchange-originated order (a new ``orderId``, no STP, ``system``)
        without announcing or running it; the arguments are those of
        :meth:`place_system_order`, whose callers (and the risk engine's liquidation, ADL
        and settlement orders) publish and fill it."""
        order = FuturesOrder(
            order_id=self._new_order_id(),
            account=account,
            symbol=symbol,
            client_order_id=client_order_id,
            side=side,
            position_side=position_side,
            type=order_type,
            orig_type=order_type,
            time_in_force=time_in_force,
            quantity=quantity,
            price=price if price is not None else ZERO,
            time=now_ms,
            update_time=now_ms,
            reduce_only=reduce_only,
            stp_mode="NONE",
            system=True,
        )
        self._record(order)
        return order

    # --- lookups --------------------------------------------------------------------------

    def _find_order(
        self, account: str, symbol: str, order_id: int | None, client: str | None
    ) -> FuturesOrder | None:
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is None or order.account != account or order.symbol != symbol:
                return None
            if client is not None and order.client_order_id != client:
                return None
            return order
        assert client is not None
        return latest_open(self._client_orders.get((account, symbol, client)))

    def _referenced_order(self, call: Call) -> tuple[FuturesOrder | None, Instrument]:
        """The order that ``orderId`` or ``origClientOrderId`` names on the call's ``symbol``
        (None when the account has no such order), and the symbol's instrument."""
        key = self._key(call)
        instrument = call.instrument()
        order_id, client = params.order_reference(call.request.get, self.name)
        return self._find_order(key, instrument.symbol, order_id, client), instrument

    def _symbols_of(self, call: Call, *, required: bool) -> list[str] | None:
        """``symbol`` (or, on COIN-M, ``pair``): the symbols asked for; None for all."""
        instrument = call.optional_instrument()
        if instrument is not None:
            return [instrument.symbol]
        pair = call.request.get("pair") if self.coinm else None
        if pair is not None:
            found = [item.symbol for item in self.instruments.values() if item.pair == pair]
            if not found:
                raise VenueError.bad_symbol(product=self.name)
            return found
        if required:
            raise VenueError.mandatory_param_empty_or_malformed("symbol", product=self.name)
        return None

    # --- REST: orders ---------------------------------------------------------------------

    def _is_legacy_conditional(self, call: Call) -> bool:
        """A COIN-M ``/order`` request for a conditional type (taken the legacy way)."""
        raw_type = call.request.get("type")
        return (
            self.accepts_legacy_conditional
            and raw_type is not None
            and raw_type.upper() in CONDITIONAL_TYPES
        )

    def handle_new_order(self, call: Call) -> Any:
        """``POST /order`` (also a batch item and WS ``order.place``)."""
        key = self._key(call)
        if self._is_legacy_conditional(call):
            order = self.legacy_conditional(call)
            return order_result(order, self.instrument(order.symbol))
        request = self.parse(call)
        order, ack = self.submit(key, request, call.now_ms)
        if request.response_type == "RESULT":
            return order_result(order, self.instrument(order.symbol))
        return ack

    def handle_test_order(self, call: Call) -> Any:
        """``POST /order/test``: every check of a new order, nothing recorded; the body of
        the order it would have been (``orderId`` 0)."""
        if self._is_legacy_conditional(call):
            order = self.legacy_conditional(call, record=False)
            return order_result(order, self.instrument(order.symbol))
        order = self._admit(self._key(call), self.parse(call), call.now_ms, record=False)
        return order_result(order, self.instrument(order.symbol))

    def handle_cancel(self, call: Call) -> Any:
        """``DELETE /order`` (and WS ``order.cancel``)."""
        order, instrument = self._referenced_order(call)
        if order is None or not order.is_open:
            raise VenueError.cancel_rejected(product=self.name)
        self._end(order, "CANCELED", call.now_ms)
        return order_result(order, instrument)

    def handle_cancel_all(self, call: Call) -> Any:
        """``DELETE /allOpenOrders``."""
        key = self._key(call)
        instrument = call.instrument()
        self.cancel_all(key, instrument.symbol, call.now_ms)
        return {"code": 200, "msg": CANCEL_ALL_DONE}

    def cancel_all(self, account: str, symbol: str, now_ms: int) -> int:
        """Cancel every open regular order of ``account`` on ``symbol``; returns the count."""
        count = 0
        for order in list(self.open_index.of(account, symbol)):
            if order.is_open:
                self._end(order, "CANCELED", now_ms)
                count += 1
        return count

    def open_orders_of(
        self, account: str, symbols: Iterable[str] | None = None
    ) -> list[FuturesOrder]:
        """The account's open regular orders (on ``symbols``), by ``orderId``."""
        wanted = None if symbols is None else set(symbols)
        return sorted(self.open_index.of_account(account, wanted), key=lambda item: item.order_id)

    def handle_batch_cancel(self, call: Call) -> Any:
        """``DELETE /batchOrders``: ``orderIdList`` or ``origClientOrderIdList`` (max 10)."""
        key = self._key(call)
        instrument = call.instrument()
        ids_raw = call.request.get("orderIdList")
        clients_raw = call.request.get("origClientOrderIdList")
        if ids_raw is None and clients_raw is None:
            raise VenueError.either_param_required(
                "orderIdList", "origClientOrderIdList", product=self.name
            )
        references: list[tuple[int | None, str | None]] = []
        if ids_raw is not None:
            for item in _json_list(ids_raw, "orderIdList", self.name):
                if not params.json_integer(item):
                    raise VenueError.invalid_parameter("orderIdList", product=self.name)
                references.append((item, None))
        else:
            assert clients_raw is not None
            for item in _json_list(clients_raw, "origClientOrderIdList", self.name):
                if not isinstance(item, str):
                    raise VenueError.invalid_parameter("origClientOrderIdList", product=self.name)
                references.append((None, item))
        if len(references) > BATCH_CANCEL_MAX:
            raise errors.max_cancel_size(product=self.name)
        results: list[Any] = []
        for order_id, client in references:
            order = self._find_order(key, instrument.symbol, order_id, client)
            if order is None or not order.is_open:
                results.append(VenueError.cancel_rejected(product=self.name).body())
                continue
            self._end(order, "CANCELED", call.now_ms)
            results.append(order_result(order, instrument))
        return results

    def handle_batch_place(self, call: Call) -> Any:
        """``POST /batchOrders``: up to 5 orders, each answered with its body or error."""
        return self._each_batch_item(call, self.handle_new_order)

    def handle_batch_modify(self, call: Call) -> Any:
        """``PUT /batchOrders``: up to 5 amendments."""
        return self._each_batch_item(call, self.handle_modify)

    def _each_batch_item(self, call: Call, handle: Callable[[Call], Any]) -> list[Any]:
        """Run ``handle`` on each item of ``batchOrders`` as a call of its own; the answer
        lists each item's body, or its error body when it was refused."""
        results: list[Any] = []
        for item in self._batch_items(call):
            try:
                results.append(handle(_with_params(call, item)))
            except VenueError as error:
                results.append(error.body())
        return results

    def _batch_items(self, call: Call) -> list[dict[str, str]]:
        raw = call.request.get("batchOrders")
        if raw is None:
            raise VenueError.mandatory_param_empty_or_malformed("batchOrders", product=self.name)
        items = _json_list(raw, "batchOrders", self.name)
        if not items or len(items) > BATCH_PLACE_MAX:
            raise errors.batch_size(product=self.name)
        converted = []
        for item in items:
            if not isinstance(item, dict):
                raise VenueError.invalid_parameter("batchOrders", product=self.name)
            converted.append({str(name): _text(value) for name, value in item.items()})
        return converted

    def handle_modify(self, call: Call) -> Any:
        """``PUT /order`` (and WS ``order.modify``): new price and quantity of a LIMIT order.

        The order leaves its place in the queue, trades if the new price crosses, then rests
        again. A partially filled order whose new quantity is not above the executed quantity
        is cancelled, as is a GTX order whose new price would take.
        """
        name = self.name
        get = call.request.get
        key = self._key(call)
        instrument = call.instrument()
        order_id, client = params.order_reference(get, name)
        side = params.side(get, name)
        quantity = params.required_decimal(get, "quantity", name)
        price_match = params.price_match(get, name)
        price = params.decimal(get, "price", name)
        params.check_price_sent(price, price_match, name, priced=True)
        params.check_price_match(price_match, price, name, priced=True)
        order = self._find_order(key, instrument.symbol, order_id, client)
        if order is None or not order.is_open:
            raise VenueError.no_such_order(product=name)
        if order.type != "LIMIT":
            raise errors.modify_limit_only(product=name)
        if order.side != side:
            raise VenueError.invalid_parameter("side", product=name)
        if order.modifications >= MAX_MODIFICATIONS:
            raise errors.modify_count(product=name)
        market = self.market(order.symbol)
        if price_match != "NONE":
            price = self._match_price(market, side, price_match)
        assert price is not None
        params.check_price(price, instrument, name)
        params.check_quantity(quantity, instrument, name)
        if price == order.price and quantity == order.quantity and price_match == order.price_match:
            raise errors.modify_same(product=name)
        request = OrderRequest(
            symbol=order.symbol,
            side=order.side,
            position_side=order.position_side,
            type="LIMIT",
            time_in_force=order.time_in_force,
            quantity=quantity,
            price=price,
            reduce_only=order.reduce_only,
        )
        self._check_percent_price(request, price)
        minimum = instrument.min_notional
        if minimum is not None and not self._is_reducing(order) and quantity * price < minimum:
            raise errors.min_notional(format(minimum.normalize(), "f"), product=name)
        now_ms = call.now_ms
        if quantity <= order.executed:
            self._end(order, "CANCELED", now_ms)
            return order_result(order, instrument)
        buy = side == "BUY"
        if order.time_in_force == "GTX":
            best = market.best(BookSide.ASK if buy else BookSide.BID)
            if best is not None and ((buy and price >= best) or (not buy and price <= best)):
                self._end(order, "CANCELED", now_ms)
                return order_result(order, instrument)
        account = self.accounts.account(key)
        if not self._is_reducing(order):
            self._check_margin(
                account,
                order.symbol,
                side,
                order.position_side,
                quantity - order.executed,
                price,
                replacing=order,
            )
        update = market.withdraw(order, now_ms)
        if update is not None:
            self._feed(order.symbol, [update])
        self._modify_ids += 1
        order.modifications += 1
        order.amendments.append(
            {
                "amendmentId": self._modify_ids,
                "symbol": order.symbol,
                "pair": instrument.pair,
                "orderId": order.order_id,
                "clientOrderId": order.client_order_id,
                "time": now_ms,
                "amendment": {
                    "price": {
                        "before": price_text(order.price, instrument),
                        "after": price_text(price, instrument),
                    },
                    "origQty": {
                        "before": qty_text(order.quantity, instrument),
                        "after": qty_text(quantity, instrument),
                    },
                    "count": order.modifications,
                },
            }
        )
        order.price = price
        order.quantity = quantity
        order.price_match = price_match
        order.update_time = now_ms
        self._order_event(order, "AMENDMENT", now_ms, modify_id=self._modify_ids)
        self._execute(order, now_ms)
        self._after_activity({order.symbol}, now_ms)
        return order_result(order, instrument)

    def handle_query(self, call: Call) -> Any:
        """``GET /order`` (and WS ``order.status``)."""
        order, instrument = self._referenced_order(call)
        if order is None:
            raise VenueError.no_such_order(product=self.name)
        return order_query(order, instrument)

    def handle_open_order(self, call: Call) -> Any:
        """``GET /openOrder``: one open order (``-2013`` when it is not open)."""
        order, instrument = self._referenced_order(call)
        if order is None or not order.is_open:
            raise VenueError.no_such_order(product=self.name)
        return order_query(order, instrument)

    def handle_open_orders(self, call: Call) -> Any:
        """``GET /openOrders``: the account's open orders (of ``symbol``/``pair``)."""
        key = self._key(call)
        symbols = self._symbols_of(call, required=False)
        return [
            order_query(order, self.instrument(order.symbol))
            for order in self.open_orders_of(key, symbols)
        ]

    def handle_all_orders(self, call: Call) -> Any:
        """``GET /allOrders``: from ``orderId`` or in ``[startTime, endTime]``, ``limit``.

        The window is at most 7 days (``-1127``, as ``userTrades``). Without ``orderId`` and
        times it is the last 7 days (the most recent ``limit`` orders); a lone ``startTime``
        or ``endTime`` spans the 7 days from or up to it; ``orderId`` alone has no window.
        """
        key = self._key(call)
        symbols = self._symbols_of(call, required=True)
        assert symbols is not None
        from_id = call.integer("orderId")
        start, end = call.times()
        explicit_start = start is not None
        params.check_window(start, end, self.name)
        if start is not None and end is None:
            end = start + SEVEN_DAYS_MS
        elif start is None and end is not None:
            start = end - SEVEN_DAYS_MS
        elif start is None and from_id is None:
            end = call.now_ms
            start = end - SEVEN_DAYS_MS
        limit = params.query_limit(call)
        rows = [
            order
            for order in self.account_orders.get(key, ())
            if order.symbol in symbols
            and (from_id is None or order.order_id >= from_id)
            and params.within(order.time, start, end)
        ]
        rows = params.page(rows, limit, from_start=from_id is not None or explicit_start)
        return [order_query(order, self.instrument(order.symbol)) for order in rows]

    def handle_user_trades(self, call: Call) -> Any:
        """``GET /userTrades``: ``orderId``, ``fromId`` or ``[startTime, endTime]`` (<= 7 days)."""
        key = self._key(call)
        symbols = self._symbols_of(call, required=True)
        assert symbols is not None
        order_id = call.integer("orderId")
        from_id = call.integer("fromId")
        start, end = call.times()
        if from_id is not None and (start is not None or end is not None):
            raise VenueError.optional_params_bad_combo(product=self.name)
        params.check_window(start, end, self.name)
        limit = params.query_limit(call)
        rows = [
            fill
            for fill in self.account_fills.get(key, ())
            if fill.symbol in symbols
            and (order_id is None or fill.order_id == order_id)
            and (from_id is None or fill.trade_id >= from_id)
            and params.within(fill.time, start, end)
        ]
        rows.sort(key=lambda fill: (fill.trade_id, fill.order_id))
        rows = params.page(rows, limit, from_start=from_id is not None or start is not None)
        return [user_trade(fill, self.instrument(fill.symbol)) for fill in rows]

    def handle_amendments(self, call: Call) -> Any:
        """``GET /orderAmendment``: an order's amendment history."""
        order, _ = self._referenced_order(call)
        if order is None:
            raise VenueError.no_such_order(product=self.name)
        limit = params.query_limit(call, 50, 100)
        return list(order.amendments[-limit:])

    def handle_countdown(self, call: Call) -> Any:
        """``POST /countdownCancelAll``: cancel the symbol's open orders after
        ``countdownTime`` ms unless called again (0 stops the timer)."""
        key = self._key(call)
        instrument = call.instrument()
        countdown = call.integer("countdownTime")
        if countdown is None:
            raise VenueError.mandatory_param_empty_or_malformed("countdownTime", product=self.name)
        if countdown == 0:
            self.countdowns.pop((key, instrument.symbol), None)
        else:
            self.countdowns[(key, instrument.symbol)] = (call.now_ms + countdown, countdown)
        return {"symbol": instrument.symbol, "countdownTime": str(countdown)}

    # --- the engine contract --------------------------------------------------------------

    def routes(self) -> dict[tuple[str, str], Route]:
        """REST endpoints of this product line (see :mod:`scenarios.venue.futures_views` for
        the account ones)."""
        from scenarios.venue.futures_views import account_routes
        from scenarios.venue.rest import Route

        prefix = "/dapi/v1" if self.coinm else "/fapi/v1"
        trade, user = Security.TRADE, Security.USER_DATA
        table: list[tuple[str, str, Security, Callable[[Call], Any]]] = [
            ("POST", "order", trade, self.handle_new_order),
            ("POST", "order/test", trade, self.handle_test_order),
            ("PUT", "order", trade, self.handle_modify),
            ("DELETE", "order", trade, self.handle_cancel),
            ("GET", "order", user, self.handle_query),
            ("GET", "openOrder", user, self.handle_open_order),
            ("GET", "openOrders", user, self.handle_open_orders),
            ("GET", "allOrders", user, self.handle_all_orders),
            ("GET", "userTrades", user, self.handle_user_trades),
            ("GET", "orderAmendment", user, self.handle_amendments),
            ("POST", "batchOrders", trade, self.handle_batch_place),
            ("PUT", "batchOrders", trade, self.handle_batch_modify),
            ("DELETE", "batchOrders", trade, self.handle_batch_cancel),
            ("DELETE", "allOpenOrders", trade, self.handle_cancel_all),
            ("POST", "countdownCancelAll", trade, self.handle_countdown),
            ("POST", "algoOrder", trade, self.handle_new_algo),
            ("DELETE", "algoOrder", trade, self.handle_cancel_algo),
            ("DELETE", "algoOpenOrders", trade, self.handle_cancel_all_algo),
            ("GET", "algoOrder", user, self.handle_query_algo),
            ("GET", "openAlgoOrders", user, self.handle_open_algos),
            ("GET", "allAlgoOrders", user, self.handle_all_algos),
        ]
        result = {
            (method, f"{prefix}/{path}"): Route(self.product, security, handler)
            for method, path, security, handler in table
        }
        result.update(account_routes(self))
        return {
            route_key: Route(route.product, route.security, self._entry(route.handler))
            for route_key, route in result.items()
        }

    def ws_api_methods(self) -> dict[str, WsMethod]:
        """``ws-fapi``/``ws-dapi`` trading and account methods (same bodies as REST)."""
        from scenarios.venue.futures_views import account_ws_methods

        trade = Security.TRADE
        methods = {
            "order.place": WsMethod(self.handle_new_order, trade, 0, 1),
            "order.cancel": WsMethod(self.handle_cancel, trade, 1),
            "order.modify": WsMethod(self.handle_modify, trade, 1, 1),
            "order.status": WsMethod(self.handle_query, Security.USER_DATA, 1),
        }
        if not self.coinm:
            methods["algoOrder.place"] = WsMethod(self.handle_new_algo, trade, 0, 1)
            methods["algoOrder.cancel"] = WsMethod(self.handle_cancel_algo, trade, 1)
        methods.update(account_ws_methods(self))
        return {
            name: WsMethod(
                self._entry(method.handler), method.security, method.weight, method.orders
            )
            for name, method in methods.items()
        }

    def on_market(self, symbol: str, events: Iterable[Any]) -> None:
        """Fills of resting orders by background activity or control hooks.

        The fills are applied (and published) at once; what would change the book again
        (shrinking reduce-only orders, triggering conditional orders) waits for :meth:`drain`,
        which :meth:`on_time` and every request run first: the venue feeds these events to
        the public streams only after this returns.
        """
        if symbol not in self.instruments:
            return
        touched = _Touched()
        now_ms = self.now()
        self._in_market_callback = True
        try:
            for event in events:
                if isinstance(event, MakerFill):
                    self._maker_fill(event, touched)
                elif isinstance(event, Trade):
                    now_ms = max(now_ms, event.time_ms)
            if touched.accounts:
                self._flush(touched, now_ms)
        finally:
            self._in_market_callback = False
        if self.waiting.get(symbol):
            self._pending_triggers.add(symbol)
        if self.has_any_positions:
            self.risk.pending.add(symbol)

    def drain(self, now_ms: int | None = None) -> None:
        """Do the work :meth:`on_market` deferred: re-check reduce-only orders against the
        positions, trigger conditional orders and run the risk checks (margin calls,
        liquidations) of the symbols that moved."""
        if not self._pending_sync and not self._pending_triggers:
            if self.risk.pending:
                self.risk.run_pending(self.now() if now_ms is None else now_ms)
            return
        now_ms = self.now() if now_ms is None else now_ms
        pending_sync, self._pending_sync = self._pending_sync, set()
        for key, symbol in sorted(pending_sync):
            self._sync_reducing(self.accounts.account(key), symbol, now_ms)
        pending_triggers, self._pending_triggers = self._pending_triggers, set()
        if pending_triggers:
            self._check_triggers(pending_triggers, now_ms)
        if self.risk.pending:
            self.risk.run_pending(now_ms)

    def _entry(self, handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
        """A request handler that first does the deferred work (see :meth:`drain`)."""

        def run(call: Call) -> Any:
            self.drain(call.now_ms)
            return handler(call)

        run.__doc__ = handler.__doc__
        return run

    def on_time(self, now_ms: int) -> None:
        """Deferred work, GTD expiries, countdown cancels, conditional triggers on the mark
        price."""
        self.drain(now_ms)
        if self._gtd:
            for order in list(self._gtd.values()):
                if order.good_till_date <= now_ms and order.is_open:
                    self._end(order, "EXPIRED", now_ms)
        for (account, symbol), (deadline, _) in list(self.countdowns.items()):
            if deadline <= now_ms:
                del self.countdowns[(account, symbol)]
                self.cancel_all(account, symbol, now_ms)
        if self.waiting:
            self._check_triggers(list(self.waiting), now_ms)
        self.risk.on_time(now_ms)

    def control_actions(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        """``fund``, ``fee_tier``, ``orders``, ``fills``, ``positions``, ``balances``, and the
        risk layer's ``liquidate``, ``adl``, ``settle``, ``funding``, ``margin``."""
        from scenarios.venue.futures_views import control_actions

        def entry(action: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
            def run(data: dict[str, Any]) -> Any:
                self.drain()
                return action(data)

            return run

        actions = dict(control_actions(self))
        actions.update(self.risk.control_actions())
        return {name: entry(action) for name, action in actions.items()}

    # --- account-level helpers for the views and later layers -----------------------------

    def has_open_orders(self, account: str, symbol: str | None = None) -> bool:
        """Open regular or conditional orders of ``account`` (on ``symbol``)."""
        return bool(
            self.open_index.count(account, symbol) or self.algo_index.count(account, symbol)
        )

    @property
    def has_any_positions(self) -> bool:
        """Whether any account holds a position on this line (risk checks skip otherwise)."""
        return bool(self.accounts.holders)

    def _after_activity(self, symbols: Iterable[str], now_ms: int) -> None:
        """After the engine's own trading: conditional triggers now, risk checks at the next
        :meth:`drain` (the book moved, so mark prices may have)."""
        super()._after_activity(symbols, now_ms)
        if self.has_any_positions:
            self.risk.pending.update(symbols)

    def has_positions(self, account: str, symbol: str | None = None) -> bool:
        found = self.accounts.accounts.get(account)
        if found is None:
            return False
        return any(
            position.amount != 0 and (symbol is None or position.symbol == symbol)
            for position in found.positions.values()
        )

    def publish_account_update(
        self,
        account: FuturesAccount,
        reason: str,
        now_ms: int,
        *,
        assets: Mapping[str, Decimal] | Iterable[str] = (),
        positions: Iterable[Position] = (),
        funding_symbol: str | None = None,
    ) -> None:
        """Publish an ``ACCOUNT_UPDATE`` (for funding, deposits, liquidation clearing...)."""
        if self._listening(account.key):
            self._publish(
                account.key,
                self.accounts.account_update(
                    account,
                    reason,
                    now_ms,
                    assets=assets,
                    positions=positions,
                    funding_symbol=funding_symbol,
                ),
            )

    def publish(self, account: str, event: dict[str, Any]) -> None:
        """Publish any user-data event of ``account`` (``MARGIN_CALL``...)."""
        self._publish(account, event)


# --- helpers ---------------------------------------------------------------------------------


def _side_of(side: str) -> Side:
    return Side.BUY if side == "BUY" else Side.SELL


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_list(raw: str, name: str, product: str) -> list[Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise VenueError.invalid_json(name, product=product) from None
    if not isinstance(value, list):
        raise VenueError.invalid_parameter(name, product=product)
    return value


def _with_params(call: Call, item: Mapping[str, str]) -> Call:
    request = Request(
        call.request.method,
        call.request.path,
        b"",
        b"",
        dict(item),
        call.request.headers,
        call.request.client,
    )
    return attrs.evolve(call, request=request)


def build_futures_engines(venue: Any) -> dict[Product, FuturesEngine]:
    """The USD-M and COIN-M engines of a venue, sharing the position mode."""
    shared = SharedFuturesSettings()
    usdm = FuturesEngine(venue, Product.USDM, shared)
    coinm = FuturesEngine(venue, Product.COINM, shared)
    usdm.sibling, coinm.sibling = coinm, usdm
    return {Product.USDM: usdm, Product.COINM: coinm}
