"""Futures risk events: funding, margin calls, liquidation, auto-deleveraging and delivery.

One :class:`FuturesRisk` per futures engine (USDⓈ-M and COIN-M); the engine calls it from
:meth:`~scenarios.venue.futures.FuturesEngine.on_time` (every activity tick, paused or not) and
from :meth:`~scenarios.venue.futures.FuturesEngine.drain` for the symbols whose book moved
(market events, control price moves, the engine's own trades). Risk follows the **mark
price**, as on Binance.

**Funding** (perpetuals). The market records a settlement every 8 hours
(:class:`~scenarios.venue.market.FundingRecord`, what ``GET /fapi/v1/fundingRate`` shows); each
new record is applied to every open position of the symbol: ``payment = -fundingRate x signed
notional at the record's mark price`` (longs pay when the rate is positive; COIN-M notional is
``contracts x contractSize / mark`` in the base asset). A cross position's payment goes to the
cross wallet and its ``ACCOUNT_UPDATE`` (reason ``FUNDING_FEE``, ``S`` the symbol) carries only
``B``; an isolated position's payment goes to its isolated wallet and the event carries ``B``
plus that position in ``P``. Each payment is a ``FUNDING_FEE`` income row stamped with the
funding time.

**Margin.** A cross group is every cross position of one margin asset: margin balance = cross
wallet + their unrealized PnL, maintenance = their maintenance margins. An isolated position
is its own group: isolated wallet + its PnL against its maintenance margin. When maintenance
reaches :data:`MARGIN_CALL_RATIO` of the margin balance the account gets one ``MARGIN_CALL``
(``cw`` only for a cross group, ``mt`` ``CROSSED``/``ISOLATED``); the next one comes only after
the ratio went back below the threshold (one per episode).

**Liquidation** when margin balance <= maintenance margin:

1. the account's open orders in the group's scope (the isolated symbol; every cross symbol of
   the margin asset) expire, ``x=EXPIRED`` with ``er=5`` ("expired when the account was
   liquidated");
2. each position of the group gets a liquidation order: ``c=autoclose-<digits>``,
   ``o``/``ot`` ``LIQUIDATION``, ``f=IOC``, ``R=true``, price = the position's **bankruptcy
   price** (where its margin is exactly used up), first announced by a zero-quantity
   ``x=CALCULATED`` event with ``X=NEW_INSURANCE`` (Binance's "liquidation with insurance
   fund" status; no ``N``/``n`` as nothing was charged);
3. the order takes from the book down (up) to the bankruptcy price, each fill an
   ``x=CALCULATED`` execution (``X`` ``PARTIALLY_FILLED``/``FILLED``, taker commission); what
   the book cannot absorb within the bankruptcy price is taken over by the insurance fund at
   that price (one more ``x=CALCULATED`` execution), or, with ADL, closed against opposite
   positions (below);
4. one ``ACCOUNT_UPDATE`` (reason ``ORDER``) with the closed positions, then the **insurance
   clearance**: the margin left after closing is charged up to ``notional x liquidationFee``
   (``exchangeInfo``'s rate), a negative balance is made good by the insurance fund (the user
   never loses more than the margin), as an ``INSURANCE_CLEAR`` income row and an
   ``ACCOUNT_UPDATE`` with reason ``INSURANCE_CLEAR``;
5. the public ``forceOrder`` event (``<symbol>@forceOrder`` and ``!forceOrder@arr``):
   ``LIMIT``/``IOC`` at the bankruptcy price, ``ap`` the average fill.

**Auto-deleveraging.** When a liquidation is not absorbed (the control API's ``adl`` option, or
:attr:`FuturesRisk.auto_adl` for every remainder the book leaves), the opposite positions of
other accounts are closed at the bankruptcy price, best ranked first (Binance's ranking: PnL
percentage x effective leverage when in profit, PnL percentage / effective leverage when not).
Each gets ``c=adl_autoclose`` (``LIMIT``/``IOC``, ``R=true``): a zero-quantity ``x=CALCULATED``
``X=NEW_ADL`` event, then its ``x=CALCULATED`` execution; the liquidated order shows the same
trade (one trade id, one price) as its own ``x=CALCULATED`` execution.

**Delivery** of dated contracts (``CURRENT_QUARTER``, ``NEXT_QUARTER``...) at
``deliveryDate`` (or on demand): open orders are cancelled (``er=7``, conditional orders
``CANCELED``), and every position is closed at the settlement price, the mean of the index
price over the last 30 minutes before delivery (the index now when the venue did not run
then), by an order ``settlement_autoclose-<digits>`` (USD-M; taker commission) or
``delivery_autoclose-<digits>`` (COIN-M; no commission, so no ``N``/``n``), ``LIMIT``/``IOC``
at that price, announced (``x=NEW``) and filled off the book (``x=TRADE``, no ``TRADE_LITE``),
followed by ``ACCOUNT_UPDATE`` (reason ``ORDER``).

**Control actions** (``POST /_venue/<usdm|coinm>/<name>``; ``account`` defaults to the first
key): ``liquidate`` ``{account, symbol, positionSide?, adl?}``, ``adl`` ``{account, symbol,
positionSide?, quantity?}`` (deleverage at the mark price), ``settle`` ``{symbol, price?}``,
``funding`` ``{symbol?, rate?}`` (settle funding now at the current rate and mark price; such a
settlement is not a ``fundingRate`` record, which the market keeps), ``margin`` ``{account?,
autoAdl?}`` (every group's figures; sets :attr:`FuturesRisk.auto_adl`). Each returns what
happened: orders (as ``GET /order`` shows them), fills (as ``userTrades``), payments.

Approximations: whole positions are liquidated (no partial liquidation by tier); the insurance
fund's takeover is final (the fund's own trading is not modelled, its balance per asset is
:attr:`FuturesRisk.insurance_fund`); multi-assets mode is checked per asset; a delivered
contract keeps trading afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Final

import attrs

from scenarios.venue import futures_params as params
from scenarios.venue import payloads
from scenarios.venue.feeds import precision_of
from scenarios.venue.futures_accounts import ZERO, FuturesAccount, Position, amount, q8
from scenarios.venue.futures_orders import (
    Fill,
    FuturesOrder,
    average_price,
    order_query,
    user_trade,
)
from scenarios.venue.instruments import Instrument, Product
from scenarios.venue.market import FUNDING_INTERVAL_MS, Side
from scenarios.venue.payloads import format_decimal

if TYPE_CHECKING:
    from scenarios.venue.futures import FuturesEngine, _Touched

__all__ = [
    "MARGIN_CALL_RATIO",
    "SETTLEMENT_WINDOW_MS",
    "FuturesRisk",
    "MarginGroup",
]

#: A margin call is sent once maintenance margin reaches this share of the margin balance.
MARGIN_CALL_RATIO: Final = Decimal("0.8")
#: Binance's delivery price is the mean index price of the last 30 minutes before delivery.
SETTLEMENT_WINDOW_MS: Final = 30 * 60_000
#: Liquidation rounds per check (a liquidation moves the book and may liquidate others).
RISK_ROUNDS: Final = 20
#: ``er`` of orders expired by a liquidation and cancelled by delivery.
LIQUIDATED: Final = 5
DELISTED: Final = 7
#: Effective leverage used for ADL ranking when an account has no margin balance left.
_NO_BALANCE_LEVERAGE: Final = Decimal(1_000_000)


@attrs.frozen
class MarginGroup:
    """Positions that share one margin: a cross group (every cross position of a margin
    asset) or one isolated position.

    Attributes:
        account: The account.
        asset: The margin asset.
        positions: The open positions of the group.
        isolated: Whether it is an isolated position.
        margin_balance: Wallet (cross or isolated) plus the positions' unrealized PnL.
        maint_margin: The positions' maintenance margin.
        marks: The mark price used for each symbol.
    """

    account: FuturesAccount
    asset: str
    positions: tuple[Position, ...]
    isolated: bool
    margin_balance: Decimal
    maint_margin: Decimal
    marks: dict[str, Decimal]

    @property
    def key(self) -> tuple[str, ...]:
        """Identifies the group across checks (for one margin call per episode)."""
        if self.isolated:
            position = self.positions[0]
            return (self.account.key, "isolated", position.symbol, position.position_side)
        return (self.account.key, "cross", self.asset)

    @property
    def ratio(self) -> Decimal:
        """Maintenance margin over margin balance (>= 1 means liquidation)."""
        if self.margin_balance <= 0:
            return Decimal("Infinity") if self.maint_margin > 0 else ZERO
        return self.maint_margin / self.margin_balance


class FuturesRisk:
    """The risk layer of one futures engine (see the module docstring).

    Args:
        engine: The engine; the layer uses its accounts, markets and order primitives.
    """

    def __init__(self, engine: FuturesEngine) -> None:
        self.engine = engine
        self.accounts = engine.accounts
        self.product = engine.product
        now_ms = engine.now()
        #: Funding applied up to this funding time, per perpetual.
        self.funded_through: dict[str, int] = {
            symbol: now_ms for symbol, item in engine.instruments.items() if item.is_perpetual
        }
        #: Delivered contracts: ``symbol -> (time, settlement price)``.
        self.settled: dict[str, tuple[int, Decimal]] = {}
        #: Index prices seen in the last 30 minutes before delivery: ``(sum, count)``.
        self.settlement_samples: dict[str, tuple[Decimal, int]] = {}
        #: Groups that got their MARGIN_CALL in the current episode.
        self.margin_called: set[tuple[str, ...]] = set()
        #: The insurance fund's net balance per asset (clearance fees in, deficits out).
        self.insurance_fund: dict[str, Decimal] = {}
        #: Symbols whose book moved since the last check.
        self.pending: set[str] = set()
        #: Deleverage whatever a liquidation leaves on the book, instead of the insurance fund.
        self.auto_adl = False
        self._running = False
        self._sequence = 0

    # --- entry points -----------------------------------------------------------------------

    def on_time(self, now_ms: int) -> None:
        """Funding that fell due, deliveries that fell due, then margin checks."""
        engine = self.engine
        for symbol, instrument in engine.instruments.items():
            if instrument.is_perpetual:
                engine.market(symbol).advance_time(now_ms)
            elif symbol not in self.settled:
                self._sample_settlement(instrument, now_ms)
        self.settle_due_funding(now_ms)
        for symbol, instrument in engine.instruments.items():
            if (
                not instrument.is_perpetual
                and symbol not in self.settled
                and instrument.delivery_date_ms is not None
                and instrument.delivery_date_ms <= now_ms
            ):
                self.settle(symbol, now_ms)
        self.check(now_ms)

    def run_pending(self, now_ms: int) -> None:
        """Margin checks of the accounts holding the symbols whose book moved."""
        symbols, self.pending = self.pending, set()
        if symbols:
            self.check(now_ms, symbols)

    # --- funding ----------------------------------------------------------------------------

    def settle_due_funding(self, now_ms: int) -> list[dict[str, Any]]:
        """Apply every funding record the markets made since the last call."""
        payments: list[dict[str, Any]] = []
        for symbol, through in list(self.funded_through.items()):
            if _next_funding(through) > now_ms:
                continue  # no settlement fell due since the last one applied
            records = self.engine.market(symbol).funding_history(start_ms=through + 1, limit=1000)
            for record in records:
                payments.extend(
                    self.apply_funding(
                        symbol,
                        record.funding_rate,
                        record.mark_price,
                        record.funding_time_ms,
                        now_ms,
                    )
                )
            if records:
                self.funded_through[symbol] = records[-1].funding_time_ms
        return payments

    def apply_funding(
        self, symbol: str, rate: Decimal, mark: Decimal, funding_ms: int, now_ms: int
    ) -> list[dict[str, Any]]:
        """Charge or pay one funding settlement of ``symbol`` to every open position.

        Args:
            symbol: A perpetual.
            rate: The funding rate (positive: longs pay shorts).
            mark: The mark price the notional is valued at.
            funding_ms: The funding time (the income rows' ``time``).
            now_ms: When it is applied (the events' time).

        Returns:
            One row per payment: account, symbol, positionSide, income, asset.
        """
        accounts = self.accounts
        math = accounts.math(symbol)
        asset = accounts.margin_asset(symbol)
        rows: list[dict[str, Any]] = []
        for account in accounts.accounts.values():
            for position in list(account.positions.values()):
                if position.symbol != symbol or position.amount == 0:
                    continue
                payment = q8(-math.notional(position.amount, mark) * rate)
                if payment == 0:
                    continue
                isolated = account.setting(symbol).isolated
                if isolated:
                    position.isolated_wallet += payment
                    account.wallet_times[asset] = now_ms
                else:
                    accounts.adjust_wallet(account, asset, payment, now_ms)
                self.engine.add_income(
                    account.key, symbol, "FUNDING_FEE", payment, asset, funding_ms
                )
                self._account_update(
                    account,
                    "FUNDING_FEE",
                    now_ms,
                    assets={asset: payment},
                    positions=[position] if isolated else (),
                    funding_symbol=symbol,
                    with_positions=isolated,
                )
                rows.append(
                    {
                        "account": account.key,
                        "symbol": symbol,
                        "positionSide": position.position_side,
                        "fundingRate": format_decimal(rate, 8),
                        "markPrice": format_decimal(mark, 8),
                        "income": amount(payment),
                        "asset": asset,
                        "time": funding_ms,
                    }
                )
        return rows

    # --- margin -----------------------------------------------------------------------------

    def groups(self, account: FuturesAccount) -> list[MarginGroup]:
        """The account's margin groups with open positions (cross per asset, then isolated)."""
        accounts = self.accounts
        marks: dict[str, Decimal] = {}

        def mark_of(symbol: str) -> Decimal:
            if symbol not in marks:
                marks[symbol] = self.engine.mark_price(symbol)
            return marks[symbol]

        cross: dict[str, list[Position]] = {}
        isolated: list[Position] = []
        for position in account.positions.values():
            if position.amount == 0:
                continue
            if account.setting(position.symbol).isolated:
                isolated.append(position)
            else:
                cross.setdefault(accounts.margin_asset(position.symbol), []).append(position)
        result: list[MarginGroup] = []
        for asset, positions in cross.items():
            balance = account.wallets.get(asset, ZERO)
            maint = ZERO
            for position in positions:
                mark = mark_of(position.symbol)
                balance += accounts.unrealized_pnl(position, mark)
                maint += accounts.maint_margin(position, mark)
            result.append(
                MarginGroup(account, asset, tuple(positions), False, balance, maint, dict(marks))
            )
        for position in isolated:
            mark = mark_of(position.symbol)
            result.append(
                MarginGroup(
                    account,
                    accounts.margin_asset(position.symbol),
                    (position,),
                    True,
                    position.isolated_wallet + accounts.unrealized_pnl(position, mark),
                    accounts.maint_margin(position, mark),
                    {position.symbol: mark},
                )
            )
        return result

    def check(self, now_ms: int, symbols: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Margin calls and liquidations of every account (holding ``symbols``, if given).

        A liquidation moves the book, so the check repeats (over every account) until a round
        liquidates nobody, at most :data:`RISK_ROUNDS` times.
        """
        if self._running:
            return []
        self._running = True
        wanted = None if symbols is None else set(symbols)
        outcomes: list[dict[str, Any]] = []
        try:
            for _ in range(RISK_ROUNDS):
                acted = False
                candidates = (
                    list(self.accounts.accounts.values())
                    if wanted is None
                    else self.accounts.holding(wanted)
                )
                for account in candidates:
                    for group in self.groups(account):
                        if wanted is not None and not any(
                            position.symbol in wanted for position in group.positions
                        ):
                            continue
                        if group.maint_margin > 0 and group.margin_balance <= group.maint_margin:
                            self.margin_called.discard(group.key)
                            outcomes.extend(self._liquidate_group(group, now_ms))
                            acted = True
                            break  # the book moved: the account's other groups next round
                        if (
                            group.maint_margin > 0
                            and group.maint_margin >= MARGIN_CALL_RATIO * group.margin_balance
                        ):
                            if group.key not in self.margin_called:
                                self.margin_called.add(group.key)
                                self._margin_call(group, now_ms)
                        else:
                            self.margin_called.discard(group.key)
                if not acted:
                    break
                wanted = None
            if self.margin_called:
                alive = {
                    group.key
                    for account in self.accounts.accounts.values()
                    for group in self.groups(account)
                }
                self.margin_called &= alive
        finally:
            self._running = False
        return outcomes

    def _margin_call(self, group: MarginGroup, now_ms: int) -> None:
        account = group.account
        event: dict[str, Any] = {"e": "MARGIN_CALL", "E": now_ms}
        if self.product is Product.COINM:
            event["i"] = account.alias
        if not group.isolated:
            event["cw"] = amount(account.wallets.get(group.asset, ZERO))
        rows = []
        for position in group.positions:
            instrument = self.engine.instrument(position.symbol)
            mark = group.marks[position.symbol]
            rows.append(
                {
                    "s": position.symbol,
                    "ps": position.position_side,
                    "pa": format_decimal(position.amount, instrument.quantity_precision),
                    "mt": "ISOLATED" if group.isolated else "CROSSED",
                    "iw": amount(position.isolated_wallet),
                    "mp": format_decimal(mark, 8),
                    "up": amount(self.accounts.unrealized_pnl(position, mark)),
                    "mm": amount(self.accounts.maint_margin(position, mark)),
                }
            )
        event["p"] = rows
        self.engine.publish(account.key, event)

    # --- prices -----------------------------------------------------------------------------

    def bankruptcy_price(self, account: FuturesAccount, position: Position) -> Decimal:
        """The price at which closing ``position`` uses up its margin exactly, on the tick
        grid (rounded against the closing order: up for a long, down for a short) and within
        the price filter.

        The margin is the isolated wallet, or for a cross position the cross wallet plus the
        unrealized PnL of the account's other cross positions of the same margin asset.
        Linear: ``entry - margin / amount``; inverse: ``1 / (1 / entry + margin / (amount x
        contractSize))``.
        """
        accounts = self.accounts
        symbol = position.symbol
        instrument = self.engine.instrument(symbol)
        asset = accounts.margin_asset(symbol)
        if account.setting(symbol).isolated:
            margin = position.isolated_wallet
        else:
            margin = account.wallets.get(asset, ZERO)
            for other in account.positions.values():
                if (
                    other is position
                    or other.amount == 0
                    or account.setting(other.symbol).isolated
                    or accounts.margin_asset(other.symbol) != asset
                ):
                    continue
                margin += accounts.unrealized_pnl(other)
        size = position.amount
        entry = position.entry_price
        math = accounts.math(symbol)
        if math.inverse:
            denominator = 1 / entry + margin / (size * math.contract_size)
            price = 1 / denominator if denominator > 0 else instrument.max_price
        else:
            price = entry - margin / size
        long = size > 0
        return _on_grid(price, instrument, ROUND_CEILING if long else ROUND_FLOOR)

    def settlement_price(self, symbol: str, now_ms: int) -> Decimal:
        """The delivery price: the mean index price of the last 30 minutes the venue saw
        before delivery, or the index price now; on the tick grid."""
        instrument = self.engine.instrument(symbol)
        total, count = self.settlement_samples.get(symbol, (ZERO, 0))
        price = total / count if count else self.engine.market(symbol).index_price(now_ms)
        return _on_grid(price, instrument, ROUND_HALF_EVEN)

    def _sample_settlement(self, instrument: Instrument, now_ms: int) -> None:
        delivery = instrument.delivery_date_ms
        if delivery is None or not delivery - SETTLEMENT_WINDOW_MS <= now_ms < delivery:
            return
        index = self.engine.market(instrument.symbol).index_price(now_ms)
        total, count = self.settlement_samples.get(instrument.symbol, (ZERO, 0))
        self.settlement_samples[instrument.symbol] = (total + index, count + 1)

    def adl_score(self, account: FuturesAccount, position: Position, mark: Decimal) -> Decimal:
        """Binance's ADL ranking: PnL percentage x effective leverage in profit, PnL percentage
        / effective leverage otherwise (higher is deleveraged first)."""
        accounts = self.accounts
        math = accounts.math(position.symbol)
        pnl = accounts.unrealized_pnl(position, mark)
        cost = abs(math.notional(position.amount, position.entry_price))
        percentage = pnl / cost if cost else ZERO
        if account.setting(position.symbol).isolated:
            balance = position.isolated_wallet + pnl
        else:
            balance = accounts.asset_summary(
                account, accounts.margin_asset(position.symbol)
            ).margin_balance
        value = abs(accounts.notional(position, mark))
        leverage = value / balance if balance > 0 else _NO_BALANCE_LEVERAGE
        if percentage > 0:
            return percentage * leverage
        return percentage / leverage if leverage else percentage

    # --- liquidation ------------------------------------------------------------------------

    def _liquidate_group(self, group: MarginGroup, now_ms: int) -> list[dict[str, Any]]:
        account = group.account
        if group.isolated:
            scope = {group.positions[0].symbol}
        else:
            scope = {
                symbol
                for symbol in self.engine.instruments
                if self.accounts.margin_asset(symbol) == group.asset
                and not account.setting(symbol).isolated
            }
        return self.liquidate(account, list(group.positions), now_ms, scope=scope)

    def liquidate(
        self,
        account: FuturesAccount,
        positions: list[Position],
        now_ms: int,
        *,
        scope: Iterable[str] | None = None,
        adl: bool = False,
    ) -> list[dict[str, Any]]:
        """Liquidate ``positions`` of ``account`` (see the module docstring).

        Args:
            account: The account.
            positions: Its positions to close (all of one margin asset).
            now_ms: The time.
            scope: Symbols whose open orders expire first (default: those of ``positions``).
            adl: Deleverage opposite positions instead of taking from the book.

        Returns:
            One summary per liquidated position.
        """
        engine = self.engine
        symbols = set(scope) if scope is not None else {item.symbol for item in positions}
        for order in engine.open_orders_of(account.key, symbols):
            if order.is_open:
                engine._end(order, "EXPIRED", now_ms, LIQUIDATED)
        if not positions:
            return []
        asset = self.accounts.margin_asset(positions[0].symbol)
        cross_before = account.wallets.get(asset, ZERO)
        summaries: list[dict[str, Any]] = []
        cap = ZERO
        closed: list[Position] = []
        for position in positions:
            if position.amount == 0:
                continue
            summary, notional = self._liquidate_position(account, position, now_ms, adl=adl)
            summaries.append(summary)
            cap += notional * (self.engine.instrument(position.symbol).liquidation_fee or ZERO)
            closed.append(position)
        if not closed:
            return summaries
        isolated = account.setting(closed[0].symbol).isolated
        if isolated:
            # the isolated margin (with the realized PnL) came back to the cross wallet
            left = account.wallets.get(asset, ZERO) - cross_before
            deficit = -left if left < 0 else ZERO
        else:
            left = account.wallets.get(asset, ZERO)
            for other in account.positions.values():
                if (
                    other.amount != 0
                    and not account.setting(other.symbol).isolated
                    and self.accounts.margin_asset(other.symbol) == asset
                ):
                    left += self.accounts.unrealized_pnl(other)
            wallet = account.wallets.get(asset, ZERO)
            deficit = -wallet if wallet < 0 else ZERO
        change = deficit if deficit > 0 else -min(max(left, ZERO), q8(cap))
        change = q8(change)
        if change != 0:
            self.accounts.adjust_wallet(account, asset, change, now_ms)
            self.insurance_fund[asset] = self.insurance_fund.get(asset, ZERO) - change
            self.engine.add_income(
                account.key, closed[0].symbol, "INSURANCE_CLEAR", change, asset, now_ms
            )
            self._account_update(
                account, "INSURANCE_CLEAR", now_ms, assets={asset: change}, positions=closed
            )
        for summary in summaries:
            summary["insuranceClear"] = amount(change)
        return summaries

    def _liquidate_position(
        self, account: FuturesAccount, position: Position, now_ms: int, *, adl: bool
    ) -> tuple[dict[str, Any], Decimal]:
        """One position's liquidation order; returns its summary and liquidated notional."""
        from scenarios.venue.futures import _Touched

        engine = self.engine
        symbol = position.symbol
        instrument = engine.instrument(symbol)
        quantity = abs(position.amount)
        side = "SELL" if position.amount > 0 else "BUY"
        price = self.bankruptcy_price(account, position)
        order = engine.record_system_order(
            account.key,
            symbol,
            side,
            position.position_side,
            quantity,
            self._client_id("autoclose-", now_ms),
            "LIQUIDATION",
            price,
            now_ms=now_ms,
        )
        self.publish_order(order, "CALCULATED", now_ms, status="NEW_INSURANCE")
        touched = _Touched()
        fills: list[Fill] = []
        counterparties: list[dict[str, Any]] = []
        if not adl:
            market = engine.market(symbol)
            result = market.match(
                Side.BUY if side == "BUY" else Side.SELL, quantity, now_ms, limit_price=price
            )
            for trade in result.trades:
                fills.append(
                    self._fill(order, trade.price, trade.quantity, trade.trade_id, now_ms, touched)
                )
            for maker_fill in result.maker_fills:
                engine._maker_fill(maker_fill, touched)
            engine._feed(symbol, list(result.events))
        remaining = self._left(order)
        if remaining > 0 and (adl or self.auto_adl):
            counterparties = self._deleverage(order, price, remaining, now_ms, touched, fills)
            remaining = self._left(order)
        if remaining > 0:  # the insurance fund takes the rest at the bankruptcy price
            fills.append(
                self._fill(order, price, remaining, self._off_book_trade_id(), now_ms, touched)
            )
        if order.is_open:
            order.status = "EXPIRED"
            order.update_time = now_ms
            engine._finish(order, now_ms)
        engine._flush(touched, now_ms)
        self._force_order(order, instrument, fills, now_ms)
        engine._after_activity({symbol}, now_ms)
        notional = abs(self.accounts.math(symbol).notional(order.executed, price))
        summary = {
            "account": account.key,
            "symbol": symbol,
            "positionSide": position.position_side,
            "bankruptcyPrice": format_decimal(price, instrument.price_precision),
            "order": order_query(order, instrument),
            "fills": [user_trade(fill, instrument) for fill in fills],
            "adl": counterparties,
        }
        return summary, notional

    def _left(self, order: FuturesOrder) -> Decimal:
        """What ``order`` may still close of its position."""
        account = self.accounts.account(order.account)
        cap = self.engine._reducible(account, order.symbol, order.side, order.position_side)
        return min(order.remaining, cap or ZERO)

    def _deleverage(
        self,
        order: FuturesOrder,
        price: Decimal,
        quantity: Decimal,
        now_ms: int,
        touched: _Touched,
        fills: list[Fill],
    ) -> list[dict[str, Any]]:
        """Close opposite positions of other accounts at ``price`` against ``order``, best
        ranked first, until ``quantity`` is covered or none is left."""
        symbol = order.symbol
        mark = self.engine.mark_price(symbol)
        want_long = order.side == "BUY"  # a liquidated short buys from the longs
        candidates: list[tuple[Decimal, str, str, FuturesAccount, Position]] = []
        for account in self.accounts.accounts.values():
            if account.key == order.account:
                continue
            for position in account.positions.values():
                if position.symbol != symbol or position.amount == 0:
                    continue
                if (position.amount > 0) != want_long:
                    continue
                score = self.adl_score(account, position, mark)
                candidates.append((score, account.key, position.position_side, account, position))
        candidates.sort(key=lambda item: (-item[0], item[1], item[2]))
        results: list[dict[str, Any]] = []
        for _score, _key, _side, account, position in candidates:
            if quantity <= 0:
                break
            take = min(quantity, abs(position.amount))
            result = self.deleverage(account, position, take, price, now_ms, touched)
            fills.append(self._fill(order, price, take, result["fill"].trade_id, now_ms, touched))
            results.append(result["summary"])
            quantity -= take
        return results

    def deleverage(
        self,
        account: FuturesAccount,
        position: Position,
        quantity: Decimal,
        price: Decimal,
        now_ms: int,
        touched: _Touched,
    ) -> dict[str, Any]:
        """Close ``quantity`` of ``position`` at ``price`` with an ``adl_autoclose`` order
        (``NEW_ADL`` then its ``CALCULATED`` execution); the caller flushes ``touched``."""
        instrument = self.engine.instrument(position.symbol)
        side = "SELL" if position.amount > 0 else "BUY"
        order = self.engine.record_system_order(
            account.key,
            position.symbol,
            side,
            position.position_side,
            quantity,
            "adl_autoclose",
            "LIMIT",
            price,
            now_ms=now_ms,
        )
        self.publish_order(order, "CALCULATED", now_ms, status="NEW_ADL")
        fill = self._fill(order, price, quantity, self._off_book_trade_id(), now_ms, touched)
        return {
            "fill": fill,
            "summary": {
                "account": account.key,
                "symbol": position.symbol,
                "positionSide": position.position_side,
                "order": order_query(order, instrument),
                "fills": [user_trade(fill, instrument)],
            },
        }

    # --- delivery ---------------------------------------------------------------------------

    def settle(self, symbol: str, now_ms: int, price: Decimal | None = None) -> dict[str, Any]:
        """Deliver a dated contract now (see the module docstring)."""
        from scenarios.venue.futures import _Touched

        engine = self.engine
        instrument = engine.instrument(symbol)
        if instrument.is_perpetual:
            raise ValueError(f"{symbol} is a perpetual: only dated contracts are delivered")
        price = self.settlement_price(symbol, now_ms) if price is None else price
        for order in sorted(engine.open_orders.values(), key=lambda item: item.order_id):
            if order.symbol == symbol and order.is_open:
                engine._end(order, "CANCELED", now_ms, DELISTED)
        for algo in sorted(engine.open_algos.values(), key=lambda item: item.algo_id):
            if algo.symbol == symbol and algo.is_open:
                engine._cancel_algo(algo, now_ms)
        coinm = self.product is Product.COINM
        prefix = "delivery_autoclose-" if coinm else "settlement_autoclose-"
        touched = _Touched()
        orders: list[FuturesOrder] = []
        fills: list[Fill] = []
        for account in list(self.accounts.accounts.values()):
            for position in list(account.positions.values()):
                if position.symbol != symbol or position.amount == 0:
                    continue
                order = engine.record_system_order(
                    account.key,
                    symbol,
                    "SELL" if position.amount > 0 else "BUY",
                    position.position_side,
                    abs(position.amount),
                    self._client_id(prefix, now_ms),
                    "LIMIT",
                    price,
                    now_ms=now_ms,
                )
                self.publish_order(order, "NEW", now_ms)
                fills.append(
                    self._fill(
                        order,
                        price,
                        order.quantity,
                        self._off_book_trade_id(),
                        now_ms,
                        touched,
                        execution="TRADE",
                        commission_rate=ZERO if coinm else None,
                    )
                )
                orders.append(order)
        engine._flush(touched, now_ms)
        self.settled[symbol] = (now_ms, price)
        return {
            "symbol": symbol,
            "settlementPrice": format_decimal(price, instrument.price_precision),
            "time": now_ms,
            "orders": [
                {**order_query(item, instrument), "account": item.account} for item in orders
            ],
            "fills": [{**user_trade(fill, instrument), "account": fill.account} for fill in fills],
        }

    # --- exchange orders and their events ---------------------------------------------------

    def _fill(
        self,
        order: FuturesOrder,
        price: Decimal,
        quantity: Decimal,
        trade_id: int,
        now_ms: int,
        touched: _Touched,
        *,
        execution: str = "CALCULATED",
        commission_rate: Decimal | None = None,
    ) -> Fill:
        def announce(fill: Fill) -> None:
            self.publish_order(order, execution, now_ms, fill=fill)

        return self.engine._apply_trade(
            order,
            price,
            quantity,
            trade_id,
            now_ms,
            False,
            touched,
            execution,
            commission_rate=commission_rate,
            announce=announce,
        )

    def _off_book_trade_id(self) -> int:
        engine = self.engine
        engine._next_off_book_trade += 1
        return engine._next_off_book_trade

    def _client_id(self, prefix: str, now_ms: int) -> str:
        self._sequence += 1
        return f"{prefix}{now_ms}{self._sequence % 100_000:05d}"

    def publish_order(
        self,
        order: FuturesOrder,
        execution: str,
        now_ms: int,
        *,
        fill: Fill | None = None,
        status: str | None = None,
    ) -> None:
        """``ORDER_TRADE_UPDATE`` of an exchange order: ``X`` may show a status of its own
        (``NEW_INSURANCE``, ``NEW_ADL``); ``N`` and ``n`` are left out when nothing was
        charged, as Binance does."""
        engine = self.engine
        if not engine._listening(order.account):
            return
        event = engine._order_update_event(order, execution, now_ms, fill)
        body = event["o"]
        if status is not None:
            body["X"] = status
        if fill is None or fill.commission == 0:
            body.pop("N", None)
            body.pop("n", None)
        engine.publish(order.account, event)

    def _account_update(
        self,
        account: FuturesAccount,
        reason: str,
        now_ms: int,
        *,
        assets: dict[str, Decimal],
        positions: Iterable[Position] = (),
        funding_symbol: str | None = None,
        with_positions: bool = True,
    ) -> None:
        if not self.engine._listening(account.key):
            return
        event = self.accounts.account_update(
            account,
            reason,
            now_ms,
            assets=assets,
            positions=positions,
            funding_symbol=funding_symbol,
        )
        if not with_positions:
            del event["a"]["P"]  # a cross funding fee carries the balance only
        self.engine.publish(account.key, event)

    def _force_order(
        self, order: FuturesOrder, instrument: Instrument, fills: list[Fill], now_ms: int
    ) -> None:
        """The public ``forceOrder`` event of a liquidation order."""
        coinm = self.product is Product.COINM
        event = payloads.force_order_event(
            self.product.value,
            symbol=order.symbol,
            event_time=now_ms,
            side=order.side,
            quantity=order.quantity,
            price=order.price,
            average_price=average_price(order, instrument),
            last_filled_quantity=fills[-1].quantity if fills else ZERO,
            filled_quantity=order.executed,
            trade_time=fills[-1].time if fills else now_ms,
            precision=precision_of(instrument),
            status=order.status,
            pair=instrument.pair if coinm else None,
        )
        hub = self.engine.venue.hub
        hub.publish(self.product, f"{order.symbol.lower()}@forceOrder", event)
        hub.publish(self.product, "!forceOrder@arr", event)

    # --- control actions --------------------------------------------------------------------

    def control_actions(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        """``liquidate``, ``adl``, ``settle``, ``funding``, ``margin`` (module docstring)."""
        return {
            "liquidate": self._control_liquidate,
            "adl": self._control_adl,
            "settle": self._control_settle,
            "funding": self._control_funding,
            "margin": self._control_margin,
        }

    def _account_of(self, data: dict[str, Any]) -> FuturesAccount:
        venue = self.engine.venue
        key = data.get("account") or venue.first_key.api_key
        if not isinstance(key, str) or key not in venue.keys:
            raise ValueError(f"account must be a registered API key, got {key!r}")
        return self.accounts.account(key)

    def _symbol_of(self, data: dict[str, Any], *, required: bool = True) -> str | None:
        symbol = data.get("symbol")
        if symbol is None and not required:
            return None
        if not isinstance(symbol, str) or symbol.upper() not in self.engine.instruments:
            raise ValueError(f"no {self.engine.name} symbol {symbol!r}")
        return symbol.upper()

    def _positions_of(self, account: FuturesAccount, data: dict[str, Any]) -> list[Position]:
        symbol = self._symbol_of(data)
        side = data.get("positionSide")
        if side is not None and side not in ("BOTH", "LONG", "SHORT"):
            raise ValueError(f"positionSide must be BOTH, LONG or SHORT, got {side!r}")
        found = [
            position
            for position in account.positions.values()
            if position.symbol == symbol
            and position.amount != 0
            and (side is None or position.position_side == side)
        ]
        if not found:
            raise ValueError(f"{account.key[:8]}... has no open {symbol} position")
        return found

    def _control_liquidate(self, data: dict[str, Any]) -> Any:
        account = self._account_of(data)
        positions = self._positions_of(account, data)
        adl = data.get("adl", False)
        if not isinstance(adl, bool):
            raise ValueError(f"adl must be true or false, got {adl!r}")
        now_ms = self.engine.now()
        self._running = True  # no automatic check in the middle of a forced liquidation
        try:
            return {"liquidations": self.liquidate(account, positions, now_ms, adl=adl)}
        finally:
            self._running = False

    def _control_adl(self, data: dict[str, Any]) -> Any:
        from scenarios.venue.futures import _Touched

        account = self._account_of(data)
        positions = self._positions_of(account, data)
        quantity = _decimal(data, "quantity") if data.get("quantity") is not None else None
        now_ms = self.engine.now()
        touched = _Touched()
        results = []
        for position in positions:
            instrument = self.engine.instrument(position.symbol)
            price = _on_grid(self.engine.mark_price(position.symbol), instrument, ROUND_HALF_EVEN)
            take = abs(position.amount) if quantity is None else min(quantity, abs(position.amount))
            if take <= 0:
                raise ValueError("quantity must be positive")
            results.append(
                self.deleverage(account, position, take, price, now_ms, touched)["summary"]
            )
        self.engine._flush(touched, now_ms)
        self.engine._after_activity({position.symbol for position in positions}, now_ms)
        return {"adl": results}

    def _control_settle(self, data: dict[str, Any]) -> Any:
        symbol = self._symbol_of(data)
        assert symbol is not None
        price = _decimal(data, "price") if data.get("price") is not None else None
        if price is not None:
            price = _on_grid(price, self.engine.instrument(symbol), ROUND_HALF_EVEN)
        return self.settle(symbol, self.engine.now(), price)

    def _control_funding(self, data: dict[str, Any]) -> Any:
        symbol = self._symbol_of(data, required=False)
        symbols = [symbol] if symbol is not None else list(self.funded_through)
        if symbol is not None and symbol not in self.funded_through:
            raise ValueError(f"{symbol} is not a perpetual: it has no funding")
        rate = _decimal(data, "rate", signed=True) if data.get("rate") is not None else None
        now_ms = self.engine.now()
        payments = self.settle_due_funding(now_ms)
        for name in symbols:
            market = self.engine.market(name)
            current = market.last_funding_rate(now_ms) if rate is None else rate
            assert current is not None
            payments.extend(
                self.apply_funding(name, current, market.mark_price(now_ms), now_ms, now_ms)
            )
        return {"payments": payments, "nextFundingTime": _next_funding(now_ms)}

    def _control_margin(self, data: dict[str, Any]) -> Any:
        auto = data.get("autoAdl")
        if auto is not None:
            if not isinstance(auto, bool):
                raise ValueError(f"autoAdl must be true or false, got {auto!r}")
            self.auto_adl = auto
        account = self._account_of(data)
        return {
            "autoAdl": self.auto_adl,
            "insuranceFund": {asset: amount(value) for asset, value in self.insurance_fund.items()},
            "groups": [
                {
                    "asset": group.asset,
                    "marginType": "isolated" if group.isolated else "cross",
                    "symbols": [position.symbol for position in group.positions],
                    "marginBalance": amount(group.margin_balance),
                    "maintMargin": amount(group.maint_margin),
                    "marginRatio": format_decimal(min(group.ratio, Decimal(10**6)), 8),
                    "marginCalled": group.key in self.margin_called,
                }
                for group in self.groups(account)
            ],
        }


# --- helpers ---------------------------------------------------------------------------------


def _on_grid(price: Decimal, instrument: Instrument, rounding: str) -> Decimal:
    """``price`` on the instrument's tick grid, within its price filter."""
    tick = instrument.tick_size
    ticks = (price / tick).to_integral_value(rounding)
    return min(max(ticks * tick, instrument.min_price), instrument.max_price)


def _next_funding(now_ms: int) -> int:
    return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


def _decimal(data: dict[str, Any], name: str, *, signed: bool = False) -> Decimal:
    value = params.control_decimal(data, name, "1")
    if not value.is_finite() or (not signed and value <= 0):
        raise ValueError(f"{name} must be a {'finite' if signed else 'positive'} decimal")
    return value
