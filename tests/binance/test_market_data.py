"""Market data: stream names, and the parsers against Binance's recorded payloads, the local
venue's payloads and random (valid, corrupted, extended) ones.

Diff-depth events and REST depth snapshots are read by actors/binance/book.py only; their
fixtures, malformed and random payloads are tested in tests/binance/test_book.py."""

from __future__ import annotations

import contextlib
import re
import string
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.binance import market_data as md
from actors.binance.market_data import MarketDataError, StreamNameError, stream_name
from actors.config import AccountType
from events.market import (
    Bar,
    BookSnapshot,
    DataKind,
    FundingRate,
    IndexPrice,
    MarkPrice,
    QuoteTick,
    Ticker,
    TradeTick,
)
from scenarios.venue import payloads

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "binance"
WS = FIXTURES / "python_tests" / "ws_messages"
HTTP = FIXTURES / "python_tests" / "http_responses"
RUST = FIXTURES / "rust_test_data"

SPOT = AccountType.SPOT
USDM = AccountType.USDT_FUTURES
COINM = AccountType.COIN_FUTURES
CLIENT = "main"
IID = "BTCUSDT.BINANCE"


def _data(path: Path) -> Any:
    """A fixture's payload: the ``data`` of a combined-stream frame, or the body itself."""
    raw = path.read_bytes()
    message = orjson.loads(raw)
    if isinstance(message, dict) and "stream" in message:
        return md.parse_frame(raw)[1]
    return message


# ----------------------------------------------------------------------------- stream names


@pytest.mark.parametrize(
    ("kind", "product", "options", "expected"),
    [
        (DataKind.TRADES, SPOT, {}, "btcusdt@trade"),
        (DataKind.TRADES, SPOT, {"use_agg_trades": True}, "btcusdt@aggTrade"),
        (DataKind.TRADES, USDM, {}, "btcusdt@aggTrade"),
        (DataKind.TRADES, COINM, {"use_agg_trades": False}, "btcusdt@aggTrade"),
        (DataKind.QUOTES, SPOT, {}, "btcusdt@bookTicker"),
        (DataKind.QUOTES, USDM, {"use_agg_trades": True}, "btcusdt@bookTicker"),
        (DataKind.BARS, SPOT, {"interval": "1s"}, "btcusdt@kline_1s"),
        (DataKind.BARS, SPOT, {"interval": "1M"}, "btcusdt@kline_1M"),
        (DataKind.BARS, USDM, {"interval": "1m"}, "btcusdt@kline_1m"),
        (DataKind.BARS, COINM, {"interval": "12h"}, "btcusdt@kline_12h"),
        (DataKind.TICKER, SPOT, {}, "btcusdt@ticker"),
        (DataKind.TICKER, COINM, {}, "btcusdt@ticker"),
        (DataKind.MARK_PRICE, USDM, {}, "btcusdt@markPrice@1s"),
        (DataKind.INDEX_PRICE, USDM, {}, "btcusdt@markPrice@1s"),
        (DataKind.FUNDING_RATE, COINM, {}, "btcusdt@markPrice@1s"),
        (DataKind.BOOK, SPOT, {}, "btcusdt@depth@100ms"),
        (DataKind.BOOK, SPOT, {"speed_ms": 0}, "btcusdt@depth@100ms"),
        (DataKind.BOOK, SPOT, {"speed_ms": 100}, "btcusdt@depth@100ms"),
        (DataKind.BOOK, SPOT, {"speed_ms": 1000}, "btcusdt@depth"),
        (DataKind.BOOK, USDM, {}, "btcusdt@depth@100ms"),
        (DataKind.BOOK, USDM, {"speed_ms": 0}, "btcusdt@depth@100ms"),
        (DataKind.BOOK, USDM, {"speed_ms": 250}, "btcusdt@depth"),
        (DataKind.BOOK, COINM, {"speed_ms": 500}, "btcusdt@depth@500ms"),
        (DataKind.BOOK, SPOT, {"depth": 5}, "btcusdt@depth5@100ms"),
        (DataKind.BOOK, SPOT, {"depth": 10, "speed_ms": 1000}, "btcusdt@depth10"),
        (DataKind.BOOK, USDM, {"depth": 20}, "btcusdt@depth20@100ms"),
        (DataKind.BOOK, USDM, {"depth": 20, "speed_ms": 250}, "btcusdt@depth20"),
        (DataKind.BOOK, COINM, {"depth": 5, "speed_ms": 500}, "btcusdt@depth5@500ms"),
    ],
)
def test_stream_names(kind, product, options, expected):
    assert stream_name(kind, "BTCUSDT", product, **options) == expected


def test_stream_names_lowercase_coin_m_and_dated_symbols():
    assert stream_name(DataKind.TRADES, "BTCUSD_PERP", COINM) == "btcusd_perp@aggTrade"
    assert stream_name(DataKind.BOOK, "BTCUSDT_250926", USDM) == "btcusdt_250926@depth@100ms"


@pytest.mark.parametrize(
    ("kind", "product", "symbol", "options", "complaint"),
    [
        (DataKind.BARS, SPOT, "BTCUSDT", {}, "need an interval"),
        (DataKind.BARS, USDM, "BTCUSDT", {"interval": "1s"}, "USD-M has no '1s' klines"),
        (DataKind.BARS, SPOT, "BTCUSDT", {"interval": "2m"}, "Spot has no '2m' klines"),
        (DataKind.TRADES, SPOT, "BTCUSDT", {"interval": "1m"}, "TRADES takes no interval"),
        (DataKind.TICKER, USDM, "BTCUSDT", {"depth": 5}, "TICKER takes no depth"),
        (DataKind.QUOTES, USDM, "BTCUSDT", {"speed_ms": 100}, "QUOTES takes no depth"),
        (DataKind.MARK_PRICE, SPOT, "BTCUSDT", {}, "MARK_PRICE is a futures stream"),
        (DataKind.INDEX_PRICE, SPOT, "BTCUSDT", {}, "Spot has no mark price"),
        (DataKind.FUNDING_RATE, SPOT, "BTCUSDT", {}, "FUNDING_RATE is a futures stream"),
        (DataKind.BOOK, SPOT, "BTCUSDT", {"depth": 50}, "must be 0 (the full book) or one of"),
        (DataKind.BOOK, USDM, "BTCUSDT", {"depth": -5}, "not -5"),
        (DataKind.BOOK, SPOT, "BTCUSDT", {"speed_ms": 250}, "Spot depth streams run at 100 ms"),
        (DataKind.BOOK, SPOT, "BTCUSDT", {"speed_ms": 500}, "1000 ms (0: the fastest)"),
        (DataKind.BOOK, USDM, "BTCUSDT", {"speed_ms": 1000}, "100 ms, 250 ms, 500 ms"),
        (DataKind.BOOK, COINM, "BTCUSDT", {"speed_ms": -1}, "not -1"),
        (DataKind.TRADES, SPOT, "", {}, "cannot be a symbol"),
        (DataKind.TRADES, SPOT, "btc usdt", {}, "cannot be a symbol"),
        (DataKind.TRADES, SPOT, "btcusdt@trade", {}, "cannot be a symbol"),
        (DataKind.TRADES, SPOT, "a/b", {}, "cannot be a symbol"),
    ],
)
def test_bad_stream_combinations_say_what_is_wrong(kind, product, symbol, options, complaint):
    with pytest.raises(StreamNameError) as caught:
        stream_name(kind, symbol, product, **options)
    assert complaint in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_every_data_kind_has_a_stream_on_futures():
    for kind in DataKind:
        options = {"interval": "1m"} if kind is DataKind.BARS else {}
        assert stream_name(kind, "ETHUSDT", USDM, **options).startswith("ethusdt@")


# -------------------------------------------------------------------------------- fixtures


def _ws(parse: Callable[..., Any]) -> Callable[[Any], Any]:
    return lambda payload: parse(payload, CLIENT, IID)


def _klines(body: Any) -> Any:
    return md.parse_rest_klines(body, CLIENT, IID, "1m")


#: A futures partial-depth event has the shape of a diff-depth event: the diff fixtures parse as
#: partial depth here, and as diffs in tests/binance/test_book.py.
_partial_depth = _ws(md.parse_partial_depth)


#: Every market-data fixture and the reader that must accept it.
PARSED: dict[str, Callable[[Any], Any]] = {
    "python_tests/ws_messages/ws_futures_book_ticker.json": _ws(md.parse_book_ticker),
    "python_tests/ws_messages/ws_futures_depth_diff_update.json": _partial_depth,
    "python_tests/ws_messages/ws_futures_depth_update.json": _partial_depth,
    "python_tests/ws_messages/ws_futures_ticker_24hr.json": _ws(md.parse_ticker),
    "python_tests/ws_messages/ws_spot_agg_trade.json": _ws(md.parse_agg_trade),
    "python_tests/ws_messages/ws_spot_ticker_24hr.json": _ws(md.parse_ticker),
    "python_tests/ws_messages/ws_spot_ticker_book.json": _ws(md.parse_book_ticker),
    "python_tests/ws_messages/ws_spot_trade.json": _ws(md.parse_trade),
    "rust_test_data/futures/market_data_json/agg_trade_stream.json": _ws(md.parse_agg_trade),
    "rust_test_data/futures/market_data_json/book_ticker_stream.json": _ws(md.parse_book_ticker),
    "rust_test_data/futures/market_data_json/depth_update_stream.json": _partial_depth,
    "rust_test_data/futures/market_data_json/kline_stream_closed.json": _ws(md.parse_kline),
    "rust_test_data/futures/market_data_json/kline_stream_open.json": _ws(md.parse_kline),
    "rust_test_data/futures/market_data_json/mark_price_stream.json": _ws(md.parse_mark_price),
    "rust_test_data/futures/market_data_json/ticker_stream.json": _ws(md.parse_ticker),
    # Derived by upstream from the aggTrade example; futures publish no @trade stream, but
    # the payload has the trade shape and parses as one.
    "rust_test_data/futures/market_data_json/trade_stream.json": _ws(md.parse_trade),
    "python_tests/http_responses/http_futures_market_klines.json": _klines,
    "python_tests/http_responses/http_spot_market_klines.json": _klines,
    "python_tests/http_responses/http_futures_market_continuous_klines.json": _klines,
    "python_tests/http_responses/http_futures_market_mark_price_klines.json": _klines,
    "python_tests/http_responses/http_futures_market_index_price_klines.json": _klines,
    "rust_test_data/spot/http_json/klines_response.json": _klines,
    "python_tests/http_responses/http_futures_market_agg_trades.json": lambda body: (
        md.parse_rest_agg_trades(body, CLIENT, IID)
    ),
    "python_tests/http_responses/http_spot_market_agg_trades.json": lambda body: (
        md.parse_rest_agg_trades(body, CLIENT, IID)
    ),
    "python_tests/http_responses/http_futures_market_trades.json": lambda body: (
        md.parse_rest_trades(body, CLIENT, IID)
    ),
    "python_tests/http_responses/http_spot_market_trades.json": lambda body: md.parse_rest_trades(
        body, CLIENT, IID
    ),
    "rust_test_data/spot/http_json/trades_response.json": lambda body: md.parse_rest_trades(
        body, CLIENT, IID
    ),
    "python_tests/http_responses/http_futures_market_premium_index.json": _ws(
        md.parse_premium_index
    ),
    "python_tests/http_responses/http_futures_market_funding_rate.json": _ws(
        md.parse_funding_rates
    ),
}

_USER_DATA = "user data, not market data: actors/binance/userdata.py reads it"
_REST_DEPTH = (
    "REST depth snapshot: actors/binance/book.py parse_depth_snapshot reads it "
    "(tests/binance/test_book.py)"
)
#: Fixtures the file patterns catch that this module does not read, and why.
NOT_PARSED: dict[str, str] = {
    "python_tests/http_responses/http_futures_market_depth.json": _REST_DEPTH,
    "python_tests/http_responses/http_spot_market_depth.json": _REST_DEPTH,
    "rust_test_data/spot/http_json/depth_response.json": _REST_DEPTH,
    "python_tests/ws_messages/ws_futures_order_update_trade_reduce_only_qty.json": _USER_DATA,
    "python_tests/ws_messages/ws_futures_trade_lite.json": _USER_DATA,
    **{
        f"python_tests/ws_messages/ws_spot_execution_report_trade{suffix}.json": _USER_DATA
        for suffix in (
            *("", "_prevention", "_l_zero", "_l_zero_new", "_l_zero_partial"),
            *("_l_zero_canceled", "_l_zero_expired"),
        )
    },
    "rust_test_data/futures/market_data_json/liquidation_stream.json": (
        "forceOrder (liquidations): events/market.py has no liquidation event"
    ),
}


def _market_fixtures() -> list[str]:
    found: set[Path] = set()
    for word in ("trade", "agg_trade", "ticker", "book", "depth", "kline", "mark"):
        found |= set(WS.glob(f"ws_*{word}*.json"))
    found |= set((RUST / "futures" / "market_data_json").glob("*.json"))
    for what in (
        "depth",
        "klines",
        "agg_trades",
        "trades",
        "continuous_klines",
        "mark_price_klines",
        "index_price_klines",
        "premium_index",
        "funding_rate",
    ):
        found |= set(HTTP.glob(f"http_*_market_{what}.json"))
    for name in ("depth", "klines", "trades"):
        found |= set((RUST / "spot" / "http_json").glob(f"{name}_response.json"))
    return sorted(str(path.relative_to(FIXTURES)) for path in found)


def test_every_market_fixture_is_either_parsed_or_named_with_a_reason():
    assert set(_market_fixtures()) == set(PARSED) | set(NOT_PARSED)
    assert not set(PARSED) & set(NOT_PARSED)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_fixture_parses(name):
    result = PARSED[name](_data(FIXTURES / name))
    assert result is None or result != ()  # an open kline is None; lists are never empty here


@pytest.mark.parametrize("name", sorted(PARSED))
def test_fixture_parses_from_text(name):
    """REST readers take the body as text too; stream payloads arrive through parse_frame."""
    if "http" not in name:
        return
    text = (FIXTURES / name).read_text()
    assert PARSED[name](text) == PARSED[name](orjson.loads(text))


def test_spot_trade_values():
    tick = md.parse_trade(_data(WS / "ws_spot_trade.json"), CLIENT, "ETHUSDT.BINANCE")
    assert tick == TradeTick(
        client=CLIENT,
        instrument_id="ETHUSDT.BINANCE",
        price=Decimal("4149.74000000"),
        size=Decimal("0.43870000"),
        aggressor="SELL",  # m: the buyer was the maker
        trade_id=705291099,
        aggregated=False,
        ts_event_ms=1639351062243,
    )
    assert str(tick.price) == "4149.74000000"


def test_agg_trades_values():
    spot = md.parse_agg_trade(_data(WS / "ws_spot_agg_trade.json"), CLIENT, IID)
    assert (spot.trade_id, spot.price, spot.size, spot.aggressor, spot.aggregated) == (
        226532,
        Decimal("1632.46000000"),
        Decimal("0.34305000"),
        "BUY",
        True,
    )
    assert spot.ts_event_ms == 1675759520847
    futures = md.parse_agg_trade(
        _data(RUST / "futures/market_data_json/agg_trade_stream.json"), CLIENT, IID
    )
    assert (futures.trade_id, futures.price, futures.size, futures.aggressor) == (
        5933014,
        Decimal("0.001"),
        Decimal("100"),
        "SELL",
    )
    rest = md.parse_rest_agg_trades(
        (HTTP / "http_spot_market_agg_trades.json").read_bytes(), CLIENT, IID
    )
    assert (rest[0].trade_id, rest[0].price) == (966492862, Decimal("60759.60000000"))
    assert (rest[0].aggressor, rest[2].aggressor) == ("BUY", "SELL")
    assert [trade.trade_id for trade in rest] == sorted(trade.trade_id for trade in rest)


def test_rest_trades_values():
    trades = md.parse_rest_trades(
        (RUST / "spot/http_json/trades_response.json").read_text(), "c", IID
    )
    assert trades == (
        TradeTick(
            client="c",
            instrument_id=IID,
            price=Decimal("4.00000100"),
            size=Decimal("12.00000000"),
            aggressor="SELL",
            trade_id=28457,
            aggregated=False,
            ts_event_ms=1499865549590,
        ),
    )


def test_book_tickers_spot_without_and_with_event_time_and_futures():
    spot = {"u": 400900217, "s": "BNBUSDT", "b": "25.35", "B": "31.21", "a": "25.36", "A": "40"}
    quote = md.parse_book_ticker(spot, CLIENT, IID)
    assert (quote.ts_event_ms, quote.update_id) == (None, 400900217)
    assert (quote.bid_price, quote.ask_size) == (Decimal("25.35"), Decimal("40"))
    recorded = md.parse_book_ticker(_data(WS / "ws_spot_ticker_book.json"), CLIENT, IID)
    assert recorded.ts_event_ms == 1646199228123
    assert recorded.bid_size == Decimal("2.35950000")
    futures = md.parse_book_ticker(_data(WS / "ws_futures_book_ticker.json"), CLIENT, IID)
    assert futures == QuoteTick(
        client=CLIENT,
        instrument_id=IID,
        bid_price=Decimal("25.35190000"),
        bid_size=Decimal("31.21000000"),
        ask_price=Decimal("25.36520000"),
        ask_size=Decimal("40.66000000"),
        update_id=400900217,
        ts_event_ms=1568014460893,
    )


def test_kline_closed_is_a_bar_and_open_is_none():
    path = RUST / "futures/market_data_json"
    assert md.parse_kline(_data(path / "kline_stream_open.json"), CLIENT, IID) is None
    bar = md.parse_kline(_data(path / "kline_stream_closed.json"), CLIENT, IID)
    assert bar == Bar(
        client=CLIENT,
        instrument_id=IID,
        interval="1m",
        open_ms=1638747660000,
        close_ms=1638747719999,
        open=Decimal("0.0010"),
        high=Decimal("0.0025"),
        low=Decimal("0.0010"),
        close=Decimal("0.0020"),
        volume=Decimal("1000"),
        quote_volume=Decimal("1.0000"),
        trades=100,
        taker_buy_volume=Decimal("500"),
        taker_buy_quote_volume=Decimal("0.500"),
    )


def test_rest_klines_values_and_the_open_kline():
    body = (HTTP / "http_spot_market_klines.json").read_bytes()
    bars = md.parse_rest_klines(body, CLIENT, IID, "1m")
    first = bars[0]
    assert (first.open_ms, first.close_ms, first.interval) == (1634943780000, 1634943839999, "1m")
    assert (first.open, first.high, first.low, first.close) == tuple(
        map(Decimal, ("60685.22000000", "60729.84000000", "60670.90000000", "60719.27000000"))
    )
    assert (first.volume, first.quote_volume, first.trades) == (
        Decimal("21.63272000"),
        Decimal("1313200.01340410"),
        617,
    )
    assert (first.taker_buy_volume, first.taker_buy_quote_volume) == (
        Decimal("12.28492000"),
        Decimal("745719.41022840"),
    )
    last_close = bars[-1].close_ms
    assert md.parse_rest_klines(body, CLIENT, IID, "1m", now_ms=last_close) == bars[:-1]
    assert md.parse_rest_klines(body, CLIENT, IID, "1m", now_ms=last_close + 1) == bars
    mark = md.parse_rest_klines(
        (HTTP / "http_futures_market_mark_price_klines.json").read_bytes(), CLIENT, IID, "1m"
    )
    assert (mark[0].volume, mark[0].close) == (Decimal(0), Decimal("9653.07367333"))


def test_tickers_spot_has_best_bid_and_ask_futures_not():
    spot = md.parse_ticker(_data(WS / "ws_spot_ticker_24hr.json"), CLIENT, IID)
    assert (spot.bid_price, spot.bid_size, spot.ask_price, spot.ask_size) == (
        Decimal("0.0024"),
        Decimal("10"),
        Decimal("0.0026"),
        Decimal("100"),
    )
    futures = md.parse_ticker(
        _data(RUST / "futures/market_data_json/ticker_stream.json"), CLIENT, IID
    )
    assert futures == Ticker(
        client=CLIENT,
        instrument_id=IID,
        last_price=Decimal("16584.60000000"),
        last_size=Decimal("0.002"),
        open=Decimal("16716.00000000"),
        high=Decimal("16764.89000000"),
        low=Decimal("16456.51000000"),
        volume=Decimal("122474.816"),
        quote_volume=Decimal("2036102085.69746400"),
        price_change=Decimal("-131.40000000"),
        price_change_percent=Decimal("-0.786"),
        weighted_average_price=Decimal("16628.97377498"),
        open_ms=1672429382136,
        close_ms=1672515782136,
        first_trade_id=2289691,
        last_trade_id=2432543,
        trades=142853,
        ts_event_ms=1672515782136,
    )


def test_mark_price_perpetual_and_delivery():
    mark, index, funding = md.parse_mark_price(
        _data(RUST / "futures/market_data_json/mark_price_stream.json"), CLIENT, IID
    )
    assert mark == MarkPrice(
        client=CLIENT, instrument_id=IID, price=Decimal("11794.15000000"), ts_event_ms=1562305380000
    )
    assert index == IndexPrice(
        client=CLIENT, instrument_id=IID, price=Decimal("11784.62659091"), ts_event_ms=1562305380000
    )
    assert funding == FundingRate(
        client=CLIENT,
        instrument_id=IID,
        rate=Decimal("0.00038167"),
        next_funding_ms=1562306400000,
        ts_event_ms=1562305380000,
    )
    # COIN-M documentation example of a delivery contract: no funding.
    delivery = {
        "e": "markPriceUpdate",
        "E": 1596095725000,
        "s": "BTCUSD_201225",
        "p": "10934.62615417",
        "P": "10962.17178236",
        "i": "10933.62615417",
        "r": "",
        "T": 0,
    }
    mark, index, funding = md.parse_mark_price(delivery, CLIENT, "BTCUSD_201225.BINANCE")
    assert (mark.price, index.price, funding) == (
        Decimal("10934.62615417"),
        Decimal("10933.62615417"),
        None,
    )
    assert md.parse_mark_price({**delivery, "r": "0.00010000"}, CLIENT, IID)[2] is None
    with pytest.raises(MarketDataError, match="'r'"):
        md.parse_mark_price({**delivery, "r": "junk"}, CLIENT, IID)


def test_premium_index_and_funding_history():
    mark, index, funding = md.parse_premium_index(
        (HTTP / "http_futures_market_premium_index.json").read_text(), CLIENT, IID
    )
    assert (mark.price, index.price, mark.ts_event_ms) == (
        Decimal("11793.63104562"),
        Decimal("11781.80495970"),
        1597370495002,
    )
    assert funding is not None
    assert (funding.rate, funding.next_funding_ms) == (Decimal("0.00038246"), 1597392000000)
    delivery = payloads.premium_index(
        "coinm",
        symbol="BTCUSD_250926",
        mark_price=Decimal(60000),
        index_price=Decimal(59990),
        estimated_settle_price=Decimal(59995),
        last_funding_rate=None,
        interest_rate=None,
        next_funding_time=0,
        time=5,
    )
    assert md.parse_premium_index(delivery, CLIENT, IID)[2] is None
    rates = md.parse_funding_rates(
        (HTTP / "http_futures_market_funding_rate.json").read_bytes(),
        CLIENT,
        {"BTCUSDT": "BTCUSDT-PERP.BINANCE"},
    )
    assert [(rate.rate, rate.next_funding_ms, rate.instrument_id) for rate in rates] == [
        (Decimal("-0.03750000"), 1570608000000, "BTCUSDT-PERP.BINANCE"),
        (Decimal("0.00010000"), 1570636800000, "BTCUSDT-PERP.BINANCE"),
    ]


def test_partial_depth_spot_and_futures():
    partial_spot = {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}
    snapshot = md.parse_partial_depth(partial_spot, CLIENT, IID)
    assert (snapshot.update_id, snapshot.ts_event_ms) == (160, None)
    assert snapshot.asks == ((Decimal("0.0026"), Decimal("100")),)
    partial_futures = md.parse_partial_depth(_data(WS / "ws_futures_depth_update.json"), "c", IID)
    assert partial_futures == BookSnapshot(
        client="c",
        instrument_id=IID,
        update_id=390497878,
        bids=tuple(
            (Decimal(price), Decimal(size))
            for price, size in (
                *(("7403.89", "0.002"), ("7403.90", "3.906"), ("7404.00", "1.428")),
                *(("7404.85", "5.239"), ("7405.43", "2.562")),
            )
        ),
        asks=tuple(
            (Decimal(price), Decimal(size))
            for price, size in (
                *(("7405.96", "3.340"), ("7406.63", "4.525"), ("7407.08", "2.475")),
                *(("7407.15", "4.800"), ("7407.20", "0.175")),
            )
        ),
        ts_event_ms=1571889248277,
    )
    assert str(partial_futures.bids[1][0]) == "7403.90"


# ------------------------------------------------------------------------------ instruments


def test_instrument_lookups():
    payload = _data(WS / "ws_spot_trade.json")
    by_dict = md.parse_trade(payload, CLIENT, {"ETHUSDT": "ETHUSDT.BINANCE"})
    by_call = md.parse_trade(payload, CLIENT, lambda symbol: f"{symbol}-PERP.BINANCE")
    assert by_dict.instrument_id == "ETHUSDT.BINANCE"
    assert by_call.instrument_id == "ETHUSDT-PERP.BINANCE"
    for unknown in ({}, {}.__getitem__, lambda symbol: None):
        with pytest.raises(MarketDataError, match="'s' must be a symbol of a known instrument"):
            md.parse_trade(payload, CLIENT, unknown)
    # Spot partial depth names no symbol: a lookup cannot place it.
    with pytest.raises(MarketDataError, match="'s' must be a symbol; it is missing"):
        md.parse_partial_depth({"lastUpdateId": 1, "bids": [], "asks": []}, CLIENT, {})


# ----------------------------------------------------------------------------- frames, errors


def test_parse_frame():
    stream, data = md.parse_frame(b'{"stream":"btcusdt@trade","data":{"e":"trade"}}')
    assert (stream, data) == ("btcusdt@trade", {"e": "trade"})
    assert md.parse_frame('{"stream":"!markPrice@arr@1s","data":[]}') == ("!markPrice@arr@1s", [])
    for frame, complaint in [
        (b"", "JSON text"),
        ("{nope", "JSON text"),
        ("[1, 2]", '{"stream": name, "data": payload}'),
        ('{"result": null, "id": 1}', "'stream' must be the stream name; it is missing"),
        ('{"stream": 5, "data": {}}', "'stream' must be the stream name; got int 5"),
        ('{"stream": "x", "data": "y"}', "'data' must be a JSON object or array"),
        ('{"stream": "x"}', "'data' must be a JSON object or array; it is missing"),
    ]:
        with pytest.raises(MarketDataError) as caught:
            md.parse_frame(frame)
        assert complaint in str(caught.value)
        assert caught.value.kind == "frame"


def test_error_names_kind_field_and_truncated_value():
    long = "9" * 500 + "x"
    payload = {"e": "aggTrade", "a": 1, "p": long, "q": "1", "T": 1, "m": True}
    with pytest.raises(MarketDataError) as caught:
        md.parse_agg_trade(payload, CLIENT, IID)
    error = caught.value
    assert (error.kind, error.field, error.value, error.missing) == ("aggTrade", "p", long, False)
    assert str(error).startswith("aggTrade payload: field 'p' must be a decimal string; got str")
    assert str(error).endswith("...")
    assert len(str(error)) < 200
    with pytest.raises(MarketDataError) as caught:
        md.parse_kline({"e": "kline", "k": {"x": True, "i": "1m", "t": "1"}}, CLIENT, IID)
    assert caught.value.field == "k.t"
    assert "must be an integer; got str '1'" in str(caught.value)
    with pytest.raises(MarketDataError) as caught:
        md.parse_rest_klines([[1, "1", "1", "1", "1", "1", 2, "1", 3, "1", "x"]], CLIENT, IID, "1m")
    assert caught.value.field == "[0].takerBuyQuoteVolume"
    with pytest.raises(MarketDataError, match=r"field '\[1\]\.p' must be a decimal string"):
        md.parse_rest_agg_trades(
            [{"a": 1, "p": "1", "q": "1", "T": 1, "m": True}, {"a": 2, "p": 1}], CLIENT, IID
        )
    with pytest.raises(MarketDataError, match="field 'k' must be a JSON object; got list"):
        md.parse_kline({"e": "kline", "k": []}, CLIENT, IID)
    with pytest.raises(MarketDataError, match=r"klines payload: field '\[0\]' must be an array"):
        md.parse_rest_klines([[1, "2"]], CLIENT, IID, "1m")
    with pytest.raises(MarketDataError, match="klines payload: the payload must be JSON text"):
        md.parse_rest_klines("<html>502 Bad Gateway</html>", CLIENT, IID, "1m")
    with pytest.raises(MarketDataError, match="'e' must be 'trade'; got str 'aggTrade'"):
        md.parse_trade({"e": "aggTrade"}, CLIENT, IID)


@pytest.mark.parametrize(
    "junk", ["", "abc", "NaN", "Infinity", "-inf", " 1", "1 ", "1_000", "1.2.3", "0x10", "1e"]
)
def test_numbers_must_be_finite_decimal_strings(junk):
    payload = {"e": "trade", "t": 1, "p": junk, "q": "1", "T": 1, "m": False}
    with pytest.raises(MarketDataError, match="'p' must be a decimal string"):
        md.parse_trade(payload, CLIENT, IID)


@pytest.mark.parametrize(
    "level",
    [
        ["1"],
        ["1", "2", "3"],
        [1, "2"],
        ["1", None],
        ["-1", "1"],
        ["1", "-0"],
        ["x", "1"],
        ["+1", "1"],
        ["1e2", "1"],
        ["1", "1E-2"],
        [" 1", "1"],
        ["1", "1_0"],
        ["\u0661", "1"],
    ],
)
def test_partial_depth_levels_are_two_non_negative_decimal_strings(level):
    futures = {"e": "depthUpdate", "E": 1, "s": "X", "U": 1, "u": 2, "b": [level], "a": []}
    with pytest.raises(MarketDataError, match="'b' must be \\[price, size\\]"):
        md.parse_partial_depth(futures, CLIENT, IID)
    spot = {"lastUpdateId": 2, "bids": [], "asks": [level]}
    with pytest.raises(MarketDataError, match="'asks' must be \\[price, size\\]"):
        md.parse_partial_depth(spot, CLIENT, IID)


#: Binance's notation for a level's price or size: ASCII digits, at most one decimal point.
_PLAIN = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")


@given(st.text(alphabet="0123456789.+-eE_ \u0661xnaNIfity", max_size=8) | st.text(max_size=6))
def test_level_number_takes_exactly_binances_notation(text):
    value = md.level_number(text)
    if _PLAIN.fullmatch(text):
        assert value == Decimal(text)
        assert str(value) == str(Decimal(text))  # the same digits and exponent
    else:
        assert value is None


@given(
    st.decimals(min_value=0, allow_nan=False, allow_infinity=False, places=8).filter(
        lambda number: not number.is_signed()
    )
)
def test_level_number_reads_every_plain_decimal_exactly(number):
    text = f"{number:f}"
    assert md.level_number(text) == number


# ------------------------------------------------------------------------- the local venue

_PRECISION = payloads.Precision(price=2, quantity=3, notional=4)


@pytest.mark.parametrize("product", ["spot", "usdm", "coinm"])
def test_local_venue_payloads_parse(product):
    precision = payloads.SPOT_PRECISION if product == "spot" else _PRECISION
    price, size = Decimal("60000.5"), Decimal("0.25")
    aggregate = payloads.aggregate_trade_event(
        product,
        symbol="BTCUSDT",
        event_time=10,
        aggregate_id=7,
        price=price,
        quantity=size,
        first_trade_id=1,
        last_trade_id=2,
        trade_time=9,
        is_buyer_maker=False,
        precision=precision,
    )
    tick = md.parse_agg_trade(aggregate, CLIENT, IID)
    assert (tick.price, tick.size, tick.trade_id, tick.ts_event_ms) == (price, size, 7, 9)
    trade = payloads.trade_event(
        product,
        symbol="BTCUSDT",
        event_time=10,
        trade_id=3,
        price=price,
        quantity=size,
        trade_time=9,
        is_buyer_maker=True,
        precision=precision,
    )
    assert md.parse_trade(trade, CLIENT, IID).aggressor == "SELL"
    quote = payloads.book_ticker_event(
        product,
        symbol="BTCUSDT",
        update_id=11,
        event_time=12,
        transaction_time=12,
        bid_price=price,
        bid_quantity=size,
        ask_price=price + 1,
        ask_quantity=size,
        precision=precision,
    )
    parsed_quote = md.parse_book_ticker(quote, CLIENT, IID)
    assert parsed_quote.ask_price == price + 1
    assert parsed_quote.ts_event_ms == (None if product == "spot" else 12)
    levels = {"bids": [(price, size)], "asks": [(price + 1, Decimal(0))]}
    partial = payloads.partial_depth_event(
        product,
        symbol="BTCUSDT",
        event_time=13,
        transaction_time=13,
        first_update_id=20,
        final_update_id=25,
        previous_final_update_id=19,
        precision=precision,
        **levels,
    )
    book = md.parse_partial_depth(partial, CLIENT, IID)
    assert (book.update_id, book.asks) == (25, ((price + 1, Decimal(0)),))
    kline = {
        "open_time": 60_000,
        "close_time": 119_999,
        "open_price": price,
        "high_price": price + 2,
        "low_price": price - 2,
        "close_price": price + 1,
        "volume": size,
        "notional_volume": price * size,
        "trade_count": 4,
        "taker_buy_volume": size,
        "taker_buy_notional_volume": price * size,
        "precision": precision,
    }
    closed = payloads.kline_event(
        symbol="BTCUSDT",
        event_time=15,
        interval="1m",
        first_trade_id=1,
        last_trade_id=4,
        is_closed=True,
        **kline,
    )
    bar = md.parse_kline(closed, CLIENT, IID)
    assert bar is not None
    assert (bar.high, bar.trades) == (price + 2, 4)
    assert md.parse_kline({**closed, "k": {**closed["k"], "x": False}}, CLIENT, IID) is None
    (rest_bar,) = md.parse_rest_klines([payloads.kline_row(**kline)], CLIENT, IID, "1m")
    assert rest_bar == bar
    ticker = payloads.ticker_24hr_event(
        product,
        symbol="BTCUSDT",
        event_time=16,
        open_price=price,
        high_price=price + 2,
        low_price=price - 2,
        last_price=price + 1,
        last_quantity=size,
        previous_close_price=price,
        bid_price=price,
        bid_quantity=size,
        ask_price=price + 1,
        ask_quantity=size,
        volume=size,
        notional_volume=price * size,
        weighted_average_price=price,
        open_time=0,
        close_time=86_400_000,
        first_trade_id=1,
        last_trade_id=4,
        trade_count=4,
        precision=precision,
    )
    parsed_ticker = md.parse_ticker(ticker, CLIENT, IID)
    assert parsed_ticker.last_price == price + 1
    assert parsed_ticker.bid_price == (price if product == "spot" else None)
    if product != "spot":
        for rate, expected in ((Decimal("0.0001"), Decimal("0.00010000")), (None, None)):
            mark = payloads.mark_price_event(
                product,
                symbol="BTCUSDT",
                event_time=17,
                mark_price=price,
                index_price=price - 1,
                estimated_settle_price=price,
                funding_rate=rate,
                next_funding_time=28_800_000 if rate is not None else 0,
            )
            funding = md.parse_mark_price(mark, CLIENT, IID)[2]
            assert (funding.rate if funding else None) == expected
    entry = payloads.aggregate_trade_entry(
        product,
        aggregate_id=8,
        price=price,
        quantity=size,
        first_trade_id=1,
        last_trade_id=1,
        time=18,
        is_buyer_maker=True,
        precision=precision,
    )
    assert md.parse_rest_agg_trades([entry], CLIENT, IID)[0].trade_id == 8
    row = payloads.trade_entry(
        product,
        trade_id=9,
        price=price,
        quantity=size,
        time=19,
        is_buyer_maker=False,
        precision=precision,
        notional=price * size,
    )
    assert md.parse_rest_trades([row], CLIENT, IID)[0].aggressor == "BUY"


# ------------------------------------------------------------------------------ hypothesis
#
# Each case builds a random valid payload and knows its fields: the tag says what a field
# holds, so corruption can put something of another kind there. Paths are tuples (nested
# kline fields, REST rows).

DEC = "decimal"
SIGNED = "signed decimal"
INT = "int"
BOOL = "bool"
TEXT = "text"
LEVELS = "levels"
RATE = "rate"


@st.composite
def decimal_text(draw: st.DrawFn, signed: bool = False) -> str:
    whole = draw(st.integers(0, 10**15))
    places = draw(st.integers(0, 12))
    text = f"{whole}.{draw(st.integers(0, 10**places - 1)):0{places}d}" if places else str(whole)
    return f"-{text}" if signed and draw(st.booleans()) else text


ids = st.integers(0, 2**63 - 1)
levels = st.lists(st.lists(decimal_text(), min_size=2, max_size=2), max_size=20)


def _value(draw: st.DrawFn, tag: str) -> Any:
    if tag == DEC:
        return draw(decimal_text())
    if tag in (SIGNED, RATE):
        return draw(decimal_text(signed=True))
    if tag == INT:
        return draw(ids)
    if tag == BOOL:
        return draw(st.booleans())
    if tag == TEXT:
        return draw(st.sampled_from(["1m", "BTCUSDT", "x"]))
    return draw(levels)


@attrs.frozen
class Case:
    """A payload kind: constants, fields (path -> tag), the parser and what must come out."""

    name: str
    parse: Callable[[Any], Any]
    fields: dict[str, str]
    constants: dict[str, Any] = attrs.field(factory=dict)
    optional: frozenset[str] = frozenset()
    nested: str = ""  # the key of the nested object the fields live in (kline: "k")
    rows: str = ""  # "list" (REST klines: arrays), "dict" (REST objects)
    check: Callable[[Any, dict[str, Any]], None] | None = None

    def build(self, draw: st.DrawFn) -> Any:
        values = {key: _value(draw, tag) for key, tag in self.fields.items()}
        if self.nested:
            return {**self.constants, self.nested: {**values, "x": True, "i": "1m"}}
        if self.rows == "list":
            return [[values[key] for key in self.fields] + ["0"]]
        if self.rows == "dict":
            return [values]
        return {**self.constants, **values}

    def values(self, payload: Any) -> dict[str, Any]:
        if self.nested:
            return payload[self.nested]
        if self.rows == "list":
            return dict(zip(self.fields, payload[0], strict=False))
        if self.rows == "dict":
            return payload[0]
        return payload


def _exact(value: Decimal, text: str) -> None:
    assert type(value) is Decimal
    assert value.as_tuple() == Decimal(text).as_tuple()


def _check_trade(tick: TradeTick, values: dict[str, Any]) -> None:
    _exact(tick.price, values["p"])
    _exact(tick.size, values["q"])
    assert tick.ts_event_ms == values["T"]
    assert tick.aggressor == ("SELL" if values["m"] else "BUY")


def _check_quote(quote: QuoteTick, values: dict[str, Any]) -> None:
    for attribute, key in (("bid_price", "b"), ("bid_size", "B"), ("ask_price", "a")):
        _exact(getattr(quote, attribute), values[key])
    _exact(quote.ask_size, values["A"])
    assert quote.update_id == values["u"]


_BAR_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume")


def _check_bar(bar: Bar | tuple[Bar, ...], values: dict[str, Any]) -> None:
    if isinstance(bar, tuple):
        (bar,) = bar
        keys = ("open", "high", "low", "close", "volume", "quoteVolume")
        extra = ("takerBuyVolume", "takerBuyQuoteVolume", "trades", "openTime")
    else:
        keys = ("o", "h", "l", "c", "v", "q")
        extra = ("V", "Q", "n", "t")
    for attribute, key in zip(_BAR_FIELDS, keys, strict=True):
        _exact(getattr(bar, attribute), values[key])
    _exact(bar.taker_buy_volume, values[extra[0]])
    _exact(bar.taker_buy_quote_volume, values[extra[1]])
    assert (bar.trades, bar.open_ms) == (values[extra[2]], values[extra[3]])


def _check_ticker(ticker: Ticker, values: dict[str, Any]) -> None:
    _exact(ticker.price_change, values["p"])
    _exact(ticker.last_price, values["c"])
    _exact(ticker.quote_volume, values["q"])
    if "b" in values:
        assert ticker.bid_price is not None
        _exact(ticker.bid_price, values["b"])
        assert ticker.ask_size is not None
        _exact(ticker.ask_size, values["A"])
    assert ticker.trades == values["n"]


def _check_mark(result: tuple[Any, ...], values: dict[str, Any]) -> None:
    mark, index, funding = result
    _exact(mark.price, values["p"])
    _exact(index.price, values["i"])
    if values["T"] == 0:
        assert funding is None
    else:
        _exact(funding.rate, values["r"])


def _check_book(snapshot: BookSnapshot, values: dict[str, Any]) -> None:
    bids = values["b"] if "b" in values else values["bids"]
    asks = values["a"] if "a" in values else values["asks"]
    for side, texts in ((snapshot.bids, bids), (snapshot.asks, asks)):
        assert len(side) == len(texts)
        for (price, size), (price_text, size_text) in zip(side, texts, strict=True):
            _exact(price, price_text)
            _exact(size, size_text)


LOOKUP = {"BTCUSDT": IID}

_TRADE = {"t": INT, "p": DEC, "q": DEC, "T": INT, "m": BOOL}
_AGG = {"a": INT, "p": DEC, "q": DEC, "T": INT, "m": BOOL}
_QUOTE = {"u": INT, "b": DEC, "B": DEC, "a": DEC, "A": DEC}
_KLINE = {
    **{"t": INT, "T": INT, "o": DEC, "h": DEC, "l": DEC, "c": DEC},
    **{"v": DEC, "q": DEC, "n": INT, "V": DEC, "Q": DEC},
}
_TICKER = {
    **{"p": SIGNED, "P": SIGNED, "w": DEC, "c": DEC, "Q": DEC, "o": DEC, "h": DEC, "l": DEC},
    **{"v": DEC, "q": DEC, "O": INT, "C": INT, "F": INT, "L": INT, "n": INT, "E": INT},
}
_REST_KLINE = {
    **{"openTime": INT, "open": DEC, "high": DEC, "low": DEC, "close": DEC, "volume": DEC},
    **{"closeTime": INT, "quoteVolume": DEC, "trades": INT, "takerBuyVolume": DEC},
    "takerBuyQuoteVolume": DEC,
}


def _with(parse: Callable[..., Any], instrument: Any = IID) -> Callable[[Any], Any]:
    return lambda payload: parse(payload, CLIENT, instrument)


CASES = [
    Case("trade", _with(md.parse_trade), _TRADE, {"e": "trade", "E": 1}, check=_check_trade),
    Case(
        "trade by symbol",
        _with(md.parse_trade, LOOKUP),
        {**_TRADE, "s": TEXT},
        {"e": "trade"},
        check=_check_trade,
    ),
    Case("aggTrade", _with(md.parse_agg_trade), _AGG, {"e": "aggTrade"}, check=_check_trade),
    Case(
        "spot bookTicker",
        _with(md.parse_book_ticker),
        {**_QUOTE, "E": INT},
        optional=frozenset({"E"}),
        check=_check_quote,
    ),
    Case(
        "futures bookTicker",
        _with(md.parse_book_ticker, LOOKUP),
        {**_QUOTE, "E": INT, "s": TEXT},
        {"e": "bookTicker", "T": 1},
        optional=frozenset({"E"}),
        check=_check_quote,
    ),
    Case("kline", _with(md.parse_kline), _KLINE, {"e": "kline"}, nested="k", check=_check_bar),
    Case(
        "futures ticker", _with(md.parse_ticker), _TICKER, {"e": "24hrTicker"}, check=_check_ticker
    ),
    Case(
        "spot ticker",
        _with(md.parse_ticker),
        {**_TICKER, "b": DEC, "B": DEC, "a": DEC, "A": DEC},
        {"e": "24hrTicker"},
        check=_check_ticker,
    ),
    Case(
        "markPriceUpdate",
        _with(md.parse_mark_price),
        {"E": INT, "p": DEC, "i": DEC, "r": RATE, "T": INT},
        {"e": "markPriceUpdate", "P": "1"},
        check=_check_mark,
    ),
    Case(
        "spot partial depth",
        _with(md.parse_partial_depth),
        {"lastUpdateId": INT, "bids": LEVELS, "asks": LEVELS},
        check=_check_book,
    ),
    Case(
        "futures partial depth",
        _with(md.parse_partial_depth),
        {"E": INT, "u": INT, "b": LEVELS, "a": LEVELS},
        {"e": "depthUpdate", "U": 1, "pu": 0},
        check=_check_book,
    ),
    Case(
        "rest klines",
        lambda body: md.parse_rest_klines(body, CLIENT, IID, "1m"),
        _REST_KLINE,
        rows="list",
        check=_check_bar,
    ),
    Case(
        "rest aggTrades",
        lambda body: md.parse_rest_agg_trades(body, CLIENT, IID),
        _AGG,
        rows="dict",
        check=lambda ticks, values: _check_trade(ticks[0], values),
    ),
    Case(
        "rest trades",
        lambda body: md.parse_rest_trades(body, CLIENT, IID),
        {"id": INT, "price": DEC, "qty": DEC, "time": INT, "isBuyerMaker": BOOL},
        rows="dict",
        check=lambda ticks, values: _check_trade(
            ticks[0],
            {
                "p": values["price"],
                "q": values["qty"],
                "T": values["time"],
                "m": values["isBuyerMaker"],
            },
        ),
    ),
    Case(
        "premiumIndex",
        _with(md.parse_premium_index, LOOKUP),
        {
            **{"symbol": TEXT, "markPrice": DEC, "indexPrice": DEC},
            **{"lastFundingRate": RATE, "nextFundingTime": INT, "time": INT},
        },
        check=lambda result, values: _check_mark(
            result,
            {
                "p": values["markPrice"],
                "i": values["indexPrice"],
                "r": values["lastFundingRate"],
                "T": values["nextFundingTime"],
            },
        ),
    ),
    Case(
        "fundingRate",
        _with(md.parse_funding_rates, LOOKUP),
        {"symbol": TEXT, "fundingRate": RATE, "fundingTime": INT},
        rows="dict",
        check=lambda rates, values: _exact(rates[0].rate, values["fundingRate"]),
    ),
]
CASE_IDS = [case.name for case in CASES]

_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def valid(draw: st.DrawFn, case: Case) -> Any:
    payload = case.build(draw)
    values = case.values(payload)
    if "s" in values:
        values["s"] = "BTCUSDT"
    if "symbol" in values:
        values["symbol"] = "BTCUSDT"
    return payload


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@_SETTINGS
@given(data=st.data())
def test_random_valid_payloads_round_trip_exact_decimals(case, data):
    payload = data.draw(valid(case))
    result = case.parse(payload)
    assert case.check is not None
    case.check(result, case.values(payload))


# Values of each JSON kind; "junk" strings never read as a decimal.
junk_text = st.one_of(
    st.sampled_from(["", "abc", "NaN", "inf", "-Infinity", " 1", "1 ", "1_0", "1.2.3", "0x1", "e"]),
    st.text(alphabet="bcghjkoxz ,;:#-.", max_size=8),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8)
)
json_containers = st.one_of(
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=3), json_scalars, max_size=3),
)


def _wrong(tag: str) -> st.SearchStrategy[Any]:
    """Values that are not of kind ``tag``."""
    others = st.one_of(st.none(), st.floats(), json_containers)
    if tag in (DEC, SIGNED):
        return st.one_of(others, st.booleans(), st.integers(), junk_text)
    if tag == RATE:  # "" is a valid rate (delivery): junk without it
        return st.one_of(others, st.booleans(), st.integers(), junk_text.filter(bool))
    if tag == INT:
        return st.one_of(others, st.booleans(), st.text(max_size=8))
    if tag == BOOL:
        return st.one_of(others, st.integers(), st.text(max_size=8))
    if tag == TEXT:
        return st.one_of(others, st.booleans(), st.integers())
    bad_level = st.one_of(
        st.lists(decimal_text(), max_size=1),
        st.lists(decimal_text(), min_size=3, max_size=4),
        st.tuples(decimal_text(), st.one_of(st.none(), st.integers(), st.floats())).map(list),
        st.tuples(junk_text, decimal_text()).map(list),
        st.tuples(decimal_text(), decimal_text()).map(lambda pair: [f"-{pair[0]}1", pair[1]]),
        json_scalars,
    )
    return st.one_of(
        st.none(),
        st.floats(),
        st.text(max_size=5),
        st.dictionaries(st.text(max_size=3), json_scalars, max_size=3),
        st.tuples(levels, bad_level, levels).map(lambda parts: [*parts[0], parts[1], *parts[2]]),
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@_SETTINGS
@given(data=st.data())
def test_random_corruption_raises_market_data_error(case, data):
    payload = data.draw(valid(case))
    values = case.values(payload)
    keys = [key for key in case.fields if key not in case.optional]
    key = data.draw(st.sampled_from(keys))
    tag = case.fields[key]
    if case.rows == "list":
        row = payload[0]
        column = list(case.fields).index(key)
        if data.draw(st.booleans()):
            del row[column:]  # too few columns
        else:
            row[column] = data.draw(_wrong(tag))
    elif data.draw(st.booleans()):
        del values[key]
    else:
        values[key] = data.draw(_wrong(tag))
    with pytest.raises(MarketDataError):
        case.parse(payload)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@_SETTINGS
@given(data=st.data())
def test_optional_fields_may_be_dropped_but_not_mistyped(case, data):
    if not case.optional:
        return
    payload = data.draw(valid(case))
    values = case.values(payload)
    key = data.draw(st.sampled_from(sorted(case.optional)))
    dropped = dict(values)
    del dropped[key]
    case.parse([dropped] if case.rows else dropped)
    values[key] = data.draw(_wrong(case.fields[key]).filter(lambda value: value is not None))
    with pytest.raises(MarketDataError):
        case.parse(payload)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@_SETTINGS
@given(data=st.data())
def test_unknown_fields_are_ignored(case, data):
    payload = data.draw(valid(case))
    expected = case.parse(payload)
    values = case.values(payload)
    names = st.one_of(
        st.sampled_from(["st", "ps", "nq", "ap", "rpi", "M", "isRPITrade"]),
        st.text(string.ascii_letters, min_size=1, max_size=6).map("x_".__add__),
    )
    extra = data.draw(st.dictionaries(names, st.one_of(json_scalars, json_containers), max_size=4))
    reserved = set(case.fields) | set(case.constants) | {"e", "s", "x", "i", "lastUpdateId"}
    if case.rows == "list":
        payload[0].extend(extra.values())  # columns Binance may add after the 12th
    else:
        values.update({name: value for name, value in extra.items() if name not in reserved})
    assert case.parse(payload) == expected


@given(frame=st.one_of(st.binary(max_size=64), st.text(max_size=64)))
@settings(max_examples=100, deadline=None)
def test_parse_frame_junk_raises_only_market_data_error(frame):
    try:
        stream, data = md.parse_frame(frame)
    except MarketDataError:
        return
    assert isinstance(stream, str)
    assert isinstance(data, dict | list)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@_SETTINGS
@given(payload=st.one_of(json_scalars, json_containers))
def test_any_json_value_raises_only_market_data_error(case, payload):
    with contextlib.suppress(MarketDataError):
        case.parse(payload)
