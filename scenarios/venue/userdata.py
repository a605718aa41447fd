"""User-data delivery: who hears an account's events, and the futures listen keys.

Engines publish an account's events with :meth:`UserData.publish`; this module knows who is
listening:

* **Spot** over the WS-API (``userDataStream.subscribe`` after ``session.logon``, or
  ``userDataStream.subscribe.signature``): each subscription receives
  ``{"subscriptionId": N, "event": {...}}`` on its WS-API connection.
* **USD-M / COIN-M** over listen keys: ``POST /fapi/v1/listenKey`` (``/dapi``) gives the
  account's key (the same one while it lives, extended by 60 minutes), ``PUT`` extends it
  (``-1125`` once it has expired or been deleted), ``DELETE`` removes it. Streams connect at
  ``/usdm/private/ws?listenKey=K`` (optionally ``&events=A/B``), ``/usdm/private/stream?
  listenKey=K1&events=...&listenKey=K2``, or ``/coinm/ws/K``; the legacy USD-M
  ``/usdm/ws/K`` connects but, as on Binance since 2026-04-23, delivers nothing.
  When a key expires, each of its streams gets ``listenKeyExpired`` and nothing more.

The Spot listenKey endpoints (``/api/v3/userDataStream``) were discontinued by Binance on
2026-02-20 and are not served: they answer like any unknown path.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from scenarios.venue.auth import Security
from scenarios.venue.errors import VenueError
from scenarios.venue.instruments import Product

if TYPE_CHECKING:
    from scenarios.venue.rest import Call, Route
    from scenarios.venue.server import Venue
    from scenarios.venue.streams import Connection

#: A futures listen key lives this long after its creation or last keepalive.
LISTEN_KEY_VALIDITY_MS = 60 * 60 * 1000
_KEY_ALPHABET = string.ascii_letters + string.digits
_LISTEN_KEY_PATHS = {Product.USDM: "/fapi/v1/listenKey", Product.COINM: "/dapi/v1/listenKey"}


@attrs.define(eq=False)
class ListenKey:
    key: str
    product: Product
    account: str
    expires_ms: int


@attrs.define(eq=False)
class Subscriber:
    """One destination of an account's events.

    ``deliver`` takes the event object and returns False once the destination is gone.
    ``events`` (futures ``events=`` filter) limits the event types, None meaning all.
    """

    product: Product
    account: str
    deliver: Callable[[dict[str, Any]], bool]
    events: frozenset[str] | None = None
    listen_key: str | None = None
    #: Ends this destination on the venue's initiative (the control API's terminate).
    terminate: Callable[[], None] | None = None


class UserData:
    """The venue's user-data routing and listen keys (see the module docstring)."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self._subscribers: dict[tuple[Product, str], list[Subscriber]] = {}
        self.listen_keys: dict[str, ListenKey] = {}
        self.published = 0
        #: Events a destination could not take because of a venue bug (kept for tests).
        self.delivery_errors: list[str] = []
        # Listen keys come from the seed, so a replayed scenario sees the same keys.
        self._rng = random.Random(f"{venue.config.seed}:listen-keys")

    # --- delivery -------------------------------------------------------------------------

    def publish(self, product: Product, account: str, payload: dict[str, Any]) -> None:
        """Send one event of ``account`` to every listener of that product and account."""
        subscribers = self._subscribers.get((product, account))
        if not subscribers:
            return
        event_type = payload.get("e")
        for subscriber in list(subscribers):
            if subscriber.events is not None and event_type not in subscriber.events:
                continue
            try:
                delivered = subscriber.deliver(payload)
            except Exception as exc:  # an event the venue built wrong: skip it, keep going
                self.delivery_errors.append(f"{event_type}: {type(exc).__name__}: {exc}")
                continue
            if not delivered:
                self.remove(subscriber)
            else:
                self.published += 1

    def listening(self, product: Product, account: str) -> bool:
        """Whether anyone hears ``account`` (engines may skip building events otherwise)."""
        return bool(self._subscribers.get((product, account)))

    def add(self, subscriber: Subscriber) -> Subscriber:
        self._subscribers.setdefault((subscriber.product, subscriber.account), []).append(
            subscriber
        )
        return subscriber

    def remove(self, subscriber: Subscriber) -> None:
        key = (subscriber.product, subscriber.account)
        subscribers = self._subscribers.get(key)
        if subscribers is not None and subscriber in subscribers:
            subscribers.remove(subscriber)
            if not subscribers:
                del self._subscribers[key]

    def subscribers(self, product: Product, account: str) -> list[Subscriber]:
        return list(self._subscribers.get((product, account), ()))

    # --- listen-key streams ---------------------------------------------------------------

    def valid_key(self, product: Product, key: str) -> ListenKey | None:
        found = self.listen_keys.get(key)
        if found is None or found.product is not product:
            return None
        if found.expires_ms <= self.venue.clock.now_ms():
            return None
        return found

    def attach_stream(
        self,
        connection: Connection,
        keys: list[tuple[str, frozenset[str] | None]],
        *,
        combined: bool,
    ) -> list[Subscriber]:
        """Route the accounts of ``keys`` to a stream connection.

        Raises:
            VenueError: ``-1125`` when a key is unknown or expired.
        """
        found = []
        for key, events in keys:
            listen_key = self.valid_key(connection.product, key)
            if listen_key is None:
                raise VenueError.invalid_listen_key(product=connection.product.value)
            found.append((listen_key, events))
        attached = []
        for listen_key, events in found:

            def deliver(payload: dict[str, Any], stream: str = listen_key.key) -> bool:
                body = {"stream": stream, "data": payload} if combined else payload
                return connection.deliver(orjson.dumps(body))

            attached.append(
                self.add(
                    Subscriber(
                        listen_key.product,
                        listen_key.account,
                        deliver,
                        events,
                        listen_key=listen_key.key,
                        terminate=lambda: connection.close(1000, "user data stream terminated"),
                    )
                )
            )
        return attached

    def terminate(self, product: Product, account: str) -> int:
        """End every user stream of ``account`` on ``product``; returns how many ended."""
        ended = 0
        for subscriber in self.subscribers(product, account):
            self.remove(subscriber)
            if subscriber.terminate is not None:
                subscriber.terminate()
            ended += 1
        return ended

    def detach(self, subscribers: list[Subscriber]) -> None:
        for subscriber in subscribers:
            self.remove(subscriber)

    # --- listen keys ----------------------------------------------------------------------

    def routes(self) -> Mapping[tuple[str, str], Route]:
        from scenarios.venue.rest import Route

        routes: dict[tuple[str, str], Route] = {}
        for product, path in _LISTEN_KEY_PATHS.items():
            routes[("POST", path)] = Route(product, Security.USER_STREAM, self._create)
            routes[("PUT", path)] = Route(product, Security.USER_STREAM, self._keepalive)
            routes[("DELETE", path)] = Route(product, Security.USER_STREAM, self._delete)
        return routes

    def start(self, product: Product, account: str, now_ms: int) -> str:
        """The account's active key, extended; a new one if it has none."""
        key = self._extend(product, account, now_ms)
        if key is None:
            key = "".join(self._rng.choices(_KEY_ALPHABET, k=64))
            self.listen_keys[key] = ListenKey(
                key, product, account, now_ms + LISTEN_KEY_VALIDITY_MS
            )
        return key

    def keepalive(self, product: Product, account: str, now_ms: int) -> str:
        """Extend the account's key by 60 minutes; ``-1125`` when it has none alive."""
        key = self._extend(product, account, now_ms)
        if key is None:
            raise VenueError.invalid_listen_key(product=product.value)
        return key

    def _extend(self, product: Product, account: str, now_ms: int) -> str | None:
        """Extend the account's live key by 60 minutes; None when it has none."""
        for listen_key in self.listen_keys.values():
            if (
                listen_key.product is product
                and listen_key.account == account
                and listen_key.expires_ms > now_ms
            ):
                listen_key.expires_ms = now_ms + LISTEN_KEY_VALIDITY_MS
                return listen_key.key
        return None

    def stop(self, product: Product, account: str) -> None:
        """Delete the account's key; its streams stay open but hear nothing more."""
        for key, listen_key in list(self.listen_keys.items()):
            if listen_key.product is product and listen_key.account == account:
                del self.listen_keys[key]
                self._drop_key(listen_key)

    def expire(self, key: str, now_ms: int) -> bool:
        """Expire ``key`` now (the control API's hook): ``listenKeyExpired`` on its streams."""
        listen_key = self.listen_keys.get(key)
        if listen_key is None:
            return False
        listen_key.expires_ms = min(listen_key.expires_ms, now_ms)
        self.on_time(now_ms)
        return True

    def on_time(self, now_ms: int) -> None:
        """Expire the keys whose time has come."""
        for key, listen_key in list(self.listen_keys.items()):
            if listen_key.expires_ms <= now_ms:
                del self.listen_keys[key]
                expired = {"e": "listenKeyExpired", "E": now_ms, "listenKey": key}
                for subscriber in self.subscribers(listen_key.product, listen_key.account):
                    if subscriber.listen_key == key:
                        subscriber.deliver(expired)
                self._drop_key(listen_key)

    def _drop_key(self, listen_key: ListenKey) -> None:
        for subscriber in self.subscribers(listen_key.product, listen_key.account):
            if subscriber.listen_key == listen_key.key:
                self.remove(subscriber)

    def _account(self, call: Call) -> str:
        assert call.key is not None  # USER_STREAM endpoints always authenticate
        return call.key.api_key

    def _create(self, call: Call) -> Any:
        return {"listenKey": self.start(call.product, self._account(call), call.now_ms)}

    def _keepalive(self, call: Call) -> Any:
        return {"listenKey": self.keepalive(call.product, self._account(call), call.now_ms)}

    def _delete(self, call: Call) -> Any:
        self.stop(call.product, self._account(call))
        return {}
