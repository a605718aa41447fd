"""WebSocket connections through the client's HTTP(S) proxy (``actors/binance/wsconnect.py``).

A small CONNECT proxy written here (trio, loopback) stands in front of the local venue: market
streams and user-data sessions reach the venue through it, a refusing proxy ends in a
disconnect that names it (never its password) and is retried with backoff. ``wss://`` and an
``https://`` proxy run against a loopback TLS WebSocket server whose certificate is made here.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    HandshakeError,
    WebSocketRequest,
    serve_websocket,
)

from actors.binance.errors import BinanceError
from actors.binance.signing import load_signer
from actors.binance.streams import StreamClient, StreamSettings
from actors.binance.userdata import FuturesUserSession, SpotUserSession, UserSessionSettings
from actors.binance.venues import Route, resolve
from actors.binance.wsconnect import (
    ProxyError,
    _Dial,
    _Proxy,
    _Replay,
    _Target,
    check_proxy_url,
    open_websocket,
    shown_proxy_url,
)
from actors.config import AccountType, ClientConfig
from events.base import Event
from events.connectivity import (
    RateLimited,
    StreamConnected,
    StreamDisconnected,
    StreamFrame,
    UserStreamStarted,
)
from scenarios.venue.config import VenueConfig
from scenarios.venue.server import open_venue

DEADLINE = 10
USER, PASSWORD = "tern user", "p@ss:w/rd-9f3k"
#: The proxy URL carries the credentials percent-encoded, as a URL must.
LOGIN = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
FAST_STREAMS = {"backoff_initial_s": 0.05, "backoff_max_s": 0.4, "coalesce_s": 0.0}
FAST_USER = {"backoff_initial_s": 0.05, "backoff_max_s": 0.3}
PHRASES = {403: "Forbidden", 407: "Proxy Authentication Required", 429: "Too Many Requests"}


# --- a CONNECT proxy -------------------------------------------------------------------------


class Proxy:
    """An HTTP CONNECT proxy on loopback: records each CONNECT (target and headers), asks for
    Basic credentials when given some, refuses with ``refuse`` when set, never answers when
    ``stall``; otherwise splices bytes both ways. ``ssl_context`` makes it an https proxy."""

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        refuse: int | None = None,
        stall: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.credentials = credentials
        self.refuse = refuse
        self.stall = stall
        self.ssl_context = ssl_context
        self.seen: list[tuple[str, dict[str, str]]] = []
        #: Every byte the client sent into a tunnel (what the proxy could read).
        self.tunnelled = bytearray()
        self.port = 0

    def url(self, login: str = "", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{login + '@' if login else ''}{host}:{self.port}"

    async def serve(
        self, *, task_status: trio.TaskStatus[Proxy] = trio.TASK_STATUS_IGNORED
    ) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.abc.Stream) -> None:
        try:
            if self.ssl_context is not None:
                client = trio.SSLStream(client, self.ssl_context, server_side=True)
                await client.do_handshake()
            await self._serve(client)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await trio.aclose_forcefully(client)

    async def _serve(self, client: trio.abc.Stream) -> None:
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = await client.receive_some(4096)
            if not chunk:
                return
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        first, *lines = head.decode("latin-1").split("\r\n")
        method, target, _version = first.split(" ")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.seen.append((target, headers))
        if self.stall:
            await trio.sleep_forever()
        status = self.refuse
        if status is None and self.credentials is not None:
            user, password = self.credentials
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if headers.get("proxy-authorization") != expected:
                status = 407
        if method != "CONNECT":
            status = 405
        if status is not None:
            challenge = 'Proxy-Authenticate: Basic realm="test"\r\n' if status == 407 else ""
            await client.send_all(
                f"HTTP/1.1 {status} {PHRASES.get(status, 'No')}\r\n{challenge}"
                "Content-Length: 0\r\n\r\n".encode()
            )
            return
        host, _, port = target.rpartition(":")
        upstream = await trio.open_tcp_stream(host.strip("[]"), int(port))
        async with upstream:
            await client.send_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.tunnelled += rest
            await upstream.send_all(rest)
            async with trio.open_nursery() as nursery:

                async def pump(src: trio.abc.Stream, dst: trio.abc.Stream, record: bool) -> None:
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        while chunk := await src.receive_some(65536):
                            if record:
                                self.tunnelled += chunk
                            await dst.send_all(chunk)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(pump, client, upstream, True)
                nursery.start_soon(pump, upstream, client, False)


@contextlib.asynccontextmanager
async def proxy_running(**options: Any) -> AsyncIterator[Proxy]:
    async with trio.open_nursery() as nursery:
        proxy = await nursery.start(Proxy(**options).serve)
        yield proxy
        nursery.cancel_scope.cancel()


def authority(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the venue, recorders ---------------------------------------------------------------------


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE + 5):
        async with open_venue(VenueConfig(seed=7, tick_ms=20)) as running_venue:
            yield running_venue


@pytest.fixture
async def control(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as http:

        async def call(path: str, body: Mapping[str, Any]) -> Any:
            response = await http.post(path, json=dict(body))
            assert response.status_code == 200, response.text
            return response.json()

        yield call


class Recorder:
    """Events (and frames) in order; tests wait for the ones they expect."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self._changed = trio.Event()

    async def __call__(self, item: Event) -> None:
        self.items.append(item)
        self._changed.set()
        self._changed = trio.Event()
        await trio.lowlevel.checkpoint()

    async def drain(self, receive: trio.abc.ReceiveChannel[Any]) -> None:
        async for item in receive:
            await self(item)

    def of(self, kind: type) -> list[Any]:
        return [item for item in self.items if isinstance(item, kind)]

    async def wait_for(self, predicate: Callable[[Any], bool], count: int = 1) -> list[Any]:
        while True:
            found = [item for item in self.items if predicate(item)]
            if len(found) >= count:
                return found
            await self._changed.wait()


def user_event(item: Any) -> str | None:
    if not isinstance(item, StreamFrame):
        return None
    message = orjson.loads(item.text)
    return message.get("event", message).get("e")


def spot_config(venue: Any, proxy_url: str) -> ClientConfig:
    return ClientConfig(
        name="spot",
        account_type=AccountType.SPOT,
        base_url_http=venue.urls["rest"],
        base_url_ws=venue.urls["ws"]["spot"],
        base_url_ws_api=venue.urls["ws_api"]["spot"],
        proxy_url=proxy_url,
    )


# --- (a) market streams through the proxy ----------------------------------------------------


async def test_stream_client_receives_frames_through_the_proxy(venue) -> None:
    stream = "btcusdt@trade"
    recorder = Recorder()
    send, receive = trio.open_memory_channel[StreamFrame](10_000)
    with trio.fail_after(DEADLINE):
        async with proxy_running(credentials=(USER, PASSWORD)) as proxy:
            endpoints = resolve(spot_config(venue, proxy.url(LOGIN)))
            client = StreamClient.for_endpoints(
                endpoints,
                Route.MARKET,
                frames=send,
                emit=recorder,
                settings=StreamSettings.for_account(AccountType.SPOT, **FAST_STREAMS),
            )
            assert client.settings.proxy_url == proxy.url(LOGIN)  # the client's proxy applies
            async with trio.open_nursery() as nursery:
                await nursery.start(client.run)
                nursery.start_soon(recorder.drain, receive)
                client.subscribe("s", [stream])
                assert await client.wait_subscribed([stream], timeout_s=5) == {stream}
                await recorder.wait_for(lambda item: isinstance(item, StreamFrame), 3)
                nursery.cancel_scope.cancel()
    venue_at = authority(venue.urls["ws"]["spot"])
    assert proxy.seen == [(venue_at, {"host": venue_at, "proxy-authorization": BASIC})]
    assert b"GET /stream HTTP/1.1" in proxy.tunnelled  # ws:// rides the tunnel in clear
    (connected,) = recorder.of(StreamConnected)
    assert connected.url == f"{venue.urls['ws']['spot']}/stream"
    assert {frame.connection for frame in recorder.of(StreamFrame)} == {connected.connection}
    assert not [e for e in recorder.of(StreamDisconnected) if e.reconnect_in_ms is not None]


# --- (b) user data through the proxy ---------------------------------------------------------


async def test_spot_user_session_goes_live_through_the_proxy(venue, control) -> None:
    key = venue.first_key
    recorder = Recorder()
    send, receive = trio.open_memory_channel[Event](1000)
    with trio.fail_after(DEADLINE):
        async with proxy_running(credentials=(USER, PASSWORD)) as proxy:
            session = SpotUserSession.for_endpoints(
                resolve(spot_config(venue, proxy.url(LOGIN))),
                api_key=key.api_key,
                signer=load_signer(key.secret),
                frames=send,
                emit=send.send,
                settings=UserSessionSettings(**FAST_USER),
            )
            assert session.settings.proxy_url == proxy.url(LOGIN)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(recorder.drain, receive)
                await nursery.start(session.run)
                assert session.live
                fund = {"account": key.api_key, "asset": "USDT", "delta": "5"}
                await control("/_venue/spot/fund", fund)
                await recorder.wait_for(lambda item: user_event(item) == "balanceUpdate")
                await session.aclose()
                nursery.cancel_scope.cancel()
    venue_at = authority(venue.urls["ws_api"]["spot"])
    assert proxy.seen == [(venue_at, {"host": venue_at, "proxy-authorization": BASIC})]
    assert recorder.of(UserStreamStarted)[0].kind == "ws_api"


async def test_usdm_listen_key_stream_goes_live_through_the_proxy(venue, control) -> None:
    key = venue.first_key
    recorder = Recorder()
    send, receive = trio.open_memory_channel[Event](1000)
    headers = {"X-MBX-APIKEY": key.api_key}
    with trio.fail_after(DEADLINE):
        async with (
            proxy_running() as proxy,
            httpx.AsyncClient(base_url=venue.urls["rest"], headers=headers, timeout=5) as http,
        ):

            async def rest(method: str, path: str) -> Mapping[str, Any]:
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

            config = ClientConfig(
                name="usdm",
                account_type=AccountType.USDT_FUTURES,
                base_url_http=venue.urls["rest"],
                base_url_ws=venue.urls["ws"]["usdm"],
                proxy_url=proxy.url(),
            )
            session = FuturesUserSession.for_endpoints(
                resolve(config), rest=rest, frames=send, emit=send.send
            )
            assert session.settings.proxy_url == proxy.url()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(recorder.drain, receive)
                await nursery.start(session.run)
                fund = {"account": key.api_key, "asset": "USDT", "delta": "7"}
                await control("/_venue/usdm/fund", fund)
                await recorder.wait_for(lambda item: user_event(item) == "ACCOUNT_UPDATE")
                await session.aclose()
                nursery.cancel_scope.cancel()
    venue_at = authority(venue.urls["ws"]["usdm"])
    assert proxy.seen == [(venue_at, {"host": venue_at})]  # no credentials, no header
    # The listen key travels in the query string, through the tunnel.
    assert b"GET /usdm/private/ws?listenKey=" in proxy.tunnelled


# --- (c) a refusing proxy --------------------------------------------------------------------


async def test_refused_connect_is_a_clear_disconnect_retried_with_backoff(venue, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-4711"
    stream = "btcusdt@trade"
    recorder = Recorder()
    send, _receive = trio.open_memory_channel[StreamFrame](100)
    with trio.fail_after(DEADLINE):
        async with proxy_running(credentials=(USER, PASSWORD)) as proxy:
            settings = StreamSettings.for_account(
                AccountType.SPOT,
                proxy_url=proxy.url(f"{quote(USER)}:{wrong}"),
                **{**FAST_STREAMS, "backoff_max_s": 1.0},
            )
            assert wrong not in repr(settings)
            client = StreamClient(
                client="spot",
                url=f"{venue.urls['ws']['spot']}/stream",
                frames=send,
                emit=recorder,
                settings=settings,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(client.run)
                client.subscribe("s", [stream])
                refused = await recorder.wait_for(
                    lambda e: isinstance(e, StreamDisconnected), count=4
                )
                assert client.active() == frozenset()
                nursery.cancel_scope.cancel()
    shown = f"http://{quote(USER)}:***@127.0.0.1:{proxy.port}"
    venue_at = authority(venue.urls["ws"]["spot"])
    for event in refused:
        assert event.reason == (
            f"handshake failed: ProxyError: proxy {shown} refused CONNECT {venue_at}: "
            "HTTP 407 Proxy Authentication Required (check the user and password in proxy_url)"
        )
        assert event.code is None
    waits = [event.reconnect_in_ms for event in refused]
    assert waits == sorted(waits)
    assert waits[0] < waits[-1]
    assert not recorder.of(StreamConnected)
    assert len(proxy.seen) >= 4
    token = base64.b64encode(f"{USER}:{wrong}".encode()).decode()
    for secret in (wrong, token):
        assert secret not in caplog.text
        assert all(secret not in event.reason for event in refused)
    assert "407" in caplog.text


async def test_a_proxy_429_is_the_proxys_not_a_binance_rate_limit(venue) -> None:
    key = venue.first_key
    recorder = Recorder()
    send, receive = trio.open_memory_channel[Event](1000)
    with trio.fail_after(DEADLINE):
        async with proxy_running(refuse=429) as proxy:
            session = SpotUserSession.for_endpoints(
                resolve(spot_config(venue, proxy.url())),
                api_key=key.api_key,
                signer=load_signer(key.secret),
                frames=send,
                emit=send.send,
                settings=UserSessionSettings(**FAST_USER),
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(recorder.drain, receive)
                nursery.start_soon(session.run)
                dropped = await recorder.wait_for(
                    lambda e: isinstance(e, StreamDisconnected), count=2
                )
                nursery.cancel_scope.cancel()
    assert "ProxyError: proxy http://127.0.0.1" in dropped[0].reason
    assert "HTTP 429 Too Many Requests" in dropped[0].reason
    assert not recorder.of(RateLimited)  # the Spot pool is not paused for the proxy's 429


async def test_binance_refusing_the_handshake_is_still_connection_rejected(venue) -> None:
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as http:
        await http.post("/_venue/faults/refuse", json={"refuse": True})
        with trio.fail_after(DEADLINE):
            async with proxy_running() as proxy:
                with pytest.raises(ConnectionRejected) as refused:
                    async with open_websocket(
                        f"{venue.urls['ws']['spot']}/stream",
                        proxy_url=proxy.url(),
                        connect_timeout=5,
                        disconnect_timeout=1,
                    ):
                        pytest.fail("connected")
    assert refused.value.status_code == 503


async def test_unreachable_proxy_is_named_without_its_password() -> None:
    port = free_port()
    with trio.fail_after(DEADLINE), pytest.raises(ProxyError) as failed:
        async with open_websocket(
            "ws://127.0.0.1:1/stream",
            proxy_url=f"http://user:topsecret@127.0.0.1:{port}",
            connect_timeout=5,
            disconnect_timeout=1,
        ):
            pytest.fail("connected")
    message = str(failed.value)
    assert message.startswith(f"cannot reach proxy http://user:***@127.0.0.1:{port}: OSError")
    assert "topsecret" not in message
    assert failed.value.status is None
    assert isinstance(failed.value, HandshakeError)


async def test_a_silent_proxy_times_out_within_the_connect_timeout_or_is_abandoned() -> None:
    with trio.fail_after(DEADLINE):
        async with proxy_running(stall=True) as proxy:
            started = trio.current_time()
            with pytest.raises(ConnectionTimeout) as timed_out:
                async with open_websocket(
                    "wss://stream.example:9443/stream",
                    proxy_url=proxy.url(),
                    connect_timeout=0.3,
                    disconnect_timeout=1,
                ):
                    pytest.fail("connected")
            assert trio.current_time() - started < 2
            # The caller giving up while the proxy is silent: a plain cancellation.
            with trio.move_on_after(0.1) as scope:
                async with open_websocket(
                    "ws://stream.example/ws",
                    proxy_url=proxy.url(),
                    connect_timeout=5,
                    disconnect_timeout=1,
                ):
                    pytest.fail("connected")
            assert scope.cancelled_caught
    assert str(timed_out.value) == (
        f"timed out after 0.3 s waiting for proxy http://127.0.0.1:{proxy.port} to answer "
        "CONNECT stream.example:9443"
    )
    assert proxy.seen[0][0] == "stream.example:9443"


# --- wss:// and https:// proxies (TLS made here) ---------------------------------------------


def _certificate(
    subject: str, key: Any, issuer: x509.Name, signer: Any, ca: bool, names: list[Any]
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False
        ).add_extension(x509.SubjectAlternativeName(names), False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context for ``localhost`` only, client context trusting its test CA)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tern test CA")])
    ca = _certificate("tern test CA", ca_key, ca_name, ca_key, True, [])
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate("localhost", key, ca_name, ca_key, False, [x509.DNSName("localhost")])
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


class Echo:
    """A WebSocket echo server; "close" makes it close the connection (1000, "bye")."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0

    async def handle(self, request: WebSocketRequest) -> None:
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        self.requests.append((request.path, headers))
        ws = await request.accept()
        with contextlib.suppress(ConnectionClosed):
            while True:
                message = await ws.get_message()
                if message == "close":
                    await ws.aclose(1000, "bye")
                    return
                await ws.send_message(message)


@contextlib.asynccontextmanager
async def echo_running(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Echo]:
    echo = Echo()
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, echo.handle, "127.0.0.1", 0, ssl_context)
        echo.port = server.port
        yield echo
        nursery.cancel_scope.cancel()


async def test_wss_through_the_proxy_is_tls_to_the_target(tls) -> None:
    server_tls, client_tls = tls
    with trio.fail_after(DEADLINE):
        async with echo_running(server_tls) as echo, proxy_running() as proxy:
            url = f"wss://localhost:{echo.port}/echo?x=1"
            async with open_websocket(
                url,
                proxy_url=proxy.url(),
                ssl_context=client_tls,
                connect_timeout=5,
                disconnect_timeout=1,
            ) as ws:
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
    assert proxy.seen == [(f"localhost:{echo.port}", {"host": f"localhost:{echo.port}"})]
    assert [path for path, _headers in echo.requests] == ["/echo?x=1"]
    # TLS runs end to end inside the tunnel: the proxy saw a ClientHello, not the upgrade.
    assert proxy.tunnelled[:1] == b"\x16"
    assert b"Upgrade" not in proxy.tunnelled
    assert b"hello" not in proxy.tunnelled


async def test_wss_checks_the_targets_name_not_the_proxys(tls) -> None:
    server_tls, client_tls = tls  # the certificate names localhost only
    with trio.fail_after(DEADLINE):
        async with echo_running(server_tls) as echo, proxy_running() as proxy:
            with pytest.raises(HandshakeError) as failed:
                async with open_websocket(
                    f"wss://127.0.0.1:{echo.port}/echo",
                    proxy_url=proxy.url(),
                    ssl_context=client_tls,
                    connect_timeout=5,
                    disconnect_timeout=1,
                ):
                    pytest.fail("connected")
    assert not isinstance(failed.value, ProxyError)
    assert str(failed.value).startswith(
        f"TLS with 127.0.0.1 through proxy http://127.0.0.1:{proxy.port} failed: "
        "SSLCertVerificationError"
    )


async def test_https_proxy_carries_wss_tls_inside_tls(tls) -> None:
    server_tls, client_tls = tls
    with trio.fail_after(DEADLINE):
        async with (
            echo_running(server_tls) as echo,
            proxy_running(ssl_context=server_tls, credentials=(USER, PASSWORD)) as proxy,
            open_websocket(
                f"wss://localhost:{echo.port}/echo",
                proxy_url=proxy.url(LOGIN, host="localhost"),
                ssl_context=client_tls,
                connect_timeout=5,
                disconnect_timeout=1,
            ) as ws,
        ):
            await ws.send_message("inside")
            assert await ws.get_message() == "inside"
    ((target, headers),) = proxy.seen
    assert (target, headers["proxy-authorization"]) == (f"localhost:{echo.port}", BASIC)


def test_target_and_tls_decision_without_network() -> None:
    secure = _Target.parse("wss://Stream.Binance.com/ws?x=1")
    assert (secure.host, secure.port, secure.tls) == ("stream.binance.com", 443, True)
    assert (secure.authority, secure.host_header) == (
        "stream.binance.com:443",
        "stream.binance.com",
    )
    assert secure.resource == "/ws?x=1"
    plain = _Target.parse("ws://[::1]:8080")
    assert (plain.tls, plain.authority, plain.host_header, plain.resource) == (
        False,
        "[::1]:8080",
        "[::1]:8080",
        "/",
    )
    with pytest.raises(ValueError, match="scheme"):
        _Target.parse("https://stream.binance.com")


# --- exceptions keep their shape, with and without a proxy ----------------------------------


@pytest.fixture(params=[False, True], ids=["direct", "proxied"])
async def opened(request) -> AsyncIterator[Callable[..., Any]]:
    """Opens a connection to a plain echo server, directly or through a proxy."""
    with trio.fail_after(DEADLINE):
        async with echo_running() as echo, proxy_running() as proxy:
            proxy_url = proxy.url() if request.param else None

            def connect() -> Any:
                return open_websocket(
                    f"ws://127.0.0.1:{echo.port}/echo",
                    proxy_url=proxy_url,
                    connect_timeout=5,
                    disconnect_timeout=1,
                )

            yield connect
            assert len(proxy.seen) == (3 if request.param else 0)


async def test_exceptions_from_the_block_are_not_wrapped(opened) -> None:
    async def server_closes() -> None:
        async with opened() as ws:
            await ws.send_message("close")
            await ws.get_message()

    async def block_raises() -> None:
        async with opened() as ws:
            await ws.send_message("ping")
            raise KeyError("mine")

    # A server close: ConnectionClosed, as such.
    with pytest.raises(ConnectionClosed) as closed:
        await server_closes()
    assert closed.value.reason.code == 1000
    # The caller's own exception, as such.
    with pytest.raises(KeyError, match="mine"):
        await block_raises()
    # A cancellation inside the block: caught by its scope, no ExceptionGroup.
    with trio.move_on_after(0.05) as scope:
        async with opened():
            await trio.sleep_forever()
    assert scope.cancelled_caught


# --- credentials ------------------------------------------------------------------------------


def test_credentials_are_decoded_sent_and_never_shown() -> None:
    url = f"http://{LOGIN}@proxy.local:3128"
    proxy = _Proxy.parse(url)
    target = _Target.parse("wss://fstream.binance.com/ws")
    request = proxy.connect_request(target)
    assert request == (
        b"CONNECT fstream.binance.com:443 HTTP/1.1\r\nHost: fstream.binance.com:443\r\n"
        b"Proxy-Authorization: " + BASIC.encode() + b"\r\n\r\n"
    )
    shown = f"http://{quote(USER, safe='')}:***@proxy.local:3128"
    assert proxy.shown == shown
    assert shown_proxy_url(url) == shown
    for text in (
        repr(proxy),
        repr(StreamSettings(proxy_url=url)),
        repr(UserSessionSettings(proxy_url=url)),
    ):
        assert quote(PASSWORD, safe="") not in text
        assert PASSWORD not in text
    assert proxy.scrub(f"echoed {PASSWORD} and {BASIC}") == "echoed *** and Basic ***"
    # No password: the user alone is Basic "user:"; no credentials: no header.
    assert b"Basic dXNlcjo=" in _Proxy.parse("https://user@proxy.local").connect_request(target)
    assert b"Proxy-Authorization" not in _Proxy.parse("http://proxy.local").connect_request(target)
    assert _Proxy.parse("https://proxy.local").port == 443


@pytest.mark.parametrize(
    "url", ["socks5://user:hunter2@proxy:1080", "http://user:hunter2@:3128", "http://u:hunter2@h:x"]
)
def test_a_bad_proxy_url_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(ValueError, match="proxy_url") as refused:
        check_proxy_url(url)
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ValueError, match="proxy_url") as refused:
        StreamSettings(proxy_url=url)
    assert "hunter2" not in str(refused.value)


# --- the proxy's answer, byte by byte ---------------------------------------------------------


async def answer_to(raw: bytes) -> tuple[int, str, dict[str, str], bytes]:
    client, server = trio.testing.memory_stream_pair()
    dial = _Dial(_Target.parse("ws://venue:80/"), _Proxy.parse("http://proxy:3128"), None)
    dial.stream = client
    await server.send_all(raw)
    await server.send_eof()
    return await dial._answer()


async def test_the_answer_is_read_exactly_and_bounded() -> None:
    status, phrase, headers, rest = await answer_to(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 Connection established\r\n"
        b"Via: test\r\n\r\nEARLY"
    )
    assert (status, phrase, headers, rest) == (
        200,
        "Connection established",
        {"via": "test"},
        b"EARLY",
    )
    with pytest.raises(ProxyError, match="closed the connection without answering"):
        await answer_to(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ProxyError, match="something other than HTTP"):
        await answer_to(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(ProxyError, match="more than 16384 bytes"):
        await answer_to(b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 20_000 + b"\r\n\r\n")


async def test_bytes_read_past_the_answer_come_first_through_the_tunnel() -> None:
    client, server = trio.testing.memory_stream_pair()
    await server.send_all(b"CD")
    replay = _Replay(client, b"AB")
    assert await replay.receive_some(1) == b"A"
    assert await replay.receive_some() == b"B"
    assert await replay.receive_some() == b"CD"
    await replay.send_all(b"up")
    assert await server.receive_some() == b"up"


def test_ipv6_proxy_is_bracketed_when_shown() -> None:
    proxy = _Proxy.parse("http://[::1]:3128")
    assert (proxy.host, proxy.port, proxy.shown) == ("::1", 3128, "http://[::1]:3128")


async def test_tern_checks_stream_probe_names_a_proxy_refusal(venue) -> None:
    """``tern check`` goes through the proxy too, and says why the proxy refused."""
    from actors.connectivity import _check_stream, _Report

    wrong = "wrong-secret-4711"
    with trio.fail_after(DEADLINE):
        async with proxy_running(credentials=(USER, PASSWORD)) as proxy:
            report = _Report()
            url = venue.urls["ws"]["spot"]
            await _check_stream(url, 5.0, report, proxy.url(f"{quote(USER)}:{wrong}"))
            assert proxy.seen  # the check went through the proxy
            (problem,) = report.problems
            assert "407" in problem
            assert wrong not in problem
            report = _Report()
            await _check_stream(url, 5.0, report, proxy.url(LOGIN))
            assert not report.problems
