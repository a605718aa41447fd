"""The venue's payloads against Binance's real ones.

Every fixture file under the shared Binance fixture folder is either built here with
plausible values and compared by *shape* (same keys, recursively, and the same JSON types),
or listed in ``SKIPPED`` with the reason. A new fixture file fails
``test_every_fixture_file_is_covered_or_consciously_skipped`` until someone decides.

Shapes differ from a fixture only where the table says so, with the reason next to it: the
fixture predates a field Binance added (the venue emits the current payload) or the fixture
carries a field the current docs do not have. A stale difference (a listed key that is not
there) fails too.
"""

from __future__ import annotations

import decimal
import fnmatch
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scenarios.venue import payloads
from scenarios.venue.payloads import (
    SPOT_PRECISION,
    Precision,
    aggregate_trade_entry,
    aggregate_trade_event,
    average_price,
    book_ticker,
    book_ticker_event,
    combined,
    control_error,
    control_result,
    depth_snapshot,
    depth_update_event,
    force_order_event,
    format_decimal,
    format_levels,
    funding_info_entry,
    funding_rate_entry,
    invalid_json,
    invalid_request,
    invalid_value_type,
    kline_event,
    kline_row,
    mark_price_event,
    mini_ticker_event,
    open_interest,
    pair_of,
    partial_depth_event,
    ping,
    premium_index,
    rate_limit,
    server_time,
    ticker_24hr,
    ticker_24hr_event,
    ticker_price,
    trade_entry,
    trade_event,
    unknown_property,
    ws_api_error,
    ws_api_response,
)

FIXTURES = Path(
    os.environ.get(
        "TERN_BINANCE_FIXTURES",
        Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "binance",
    )
)

USDM_PRECISION = Precision(price=2, quantity=3, notional=5)
COINM_PRECISION = Precision(price=1, quantity=0, notional=8)

NOW = 1_700_000_000_123
BIDS = ((Decimal("60650.01"), Decimal("0.5")), (Decimal("60650"), Decimal("1.25")))
ASKS = ((Decimal("60650.02"), Decimal("0.75")), (Decimal("60651"), Decimal("2")))


# --- shape ---------------------------------------------------------------------------------


def shape(value: Any) -> Any:
    """The JSON shape of a value: keys recursively, and the JSON type of every leaf.

    An array of objects or arrays is an ``("array", <shape of its first element>)``. An array
    of scalars is a positional ``("row", (<type>, ...))``, so a depth level is
    ``("row", ("str", "str"))`` and a kline is its 12 typed columns.
    """
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        if not value:
            return ("array", None)
        if isinstance(value[0], dict | list):
            return ("array", shape(value[0]))
        return ("row", tuple(shape(item) for item in value))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    raise TypeError(f"not a JSON value: {value!r}")


def without(value_shape: Any, path: str) -> Any:
    """``value_shape`` minus the key at a dotted ``path`` (arrays are passed through)."""
    if isinstance(value_shape, tuple) and value_shape[0] == "array":
        return ("array", without(value_shape[1], path))
    head, _, rest = path.partition(".")
    assert isinstance(value_shape, dict), f"no object on the way to {path!r}"
    assert head in value_shape, f"no {path!r} to set aside"
    if rest:
        return {**value_shape, head: without(value_shape[head], rest)}
    return {key: item for key, item in value_shape.items() if key != head}


def as_sent(payload: Any) -> Any:
    """The payload as a client receives it: through orjson and back (no Decimal can pass)."""
    return orjson.loads(orjson.dumps(payload))


def load(relative: str) -> Any:
    return orjson.loads((FIXTURES / relative).read_bytes())


# --- plausible arguments shared by several cases -------------------------------------------


def ticker_arguments(precision: Precision) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "open_price": Decimal("60000"),
        "high_price": Decimal("61000.5"),
        "low_price": Decimal("59000.25"),
        "last_price": Decimal("60500.75"),
        "last_quantity": Decimal("0.012"),
        "previous_close_price": Decimal("59999.99"),
        "bid_price": Decimal("60500.74"),
        "bid_quantity": Decimal("1.5"),
        "ask_price": Decimal("60500.75"),
        "ask_quantity": Decimal("0.3"),
        "volume": Decimal("1234.567"),
        "notional_volume": Decimal("74000000.123"),
        "weighted_average_price": Decimal("60123.456"),
        "open_time": NOW - 86_400_000,
        "close_time": NOW,
        "first_trade_id": 100,
        "last_trade_id": 250,
        "trade_count": 151,
        "precision": precision,
    }


def kline_arguments(precision: Precision) -> dict[str, Any]:
    return {
        "open_time": 1_700_000_040_000,
        "close_time": 1_700_000_099_999,
        "open_price": Decimal("60000"),
        "high_price": Decimal("60100"),
        "low_price": Decimal("59950.5"),
        "close_price": Decimal("60050.25"),
        "volume": Decimal("12.5"),
        "notional_volume": Decimal("750000.1"),
        "taker_buy_volume": Decimal("6.25"),
        "taker_buy_notional_volume": Decimal("375000.05"),
        "precision": precision,
    }


def depth_update_arguments(precision: Precision) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "event_time": NOW,
        "transaction_time": NOW - 1,
        "first_update_id": 157,
        "final_update_id": 160,
        "previous_final_update_id": 156,
        "bids": BIDS,
        "asks": ASKS,
        "precision": precision,
    }


def trades(product: str, precision: Precision) -> list[Any]:
    return [
        trade_entry(
            product,
            trade_id=28457 + number,
            price=Decimal("60650.01"),
            quantity=Decimal("0.029"),
            time=NOW + number,
            is_buyer_maker=number % 2 == 0,
            precision=precision,
        )
        for number in range(2)
    ]


def aggregate_trades(product: str, precision: Precision) -> list[Any]:
    return [
        aggregate_trade_entry(
            product,
            aggregate_id=26129,
            price=Decimal("60650.01"),
            quantity=Decimal("4.704"),
            first_trade_id=27781,
            last_trade_id=27783,
            time=NOW,
            is_buyer_maker=True,
            precision=precision,
        )
    ]


def klines(precision: Precision) -> list[Any]:
    return [kline_row(trade_count=308, **kline_arguments(precision))]


def kline_stream(is_closed: bool) -> Any:
    return kline_event(
        symbol="BTCUSDT",
        event_time=NOW,
        interval="1m",
        first_trade_id=100,
        last_trade_id=200,
        trade_count=101,
        is_closed=is_closed,
        **kline_arguments(USDM_PRECISION),
    )


def spot_book_ticker() -> Any:
    return book_ticker(
        "spot",
        symbol="BTCUSDT",
        last_update_id=1027024,
        bid_price=Decimal("60741.67"),
        bid_quantity=Decimal("0.3658"),
        ask_price=Decimal("60741.68"),
        ask_quantity=Decimal("0.45178"),
        time=NOW,
        precision=SPOT_PRECISION,
    )


def spot_depth() -> Any:
    return depth_snapshot(
        "spot",
        symbol="BTCUSDT",
        last_update_id=14527958487,
        bids=BIDS,
        asks=ASKS,
        event_time=NOW,
        transaction_time=NOW - 1,
        precision=SPOT_PRECISION,
    )


def spot_average_price() -> Any:
    return average_price(
        minutes=5, price=Decimal("60753.92405551"), close_time=NOW, precision=SPOT_PRECISION
    )


def spot_ticker_price() -> Any:
    return ticker_price(
        "spot", symbol="BTCUSDT", price=Decimal("60740"), time=NOW, precision=SPOT_PRECISION
    )


def stream_trade(product: str, precision: Precision) -> Any:
    return trade_event(
        product,
        symbol="ETHUSDT",
        event_time=NOW,
        trade_id=705291099,
        price=Decimal("4149.74"),
        quantity=Decimal("0.4387"),
        trade_time=NOW - 1,
        is_buyer_maker=True,
        precision=precision,
    )


def stream_aggregate_trade(product: str, precision: Precision) -> Any:
    return aggregate_trade_event(
        product,
        symbol="ETHUSDT",
        event_time=NOW,
        aggregate_id=226532,
        price=Decimal("1632.46"),
        quantity=Decimal("0.343"),
        first_trade_id=228423,
        last_trade_id=228425,
        trade_time=NOW - 1,
        is_buyer_maker=False,
        precision=precision,
    )


def stream_book_ticker(product: str, precision: Precision) -> Any:
    return book_ticker_event(
        product,
        symbol="ETHUSDT",
        update_id=12711621188,
        event_time=NOW,
        transaction_time=NOW - 2,
        bid_price=Decimal("4507.24"),
        bid_quantity=Decimal("2.3595"),
        ask_price=Decimal("4507.25"),
        ask_quantity=Decimal("2.8457"),
        precision=precision,
    )


# --- the fixture table ---------------------------------------------------------------------


@attrs.frozen
class Case:
    """One fixture file and the builder call that produces the same kind of payload.

    ``fixture_only`` are dotted paths of keys the fixture has and the venue deliberately
    does not emit; ``venue_only`` the other way round. Each carries its reason in COVERED.
    """

    build: Callable[[], Any]
    fixture_only: tuple[str, ...] = ()
    venue_only: tuple[str, ...] = ()


COVERED: dict[str, Case] = {
    # REST, general
    "python_tests/http_responses/http_spot_market_ping.json": Case(ping),
    "rust_test_data/spot/http_json/ping_response.json": Case(ping),
    "python_tests/http_responses/http_spot_market_time.json": Case(lambda: server_time(NOW)),
    "rust_test_data/spot/http_json/server_time_response.json": Case(lambda: server_time(NOW)),
    # REST depth
    "python_tests/http_responses/http_spot_market_depth.json": Case(spot_depth),
    "rust_test_data/spot/http_json/depth_response.json": Case(spot_depth),
    "python_tests/http_responses/http_futures_market_depth.json": Case(
        lambda: depth_snapshot(
            "usdm",
            symbol="BTCUSDT",
            last_update_id=1027024,
            bids=BIDS,
            asks=ASKS,
            event_time=NOW,
            transaction_time=NOW - 13,
            precision=USDM_PRECISION,
        )
    ),
    # REST trades and historicalTrades (one shape)
    "python_tests/http_responses/http_spot_market_trades.json": Case(
        lambda: trades("spot", SPOT_PRECISION)
    ),
    "python_tests/http_responses/http_spot_market_historical_trades.json": Case(
        lambda: trades("spot", SPOT_PRECISION)
    ),
    "rust_test_data/spot/http_json/trades_response.json": Case(
        lambda: trades("spot", SPOT_PRECISION)
    ),
    # isRPITrade: added to USD-M trades after this fixture (protocol doc 4.2, 2026 SDK model).
    "python_tests/http_responses/http_futures_market_trades.json": Case(
        lambda: trades("usdm", USDM_PRECISION), venue_only=("isRPITrade",)
    ),
    "python_tests/http_responses/http_futures_market_historical_trades.json": Case(
        lambda: trades("usdm", USDM_PRECISION), venue_only=("isRPITrade",)
    ),
    # REST aggTrades
    "python_tests/http_responses/http_spot_market_agg_trades.json": Case(
        lambda: aggregate_trades("spot", SPOT_PRECISION)
    ),
    # nq: USD-M quantity without RPI trades, added 2025-12-31 (protocol doc 4.2).
    "python_tests/http_responses/http_futures_market_agg_trades.json": Case(
        lambda: aggregate_trades("usdm", USDM_PRECISION), venue_only=("nq",)
    ),
    # REST klines; continuous, mark price and index price klines share the row shape.
    "python_tests/http_responses/http_spot_market_klines.json": Case(
        lambda: klines(SPOT_PRECISION)
    ),
    "rust_test_data/spot/http_json/klines_response.json": Case(lambda: klines(SPOT_PRECISION)),
    "python_tests/http_responses/http_futures_market_klines.json": Case(
        lambda: klines(USDM_PRECISION)
    ),
    "python_tests/http_responses/http_futures_market_continuous_klines.json": Case(
        lambda: klines(USDM_PRECISION)
    ),
    "python_tests/http_responses/http_futures_market_mark_price_klines.json": Case(
        lambda: klines(USDM_PRECISION)
    ),
    "python_tests/http_responses/http_futures_market_index_price_klines.json": Case(
        lambda: klines(USDM_PRECISION)
    ),
    # REST tickers
    "rust_test_data/spot/http_json/ticker_24hr_response.json": Case(
        lambda: ticker_24hr("spot", **ticker_arguments(SPOT_PRECISION))
    ),
    "python_tests/http_responses/http_futures_market_ticker_24hr.json": Case(
        lambda: ticker_24hr("usdm", **ticker_arguments(USDM_PRECISION))
    ),
    "python_tests/http_responses/http_spot_market_ticker_price.json": Case(spot_ticker_price),
    "rust_test_data/spot/http_json/ticker_price_response.json": Case(spot_ticker_price),
    "python_tests/http_responses/http_futures_market_ticker_price.json": Case(
        lambda: ticker_price(
            "usdm", symbol="BTCUSDT", price=Decimal("6000.01"), time=NOW, precision=USDM_PRECISION
        )
    ),
    "python_tests/http_responses/http_spot_market_book_ticker.json": Case(spot_book_ticker),
    "rust_test_data/spot/http_json/book_ticker_response.json": Case(spot_book_ticker),
    "python_tests/http_responses/http_futures_market_book_ticker.json": Case(
        lambda: book_ticker(
            "usdm",
            symbol="BTCUSDT",
            last_update_id=1027024,
            bid_price=Decimal("4"),
            bid_quantity=Decimal("431"),
            ask_price=Decimal("4.01"),
            ask_quantity=Decimal("9"),
            time=NOW,
            precision=USDM_PRECISION,
        )
    ),
    # closeTime: added to spot avgPrice in 2023; this fixture is older (the rust one has it).
    "python_tests/http_responses/http_spot_market_avg_price.json": Case(
        spot_average_price, venue_only=("closeTime",)
    ),
    "rust_test_data/spot/http_json/avg_price_response.json": Case(spot_average_price),
    # REST futures-only
    "python_tests/http_responses/http_futures_market_premium_index.json": Case(
        lambda: premium_index(
            "usdm",
            symbol="BTCUSDT",
            mark_price=Decimal("11793.63104562"),
            index_price=Decimal("11781.8049597"),
            estimated_settle_price=Decimal("11781.16138815"),
            last_funding_rate=Decimal("0.00038246"),
            interest_rate=Decimal("0.0001"),
            next_funding_time=1597392000000,
            time=NOW,
        )
    ),
    # markPrice: added to USD-M funding rate history after this fixture (protocol doc 4.2).
    "python_tests/http_responses/http_futures_market_funding_rate.json": Case(
        lambda: [
            funding_rate_entry(
                "usdm",
                symbol="BTCUSDT",
                funding_rate=Decimal("-0.0375"),
                funding_time=1570608000000,
                mark_price=Decimal("8000.5"),
            )
        ],
        venue_only=("markPrice",),
    ),
    "python_tests/http_responses/http_futures_market_open_interest.json": Case(
        lambda: open_interest(
            "usdm",
            symbol="BTCUSDT",
            open_interest=Decimal("10659.509"),
            time=NOW,
            precision=USDM_PRECISION,
        )
    ),
    # Streams: depth
    # ps and st: added to USD-M depth events in the CM-UM migration; this fixture is older
    # (depth_update_stream.json, the current docs example, has both).
    "python_tests/ws_messages/ws_futures_depth_diff_update.json": Case(
        lambda: depth_update_event("usdm", **depth_update_arguments(USDM_PRECISION)),
        venue_only=("ps", "st"),
    ),
    "rust_test_data/futures/market_data_json/depth_update_stream.json": Case(
        lambda: depth_update_event("usdm", **depth_update_arguments(USDM_PRECISION))
    ),
    # The docs example of the USD-M partial depth stream (<symbol>@depth5).
    "python_tests/ws_messages/ws_futures_depth_update.json": Case(
        lambda: partial_depth_event("usdm", **depth_update_arguments(USDM_PRECISION))
    ),
    # Streams: trades
    # b and a (buyer and seller order ids): removed from the spot trade stream by Binance in
    # 2023; the protocol doc 7.3 payload has neither.
    "python_tests/ws_messages/ws_spot_trade.json": Case(
        lambda: combined("ethusdt@trade", stream_trade("spot", SPOT_PRECISION)),
        fixture_only=("data.b", "data.a"),
    ),
    "rust_test_data/futures/market_data_json/trade_stream.json": Case(
        lambda: stream_trade("usdm", USDM_PRECISION)
    ),
    # st: not part of the spot aggTrade payload (protocol doc 7.3); the fixture copied it from
    # the futures one.
    "python_tests/ws_messages/ws_spot_agg_trade.json": Case(
        lambda: combined("ethusdt@aggTrade", stream_aggregate_trade("spot", SPOT_PRECISION)),
        fixture_only=("data.st",),
    ),
    # nq: added to the USD-M aggTrade stream 2025-12-31 (protocol doc 7.3).
    "rust_test_data/futures/market_data_json/agg_trade_stream.json": Case(
        lambda: stream_aggregate_trade("usdm", USDM_PRECISION), venue_only=("nq",)
    ),
    # Streams: bookTicker
    # T and E: the spot bookTicker has no event type or times (protocol doc 7.3, marked ⚠).
    "python_tests/ws_messages/ws_spot_ticker_book.json": Case(
        lambda: combined("ethusdt@bookTicker", stream_book_ticker("spot", SPOT_PRECISION)),
        fixture_only=("data.T", "data.E"),
    ),
    "python_tests/ws_messages/ws_futures_book_ticker.json": Case(
        lambda: stream_book_ticker("usdm", USDM_PRECISION)
    ),
    "rust_test_data/futures/market_data_json/book_ticker_stream.json": Case(
        lambda: stream_book_ticker("usdm", USDM_PRECISION)
    ),
    # Streams: kline
    "rust_test_data/futures/market_data_json/kline_stream_open.json": Case(
        lambda: kline_stream(is_closed=False)
    ),
    "rust_test_data/futures/market_data_json/kline_stream_closed.json": Case(
        lambda: kline_stream(is_closed=True)
    ),
    # Streams: 24hrTicker
    "python_tests/ws_messages/ws_spot_ticker_24hr.json": Case(
        lambda: ticker_24hr_event("spot", event_time=NOW, **ticker_arguments(SPOT_PRECISION))
    ),
    "python_tests/ws_messages/ws_futures_ticker_24hr.json": Case(
        lambda: ticker_24hr_event("usdm", event_time=NOW, **ticker_arguments(USDM_PRECISION))
    ),
    "rust_test_data/futures/market_data_json/ticker_stream.json": Case(
        lambda: ticker_24hr_event("usdm", event_time=NOW, **ticker_arguments(USDM_PRECISION))
    ),
    # Streams: futures only
    "rust_test_data/futures/market_data_json/mark_price_stream.json": Case(
        lambda: mark_price_event(
            "usdm",
            symbol="BTCUSDT",
            event_time=NOW,
            mark_price=Decimal("11794.15"),
            index_price=Decimal("11784.62659091"),
            estimated_settle_price=Decimal("11784.25641265"),
            funding_rate=Decimal("0.00038167"),
            next_funding_time=1562306400000,
        )
    ),
    "rust_test_data/futures/market_data_json/liquidation_stream.json": Case(
        lambda: force_order_event(
            "usdm",
            symbol="BTCUSDT",
            event_time=NOW,
            side="SELL",
            quantity=Decimal("0.014"),
            price=Decimal("9910"),
            average_price=Decimal("9910.12"),
            last_filled_quantity=Decimal("0.014"),
            filled_quantity=Decimal("0.014"),
            trade_time=NOW,
            precision=USDM_PRECISION,
        )
    ),
}

#: Fixture kinds payloads.py does not build, by glob pattern, each with the reason.
SKIPPED: dict[str, str] = {
    # Not payloads: Binance's public data dump (CSV) and SBE capture metadata.
    "historical_csv/*.csv": "data-dump CSV, not an API payload",
    "rust_test_data/spot/user_data_sbe/mainnet/*.json": "SBE capture metadata, not a payload",
    # Instrument definitions: built by the venue's exchangeInfo code, not here.
    "*exchange_info*.json": "exchangeInfo comes from instrument definitions, not this module",
    # Account, order and user-data payloads belong to the matching/account side of the venue.
    "python_tests/http_responses/http_futures_account_*.json": "account/order payload",
    "python_tests/http_responses/http_futures_wallet_commission_rate_*.json": "account payload",
    "python_tests/http_responses/http_spot_wallet_account.json": "account payload",
    "python_tests/http_responses/http_wallet_trading_fee*.json": "account (SAPI wallet) payload",
    "rust_test_data/futures/http_json/*.json": "account/order payload",
    "rust_test_data/spot/http_json/account_*.json": "account payload",
    "rust_test_data/spot/http_json/*order*.json": "order payload",
    "rust_test_data/spot/user_data_json/*.json": "user data stream event",
    "rust_test_data/futures/user_data_json/*.json": "user data stream event",
    "python_tests/ws_messages/ws_futures_algo_update_*.json": "user data stream event",
    "python_tests/ws_messages/ws_futures_order_update_*.json": "user data stream event",
    "python_tests/ws_messages/ws_futures_trade_lite.json": "user data stream event",
    "python_tests/ws_messages/ws_spot_execution_report_*.json": "user data stream event",
    "removed_upstream/rust_test_data/ws_futures_*.json": "user data stream event",
    "removed_upstream/python_tests/http_responses/http_spot_streams_listen_key.json": (
        "listenKey lifecycle, not market data (and removed from spot 2026-02-20)"
    ),
    # Market data the venue does not offer (not in the brief, no simulated source).
    "python_tests/http_responses/http_futures_market_*long_short*.json": "trading statistics",
    "python_tests/http_responses/http_futures_market_taker_long_short_ratio.json": (
        "trading statistics"
    ),
    "python_tests/http_responses/http_futures_market_open_interest_historical.json": (
        "trading statistics"
    ),
    "python_tests/http_responses/http_futures_market_asset_index.json": (
        "multi-assets mode asset index"
    ),
    "python_tests/http_responses/http_futures_market_index_info.json": "composite index info",
    "python_tests/http_responses/http_futures_market_blvt_nav_kline.json": (
        "BLVT NAV klines (BLVTs were delisted)"
    ),
}


def fixture_files() -> list[str]:
    assert FIXTURES.is_dir(), f"the Binance fixtures are missing at {FIXTURES}"
    return sorted(
        path.relative_to(FIXTURES).as_posix()
        for path in FIXTURES.rglob("*")
        if path.is_file() and path.suffix != ".md"
    )


def skip_reason(relative: str) -> str | None:
    for pattern, reason in SKIPPED.items():
        if fnmatch.fnmatch(relative, pattern):
            return reason
    return None


def test_every_fixture_file_is_covered_or_consciously_skipped() -> None:
    files = fixture_files()
    undecided = [name for name in files if name not in COVERED and skip_reason(name) is None]
    assert undecided == [], "add these to COVERED or SKIPPED"
    both = [name for name in COVERED if skip_reason(name) is not None]
    assert both == [], "covered fixtures must not also match a skip pattern"
    missing = sorted(set(COVERED) - set(files))
    assert missing == [], "COVERED names fixture files that do not exist"
    unused = [
        pattern for pattern in SKIPPED if not any(fnmatch.fnmatch(name, pattern) for name in files)
    ]
    assert unused == [], "skip patterns that match nothing"


@pytest.mark.parametrize("relative", sorted(COVERED))
def test_built_payload_has_the_fixture_shape(relative: str) -> None:
    case = COVERED[relative]
    built = shape(as_sent(case.build()))
    expected = shape(load(relative))
    for path in case.fixture_only:
        expected = without(expected, path)
    for path in case.venue_only:
        built = without(built, path)
    assert built == expected


# --- real values reproduce exactly ---------------------------------------------------------


def test_spot_depth_reproduces_the_fixture() -> None:
    fixture = load("python_tests/http_responses/http_spot_market_depth.json")

    def levels(rows: list[list[str]]) -> list[tuple[Decimal, Decimal]]:
        return [(Decimal(price), Decimal(quantity)) for price, quantity in rows]

    built = depth_snapshot(
        "spot",
        symbol="BTCUSDT",
        last_update_id=fixture["lastUpdateId"],
        bids=levels(fixture["bids"]),
        asks=levels(fixture["asks"]),
        event_time=NOW,
        transaction_time=NOW,
        precision=SPOT_PRECISION,
    )
    assert built == fixture


def test_spot_trades_reproduce_the_fixture_with_computed_quote_quantity() -> None:
    fixture = load("python_tests/http_responses/http_spot_market_trades.json")
    built = [
        trade_entry(
            "spot",
            trade_id=item["id"],
            price=Decimal(item["price"]).normalize(),
            quantity=Decimal(item["qty"]).normalize(),
            time=item["time"],
            is_buyer_maker=item["isBuyerMaker"],
            precision=SPOT_PRECISION,
        )
        for item in fixture
    ]
    assert built == fixture


def test_spot_aggregate_trades_reproduce_the_fixture() -> None:
    fixture = load("python_tests/http_responses/http_spot_market_agg_trades.json")
    built = [
        aggregate_trade_entry(
            "spot",
            aggregate_id=item["a"],
            price=Decimal(item["p"]),
            quantity=Decimal(item["q"]),
            first_trade_id=item["f"],
            last_trade_id=item["l"],
            time=item["T"],
            is_buyer_maker=item["m"],
            precision=SPOT_PRECISION,
        )
        for item in fixture
    ]
    assert built == fixture


def test_spot_klines_reproduce_the_fixture() -> None:
    fixture = load("python_tests/http_responses/http_spot_market_klines.json")
    built = [
        kline_row(
            open_time=row[0],
            open_price=Decimal(row[1]),
            high_price=Decimal(row[2]),
            low_price=Decimal(row[3]),
            close_price=Decimal(row[4]),
            volume=Decimal(row[5]),
            close_time=row[6],
            notional_volume=Decimal(row[7]),
            trade_count=row[8],
            taker_buy_volume=Decimal(row[9]),
            taker_buy_notional_volume=Decimal(row[10]),
            precision=SPOT_PRECISION,
        )
        for row in fixture
    ]
    assert built == fixture


def test_spot_ticker_reproduces_the_fixture_with_computed_change() -> None:
    fixture = load("rust_test_data/spot/http_json/ticker_24hr_response.json")
    built = ticker_24hr(
        "spot",
        symbol=fixture["symbol"],
        open_price=Decimal(fixture["openPrice"]),
        high_price=Decimal(fixture["highPrice"]),
        low_price=Decimal(fixture["lowPrice"]),
        last_price=Decimal(fixture["lastPrice"]),
        last_quantity=Decimal(fixture["lastQty"]),
        previous_close_price=Decimal(fixture["prevClosePrice"]),
        bid_price=Decimal(fixture["bidPrice"]),
        bid_quantity=Decimal(fixture["bidQty"]),
        ask_price=Decimal(fixture["askPrice"]),
        ask_quantity=Decimal(fixture["askQty"]),
        volume=Decimal(fixture["volume"]),
        notional_volume=Decimal(fixture["quoteVolume"]),
        weighted_average_price=Decimal(fixture["weightedAvgPrice"]),
        open_time=fixture["openTime"],
        close_time=fixture["closeTime"],
        first_trade_id=fixture["firstId"],
        last_trade_id=fixture["lastId"],
        trade_count=fixture["count"],
        precision=SPOT_PRECISION,
    )
    assert built == fixture


def test_usdm_partial_depth_reproduces_the_docs_example() -> None:
    fixture = load("python_tests/ws_messages/ws_futures_depth_update.json")
    built = partial_depth_event(
        "usdm",
        symbol=fixture["s"],
        event_time=fixture["E"],
        transaction_time=fixture["T"],
        first_update_id=fixture["U"],
        final_update_id=fixture["u"],
        previous_final_update_id=fixture["pu"],
        bids=[(Decimal(price), Decimal(quantity)) for price, quantity in fixture["b"]],
        asks=[(Decimal(price), Decimal(quantity)) for price, quantity in fixture["a"]],
        precision=USDM_PRECISION,
    )
    assert built == fixture


# --- shapes without a fixture: spot diff depth, COIN-M, mini tickers, control, WS-API -------


def coinm_ticker_arguments() -> dict[str, Any]:
    return {**ticker_arguments(COINM_PRECISION), "symbol": "BTCUSD_PERP"}


KEYS_WITHOUT_FIXTURE: dict[str, tuple[Callable[[], Any], list[str]]] = {
    "spot depthUpdate": (
        lambda: depth_update_event("spot", **depth_update_arguments(SPOT_PRECISION)),
        ["e", "E", "s", "U", "u", "b", "a"],
    ),
    "spot partial depth": (
        lambda: partial_depth_event("spot", **depth_update_arguments(SPOT_PRECISION)),
        ["lastUpdateId", "bids", "asks"],
    ),
    "spot miniTicker": (
        lambda: mini_ticker_event(
            "spot",
            symbol="BTCUSDT",
            event_time=NOW,
            open_price=Decimal(1),
            high_price=Decimal(2),
            low_price=Decimal(1),
            last_price=Decimal(2),
            volume=Decimal(3),
            notional_volume=Decimal(5),
            precision=SPOT_PRECISION,
        ),
        ["e", "E", "s", "c", "o", "h", "l", "v", "q"],
    ),
    "usdm miniTicker": (
        lambda: mini_ticker_event(
            "usdm",
            symbol="BTCUSDT",
            event_time=NOW,
            open_price=Decimal(1),
            high_price=Decimal(2),
            low_price=Decimal(1),
            last_price=Decimal(2),
            volume=Decimal(3),
            notional_volume=Decimal(5),
            precision=USDM_PRECISION,
        ),
        ["e", "E", "s", "c", "o", "h", "l", "v", "q", "st"],
    ),
    "coinm miniTicker": (
        lambda: mini_ticker_event(
            "coinm",
            symbol="BTCUSD_PERP",
            event_time=NOW,
            open_price=Decimal(1),
            high_price=Decimal(2),
            low_price=Decimal(1),
            last_price=Decimal(2),
            volume=Decimal(3),
            notional_volume=Decimal(5),
            precision=COINM_PRECISION,
        ),
        ["e", "E", "s", "ps", "c", "o", "h", "l", "v", "q", "st"],
    ),
    "coinm depth": (
        lambda: depth_snapshot(
            "coinm",
            symbol="BTCUSD_PERP",
            last_update_id=1,
            bids=BIDS,
            asks=ASKS,
            event_time=NOW,
            transaction_time=NOW,
            precision=COINM_PRECISION,
        ),
        ["lastUpdateId", "symbol", "pair", "E", "T", "bids", "asks"],
    ),
    "coinm trades": (
        lambda: trade_entry(
            "coinm",
            trade_id=1,
            price=Decimal("60000.1"),
            quantity=Decimal(3),
            time=NOW,
            is_buyer_maker=False,
            notional=Decimal("0.00499999"),
            precision=COINM_PRECISION,
        ),
        ["id", "price", "qty", "baseQty", "time", "isBuyerMaker"],
    ),
    "coinm aggTrades": (
        lambda: aggregate_trades("coinm", COINM_PRECISION)[0],
        ["a", "p", "q", "f", "l", "T", "m"],
    ),
    "coinm ticker/24hr": (
        lambda: ticker_24hr("coinm", **coinm_ticker_arguments()),
        [
            "symbol",
            "pair",
            "priceChange",
            "priceChangePercent",
            "weightedAvgPrice",
            "lastPrice",
            "lastQty",
            "openPrice",
            "highPrice",
            "lowPrice",
            "volume",
            "baseVolume",
            "openTime",
            "closeTime",
            "firstId",
            "lastId",
            "count",
        ],
    ),
    "coinm ticker/price": (
        lambda: ticker_price(
            "coinm", symbol="BTCUSD_PERP", price=Decimal(1), time=NOW, precision=COINM_PRECISION
        ),
        ["symbol", "ps", "price", "time"],
    ),
    "coinm ticker/bookTicker": (
        lambda: book_ticker(
            "coinm",
            symbol="BTCUSD_PERP",
            last_update_id=7,
            bid_price=Decimal(1),
            bid_quantity=Decimal(2),
            ask_price=Decimal(3),
            ask_quantity=Decimal(4),
            time=NOW,
            precision=COINM_PRECISION,
        ),
        ["lastUpdateId", "symbol", "pair", "bidPrice", "bidQty", "askPrice", "askQty", "time"],
    ),
    "coinm premiumIndex": (
        lambda: premium_index(
            "coinm",
            symbol="BTCUSD_PERP",
            mark_price=Decimal(1),
            index_price=Decimal(1),
            estimated_settle_price=Decimal(1),
            last_funding_rate=Decimal("0.0001"),
            interest_rate=Decimal("0.0001"),
            next_funding_time=NOW,
            time=NOW,
        ),
        [
            "symbol",
            "pair",
            "markPrice",
            "indexPrice",
            "estimatedSettlePrice",
            "lastFundingRate",
            "interestRate",
            "nextFundingTime",
            "time",
        ],
    ),
    "coinm fundingRate": (
        lambda: funding_rate_entry(
            "coinm",
            symbol="BTCUSD_PERP",
            funding_rate=Decimal("0.0001"),
            funding_time=NOW,
            mark_price=Decimal(1),
        ),
        ["symbol", "fundingTime", "fundingRate"],
    ),
    "fundingInfo": (
        lambda: funding_info_entry(
            symbol="BTCUSDT",
            adjusted_funding_rate_cap=Decimal("0.025"),
            adjusted_funding_rate_floor=Decimal("-0.025"),
            funding_interval_hours=8,
        ),
        [
            "symbol",
            "adjustedFundingRateCap",
            "adjustedFundingRateFloor",
            "fundingIntervalHours",
            "disclaimer",
        ],
    ),
    "coinm openInterest": (
        lambda: open_interest(
            "coinm",
            symbol="BTCUSD_PERP",
            open_interest=Decimal(1234),
            time=NOW,
            precision=COINM_PRECISION,
        ),
        ["symbol", "pair", "openInterest", "contractType", "time"],
    ),
    "coinm depthUpdate": (
        lambda: depth_update_event(
            "coinm", **{**depth_update_arguments(COINM_PRECISION), "symbol": "BTCUSD_PERP"}
        ),
        ["e", "E", "T", "s", "ps", "st", "U", "u", "pu", "b", "a"],
    ),
    "coinm aggTrade": (
        lambda: stream_aggregate_trade("coinm", COINM_PRECISION),
        ["e", "E", "a", "s", "p", "q", "f", "l", "T", "m", "st"],
    ),
    "coinm bookTicker": (
        lambda: stream_book_ticker("coinm", COINM_PRECISION),
        ["e", "u", "E", "T", "s", "b", "B", "a", "A", "st", "ps"],
    ),
    "coinm 24hrTicker": (
        lambda: ticker_24hr_event("coinm", event_time=NOW, **coinm_ticker_arguments()),
        [
            "e",
            "E",
            "s",
            "ps",
            "p",
            "P",
            "w",
            "c",
            "Q",
            "o",
            "h",
            "l",
            "v",
            "q",
            "O",
            "C",
            "F",
            "L",
            "n",
            "st",
        ],
    ),
    "coinm markPriceUpdate": (
        lambda: mark_price_event(
            "coinm",
            symbol="BTCUSD_250627",
            event_time=NOW,
            mark_price=Decimal(1),
            index_price=Decimal(1),
            estimated_settle_price=Decimal(1),
            funding_rate=None,
            next_funding_time=0,
        ),
        ["e", "E", "s", "p", "i", "P", "r", "T", "st"],
    ),
    "subscribe reply": (lambda: control_result(1), ["result", "id"]),
    "control error": (lambda: invalid_request(1, "invalid stream"), ["error", "id"]),
    "ws-api response": (
        lambda: ws_api_response(
            "a",
            {},
            rate_limits=[
                rate_limit(
                    rate_limit_type="REQUEST_WEIGHT",
                    interval="MINUTE",
                    interval_number=1,
                    limit=6000,
                    count=2,
                )
            ],
        ),
        ["id", "status", "result", "rateLimits"],
    ),
    "ws-api error": (
        lambda: ws_api_error("a", status=400, code=-1121, message="Invalid symbol."),
        ["id", "status", "error"],
    ),
}


@pytest.mark.parametrize("name", sorted(KEYS_WITHOUT_FIXTURE))
def test_keys_follow_the_docs_where_no_fixture_exists(name: str) -> None:
    build, keys = KEYS_WITHOUT_FIXTURE[name]
    built = as_sent(build())
    assert list(built) == keys


def test_coinm_force_order_carries_the_pair_in_the_order() -> None:
    event = force_order_event(
        "coinm",
        symbol="BTCUSD_PERP",
        event_time=NOW,
        side="BUY",
        quantity=Decimal(2),
        price=Decimal("60000.1"),
        average_price=Decimal("60000.1"),
        last_filled_quantity=Decimal(2),
        filled_quantity=Decimal(2),
        trade_time=NOW,
        precision=COINM_PRECISION,
    )
    assert list(event["o"]) == ["s", "ps", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T"]
    assert event["o"]["ps"] == "BTCUSD"
    assert event["o"]["q"] == "2"


def test_coinm_delivery_contracts_show_empty_rates() -> None:
    index = premium_index(
        "coinm",
        symbol="BTCUSD_250627",
        mark_price=Decimal("60000"),
        index_price=Decimal("59990"),
        estimated_settle_price=Decimal("59995"),
        last_funding_rate=None,
        interest_rate=None,
        next_funding_time=0,
        time=NOW,
    )
    assert index["lastFundingRate"] == ""
    assert index["interestRate"] == ""
    assert index["nextFundingTime"] == 0
    assert index["pair"] == "BTCUSD"
    assert index["markPrice"] == "60000.00000000"


def test_field_values_and_types_are_binances() -> None:
    usdm = ticker_24hr("usdm", **ticker_arguments(USDM_PRECISION))
    assert usdm["priceChange"] == "500.75"
    assert usdm["priceChangePercent"] == "0.835"
    assert usdm["lastQty"] == "0.012"
    assert usdm["quoteVolume"] == "74000000.12300"
    assert usdm["count"] == 151
    usdm_trade = trades("usdm", USDM_PRECISION)[0]
    assert usdm_trade["quoteQty"] == "1758.85029"
    assert usdm_trade["isRPITrade"] is False
    usdm_aggregate = aggregate_trades("usdm", USDM_PRECISION)[0]
    assert usdm_aggregate["nq"] == usdm_aggregate["q"] == "4.704"
    spot_trade = stream_trade("spot", SPOT_PRECISION)
    assert spot_trade["M"] is True
    assert spot_trade["p"] == "4149.74000000"
    row = klines(USDM_PRECISION)[0]
    assert row[11] == "0"
    assert [type(column) for column in row] == [int, *[str] * 5, int, str, int, str, str, str]
    assert kline_stream(is_closed=True)["k"]["B"] == "0"


def test_control_replies_echo_the_id_and_carry_binances_codes() -> None:
    assert control_result("abc") == {"result": None, "id": "abc"}
    assert control_result(3, ["btcusdt@aggTrade"]) == {"result": ["btcusdt@aggTrade"], "id": 3}
    assert control_result(5, True) == {"result": True, "id": 5}
    assert invalid_request(7, "invalid stream") == {
        "error": {"code": 2, "msg": "Invalid request: invalid stream"},
        "id": 7,
    }
    assert invalid_json("expected value at line 1 column 1") == {
        "error": {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"},
        "id": None,
    }
    assert unknown_property(2) == {"error": {"code": 0, "msg": "Unknown property"}, "id": 2}
    assert invalid_value_type(2)["error"] == {
        "code": 1,
        "msg": "Invalid value type: expected Boolean",
    }
    assert control_error(None, 2, "Invalid request: too many parameters")["id"] is None


def test_ws_api_envelopes() -> None:
    limits = [
        rate_limit(
            rate_limit_type="REQUEST_WEIGHT",
            interval="MINUTE",
            interval_number=1,
            limit=6000,
            count=5,
        )
    ]
    assert ws_api_response(9, {"serverTime": NOW}, rate_limits=limits) == {
        "id": 9,
        "status": 200,
        "result": {"serverTime": NOW},
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
                "count": 5,
            }
        ],
    }
    assert "rateLimits" not in ws_api_response(9, {})
    banned = ws_api_error(
        "x",
        status=418,
        code=-1003,
        message="Way too much request weight used; IP banned until 1.",
        data={"serverTime": NOW, "retryAfter": NOW + 1},
        rate_limits=limits,
    )
    assert banned["error"]["data"] == {"serverTime": NOW, "retryAfter": NOW + 1}
    assert list(banned) == ["id", "status", "error", "rateLimits"]
    assert (
        "data" not in ws_api_error(None, status=400, code=-1121, message="Invalid symbol.")["error"]
    )


# --- refusals ------------------------------------------------------------------------------


def test_unknown_and_unsupported_products_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown product"):
        ticker_price("margin", symbol="X", price=Decimal(1), time=0, precision=SPOT_PRECISION)
    with pytest.raises(ValueError, match="no such payload"):
        mark_price_event(
            "spot",
            symbol="BTCUSDT",
            event_time=NOW,
            mark_price=Decimal(1),
            index_price=Decimal(1),
            estimated_settle_price=Decimal(1),
            funding_rate=Decimal(0),
            next_funding_time=0,
        )
    with pytest.raises(ValueError, match="no such payload"):
        open_interest(
            "spot", symbol="BTCUSDT", open_interest=Decimal(1), time=0, precision=SPOT_PRECISION
        )


def test_coinm_needs_what_it_cannot_derive() -> None:
    with pytest.raises(ValueError, match="notional"):
        trade_entry(
            "coinm",
            trade_id=1,
            price=Decimal(1),
            quantity=Decimal(1),
            time=0,
            is_buyer_maker=True,
            precision=COINM_PRECISION,
        )
    with pytest.raises(ValueError, match="contract type"):
        open_interest(
            "coinm",
            symbol="BTCUSD_250627",
            open_interest=Decimal(1),
            time=0,
            precision=COINM_PRECISION,
        )
    delivery = open_interest(
        "coinm",
        symbol="BTCUSD_250627",
        open_interest=Decimal(1),
        time=0,
        precision=COINM_PRECISION,
        contract_type="CURRENT_QUARTER",
    )
    assert delivery["contractType"] == "CURRENT_QUARTER"
    assert pair_of("BTCUSD_PERP") == "BTCUSD"
    assert pair_of("BTCUSDT") == "BTCUSDT"


@pytest.mark.parametrize("value", [1.5, 1, "1.5", True])
def test_non_decimals_are_refused(value: Any) -> None:
    with pytest.raises(TypeError, match="Decimal"):
        format_decimal(value, 2)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_non_finite_decimals_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        format_decimal(Decimal(value), 2)


@pytest.mark.parametrize("decimals", [-1, True, 2.0])
def test_bad_decimal_counts_are_refused(decimals: Any) -> None:
    with pytest.raises(ValueError, match="decimals"):
        format_decimal(Decimal(1), decimals)
    with pytest.raises(ValueError, match="decimals"):
        Precision(price=decimals, quantity=0, notional=0)


# --- decimal formatting --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        ("0.01", 8, "0.01000000"),
        ("1E+3", 2, "1000.00"),
        ("1E+3", 0, "1000"),
        ("-0", 2, "0.00"),
        ("-0.001", 2, "0.00"),
        ("0.125", 2, "0.12"),
        ("0.135", 2, "0.14"),
        ("1E-10", 8, "0.00000000"),
        ("123456789012345678901234567890.5", 8, "123456789012345678901234567890.50000000"),
    ],
)
def test_format_decimal_examples(value: str, decimals: int, text: str) -> None:
    assert format_decimal(Decimal(value), decimals) == text


def test_levels_are_pairs_of_padded_strings() -> None:
    assert format_levels([(Decimal("0.01"), Decimal(0))], SPOT_PRECISION) == [
        ["0.01000000", "0.00000000"]
    ]


@given(
    decimals=st.integers(min_value=0, max_value=18),
    coefficient=st.integers(min_value=-(10**24), max_value=10**24),
    data=st.data(),
)
def test_format_round_trips_within_the_precision(
    decimals: int, coefficient: int, data: st.DataObject
) -> None:
    exponent = data.draw(st.integers(min_value=-decimals, max_value=12), label="exponent")
    value = Decimal(coefficient).scaleb(exponent)
    text = format_decimal(value, decimals)
    assert "e" not in text.lower()
    assert Decimal(text) == value
    whole, point, fraction = text.partition(".")
    assert len(fraction) == decimals
    assert bool(point) == (decimals > 0)
    assert whole.lstrip("-").isdigit()
    if Decimal(text).is_zero():
        assert not text.startswith("-")


@given(
    decimals=st.integers(min_value=0, max_value=12),
    value=st.decimals(allow_nan=False, allow_infinity=False, places=20),
)
def test_extra_decimals_round_half_even(decimals: int, value: Decimal) -> None:
    text = format_decimal(value, decimals)
    with decimal.localcontext(decimal.Context(prec=100)):
        expected = value.quantize(Decimal(1).scaleb(-decimals), rounding=decimal.ROUND_HALF_EVEN)
    assert Decimal(text) == expected
    assert "e" not in text.lower()


@given(
    prices=st.lists(
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**7), places=2), max_size=5
    ),
    quantities=st.lists(
        st.decimals(min_value=Decimal(0), max_value=Decimal(10**6), places=3), max_size=5
    ),
)
def test_depth_levels_survive_the_wire(prices: list[Decimal], quantities: list[Decimal]) -> None:
    levels = list(zip(prices, quantities, strict=False))
    sent = as_sent(
        depth_update_event(
            "usdm", **{**depth_update_arguments(USDM_PRECISION), "bids": levels, "asks": ()}
        )
    )
    assert [(Decimal(price), Decimal(quantity)) for price, quantity in sent["b"]] == levels
    assert sent["a"] == []


def test_public_names_exist() -> None:
    missing = [name for name in payloads.__all__ if not hasattr(payloads, name)]
    assert missing == []
