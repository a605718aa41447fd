"""User-data sessions: an account's own events (orders, fills, balances, positions), kept
flowing whatever the network or Binance does, and every interruption reported.

Two sessions, one life cycle (binance-protocol.md sections 9 and 10):

* :class:`SpotUserSession` rides the Spot WebSocket API (Binance retired Spot listen keys on
  2026-02-20). With an Ed25519 key it sends ``session.logon`` then
  ``userDataStream.subscribe``; with HMAC or RSA keys (which cannot log on) it sends
  ``userDataStream.subscribe.signature``. Both sign ``apiKey`` and ``timestamp`` (sorted, not
  percent-encoded). Events arrive as ``{"subscriptionId": N, "event": {...}}``.
* :class:`FuturesUserSession` (USD-M and COIN-M, told apart by a table row) creates a listen
  key with ``POST /fapi/v1/listenKey`` (``/dapi/v1/listenKey``), connects to the user stream
  (USD-M ``<private base>/ws?listenKey=K``, COIN-M ``<base>/ws/K``), keeps the key alive with
  ``PUT`` every 30 minutes (a key lives 60) and ``DELETE``\\ s it when closed.

What both guarantee:

* **Frames.** Every message that is not a reply to one of the session's requests is handed
  on, text exactly as received, as a :class:`~events.connectivity.StreamFrame` to the
  ``frames`` channel, in arrival order, by the one task that reads the connection. The reader
  *waits* for room (user data is low-volume and must not be dropped), at most
  ``handoff_timeout_s``; a consumer slower than that ends the connection, which is then
  reported as a gap like any other interruption. Nothing is dropped silently.
* **Order of reports.** When a connection goes live the session emits, in this order,
  :class:`StreamConnected`, :class:`UserStreamStarted` and (after an interruption)
  :class:`UserStreamGap`, and only then hands on the connection's first frame; when it ends,
  :class:`StreamDisconnected` follows its last frame. Frames and reports come from one task
  in that order, so a consumer that passes the ``frames`` channel's ``send`` as ``emit``
  gets one totally ordered sequence.
* **Gaps.** An interruption is reported once the stream is back, as
  ``UserStreamGap(from_ms, to_ms, reason)`` in local wall-clock milliseconds: ``from_ms`` is
  the last moment up to which everything is known to have been handed on (the receipt of the
  last event, the moment the subscription was confirmed, or, on Spot, the sending time of the
  last probe request whose reply came back: Binance answers on the same ordered connection
  that carries the events); ``to_ms`` is when the new subscription was confirmed (Spot) or the
  new stream connected (futures). The first start reports no gap: what happened before it is
  for startup reconciliation, unless the session was created with ``lost_since=(from_ms,
  reason)`` (its owner knows user data may already be missing, e.g. it restarted): then the
  first start reports that gap too, in the same place, before the first frame. Reasons are
  the first failure's, in words.
* **Recovery.** A connection ends on a close, an error, an ``eventStreamTerminated`` (Spot)
  or ``listenKeyExpired`` (futures), a failed liveness probe, a refused keepalive (``-1125``),
  a consumer too slow, Binance's ``serverShutdown`` notice, or its age (Binance cuts
  connections after 24 hours; ``rotate_after_s``). It is replaced after a capped exponential
  backoff with seeded jitter (``backoff_initial_s * backoff_factor ** n``, at most
  ``backoff_max_s``, minus up to ``backoff_jitter`` of it); ``n`` counts failures since the
  last connection that stayed live ``stable_after_s``. Planned ends (termination, expiry,
  shutdown notice, rotation) reconnect at once the first time. A 429/418 refusal waits at
  least until Binance's ``retryAfter``. Futures sessions ask for a listen key before every
  connection: ``POST`` returns the live key (extending it) or a new one after expiry.
* **Rate limits.** The Spot WS-API shares the IP's request-weight limits with REST, so a
  429 or 418 answered to the session's own requests (``session.logon``, the subscribe, a
  probe) or to its handshake pauses (429, :meth:`RateLimiter.on_429`) or halts (418,
  :meth:`RateLimiter.on_418`) the limiter's Spot pool, REST included, until Binance's
  ``retryAfter`` (server time; for a 418 without it, the ban end in Binance's message, else
  two minutes), and is reported at once as
  ``RateLimited(client, pool="spot", until_ms, code)`` or ``IpBanned(client, pool="spot",
  until_ms)`` (the limiter's pause or ban in force). Futures sessions' listen-key calls go
  through the REST client, which does the same.
* **Liveness.** User streams may be silent for hours, so silence alone proves nothing. After
  ``probe_after_s`` without a message the Spot session sends ``session.subscriptions`` (a
  request answered on the same connection): no reply within ``reply_timeout_s`` ends the
  connection, and a reply that does not list the session's subscription ends it too (the
  subscription was lost without a termination event). Futures sessions send a WebSocket
  ping; no pong within ``pong_timeout_s`` ends the connection.
* **Refusals.** Every request carries an ``id`` and its reply is checked. Credentials Binance
  refuses (:data:`AUTH_ERROR_CODES`: ``-1022`` bad signature, ``-2014``/``-2015`` bad key,
  ``-1002`` unauthorized), at the start or later (a key revoked while streaming), are not
  retried: the session emits a ``StreamDisconnected`` with the same reason, then
  ``UserStreamStopped(client, from_ms, reason, code)``: user data is missing from
  ``from_ms`` on, with no end (the open interruption's start; else, never live, the current
  time), ``reason`` names Binance's code and what to fix (for ``-1022``: the secret does not
  match the key); then :meth:`run` raises :class:`UserStreamAuthError` saying the same.
  Other refusals are retried with backoff.

Every external await is bounded: the handshake by ``connect_timeout_s``, sends by
``send_timeout_s``, replies by ``reply_timeout_s``, pongs by ``pong_timeout_s``, REST calls
by ``rest_timeout_s``, rate-limit admission by ``admit_timeout_s``, handing a frame on by
``handoff_timeout_s`` and each ``emit`` by ``emit_timeout_s`` (too slow raises
``trio.TooSlowError`` out of :meth:`run`: a report is never dropped).

Cancellation: cancelling :meth:`run` drops the connection at once and emits nothing more
(a futures listen key is then left to expire within 60 minutes). :meth:`aclose` stops
gracefully: the connection is closed, reported (``reason="session stopped"``), and a futures
session deletes its listen key.

Nothing a session emits or logs holds the API key, the secret, a signature or a listen key
(URLs in reports show the key's first four characters); frames are passed on as received.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, NoReturn
from urllib.parse import quote, urlsplit

import attrs
import orjson
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError

from actors.binance.costs import Pool
from actors.binance.endpoints import ws_api_connect_cost, ws_api_cost
from actors.binance.errors import BinanceError
from actors.binance.ratelimit import RateLimiter
from actors.binance.signing import Signer, ws_api_payload
from actors.binance.streams import Connector, Emit, WebSocket
from actors.binance.venues import Endpoints
from actors.binance.wsconnect import open_websocket, proxy_url_field
from actors.config import AccountType, KeyType
from events.base import Event
from events.connectivity import (
    IpBanned,
    RateLimited,
    RestRequest,
    RestResponse,
    StreamConnected,
    StreamDisconnected,
    StreamFrame,
    UserStreamGap,
    UserStreamStarted,
    UserStreamStopped,
)

__all__ = [
    "AUTH_ERROR_CODES",
    "INVALID_LISTEN_KEY",
    "LISTEN_KEY_PATHS",
    "FuturesUserSession",
    "ListenKeyRest",
    "RestCallError",
    "SpotUserSession",
    "UserSessionSettings",
    "UserStreamAuthError",
    "rest_caller",
]

logger = logging.getLogger("tern.binance.userdata")

#: Binance codes that refuse the credentials themselves: retrying cannot help.
AUTH_ERROR_CODES: Mapping[int, str] = {
    -1002: "the API key is not authorized for this request",
    -1022: "the signature does not verify",
    -2014: "the API key's format is invalid (check that the whole key was copied)",
    -2015: (
        "the API key is unknown to this environment, this IP address is not allowed to use "
        "it, or it lacks the permission (check the key, its IP whitelist and its permissions, "
        "and that it belongs to this environment: live, demo or testnet)"
    ),
}
#: ``-1125``: the listen key does not exist (expired or deleted).
INVALID_LISTEN_KEY = -1125

#: The listen-key endpoint and the user-stream URL of each futures product: ``{base}`` is
#: :attr:`Endpoints.ws_user` (USD-M: its ``/private`` route), ``{key}`` the listen key.
LISTEN_KEY_PATHS: Mapping[AccountType, tuple[str, str]] = {
    AccountType.USDT_FUTURES: ("/fapi/v1/listenKey", "{base}/ws?listenKey={key}"),
    AccountType.COIN_FUTURES: ("/dapi/v1/listenKey", "{base}/ws/{key}"),
}

#: How a futures session calls Binance's listen-key endpoint: awaited with the HTTP method
#: (``POST``, ``PUT``, ``DELETE``) and the path; returns the decoded JSON body of a 2xx answer
#: and raises :class:`~actors.binance.errors.BinanceError` or :class:`RestCallError`
#: otherwise. It sends the API key (``X-MBX-APIKEY``); listen-key calls are not signed.
ListenKeyRest = Callable[[str, str], Awaitable[Mapping[str, Any]]]

_MAX_RETRY_AFTER_S = 3 * 24 * 3600.0  # Binance's longest ban
#: A 418 that does not say when the ban ends is taken to last this long (Binance's shortest).
_DEFAULT_BAN_MS = 120_000
#: A 429 without ``retryAfter`` pauses this long when no limiter knows the window.
_DEFAULT_PAUSE_MS = 60_000
#: ``"listenKey":"<key>"`` inside a frame; journaled with only the key's first 4 characters.
_LISTEN_KEY_VALUE = re.compile(r'("listenKey"\s*:\s*")([^"]{4})[^"]*(")')


def _mask_listen_key(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}...{match.group(3)}"


_POSITIVE = attrs.validators.gt(0)
_NON_NEGATIVE = attrs.validators.ge(0)
_POSITIVE_OR_NONE = attrs.validators.optional(attrs.validators.gt(0))


@attrs.frozen(kw_only=True)
class UserSessionSettings:
    """How a user-data session behaves. Times are seconds.

    Attributes:
        connect_timeout_s / send_timeout_s / close_timeout_s / reply_timeout_s: bounds on
            the handshake, one send, the closing handshake and a WS-API reply.
        emit_timeout_s: bound on one ``emit`` call.
        handoff_timeout_s: how long the reader waits for room in the ``frames`` channel
            before it gives the connection up (and reports the gap).
        rest_timeout_s: bound on one listen-key REST call (the REST client's own retries
            included).
        admit_timeout_s: bound on waiting for the rate limiter (when one is given).
        probe_after_s: a live connection silent for this long is probed (Spot: a
            ``session.subscriptions`` request; futures: a WebSocket ping).
        pong_timeout_s: a futures ping not answered within this ends the connection.
        rotate_after_s: a connection is replaced after this long (Binance cuts at 24 h).
        keepalive_every_s: a futures listen key is extended this long after its last
            extension (Binance: a key lives 60 minutes; extend it every 30).
        keepalive_retry_s: the wait before a failed keepalive is tried again.
        listen_key_validity_s: how long a key lives after its last extension; once that
            much time passed without a successful keepalive the key is replaced.
        backoff_initial_s / backoff_factor / backoff_max_s / backoff_jitter: the reconnect
            wait ``min(max, initial * factor ** n)``, minus up to ``jitter`` of it.
        stable_after_s: a connection live this long resets the backoff.
        recv_window_ms: ``recvWindow`` sent with signed WS-API requests (None: Binance's
            default of 5000).
        max_message_bytes: larger frames close the connection (trio-websocket's limit).
        proxy_url: the client's ``http://`` or ``https://`` proxy: connections tunnel through
            it (:mod:`actors.binance.wsconnect`); None connects directly. Shown without its
            password.
    """

    connect_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    send_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    close_timeout_s: float = attrs.field(default=5.0, validator=_POSITIVE)
    reply_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    emit_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    handoff_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    rest_timeout_s: float = attrs.field(default=30.0, validator=_POSITIVE)
    admit_timeout_s: float = attrs.field(default=30.0, validator=_POSITIVE)
    probe_after_s: float = attrs.field(default=30.0, validator=_POSITIVE)
    pong_timeout_s: float = attrs.field(default=10.0, validator=_POSITIVE)
    rotate_after_s: float = attrs.field(default=23.5 * 3600, validator=_POSITIVE)
    keepalive_every_s: float = attrs.field(default=30 * 60.0, validator=_POSITIVE)
    keepalive_retry_s: float = attrs.field(default=60.0, validator=_POSITIVE)
    listen_key_validity_s: float = attrs.field(default=60 * 60.0, validator=_POSITIVE)
    backoff_initial_s: float = attrs.field(default=0.5, validator=_POSITIVE)
    backoff_factor: float = attrs.field(default=2.0, validator=_POSITIVE)
    backoff_max_s: float = attrs.field(default=30.0, validator=_POSITIVE)
    backoff_jitter: float = attrs.field(default=0.25, validator=_NON_NEGATIVE)
    stable_after_s: float = attrs.field(default=30.0, validator=_NON_NEGATIVE)
    recv_window_ms: int | None = attrs.field(default=None, validator=_POSITIVE_OR_NONE)
    max_message_bytes: int = attrs.field(default=16 * 2**20, validator=_POSITIVE)
    proxy_url: str | None = proxy_url_field()

    def __attrs_post_init__(self) -> None:
        if self.backoff_jitter >= 1:
            raise ValueError(f"backoff_jitter must be below 1, got {self.backoff_jitter!r}")
        if self.keepalive_every_s >= self.listen_key_validity_s:
            raise ValueError(
                f"keepalive_every_s ({self.keepalive_every_s:g}) must be below "
                f"listen_key_validity_s ({self.listen_key_validity_s:g}): the key would expire "
                "before it is extended"
            )

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait before reconnect attempt number ``attempt`` (0 for the first)."""
        base = self.backoff_max_s
        if attempt < 64:  # beyond, the power overflows any cap anyway
            base = min(base, self.backoff_initial_s * self.backoff_factor**attempt)
        return base * (1 - self.backoff_jitter * rng.random())


class UserStreamAuthError(Exception):
    """Binance refused the session's credentials; retrying cannot help.

    Attributes:
        client: the ``[[clients]]`` name.
        request: what was refused (``session.logon``, ``POST /fapi/v1/listenKey``, ...).
        code: Binance's error code (see :data:`AUTH_ERROR_CODES`).
        binance_message: Binance's ``msg``.
        hint: what it means and what to fix.
    """

    def __init__(
        self, client: str, request: str, code: int, binance_message: str, hint: str
    ) -> None:
        self.client = client
        self.request = request
        self.code = code
        self.binance_message = binance_message
        self.hint = hint
        super().__init__(str(self))

    @property
    def reason(self) -> str:
        """What was refused, Binance's code and message, and what it means."""
        return (
            f"Binance refused {self.request} with {self.code} ({self.binance_message!r}): "
            f"{self.hint}"
        )

    def __str__(self) -> str:
        return (
            f"{self.client}: {self.reason}. The user-data stream is not retried; "
            "fix the credentials and restart"
        )


class RestCallError(Exception):
    """A listen-key REST call that did not succeed (what :func:`rest_caller` raises).

    Attributes:
        status: the HTTP status; 0 when no answer arrived.
        code: Binance's error code, when there was one.
        message: Binance's ``msg`` or a description of the failure.
        retry_after_s: how long Binance asked to wait (429/418), when known.
    """

    def __init__(
        self, status: int, code: int | None, message: str, retry_after_s: float | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s
        super().__init__(str(self))

    def __str__(self) -> str:
        code = f" {self.code}" if self.code is not None else ""
        status = f"HTTP {self.status}" if self.status else "no answer"
        return f"{status}{code}: {self.message}"


def rest_caller(
    call: Callable[[RestRequest], Awaitable[RestResponse]],
    client: str,
    *,
    prefix: str = "userdata",
) -> ListenKeyRest:
    """A :data:`ListenKeyRest` over the connectivity edge's REST call
    (:meth:`actors.binance.rest.RestClient.call`): each call becomes a
    :class:`~events.connectivity.RestRequest` with ``call_id`` ``<prefix>-<n>``; an answer
    other than ``ok`` raises :class:`RestCallError` with Binance's code."""
    serials = itertools.count(1)

    async def rest(method: str, path: str) -> Mapping[str, Any]:
        response = await call(
            RestRequest(
                client=client, call_id=f"{prefix}-{next(serials)}", method=method, path=path
            )
        )
        if response.outcome != "ok":
            retry_after = response.headers.get("retry-after")
            try:
                wait = float(retry_after) if retry_after is not None else None
            except ValueError:
                wait = None
            raise RestCallError(
                response.status, response.code, response.message or response.outcome, wait
            )
        try:
            body = orjson.loads(response.body) if response.body.strip() else {}
        except orjson.JSONDecodeError:
            raise RestCallError(
                response.status, None, f"the answer is not JSON: {response.body[:200]!r}"
            ) from None
        if not isinstance(body, dict):
            raise RestCallError(response.status, None, f"unexpected answer {response.body[:200]}")
        return body

    return rest


# --------------------------------------------------------------------------------- internals


@attrs.define(eq=False)
class _End:
    """Why a connection attempt ended.

    ``planned``: not a failure of the connection (termination, expiry, shutdown notice,
    rotation): reconnect at once the first time. ``fatal``: stop for good and raise it.
    ``stopped``: the session is closing. ``retry_after_s``: Binance asked to wait this long.
    """

    reason: str
    code: int | None = None
    planned: bool = False
    fatal: UserStreamAuthError | None = None
    stopped: bool = False
    retry_after_s: float | None = None


@attrs.define(eq=False)
class _Pending:
    """A WS-API request waiting for its reply."""

    method: str
    sent_ms: int
    done: trio.Event = attrs.field(factory=trio.Event)
    reply: dict[str, Any] | None = None


class _Refused(Exception):
    """A WS-API request answered with an error (internal: turned into an :class:`_End`)."""

    def __init__(
        self, method: str, status: int, code: int | None, message: str, retry_after_ms: int | None
    ) -> None:
        super().__init__(method, status, code, message)
        self.method = method
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


@attrs.frozen
class _Loss:
    """User data may be missing since ``from_ms``, because of ``reason``."""

    from_ms: int
    reason: str


class _Link:
    """One connection attempt, from asking for it to its end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.url = ""
        self.scope = trio.CancelScope()
        self.end: _End | None = None
        self.error: Exception | None = None
        self.ws: WebSocket | None = None
        self.live = False
        self.ready = trio.Event()
        self.connected_at = math.inf
        self.live_at = math.inf
        self.last_message_at = math.inf
        #: Up to when everything is known to have been handed on (wall-clock ms).
        self.known_good_ms = 0
        self.pending: dict[int, _Pending] = {}
        self.subscription_id: int | None = None

    def finish(self, end: _End) -> None:
        """End the link (the first reason wins): every task of it is cancelled."""
        if self.end is None:
            self.end = end
            self.scope.cancel()


async def _abandon(link: _Link, end: _End) -> NoReturn:
    """Finish ``link`` and unwind the calling task (its scope is now cancelled)."""
    link.finish(end)
    await trio.lowlevel.checkpoint()
    raise AssertionError("unreachable: the link's scope is cancelled")


def _closed(exc: ConnectionClosed) -> _End:
    """How a closed connection is reported: the server's close code and reason, or a lost
    connection (1006: no close frame)."""
    reason = exc.reason
    if reason is None or reason.code == 1006:
        return _End("connection lost")
    words = f": {reason.reason}" if reason.reason else ""
    return _End(f"closed by server ({int(reason.code)}{words})", code=int(reason.code))


def _describe(exc: HandshakeError) -> str:
    cause = exc.__cause__
    if cause is not None:
        return f"{type(cause).__name__}: {cause}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error_fields(error: Any) -> tuple[int | None, str, int | None]:
    """Binance's ``{"code", "msg", "data": {"retryAfter"}}`` as (code, msg, retryAfter)."""
    if not isinstance(error, dict):
        return None, orjson.dumps(error).decode(), None
    code = error.get("code")
    message = error.get("msg")
    data = error.get("data")
    retry_after = data.get("retryAfter") if isinstance(data, dict) else None
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else orjson.dumps(error).decode(),
        retry_after if isinstance(retry_after, int) and not isinstance(retry_after, bool) else None,
    )


def _banned_until_ms(status: int, error: Any) -> int | None:
    """When a 418's ban ends according to Binance's message ("IP banned until <ms>")."""
    body = orjson.dumps(error) if isinstance(error, dict) else b""
    return BinanceError.from_response(status, body, {}, method="", path="").banned_until_ms


def _mask(api_key: str) -> str:
    """Enough of an API key to recognise it, never all of it."""
    return f"{api_key[:4]}...{api_key[-4:]}" if len(api_key) > 12 else "***"


def _with_proxy(endpoints: Endpoints, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` whose ``settings`` carry the client's proxy unless they name one."""
    if endpoints.proxy_url is None:
        return options
    settings = options.get("settings") or UserSessionSettings()
    if settings.proxy_url is not None:
        return options
    return {**options, "settings": attrs.evolve(settings, proxy_url=endpoints.proxy_url)}


def _open_websocket(settings: UserSessionSettings) -> Connector:
    def connect(url: str) -> contextlib.AbstractAsyncContextManager[WebSocket]:
        return open_websocket(
            url,
            proxy_url=settings.proxy_url,
            connect_timeout=settings.connect_timeout_s,
            disconnect_timeout=settings.close_timeout_s,
            max_message_size=settings.max_message_bytes,
        )

    return connect


class _Session:
    """The life cycle both sessions share: attempts, links, reports, backoff, stop."""

    KIND: ClassVar[str]
    #: Whether the watchdog pings (futures); Spot probes with a request instead.
    PINGS: ClassVar[bool]

    def __init__(
        self,
        *,
        client: str,
        frames: trio.abc.SendChannel[StreamFrame],
        emit: Emit,
        settings: UserSessionSettings | None,
        name: str | None,
        rng: random.Random | None,
        clock: Callable[[], int],
        connect: Connector | None,
        lost_since: tuple[int, str] | None,
    ) -> None:
        self.client = client
        self.settings = settings if settings is not None else UserSessionSettings()
        self.name = name if name is not None else f"{client}/user"
        self._frames = frames
        self._emit_to = emit
        self._rng = rng if rng is not None else random.Random(f"userdata:{self.name}")
        self._clock = clock
        self._connect = connect if connect is not None else _open_websocket(self.settings)
        self._serials = itertools.count(1)
        self._loss: _Loss | None = None
        if lost_since is not None:
            from_ms, reason = lost_since
            if not isinstance(from_ms, int) or isinstance(from_ms, bool):
                raise TypeError(f"lost_since: from_ms must be an int (wall ms), got {from_ms!r}")
            self._loss = _Loss(from_ms, str(reason))
        #: Reports to emit before anything else (rate limits Binance imposed), oldest first.
        self._reports: list[Event] = []
        self._current: _Link | None = None
        self._running = False
        self._stopping = False
        self._stop = trio.Event()
        self._done = trio.Event()
        self._run_scope: trio.CancelScope | None = None
        self._task_status: trio.TaskStatus[None] | None = None
        self._changed = trio.Event()

    # --- public --------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether a connection is live: subscribed (Spot) or connected with a valid key
        (futures), its reports emitted, its frames flowing."""
        return self.connection is not None

    @property
    def connection(self) -> str | None:
        """The name of the live connection, if any."""
        link = self._current
        if link is None or link.end is not None or not link.ready.is_set():
            return None
        return link.name

    async def wait_live(self, *, timeout_s: float) -> str:
        """Wait until a connection is live; return its name.

        Raises:
            trio.TooSlowError: not live within ``timeout_s``.
            RuntimeError: the session has ended (closed, or failed for good).
        """
        with trio.fail_after(timeout_s):
            while True:
                name = self.connection
                if name is not None:
                    return name
                if self._done.is_set():
                    raise RuntimeError(f"{self.name}: the session has ended")
                await self._changed.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the user-data stream until :meth:`aclose` (or cancellation).

        ``task_status.started()`` comes once the first connection is live ("started" means
        data is flowing), or when the session is closed before that.

        Raises:
            UserStreamAuthError: Binance refused the credentials (not retried).
            trio.TooSlowError: ``emit`` took longer than ``emit_timeout_s``.
            trio.BrokenResourceError / trio.ClosedResourceError: the ``frames`` channel's
                receiver is gone.
            RuntimeError: the session already ran.
        """
        if self._running or self._done.is_set():
            raise RuntimeError(f"{self.name}: a session runs once")
        self._running = True
        self._task_status = task_status
        try:
            with trio.CancelScope() as scope:
                self._run_scope = scope
                await self._loop()
        finally:
            self._running = False
            self._current = None
            self._done.set()
            self._notify()
        if not self._started():
            task_status.started()

    async def aclose(self) -> None:
        """Stop gracefully: close the connection, report it, and (futures) delete the listen
        key; then :meth:`run` returns. Bounded: after ``close_timeout_s + rest_timeout_s +
        emit_timeout_s`` the run is cancelled instead."""
        self._stopping = True
        self._stop.set()
        link = self._current
        if link is not None:
            link.finish(_End("session stopped", stopped=True))
        if not self._running:
            return
        settings = self.settings
        with trio.move_on_after(
            settings.close_timeout_s + settings.rest_timeout_s + settings.emit_timeout_s
        ):
            await self._done.wait()
        if not self._done.is_set() and self._run_scope is not None:
            self._run_scope.cancel()
            with trio.move_on_after(settings.close_timeout_s):
                await self._done.wait()

    # --- the loop ------------------------------------------------------------------------

    def _started(self) -> bool:
        return self._task_status is None

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _now_ms(self) -> int:
        return self._clock() // 1_000_000

    async def _loop(self) -> None:
        settings = self.settings
        attempts = 0
        delay = 0.0
        while not self._stopping:
            if delay > 0:
                with trio.move_on_after(delay):
                    await self._stop.wait()
                if self._stopping:
                    break
            link = _Link(f"{self.name}#{next(self._serials)}")
            self._current = link
            self._notify()
            await self._attempt(link)
            self._current = None
            self._notify()
            if link.error is not None:
                raise link.error
            end = link.end
            assert end is not None
            if link.live and not end.stopped and self._loss is None:
                self._loss = _Loss(link.known_good_ms, end.reason)
            await self._flush_reports()
            if end.fatal is not None:
                logger.error("%s: %s", link.name, end.fatal)
                await self._emit(
                    StreamDisconnected(
                        client=self.client, connection=link.name, reason=end.reason, code=end.code
                    )
                )
                # Open-ended: no gap will close it; reconciliation must know data stopped.
                loss = self._loss
                await self._emit(
                    UserStreamStopped(
                        client=self.client,
                        from_ms=loss.from_ms if loss is not None else self._now_ms(),
                        reason=(
                            f"{end.fatal.reason}; user data is no longer received (the session "
                            "is not retried: fix the credentials and restart)"
                        ),
                        code=end.fatal.code,
                    )
                )
                raise end.fatal
            if self._stopping or end.stopped:
                await self._emit(
                    StreamDisconnected(
                        client=self.client, connection=link.name, reason=end.reason, code=end.code
                    )
                )
                break
            now = trio.current_time()
            if link.live and now - link.live_at >= settings.stable_after_s:
                attempts = 0
            delay = 0.0 if end.planned and attempts == 0 else settings.backoff(attempts, self._rng)
            if end.retry_after_s is not None:
                delay = max(delay, min(end.retry_after_s, _MAX_RETRY_AFTER_S))
            attempts += 1
            logger.warning("%s: %s (reconnect in %.3f s)", link.name, end.reason, delay)
            await self._emit(
                StreamDisconnected(
                    client=self.client,
                    connection=link.name,
                    reason=end.reason,
                    code=end.code,
                    reconnect_in_ms=round(delay * 1000),
                )
            )
        await self._on_stop()

    async def _attempt(self, link: _Link) -> None:
        """Prepare, connect and serve one link until it is finished."""
        with link.scope:
            try:
                url = await self._prepare(link)
                link.url = url
                async with self._connect(url) as ws:
                    link.ws = ws
                    link.connected_at = link.last_message_at = trio.current_time()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._guard, link, self._read, link, ws)
                        nursery.start_soon(self._guard, link, self._watch, link, ws)
                        nursery.start_soon(self._guard, link, self._converse, link, ws)
            except ConnectionRejected as exc:
                link.finish(self._rejected(exc))
            except HandshakeError as exc:
                link.finish(_End(f"handshake failed: {_describe(exc)}"))
            except OSError as exc:
                link.finish(_End(f"connect failed: {exc}"))
        if link.end is None:  # every task ended without finishing the link (defensive)
            link.end = _End("connection ended")

    async def _guard(
        self, link: _Link, function: Callable[..., Awaitable[None]], *args: Any
    ) -> None:
        """Run one task of the link. An exception ends the link and is raised again from
        :meth:`run` (once the link is down, so it is not wrapped in an ExceptionGroup)."""
        try:
            await function(*args)
        except Exception as exc:
            if link.error is None:
                link.error = exc
            link.finish(_End(f"{type(exc).__name__}: {exc}"))

    def _rejected(self, exc: ConnectionRejected) -> _End:
        return _End(f"handshake refused: HTTP {exc.status_code}")

    async def _go_live(self, link: _Link) -> None:
        """The link carries data: report it (and the gap it closes), then let frames flow."""
        now_ms = self._now_ms()
        link.live = True
        link.live_at = trio.current_time()
        link.known_good_ms = now_ms
        await self._emit(
            StreamConnected(client=self.client, connection=link.name, url=self._shown(link.url))
        )
        await self._emit(
            UserStreamStarted(client=self.client, kind=self.KIND, connection=link.name)
        )
        loss = self._loss
        if loss is not None:
            await self._emit(
                UserStreamGap(
                    client=self.client,
                    from_ms=loss.from_ms,
                    to_ms=max(now_ms, loss.from_ms),
                    reason=loss.reason,
                )
            )
            self._loss = None
        link.ready.set()
        self._notify()
        task_status, self._task_status = self._task_status, None
        if task_status is not None:
            task_status.started()

    async def _emit(self, event: Event) -> None:
        with trio.fail_after(self.settings.emit_timeout_s):
            await self._emit_to(event)

    async def _flush_reports(self) -> None:
        """Emit the queued reports; one is dropped from the queue only once emitted."""
        while self._reports:
            await self._emit(self._reports[0])
            del self._reports[0]

    async def _read(self, link: _Link, ws: WebSocket) -> None:
        """Take every message in order: replies go to their requests, everything else is
        handed on (after the link's reports); a terminal event ends the link after it."""
        while True:
            try:
                message = await ws.get_message()
            except ConnectionClosed as exc:
                link.finish(_closed(exc))
                return
            received_ns = self._clock()
            link.last_message_at = trio.current_time()
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            parsed: Any = None
            if text.startswith("{"):
                try:
                    parsed = orjson.loads(text)
                except orjson.JSONDecodeError:
                    parsed = None
            if isinstance(parsed, dict) and self._reply(link, parsed, text):
                continue
            if not link.ready.is_set():
                await link.ready.wait()
            if '"listenKey"' in text:  # listenKeyExpired: a listen key is a credential
                text = _LISTEN_KEY_VALUE.sub(_mask_listen_key, text)
            with trio.move_on_after(self.settings.handoff_timeout_s) as waited:
                await self._frames.send(
                    StreamFrame(
                        client=self.client,
                        connection=link.name,
                        received_ns=received_ns,
                        text=text,
                    )
                )
            if waited.cancelled_caught:
                link.finish(
                    _End(
                        "consumer too slow: a frame was not taken within "
                        f"{self.settings.handoff_timeout_s:g} s"
                    )
                )
                return
            terminal = self._terminal(parsed) if isinstance(parsed, dict) else None
            if terminal is not None:
                link.finish(terminal)
                return
            link.known_good_ms = max(link.known_good_ms, received_ns // 1_000_000)

    async def _watch(self, link: _Link, ws: WebSocket) -> None:
        """The link's timers: rotation before Binance's 24-hour cut, and (futures) the ping
        probe of a silent connection."""
        settings = self.settings
        rotate_at = link.connected_at + settings.rotate_after_s
        while True:
            now = trio.current_time()
            if now >= rotate_at:
                link.finish(
                    _End(f"connection older than {settings.rotate_after_s:g} s", planned=True)
                )
                return
            wake_at = rotate_at
            if self.PINGS and link.ready.is_set():
                probe_at = link.last_message_at + settings.probe_after_s
                if now >= probe_at:
                    with trio.move_on_after(settings.pong_timeout_s) as waited:
                        try:
                            await ws.ping()
                        except ConnectionClosed as exc:
                            link.finish(_closed(exc))
                            return
                    if waited.cancelled_caught:
                        link.finish(_End(f"no pong within {settings.pong_timeout_s:g} s"))
                        return
                    link.last_message_at = trio.current_time()
                    continue
                wake_at = min(wake_at, probe_at)
            elif self.PINGS:
                await link.ready.wait()
                continue
            await trio.sleep_until(wake_at)

    # --- per product ---------------------------------------------------------------------

    async def _prepare(self, link: _Link) -> str:
        """What to connect to (futures: after creating the listen key)."""
        raise NotImplementedError

    async def _converse(self, link: _Link, ws: WebSocket) -> None:
        """Make the link live (:meth:`_go_live`), then maintain it."""
        raise NotImplementedError

    def _reply(self, link: _Link, message: dict[str, Any], text: str) -> bool:
        """Consume ``message`` if it answers a request; False when it is to be handed on."""
        return False

    def _terminal(self, message: dict[str, Any]) -> _End | None:
        """Why the link ends after handing ``message`` on, or None."""
        return None

    def _shown(self, url: str) -> str:
        """``url`` as reports show it (no credentials)."""
        return url

    async def _on_stop(self) -> None:
        """Clean up after the last link (futures: delete the listen key)."""


# ------------------------------------------------------------------------------------- Spot


class SpotUserSession(_Session):
    """A Spot account's user-data stream over the WebSocket API (see the module docstring).

    Args:
        client: the ``[[clients]]`` name, stamped on every record.
        url: the WS-API URL (:attr:`Endpoints.ws_api`).
        api_key: the API key.
        signer: signs the requests; an Ed25519 signer logs on (``session.logon`` +
            ``userDataStream.subscribe``), others use ``userDataStream.subscribe.signature``.
        frames: where every event frame goes (awaited, at most ``handoff_timeout_s``).
        emit: awaited with each report (:class:`StreamConnected`, :class:`UserStreamStarted`,
            :class:`UserStreamGap`, :class:`StreamDisconnected`, :class:`UserStreamStopped`,
            :class:`RateLimited`, :class:`IpBanned`).
        settings: behaviour.
        name: prefix of connection names (default ``<client>/user``).
        rng: draws the backoff jitter (default: seeded from ``name``).
        clock: nanoseconds since the epoch, for ``received_ns`` and gaps (default wall clock).
        server_time_ms: Binance's time in milliseconds, for ``timestamp`` (default
            ``clock``; pass :meth:`ServerClock.now_ms` so that a skewed local clock does not
            meet ``-1021``).
        limiter: when given, the connection and each request wait for admission (Spot pool),
            replies' ``rateLimits`` correct its counts, and a 429 or 418 pauses or halts the
            pool (:meth:`RateLimiter.on_429`, :meth:`RateLimiter.on_418`).
        connect: opens a WebSocket (default trio-websocket with the settings' bounds).
        lost_since: ``(from_ms, reason)``: user data may already be missing since this local
            wall-clock millisecond (e.g. the owner restarted); the first connection that goes
            live reports it as a :class:`UserStreamGap` before its first frame.
    """

    KIND: ClassVar[str] = "ws_api"
    PINGS: ClassVar[bool] = False

    def __init__(
        self,
        *,
        client: str,
        url: str,
        api_key: str,
        signer: Signer,
        frames: trio.abc.SendChannel[StreamFrame],
        emit: Emit,
        settings: UserSessionSettings | None = None,
        name: str | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], int] = time.time_ns,
        server_time_ms: Callable[[], int] | None = None,
        limiter: RateLimiter | None = None,
        connect: Connector | None = None,
        lost_since: tuple[int, str] | None = None,
    ) -> None:
        super().__init__(
            client=client,
            frames=frames,
            emit=emit,
            settings=settings,
            name=name,
            rng=rng,
            clock=clock,
            connect=connect,
            lost_since=lost_since,
        )
        if not api_key:
            raise ValueError(f"{client}: a Spot user-data session needs an API key")
        self.url = url
        self._api_key = api_key
        self._signer = signer
        self._server_time_ms = server_time_ms if server_time_ms is not None else self._now_ms
        self._limiter = limiter
        self._ids = itertools.count(1)

    @classmethod
    def for_endpoints(
        cls,
        endpoints: Endpoints,
        *,
        api_key: str,
        signer: Signer,
        frames: trio.abc.SendChannel[StreamFrame],
        emit: Emit,
        **options: Any,
    ) -> SpotUserSession:
        """The session of a resolved Spot client config (see
        :func:`actors.binance.venues.resolve`); ``options`` are the remaining constructor
        arguments. The client's proxy applies unless ``settings`` name one.

        Raises:
            ValueError: the client is not a Spot client.
        """
        if endpoints.account_type is not AccountType.SPOT:
            raise ValueError(
                f"{endpoints.client}: SpotUserSession is for Spot; "
                f"{endpoints.account_type.value} uses FuturesUserSession"
            )
        return cls(
            client=endpoints.client,
            url=endpoints.ws_api,
            api_key=api_key,
            signer=signer,
            frames=frames,
            emit=emit,
            **_with_proxy(endpoints, options),
        )

    @property
    def subscription_id(self) -> int | None:
        """The live subscription's id, if any."""
        link = self._current
        return link.subscription_id if link is not None and link.live else None

    async def _prepare(self, link: _Link) -> str:
        limiter = self._limiter
        if limiter is not None:
            with trio.move_on_after(self.settings.admit_timeout_s) as waited:
                async with limiter.admit(ws_api_connect_cost(AccountType.SPOT)):
                    pass
            if waited.cancelled_caught:
                await _abandon(link, _End("rate limiter did not admit the connection in time"))
        return self.url

    async def _converse(self, link: _Link, ws: WebSocket) -> None:
        try:
            if self._signer.can_logon:
                await self._request(link, ws, "session.logon", signed=True)
                result = await self._request(link, ws, "userDataStream.subscribe")
            else:
                result = await self._request(
                    link, ws, "userDataStream.subscribe.signature", signed=True
                )
        except _Refused as refused:
            await _abandon(link, self._refusal(refused))
        subscription = result.get("subscriptionId") if isinstance(result, dict) else None
        if not isinstance(subscription, int) or isinstance(subscription, bool):
            await _abandon(link, _End(f"unexpected subscribe result: {result!r:.200}"))
        link.subscription_id = subscription
        await self._go_live(link)
        await self._probe_loop(link, ws)

    async def _probe_loop(self, link: _Link, ws: WebSocket) -> None:
        """After ``probe_after_s`` of silence, ask ``session.subscriptions``: a reply proves
        the connection, moves the known-good mark, and must list the subscription."""
        settings = self.settings
        while True:
            due = link.last_message_at + settings.probe_after_s
            if trio.current_time() < due:
                await trio.sleep_until(due)
                continue
            try:
                result = await self._request(link, ws, "session.subscriptions")
            except _Refused as refused:
                end = self._refusal(refused)
                if end.fatal is not None:
                    await _abandon(link, end)
                logger.warning("%s: probe refused: %s", link.name, end.reason)
                # The next probe comes after probe_after_s, and not before Binance's retryAfter.
                wait_s = min(end.retry_after_s or 0.0, _MAX_RETRY_AFTER_S)
                link.last_message_at = trio.current_time() + max(
                    0.0, wait_s - settings.probe_after_s
                )
                continue
            if isinstance(result, list) and all(isinstance(item, dict) for item in result):
                listed = {item.get("subscriptionId") for item in result}
                if link.subscription_id not in listed:
                    await _abandon(
                        link,
                        _End(
                            f"subscription {link.subscription_id} is no longer listed by "
                            "session.subscriptions"
                        ),
                    )
            else:
                logger.warning(
                    "%s: unexpected session.subscriptions result %.200r", link.name, result
                )

    def _signed_params(self) -> dict[str, str | int]:
        params: dict[str, str | int] = {
            "apiKey": self._api_key,
            "timestamp": self._server_time_ms(),
        }
        if self.settings.recv_window_ms is not None:
            params["recvWindow"] = self.settings.recv_window_ms
        params["signature"] = self._signer.sign(ws_api_payload(params))
        return params

    async def _request(
        self, link: _Link, ws: WebSocket, method: str, *, signed: bool = False
    ) -> Any:
        """Send one request (admitted by the limiter, signed inside the admission) and wait
        for its reply; return its ``result``.

        Raises:
            _Refused: Binance answered with an error, or the limiter did not admit the
                request within ``admit_timeout_s`` (nothing was sent).
        """
        settings = self.settings
        request_id = next(self._ids)
        limiter = self._limiter
        admission: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()
        if limiter is not None:
            admission = limiter.admit(ws_api_cost(AccountType.SPOT, method, {}))
        with trio.move_on_after(settings.admit_timeout_s) as admitting:
            async with admission:
                admitting.deadline = math.inf
                params = self._signed_params() if signed else None
                body: dict[str, Any] = {"id": request_id, "method": method}
                if params is not None:
                    body["params"] = params
                pending = _Pending(method, self._now_ms())
                link.pending[request_id] = pending
                try:
                    with trio.fail_after(settings.send_timeout_s):
                        await ws.send_message(orjson.dumps(body).decode())
                except ConnectionClosed as exc:
                    await _abandon(link, _closed(exc))
                except trio.TooSlowError:
                    await _abandon(
                        link, _End(f"{method} not sent within {settings.send_timeout_s:g} s")
                    )
        if admitting.cancelled_caught:
            raise _Refused(
                method,
                0,
                None,
                f"the rate limiter did not admit it within {settings.admit_timeout_s:g} s",
                None,
            )
        with trio.move_on_after(settings.reply_timeout_s) as waited:
            await pending.done.wait()
        if waited.cancelled_caught:
            link.pending.pop(request_id, None)
            await _abandon(
                link, _End(f"no reply to {method} within {settings.reply_timeout_s:g} s")
            )
        reply = pending.reply
        assert reply is not None
        status = reply.get("status")
        if "result" in reply and status == 200:
            return reply["result"]
        code, message, retry_after = _error_fields(reply.get("error"))
        status = status if isinstance(status, int) and not isinstance(status, bool) else 0
        if status in (418, 429):
            until_ms = retry_after
            if until_ms is None and status == 418:
                until_ms = _banned_until_ms(status, reply.get("error"))
            retry_after = self._rate_limit(status, code, retry_after_s=None, until_ms=until_ms)
            await self._flush_reports()
        raise _Refused(method, status, code, message, retry_after)

    def _rate_limit(
        self, status: int, code: int | None, *, retry_after_s: float | None, until_ms: int | None
    ) -> int | None:
        """Binance answered 429 or 418 on the WS-API, which shares the IP's limits with REST:
        pause (429) or halt (418) the Spot pool of the limiter and queue the
        :class:`RateLimited`/:class:`IpBanned` report. ``until_ms`` (server time, e.g.
        ``retryAfter``) or ``retry_after_s`` says when Binance allows requests again.

        Returns when to reconnect at the earliest (server ms), or None when Binance did not
        say (a 429 without ``retryAfter``).
        """
        now_ms = self._server_time_ms()
        if until_ms is None and retry_after_s is not None:
            until_ms = now_ms + math.ceil(max(0.0, retry_after_s) * 1000)
        limiter = self._limiter
        if status == 418:
            if until_ms is None:
                until_ms = now_ms + _DEFAULT_BAN_MS
            shown = limiter.on_418(Pool.SPOT, until_ms).until_ms if limiter else until_ms
            logger.error("%s: IP banned by Binance until %d (server ms)", self.name, shown)
            self._reports.append(IpBanned(client=self.client, pool=Pool.SPOT.value, until_ms=shown))
            return until_ms
        if limiter is not None:
            wait_s = None if until_ms is None else max(0.0, (until_ms - now_ms) / 1000)
            paused_until = limiter.on_429(Pool.SPOT, wait_s, code=code).until_ms
        else:
            paused_until = until_ms if until_ms is not None else now_ms + _DEFAULT_PAUSE_MS
        logger.warning("%s: rate limited by Binance until %d (server ms)", self.name, paused_until)
        self._reports.append(
            RateLimited(client=self.client, pool=Pool.SPOT.value, until_ms=paused_until, code=code)
        )
        return until_ms

    def _rejected(self, exc: ConnectionRejected) -> _End:
        status = exc.status_code
        if status not in (418, 429):
            return super()._rejected(exc)
        headers = {
            bytes(name).decode("latin-1"): bytes(value).decode("latin-1")
            for name, value in exc.headers
        }
        error = BinanceError.from_response(
            status, exc.body or b"", headers, method="GET", path=urlsplit(self.url).path
        )
        until_ms = self._rate_limit(
            status,
            error.code,
            retry_after_s=error.retry_after_s,
            until_ms=error.banned_until_ms if status == 418 else None,
        )
        retry_after_s = None
        if until_ms is not None:
            retry_after_s = max(0.0, (until_ms - self._server_time_ms()) / 1000)
        detail = f" {error.code} {error.message}" if error.code is not None else ""
        return _End(f"handshake refused: HTTP {status}{detail}", retry_after_s=retry_after_s)

    def _reply(self, link: _Link, message: dict[str, Any], text: str) -> bool:
        if "id" not in message or ("result" not in message and "error" not in message):
            return False
        request_id = message.get("id")
        rate_limits = message.get("rateLimits")
        if self._limiter is not None and isinstance(rate_limits, list):
            self._limiter.observe_rate_limits(
                Pool.SPOT,
                [entry for entry in rate_limits if isinstance(entry, dict)],
            )
        pending = None
        if isinstance(request_id, int) and not isinstance(request_id, bool):
            pending = link.pending.pop(request_id, None)
        if pending is None:
            code, reason, _ = _error_fields(message.get("error"))
            if request_id is None and code in AUTH_ERROR_CODES:
                # Binance revoked the session (e.g. the key was deleted): {"id": null, ...}.
                status = message.get("status")
                status = status if isinstance(status, int) else 0
                link.finish(self._refusal(_Refused("the session", status, code, reason, None)))
            else:
                logger.warning("%s: unexpected reply %.300s", link.name, text)
            return True
        if link.live:
            # Binance answers on the connection that carries the events: every event sent
            # before the request arrived has been read (and handed on) before this reply.
            link.known_good_ms = max(link.known_good_ms, pending.sent_ms)
        pending.reply = message
        pending.done.set()
        return True

    def _terminal(self, message: dict[str, Any]) -> _End | None:
        event = message.get("event")
        if not isinstance(event, dict):
            return None
        kind = event.get("e")
        if kind == "eventStreamTerminated":
            return _End("eventStreamTerminated", planned=True)
        if kind == "serverShutdown" and "subscriptionId" not in message:
            return _End("server announced a shutdown (serverShutdown)", planned=True)
        return None

    def _refusal(self, refused: _Refused) -> _End:
        """An error reply as the link's end: credentials refused are fatal; a rate limit
        waits for Binance's ``retryAfter``; anything else is retried with backoff."""
        code = refused.code
        shown = f"{code} {refused.message}" if code is not None else refused.message
        words = f"{refused.method} refused: {shown}"
        if code in AUTH_ERROR_CODES:
            hint = AUTH_ERROR_CODES[code]
            if code == -1022:
                key_type = self._signer.key_type
                if key_type is KeyType.HMAC:
                    hint = (
                        f"the API secret does not match the API key {_mask(self._api_key)} "
                        "(Binance could not verify the HMAC signature)"
                    )
                else:
                    hint = (
                        f"the {key_type.value} private key does not match the public key "
                        f"registered with Binance for the API key {_mask(self._api_key)}"
                    )
            fatal = UserStreamAuthError(self.client, refused.method, code, refused.message, hint)
            return _End(words, fatal=fatal)
        retry_after_s = None
        if refused.retry_after_ms is not None:
            retry_after_s = max(0.0, (refused.retry_after_ms - self._server_time_ms()) / 1000)
        return _End(words, retry_after_s=retry_after_s)


# ---------------------------------------------------------------------------------- futures


class FuturesUserSession(_Session):
    """A USD-M or COIN-M account's user-data stream over a listen key (see the module
    docstring).

    Args:
        client: the ``[[clients]]`` name, stamped on every record.
        account_type: ``USDT_FUTURES`` or ``COIN_FUTURES``.
        base: the user-stream base (:attr:`Endpoints.ws_user`; USD-M: the ``/private``
            route).
        rest: calls the listen-key endpoint (:data:`ListenKeyRest`; :func:`rest_caller`
            adapts the REST client).
        frames: where every event frame goes (awaited, at most ``handoff_timeout_s``).
        emit: awaited with each report (:class:`StreamConnected`, :class:`UserStreamStarted`,
            :class:`UserStreamGap`, :class:`StreamDisconnected`, :class:`UserStreamStopped`).
        settings: behaviour.
        name: prefix of connection names (default ``<client>/user``).
        rng: draws the backoff jitter (default: seeded from ``name``).
        clock: nanoseconds since the epoch, for ``received_ns`` and gaps (default wall clock).
        delete_on_close: :meth:`aclose` deletes the listen key. Binance keeps one key per
            account, so another process streaming the same account loses its stream too;
            set False when the account is shared.
        connect: opens a WebSocket (default trio-websocket with the settings' bounds).
        lost_since: ``(from_ms, reason)``: user data may already be missing since this local
            wall-clock millisecond; the first connection that goes live reports it as a
            :class:`UserStreamGap` before its first frame.
    """

    KIND: ClassVar[str] = "listen_key"
    PINGS: ClassVar[bool] = True

    def __init__(
        self,
        *,
        client: str,
        account_type: AccountType,
        base: str,
        rest: ListenKeyRest,
        frames: trio.abc.SendChannel[StreamFrame],
        emit: Emit,
        settings: UserSessionSettings | None = None,
        name: str | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], int] = time.time_ns,
        delete_on_close: bool = True,
        connect: Connector | None = None,
        lost_since: tuple[int, str] | None = None,
    ) -> None:
        super().__init__(
            client=client,
            frames=frames,
            emit=emit,
            settings=settings,
            name=name,
            rng=rng,
            clock=clock,
            connect=connect,
            lost_since=lost_since,
        )
        row = LISTEN_KEY_PATHS.get(account_type)
        if row is None:
            raise ValueError(
                f"{client}: {account_type.value} has no listen keys; Spot user data uses "
                "SpotUserSession"
            )
        self.account_type = account_type
        self.base = base.rstrip("/")
        self.path, self._url_template = row
        self._rest = rest
        self._delete_on_close = delete_on_close
        self._key: str | None = None
        #: trio time of the key's last creation or extension.
        self._extended_at = -math.inf

    @classmethod
    def for_endpoints(
        cls,
        endpoints: Endpoints,
        *,
        rest: ListenKeyRest,
        frames: trio.abc.SendChannel[StreamFrame],
        emit: Emit,
        **options: Any,
    ) -> FuturesUserSession:
        """The session of a resolved futures client config (see
        :func:`actors.binance.venues.resolve`); ``options`` are the remaining constructor
        arguments. The client's proxy applies unless ``settings`` name one.

        Raises:
            ValueError: the client is a Spot client.
        """
        if endpoints.ws_user is None:
            raise ValueError(
                f"{endpoints.client}: {endpoints.account_type.value} has no listen-key user "
                "stream; Spot user data uses SpotUserSession"
            )
        return cls(
            client=endpoints.client,
            account_type=endpoints.account_type,
            base=endpoints.ws_user,
            rest=rest,
            frames=frames,
            emit=emit,
            **_with_proxy(endpoints, options),
        )

    def stream_url(self, listen_key: str) -> str:
        """The user-stream URL of ``listen_key``."""
        return self._url_template.format(base=self.base, key=quote(listen_key, safe=""))

    async def _prepare(self, link: _Link) -> str:
        body = await self._call(link, "POST")
        key = body.get("listenKey")
        if not isinstance(key, str) or not key:
            await _abandon(link, _End(f"POST {self.path} answered without a listenKey"))
        if key != self._key and self._key is not None:
            logger.info("%s: new listen key %s...", link.name, key[:4])
        self._key = key
        self._extended_at = trio.current_time()
        return self.stream_url(key)

    async def _converse(self, link: _Link, ws: WebSocket) -> None:
        # A stream that accepted the key carries the account's events from now on.
        await self._go_live(link)
        await self._keepalive_loop(link)

    async def _keepalive_loop(self, link: _Link) -> None:
        """``PUT`` every ``keepalive_every_s``; ``-1125`` replaces the key at once; other
        failures are retried every ``keepalive_retry_s`` until the key would have expired."""
        settings = self.settings
        due = self._extended_at + settings.keepalive_every_s
        while True:
            await trio.sleep_until(due)
            try:
                await self._call_rest("PUT")
            except (BinanceError, RestCallError, trio.TooSlowError, OSError) as exc:
                end = self._rest_end("PUT", exc)
                if end.fatal is not None or _code_of(exc) == INVALID_LISTEN_KEY:
                    await _abandon(link, end)
                now = trio.current_time()
                if now - self._extended_at >= settings.listen_key_validity_s:
                    await _abandon(
                        link,
                        _End(
                            f"listen key not extended for {settings.listen_key_validity_s:g} s "
                            f"({end.reason})",
                            planned=True,
                        ),
                    )
                logger.warning(
                    "%s: keepalive failed (%s); retry in %g s",
                    link.name,
                    end.reason,
                    settings.keepalive_retry_s,
                )
                due = now + settings.keepalive_retry_s
                continue
            self._extended_at = trio.current_time()
            due = self._extended_at + settings.keepalive_every_s

    async def _call(self, link: _Link, method: str) -> Mapping[str, Any]:
        """One listen-key call; a failure finishes the link."""
        try:
            return await self._call_rest(method)
        except (BinanceError, RestCallError, trio.TooSlowError, OSError) as exc:
            await _abandon(link, self._rest_end(method, exc))

    async def _call_rest(self, method: str) -> Mapping[str, Any]:
        with trio.fail_after(self.settings.rest_timeout_s):
            return await self._rest(method, self.path)

    def _rest_end(self, method: str, exc: Exception) -> _End:
        """A failed listen-key call as a link's end."""
        request = f"{method} {self.path}"
        if isinstance(exc, trio.TooSlowError):
            return _End(f"{request}: no answer within {self.settings.rest_timeout_s:g} s")
        code = _code_of(exc)
        if isinstance(exc, (BinanceError, RestCallError)):
            message = exc.message
            status = f"HTTP {exc.status}" if exc.status else "no answer"
            detail = f"{status} {code} {message}" if code is not None else f"{status}: {message}"
        else:
            message = detail = f"{type(exc).__name__}: {exc}"
        reason = f"{request} failed: {detail}"
        if code is not None and code in AUTH_ERROR_CODES:
            fatal = UserStreamAuthError(self.client, request, code, message, AUTH_ERROR_CODES[code])
            return _End(reason, fatal=fatal)
        if code == INVALID_LISTEN_KEY:
            return _End(f"{request}: the listen key no longer exists (-1125)", planned=True)
        retry_after_s = None
        if isinstance(exc, (BinanceError, RestCallError)):
            retry_after_s = exc.retry_after_s
        return _End(reason, retry_after_s=retry_after_s)

    def _rejected(self, exc: ConnectionRejected) -> _End:
        body = exc.body or b""
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        code = data.get("code") if isinstance(data, dict) else None
        if code == INVALID_LISTEN_KEY:
            return _End("stream refused the listen key (-1125)", planned=True)
        return _End(f"handshake refused: HTTP {exc.status_code}")

    def _terminal(self, message: dict[str, Any]) -> _End | None:
        if message.get("e") == "listenKeyExpired":
            return _End("listen key expired (listenKeyExpired)", planned=True)
        return None

    def _shown(self, url: str) -> str:
        key = self._key
        if key and key in url:
            return url.replace(key, key[:4] + "...")
        return url

    async def _on_stop(self) -> None:
        key, self._key = self._key, None
        if key is None or not self._delete_on_close:
            return
        try:
            await self._call_rest("DELETE")
        except (BinanceError, RestCallError, trio.TooSlowError, OSError) as exc:
            logger.warning(
                "%s: DELETE %s failed (%s); the key expires within %g s",
                self.name,
                self.path,
                self._rest_end("DELETE", exc).reason,
                self.settings.listen_key_validity_s,
            )


def _code_of(exc: Exception) -> int | None:
    """Binance's code carried by a listen-key call's failure."""
    if isinstance(exc, (BinanceError, RestCallError)):
        return exc.code
    return None
