"""The connectivity actor against the local venue on loopback.

Each test runs the actor under a real supervisor and bus (memory journal, wall clock: real
sockets), talks to it only through events, and reads what it did from the journal. One test
runs a whole session (``run_session``) on a file journal and searches its bytes for secrets.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio

from actors.base import ActorContext
from actors.bus import Bus
from actors.clock import LiveClock
from actors.config import AccountType, ClientConfig, config_from_dict
from actors.connectivity import NAME, ConnectivityActor
from actors.runtime import run_session
from actors.supervisor import ChildSpec, Supervisor
from events.base import Envelope, Event
from events.codec import default_codec
from events.connectivity import (
    ClockOffset,
    IpBanned,
    RateLimited,
    RestRequest,
    RestResponse,
    StreamConnected,
    StreamDisconnected,
    StreamFrame,
    StreamGap,
    StreamResubscribed,
    SubscribeStreams,
    UnsubscribeStreams,
    UserStreamGap,
    UserStreamStarted,
)
from events.journal import MemoryJournalStore
from events.system import ActorFailed, SessionStarted
from scenarios.venue.config import VenueConfig
from scenarios.venue.instruments import Product
from scenarios.venue.market import BookSide
from scenarios.venue.server import open_venue

DEADLINE = 20
CODEC = default_codec()
TRADES = "btcusdt@trade"
DEPTH = "btcusdt@depth@100ms"
FAST_STREAMS = {"backoff_initial_s": 0.05, "backoff_max_s": 0.5, "coalesce_s": 0.0}


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=5, tick_ms=20)) as running:
            yield running


@pytest.fixture
async def control(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as http:
        yield http


async def fault(control: httpx.AsyncClient, kind: str, **payload: Any) -> None:
    answer = await control.post(f"/_venue/faults/{kind}", json=payload)
    assert answer.status_code == 200, answer.text


def spot(venue: Any, **options: Any) -> ClientConfig:
    key = venue.first_key
    options.setdefault("retry_delay_initial_ms", 10)
    options.setdefault("retry_delay_max_ms", 40)
    return ClientConfig(
        name="spot",
        account_type=AccountType.SPOT,
        base_url_http=venue.urls["rest"],
        base_url_ws=venue.urls["ws"]["spot"],
        base_url_ws_api=venue.urls["ws_api"]["spot"],
        api_key=key.api_key,
        api_secret=key.secret,
        **options,
    )


def usdm(venue: Any) -> ClientConfig:
    key = venue.first_key
    return ClientConfig(
        name="usdm",
        account_type=AccountType.USDT_FUTURES,
        base_url_http=venue.urls["rest"],
        base_url_ws=venue.urls["ws"]["usdm"],
        base_url_ws_api=venue.urls["ws_api"]["usdm"],
        api_key=key.api_key,
        api_secret=key.secret,
    )


def request(path: str, method: str = "GET", call_id: str = "c1", client: str = "spot", **params):
    return RestRequest(client=client, call_id=call_id, method=method, path=path, params=params)


def order_params(venue: Any) -> dict[str, str]:
    price = venue.markets[(Product.SPOT, "BTCUSDT")].best(BookSide.BID) - 100
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": str(price),
    }


@attrs.define
class Harness:
    """A bus and a supervisor running the actor; ``seen`` holds every committed envelope."""

    bus: Bus
    store: MemoryJournalStore
    supervisor: Supervisor
    seen: list[Envelope] = attrs.field(factory=list)
    changed: trio.Event = attrs.field(factory=trio.Event)

    async def send(self, *events: Event) -> None:
        await self.bus.publish(events, source="tester", wait=True)

    async def wait_for(
        self, predicate: Callable[[Envelope], bool], count: int = 1, *, after: int = 0
    ) -> list[Envelope]:
        """The first ``count`` envelopes from seq ``after`` on that match ``predicate``."""
        while True:
            found = [e for e in self.seen if e.seq > after and predicate(e)]
            if len(found) >= count:
                return found[:count]
            await self.changed.wait()

    async def response(self, call_id: str) -> RestResponse:
        (envelope,) = await self.wait_for(
            lambda e: isinstance(e.event, RestResponse) and e.event.call_id == call_id
        )
        assert envelope.cause is None, "a response is an input"
        assert envelope.source == NAME
        return envelope.event

    def of(self, kind: type) -> list[Any]:
        return [e.event for e in self.seen if isinstance(e.event, kind)]

    def journal_bytes(self) -> bytes:
        return b"\n".join(payload for _, payload in self.store.read())

    async def _watch(self) -> None:
        with self.bus.subscribe("watcher", from_seq=1) as subscription:
            async for envelope in subscription:
                self.seen.append(envelope)
                self.changed.set()
                self.changed = trio.Event()


@contextlib.asynccontextmanager
async def running(
    clients: Sequence[ClientConfig],
    factory: Callable[..., ConnectivityActor] = ConnectivityActor,
    store: MemoryJournalStore | None = None,
    **options: Any,
) -> AsyncIterator[Harness]:
    """The actor under a supervisor (restarts after 50 ms) on a memory journal; user-data
    sessions only when asked for (``user_data=True``)."""
    options.setdefault("stream_settings", FAST_STREAMS)
    options.setdefault("user_data", False)
    store = MemoryJournalStore() if store is None else store
    bus = Bus(store, clock=LiveClock())
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        session = await bus.publish(
            [SessionStarted(session_id="t", config={}, versions={}, pid=1)],
            source="runtime",
            wait=True,
        )
        assert session is not None
        supervisor = Supervisor(bus, LiveClock(), session_seq=session, seed=1, grace_s=5)
        harness = Harness(bus, store, supervisor)
        nursery.start_soon(harness._watch)
        spec = ChildSpec(
            name=NAME, factory=lambda: factory(clients, **options), backoff_initial_s=0.05
        )
        await nursery.start(supervisor.run, [spec])
        try:
            yield harness
        finally:
            with trio.CancelScope(shield=True), trio.fail_after(10):
                await supervisor.stop()
                bus.close()
        nursery.cancel_scope.cancel()


def market(kind: type) -> Callable[[Envelope], bool]:
    """Selects ``kind`` events of market-stream connections (not user data)."""
    return lambda e: isinstance(e.event, kind) and "/user" not in e.event.connection


def no_failures(harness: Harness) -> None:
    assert not harness.of(ActorFailed), harness.of(ActorFailed)


# ----------------------------------------------------------------------------------- REST


async def test_a_session_with_clients_answers_requests_and_journals_no_secret(
    venue, tmp_path: Path
) -> None:
    key = venue.first_key
    config = config_from_dict(
        {
            "journal": {"dir": str(tmp_path / "journal"), "fsync": "none"},
            "supervisor": {"grace_s": 2.0},
            "clients": [
                {
                    "name": "spot",
                    "account_type": "spot",
                    "base_url_http": venue.urls["rest"],
                    "base_url_ws": venue.urls["ws"]["spot"],
                    "base_url_ws_api": venue.urls["ws_api"]["spot"],
                    "api_key": key.api_key,
                    "api_secret": key.secret,
                }
            ],
        }
    )
    answers: dict[str, RestResponse] = {}
    started = trio.Event()
    buses: list[Bus] = []

    def on_started(bus: Bus) -> None:
        buses.append(bus)
        started.set()

    async def ask() -> None:
        await started.wait()
        (bus,) = buses
        with bus.subscribe("tester", tags=("rest.response",)) as subscription:
            await bus.publish(
                [
                    request("/api/v3/account", call_id="account"),
                    request("/api/v3/order", "POST", "order", **order_params(venue)),
                ],
                source="tester",
            )
            async for envelope in subscription:
                answers[envelope.event.call_id] = envelope.event
                if len(answers) == 2:
                    break

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            result = await run_session(
                config, seconds=1.5, handle_signals=False, on_started=on_started
            )
    assert result.clean
    assert NAME in result.actors
    assert answers["account"].outcome == "ok"
    assert '"canTrade":true' in answers["account"].body
    assert answers["order"].outcome == "ok"
    assert '"status":"NEW"' in answers["order"].body
    files = sorted(path for path in (tmp_path / "journal").rglob("*") if path.is_file())
    journal = b"".join(path.read_bytes() for path in files)
    assert b"rest.response" in journal
    assert b"clock.offset" in journal
    for secret in (key.api_key, key.secret):
        assert secret.encode() not in journal
    assert b"signature" not in journal
    assert b"timestamp=" not in journal


async def test_bad_input_is_answered_not_raised(venue) -> None:
    with trio.fail_after(DEADLINE):
        async with running([spot(venue)]) as harness:
            await harness.send(
                request("/api/v3/time", client="nobody", call_id="who"),
                request("/api/v3/nothing", call_id="what"),
                request("/api/v3/time", call_id="reserved", timestamp="1"),
                SubscribeStreams(client="nobody", subscriber="t", streams=(TRADES,)),
                SubscribeStreams(client="spot", subscriber="t", streams=("BTCUSDT@trade",)),
                UnsubscribeStreams(client="spot", subscriber="t", streams=("never",)),
                request("/api/v3/time", call_id="fine"),
            )
            who = await harness.response("who")
            assert (who.outcome, who.status) == ("failed", 0)
            assert "unknown client 'nobody'" in who.message
            assert "'spot'" in who.message
            what = await harness.response("what")
            assert what.outcome == "failed"
            assert "/api/v3/nothing" in what.message
            assert (await harness.response("reserved")).outcome == "failed"
            assert (await harness.response("fine")).outcome == "ok"
            no_failures(harness)


async def test_a_stalled_order_is_unknown_and_a_stop_answers_what_is_in_flight(
    venue, control
) -> None:
    with trio.fail_after(DEADLINE):
        async with running([spot(venue)], rest_options={"timeout_s": 0.5}) as harness:
            await fault(control, "endpoint", path="/api/v3/order", delay_s=30, count=1)
            await harness.send(request("/api/v3/order", "POST", "stalled", **order_params(venue)))
            stalled = await harness.response("stalled")
            assert (stalled.outcome, stalled.status, stalled.attempts) == ("unknown", 0, 1)
            assert "no answer within 0.5 s" in stalled.message
            # The actor kept serving.
            await harness.send(request("/api/v3/time", call_id="after"))
            assert (await harness.response("after")).outcome == "ok"
            no_failures(harness)

    # A stop while a request is in flight answers it: unknown, never silence.
    with trio.fail_after(DEADLINE):
        async with running([spot(venue)]) as harness:
            await fault(control, "endpoint", path="/api/v3/order", delay_s=30, count=1)
            await harness.send(request("/api/v3/order", "POST", "inflight", **order_params(venue)))
            await trio.sleep(0.2)  # sent and stalled (unsent would be answered the same way)
            await harness.supervisor.stop()
            lost = await harness.response("inflight")
            assert lost.outcome == "unknown"
            assert "may or may not have been sent" in lost.message


async def test_a_429_storm_is_journaled_and_the_session_goes_on(venue, control) -> None:
    # Let the venue's rate-limit minute end soon, so that Retry-After is short.
    now = venue.clock.now_ms()
    venue.clock.skew_ms += (now // 60_000 + 1) * 60_000 - 1500 - now
    with trio.fail_after(DEADLINE):
        async with running([spot(venue)]) as harness:
            await harness.wait_for(lambda e: isinstance(e.event, ClockOffset))
            await fault(control, "rate-limit", product="spot", count=2)
            await harness.send(
                request("/api/v3/order", "POST", "order", **order_params(venue)),
                request("/api/v3/depth", call_id="depth", symbol="BTCUSDT"),
            )
            order = await harness.response("order")
            assert (order.outcome, order.status, order.code) == ("rejected", 429, -1003)
            depth = await harness.response("depth")
            assert depth.outcome == "ok"
            assert depth.attempts == 2
            limited = harness.of(RateLimited)
            assert limited
            assert {(r.client, r.pool, r.code) for r in limited} == {("spot", "spot", -1003)}
            (limited_at,) = await harness.wait_for(lambda e: isinstance(e.event, RateLimited))
            assert limited_at.cause is None
            no_failures(harness)


async def test_clock_skew_is_measured_and_journaled(venue, control) -> None:
    with trio.fail_after(DEADLINE):
        async with running([spot(venue, recv_window_ms=2000)]) as harness:
            (first,) = await harness.wait_for(lambda e: isinstance(e.event, ClockOffset))
            assert first.event.source == "time"
            assert abs(first.event.offset_ms) < 100
            await fault(control, "clock", skew_ms=-3000)
            await harness.send(request("/api/v3/account", call_id="account"))
            account = await harness.response("account")
            assert (account.outcome, account.attempts) == ("ok", 2)
            resync = [r for r in harness.of(ClockOffset) if r.source == "-1021"]
            assert len(resync) == 1
            assert abs(resync[0].offset_ms + 3000) < 100
            no_failures(harness)


# -------------------------------------------------------------------------------- streams


def frames_of(harness: Harness, connection: str | None = None) -> list[StreamFrame]:
    return [
        frame
        for frame in harness.of(StreamFrame)
        if connection is None or frame.connection == connection
    ]


async def test_subscriptions_yield_frames_per_route(venue) -> None:
    with trio.fail_after(DEADLINE):
        async with running([spot(venue), usdm(venue)]) as harness:
            await harness.send(
                SubscribeStreams(client="spot", subscriber="t", streams=(TRADES, DEPTH)),
                SubscribeStreams(
                    client="usdm",
                    subscriber="t",
                    streams=("btcusdt@depth@100ms", "btcusdt@aggTrade"),
                ),
            )
            connected = await harness.wait_for(
                lambda e: isinstance(e.event, StreamConnected), count=3
            )
            by_connection = {e.event.connection: e.event for e in connected}
            assert {c.url for c in by_connection.values()} == {
                venue.urls["ws"]["spot"] + "/stream",
                venue.urls["ws"]["usdm"] + "/public/stream",
                venue.urls["ws"]["usdm"] + "/market/stream",
            }
            frames = await harness.wait_for(lambda e: isinstance(e.event, StreamFrame), count=20)
            for envelope in frames:
                assert envelope.cause is None
                assert envelope.source == NAME
                assert envelope.event.connection in by_connection
                assert orjson.loads(envelope.event.text)["stream"]
            streams = {orjson.loads(f.text)["stream"] for f in frames_of(harness)}
            await harness.wait_for(
                lambda e: isinstance(e.event, StreamFrame) and e.event.client == "usdm", count=3
            )
            assert {TRADES, DEPTH} & streams
            # Unsubscribing the last subscriber ends the stream.
            await harness.send(UnsubscribeStreams(client="spot", subscriber="t", streams=(DEPTH,)))
            await trio.sleep(0.3)
            mark = len(harness.seen)
            await trio.sleep(0.3)
            later = {
                orjson.loads(e.event.text)["stream"]
                for e in harness.seen[mark:]
                if isinstance(e.event, StreamFrame) and e.event.client == "spot"
            }
            assert DEPTH not in later
            no_failures(harness)


async def test_a_server_close_reconnects_resubscribes_and_frames_resume(venue, control) -> None:
    with trio.fail_after(DEADLINE):
        async with running([spot(venue)]) as harness:
            await harness.send(SubscribeStreams(client="spot", subscriber="t", streams=(DEPTH,)))
            (first,) = await harness.wait_for(lambda e: isinstance(e.event, StreamConnected))
            await harness.wait_for(lambda e: isinstance(e.event, StreamFrame), count=3)
            await fault(control, "close", code=1001)
            (dropped,) = await harness.wait_for(lambda e: isinstance(e.event, StreamDisconnected))
            assert dropped.event.connection == first.event.connection
            assert dropped.event.code == 1001
            (back,) = await harness.wait_for(lambda e: isinstance(e.event, StreamResubscribed))
            assert back.event.streams == (DEPTH,)
            assert back.event.connection != first.event.connection
            (gap,) = await harness.wait_for(lambda e: isinstance(e.event, StreamGap))
            assert gap.event.streams == (DEPTH,)
            await harness.wait_for(
                lambda e: (
                    isinstance(e.event, StreamFrame) and e.event.connection == back.event.connection
                ),
                count=3,
            )
            no_failures(harness)


async def test_silence_refused_reconnects_5xx_and_a_ban_each_end_in_events(venue, control) -> None:
    """The rest of the fault matrix through one running actor: a silent stream is replaced,
    refused handshakes back off and recover, a 5xx read is retried, a ban is journaled; the
    session keeps going and frames resume."""
    streams = {**FAST_STREAMS, "liveness_s": 0.5, "probe_after_s": None}
    with trio.fail_after(DEADLINE):
        async with running([spot(venue)], stream_settings=streams) as harness:
            await harness.send(SubscribeStreams(client="spot", subscriber="t", streams=(DEPTH,)))
            (first,) = await harness.wait_for(lambda e: isinstance(e.event, StreamConnected))
            # Silence: the market stops; the connection is declared dead and replaced.
            (await control.post("/_venue/activity", json={"paused": True})).raise_for_status()
            (silent,) = await harness.wait_for(lambda e: isinstance(e.event, StreamDisconnected))
            assert "no frame" in silent.event.reason
            # Refused handshakes while it reconnects, then accepted again.
            await fault(control, "refuse", refuse=True)
            await fault(control, "close", code=1001)
            await trio.sleep(0.5)
            (await control.delete("/_venue/faults")).raise_for_status()
            (await control.post("/_venue/activity", json={"paused": False})).raise_for_status()
            (back,) = await harness.wait_for(
                lambda e: isinstance(e.event, StreamResubscribed), after=silent.seq
            )
            assert back.event.connection != first.event.connection
            refused = [
                e.event.reason
                for e in harness.seen
                if isinstance(e.event, StreamDisconnected) and e.seq > silent.seq
            ]
            assert any("HTTP 503" in reason for reason in refused), refused
            await harness.wait_for(
                lambda e: (
                    isinstance(e.event, StreamFrame) and e.event.connection == back.event.connection
                ),
                count=3,
            )
            # A 5xx on a read is retried and succeeds.
            await fault(control, "endpoint", path="/api/v3/depth", http_status=503, count=1)
            await harness.send(request("/api/v3/depth", call_id="depth", symbol="BTCUSDT"))
            answer = await harness.response("depth")
            assert (answer.outcome, answer.attempts) == ("ok", 2)
            # A ban is journaled; the session goes on.
            await fault(control, "ban", seconds=60)
            await harness.send(request("/api/v3/time", call_id="banned"))
            banned = await harness.response("banned")
            assert banned.status == 418
            (ban,) = await harness.wait_for(lambda e: isinstance(e.event, IpBanned))
            assert ban.event.pool == "spot"
            no_failures(harness)


async def test_frames_can_be_kept_out_of_the_journal(venue) -> None:
    actors: list[ConnectivityActor] = []

    def factory(clients: Sequence[ClientConfig], **options: Any) -> ConnectivityActor:
        actor = ConnectivityActor(clients, journal_raw_frames=False, **options)
        actors.append(actor)
        return actor

    with trio.fail_after(DEADLINE):
        async with running([spot(venue)], factory) as harness:
            await harness.send(SubscribeStreams(client="spot", subscriber="t", streams=(DEPTH,)))
            await harness.wait_for(lambda e: isinstance(e.event, StreamConnected))
            while actors[0].frames_received < 3:  # noqa: ASYNC110 - a counter, polled
                await trio.sleep(0.02)
            assert not harness.of(StreamFrame)


async def test_a_client_can_keep_its_frames_out_of_the_journal(venue) -> None:
    quiet = attrs.evolve(spot(venue), name="quiet", journal_raw_frames=False)
    with trio.fail_after(DEADLINE):
        async with running([spot(venue), quiet]) as harness:
            for client in ("spot", "quiet"):
                await harness.send(
                    SubscribeStreams(client=client, subscriber="t", streams=(DEPTH,))
                )
            (connected,) = await harness.wait_for(
                lambda e: isinstance(e.event, StreamConnected) and e.event.client == "quiet"
            )
            await harness.wait_for(
                lambda e: isinstance(e.event, StreamFrame) and e.event.client == "spot",
                count=5,
                after=connected.seq,
            )
            assert {frame.client for frame in harness.of(StreamFrame)} == {"spot"}


# ------------------------------------------------------------------------------ user data


def order_for(venue: Any, product: Product) -> dict[str, str]:
    price = venue.markets[(product, "BTCUSDT")].best(BookSide.BID) - 100
    params = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    return {**params, "quantity": "0.01", "price": str(price)}


async def test_user_data_flows_for_spot_and_futures_and_stops_in_order(venue) -> None:
    key = venue.first_key
    with trio.fail_after(DEADLINE):
        async with running([spot(venue), usdm(venue)], user_data=True) as harness:
            started = await harness.wait_for(
                lambda e: isinstance(e.event, UserStreamStarted), count=2
            )
            kinds = {e.event.client: e.event.kind for e in started}
            assert kinds == {"spot": "ws_api", "usdm": "listen_key"}
            for envelope in started:
                assert envelope.cause is None
            await harness.send(
                request("/api/v3/order", "POST", "spot-order", **order_for(venue, Product.SPOT)),
                request(
                    "/fapi/v1/order",
                    "POST",
                    "usdm-order",
                    client="usdm",
                    **order_for(venue, Product.USDM),
                ),
            )
            assert (await harness.response("spot-order")).outcome == "ok"
            assert (await harness.response("usdm-order")).outcome == "ok"

            def user_event(name: str) -> Callable[[Envelope], bool]:
                return lambda e: (
                    isinstance(e.event, StreamFrame)
                    and "/user" in e.event.connection
                    and f'"e":"{name}"' in e.event.text.replace(" ", "")
                )

            (report,) = await harness.wait_for(user_event("executionReport"))
            assert report.event.client == "spot"
            assert report.event.connection == "spot/user#1"
            (update,) = await harness.wait_for(user_event("ORDER_TRADE_UPDATE"))
            assert update.event.client == "usdm"
            no_failures(harness)
            listen_keys = list(venue.user_data.listen_keys)
            assert listen_keys
            await harness.supervisor.stop()
            stopped = await harness.wait_for(
                lambda e: isinstance(e.event, StreamDisconnected) and "/user" in e.event.connection,
                count=2,
            )
            assert {e.event.reason for e in stopped} == {"session stopped"}
        journal = harness.journal_bytes()
    for secret in (key.api_key, key.secret, *listen_keys):
        assert secret.encode() not in journal
    assert b"signature" not in journal


# -------------------------------------------------------------------------------- restart


class Crashing(ConnectivityActor):
    """Fails on a request for ``/crash`` (a stand-in for any bug in the actor)."""

    async def _dispatch(self, ctx: ActorContext, request: RestRequest) -> None:
        if request.path == "/crash":
            raise RuntimeError("boom")
        await super()._dispatch(ctx, request)


async def test_a_restart_resubscribes_reports_the_gap_and_answers_the_lost(venue, control) -> None:
    with trio.fail_after(DEADLINE):
        async with running([spot(venue)], Crashing, user_data=True) as harness:
            await harness.send(SubscribeStreams(client="spot", subscriber="t", streams=(DEPTH,)))
            await harness.wait_for(market(StreamConnected))
            await harness.wait_for(market(StreamFrame), count=3)
            await harness.wait_for(lambda e: isinstance(e.event, UserStreamStarted))
            await fault(control, "endpoint", path="/api/v3/order", delay_s=30, count=1)
            await harness.send(request("/api/v3/order", "POST", "inflight", **order_params(venue)))
            await trio.sleep(0.3)
            await harness.send(request("/crash", call_id="poison"))

            (failed,) = await harness.wait_for(lambda e: isinstance(e.event, ActorFailed))
            assert failed.event.error == "boom"
            lost = await harness.response("inflight")
            assert lost.outcome == "unknown"
            poison = await harness.response("poison")  # never sent: still answered
            assert poison.outcome == "unknown"
            (gap,) = await harness.wait_for(
                lambda e: isinstance(e.event, StreamGap), after=failed.seq
            )
            assert gap.event.streams == (DEPTH,)
            assert gap.event.reason == "the connectivity actor restarted"
            assert gap.event.from_ns < gap.event.to_ns
            (again,) = await harness.wait_for(market(StreamConnected), after=failed.seq)
            assert again.event.connection == "spot~2#1"  # names stay unique in the session
            # The gap was reported at once; the rest of the loss, until the streams were back,
            # is reported by the new stream client when they are.
            assert gap.seq < again.seq
            (rest,) = await harness.wait_for(
                lambda e: isinstance(e.event, StreamGap), after=gap.seq
            )
            assert rest.event.connection == gap.event.connection == "spot~2#restart"
            assert rest.event.from_ns == gap.event.to_ns
            assert rest.event.to_ns >= rest.event.from_ns
            await harness.wait_for(
                lambda e: (
                    isinstance(e.event, StreamFrame)
                    and e.event.connection == again.event.connection
                ),
                count=3,
            )
            # The user-data session is back too, and the time away is a user-data gap.
            (started,) = await harness.wait_for(
                lambda e: isinstance(e.event, UserStreamStarted), after=failed.seq
            )
            assert started.event.connection == "spot/user~2#1"
            (user_gap,) = await harness.wait_for(
                lambda e: isinstance(e.event, UserStreamGap), after=failed.seq
            )
            assert user_gap.event.reason == "the connectivity actor restarted"
            assert user_gap.event.from_ms <= user_gap.event.to_ms
            # Still serving requests; the new session's frames come after its gap.
            await harness.send(request("/api/v3/time", call_id="after"))
            assert (await harness.response("after")).outcome == "ok"
            await harness.send(request("/api/v3/order", "POST", "again", **order_params(venue)))
            assert (await harness.response("again")).outcome == "ok"
            (report,) = await harness.wait_for(
                lambda e: (
                    isinstance(e.event, StreamFrame)
                    and e.event.connection == started.event.connection
                )
            )
            assert report.seq > user_gap.seq
            responses = collections.Counter(r.call_id for r in harness.of(RestResponse))
            assert responses == {"inflight": 1, "poison": 1, "after": 1, "again": 1}


class ReadCounting(MemoryJournalStore):
    """Remembers where each read of the journal started."""

    def __init__(self) -> None:
        super().__init__()
        self.reads_from: list[int] = []

    def read(self, from_seq: int = 1, to_seq: int | None = None):
        self.reads_from.append(from_seq)
        return super().read(from_seq, to_seq)


async def test_a_restart_starts_from_the_checkpoint_not_the_session_start(venue) -> None:
    """The journal is folded into checkpoints while the actor runs; a restart reads only what
    came after the newest one, and still finds every duty (streams, gap, lost requests)."""
    store = ReadCounting()
    with trio.fail_after(DEADLINE):
        async with running([spot(venue)], Crashing, store=store, checkpoint_s=0.1) as harness:
            await harness.send(SubscribeStreams(client="spot", subscriber="t", streams=(DEPTH,)))
            await harness.wait_for(market(StreamFrame), count=20)
            while len(store.snapshots.list(NAME)) < 2:  # frames keep the journal moving
                await harness.changed.wait()
            await trio.sleep(0.3)
            checkpoint = store.snapshots.list(NAME)[-1]
            assert len(store.snapshots.list(NAME)) <= 2  # older checkpoints are pruned
            before = len(store.reads_from)
            await harness.send(request("/crash", call_id="poison"))
            (failed,) = await harness.wait_for(lambda e: isinstance(e.event, ActorFailed))
            assert (await harness.response("poison")).outcome == "unknown"
            (gap,) = await harness.wait_for(
                lambda e: isinstance(e.event, StreamGap), after=failed.seq
            )
            assert gap.event.streams == (DEPTH,)
            frames = [
                e.event.received_ns
                for e in harness.seen
                if isinstance(e.event, StreamFrame) and e.seq < failed.seq
            ]
            assert gap.event.from_ns == max(frames)  # the last frame before the crash
            after = store.reads_from[before:]
            assert after
            assert min(after) > checkpoint, (checkpoint, after)


async def test_rate_limits_come_from_exchange_info() -> None:
    from actors.binance.costs import Pool
    from actors.binance.ratelimit import LimitKind

    with trio.fail_after(30):
        async with open_venue(
            VenueConfig(seed=5, tick_ms=50, limits={"spot_weight_1m": 777})
        ) as venue:
            actors: list[ConnectivityActor] = []

            def keep(*args: Any, **options: Any) -> ConnectivityActor:
                actors.append(ConnectivityActor(*args, **options))
                return actors[-1]

            async with running([spot(venue)], factory=keep):
                limiter = actors[-1]._limiters[next(iter(actors[-1]._limiters))]
                while True:
                    weights = [
                        rule.limit
                        for rule in limiter.limits(Pool.SPOT)
                        if rule.kind is LimitKind.REQUEST_WEIGHT
                    ]
                    if weights == [777]:
                        break
                    await trio.sleep(0.05)


async def test_futures_limits_merge_across_usdm_and_coinm() -> None:
    from actors.binance.costs import Pool
    from actors.binance.ratelimit import LimitKind

    config = VenueConfig(seed=5, tick_ms=50, limits={"futures_weight_1m": 999})
    with trio.fail_after(30):
        async with open_venue(config) as venue:
            coinm = attrs.evolve(
                usdm(venue),
                name="coinm",
                account_type=AccountType.COIN_FUTURES,
                base_url_ws=venue.urls["ws"]["coinm"],
                base_url_ws_api=venue.urls["ws_api"]["coinm"],
            )
            actors: list[ConnectivityActor] = []

            def keep(*args: Any, **options: Any) -> ConnectivityActor:
                actors.append(ConnectivityActor(*args, **options))
                return actors[-1]

            async with running([usdm(venue), coinm], factory=keep):
                limiter = next(iter(actors[-1]._limiters.values()))

                def rules() -> dict[tuple[LimitKind, str, int], int]:
                    return {
                        (r.kind, r.interval, r.interval_num): r.limit
                        for r in limiter.limits(Pool.FUTURES)
                    }

                while rules().get((LimitKind.REQUEST_WEIGHT, "MINUTE", 1)) != 999:  # noqa: ASYNC110
                    await trio.sleep(0.05)
                await trio.sleep(0.3)  # both products answered by now
                found = rules()
                assert found[(LimitKind.REQUEST_WEIGHT, "MINUTE", 1)] == 999
                assert (LimitKind.ORDERS, "SECOND", 10) in found
                assert (LimitKind.ORDERS, "MINUTE", 1) in found


async def test_a_stop_answers_in_flight_orders_even_when_closing_is_slow(venue, control) -> None:
    """A stalled order and a stalled listen-key DELETE: the order is still answered
    ``unknown`` within the supervisor's grace period."""
    with trio.fail_after(DEADLINE):
        async with running([usdm(venue)], user_data=True) as harness:
            await harness.wait_for(lambda e: isinstance(e.event, UserStreamStarted))
            await fault(control, "endpoint", path="/fapi/v1/order", delay_s=30, count=1)
            await fault(control, "endpoint", path="/fapi/v1/listenKey", delay_s=30)
            order = order_for(venue, Product.USDM)
            await harness.send(
                request("/fapi/v1/order", "POST", "inflight", client="usdm", **order)
            )
            await trio.sleep(0.2)
            started = trio.current_time()
            await harness.supervisor.stop()
            assert trio.current_time() - started < 5
            lost = await harness.response("inflight")
            assert lost.outcome == "unknown"
