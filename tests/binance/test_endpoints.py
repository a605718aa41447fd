"""The endpoint table: weights against Binance's tables, coverage of the protocol reference,
and a sane security and priority on every row."""

from __future__ import annotations

import os
import re
from pathlib import Path

import orjson
import pytest

from actors.binance.costs import Cost, Pool, Priority
from actors.binance.endpoints import (
    ENDPOINTS,
    WS_API_METHODS,
    Security,
    UnknownEndpoint,
    cost,
    endpoint,
    security,
    ws_api_connect_cost,
    ws_api_cost,
    ws_api_method,
    ws_api_security,
)
from actors.config import AccountType

SPOT = AccountType.SPOT
USDM = AccountType.USDT_FUTURES
COINM = AccountType.COIN_FUTURES
ORDER = Priority.ORDER
PROTOCOL = Path(
    os.environ.get(
        "TERN_PROTOCOL_REFERENCE",
        Path(__file__).resolve().parents[3] / "shared" / "binance-protocol.md",
    )
).read_text(encoding="utf-8")


def weight(account_type, method, path, **params) -> int:
    return cost(account_type, method, path, params).weight


def symbols(count: int) -> str:
    return orjson.dumps([f"S{i}USDT" for i in range(count)]).decode()


# --- weights against the doc tables (binance-protocol.md section 3) ----------------------


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, 5),
        (1, 5),
        (100, 5),
        (101, 25),
        (500, 25),
        (501, 50),
        (1000, 50),
        (1001, 250),
        (5000, 250),
    ],
)
def test_spot_depth_tiers(limit, expected):
    params = {} if limit is None else {"limit": str(limit)}
    assert weight(SPOT, "GET", "/api/v3/depth", **params) == expected
    assert ws_api_cost(SPOT, "depth", params).weight == expected


@pytest.mark.parametrize("path", ["/fapi/v1/depth", "/dapi/v1/depth"])
@pytest.mark.parametrize(
    ("limit", "expected"),
    [(None, 10), (5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20)],
)
def test_futures_depth_tiers(path, limit, expected):
    params = {} if limit is None else {"limit": str(limit)}
    assert weight(USDM if "fapi" in path else COINM, "GET", path, **params) == expected


@pytest.mark.parametrize(
    "path",
    [
        f"/{api}/v1/{name}"
        for api in ("fapi", "dapi")
        for name in (
            "klines",
            "continuousKlines",
            "indexPriceKlines",
            "markPriceKlines",
            "premiumIndexKlines",
        )
    ],
)
@pytest.mark.parametrize(
    ("limit", "expected"),
    [(None, 5), (1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10), (1500, 10)],
)
def test_futures_kline_tiers(path, limit, expected):
    params = {} if limit is None else {"limit": str(limit)}
    assert weight(USDM if "fapi" in path else COINM, "GET", path, **params) == expected


def test_spot_klines_are_flat():
    for path in ("/api/v3/klines", "/api/v3/uiKlines", "/api/v3/avgPrice"):
        assert weight(SPOT, "GET", path, limit="1000") == 2


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"symbol": "BTCUSDT"}, 2),
        ({}, 80),
        ({"symbols": symbols(1)}, 2),
        ({"symbols": symbols(20)}, 2),
        ({"symbols": symbols(21)}, 40),
        ({"symbols": symbols(100)}, 40),
        ({"symbols": symbols(101)}, 80),
        ({"symbols": "not json"}, 80),
    ],
)
def test_spot_ticker_24hr(params, expected):
    assert cost(SPOT, "GET", "/api/v3/ticker/24hr", params).weight == expected
    assert ws_api_cost(SPOT, "ticker.24hr", params).weight == expected


@pytest.mark.parametrize("path", ["/api/v3/ticker/price", "/api/v3/ticker/bookTicker"])
def test_spot_price_and_book_tickers(path):
    assert weight(SPOT, "GET", path, symbol="BTCUSDT") == 2
    assert weight(SPOT, "GET", path) == 4
    assert weight(SPOT, "GET", path, symbols=symbols(3)) == 4


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"symbol": "A"}, 4), ({"symbols": symbols(10)}, 40), ({"symbols": symbols(51)}, 200)],
)
def test_spot_rolling_and_trading_day_tickers(params, expected):
    for path in ("/api/v3/ticker", "/api/v3/ticker/tradingDay"):
        assert cost(SPOT, "GET", path, params).weight == expected


@pytest.mark.parametrize(
    ("account_type", "path", "one", "whole"),
    [
        (USDM, "/fapi/v1/ticker/24hr", 1, 40),
        (USDM, "/fapi/v1/ticker/bookTicker", 2, 5),
        (USDM, "/fapi/v2/ticker/price", 1, 2),
        (USDM, "/fapi/v1/premiumIndex", 1, 10),
        (USDM, "/fapi/v1/openOrders", 1, 40),
        (USDM, "/fapi/v1/forceOrders", 20, 50),
        (COINM, "/dapi/v1/ticker/24hr", 1, 40),
        (COINM, "/dapi/v1/ticker/bookTicker", 2, 5),
        (COINM, "/dapi/v1/premiumIndex", 10, 10),
        (COINM, "/dapi/v1/allOrders", 20, 40),
        (SPOT, "/api/v3/openOrders", 6, 80),
    ],
)
def test_symbol_dependent_weights(account_type, path, one, whole):
    assert weight(account_type, "GET", path, symbol="BTCUSDT") == one
    assert weight(account_type, "GET", path) == whole
    assert weight(account_type, "GET", path, symbol="") == whole


def test_param_dependent_spot_weights():
    assert weight(SPOT, "GET", "/api/v3/myTrades", symbol="A") == 20
    assert weight(SPOT, "GET", "/api/v3/myTrades", symbol="A", orderId="1") == 5
    assert weight(SPOT, "POST", "/api/v3/order/test") == 1
    assert weight(SPOT, "POST", "/api/v3/order/test", computeCommissionRates="true") == 20
    assert weight(SPOT, "POST", "/api/v3/order/test", computeCommissionRates="false") == 1


def test_fixed_weights_from_the_doc_tables():
    expected = {
        (SPOT, "GET", "/api/v3/exchangeInfo"): 20,
        (SPOT, "GET", "/api/v3/trades"): 25,
        (SPOT, "GET", "/api/v3/aggTrades"): 4,
        (SPOT, "GET", "/api/v3/order"): 4,
        (SPOT, "GET", "/api/v3/allOrders"): 20,
        (SPOT, "GET", "/api/v3/account"): 20,
        (SPOT, "GET", "/api/v3/rateLimit/order"): 40,
        (SPOT, "PUT", "/api/v3/order/amend/keepPriority"): 4,
        (USDM, "GET", "/fapi/v1/exchangeInfo"): 1,
        (USDM, "GET", "/fapi/v1/aggTrades"): 20,
        (USDM, "GET", "/fapi/v1/allOrders"): 5,
        (USDM, "GET", "/fapi/v3/account"): 5,
        (USDM, "GET", "/fapi/v1/positionSide/dual"): 30,
        (USDM, "GET", "/fapi/v1/commissionRate"): 20,
        (USDM, "GET", "/fapi/v1/income"): 30,
        (USDM, "POST", "/fapi/v1/countdownCancelAll"): 10,
        (USDM, "PUT", "/fapi/v1/listenKey"): 1,
        (COINM, "GET", "/dapi/v1/balance"): 1,
        (COINM, "GET", "/dapi/v1/positionRisk"): 1,
        (COINM, "GET", "/dapi/v1/account"): 5,
        (COINM, "GET", "/dapi/v1/income"): 20,
    }
    for (account_type, method, path), value in expected.items():
        assert weight(account_type, method, path) == value, path


def test_orders_and_pools():
    assert cost(SPOT, "POST", "/api/v3/order", {}) == Cost(Pool.SPOT, 1, 1, Priority.ORDER)
    assert cost(SPOT, "DELETE", "/api/v3/order", {}) == Cost(Pool.SPOT, 1, 0, Priority.CANCEL)
    assert cost(SPOT, "POST", "/api/v3/orderList/oco", {}).orders == 2
    assert cost(SPOT, "POST", "/api/v3/orderList/oto", {}).orders == 2
    assert cost(SPOT, "POST", "/api/v3/orderList/otoco", {}).orders == 3
    assert cost(SPOT, "PUT", "/api/v3/order/amend/keepPriority", {}).orders == 0
    assert cost(USDM, "POST", "/fapi/v1/order", {}) == Cost(Pool.FUTURES, 0, 1, Priority.ORDER)
    assert cost(USDM, "POST", "/fapi/v1/algoOrder", {}) == Cost(Pool.FUTURES, 0, 1, ORDER)
    assert cost(USDM, "POST", "/fapi/v1/batchOrders", {}) == Cost(Pool.FUTURES, 5, 5, ORDER)
    assert cost(COINM, "PUT", "/dapi/v1/order", {}) == Cost(Pool.FUTURES, 1, 1, ORDER)
    assert cost(COINM, "GET", "/dapi/v1/ping", {}).pool is Pool.FUTURES  # one futures pool


def test_security_lookup():
    assert security(SPOT, "GET", "/api/v3/depth") is Security.NONE
    assert security(SPOT, "post", "/api/v3/order") is Security.TRADE
    assert security(USDM, "GET", "/fapi/v1/historicalTrades") is Security.MARKET_DATA
    assert security(USDM, "POST", "/fapi/v1/listenKey") is Security.USER_STREAM
    assert security(COINM, "GET", "/dapi/v1/account") is Security.USER_DATA


def test_signing_rules_by_product():
    assert not Security.NONE.signed(SPOT)
    assert not Security.NONE.needs_key
    assert Security.USER_STREAM.signed(SPOT)  # Spot signs every non-NONE endpoint
    assert not Security.USER_STREAM.signed(USDM)  # futures: key only
    assert not Security.MARKET_DATA.signed(COINM)
    assert Security.MARKET_DATA.needs_key
    assert Security.TRADE.signed(USDM)
    assert Security.USER_DATA.signed(COINM)


# --- unknown and retired ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account_type", "method", "path", "message"),
    [
        (SPOT, "GET", "/api/v3/nothing", "not in tern's spot endpoint table"),
        (SPOT, "PUT", "/api/v3/order", "it has DELETE, GET, POST"),
        (SPOT, "POST", "/api/v3/userDataStream", "2026-02-20"),
        (SPOT, "DELETE", "/api/v3/userDataStream", "userDataStream.subscribe"),
        (SPOT, "GET", "/api/v1/time", "retired on 2026-03-25"),
        (SPOT, "POST", "/fapi/v1/order", "is a usdt_futures endpoint, not spot"),
        (USDM, "GET", "/dapi/v1/depth", "is a coin_futures endpoint"),
        (USDM, "GET", "/futures/data/openInterestHist", "not a Binance Spot"),
        (USDM, "GET", "/fapi/v1/depth?limit=5", "without its query string"),
        (COINM, "POST", "/dapi/v1/order/test", "not in tern's coin_futures endpoint table"),
    ],
)
def test_unknown_endpoints_are_errors(account_type, method, path, message):
    with pytest.raises(UnknownEndpoint, match=re.escape(message)):
        cost(account_type, method, path, {})


def test_malformed_limit_is_an_error():
    with pytest.raises(ValueError, match="limit must be an integer"):
        cost(SPOT, "GET", "/api/v3/depth", {"limit": "lots"})


def test_ws_api_lookups():
    assert ws_api_cost(SPOT, "v3/order.place", {}) == Cost(Pool.SPOT, 1, 1, ORDER)
    assert ws_api_cost(USDM, "order.place", {}) == Cost(Pool.FUTURES, 0, 1, ORDER)
    assert ws_api_cost(USDM, "v2/account.status", {}).weight == 5
    assert ws_api_cost(COINM, "account.balance", {}).weight == 1
    assert ws_api_cost(USDM, "depth", {"limit": "1000"}).weight == 20
    assert ws_api_cost(SPOT, "executionRules", {"symbols": symbols(3)}).weight == 6
    assert ws_api_cost(SPOT, "executionRules", {}).weight == 40
    assert ws_api_security(SPOT, "session.logon") is Security.USER_DATA
    assert ws_api_security(USDM, "userDataStream.start") is Security.USER_STREAM
    assert ws_api_connect_cost(SPOT) == Cost(Pool.SPOT, 2, 0, Priority.ACCOUNT)
    assert ws_api_connect_cost(USDM).weight == 5
    for method, message in [
        ("algoOrder.place", "not in tern's coin_futures table"),
        ("v2/account.status", "not in tern's coin_futures table"),
    ]:
        with pytest.raises(UnknownEndpoint, match=re.escape(message)):
            ws_api_method(COINM, method)
    with pytest.raises(UnknownEndpoint, match="2026-02-20"):
        ws_api_method(SPOT, "userDataStream.start")
    with pytest.raises(UnknownEndpoint, match=re.escape("order.modify")):
        ws_api_method(SPOT, "order.modify")


# --- every row is sane -------------------------------------------------------------------------

SAMPLE_PARAMS = [
    {},
    {"symbol": "BTCUSDT"},
    {"symbols": symbols(30)},
    {"limit": "1"},
    {"limit": "5000"},
    {"orderId": "1", "computeCommissionRates": "true", "preventedMatchId": "1"},
]
ROWS = [*ENDPOINTS, *WS_API_METHODS]


def row_id(row) -> str:
    return f"{row.method} {getattr(row, 'path', row.account_type.value)}"


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_every_row_has_sane_security_priority_and_weight(row):
    name = getattr(row, "path", row.method)
    for params in SAMPLE_PARAMS:
        value = row.weight(params)
        assert 0 <= value <= row.weight.maximum <= 300
    if row.orders:
        assert row.security is Security.TRADE
        assert row.priority is Priority.ORDER
        assert 1 <= row.orders <= 5
    if row.security in (Security.NONE, Security.MARKET_DATA):
        assert row.priority is Priority.MARKET_DATA or name.startswith("session.")
    else:
        assert row.priority is not Priority.MARKET_DATA
    if row.priority is Priority.CANCEL:
        assert row.security is Security.TRADE
        assert (
            getattr(row, "method", "") == "DELETE"
            or "cancel" in name.lower()
            or name.endswith("countdownCancelAll")
        )
    if row.security is Security.USER_STREAM:
        assert "listenKey" in name or "userDataStream" in name
        assert row.priority is Priority.ACCOUNT
    if row.security is Security.USER_DATA:
        if name.endswith("/commissionRate"):  # per-symbol fee lookups wait for the rest
            assert row.priority is Priority.BACKGROUND
        else:
            assert row.priority is Priority.ACCOUNT
    if isinstance(row, type(ENDPOINTS[0])):
        assert row.method in ("GET", "POST", "PUT", "DELETE")
        assert row.account_type in AccountType
        if row.method == "GET":
            assert row.security is not Security.TRADE
            assert row.priority is not Priority.ORDER
        if row.method == "DELETE" and row.security is Security.TRADE:
            assert row.priority is Priority.CANCEL


def test_no_duplicate_rows():
    assert len({(e.method, e.path) for e in ENDPOINTS}) == len(ENDPOINTS)
    assert len({(m.account_type, m.method) for m in WS_API_METHODS}) == len(WS_API_METHODS)


# --- coverage of the protocol reference (sections 4.1, 4.2, 4.2.1, 4.3, 10) ------------------

_ROW = re.compile(
    r"^\| (?:\(([^)]*)\) )?((?:GET|POST|PUT|DELETE)(?:, (?:GET|POST|PUT|DELETE))*) "
    r"`(/[^`]+)`(?: \(`(/[^`]+)`\))?([^|]*)",
    re.MULTILINE,
)


def section(start: str, end: str) -> str:
    return PROTOCOL[PROTOCOL.index(start) : PROTOCOL.index(end)]


def documented_rest() -> list[tuple[str, str, str, str]]:
    """(account type, method, path, note) for every endpoint row of sections 4.1-4.2.1."""
    found = []
    for start, end, prefix in [
        ("### 4.1 Spot", "### 4.2 USD-M", "/api/v3"),
        ("### 4.2 USD-M", "### 4.3 COIN-M", ""),
    ]:
        for before, methods, path, alias, after in _ROW.findall(section(start, end)):
            note = (before + after).strip()
            paths = [prefix + path]
            if alias:
                paths.append(("/fapi" if alias.startswith("/v") else prefix) + alias)
            for method in methods.split(", "):
                for full in paths:
                    found.append((method, full, note))
    return found


DOCUMENTED = documented_rest()


def test_the_reference_was_parsed():
    assert len(DOCUMENTED) > 75
    assert ("GET", "/api/v3/uiKlines", "") in DOCUMENTED
    assert ("GET", "/fapi/v3/balance", "") in DOCUMENTED
    assert ("DELETE", "/fapi/v1/algoOpenOrders", "") in DOCUMENTED


@pytest.mark.parametrize(("method", "path", "note"), DOCUMENTED)
def test_every_documented_rest_endpoint_is_in_the_table(method, path, note):
    account_type = SPOT if path.startswith("/api/") else USDM
    if note.startswith("removed"):
        with pytest.raises(UnknownEndpoint, match="2026-02-20"):
            endpoint(account_type, method, path)
        return
    row = endpoint(account_type, method, path)
    if "MARKET_DATA" in note:
        assert row.security is Security.MARKET_DATA


def test_every_documented_coinm_endpoint_is_in_the_table():
    text = section("### 4.3 COIN-M", "## 5. Order semantics")
    names = re.search(r"`/dapi/v1/\{([^}]+)\}`", text).group(1).split(",")
    assert len(names) > 35
    paths = {e.path for e in ENDPOINTS}
    for name in names:
        assert f"/dapi/v1/{name}" in paths, name
    assert "/dapi/v2/leverageBracket" in paths
    explicit = re.findall(r"`(GET|POST|PUT|DELETE) (/dapi/[^`]+)`", text)
    assert len(explicit) >= 4
    for method, path in explicit:
        endpoint(COINM, method, path)
    # UM's shapes: every method UM has on a path COIN-M mirrors, COIN-M has too.
    for name in names:
        um = {e.method for e in ENDPOINTS if e.path == f"/fapi/v1/{name}"}
        cm = {e.method for e in ENDPOINTS if e.path == f"/dapi/v1/{name}"}
        assert um - {"GET"} <= cm or name == "order", name


def expand(name: str) -> list[str]:
    """``a[.b|.c]`` -> a, a.b, a.c."""
    match = re.fullmatch(r"([^\[]+)\[([^\]]+)\]", name)
    if not match:
        return [name]
    return [match.group(1)] + [match.group(1) + tail for tail in match.group(2).split("|")]


def test_every_documented_ws_api_method_is_in_the_table():
    text = section("## 10. Spot WebSocket API", "## 11.")
    spot_line = next(line for line in text.splitlines() if line.startswith("* All methods:"))
    spot = [n for raw in re.findall(r"`([^`]+)`", spot_line) for n in expand(raw)]
    assert len(spot) > 50
    for name in spot:
        ws_api_method(SPOT, name)
    um_line = next(line for line in text.splitlines() if "[UM] `order.place`" in line)
    um = re.findall(r"`([^`]+)`", um_line)
    for name in um:
        ws_api_method(USDM, name)
        if not name.startswith("algoOrder."):  # "[CM] the same without algoOrder.*"
            ws_api_method(COINM, name)
    for name in ("account.balance", "account.position", "account.status"):
        ws_api_method(USDM, f"v2/{name}")  # "(and v2 variants)"
