"""The book-sync actor: order books that are in sync with Binance or say they are not.

A deterministic actor (:class:`~actors.base.FoldActor`), one book per (client, instrument).
Strategies ask with ``market.subscribe`` of kind BOOK; the latest subscription's type wins for
the instrument (its stream replaces the previous one, and a synced full book it replaces is
reported ``book.stale``: it is no longer kept). Two kinds of book:

* **Full depth** (``depth = 0``): the diff stream (``<symbol>@depth@100ms`` by default) plus
  a REST snapshot (``snapshot_limit`` levels, default the product's maximum: 5000 on Spot,
  1000 on futures), kept by :class:`~actors.binance.book.DepthSync` under the product's rule
  (Spot ``U``, futures ``pu``) for the life of the stream. Diffs are buffered from the first
  frame; the snapshot is asked for once the first diff is buffered. In sync, every diff is
  published as ``book.deltas`` (exact Decimals) and, when the best bid or ask changed, as
  ``book.top``.
* **Partial depth** (``depth`` 5, 10 or 20): each frame is a snapshot of the top levels,
  published as ``book.snapshot`` (and ``book.top``).

Anything that makes a full book untrustworthy: a sequence gap, a malformed level, a failed,
empty or too-old snapshot, a stream connection lost (``stream.disconnected`` with a reconnect
planned, for the connection the book's frames came on) or a ``stream.gap`` naming the stream,
publishes ``book.stale`` at once (once per episode) and resyncs: the next snapshot is asked
for at once the first time (a malformed level, or one outside Binance's notation, counts as an
attempt and waits, so a venue that keeps sending them cannot drive a snapshot loop), then
after a capped exponential backoff with seeded jitter
(:data:`BACKOFF_INITIAL_MS` doubling to :data:`BACKOFF_MAX_MS`, timers recorded in the
journal). After :data:`FAILURES_REPORTED_AT` attempts, and at each doubling after that,
``book.sync_failed`` says resyncing keeps failing; it goes on. A resynced book publishes
``book.snapshot``, ``book.resynced`` and ``book.top``.

A rotation (the stream moved to a new connection while the old one still delivered) is not a
fault: both connections deliver the same diffs for a while, and the duplicates are ignored
by update id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

import attrs

from actors.base import FoldActor
from actors.binance.book import (
    Applied,
    Buffered,
    DepthSync,
    NeedSnapshot,
    SequenceRule,
    SnapshotTooOld,
    Synced,
    SyncState,
    parse_depth_frame,
    parse_depth_snapshot,
)
from actors.binance.market_data import (
    MarketDataError,
    StreamNameError,
    level_number,
    parse_frame,
    parse_partial_depth,
    stream_name,
)
from actors.config import AccountType, ClientConfig
from actors.market_data import symbol_of
from events.base import Envelope, Event
from events.connectivity import (
    RestRequest,
    RestResponse,
    StreamDisconnected,
    StreamFrame,
    StreamGap,
    SubscribeStreams,
    UnsubscribeStreams,
)
from events.market import (
    BookDeltas,
    BookResynced,
    BookSnapshot,
    BookStale,
    BookSyncFailed,
    DataKind,
    SubscribeMarketData,
    TopOfBook,
    UnsubscribeMarketData,
)
from events.system import ScheduleTimer, TimerFired

__all__ = [
    "BACKOFF_INITIAL_MS",
    "BACKOFF_MAX_MS",
    "FAILURES_REPORTED_AT",
    "NAME",
    "BookSyncActor",
]

logger = logging.getLogger("tern.book_sync")

#: The actor's name.
NAME = "book-sync"
#: The wait before the second snapshot of a resync; it doubles per attempt.
BACKOFF_INITIAL_MS = 500
#: The longest wait between snapshots.
BACKOFF_MAX_MS = 30_000
#: Attempts after which a resync that keeps failing is reported (and at each doubling).
FAILURES_REPORTED_AT = 3
_MAX_SNAPSHOT = {
    AccountType.SPOT: 5000,
    AccountType.USDT_FUTURES: 1000,
    AccountType.COIN_FUTURES: 1000,
}
_DEPTH_PATH = {
    AccountType.SPOT: "/api/v3/depth",
    AccountType.USDT_FUTURES: "/fapi/v1/depth",
    AccountType.COIN_FUTURES: "/dapi/v1/depth",
}
_PREFIX = '{"stream":"'
#: Lost connections remembered (their late frames are ignored); connection names are unique.
_LOST_KEPT = 4096
#: Decimals of the price and size strings seen lately: a book's levels repeat the same few
#: thousand strings, and a dict hit costs a quarter of ``Decimal(text)``. Only strings in
#: Binance's notation get in (:func:`~actors.binance.market_data.level_number`), so a hit is
#: a string already checked. Cleared when full.
_DECIMALS: dict[str, Decimal] = {}
_DECIMALS_MAX = 262_144


def _decimal(text: str) -> Decimal:
    value = _DECIMALS.get(text)
    if value is None:
        value = level_number(text)
        if value is None:
            raise ValueError(
                f"the level string {text!r} is not a decimal in Binance's notation "
                "(digits and at most one point)"
            )
        if len(_DECIMALS) >= _DECIMALS_MAX:
            _DECIMALS.clear()
        _DECIMALS[text] = value
    return value


def _decimal_levels(levels: Sequence[Sequence[str]]) -> tuple[tuple[Decimal, Decimal], ...]:
    """``[[price, size], ...]`` strings as exact Decimal pairs (cached, see :data:`_DECIMALS`);
    ``ValueError`` for a string not in Binance's notation (the book reads numbers as
    ``float()`` does, which takes more)."""
    cache = _DECIMALS
    out = []
    for price, size in levels:
        p = cache.get(price)
        if p is None:
            p = _decimal(price)
        q = cache.get(size)
        if q is None:
            q = _decimal(size)
        out.append((p, q))
    return tuple(out)


def _unpublishable(text: str) -> str | None:
    """Why a depth frame's levels could not be published (see :func:`_decimal`), or None."""
    try:
        diff = parse_depth_frame(text)
        _decimal_levels(diff.bids)
        _decimal_levels(diff.asks)
    except ValueError as exc:
        return f"malformed depth diff: {exc}"
    return None


@attrs.define(eq=False)
class _Book:
    client: ClientConfig
    instrument_id: str
    symbol: str
    stream: str
    depth: int
    snapshot_limit: int
    subscribers: dict[str, None] = attrs.field(factory=dict)
    sync: DepthSync | None = None
    #: The call id of the snapshot request in flight, if any.
    asking: str | None = None
    #: A backoff timer is pending.
    waiting: bool = False
    #: ``book.stale`` was published for the current episode.
    stale_reported: bool = False
    #: The connection the last frame came on.
    connection: str = ""
    top: tuple[Any, Any] = (None, None)
    generation: int = 0
    #: Partial depth: the update id of the last snapshot published (older frames are late).
    partial_id: int | None = None
    #: Full depth: the update id the published book is at (its last snapshot or deltas).
    published_id: int | None = None


class BookSyncActor(FoldActor):
    """See the module docstring. ``clients`` are the session's ``[[clients]]``."""

    SUBSCRIPTIONS: ClassVar[tuple[str, ...]] = (
        SubscribeMarketData.TAG,
        UnsubscribeMarketData.TAG,
        StreamFrame.TAG,
        StreamDisconnected.TAG,
        StreamGap.TAG,
        RestResponse.TAG,
        TimerFired.TAG,
    )

    def __init__(
        self,
        name: str = NAME,
        *,
        seed: int | str = 0,
        clients: Sequence[ClientConfig] = (),
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, seed=seed, params=params)
        self.clients = {config.name: config for config in clients}
        #: (client, instrument id) -> book.
        self.books: dict[tuple[str, str], _Book] = {}
        #: (client, stream name) -> book.
        self.by_stream: dict[tuple[str, str], _Book] = {}
        #: (client, connection) of connections reported lost (the latest ones).
        self.lost: dict[tuple[str, str], None] = {}
        self._calls = 0
        self._generations = 0

    def handle(self, envelope: Envelope) -> Sequence[Event]:
        event = envelope.event
        if type(event) is StreamFrame:
            return self._frame(event)
        if isinstance(event, SubscribeMarketData):
            return self._subscribe(event) if event.kind is DataKind.BOOK else ()
        if isinstance(event, UnsubscribeMarketData):
            return self._unsubscribe(event) if event.kind is DataKind.BOOK else ()
        if isinstance(event, RestResponse) and event.call_id.startswith(f"{self.name}:"):
            return self._snapshot(event)
        if isinstance(event, TimerFired):
            return self._timer(event) if event.owner == self.name else ()
        if isinstance(event, StreamDisconnected):
            if event.reconnect_in_ms is None:  # rotated or closed on purpose: no loss
                return ()
            self._remember_lost(event.client, event.connection)
            hit = [
                book
                for book in self.books.values()
                if book.client.name == event.client and book.connection == event.connection
            ]
            return self._interrupt(hit, f"connection {event.connection} lost: {event.reason}")
        if isinstance(event, StreamGap):
            hit = [
                book
                for stream in event.streams
                if (book := self.by_stream.get((event.client, stream))) is not None
            ]
            return self._interrupt(hit, f"frames lost ({event.reason})")
        return ()

    # -------------------------------------------------------------------- subscriptions

    def _subscribe(self, command: SubscribeMarketData) -> list[Event]:
        client = self.clients.get(command.client)
        if client is None:
            logger.error("book subscription names unknown client %r", command.client)
            return []
        try:
            symbol = symbol_of(command.instrument_id, client.account_type)
            name = stream_name(
                DataKind.BOOK,
                symbol,
                client.account_type,
                depth=command.depth,
                speed_ms=command.speed_ms,
            )
        except (StreamNameError, ValueError) as exc:
            logger.error(
                "book subscription of %s for %s refused: %s",
                command.subscriber,
                command.instrument_id,
                exc,
            )
            return []
        limit = command.snapshot_limit or _MAX_SNAPSHOT[client.account_type]
        key = (client.name, command.instrument_id)
        old = self.books.get(key)
        out: list[Event] = []
        if old is not None and old.stream == name and old.snapshot_limit == limit:
            old.subscribers[command.subscriber] = None
            return out
        subscribers: dict[str, None] = {}
        stale_reported = False
        if old is not None:  # the latest subscription type wins
            subscribers = old.subscribers
            stale_reported = old.stale_reported
            published = (
                old.sync.state is SyncState.SYNCED
                if old.sync is not None
                else old.partial_id is not None
            )
            if published:
                # The published book is no longer kept from here until the new one syncs.
                stale_reported = True
                out.append(
                    BookStale(
                        client=client.name,
                        instrument_id=command.instrument_id,
                        reason=f"subscription changed to {name}",
                        update_id=old.sync.update_id if old.sync is not None else old.partial_id,
                    )
                )
            out.extend(self._drop(old))
        # A generation is never reused, so a dropped book's timer cannot fire for a later one.
        self._generations += 1
        book = _Book(
            client=client,
            instrument_id=command.instrument_id,
            symbol=symbol,
            stream=name,
            depth=command.depth,
            snapshot_limit=limit,
            subscribers=subscribers,
            stale_reported=stale_reported and command.depth == 0,
            generation=self._generations,
        )
        book.subscribers[command.subscriber] = None
        if command.depth == 0:
            book.sync = DepthSync(symbol, SequenceRule.for_account(client.account_type))
        self.books[key] = book
        self.by_stream[(client.name, name)] = book
        out.append(SubscribeStreams(client=client.name, subscriber=self.name, streams=(name,)))
        return out

    def _unsubscribe(self, command: UnsubscribeMarketData) -> list[Event]:
        book = self.books.get((command.client, command.instrument_id))
        if book is None:
            return []
        book.subscribers.pop(command.subscriber, None)
        if book.subscribers:
            return []
        del self.books[(command.client, command.instrument_id)]
        return self._drop(book)

    def _drop(self, book: _Book) -> list[Event]:
        self.by_stream.pop((book.client.name, book.stream), None)
        return [
            UnsubscribeStreams(
                client=book.client.name, subscriber=self.name, streams=(book.stream,)
            )
        ]

    # --------------------------------------------------------------------------- frames

    def _frame(self, frame: StreamFrame) -> Sequence[Event]:
        text = frame.text
        if not text.startswith(_PREFIX):
            return ()
        end = text.find('"', len(_PREFIX))
        book = self.by_stream.get((frame.client, text[len(_PREFIX) : end]))
        if book is None:
            return ()
        if (frame.client, frame.connection) in self.lost:
            # Frames travel apart from status events: a lost connection's last frames can be
            # journaled after its stream.disconnected. They must not start a resync while
            # the stream is down.
            return ()
        book.connection = frame.connection
        sync = book.sync
        if sync is None:
            return self._partial(book, text)
        try:
            outcome = sync.apply_frame(text)
        except ValueError as exc:
            logger.warning("%s: depth frame skipped: %s", book.instrument_id, exc)
            return ()
        if type(outcome) is Applied:
            return self._applied(book, outcome)
        if type(outcome) is Buffered or (type(outcome) is NeedSnapshot and sync.buffered):
            # The diff waits in the buffer (to be replayed at the next sync): its levels must
            # be publishable too. (Rare: only while the book is not in sync.)
            fault = _unpublishable(text)
            if fault is not None:
                return self._discard(book, fault)
        if type(outcome) is Buffered:
            if book.asking is None and not book.waiting:
                return [self._ask(book)]
            return ()
        if type(outcome) is NeedSnapshot:
            # A gap: the diff that revealed it is buffered, so a snapshot can be asked now.
            return self._need(book, outcome.reason, outcome.attempts, book.published_id, now=True)
        return ()

    def _discard(self, book: _Book, reason: str) -> list[Event]:
        """The book holds, or was about to replay, a level it cannot publish: lose it (a
        counted attempt, so a venue that keeps sending such levels meets the backoff)."""
        assert book.sync is not None
        outcome = book.sync.discard(reason, published=book.published_id)
        return self._need(book, outcome.reason, outcome.attempts, book.published_id)

    def _applied(self, book: _Book, applied: Applied) -> list[Event]:
        try:
            bids = _decimal_levels(applied.bids)
            asks = _decimal_levels(applied.asks)
        except ValueError as exc:
            # The book took it (it reads numbers as float() does); nothing is published from
            # a book holding a level that Binance would never send.
            return self._discard(
                book, f"malformed depth diff {applied.first_update_id}..{applied.update_id}: {exc}"
            )
        book.published_id = applied.update_id
        out: list[Event] = [
            BookDeltas(
                client=book.client.name,
                instrument_id=book.instrument_id,
                first_update_id=applied.first_update_id,
                update_id=applied.update_id,
                bids=bids,
                asks=asks,
                ts_event_ms=applied.event_time_ms,
            )
        ]
        top = self._top(book, applied.update_id)
        if top is not None:
            out.append(top)
        return out

    def _top(self, book: _Book, update_id: int) -> TopOfBook | None:
        assert book.sync is not None
        current = (book.sync.book.best_bid(), book.sync.book.best_ask())
        if current == book.top:
            return None
        book.top = current
        bid, ask = current
        return TopOfBook(
            client=book.client.name,
            instrument_id=book.instrument_id,
            update_id=update_id,
            bid_price=None if bid is None else _decimal(bid[0]),
            bid_size=None if bid is None else _decimal(bid[1]),
            ask_price=None if ask is None else _decimal(ask[0]),
            ask_size=None if ask is None else _decimal(ask[1]),
        )

    def _partial(self, book: _Book, text: str) -> list[Event]:
        try:
            _, data = parse_frame(text)
            snapshot = parse_partial_depth(data, book.client.name, book.instrument_id)
        except MarketDataError as exc:
            logger.warning("%s: partial depth frame skipped: %s", book.instrument_id, exc)
            return []
        if book.partial_id is not None and snapshot.update_id < book.partial_id:
            return []  # a late frame (e.g. of the connection a rotation is leaving)
        book.partial_id = snapshot.update_id
        out: list[Event] = [snapshot]
        bid = snapshot.bids[0] if snapshot.bids else None
        ask = snapshot.asks[0] if snapshot.asks else None
        if (bid, ask) != book.top:
            book.top = (bid, ask)
            out.append(
                TopOfBook(
                    client=book.client.name,
                    instrument_id=book.instrument_id,
                    update_id=snapshot.update_id,
                    bid_price=None if bid is None else bid[0],
                    bid_size=None if bid is None else bid[1],
                    ask_price=None if ask is None else ask[0],
                    ask_size=None if ask is None else ask[1],
                )
            )
        return out

    # ------------------------------------------------------------------------ snapshots

    def _ask(self, book: _Book) -> RestRequest:
        self._calls += 1
        book.asking = (
            f"{self.name}:{book.client.name}:{book.instrument_id}:{book.generation}:{self._calls}"
        )
        return RestRequest(
            client=book.client.name,
            call_id=book.asking,
            method="GET",
            path=_DEPTH_PATH[book.client.account_type],
            params={"symbol": book.symbol, "limit": str(book.snapshot_limit)},
        )

    def _snapshot(self, response: RestResponse) -> list[Event]:
        book = next((b for b in self.books.values() if b.asking == response.call_id), None)
        if book is None or book.sync is None:
            return []  # an answer for a book since replaced or dropped
        book.asking = None
        sync = book.sync
        if response.outcome != "ok":
            outcome = sync.snapshot_failed(response.message or f"HTTP {response.status}")
        else:
            try:
                snapshot = parse_depth_snapshot(response.body)
                _decimal_levels(snapshot.bids)  # Binance's notation, before the book takes it
                _decimal_levels(snapshot.asks)
            except ValueError as exc:
                outcome = sync.snapshot_failed(f"snapshot not understood: {exc}")
            else:
                outcome = sync.apply_snapshot(snapshot)
        if type(outcome) is Synced:
            return self._synced(book, outcome)
        if type(outcome) is NeedSnapshot:
            return self._need(book, outcome.reason, outcome.attempts, book.published_id)
        if type(outcome) is SnapshotTooOld:
            return self._need(book, outcome.reason, outcome.attempts, None)
        return []

    def _synced(self, book: _Book, synced: Synced) -> list[Event]:
        assert book.sync is not None
        try:
            # The snapshot's levels were checked; the buffered diffs replayed onto it were not.
            bids, asks = (_decimal_levels(side) for side in book.sync.book.levels())
        except ValueError as exc:
            return self._discard(book, f"malformed depth diff replayed at sync: {exc}")
        book.published_id = synced.update_id
        book.stale_reported = False
        book.top = (None, None)
        out: list[Event] = [
            BookSnapshot(
                client=book.client.name,
                instrument_id=book.instrument_id,
                update_id=synced.update_id,
                bids=bids,
                asks=asks,
            ),
            BookResynced(
                client=book.client.name,
                instrument_id=book.instrument_id,
                update_id=synced.update_id,
                attempts=synced.attempts,
            ),
        ]
        top = self._top(book, synced.update_id)
        if top is not None:
            out.append(top)
        return out

    def _need(
        self,
        book: _Book,
        reason: str,
        attempts: int,
        update_id: int | None,
        *,
        now: bool = False,
    ) -> list[Event]:
        out: list[Event] = []
        if not book.stale_reported:
            book.stale_reported = True
            book.top = (None, None)
            out.append(
                BookStale(
                    client=book.client.name,
                    instrument_id=book.instrument_id,
                    reason=reason,
                    update_id=update_id,
                )
            )
        if attempts >= FAILURES_REPORTED_AT and (
            attempts == FAILURES_REPORTED_AT or attempts & (attempts - 1) == 0
        ):
            out.append(
                BookSyncFailed(
                    client=book.client.name,
                    instrument_id=book.instrument_id,
                    attempts=attempts,
                    reason=reason,
                )
            )
        if book.asking is not None or book.waiting:
            return out
        if attempts == 0:
            # A fresh fault: ask at once when a diff after it is buffered (a gap); after a
            # lost connection, once the next diff arrives (the Buffered branch), so that the
            # snapshot is taken after the stream resumed.
            if now:
                out.append(self._ask(book))
            return out
        delay = min(BACKOFF_INITIAL_MS * 2 ** min(attempts - 1, 20), BACKOFF_MAX_MS)
        delay -= int(delay * 0.2 * self.rng.random())
        book.waiting = True
        out.append(
            ScheduleTimer(owner=self.name, name=self._timer_name(book), delay_ms=max(delay, 1))
        )
        return out

    def _timer_name(self, book: _Book) -> str:
        return f"snapshot:{book.client.name}:{book.instrument_id}:{book.generation}"

    def _timer(self, fired: TimerFired) -> list[Event]:
        for book in self.books.values():
            if self._timer_name(book) == fired.name:
                book.waiting = False
                # Only with diffs buffered since the stream came back: a snapshot with none
                # would sync at once, proven by nothing, while the stream may still be down.
                # Otherwise the next buffered diff asks.
                if book.asking is None and book.sync is not None and book.sync.buffered:
                    return [self._ask(book)]
        return []

    def _remember_lost(self, client: str, connection: str) -> None:
        self.lost[(client, connection)] = None
        if len(self.lost) > _LOST_KEPT:
            del self.lost[next(iter(self.lost))]

    def _interrupt(self, books: list[_Book], reason: str) -> list[Event]:
        out: list[Event] = []
        for book in books:
            if book.sync is None:
                continue
            outcome = book.sync.stream_interrupted(reason)
            book.asking = None  # an answer to a snapshot asked before the loss is useless
            out.extend(self._need(book, outcome.reason, outcome.attempts, book.published_id))
        return out
