"""What a trading engine offers the venue, and how the venue reaches it.

The venue has one engine per product: :class:`scenarios.venue.spot.SpotEngine` for Spot and
one :class:`scenarios.venue.futures.FuturesEngine` each for USD-M and COIN-M. An engine owns
its product's orders, accounts and positions, and answers its product's trading and account
endpoints. It trades on the product's :class:`~scenarios.venue.market.MarketState` books, the
same books the background activity trades on, so user orders meet background liquidity and
move the public book, trades and streams.

The venue calls an engine at four points:

* REST: :meth:`Engine.routes` is merged into the REST pipeline, which authenticates the call
  (the key is :attr:`Call.key <scenarios.venue.rest.Call.key>`) before the handler runs.
* WS-API: :meth:`Engine.ws_api_methods` is merged into the product's WS-API; the session
  layer authenticates (``session.logon`` or per-request ``apiKey``/``signature``) and builds
  the same :class:`~scenarios.venue.rest.Call` with string parameters.
* Market events: :meth:`Engine.on_market` sees every event list a market produced outside the
  engine (background activity, control hooks) *before* the public feeds do: a
  :class:`~scenarios.venue.market.MakerFill` there is a user order filled by someone else.
  Events of the engine's own matching go to ``venue.feeds.on_market`` directly.
* Time: :meth:`Engine.on_time` runs after every activity tick (expiries, countdowns, funding,
  liquidation checks); it runs even while activity is paused.

Accounts are API keys: every registered key is its own account, funded from
``VenueConfig.balances`` for each product.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from scenarios.venue.auth import Security

if TYPE_CHECKING:
    from scenarios.venue.instruments import Product
    from scenarios.venue.rest import Call, Route


@attrs.frozen
class WsMethod:
    """One WS-API method of an engine.

    Attributes:
        handler: called with a :class:`~scenarios.venue.rest.Call` whose parameters are the
            request's ``params`` as strings (JSON ``true`` becomes ``"true"``) and whose
            ``key`` is the authenticated key.
        security: how the session layer authenticates it.
        weight: request weight charged before it runs.
        orders: unfilled-order count charged (order placements).
    """

    handler: Callable[[Call], Any]
    security: Security
    weight: int = 1
    orders: int = 0


class Engine(Protocol):
    """A product's trading engine (see the module docstring)."""

    def routes(self) -> Mapping[tuple[str, str], Route]:
        """REST endpoints by ``(method, path)``."""
        ...

    def ws_api_methods(self) -> Mapping[str, WsMethod]:
        """WS-API methods by name."""
        ...

    def on_market(self, symbol: str, events: Sequence[Any]) -> None:
        """React to market events produced outside the engine."""
        ...

    def on_time(self, now_ms: int) -> None:
        """Let time pass: expiries, countdowns, funding, risk checks."""
        ...

    def control_actions(self) -> Mapping[str, Callable[[dict[str, Any]], Any]]:
        """Control API actions, served at ``POST /_venue/<product>/<name>``."""
        ...


def engines_for(venue: Any) -> dict[Product, Engine]:
    """Build the three engines of a venue."""
    from scenarios.venue.futures import build_futures_engines
    from scenarios.venue.instruments import Product
    from scenarios.venue.spot import SpotEngine

    engines: dict[Product, Engine] = {Product.SPOT: SpotEngine(venue)}
    engines.update(build_futures_engines(venue))
    return engines
