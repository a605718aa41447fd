"""Shared helpers for the futures engine tests: an in-process venue on a manual clock, a
client that calls the engine's REST handlers directly, and a user-data capture.

The fixtures ``venue`` (:func:`make_venue`), ``um`` and ``cm`` (a :class:`Client` of key A on
USD-M / COIN-M) serve a test module that imports ``venue_fixture``, ``um_fixture`` and
``cm_fixture``.

Also a smoke test of the helpers themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest

from scenarios.venue.config import KeySpec, VenueConfig
from scenarios.venue.errors import VenueError
from scenarios.venue.futures import FuturesEngine
from scenarios.venue.http import Request
from scenarios.venue.instruments import Product
from scenarios.venue.market import BookSide, MarketState
from scenarios.venue.rest import Call
from scenarios.venue.server import Venue
from scenarios.venue.userdata import Subscriber

KEY_A = "A" * 64
KEY_B = "B" * 64
T0 = 1_780_000_000_000
USDM, COINM = Product.USDM, Product.COINM
PREFIX = {USDM: "/fapi/v1", COINM: "/dapi/v1"}


class ManualClock:
    """A venue clock the test moves by hand."""

    def __init__(self, now_ms: int) -> None:
        self.epoch_ms = now_ms
        self.time_ms = now_ms
        self.skew_ms = 0

    def now_ms(self) -> int:
        return self.time_ms + self.skew_ms

    def advance(self, ms: int) -> int:
        self.time_ms += ms
        return self.time_ms


def make_venue(seed: int = 5) -> Venue:
    """A venue with two HMAC keys (A, B) on a manual clock; no background activity runs."""
    config = VenueConfig(
        seed=seed,
        keys=(KeySpec(api_key=KEY_A, secret="secret-a"), KeySpec(api_key=KEY_B, secret="secret-b")),
        epoch_ms=T0,
    )
    venue = Venue(config)
    venue.clock = ManualClock(T0)  # type: ignore[assignment]
    return venue


@attrs.define
class Client:
    """Calls a product's REST handlers as an authenticated key, like the pipeline does."""

    venue: Venue
    product: Product
    key: str = KEY_A
    events: list[dict[str, Any]] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        self.venue.user_data.add(Subscriber(self.product, self.key, self._deliver))

    def _deliver(self, event: dict[str, Any]) -> bool:
        self.events.append(event)
        return True

    @property
    def engine(self) -> FuturesEngine:
        engine = self.venue.engines[self.product]
        assert isinstance(engine, FuturesEngine)
        return engine

    def path(self, name: str) -> str:
        return name if name.startswith("/") else f"{PREFIX[self.product]}/{name}"

    def call(self, method: str, name: str, **params: Any) -> Any:
        path = self.path(name)
        route = self.venue.rest.routes[(method, path)]
        request = Request(
            method, path, b"", b"", {k: _text(v) for k, v in params.items()}, {}, "127.0.0.1"
        )
        key = self.venue.keys.get(self.key)
        return route.handler(
            Call(self.venue, request, self.product, self.venue.clock.now_ms(), key)
        )

    def error(self, method: str, name: str, **params: Any) -> VenueError:
        try:
            self.call(method, name, **params)
        except VenueError as error:
            return error
        raise AssertionError(f"{method} {name} {params} did not fail")

    def order(self, **params: Any) -> Any:
        return self.call("POST", "order", **params)

    def algo_order(self, **params: Any) -> Any:
        """``POST /algoOrder`` of a conditional order (``algoType=CONDITIONAL``)."""
        return self.call("POST", "algoOrder", algoType="CONDITIONAL", **params)

    def of_type(self, kind: str, execution: str | None = None) -> list[dict[str, Any]]:
        return [
            event
            for event in self.events
            if event.get("e") == kind and (execution is None or event["o"]["x"] == execution)
        ]


@pytest.fixture(name="venue")
async def venue_fixture() -> Venue:
    return make_venue()


@pytest.fixture(name="um")
async def um_fixture(venue: Venue) -> Client:
    return Client(venue, USDM)


@pytest.fixture(name="cm")
async def cm_fixture(venue: Venue) -> Client:
    return Client(venue, COINM)


class Signed:
    """HMAC-signed REST calls to a running venue, as a Binance client makes them."""

    def __init__(self, venue: Any, client: httpx.AsyncClient) -> None:
        self.venue = venue
        self.client = client
        self.key = venue.first_key

    async def __call__(self, method: str, path: str, **params: Any) -> httpx.Response:
        params["timestamp"] = self.venue.clock.now_ms()
        query = urllib.parse.urlencode({name: str(value) for name, value in params.items()})
        signature = hmac.new(self.key.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        return await self.client.request(
            method,
            f"{path}?{query}&signature={signature}",
            headers={"X-MBX-APIKEY": self.key.api_key},
        )

    async def json(self, method: str, path: str, **params: Any) -> Any:
        """The body of a call that must succeed (HTTP 200)."""
        reply = await self(method, path, **params)
        assert reply.status_code == 200, reply.text
        return reply.json()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def limit(symbol: str = "BTCUSDT", **params: Any) -> dict[str, Any]:
    """``POST /order`` parameters of a LIMIT order (GTC unless ``timeInForce`` is given)."""
    return {"symbol": symbol, "type": "LIMIT", "timeInForce": "GTC", **params}


def market(venue: Venue, product: Product, symbol: str) -> MarketState:
    return venue.markets[(product, symbol)]


def best(venue: Venue, product: Product, symbol: str) -> tuple[Decimal, Decimal]:
    top = market(venue, product, symbol).best_bid_ask()
    return top.bid_price, top.ask_price


def add_ask(venue: Venue, product: Product, symbol: str, price: Decimal, qty: Decimal) -> None:
    market(venue, product, symbol).add_liquidity(BookSide.ASK, price, qty, venue.clock.now_ms())


def add_bid(venue: Venue, product: Product, symbol: str, price: Decimal, qty: Decimal) -> None:
    market(venue, product, symbol).add_liquidity(BookSide.BID, price, qty, venue.clock.now_ms())


def walk_to(venue: Venue, product: Product, symbol: str, price: Decimal) -> None:
    """Move the market to ``price`` through the venue (engines see the fills)."""
    events = market(venue, product, symbol).set_price(price, venue.clock.now_ms())
    venue.on_market(product, symbol, events)
    venue.engines[product].on_time(venue.clock.now_ms())  # as the activity loop does


def trades_of(client: Client) -> Iterator[dict[str, Any]]:
    return (event["o"] for event in client.of_type("ORDER_TRADE_UPDATE", "TRADE"))


async def test_helpers_place_and_see_events() -> None:
    venue = make_venue()
    client = Client(venue, USDM)
    body = client.order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002")
    assert body["status"] == "NEW"  # ACK: the state at acceptance
    assert client.of_type("ORDER_TRADE_UPDATE", "NEW")
    assert sum(Decimal(event["l"]) for event in trades_of(client)) == Decimal("0.002")
