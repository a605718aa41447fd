"""Connectivity: what the edge actor is asked to do, and what the outside world answered.

Requests (``rest.request``, ``stream.subscribe``, ``stream.unsubscribe``) are commands other
actors publish. Everything the connectivity actor reports is an **input** record: a REST
response, a raw stream frame, a connection that opened or dropped, a limit Binance imposed.
Nothing here carries a key, a secret or a signature: requests are journaled unsigned.

``client`` is the ``[[clients]]`` name from the config.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from events.base import Event


@attrs.frozen(kw_only=True)
class RestRequest(Event):
    """Ask the connectivity actor for one REST call.

    ``params`` are the request's parameters, unsigned and in the order to send them;
    ``timestamp``, ``recvWindow`` and ``signature`` are added at sending time for signed
    endpoints. ``call_id`` names the call in its :class:`RestResponse`.
    """

    TAG: ClassVar[str] = "rest.request"
    client: str
    call_id: str
    method: str
    path: str
    params: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class RestResponse(Event):
    """What Binance answered to a :class:`RestRequest` (or why there was no answer).

    ``outcome`` is ``ok`` (HTTP 2xx), ``rejected`` (a final error: Binance refused it and
    nothing happened), ``unknown`` (the request may or may not have taken effect: a timeout,
    ``-1006``/``-1007``, an HTTP 5xx on an order; never to be read as a rejection) or
    ``failed`` (it never reached Binance, e.g. refused locally or connection refused).
    ``status`` is 0 when no HTTP answer arrived. ``headers`` keeps Binance's rate-limit
    headers and ``Date``/``Retry-After``. ``body`` is the body as received (JSON text, or a
    WAF page), ``code``/``message`` Binance's error when there is one.
    """

    TAG: ClassVar[str] = "rest.response"
    client: str
    call_id: str
    method: str
    path: str
    outcome: str
    status: int
    headers: dict[str, str] = attrs.field(factory=dict)
    body: str = ""
    code: int | None = None
    message: str = ""
    latency_us: int = 0
    attempts: int = 1


@attrs.frozen(kw_only=True)
class SubscribeStreams(Event):
    """Ask for market (or user) streams by their Binance names, e.g. ``btcusdt@depth@100ms``.
    Subscriptions are counted per ``subscriber``; the last one to leave removes the stream."""

    TAG: ClassVar[str] = "stream.subscribe"
    client: str
    subscriber: str
    streams: tuple[str, ...]


@attrs.frozen(kw_only=True)
class UnsubscribeStreams(Event):
    TAG: ClassVar[str] = "stream.unsubscribe"
    client: str
    subscriber: str
    streams: tuple[str, ...]


@attrs.frozen(kw_only=True)
class StreamFrame(Event):
    """One text frame exactly as received on a stream connection (an input; parsers read it
    again on replay). ``connection`` names the connection; ``received_ns`` is the local
    receive time."""

    TAG: ClassVar[str] = "stream.frame"
    client: str
    connection: str
    received_ns: int
    text: str


@attrs.frozen(kw_only=True)
class StreamConnected(Event):
    TAG: ClassVar[str] = "stream.connected"
    OBSERVATIONAL: ClassVar[bool] = True
    client: str
    connection: str
    url: str
    streams: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class StreamDisconnected(Event):
    """A stream connection ended: ``reason`` in plain words, ``code`` the WebSocket close
    code when there was one, ``reconnect_in_ms`` when a reconnect is scheduled."""

    TAG: ClassVar[str] = "stream.disconnected"
    OBSERVATIONAL: ClassVar[bool] = True
    client: str
    connection: str
    reason: str
    code: int | None = None
    reconnect_in_ms: int | None = None


@attrs.frozen(kw_only=True)
class StreamResubscribed(Event):
    TAG: ClassVar[str] = "stream.resubscribed"
    OBSERVATIONAL: ClassVar[bool] = True
    client: str
    connection: str
    streams: tuple[str, ...]


@attrs.frozen(kw_only=True)
class StreamGap(Event):
    """Frames of ``streams`` between ``from_ns`` and ``to_ns`` (local receive time) were not
    journaled: the connection was down, or recycled because the bus could not keep up."""

    TAG: ClassVar[str] = "stream.gap"
    client: str
    connection: str
    streams: tuple[str, ...]
    from_ns: int
    to_ns: int
    reason: str


@attrs.frozen(kw_only=True)
class RateLimited(Event):
    """Binance answered 429: requests of ``pool`` wait until ``until_ms`` (server time)."""

    TAG: ClassVar[str] = "ratelimit.limited"
    client: str
    pool: str
    until_ms: int
    code: int | None = None


@attrs.frozen(kw_only=True)
class IpBanned(Event):
    """Binance answered 418: ``pool`` is halted until ``until_ms`` (server time)."""

    TAG: ClassVar[str] = "ratelimit.banned"
    client: str
    pool: str
    until_ms: int


@attrs.frozen(kw_only=True)
class ClockOffset(Event):
    """The server clock measured against ours: ``offset_ms`` = server - local, from a
    round trip of ``rtt_ms`` (``source``: ``time`` endpoint, ``date`` header, ``-1021``)."""

    TAG: ClassVar[str] = "clock.offset"
    OBSERVATIONAL: ClassVar[bool] = True
    client: str
    offset_ms: int
    rtt_ms: int
    source: str


@attrs.frozen(kw_only=True)
class UserStreamStarted(Event):
    """A user-data session is live: ``kind`` ``ws_api`` (Spot) or ``listen_key`` (futures)."""

    TAG: ClassVar[str] = "userstream.started"
    client: str
    kind: str
    connection: str


@attrs.frozen(kw_only=True)
class UserStreamGap(Event):
    """User data between ``from_ms`` and ``to_ms`` (local wall time) may be missing: the
    session was interrupted. Reconciliation closes the gap from REST."""

    TAG: ClassVar[str] = "userstream.gap"
    client: str
    from_ms: int
    to_ms: int
    reason: str


@attrs.frozen(kw_only=True)
class UserStreamStopped(Event):
    """A user-data session stopped for good: Binance refused its credentials (``code``, e.g.
    ``-2015`` for a revoked key; ``reason`` says what to fix). User data is missing from
    ``from_ms`` (local wall time) until the session is started again; no
    :class:`UserStreamGap` will close this interval."""

    TAG: ClassVar[str] = "userstream.stopped"
    client: str
    from_ms: int
    reason: str
    code: int | None = None
