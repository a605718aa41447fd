"""Futures account endpoints, their WS-API methods and the futures control actions.

USD-M (``/fapi``): ``GET /v2/account``, ``/v3/account``, ``/v2/balance``, ``/v3/balance``,
``/v2/positionRisk``, ``/v3/positionRisk``, ``/v1/commissionRate``, ``/v1/leverageBracket``,
``/v1/symbolConfig``, ``/v1/accountConfig``, ``/v1/income``; ``POST /v1/leverage``,
``/v1/marginType``, ``/v1/positionSide/dual`` (and GET), ``/v1/multiAssetsMargin`` (and GET),
``/v1/positionMargin``.

COIN-M (``/dapi``): ``GET /v1/account``, ``/v1/balance``, ``/v1/positionRisk``,
``/v1/commissionRate``, ``/v1/leverageBracket`` (by pair), ``/v2/leverageBracket``,
``/v1/income``; ``POST /v1/leverage``, ``/v1/marginType``, ``/v1/positionSide/dual`` (and GET),
``/v1/positionMargin``.

Shapes follow ``binance-protocol.md`` 4.2/4.3 and the fixtures: amounts are strings with 8
decimals, prices with the symbol's decimals, leverage a string in positions and an integer in
``POST /leverage``; ``leverageBracket`` uses JSON numbers as Binance does.

Control actions (``POST /_venue/<usdm|coinm>/<name>``, JSON in and out; ``account`` defaults
to the venue's first key):

* ``fund`` ``{account, asset, delta}``: add to (or, negative, take from) a wallet;
  ``ACCOUNT_UPDATE`` with reason ``DEPOSIT`` or ``WITHDRAW``.
* ``fee_tier`` ``{account, tier}``: the account's VIP level (0-9).
* ``orders`` ``{account?, symbol?}``: every order, regular and conditional, as the venue
  knows them.
* ``fills`` ``{account?, symbol?}``: every fill.
* ``positions`` ``{account?}``: non-zero positions.
* ``balances`` ``{account?}``: every asset's wallet, margins and availability.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from scenarios.venue import futures_errors as errors
from scenarios.venue import futures_params as params
from scenarios.venue.auth import Security
from scenarios.venue.errors import VenueError
from scenarios.venue.futures_accounts import (
    FEE_TIERS,
    ZERO,
    AssetSummary,
    FuturesAccount,
    Position,
    amount,
    max_notional,
    trim,
)
from scenarios.venue.futures_orders import algo_query, order_query, user_trade
from scenarios.venue.payloads import format_decimal
from scenarios.venue.trading import WsMethod

if TYPE_CHECKING:
    from scenarios.venue.futures import FuturesEngine
    from scenarios.venue.rest import Call, Route

STABLE_ASSETS: Final = frozenset({"USDT", "USDC", "FDUSD", "BFUSD", "BNFCR"})
SUCCESS: Final = {"code": 200, "msg": "success"}
ACCOUNT_WEIGHT: Final = 5
MULTI_ASSETS_WITH_ISOLATED: Final = (
    -4168,
    "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures under "
    "isolated-margin mode.",
)
ISOLATED_IN_MULTI_ASSETS: Final = (
    -4167,
    "Unable to adjust to isolated-margin mode under the Multi-Assets mode.",
)


def _plain(value: Decimal) -> str:
    """A rate or cap as Binance prints it: no exponent, no trailing zeros (``"0.0002"``)."""
    text = format(value.normalize(), "f")
    return text


def _number(value: Decimal) -> int | float:
    """A JSON number (``leverageBracket`` is the one place Binance sends numbers)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


class AccountViews:
    """The account endpoints of one engine (see the module docstring)."""

    def __init__(self, engine: FuturesEngine) -> None:
        self.engine = engine
        self.accounts = engine.accounts
        self.name = engine.name

    # --- pieces ---------------------------------------------------------------------------

    def _sides(self, account: FuturesAccount) -> tuple[str, ...]:
        return ("LONG", "SHORT") if self.engine.dual(account.key) else ("BOTH",)

    def _rows(
        self, account: FuturesAccount, symbols: list[str] | None = None
    ) -> list[tuple[str, Position]]:
        rows = []
        for symbol in self.engine.instruments:
            if symbols is not None and symbol not in symbols:
                continue
            for side in self._sides(account):
                rows.append((symbol, account.position(symbol, side)))
        return rows

    def _assets(self, account: FuturesAccount) -> list[AssetSummary]:
        return [self.accounts.asset_summary(account, asset) for asset in account.wallets]

    def _usd_value(self, asset: str) -> Decimal:
        if asset in STABLE_ASSETS:
            return Decimal(1)
        symbol = f"{asset}USDT"
        if symbol in self.engine.instruments:
            return self.engine.mark_price(symbol)
        return ZERO

    def _totals(self, account: FuturesAccount) -> dict[str, str]:
        """``total*``, ``availableBalance``, ``maxWithdrawAmount``: the USDT asset in
        single-asset mode; every asset valued in USD in multi-assets mode."""
        if account.multi_assets:
            chosen = [
                (summary, self._usd_value(summary.asset)) for summary in self._assets(account)
            ]
        else:
            main = "USDT" if "USDT" in account.wallets else next(iter(account.wallets), "USDT")
            chosen = [(self.accounts.asset_summary(account, main), Decimal(1))]

        def total(getter: Callable[[AssetSummary], Decimal]) -> str:
            return amount(sum((getter(item) * rate for item, rate in chosen), ZERO))

        return {
            "totalInitialMargin": total(lambda item: item.initial_margin),
            "totalMaintMargin": total(lambda item: item.maint_margin),
            "totalWalletBalance": total(lambda item: item.wallet_balance),
            "totalUnrealizedProfit": total(lambda item: item.unrealized_profit),
            "totalMarginBalance": total(lambda item: item.margin_balance),
            "totalPositionInitialMargin": total(lambda item: item.position_initial_margin),
            "totalOpenOrderInitialMargin": total(lambda item: item.open_order_initial_margin),
            "totalCrossWalletBalance": total(lambda item: item.cross_wallet_balance),
            "totalCrossUnPnl": total(lambda item: item.cross_unrealized_profit),
            "availableBalance": total(lambda item: item.available_balance),
            "maxWithdrawAmount": total(lambda item: item.max_withdraw_amount),
        }

    @staticmethod
    def _asset_margins(summary: AssetSummary) -> dict[str, Any]:
        """The fields every account view's ``assets`` row starts with (the wallet, its PnL
        and margins); each view adds the rest in its own order."""
        return {
            "asset": summary.asset,
            "walletBalance": amount(summary.wallet_balance),
            "unrealizedProfit": amount(summary.unrealized_profit),
            "marginBalance": amount(summary.margin_balance),
            "maintMargin": amount(summary.maint_margin),
            "initialMargin": amount(summary.initial_margin),
            "positionInitialMargin": amount(summary.position_initial_margin),
            "openOrderInitialMargin": amount(summary.open_order_initial_margin),
        }

    def _asset_json(self, summary: AssetSummary, *, margin_available: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            **self._asset_margins(summary),
            "crossWalletBalance": amount(summary.cross_wallet_balance),
            "crossUnPnl": amount(summary.cross_unrealized_profit),
            "availableBalance": amount(summary.available_balance),
            "maxWithdrawAmount": amount(summary.max_withdraw_amount),
        }
        if margin_available:
            body["marginAvailable"] = True
        body["updateTime"] = summary.update_time
        return body

    @staticmethod
    def _position_margins(figures: dict[str, Any]) -> dict[str, Any]:
        """A position's margin fields, in the order ``GET /account`` (USD-M v2 and COIN-M)
        lists them (``figures``: :meth:`_figures`)."""
        return {
            "initialMargin": amount(figures["position_margin"] + figures["order_margin"]),
            "maintMargin": amount(figures["maint"]),
            "unrealizedProfit": amount(figures["unrealized"]),
            "positionInitialMargin": amount(figures["position_margin"]),
            "openOrderInitialMargin": amount(figures["order_margin"]),
            "leverage": str(figures["leverage"]),
            "isolated": figures["isolated"],
        }

    @staticmethod
    def _risk_prices(figures: dict[str, Any]) -> dict[str, Any]:
        """The fields every ``positionRisk`` row (USD-M v2 and v3, COIN-M) has in a run, from
        ``positionAmt`` to ``liquidationPrice`` (``figures``: :meth:`_figures`)."""
        return {
            "positionAmt": figures["amount"],
            "entryPrice": figures["entry"],
            "breakEvenPrice": figures["break_even"],
            "markPrice": format_decimal(figures["mark"], 8),
            "unRealizedProfit": amount(figures["unrealized"]),
            "liquidationPrice": figures["liquidation"],
        }

    def _figures(self, account: FuturesAccount, position: Position) -> dict[str, Any]:
        """The numbers every position view uses."""
        engine = self.engine
        instrument = engine.instrument(position.symbol)
        mark = engine.mark_price(position.symbol)
        bids, asks, order_margin = engine._exposure(account, position.symbol)
        unrealized = self.accounts.unrealized_pnl(position, mark) if position.amount else ZERO
        position_margin = self.accounts.position_margin(account, position, mark)
        isolated = account.setting(position.symbol).isolated
        first_side = self._sides(account)[0] == position.position_side
        return {
            "instrument": instrument,
            "mark": mark,
            "amount": format_decimal(position.amount, instrument.quantity_precision),
            "entry": trim(position.entry_price, instrument.price_precision),
            "break_even": trim(
                self.accounts.break_even_price(account, position), instrument.price_precision
            ),
            "unrealized": unrealized,
            "notional": self.accounts.notional(position, mark) if position.amount else ZERO,
            "position_margin": position_margin,
            "order_margin": order_margin if first_side else ZERO,
            "maint": self.accounts.maint_margin(position, mark),
            "liquidation": trim(
                self.accounts.liquidation_price(account, position), instrument.price_precision
            ),
            "isolated": isolated,
            "isolated_margin": position.isolated_wallet + unrealized if isolated else ZERO,
            "bids": bids if first_side else ZERO,
            "asks": asks if first_side else ZERO,
            "leverage": account.setting(position.symbol).leverage,
            "max_notional": self.accounts.max_notional(account, position.symbol),
        }

    # --- USD-M ----------------------------------------------------------------------------

    def account_v2(self, call: Call) -> Any:
        account = self.engine._account(call)
        body: dict[str, Any] = {
            "feeTier": account.fee_tier,
            "feeBurn": False,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": account.multi_assets,
            "tradeGroupId": -1,
        }
        body.update(self._totals(account))
        body["assets"] = [
            self._asset_json(summary, margin_available=True) for summary in self._assets(account)
        ]
        positions = []
        for _symbol, position in self._rows(account):
            figures = self._figures(account, position)
            positions.append(
                {
                    "symbol": position.symbol,
                    **self._position_margins(figures),
                    "entryPrice": figures["entry"],
                    "breakEvenPrice": figures["break_even"],
                    "maxNotional": _plain(figures["max_notional"]),
                    "bidNotional": amount(figures["bids"]),
                    "askNotional": amount(figures["asks"]),
                    "positionSide": position.position_side,
                    "positionAmt": figures["amount"],
                    "notional": amount(figures["notional"]),
                    "isolatedWallet": amount(position.isolated_wallet),
                    "updateTime": position.update_time,
                }
            )
        body["positions"] = positions
        return body

    def account_v3(self, call: Call) -> Any:
        account = self.engine._account(call)
        body: dict[str, Any] = dict(self._totals(account))
        body["assets"] = [
            self._asset_json(summary, margin_available=False) for summary in self._assets(account)
        ]
        positions = []
        for _symbol, position in self._rows(account):
            if position.amount == 0:
                continue
            figures = self._figures(account, position)
            positions.append(
                {
                    "symbol": position.symbol,
                    "positionSide": position.position_side,
                    "positionAmt": figures["amount"],
                    "unrealizedProfit": amount(figures["unrealized"]),
                    "isolatedMargin": amount(figures["isolated_margin"]),
                    "notional": amount(figures["notional"]),
                    "isolatedWallet": amount(position.isolated_wallet),
                    "initialMargin": amount(figures["position_margin"] + figures["order_margin"]),
                    "maintMargin": amount(figures["maint"]),
                    "updateTime": position.update_time,
                }
            )
        body["positions"] = positions
        return body

    def balance_um(self, call: Call) -> Any:
        account = self.engine._account(call)
        return [
            {
                "accountAlias": account.alias,
                "asset": summary.asset,
                "balance": amount(summary.wallet_balance),
                "crossWalletBalance": amount(summary.cross_wallet_balance),
                "crossUnPnl": amount(summary.cross_unrealized_profit),
                "availableBalance": amount(summary.available_balance),
                "maxWithdrawAmount": amount(summary.max_withdraw_amount),
                "marginAvailable": True,
                "updateTime": summary.update_time,
            }
            for summary in self._assets(account)
        ]

    def position_risk_v2(self, call: Call) -> Any:
        return self._position_risk(call, coinm=False)

    def position_risk_v3(self, call: Call) -> Any:
        engine = self.engine
        account = engine._account(call)
        symbols = engine._symbols_of(call, required=False)
        rows = []
        for symbol, position in self._rows(account, symbols):
            has_orders = any(
                order.position_side == position.position_side
                for order in engine.open_index.of(account.key, symbol)
            )
            if position.amount == 0 and not has_orders:
                continue
            figures = self._figures(account, position)
            rows.append(
                {
                    "symbol": symbol,
                    "positionSide": position.position_side,
                    **self._risk_prices(figures),
                    "isolatedMargin": amount(figures["isolated_margin"]),
                    "notional": amount(figures["notional"]),
                    "marginAsset": self.accounts.margin_asset(symbol),
                    "isolatedWallet": amount(position.isolated_wallet),
                    "initialMargin": amount(figures["position_margin"] + figures["order_margin"]),
                    "maintMargin": amount(figures["maint"]),
                    "positionInitialMargin": amount(figures["position_margin"]),
                    "openOrderInitialMargin": amount(figures["order_margin"]),
                    "adl": 0 if position.amount == 0 else 1,
                    "bidNotional": amount(figures["bids"]),
                    "askNotional": amount(figures["asks"]),
                    "updateTime": position.update_time,
                }
            )
        return rows

    def account_config(self, call: Call) -> Any:
        account = self.engine._account(call)
        return {
            "feeTier": account.fee_tier,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "dualSidePosition": self.engine.dual(account.key),
            "updateTime": 0,
            "multiAssetsMargin": account.multi_assets,
            "tradeGroupId": -1,
        }

    def symbol_config(self, call: Call) -> Any:
        account = self.engine._account(call)
        symbols = self.engine._symbols_of(call, required=False)
        return [
            {
                "symbol": symbol,
                "marginType": "ISOLATED" if account.setting(symbol).isolated else "CROSSED",
                "isAutoAddMargin": False,
                "leverage": account.setting(symbol).leverage,
                "maxNotionalValue": _plain(self.accounts.max_notional(account, symbol)),
            }
            for symbol in self.engine.instruments
            if symbols is None or symbol in symbols
        ]

    def get_multi_assets(self, call: Call) -> Any:
        return {"multiAssetsMargin": self.engine._account(call).multi_assets}

    def set_multi_assets(self, call: Call) -> Any:
        account = self.engine._account(call)
        wanted = params.boolean(call.request.get, "multiAssetsMargin", self.name)
        if wanted is None:
            raise VenueError.mandatory_param_empty_or_malformed(
                "multiAssetsMargin", product=self.name
            )
        if wanted == account.multi_assets:
            raise errors.multi_assets_unchanged(product=self.name)
        if wanted and any(setting.isolated for setting in account.settings.values()):
            raise VenueError(*MULTI_ASSETS_WITH_ISOLATED)
        account.multi_assets = wanted
        self.engine.publish(
            account.key,
            {"e": "ACCOUNT_CONFIG_UPDATE", "E": call.now_ms, "T": call.now_ms, "ai": {"j": wanted}},
        )
        return dict(SUCCESS)

    # --- COIN-M ---------------------------------------------------------------------------

    def account_cm(self, call: Call) -> Any:
        account = self.engine._account(call)
        assets = [
            {
                **self._asset_margins(summary),
                "maxWithdrawAmount": amount(summary.max_withdraw_amount),
                "crossWalletBalance": amount(summary.cross_wallet_balance),
                "crossUnPnl": amount(summary.cross_unrealized_profit),
                "availableBalance": amount(summary.available_balance),
                "updateTime": summary.update_time,
            }
            for summary in self._assets(account)
        ]
        positions = []
        for _symbol, position in self._rows(account):
            figures = self._figures(account, position)
            positions.append(
                {
                    "symbol": position.symbol,
                    "positionAmt": figures["amount"],
                    **self._position_margins(figures),
                    "positionSide": position.position_side,
                    "entryPrice": figures["entry"],
                    "breakEvenPrice": figures["break_even"],
                    "maxQty": _plain(figures["max_notional"]),
                    "updateTime": position.update_time,
                    "notionalValue": amount(figures["notional"]),
                }
            )
        return {
            "assets": assets,
            "positions": positions,
            "canDeposit": True,
            "canTrade": True,
            "canWithdraw": True,
            "feeTier": account.fee_tier,
            "updateTime": 0,
        }

    def balance_cm(self, call: Call) -> Any:
        account = self.engine._account(call)
        return [
            {
                "accountAlias": account.alias,
                "asset": summary.asset,
                "balance": amount(summary.wallet_balance),
                "withdrawAvailable": amount(summary.max_withdraw_amount),
                "crossWalletBalance": amount(summary.cross_wallet_balance),
                "crossUnPnl": amount(summary.cross_unrealized_profit),
                "availableBalance": amount(summary.available_balance),
                "updateTime": summary.update_time,
            }
            for summary in self._assets(account)
        ]

    def position_risk_cm(self, call: Call) -> Any:
        return self._position_risk(call, coinm=True)

    def _position_risk(self, call: Call, *, coinm: bool) -> list[dict[str, Any]]:
        """``GET /fapi/v2/positionRisk`` or (``coinm``) ``/dapi/v1/positionRisk``: one row per
        position of the asked symbols, flat ones too. The two differ only in two names
        (``maxNotionalValue``/``maxQty``, ``notional``/``notionalValue``) and COIN-M's
        ``marginAsset`` filter."""
        engine = self.engine
        account = engine._account(call)
        symbols = engine._symbols_of(call, required=False)
        margin_asset = call.request.get("marginAsset") if coinm else None
        rows = []
        for symbol, position in self._rows(account, symbols):
            if margin_asset is not None and self.accounts.margin_asset(symbol) != margin_asset:
                continue
            figures = self._figures(account, position)
            rows.append(
                {
                    "symbol": symbol,
                    **self._risk_prices(figures),
                    "leverage": str(figures["leverage"]),
                    "maxQty" if coinm else "maxNotionalValue": _plain(figures["max_notional"]),
                    "marginType": "isolated" if figures["isolated"] else "cross",
                    "isolatedMargin": amount(figures["isolated_margin"]),
                    "isAutoAddMargin": "false",
                    "positionSide": position.position_side,
                    "notionalValue" if coinm else "notional": amount(figures["notional"]),
                    "isolatedWallet": amount(position.isolated_wallet),
                    "updateTime": position.update_time,
                }
            )
        return rows

    # --- shared ---------------------------------------------------------------------------

    def commission_rate(self, call: Call) -> Any:
        account = self.engine._account(call)
        instrument = call.instrument()
        maker, taker = self.accounts.commission_rates(account)
        body = {
            "symbol": instrument.symbol,
            "makerCommissionRate": _plain(maker),
            "takerCommissionRate": _plain(taker),
        }
        if not self.engine.coinm:
            body["rpiCommissionRate"] = _plain(maker)
        return body

    def _bracket_rows(self, symbol: str, coinm: bool, *, v1_pair: bool = False) -> list[Any]:
        rows = []
        for bracket in self.accounts.brackets(symbol):
            row: dict[str, Any] = {
                "bracket": bracket.number,
                "initialLeverage": bracket.initial_leverage,
            }
            if coinm:
                row["qtyCap"] = _number(bracket.cap)
                # sic: Binance's v1 COIN-M bracket spells it "qtylFloor"
                row["qtylFloor" if v1_pair else "qtyFloor"] = _number(bracket.floor)
            else:
                row["notionalCap"] = _number(bracket.cap)
                row["notionalFloor"] = _number(bracket.floor)
            row["maintMarginRatio"] = _number(bracket.maint_margin_ratio)
            if not v1_pair:
                row["cum"] = float(bracket.cum)
            rows.append(row)
        return rows

    def leverage_bracket(self, call: Call) -> Any:
        """``/fapi/v1/leverageBracket`` and ``/dapi/v2/leverageBracket``."""
        coinm = self.engine.coinm
        single = call.optional_instrument()
        symbols = [single.symbol] if single else list(self.engine.instruments)
        rows = [
            {
                "symbol": symbol,
                "notionalCoef": 1.0,
                "brackets": self._bracket_rows(symbol, coinm),
            }
            for symbol in symbols
        ]
        if single is not None and not coinm:
            return rows[0]
        return rows

    def leverage_bracket_pair(self, call: Call) -> Any:
        """``/dapi/v1/leverageBracket``: by ``pair`` (the perpetual's brackets)."""
        pair = call.request.get("pair")
        pairs: dict[str, str] = {}
        for symbol, instrument in self.engine.instruments.items():
            if pair is not None and instrument.pair != pair:
                continue
            if instrument.pair not in pairs or instrument.is_perpetual:
                pairs[instrument.pair] = symbol
        if pair is not None and not pairs:
            raise VenueError.bad_symbol(product=self.name)
        return [
            {"pair": name, "brackets": self._bracket_rows(symbol, True, v1_pair=True)}
            for name, symbol in pairs.items()
        ]

    def set_leverage(self, call: Call) -> Any:
        engine = self.engine
        account = engine._account(call)
        instrument = call.instrument()
        symbol = instrument.symbol
        raw = call.request.get("leverage")
        if raw is None:
            raise VenueError.mandatory_param_empty_or_malformed("leverage", product=self.name)
        leverage = params.integer(call.request.get, "leverage", self.name)
        assert leverage is not None
        if not 1 <= leverage <= self.accounts.max_leverage(symbol):
            raise errors.invalid_leverage(leverage, product=self.name)
        setting = account.setting(symbol)
        positions = [
            position
            for position in account.positions.values()
            if position.symbol == symbol and position.amount != 0
        ]
        if positions and setting.isolated and leverage < setting.leverage:
            raise errors.isolated_leverage_with_position(product=self.name)
        cap = max_notional(self.accounts.brackets(symbol), leverage)
        if any(abs(self.accounts.notional(position)) > cap for position in positions):
            raise errors.max_leverage_ratio(product=self.name)
        setting.leverage = leverage
        engine.publish(
            account.key,
            {
                "e": "ACCOUNT_CONFIG_UPDATE",
                "E": call.now_ms,
                "T": call.now_ms,
                "ac": {"s": symbol, "l": leverage},
            },
        )
        body: dict[str, Any] = {"leverage": leverage}
        body["maxQty" if engine.coinm else "maxNotionalValue"] = _plain(cap)
        body["symbol"] = symbol
        return body

    def set_margin_type(self, call: Call) -> Any:
        engine = self.engine
        account = engine._account(call)
        instrument = call.instrument()
        wanted = params.choice(call.request.get, "marginType", ("ISOLATED", "CROSSED"), self.name)
        if wanted is None:
            raise VenueError.mandatory_param_empty_or_malformed("marginType", product=self.name)
        setting = account.setting(instrument.symbol)
        isolated = wanted == "ISOLATED"
        if setting.isolated == isolated:
            raise errors.margin_type_unchanged(product=self.name)
        if engine.has_open_orders(account.key, instrument.symbol):
            raise errors.margin_type_open_orders(product=self.name)
        if engine.has_positions(account.key, instrument.symbol):
            raise errors.margin_type_position(product=self.name)
        if isolated and account.multi_assets:
            raise VenueError(*ISOLATED_IN_MULTI_ASSETS)
        setting.isolated = isolated
        return dict(SUCCESS)

    def get_dual(self, call: Call) -> Any:
        return {"dualSidePosition": self.engine.dual(self.engine._key(call))}

    def set_dual(self, call: Call) -> Any:
        engine = self.engine
        key = engine._key(call)
        wanted = params.boolean(call.request.get, "dualSidePosition", self.name)
        if wanted is None:
            raise VenueError.mandatory_param_empty_or_malformed(
                "dualSidePosition", product=self.name
            )
        if wanted == engine.dual(key):
            raise errors.position_side_unchanged(product=self.name)
        lines = [engine] + ([engine.sibling] if engine.sibling is not None else [])
        if any(line.has_open_orders(key) for line in lines):
            raise errors.dual_open_orders(product=self.name)
        if any(line.has_positions(key) for line in lines):
            raise errors.dual_position(product=self.name)
        engine.shared.dual[key] = wanted
        return dict(SUCCESS)

    def position_margin(self, call: Call) -> Any:
        """``POST /positionMargin``: add (type 1) or remove (type 2) isolated margin."""
        engine = self.engine
        account = engine._account(call)
        instrument = call.instrument()
        symbol = instrument.symbol
        get = call.request.get
        position_side = params.position_side(get, self.name)
        engine._check_position_side(account.key, position_side)
        value = params.required_decimal(get, "amount", self.name)
        kind = params.integer(get, "type", self.name)
        if kind is None:
            raise VenueError.mandatory_param_empty_or_malformed("type", product=self.name)
        if kind not in (1, 2):
            raise VenueError.invalid_parameter("type", product=self.name)
        if value <= 0:
            raise errors.amount_not_positive(product=self.name)
        if not account.setting(symbol).isolated:
            raise errors.margin_not_isolated(product=self.name)
        position = account.position(symbol, position_side)
        if position.amount == 0:
            raise errors.no_position_for_margin(product=self.name)
        asset = self.accounts.margin_asset(symbol)
        if kind == 1:
            if value > self.accounts.asset_summary(account, asset).available_balance:
                raise errors.cross_balance_insufficient(product=self.name)
            self.accounts.move_isolated(account, position, value, call.now_ms)
        else:
            unrealized = self.accounts.unrealized_pnl(position)
            free = (
                position.isolated_wallet
                + min(ZERO, unrealized)
                - self.accounts.position_margin(account, position)
            )
            if value > free:
                raise errors.isolated_balance_insufficient(product=self.name)
            self.accounts.move_isolated(account, position, -value, call.now_ms)
        engine.publish_account_update(
            account, "MARGIN_TRANSFER", call.now_ms, assets=[asset], positions=[position]
        )
        return {
            "amount": _number(value),
            "code": 200,
            "msg": "Successfully modify position margin.",
            "type": kind,
        }

    def income(self, call: Call) -> Any:
        """``GET /income``: REALIZED_PNL, COMMISSION, TRANSFER (and later FUNDING_FEE...)."""
        engine = self.engine
        key = engine._key(call)
        symbol = call.optional_instrument()
        income_type = call.request.get("incomeType")
        start, end = call.times()
        limit = params.query_limit(call, 100, 1000)
        rows = [
            row
            for row in engine.income.get(key, ())
            if (symbol is None or row["symbol"] == symbol.symbol)
            and (income_type is None or row["incomeType"] == income_type)
            and params.within(row["time"], start, end)
        ]
        return params.page(rows, limit, from_start=start is not None)


def account_routes(engine: FuturesEngine) -> dict[tuple[str, str], Route]:
    """The account endpoints of ``engine``'s product line."""
    from scenarios.venue.rest import Route

    views = AccountViews(engine)
    trade, user = Security.TRADE, Security.USER_DATA
    if engine.coinm:
        table = [
            ("GET", "/dapi/v1/account", user, views.account_cm),
            ("GET", "/dapi/v1/balance", user, views.balance_cm),
            ("GET", "/dapi/v1/positionRisk", user, views.position_risk_cm),
            ("GET", "/dapi/v1/commissionRate", user, views.commission_rate),
            ("GET", "/dapi/v1/leverageBracket", user, views.leverage_bracket_pair),
            ("GET", "/dapi/v2/leverageBracket", user, views.leverage_bracket),
            ("GET", "/dapi/v1/income", user, views.income),
            ("POST", "/dapi/v1/leverage", trade, views.set_leverage),
            ("POST", "/dapi/v1/marginType", trade, views.set_margin_type),
            ("POST", "/dapi/v1/positionSide/dual", trade, views.set_dual),
            ("GET", "/dapi/v1/positionSide/dual", user, views.get_dual),
            ("POST", "/dapi/v1/positionMargin", trade, views.position_margin),
        ]
    else:
        table = [
            ("GET", "/fapi/v2/account", user, views.account_v2),
            ("GET", "/fapi/v3/account", user, views.account_v3),
            ("GET", "/fapi/v2/balance", user, views.balance_um),
            ("GET", "/fapi/v3/balance", user, views.balance_um),
            ("GET", "/fapi/v2/positionRisk", user, views.position_risk_v2),
            ("GET", "/fapi/v3/positionRisk", user, views.position_risk_v3),
            ("GET", "/fapi/v1/commissionRate", user, views.commission_rate),
            ("GET", "/fapi/v1/leverageBracket", user, views.leverage_bracket),
            ("GET", "/fapi/v1/accountConfig", user, views.account_config),
            ("GET", "/fapi/v1/symbolConfig", user, views.symbol_config),
            ("GET", "/fapi/v1/income", user, views.income),
            ("POST", "/fapi/v1/leverage", trade, views.set_leverage),
            ("POST", "/fapi/v1/marginType", trade, views.set_margin_type),
            ("POST", "/fapi/v1/positionSide/dual", trade, views.set_dual),
            ("GET", "/fapi/v1/positionSide/dual", user, views.get_dual),
            ("POST", "/fapi/v1/multiAssetsMargin", trade, views.set_multi_assets),
            ("GET", "/fapi/v1/multiAssetsMargin", user, views.get_multi_assets),
            ("POST", "/fapi/v1/positionMargin", trade, views.position_margin),
        ]
    return {
        (method, path): Route(engine.product, security, handler)
        for method, path, security, handler in table
    }


def account_ws_methods(engine: FuturesEngine) -> dict[str, WsMethod]:
    """WS-API ``account.balance``, ``account.position``, ``account.status`` (the REST v2
    bodies on USD-M; the ``v2/`` prefix reaches the same methods)."""
    views = AccountViews(engine)
    user = Security.USER_DATA
    if engine.coinm:
        return {
            "account.balance": WsMethod(views.balance_cm, user, ACCOUNT_WEIGHT),
            "account.position": WsMethod(views.position_risk_cm, user, ACCOUNT_WEIGHT),
            "account.status": WsMethod(views.account_cm, user, ACCOUNT_WEIGHT),
        }
    return {
        "account.balance": WsMethod(views.balance_um, user, ACCOUNT_WEIGHT),
        "account.position": WsMethod(views.position_risk_v2, user, ACCOUNT_WEIGHT),
        "account.status": WsMethod(views.account_v2, user, ACCOUNT_WEIGHT),
    }


# --- control actions -------------------------------------------------------------------------


def _decimal_field(data: dict[str, Any], name: str) -> Decimal:
    raw = data.get(name)
    value = params.control_decimal(data, name, "100")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {raw!r}")
    return value


def control_actions(engine: FuturesEngine) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """The engine's control actions (see the module docstring)."""
    accounts = engine.accounts

    def account_of(data: dict[str, Any]) -> FuturesAccount:
        key = data.get("account") or engine.venue.first_key.api_key
        if not isinstance(key, str) or key not in engine.venue.keys:
            raise ValueError(f"account must be a registered API key, got {key!r}")
        return accounts.account(key)

    def symbol_filter(data: dict[str, Any]) -> str | None:
        symbol = data.get("symbol")
        if symbol is None:
            return None
        if not isinstance(symbol, str) or symbol.upper() not in engine.instruments:
            raise ValueError(f"no {engine.name} symbol {symbol!r}")
        return symbol.upper()

    def fund(data: dict[str, Any]) -> Any:
        account = account_of(data)
        asset = data.get("asset")
        if not isinstance(asset, str) or not asset:
            raise ValueError(f'asset must be an asset name such as "USDT", got {asset!r}')
        delta = _decimal_field(data, "delta")
        if delta == 0:
            raise ValueError("delta must not be zero")
        current = account.wallets.get(asset, ZERO)
        if current + delta < 0:
            raise ValueError(f"{asset} cross wallet {current} cannot give {-delta}")
        now = engine.now()
        accounts.adjust_wallet(account, asset, delta, now)
        engine.add_income(account.key, "", "TRANSFER", delta, asset, now)
        engine.publish_account_update(
            account, "DEPOSIT" if delta > 0 else "WITHDRAW", now, assets={asset: delta}
        )
        return {"account": account.key, "asset": asset, "balance": amount(account.wallets[asset])}

    def fee_tier(data: dict[str, Any]) -> Any:
        account = account_of(data)
        tier = data.get("tier")
        if isinstance(tier, bool) or not isinstance(tier, int | str):
            raise ValueError(f"tier must be 0..9, got {tier!r}")
        try:
            level = int(tier)
        except ValueError:
            raise ValueError(f"tier must be 0..9, got {tier!r}") from None
        if not 0 <= level < len(FEE_TIERS[engine.product]):
            raise ValueError(f"tier must be 0..9, got {tier!r}")
        account.fee_tier = level
        maker, taker = accounts.commission_rates(account)
        return {"account": account.key, "tier": level, "maker": str(maker), "taker": str(taker)}

    def orders(data: dict[str, Any]) -> Any:
        account = account_of(data)
        symbol = symbol_filter(data)
        regular = [
            {**order_query(order, engine.instrument(order.symbol)), "account": account.key}
            for order in engine.account_orders.get(account.key, ())
            if symbol is None or order.symbol == symbol
        ]
        conditional = [
            {**algo_query(algo, engine.instrument(algo.symbol)), "account": account.key}
            for algo in engine.account_algos.get(account.key, ())
            if symbol is None or algo.symbol == symbol
        ]
        return {"orders": regular, "algoOrders": conditional}

    def fills(data: dict[str, Any]) -> Any:
        account = account_of(data)
        symbol = symbol_filter(data)
        return [
            {**user_trade(fill, engine.instrument(fill.symbol)), "account": account.key}
            for fill in engine.account_fills.get(account.key, ())
            if symbol is None or fill.symbol == symbol
        ]

    def positions(data: dict[str, Any]) -> Any:
        account = account_of(data)
        rows = []
        for position in accounts.open_positions(account):
            instrument = engine.instrument(position.symbol)
            setting = account.setting(position.symbol)
            rows.append(
                {
                    "symbol": position.symbol,
                    "positionSide": position.position_side,
                    "positionAmt": format_decimal(position.amount, instrument.quantity_precision),
                    "entryPrice": trim(position.entry_price, instrument.price_precision),
                    "markPrice": format_decimal(engine.mark_price(position.symbol), 8),
                    "unrealizedProfit": amount(accounts.unrealized_pnl(position)),
                    "realizedProfit": amount(position.realized),
                    "isolatedWallet": amount(position.isolated_wallet),
                    "leverage": setting.leverage,
                    "marginType": "isolated" if setting.isolated else "cross",
                    "liquidationPrice": trim(
                        accounts.liquidation_price(account, position), instrument.price_precision
                    ),
                }
            )
        return rows

    def balances(data: dict[str, Any]) -> Any:
        account = account_of(data)
        rows = []
        for asset in account.wallets:
            summary = accounts.asset_summary(account, asset)
            rows.append(
                {
                    "asset": asset,
                    "walletBalance": amount(summary.wallet_balance),
                    "crossWalletBalance": amount(summary.cross_wallet_balance),
                    "unrealizedProfit": amount(summary.unrealized_profit),
                    "marginBalance": amount(summary.margin_balance),
                    "maintMargin": amount(summary.maint_margin),
                    "initialMargin": amount(summary.initial_margin),
                    "availableBalance": amount(summary.available_balance),
                }
            )
        return rows

    return {
        "fund": fund,
        "fee_tier": fee_tier,
        "orders": orders,
        "fills": fills,
        "positions": positions,
        "balances": balances,
    }
