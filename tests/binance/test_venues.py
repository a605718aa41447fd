"""The venue table: every (environment, Binance US, product) combination, and the overrides."""

from __future__ import annotations

import itertools

import pytest

from actors.binance.venues import (
    VENUES,
    MarketStreams,
    Route,
    Site,
    VenueError,
    available,
    resolve,
)
from actors.config import AccountType, ClientConfig, Environment, config_from_dict

SPOT = AccountType.SPOT
USDM = AccountType.USDT_FUTURES
COINM = AccountType.COIN_FUTURES
COMBINATIONS = list(itertools.product(Environment, (False, True), AccountType))


def client(account_type: AccountType, environment: Environment = Environment.LIVE, **kwargs):
    return ClientConfig(name="c1", account_type=account_type, environment=environment, **kwargs)


# --- the whole table ------------------------------------------------------------------


@pytest.mark.parametrize(("environment", "us", "account_type"), COMBINATIONS)
def test_every_combination_resolves_or_says_what_is_available(environment, us, account_type):
    config = client(account_type, environment, us=us)
    row = VENUES.get((Site.of(environment, us), account_type))
    offered = row is not None and (not us or environment is Environment.LIVE)
    if not offered:
        with pytest.raises(VenueError) as caught:
            resolve(config)
        message = str(caught.value)
        assert "'c1'" in message
        assert account_type.value in message
        assert ("Binance US" if us else environment.value) in message
        assert "Available for" in message or "Binance US offers: spot on LIVE" in message
        assert caught.value.client == "c1"
        return
    endpoints = resolve(config)
    assert endpoints.client == "c1"
    assert (endpoints.account_type, endpoints.environment, endpoints.us) == (
        account_type,
        environment,
        us,
    )
    assert endpoints.rest.startswith("https://")
    assert not endpoints.rest.endswith("/")
    assert endpoints.ws_api.startswith("wss://")
    assert endpoints.ws_api.endswith(
        {SPOT: "/ws-api/v3", USDM: "/ws-fapi/v1", COINM: "/ws-dapi/v1"}[account_type]
    )
    for route in Route:
        assert endpoints.ws_market[route].startswith("wss://")
    if account_type is SPOT:
        assert endpoints.ws_user is None  # Spot user data rides the WS-API
    else:
        assert endpoints.ws_user is not None
        assert endpoints.ws_user.startswith("wss://")
    if account_type is USDM:
        assert endpoints.ws_market.routed
        assert endpoints.ws_market[Route.PUBLIC].endswith("/public")
        assert endpoints.ws_market[Route.MARKET].endswith("/market")
        assert endpoints.ws_user.endswith("/private")
    else:
        assert not endpoints.ws_market.routed
        assert endpoints.ws_market.public == endpoints.ws_market.market


def test_table_rows_are_sane():
    for (site, account_type), row in VENUES.items():
        assert row.routed is (account_type is USDM), (site, account_type)
        assert (row.ws_user is None) is (account_type is SPOT), (site, account_type)
        assert not row.rest.endswith("/")
        assert not row.ws_market.endswith("/")
        if site is Site.US:
            assert account_type is SPOT
            assert ".binance.us" in row.rest
        else:
            assert ".binance.us" not in row.rest


def test_what_each_product_is_offered_on():
    assert available(SPOT) == (Site.LIVE, Site.DEMO, Site.TESTNET, Site.US)
    assert available(USDM) == (Site.LIVE, Site.DEMO, Site.TESTNET)
    assert available(COINM) == (Site.LIVE, Site.TESTNET)


# --- pinned URLs (Binance moves them: each change must be deliberate) -----------------


@pytest.mark.parametrize(
    ("environment", "us", "account_type", "rest", "market", "public", "ws_api", "user"),
    [
        (
            Environment.LIVE,
            False,
            SPOT,
            "https://api.binance.com",
            "wss://stream.binance.com:9443",
            "wss://stream.binance.com:9443",
            "wss://ws-api.binance.com:443/ws-api/v3",
            None,
        ),
        (
            Environment.LIVE,
            False,
            USDM,
            "https://fapi.binance.com",
            "wss://fstream.binance.com/market",
            "wss://fstream.binance.com/public",
            "wss://ws-fapi.binance.com/ws-fapi/v1",
            "wss://fstream.binance.com/private",
        ),
        (
            Environment.LIVE,
            False,
            COINM,
            "https://dapi.binance.com",
            "wss://dstream.binance.com",
            "wss://dstream.binance.com",
            "wss://ws-dapi.binance.com/ws-dapi/v1",
            "wss://dstream.binance.com",
        ),
        (
            Environment.DEMO,
            False,
            SPOT,
            "https://demo-api.binance.com",
            "wss://demo-stream.binance.com:9443",
            "wss://demo-stream.binance.com:9443",
            "wss://demo-ws-api.binance.com/ws-api/v3",
            None,
        ),
        (
            Environment.DEMO,
            False,
            USDM,
            "https://demo-fapi.binance.com",
            "wss://demo-fstream.binance.com/market",
            "wss://demo-fstream.binance.com/public",
            "wss://testnet.binancefuture.com/ws-fapi/v1",
            "wss://demo-fstream.binance.com/private",
        ),
        (
            Environment.TESTNET,
            False,
            SPOT,
            "https://testnet.binance.vision",
            "wss://stream.testnet.binance.vision:9443",
            "wss://stream.testnet.binance.vision:9443",
            "wss://ws-api.testnet.binance.vision/ws-api/v3",
            None,
        ),
        (
            Environment.TESTNET,
            False,
            COINM,
            "https://testnet.binancefuture.com",
            "wss://dstream.binancefuture.com",
            "wss://dstream.binancefuture.com",
            "wss://testnet.binancefuture.com/ws-dapi/v1",
            "wss://dstream.binancefuture.com",
        ),
        (
            Environment.LIVE,
            True,
            SPOT,
            "https://api.binance.us",
            "wss://stream.binance.us:9443",
            "wss://stream.binance.us:9443",
            "wss://ws-api.binance.us:443/ws-api/v3",
            None,
        ),
    ],
)
def test_pinned_urls(environment, us, account_type, rest, market, public, ws_api, user):
    endpoints = resolve(client(account_type, environment, us=us))
    assert endpoints.rest == rest
    assert endpoints.ws_market.market == market
    assert endpoints.ws_market.public == public
    assert endpoints.ws_api == ws_api
    assert endpoints.ws_user == user
    assert endpoints.notices == ()


def test_usdm_testnet_is_the_demo_environment_with_a_notice():
    testnet = resolve(client(USDM, Environment.TESTNET))
    demo = resolve(client(USDM, Environment.DEMO))
    assert (testnet.rest, testnet.ws_market, testnet.ws_api, testnet.ws_user) == (
        demo.rest,
        demo.ws_market,
        demo.ws_api,
        demo.ws_user,
    )
    # REST, streams and user streams on one backend: a listen key from one works on the other.
    assert "demo" in testnet.rest
    assert "demo" in testnet.ws_user
    assert len(testnet.notices) == 1
    assert 'environment = "DEMO"' in testnet.notices[0]


# --- unavailable combinations -----------------------------------------------------------


def test_coinm_on_demo_is_refused_with_the_alternatives():
    with pytest.raises(VenueError, match="coin_futures on DEMO is not available") as caught:
        resolve(client(COINM, Environment.DEMO))
    assert "no COIN-M futures" in str(caught.value)
    assert "Available for coin_futures: LIVE, TESTNET" in str(caught.value)


@pytest.mark.parametrize("account_type", [USDM, COINM])
def test_futures_on_binance_us_are_refused(account_type):
    with pytest.raises(VenueError, match="Binance US has Spot only") as caught:
        resolve(client(account_type, us=True))
    assert "Binance US offers: spot on LIVE" in str(caught.value)


@pytest.mark.parametrize("environment", [Environment.DEMO, Environment.TESTNET])
def test_binance_us_has_no_demo_or_testnet(environment):
    with pytest.raises(VenueError, match="no documented demo or testnet"):
        resolve(client(SPOT, environment, us=True))


# --- overrides --------------------------------------------------------------------------


def test_design_example_points_every_usdm_surface_at_the_local_venue():
    endpoints = resolve(
        client(
            USDM,
            base_url_http="http://127.0.0.1:8080",
            base_url_ws="ws://127.0.0.1:8080/usdm",
            base_url_ws_api="ws://127.0.0.1:8080/ws-fapi/v1",
            base_url_ws_stream="ws://127.0.0.1:8080/usdm",
        )
    )
    assert endpoints.rest == "http://127.0.0.1:8080"
    assert endpoints.ws_market == MarketStreams(
        public="ws://127.0.0.1:8080/usdm/public",
        market="ws://127.0.0.1:8080/usdm/market",
        routed=True,
    )
    assert endpoints.ws_api == "ws://127.0.0.1:8080/ws-fapi/v1"
    assert endpoints.ws_user == "ws://127.0.0.1:8080/usdm/private"
    assert endpoints.notices == ()


@pytest.mark.parametrize(
    "override",
    [
        "wss://fstream.example.com",
        "wss://fstream.example.com/",
        "wss://fstream.example.com/ws",
        "wss://fstream.example.com/stream",
        "wss://fstream.example.com/market",
        "wss://fstream.example.com/public/ws",
        "wss://fstream.example.com/private/stream/",
    ],
)
def test_usdm_stream_overrides_are_rebuilt_from_their_root(override):
    endpoints = resolve(client(USDM, base_url_ws=override))
    assert endpoints.ws_market.public == "wss://fstream.example.com/public"
    assert endpoints.ws_market.market == "wss://fstream.example.com/market"
    # Without base_url_ws_stream the user stream follows the market stream host.
    assert endpoints.ws_user == "wss://fstream.example.com/private"


def test_user_stream_override_wins_over_the_market_one():
    endpoints = resolve(
        client(USDM, base_url_ws="wss://a.example.com", base_url_ws_stream="wss://b.example.com/ws")
    )
    assert endpoints.ws_market.market == "wss://a.example.com/market"
    assert endpoints.ws_user == "wss://b.example.com/private"


@pytest.mark.parametrize("override", ["ws://127.0.0.1:8080/coinm", "ws://127.0.0.1:8080/coinm/ws"])
def test_coinm_stream_override_is_unrouted(override):
    endpoints = resolve(client(COINM, base_url_ws=override))
    assert endpoints.ws_market.public == endpoints.ws_market.market == "ws://127.0.0.1:8080/coinm"
    assert endpoints.ws_user == "ws://127.0.0.1:8080/coinm"


def test_spot_overrides():
    endpoints = resolve(
        client(
            SPOT,
            base_url_http="https://api1.binance.com/",
            base_url_ws="wss://stream.binance.com:443/ws",
            base_url_ws_api="wss://ws-api.binance.com:9443/ws-api/v3?returnRateLimits=false",
        )
    )
    assert endpoints.rest == "https://api1.binance.com"
    assert endpoints.ws_market.market == "wss://stream.binance.com:443"
    assert endpoints.ws_api == "wss://ws-api.binance.com:9443/ws-api/v3?returnRateLimits=false"
    assert endpoints.notices == ()  # other Binance hosts are not a mix-up


def test_base_url_ws_stream_on_spot_is_refused():
    with pytest.raises(VenueError, match="base_url_ws_api instead"):
        resolve(client(SPOT, base_url_ws_stream="ws://127.0.0.1:8080"))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("base_url_http", "ws://127.0.0.1:8080"),
        ("base_url_http", "127.0.0.1:8080"),
        ("base_url_http", "http://127.0.0.1:8080?x=1"),
        ("base_url_http", "http://127.0.0.1:99999"),
        ("base_url_ws", "http://127.0.0.1:8080/usdm"),
        ("base_url_ws", "wss://"),
        ("base_url_ws_api", "https://ws-fapi.binance.com/ws-fapi/v1"),
        ("base_url_ws_stream", "ws://h/x#frag"),
        ("proxy_url", "ftp://proxy:21"),
        ("proxy_url", "socks5://proxy:1080"),
    ],
)
def test_bad_override_urls_name_the_option(option, value):
    with pytest.raises(VenueError, match=option):
        resolve(client(USDM, **{option: value}))


def test_proxy_is_carried_and_its_password_never_shown():
    endpoints = resolve(client(SPOT, proxy_url="http://user:hunter2@proxy.local:3128"))
    assert endpoints.proxy_url == "http://user:hunter2@proxy.local:3128"
    assert "hunter2" not in repr(endpoints)
    assert "user:***@proxy.local:3128" in repr(endpoints)
    with pytest.raises(VenueError) as caught:
        resolve(client(SPOT, proxy_url="ftp://user:hunter2@proxy.local"))
    assert "hunter2" not in str(caught.value)


def test_partial_local_override_leaves_a_notice_per_surface_still_on_binance():
    endpoints = resolve(client(USDM, base_url_http="http://127.0.0.1:8080"))
    assert len(endpoints.notices) == 3
    joined = "\n".join(endpoints.notices)
    for option, default in [
        ("base_url_ws", "wss://fstream.binance.com"),
        ("base_url_ws_api", "wss://ws-fapi.binance.com/ws-fapi/v1"),
        ("base_url_ws_stream", "wss://fstream.binance.com"),
    ]:
        assert f"{option} is not set: that surface still goes to {default}" in joined


def test_config_file_clients_resolve():
    config = config_from_dict(
        {
            "clients": [
                {
                    "name": "usdm",
                    "account_type": "usdt_futures",
                    "environment": "DEMO",
                    "proxy_url": "http://127.0.0.1:3128",
                },
                {"name": "us", "account_type": "spot", "us": True},
            ]
        }
    )
    usdm, us = (resolve(c) for c in config.clients)
    assert usdm.rest == "https://demo-fapi.binance.com"
    assert usdm.proxy_url == "http://127.0.0.1:3128"
    assert us.rest == "https://api.binance.us"
