"""An order book rebuilt from journaled book events: what a strategy saw, at any seq.

:class:`BookView` folds ``book.snapshot``, ``book.deltas`` and ``book.stale`` of one
instrument (and client) into a book of exact Decimals. It is what ``tern book`` prints and
what the end-to-end tests compare with the venue's own book. A stale book is empty until the
next snapshot, exactly as the book-sync actor publishes it.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from events.base import Event
from events.market import BookDeltas, BookSnapshot, BookStale

__all__ = ["BookView"]


@attrs.define
class BookView:
    """One instrument's book as its events describe it."""

    instrument_id: str
    client: str | None = None
    bids: dict[Decimal, Decimal] = attrs.field(factory=dict)
    asks: dict[Decimal, Decimal] = attrs.field(factory=dict)
    update_id: int | None = None
    stale: str | None = None
    #: Whether a snapshot has been seen (before it the book is unknown, not empty).
    known: bool = False

    def apply(self, event: Event) -> bool:
        """Fold ``event`` if it is about this book; True when it was."""
        if getattr(event, "instrument_id", None) != self.instrument_id:
            return False
        if self.client is not None and getattr(event, "client", None) != self.client:
            return False
        if isinstance(event, BookSnapshot):
            self.bids = {price: size for price, size in event.bids if size}
            self.asks = {price: size for price, size in event.asks if size}
            self.update_id = event.update_id
            self.stale = None
            self.known = True
        elif isinstance(event, BookDeltas):
            for side, levels in ((self.bids, event.bids), (self.asks, event.asks)):
                for price, size in levels:
                    if size:
                        side[price] = size
                    else:
                        side.pop(price, None)
            self.update_id = event.update_id
        elif isinstance(event, BookStale):
            self.bids.clear()
            self.asks.clear()
            self.stale = event.reason
        else:
            return False
        return True

    def top(self, depth: int | None = None) -> tuple[list[tuple[Decimal, Decimal]], ...]:
        """``(bids, asks)``, best first; the first ``depth`` levels of each (None: all)."""
        bids = sorted(self.bids.items(), reverse=True)
        asks = sorted(self.asks.items())
        if depth is not None:
            bids, asks = bids[:depth], asks[:depth]
        return bids, asks
