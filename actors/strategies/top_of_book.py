"""Example strategy: watch order books and print their top.

It shows a market-data strategy's shape: subscriptions made in ``on_start``, typed handlers,
state on ``self``, no clock (throttling uses the journal time of each event) and no I/O:
lines go to the ``tern.strategy`` logger, which ``tern demo`` shows and ``tern replay``
leaves silent.

Params: ``books``: ``[[client, instrument_id], ...]``; ``every_ms``: print an instrument's top
at most this often (default 1000); ``depth``: 0 for full books (default) or 5/10/20.
"""

from __future__ import annotations

import logging
from typing import Any

from actors.strategy import Strategy
from events.market import BookResynced, BookStale, DataKind, TopOfBook
from events.system import SessionStarted

logger = logging.getLogger("tern.strategy")


class TopOfBookPrinter(Strategy):
    """Prints each watched book's best bid and ask, and when a book goes stale or resyncs."""

    def __init__(self, name: str, *, seed: int | str, params: dict[str, Any] | None = None):
        super().__init__(name, seed=seed, params=params)
        self.books = [(str(client), str(iid)) for client, iid in self.params.get("books", [])]
        self.every_ns = int(self.params.get("every_ms", 1000)) * 1_000_000
        self.depth = int(self.params.get("depth", 0))
        self.last_printed: dict[tuple[str, str], int] = {}
        self.tops = 0
        self.stale = 0
        self.resynced = 0

    def on_start(self, event: SessionStarted) -> None:
        for client, instrument_id in self.books:
            self.subscribe(DataKind.BOOK, instrument_id, client=client, depth=self.depth)

    def on_top_of_book(self, event: TopOfBook) -> None:
        self.tops += 1
        key = (event.client, event.instrument_id)
        now = self.now_ns
        if now - self.last_printed.get(key, -self.every_ns) < self.every_ns:
            return
        self.last_printed[key] = now
        logger.info(
            "%-22s %-5s bid %s x %s | ask %s x %s  (update %d)",
            event.instrument_id,
            event.client,
            event.bid_price,
            event.bid_size,
            event.ask_price,
            event.ask_size,
            event.update_id,
        )

    def on_book_stale(self, event: BookStale) -> None:
        self.stale += 1
        logger.info("%-22s %-5s STALE: %s", event.instrument_id, event.client, event.reason)

    def on_book_resynced(self, event: BookResynced) -> None:
        self.resynced += 1
        logger.info(
            "%-22s %-5s in sync at update %d (%d snapshot%s)",
            event.instrument_id,
            event.client,
            event.update_id,
            event.attempts,
            "" if event.attempts == 1 else "s",
        )
