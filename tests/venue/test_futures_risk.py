"""Futures risk events: funding payments, margin calls, liquidation with the insurance fund,
auto-deleveraging and delivery settlement, on USD-M and COIN-M.

Event shapes are compared with Binance's recorded payloads (key sets and JSON types); money is
checked for conservation (every wallet change is an income row); one test runs the whole
liquidation over a real venue (REST, control API, listen-key stream, ``forceOrder`` stream).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket_url

from scenarios.venue.config import KeySpec, VenueConfig
from scenarios.venue.futures_accounts import ZERO
from scenarios.venue.market import FUNDING_INTERVAL_MS
from scenarios.venue.server import Venue, open_venue
from tests.venue.test_futures_helpers import (
    COINM,
    KEY_A,
    KEY_B,
    T0,
    USDM,
    Client,
    ManualClock,
    Signed,
    make_venue,
    market,
    um_fixture,  # noqa: F401  (fixture)
    venue_fixture,  # noqa: F401  (fixture)
    walk_to,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "binance"
RUST = FIXTURES / "rust_test_data" / "futures" / "user_data_json"
PYTHON = FIXTURES / "python_tests" / "ws_messages"
KEY_C = "C" * 64
UM = "BTCUSDT"
CM = "BTCUSD_PERP"
#: Fields Binance added after the recorded Rust payloads (price match, GTD, expiry reason).
NEWER = {"pm", "gtd", "er"}


def rust(name: str) -> dict[str, Any]:
    return json.loads((RUST / f"{name}.json").read_text())


def python(name: str) -> dict[str, Any]:
    return json.loads((PYTHON / f"ws_futures_order_update_{name}.json").read_text())["data"]


def kind(value: Any) -> str:
    return type(value).__name__


def same_types(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Every key both have carries the same JSON type (the synthetic Python fixtures use
    null for absent values; those are skipped)."""
    for key, value in theirs.items():
        if key in ours and value is not None:
            assert kind(ours[key]) == kind(value), (key, ours[key], value)


def assert_like_rust(event: dict[str, Any], name: str, *, coinm: bool = False) -> None:
    """``event`` has exactly the keys of the recorded payload (plus the newer fields; COIN-M
    adds ``ma`` and the alias ``i``) and the same JSON types."""
    fixture = rust(name)
    extra = NEWER | ({"ma"} if coinm else set())
    assert set(event["o"]) - extra == set(fixture["o"]), set(event["o"]) ^ set(fixture["o"])
    top = set(event) - ({"i"} if coinm else set())
    assert top == set(fixture)
    same_types(event["o"], fixture["o"])


def assert_like_python(event: dict[str, Any], name: str) -> None:
    """The synthetic Python payloads: every field they give a value is there, same type
    (``null`` stands for an absent field there; ``W`` is no Binance futures field)."""
    fixture = python(name)
    given = {key for key, value in fixture["o"].items() if value is not None} - {"W"}
    assert given <= set(event["o"]), given - set(event["o"])
    same_types(event["o"], fixture["o"])


def sequence(client: Client) -> list[tuple[str, ...]]:
    """The user-data events as ``(e, x, X)`` / ``(e, m)`` / ``(e,)``."""
    rows: list[tuple[str, ...]] = []
    for event in client.events:
        if event["e"] == "ORDER_TRADE_UPDATE":
            rows.append((event["e"], event["o"]["x"], event["o"]["X"]))
        elif event["e"] == "ACCOUNT_UPDATE":
            rows.append((event["e"], event["a"]["m"]))
        else:
            rows.append((event["e"],))
    return rows


def venue3() -> Venue:
    """A venue with three accounts (A, B, C) on a manual clock."""
    config = VenueConfig(
        seed=5,
        keys=tuple(KeySpec(api_key=key, secret=f"s-{key[0]}") for key in (KEY_A, KEY_B, KEY_C)),
        epoch_ms=T0,
    )
    venue = Venue(config)
    venue.clock = ManualClock(T0)  # type: ignore[assignment]
    return venue


def orders(client: Client) -> list[dict[str, Any]]:
    return [event for event in client.events if event.get("e") == "ORDER_TRADE_UPDATE"]


def updates(client: Client, reason: str | None = None) -> list[dict[str, Any]]:
    return [
        event
        for event in client.events
        if event.get("e") == "ACCOUNT_UPDATE" and (reason is None or event["a"]["m"] == reason)
    ]


def position(client: Client, symbol: str, side: str = "BOTH") -> Decimal:
    return client.engine.accounts.account(client.key).position(symbol, side).amount


def wallet(client: Client, asset: str) -> Decimal:
    accounts = client.engine.accounts
    return accounts.wallet_balance(accounts.account(client.key), asset)


def income_total(client: Client, since: int = 0) -> Decimal:
    rows = client.engine.income.get(client.key, [])[since:]
    return sum((Decimal(row["income"]) for row in rows), ZERO)


def isolated_long(client: Client, symbol: str, quantity: str, leverage: int = 50) -> None:
    client.call("POST", "marginType", symbol=symbol, marginType="ISOLATED")
    client.call("POST", "leverage", symbol=symbol, leverage=leverage)
    client.order(symbol=symbol, side="BUY", type="MARKET", quantity=quantity)
    assert position(client, symbol) == Decimal(quantity)


def capture_public(venue: Venue) -> list[tuple[str, dict[str, Any]]]:
    """Record what the venue publishes on public streams."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = venue.hub.publish

    def publish(product: Any, stream: str, payload: Any) -> None:
        seen.append((stream, payload))
        original(product, stream, payload)

    venue.hub.publish = publish  # type: ignore[method-assign]
    return seen


# --- funding ---------------------------------------------------------------------------------


async def test_funding_cross_pays_and_isolated_moves_the_isolated_wallet(venue, um):
    other = Client(venue, USDM, KEY_B)
    um.order(symbol=UM, side="BUY", type="MARKET", quantity="0.010")  # cross long
    other.call("POST", "marginType", symbol=UM, marginType="ISOLATED")
    other.order(symbol=UM, side="SELL", type="MARKET", quantity="0.020")  # isolated short
    account_b = other.engine.accounts.account(KEY_B)
    isolated_before = account_b.position(UM, "BOTH").isolated_wallet
    before_a, rows_a = wallet(um, "USDT"), len(um.engine.income[KEY_A])
    um.events.clear()
    other.events.clear()
    due = (T0 // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
    venue.clock.time_ms = due + 50
    um.engine.on_time(venue.clock.now_ms())

    history = um.call("GET", "/fapi/v1/fundingRate", symbol=UM)
    assert [row["fundingTime"] for row in history] == [due]
    rate, mark = Decimal(history[0]["fundingRate"]), Decimal(history[0]["markPrice"])
    assert rate != 0
    # longs pay when the rate is positive: payment = -rate x signed notional at the mark
    paid_a = (-rate * Decimal("0.010") * mark).quantize(Decimal("1E-8"))
    paid_b = (rate * Decimal("0.020") * mark).quantize(Decimal("1E-8"))
    assert wallet(um, "USDT") - before_a == paid_a
    assert income_total(um, rows_a) == paid_a
    assert account_b.position(UM, "BOTH").isolated_wallet - isolated_before == paid_b

    (cross,) = updates(um, "FUNDING_FEE")
    assert cross["a"]["S"] == UM
    assert "P" not in cross["a"]
    assert cross["a"]["B"][0]["bc"] == f"{paid_a:.8f}"
    (isolated,) = updates(other, "FUNDING_FEE")
    assert [entry["s"] for entry in isolated["a"]["P"]] == [UM]  # isolated: B plus P
    assert isolated["a"]["P"][0]["iw"] == f"{account_b.position(UM, 'BOTH').isolated_wallet:.8f}"
    fee_rows = um.call("GET", "income", incomeType="FUNDING_FEE")
    assert fee_rows[-1]["time"] == due
    assert fee_rows[-1]["income"] == f"{paid_a:.8f}"
    # applied once: another tick in the same period pays nothing more
    um.engine.on_time(venue.clock.now_ms() + 1000)
    assert len(updates(um, "FUNDING_FEE")) == 1


async def test_coinm_funding_is_in_the_base_asset(venue):
    cm = Client(venue, COINM)
    cm.order(symbol=CM, side="SELL", type="MARKET", quantity="10")
    before = wallet(cm, "BTC")
    result = cm.engine.control_actions()["funding"]({"symbol": CM, "rate": "0.0001"})
    (payment,) = result["payments"]
    mark = Decimal(payment["markPrice"])
    expected = (Decimal("0.0001") * 10 * 100 / mark).quantize(Decimal("1E-8"))  # shorts earn
    assert Decimal(payment["income"]) == expected
    assert wallet(cm, "BTC") - before == expected
    (event,) = updates(cm, "FUNDING_FEE")
    assert event["i"]
    assert event["a"]["S"] == CM


# --- margin call -----------------------------------------------------------------------------


async def test_margin_call_once_per_episode(venue, um):
    isolated_long(um, UM, "0.100")
    walk_to(venue, USDM, UM, Decimal("59740"))
    calls = [event for event in um.events if event["e"] == "MARGIN_CALL"]
    assert len(calls) == 1
    call = calls[0]
    assert set(call) == {"e", "E", "p"}  # isolated: no cw
    row = call["p"][0]
    assert set(row) == {"s", "ps", "pa", "mt", "iw", "mp", "up", "mm"}
    assert (row["s"], row["mt"], row["pa"]) == (UM, "ISOLATED", "0.100")
    assert all(isinstance(value, str) for value in row.values())
    assert Decimal(row["mm"]) >= Decimal("0.8") * (Decimal(row["iw"]) + Decimal(row["up"]))
    walk_to(venue, USDM, UM, Decimal("59750"))  # still in the episode
    assert len([event for event in um.events if event["e"] == "MARGIN_CALL"]) == 1
    walk_to(venue, USDM, UM, Decimal("60600"))  # safe again: the episode ends
    walk_to(venue, USDM, UM, Decimal("59740"))
    assert len([event for event in um.events if event["e"] == "MARGIN_CALL"]) == 2
    assert position(um, UM) == Decimal("0.100")  # called, not liquidated


# --- liquidation -----------------------------------------------------------------------------


async def test_isolated_liquidation_on_the_book(venue, um):
    published = capture_public(venue)
    isolated_long(um, UM, "0.100")
    um.order(
        symbol=UM, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.010", price="50000"
    )
    start = Decimal(100000)
    before = wallet(um, "USDT")
    margin = um.engine.accounts.account(KEY_A).position(UM, "BOTH").isolated_wallet
    um.events.clear()
    walk_to(venue, USDM, UM, Decimal("59600"))  # below the liquidation price, above bankruptcy

    fills = len(orders(um)) - 2
    assert sequence(um) == [
        ("ORDER_TRADE_UPDATE", "EXPIRED", "EXPIRED"),
        ("ORDER_TRADE_UPDATE", "CALCULATED", "NEW_INSURANCE"),
        *[("ORDER_TRADE_UPDATE", "CALCULATED", "PARTIALLY_FILLED")] * (fills - 1),
        ("ORDER_TRADE_UPDATE", "CALCULATED", "FILLED"),
        ("ACCOUNT_UPDATE", "ORDER"),
        ("ACCOUNT_UPDATE", "INSURANCE_CLEAR"),
    ]
    expired = um.events[0]["o"]
    assert (expired["x"], expired["X"], expired["er"], expired["p"]) == (
        "EXPIRED",
        "EXPIRED",
        "5",
        "50000.00",
    )
    liquidation = [event for event in orders(um) if event["o"]["c"].startswith("autoclose-")]
    pre, *executions = liquidation
    assert pre["o"]["c"][len("autoclose-") :].isdigit()
    assert (pre["o"]["x"], pre["o"]["X"], pre["o"]["z"]) == ("CALCULATED", "NEW_INSURANCE", "0.000")
    assert (pre["o"]["o"], pre["o"]["ot"], pre["o"]["f"], pre["o"]["R"]) == (
        "LIQUIDATION",
        "LIQUIDATION",
        "IOC",
        True,
    )
    assert_like_rust(pre, "order_update_calculated_pending")
    assert_like_python(pre, "liquidation_zero_qty")
    assert rust("order_update_insurance")["o"]["X"] == pre["o"]["X"]
    assert executions
    assert all(event["o"]["x"] == "CALCULATED" for event in executions)
    assert executions[-1]["o"]["X"] == "FILLED"
    for event in executions:
        assert_like_rust(event, "order_update_calculated")
        assert_like_python(event, "liquidation")
    bankruptcy = Decimal(pre["o"]["p"])
    assert all(Decimal(event["o"]["L"]) >= bankruptcy for event in executions)
    assert len(executions) > 1  # the book absorbed it over several levels
    assert not [event for event in um.events if event["e"] == "TRADE_LITE"]
    reasons = [event["a"]["m"] for event in updates(um)]
    assert reasons == ["ORDER", "INSURANCE_CLEAR"]
    assert updates(um)[0]["a"]["P"][0]["pa"] == "0.000"

    assert position(um, UM) == 0
    # conservation: the wallet moved by realized PnL - commissions - insurance clearance
    assert wallet(um, "USDT") - start == income_total(um)
    kinds = {row["incomeType"] for row in um.engine.income[KEY_A]}
    assert kinds == {"COMMISSION", "REALIZED_PNL", "INSURANCE_CLEAR"}
    # the position loses its isolated margin, no more and (below the fee cap) no less
    assert wallet(um, "USDT") == before - margin

    force = [payload for stream, payload in published if stream == "btcusdt@forceOrder"]
    assert force == [payload for stream, payload in published if stream == "!forceOrder@arr"]
    (event,) = force
    assert (event["o"]["S"], event["o"]["X"], event["o"]["q"], event["o"]["z"]) == (
        "SELL",
        "FILLED",
        "0.100",
        "0.100",
    )
    assert event["o"]["p"] == pre["o"]["p"]
    average = Decimal(executions[-1]["o"]["ap"]).quantize(Decimal("0.01"))
    assert Decimal(event["o"]["ap"]) == average  # the symbol's price decimals


async def test_liquidation_the_book_cannot_absorb_goes_to_the_insurance_fund(venue, um):
    isolated_long(um, UM, "0.100")
    wallet_before = wallet(um, "USDT")
    margin = um.engine.accounts.account(KEY_A).position(UM, "BOTH").isolated_wallet
    um.events.clear()
    walk_to(venue, USDM, UM, Decimal("59000"))  # gaps through the bankruptcy price
    pre, fill = [event["o"] for event in orders(um)]
    assert (pre["X"], fill["X"], fill["x"]) == ("NEW_INSURANCE", "FILLED", "CALCULATED")
    assert fill["L"] == pre["p"]
    assert fill["l"] == "0.100"
    assert position(um, UM) == 0
    assert wallet(um, "USDT") - Decimal(100000) == income_total(um)
    # the insurance fund makes good the closing fee beyond the margin: the loss is the margin
    assert wallet(um, "USDT") == wallet_before - margin
    clear = um.call("GET", "income", incomeType="INSURANCE_CLEAR")
    assert len(clear) == 1
    assert um.engine.risk.insurance_fund["USDT"] == -Decimal(clear[0]["income"])


async def test_cross_liquidation_expires_every_cross_order_of_the_asset(venue, um):
    um.engine.control_actions()["fund"]({"asset": "USDT", "delta": "-99800"})
    um.call("POST", "leverage", symbol=UM, leverage=50)
    um.order(symbol=UM, side="BUY", type="MARKET", quantity="0.100")
    um.order(
        symbol="ETHUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="2500"
    )
    start = wallet(um, "USDT")
    rows = len(um.engine.income[KEY_A])
    liquidation_price = Decimal(
        um.call("GET", "/fapi/v2/positionRisk", symbol=UM)[0]["liquidationPrice"]
    )
    um.events.clear()
    walk_to(venue, USDM, UM, (liquidation_price + 25).quantize(Decimal("0.1")))
    (call,) = [event for event in um.events if event["e"] == "MARGIN_CALL"]
    assert call["cw"] == f"{um.engine.accounts.account(KEY_A).wallets['USDT']:.8f}"
    assert [row["mt"] for row in call["p"]] == ["CROSSED"]
    assert position(um, UM) == Decimal("0.100")
    walk_to(venue, USDM, UM, (liquidation_price - 300).quantize(Decimal("0.1")))
    expired = [event["o"] for event in orders(um) if event["o"]["x"] == "EXPIRED"]
    assert [(item["s"], item["er"]) for item in expired] == [("ETHUSDT", "5")]
    assert position(um, UM) == 0
    assert wallet(um, "USDT") - start == income_total(um, rows)
    assert wallet(um, "USDT") >= 0  # the insurance fund makes good what is missing
    assert updates(um)[-1]["a"]["m"] == "INSURANCE_CLEAR"
    assert updates(um)[-1]["a"]["P"][0]["mt"] == "cross"


async def test_coinm_isolated_liquidation(venue):
    cm = Client(venue, COINM)
    isolated_long(cm, CM, "100")
    start = wallet(cm, "BTC")
    rows = len(cm.engine.income[KEY_A])
    cm.events.clear()
    walk_to(venue, COINM, CM, Decimal("59000"))
    liquidation = [event for event in orders(cm) if event["o"]["c"].startswith("autoclose-")]
    pre, *fills = liquidation
    assert pre["i"] == cm.engine.accounts.account(KEY_A).alias
    assert_like_rust(pre, "order_update_calculated_pending", coinm=True)
    assert pre["o"]["ma"] == "BTC"
    assert "gtd" not in pre["o"]
    for event in fills:
        assert_like_rust(event, "order_update_calculated", coinm=True)
    assert fills[-1]["o"]["X"] == "FILLED"
    assert position(cm, CM) == 0
    assert wallet(cm, "BTC") - start == income_total(cm, rows)


async def test_control_liquidate_and_errors(venue, um):
    actions = um.engine.control_actions()
    with pytest.raises(ValueError, match="no open BTCUSDT position"):
        actions["liquidate"]({"symbol": UM})
    with pytest.raises(ValueError, match="no usdm symbol"):
        actions["liquidate"]({"symbol": "NOPE"})
    um.order(symbol=UM, side="SELL", type="MARKET", quantity="0.050")
    result = actions["liquidate"]({"symbol": UM, "positionSide": "BOTH"})
    (liquidation,) = result["liquidations"]
    assert liquidation["order"]["status"] == "FILLED"
    assert liquidation["order"]["type"] == "LIQUIDATION"
    assert liquidation["order"]["side"] == "BUY"
    assert liquidation["fills"]
    assert Decimal(liquidation["insuranceClear"]) < 0  # a healthy account pays the full fee
    assert position(um, UM) == 0
    assert wallet(um, "USDT") - Decimal(100000) == income_total(um)


# --- auto-deleveraging -----------------------------------------------------------------------


async def test_forced_adl_closes_the_best_ranked_opposite_positions():
    venue = venue3()
    a, b, c = (Client(venue, USDM, key) for key in (KEY_A, KEY_B, KEY_C))
    isolated_long(a, UM, "0.060")
    b.engine.control_actions()["fund"]({"account": KEY_B, "asset": "USDT", "delta": "-99900"})
    b.call("POST", "leverage", symbol=UM, leverage=100)
    b.order(symbol=UM, side="SELL", type="MARKET", quantity="0.040")  # highly leveraged short
    c.order(symbol=UM, side="SELL", type="MARKET", quantity="0.050")  # short, big wallet
    walk_to(venue, USDM, UM, Decimal("60200"))  # shorts in profit
    risk = a.engine.risk
    accounts = a.engine.accounts
    mark = a.engine.mark_price(UM)
    score_b = risk.adl_score(
        accounts.account(KEY_B), accounts.account(KEY_B).position(UM, "BOTH"), mark
    )
    score_c = risk.adl_score(
        accounts.account(KEY_C), accounts.account(KEY_C).position(UM, "BOTH"), mark
    )
    assert score_b > score_c > 0
    starts = {client.key: wallet(client, "USDT") for client in (a, b, c)}
    rows = {client.key: len(client.engine.income[client.key]) for client in (a, b, c)}
    for client in (a, b, c):
        client.events.clear()

    result = a.engine.control_actions()["liquidate"]({"symbol": UM, "adl": True})
    (liquidation,) = result["liquidations"]
    assert [row["account"] for row in liquidation["adl"]] == [KEY_B, KEY_C]
    price = liquidation["bankruptcyPrice"]
    assert position(a, UM) == 0
    assert position(b, UM) == 0  # 0.040 taken from B first
    assert position(c, UM) == Decimal("-0.030")  # then 0.020 of C's 0.050

    assert sequence(b) == [
        ("ORDER_TRADE_UPDATE", "CALCULATED", "NEW_ADL"),
        ("ORDER_TRADE_UPDATE", "CALCULATED", "FILLED"),
        ("ACCOUNT_UPDATE", "ORDER"),
    ]
    pre, fill = [event for event in orders(b)]
    assert (pre["o"]["c"], pre["o"]["x"], pre["o"]["X"], pre["o"]["z"]) == (
        "adl_autoclose",
        "CALCULATED",
        "NEW_ADL",
        "0.000",
    )
    assert rust("order_update_adl")["o"]["X"] == pre["o"]["X"]
    assert_like_rust(pre, "order_update_calculated_pending")
    assert (fill["o"]["x"], fill["o"]["X"], fill["o"]["L"]) == ("CALCULATED", "FILLED", price)
    assert_like_rust(fill, "order_update_adl")
    assert_like_python(fill, "adl")
    assert (fill["o"]["S"], fill["o"]["o"], fill["o"]["f"]) == ("BUY", "LIMIT", "IOC")
    # the counterparty side: one trade each, same id, price and quantity, opposite sides
    liquidated = [event["o"] for event in orders(a) if event["o"]["x"] == "CALCULATED"][1:]
    assert [(item["t"], item["L"], item["l"]) for item in liquidated] == [
        (fill["o"]["t"], price, "0.040"),
        ([event for event in orders(c)][-1]["o"]["t"], price, "0.020"),
    ]
    for client in (a, b, c):
        assert wallet(client, "USDT") - starts[client.key] == income_total(client, rows[client.key])
    assert not [event for event in orders(b) if event["o"]["x"] == "TRADE"]


async def test_adl_control_and_auto_adl(venue, um):
    other = Client(venue, USDM, KEY_B)
    other.order(symbol=UM, side="SELL", type="MARKET", quantity="0.030")
    result = um.engine.control_actions()["adl"](
        {"account": KEY_B, "symbol": UM, "quantity": "0.010"}
    )
    (row,) = result["adl"]
    assert row["order"]["clientOrderId"] == "adl_autoclose"
    assert row["order"]["status"] == "FILLED"
    assert position(other, UM) == Decimal("-0.020")
    # with auto ADL, what the book leaves below the bankruptcy price goes to the shorts
    state = um.engine.control_actions()["margin"]({"autoAdl": True})
    assert state["autoAdl"] is True
    isolated_long(um, UM, "0.010")
    walk_to(venue, USDM, UM, Decimal("59000"))
    assert position(um, UM) == 0
    assert position(other, UM) == Decimal("-0.010")
    assert other.of_type("ORDER_TRADE_UPDATE")[-1]["o"]["c"] == "adl_autoclose"


# --- delivery --------------------------------------------------------------------------------


def dated(client: Client) -> str:
    return next(
        symbol for symbol, item in client.engine.instruments.items() if not item.is_perpetual
    )


async def test_usdm_settlement_on_demand(venue, um):
    symbol = dated(um)
    um.order(symbol=symbol, side="BUY", type="MARKET", quantity="0.010")
    um.order(
        symbol=symbol,
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.010",
        price="50000.0",
    )
    rows = len(um.engine.income[KEY_A])
    start = wallet(um, "USDT")
    um.events.clear()
    result = um.engine.control_actions()["settle"]({"symbol": symbol, "price": "62000"})
    assert result["settlementPrice"] == "62000.0"
    canceled, new, fill = [event["o"] for event in orders(um)]
    assert (canceled["x"], canceled["er"]) == ("CANCELED", "7")
    assert new["c"] == fill["c"]
    assert fill["c"].startswith("settlement_autoclose-")
    assert fill["c"][len("settlement_autoclose-") :].isdigit()
    assert (fill["x"], fill["X"], fill["L"], fill["p"], fill["R"]) == (
        "TRADE",
        "FILLED",
        "62000.0",
        "62000.0",
        True,
    )
    settled = orders(um)[-1]
    assert_like_rust(settled, "order_update_settlement")
    assert_like_python(settled, "settlement")
    assert not [event for event in um.events if event["e"] == "TRADE_LITE"]
    assert position(um, symbol) == 0
    assert updates(um, "ORDER")
    assert wallet(um, "USDT") - start == income_total(um, rows)
    with pytest.raises(ValueError, match="perpetual"):
        um.engine.control_actions()["settle"]({"symbol": UM})


async def test_coinm_delivery_at_the_delivery_date(venue):
    cm = Client(venue, COINM)
    symbol = dated(cm)
    instrument = cm.engine.instrument(symbol)
    cm.order(symbol=symbol, side="SELL", type="MARKET", quantity="3")
    rows = len(cm.engine.income[KEY_A])
    start = wallet(cm, "BTC")
    delivery = instrument.delivery_date_ms
    assert delivery is not None
    index = []
    for offset in (20 * 60_000, 10 * 60_000):  # samples of the last 30 minutes
        venue.clock.time_ms = delivery - offset
        cm.engine.on_time(venue.clock.now_ms())
        index.append(market(venue, COINM, symbol).index_price(venue.clock.now_ms()))
    cm.events.clear()
    venue.clock.time_ms = delivery
    cm.engine.on_time(delivery)
    expected = (sum(index) / 2 / instrument.tick_size).quantize(Decimal(1)) * instrument.tick_size
    _new, fill = [event for event in orders(cm)]
    assert fill["o"]["c"].startswith("delivery_autoclose-")
    assert Decimal(fill["o"]["L"]) == expected
    assert_like_rust(fill, "order_update_delivery", coinm=True)  # no commission: no N, n
    assert position(cm, symbol) == 0
    assert cm.engine.risk.settled[symbol] == (delivery, expected)
    assert wallet(cm, "BTC") - start == income_total(cm, rows)
    cm.engine.on_time(delivery + 1000)  # delivered once
    assert len(orders(cm)) == 2


# --- end to end ------------------------------------------------------------------------------


async def test_liquidation_end_to_end():
    with trio.fail_after(20):
        async with open_venue(VenueConfig(seed=7, tick_ms=20)) as venue:
            rest = venue.urls["rest"]
            async with httpx.AsyncClient(base_url=rest, timeout=10) as client:
                signed = Signed(venue, client)
                await client.post("/_venue/activity", content=orjson.dumps({"paused": True}))
                await signed.json("POST", "/fapi/v1/marginType", symbol=UM, marginType="ISOLATED")
                await signed.json("POST", "/fapi/v1/leverage", symbol=UM, leverage=50)
                await signed.json(
                    "POST", "/fapi/v1/order", symbol=UM, side="BUY", type="MARKET", quantity="0.100"
                )
                risk = await signed.json("GET", "/fapi/v2/positionRisk", symbol=UM)
                assert risk[0]["positionAmt"] == "0.100"
                listen = await client.post(
                    "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": signed.key.api_key}
                )
                key = listen.json()["listenKey"]
                private = f"{venue.urls['ws']['usdm']}/private/ws?listenKey={key}"
                public = f"{venue.urls['ws']['usdm']}/market/ws/btcusdt@forceOrder"
                async with open_websocket_url(private) as user, open_websocket_url(public) as feed:
                    moved = await client.post(
                        "/_venue/price",
                        content=orjson.dumps({"product": "usdm", "symbol": UM, "price": "59000"}),
                    )
                    assert moved.status_code == 200, moved.text
                    seen: list[dict[str, Any]] = []
                    while not (seen and seen[-1].get("a", {}).get("m") == "INSURANCE_CLEAR"):
                        seen.append(orjson.loads(await user.get_message()))
                    liquidation = [
                        event["o"]
                        for event in seen
                        if event["e"] == "ORDER_TRADE_UPDATE"
                        and event["o"]["c"].startswith("autoclose-")
                    ]
                    assert [item["X"] for item in liquidation] == ["NEW_INSURANCE", "FILLED"]
                    assert {item["x"] for item in liquidation} == {"CALCULATED"}
                    force = orjson.loads(await feed.get_message())
                    assert force["e"] == "forceOrder"
                    assert force["o"]["s"] == UM
                    assert force["o"]["p"] == liquidation[0]["p"]
                risk = await signed.json("GET", "/fapi/v2/positionRisk", symbol=UM)
                assert risk[0]["positionAmt"] == "0.000"
                income = await signed.json("GET", "/fapi/v1/income", incomeType="INSURANCE_CLEAR")
                assert len(income) == 1
                bad = await client.post(
                    "/_venue/usdm/liquidate", content=orjson.dumps({"symbol": UM})
                )
                assert bad.status_code == 400


# --- conservation ----------------------------------------------------------------------------


async def test_wallet_is_pnl_minus_commissions_plus_funding_minus_clearance(venue, um):
    isolated_long(um, UM, "0.100")
    um.engine.control_actions()["funding"]({"symbol": UM, "rate": "-0.0005"})  # longs earn
    walk_to(venue, USDM, UM, Decimal("59400"))
    assert position(um, UM) == 0
    totals: dict[str, Decimal] = {}
    for row in um.engine.income[KEY_A]:
        totals[row["incomeType"]] = totals.get(row["incomeType"], ZERO) + Decimal(row["income"])
    assert set(totals) == {"REALIZED_PNL", "COMMISSION", "FUNDING_FEE", "INSURANCE_CLEAR"}
    assert totals["FUNDING_FEE"] > 0
    assert totals["COMMISSION"] < 0
    assert wallet(um, "USDT") - Decimal(100000) == (
        totals["REALIZED_PNL"]
        + totals["COMMISSION"]
        + totals["FUNDING_FEE"]
        + totals["INSURANCE_CLEAR"]
    )


SETUPS = {
    USDM: (UM, "USDT", Decimal("0.001"), Decimal(100000)),
    COINM: (CM, "BTC", Decimal(1), Decimal(10)),
}
step = st.one_of(
    st.tuples(st.just("walk"), st.integers(-400, 400)),  # basis points of the mid
    st.tuples(st.just("funding"), st.integers(-75, 75)),  # basis points x 0.1
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    product=st.sampled_from([USDM, COINM]),
    isolated=st.booleans(),
    lots=st.integers(20, 200),
    short=st.booleans(),
    keep=st.integers(2, 5),  # cross wallet left, in units of the initial margin
    steps=st.lists(step, min_size=1, max_size=8),
)
def test_risk_keeps_accounts_whole(product, isolated, lots, short, keep, steps):
    trio.run(_risk_flow, product, isolated, lots, short, keep, steps)


async def _risk_flow(product, isolated, lots, short, keep, steps) -> None:
    venue = make_venue()
    client = Client(venue, product)
    symbol, asset, lot, start = SETUPS[product]
    engine = client.engine
    client.call("POST", "leverage", symbol=symbol, leverage=50)
    book = market(venue, product, symbol)
    mid = book.mark_price(venue.clock.now_ms())
    quantity = lot * lots
    if isolated:
        client.call("POST", "marginType", symbol=symbol, marginType="ISOLATED")
    else:
        margin = abs(engine.accounts.math(symbol).notional(quantity, mid)) / 50
        left = (margin * keep).quantize(Decimal("1E-8"))
        engine.control_actions()["fund"]({"asset": asset, "delta": str(left - start)})
    client.order(symbol=symbol, side="SELL" if short else "BUY", type="MARKET", quantity=quantity)
    tick = book.instrument.tick_size
    for kind, value in steps:
        if kind == "walk":
            target = book.mark_price(venue.clock.now_ms()) * (1 + Decimal(value) / 10_000)
            walk_to(venue, product, symbol, (target / tick).quantize(Decimal(1)) * tick)
        else:
            rate = str(Decimal(value) / 100_000)
            engine.control_actions()["funding"]({"symbol": symbol, "rate": rate})
            engine.on_time(venue.clock.now_ms())
        account = engine.accounts.account(KEY_A)
        # every change of the wallet is an income row (the withdrawal is a TRANSFER row)
        assert wallet(client, asset) - start == income_total(client)
        # no position is left at or beyond its maintenance margin
        for group in engine.risk.groups(account):
            assert group.margin_balance > group.maint_margin
        # a liquidated account is never left owing
        if not engine.accounts.open_positions(account):
            assert account.wallets[asset] >= 0
