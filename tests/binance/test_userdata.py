"""User-data sessions: Spot over the WS-API, USD-M and COIN-M over listen keys.

End-to-end tests run the local venue on a loopback port (real clock, a deadline each);
timing logic (keepalive, probes, backoff, rotation) runs against in-memory fakes under
``autojump_clock``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import orjson
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trio_websocket import CloseReason, ConnectionClosed, ConnectionRejected, open_websocket_url

from actors.binance.costs import Pool
from actors.binance.errors import BinanceError, ErrorKind
from actors.binance.ratelimit import LimitKind, RateLimiter
from actors.binance.signing import load_signer
from actors.binance.userdata import (
    FuturesUserSession,
    RestCallError,
    SpotUserSession,
    UserSessionSettings,
    UserStreamAuthError,
    rest_caller,
)
from actors.binance.venues import resolve
from actors.config import AccountType, ClientConfig
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
from scenarios.venue.config import KeySpec, VenueConfig
from scenarios.venue.server import open_venue

DEADLINE = 10
#: Fast reconnects for tests on the real clock.
FAST = UserSessionSettings(backoff_initial_s=0.05, backoff_max_s=0.3)


class Collector:
    """One channel for frames *and* reports (``emit`` is the channel's ``send``), drained
    into :attr:`items`: what a consumer sees, in the order the session produced it."""

    def __init__(self, capacity: int = 1000) -> None:
        self.send, self._receive = trio.open_memory_channel[Event](capacity)
        self.items: list[Event] = []
        self._changed = trio.Event()

    async def emit(self, event: Event) -> None:
        await self.send.send(event)

    async def drain(self) -> None:
        async for item in self._receive:
            self.items.append(item)
            self._changed.set()
            self._changed = trio.Event()

    def of(self, kind: type[Event]) -> list[Any]:
        return [item for item in self.items if isinstance(item, kind)]

    def events(self) -> list[dict[str, Any]]:
        """The user events in the frames (Spot frames unwrapped)."""
        found = []
        for frame in self.of(StreamFrame):
            message = orjson.loads(frame.text)
            found.append(message.get("event", message))
        return found

    async def wait_for(self, predicate: Callable[[Any], bool], count: int = 1) -> list[Any]:
        while True:
            found = [item for item in self.items if predicate(item)]
            if len(found) >= count:
                return found
            await self._changed.wait()

    async def wait_event(self, kind: str, count: int = 1) -> list[StreamFrame]:
        return await self.wait_for(lambda item: is_event(item, kind), count)


def is_event(item: Event, kind: str) -> bool:
    if not isinstance(item, StreamFrame):
        return False
    message = orjson.loads(item.text)
    return message.get("event", message).get("e") == kind


def shape(items: list[Event]) -> list[str]:
    """Items as short labels: ``frame:balanceUpdate``, ``UserStreamGap``..."""
    labels = []
    for item in items:
        if isinstance(item, StreamFrame):
            message = orjson.loads(item.text)
            labels.append(f"frame:{message.get('event', message).get('e')}")
        else:
            labels.append(type(item).__name__)
    return labels


class Tap:
    """A real WebSocket whose sent messages are recorded."""

    def __init__(self, ws: Any, sent: list[dict[str, Any]]) -> None:
        self._ws = ws
        self._sent = sent

    async def get_message(self) -> str | bytes:
        return await self._ws.get_message()

    async def send_message(self, message: str | bytes) -> None:
        self._sent.append(orjson.loads(message))
        await self._ws.send_message(message)

    async def ping(self, payload: bytes | None = None) -> None:
        await self._ws.ping(payload)


class Recording:
    """A connector over trio-websocket that records URLs and requests."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.sent: list[dict[str, Any]] = []

    @contextlib.asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[Tap]:
        self.urls.append(url)
        async with open_websocket_url(url, connect_timeout=5, disconnect_timeout=1) as ws:
            yield Tap(ws, self.sent)

    def methods(self) -> list[str]:
        return [request["method"] for request in self.sent]


@contextlib.asynccontextmanager
async def running(session: Any, collector: Collector) -> AsyncIterator[None]:
    """Run ``session`` (started = live) with ``collector`` draining; close it after."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        await nursery.start(session.run)
        yield
        await session.aclose()
        nursery.cancel_scope.cancel()


# --- the local venue -----------------------------------------------------------------------


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE + 5):
        async with open_venue(VenueConfig(seed=3, tick_ms=50)) as running_venue:
            yield running_venue


@pytest.fixture
async def control(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as client:

        async def call(path: str, body: Mapping[str, Any] | None = None) -> Any:
            if body is None:
                response = await client.get(path)
            else:
                response = await client.post(path, json=dict(body))
            assert response.status_code == 200, response.text
            return response.json()

        yield call


@contextlib.asynccontextmanager
async def venue_rest(venue: Any, api_key: str) -> AsyncIterator[Any]:
    """The tests' listen-key REST function: httpx with ``X-MBX-APIKEY``."""
    headers = {"X-MBX-APIKEY": api_key}
    async with httpx.AsyncClient(base_url=venue.urls["rest"], headers=headers, timeout=5) as http:
        calls: list[str] = []

        async def rest(method: str, path: str) -> Mapping[str, Any]:
            calls.append(f"{method} {path}")
            response = await http.request(method, path)
            if response.status_code // 100 != 2:
                raise BinanceError.from_response(
                    response.status_code,
                    response.content,
                    response.headers,
                    method=method,
                    path=path,
                )
            return response.json()

        rest.calls = calls  # type: ignore[attr-defined]
        yield rest


def spot_session(venue: Any, collector: Collector, **options: Any) -> SpotUserSession:
    key = venue.first_key
    options.setdefault("signer", load_signer(key.secret))
    return SpotUserSession(
        client="spot",
        url=venue.urls["ws_api"]["spot"],
        api_key=key.api_key,
        frames=collector.send,
        emit=collector.emit,
        settings=options.pop("settings", FAST),
        **options,
    )


async def test_spot_hmac_session_subscribes_with_signature(venue, control) -> None:
    collector = Collector()
    recording = Recording()
    session = spot_session(venue, collector, connect=recording.connect)
    with trio.fail_after(DEADLINE):
        async with running(session, collector):
            assert session.live
            account = venue.first_key.api_key
            await control("/_venue/spot/fund", {"account": account, "asset": "USDT", "delta": "5"})
            (frame,) = await collector.wait_event("balanceUpdate")
            assert orjson.loads(frame.text)["subscriptionId"] == session.subscription_id
            assert orjson.loads(frame.text)["event"]["d"] == "5.00000000"
    assert recording.methods() == ["userDataStream.subscribe.signature"]
    params = recording.sent[0]["params"]
    assert sorted(params) == ["apiKey", "signature", "timestamp"]
    assert isinstance(params["timestamp"], int)
    assert shape(collector.items)[:2] == ["StreamConnected", "UserStreamStarted"]
    started = collector.of(UserStreamStarted)[0]
    assert (started.client, started.kind) == ("spot", "ws_api")
    assert frame.connection == started.connection
    assert collector.of(UserStreamGap) == []
    stopped = collector.of(StreamDisconnected)
    assert [(event.reason, event.reconnect_in_ms) for event in stopped] == [
        ("session stopped", None)
    ]


async def test_spot_ed25519_session_logs_on_then_subscribes(control) -> None:
    private = Ed25519PrivateKey.generate()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    config = VenueConfig(
        seed=4, tick_ms=50, keys=(KeySpec(api_key="ed-key", public_key_pem=public_pem),)
    )
    collector = Collector()
    recording = Recording()
    with trio.fail_after(DEADLINE):
        async with (
            open_venue(config) as venue,
            httpx.AsyncClient(base_url=venue.urls["rest"]) as http,
        ):
            endpoints = resolve(
                ClientConfig(
                    name="spot",
                    account_type=AccountType.SPOT,
                    base_url_http=venue.urls["rest"],
                    base_url_ws=venue.urls["ws"]["spot"],
                    base_url_ws_api=venue.urls["ws_api"]["spot"],
                )
            )
            session = SpotUserSession.for_endpoints(
                endpoints,
                api_key="ed-key",
                signer=load_signer(private_pem),
                frames=collector.send,
                emit=collector.emit,
                settings=FAST,
                connect=recording.connect,
            )
            async with running(session, collector):
                response = await http.post(
                    "/_venue/spot/fund", json={"account": "ed-key", "asset": "BTC", "delta": "1"}
                )
                assert response.status_code == 200
                await collector.wait_event("balanceUpdate")
    assert recording.methods() == ["session.logon", "userDataStream.subscribe"]
    assert sorted(recording.sent[0]["params"]) == ["apiKey", "signature", "timestamp"]
    assert "params" not in recording.sent[1]


async def test_spot_termination_resubscribes_and_reports_the_gap(venue, control) -> None:
    collector = Collector()
    recording = Recording()
    session = spot_session(venue, collector, connect=recording.connect)
    account = venue.first_key.api_key
    with trio.fail_after(DEADLINE):
        async with running(session, collector):
            first = session.connection
            await control("/_venue/spot/fund", {"account": account, "asset": "USDT", "delta": "1"})
            await collector.wait_event("balanceUpdate")
            await control("/_venue/user-stream/terminate", {"product": "spot", "account": account})
            (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
            # The new connection is announced before the gap (session.connection itself may
            # still be settling at this instant).
            assert collector.of(StreamConnected)[-1].connection not in (None, first)
            await control("/_venue/spot/fund", {"account": account, "asset": "USDT", "delta": "2"})
            await collector.wait_event("balanceUpdate", count=2)
    # A deposit also sends outboundAccountPosition; leave it out of the shape.
    labels = [label for label in shape(collector.items) if "outboundAccountPosition" not in label]
    assert labels == [
        "StreamConnected",
        "UserStreamStarted",
        "frame:balanceUpdate",
        "frame:eventStreamTerminated",
        "StreamDisconnected",
        "StreamConnected",
        "UserStreamStarted",
        "UserStreamGap",
        "frame:balanceUpdate",
        "StreamDisconnected",
    ]
    ended = collector.of(StreamDisconnected)[0]
    assert ended.connection == first
    assert ended.reason == "eventStreamTerminated"
    assert ended.reconnect_in_ms == 0  # planned: at once the first time
    frames = collector.of(StreamFrame)
    terminated = next(frame for frame in frames if is_event(frame, "eventStreamTerminated"))
    before = frames[: frames.index(terminated)]
    later = collector.of(StreamFrame)[frames.index(terminated) + 1 :]
    assert {frame.connection for frame in [*before, terminated]} == {first}
    assert {frame.connection for frame in later} == {session_connection_of(collector, 1)}
    # The gap runs from the last frame handed on before the interruption (the termination
    # frame itself does not count as known good) to the new subscription.
    assert gap.from_ms == before[-1].received_ns // 1_000_000
    assert gap.from_ms <= gap.to_ms <= later[0].received_ns // 1_000_000
    assert gap.reason == "eventStreamTerminated"
    assert recording.methods() == ["userDataStream.subscribe.signature"] * 2


def session_connection_of(collector: Collector, index: int) -> str:
    return collector.of(UserStreamStarted)[index].connection


async def test_spot_session_goes_through_the_rate_limiter(venue, control) -> None:
    collector = Collector()
    limiter = RateLimiter()
    session = spot_session(venue, collector, limiter=limiter)
    with trio.fail_after(DEADLINE):
        async with running(session, collector):
            stats = limiter.stats(Pool.SPOT)
            assert sum(stats.admitted.values()) == 2  # the connection and the subscribe
            # Connection (2) + userDataStream.subscribe.signature (2), as the venue counted.
            assert limiter.used(Pool.SPOT, LimitKind.REQUEST_WEIGHT, "1M") >= 4


#: Probes every 0.2 s, so that the venue's faults meet a WS-API request soon.
PROBING = UserSessionSettings(backoff_initial_s=0.05, backoff_max_s=0.3, probe_after_s=0.2)


async def test_spot_ws_api_429_pauses_the_spot_pool_and_is_reported(venue, control) -> None:
    collector = Collector()
    limiter = RateLimiter()
    session = spot_session(venue, collector, limiter=limiter, settings=PROBING)
    with trio.fail_after(DEADLINE):
        async with running(session, collector):
            assert limiter.paused_until(Pool.SPOT) is None
            # The venue answers the next Spot request (the session's next probe) with 429.
            await control("/_venue/faults/rate-limit", {"product": "spot", "count": 1})
            (limited,) = await collector.wait_for(lambda item: isinstance(item, RateLimited))
            assert (limited.client, limited.pool, limited.code) == ("spot", "spot", -1003)
            # Paused until Binance's retryAfter (the end of the weight window), REST included.
            assert limiter.paused_until(Pool.SPOT, now_ms=limited.until_ms - 1) == limited.until_ms
            assert limited.until_ms <= (time.time_ns() // 1_000_000 // 60_000 + 1) * 60_000 + 1
            assert session.live  # a refused probe does not end the connection
    assert [event.reason for event in collector.of(StreamDisconnected)] == ["session stopped"]


async def test_spot_ws_api_418_halts_the_spot_pool_until_the_ban_ends(venue, control) -> None:
    collector = Collector()
    limiter = RateLimiter()
    session = spot_session(venue, collector, limiter=limiter, settings=PROBING)
    with trio.fail_after(DEADLINE):
        async with running(session, collector):
            ban = await control("/_venue/faults/ban", {"seconds": 120})
            (banned,) = await collector.wait_for(lambda item: isinstance(item, IpBanned))
            assert (banned.client, banned.pool, banned.until_ms) == ("spot", "spot", ban["until"])
            assert limiter.paused_until(Pool.SPOT) == ban["until"]
            assert limiter.stats(Pool.SPOT).banned_until_ms == ban["until"]
            assert session.live


async def test_spot_handshake_refused_by_an_ip_ban_halts_the_pool(venue, control) -> None:
    collector = Collector()
    limiter = RateLimiter()
    session = spot_session(venue, collector, limiter=limiter)
    ban = await control("/_venue/faults/ban", {"seconds": 120})
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collector.drain)
            nursery.start_soon(session.run)
            (ended,) = await collector.wait_for(lambda item: isinstance(item, StreamDisconnected))
            assert limiter.paused_until(Pool.SPOT) == ban["until"]
            await session.aclose()  # during the wait for the ban's end: at once
            nursery.cancel_scope.cancel()
    assert ended.reason.startswith("handshake refused: HTTP 418 -1003 Way too much request weight")
    assert 115_000 <= ended.reconnect_in_ms <= 120_000  # not before the ban ends
    assert shape(collector.items)[:2] == ["IpBanned", "StreamDisconnected"]
    assert collector.of(IpBanned)[0].until_ms == ban["until"]


async def test_spot_wrong_secret_is_fatal_and_names_minus_1022(venue) -> None:
    collector = Collector()
    recording = Recording()
    session = spot_session(
        venue, collector, signer=load_signer("x" * 64), connect=recording.connect
    )
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(collector.drain)
            before_ms = time.time_ns() // 1_000_000
            with pytest.raises(UserStreamAuthError) as caught:
                await nursery.start(session.run)
            after_ms = time.time_ns() // 1_000_000
            await collector.send.aclose()  # the drain takes everything emitted, then ends
    error = caught.value
    assert error.code == -1022
    assert error.request == "userDataStream.subscribe.signature"
    assert "-1022" in str(error)
    assert "API secret does not match the API key" in str(error)
    assert venue.first_key.api_key not in str(error)
    assert len(recording.urls) == 1  # not retried
    (ended,) = collector.of(StreamDisconnected)
    assert "-1022" in ended.reason
    assert ended.reconnect_in_ms is None
    # Reconciliation is told, open-ended, that no user data comes: never live, so from now.
    assert shape(collector.items) == ["StreamDisconnected", "UserStreamStopped"]
    (stopped,) = collector.of(UserStreamStopped)
    assert (stopped.client, stopped.code) == ("spot", -1022)
    assert before_ms <= stopped.from_ms <= after_ms
    assert "-1022" in stopped.reason
    assert "API secret does not match the API key" in stopped.reason
    assert venue.first_key.api_key not in stopped.reason


async def test_spot_ed25519_key_that_does_not_match_is_fatal() -> None:
    registered = Ed25519PrivateKey.generate()
    public_pem = registered.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    config = VenueConfig(seed=4, keys=(KeySpec(api_key="ed-key", public_key_pem=public_pem),))
    collector = Collector()
    with trio.fail_after(DEADLINE):
        async with open_venue(config) as venue:
            session = SpotUserSession(
                client="spot",
                url=venue.urls["ws_api"]["spot"],
                api_key="ed-key",
                signer=load_signer(other.decode()),
                frames=collector.send,
                emit=collector.emit,
                settings=FAST,
            )
            with pytest.raises(UserStreamAuthError) as caught:
                await session.run()
    assert caught.value.code == -1022
    assert caught.value.request == "session.logon"
    assert "ed25519 private key does not match the public key" in str(caught.value)


# --- futures on the venue ------------------------------------------------------------------


def futures_session(
    venue: Any, rest: Any, collector: Collector, product: str = "usdm", **options: Any
) -> FuturesUserSession:
    account_type = AccountType.USDT_FUTURES if product == "usdm" else AccountType.COIN_FUTURES
    endpoints = resolve(
        ClientConfig(
            name=product,
            account_type=account_type,
            base_url_http=venue.urls["rest"],
            base_url_ws=venue.urls["ws"][product],
        )
    )
    return FuturesUserSession.for_endpoints(
        endpoints,
        rest=rest,
        frames=collector.send,
        emit=collector.emit,
        settings=options.pop("settings", FAST),
        **options,
    )


async def live_keys(control: Any, product: str) -> list[str]:
    listed = await control("/_venue/listen-keys")
    return [entry["listenKey"] for entry in listed["listenKeys"] if entry["product"] == product]


async def test_usdm_listen_key_session_delivers_and_deletes_its_key(venue, control) -> None:
    collector = Collector()
    recording = Recording()
    account = venue.first_key.api_key
    with trio.fail_after(DEADLINE):
        async with venue_rest(venue, account) as rest:
            session = futures_session(venue, rest, collector, connect=recording.connect)
            async with running(session, collector):
                (key,) = await live_keys(control, "usdm")
                await control(
                    "/_venue/usdm/fund", {"account": account, "asset": "USDT", "delta": "7"}
                )
                (frame,) = await collector.wait_event("ACCOUNT_UPDATE")
            assert await live_keys(control, "usdm") == []  # aclose deleted it
            assert rest.calls == ["POST /fapi/v1/listenKey", "DELETE /fapi/v1/listenKey"]
    update = orjson.loads(frame.text)
    assert update["a"]["m"] == "DEPOSIT"
    assert recording.urls == [f"{venue.urls['ws']['usdm']}/private/ws?listenKey={key}"]
    connected = collector.of(StreamConnected)[0]
    assert key not in connected.url
    assert connected.url.endswith(f"listenKey={key[:4]}...")
    assert collector.of(UserStreamStarted)[0].kind == "listen_key"


async def test_usdm_expired_key_is_replaced_and_events_resume(venue, control) -> None:
    collector = Collector()
    recording = Recording()
    account = venue.first_key.api_key
    with trio.fail_after(DEADLINE):
        async with venue_rest(venue, account) as rest:
            session = futures_session(venue, rest, collector, connect=recording.connect)
            async with running(session, collector):
                (old,) = await live_keys(control, "usdm")
                await control(
                    "/_venue/usdm/fund", {"account": account, "asset": "USDT", "delta": "1"}
                )
                await collector.wait_event("ACCOUNT_UPDATE")
                await control("/_venue/listen-key/expire", {"listenKey": old})
                (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
                (new,) = await live_keys(control, "usdm")
                assert new != old
                await control(
                    "/_venue/usdm/fund", {"account": account, "asset": "USDT", "delta": "2"}
                )
                await collector.wait_event("ACCOUNT_UPDATE", count=2)
    assert shape(collector.items) == [
        "StreamConnected",
        "UserStreamStarted",
        "frame:ACCOUNT_UPDATE",
        "frame:listenKeyExpired",
        "StreamDisconnected",
        "StreamConnected",
        "UserStreamStarted",
        "UserStreamGap",
        "frame:ACCOUNT_UPDATE",
        "StreamDisconnected",
    ]
    assert gap.reason == "listen key expired (listenKeyExpired)"
    expired = [f.text for f in collector.of(StreamFrame) if "listenKeyExpired" in f.text]
    assert len(expired) == 1
    assert old not in expired[0], "a listen key is not journaled"
    assert f'"listenKey":"{old[:4]}..."' in expired[0]
    first_frame = collector.of(StreamFrame)[0]
    assert gap.from_ms == first_frame.received_ns // 1_000_000
    assert [url.rsplit("=", 1)[1] for url in recording.urls] == [old, new]


async def test_usdm_server_close_reconnects_with_the_same_key(venue, control) -> None:
    collector = Collector()
    recording = Recording()
    account = venue.first_key.api_key
    with trio.fail_after(DEADLINE):
        async with venue_rest(venue, account) as rest:
            session = futures_session(venue, rest, collector, connect=recording.connect)
            async with running(session, collector):
                await control("/_venue/faults/close", {"code": 1001})
                (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
                await control(
                    "/_venue/usdm/fund", {"account": account, "asset": "USDT", "delta": "3"}
                )
                await collector.wait_event("ACCOUNT_UPDATE")
    ended = collector.of(StreamDisconnected)[0]
    assert ended.code == 1001
    assert ended.reason.startswith("closed by server (1001")
    assert 0 < ended.reconnect_in_ms <= 300
    assert gap.reason == ended.reason
    assert len(recording.urls) == 2
    assert recording.urls[0] == recording.urls[1]  # POST answered the live key again


async def test_usdm_terminated_stream_reconnects(venue, control) -> None:
    collector = Collector()
    account = venue.first_key.api_key
    with trio.fail_after(DEADLINE):
        async with venue_rest(venue, account) as rest:
            session = futures_session(venue, rest, collector)
            async with running(session, collector):
                await control(
                    "/_venue/user-stream/terminate", {"product": "usdm", "account": account}
                )
                await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
                await control(
                    "/_venue/usdm/fund", {"account": account, "asset": "USDT", "delta": "4"}
                )
                await collector.wait_event("ACCOUNT_UPDATE")
    assert collector.of(StreamDisconnected)[0].code == 1000


async def test_coinm_session_connects_to_ws_key(venue, control) -> None:
    collector = Collector()
    recording = Recording()
    account = venue.first_key.api_key
    with trio.fail_after(DEADLINE):
        async with venue_rest(venue, account) as rest:
            session = futures_session(venue, rest, collector, "coinm", connect=recording.connect)
            async with running(session, collector):
                (key,) = await live_keys(control, "coinm")
                await control(
                    "/_venue/coinm/fund", {"account": account, "asset": "BTC", "delta": "0.5"}
                )
                (frame,) = await collector.wait_event("ACCOUNT_UPDATE")
            assert rest.calls == ["POST /dapi/v1/listenKey", "DELETE /dapi/v1/listenKey"]
    assert recording.urls == [f"{venue.urls['ws']['coinm']}/ws/{key}"]
    assert orjson.loads(frame.text)["a"]["B"][0]["a"] == "BTC"


async def test_futures_unknown_api_key_is_fatal(venue) -> None:
    collector = Collector()
    with trio.fail_after(DEADLINE):
        async with venue_rest(venue, "not-a-registered-key") as rest:
            session = futures_session(venue, rest, collector)
            with pytest.raises(UserStreamAuthError) as caught:
                await session.run()
    assert caught.value.code == -2015
    assert caught.value.request == "POST /fapi/v1/listenKey"
    assert rest.calls == ["POST /fapi/v1/listenKey"]
    collector.send.close()
    await collector.drain()
    assert shape(collector.items) == ["StreamDisconnected", "UserStreamStopped"]
    (stopped,) = collector.of(UserStreamStopped)
    assert stopped.code == -2015
    assert "POST /fapi/v1/listenKey" in stopped.reason


async def test_rest_caller_adapts_the_rest_client_call() -> None:
    seen: list[RestRequest] = []

    async def call(request: RestRequest) -> RestResponse:
        seen.append(request)
        if request.method == "PUT":
            return RestResponse(
                client=request.client,
                call_id=request.call_id,
                method=request.method,
                path=request.path,
                outcome="rejected",
                status=400,
                body='{"code":-1125,"msg":"This listenKey does not exist."}',
                code=-1125,
                message="This listenKey does not exist.",
            )
        return RestResponse(
            client=request.client,
            call_id=request.call_id,
            method=request.method,
            path=request.path,
            outcome="ok",
            status=200,
            body='{"listenKey":"abc"}',
        )

    rest = rest_caller(call, "usdm")
    assert await rest("POST", "/fapi/v1/listenKey") == {"listenKey": "abc"}
    with pytest.raises(RestCallError) as caught:
        await rest("PUT", "/fapi/v1/listenKey")
    assert (caught.value.status, caught.value.code) == (400, -1125)
    assert [request.call_id for request in seen] == ["userdata-1", "userdata-2"]


# --- fakes for timing ----------------------------------------------------------------------


def virtual_ns() -> int:
    return round(trio.current_time() * 1e9)


class FakeSocket:
    """One fake connection. Spot sockets answer WS-API requests like Binance; futures
    sockets only carry what is pushed."""

    def __init__(self, server: FakeServer, url: str) -> None:
        self.server = server
        self.url = url
        self.open = True
        self.mute = False
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.subscription: int | None = None
        self._send, self._receive = trio.open_memory_channel[Any](math.inf)

    async def get_message(self) -> str:
        item = await self._receive.receive()
        if isinstance(item, CloseReason):
            self.open = False
            raise ConnectionClosed(item)
        return item

    async def send_message(self, message: str | bytes) -> None:
        await trio.lowlevel.checkpoint()
        if not self.open:
            raise ConnectionClosed(CloseReason(1006, None))
        request = orjson.loads(message)
        self.sent.append((trio.current_time(), request))
        if self.mute:
            return
        method, request_id = request["method"], request["id"]
        error = self.server.errors.get(method)
        if error is not None:
            status, code, data, *message = error
            body = {"code": code, "msg": message[0] if message else "refused"}
            if data is not None:
                body["data"] = data
            self.push({"id": request_id, "status": status, "error": body})
            return
        subscribing = method in ("userDataStream.subscribe.signature", "userDataStream.subscribe")
        if subscribing:
            self.subscription = next(self.server.subscription_ids)
            result: Any = {"subscriptionId": self.subscription}
        elif method == "session.subscriptions":
            result = [] if self.server.forget else [{"subscriptionId": self.subscription}]
        else:
            result = {}
        self.push({"id": request_id, "status": 200, "result": result})
        if subscribing:
            for payload in self.server.greeting:
                self.event(payload)

    async def ping(self, payload: bytes | None = None) -> None:
        if not self.open:
            raise ConnectionClosed(CloseReason(1006, None))
        if not self.server.answer_pings:
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()

    def push(self, message: Any) -> None:
        self._send.send_nowait(
            message if isinstance(message, str) else orjson.dumps(message).decode()
        )

    def event(self, payload: dict[str, Any]) -> None:
        if self.subscription is not None:
            self.push({"subscriptionId": self.subscription, "event": payload})
        else:
            self.push(payload)

    def close(self, code: int = 1001) -> None:
        self._send.send_nowait(CloseReason(code, "bye"))


class FakeServer:
    def __init__(self) -> None:
        self.sockets: list[FakeSocket] = []
        self.refuse_connections = False
        #: Handshake refusals to give before accepting: (HTTP status, body).
        self.rejections: list[tuple[int, bytes]] = []
        self.answer_pings = True
        self.forget = False
        #: Error replies by method: (status, code, error.data[, msg]).
        self.errors: dict[str, tuple[Any, ...]] = {}
        self.subscription_ids = itertools.count()
        #: Events sent the moment a stream carries data (Spot: right after the subscribe
        #: reply; futures: on connecting), queued before the session can go live.
        self.greeting: list[dict[str, Any]] = []

    @contextlib.asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[FakeSocket]:
        await trio.lowlevel.checkpoint()
        if self.refuse_connections:
            raise ConnectionRejected(503, (), b"")
        if self.rejections:
            status, body = self.rejections.pop(0)
            raise ConnectionRejected(status, (), body)
        socket = FakeSocket(self, url)
        self.sockets.append(socket)
        if "listenKey=" in url:
            for payload in self.greeting:
                socket.event(payload)
        try:
            yield socket
        finally:
            socket.open = False

    def live(self) -> FakeSocket:
        (socket,) = [socket for socket in self.sockets if socket.open]
        return socket


class FakeRest:
    """The listen-key endpoint: records (time, method); ``fail`` queues failures."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []
        self.failures: dict[str, list[Exception]] = {}
        self.key_serial = 1

    def fail(self, method: str, *errors: Exception) -> None:
        self.failures.setdefault(method, []).extend(errors)

    def rotate(self) -> None:
        self.key_serial += 1

    async def __call__(self, method: str, path: str) -> Mapping[str, Any]:
        await trio.lowlevel.checkpoint()
        self.calls.append((trio.current_time(), method))
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)
        if method == "DELETE":
            return {}
        return {"listenKey": f"key{self.key_serial}"}

    def times(self, method: str) -> list[float]:
        return [at for at, called in self.calls if called == method]


def invalid_key() -> BinanceError:
    return BinanceError(
        400,
        -1125,
        "This listenKey does not exist.",
        kind=ErrorKind.FINAL,
        method="PUT",
        path="/fapi/v1/listenKey",
    )


def fake_futures(
    server: FakeServer,
    rest: FakeRest,
    collector: Collector,
    *,
    lost_since: tuple[int, str] | None = None,
    **settings: Any,
) -> FuturesUserSession:
    return FuturesUserSession(
        client="usdm",
        account_type=AccountType.USDT_FUTURES,
        base="wss://fstream.example/private",
        rest=rest,
        frames=collector.send,
        emit=collector.emit,
        settings=UserSessionSettings(**settings),
        rng=random.Random(7),
        clock=virtual_ns,
        connect=server.connect,
        lost_since=lost_since,
    )


def virtual_ms() -> int:
    return virtual_ns() // 1_000_000


#: A server clock for the fakes: Binance's epoch milliseconds, far from the local clock.
SERVER_EPOCH_MS = 1_764_080_000_000


def server_ms() -> int:
    return SERVER_EPOCH_MS + virtual_ms()


def fake_spot(
    server: FakeServer,
    collector: Collector,
    *,
    limiter: RateLimiter | None = None,
    server_time_ms: Callable[[], int] | None = None,
    lost_since: tuple[int, str] | None = None,
    **settings: Any,
) -> SpotUserSession:
    return SpotUserSession(
        client="spot",
        url="wss://ws-api.example/ws-api/v3",
        api_key="k" * 64,
        signer=load_signer("s" * 64),
        frames=collector.send,
        emit=collector.emit,
        settings=UserSessionSettings(**settings),
        rng=random.Random(7),
        clock=virtual_ns,
        limiter=limiter,
        server_time_ms=server_time_ms,
        connect=server.connect,
        lost_since=lost_since,
    )


async def test_keepalive_every_30_minutes(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    async with running(session, collector):
        start = trio.current_time()
        await trio.sleep(2 * 3600 + 60)
        assert [round(at - start) for at in rest.times("PUT")] == [1800, 3600, 5400, 7200]
        assert len(server.sockets) == 1  # pings kept it; nothing was replaced
    assert rest.times("POST") == [start]
    assert len(rest.times("DELETE")) == 1
    assert collector.of(UserStreamGap) == []


async def test_keepalive_interval_is_configurable(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector, keepalive_every_s=600)
    async with running(session, collector):
        start = trio.current_time()
        await trio.sleep(1300)
        assert [round(at - start) for at in rest.times("PUT")] == [600, 1200]


async def test_keepalive_refused_with_1125_replaces_the_key(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    async with running(session, collector):
        start = trio.current_time()
        server.live().event({"e": "ORDER_TRADE_UPDATE", "E": 1})
        await collector.wait_event("ORDER_TRADE_UPDATE")
        rest.fail("PUT", invalid_key())
        rest.rotate()
        (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
        assert trio.current_time() - start == pytest.approx(1800)
        server.live().event({"e": "ORDER_TRADE_UPDATE", "E": 2})
        await collector.wait_event("ORDER_TRADE_UPDATE", count=2)
    assert [socket.url for socket in server.sockets] == [
        "wss://fstream.example/private/ws?listenKey=key1",
        "wss://fstream.example/private/ws?listenKey=key2",
    ]
    assert "-1125" in gap.reason
    assert gap.from_ms <= round(start * 1000) + 1  # the last frame, right after the start
    assert gap.to_ms == round((start + 1800) * 1000)
    ended = collector.of(StreamDisconnected)[0]
    assert ended.reconnect_in_ms == 0


async def test_transient_keepalive_failure_is_retried_without_reconnecting(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    async with running(session, collector):
        start = trio.current_time()
        rest.fail("PUT", RestCallError(503, None, "Service Unavailable"), trio.TooSlowError())
        await trio.sleep(1800 + 130)
        assert [round(at - start) for at in rest.times("PUT")] == [1800, 1860, 1920]
        assert len(server.sockets) == 1
        await trio.sleep(1800)
        assert round(rest.times("PUT")[-1] - start) == 1920 + 1800
    assert collector.of(UserStreamGap) == []


async def test_keepalive_failing_for_the_key_lifetime_replaces_the_key(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    async with running(session, collector):
        rest.fail("PUT", *[RestCallError(0, None, "connection refused")] * 40)
        (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
        assert "not extended for 3600 s" in gap.reason
        assert len(rest.times("POST")) == 2
        assert len(server.sockets) == 2


async def test_silent_futures_connection_without_pong_is_replaced(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    async with running(session, collector):
        server.answer_pings = False
        (ended,) = await collector.wait_for(lambda item: isinstance(item, StreamDisconnected))
        assert ended.reason == "no pong within 10 s"
        server.answer_pings = True
        (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
        assert gap.reason == "no pong within 10 s"


async def test_backoff_grows_capped_when_connections_fail(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        await nursery.start(session.run)
        server.refuse_connections = True
        server.live().close(1006)
        await collector.wait_for(lambda item: isinstance(item, StreamDisconnected), count=9)
        server.refuse_connections = False
        await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
        await session.aclose()
        nursery.cancel_scope.cancel()
    waits = [event.reconnect_in_ms for event in collector.of(StreamDisconnected)[:9]]
    assert all(wait is not None for wait in waits)
    bases = [min(30_000, 500 * 2**n) for n in range(9)]
    for wait, base in zip(waits, bases, strict=True):
        assert 0.75 * base <= wait <= base
    reasons = [event.reason for event in collector.of(StreamDisconnected)[1:9]]
    assert set(reasons) == {"handshake refused: HTTP 503"}
    assert len(collector.of(UserStreamGap)) == 1  # one interruption, one gap


async def test_consumer_too_slow_ends_the_connection_and_reports_a_gap(autojump_clock) -> None:
    server, rest = FakeServer(), FakeRest()
    frames_send, frames_receive = trio.open_memory_channel[StreamFrame](1)
    reports = Collector()
    session = FuturesUserSession(
        client="usdm",
        account_type=AccountType.USDT_FUTURES,
        base="wss://fstream.example/private",
        rest=rest,
        frames=frames_send,
        emit=reports.emit,
        rng=random.Random(7),
        clock=virtual_ns,
        connect=server.connect,
    )
    async with running(session, reports):
        for serial in range(3):
            server.live().event({"e": "ORDER_TRADE_UPDATE", "E": serial})
        (ended,) = await reports.wait_for(lambda item: isinstance(item, StreamDisconnected))
        assert ended.reason == "consumer too slow: a frame was not taken within 10 s"
        first = frames_receive.receive_nowait()
        assert orjson.loads(first.text)["E"] == 0
        (gap,) = await reports.wait_for(lambda item: isinstance(item, UserStreamGap))
        assert gap.from_ms == first.received_ns // 1_000_000


async def test_rotation_before_the_24_hour_cut(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector, rotate_after_s=3000, keepalive_every_s=1800)
    async with running(session, collector):
        start = trio.current_time()
        (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
        assert trio.current_time() - start == pytest.approx(3000)
    assert gap.reason == "connection older than 3000 s"
    assert collector.of(StreamDisconnected)[0].reconnect_in_ms == 0


async def test_spot_close_reconnects_with_backoff_and_resubscribes(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    session = fake_spot(server, collector)
    async with running(session, collector):
        server.live().event({"e": "balanceUpdate", "E": 1})
        (frame,) = await collector.wait_event("balanceUpdate")
        server.live().close(1001)
        (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
        server.live().event({"e": "balanceUpdate", "E": 2})
        await collector.wait_event("balanceUpdate", count=2)
    ended = collector.of(StreamDisconnected)[0]
    assert ended.code == 1001
    assert 375 <= ended.reconnect_in_ms <= 500
    assert gap.from_ms == frame.received_ns // 1_000_000
    assert [[request["method"] for _, request in socket.sent] for socket in server.sockets] == [
        ["userDataStream.subscribe.signature"]
    ] * 2


async def test_spot_probe_replies_move_the_known_good_mark(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    session = fake_spot(server, collector)
    async with running(session, collector):
        start = trio.current_time()
        await trio.sleep(100)
        socket = server.live()
        probes = [at for at, request in socket.sent if request["method"] == "session.subscriptions"]
        assert [round(at - start) for at in probes] == [30, 60, 90]
        socket.close(1006)
        (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
    # Everything up to the last answered probe was read: the gap starts there.
    assert gap.from_ms == round(probes[-1] * 1000)
    assert gap.reason == "connection lost"


async def test_spot_unanswered_probe_replaces_the_connection(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    session = fake_spot(server, collector)
    async with running(session, collector):
        start = trio.current_time()
        server.live().mute = True
        (ended,) = await collector.wait_for(lambda item: isinstance(item, StreamDisconnected))
        assert ended.reason == "no reply to session.subscriptions within 10 s"
        assert trio.current_time() - start == pytest.approx(40)
        await collector.wait_for(lambda item: isinstance(item, UserStreamGap))


async def test_spot_lost_subscription_is_detected(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    session = fake_spot(server, collector)
    async with running(session, collector):
        server.forget = True
        (ended,) = await collector.wait_for(lambda item: isinstance(item, StreamDisconnected))
        assert ended.reason == "subscription 0 is no longer listed by session.subscriptions"
        server.forget = False
        await collector.wait_for(lambda item: isinstance(item, UserStreamGap))


async def test_spot_server_shutdown_notice_reconnects_at_once(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    session = fake_spot(server, collector)
    async with running(session, collector):
        server.live().push({"event": {"e": "serverShutdown", "E": 5}})
        (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
    assert gap.reason == "server announced a shutdown (serverShutdown)"
    assert collector.of(StreamDisconnected)[0].reconnect_in_ms == 0
    assert shape(collector.items)[2] == "frame:serverShutdown"


async def test_spot_rate_limited_subscribe_waits_for_retry_after(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    limiter = RateLimiter(clock=virtual_ms)
    session = fake_spot(server, collector, limiter=limiter)
    retry_at = round((trio.current_time() + 20) * 1000)
    server.errors["userDataStream.subscribe.signature"] = (429, -1003, {"retryAfter": retry_at})
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        nursery.start_soon(session.run)
        (ended,) = await collector.wait_for(lambda item: isinstance(item, StreamDisconnected))
        assert ended.reason.startswith("userDataStream.subscribe.signature refused: -1003")
        assert 19_000 <= ended.reconnect_in_ms <= 20_000
        # The WS-API shares the IP's limits with REST: the Spot pool waits too.
        paused = limiter.paused_until(Pool.SPOT)
        assert paused is not None
        assert retry_at <= paused <= retry_at + 1
        del server.errors["userDataStream.subscribe.signature"]
        await session.wait_live(timeout_s=30)
        assert trio.current_time() == pytest.approx(20, abs=0.1)
        await session.aclose()
        nursery.cancel_scope.cancel()
    # Never live before: nothing was lost that a gap should report.
    assert collector.of(UserStreamGap) == []
    assert shape(collector.items)[:2] == ["RateLimited", "StreamDisconnected"]
    (limited,) = collector.of(RateLimited)
    assert (limited.client, limited.pool, limited.until_ms, limited.code) == (
        "spot",
        "spot",
        paused,
        -1003,
    )


async def test_spot_ws_api_ban_halts_the_spot_pool_until_its_end(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    limiter = RateLimiter(clock=server_ms)
    session = fake_spot(server, collector, limiter=limiter, server_time_ms=server_ms)
    until = server_ms() + 300_000
    # No data.retryAfter: the ban's end is read from Binance's message.
    server.errors["userDataStream.subscribe.signature"] = (
        418,
        -1003,
        None,
        f"Way too much request weight used; IP banned until {until}. Please use WebSocket "
        "Streams for live updates to avoid bans.",
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        nursery.start_soon(session.run)
        (ended,) = await collector.wait_for(lambda item: isinstance(item, StreamDisconnected))
        assert 299_000 <= ended.reconnect_in_ms <= 300_000
        assert limiter.paused_until(Pool.SPOT) == until
        assert limiter.stats(Pool.SPOT).banned_until_ms == until
        del server.errors["userDataStream.subscribe.signature"]
        await session.wait_live(timeout_s=400)
        assert trio.current_time() == pytest.approx(300, abs=0.1)
        await session.aclose()
        nursery.cancel_scope.cancel()
    assert shape(collector.items)[:2] == ["IpBanned", "StreamDisconnected"]
    (banned,) = collector.of(IpBanned)
    assert (banned.client, banned.pool, banned.until_ms) == ("spot", "spot", until)


async def test_spot_probe_rate_limited_pauses_the_pool_and_keeps_the_link(
    autojump_clock,
) -> None:
    server, collector = FakeServer(), Collector()
    session = fake_spot(server, collector)  # no limiter: the report still goes out
    async with running(session, collector):
        start = trio.current_time()
        retry_at = round((start + 100) * 1000)
        server.errors["session.subscriptions"] = (429, -1003, {"retryAfter": retry_at})
        with trio.fail_after(60):  # the first probe, at 30 s
            (limited,) = await collector.wait_for(lambda item: isinstance(item, RateLimited))
        assert limited.until_ms == retry_at
        del server.errors["session.subscriptions"]
        await trio.sleep_until(start + 150)
        socket = server.live()
        probes = [at for at, request in socket.sent if request["method"] == "session.subscriptions"]
        # Probed at 30 s (refused), then not again before Binance's retryAfter.
        assert [round(at - start) for at in probes] == [30, 100, 130]
    assert len(server.sockets) == 1
    assert [event.reason for event in collector.of(StreamDisconnected)] == ["session stopped"]


async def test_spot_revoked_session_is_fatal(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    session = fake_spot(server, collector, probe_after_s=3600)

    async def revoke() -> None:
        await session.wait_live(timeout_s=5)
        await trio.sleep(5)
        server.live().event({"e": "balanceUpdate", "E": 1})
        await collector.wait_event("balanceUpdate")
        await trio.sleep(5)
        # Binance revokes a session whose key became invalid: {"id": null, ...}.
        server.live().push(
            {"id": None, "status": 401, "error": {"code": -2015, "msg": "Invalid API-key"}}
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        nursery.start_soon(revoke)
        with pytest.raises(UserStreamAuthError) as caught:
            await session.run()
        await collector.send.aclose()
    assert caught.value.code == -2015
    assert caught.value.request == "the session"
    assert len(server.sockets) == 1
    # After the StreamDisconnected: user data stops, from the last frame handed on, for good.
    assert shape(collector.items) == [
        "StreamConnected",
        "UserStreamStarted",
        "frame:balanceUpdate",
        "StreamDisconnected",
        "UserStreamStopped",
    ]
    (frame,) = collector.of(StreamFrame)
    (stopped,) = collector.of(UserStreamStopped)
    assert stopped.from_ms == frame.received_ns // 1_000_000
    assert stopped.from_ms < virtual_ms() - 4000  # not the revocation time
    assert stopped.code == -2015
    assert stopped.reason.startswith("Binance refused the session with -2015 ('Invalid API-key')")
    assert "IP whitelist" in stopped.reason  # the hint
    assert collector.of(UserStreamGap) == []


async def test_futures_key_revoked_at_keepalive_stops_from_the_last_frame(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    revoked = BinanceError(
        401, -2015, "Invalid API-key, IP, or permissions for action.", kind=ErrorKind.FINAL
    )
    start = trio.current_time()

    async def revoke() -> None:
        await session.wait_live(timeout_s=5)
        await trio.sleep(100)
        server.live().event({"e": "ORDER_TRADE_UPDATE", "E": 1})
        await collector.wait_event("ORDER_TRADE_UPDATE")
        rest.fail("PUT", revoked)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        nursery.start_soon(revoke)
        with pytest.raises(UserStreamAuthError):
            await session.run()
        await collector.send.aclose()
    assert trio.current_time() - start == pytest.approx(1800)
    assert shape(collector.items)[-2:] == ["StreamDisconnected", "UserStreamStopped"]
    (frame,) = collector.of(StreamFrame)
    (stopped,) = collector.of(UserStreamStopped)
    assert stopped.client == "usdm"
    assert stopped.from_ms == frame.received_ns // 1_000_000 == round((start + 100) * 1000)
    assert stopped.code == -2015
    assert "PUT /fapi/v1/listenKey" in stopped.reason


async def test_lost_since_then_refused_stops_from_lost_since(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    server.errors["userDataStream.subscribe.signature"] = (401, -2015, None, "Invalid API-key")
    session = fake_spot(server, collector, lost_since=(1234, "the connectivity actor restarted"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        with pytest.raises(UserStreamAuthError):
            await session.run()
        await collector.send.aclose()
    assert shape(collector.items) == ["StreamDisconnected", "UserStreamStopped"]
    assert collector.of(UserStreamStopped)[0].from_ms == 1234


async def test_aclose_during_backoff_stops_at_once_and_deletes_the_key(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        await nursery.start(session.run)
        server.refuse_connections = True
        server.live().close(1006)
        await collector.wait_for(lambda item: isinstance(item, StreamDisconnected), count=6)
        before = trio.current_time()
        await session.aclose()
        assert trio.current_time() - before < 0.1
        nursery.cancel_scope.cancel()
    assert [method for _, method in rest.calls][-1] == "DELETE"
    assert not session.live


async def test_aclose_before_the_first_connection_releases_start(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    server.refuse_connections = True
    session = fake_spot(server, collector)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)

        async def close_soon() -> None:
            await trio.sleep(5)
            await session.aclose()

        nursery.start_soon(close_soon)
        await nursery.start(session.run)  # returns once closed, never live
        nursery.cancel_scope.cancel()
    assert collector.of(UserStreamStarted) == []
    with pytest.raises(RuntimeError, match="runs once"):
        await session.run()


async def test_stream_refusing_the_listen_key_gets_a_new_one_at_once(autojump_clock) -> None:
    server, rest, collector = FakeServer(), FakeRest(), Collector()
    session = fake_futures(server, rest, collector)
    async with running(session, collector):
        server.rejections.append((400, b'{"code":-1125,"msg":"This listenKey does not exist."}'))
        server.live().close(1006)
        (gap,) = await collector.wait_for(lambda item: isinstance(item, UserStreamGap))
    reasons = [event.reason for event in collector.of(StreamDisconnected)]
    assert reasons[:2] == ["connection lost", "stream refused the listen key (-1125)"]
    # Planned ends reconnect at once only the first time; after a failure the backoff holds.
    assert 750 <= collector.of(StreamDisconnected)[1].reconnect_in_ms <= 1000
    assert gap.reason == "connection lost"  # the first failure names the interruption
    assert len(rest.times("POST")) == 3


async def test_spot_timestamp_refusal_is_retried_not_fatal(autojump_clock) -> None:
    server, collector = FakeServer(), Collector()
    server.errors["userDataStream.subscribe.signature"] = (400, -1021, None)
    session = fake_spot(server, collector)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(collector.drain)
        nursery.start_soon(session.run)
        await collector.wait_for(lambda item: isinstance(item, StreamDisconnected), count=3)
        del server.errors["userDataStream.subscribe.signature"]
        await session.wait_live(timeout_s=60)
        await session.aclose()
        nursery.cancel_scope.cancel()
    first = collector.of(StreamDisconnected)[0]
    assert first.reason == "userDataStream.subscribe.signature refused: -1021 refused"
    assert first.reconnect_in_ms > 0


@pytest.mark.parametrize("product", ["spot", "usdm"])
@pytest.mark.parametrize("lost", [True, False])
async def test_lost_since_is_reported_before_the_first_frame(
    autojump_clock, product: str, lost: bool
) -> None:
    server, collector = FakeServer(), Collector()
    # Sent the moment the stream carries data: already waiting when the session goes live.
    server.greeting = [{"e": "balanceUpdate", "E": 1}]
    await trio.sleep(50)
    lost_since = (virtual_ms() - 40_000, "the connectivity actor restarted") if lost else None
    if product == "spot":
        session: Any = fake_spot(server, collector, lost_since=lost_since)
    else:
        session = fake_futures(server, FakeRest(), collector, lost_since=lost_since)
    async with running(session, collector):
        live_ms = virtual_ms()
        await collector.wait_event("balanceUpdate")
    expected = ["StreamConnected", "UserStreamStarted", "frame:balanceUpdate"]
    if lost:
        expected.insert(2, "UserStreamGap")
    assert shape(collector.items)[:-1] == expected
    assert shape(collector.items)[-1] == "StreamDisconnected"
    if lost:
        (gap,) = collector.of(UserStreamGap)
        assert (gap.client, gap.from_ms, gap.to_ms) == (session.client, live_ms - 40_000, live_ms)
        assert gap.reason == "the connectivity actor restarted"


async def test_lost_since_through_for_endpoints_on_the_venue(venue, control) -> None:
    collector = Collector()
    account = venue.first_key.api_key
    since_ms = time.time_ns() // 1_000_000 - 5_000
    with trio.fail_after(DEADLINE):
        async with venue_rest(venue, account) as rest:
            session = futures_session(
                venue, rest, collector, lost_since=(since_ms, "the connectivity actor restarted")
            )
            async with running(session, collector):
                await control(
                    "/_venue/usdm/fund", {"account": account, "asset": "USDT", "delta": "1"}
                )
                (frame,) = await collector.wait_event("ACCOUNT_UPDATE")
    assert shape(collector.items) == [
        "StreamConnected",
        "UserStreamStarted",
        "UserStreamGap",
        "frame:ACCOUNT_UPDATE",
        "StreamDisconnected",
    ]
    (gap,) = collector.of(UserStreamGap)
    assert gap.from_ms == since_ms
    assert since_ms < gap.to_ms <= frame.received_ns // 1_000_000
    assert gap.reason == "the connectivity actor restarted"


def test_lost_since_needs_wall_milliseconds() -> None:
    with pytest.raises(TypeError, match="from_ms must be an int"):
        fake_spot(FakeServer(), Collector(), lost_since=(1.5, "restarted"))  # type: ignore[arg-type]
