"""An unmodified third-party client against the venue: ccxt (asyncio), with only its URLs
pointed at a `tern venue` subprocess.

ccxt tells Spot from futures pushes by looking for ``/stream`` in the connection URL, which a
local URL lacks, so the test replaces that one predicate; the bytes on the wire are unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import ccxt.pro as ccxtpro

ROOT = Path(__file__).resolve().parents[2]
LIVE_HOSTS = ("https://api.binance.com", "https://fapi.binance.com", "https://dapi.binance.com")


def start_venue() -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.cli", "venue", "--seed", "5"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, json.loads(line)


def point_at(exchange: ccxtpro.binance, info: dict) -> None:
    api = exchange.urls["api"]
    for key, url in list(api.items()):
        if isinstance(url, str):
            for host in LIVE_HOSTS:
                url = url.replace(host, info["rest"])
            api[key] = url
    api["ws"]["spot"] = info["ws"]["spot"] + "/ws"
    api["ws"]["linear"] = info["ws"]["usdm"] + "/ws"
    api["ws"]["inverse"] = info["ws"]["coinm"] + "/ws"
    spot = info["ws"]["spot"] + "/ws"
    exchange.is_spot_url = lambda client: client.url.startswith(spot)


async def exercise(info: dict) -> dict:
    exchange = ccxtpro.binance(
        {"options": {"fetchMarkets": {"types": ["spot", "linear", "inverse"]}}}
    )
    point_at(exchange, info)
    seen: dict = {}
    try:
        markets = await exchange.load_markets()
        seen["markets"] = sorted(markets)
        for symbol in ("BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"):
            book = await exchange.fetch_order_book(symbol, 5)
            trades = await exchange.fetch_trades(symbol, limit=20)
            candles = await exchange.fetch_ohlcv(symbol, "1m", limit=5)
            ticker = await exchange.fetch_ticker(symbol)
            seen[symbol] = (book, trades, candles, ticker)
        for symbol in ("BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"):
            nonces = []
            for _ in range(30):
                book = await asyncio.wait_for(exchange.watch_order_book(symbol), 10)
                nonces.append(book["nonce"])
                assert book["bids"][0][0] < book["asks"][0][0], "a crossed book"
            seen[f"watch {symbol}"] = nonces
    finally:
        await exchange.close()
    return seen


def test_ccxt_reads_markets_books_trades_candles_and_keeps_a_live_book() -> None:
    process, info = start_venue()
    try:
        seen = asyncio.run(asyncio.wait_for(exercise(info), 120))
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert process.stdout is not None
        process.stdout.close()
    for symbol in (
        "BTC/USDT",
        "ETH/USDT",
        "BNB/USDT",
        "BTC/USDT:USDT",
        "ETH/USDT:USDT",
        "BTC/USD:BTC",
    ):
        assert symbol in seen["markets"]
    assert any(name.startswith("BTC/USDT:USDT-") for name in seen["markets"]), "a delivery contract"
    for symbol in ("BTC/USDT", "BTC/USDT:USDT", "BTC/USD:BTC"):
        book, trades, candles, ticker = seen[symbol]
        assert len(book["bids"]) == 5
        assert book["bids"][0][0] < book["asks"][0][0]
        assert trades
        assert all(t["symbol"] == symbol for t in trades)
        assert candles
        assert len(candles[-1]) == 6
        assert ticker["last"] > 0
        nonces = seen[f"watch {symbol}"]
        assert nonces == sorted(nonces)
        assert nonces[-1] > nonces[0], "the book kept updating"
