"""The REST client of one ``[[clients]]`` entry: rate-limited, signed, timed, classified.

:meth:`RestClient.call` turns a :class:`~events.connectivity.RestRequest` (journaled unsigned)
into a :class:`~events.connectivity.RestResponse`; it never raises for anything Binance or the
network does. One call goes:

1. **Cost** from the endpoint table (:mod:`actors.binance.endpoints`). A request tern has no
   row for is answered ``failed`` at once: nothing is sent that cannot be accounted for.
2. **Admission** by the :class:`~actors.binance.ratelimit.RateLimiter`, waiting at most
   ``admit_timeout_s``. While Binance bans the IP (418) requests fail at once instead of
   queueing behind the ban.
3. **Then**, inside the admission, the parameters are completed with a fresh ``timestamp``
   (server time: local clock plus the measured offset) and ``recvWindow`` for signed
   endpoints, percent-encoded once, and the exact bytes sent are signed: the query string for
   GET and DELETE, the form body for POST and PUT. ``signature`` goes last; the key goes in
   ``X-MBX-APIKEY``. Stamping after the wait is what keeps a queued request from meeting
   ``-1021`` (NautilusTrader stamps before it; its issue #917).
4. **One HTTP exchange** on a keep-alive connection, bounded by ``trio.fail_after(timeout_s)``.
5. **Feedback**: the ``X-MBX-USED-WEIGHT-*``/``X-MBX-ORDER-COUNT-*`` headers correct the
   limiter; ``Date`` is checked against the clock offset.
6. **Classification** (:mod:`actors.binance.errors`): 429 pauses the pool for
   ``Retry-After`` (a :class:`~events.connectivity.RateLimited` record) and reads are sent
   again after the pause; 418 halts the pool (:class:`~events.connectivity.IpBanned`), no
   retry; ``-1021`` resynchronises the clock (:class:`~events.connectivity.ClockOffset`) and
   sends once more; retryable failures are retried up to ``max_retries`` times with capped
   exponential backoff (``retry_delay_initial_ms`` .. ``retry_delay_max_ms``) and seeded
   jitter; an order or cancel whose fate is unknown (``-1006``, ``-1007``, 5xx, timeout) is
   answered ``unknown`` at once and never sent again blindly.

Records go to the ``emit`` callback. Nothing the client produces (responses, records, log
lines, exception texts) holds the API key, the secret, a signature or a signed query string.
Requests go through httpx's connection-pool transport directly: ``httpx.AsyncClient`` would
add cookies, redirects and auth handling tern does not want, ~70 µs per call, and an INFO log
line naming every (signed) URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import quote

import attrs
import httpx
import orjson
import trio

from actors.binance.clock import ClockSyncError, ServerClock, TimeSample
from actors.binance.costs import Cost, Pool
from actors.binance.credentials import Credentials, CredentialsError, load_credentials
from actors.binance.endpoints import Endpoint, UnknownEndpoint, endpoint
from actors.binance.errors import BinanceError, ErrorKind, select_headers
from actors.binance.ratelimit import CostExceedsLimit, RateLimiter
from actors.binance.signing import Signer, load_signer, rest_payload
from actors.binance.venues import resolve
from actors.config import AccountType, ClientConfig
from events.base import Event
from events.connectivity import IpBanned, RateLimited, RestRequest, RestResponse

__all__ = [
    "DEFAULT_ADMIT_TIMEOUT_S",
    "DEFAULT_TIMEOUT_S",
    "TIME_PATHS",
    "RestClient",
    "open_rest_client",
]

logger = logging.getLogger("tern.binance.rest")

#: Per-attempt bound on one HTTP exchange. Binance's own backend timeout is 10 s (``-1007``).
DEFAULT_TIMEOUT_S = 10.0
#: The longest a request waits for rate-limit admission before it is answered ``failed``.
DEFAULT_ADMIT_TIMEOUT_S = 30.0
#: A ban with no readable end is assumed to last this long (Binance's shortest ban).
_DEFAULT_BAN_MS = 120_000

#: The time endpoint of each product.
TIME_PATHS: Mapping[AccountType, str] = {
    AccountType.SPOT: "/api/v3/time",
    AccountType.USDT_FUTURES: "/fapi/v1/time",
    AccountType.COIN_FUTURES: "/dapi/v1/time",
}
#: Params the client adds itself; a request that carries them is refused.
_RESERVED = ("timestamp", "recvWindow", "signature")
_FORM = "application/x-www-form-urlencoded"
_HEADERS = {"User-Agent": "tern", "Accept-Encoding": "gzip, deflate"}
_SIGNATURE_TEXT = re.compile(r"signature=[^&\s\"']*")


@attrs.frozen
class _Reply:
    """One HTTP answer."""

    status: int
    headers: httpx.Headers
    content: bytes
    latency_us: int


@attrs.frozen
class _Sent:
    """One attempt that went out: its 2xx ``reply`` or its classified ``error``.

    ``generation`` is the clock measurement its timestamp was built with; ``sent_ms`` and
    ``received_ms`` are local times around the exchange.
    """

    reply: _Reply | None
    error: BinanceError | None
    generation: int
    sent_ms: int = 0
    received_ms: int = 0
    latency_us: int = 0


@attrs.frozen
class _Refused:
    """The request was refused locally; nothing was sent."""

    message: str


class RestClient:
    """Binance REST for one client config (see the module docstring for a call's life).

    Args:
        config: the client's config: account type, environment and URL overrides,
            ``proxy_url``, ``key_type``, ``recv_window_ms``, ``max_retries``,
            ``retry_delay_initial_ms``, ``retry_delay_max_ms``.
        limiter: the rate limiter (share one between the clients that share an IP and an
            account); default: a new one with Binance's default limits on ``clock``. Give a
            shared limiter a server clock (:meth:`ServerClock.now_ms`) as its ``clock``.
        clock: the server clock; default: a new :class:`ServerClock` on the wall clock.
        credentials: the key and secret; default: :func:`load_credentials` of ``config``.
            Without any, only endpoints of security NONE can be called (others are answered
            ``failed`` with the reason the credentials could not be loaded).
        emit: receives every :class:`RateLimited`, :class:`IpBanned` and
            :class:`~events.connectivity.ClockOffset` record.
        timeout_s: the bound on one HTTP exchange.
        admit_timeout_s: the bound on waiting for rate-limit admission.
        seed: seeds the retry jitter (with the client's name), for reproducible delays.
        max_connections: keep-alive connections kept open to the REST host.
        environ: environment variables for :func:`load_credentials` (default ``os.environ``).

    Raises:
        VenueError: the config names a product or URL tern cannot use.
        SigningKeyError: the secret is not a usable key.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        limiter: RateLimiter | None = None,
        clock: ServerClock | None = None,
        credentials: Credentials | None = None,
        emit: Callable[[Event], None] | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        admit_timeout_s: float = DEFAULT_ADMIT_TIMEOUT_S,
        seed: int = 0,
        max_connections: int = 64,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if timeout_s <= 0 or admit_timeout_s <= 0:
            raise ValueError("timeout_s and admit_timeout_s must be positive")
        self.config = config
        self.name = config.name
        self.account_type = config.account_type
        urls = resolve(config)
        self.base_url = urls.rest
        self.timeout_s = timeout_s
        self.admit_timeout_s = admit_timeout_s
        self.clock = clock if clock is not None else ServerClock(config.name)
        self.limiter = limiter if limiter is not None else RateLimiter(clock=self.clock.now_ms)
        self._emit = emit
        self._rng = random.Random(f"{seed}:{config.name}")
        self._no_credentials = ""
        if credentials is None:
            try:
                credentials = (
                    load_credentials(config)
                    if environ is None
                    else load_credentials(config, environ)
                )
            except CredentialsError as exc:
                self._no_credentials = str(exc)
        self._api_key = credentials.api_key if credentials is not None else None
        self._secret = credentials.api_secret if credentials is not None else None
        self._signer: Signer | None = (
            load_signer(credentials.api_secret, config.key_type) if credentials else None
        )
        # The limiter's account name for order windows: a fingerprint, never the key.
        self.account = (
            "key-" + hashlib.sha256(self._api_key.encode()).hexdigest()[:16]
            if self._api_key
            else None
        )
        self._time_path = TIME_PATHS[config.account_type]
        self._time_row = endpoint(config.account_type, "GET", self._time_path)
        # httpx's transport (connection pool with keep-alive), without httpx.AsyncClient's
        # cookies, redirects, auth and request logging: ~70 us less per call, and no log line
        # that names a signed URL. No httpx timeouts: trio.fail_after bounds each exchange.
        # The proxy is the config's proxy_url only, never the environment's.
        self._transport = httpx.AsyncHTTPTransport(
            proxy=urls.proxy_url,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def __repr__(self) -> str:
        return f"RestClient(name={self.name!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the keep-alive connections (bounded; safe to call twice)."""
        with trio.move_on_after(5, shield=True):
            await self._transport.aclose()

    # ------------------------------------------------------------------------------- clock

    async def sync_clock(self, source: str = "time") -> None:
        """Measure the server clock offset now and emit the :class:`ClockOffset` record.

        Raises:
            ClockSyncError: no time-endpoint sample could be taken.
        """
        self._publish(await self.clock.sync(self._probe, source=source))

    async def keep_clock_synced(self) -> None:
        """Resynchronise whenever :meth:`ServerClock.wait_resync_due` says so, until
        cancelled. A failed resync keeps the offset in force and is retried after the
        clock's ``min_resync_gap_s``."""
        while True:
            source = await self.clock.wait_resync_due()
            try:
                self._publish(await self.clock.sync(self._probe, source=source))
            except ClockSyncError as exc:
                logger.warning("client %s: clock resync failed: %s", self.name, exc)

    async def _probe(self) -> TimeSample:
        """One time-endpoint round trip through the limiter (a clock :data:`Probe`)."""
        row = self._time_row
        result = await self._attempt(row, row.cost({}), {}, signed=False, with_key=False)
        if isinstance(result, _Refused):
            raise BinanceError.no_answer(
                result.message, written=False, method="GET", path=self._time_path
            )
        if result.error is not None:
            raise result.error
        reply = result.reply
        assert reply is not None
        try:
            server_ms = orjson.loads(reply.content)["serverTime"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            server_ms = None
        if not isinstance(server_ms, int) or isinstance(server_ms, bool):
            raise BinanceError(
                reply.status,
                None,
                "the time endpoint answered without an integer serverTime",
                reply.content.decode("utf-8", errors="replace")[:200],
                kind=ErrorKind.RETRYABLE,
                method="GET",
                path=self._time_path,
            )
        return TimeSample(
            server_ms=server_ms, sent_ms=result.sent_ms, received_ms=result.received_ms
        )

    # -------------------------------------------------------------------------------- call

    async def call(self, request: RestRequest) -> RestResponse:
        """Send ``request`` and report what came of it; never raises for venue or network
        failures (outcomes ``ok``, ``rejected``, ``unknown``, ``failed``; see
        :class:`RestResponse`).

        Cancellation propagates: a request cancelled after it was written may have taken
        effect, exactly as an ``unknown`` outcome.
        """
        method = request.method.upper()
        if request.client != self.name:
            return self._failed(
                request, f"request for client {request.client!r} sent to client {self.name!r}"
            )
        try:
            row = endpoint(self.account_type, method, request.path)
            cost = row.cost(request.params)
        except (UnknownEndpoint, ValueError) as exc:
            return self._failed(request, str(exc))
        refusal = self._check_params(request.params)
        if refusal is not None:
            return self._failed(request, refusal)
        signed = row.security.signed(self.account_type)
        with_key = row.security.needs_key
        if with_key and self._signer is None:
            return self._failed(
                request,
                f"{method} {request.path} needs an API key: {self._no_credentials}",
            )
        retries_left = self.config.max_retries
        resynced = False
        attempts = 0
        while True:
            result = await self._attempt(row, cost, request.params, signed, with_key)
            if isinstance(result, _Refused):
                return self._failed(request, f"{result.message}; nothing was sent", attempts)
            attempts += 1
            error = result.error
            if error is None:
                reply = result.reply
                assert reply is not None
                return RestResponse(
                    client=self.name,
                    call_id=request.call_id,
                    method=method,
                    path=request.path,
                    outcome="ok",
                    status=reply.status,
                    headers=select_headers(reply.headers),
                    body=reply.content.decode("utf-8", errors="replace"),
                    latency_us=reply.latency_us,
                    attempts=attempts,
                )
            kind = error.kind
            if kind is ErrorKind.TIMESTAMP and not resynced:
                resynced = True
                if error.code == -1021:
                    try:
                        record = await self.clock.resync(
                            self._probe, source="-1021", after_generation=result.generation
                        )
                    except ClockSyncError as exc:
                        logger.warning("client %s: resync after -1021 failed: %s", self.name, exc)
                        return self._finished(request, error, attempts, result.latency_us)
                    if record is not None:
                        self._publish(record)
                continue
            if kind is ErrorKind.RATE_LIMITED and not error.mutating and retries_left > 0:
                retries_left -= 1  # the limiter holds the next admission until the pause ends
                continue
            if kind is ErrorKind.RETRYABLE and retries_left > 0:
                retry = self.config.max_retries - retries_left + 1
                retries_left -= 1
                delay = self._backoff_s(retry)
                logger.info(
                    "client %s: %s; retry %d of %d in %.3f s",
                    self.name,
                    error,
                    retry,
                    self.config.max_retries,
                    delay,
                )
                await trio.sleep(delay)
                continue
            return self._finished(request, error, attempts, result.latency_us)

    # ----------------------------------------------------------------------------- attempt

    async def _attempt(
        self,
        row: Endpoint,
        cost: Cost,
        params: Mapping[str, str],
        signed: bool,
        with_key: bool,
    ) -> _Sent | _Refused:
        """Admission, then stamp, encode, sign and send once; :class:`_Refused` when nothing
        was sent."""
        pool = cost.pool
        banned = self._ban_in_force(pool)
        if banned is not None:
            return _Refused(
                f"Binance banned this IP from the {pool.value} pool until {banned} "
                "(server ms, HTTP 418)"
            )
        admit = self.limiter.admit(cost, self.account)
        admission = None
        try:
            with trio.move_on_after(self.admit_timeout_s):
                admission = await admit.__aenter__()
        except CostExceedsLimit as exc:
            return _Refused(str(exc))
        if admission is None:
            return _Refused(f"not admitted by the rate limiter within {self.admit_timeout_s:g} s")
        try:
            generation = self.clock.generation
            query, body = self._encode(row.method, params, signed)
            headers = dict(_HEADERS)
            if with_key:
                headers["X-MBX-APIKEY"] = self._api_key or ""
            if body:
                headers["Content-Type"] = _FORM
            url = f"{self.base_url}{row.path}?{query}" if query else self.base_url + row.path
            written = False

            async def trace(event: str, info: dict[str, Any]) -> None:
                nonlocal written
                if event.endswith("send_request_headers.started"):
                    written = True

            sent_ms = self.clock.local_ms()
            started = time.perf_counter_ns()
            try:
                http_request = httpx.Request(
                    row.method,
                    url,
                    headers=headers,
                    content=body.encode("ascii") if body else None,
                    extensions={"trace": trace},
                )
                with trio.fail_after(self.timeout_s):
                    response = await self._transport.handle_async_request(http_request)
                    try:
                        content = await response.aread()
                    finally:
                        with trio.move_on_after(1, shield=True):
                            await response.aclose()
            except trio.TooSlowError:
                reason = f"no answer within {self.timeout_s:g} s"
                error = BinanceError.no_answer(
                    reason, written=written, method=row.method, path=row.path
                )
                return _Sent(None, error, generation, latency_us=_since(started))
            except httpx.HTTPError as exc:
                reason = self._redact(f"{type(exc).__name__}: {exc}")
                error = BinanceError.no_answer(
                    reason, written=written, method=row.method, path=row.path
                )
                return _Sent(None, error, generation, latency_us=_since(started))
            received_ms = self.clock.local_ms()
            latency_us = _since(started)
        finally:
            await admit.__aexit__(None, None, None)

        status = response.status_code
        self.limiter.observe(pool, response.headers, self.account, sent_ms=admission.admitted_ms)
        self.clock.check_date(response.headers.get("date"), sent_ms, received_ms)
        logger.debug(
            "client %s: %s %s -> HTTP %d in %d us",
            self.name,
            row.method,
            row.path,
            status,
            latency_us,
        )
        if 200 <= status < 300:
            reply = _Reply(status, response.headers, content, latency_us)
            return _Sent(reply, None, generation, sent_ms, received_ms, latency_us)
        error = BinanceError.from_response(
            status, content, response.headers, method=row.method, path=row.path
        )
        self._limit_feedback(pool, error)
        return _Sent(None, error, generation, sent_ms, received_ms, latency_us)

    def _encode(self, method: str, params: Mapping[str, str], signed: bool) -> tuple[str, str]:
        """``(query, body)``: percent-encoded, ``signature`` last when ``signed``."""
        parts = [
            f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params.items()
        ]
        if signed:
            parts.append(f"recvWindow={self.config.recv_window_ms}")
            parts.append(f"timestamp={self.clock.now_ms()}")
        encoded = "&".join(parts)
        if signed:
            assert self._signer is not None
            signature = self._signer.sign(rest_payload(encoded.encode("ascii"), b""))
            encoded = f"{encoded}&signature={quote(signature, safe='')}"
        if method in ("GET", "DELETE"):
            return encoded, ""
        return "", encoded

    def _check_params(self, params: Mapping[str, str]) -> str | None:
        for name, value in params.items():
            if name in _RESERVED:
                return f"param {name!r} is added by the client at sending time; leave it out"
            if not isinstance(name, str) or not isinstance(value, str):
                return (
                    f"param {name!r} is a {type(value).__name__}; params are text, exactly as "
                    "they go on the wire"
                )
        return None

    # ------------------------------------------------------------------------------ limits

    def _ban_in_force(self, pool: Pool) -> int | None:
        if self.limiter.paused_until(pool) is None:
            return None
        return self.limiter.stats(pool).banned_until_ms

    def _limit_feedback(self, pool: Pool, error: BinanceError) -> None:
        """Tell the limiter about a 429 or 418 and emit the record."""
        if error.kind is ErrorKind.RATE_LIMITED:
            paused = self.limiter.on_429(pool, error.retry_after_s, code=error.code)
            self._publish(
                RateLimited(
                    client=self.name,
                    pool=pool.value,
                    until_ms=paused.until_ms,
                    code=error.code,
                )
            )
        elif error.kind is ErrorKind.IP_BANNED:
            until = error.banned_until_ms
            if until is None:
                after = error.retry_after_s
                wait_ms = _DEFAULT_BAN_MS if after is None else int(after * 1000)
                until = self.clock.now_ms() + wait_ms
            banned = self.limiter.on_418(pool, until)
            self._publish(IpBanned(client=self.name, pool=pool.value, until_ms=banned.until_ms))

    # ----------------------------------------------------------------------------- helpers

    def _backoff_s(self, retry: int) -> float:
        """Capped exponential backoff with equal jitter: half fixed, half seeded-random."""
        initial = self.config.retry_delay_initial_ms
        ceiling = self.config.retry_delay_max_ms
        delay_ms = min(initial * 2 ** min(retry - 1, 30), ceiling)
        return (delay_ms / 2 + self._rng.uniform(0, delay_ms / 2)) / 1000

    def _finished(
        self, request: RestRequest, error: BinanceError, attempts: int, latency_us: int
    ) -> RestResponse:
        """The response for a request that ends with ``error`` (``latency_us``: its last
        attempt's exchange)."""
        kind = error.kind
        if kind is ErrorKind.UNKNOWN_OUTCOME:
            outcome = "unknown"
        elif kind is ErrorKind.RETRYABLE and (error.status == 0 or error.code is None):
            outcome = "failed"  # no definite answer, and a read or a request never sent
        else:
            outcome = "rejected"
        return RestResponse(
            client=self.name,
            call_id=request.call_id,
            method=request.method.upper(),
            path=request.path,
            outcome=outcome,
            status=error.status,
            headers=error.headers,
            body=self._redact(error.body),
            code=error.code,
            message=self._redact(error.message),
            latency_us=latency_us,
            attempts=attempts,
        )

    def _failed(self, request: RestRequest, message: str, attempts: int = 0) -> RestResponse:
        return RestResponse(
            client=self.name,
            call_id=request.call_id,
            method=request.method.upper(),
            path=request.path,
            outcome="failed",
            status=0,
            message=self._redact(message),
            attempts=attempts,
        )

    def _publish(self, record: Event) -> None:
        if self._emit is not None:
            self._emit(record)

    def _redact(self, text: str) -> str:
        """``text`` without the key, the secret or any ``signature=`` value."""
        if not text:
            return text
        for secret in (self._api_key, self._secret):
            if secret and len(secret) >= 8 and secret in text:
                text = text.replace(secret, "<redacted>")
        return _SIGNATURE_TEXT.sub("signature=<redacted>", text)


@contextlib.asynccontextmanager
async def open_rest_client(
    config: ClientConfig, *, sync_clock: bool = True, **options: Any
) -> AsyncIterator[RestClient]:
    """A :class:`RestClient` (``options`` as its constructor's) with its clock measured and
    kept current by a background task; the connections close on exit.

    With ``sync_clock`` the offset is measured before the client is handed out, so the
    first signed request is already stamped with server time.

    Raises:
        ClockSyncError: ``sync_clock`` and the time endpoint could not be reached.
    """
    client = RestClient(config, **options)
    try:
        if sync_clock:
            await client.sync_clock()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.keep_clock_synced)
                try:
                    yield client
                finally:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:  # one failure: raise it, not a group
                inner = group.exceptions[0]
                raise inner from inner.__cause__
            raise
    finally:
        await client.aclose()


def _since(started_ns: int) -> int:
    """Microseconds since ``started_ns`` (``perf_counter_ns``)."""
    return (time.perf_counter_ns() - started_ns) // 1000
