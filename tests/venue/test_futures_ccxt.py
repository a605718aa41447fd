"""ccxt (unmodified, asyncio) trading USD-M and COIN-M futures on a `tern venue` subprocess:
balances, market and limit orders, cancels, positions, trades, leverage, fees, a conditional
order through the Algo API, and the position mode."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro

ROOT = Path(__file__).resolve().parents[2]
LIVE_HOSTS = ("https://api.binance.com", "https://fapi.binance.com", "https://dapi.binance.com")
MARKETS = {"BTC/USDT:USDT": ("linear", 0.002), "BTC/USD:BTC": ("inverse", 2)}


def start_venue() -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [sys.executable, "-m", "actors.cli", "venue", "--seed", "9"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def exchange_for(info: dict) -> Any:
    exchange = ccxtpro.binance(
        {
            "apiKey": info["api_key"],
            "secret": info["api_secret"],
            # the venue has no /sapi wallet endpoints: no currency list
            "has": {"fetchCurrencies": False},
            "options": {
                "fetchMarkets": {"types": ["linear", "inverse"]},
                "fetchCurrencies": False,
            },
        }
    )
    api = exchange.urls["api"]
    for key, url in list(api.items()):
        if isinstance(url, str):
            for host in LIVE_HOSTS:
                url = url.replace(host, info["rest"])
            api[key] = url
    return exchange


async def exercise(info: dict) -> dict[str, Any]:
    exchange = exchange_for(info)
    seen: dict[str, Any] = {}
    try:
        await exchange.load_markets()
        for symbol, (sub_type, amount) in MARKETS.items():
            params = {"subType": sub_type}
            balance = await exchange.fetch_balance({"type": "swap", **params})
            bought = await exchange.create_order(symbol, "market", "buy", amount)
            book = await exchange.fetch_order_book(symbol, 5)
            bid = book["bids"][0][0]
            resting = await exchange.create_order(symbol, "limit", "buy", amount, round(bid - 500))
            open_orders = await exchange.fetch_open_orders(symbol)
            canceled = await exchange.cancel_order(resting["id"], symbol)
            positions = await exchange.fetch_positions([symbol], params)
            trades = await exchange.fetch_my_trades(symbol)
            leverage = await exchange.set_leverage(10, symbol)
            fee = await exchange.fetch_trading_fee(symbol)
            stop = await exchange.create_order(
                symbol, "market", "sell", amount, params={"stopPrice": round(bid * 0.9)}
            )
            stops = await exchange.fetch_open_orders(symbol, params={"stop": True})
            seen[symbol] = {
                "balance": balance,
                "bought": bought,
                "resting": resting,
                "open": open_orders,
                "canceled": canceled,
                "positions": positions,
                "trades": trades,
                "leverage": leverage,
                "fee": fee,
                "stop": stop,
                "stops": stops,
            }
        seen["mode"] = await exchange.fetch_position_mode("BTC/USDT:USDT")
    finally:
        await exchange.close()
    return seen


def test_ccxt_trades_futures() -> None:
    process, info = start_venue()
    try:
        seen = asyncio.run(asyncio.wait_for(exercise(info), 60))
    finally:
        process.terminate()
        process.wait(10)
    linear, inverse = seen["BTC/USDT:USDT"], seen["BTC/USD:BTC"]
    assert linear["balance"]["total"]["USDT"] == 100000
    assert inverse["balance"]["total"]["BTC"] == 10
    for symbol, (_, amount) in MARKETS.items():
        result = seen[symbol]
        assert result["bought"]["filled"] == amount
        assert result["resting"]["status"] == "open"
        assert [order["id"] for order in result["open"]] == [result["resting"]["id"]]
        assert result["canceled"]["status"] == "canceled"
        position = result["positions"][0]
        assert (position["symbol"], position["side"], position["contracts"]) == (
            symbol,
            "long",
            amount,
        )
        assert sum(trade["amount"] for trade in result["trades"]) == amount
        assert result["leverage"]["leverage"] == 10
        assert result["fee"]["taker"] == 0.0005
        assert result["stop"]["status"] == "open"
        assert [order["id"] for order in result["stops"]] == [result["stop"]["id"]]
    assert linear["trades"][0]["fee"]["currency"] == "USDT"
    assert inverse["trades"][0]["fee"]["currency"] == "BTC"
    assert seen["mode"]["hedged"] is False
