"""The venue's rate limiter and endpoint weights, against Binance's documented behaviour."""

from __future__ import annotations

import datetime as dt

import pytest

from scenarios.venue.errors import VenueError
from scenarios.venue.limits import (
    DEFAULT_WEIGHT,
    FUTURES_LIMITS,
    SPOT_LIMITS,
    RateLimit,
    RateLimiter,
    endpoint_cost,
    pool_of,
    weight_for,
)

IP = "10.0.0.1"
MINUTE = 60_000


def at(text: str) -> int:
    """Epoch milliseconds of an ISO UTC time such as ``2026-03-01T12:00:59.999``."""
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def small(weight: int = 10, rejections_before_ban: int = 2) -> RateLimiter:
    """A spot pool with a tiny weight limit, so tests reach it quickly."""
    limits = (
        RateLimit("REQUEST_WEIGHT", "MINUTE", 1, weight),
        RateLimit("ORDERS", "SECOND", 10, 3),
        RateLimit("ORDERS", "DAY", 1, 5),
    )
    pools = {"spot": limits, "futures": FUTURES_LIMITS}
    return RateLimiter(pools, rejections_before_ban=rejections_before_ban)


def rejection(call, *args, **kwargs) -> VenueError:
    with pytest.raises(VenueError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- configuration -------------------------------------------------------------------------


def test_rate_limits_serialise_exactly_like_exchange_info():
    assert [limit.to_json() for limit in SPOT_LIMITS] == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
    ]
    assert [limit.to_json() for limit in FUTURES_LIMITS] == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
    ]


def test_rate_limit_records_are_validated():
    with pytest.raises(ValueError, match="kind"):
        RateLimit("WEIGHT", "MINUTE", 1, 10)
    with pytest.raises(ValueError, match="interval"):
        RateLimit("ORDERS", "WEEK", 1, 10)
    with pytest.raises(ValueError, match="interval_num"):
        RateLimit("ORDERS", "SECOND", 0, 10)


def test_pools_by_product():
    assert pool_of("spot") == "spot"
    assert pool_of("usdm") == pool_of("coinm") == "futures"
    with pytest.raises(ValueError, match="unknown product"):
        pool_of("options")


# --- windows and headers --------------------------------------------------------------------


def test_minute_window_resets_at_the_full_minute():
    limiter = RateLimiter()
    assert limiter.charge("spot", IP, 7, 0, at("2026-03-01T12:00:00.000")) == {
        "X-MBX-USED-WEIGHT-1M": "7"
    }
    headers = limiter.charge("spot", IP, 5, 0, at("2026-03-01T12:00:59.999"))
    assert headers == {"X-MBX-USED-WEIGHT-1M": "12"}
    headers = limiter.charge("spot", IP, 5, 0, at("2026-03-01T12:01:00.000"))
    assert headers == {"X-MBX-USED-WEIGHT-1M": "5"}


def test_ten_second_and_day_windows_align_to_epoch_and_utc_midnight():
    limiter = RateLimiter()
    first = limiter.charge("spot", IP, 1, 1, at("2026-03-01T23:59:59.999"))
    assert first["X-MBX-ORDER-COUNT-10S"] == "1"
    assert first["X-MBX-ORDER-COUNT-1D"] == "1"
    same_ten = limiter.charge("spot", IP, 1, 1, at("2026-03-01T23:59:50.000"))
    assert same_ten["X-MBX-ORDER-COUNT-10S"] == "2"
    after_midnight = limiter.charge("spot", IP, 1, 1, at("2026-03-02T00:00:00.000"))
    assert after_midnight["X-MBX-ORDER-COUNT-10S"] == "1"
    assert after_midnight["X-MBX-ORDER-COUNT-1D"] == "1"
    later_that_day = limiter.charge("spot", IP, 1, 1, at("2026-03-02T23:59:59.000"))
    assert later_that_day["X-MBX-ORDER-COUNT-10S"] == "1"
    assert later_that_day["X-MBX-ORDER-COUNT-1D"] == "2"


def test_window_boundaries():
    limit = RateLimit("REQUEST_WEIGHT", "SECOND", 10, 1)
    assert limit.window_start(at("2026-03-01T12:00:19.999")) == at("2026-03-01T12:00:10")
    assert limit.window_end(at("2026-03-01T12:00:20.000")) == at("2026-03-01T12:00:30")
    assert (limit.suffix, limit.per) == ("10S", "10 SECOND")


def test_futures_order_headers_and_weightless_orders():
    limiter = RateLimiter()
    now = at("2026-03-01T12:00:05")
    cost = endpoint_cost("usdm", "POST", "/fapi/v1/order", {})
    headers = limiter.charge("usdm", IP, cost.weight, cost.orders, now)
    assert headers == {
        "X-MBX-USED-WEIGHT-1M": "0",
        "X-MBX-ORDER-COUNT-1M": "1",
        "X-MBX-ORDER-COUNT-10S": "1",
    }
    cost = endpoint_cost("coinm", "POST", "/dapi/v1/order", {})
    headers = limiter.charge("coinm", IP, cost.weight, cost.orders, now)
    assert headers["X-MBX-ORDER-COUNT-1M"] == "2"
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1"  # [CM] new orders count on 1M only


def test_usd_m_and_coin_m_share_one_pool_spot_has_its_own():
    limiter = RateLimiter()
    now = at("2026-03-01T12:00:00")
    limiter.charge("usdm", IP, 20, 0, now)
    limiter.charge("coinm", IP, 5, 0, now)
    weight_limit = FUTURES_LIMITS[0]
    assert limiter.usage("coinm", IP, now)[weight_limit] == 25
    assert limiter.usage("usdm", IP, now)[weight_limit] == 25
    assert limiter.usage("spot", IP, now)[SPOT_LIMITS[0]] == 0
    assert limiter.usage("usdm", "10.0.0.2", now)[weight_limit] == 0


def test_orders_count_per_account_when_named():
    limiter = RateLimiter()
    now = at("2026-03-01T12:00:00")
    limiter.charge("spot", "10.0.0.1", 1, 1, now, account="alice")
    headers = limiter.charge("spot", "10.0.0.2", 1, 1, now, account="alice")
    assert headers["X-MBX-ORDER-COUNT-10S"] == "2"
    assert headers["X-MBX-USED-WEIGHT-1M"] == "1"  # weight stays per IP


def test_report_is_binances_rate_limits_array():
    limiter = RateLimiter()
    now = at("2026-03-01T12:00:00")
    limiter.charge("spot", IP, 4, 1, now)
    assert limiter.report("spot", IP, now)[:2] == [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": 6000,
            "count": 4,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": 50,
            "count": 1,
        },
    ]


# --- 429, 418 and bans ------------------------------------------------------------------------


def test_over_the_weight_limit_is_429_with_retry_after_and_still_counted():
    limiter = small()
    limiter.charge("spot", IP, 10, 0, at("2026-03-01T12:00:00"))  # exactly at the limit: fine
    error = rejection(limiter.charge, "spot", IP, 1, 0, at("2026-03-01T12:00:45.500"))
    assert (error.http_status, error.code) == (429, -1003)
    assert error.msg == (
        "Too much request weight used; current limit is 10 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    )
    assert error.headers == {"X-MBX-USED-WEIGHT-1M": "11", "Retry-After": "15"}
    assert error.data == {
        "serverTime": at("2026-03-01T12:00:45.500"),
        "retryAfter": at("2026-03-01T12:01:00"),
    }
    assert limiter.usage("spot", IP, at("2026-03-01T12:00:46"))[limiter.limits("spot")[0]] == 11
    assert limiter.charge("spot", IP, 1, 0, at("2026-03-01T12:01:00")) == {
        "X-MBX-USED-WEIGHT-1M": "1"
    }


def test_futures_429_text():
    limiter = RateLimiter({"futures": (RateLimit("REQUEST_WEIGHT", "MINUTE", 1, 1),)})
    error = rejection(limiter.charge, "usdm", IP, 2, 0, at("2026-03-01T12:00:00"))
    assert error.msg.startswith("Too many requests; current limit is 1 requests per minute.")


def test_hammering_after_429s_earns_an_escalating_ban():
    limiter = small(rejections_before_ban=2)
    start = at("2026-03-01T12:00:00")
    limiter.charge("spot", IP, 10, 0, start)
    for second in (1, 2):
        assert rejection(limiter.charge, "spot", IP, 1, 0, start + second * 1000).http_status == 429
    ban = rejection(limiter.charge, "spot", IP, 1, 0, start + 3000)
    until = start + 3000 + 2 * MINUTE
    assert (ban.http_status, ban.code) == (418, -1003)
    assert ban.msg == (
        f"Way too much request weight used; IP banned until {until}. "
        "Please use WebSocket Streams for live updates to avoid bans."
    )
    assert ban.headers == {"Retry-After": "120"}
    assert ban.data == {"serverTime": start + 3000, "retryAfter": until}
    still = rejection(limiter.charge, "spot", IP, 1, 0, until - 1)
    assert (still.http_status, still.headers) == (418, {"Retry-After": "1"})
    assert limiter.banned_until("spot", IP, until - 1) == until
    assert limiter.banned_until("spot", "10.0.0.9", until - 1) is None
    assert limiter.charge("usdm", IP, 1, 0, until - 1)  # a spot ban leaves futures alone
    assert limiter.charge("spot", IP, 1, 0, until) == {"X-MBX-USED-WEIGHT-1M": "1"}

    def offend(now: int) -> VenueError:
        limiter.charge("spot", IP, 10, 0, now)
        for offset in (1, 2):
            rejection(limiter.charge, "spot", IP, 1, 0, now + offset)
        return rejection(limiter.charge, "spot", IP, 1, 0, now + 3)

    second = offend(at("2026-03-02T00:00:00"))
    assert second.headers == {"Retry-After": "240"}  # doubled
    lengths = []
    now = at("2026-03-03T00:00:00")
    for _ in range(12):
        ban = offend(now)
        lengths.append(int(ban.headers["Retry-After"]))
        now += 4 * 86_400_000
    assert lengths[:3] == [480, 960, 1920]
    assert max(lengths) == lengths[-1] == 3 * 86_400  # capped at three days


def test_429s_in_an_earlier_window_do_not_count_towards_a_ban():
    limiter = small(rejections_before_ban=2)
    start = at("2026-03-01T12:00:00")
    limiter.charge("spot", IP, 10, 0, start)
    rejection(limiter.charge, "spot", IP, 1, 0, start + 1)
    rejection(limiter.charge, "spot", IP, 1, 0, start + 2)
    limiter.charge("spot", IP, 10, 0, start + MINUTE)
    assert rejection(limiter.charge, "spot", IP, 1, 0, start + MINUTE + 1).http_status == 429


def test_over_an_order_limit_is_1015_and_the_order_is_not_counted():
    limiter = small(weight=1000)
    now = at("2026-03-01T12:00:01")
    limiter.charge("spot", IP, 1, 3, now)
    error = rejection(limiter.charge, "spot", IP, 1, 1, now + 1000)
    assert (error.http_status, error.code) == (429, -1015)
    assert error.msg == "Too many new orders; current limit is 3 orders per 10 SECOND."
    assert error.headers == {"X-MBX-USED-WEIGHT-1M": "2", "Retry-After": "8"}
    counts = limiter.usage("spot", IP, now + 1000)
    assert [counts[limit] for limit in limiter.limits("spot")] == [2, 3, 3]
    headers = limiter.charge("spot", IP, 1, 1, at("2026-03-01T12:00:10"))
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert headers["X-MBX-ORDER-COUNT-1D"] == "4"
    error = rejection(limiter.charge, "spot", IP, 1, 2, at("2026-03-01T12:00:20"))
    assert error.msg == "Too many new orders; current limit is 5 orders per 1 DAY."


def test_order_counts_by_window():
    limiter = RateLimiter()
    cost = endpoint_cost("usdm", "POST", "/fapi/v1/batchOrders", {})
    headers = limiter.charge("usdm", IP, cost.weight, cost.orders, at("2026-03-01T12:00:00"))
    assert headers == {
        "X-MBX-USED-WEIGHT-1M": "5",
        "X-MBX-ORDER-COUNT-1M": "1",
        "X-MBX-ORDER-COUNT-10S": "5",
    }
    with pytest.raises(ValueError, match="no ORDERS window"):
        limiter.charge("usdm", IP, 1, {"1D": 1}, at("2026-03-01T12:00:00"))


def test_raw_requests_limit():
    limiter = RateLimiter({"spot": (RateLimit("RAW_REQUESTS", "MINUTE", 5, 2),)})
    now = at("2026-03-01T12:03:00")
    limiter.charge("spot", IP, 0, 0, now)
    limiter.charge("spot", IP, 0, 0, now)
    error = rejection(limiter.charge, "spot", IP, 0, 0, now)
    assert error.msg.startswith("Too many requests; current limit is 2 requests per 5 MINUTE.")
    assert error.headers["Retry-After"] == "120"


def test_funding_endpoints_share_a_side_bucket():
    limiter = RateLimiter()
    now = at("2026-03-01T12:00:00")
    for index in range(500):
        path = "/fapi/v1/fundingRate" if index % 2 else "/fapi/v1/fundingInfo"
        cost = endpoint_cost("usdm", "GET", path, {})
        limiter.charge("usdm", IP, cost.weight, cost.orders, now, bucket=cost.bucket)
    cost = endpoint_cost("usdm", "GET", "/fapi/v1/fundingRate", {})
    error = rejection(limiter.charge, "usdm", IP, cost.weight, 0, now, bucket=cost.bucket)
    assert (error.http_status, error.code) == (429, -1003)
    assert "500 requests per 5 MINUTE" in error.msg


# --- fault injection -------------------------------------------------------------------------


def test_forced_ban_on_every_pool_or_one():
    limiter = RateLimiter()
    now = at("2026-03-01T12:00:00")
    limiter.force_ban(IP, now + 5000)
    for product in ("spot", "usdm", "coinm"):
        error = rejection(limiter.charge, product, IP, 1, 0, now)
        assert (error.http_status, error.headers) == (418, {"Retry-After": "5"})
    assert rejection(limiter.charge, "usdm", IP, 1, 0, now).msg.startswith("Way too many requests")
    assert limiter.charge("spot", IP, 1, 0, now + 5000)
    limiter.force_ban(IP, now + 10_000, pool="coinm")
    assert rejection(limiter.charge, "usdm", IP, 1, 0, now + 6000).http_status == 418
    assert limiter.charge("spot", IP, 1, 0, now + 6000)


def test_forced_429s_hit_the_next_requests_of_a_pool():
    limiter = RateLimiter()
    now = at("2026-03-01T12:00:30")
    limiter.force_429("usdm", 2)
    for ip in (IP, "10.0.0.2"):
        error = rejection(limiter.charge, "coinm", ip, 1, 0, now)
        assert (error.http_status, error.code, error.headers["Retry-After"]) == (429, -1003, "30")
    assert limiter.charge("usdm", IP, 1, 0, now) == {"X-MBX-USED-WEIGHT-1M": "1"}
    assert limiter.charge("spot", IP, 1, 0, now)


# --- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "weight"),
    [
        (None, 5),
        ("1", 5),
        ("100", 5),
        ("101", 25),
        ("500", 25),
        ("501", 50),
        ("1000", 50),
        ("1001", 250),
        ("5000", 250),
    ],
)
def test_spot_depth_weight_by_limit(limit, weight):
    params = {"symbol": "BTCUSDT"} | ({"limit": limit} if limit else {})
    assert weight_for("spot", "GET", "/api/v3/depth", params) == weight


@pytest.mark.parametrize("product", ["usdm", "coinm"])
@pytest.mark.parametrize(
    ("limit", "weight"),
    [(None, 10), ("5", 2), ("10", 2), ("20", 2), ("50", 2), ("100", 5), ("500", 10), ("1000", 20)],
)
def test_futures_depth_weight_by_limit(product, limit, weight):
    prefix = "/fapi/v1" if product == "usdm" else "/dapi/v1"
    params = {"limit": limit} if limit else {}
    assert weight_for(product, "GET", f"{prefix}/depth", params) == weight


@pytest.mark.parametrize(
    ("limit", "weight"),
    [
        (None, 5),
        ("1", 1),
        ("99", 1),
        ("100", 2),
        ("499", 2),
        ("500", 5),
        ("1000", 5),
        ("1001", 10),
        ("1500", 10),
    ],
)
def test_futures_klines_weight_by_limit(limit, weight):
    params = {"symbol": "BTCUSDT", "interval": "1m"} | ({"limit": limit} if limit else {})
    for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines", "/dapi/v1/continuousKlines"):
        product = "usdm" if path.startswith("/fapi") else "coinm"
        assert weight_for(product, "GET", path, params) == weight


def test_spot_klines_weigh_two_whatever_the_limit():
    for limit in ("1", "500", "1000"):
        assert weight_for("spot", "GET", "/api/v3/klines", {"limit": limit}) == 2


def _symbols(count: int) -> str:
    return "[" + ",".join(f'"S{index}USDT"' for index in range(count)) + "]"


@pytest.mark.parametrize(
    ("params", "weight"),
    [
        ({"symbol": "BTCUSDT"}, 2),
        ({}, 80),
        ({"symbols": _symbols(1)}, 2),
        ({"symbols": _symbols(20)}, 2),
        ({"symbols": _symbols(21)}, 40),
        ({"symbols": _symbols(100)}, 40),
        ({"symbols": _symbols(101)}, 80),
        ({"symbols": '["A","B"'}, 2),  # malformed: weighed by its commas
    ],
)
def test_spot_ticker_24hr_weight(params, weight):
    assert weight_for("spot", "GET", "/api/v3/ticker/24hr", params) == weight


@pytest.mark.parametrize(
    ("product", "method", "path", "params", "weight"),
    [
        ("spot", "GET", "/api/v3/ping", {}, 1),
        ("spot", "GET", "/api/v3/exchangeInfo", {}, 20),
        ("spot", "GET", "/api/v3/trades", {}, 25),
        ("spot", "GET", "/api/v3/historicalTrades", {}, 25),
        ("spot", "GET", "/api/v3/aggTrades", {}, 4),
        ("spot", "GET", "/api/v3/avgPrice", {}, 2),
        ("spot", "GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"}, 2),
        ("spot", "GET", "/api/v3/ticker/bookTicker", {"symbols": _symbols(3)}, 4),
        ("spot", "GET", "/api/v3/openOrders", {}, 80),
        ("spot", "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, 6),
        ("spot", "GET", "/api/v3/myTrades", {"orderId": "1"}, 5),
        ("spot", "POST", "/api/v3/order/test", {"computeCommissionRates": "true"}, 20),
        ("spot", "get", "/api/v3/account", {}, 20),
        ("usdm", "GET", "/fapi/v1/exchangeInfo", {}, 1),
        ("usdm", "GET", "/fapi/v1/trades", {}, 5),
        ("usdm", "GET", "/fapi/v1/aggTrades", {}, 20),
        ("usdm", "GET", "/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}, 1),
        ("usdm", "GET", "/fapi/v1/premiumIndex", {}, 10),
        ("coinm", "GET", "/dapi/v1/premiumIndex", {"symbol": "BTCUSD_PERP"}, 10),
        ("usdm", "GET", "/fapi/v1/openInterest", {"symbol": "BTCUSDT"}, 1),
        ("usdm", "GET", "/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"}, 1),
        ("usdm", "GET", "/fapi/v1/ticker/24hr", {}, 40),
        ("usdm", "GET", "/fapi/v1/ticker/bookTicker", {}, 5),
        ("usdm", "GET", "/fapi/v2/ticker/price", {}, 2),
        ("usdm", "GET", "/fapi/v3/account", {}, 5),
        ("coinm", "GET", "/dapi/v1/balance", {}, 1),
        ("usdm", "GET", "/fapi/v1/openOrders", {}, 40),
        ("usdm", "GET", "/fapi/v1/income", {}, 30),
        ("coinm", "GET", "/dapi/v1/income", {}, 20),
        ("usdm", "POST", "/fapi/v1/listenKey", {}, 1),
        ("usdm", "GET", "/fapi/v1/fundingRate", {}, 0),
    ],
)
def test_weight_spot_checks(product, method, path, params, weight):
    assert weight_for(product, method, path, params) == weight


def test_unknown_paths_weigh_the_documented_default():
    assert DEFAULT_WEIGHT == 1
    assert weight_for("spot", "GET", "/api/v3/nothing", {}) == 1
    assert weight_for("usdm", "GET", "/api/v3/exchangeInfo", {}) == 1  # wrong product prefix
    assert endpoint_cost("spot", "GET", "/api/v3/nothing", {}).orders == {}
    with pytest.raises(ValueError, match="unknown product"):
        weight_for("options", "GET", "/eapi/v1/time", {})


def test_spot_order_costs():
    order = endpoint_cost("spot", "POST", "/api/v3/order", {})
    assert (order.weight, order.orders, order.free_on_success) == (1, {"10S": 1, "1D": 1}, True)
    otoco = endpoint_cost("spot", "POST", "/api/v3/orderList/otoco", {})
    assert otoco.orders == {"10S": 3, "1D": 3}
    amend = endpoint_cost("spot", "PUT", "/api/v3/order/amend/keepPriority", {})
    assert (amend.weight, amend.orders, amend.free_on_success) == (4, {}, False)
