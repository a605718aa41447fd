"""Instruments and exchangeInfo: Binance's exact shapes and internally consistent filters."""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scenarios.venue.instruments import (
    PERPETUAL_DELIVERY_DATE_MS,
    Instrument,
    Product,
    default_instruments,
    exchange_info_json,
    instruments_from_config,
    quarterly_delivery_ms,
    symbol_json,
    validate_instrument,
)
from tests.recorded import COINM_QUARTERLY

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "binance"
HTTP = FIXTURES / "python_tests" / "http_responses"
NOW_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
]
#: Spot filter types that Binance replaced; the fixture predates the change.
SUPERSEDED_SPOT_FILTERS = {"MIN_NOTIONAL": "NOTIONAL"}


def load(name: str) -> Any:
    return json.loads((HTTP / name).read_text())


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "array"
    return "object"


def assert_same_shape(reference: Any, actual: Any, path: str = "$") -> None:
    """Every key of ``reference`` is in ``actual`` with the same JSON type, recursively.

    Lists of filter objects are matched by ``filterType`` (types the reference has must be
    present); other lists compare their first elements.
    """
    assert json_type(actual) == json_type(reference), (
        f"{path}: {json_type(actual)} != {json_type(reference)}"
    )
    if isinstance(reference, dict):
        for key, value in reference.items():
            assert key in actual, f"{path}: missing key {key!r}"
            assert_same_shape(value, actual[key], f"{path}.{key}")
    elif isinstance(reference, list) and reference and actual:
        if all(isinstance(item, dict) and "filterType" in item for item in reference):
            ours = {item["filterType"]: item for item in actual}
            for item in reference:
                kind = item["filterType"]
                assert kind in ours, f"{path}: missing filterType {kind}"
                assert_same_shape(item, ours[kind], f"{path}[{kind}]")
        else:
            for item in actual:
                assert_same_shape(reference[0], item, f"{path}[]")


def by_symbol(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["symbol"]: entry for entry in response["symbols"]}


def filters_of(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["filterType"]: item for item in entry["filters"]}


@pytest.fixture(scope="module")
def instruments() -> tuple[Instrument, ...]:
    return default_instruments(NOW_MS)


# --- shapes against real payloads ----------------------------------------------------------


def test_spot_exchange_info_has_every_fixture_key_with_the_same_type(instruments):
    fixture = load("http_spot_market_exchange_info.json")
    ours = exchange_info_json(Product.SPOT, instruments, RATE_LIMITS, NOW_MS)
    top_level = {key: value for key, value in fixture.items() if key != "symbols"}
    assert_same_shape(top_level, ours)
    our_symbols = by_symbol(ours)
    our_filter_types = {kind for entry in ours["symbols"] for kind in filters_of(entry)}
    for reference in fixture["symbols"]:
        entry = our_symbols[reference["symbol"]]
        assert_same_shape({k: v for k, v in reference.items() if k != "filters"}, entry)
        for kind, reference_filter in filters_of(reference).items():
            if kind in SUPERSEDED_SPOT_FILTERS:
                assert SUPERSEDED_SPOT_FILTERS[kind] in filters_of(entry)
                continue
            assert kind in our_filter_types, f"no spot symbol publishes {kind}"
            for candidate in ours["symbols"]:
                if kind in filters_of(candidate):
                    assert_same_shape(reference_filter, filters_of(candidate)[kind])


def test_spot_symbols_have_the_current_fields(instruments):
    # The Rust fixture is the documentation's current symbol shape (otoAllowed, amendAllowed,
    # permissionSets, self-trade prevention modes...).
    reference = json.loads(
        (FIXTURES / "rust_test_data/spot/http_json/exchange_info_response.json").read_text()
    )
    ours = exchange_info_json(Product.SPOT, instruments, [], NOW_MS)
    for entry in ours["symbols"]:
        shape = {k: v for k, v in reference["symbols"][0].items() if k != "filters"}
        assert_same_shape(shape, entry)


def test_spot_filters_print_eight_decimals(instruments):
    entry = by_symbol(exchange_info_json(Product.SPOT, instruments, [], NOW_MS))["BTCUSDT"]
    filters = filters_of(entry)
    assert filters["PRICE_FILTER"] == {
        "filterType": "PRICE_FILTER",
        "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000",
        "tickSize": "0.01000000",
    }
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    assert filters["PERCENT_PRICE_BY_SIDE"]["avgPriceMins"] == 5
    assert entry["permissionSets"] == [["SPOT", "MARGIN"]]


def test_usdm_exchange_info_matches_the_fixture_shape_and_values(instruments):
    fixture = load("http_futures_market_exchange_info.json")
    ours = exchange_info_json(Product.USDM, instruments, RATE_LIMITS, NOW_MS)
    shape = {key: value for key, value in fixture.items() if key != "symbols"}
    assert_same_shape(shape, ours)
    assert ours["futuresType"] == "U_MARGINED"
    our_symbols = by_symbol(ours)
    for reference in fixture["symbols"]:
        symbol = reference["symbol"]
        if reference["contractType"] != "PERPETUAL":
            symbol = next(s for s, e in our_symbols.items() if e["contractType"] != "PERPETUAL")
        entry = our_symbols[symbol]
        assert_same_shape(reference, entry)
        # Same filters, same strings: the defaults copy the fixture's values.
        assert filters_of(entry) == filters_of(reference)
        for key in ("pricePrecision", "quantityPrecision", "liquidationFee", "marketTakeBound"):
            assert entry[key] == reference[key]


def test_coinm_exchange_info_has_binance_coinm_shape(instruments):
    ours = exchange_info_json(Product.COINM, instruments, RATE_LIMITS, NOW_MS)
    assert set(ours) == {"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"}
    assert {entry["symbol"] for entry in ours["symbols"]} >= {"BTCUSD_PERP"}
    for entry in ours["symbols"]:
        assert_same_shape(COINM_QUARTERLY, entry)
        assert "status" not in entry  # COIN-M says contractStatus
        assert "MIN_NOTIONAL" not in filters_of(entry)
        assert entry["contractSize"] == 100


def test_exchange_info_keeps_only_the_product_and_passes_rate_limits(instruments):
    for product in Product:
        response = exchange_info_json(product, instruments, RATE_LIMITS, 123)
        assert response["timezone"] == "UTC"
        assert response["serverTime"] == 123
        assert response["rateLimits"] == RATE_LIMITS
        assert response["exchangeFilters"] == []
        expected = [i.symbol for i in instruments if i.product is product]
        assert [entry["symbol"] for entry in response["symbols"]] == expected
    # The whole response is plain JSON.
    json.dumps(exchange_info_json(Product.USDM, instruments, RATE_LIMITS, 1))


def test_default_instruments_cover_the_brief(instruments):
    names = {(i.product, i.symbol) for i in instruments}
    delivery = datetime.datetime.fromtimestamp(quarterly_delivery_ms(NOW_MS) // 1000, datetime.UTC)
    suffix = delivery.strftime("%y%m%d")
    assert names == {
        (Product.SPOT, "BTCUSDT"),
        (Product.SPOT, "ETHUSDT"),
        (Product.SPOT, "BNBUSDT"),
        (Product.USDM, "BTCUSDT"),
        (Product.USDM, "ETHUSDT"),
        (Product.USDM, f"BTCUSDT_{suffix}"),
        (Product.COINM, "BTCUSD_PERP"),
        (Product.COINM, f"BTCUSD_{suffix}"),
    }
    assert suffix == "260327"  # last Friday of March 2026


# --- consistency ---------------------------------------------------------------------------


def check_filters(entry: dict[str, Any], product: Product) -> None:
    filters = filters_of(entry)
    price = filters["PRICE_FILTER"]
    tick = Decimal(price["tickSize"])
    min_price, max_price = Decimal(price["minPrice"]), Decimal(price["maxPrice"])
    assert tick > 0
    assert min_price < max_price
    assert min_price % tick == 0
    assert max_price % tick == 0
    lot = filters["LOT_SIZE"]
    step = Decimal(lot["stepSize"])
    min_qty, max_qty = Decimal(lot["minQty"]), Decimal(lot["maxQty"])
    assert step > 0
    assert 0 < min_qty <= max_qty
    assert min_qty % step == 0
    assert max_qty % step == 0
    market = filters["MARKET_LOT_SIZE"]
    assert Decimal(market["minQty"]) <= Decimal(market["maxQty"])
    if product is not Product.SPOT:
        assert Decimal(1).scaleb(-entry["pricePrecision"]) <= tick
        assert tick % Decimal(1).scaleb(-entry["pricePrecision"]) == 0
        assert step % Decimal(1).scaleb(-entry["quantityPrecision"]) == 0
        percent = filters["PERCENT_PRICE"]
        assert Decimal(percent["multiplierDown"]) < 1 < Decimal(percent["multiplierUp"])
        assert entry["onboardDate"] < entry["deliveryDate"]
    else:
        notional = filters["NOTIONAL"]
        assert Decimal(notional["minNotional"]) <= Decimal(notional["maxNotional"])


@given(now_ms=st.integers(min_value=1_500_000_000_000, max_value=4_000_000_000_000))
def test_defaults_are_consistent_at_any_time(now_ms):
    for instrument in default_instruments(now_ms):
        validate_instrument(instrument)
        assert instrument.start_price % instrument.tick_size == 0
        assert instrument.min_price <= instrument.start_price <= instrument.max_price
        check_filters(symbol_json(instrument), instrument.product)
        if instrument.contract_type == "CURRENT_QUARTER":
            assert instrument.onboard_date_ms <= now_ms < instrument.delivery_date_ms


def test_perpetuals_look_perpetual_to_ccxt(instruments):
    # ccxt: swap when contractType == PERPETUAL or deliveryDate == 4133404800000; future when
    # a real expiry; inverse when the settle (margin) asset is the base.
    for instrument in instruments:
        entry = symbol_json(instrument)
        if instrument.product is Product.SPOT:
            assert "contractType" not in entry
            continue
        if entry["contractType"] == "PERPETUAL":
            assert entry["deliveryDate"] == PERPETUAL_DELIVERY_DATE_MS
        else:
            assert entry["deliveryDate"] < PERPETUAL_DELIVERY_DATE_MS
            suffix = entry["symbol"].rsplit("_", 1)[1]
            expiry = datetime.datetime.fromtimestamp(entry["deliveryDate"] // 1000, datetime.UTC)
            assert expiry.strftime("%y%m%d") == suffix
        inverse = entry["marginAsset"] == entry["baseAsset"]
        assert inverse == (instrument.product is Product.COINM)


# --- delivery dates ------------------------------------------------------------------------


def test_quarterly_delivery_matches_a_real_contract():
    # BTCUSDT_220325 delivered 2022-03-25 08:00 UTC (fixture deliveryDate 1648195200000).
    assert quarterly_delivery_ms(1_645_233_611_962) == 1_648_195_200_000
    assert quarterly_delivery_ms(1_645_233_611_962, 1) == 1_656_057_600_000  # 2022-06-24
    # At the delivery instant the contract is gone: the next one is current.
    assert quarterly_delivery_ms(1_648_195_200_000) == 1_656_057_600_000
    assert quarterly_delivery_ms(1_648_195_200_000, -1) == 1_648_195_200_000


@given(now_ms=st.integers(min_value=0, max_value=5_000_000_000_000))
def test_quarterly_delivery_is_the_next_last_friday_of_a_quarter(now_ms):
    delivery = quarterly_delivery_ms(now_ms)
    previous = quarterly_delivery_ms(now_ms, -1)
    after = quarterly_delivery_ms(now_ms, 1)
    assert previous <= now_ms < delivery < after
    for value in (previous, delivery, after):
        moment = datetime.datetime.fromtimestamp(value // 1000, datetime.UTC)
        assert value % 1000 == 0
        assert moment.weekday() == 4
        assert (moment.hour, moment.minute, moment.second) == (8, 0, 0)
        assert moment.month in (3, 6, 9, 12)
        assert (moment + datetime.timedelta(days=7)).month != moment.month
    # Consecutive quarters: about three months apart.
    assert 84 * 86_400_000 <= delivery - previous <= 98 * 86_400_000


# --- configuration -------------------------------------------------------------------------


def test_config_overrides_a_default_keeping_the_rest():
    table = [
        {
            "product": "spot",
            "symbol": "BTCUSDT",
            "start_price": "50000.00",
            "min_notional": 10,
            "max_num_orders": 300,
        }
    ]
    chosen = {(i.product, i.symbol): i for i in instruments_from_config(table, NOW_MS)}
    btc = chosen[(Product.SPOT, "BTCUSDT")]
    assert btc.start_price == Decimal("50000.00")
    assert btc.min_notional == Decimal(10)
    assert btc.max_num_orders == 300
    assert filters_of(symbol_json(btc))["MAX_NUM_ORDERS"]["maxNumOrders"] == 300
    assert btc.step_size == Decimal("0.00001")
    assert len(chosen) == len(default_instruments(NOW_MS))


def test_config_adds_and_removes_instruments():
    table = [
        {
            "product": "usdm",
            "symbol": "SOLUSDT",
            "base_asset": "SOL",
            "quote_asset": "USDT",
            "tick_size": "0.010",
            "step_size": "1",
            "start_price": "150.000",
        },
        {
            "product": "coinm",
            "symbol": "ETHUSD_PERP",
            "base_asset": "ETH",
            "quote_asset": "USD",
            "tick_size": "0.01",
            "step_size": "1",
            "start_price": "3000.00",
        },
        {"product": "spot", "symbol": "BNBUSDT", "enabled": False},
    ]
    result = instruments_from_config(table, NOW_MS)
    chosen = {(i.product, i.symbol): i for i in result}
    assert (Product.SPOT, "BNBUSDT") not in chosen
    sol = chosen[(Product.USDM, "SOLUSDT")]
    assert sol.pair == "SOLUSDT"
    assert sol.margin_asset == "USDT"
    assert sol.price_precision == 3
    assert sol.quantity_precision == 0
    assert sol.contract_type == "PERPETUAL"
    eth = chosen[(Product.COINM, "ETHUSD_PERP")]
    assert eth.contract_size == 10
    assert eth.margin_asset == "ETH"
    assert [i.symbol for i in result][-2:] == ["SOLUSDT", "ETHUSD_PERP"]
    for instrument in result:
        check_filters(symbol_json(instrument), instrument.product)


def test_config_new_quarterly_gets_its_delivery_date():
    table = [
        {
            "product": "usdm",
            "symbol": "ETHUSDT_NEXT",
            "base_asset": "ETH",
            "quote_asset": "USDT",
            "tick_size": "0.01",
            "step_size": "0.001",
            "start_price": "3000.00",
            "contract_type": "NEXT_QUARTER",
        }
    ]
    eth = instruments_from_config(table, NOW_MS)[-1]
    assert eth.delivery_date_ms == quarterly_delivery_ms(NOW_MS, 1)
    assert eth.onboard_date_ms <= NOW_MS


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ({"product": "spot", "symbol": "BTCUSDT", "tick_sise": "1"}, "'tick_sise'"),
        ({"product": "spot", "symbol": "BTCUSDT", "start_price": 50000.5}, "50000.5"),
        ({"product": "spot", "symbol": "BTCUSDT", "start_price": 50000.5}, "'start_price'"),
        ({"product": "spot", "symbol": "BTCUSDT", "max_num_orders": "200"}, "'max_num_orders'"),
        ({"product": "spot", "symbol": "BTCUSDT", "order_types": "LIMIT"}, "'order_types'"),
        ({"product": "futures", "symbol": "BTCUSDT"}, "'futures'"),
        ({"product": "spot", "symbol": ""}, "'symbol'"),
        ({"product": "spot", "symbol": "XRPUSDT", "base_asset": "XRP"}, "'quote_asset'"),
        ({"product": "spot", "symbol": "BTCUSDT", "start_price": "60000.005"}, "start_price"),
        ({"product": "spot", "symbol": "BTCUSDT", "min_qty": "0.000015"}, "min_qty"),
        ({"product": "usdm", "symbol": "BTCUSDT", "min_price": "2000000"}, "max_price"),
        ({"product": "spot", "symbol": "BTCUSDT", "tick_size": "NaN"}, "'tick_size'"),
        ({"product": "spot", "symbol": "NOPE", "enabled": False}, "enabled"),
    ],
)
def test_config_errors_name_the_key_and_value(row, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        instruments_from_config([row], NOW_MS)


def test_config_rejects_non_tables_and_duplicates():
    with pytest.raises(ValueError, match=r"instruments\[0\]"):
        instruments_from_config(["BTCUSDT"], NOW_MS)  # type: ignore[list-item]
    row = {"product": "spot", "symbol": "BTCUSDT", "start_price": "1.00"}
    with pytest.raises(ValueError, match="duplicate"):
        instruments_from_config([row, row], NOW_MS)


def test_validation_rejects_inconsistent_filters(instruments):
    btc = instruments[0]
    for changes in (
        {"tick_size": Decimal(0)},
        {"max_price": btc.min_price},
        {"max_qty": Decimal("0.000001")},
        {"multiplier_up": Decimal("0.9")},
        {"price_precision": 1},
    ):
        with pytest.raises(ValueError, match="BTCUSDT"):
            validate_instrument(attrs.evolve(btc, **changes))
    perpetual = next(i for i in instruments if i.product is Product.USDM)
    with pytest.raises(ValueError, match="contract_type"):
        validate_instrument(attrs.evolve(perpetual, contract_type=None))
    with pytest.raises(ValueError, match="margin_asset"):
        validate_instrument(attrs.evolve(perpetual, margin_asset="BTC"))


def test_ccxt_parses_every_symbol(instruments):
    ccxt = pytest.importorskip("ccxt")
    exchange = ccxt.binance()
    # fetch_markets loads these from margin endpoints before parsing; parse_market reads them.
    exchange.options["crossMarginPairsData"] = []
    exchange.options["isolatedMarginPairsData"] = []
    delivery = datetime.datetime.fromtimestamp(quarterly_delivery_ms(NOW_MS) // 1000, datetime.UTC)
    suffix = delivery.strftime("%y%m%d")
    expected = {
        (Product.SPOT, "BTCUSDT"): ("BTC/USDT", "spot"),
        (Product.SPOT, "ETHUSDT"): ("ETH/USDT", "spot"),
        (Product.SPOT, "BNBUSDT"): ("BNB/USDT", "spot"),
        (Product.USDM, "BTCUSDT"): ("BTC/USDT:USDT", "swap"),
        (Product.USDM, "ETHUSDT"): ("ETH/USDT:USDT", "swap"),
        (Product.USDM, f"BTCUSDT_{suffix}"): (f"BTC/USDT:USDT-{suffix}", "future"),
        (Product.COINM, "BTCUSD_PERP"): ("BTC/USD:BTC", "swap"),
        (Product.COINM, f"BTCUSD_{suffix}"): (f"BTC/USD:BTC-{suffix}", "future"),
    }
    for instrument in instruments:
        parsed = exchange.parse_market(symbol_json(instrument))
        key = (instrument.product, instrument.symbol)
        assert (parsed["symbol"], parsed["type"]) == expected[key]
        assert parsed["active"] is True
        assert Decimal(str(parsed["precision"]["price"])) == instrument.tick_size
        assert Decimal(str(parsed["precision"]["amount"])) == instrument.step_size
        assert Decimal(str(parsed["limits"]["amount"]["min"])) == instrument.min_qty
        if instrument.min_notional is not None:
            assert Decimal(str(parsed["limits"]["cost"]["min"])) == instrument.min_notional
        if instrument.is_futures:
            assert Decimal(str(parsed["contractSize"])) == instrument.contract_size
            assert parsed["inverse"] is (instrument.product is Product.COINM)
