"""ccxt (unmodified, asyncio) trading Spot on a `tern venue` subprocess, and following its
order updates on both user streams: Spot over the WS-API (``userDataStream.subscribe.
signature``) and USD-M over a listen key (``/private/ws?listenKey=``).

Only ccxt's URLs are changed (and its Spot-versus-futures URL predicate, as in
``test_ccxt.py``); the bytes on the wire are ccxt's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.venue.test_ccxt import point_at
from tests.venue.test_futures_ccxt import exchange_for, start_venue


def trading_exchange(info: dict) -> Any:
    exchange = exchange_for(info)
    exchange.options["fetchMarkets"] = {"types": ["spot", "linear"]}
    exchange.options["fetchMargins"] = False  # the venue has no /sapi margin endpoints
    point_at(exchange, info)
    exchange.urls["api"]["ws"]["ws-api"] = dict(info["ws_api"], linear=info["ws_api"]["usdm"])
    return exchange


async def watch_one(exchange: Any, symbol: str, params: dict | None = None) -> list:
    return await asyncio.wait_for(exchange.watch_orders(symbol, params=params or {}), 15)


async def exercise(info: dict) -> dict[str, Any]:
    exchange = trading_exchange(info)
    seen: dict[str, Any] = {}
    try:
        await exchange.load_markets()
        seen["balance"] = await exchange.fetch_balance()
        book = await exchange.fetch_order_book("BTC/USDT", 5)
        bid, ask = book["bids"][0][0], book["asks"][0][0]
        # Spot order updates over the WS-API: subscribe first, then trade.
        spot_updates = asyncio.ensure_future(watch_one(exchange, "BTC/USDT"))
        await asyncio.sleep(0.5)
        seen["market"] = await exchange.create_order("BTC/USDT", "market", "buy", 0.01)
        seen["spot_updates"] = await spot_updates
        seen["limit"] = await exchange.create_order(
            "BTC/USDT", "limit", "buy", 0.01, round(bid * 0.98, 2)
        )
        seen["maker"] = await exchange.create_order(
            "BTC/USDT", "limit", "sell", 0.01, round(ask * 1.02, 2), params={"postOnly": True}
        )
        seen["stop"] = await exchange.create_order(
            "BTC/USDT",
            "STOP_LOSS_LIMIT",
            "sell",
            0.01,
            round(bid * 0.95, 2),
            params={"stopPrice": round(bid * 0.96, 2)},
        )
        seen["fetched"] = await exchange.fetch_order(seen["limit"]["id"], "BTC/USDT")
        seen["open"] = await exchange.fetch_open_orders("BTC/USDT")
        seen["canceled"] = await exchange.cancel_order(seen["limit"]["id"], "BTC/USDT")
        seen["trades"] = await exchange.fetch_my_trades("BTC/USDT")
        seen["closed"] = await exchange.fetch_closed_orders("BTC/USDT")
        seen["after"] = await exchange.fetch_balance()
        # USD-M order updates over a listen key.
        linear_updates = asyncio.ensure_future(watch_one(exchange, "BTC/USDT:USDT"))
        await asyncio.sleep(0.5)
        seen["linear"] = await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.002)
        seen["linear_updates"] = await linear_updates
        seen["leverage"] = await exchange.set_leverage(5, "BTC/USDT:USDT")
        seen["positions"] = await exchange.fetch_positions(["BTC/USDT:USDT"])
    finally:
        await exchange.close()
    return seen


def test_ccxt_trades_spot_and_follows_both_user_streams() -> None:
    process, info = start_venue()
    try:
        seen = asyncio.run(asyncio.wait_for(exercise(info), 90))
    finally:
        process.terminate()
        process.wait(10)
    assert seen["balance"]["free"]["USDT"] > 0
    assert seen["market"]["status"] == "closed"
    assert seen["market"]["filled"] == 0.01
    assert seen["market"]["fee"]["currency"] == "BTC"
    assert seen["spot_updates"][-1]["id"] == seen["market"]["id"]
    assert seen["spot_updates"][-1]["filled"] == 0.01
    assert seen["limit"]["status"] == "open"
    assert seen["maker"]["status"] == "open"
    assert seen["stop"]["status"] == "open"
    assert seen["fetched"]["id"] == seen["limit"]["id"]
    assert {order["id"] for order in seen["open"]} == {
        seen["limit"]["id"],
        seen["maker"]["id"],
        seen["stop"]["id"],
    }
    assert seen["canceled"]["status"] == "canceled"
    assert sum(trade["amount"] for trade in seen["trades"]) == 0.01
    assert seen["market"]["id"] in {order["id"] for order in seen["closed"]}
    spent = seen["balance"]["free"]["USDT"] - seen["after"]["free"]["USDT"]
    assert spent > 0
    assert seen["after"]["total"]["BTC"] > seen["balance"]["total"]["BTC"]
    assert seen["linear_updates"][-1]["id"] == seen["linear"]["id"]
    assert seen["linear_updates"][-1]["status"] == "closed"
    assert seen["leverage"]["leverage"] == 5
    position = seen["positions"][0]
    # positionRisk v3 (what ccxt reads) carries no leverage, on Binance as here.
    assert (position["side"], position["contracts"]) == ("long", 0.002)
