"""The REST client against the local venue on loopback: signing, limits, faults, clock.

The venue tests run on trio's real clock (real sockets), each under a deadline. The clock
and backoff unit tests at the end use ``autojump_clock`` and a fake time endpoint.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actors.binance.clock import ClockSyncError, ServerClock, TimeSample
from actors.binance.costs import Pool
from actors.binance.errors import BinanceError
from actors.binance.ratelimit import LimitKind, RateLimiter
from actors.binance.rest import RestClient, open_rest_client
from actors.binance.signing import Signer
from actors.config import AccountType, ClientConfig
from events.codec import Codec
from events.connectivity import ClockOffset, IpBanned, RateLimited, RestRequest, RestResponse
from scenarios.venue.config import KeySpec, VenueConfig
from scenarios.venue.instruments import Product
from scenarios.venue.market import BookSide
from scenarios.venue.server import open_venue

DEADLINE = 15
CODEC = Codec()
SPOT = AccountType.SPOT
USDM = AccountType.USDT_FUTURES


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
async def venue():
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=7, tick_ms=50)) as running:
            running.paused = True  # a still market: prices stay where the tests put orders
            yield running


@pytest.fixture
async def control(venue):
    async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as http:
        yield http


def config_for(venue: Any, account_type: AccountType = SPOT, **options: Any) -> ClientConfig:
    key = venue.first_key
    options.setdefault("retry_delay_initial_ms", 10)
    options.setdefault("retry_delay_max_ms", 40)
    return ClientConfig(
        name="usdm" if account_type is USDM else "spot",
        account_type=account_type,
        base_url_http=venue.urls["rest"],
        api_key=key.api_key,
        api_secret=key.secret,
        **options,
    )


@contextlib.asynccontextmanager
async def connected(
    venue: Any, records: list, config: ClientConfig | None = None, **options: Any
) -> AsyncIterator[RestClient]:
    async with open_rest_client(
        config or config_for(venue), emit=records.append, **options
    ) as client:
        yield client


def call(method: str, path: str, client: str = "spot", call_id: str = "c1", **params: str):
    return RestRequest(client=client, call_id=call_id, method=method, path=path, params=params)


def order(venue: Any, product: Product = Product.SPOT, offset: int = 100, **extra: str):
    price = venue.markets[(product, "BTCUSDT")].best(BookSide.BID) - offset
    params = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": str(price),
    }
    return {**params, **extra}


async def fault(control: httpx.AsyncClient, kind: str, **payload: Any) -> None:
    answer = await control.post(f"/_venue/faults/{kind}", json=payload)
    assert answer.status_code == 200, answer.text


async def window_ends_in(venue: Any, control: httpx.AsyncClient | None, lead_ms: int) -> None:
    """Skew the venue's clock so that its current minute ends ``lead_ms`` from now (the
    client measures the skew like any offset). Keeps Retry-After and window waits short,
    or (with a long lead) keeps a test's requests inside one window."""
    now = venue.clock.now_ms()
    boundary = (now // 60_000 + 1) * 60_000
    skew = venue.clock.skew_ms + boundary - lead_ms - now
    if control is None:
        venue.clock.skew_ms = skew
    else:
        await fault(control, "clock", skew_ms=skew)


def body(response: RestResponse) -> Any:
    return orjson.loads(response.body)


# ------------------------------------------------------------------------ signed requests


async def test_a_spot_order_is_placed_queried_and_canceled(venue) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            assert [type(r) for r in records] == [ClockOffset]
            placed = await client.call(
                call("POST", "/api/v3/order", **order(venue, newClientOrderId="rest-1"))
            )
            assert (placed.outcome, placed.status, placed.attempts) == ("ok", 200, 1)
            assert body(placed)["status"] == "NEW"
            assert "x-mbx-order-count-10s" in placed.headers
            assert placed.latency_us > 0
            assert client.limiter.used(Pool.SPOT, LimitKind.ORDERS, "10S", client.account) >= 1

            query = call("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="rest-1")
            queried = await client.call(query)
            assert (queried.outcome, body(queried)["status"]) == ("ok", "NEW")

            cancel = call("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="rest-1")
            canceled = await client.call(cancel)
            assert (canceled.outcome, body(canceled)["status"]) == ("ok", "CANCELED")
            assert body(await client.call(query))["status"] == "CANCELED"

            again = await client.call(cancel)
            assert (again.outcome, again.status, again.code) == ("rejected", 400, -2011)
            assert again.message == "Unknown order sent."


async def test_a_usdm_order_is_placed_and_canceled(venue) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records, config_for(venue, USDM)) as client:
            params = order(venue, Product.USDM, newClientOrderId="um-1")
            placed = await client.call(call("POST", "/fapi/v1/order", client="usdm", **params))
            assert (placed.outcome, placed.status) == ("ok", 200), placed.body
            assert body(placed)["status"] == "NEW"
            cancel = call(
                "DELETE",
                "/fapi/v1/order",
                client="usdm",
                symbol="BTCUSDT",
                origClientOrderId="um-1",
            )
            canceled = await client.call(cancel)
            assert (canceled.outcome, body(canceled)["status"]) == ("ok", "CANCELED")
            assert client.limiter.used(Pool.FUTURES, LimitKind.ORDERS, "1M", client.account) >= 1


async def test_unsigned_market_data_needs_no_key(venue) -> None:
    records: list = []
    keyless = ClientConfig(
        name="spot", account_type=SPOT, base_url_http=venue.urls["rest"], max_retries=0
    )
    with trio.fail_after(DEADLINE):
        async with connected(venue, records, keyless, environ={}) as client:
            depth = await client.call(call("GET", "/api/v3/depth", symbol="BTCUSDT", limit="5"))
            assert depth.outcome == "ok"
            assert len(body(depth)["bids"]) == 5
            used = int(depth.headers["x-mbx-used-weight-1m"])
            assert used >= 5
            assert client.limiter.used(Pool.SPOT, LimitKind.REQUEST_WEIGHT, "1M") >= used
            account = await client.call(call("GET", "/api/v3/account"))
            assert (account.outcome, account.attempts) == ("failed", 0)
            assert "needs an API key" in account.message
            assert "BINANCE_API_KEY" in account.message


async def test_a_rejection_carries_binance_code_and_message(venue) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            bad = await client.call(call("GET", "/api/v3/depth", symbol="NOPE"))
            assert (bad.outcome, bad.status, bad.code, bad.message, bad.attempts) == (
                "rejected",
                400,
                -1121,
                "Invalid symbol.",
                1,
            )
            far = await client.call(call("POST", "/api/v3/order", **order(venue, price="1000")))
            assert (far.outcome, far.code) == ("rejected", -1013)
            assert far.message.startswith("Filter failure")


async def test_requests_tern_cannot_account_for_are_never_sent(venue) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            sent = venue.rest.requests
            unknown = await client.call(call("GET", "/api/v3/nothing"))
            assert (unknown.outcome, unknown.status, unknown.attempts) == ("failed", 0, 0)
            assert "not in tern's spot endpoint table" in unknown.message
            retired = await client.call(call("POST", "/api/v3/userDataStream"))
            assert "2026-02-20" in retired.message
            wrong_product = await client.call(call("GET", "/fapi/v1/depth", symbol="BTCUSDT"))
            assert "usdt_futures endpoint, not spot" in wrong_product.message
            stamped = await client.call(call("GET", "/api/v3/account", timestamp="1"))
            assert "added by the client" in stamped.message
            other = await client.call(call("GET", "/api/v3/ping", client="usdm"))
            assert other.outcome == "failed"
            assert venue.rest.requests == sent


# --------------------------------------------------------------------------------- faults


async def test_a_503_on_a_read_is_retried(venue, control) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            await fault(control, "endpoint", path="/api/v3/depth", http_status=503, count=2)
            depth = await client.call(call("GET", "/api/v3/depth", symbol="BTCUSDT"))
            assert (depth.outcome, depth.status, depth.attempts) == ("ok", 200, 3)


async def test_a_read_that_keeps_failing_ends_failed(venue, control) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records, config_for(venue, max_retries=2)) as client:
            await fault(control, "endpoint", path="/api/v3/depth", http_status=503)
            depth = await client.call(call("GET", "/api/v3/depth", symbol="BTCUSDT"))
            assert (depth.outcome, depth.status, depth.attempts) == ("failed", 503, 3)
            assert "empty body" in depth.message


async def test_a_503_on_an_order_is_unknown_and_not_retried(venue, control) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            await fault(control, "endpoint", path="/api/v3/order", http_status=503, count=2)
            lost = await client.call(
                call("POST", "/api/v3/order", **order(venue, newClientOrderId="lost"))
            )
            assert (lost.outcome, lost.status, lost.code, lost.attempts) == (
                "unknown",
                503,
                None,
                1,
            )
            assert "outcome is not known" in lost.message
            assert venue.faults.endpoints["/api/v3/order"].remaining == 1  # sent exactly once
            await control.delete("/_venue/faults")

            # The same answer after the venue did place the order: it exists afterwards.
            await fault(
                control,
                "endpoint",
                path="/api/v3/order",
                http_status=503,
                count=1,
                executed=True,
            )
            placed = await client.call(
                call("POST", "/api/v3/order", **order(venue, newClientOrderId="placed"))
            )
            assert (placed.outcome, placed.attempts) == ("unknown", 1)
            open_orders = await client.call(call("GET", "/api/v3/openOrders", symbol="BTCUSDT"))
            assert [o["clientOrderId"] for o in body(open_orders)] == ["placed"]


async def test_a_backend_timeout_is_unknown_for_an_order_and_retried_for_a_read(
    venue, control
) -> None:
    records: list = []
    timeout = {
        "http_status": 408,
        "code": -1007,
        "msg": "Timeout waiting for response from backend server. Send status unknown; "
        "execution status unknown.",
        "count": 1,
    }
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            await fault(control, "endpoint", path="/api/v3/order", **timeout)
            placed = await client.call(call("POST", "/api/v3/order", **order(venue)))
            assert (placed.outcome, placed.status, placed.code, placed.attempts) == (
                "unknown",
                408,
                -1007,
                1,
            )
            await fault(control, "endpoint", path="/api/v3/openOrders", **timeout)
            read = await client.call(call("GET", "/api/v3/openOrders", symbol="BTCUSDT"))
            assert (read.outcome, read.attempts) == ("ok", 2)


async def test_a_stalled_endpoint_times_out(venue, control) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records, timeout_s=0.4) as client:
            await fault(control, "endpoint", path="/api/v3/order", delay_s=30, count=1)
            started = trio.current_time()
            stalled = await client.call(call("POST", "/api/v3/order", **order(venue)))
            assert trio.current_time() - started < 2
            assert (stalled.outcome, stalled.status, stalled.attempts) == ("unknown", 0, 1)
            assert "no answer within 0.4 s; the request was sent" in stalled.message

            await fault(control, "endpoint", path="/api/v3/depth", delay_s=30, count=1)
            read = await client.call(call("GET", "/api/v3/depth", symbol="BTCUSDT"))
            assert (read.outcome, read.attempts) == ("ok", 2)


async def test_a_waf_block_without_a_binance_body_is_handled(venue, control) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            await fault(control, "endpoint", path="/api/v3/account", http_status=403, count=1)
            blocked = await client.call(call("GET", "/api/v3/account"))
            assert (blocked.outcome, blocked.status, blocked.code, blocked.attempts) == (
                "rejected",
                403,
                None,
                1,
            )
            assert "HTTP 403 with an empty body" in blocked.message
            assert "firewall (WAF)" in blocked.message


async def test_nothing_listening_fails_without_guessing(venue) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = attrs.evolve(config_for(venue, max_retries=2), base_url_http=f"http://127.0.0.1:{port}")
    with trio.fail_after(DEADLINE):
        with pytest.raises(ClockSyncError, match="no time-endpoint sample"):
            async with open_rest_client(dead):
                pass
        async with open_rest_client(dead, sync_clock=False) as client:
            read = await client.call(call("GET", "/api/v3/depth", symbol="BTCUSDT"))
            assert (read.outcome, read.status, read.attempts) == ("failed", 0, 3)
            assert "the request was not sent" in read.message
            # Never written, so even an order may be sent again; it never got through.
            placed = await client.call(call("POST", "/api/v3/order", **order(venue)))
            assert (placed.outcome, placed.attempts) == ("failed", 3)
        # The proxy_url is used (and only it): a dead proxy in front of a live venue.
        proxied = attrs.evolve(config_for(venue), proxy_url=f"http://user:pw@127.0.0.1:{port}")
        async with open_rest_client(proxied, sync_clock=False) as client:
            ping = await client.call(call("GET", "/api/v3/ping"))
            assert (ping.outcome, ping.attempts) == ("failed", 4)
            assert "pw" not in ping.message


# --------------------------------------------------------------------------------- limits


async def test_a_429_storm_pauses_for_retry_after_then_succeeds(venue, control) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        await window_ends_in(venue, control, 2500)
        async with connected(venue, records) as client:
            await fault(control, "rate-limit", product="spot", count=3)
            started = trio.current_time()
            results: list[RestResponse] = []

            async def read(index: int) -> None:
                request = call("GET", "/api/v3/depth", call_id=f"d{index}", symbol="BTCUSDT")
                results.append(await client.call(request))

            async with trio.open_nursery() as nursery:
                for index in range(5):
                    nursery.start_soon(read, index)
            assert [r.outcome for r in results] == ["ok"] * 5
            assert sorted(r.attempts for r in results) == [1, 1, 2, 2, 2]
            limited = [r for r in records if isinstance(r, RateLimited)]
            assert limited
            assert {(r.client, r.pool, r.code) for r in limited} == {("spot", "spot", -1003)}
            # The retries waited for Retry-After (2 s, rounded up by the venue) before going.
            assert trio.current_time() - started >= 1.0
            assert max(r.until_ms for r in limited) >= client.clock.now_ms() - 2_000

            # An order is not sent again: the 429 says it was refused, the caller decides.
            await fault(control, "rate-limit", product="spot", count=1)
            refused = await client.call(call("POST", "/api/v3/order", **order(venue)))
            assert (refused.outcome, refused.status, refused.code, refused.attempts) == (
                "rejected",
                429,
                -1003,
                1,
            )
            assert "retry-after" in refused.headers


async def test_a_ban_halts_the_pool_without_retrying(venue, control) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            await fault(control, "ban", seconds=120)
            banned = await client.call(call("GET", "/api/v3/depth", symbol="BTCUSDT"))
            assert (banned.outcome, banned.status, banned.code, banned.attempts) == (
                "rejected",
                418,
                -1003,
                1,
            )
            (record,) = [r for r in records if isinstance(r, IpBanned)]
            assert (record.client, record.pool) == ("spot", "spot")
            assert abs(record.until_ms - (venue.clock.now_ms() + 120_000)) < 2_000
            sent = venue.rest.requests
            after = await client.call(call("GET", "/api/v3/ping"))
            assert (after.outcome, after.attempts) == ("failed", 0)
            assert "banned this IP from the spot pool" in after.message
            assert venue.rest.requests == sent


async def test_a_flood_of_requests_sees_no_429() -> None:
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=3, limits={"spot_weight_1m": 200})) as venue:
            venue.paused = True
            async with httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as control:
                await window_ends_in(venue, control, 2500)
            clock = ServerClock("spot")
            weight = {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1}
            limiter = RateLimiter({Pool.SPOT: [{**weight, "limit": 200}]}, clock=clock.now_ms)
            records: list = []
            results: list[RestResponse] = []
            async with connected(venue, records, clock=clock, limiter=limiter) as client:

                async def send(request: RestRequest) -> None:
                    results.append(await client.call(request))

                async with trio.open_nursery() as nursery:
                    for index in range(300):
                        if index % 6 == 0:  # weight 2
                            request = call("GET", "/api/v3/ticker/price", symbol="BTCUSDT")
                        else:  # weight 1
                            request = call("GET", "/api/v3/ping")
                        nursery.start_soon(send, attrs.evolve(request, call_id=str(index)))
            assert len(results) == 300
            assert {r.status for r in results} == {200}
            assert not [r for r in records if isinstance(r, (RateLimited, IpBanned))]
            assert max(r.attempts for r in results) == 1
            stats = limiter.stats(Pool.SPOT)
            assert sum(stats.admitted.values()) == 300 + clock.samples


# ---------------------------------------------------------------------------------- clock


@pytest.mark.parametrize(("skew_ms", "recv_window_ms"), [(-3000, 5000), (3000, 2000)])
async def test_clock_skew_resyncs_and_retries_once(venue, control, skew_ms, recv_window_ms):
    records: list = []
    config = config_for(venue, recv_window_ms=recv_window_ms)
    with trio.fail_after(DEADLINE):
        async with connected(venue, records, config) as client:
            assert abs(client.clock.offset_ms) < 50
            await fault(control, "clock", skew_ms=skew_ms)
            account = await client.call(call("GET", "/api/v3/account"))
            assert (account.outcome, account.attempts) == ("ok", 2)
            resync = [r for r in records if isinstance(r, ClockOffset) and r.source == "-1021"]
            assert len(resync) == 1
            assert abs(resync[0].offset_ms - skew_ms) < 50
            assert resync[0].rtt_ms >= 0
            # Now in step: no further resync needed.
            again = await client.call(call("GET", "/api/v3/account"))
            assert again.attempts == 1


async def test_a_second_timestamp_failure_is_final(venue, control) -> None:
    records: list = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records) as client:
            minus_1021 = {"http_status": 400, "code": -1021, "msg": "Timestamp for this request"}
            await fault(control, "endpoint", path="/api/v3/account", count=2, **minus_1021)
            account = await client.call(call("GET", "/api/v3/account"))
            assert (account.outcome, account.code, account.attempts) == ("rejected", -1021, 2)


# -------------------------------------------------------------------------------- secrets


async def test_no_key_secret_or_signature_escapes(venue, control, caplog, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    signatures: list[str] = []
    original = Signer.sign

    def spy(self: Signer, payload: bytes) -> str:
        signature = original(self, payload)
        signatures.append(signature)
        return signature

    monkeypatch.setattr(Signer, "sign", spy)
    records: list = []
    texts: list[str] = []
    with trio.fail_after(DEADLINE):
        async with connected(venue, records, timeout_s=0.5) as client:
            texts.append(repr(client))
            await fault(control, "endpoint", path="/api/v3/openOrders", delay_s=5, count=1)
            await fault(control, "endpoint", path="/api/v3/order", http_status=503, count=1)
            requests = [
                call("GET", "/api/v3/account"),
                call("GET", "/api/v3/openOrders", symbol="BTCUSDT"),
                call("POST", "/api/v3/order", **order(venue)),
                call("POST", "/api/v3/order", **order(venue, newClientOrderId="s-1")),
                call("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="s-1"),
                call("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="s-1"),
                call("GET", "/api/v3/order", symbol="NOPE", orderId="1"),
            ]
            for request in requests:
                response = await client.call(request)
                texts += [repr(response), CODEC.encode_event(response).decode()]
            await fault(control, "clock", skew_ms=-4000)
            texts.append(repr(await client.call(call("GET", "/api/v3/account"))))
            await fault(control, "ban", seconds=60)
            texts.append(repr(await client.call(call("GET", "/api/v3/account"))))
    texts += [repr(record) for record in records]
    texts += [CODEC.encode_event(record).decode() for record in records]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(BinanceError.from_response(400, b"{}", {}, method="GET", path="/x"))]
    assert len(signatures) >= 8
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # wire-level traces
    key, secret = venue.first_key.api_key, venue.first_key.secret
    for text in texts:
        assert key not in text
        assert secret not in text
        assert "signature=" not in text.replace("signature=<redacted>", "")
        assert "recvWindow=" not in text
        for signature in signatures:
            assert signature not in text


# ----------------------------------------------------------- clock and backoff, unit level


def virtual_ms() -> int:
    """Local epoch milliseconds that follow trio's (virtual) clock."""
    return 1_767_225_600_000 + round(trio.current_time() * 1000)


def fake_time_endpoint(offset_ms: int, delays_ms: list[int], failures: int = 0):
    """A probe: the server is ``offset_ms`` ahead; each round trip takes the next delay."""
    state = {"failures": failures}

    async def probe() -> TimeSample:
        if state["failures"]:
            state["failures"] -= 1
            raise BinanceError.no_answer("refused", written=False, method="GET", path="/t")
        delay = delays_ms.pop(0)
        sent = virtual_ms()
        await trio.sleep(delay / 2000)
        server = virtual_ms() + offset_ms
        await trio.sleep(delay / 2000)
        return TimeSample(server_ms=server, sent_ms=sent, received_ms=virtual_ms())

    return probe


async def test_sync_keeps_the_shortest_round_trip(autojump_clock) -> None:
    clock = ServerClock("spot", local_ms=virtual_ms, samples=3)
    record = await clock.sync(fake_time_endpoint(2500, [400, 8, 90]))
    assert (record.offset_ms, record.rtt_ms, record.source) == (2500, 8, "time")
    assert clock.now_ms() - virtual_ms() == 2500
    assert clock.generation == 1


async def test_sync_survives_some_failures_and_reports_total_failure(autojump_clock) -> None:
    clock = ServerClock("spot", local_ms=virtual_ms, samples=3)
    assert (await clock.sync(fake_time_endpoint(-700, [10], failures=2))).offset_ms == -700
    with pytest.raises(ClockSyncError, match="no time-endpoint sample in 3 tries"):
        await clock.sync(fake_time_endpoint(0, [], failures=3))
    assert clock.offset_ms == -700  # unchanged


async def test_concurrent_resyncs_share_one_measurement(autojump_clock) -> None:
    clock = ServerClock("spot", local_ms=virtual_ms, samples=1)
    await clock.sync(fake_time_endpoint(0, [10]))
    seen = clock.generation
    probe = fake_time_endpoint(3000, [10, 10, 10])
    results: list = []

    async def resync() -> None:
        results.append(await clock.resync(probe, source="-1021", after_generation=seen))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(resync)
    assert sum(r is not None for r in results) == 1
    assert clock.offset_ms == 3000
    assert clock.generation == seen + 1


def http_date(epoch_ms: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch_ms / 1000))


async def test_the_date_header_is_a_coarse_check_that_learns_a_bias(autojump_clock) -> None:
    clock = ServerClock("spot", local_ms=virtual_ms, samples=1, min_resync_gap_s=10)
    await clock.sync(fake_time_endpoint(0, [4]))
    now = virtual_ms()
    assert not clock.check_date(http_date(now), now - 2, now + 2)
    assert not clock.check_date(None, now, now)
    assert not clock.check_date("yesterday", now, now)
    # A Date 5 s ahead of the measured offset asks for a resync...
    assert clock.check_date(http_date(now + 5000), now - 2, now + 2)
    assert clock.wanted()
    with trio.move_on_after(5):
        await clock.wait_resync_due()
        pytest.fail("a resync must wait for min_resync_gap_s")
    assert await clock.wait_resync_due() == "date"
    # ...and when the time endpoint still says 0, Date is known to run 5 s ahead.
    await clock.sync(fake_time_endpoint(0, [4]), source="date")
    assert not clock.wanted()
    now = virtual_ms()
    assert not clock.check_date(http_date(now + 5000), now - 2, now + 2)
    assert clock.check_date(http_date(now + 9000), now - 2, now + 2)


async def test_resyncs_are_periodic(autojump_clock) -> None:
    clock = ServerClock("spot", local_ms=virtual_ms, samples=1, resync_interval_s=600)
    assert await clock.wait_resync_due() == "time"  # never measured: at once
    await clock.sync(fake_time_endpoint(0, [4]))
    started = trio.current_time()
    assert await clock.wait_resync_due() == "time"
    assert trio.current_time() - started == pytest.approx(600, abs=0.01)


async def test_backoff_is_capped_exponential_with_seeded_jitter() -> None:
    config = ClientConfig(
        name="spot",
        account_type=SPOT,
        base_url_http="http://127.0.0.1:9",
        retry_delay_initial_ms=100,
        retry_delay_max_ms=1000,
    )
    clients = [RestClient(config, seed=seed, environ={}) for seed in (5, 5, 6)]
    try:
        runs = [[client._backoff_s(retry) for retry in range(1, 8)] for client in clients]
    finally:
        for client in clients:
            await client.aclose()
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    for retry, delay in enumerate(runs[0], start=1):
        nominal = min(0.1 * 2 ** (retry - 1), 1.0)
        assert nominal / 2 <= delay <= nominal


async def test_admission_is_bounded_and_impossible_costs_are_refused(venue) -> None:
    clock = ServerClock("spot", samples=3)
    weight = {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1}
    limiter = RateLimiter({Pool.SPOT: [{**weight, "limit": 4}]}, clock=clock.now_ms)
    options = {"clock": clock, "limiter": limiter, "admit_timeout_s": 0.2}
    with trio.fail_after(DEADLINE):
        await window_ends_in(venue, control=None, lead_ms=30_000)
        async with connected(venue, [], **options) as client:  # the clock sync costs 3
            assert (await client.call(call("GET", "/api/v3/ping"))).outcome == "ok"
            sent = venue.rest.requests
            waited = await client.call(call("GET", "/api/v3/ticker/price", symbol="BTCUSDT"))
            assert (waited.outcome, waited.attempts) == ("failed", 0)
            assert waited.message == (
                "not admitted by the rate limiter within 0.2 s; nothing was sent"
            )
            depth = await client.call(call("GET", "/api/v3/depth", symbol="BTCUSDT"))
            assert depth.outcome == "failed"
            assert "exceeds the REQUEST_WEIGHT limit of 4" in depth.message
            assert venue.rest.requests == sent


async def test_the_client_context_raises_a_single_failure_as_itself(venue) -> None:
    with trio.fail_after(DEADLINE), pytest.raises(KeyError, match="boom"):
        async with connected(venue, []):
            raise KeyError("boom")


async def test_an_ed25519_key_signs_the_exact_encoded_bytes() -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    keys = (KeySpec(api_key="ed-key", public_key_pem=pem),)
    with trio.fail_after(DEADLINE):
        async with open_venue(VenueConfig(seed=4, keys=keys)) as venue:
            venue.paused = True
            config = ClientConfig(
                name="spot",
                account_type=SPOT,
                base_url_http=venue.urls["rest"],
                api_key="ed-key",
                api_secret=secret,
            )
            async with connected(venue, [], config) as client:
                # ':' and '/' are percent-encoded before signing, base64 '+/=' after.
                params = order(venue, newClientOrderId="tern:a/b.c")
                placed = await client.call(call("POST", "/api/v3/order", **params))
                assert placed.outcome == "ok", placed.body
                assert body(placed)["clientOrderId"] == "tern:a/b.c"
                query = call(
                    "GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="tern:a/b.c"
                )
                assert (await client.call(query)).outcome == "ok"
                # Spaces, '+' and non-ASCII are encoded too: the signature holds (no -1022),
                # there is simply no such order.
                odd = call("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="é x+y")
                missing = await client.call(odd)
                assert (missing.outcome, missing.code) == ("rejected", -2013)
