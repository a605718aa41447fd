"""Futures accounts: wallets, positions, leverage, margin and Binance's account payloads.

One :class:`FuturesAccounts` per product line (USDⓈ-M, COIN-M) holds every account of that
line. An account (one API key) has

* a **cross wallet** per margin asset (``crossWalletBalance``); Binance's ``walletBalance`` is
  the cross wallet plus the isolated wallets of the asset's isolated positions;
* **positions** per ``(symbol, positionSide)``: ``BOTH`` in one-way mode, ``LONG``/``SHORT``
  in hedge mode. A position has a signed amount (SHORT positions are negative, as Binance
  shows them), an entry price, the commissions paid to open it (for the break-even price), the
  realized PnL accumulated since it was first opened (``cr``) and, when isolated, its isolated
  wallet (``iw``);
* **symbol settings**: leverage (Binance's default 20) and margin type (cross by default);
* a fee tier and the USD-M multi-assets flag.

**Contract math** (:class:`ContractMath`) is the only place that knows linear from inverse:

* USD-M (linear): notional = qty x price (quote asset); PnL = qty x (exit - entry); the
  entry price of an increase is the quantity-weighted mean.
* COIN-M (inverse): quantities are contracts of ``contractSize`` USD; notional = contracts x
  contractSize / price (base asset, the margin asset); PnL = contracts x contractSize x
  (1/entry - 1/exit); the entry price of an increase is the harmonic (notional-weighted) mean.

Commissions and realized PnL are rounded to 8 decimals (the asset precision) before they touch
a wallet, so ``wallet = start + deposits + realized PnL - commissions`` holds exactly.

**Margin.** Position initial margin = notional at the mark price / leverage; maintenance
margin = notional x maintMarginRatio - maintAmount (``cum``) of the position's leverage
bracket (Binance's brackets; COIN-M brackets are in base-asset quantity). Open-order margin
comes from the engine (see :class:`OpenOrderMargin`). ``availableBalance`` = cross wallet +
cross unrealized PnL - cross position margin - open-order margin.

**Liquidation price** follows Binance's published formulas (cross: the wallet net of the other
symbols' maintenance margin and PnL; isolated: the isolated wallet), see
:meth:`FuturesAccounts.liquidation_price`.

What later layers (liquidation, ADL, funding, delivery) use:

* :meth:`FuturesAccounts.account` - an account by API key (created funded on first use);
* :meth:`FuturesAccounts.apply_fill` - the one way a trade changes positions and wallets;
* :meth:`FuturesAccounts.adjust_wallet` - deposits, withdrawals, funding fees, insurance;
* :meth:`FuturesAccounts.unrealized_pnl`, :meth:`maint_margin`, :meth:`position_margin`,
  :meth:`asset_summary` (margin balance, maintenance margin, availability),
  :meth:`liquidation_price`, :meth:`open_positions`;
* :meth:`FuturesAccounts.account_update` - the ``ACCOUNT_UPDATE`` event with only the changed
  balances and positions.
"""

from __future__ import annotations

import decimal
import hashlib
import string
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, Protocol

import attrs

from scenarios.venue.instruments import Instrument, Product
from scenarios.venue.payloads import format_decimal

__all__ = [
    "DEFAULT_LEVERAGE",
    "FEE_TIERS",
    "AssetSummary",
    "Bracket",
    "ContractMath",
    "FillOutcome",
    "FuturesAccount",
    "FuturesAccounts",
    "Position",
    "SymbolSettings",
    "brackets_for",
    "trim",
]

#: Binance's default leverage for a symbol an account never configured.
DEFAULT_LEVERAGE: Final = 20
#: Wallet amounts, PnL and commissions: 8 decimals.
ASSET_PLACES: Final = Decimal("0.00000001")
ZERO: Final = Decimal(0)
_CONTEXT: Final = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)
_ALIAS_ALPHABET: Final = string.ascii_letters

#: (maker, taker) commission rates per fee tier (VIP 0..9), without BNB discount.
FEE_TIERS: Final[Mapping[Product, tuple[tuple[Decimal, Decimal], ...]]] = {
    Product.USDM: tuple(
        (Decimal(maker), Decimal(taker))
        for maker, taker in (
            ("0.0002", "0.0005"),
            ("0.00016", "0.0004"),
            ("0.00014", "0.00035"),
            ("0.00012", "0.00032"),
            ("0.0001", "0.0003"),
            ("0.00008", "0.00027"),
            ("0.00006", "0.00025"),
            ("0.00004", "0.00022"),
            ("0.00002", "0.0002"),
            ("0", "0.00017"),
        )
    ),
    Product.COINM: tuple(
        (Decimal(maker), Decimal(taker))
        for maker, taker in (
            ("0.0002", "0.0005"),
            ("0.00016", "0.00045"),
            ("0.00014", "0.0004"),
            ("0.00012", "0.0003"),
            ("0.0001", "0.00025"),
            ("0.00008", "0.00024"),
            ("0.00006", "0.00023"),
            ("0.00004", "0.00022"),
            ("0.00002", "0.0002"),
            ("0", "0.00017"),
        )
    ),
}


def q8(value: Decimal) -> Decimal:
    """Round an asset amount to 8 decimals (half-even)."""
    return value.quantize(ASSET_PLACES, context=_CONTEXT)


def trim(value: Decimal, minimum: int, maximum: int = 8) -> str:
    """A price such as an entry or average price: at most ``maximum`` decimals, trailing zeros
    dropped down to ``minimum`` (``50000`` -> ``"50000.00"``, ``43302.1232876712`` ->
    ``"43302.12328767"``)."""
    text = format_decimal(value, maximum)
    if "." in text:
        whole, fraction = text.split(".")
        fraction = fraction.rstrip("0")
        if len(fraction) < minimum:
            fraction = fraction + "0" * (minimum - len(fraction))
        text = f"{whole}.{fraction}" if fraction else whole
    return text


def amount(value: Decimal) -> str:
    """An asset amount as Binance's account payloads show it: 8 decimals."""
    return format_decimal(value, 8)


# --- leverage brackets ----------------------------------------------------------------------


@attrs.frozen
class Bracket:
    """One leverage bracket of a symbol.

    Attributes:
        number: ``bracket`` (1 = the smallest positions).
        initial_leverage: The highest leverage allowed in this bracket.
        cap: ``notionalCap`` (USD-M, quote asset) or ``qtyCap`` (COIN-M, base asset).
        floor: ``notionalFloor`` / ``qtyFloor``.
        maint_margin_ratio: ``maintMarginRatio``.
        cum: ``cum``, the maintenance amount that makes the tiers continuous.
    """

    number: int
    initial_leverage: int
    cap: Decimal
    floor: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


def _brackets(rows: Iterable[tuple[int, str, str]]) -> tuple[Bracket, ...]:
    result: list[Bracket] = []
    floor = ZERO
    cum = ZERO
    previous_ratio = ZERO
    for number, (leverage, cap, ratio) in enumerate(rows, start=1):
        maint_ratio = Decimal(ratio)
        cum = cum + floor * (maint_ratio - previous_ratio)
        result.append(Bracket(number, leverage, Decimal(cap), floor, maint_ratio, cum))
        floor = Decimal(cap)
        previous_ratio = maint_ratio
    return tuple(result)


#: Binance's BTCUSDT perpetual brackets (notional in USDT).
_UM_BTC: Final = _brackets(
    [
        (125, "50000", "0.004"),
        (100, "250000", "0.005"),
        (50, "3000000", "0.01"),
        (20, "15000000", "0.025"),
        (10, "30000000", "0.05"),
        (5, "80000000", "0.1"),
        (4, "150000000", "0.125"),
        (3, "300000000", "0.15"),
        (2, "500000000", "0.25"),
        (1, "800000000", "0.5"),
    ]
)
#: ETHUSDT-style brackets (other USD-M perpetuals).
_UM_ALT: Final = _brackets(
    [
        (125, "50000", "0.004"),
        (100, "250000", "0.005"),
        (75, "1000000", "0.0065"),
        (50, "2000000", "0.01"),
        (20, "10000000", "0.025"),
        (10, "20000000", "0.05"),
        (5, "50000000", "0.1"),
        (4, "100000000", "0.125"),
        (3, "200000000", "0.15"),
        (2, "400000000", "0.25"),
        (1, "800000000", "0.5"),
    ]
)
#: USD-M delivery (quarterly) contracts.
_UM_DELIVERY: Final = _brackets(
    [
        (75, "400000", "0.0065"),
        (50, "2000000", "0.01"),
        (25, "10000000", "0.02"),
        (10, "20000000", "0.05"),
        (5, "40000000", "0.1"),
        (4, "60000000", "0.125"),
        (3, "80000000", "0.15"),
        (2, "100000000", "0.25"),
        (1, "200000000", "0.5"),
    ]
)
#: Binance's BTCUSD COIN-M brackets (quantity in BTC).
_CM_BTC: Final = _brackets(
    [
        (125, "5", "0.004"),
        (100, "10", "0.005"),
        (50, "20", "0.01"),
        (20, "50", "0.025"),
        (10, "100", "0.05"),
        (5, "200", "0.1"),
        (4, "400", "0.125"),
        (3, "1000", "0.15"),
        (2, "1500", "0.25"),
        (1, "9223372036854775807", "0.5"),
    ]
)
#: Other COIN-M pairs.
_CM_ALT: Final = _brackets(
    [
        (75, "250", "0.0065"),
        (50, "1000", "0.01"),
        (25, "2500", "0.02"),
        (10, "5000", "0.05"),
        (5, "10000", "0.1"),
        (4, "20000", "0.125"),
        (3, "30000", "0.15"),
        (2, "50000", "0.25"),
        (1, "9223372036854775807", "0.5"),
    ]
)


def brackets_for(instrument: Instrument) -> tuple[Bracket, ...]:
    """The leverage brackets of a futures instrument (by product, base asset, contract type)."""
    if instrument.product is Product.COINM:
        return _CM_BTC if instrument.base_asset == "BTC" else _CM_ALT
    if not instrument.is_perpetual:
        return _UM_DELIVERY
    return _UM_BTC if instrument.base_asset == "BTC" else _UM_ALT


def bracket_of(brackets: tuple[Bracket, ...], notional: Decimal) -> Bracket:
    """The bracket a position of ``notional`` (margin-asset units) falls in."""
    for bracket in brackets:
        if notional <= bracket.cap:
            return bracket
    return brackets[-1]


def max_notional(brackets: tuple[Bracket, ...], leverage: int) -> Decimal:
    """``maxNotionalValue`` (COIN-M ``maxQty``): the largest cap usable at ``leverage``."""
    usable = [bracket.cap for bracket in brackets if bracket.initial_leverage >= leverage]
    return max(usable) if usable else ZERO


# --- contract math ---------------------------------------------------------------------------


@attrs.frozen
class ContractMath:
    """Linear (USD-M) or inverse (COIN-M) arithmetic of one instrument."""

    inverse: bool
    contract_size: Decimal

    @classmethod
    def of(cls, instrument: Instrument) -> ContractMath:
        return cls(instrument.product is Product.COINM, instrument.contract_size)

    def notional(self, quantity: Decimal, price: Decimal) -> Decimal:
        """Value of ``quantity`` at ``price`` in the margin asset (sign kept)."""
        if self.inverse:
            if price <= 0:
                return ZERO
            return _CONTEXT.divide(quantity * self.contract_size, price)
        return quantity * price

    def pnl(self, amount: Decimal, entry: Decimal, exit_price: Decimal) -> Decimal:
        """PnL of a signed position ``amount`` from ``entry`` to ``exit_price``."""
        if amount == 0 or entry <= 0 or exit_price <= 0:
            return ZERO
        if self.inverse:
            return (
                amount
                * self.contract_size
                * (_CONTEXT.divide(1, entry) - _CONTEXT.divide(1, exit_price))
            )
        return amount * (exit_price - entry)

    def average_entry(
        self, size: Decimal, entry: Decimal, added: Decimal, price: Decimal
    ) -> Decimal:
        """Entry price after adding ``added`` at ``price`` to ``size`` at ``entry``."""
        total = size + added
        if size == 0 or entry <= 0:
            return price
        if self.inverse:
            return _CONTEXT.divide(
                total, _CONTEXT.divide(size, entry) + _CONTEXT.divide(added, price)
            )
        return _CONTEXT.divide(size * entry + added * price, total)

    def break_even(
        self, amount: Decimal, entry: Decimal, open_fees: Decimal, taker_rate: Decimal
    ) -> Decimal:
        """The price at which closing (as a taker) returns the opening commissions too.

        Solves ``pnl(amount, entry, p) - closing fee(p) = open_fees`` for ``p``.
        """
        if amount == 0 or entry <= 0:
            return ZERO
        size = abs(amount)
        if self.inverse:
            denominator = amount * self.contract_size / entry - open_fees
            if denominator == 0:
                return ZERO
            result = self.contract_size * (amount + size * taker_rate) / denominator
        else:
            denominator = amount - size * taker_rate
            if denominator == 0:
                return ZERO
            result = _CONTEXT.divide(open_fees + amount * entry, denominator)
        return result if result > 0 else ZERO


# --- records -------------------------------------------------------------------------------


@attrs.define(eq=False)
class Position:
    """One position of an account (see the module docstring).

    Attributes:
        symbol: The symbol.
        position_side: ``BOTH``, ``LONG`` or ``SHORT``.
        amount: Signed size (negative = short); contracts on COIN-M.
        entry_price: Average entry price (0 when flat).
        open_fees: Commissions paid for the open size (for ``breakEvenPrice``).
        realized: Realized PnL accumulated on this position (``cr``).
        isolated_wallet: Margin held by the position in isolated mode (``iw``).
        update_time: Last change, epoch ms (0 if never traded).
    """

    symbol: str
    position_side: str
    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    open_fees: Decimal = ZERO
    realized: Decimal = ZERO
    isolated_wallet: Decimal = ZERO
    update_time: int = 0


@attrs.define
class SymbolSettings:
    """An account's per-symbol settings: ``leverage`` and ``isolated`` margin."""

    leverage: int = DEFAULT_LEVERAGE
    isolated: bool = False


@attrs.define(eq=False)
class FuturesAccount:
    """One API key's futures account on one product line.

    Attributes:
        key: The API key (the account's name).
        alias: ``accountAlias`` (4 letters, stable per key).
        wallets: Cross wallet balance per asset.
        wallet_times: Last change of each asset, epoch ms.
        positions: Positions by ``(symbol, positionSide)``.
        settings: Symbol settings by symbol.
        fee_tier: VIP level 0..9.
        multi_assets: USD-M multi-assets margin mode.
    """

    key: str
    alias: str
    wallets: dict[str, Decimal] = attrs.field(factory=dict)
    wallet_times: dict[str, int] = attrs.field(factory=dict)
    positions: dict[tuple[str, str], Position] = attrs.field(factory=dict)
    settings: dict[str, SymbolSettings] = attrs.field(factory=dict)
    fee_tier: int = 0
    multi_assets: bool = False

    def setting(self, symbol: str) -> SymbolSettings:
        """The symbol's settings (created with the defaults)."""
        found = self.settings.get(symbol)
        if found is None:
            found = self.settings[symbol] = SymbolSettings()
        return found

    def position(self, symbol: str, position_side: str) -> Position:
        """The position (created flat)."""
        found = self.positions.get((symbol, position_side))
        if found is None:
            found = self.positions[(symbol, position_side)] = Position(symbol, position_side)
        return found


@attrs.frozen
class FillOutcome:
    """What one fill did to an account.

    Attributes:
        realized_pnl: Realized PnL of the closed part (8 decimals; 0 for pure opening).
        commission: Commission charged (8 decimals, in the margin asset).
        asset: The margin asset.
        position: The position after the fill.
        closed: Quantity that reduced the position.
        opened: Quantity that opened or increased it.
    """

    realized_pnl: Decimal
    commission: Decimal
    asset: str
    position: Position
    closed: Decimal
    opened: Decimal


@attrs.frozen
class AssetSummary:
    """An asset's figures as ``account``/``balance`` show them (all in that asset)."""

    asset: str
    wallet_balance: Decimal
    cross_wallet_balance: Decimal
    unrealized_profit: Decimal
    cross_unrealized_profit: Decimal
    margin_balance: Decimal
    maint_margin: Decimal
    position_initial_margin: Decimal
    open_order_initial_margin: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    update_time: int

    @property
    def initial_margin(self) -> Decimal:
        return self.position_initial_margin + self.open_order_initial_margin


class OpenOrderMargin(Protocol):
    """The engine's view of open orders, for margin: ``(account, symbol) -> margin``."""

    def __call__(self, account: FuturesAccount, symbol: str) -> Decimal: ...


def _alias(key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()
    return "".join(_ALIAS_ALPHABET[byte % len(_ALIAS_ALPHABET)] for byte in digest[:4])


# --- the book of accounts ------------------------------------------------------------------


class FuturesAccounts:
    """Every account of one futures product line (see the module docstring).

    Args:
        product: USDM or COINM.
        instruments: The product's instruments by symbol.
        starting_balances: What a new account's wallets hold.
        mark_price: The mark price of a symbol now.
        open_order_margin: The initial margin of an account's open orders on a symbol.
        funded_ms: The ``updateTime`` of the starting balances (an asset never funded nor
            touched shows 0, as on Binance).
    """

    def __init__(
        self,
        product: Product,
        instruments: Mapping[str, Instrument],
        starting_balances: Mapping[str, Decimal],
        mark_price: Callable[[str], Decimal],
        open_order_margin: OpenOrderMargin,
        funded_ms: int = 0,
    ) -> None:
        self.product = product
        self.funded_ms = funded_ms
        self.instruments = instruments
        self.starting_balances = dict(starting_balances)
        self.mark_price = mark_price
        self.open_order_margin = open_order_margin
        self.accounts: dict[str, FuturesAccount] = {}
        #: The accounts holding a non-zero position, by symbol (kept by :meth:`apply_fill`, the
        #: one way amounts change), so that risk checks need not scan every account.
        self.holders: dict[str, dict[str, None]] = {}
        self._rank: dict[str, int] = {}
        self._math = {symbol: ContractMath.of(item) for symbol, item in instruments.items()}
        self._brackets = {symbol: brackets_for(item) for symbol, item in instruments.items()}

    # --- lookup ---------------------------------------------------------------------------

    def account(self, key: str) -> FuturesAccount:
        """The account of API key ``key``; a new one starts with the configured balances."""
        found = self.accounts.get(key)
        if found is None:
            found = FuturesAccount(key, _alias(key), wallets=dict(self.starting_balances))
            for asset, balance in found.wallets.items():
                found.wallet_times[asset] = self.funded_ms if balance else 0
            for instrument in self.instruments.values():
                if instrument.margin_asset is not None:
                    found.wallets.setdefault(instrument.margin_asset, ZERO)
                    found.wallet_times.setdefault(instrument.margin_asset, 0)
            self.accounts[key] = found
            self._rank[key] = len(self._rank)
        return found

    def math(self, symbol: str) -> ContractMath:
        return self._math[symbol]

    def brackets(self, symbol: str) -> tuple[Bracket, ...]:
        return self._brackets[symbol]

    def margin_asset(self, symbol: str) -> str:
        asset = self.instruments[symbol].margin_asset
        assert asset is not None
        return asset

    def commission_rates(self, account: FuturesAccount) -> tuple[Decimal, Decimal]:
        """``(maker, taker)`` rates of the account's fee tier."""
        return FEE_TIERS[self.product][account.fee_tier]

    def open_positions(self, account: FuturesAccount) -> list[Position]:
        """Positions with a non-zero amount."""
        return [position for position in account.positions.values() if position.amount != 0]

    def max_leverage(self, symbol: str) -> int:
        return self._brackets[symbol][0].initial_leverage

    def max_notional(self, account: FuturesAccount, symbol: str) -> Decimal:
        """``maxNotionalValue`` (COIN-M ``maxQty``) at the account's leverage for ``symbol``."""
        return max_notional(self._brackets[symbol], account.setting(symbol).leverage)

    # --- position figures -----------------------------------------------------------------

    def notional(self, position: Position, mark: Decimal | None = None) -> Decimal:
        """Signed notional at the mark price (margin asset; COIN-M in base asset)."""
        price = self.mark_price(position.symbol) if mark is None else mark
        return self._math[position.symbol].notional(position.amount, price)

    def unrealized_pnl(self, position: Position, mark: Decimal | None = None) -> Decimal:
        """Unrealized PnL at the mark price (margin asset)."""
        price = self.mark_price(position.symbol) if mark is None else mark
        return self._math[position.symbol].pnl(position.amount, position.entry_price, price)

    def position_margin(
        self, account: FuturesAccount, position: Position, mark: Decimal | None = None
    ) -> Decimal:
        """Initial margin of the position: |notional at mark| / leverage."""
        leverage = account.setting(position.symbol).leverage
        return abs(self.notional(position, mark)) / leverage

    def bracket(self, position: Position, mark: Decimal | None = None) -> Bracket:
        return bracket_of(self._brackets[position.symbol], abs(self.notional(position, mark)))

    def maint_margin(self, position: Position, mark: Decimal | None = None) -> Decimal:
        """Maintenance margin: |notional| x maintMarginRatio - cum of its bracket."""
        if position.amount == 0:
            return ZERO
        size = abs(self.notional(position, mark))
        bracket = bracket_of(self._brackets[position.symbol], size)
        return max(ZERO, size * bracket.maint_margin_ratio - bracket.cum)

    def break_even_price(self, account: FuturesAccount, position: Position) -> Decimal:
        _, taker = self.commission_rates(account)
        return self._math[position.symbol].break_even(
            position.amount, position.entry_price, position.open_fees, taker
        )

    def isolated(self, account: FuturesAccount, symbol: str) -> bool:
        return account.setting(symbol).isolated

    # --- wallets --------------------------------------------------------------------------

    def wallet_balance(self, account: FuturesAccount, asset: str) -> Decimal:
        """``walletBalance``: the cross wallet plus the asset's isolated wallets."""
        total = account.wallets.get(asset, ZERO)
        for position in account.positions.values():
            if self.margin_asset(position.symbol) == asset:
                total += position.isolated_wallet
        return total

    def adjust_wallet(
        self, account: FuturesAccount, asset: str, delta: Decimal, now_ms: int
    ) -> Decimal:
        """Add ``delta`` (negative to take) to the cross wallet of ``asset``.

        For deposits, withdrawals, funding fees, insurance clearance. Returns the new cross
        wallet balance. The amount is rounded to 8 decimals.
        """
        account.wallets[asset] = account.wallets.get(asset, ZERO) + q8(delta)
        account.wallet_times[asset] = now_ms
        return account.wallets[asset]

    def move_isolated(
        self, account: FuturesAccount, position: Position, delta: Decimal, now_ms: int
    ) -> None:
        """Move ``delta`` from the cross wallet into the position's isolated wallet
        (negative moves it back); ``POST /positionMargin`` and isolated opening."""
        asset = self.margin_asset(position.symbol)
        delta = q8(delta)
        account.wallets[asset] = account.wallets.get(asset, ZERO) - delta
        position.isolated_wallet += delta
        account.wallet_times[asset] = now_ms
        position.update_time = now_ms

    # --- fills ----------------------------------------------------------------------------

    def apply_fill(
        self,
        account: FuturesAccount,
        symbol: str,
        position_side: str,
        side: str,
        quantity: Decimal,
        price: Decimal,
        commission_rate: Decimal,
        now_ms: int,
    ) -> FillOutcome:
        """Apply one trade of ``quantity`` at ``price`` to the account.

        One-way (``BOTH``): a fill against the position reduces it and, past zero, opens the
        opposite side at ``price``. Hedge (``LONG``/``SHORT``): BUY+LONG and SELL+SHORT open,
        the others reduce (the engine never lets them pass zero).

        Realized PnL of the reduced part goes to the wallet (the isolated wallet for isolated
        positions, whose margin is then released pro rata to the cross wallet); the commission
        is taken from the cross wallet. Isolated opening moves the new size's initial margin
        (at the fill price) from the cross wallet into the isolated wallet.
        """
        math = self._math[symbol]
        asset = self.margin_asset(symbol)
        position = account.position(symbol, position_side)
        isolated = account.setting(symbol).isolated
        leverage = account.setting(symbol).leverage
        signed = quantity if side == "BUY" else -quantity
        commission = q8(abs(math.notional(quantity, price)) * commission_rate)

        closing = ZERO
        if position.amount != 0 and (position.amount > 0) != (signed > 0):
            closing = min(abs(position.amount), quantity)
        if position_side == "LONG" and side == "SELL":
            closing = min(quantity, max(ZERO, position.amount))
        if position_side == "SHORT" and side == "BUY":
            closing = min(quantity, max(ZERO, -position.amount))
        opening = quantity - closing
        reducing_hedge = (position_side, side) in (("LONG", "SELL"), ("SHORT", "BUY"))
        if reducing_hedge and closing < quantity:
            # hedge mode never flips through zero: a reducing fill beyond the size is refused
            raise ValueError("a hedge-mode closing fill cannot exceed the position")

        realized = ZERO
        if closing > 0:
            size = abs(position.amount)
            direction = Decimal(1) if position.amount > 0 else Decimal(-1)
            realized = q8(math.pnl(direction * closing, position.entry_price, price))
            fee_share = position.open_fees * closing / size if size else ZERO
            position.open_fees -= fee_share
            position.realized += realized
            if isolated:
                release = q8(position.isolated_wallet * closing / size)
                position.isolated_wallet += realized - release
                account.wallets[asset] = account.wallets.get(asset, ZERO) + release
            else:
                account.wallets[asset] = account.wallets.get(asset, ZERO) + realized
            position.amount -= direction * closing
            if position.amount == 0:
                position.entry_price = ZERO
                position.open_fees = ZERO
                if position.isolated_wallet != 0:
                    account.wallets[asset] += position.isolated_wallet
                    position.isolated_wallet = ZERO
        if opening > 0:
            size = abs(position.amount)
            position.entry_price = math.average_entry(size, position.entry_price, opening, price)
            position.open_fees += commission * opening / quantity
            position.amount += opening if signed > 0 else -opening
            if isolated:
                margin = q8(abs(math.notional(opening, price)) / leverage)
                account.wallets[asset] = account.wallets.get(asset, ZERO) - margin
                position.isolated_wallet += margin
        account.wallets[asset] = account.wallets.get(asset, ZERO) - commission
        account.wallet_times[asset] = now_ms
        position.update_time = now_ms
        self._track(account, symbol)
        return FillOutcome(realized, commission, asset, position, closing, opening)

    def _track(self, account: FuturesAccount, symbol: str) -> None:
        """Keep :attr:`holders` in step with the account's positions on ``symbol``."""
        held = any(
            position is not None and position.amount != 0
            for position in (
                account.positions.get((symbol, side)) for side in ("BOTH", "LONG", "SHORT")
            )
        )
        found = self.holders.get(symbol)
        if held:
            self.holders.setdefault(symbol, {})[account.key] = None
        elif found is not None:
            found.pop(account.key, None)
            if not found:
                del self.holders[symbol]

    def holding(self, symbols: Iterable[str]) -> list[FuturesAccount]:
        """The accounts with a non-zero position on any of ``symbols`` (account order)."""
        keys: set[str] = set()
        for symbol in symbols:
            keys.update(self.holders.get(symbol, ()))
        return [self.accounts[key] for key in sorted(keys, key=self._rank.__getitem__)]

    # --- account figures ------------------------------------------------------------------

    def asset_summary(self, account: FuturesAccount, asset: str) -> AssetSummary:
        """An asset's wallet, PnL, margins and availability (see the module docstring)."""
        cross_wallet = account.wallets.get(asset, ZERO)
        wallet = cross_wallet
        unrealized = cross_unrealized = maint = position_im = cross_position_im = ZERO
        open_order_im = ZERO
        symbols = set()
        for position in account.positions.values():
            if self.margin_asset(position.symbol) != asset:
                continue
            symbols.add(position.symbol)
            wallet += position.isolated_wallet
            if position.amount == 0:
                continue
            mark = self.mark_price(position.symbol)
            pnl = self.unrealized_pnl(position, mark)
            margin = self.position_margin(account, position, mark)
            unrealized += pnl
            maint += self.maint_margin(position, mark)
            position_im += margin
            if not account.setting(position.symbol).isolated:
                cross_unrealized += pnl
                cross_position_im += margin
        for symbol in self.instruments:
            if self.margin_asset(symbol) == asset:
                open_order_im += self.open_order_margin(account, symbol)
        available = cross_wallet + cross_unrealized - cross_position_im - open_order_im
        max_withdraw = max(ZERO, min(available, cross_wallet))
        return AssetSummary(
            asset=asset,
            wallet_balance=wallet,
            cross_wallet_balance=cross_wallet,
            unrealized_profit=unrealized,
            cross_unrealized_profit=cross_unrealized,
            margin_balance=wallet + unrealized,
            maint_margin=maint,
            position_initial_margin=position_im,
            open_order_initial_margin=open_order_im,
            available_balance=available,
            max_withdraw_amount=max_withdraw,
            update_time=account.wallet_times.get(asset, 0),
        )

    def available_for(self, account: FuturesAccount, symbol: str) -> Decimal:
        """What the account can commit to new margin on ``symbol`` (its margin asset's
        ``availableBalance``; in multi-assets mode, every stable asset's, at face value)."""
        asset = self.margin_asset(symbol)
        total = self.asset_summary(account, asset).available_balance
        if account.multi_assets and self.product is Product.USDM:
            for other in account.wallets:
                if other != asset and other in _STABLE:
                    total += max(ZERO, self.asset_summary(account, other).available_balance)
        return total

    def liquidation_price(self, account: FuturesAccount, position: Position) -> Decimal:
        """Binance's liquidation price of ``position`` (0 when it cannot be liquidated).

        USD-M: ``LP = (WB - TMM1 + UPNL1 + sum cum - sum side*|size|*entry) /
        (sum |size|*MMR - sum side*|size|)``. COIN-M: ``LP = (sum |size|*MMR + sum side*|size|)
        / ((WB - TMM1 + UPNL1 + sum cum) / contractSize + sum side*|size|/entry)``. Cross
        positions of one symbol are taken together (both hedge sides) with WB the cross
        wallet and TMM1/UPNL1 the other symbols' maintenance margin and PnL; an isolated
        position stands alone on its isolated wallet.
        """
        if position.amount == 0:
            return ZERO
        symbol = position.symbol
        asset = self.margin_asset(symbol)
        if account.setting(symbol).isolated:
            group = [position]
            wallet = position.isolated_wallet
        else:
            group = [
                item
                for item in account.positions.values()
                if item.symbol == symbol and item.amount != 0
            ]
            wallet = account.wallets.get(asset, ZERO)
            for other in account.positions.values():
                if (
                    other.symbol == symbol
                    or other.amount == 0
                    or self.margin_asset(other.symbol) != asset
                    or account.setting(other.symbol).isolated
                ):
                    continue
                mark = self.mark_price(other.symbol)
                wallet += self.unrealized_pnl(other, mark) - self.maint_margin(other, mark)
        math = self._math[symbol]
        cum = sum((self.bracket(item).cum for item in group), ZERO)
        if math.inverse:
            numerator = sum(
                (
                    abs(item.amount) * self.bracket(item).maint_margin_ratio + item.amount
                    for item in group
                ),
                ZERO,
            )
            denominator = _CONTEXT.divide(wallet + cum, math.contract_size) + sum(
                (_CONTEXT.divide(item.amount, item.entry_price) for item in group), ZERO
            )
        else:
            numerator = wallet + cum - sum((item.amount * item.entry_price for item in group), ZERO)
            denominator = sum(
                (
                    abs(item.amount) * self.bracket(item).maint_margin_ratio - item.amount
                    for item in group
                ),
                ZERO,
            )
        if denominator == 0:
            return ZERO
        result = _CONTEXT.divide(numerator, denominator)
        return result if result > 0 else ZERO

    # --- events ---------------------------------------------------------------------------

    def balance_entry(
        self, account: FuturesAccount, asset: str, change: Decimal = ZERO
    ) -> dict[str, Any]:
        """One ``B`` entry of ``ACCOUNT_UPDATE``."""
        return {
            "a": asset,
            "wb": amount(self.wallet_balance(account, asset)),
            "cw": amount(account.wallets.get(asset, ZERO)),
            "bc": amount(change),
        }

    def position_entry(self, account: FuturesAccount, position: Position) -> dict[str, Any]:
        """One ``P`` entry of ``ACCOUNT_UPDATE``."""
        instrument = self.instruments[position.symbol]
        entry: dict[str, Any] = {
            "s": position.symbol,
            "pa": format_decimal(position.amount, instrument.quantity_precision),
            "ep": trim(position.entry_price, instrument.price_precision),
            "bep": trim(self.break_even_price(account, position), instrument.price_precision),
            "cr": amount(position.realized),
            "up": amount(self.unrealized_pnl(position) if position.amount else ZERO),
            "mt": "isolated" if account.setting(position.symbol).isolated else "cross",
            "iw": amount(position.isolated_wallet),
            "ps": position.position_side,
        }
        if self.product is Product.USDM:
            entry["ma"] = self.margin_asset(position.symbol)
        return entry

    def account_update(
        self,
        account: FuturesAccount,
        reason: str,
        now_ms: int,
        *,
        assets: Mapping[str, Decimal] | Iterable[str] = (),
        positions: Iterable[Position] = (),
        funding_symbol: str | None = None,
    ) -> dict[str, Any]:
        """The ``ACCOUNT_UPDATE`` event: reason ``m``, the changed balances and positions.

        Args:
            account: The account.
            reason: ``ORDER``, ``DEPOSIT``, ``WITHDRAW``, ``FUNDING_FEE``, ...
            now_ms: Event and transaction time.
            assets: The changed assets; a mapping gives each its ``bc`` (balance change
                excluding PnL and commission), an iterable means ``bc`` 0.
            positions: The changed positions (each listed once).
            funding_symbol: ``S``, the symbol of a funding fee (2026 field).
        """
        changes = dict(assets) if isinstance(assets, Mapping) else dict.fromkeys(assets, ZERO)
        seen: set[int] = set()
        position_entries = []
        for position in positions:
            if id(position) in seen:
                continue
            seen.add(id(position))
            position_entries.append(self.position_entry(account, position))
        body: dict[str, Any] = {
            "m": reason,
            "B": [self.balance_entry(account, asset, change) for asset, change in changes.items()],
            "P": position_entries,
        }
        if funding_symbol is not None:
            body["S"] = funding_symbol
        event: dict[str, Any] = {"e": "ACCOUNT_UPDATE", "E": now_ms, "T": now_ms}
        if self.product is Product.COINM:
            event["i"] = account.alias
        event["a"] = body
        return event


#: Assets counted at face value in multi-assets mode.
_STABLE: Final = frozenset({"USDT", "USDC", "FDUSD", "BFUSD", "BNFCR"})
