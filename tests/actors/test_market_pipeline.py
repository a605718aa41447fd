"""Instruments, market data and book sync end to end: a whole session against the venue.

A ``tern run`` session (connectivity, instruments, market data, book sync and a strategy)
talks to the local venue on loopback. Depth gaps and a dropped connection are injected through
the venue's control API; after every ``book.resynced`` the book the journal describes must
equal the venue's own book.
"""

from __future__ import annotations

import collections
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.bus import Bus
from actors.cli import main as cli_main
from actors.config import config_from_dict
from actors.projections.book import BookView
from actors.replay import replay
from events.base import Envelope
from events.market import (
    BookResynced,
    BookSnapshot,
    BookStale,
    Instrument,
    MarkPrice,
    QuoteTick,
    TradeTick,
)
from scenarios.venue.config import VenueConfig
from scenarios.venue.server import open_venue

DEADLINE = 40
SPOT_ID = "BTCUSDT.BINANCE"
PERP_ID = "BTCUSDT-PERP.BINANCE"
INVERSE_ID = "BTCUSD-PERP.BINANCE"


@pytest.fixture
async def venue():
    async with open_venue(VenueConfig(seed=11, tick_ms=20)) as running:
        yield running


def session_config(venue: Any, journal: Path) -> Any:
    key = venue.first_key
    clients = []
    for name, account_type in (
        ("spot", "spot"),
        ("usdm", "usdt_futures"),
        ("coinm", "coin_futures"),
    ):
        product = name
        clients.append(
            {
                "name": name,
                "account_type": account_type,
                "base_url_http": venue.urls["rest"],
                "base_url_ws": venue.urls["ws"][product],
                "base_url_ws_api": venue.urls["ws_api"][product],
                "api_key": key.api_key,
                "api_secret": key.secret,
            }
        )
    return config_from_dict(
        {
            "journal": {"dir": str(journal), "fsync": "none"},
            "supervisor": {"grace_s": 3.0},
            "clients": clients,
            "strategies": [
                {
                    "class": "tests.actors.sample_strategies:MarketWatcher",
                    "name": "watcher",
                    "params": {
                        "subscriptions": [
                            ["spot", "BOOK", SPOT_ID, {}],
                            ["usdm", "BOOK", PERP_ID, {}],
                            ["coinm", "BOOK", INVERSE_ID, {}],
                            ["usdm", "BOOK", "ETHUSDT-PERP.BINANCE", {"depth": 10}],
                            ["spot", "TRADES", SPOT_ID, {}],
                            ["usdm", "QUOTES", PERP_ID, {}],
                            ["usdm", "MARK_PRICE", PERP_ID, {}],
                            ["usdm", "FUNDING_RATE", PERP_ID, {}],
                        ]
                    },
                }
            ],
        }
    )


class Watch:
    """Every envelope the bus delivers, with waits on them."""

    def __init__(self) -> None:
        self.seen: list[Envelope] = []
        self.changed = trio.Event()

    async def run(self, bus: Bus) -> None:
        with bus.subscribe("test-watch", from_seq=1) as subscription:
            async for envelope in subscription:
                self.seen.append(envelope)
                self.changed.set()
                self.changed = trio.Event()

    async def wait_for(self, predicate: Any, *, after: int = 0) -> Envelope:
        while True:
            for envelope in self.seen:
                if envelope.seq > after and predicate(envelope.event):
                    return envelope
            await self.changed.wait()

    def view(self, client: str, instrument_id: str) -> BookView:
        view = BookView(instrument_id, client)
        for envelope in self.seen:
            view.apply(envelope.event)
        return view


async def assert_book_matches_venue(
    watch: Watch, control: httpx.AsyncClient, client: str, instrument_id: str, product: str
) -> None:
    symbol = {INVERSE_ID: "BTCUSD_PERP"}.get(instrument_id, "BTCUSDT")
    """With the market paused, tern's book reaches the venue's last update and equals it."""
    await control.post("/_venue/activity", json={"paused": True})
    try:
        answer = await control.get(
            "/_venue/book", params={"product": product, "symbol": symbol, "depth": 100_000}
        )
        answer.raise_for_status()
        truth = answer.json()
        # The diffs up to the venue's last update may still be in flight: wait for its id.
        with trio.move_on_after(10):
            while watch.view(client, instrument_id).update_id != truth["lastUpdateId"]:
                await watch.changed.wait()
        seen = watch.view(client, instrument_id).update_id
        recent = [
            (
                e.seq,
                e.event.TAG,
                getattr(e.event, "update_id", None),
                getattr(e.event, "reason", ""),
            )
            for e in watch.seen
            if getattr(e.event, "instrument_id", None) == instrument_id
        ][-8:]
        assert seen == truth["lastUpdateId"], (seen, truth["lastUpdateId"], recent)
        view = watch.view(client, instrument_id)
        bids, asks = view.top()
        assert bids == [(Decimal(p), Decimal(q)) for p, q in truth["bids"]]
        assert asks == [(Decimal(p), Decimal(q)) for p, q in truth["asks"]]
        assert bids
        assert asks
    finally:
        await control.post("/_venue/activity", json={"paused": False})


async def test_books_resync_after_gaps_and_equal_the_venue(venue, tmp_path: Path, capsys) -> None:
    from actors.runtime import run_session

    journal = tmp_path / "journal"
    config = session_config(venue, journal)
    watch = Watch()
    buses: list[Bus] = []
    ready = trio.Event()

    def on_started(bus: Bus) -> None:
        buses.append(bus)
        ready.set()

    finished = trio.Event()

    async def script() -> None:
        await ready.wait()
        async with (
            trio.open_nursery() as inner,
            httpx.AsyncClient(base_url=venue.urls["rest"], timeout=5) as control,
        ):
            inner.start_soon(watch.run, buses[0])
            for iid in (SPOT_ID, PERP_ID, INVERSE_ID):
                await watch.wait_for(
                    lambda e, iid=iid: isinstance(e, BookResynced) and e.instrument_id == iid
                )
            await watch.wait_for(lambda e: isinstance(e, Instrument) and e.instrument_id == PERP_ID)
            await assert_book_matches_venue(watch, control, "spot", SPOT_ID, "spot")
            await assert_book_matches_venue(watch, control, "usdm", PERP_ID, "usdm")
            await assert_book_matches_venue(watch, control, "coinm", INVERSE_ID, "coinm")
            partial = await watch.wait_for(
                lambda e: isinstance(e, BookSnapshot) and e.instrument_id == "ETHUSDT-PERP.BINANCE"
            )
            assert len(partial.event.bids) == 10
            for client, iid, product in (
                ("spot", SPOT_ID, "spot"),
                ("usdm", PERP_ID, "usdm"),
                ("coinm", INVERSE_ID, "coinm"),
            ):
                mark = watch.seen[-1].seq
                symbol = "BTCUSD_PERP" if product == "coinm" else "BTCUSDT"
                fault = {"product": product, "symbol": symbol, "skip": 1}
                (await control.post("/_venue/faults/depth", json=fault)).raise_for_status()
                stale = await watch.wait_for(
                    lambda e, iid=iid: isinstance(e, BookStale) and e.instrument_id == iid,
                    after=mark,
                )
                assert "gap" in stale.event.reason or "pu" in stale.event.reason, stale.event
                await watch.wait_for(
                    lambda e, iid=iid: isinstance(e, BookResynced) and e.instrument_id == iid,
                    after=stale.seq,
                )
                await assert_book_matches_venue(watch, control, client, iid, product)
            # A dropped connection: every book on it goes stale and resyncs.
            mark = watch.seen[-1].seq
            (await control.post("/_venue/faults/close", json={"code": 1006})).raise_for_status()
            stale = await watch.wait_for(lambda e: isinstance(e, BookStale), after=mark)
            await watch.wait_for(
                lambda e: (
                    isinstance(e, BookResynced) and e.instrument_id == stale.event.instrument_id
                ),
                after=stale.seq,
            )
            await control.delete("/_venue/faults")
            await assert_book_matches_venue(
                watch, control, stale.event.client, stale.event.instrument_id, stale.event.client
            )
            # The other market data flowed too.
            for kind in (TradeTick, QuoteTick, MarkPrice):
                await watch.wait_for(lambda e, kind=kind: isinstance(e, kind))
            inner.cancel_scope.cancel()
        finished.set()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            result = await run_session(
                config, handle_signals=False, on_started=on_started, stop_when=finished
            )
    assert result.clean, result.reason
    tags = collections.Counter(envelope.event.TAG for envelope in watch.seen)
    assert tags["book.stale"] >= 3, tags  # two gaps and a lost connection
    assert tags["book.resynced"] >= 5, tags
    assert tags["book.deltas"] >= 5, tags
    assert tags["book.sync_failed"] == 0, tags
    # The deterministic actors replay to exactly what they published.
    report = replay(journal)
    assert report.identical, report.divergence
    assert report.inputs_handled["book-sync"] > 0
    # ``tern book`` rebuilds the same book from the journal, at the end and at any seq.
    capsys.readouterr()
    assert cli_main(["book", str(journal), "--instrument", SPOT_ID, "--depth", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    final = watch.view("spot", SPOT_ID)
    assert f"update id {final.update_id}, in sync" in printed[0]
    (best_bid, best_ask) = (final.top(1)[0][0], final.top(1)[1][0])
    assert printed[2].split() == [
        str(best_bid[1]),
        str(best_bid[0]),
        str(best_ask[0]),
        str(best_ask[1]),
    ]
    assert len(printed) == 2 + 3
    stale = next(e for e in watch.seen if isinstance(e.event, BookStale))
    assert (
        cli_main(
            [
                "book",
                str(journal),
                "--instrument",
                stale.event.instrument_id,
                "--at",
                str(stale.seq),
            ]
        )
        == 0
    )
    assert "STALE" in capsys.readouterr().out
    assert cli_main(["book", str(journal), "--instrument", "NOPE.BINANCE"]) == 2
    assert "no book events for NOPE.BINANCE" in capsys.readouterr().err


async def test_history_pages_bars_and_aggregated_trades_from_the_venue(venue, tmp_path) -> None:
    """History requests page through the venue's klines and aggTrades: bars are closed and
    contiguous, trades contiguous by aggregate id, counts add up, pages respect the range."""
    from actors.runtime import run_session
    from events.market import DataKind, HistoryChunk, HistoryDone, RequestHistory

    config = session_config(venue, tmp_path / "journal")
    watch = Watch()
    buses: list[Bus] = []
    ready = trio.Event()
    finished = trio.Event()

    def on_started(bus: Bus) -> None:
        buses.append(bus)
        ready.set()

    async def script() -> None:
        await ready.wait()
        bus = buses[0]
        async with trio.open_nursery() as inner:
            inner.start_soon(watch.run, bus)
            await trio.sleep(3.0)  # let the venue print trades and close a few 1 s klines
            now_ms = venue.clock.now_ms()
            start_ms = now_ms - 60_000
            await bus.publish(
                [
                    RequestHistory(
                        client="spot",
                        subscriber="tester",
                        request_id="bars",
                        instrument_id=SPOT_ID,
                        kind=DataKind.BARS,
                        interval="1s",
                        start_ms=start_ms,
                        end_ms=now_ms,
                    ),
                    RequestHistory(
                        client="usdm",
                        subscriber="tester",
                        request_id="trades",
                        instrument_id=PERP_ID,
                        kind=DataKind.TRADES,
                        start_ms=start_ms,
                        end_ms=now_ms,
                    ),
                    RequestHistory(
                        client="spot",
                        subscriber="tester",
                        request_id="bad",
                        instrument_id=SPOT_ID,
                        kind=DataKind.BARS,
                        interval="7m",
                        start_ms=start_ms,
                        end_ms=now_ms,
                    ),
                ],
                source="tester",
            )
            for request_id in ("bars", "trades", "bad"):
                await watch.wait_for(
                    lambda e, r=request_id: isinstance(e, HistoryDone) and e.request_id == r
                )
            inner.cancel_scope.cancel()
        finished.set()

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(script)
            await run_session(
                config, handle_signals=False, on_started=on_started, stop_when=finished
            )
    done = {e.event.request_id: e.event for e in watch.seen if isinstance(e.event, HistoryDone)}
    chunks = [e.event for e in watch.seen if isinstance(e.event, HistoryChunk)]
    assert "7m" in done["bad"].error
    assert done["bars"].error == ""
    assert done["trades"].error == ""
    bars = [bar for chunk in chunks if chunk.request_id == "bars" for bar in chunk.bars]
    trades = [t for chunk in chunks if chunk.request_id == "trades" for t in chunk.trades]
    assert len(bars) == done["bars"].count >= 2
    assert len(trades) == done["trades"].count >= 5
    assert all(b.close_ms - b.open_ms == 999 for b in bars)
    assert all(b.interval == "1s" for b in bars)
    assert [b.open_ms for b in bars] == sorted({b.open_ms for b in bars})
    ids = [t.trade_id for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # contiguous, no page lost or doubled
    assert all(t.aggregated for t in trades)
