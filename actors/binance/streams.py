"""Market-stream WebSocket client: combined-stream connections that keep the streams asked for.

One :class:`StreamClient` serves one client config and one route (USD-M ``/public`` or
``/market``; Spot and COIN-M have one base). Actors ask for streams by name through
:meth:`StreamClient.subscribe` / :meth:`StreamClient.unsubscribe`; the client spreads them
over as many ``<base>/stream`` connections as needed and keeps them there, whatever the
network or Binance does.

What it guarantees:

* **Subscriptions.** Each stream is counted per subscriber (a set: subscribing twice is a
  no-op, so a restarted actor may replay its ``stream.subscribe`` commands); the last
  subscriber to leave sends the ``UNSUBSCRIBE``. A connection holds at most
  ``streams_per_connection`` streams (default 200, never more than Binance's 1024); more
  streams open more connections. Streams are never moved between live connections (that
  would cost a gap); an emptied connection closes after ``idle_close_s``.
* **Control messages.** Every connection opens on ``<base>/stream`` with no stream in the
  URL: every stream is added by ``SUBSCRIBE`` so that Binance checks every name (names in a
  URL are not checked, a typo there is silently never served) and URLs stay short. Each
  connection reconciles what is wanted with what Binance acknowledged, batching names into
  few messages (at most ``streams_per_message`` each) and sending at most
  ``messages_per_second - reserved_messages`` control messages (and liveness pings) in any
  window of ``1 s + throttle_margin_s``: Binance disconnects above 5 (Spot) or 10 (futures)
  incoming messages a second, and counts our pongs too, hence the reserve. Every reply is
  checked: ``{"result": null}`` acknowledges; an error to a batch splits it in halves until
  the refused names are isolated, which are then dropped and listed in
  :attr:`StreamClient.rejected` (and logged). No reply within ``reply_timeout_s`` recycles the
  connection. Once a connection is ready and nothing is pending, one ``LIST_SUBSCRIPTIONS``
  checks that Binance holds exactly what it acknowledged, and the difference is repaired.
* **Frames.** Every text frame that is not a control reply is sent, exactly as received, as a
  :class:`~events.connectivity.StreamFrame` to the ``frames`` channel with ``send_nowait``:
  the reader never waits for downstream. If the channel is full the frame cannot be kept, so
  the connection is recycled at once (it stops reading, which would otherwise stall pings and
  make Binance drop it anyway) and the loss is reported as a :class:`StreamGap` once the
  streams are back; nothing is dropped silently. The replacement waits for its backoff and
  then until the channel is at most half full (at most ``backoff_max_s`` longer), so a
  consumer that cannot keep up is not flooded again at once. Bad frames (non-JSON, odd
  shapes) pass through: parsers downstream decide.
* **Pings.** Binance pings every 20 s (Spot) or 3 min (futures); trio-websocket answers each
  ping with a pong echoing its payload by itself (``_handle_ping_event``; the tests check it
  against a server that waits for the pong). That only works while frames are read, which the
  non-blocking reader ensures.
* **Liveness.** No frame for ``liveness_s`` on a connection that holds at least one regular
  stream recycles it (and reports a gap). Independently, after ``probe_after_s`` without any
  message the client pings; no pong within ``pong_timeout_s`` recycles it (a dead TCP path is
  found in seconds, not minutes). **Sparse** streams (:func:`is_sparse`) do not arm the
  silence deadline: Binance pushes them only when a rare event happens, so hours of silence
  are normal on a healthy connection, and a deadline would recycle it every ``liveness_s``
  with a false gap. They are ``<symbol>@forceOrder`` and ``!forceOrder@arr`` (a frame only
  when a liquidation happened in the last second), ``!contractInfo`` (only on a listing, a
  settlement or a bracket change) and Spot's ``<symbol>@blockTrade`` (only on a block trade).
  A connection holding only sparse streams is watched by the ping probe alone, which finds a
  dead transport just as well. Streams that push on a timer (``@markPrice``, ``@kline_*``,
  ``@compositeIndex``, ``!assetIndex@arr``, ``tradingSession``, tickers) are regular, and so
  are trade and book streams even for an illiquid symbol: for a connection of those, raise
  ``liveness_s`` or set it to None. The check costs nothing per frame: each connection counts
  its regular streams as Binance acknowledges or drops them.
* **Rotation.** Binance cuts every connection after 24 hours. At ``rotate_after_s`` (default
  23 h 30 min), or at once when Spot announces ``serverShutdown``, the client opens a second
  connection, subscribes it to everything, and only ``rotation_overlap_s`` after Binance
  acknowledged all of it closes the old one. During the overlap both connections deliver,
  so some frames arrive twice (under different ``connection`` names). That is deliberate and
  needs no dedupe here: every Binance payload carries its own identity (update ids
  ``U``/``u``/``pu``, trade and aggregate ids, event times), so consumers drop what they have
  already applied, whereas a frame lost between an early close and a late subscribe could not
  be recovered.
* **Reconnects.** A connection that failed is replaced after a capped exponential backoff
  (``backoff_initial_s * backoff_factor ** n``, at most ``backoff_max_s``, minus up to
  ``backoff_jitter`` of it drawn from the seeded ``rng``); ``n`` counts failures since the
  last connection that stayed up ``stable_after_s``, so a refusing or flapping venue is met
  with growing waits, not a storm. After a recycle for a slow consumer the client also waits
  (bounded) until the frames channel is half empty. The new connection resubscribes
  everything its predecessor held.

Events (via ``emit``), per connection name (``<name>#<serial>``, unique in the client):

* :class:`StreamConnected` once a connection is up *and* Binance acknowledged the streams it
  was opened for (``streams``): data is flowing, not just a socket.
* :class:`StreamResubscribed` right after, when some of those streams were held by an
  earlier connection (a reconnect or a rotation).
* :class:`StreamGap` right after, for streams whose frames may be missing: ``from_ns`` is the
  receive time of the last frame delivered by the connection that failed (or of its first
  acknowledgement), ``to_ns`` the time the new acknowledgement arrived; ``connection`` names
  the failed connection and ``reason`` says why it failed. No gap is reported for a rotation
  or for streams another live connection still covered.
* :class:`StreamDisconnected` when a connection (or a connection attempt) ends: ``reason`` in
  words, ``code`` the close code the server sent (None when we closed, the socket broke or
  the handshake failed), ``reconnect_in_ms`` the wait before the replacement is opened (0 when
  a replacement is already opening, None when none is needed: rotation done, no streams left,
  client stopped).

``emit`` is an **async** callable (``lambda event: ctx.publish([event])``, or a trio memory
channel's ``send``): it is awaited from the connection's own tasks, never from the frame
reader, each call bounded by ``emit_timeout_s`` (too slow raises ``trio.TooSlowError`` out
of :meth:`StreamClient.run`: a status event is never dropped). Frames and status events
travel on different paths, so their relative order is only given by time: a frame's
``received_ns`` and a gap's ``from_ns``/``to_ns`` come from the same ``clock``.

Every external await is bounded: the handshake by ``connect_timeout_s``, sends by
``send_timeout_s``, pings by ``pong_timeout_s``, replies by ``reply_timeout_s``, closing by
``close_timeout_s`` (or cut short by cancellation), ``emit`` by ``emit_timeout_s``, and the
wait for the next frame by ``liveness_s`` (with ``liveness_s = None``, or on a connection of
sparse streams only, by the ping probe).

Cancellation: cancelling :meth:`StreamClient.run` closes every connection at once and emits
nothing more; :meth:`StreamClient.aclose` closes them first and reports each
(``reason="client stopped"``).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import attrs
import orjson
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError

from actors.binance.venues import Endpoints, Route
from actors.binance.wsconnect import open_websocket, proxy_url_field
from actors.config import AccountType, ClientConfig
from events.base import Event
from events.connectivity import (
    StreamConnected,
    StreamDisconnected,
    StreamFrame,
    StreamGap,
    StreamResubscribed,
)

__all__ = [
    "INCOMING_MESSAGES_PER_SECOND",
    "MAX_STREAMS_PER_CONNECTION",
    "SPARSE_STREAMS",
    "Connector",
    "Emit",
    "LinkInfo",
    "Rejection",
    "StreamClient",
    "StreamNameError",
    "StreamSettings",
    "TooManyStreams",
    "WebSocket",
    "is_sparse",
    "route_for",
]

logger = logging.getLogger(__name__)

#: Binance's cap on streams per connection (Spot; USD-M since 2025-07; COIN-M documents 200).
MAX_STREAMS_PER_CONNECTION = 1024

#: Binance's limit on messages a client may send per second on one stream connection
#: (pings, pongs and JSON control messages alike); going over it disconnects.
INCOMING_MESSAGES_PER_SECOND: dict[AccountType, int] = {
    AccountType.SPOT: 5,
    AccountType.USDT_FUTURES: 10,
    AccountType.COIN_FUTURES: 10,
}

#: USD-M stream kinds served on the ``/public`` route (binance-protocol.md section 7.2).
PUBLIC_KINDS = frozenset({"bookTicker", "depth", "rpiDepth"})

#: Streams Binance pushes only when a rare event happens, so that hours without a frame are
#: normal on a healthy connection: they never arm the silence deadline (``liveness_s``; see
#: :func:`is_sparse`). Binance documents each as pushed on an event, not on a timer:
#: ``forceOrder`` (USD-M, COIN-M) sends nothing for a second without a liquidation;
#: ``!contractInfo`` (USD-M, COIN-M) only on a listing, a settlement or a bracket change;
#: Spot's ``blockTrade`` once per block trade, a rare negotiated trade. Streams documented
#: with a period are regular and not listed, silence there being a fault: ``@markPrice``
#: (1 or 3 s), ``@compositeIndex``, ``!assetIndex@arr`` / ``@assetIndex`` and
#: ``tradingSession`` (every second), klines and tickers.
SPARSE_STREAMS = ("<symbol>@forceOrder", "!forceOrder@arr", "!contractInfo", "<symbol>@blockTrade")
_SPARSE = re.compile(r"[^!@]+@(?:forceOrder|blockTrade)|!forceOrder@arr|!contractInfo", re.I)

_NAME = re.compile(r"^[A-Za-z0-9_@!.+:\-]+$")
_FRAME_PREFIX = '{"stream":'
_SHUTDOWN_PREFIX = '{"stream":"!serverShutdown"'
_SUBSCRIBE = "SUBSCRIBE"
_UNSUBSCRIBE = "UNSUBSCRIBE"
_LIST = "LIST_SUBSCRIPTIONS"

#: How ``emit`` is called: awaited, once per event, in order per connection.
Emit = Callable[[Event], Awaitable[object]]


class WebSocket(Protocol):
    """What the client needs from a WebSocket connection (trio-websocket's
    ``WebSocketConnection`` satisfies it). ``get_message`` and ``send_message`` raise
    ``trio_websocket.ConnectionClosed`` once the connection is closed."""

    async def get_message(self) -> str | bytes: ...

    async def send_message(self, message: str | bytes) -> None: ...

    async def ping(self, payload: bytes | None = None) -> None: ...


#: Opens a connection to a URL for the duration of a block; raises
#: ``trio_websocket.HandshakeError`` (or ``OSError``) when it cannot. Tests pass fakes.
Connector = Callable[[str], contextlib.AbstractAsyncContextManager[WebSocket]]


class StreamNameError(ValueError):
    """A stream name Binance would refuse or never serve on this client (bad characters, an
    upper-case symbol, or a USD-M stream asked on the wrong route)."""


class TooManyStreams(ValueError):
    """A subscription would need more than ``max_connections`` connections."""


def _per_connection(_instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 1 <= value <= MAX_STREAMS_PER_CONNECTION:
        raise ValueError(
            f"{attribute.name} must be between 1 and {MAX_STREAMS_PER_CONNECTION} "
            f"(Binance's cap), got {value!r}"
        )


_POSITIVE = attrs.validators.gt(0)
_NON_NEGATIVE = attrs.validators.ge(0)
_POSITIVE_OR_NONE = attrs.validators.optional(attrs.validators.gt(0))


@attrs.frozen(kw_only=True)
class StreamSettings:
    """How a :class:`StreamClient` behaves. Times are seconds.

    Attributes:
        streams_per_connection: streams one connection holds at most (1..1024).
        max_connections: connections the client opens at most; beyond, subscribing raises
            :class:`TooManyStreams`.
        streams_per_message: stream names in one SUBSCRIBE/UNSUBSCRIBE at most.
        messages_per_second: Binance's incoming-message limit per connection (Spot 5,
            futures 10; :meth:`for_account` picks it).
        reserved_messages: per-second headroom left for our automatic pongs.
        throttle_margin_s: added to the one-second window, for latency jitter.
        coalesce_s: wait after a change before sending, so that bursts share messages.
        connect_timeout_s / send_timeout_s / close_timeout_s / reply_timeout_s: bounds on the
            handshake, one send, the closing handshake, and a control reply.
        emit_timeout_s: bound on one ``emit`` call.
        liveness_s: no frame for this long on a connection holding at least one stream that
            is not sparse (:func:`is_sparse`) recycles it (None: never for silence alone).
        probe_after_s: no message at all for this long sends a ping (None: never).
        pong_timeout_s: a ping not answered within this recycles the connection.
        rotate_after_s: a connection is replaced after this long (Binance cuts at 24 h).
        rotation_overlap_s: how long the old connection stays open after its replacement
            was acknowledged.
        backoff_initial_s / backoff_factor / backoff_max_s / backoff_jitter: the reconnect
            wait ``min(max, initial * factor ** n)``, minus up to ``jitter`` of it.
        stable_after_s: a connection up this long resets the backoff.
        idle_close_s: an emptied connection closes after this long without new streams.
        max_message_bytes: larger frames close the connection (trio-websocket's limit).
        proxy_url: the client's ``http://`` or ``https://`` proxy: connections tunnel through
            it (:mod:`actors.binance.wsconnect`); None connects directly. Shown without its
            password.
    """

    streams_per_connection: int = attrs.field(default=200, validator=_per_connection)
    max_connections: int = attrs.field(default=64, validator=_POSITIVE)
    streams_per_message: int = attrs.field(default=200, validator=_per_connection)
    messages_per_second: int = attrs.field(default=5, validator=_POSITIVE)
    reserved_messages: int = attrs.field(default=1, validator=_NON_NEGATIVE)
    throttle_margin_s: float = attrs.field(default=0.1, validator=_NON_NEGATIVE)
    coalesce_s: float = attrs.field(default=0.02, validator=_NON_NEGATIVE)
    connect_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    send_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    close_timeout_s: float = attrs.field(default=5.0, validator=_POSITIVE)
    reply_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    emit_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    liveness_s: float | None = attrs.field(default=60.0, validator=_POSITIVE_OR_NONE)
    probe_after_s: float | None = attrs.field(default=20.0, validator=_POSITIVE_OR_NONE)
    pong_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    rotate_after_s: float = attrs.field(default=23.5 * 3600, validator=_POSITIVE)
    rotation_overlap_s: float = attrs.field(default=1.0, validator=_NON_NEGATIVE)
    backoff_initial_s: float = attrs.field(default=0.5, validator=_POSITIVE)
    backoff_factor: float = attrs.field(default=2.0, validator=_POSITIVE)
    backoff_max_s: float = attrs.field(default=30.0, validator=_POSITIVE)
    backoff_jitter: float = attrs.field(default=0.25, validator=_NON_NEGATIVE)
    stable_after_s: float = attrs.field(default=30.0, validator=_NON_NEGATIVE)
    idle_close_s: float = attrs.field(default=5.0, validator=_NON_NEGATIVE)
    max_message_bytes: int = attrs.field(default=16 * 2**20, validator=_POSITIVE)
    proxy_url: str | None = proxy_url_field()

    def __attrs_post_init__(self) -> None:
        if self.reserved_messages >= self.messages_per_second:
            raise ValueError(
                f"reserved_messages ({self.reserved_messages}) must be below "
                f"messages_per_second ({self.messages_per_second})"
            )
        if self.backoff_jitter >= 1:
            raise ValueError(f"backoff_jitter must be below 1, got {self.backoff_jitter!r}")

    @classmethod
    def for_account(cls, account_type: AccountType, **overrides: Any) -> StreamSettings:
        """Settings with Binance's message limit for ``account_type``, then ``overrides``."""
        limit = INCOMING_MESSAGES_PER_SECOND[account_type]
        return cls(**{"messages_per_second": limit, **overrides})

    @classmethod
    def for_client(cls, config: ClientConfig, **overrides: Any) -> StreamSettings:
        """Settings for one ``[[clients]]`` entry: its product's message limit, its
        ``stream_liveness_secs`` as :attr:`liveness_s` (0 becomes None: no silence deadline,
        the ping probe alone watches), then ``overrides``."""
        seconds = config.stream_liveness_secs
        liveness = float(seconds) if seconds else None
        return cls.for_account(config.account_type, **{"liveness_s": liveness, **overrides})

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait before reconnect attempt number ``attempt`` (0 for the first)."""
        base = self.backoff_max_s
        if attempt < 64:  # beyond, the power overflows any cap anyway
            base = min(base, self.backoff_initial_s * self.backoff_factor**attempt)
        return base * (1 - self.backoff_jitter * rng.random())


@attrs.frozen
class Rejection:
    """Binance refused to serve ``stream`` (its SUBSCRIBE error), on ``connection``.
    ``subscribers`` were dropped from it; subscribing again retries."""

    stream: str
    code: int | None
    message: str
    subscribers: tuple[str, ...]
    connection: str


@attrs.frozen
class LinkInfo:
    """A snapshot of one live connection (see :meth:`StreamClient.links`).

    ``state`` is ``opening`` (handshake or first subscriptions in progress), ``ready`` or
    ``closing``; ``streams`` are the streams Binance acknowledged on it."""

    name: str
    slot: int
    state: str
    streams: tuple[str, ...]


def is_sparse(stream: str) -> bool:
    """Whether Binance pushes ``stream`` only when a rare event happens (one of
    :data:`SPARSE_STREAMS`): such a stream may be silent for hours on a healthy connection,
    so it does not arm the silence deadline."""
    return _SPARSE.fullmatch(stream) is not None


def route_for(stream: str) -> Route:
    """The USD-M route that serves ``stream``: ``PUBLIC`` for book tickers and depth,
    ``MARKET`` for everything else (binance-protocol.md section 7.2)."""
    return Route.PUBLIC if _kind(stream) in PUBLIC_KINDS else Route.MARKET


def _kind(stream: str) -> str:
    """``btcusdt@depth5@100ms`` -> ``depth``; ``!bookTicker`` -> ``bookTicker``."""
    if stream.startswith("!"):
        body = stream[1:].split("@", 1)[0]
    else:
        parts = stream.split("@", 2)
        body = parts[1] if len(parts) > 1 else ""
    return body.rstrip("0123456789").split("_", 1)[0]


@attrs.define(eq=False)
class _End:
    """Why a connection ended. ``abnormal``: frames may have been lost (report a gap and back
    off); ``slow``: the frames channel was full (wait for room before reconnecting)."""

    reason: str
    code: int | None = None
    abnormal: bool = True
    slow: bool = False


@attrs.frozen
class _Request:
    method: str
    streams: tuple[str, ...]
    sent_at: float


@attrs.frozen
class _Loss:
    """Where a stream's frames may have been lost: since ``from_ns``, on ``connection``."""

    from_ns: int
    connection: str
    reason: str


class _Throttle:
    """At most ``limit`` sends in any window of ``window_s`` seconds (a sliding window, which
    also satisfies any fixed-window count the server keeps)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self._limit = limit
        self._window_s = window_s
        self._sent: deque[float] = deque()

    async def wait(self) -> None:
        """Return once a send is allowed now. Call :meth:`record` with no checkpoint between
        (the caller's decision and the send then see the same state)."""
        while True:
            now = trio.current_time()
            while self._sent and self._sent[0] <= now - self._window_s:
                self._sent.popleft()
            if len(self._sent) < self._limit:
                return
            await trio.sleep_until(self._sent[0] + self._window_s)

    def record(self) -> None:
        self._sent.append(trio.current_time())


class _Link:
    """One WebSocket connection of a slot, from handshake to close."""

    def __init__(self, name: str, url: str, *, carried: set[str], throttle: _Throttle) -> None:
        self.name = name
        self.url = url
        self.throttle = throttle
        self.state = "opening"
        self.scope = trio.CancelScope()
        self.end: _End | None = None
        self.ws: WebSocket | None = None
        #: Streams Binance acknowledged (insertion-ordered set). Change it only through
        #: :meth:`hold` and :meth:`drop`, which keep :attr:`regular` in step.
        self.subscribed: dict[str, None] = {}
        #: How many of ``subscribed`` are not sparse: the silence deadline applies while > 0.
        self.regular = 0
        self.inflight: set[str] = set()
        self.pending: dict[int, _Request] = {}
        #: Halves of refused batches, retried one by one; their names are held back.
        self.retry: deque[tuple[str, ...]] = deque()
        self.held: set[str] = set()
        #: Streams to acknowledge before the link is ready (fixed at the handshake).
        self.initial: tuple[str, ...] = ()
        #: Streams an earlier link of the slot held when this one started.
        self.carried = carried
        self.audited = False
        self.rotate_due = False
        self.rotate_reason = ""
        self.retire_at = math.inf
        self.connected_at = math.inf
        self.ready_at: float | None = None
        self.ready_ns = 0
        self.last_frame_at = math.inf
        self.last_message_at = math.inf
        #: Receive time of the last frame delivered (or of the first acknowledgement).
        self.mark_ns = 0
        self.wake = trio.Event()
        self.watch = trio.Event()
        self.news = trio.Event()
        self.outbox: list[Event] = []

    def hold(self, name: str) -> None:
        """Binance holds ``name`` on this link. The first regular stream starts the silence
        clock: a link that held only sparse streams had nothing to measure silence against."""
        if name in self.subscribed:
            return
        self.subscribed[name] = None
        if not is_sparse(name):
            if not self.regular:
                self.last_frame_at = trio.current_time()
            self.regular += 1

    def drop(self, name: str) -> None:
        """Binance no longer holds ``name`` on this link."""
        if name not in self.subscribed:
            return
        del self.subscribed[name]
        if not is_sparse(name):
            self.regular -= 1

    def finish(self, end: _End) -> None:
        """End the link (the first reason wins): every task of it is cancelled."""
        if self.end is None:
            self.end = end
            if self.state != "closed":
                self.state = "closing"
            self.scope.cancel()

    def poke(self) -> None:
        """Wake the sender (something to reconcile) and the watchdog (new deadlines)."""
        self.wake.set()
        self.watch.set()


class _Slot:
    """A place for up to ``streams_per_connection`` streams, kept on one connection (two
    while rotating)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.desired: dict[str, None] = {}
        self.links: list[_Link] = []
        self.current: _Link | None = None
        self.successor: _Link | None = None
        self.attempts = 0
        self.next_attempt_at = -math.inf
        self.room_wanted = False
        self.rotate_attempts = 0
        self.rotate_retry_at = -math.inf
        self.empty_since: float | None = None
        self.closed = False
        #: Streams acknowledged on any link of this slot so far.
        self.carried: set[str] = set()
        self.losses: dict[str, _Loss] = {}
        self.attention = trio.Event()

    def attend(self) -> None:
        self.attention.set()

    def changed(self) -> None:
        """``desired`` changed: every link reconciles, the manager re-decides."""
        for link in self.links:
            link.poke()
        self.attend()


_MESSAGE_QUEUE = 256
_RECEIVE_BYTES = 64 * 1024


def _open_websocket(settings: StreamSettings) -> Connector:
    def connect(url: str) -> contextlib.AbstractAsyncContextManager[WebSocket]:
        return open_websocket(
            url,
            proxy_url=settings.proxy_url,
            connect_timeout=settings.connect_timeout_s,
            disconnect_timeout=settings.close_timeout_s,
            max_message_size=settings.max_message_bytes,
            # trio-websocket's defaults (a queue of one message, 4 KiB reads) cost a task
            # switch per frame; a deeper queue and larger reads let its reader parse many
            # frames per wakeup. Backpressure still holds: the queue is bounded.
            message_queue_size=_MESSAGE_QUEUE,
            receive_buffer_size=_RECEIVE_BYTES,
        )

    return connect


class StreamClient:
    """Market-stream connections of one client and route; see the module docstring.

    Args:
        client: the ``[[clients]]`` name, stamped on every event.
        url: the combined-stream URL, ``<base>/stream`` (:meth:`for_endpoints` builds it).
        frames: where every frame goes (``send_nowait``; full means recycle and gap).
        emit: awaited with each status event.
        settings: behaviour; :meth:`StreamSettings.for_account` picks Binance's limits.
        route: the USD-M route this client serves; subscribing to a stream of the other
            route raises :class:`StreamNameError`. None: no route check (Spot, COIN-M).
        name: prefix of connection names (default ``client``).
        rng: draws the backoff jitter (default: seeded from ``name``).
        clock: nanoseconds since the epoch for ``received_ns`` and gaps (default wall clock).
        connect: opens a WebSocket (default trio-websocket with the settings' bounds).
    """

    def __init__(
        self,
        *,
        client: str,
        url: str,
        frames: trio.MemorySendChannel[StreamFrame],
        emit: Emit,
        settings: StreamSettings | None = None,
        route: Route | None = None,
        name: str | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], int] = time.time_ns,
        connect: Connector | None = None,
    ) -> None:
        self.client = client
        self.url = url
        self.settings = settings if settings is not None else StreamSettings()
        self.route = route
        self.name = name if name is not None else client
        self._frames = frames
        self._emit_to = emit
        self._rng = rng if rng is not None else random.Random(f"streams:{self.name}")
        self._clock = clock
        self._connect = connect if connect is not None else _open_websocket(self.settings)
        #: Subscribers of each stream (insertion-ordered sets).
        self._refs: dict[str, dict[str, None]] = {}
        self._slot_of: dict[str, _Slot] = {}
        self._slots: dict[int, _Slot] = {}
        self._serials = itertools.count(1)
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None
        self._stopping = False
        #: Links started and not yet reported ended.
        self._live = 0
        self._changed = trio.Event()
        #: Streams Binance refused, by name, until subscribed again.
        self.rejected: dict[str, Rejection] = {}

    @classmethod
    def for_endpoints(
        cls,
        endpoints: Endpoints,
        route: Route,
        *,
        frames: trio.MemorySendChannel[StreamFrame],
        emit: Emit,
        settings: StreamSettings | None = None,
        **options: Any,
    ) -> StreamClient:
        """The client for one route of a resolved client config (see
        :func:`actors.binance.venues.resolve`). Settings default to the product's limits;
        the client's proxy applies unless the settings name one. ``options`` are the
        remaining constructor arguments (``rng``, ``clock``, ...)."""
        routed = endpoints.ws_market.routed
        settings = settings or StreamSettings.for_account(endpoints.account_type)
        if settings.proxy_url is None and endpoints.proxy_url is not None:
            settings = attrs.evolve(settings, proxy_url=endpoints.proxy_url)
        return cls(
            client=endpoints.client,
            url=f"{endpoints.ws_market[route]}/stream",
            frames=frames,
            emit=emit,
            settings=settings,
            route=route if routed else None,
            name=f"{endpoints.client}/{route.value}" if routed else endpoints.client,
            **options,
        )

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe(self, subscriber: str, streams: Iterable[str]) -> tuple[str, ...]:
        """Add ``subscriber`` to each of ``streams``; return the streams that were new.

        No I/O happens here: the connections send the SUBSCRIBEs (throttled, batched) as
        soon as the client runs. Subscribing again is a no-op; a refused stream is retried.

        Raises:
            StreamNameError: a name Binance would refuse or not serve here; nothing changed.
            TooManyStreams: the new streams do not fit ``max_connections``; nothing changed.
        """
        names = list(dict.fromkeys(streams))
        for name in names:
            self._check_name(name)
        new = [name for name in names if name not in self._refs]
        settings = self.settings
        room = sum(
            settings.streams_per_connection - len(slot.desired) for slot in self._slots.values()
        )
        room += (settings.max_connections - len(self._slots)) * settings.streams_per_connection
        if len(new) > room:
            raise TooManyStreams(
                f"{self.name}: {len(new)} new streams do not fit: room for {room} more "
                f"({settings.max_connections} connections of "
                f"{settings.streams_per_connection} streams)"
            )
        for name in names:
            self._refs.setdefault(name, {})[subscriber] = None
        touched: dict[int, _Slot] = {}
        for name in new:
            self.rejected.pop(name, None)
            slot = self._slot_with_room()
            slot.desired[name] = None
            self._slot_of[name] = slot
            touched[slot.index] = slot
        for slot in touched.values():
            slot.changed()
        if new:
            self._notify()
        return tuple(new)

    def unsubscribe(self, subscriber: str, streams: Iterable[str]) -> tuple[str, ...]:
        """Remove ``subscriber`` from each of ``streams``; return the streams nobody wants any
        more (their UNSUBSCRIBE follows). Names the subscriber does not hold are ignored."""
        removed: list[str] = []
        touched: dict[int, _Slot] = {}
        for name in dict.fromkeys(streams):
            subscribers = self._refs.get(name)
            if subscribers is None or subscriber not in subscribers:
                continue
            del subscribers[subscriber]
            if subscribers:
                continue
            del self._refs[name]
            slot = self._slot_of.pop(name)
            self._forget(slot, name)
            touched[slot.index] = slot
            removed.append(name)
        for slot in touched.values():
            for link in slot.links:
                self._check_ready(slot, link)
            slot.changed()
        if removed:
            self._notify()
        return tuple(removed)

    def subscriptions(self) -> dict[str, tuple[str, ...]]:
        """Every wanted stream and its subscribers, in subscription order."""
        return {name: tuple(subscribers) for name, subscribers in self._refs.items()}

    def active(self) -> frozenset[str]:
        """The wanted streams Binance acknowledged on a ready connection."""
        return frozenset(
            name
            for slot in self._slots.values()
            for link in slot.links
            if link.state == "ready"
            for name in link.subscribed
            if name in slot.desired
        )

    def assume_lost(
        self, streams: Iterable[str], *, from_ns: int, connection: str, reason: str
    ) -> tuple[str, ...]:
        """Treat ``streams`` as missing frames from ``from_ns`` on (the owner lost them
        outside this client, e.g. its previous incarnation died): each one's
        :class:`StreamGap` is reported once it is active again, like a loss of this client's
        own (``connection`` names the gap). Streams not wanted, or active already, are left
        alone; returns the ones marked."""
        marked = []
        for name in streams:
            for slot in self._slots.values():
                if name not in slot.desired or name in slot.losses:
                    continue
                if any(link.state == "ready" and name in link.subscribed for link in slot.links):
                    continue
                slot.losses[name] = _Loss(from_ns, connection, reason)
                marked.append(name)
        return tuple(marked)

    def links(self) -> tuple[LinkInfo, ...]:
        """A snapshot of the live connections, by slot."""
        return tuple(
            LinkInfo(link.name, slot.index, link.state, tuple(link.subscribed))
            for slot in sorted(self._slots.values(), key=lambda slot: slot.index)
            for link in slot.links
        )

    async def wait_subscribed(self, streams: Iterable[str], *, timeout_s: float) -> frozenset[str]:
        """Wait until each of ``streams`` is active or was refused (see :attr:`rejected`);
        return the active ones.

        Raises:
            trio.TooSlowError: not settled within ``timeout_s``.
        """
        wanted = frozenset(streams)
        with trio.fail_after(timeout_s):
            while True:
                active = self.active()
                if all(name in active or name in self.rejected for name in wanted):
                    return wanted & active
                await self._changed.wait()

    # --- running -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the connections until cancelled (or until :meth:`aclose`).

        ``task_status.started()`` comes at once: connections open as streams are wanted.
        Cancellation closes every connection without further events.

        Raises:
            trio.TooSlowError: ``emit`` took longer than ``emit_timeout_s``.
            trio.BrokenResourceError / trio.ClosedResourceError: the frames channel's
                receiver is gone.
        """
        if self._nursery is not None:
            raise RuntimeError(f"{self.name}: already running")
        self._stopping = False
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for slot in list(self._slots.values()):
                    nursery.start_soon(self._manage, slot)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            # Links cancelled with run() never reported; a later run() starts afresh and
            # reports what they held as a gap.
            self._live = 0
            for slot in self._slots.values():
                for link in slot.links:
                    self._record_losses(slot, link, "client stopped")
                slot.links.clear()
                slot.current = slot.successor = None

    async def aclose(self) -> None:
        """Close every connection, emitting a ``StreamDisconnected`` for each, then stop
        :meth:`run`. Bounded by ``close_timeout_s + emit_timeout_s``; subscriptions are kept:
        a later :meth:`run` reopens them and reports the time in between as a gap."""
        nursery = self._nursery
        if nursery is None:
            return
        self._stopping = True
        for slot in self._slots.values():
            for link in slot.links:
                link.finish(_End("client stopped", abnormal=False))
            slot.attend()
        with trio.move_on_after(self.settings.close_timeout_s + self.settings.emit_timeout_s):
            while self._live:
                await self._changed.wait()
        nursery.cancel_scope.cancel()

    # --- slots -------------------------------------------------------------------------------

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name or len(name) > 200 or not _NAME.match(name):
            raise StreamNameError(f"{self.name}: {name!r} is not a Binance stream name")
        if not name.startswith("!") and "@" in name:
            symbol = name.split("@", 1)[0]
            if symbol != symbol.lower():
                raise StreamNameError(
                    f"{self.name}: symbols in stream names are lower case: "
                    f"use {symbol.lower() + name[len(symbol) :]!r}, not {name!r}"
                )
        if self.route is not None and route_for(name) is not self.route:
            raise StreamNameError(
                f"{self.name}: {name!r} is served on the USD-M /{route_for(name).value} route, "
                f"not /{self.route.value} (Binance would accept it and send nothing)"
            )

    def _slot_with_room(self) -> _Slot:
        for index in sorted(self._slots):
            slot = self._slots[index]
            if len(slot.desired) < self.settings.streams_per_connection:
                return slot
        index = next(i for i in itertools.count() if i not in self._slots)
        slot = self._slots[index] = _Slot(index)
        if self._nursery is not None:
            self._nursery.start_soon(self._manage, slot)
        return slot

    def _forget(self, slot: _Slot, name: str) -> None:
        slot.desired.pop(name, None)
        slot.losses.pop(name, None)
        slot.carried.discard(name)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _manage(self, slot: _Slot) -> None:
        """Keep one ready link for the slot while it has streams: open, reopen after
        backoff, rotate, and close the slot once it stayed empty ``idle_close_s``."""
        settings = self.settings
        async with trio.open_nursery() as nursery:
            while not slot.closed:
                now = trio.current_time()
                wake_at = math.inf
                current = slot.current
                if self._stopping:
                    if not slot.links:
                        break
                elif not slot.desired:
                    if slot.empty_since is None:
                        slot.empty_since = now
                    wake_at = slot.empty_since + settings.idle_close_s
                    if now >= wake_at:
                        self._close_slot(slot)
                        break
                elif current is None:
                    slot.empty_since = None
                    wake_at = slot.next_attempt_at
                    if slot.room_wanted and now >= wake_at:
                        if self._room() or now >= wake_at + settings.backoff_max_s:
                            slot.room_wanted = False
                        else:
                            wake_at = now + 0.01
                    if now >= wake_at and not slot.room_wanted:
                        self._start_link(slot, nursery, successor=False)
                        continue
                else:
                    slot.empty_since = None
                    if current.state == "ready" and current.rotate_due and slot.successor is None:
                        wake_at = slot.rotate_retry_at
                        if now >= wake_at:
                            self._start_link(slot, nursery, successor=True)
                            continue
                with trio.move_on_at(wake_at):
                    await slot.attention.wait()
                slot.attention = trio.Event()

    def _room(self) -> bool:
        """Whether the frames channel is at most half full."""
        statistics = self._frames.statistics()
        return statistics.current_buffer_used <= statistics.max_buffer_size / 2

    def _close_slot(self, slot: _Slot) -> None:
        slot.closed = True
        if self._slots.get(slot.index) is slot:
            del self._slots[slot.index]
        for link in slot.links:
            link.finish(_End("no streams left", abnormal=False))

    def _start_link(self, slot: _Slot, nursery: trio.Nursery, *, successor: bool) -> None:
        settings = self.settings
        link = _Link(
            f"{self.name}#{next(self._serials)}",
            self.url,
            carried=set(slot.carried),
            throttle=_Throttle(
                settings.messages_per_second - settings.reserved_messages,
                1.0 + settings.throttle_margin_s,
            ),
        )
        slot.links.append(link)
        self._live += 1
        if successor:
            slot.successor = link
        else:
            slot.current = link
        nursery.start_soon(self._run_link, slot, link)

    # --- one link ----------------------------------------------------------------------------

    async def _run_link(self, slot: _Slot, link: _Link) -> None:
        """Connect, serve until the link is finished, then report how it ended. Handshake
        failures end the link like any other failure."""
        try:
            await self._connect_and_serve(slot, link)
            await self._ended(slot, link)
        finally:
            self._live -= 1
            self._notify()

    async def _connect_and_serve(self, slot: _Slot, link: _Link) -> None:
        with link.scope:
            try:
                async with self._connect(link.url) as ws:
                    link.ws = ws
                    now = trio.current_time()
                    link.connected_at = link.last_message_at = now
                    link.initial = tuple(slot.desired)
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._read, slot, link, ws)
                        nursery.start_soon(self._send, slot, link, ws)
                        nursery.start_soon(self._watch, slot, link, ws)
                        nursery.start_soon(self._announce, link)
                        self._check_ready(slot, link)
            except ConnectionRejected as exc:
                link.finish(_End(f"handshake refused: HTTP {exc.status_code}"))
            except HandshakeError as exc:
                link.finish(_End(f"handshake failed: {_describe(exc)}"))
            except OSError as exc:
                link.finish(_End(f"connect failed: {exc}"))
        if link.end is None:  # every task ended without finishing the link (defensive)
            link.end = _End("connection ended")

    async def _ended(self, slot: _Slot, link: _Link) -> None:
        """Bookkeeping after a link ended (losses, promotion, backoff), then its events."""
        end = link.end
        assert end is not None
        link.state = "closed"
        if link in slot.links:
            slot.links.remove(link)
        now = trio.current_time()
        # Any end, planned or not, can leave streams uncovered (a rotation whose successor
        # died in the overlap retires the old link on schedule): record what no other ready
        # link holds, so its gap is reported when the streams are back.
        self._record_losses(slot, link, end.reason)
        reconnect_in_ms: int | None = None
        if link is slot.current:
            slot.current = None
            if slot.successor is not None:
                slot.current, slot.successor = slot.successor, None
                reconnect_in_ms = 0
            elif slot.desired and not slot.closed and not self._stopping:
                if (
                    link.ready_at is not None
                    and now - link.ready_at >= self.settings.stable_after_s
                ):
                    slot.attempts = 0
                delay = self.settings.backoff(slot.attempts, self._rng)
                slot.attempts += 1
                slot.next_attempt_at = now + delay
                slot.room_wanted = end.slow
                reconnect_in_ms = round(delay * 1000)
        elif link is slot.successor:
            slot.successor = None
            if not self._stopping and not slot.closed:
                delay = self.settings.backoff(slot.rotate_attempts, self._rng)
                slot.rotate_attempts += 1
                slot.rotate_retry_at = now + delay
                reconnect_in_ms = round(delay * 1000)
        slot.attend()
        self._notify()
        if end.abnormal:
            logger.warning("%s: %s (reconnect in %s ms)", link.name, end.reason, reconnect_in_ms)
        await self._flush(link)
        await self._emit(
            StreamDisconnected(
                client=self.client,
                connection=link.name,
                reason=end.reason,
                code=end.code,
                reconnect_in_ms=reconnect_in_ms,
            )
        )
        self._notify()

    @staticmethod
    def _record_losses(slot: _Slot, link: _Link, reason: str) -> None:
        """Remember that frames of the streams ``link`` held may be missing from its last
        delivered frame on, unless another ready link of the slot still holds them."""
        for name in link.subscribed:
            covered = any(
                other is not link and other.state == "ready" and name in other.subscribed
                for other in slot.links
            )
            if name in slot.desired and not covered and name not in slot.losses:
                slot.losses[name] = _Loss(link.mark_ns, link.name, reason)

    def _check_ready(self, slot: _Slot, link: _Link) -> None:
        """Make ``link`` ready once every stream it was opened for is acknowledged (or no
        longer wanted), and queue its announcements."""
        if link.state != "opening" or link.ws is None or link.end is not None:
            return
        if any(name in slot.desired and name not in link.subscribed for name in link.initial):
            return
        now = trio.current_time()
        link.state = "ready"
        link.ready_at = link.last_frame_at = now
        link.ready_ns = self._clock()
        acked = tuple(name for name in slot.desired if name in link.subscribed)
        resubscribed = tuple(name for name in acked if name in link.carried)
        link.outbox.append(
            StreamConnected(client=self.client, connection=link.name, url=link.url, streams=acked)
        )
        if resubscribed:
            link.outbox.append(
                StreamResubscribed(client=self.client, connection=link.name, streams=resubscribed)
            )
        self._report_losses(slot, link, acked)
        if link is slot.successor:
            old = slot.current
            slot.current, slot.successor = link, None
            slot.rotate_attempts = 0
            if old is not None:
                old.retire_at = now + self.settings.rotation_overlap_s
                old.rotate_reason = f"rotated to {link.name}: {old.rotate_reason}"
                old.poke()
        link.news.set()
        link.poke()
        slot.attend()
        self._notify()

    def _report_losses(self, slot: _Slot, link: _Link, names: Iterable[str]) -> None:
        """Queue a StreamGap for each group of ``names`` whose loss is now over."""
        groups: dict[_Loss, list[str]] = {}
        for name in names:
            loss = slot.losses.pop(name, None)
            if loss is not None:
                groups.setdefault(loss, []).append(name)
        to_ns = link.ready_ns if link.state == "ready" else self._clock()
        for loss, streams in groups.items():
            link.outbox.append(
                StreamGap(
                    client=self.client,
                    connection=loss.connection,
                    streams=tuple(streams),
                    from_ns=loss.from_ns,
                    to_ns=max(to_ns, loss.from_ns),
                    reason=loss.reason,
                )
            )
        if groups:
            link.news.set()

    async def _announce(self, link: _Link) -> None:
        """Emit what the link queued (connected, resubscribed, gaps), in order."""
        while True:
            await link.news.wait()
            link.news = trio.Event()
            await self._flush(link)

    async def _flush(self, link: _Link) -> None:
        while link.outbox:
            await self._emit(link.outbox[0])  # popped once delivered: cancellation keeps it
            link.outbox.pop(0)

    async def _emit(self, event: Event) -> None:
        with trio.fail_after(self.settings.emit_timeout_s):
            await self._emit_to(event)

    async def _read(self, slot: _Slot, link: _Link, ws: WebSocket) -> None:
        """Take every message as it comes: control replies are checked, frames are passed on
        with ``send_nowait``. Ends the link on close, silence, or a full frames channel."""
        liveness = self.settings.liveness_s
        # One cancel scope for the whole read loop, its deadline moved per message: a scope
        # per message cost more than parsing the frame.
        with trio.CancelScope() as silent:
            await self._read_until_done(slot, link, ws, silent, liveness)
        if silent.cancelled_caught:
            link.finish(_End(f"no frame for {liveness:g} s"))

    async def _read_until_done(
        self,
        slot: _Slot,
        link: _Link,
        ws: WebSocket,
        silent: trio.CancelScope,
        liveness: float | None,
    ) -> None:
        while True:
            deadline = math.inf
            if liveness is not None and link.regular:
                deadline = link.last_frame_at + liveness
            silent.deadline = deadline
            try:
                message = await ws.get_message()
            except ConnectionClosed as exc:
                link.finish(_closed(exc))
                return
            received_ns = self._clock()
            now = trio.current_time()
            link.last_message_at = now
            if isinstance(message, bytes):
                logger.warning("%s: binary frame of %d bytes", link.name, len(message))
                text = message.decode("utf-8", "replace")
            else:
                text = message
            if not text.startswith(_FRAME_PREFIX) and self._control_reply(slot, link, text):
                continue
            try:
                self._frames.send_nowait(
                    StreamFrame(
                        client=self.client,
                        connection=link.name,
                        received_ns=received_ns,
                        text=text,
                    )
                )
            except trio.WouldBlock:
                link.finish(_End("consumer too slow: frames channel full", slow=True))
                return
            link.last_frame_at = now
            link.mark_ns = received_ns
            if text.startswith(_SHUTDOWN_PREFIX) and not link.rotate_due:
                link.rotate_due = True
                link.rotate_reason = "server announced a shutdown"
                slot.attend()

    def _control_reply(self, slot: _Slot, link: _Link, text: str) -> bool:
        """Consume and check ``text`` if it is a reply to a control message; False when it is
        anything else (then it is a frame, however odd)."""
        if not text.startswith("{"):
            return False
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(message, dict) or "stream" in message:
            return False
        if "result" not in message and "error" not in message:
            return False
        request_id = message.get("id")
        request = None
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            request = link.pending.pop(request_id, None)
        if request is None:
            logger.error("%s: unexpected control reply %s", link.name, text[:300])
            return True
        error = message.get("error")
        if request.method == _LIST:
            self._audit(link, message.get("result"), text)
        elif error is not None:
            code, reason = _error_of(error)
            link.inflight.difference_update(request.streams)
            if request.method == _UNSUBSCRIBE:
                logger.warning("%s: UNSUBSCRIBE %s refused: %s", link.name, request.streams, text)
                for name in request.streams:
                    link.drop(name)
            elif len(request.streams) > 1:
                middle = len(request.streams) // 2
                for half in (request.streams[:middle], request.streams[middle:]):
                    link.retry.append(half)
                    link.held.update(half)
            else:
                self._reject(slot, link, request.streams[0], code, reason)
        elif "result" in message and message["result"] is None:
            link.inflight.difference_update(request.streams)
            if request.method == _SUBSCRIBE:
                if not link.subscribed:
                    link.mark_ns = self._clock()
                for name in request.streams:
                    link.hold(name)
                    if name in slot.desired:
                        slot.carried.add(name)
                if link.state == "ready":
                    self._report_losses(slot, link, request.streams)
            else:
                for name in request.streams:
                    link.drop(name)
        else:
            link.finish(_End(f"unexpected reply to {request.method}: {text[:200]}"))
            return True
        self._check_ready(slot, link)
        link.poke()
        self._notify()
        return True

    def _audit(self, link: _Link, result: Any, text: str) -> None:
        """Compare Binance's LIST_SUBSCRIPTIONS with what it acknowledged; repair the
        difference (the sender then subscribes what is missing, drops what is extra)."""
        if not isinstance(result, list) or not all(isinstance(name, str) for name in result):
            logger.error("%s: unexpected LIST_SUBSCRIPTIONS reply %s", link.name, text[:300])
            return
        listed = set(result)
        missing = [
            name for name in link.subscribed if name not in listed and name not in link.inflight
        ]
        extra = [
            name for name in result if name not in link.subscribed and name not in link.inflight
        ]
        if missing or extra:
            logger.warning(
                "%s: Binance lists %d streams not acknowledged and lacks %d acknowledged ones",
                link.name,
                len(extra),
                len(missing),
            )
        for name in missing:
            link.drop(name)
        for name in extra:
            link.hold(name)

    def _reject(self, slot: _Slot, link: _Link, name: str, code: int | None, reason: str) -> None:
        if self._slot_of.get(name) is not slot:
            return  # no longer wanted here (unsubscribed, or refused on the other link)
        subscribers = tuple(self._refs.pop(name, {}))
        del self._slot_of[name]
        self._forget(slot, name)
        self.rejected[name] = Rejection(name, code, reason, subscribers, link.name)
        logger.error(
            "%s: Binance refused %r (code %s: %s); dropped for %s",
            link.name,
            name,
            code,
            reason,
            ", ".join(subscribers) or "nobody",
        )
        slot.changed()

    def _plan(self, slot: _Slot, link: _Link) -> tuple[str, tuple[str, ...], bool] | None:
        """The next control message the link needs: (method, streams, from the retry
        queue), or None when the link matches what is wanted."""
        per_message = self.settings.streams_per_message
        removes = [
            name
            for name in link.subscribed
            if name not in slot.desired and name not in link.inflight
        ]
        if removes:
            return _UNSUBSCRIBE, tuple(removes[:per_message]), False
        while link.retry:
            batch = tuple(
                name
                for name in link.retry[0]
                if name in slot.desired
                and name not in link.subscribed
                and name not in link.inflight
            )
            if batch:
                return _SUBSCRIBE, batch, True
            link.held.difference_update(link.retry.popleft())
        adds = [
            name
            for name in slot.desired
            if name not in link.subscribed and name not in link.inflight and name not in link.held
        ]
        if adds:
            return _SUBSCRIBE, tuple(adds[:per_message]), False
        if link.state == "ready" and not link.audited and link.subscribed and not link.pending:
            return _LIST, (), False
        return None

    async def _send(self, slot: _Slot, link: _Link, ws: WebSocket) -> None:
        """Reconcile the link with the slot: one throttled message at a time."""
        settings = self.settings
        throttle = link.throttle
        while True:
            if self._plan(slot, link) is None:
                await link.wake.wait()
                link.wake = trio.Event()
                if settings.coalesce_s:
                    await trio.sleep(settings.coalesce_s)
                continue
            await throttle.wait()
            plan = self._plan(slot, link)
            if plan is None:
                continue
            method, streams, from_retry = plan
            if from_retry:
                link.held.difference_update(link.retry.popleft())
            if method == _LIST:
                link.audited = True
            request_id = next(self._ids)
            message: dict[str, Any] = {"method": method}
            if method != _LIST:
                message["params"] = list(streams)
            message["id"] = request_id
            link.pending[request_id] = _Request(method, streams, trio.current_time())
            link.inflight.update(streams)
            throttle.record()
            link.watch.set()
            try:
                with trio.fail_after(settings.send_timeout_s):
                    await ws.send_message(orjson.dumps(message).decode())
            except ConnectionClosed as exc:
                link.finish(_closed(exc))
                return
            except trio.TooSlowError:
                link.finish(_End(f"{method} not sent within {settings.send_timeout_s:g} s"))
                return

    async def _watch(self, slot: _Slot, link: _Link, ws: WebSocket) -> None:
        """The link's timers: reply timeouts, the ping probe, rotation and retirement."""
        settings = self.settings
        while True:
            now = trio.current_time()
            deadlines = [link.retire_at]
            if now >= link.retire_at:
                link.finish(_End(link.rotate_reason or "rotated", abnormal=False))
                return
            if link.pending:
                oldest = min(link.pending.values(), key=lambda request: request.sent_at)
                due = oldest.sent_at + settings.reply_timeout_s
                if now >= due:
                    link.finish(
                        _End(f"no reply to {oldest.method} within {settings.reply_timeout_s:g} s")
                    )
                    return
                deadlines.append(due)
            if not link.rotate_due:
                due = link.connected_at + settings.rotate_after_s
                if now >= due:
                    link.rotate_due = True
                    link.rotate_reason = f"connection older than {settings.rotate_after_s:g} s"
                    slot.attend()
                else:
                    deadlines.append(due)
            if settings.probe_after_s is not None and link.state == "ready":
                due = link.last_message_at + settings.probe_after_s
                if now >= due:
                    await self._probe(link, ws)
                    continue
                deadlines.append(due)
            with trio.move_on_at(min(deadlines)):
                await link.watch.wait()
            link.watch = trio.Event()

    async def _probe(self, link: _Link, ws: WebSocket) -> None:
        """Ping (throttled like any message we send); finish the link without a pong."""
        throttle = link.throttle
        await throttle.wait()
        throttle.record()
        timeout = self.settings.pong_timeout_s
        with trio.move_on_after(timeout) as waited:
            try:
                await ws.ping()
            except ConnectionClosed as exc:
                link.finish(_closed(exc))
                return
        if waited.cancelled_caught:
            link.finish(_End(f"no pong within {timeout:g} s"))
            return
        link.last_message_at = trio.current_time()


def _closed(exc: ConnectionClosed) -> _End:
    """How a closed connection is reported: the server's close code and reason, or a lost
    connection (1006: no close frame)."""
    reason = exc.reason
    if reason is None or reason.code == 1006:
        return _End("connection lost")
    words = f": {reason.reason}" if reason.reason else ""
    return _End(f"closed by server ({int(reason.code)}{words})", code=int(reason.code))


def _describe(exc: HandshakeError) -> str:
    """``ConnectionTimeout``, or the network error trio-websocket wrapped (``ConnectionRefused
    Error: [Errno 111] ...``)."""
    cause = exc.__cause__
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error_of(error: Any) -> tuple[int | None, str]:
    """Binance's ``{"code": 2, "msg": "..."}`` as (code, message), whatever its shape."""
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("msg")
        return (
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            message if isinstance(message, str) else orjson.dumps(error).decode(),
        )
    return None, orjson.dumps(error).decode()
