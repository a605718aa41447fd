"""Shared helpers of the Spot engine tests (a desk that calls the handlers directly).

:class:`Desk` builds a :class:`~scenarios.venue.server.Venue` without serving it (so the
market only moves when a test moves it), subscribes to every account's user data, and calls
the Spot handlers with a :class:`~scenarios.venue.rest.Call` the way the REST pipeline does
after authentication. The few tests at the bottom check the desk itself.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from scenarios.venue import spot_api
from scenarios.venue.config import KeySpec, VenueConfig
from scenarios.venue.errors import VenueError
from scenarios.venue.http import Request
from scenarios.venue.instruments import Product
from scenarios.venue.market import BookSide, MarketState, Side
from scenarios.venue.rest import Call
from scenarios.venue.server import Venue
from scenarios.venue.spot import SpotEngine
from scenarios.venue.userdata import Subscriber

T0 = 1_704_070_800_000  # 2024-01-01 01:00 UTC
KEYS = ("A" * 64, "B" * 64, "C" * 64)
SPOT = Product.SPOT
#: A GTC limit BUY of 0.01 BTCUSDT, still without its price.
LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.01",
}


class Desk:
    """A quiet venue and its Spot engine, driven handler by handler."""

    def __init__(self, *, seed: int = 7, instruments: tuple[dict[str, Any], ...] = ()) -> None:
        config = VenueConfig(
            seed=seed,
            epoch_ms=T0,
            keys=tuple(KeySpec(key, secret="s" * 64) for key in KEYS),
            instruments=instruments,
        )
        self.venue = Venue(config)
        self.engine: SpotEngine = self.venue.engines[SPOT]
        self.events: dict[str, list[dict[str, Any]]] = {key: [] for key in KEYS}
        for key in KEYS:
            self.venue.user_data.add(
                Subscriber(
                    SPOT, key, lambda payload, key=key: self.events[key].append(payload) or True
                )
            )

    # --- calling --------------------------------------------------------------------------

    def call(self, params: dict[str, Any], account: str = KEYS[0]) -> Call:
        flat = {name: str(value) for name, value in params.items() if value is not None}
        request = Request("POST", "/api/v3/test", b"", b"", flat, {}, "10.0.0.1")
        return Call(
            self.venue, request, SPOT, self.venue.clock.now_ms(), self.venue.keys.get(account)
        )

    def do(self, handler: Callable[..., Any], account: str = KEYS[0], **params: Any) -> Any:
        return handler(self.engine, self.call(params, account))

    def fails(
        self, handler: Callable[..., Any], account: str = KEYS[0], **params: Any
    ) -> VenueError:
        with pytest.raises(VenueError) as caught:
            handler(self.engine, self.call(params, account))
        return caught.value

    # --- placing (``symbol`` is BTCUSDT unless given) -------------------------------------

    def order(self, account: str = KEYS[0], **params: Any) -> dict[str, Any]:
        params.setdefault("symbol", "BTCUSDT")
        return self.do(spot_api.new_order, account, **params)

    def refused(self, account: str = KEYS[0], **params: Any) -> VenueError:
        """The error of a new order the venue refuses."""
        params.setdefault("symbol", "BTCUSDT")
        return self.fails(spot_api.new_order, account, **params)

    def limit(
        self,
        side: str,
        price: Any,
        *,
        quantity: Any = "0.01",
        account: str = KEYS[0],
        **extra: Any,
    ) -> dict[str, Any]:
        """A GTC LIMIT order at ``price``; ``extra`` adds parameters or overrides these."""
        params = {"side": side, "type": "LIMIT", "timeInForce": "GTC", "quantity": quantity}
        return self.order(account, **{**params, "price": price, **extra})

    def stop_limit(self, side: str, *, stop: Any, price: Any, **extra: Any) -> dict[str, Any]:
        """A GTC STOP_LOSS_LIMIT order: it waits for ``stop``, then is a limit at ``price``."""
        return self.limit(side, price, type="STOP_LOSS_LIMIT", stopPrice=stop, **extra)

    def stop_loss(
        self, side: str, *, quantity: Any = "0.01", account: str = KEYS[0], **extra: Any
    ) -> dict[str, Any]:
        """A STOP_LOSS order; ``extra`` holds its ``stopPrice`` and/or ``trailingDelta``."""
        return self.order(account, side=side, type="STOP_LOSS", quantity=quantity, **extra)

    def sell_oco_params(self, **changes: Any) -> dict[str, Any]:
        """Parameters of a SELL OCO of 0.01 BTCUSDT: a LIMIT_MAKER 100 above the last price and
        a STOP_LOSS 100 below it. ``changes`` add or override parameters (None drops one)."""
        last = self.market().last_price
        return {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.01",
            "aboveType": "LIMIT_MAKER",
            "abovePrice": last + 100,
            "belowType": "STOP_LOSS",
            "belowStopPrice": last - 100,
            **changes,
        }

    # --- the market -----------------------------------------------------------------------

    def market(self, symbol: str = "BTCUSDT") -> MarketState:
        return self.venue.markets[(SPOT, symbol)]

    def best(self, side: BookSide, symbol: str = "BTCUSDT") -> Decimal:
        price = self.market(symbol).best(side)
        assert price is not None
        return price

    def now(self) -> int:
        return self.venue.clock.now_ms()

    def publish(self, symbol: str, events: list[Any]) -> None:
        """What the venue does with a market's own events, then its tick."""
        self.venue.on_market(SPOT, symbol, events)
        self.engine.on_time(self.now())

    def move_to(self, price: Decimal, symbol: str = "BTCUSDT") -> None:
        """Walk the market to ``price`` (trades on the way), as ``/_venue/price`` does."""
        self.publish(symbol, self.market(symbol).set_price(price, self.now()))

    def clear(self, side: BookSide, levels: int, symbol: str = "BTCUSDT") -> Decimal:
        """Take the background liquidity off the best ``levels`` of a side; the new best."""
        market = self.market(symbol)
        for _ in range(levels):
            update = market.remove_liquidity(side, self.best(side, symbol), None, self.now())
            self.publish(symbol, [update] if update is not None else [])
        return self.best(side, symbol)

    def take(
        self, side: Side, price: Decimal, quantity: Decimal | None = None, symbol: str = "BTCUSDT"
    ) -> None:
        """Background takers ``side`` ``quantity`` (all there is) up to ``price``."""
        market = self.market(symbol)
        if quantity is None:
            quantity = market.available(side, price)
        self.publish(symbol, market.take_liquidity(side, quantity, self.now(), limit_price=price))

    def step(self, symbol: str = "BTCUSDT") -> None:
        self.publish(symbol, self.market(symbol).step(self.now()))

    # --- looking --------------------------------------------------------------------------

    def reports(self, account: str = KEYS[0], order_id: int | None = None) -> list[dict]:
        return [
            event
            for event in self.events[account]
            if event["e"] == "executionReport" and (order_id is None or event["i"] == order_id)
        ]

    def of_type(self, kind: str, account: str = KEYS[0]) -> list[dict]:
        return [event for event in self.events[account] if event["e"] == kind]

    def balance(self, asset: str, account: str = KEYS[0]) -> tuple[Decimal, Decimal]:
        found = self.engine.account(account).balance(asset)
        return found.free, found.locked


def D(value: str | int) -> Decimal:
    return Decimal(value)


async def test_the_desk_sees_the_default_balances_and_a_quiet_book() -> None:
    desk = Desk()
    assert desk.balance("USDT") == (D(100000), D(0))
    assert desk.balance("BTC", KEYS[2]) == (D(10), D(0))
    bid, ask = desk.best(BookSide.BID), desk.best(BookSide.ASK)
    assert bid < ask
    assert desk.events[KEYS[0]] == []


async def test_the_desk_reports_errors_it_does_not_expect() -> None:
    desk = Desk()
    error = desk.fails(spot_api.new_order, symbol="NOPE", side="BUY", type="MARKET", quantity=1)
    assert (error.code, error.msg) == (-1121, "Invalid symbol.")
