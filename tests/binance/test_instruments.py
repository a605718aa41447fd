"""exchangeInfo into instrument events: fixtures, the local venue, corruption, statuses, fees."""

from __future__ import annotations

import copy
import logging
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.binance.instruments import (
    ABSENT,
    COINM_STATUSES,
    FEE_TIERS,
    PRODUCT_OF,
    SPOT_STATUSES,
    STATUS_TABLES,
    UNKNOWN_STATUS,
    USDM_STATUSES,
    CommissionRate,
    CommissionRateError,
    ExchangeInfoError,
    Fees,
    FeeTable,
    ParsedInstruments,
    StatusTracker,
    is_known_status,
    map_status,
    parse_commission_rate,
    parse_exchange_info,
    parse_spot_commission,
)
from actors.config import AccountType
from events.codec import default_codec
from events.market import (
    Instrument,
    InstrumentKind,
    InstrumentSkipped,
    InstrumentStatus,
    MarketStatus,
)
from scenarios.venue.config import VenueConfig
from scenarios.venue.instruments import Product, default_instruments, exchange_info_json
from scenarios.venue.server import open_venue
from tests.recorded import COINM_QUARTERLY

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "binance"
HTTP = FIXTURES / "python_tests" / "http_responses"
SPOT_FIXTURE = HTTP / "http_spot_market_exchange_info.json"
USDM_FIXTURE = HTTP / "http_futures_market_exchange_info.json"
RUST_SPOT_FIXTURE = (
    FIXTURES / "rust_test_data" / "spot" / "http_json" / "exchange_info_response.json"
)
NOW_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
CLIENT = "main"

S = MarketStatus

COINM_PERPETUAL: dict[str, Any] = {
    **COINM_QUARTERLY,
    "symbol": "ETHUSD_PERP",
    "pair": "ETHUSD",
    "contractType": "PERPETUAL",
    "deliveryDate": 4133404800000,
    "contractSize": 10,
    "marginAsset": "ETH",
    "baseAsset": "ETH",
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "maxPrice": "306177",
            "minPrice": "1.00",
            "tickSize": "0.01",
        },
        {"filterType": "LOT_SIZE", "maxQty": "1000000", "minQty": "1", "stepSize": "1"},
        {"filterType": "MARKET_LOT_SIZE", "maxQty": "100000", "minQty": "1", "stepSize": "1"},
    ],
}
COINM_BODY: dict[str, Any] = {
    "timezone": "UTC",
    "serverTime": 1_600_000_000_000,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [COINM_QUARTERLY, COINM_PERPETUAL],
}


def read(path: Path) -> bytes:
    return path.read_bytes()


def parse(
    body: Any, product: str, *, fees: Any = None, log_warnings: bool = False
) -> ParsedInstruments:
    return parse_exchange_info(
        body,
        client=CLIENT,
        product=product,
        fees=fees if fees is not None else FeeTable.for_product(product),
        log_warnings=log_warnings,
    )


def by_symbol(parsed: ParsedInstruments) -> dict[str, Instrument]:
    return {instrument.symbol: instrument for instrument in parsed.instruments}


def venue_body(product: Product) -> dict[str, Any]:
    return exchange_info_json(product, default_instruments(NOW_MS), [], NOW_MS)


# ------------------------------------------------------------------------------- fixtures


def test_spot_fixture_exact_values():
    parsed = parse(read(SPOT_FIXTURE), "spot")
    assert parsed.skipped == []
    assert [i.symbol for i in parsed.instruments] == ["BTCUSDT", "ETHUSDT"]
    assert parsed.server_time_ms == 1634942465856
    btc = by_symbol(parsed)["BTCUSDT"]
    assert btc.instrument_id == "BTCUSDT.BINANCE"
    assert btc.kind is InstrumentKind.SPOT
    assert (btc.base_asset, btc.quote_asset, btc.settle_asset) == ("BTC", "USDT", "USDT")
    # exact, as Binance wrote them
    assert str(btc.tick_size) == "0.01000000"
    assert str(btc.step_size) == "0.00001000"
    assert (btc.price_precision, btc.size_precision) == (2, 5)
    assert str(btc.min_price) == "0.01000000"
    assert str(btc.max_price) == "1000000.00000000"
    assert str(btc.min_quantity) == "0.00001000"
    assert str(btc.max_quantity) == "9000.00000000"
    # MARKET_LOT_SIZE minQty "0.00000000" means no bound
    assert btc.market_min_quantity is None
    assert str(btc.market_max_quantity) == "112.21108820"
    # the old spot MIN_NOTIONAL {minNotional}
    assert str(btc.min_notional) == "10.00000000"
    assert btc.max_notional is None
    assert (btc.contract_size, btc.inverse, btc.expiry_ms, btc.onboard_ms) == (1, False, None, None)
    assert (btc.status, btc.venue_status) == (S.TRADING, "TRADING")
    assert (btc.maker_fee, btc.taker_fee, btc.fee_source) == (
        Decimal("0.001"),
        Decimal("0.001"),
        "table",
    )
    eth = by_symbol(parsed)["ETHUSDT"]
    assert str(eth.step_size) == "0.00010000"
    assert eth.size_precision == 4


def test_usdm_fixture_exact_values_and_ids():
    parsed = parse(read(USDM_FIXTURE), "usdm")
    assert parsed.skipped == []
    assert [i.instrument_id for i in parsed.instruments] == [
        "BTCUSDT-PERP.BINANCE",
        "ETHUSDT-PERP.BINANCE",
        "BTCUSDT_220325.BINANCE",
    ]
    instruments = by_symbol(parsed)
    btc = instruments["BTCUSDT"]
    assert btc.kind is InstrumentKind.PERPETUAL
    assert btc.expiry_ms is None
    # pricePrecision says 2; the tick is 0.10, so prices have one decimal
    assert str(btc.tick_size) == "0.10"
    assert btc.price_precision == 1
    assert (str(btc.step_size), btc.size_precision) == ("0.001", 3)
    assert (str(btc.min_price), str(btc.max_price)) == ("402", "1246396.60")
    assert (str(btc.market_min_quantity), str(btc.market_max_quantity)) == ("0.001", "1000")
    assert str(btc.min_notional) == "10"
    assert btc.settle_asset == "USDT"
    assert (btc.contract_size, btc.inverse) == (1, False)
    assert btc.onboard_ms == 1569398400000
    assert (btc.maker_fee, btc.taker_fee) == (Decimal("0.0002"), Decimal("0.0005"))
    dated = instruments["BTCUSDT_220325"]
    assert dated.kind is InstrumentKind.DATED
    assert dated.expiry_ms == 1648195200000
    assert dated.onboard_ms == 1640332800000
    assert (str(dated.tick_size), dated.price_precision) == ("0.1", 1)
    assert instruments["ETHUSDT"].max_quantity == Decimal(10000)


def test_rust_spot_fixture_has_no_filters_and_is_skipped_with_its_status_kept():
    parsed = parse(read(RUST_SPOT_FIXTURE), "spot")
    assert parsed.instruments == []
    assert parsed.skipped == [
        InstrumentSkipped(client=CLIENT, symbol="ETHBTC", reason="no PRICE_FILTER")
    ]
    assert parsed.statuses == {"ETHBTC": "TRADING"}


def test_coinm_contract_size_inverse_and_ids():
    parsed = parse(orjson.dumps(COINM_BODY), "coinm")
    assert parsed.skipped == []
    quarterly, perpetual = parsed.instruments
    assert quarterly.instrument_id == "BTCUSD_200925.BINANCE"
    assert quarterly.kind is InstrumentKind.DATED
    assert quarterly.expiry_ms == 1601020800000
    assert quarterly.contract_size == Decimal(100)
    assert quarterly.inverse is True
    assert (quarterly.base_asset, quarterly.quote_asset, quarterly.settle_asset) == (
        "BTC",
        "USD",
        "BTC",
    )
    assert quarterly.status is S.TRADING  # from contractStatus
    assert (quarterly.size_precision, quarterly.min_notional) == (0, None)
    assert perpetual.instrument_id == "ETHUSD-PERP.BINANCE"
    assert perpetual.kind is InstrumentKind.PERPETUAL
    assert perpetual.expiry_ms is None
    assert (perpetual.contract_size, perpetual.settle_asset) == (Decimal(10), "ETH")
    assert (str(perpetual.tick_size), perpetual.price_precision) == ("0.01", 2)
    assert str(perpetual.min_price) == "1.00"


def test_instruments_round_trip_through_the_codec():
    codec = default_codec()
    events: list[Any] = []
    for body, product in (
        (read(SPOT_FIXTURE), "spot"),
        (read(USDM_FIXTURE), "usdm"),
        (orjson.dumps(COINM_BODY), "coinm"),
        (read(RUST_SPOT_FIXTURE), "spot"),
    ):
        parsed = parse(body, product)
        events += parsed.instruments + parsed.skipped
    for event in events:
        again = codec.event_from_dict(orjson.loads(codec.encode_event(event)))
        assert again == event
        if isinstance(event, Instrument):
            assert again.tick_size.as_tuple() == event.tick_size.as_tuple()


# ---------------------------------------------------------------------------- local venue


@pytest.mark.parametrize("product", list(Product))
def test_venue_exchange_info_parses(product):
    venue_instruments = [i for i in default_instruments(NOW_MS) if i.product is product]
    parsed = parse(orjson.dumps(venue_body(product)), product.value)
    assert parsed.skipped == []
    assert parsed.unknown_statuses == {}
    assert len(parsed.instruments) == len(venue_instruments)
    for ours, theirs in zip(parsed.instruments, venue_instruments, strict=True):
        assert ours.symbol == theirs.symbol
        assert ours.tick_size == theirs.tick_size
        assert ours.step_size == theirs.step_size
        assert ours.min_quantity == theirs.min_qty
        assert ours.contract_size == theirs.contract_size
        assert ours.inverse is (product is Product.COINM)
        assert ours.status is S.TRADING
        if theirs.is_futures:
            assert ours.settle_asset == theirs.margin_asset
            perpetual = theirs.is_perpetual
            assert ours.kind is (InstrumentKind.PERPETUAL if perpetual else InstrumentKind.DATED)
            assert ours.expiry_ms == (None if perpetual else theirs.delivery_date_ms)
            assert ours.instrument_id.endswith("-PERP.BINANCE") is perpetual
        else:
            assert ours.min_notional == theirs.min_notional


async def test_venue_on_loopback_serves_parseable_exchange_info():
    paths = {
        "spot": "/api/v3/exchangeInfo",
        "usdm": "/fapi/v1/exchangeInfo",
        "coinm": "/dapi/v1/exchangeInfo",
    }
    override = {"product": "spot", "symbol": "BNBUSDT", "status": "BREAK"}
    config = VenueConfig(seed=3, tick_ms=50, instruments=(override,))
    with trio.fail_after(30):
        async with (
            open_venue(config) as venue,
            httpx.AsyncClient(base_url=venue.urls["rest"], timeout=10) as http,
        ):
            for product, path in paths.items():
                response = await http.get(path)
                assert response.status_code == 200
                parsed = parse(response.content, product)
                assert parsed.skipped == []
                expected = venue.instruments[Product(product)]
                assert [i.symbol for i in parsed.instruments] == list(expected)
                if product == "spot":
                    bnb = by_symbol(parsed)["BNBUSDT"]
                    assert (bnb.status, bnb.venue_status) == (S.PAUSE, "BREAK")
                if product == "coinm":
                    assert all(i.inverse and i.contract_size == 100 for i in parsed.instruments)


# ---------------------------------------------------------------------- tolerance, skips


def symbol_with(body: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["symbols"][index].update(changes)
    return body


def test_non_trading_symbols_are_parsed_not_dropped():
    body = orjson.loads(read(USDM_FIXTURE))
    body["symbols"][0]["status"] = "PENDING_TRADING"
    body["symbols"][2]["status"] = "DELIVERING"
    parsed = parse(body, "usdm")
    assert [i.status for i in parsed.instruments] == [S.PRE_OPEN, S.TRADING, S.CLOSE]


def test_unknown_status_maps_to_the_default_and_is_reported(caplog):
    body = symbol_with(orjson.loads(read(SPOT_FIXTURE)), 1, status="AUCTION")
    with caplog.at_level(logging.WARNING, logger="tern.binance.instruments"):
        parsed = parse(body, "spot", log_warnings=True)
    eth = by_symbol(parsed)["ETHUSDT"]
    assert (eth.status, eth.venue_status) == (UNKNOWN_STATUS, "AUCTION")
    assert parsed.unknown_statuses == {"ETHUSDT": "AUCTION"}
    assert [r.getMessage() for r in caplog.records] == [
        "client 'main': spot symbol ETHUSDT has unknown status 'AUCTION', "
        "taken as NOT_AVAILABLE_FOR_TRADING"
    ]


def test_one_warning_per_skipped_symbol_and_log_warnings_false_silences(caplog):
    body = orjson.loads(read(USDM_FIXTURE))
    body["symbols"][0]["filters"] = []
    body["symbols"][2]["contractType"] = ""
    with caplog.at_level(logging.WARNING, logger="tern.binance.instruments"):
        parse(body, "usdm", log_warnings=True)
    assert [r.getMessage() for r in caplog.records] == [
        "client 'main': usdm symbol BTCUSDT skipped: no PRICE_FILTER",
        "client 'main': usdm symbol BTCUSDT_220325 skipped: contractType is empty, "
        "so the kind of contract is unknown",
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tern.binance.instruments"):
        parsed = parse(body, "usdm", log_warnings=False)
    assert caplog.records == []
    assert [s.symbol for s in parsed.skipped] == ["BTCUSDT", "BTCUSDT_220325"]


def test_duplicates_and_colliding_ids_are_skipped():
    body = orjson.loads(read(USDM_FIXTURE))
    first = body["symbols"][0]
    body["symbols"].append(copy.deepcopy(first))
    body["symbols"].append({**copy.deepcopy(first), "symbol": "BTCUSDT_PERP"})
    parsed = parse(body, "usdm")
    assert len(parsed.instruments) == 3
    assert [(s.symbol, s.reason) for s in parsed.skipped] == [
        ("BTCUSDT", "duplicate symbol (the first one is kept)"),
        ("BTCUSDT_PERP", "instrument id BTCUSDT-PERP.BINANCE is already BTCUSDT's"),
    ]


def test_odd_entries_are_skipped_by_position():
    body = orjson.loads(read(SPOT_FIXTURE))
    body["symbols"] += [["BTCUSDT"], {"status": "TRADING"}]
    parsed = parse(body, "spot")
    assert [(s.symbol, s.reason) for s in parsed.skipped] == [
        ("symbols[2]", "entry is a JSON array"),
        ("symbols[3]", "symbol is missing, not a non-empty string"),
    ]


def test_perpetual_delivering_keeps_its_id_and_gets_an_expiry():
    body = orjson.loads(read(USDM_FIXTURE))
    body["symbols"][1].update(
        contractType="PERPETUAL_DELIVERING", deliveryDate=1_700_000_000_000, status="SETTLING"
    )
    eth = by_symbol(parse(body, "usdm"))["ETHUSDT"]
    assert eth.instrument_id == "ETHUSDT-PERP.BINANCE"
    assert (eth.kind, eth.expiry_ms, eth.status) == (
        InstrumentKind.PERPETUAL,
        1_700_000_000_000,
        S.CLOSE,
    )


@pytest.mark.parametrize(
    ("tick", "precision"),
    [("0.01000000", 2), ("10", 0), ("1", 0), ("0.50", 1), ("0.00000001", 8), ("25.000", 0)],
)
def test_precision_is_the_normalised_tick(tick, precision):
    body = orjson.loads(read(SPOT_FIXTURE))
    body["symbols"][0]["filters"][0].update(tickSize=tick, minPrice=tick)
    btc = by_symbol(parse(body, "spot"))["BTCUSDT"]
    assert btc.tick_size.as_tuple() == Decimal(tick).as_tuple()  # exactly as written
    assert btc.price_precision == precision


def test_spot_notional_filter_wins_over_min_notional():
    body = orjson.loads(read(SPOT_FIXTURE))
    body["symbols"][0]["filters"].append(
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        }
    )
    btc = by_symbol(parse(body, "spot"))["BTCUSDT"]
    assert (str(btc.min_notional), str(btc.max_notional)) == ("5.00000000", "9000000.00000000")


@pytest.mark.parametrize(
    "body",
    [b"<html>502</html>", b"[]", b'{"code": -1003, "msg": "Too many requests"}', b"{}"],
)
def test_a_body_that_is_no_exchange_info_raises(body):
    with pytest.raises(ExchangeInfoError):
        parse(body, "spot")


def test_parse_refuses_an_unknown_product_and_another_products_fee_table():
    with pytest.raises(ValueError, match="product"):
        parse_exchange_info(b"{}", client=CLIENT, product="margin", fees=lambda s: None)
    with pytest.raises(ValueError, match="fee table of usdm"):
        parse_exchange_info(
            read(SPOT_FIXTURE), client=CLIENT, product="spot", fees=FeeTable.for_product("usdm")
        )


# ---------------------------------------------------------------------------- hypothesis

#: Every key the parser reads (extras must not shadow them).
READ_KEYS = {
    "symbols",
    "serverTime",
    "code",
    "msg",
    "symbol",
    "status",
    "contractStatus",
    "baseAsset",
    "quoteAsset",
    "contractType",
    "marginAsset",
    "deliveryDate",
    "onboardDate",
    "contractSize",
    "filters",
    "filterType",
    "tickSize",
    "minPrice",
    "maxPrice",
    "stepSize",
    "minQty",
    "maxQty",
    "minNotional",
    "maxNotional",
    "notional",
}
READ_FILTERS = {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL", "MIN_NOTIONAL"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
extra_keys = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=12
).filter(lambda key: key not in READ_KEYS)
extras = st.dictionaries(extra_keys, json_values, max_size=3)
extra_filter = st.builds(
    lambda kind, fields: {**fields, "filterType": kind},
    st.text(min_size=1, max_size=20).filter(lambda kind: kind not in READ_FILTERS) | st.just(None),
    extras,
)

BODIES = {
    "spot": orjson.loads(read(SPOT_FIXTURE)),
    "usdm": orjson.loads(read(USDM_FIXTURE)),
    "coinm": COINM_BODY,
    "venue-spot": venue_body(Product.SPOT),
    "venue-usdm": venue_body(Product.USDM),
    "venue-coinm": venue_body(Product.COINM),
}
PRODUCT = {name: name.removeprefix("venue-") for name in BODIES}
BASELINES = {name: parse(body, PRODUCT[name]) for name, body in BODIES.items()}

SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(data=st.data(), name=st.sampled_from(sorted(BODIES)))
def test_extra_fields_and_unknown_filters_are_tolerated(data, name):
    body = copy.deepcopy(BODIES[name])
    body.update(data.draw(extras, "top-level extras"))
    for entry in body["symbols"]:
        entry.update(data.draw(extras, "symbol extras"))
        for item in entry["filters"]:
            item.update(data.draw(extras, "filter extras"))
        for _ in range(data.draw(st.integers(0, 2))):
            position = data.draw(st.integers(0, len(entry["filters"])))
            entry["filters"].insert(position, data.draw(extra_filter))
        if data.draw(st.booleans()):
            entry["filters"].append(
                data.draw(json_values.filter(lambda v: not isinstance(v, dict)))
            )
    parsed = parse(orjson.dumps(body), PRODUCT[name])
    assert parsed == BASELINES[name]


def _drop_filter(kind: str):
    def corrupt(entry: dict[str, Any]) -> None:
        entry["filters"] = [f for f in entry["filters"] if f.get("filterType") != kind]

    return corrupt


def _set_filter(kind: str, key: str, value: Any):
    def corrupt(entry: dict[str, Any]) -> None:
        for item in entry["filters"]:
            if item.get("filterType") == kind:
                item[key] = value

    return corrupt


def _duplicate_filter(kind: str):
    def corrupt(entry: dict[str, Any]) -> None:
        entry["filters"] += [copy.deepcopy(f) for f in entry["filters"] if f["filterType"] == kind]

    return corrupt


def _set(key: str, value: Any):
    def corrupt(entry: dict[str, Any]) -> None:
        entry[key] = value

    return corrupt


def _delete(key: str):
    def corrupt(entry: dict[str, Any]) -> None:
        entry.pop(key, None)

    return corrupt


def _status_number(entry: dict[str, Any]) -> None:
    entry["contractStatus" if "contractStatus" in entry else "status"] = 5


def _inverted_prices(entry: dict[str, Any]) -> None:
    for item in entry["filters"]:
        if item["filterType"] == "PRICE_FILTER":
            item["minPrice"], item["maxPrice"] = "900", "100"


#: (name, products it applies to, corruption, text the reason contains)
CORRUPTIONS = [
    ("no price filter", "all", _drop_filter("PRICE_FILTER"), "no PRICE_FILTER"),
    ("no lot size", "all", _drop_filter("LOT_SIZE"), "no LOT_SIZE"),
    ("zero tick", "all", _set_filter("PRICE_FILTER", "tickSize", "0.000"), "tickSize is 0.000"),
    ("text tick", "all", _set_filter("PRICE_FILTER", "tickSize", "abc"), "'abc', not a decimal"),
    ("float tick", "all", _set_filter("PRICE_FILTER", "tickSize", 0.01), "JSON float"),
    ("no tick", "all", _set_filter("PRICE_FILTER", "tickSize", None), "tickSize is missing"),
    ("negative step", "all", _set_filter("LOT_SIZE", "stepSize", "-1"), "must be positive"),
    ("bad market max", "all", _set_filter("MARKET_LOT_SIZE", "maxQty", "1,5"), "maxQty"),
    ("inverted prices", "all", _inverted_prices, "minPrice 900 is above maxPrice 100"),
    ("two lot sizes", "all", _duplicate_filter("LOT_SIZE"), "two LOT_SIZE filters"),
    ("filters not a list", "all", _set("filters", {"a": 1}), "not a list"),
    ("no filters", "all", _delete("filters"), "filters is missing"),
    ("no base", "all", _delete("baseAsset"), "baseAsset is missing"),
    ("empty quote", "all", _set("quoteAsset", ""), "quoteAsset is ''"),
    ("status number", "all", _status_number, "the JSON number 5"),
    ("empty contract type", "futures", _set("contractType", ""), "contractType is empty"),
    ("odd contract type", "futures", _set("contractType", "WEEKLY"), "'WEEKLY' is unknown"),
    ("no margin asset", "futures", _delete("marginAsset"), "marginAsset is missing"),
    ("text onboard", "futures", _set("onboardDate", "2020"), "onboardDate is '2020'"),
    ("zero contract", "coinm", _set("contractSize", 0), "contractSize is 0"),
    ("float contract", "coinm", _set("contractSize", 100.0), "JSON float"),
]


@SLOW
@given(data=st.data(), name=st.sampled_from(sorted(BODIES)))
def test_corrupting_one_symbol_skips_only_that_symbol(data, name):
    product = PRODUCT[name]
    applicable = [
        c
        for c in CORRUPTIONS
        if c[1] == "all" or c[1] == product or (c[1] == "futures" and product != "spot")
    ]
    _, _, corrupt, expected = data.draw(st.sampled_from(applicable), "corruption")
    body = copy.deepcopy(BODIES[name])
    index = data.draw(st.integers(0, len(body["symbols"]) - 1), "symbol index")
    symbol = body["symbols"][index]["symbol"]
    corrupt(body["symbols"][index])
    parsed = parse(orjson.dumps(body), product)
    baseline = BASELINES[name]
    assert [s.symbol for s in parsed.skipped] == [symbol]
    assert expected in parsed.skipped[0].reason, parsed.skipped[0].reason
    assert parsed.instruments == [i for i in baseline.instruments if i.symbol != symbol]


@SLOW
@given(name=st.sampled_from(sorted(BODIES)), text=st.text(max_size=8))
def test_a_step_size_must_be_a_positive_decimal_string(name, text):
    body = copy.deepcopy(BODIES[name])
    for entry in body["symbols"]:
        for item in entry["filters"]:
            if item["filterType"] == "LOT_SIZE":
                item["stepSize"] = text
    parsed = parse(orjson.dumps(body), PRODUCT[name])
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) and Decimal(text) > 0:
        assert all(i.step_size == Decimal(text) for i in parsed.instruments)
        assert parsed.skipped == []
    else:
        assert parsed.instruments == []
        assert all(s.reason.startswith("LOT_SIZE.stepSize is ") for s in parsed.skipped)
        assert len(parsed.skipped) == len(body["symbols"])


# ------------------------------------------------------------------------- status tables

#: Every row of the reference document's "Status mapping" section, plus the statuses
#: binance-protocol.md lists that it leaves out.
DOCUMENTED = {
    "spot": {
        "TRADING": S.TRADING,
        "END_OF_DAY": S.CLOSE,
        "HALT": S.HALT,
        "BREAK": S.PAUSE,
        "CANCEL_ONLY": S.HALT,
    },
    "usdm": {
        "TRADING": S.TRADING,
        "PENDING_TRADING": S.PRE_OPEN,
        "PRE_TRADING": S.PRE_OPEN,
        "POST_TRADING": S.POST_CLOSE,
        "END_OF_DAY": S.CLOSE,
        "HALT": S.HALT,
        "AUCTION_MATCH": S.CROSS,
        "BREAK": S.PAUSE,
        "PRE_DELIVERING": S.PRE_CLOSE,
        "DELIVERING": S.CLOSE,
        "DELIVERED": S.CLOSE,
        "PRE_SETTLE": S.PRE_CLOSE,
        "SETTLING": S.CLOSE,
        "CLOSE": S.CLOSE,
    },
    "coinm": {
        "TRADING": S.TRADING,
        "PENDING_TRADING": S.PRE_OPEN,
        "PRE_DELIVERING": S.PRE_CLOSE,
        "DELIVERING": S.CLOSE,
        "DELIVERED": S.CLOSE,
        "PRE_SETTLE": S.PRE_CLOSE,
        "SETTLING": S.CLOSE,
        "CLOSE": S.CLOSE,
        "PRE_DELISTING": S.PRE_CLOSE,
        "DELISTING": S.SUSPEND,
        "DOWN": S.NOT_AVAILABLE_FOR_TRADING,
        "TRADING_HALT": S.HALT,
    },
}


@pytest.mark.parametrize(
    ("product", "venue_status", "expected"),
    [(p, status, expected) for p, rows in DOCUMENTED.items() for status, expected in rows.items()],
)
def test_status_table_row(product, venue_status, expected):
    assert map_status(product, venue_status) is expected
    assert is_known_status(product, venue_status)


def test_status_tables_have_exactly_the_documented_rows():
    assert dict(SPOT_STATUSES) == DOCUMENTED["spot"]
    assert dict(USDM_STATUSES) == DOCUMENTED["usdm"]
    assert dict(COINM_STATUSES) == DOCUMENTED["coinm"]
    assert set(STATUS_TABLES) == {"spot", "usdm", "coinm"}


@pytest.mark.parametrize("product", ["spot", "usdm", "coinm"])
def test_unknown_and_absent_statuses_map_to_not_available(product):
    assert map_status(product, "SOMETHING_NEW") is UNKNOWN_STATUS is S.NOT_AVAILABLE_FOR_TRADING
    assert not is_known_status(product, "SOMETHING_NEW")
    assert map_status(product, ABSENT) is UNKNOWN_STATUS


def test_product_of_account_types():
    assert PRODUCT_OF[AccountType.SPOT] == "spot"
    assert PRODUCT_OF[AccountType.USDT_FUTURES] == "usdm"
    assert PRODUCT_OF[AccountType.COIN_FUTURES] == "coinm"


# ------------------------------------------------------------------------- status tracker


def poll(statuses: dict[str, str], product: str = "spot") -> ParsedInstruments:
    """A spot exchangeInfo of the fixture's BTCUSDT filters under other names and statuses."""
    template = orjson.loads(read(SPOT_FIXTURE))["symbols"][0]
    body = {"symbols": [{**template, "symbol": s, "status": v} for s, v in statuses.items()]}
    return parse(body, product)


def change(symbol: str, status: MarketStatus, venue: str, previous: MarketStatus):
    return InstrumentStatus(
        client=CLIENT,
        instrument_id=f"{symbol}.BINANCE",
        status=status,
        venue_status=venue,
        previous=previous,
    )


def test_tracker_seeds_silently_then_reports_changes_only():
    tracker = StatusTracker()
    assert not tracker.seeded
    assert tracker.update(poll({"BTCUSDT": "TRADING", "ETHUSDT": "BREAK"})) == []
    assert tracker.seeded
    assert tracker.update(poll({"BTCUSDT": "TRADING", "ETHUSDT": "BREAK"})) == []
    assert tracker.update(poll({"ETHUSDT": "TRADING", "BTCUSDT": "HALT"})) == [
        change("BTCUSDT", S.HALT, "HALT", S.TRADING),
        change("ETHUSDT", S.TRADING, "TRADING", S.PAUSE),
    ]
    assert tracker.status("BTCUSDT") is S.HALT


def test_tracker_disappear_once_then_reappear():
    tracker = StatusTracker()
    tracker.update(poll({"BTCUSDT": "TRADING", "ETHUSDT": "TRADING"}))
    gone = change("ETHUSDT", S.NOT_AVAILABLE_FOR_TRADING, ABSENT, S.TRADING)
    assert tracker.update(poll({"BTCUSDT": "TRADING"})) == [gone]
    assert tracker.update(poll({"BTCUSDT": "TRADING"})) == []
    assert tracker.update(poll({"BTCUSDT": "TRADING", "ETHUSDT": "BREAK"})) == [
        change("ETHUSDT", S.PAUSE, "BREAK", S.NOT_AVAILABLE_FOR_TRADING)
    ]


def test_tracker_reports_listings_after_the_seed_sorted_by_symbol():
    tracker = StatusTracker()
    tracker.update(poll({"BTCUSDT": "TRADING"}))
    assert tracker.update(
        poll({"ZZZUSDT": "TRADING", "BTCUSDT": "TRADING", "AAAUSDT": "HALT"})
    ) == [
        change("AAAUSDT", S.HALT, "HALT", S.NOT_AVAILABLE_FOR_TRADING),
        change("ZZZUSDT", S.TRADING, "TRADING", S.NOT_AVAILABLE_FOR_TRADING),
    ]


def test_tracker_reports_a_venue_status_change_within_one_market_status():
    tracker = StatusTracker()
    parsed = parse(orjson.dumps(COINM_BODY), "coinm")
    tracker.update(parsed)
    body = copy.deepcopy(COINM_BODY)
    body["symbols"][0]["contractStatus"] = "DELIVERING"
    [first] = tracker.update(parse(body, "coinm"))
    assert (first.status, first.venue_status, first.previous) == (S.CLOSE, "DELIVERING", S.TRADING)
    body["symbols"][0]["contractStatus"] = "DELIVERED"
    [second] = tracker.update(parse(body, "coinm"))
    assert (second.status, second.venue_status, second.previous) == (S.CLOSE, "DELIVERED", S.CLOSE)
    assert second.instrument_id == "BTCUSD_200925.BINANCE"


def test_tracker_follows_a_tracked_symbol_that_stops_parsing():
    tracker = StatusTracker()
    body = orjson.loads(read(USDM_FIXTURE))
    tracker.update(parse(body, "usdm"))
    body["symbols"][1].update(contractType="", status="SETTLING")
    parsed = parse(body, "usdm")
    assert [s.symbol for s in parsed.skipped] == ["ETHUSDT"]
    assert tracker.update(parsed) == [
        InstrumentStatus(
            client=CLIENT,
            instrument_id="ETHUSDT-PERP.BINANCE",
            status=S.CLOSE,
            venue_status="SETTLING",
            previous=S.TRADING,
        )
    ]


def test_tracker_ignores_symbols_that_never_parsed():
    tracker = StatusTracker()
    tracker.update(parse(read(RUST_SPOT_FIXTURE), "spot"))
    body = orjson.loads(read(RUST_SPOT_FIXTURE))
    body["symbols"][0]["status"] = "HALT"
    assert tracker.update(parse(body, "spot")) == []
    assert tracker.update(poll({})) == []


def test_tracker_restored_from_the_journal_reports_what_changed_meanwhile():
    first = poll({"BTCUSDT": "TRADING", "ETHUSDT": "TRADING"})
    tracker = StatusTracker()
    for instrument in first.instruments:
        tracker.observe(instrument)
    tracker.observe(change("ETHUSDT", S.HALT, "HALT", S.TRADING))
    assert tracker.seeded
    assert tracker.update(poll({"BTCUSDT": "BREAK", "ETHUSDT": "HALT"})) == [
        change("BTCUSDT", S.PAUSE, "BREAK", S.TRADING)
    ]


def test_tracker_refuses_another_client_or_product():
    tracker = StatusTracker()
    tracker.update(poll({"BTCUSDT": "TRADING"}))
    other = parse_exchange_info(
        read(SPOT_FIXTURE), client="other", product="spot", fees=FeeTable.for_product("spot")
    )
    with pytest.raises(ValueError, match="other"):
        tracker.update(other)
    with pytest.raises(ValueError, match="usdm"):
        tracker.update(parse(read(USDM_FIXTURE), "usdm"))


# ----------------------------------------------------------------------------------- fees


@pytest.mark.parametrize(
    ("product", "maker", "taker"),
    [("spot", "0.001", "0.001"), ("usdm", "0.0002", "0.0005"), ("coinm", "0.0002", "0.0005")],
)
def test_vip0_table(product, maker, taker):
    assert FeeTable.for_product(product).fees("ANY") == Fees(
        maker=Decimal(maker), taker=Decimal(taker), source="table"
    )


def test_tiers():
    assert len(FEE_TIERS["spot"]) == 1
    assert len(FEE_TIERS["usdm"]) == len(FEE_TIERS["coinm"]) == 10
    assert FeeTable.for_product("usdm", tier=9).fees("X") == Fees(
        maker=Decimal(0), taker=Decimal("0.00017"), source="table"
    )
    assert FeeTable.for_product("coinm", tier=1).fees("X").taker == Decimal("0.00045")
    for tier in (1, -1, True):
        with pytest.raises(ValueError, match="fee tier"):
            FeeTable.for_product("spot", tier=tier)


def test_fee_precedence_commission_rate_then_config_then_table():
    table = FeeTable.for_product("usdm", default_taker_fee="0.0004")
    assert table.fees("ETHUSDT") == Fees(
        maker=Decimal("0.0002"), taker=Decimal("0.0004"), source="config"
    )
    rate = parse_commission_rate(read(HTTP / "http_futures_wallet_commission_rate_btcusdt.json"))
    table = table.with_commission_rates(
        [rate, CommissionRate(symbol="BTCUSDT_220325", maker=Decimal("-0.0001"), taker=Decimal(0))]
    )
    assert table("BTCUSDT") == Fees(
        maker=Decimal("0.0002"), taker=Decimal("0.0005"), source="commission_rate"
    )
    assert table("BTCUSDT_220325").maker == Decimal("-0.0001")  # a rebate
    assert table("ETHUSDT").source == "config"
    parsed = parse(read(USDM_FIXTURE), "usdm", fees=table)
    assert [(i.symbol, i.fee_source, i.taker_fee) for i in parsed.instruments] == [
        ("BTCUSDT", "commission_rate", Decimal("0.0005")),
        ("ETHUSDT", "config", Decimal("0.0004")),
        ("BTCUSDT_220325", "commission_rate", Decimal(0)),
    ]


@pytest.mark.parametrize("fee", ["abc", "1", "-0.1", "1e-3", 0.001])
def test_bad_default_taker_fee_is_refused(fee):
    with pytest.raises(ValueError, match="default_taker_fee"):
        FeeTable.for_product("spot", default_taker_fee=fee)


def test_a_callable_gives_fees():
    parsed = parse(
        read(SPOT_FIXTURE),
        "spot",
        fees=lambda symbol: Fees(maker=Decimal(0), taker=Decimal(0), source="table"),
    )
    assert {i.taker_fee for i in parsed.instruments} == {Decimal(0)}


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("http_futures_wallet_commission_rate_btcusdt.json", "BTCUSDT"),
        ("http_futures_wallet_commission_rate_ethusdt.json", "ETHUSDT"),
        ("http_futures_wallet_commission_rate_btcusdt_quarterly.json", "BTCUSDT_220325"),
    ],
)
def test_commission_rate_fixtures(name, symbol):
    rate = parse_commission_rate(read(HTTP / name), symbol=symbol)
    assert rate == CommissionRate(symbol=symbol, maker=Decimal("0.0002"), taker=Decimal("0.0005"))


RATES = {"symbol": "BTCUSDT", "makerCommissionRate": "0.0002", "takerCommissionRate": "0.0005"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not an object"),
        (b'{"code": -2015, "msg": "Invalid API-key"}', "error -2015"),
        (orjson.dumps({**RATES, "symbol": "ETHUSDT"}), "not 'BTCUSDT'"),
        (orjson.dumps({**RATES, "symbol": None}), "names no symbol"),
        (orjson.dumps({**RATES, "makerCommissionRate": None}), "makerCommissionRate is missing"),
        (orjson.dumps({**RATES, "makerCommissionRate": 0.0002}), "JSON number"),
        (orjson.dumps({**RATES, "takerCommissionRate": "2"}), "fraction"),
    ],
)
def test_bad_commission_rate_answers_raise_one_error(body, message):
    with pytest.raises(CommissionRateError, match=message):
        parse_commission_rate(body, symbol="BTCUSDT")


def test_spot_account_commission_sums_standard_special_and_tax():
    body = {
        "symbol": "BTCUSDT",
        "standardCommission": {
            "maker": "0.00100000",
            "taker": "0.00100000",
            "buyer": "0",
            "seller": "0",
        },
        "specialCommission": {
            "maker": "0.00010000",
            "taker": "0.00020000",
            "buyer": "0",
            "seller": "0",
        },
        "taxCommission": {
            "maker": "0.00000128",
            "taker": "0.00000130",
            "buyer": "0",
            "seller": "0",
        },
        "discount": {
            "enabledForAccount": True,
            "enabledForSymbol": True,
            "discountAsset": "BNB",
            "discount": "0.25000000",
        },
    }
    rate = parse_spot_commission(orjson.dumps(body), symbol="BTCUSDT")
    assert rate == CommissionRate(
        symbol="BTCUSDT", maker=Decimal("0.00110128"), taker=Decimal("0.00120130")
    )
    minimal = {"symbol": "BTCUSDT", "standardCommission": {"maker": "0.001", "taker": "0.001"}}
    assert parse_spot_commission(minimal).taker == Decimal("0.001")
    with pytest.raises(CommissionRateError, match="standardCommission is missing"):
        parse_spot_commission({"symbol": "BTCUSDT"})
    with pytest.raises(CommissionRateError, match=r"taxCommission\.taker"):
        parse_spot_commission({**body, "taxCommission": {"maker": "0"}})
