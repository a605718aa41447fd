"""The venue: its state, its background activity, and the server that exposes it.

Use it in-process from tests::

    async with open_venue(VenueConfig(seed=7)) as venue:
        venue.urls["rest"]      # "http://127.0.0.1:<port>"

or from the command line with ``tern venue``, which prints one JSON line with the URLs and
the first API key once it is serving.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import attrs
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from scenarios.venue.app import VenueApp
from scenarios.venue.auth import ApiKey, KeyRegistry, generate_hmac
from scenarios.venue.clock import VenueClock
from scenarios.venue.config import LIMIT_NAMES, VenueConfig
from scenarios.venue.control import ControlApi
from scenarios.venue.faults import Faults
from scenarios.venue.feeds import Feeds
from scenarios.venue.instruments import (
    Instrument,
    Product,
    default_instruments,
    instruments_from_config,
)
from scenarios.venue.limits import DEFAULT_POOLS, RateLimit, RateLimiter
from scenarios.venue.market import MarketState
from scenarios.venue.rest import RestServer
from scenarios.venue.streams import SEND_BUFFER, StreamHub
from scenarios.venue.trading import engines_for
from scenarios.venue.userdata import UserData
from scenarios.venue.ws_api import WsApiServer

#: Seconds between server-initiated WebSocket pings (Binance: 20 s on Spot, 3 min futures).
PING_INTERVAL_S = 20.0


class Venue:
    """All of the venue's state. Built by :func:`open_venue`."""

    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.clock = VenueClock(config.epoch_ms)
        self.rng = random.Random(config.seed)
        now = self.clock.now_ms()
        instruments = list(default_instruments(now))
        if config.instruments:
            instruments = list(instruments_from_config(list(config.instruments), now))
        self.instruments: dict[Product, dict[str, Instrument]] = {
            product: {} for product in Product
        }
        for instrument in instruments:
            self.instruments[instrument.product][instrument.symbol] = instrument
        self.markets: dict[tuple[Product, str], MarketState] = {
            (instrument.product, instrument.symbol): MarketState(
                instrument,
                rng=random.Random(f"{config.seed}:{instrument.product.value}:{instrument.symbol}"),
                now_ms=now,
            )
            for instrument in instruments
        }
        self.keys = KeyRegistry()
        registered = [
            ApiKey.hmac(spec.api_key, spec.secret)
            if spec.secret is not None
            else ApiKey.from_public_key_pem(spec.api_key, spec.public_key_pem or b"")
            for spec in config.keys
        ] or [generate_hmac(self.rng)]
        for key in registered:
            self.keys.add(key)
        self.first_key = registered[0]
        self.limiter = RateLimiter(pools_with(config.limits))
        self.faults = Faults()
        self.hub = StreamHub()
        self.feeds = Feeds(self)
        self.user_data = UserData(self)
        self.engines = engines_for(self)
        self.rest = RestServer(self)
        self.control = ControlApi(self)
        self.ws_api = WsApiServer(self)
        self.app = VenueApp(self)
        self.urls: dict[str, Any] = {}
        #: Market activity stops while True (the control API's /_venue/activity).
        self.paused = False
        #: A stream client whose socket takes nothing for this long is disconnected.
        self.slow_client_s = 5.0
        #: Messages queued per stream connection before a slow client is disconnected.
        self.send_buffer = SEND_BUFFER
        #: Stream connections are closed after this long, as Binance does after 24 hours.
        self.max_connection_s = 24 * 3600.0
        #: Venue bugs met by background work (the last 100), for tests and ``/_venue/state``.
        self.errors: list[str] = []

    def instrument(self, product: Product, symbol: str) -> Instrument | None:
        return self.instruments[product].get(symbol)

    def on_market(self, product: Product, symbol: str, events: list[Any]) -> None:
        """Events a market produced outside the engines: the engine first, then the feeds.

        The feeds get the events even when the engine fails on them: the book has changed,
        and a diff-depth stream that skipped the change would leave every client's book wrong.
        """
        try:
            self.engines[product].on_market(symbol, events)
        finally:
            self.feeds.on_market(product, symbol, events)

    def _step(self, product: Product, market: MarketState, now_ms: int) -> None:
        self.on_market(product, market.instrument.symbol, market.step(now_ms))

    def _survive(self, where: str, action: Any, *args: Any) -> None:
        """Run one piece of background work; a venue bug there is recorded, not fatal."""
        try:
            action(*args)
        except Exception as exc:
            self.errors.append(f"{where}: {type(exc).__name__}: {exc}")
            del self.errors[:-100]

    def ready_line(self) -> dict[str, Any]:
        """The JSON object ``tern venue`` prints once serving."""
        key = self.first_key
        return {
            **self.urls,
            "api_key": key.api_key,
            "api_secret": key.secret,
        }

    async def _activity(self) -> None:
        """One market-activity step per ``tick_ms`` for every market, fanned out to feeds."""
        interval = self.config.tick_ms / 1000
        next_tick = trio.current_time()
        while True:
            next_tick += interval
            await trio.sleep_until(next_tick)
            now = self.clock.now_ms()
            if not self.paused:
                for (product, symbol), market in self.markets.items():
                    self._survive(
                        f"{product.value} {symbol} step", self._step, product, market, now
                    )
            for product, engine in self.engines.items():
                self._survive(f"{product.value} engine tick", engine.on_time, now)
            self._survive("user data tick", self.user_data.on_time, now)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled. ``task_status.started()`` once the socket listens."""
        config = HypercornConfig()
        config.bind = [f"{self.config.host}:{self.config.port}"]
        config.accesslog = None
        config.errorlog = None
        config.websocket_ping_interval = PING_INTERVAL_S
        config.keep_alive_timeout = 30
        config.keep_alive_max_requests = 1_000_000
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                lambda task_status: serve(self.app, config, task_status=task_status)
            )
            base = binds[0].replace("http://", "")
            host, _, port = base.rpartition(":")
            self.urls = urls_for(host, int(port))
            nursery.start_soon(self._activity)
            await nursery.start(self.feeds.run)
            task_status.started()


def pools_with(overrides: dict[str, int]) -> dict[str, tuple[RateLimit, ...]]:
    """The default pools with the configured limits (names from ``LIMIT_NAMES``)."""
    wanted = {LIMIT_NAMES[name]: limit for name, limit in overrides.items()}
    return {
        pool: tuple(
            attrs.evolve(item, limit=wanted[key])
            if (key := (pool, item.kind, item.interval, item.interval_num)) in wanted
            else item
            for item in limits
        )
        for pool, limits in DEFAULT_POOLS.items()
    }


def urls_for(host: str, port: int) -> dict[str, Any]:
    """The URLs a client uses, in the forms Binance publishes its own."""
    http = f"http://{host}:{port}"
    ws = f"ws://{host}:{port}"
    return {
        "rest": http,
        "ws": {"spot": ws, "usdm": f"{ws}/usdm", "coinm": f"{ws}/coinm"},
        "ws_api": {
            "spot": f"{ws}/ws-api/v3",
            "usdm": f"{ws}/ws-fapi/v1",
            "coinm": f"{ws}/ws-dapi/v1",
        },
    }


@contextlib.asynccontextmanager
async def open_venue(config: VenueConfig | None = None) -> AsyncIterator[Venue]:
    """Run a venue for the duration of the block (port 0 picks a free port)."""
    venue = Venue(config if config is not None else VenueConfig())
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.serve)
        try:
            yield venue
        finally:
            nursery.cancel_scope.cancel()
