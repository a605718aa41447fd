"""The book-sync actor as a fold: subscriptions, depth frames and snapshots in, book events out.

Frames are built here as Binance sends them on a combined stream (``{"stream", "data"}``),
snapshots as REST bodies answering the actor's own ``rest.request`` call ids. No network.
The property tests drive the actor through random interleavings of market moves, lost,
late and duplicated frames, good, old, failed and malformed snapshots, disconnects, gaps,
timers and resubscriptions, and compare the book its events describe with the true book.
"""

from __future__ import annotations

import itertools
import logging
import math
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.binance.book import SyncState
from actors.book_sync import (
    BACKOFF_INITIAL_MS,
    BACKOFF_MAX_MS,
    FAILURES_REPORTED_AT,
    NAME,
    BookSyncActor,
)
from actors.config import AccountType, ClientConfig
from actors.projections.book import BookView
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

SPOT = ClientConfig(name="spot", account_type=AccountType.SPOT)
USDM = ClientConfig(name="usdm", account_type=AccountType.USDT_FUTURES)
COINM = ClientConfig(name="coinm", account_type=AccountType.COIN_FUTURES)
SPOT_ID = "BTCUSDT.BINANCE"
PERP_ID = "BTCUSDT-PERP.BINANCE"
COIN_ID = "BTCUSD-PERP.BINANCE"
STREAM = "btcusdt@depth@100ms"

Level = tuple[str, str]


# ------------------------------------------------------------------------------ harness


def depth_data(
    symbol: str,
    first: int,
    last: int,
    bids: tuple[Level, ...] | list[Any] = (),
    asks: tuple[Level, ...] | list[Any] = (),
    *,
    pu: int | None = None,
) -> dict[str, Any]:
    """A ``depthUpdate`` payload; futures ones (``pu`` given) carry ``pu`` and ``T``."""
    data: dict[str, Any] = {"e": "depthUpdate", "E": 1_700_000_000_000 + last, "s": symbol}
    if pu is not None:
        data["T"] = 1_700_000_000_000 + last
    data |= {"U": first, "u": last}
    if pu is not None:
        data["pu"] = pu
    data |= {"b": [list(level) for level in bids], "a": [list(level) for level in asks]}
    return data


def wrap(stream: str, data: Any) -> str:
    return orjson.dumps({"stream": stream, "data": data}).decode()


def snapshot_body(
    update_id: int, bids: tuple[Level, ...] | list[Any], asks: tuple[Level, ...] | list[Any]
) -> str:
    return orjson.dumps(
        {
            "lastUpdateId": update_id,
            "bids": [list(b) for b in bids],
            "asks": [list(a) for a in asks],
        }
    ).decode()


def of(kind: type, events: list[Event]) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


def tags(events: list[Event]) -> list[str]:
    return [event.TAG for event in events]


def dec(levels: tuple[Level, ...] | list[Level]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(price), Decimal(size)) for price, size in levels)


class Fold:
    """Feeds envelopes to the actor the way its runner does, and keeps them."""

    def __init__(self, *clients: ClientConfig, seed: int = 0) -> None:
        self.actor = BookSyncActor(clients=clients or (SPOT, USDM, COINM), seed=seed)
        self.seq = 0
        self.envelopes: list[Envelope] = []

    def feed(self, event: Event) -> list[Event]:
        self.seq += 1
        envelope = Envelope(
            seq=self.seq, ts_ns=self.seq * 1_000_000, source="x", cause=None, event=event
        )
        self.envelopes.append(envelope)
        return list(self.actor.handle(envelope))

    def subscribe(
        self,
        subscriber: str = "s1",
        instrument_id: str = SPOT_ID,
        client: str = "spot",
        **options: Any,
    ) -> list[Event]:
        return self.feed(
            SubscribeMarketData(
                client=client,
                subscriber=subscriber,
                instrument_id=instrument_id,
                kind=DataKind.BOOK,
                **options,
            )
        )

    def unsubscribe(
        self, subscriber: str = "s1", instrument_id: str = SPOT_ID, client: str = "spot"
    ) -> list[Event]:
        return self.feed(
            UnsubscribeMarketData(
                client=client,
                subscriber=subscriber,
                instrument_id=instrument_id,
                kind=DataKind.BOOK,
            )
        )

    def frame(self, text: str, *, client: str = "spot", connection: str = "c1") -> list[Event]:
        return self.feed(
            StreamFrame(client=client, connection=connection, received_ns=self.seq, text=text)
        )

    def diff(
        self,
        first: int,
        last: int,
        bids: tuple[Level, ...] = (),
        asks: tuple[Level, ...] = (),
        *,
        symbol: str = "BTCUSDT",
        stream: str = STREAM,
        pu: int | None = None,
        client: str = "spot",
        connection: str = "c1",
    ) -> list[Event]:
        data = depth_data(symbol, first, last, bids, asks, pu=pu)
        return self.frame(wrap(stream, data), client=client, connection=connection)

    def answer(
        self,
        request: RestRequest,
        update_id: int = 0,
        bids: tuple[Level, ...] = (),
        asks: tuple[Level, ...] = (),
        *,
        outcome: str = "ok",
        body: str | None = None,
        message: str = "",
    ) -> list[Event]:
        if body is None:
            body = snapshot_body(update_id, bids, asks) if outcome == "ok" else ""
        return self.feed(
            RestResponse(
                client=request.client,
                call_id=request.call_id,
                method=request.method,
                path=request.path,
                outcome=outcome,
                status=200 if outcome == "ok" else 503,
                body=body,
                message=message,
            )
        )

    def fail(self, request: RestRequest) -> list[Event]:
        return self.answer(request, outcome="unknown", message="Service Unavailable")

    def fire(self, timer: ScheduleTimer, count: int = 1) -> list[Event]:
        return self.feed(TimerFired(owner=timer.owner, name=timer.name, count=count))


BIDS: tuple[Level, ...] = (("100.00", "1.000"), ("99.00", "2.000"), ("98.00", "4.000"))
ASKS: tuple[Level, ...] = (("101.00", "1.500"), ("102.00", "3.000"))


def synced(fold: Fold) -> RestRequest:
    """Subscribe s1 to the Spot book and sync it at 101 (snapshot 100 + diff 101)."""
    fold.subscribe()
    (request,) = of(RestRequest, fold.diff(101, 101, bids=(("100.00", "1.500"),)))
    out = fold.answer(request, 100, BIDS, ASKS)
    assert tags(out) == ["book.snapshot", "book.resynced", "book.top"]
    return request


# ------------------------------------------------------------------------ subscriptions


@pytest.mark.parametrize(
    ("client", "instrument_id", "options", "stream"),
    [
        ("spot", SPOT_ID, {}, "btcusdt@depth@100ms"),
        ("spot", SPOT_ID, {"speed_ms": 1000}, "btcusdt@depth"),
        ("spot", SPOT_ID, {"speed_ms": 0}, "btcusdt@depth@100ms"),
        ("spot", SPOT_ID, {"depth": 20, "speed_ms": 1000}, "btcusdt@depth20"),
        ("usdm", PERP_ID, {}, "btcusdt@depth@100ms"),
        ("usdm", PERP_ID, {"speed_ms": 250}, "btcusdt@depth"),
        ("usdm", PERP_ID, {"speed_ms": 500}, "btcusdt@depth@500ms"),
        ("usdm", "BTCUSDT_250926.BINANCE", {"depth": 5}, "btcusdt_250926@depth5@100ms"),
        ("coinm", COIN_ID, {}, "btcusd_perp@depth@100ms"),
    ],
)
def test_the_first_subscriber_subscribes_the_stream_once(
    client: str, instrument_id: str, options: dict[str, Any], stream: str
) -> None:
    fold = Fold()
    assert fold.subscribe("s1", instrument_id, client, **options) == [
        SubscribeStreams(client=client, subscriber=NAME, streams=(stream,))
    ]
    assert fold.subscribe("s2", instrument_id, client, **options) == []
    assert fold.subscribe("s1", instrument_id, client, **options) == []  # idempotent
    assert fold.unsubscribe("s1", instrument_id, client) == []
    assert fold.unsubscribe("s1", instrument_id, client) == []  # already gone
    assert fold.unsubscribe("s2", instrument_id, client) == [
        UnsubscribeStreams(client=client, subscriber=NAME, streams=(stream,))
    ]
    assert fold.unsubscribe("s2", instrument_id, client) == []
    assert fold.actor.books == {}
    assert fold.actor.by_stream == {}


def test_other_kinds_and_unknown_books_are_not_ours() -> None:
    fold = Fold()
    trades = SubscribeMarketData(
        client="spot", subscriber="s1", instrument_id=SPOT_ID, kind=DataKind.TRADES
    )
    assert fold.feed(trades) == []
    untrades = UnsubscribeMarketData(
        client="spot", subscriber="s1", instrument_id=SPOT_ID, kind=DataKind.TRADES
    )
    assert fold.feed(untrades) == []
    assert fold.unsubscribe("s1", "ETHUSDT.BINANCE") == []
    assert fold.unsubscribe("s1", SPOT_ID, "nobody") == []
    assert fold.actor.books == {}


def test_the_latest_subscription_type_wins_and_subscribers_are_carried() -> None:
    fold = Fold()
    fold.subscribe("s1")
    (request,) = of(RestRequest, fold.diff(101, 101))
    out = fold.subscribe("s2", depth=10)
    assert out == [
        UnsubscribeStreams(client="spot", subscriber=NAME, streams=(STREAM,)),
        SubscribeStreams(client="spot", subscriber=NAME, streams=("btcusdt@depth10@100ms",)),
    ]
    # The full book's frames and snapshot no longer matter.
    assert fold.diff(102, 102) == []
    assert fold.answer(request, 100, BIDS, ASKS) == []
    partial = wrap("btcusdt@depth10@100ms", {"lastUpdateId": 7, "bids": [], "asks": []})
    assert tags(fold.frame(partial)) == ["book.snapshot"]
    # Both subscribers hold the partial book now; the last one out unsubscribes it.
    assert fold.unsubscribe("s1") == []
    assert fold.unsubscribe("s2") == [
        UnsubscribeStreams(client="spot", subscriber=NAME, streams=("btcusdt@depth10@100ms",))
    ]
    # Back to the full book: a fresh one, which asks for its own snapshot.
    assert fold.subscribe("s3") == [
        SubscribeStreams(client="spot", subscriber=NAME, streams=(STREAM,))
    ]
    (again,) = of(RestRequest, fold.diff(103, 103))
    assert again.call_id != request.call_id


def test_a_new_snapshot_limit_replaces_the_book() -> None:
    fold = Fold()
    fold.subscribe("s1")
    (request,) = of(RestRequest, fold.diff(101, 101))
    assert request.params["limit"] == "5000"
    assert fold.subscribe("s2", snapshot_limit=5000) == []  # the same book
    out = fold.subscribe("s2", snapshot_limit=100)
    assert out == [
        UnsubscribeStreams(client="spot", subscriber=NAME, streams=(STREAM,)),
        SubscribeStreams(client="spot", subscriber=NAME, streams=(STREAM,)),
    ]
    assert fold.answer(request, 100, BIDS, ASKS) == []  # for the replaced book
    (request,) = of(RestRequest, fold.diff(102, 102))
    assert request.params == {"symbol": "BTCUSDT", "limit": "100"}
    assert tags(fold.answer(request, 101, BIDS, ASKS)) == [
        "book.snapshot",
        "book.resynced",
        "book.top",
    ]
    assert fold.unsubscribe("s1") == []
    assert of(UnsubscribeStreams, fold.unsubscribe("s2"))


def test_replacing_a_synced_book_says_it_is_stale() -> None:
    """Until the new subscription's book is synced, the published one is no longer kept."""
    fold = Fold()
    synced(fold)
    out = fold.subscribe("s2", speed_ms=1000)
    assert tags(out) == ["book.stale", "stream.unsubscribe", "stream.subscribe"]
    (stale,) = of(BookStale, out)
    assert stale.update_id == 101
    assert "btcusdt@depth" in stale.reason
    # One report for the episode: the new book's failures do not repeat it.
    (request,) = of(RestRequest, fold.diff(102, 102, stream="btcusdt@depth"))
    assert tags(fold.fail(request)) == ["timer.schedule"]


@pytest.mark.parametrize(
    ("client", "instrument_id", "options", "path", "params"),
    [
        ("spot", SPOT_ID, {}, "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "5000"}),
        ("spot", SPOT_ID, {"snapshot_limit": 100}, "/api/v3/depth", {"limit": "100"}),
        ("usdm", PERP_ID, {}, "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "1000"}),
        ("usdm", PERP_ID, {"snapshot_limit": 50}, "/fapi/v1/depth", {"limit": "50"}),
        ("coinm", COIN_ID, {}, "/dapi/v1/depth", {"symbol": "BTCUSD_PERP", "limit": "1000"}),
    ],
)
def test_the_first_buffered_diff_asks_for_exactly_one_snapshot(
    client: str, instrument_id: str, options: dict[str, Any], path: str, params: dict[str, str]
) -> None:
    fold = Fold()
    fold.subscribe("s1", instrument_id, client, **options)
    params = {"symbol": "BTCUSDT", **params}
    symbol = params["symbol"]
    stream = f"{symbol.lower()}@depth@100ms"
    futures = client != "spot"
    first = fold.diff(
        101, 105, symbol=symbol, stream=stream, client=client, pu=100 if futures else None
    )
    (request,) = first
    assert isinstance(request, RestRequest)
    assert (request.client, request.method, request.path, request.params) == (
        client,
        "GET",
        path,
        params,
    )
    assert request.call_id.startswith(f"{NAME}:")
    # More diffs while the snapshot is in flight ask for nothing more.
    for n in range(106, 110):
        assert fold.diff(n, n, symbol=symbol, stream=stream, client=client, pu=n - 1) == []


# ------------------------------------------------------------------------- in sync


def test_a_snapshot_publishes_the_book_then_diffs_publish_exact_deltas() -> None:
    fold = Fold()
    fold.subscribe()
    (request,) = of(RestRequest, fold.diff(99, 100, bids=(("100.00", "7.000"),)))
    assert fold.diff(101, 101, bids=(("100.00", "1.500"),)) == []  # buffered
    out = fold.answer(request, 100, BIDS, ASKS)
    snapshot, resynced, top = out
    # The snapshot at 100 plus the buffered 101 (the 99..100 diff is in the snapshot).
    assert snapshot == BookSnapshot(
        client="spot",
        instrument_id=SPOT_ID,
        update_id=101,
        bids=dec([("100.00", "1.500"), ("99.00", "2.000"), ("98.00", "4.000")]),
        asks=dec(ASKS),
    )
    assert resynced == BookResynced(client="spot", instrument_id=SPOT_ID, update_id=101, attempts=1)
    assert top == TopOfBook(
        client="spot",
        instrument_id=SPOT_ID,
        update_id=101,
        bid_price=Decimal("100.00"),
        bid_size=Decimal("1.500"),
        ask_price=Decimal("101.00"),
        ask_size=Decimal("1.500"),
    )
    # A diff removing the best ask: deltas exactly as sent, and a new top.
    out = fold.diff(102, 103, bids=(("97.50", "0.00100000"),), asks=(("101.00", "0.000"),))
    deltas, top = out
    assert deltas == BookDeltas(
        client="spot",
        instrument_id=SPOT_ID,
        first_update_id=102,
        update_id=103,
        bids=((Decimal("97.50"), Decimal("0.00100000")),),
        asks=((Decimal("101.00"), Decimal("0.000")),),
        ts_event_ms=1_700_000_000_103,
    )
    assert str(deltas.bids[0][1]) == "0.00100000"
    assert (top.update_id, top.ask_price, top.ask_size) == (103, Decimal("102.00"), Decimal("3"))
    assert (top.bid_price, top.bid_size) == (Decimal("100.00"), Decimal("1.5"))
    # A deeper level changes: deltas only.
    assert tags(fold.diff(104, 104, bids=(("99.00", "0"),))) == ["book.deltas"]
    # An overlapping diff (U below the book + 1, u above) applies; its best bid size changed.
    out = fold.diff(103, 105, bids=(("100.00", "2.000"),))
    assert tags(out) == ["book.deltas", "book.top"]
    assert out[1].bid_size == Decimal("2.000")
    # Duplicates and late diffs change nothing.
    assert fold.diff(104, 104, bids=(("99.00", "5"),)) == []
    assert fold.diff(105, 105) == []
    # A diff emptying a whole side: the top says None.
    out = fold.diff(106, 106, asks=(("102.00", "0"),))
    assert (out[1].ask_price, out[1].ask_size) == (None, None)
    sync = fold.actor.books[("spot", SPOT_ID)].sync
    assert sync is not None
    assert sync.update_id == 106


def test_a_rotation_duplicates_frames_without_harm() -> None:
    fold = Fold()
    synced(fold)
    assert tags(fold.diff(102, 102, bids=(("99.50", "1"),), connection="c1")) == ["book.deltas"]
    assert fold.diff(102, 102, bids=(("99.50", "1"),), connection="c2") == []
    rotated = StreamDisconnected(
        client="spot", connection="c1", reason="rotated", reconnect_in_ms=None
    )
    assert fold.feed(rotated) == []
    assert tags(fold.diff(103, 103, bids=(("99.50", "2"),), connection="c2")) == ["book.deltas"]


def test_futures_chain_on_pu() -> None:
    fold = Fold()
    fold.subscribe("s1", PERP_ID, "usdm")

    def diff(first: int, last: int, pu: int, bids: tuple[Level, ...] = ()) -> list[Event]:
        return fold.diff(first, last, bids, client="usdm", pu=pu)

    (request,) = of(RestRequest, diff(90, 95, 80))
    assert diff(120, 130, 95, (("100.00", "3.0"),)) == []  # ids jump: fine on futures
    out = fold.answer(request, 125, BIDS, ASKS)
    # 90..95 is in the snapshot; 120..130 straddles it and is replayed.
    assert tags(out) == ["book.snapshot", "book.resynced", "book.top"]
    assert out[0].update_id == 130
    assert out[0].bids[0] == (Decimal("100.00"), Decimal("3.0"))
    assert tags(diff(140, 150, 130, (("99.00", "1"),))) == ["book.deltas"]
    assert diff(131, 150, 130) == []  # already in the book (u <= 150)
    out = diff(160, 170, 155)  # pu 155: the diff ending at 155 was lost
    assert tags(out) == ["book.stale", "rest.request"]
    assert out[0].update_id == 150
    assert out[1].path == "/fapi/v1/depth"


# ------------------------------------------------------------------------ stale and resync


def test_a_gap_is_reported_once_and_a_snapshot_asked_at_once() -> None:
    fold = Fold()
    first = synced(fold)
    assert tags(fold.diff(102, 102)) == ["book.deltas"]
    out = fold.diff(104, 104, bids=(("97.00", "1"),))  # 103 lost
    stale, request = out
    assert isinstance(stale, BookStale)
    assert isinstance(request, RestRequest)
    assert stale.update_id == 102
    assert "gap" in stale.reason
    assert request.call_id != first.call_id
    # Not in sync: nothing published, nothing more asked, no second report.
    assert fold.diff(105, 105) == []
    assert fold.diff(107, 107) == []  # another loss while waiting: the buffer restarts
    assert fold.actor.books[("spot", SPOT_ID)].stale_reported
    # A snapshot too old for the restarted buffer: backoff (it counts as an attempt).
    out = fold.answer(request, 105, BIDS, ASKS)
    assert tags(out) == ["timer.schedule"]
    (timer,) = out
    assert fold.diff(108, 108) == []  # waiting out the backoff: no snapshot asked
    (request,) = fold.fire(timer)
    out = fold.answer(request, 107, BIDS, ASKS)
    assert tags(out) == ["book.snapshot", "book.resynced", "book.top"]
    assert (out[0].update_id, out[1].attempts) == (108, 2)
    # In sync again: the next loss is a new episode, reported again.
    assert tags(fold.diff(110, 110)) == ["book.stale", "rest.request"]


def test_a_first_diff_that_does_not_fit_the_snapshot_is_a_gap() -> None:
    fold = Fold()
    fold.subscribe()
    (request,) = of(RestRequest, fold.diff(200, 200))
    # A snapshot newer than everything buffered syncs at once...
    assert tags(fold.answer(request, 300, BIDS, ASKS)) == [
        "book.snapshot",
        "book.resynced",
        "book.top",
    ]
    # ...and the first live diff must fit it: this one starts past 301.
    out = fold.diff(305, 306)
    assert tags(out) == ["book.stale", "timer.schedule"]  # the snapshot was not proven


def test_failed_snapshots_back_off_doubling_capped_with_jitter() -> None:
    fold = Fold(seed=3)
    fold.subscribe()
    (request,) = of(RestRequest, fold.diff(101, 101))
    ratios = set()
    timers = set()
    for attempt in range(1, 41):
        out = fold.fail(request)
        expected = min(BACKOFF_INITIAL_MS * 2 ** (attempt - 1), BACKOFF_MAX_MS)
        (timer,) = of(ScheduleTimer, out)
        assert timer.owner == NAME
        assert timer.interval_ms is None
        assert math.ceil(expected * 0.8) <= timer.delay_ms <= expected
        ratios.add(timer.delay_ms / expected)
        timers.add(timer.name)
        assert bool(of(BookStale, out)) == (attempt == 1)
        failed = of(BookSyncFailed, out)
        reported = attempt == FAILURES_REPORTED_AT or (
            attempt > FAILURES_REPORTED_AT and attempt & (attempt - 1) == 0
        )
        assert [f.attempts for f in failed] == ([attempt] if reported else [])
        if failed:
            assert "Service Unavailable" in failed[0].reason
        # Diffs while waiting ask for nothing; the timer does.
        assert fold.diff(101 + attempt, 101 + attempt) == []
        assert fold.feed(TimerFired(owner="someone", name=timer.name, count=1)) == []
        (request,) = fold.fire(timer)
        assert isinstance(request, RestRequest)
    assert len(ratios) > 10  # jitter, not a constant
    assert len(timers) == 1  # one timer name per book
    out = fold.answer(request, 141, BIDS, ASKS)
    assert tags(out) == ["book.snapshot", "book.resynced", "book.top"]
    assert out[1].attempts == 41


@pytest.mark.parametrize(
    ("outcome", "body", "reason"),
    [
        ("failed", "", "snapshot failed"),
        ("rejected", '{"code":-1121,"msg":"Invalid symbol."}', "snapshot failed"),
        ("ok", "<html>busy</html>", "not understood"),
        ("ok", '{"code":-1121,"msg":"Invalid symbol."}', "not understood"),
        ("ok", "[1, 2]", "not understood"),
        ("ok", '{"lastUpdateId": 100, "bids": [], "asks": []}', "empty snapshot"),
        ("ok", '{"lastUpdateId": 100, "bids": [["abc", "1"]], "asks": []}', "'abc' is not a"),
        # Numbers float() and Decimal() read but Binance never writes.
        ("ok", '{"lastUpdateId": 100, "bids": [[" 100.00", "1"]], "asks": []}', "' 100.00'"),
        ("ok", '{"lastUpdateId": 100, "bids": [["100.00", "1_0"]], "asks": []}', "'1_0'"),
        ("ok", '{"lastUpdateId": 100, "bids": [], "asks": [["1e2", "1"]]}', "'1e2'"),
        ("ok", '{"lastUpdateId": 100, "bids": [], "asks": [["101.00", "-0"]]}', "'-0'"),
        ("ok", '{"lastUpdateId": 100, "bids": [["1", "2", "3"]], "asks": []}', "not understood"),
        ("ok", '{"lastUpdateId": "100", "bids": [], "asks": [["1", "1"]]}', "not understood"),
        ("ok", '{"lastUpdateId": 50, "bids": [["1", "1"]], "asks": []}', "does not reach"),
    ],
)
def test_every_kind_of_bad_snapshot_is_a_failed_attempt(
    outcome: str, body: str, reason: str
) -> None:
    fold = Fold()
    fold.subscribe()
    (request,) = of(RestRequest, fold.diff(101, 101))
    out = fold.answer(request, outcome=outcome, body=body, message="nope")
    assert tags(out) == ["book.stale", "timer.schedule"]
    assert reason in out[0].reason
    assert out[0].update_id is None
    assert out[1].delay_ms <= BACKOFF_INITIAL_MS
    assert fold.answer(request, 101, BIDS, ASKS) == []  # the call is answered already
    (request,) = fold.fire(out[1])
    assert tags(fold.answer(request, 100, BIDS, ASKS))[1] == "book.resynced"


def test_stale_answers_are_ignored() -> None:
    fold = Fold()
    fold.subscribe()
    (first,) = of(RestRequest, fold.diff(101, 101))
    # A reconnect planned for the book's connection: the snapshot in flight is useless.
    lost = StreamDisconnected(
        client="spot", connection="c1", reason="closed 1006", code=1006, reconnect_in_ms=800
    )
    out = fold.feed(lost)
    assert tags(out) == ["book.stale"]
    assert "connection c1 lost: closed 1006" in out[0].reason
    assert fold.answer(first, 100, BIDS, ASKS) == []
    # The snapshot is asked once the stream delivers again, then syncs.
    (second,) = of(RestRequest, fold.diff(105, 105, connection="c2"))
    assert second.call_id != first.call_id
    assert fold.answer(first, 104, BIDS, ASKS) == []
    assert tags(fold.answer(second, 104, BIDS, ASKS))[:2] == ["book.snapshot", "book.resynced"]
    assert fold.answer(second, 104, BIDS, ASKS) == []  # a duplicate answer
    # Answers for a dropped book, and call ids that were never ours.
    fold.unsubscribe()
    assert fold.answer(second, 104, BIDS, ASKS) == []
    stray = attrs.evolve(second, call_id=f"{NAME}:spot:{SPOT_ID}:9:99")
    assert fold.answer(stray, 104, BIDS, ASKS) == []
    other = attrs.evolve(second, call_id="market-data:h:x:1")
    assert fold.answer(other, 104, BIDS, ASKS) == []


def test_a_lost_connection_makes_a_synced_book_stale_and_a_rotation_does_not() -> None:
    fold = Fold()
    synced(fold)

    def disconnected(connection: str, reconnect_in_ms: int | None, client: str = "spot") -> Any:
        return StreamDisconnected(
            client=client, connection=connection, reason="x", reconnect_in_ms=reconnect_in_ms
        )

    assert fold.feed(disconnected("c1", None)) == []
    assert fold.feed(disconnected("c9", 500)) == []  # not the book's connection
    assert fold.feed(disconnected("c1", 500, client="usdm")) == []
    assert tags(fold.diff(102, 102)) == ["book.deltas"]
    out = fold.feed(disconnected("c1", 500))
    assert tags(out) == ["book.stale"]
    assert out[0].update_id == 102
    assert fold.feed(disconnected("c1", 500)) == []  # already stale: once per episode
    # The next diff (on the new connection) asks for the snapshot; nothing is replayed
    # from before the loss.
    (request,) = of(RestRequest, fold.diff(110, 110, connection="c2"))
    out = fold.answer(request, 109, BIDS, ASKS)
    assert tags(out) == ["book.snapshot", "book.resynced", "book.top"]
    assert out[1].attempts == 1
    book = fold.actor.books[("spot", SPOT_ID)]
    assert book.connection == "c2"


def test_a_stream_gap_naming_the_stream_makes_the_book_stale() -> None:
    fold = Fold()
    synced(fold)

    def gap(*streams: str, client: str = "spot") -> StreamGap:
        return StreamGap(
            client=client, connection="c1", streams=streams, from_ns=1, to_ns=2, reason="slow"
        )

    assert fold.feed(gap("btcusdt@trade", "ethusdt@depth@100ms")) == []
    assert fold.feed(gap(STREAM, client="usdm")) == []
    out = fold.feed(gap("btcusdt@trade", STREAM))
    assert tags(out) == ["book.stale"]
    assert "frames lost (slow)" in out[0].reason
    assert fold.feed(gap(STREAM)) == []  # once per episode
    assert tags(fold.diff(103, 103)) == ["rest.request"]  # asked once the stream resumes


def test_frames_of_other_streams_and_clients_are_ignored() -> None:
    fold = Fold()
    synced(fold)
    change = (("100.00", "9"),)
    assert fold.diff(102, 102, change, stream="ethusdt@depth@100ms", symbol="ETHUSDT") == []
    assert fold.diff(102, 102, change, client="usdm") == []
    assert fold.diff(102, 102, change, stream="btcusdt@depth") == []
    raw = orjson.dumps(depth_data("BTCUSDT", 102, 102, change)).decode()  # a /ws payload
    assert fold.frame(raw) == []
    assert fold.frame('{"result":null,"id":1}') == []
    assert tags(fold.diff(102, 102, change)) == ["book.deltas", "book.top"]


MALFORMED = [
    STREAM.join(('{"stream":"', '","data":')) + "not json",
    wrap(STREAM, [1, 2]),
    wrap(STREAM, "text"),
    wrap(STREAM, {**depth_data("BTCUSDT", 102, 102), "e": "trade"}),
    wrap(STREAM, depth_data("ETHUSDT", 102, 102)),
    wrap(STREAM, {k: v for k, v in depth_data("BTCUSDT", 102, 102).items() if k != "U"}),
    wrap(STREAM, {**depth_data("BTCUSDT", 102, 102), "U": "102"}),
    wrap(STREAM, depth_data("BTCUSDT", 103, 102)),
    wrap(STREAM, {**depth_data("BTCUSDT", 103, 103), "b": None}),
    wrap(STREAM, {**depth_data("BTCUSDT", 103, 103), "E": "now"}),
    wrap(STREAM, depth_data("BTCUSDT", 108, 108, bids=[["1", "2", "3"]])),
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_frames_are_skipped(text: str, caplog: pytest.LogCaptureFixture) -> None:
    fold = Fold()
    fold.subscribe()
    with caplog.at_level(logging.WARNING, logger="tern.book_sync"):
        assert fold.frame(text) == []  # while buffering
    assert "depth frame skipped" in caplog.text
    (request,) = of(RestRequest, fold.diff(101, 101))
    fold.answer(request, 100, BIDS, ASKS)
    assert fold.frame(text) == []  # in sync
    assert tags(fold.diff(102, 102, bids=(("99.00", "1"),))) == ["book.deltas"]


def test_a_level_that_is_not_a_number_makes_the_book_stale() -> None:
    fold = Fold()
    synced(fold)
    out = fold.diff(102, 102, bids=(("abc", "1"),))
    # A counted attempt (the snapshot's, which the diff that proved it had cleared, and this
    # one): a backoff, never an immediate snapshot that the next bad diff would waste.
    assert tags(out) == ["book.stale", "timer.schedule"]
    assert "malformed" in out[0].reason
    assert out[0].update_id == 101  # the last id published; nothing of 102 was
    for levels in ([["100.00", "1", "2"]], None, "100", [["100.00", "-1"]], [["0", "1"]]):
        fold = Fold()
        synced(fold)
        data = {**depth_data("BTCUSDT", 102, 102), "b": levels}
        assert tags(fold.frame(wrap(STREAM, data))) == ["book.stale", "timer.schedule"], levels


#: Numbers ``float()`` and ``Decimal()`` read (the book takes them) but Binance never writes.
NOT_BINANCE_NUMBERS = [" 99.00", "99.00 ", "9_9.00", "+99.00", "9.9e1", "\u0669\u0669", "-0"]


@pytest.mark.parametrize(
    ("where", "text"),
    [("size", text) for text in NOT_BINANCE_NUMBERS]
    # "-0" is no positive price: the book itself refuses it (the test above).
    + [("price", text) for text in NOT_BINANCE_NUMBERS if text != "-0"],
)
def test_a_level_outside_binances_notation_makes_the_book_stale_and_publishes_nothing(
    where: str, text: str
) -> None:
    level = (text, "1.000") if where == "price" else ("99.00", text)
    fold = Fold()
    synced(fold)
    out = fold.diff(102, 102, bids=(level,))
    assert tags(out) == ["book.stale", "timer.schedule"]
    assert "malformed depth diff 102..102" in out[0].reason
    assert repr(text) in out[0].reason
    assert out[0].update_id == 101  # the last id published; nothing of 102 was
    assert fold.actor.books[("spot", SPOT_ID)].sync.book.depth == (0, 0)
    # A counted attempt: the timer waits, then the next diff asks and the book resyncs.
    assert fold.fire(out[1]) == []
    (request,) = of(RestRequest, fold.diff(103, 103))
    assert tags(fold.answer(request, 102, BIDS, ASKS))[:2] == ["book.snapshot", "book.resynced"]


def test_a_buffered_diff_outside_binances_notation_is_caught_when_buffered() -> None:
    # Waiting for the first snapshot: the diff would be replayed into the book at sync.
    fold = Fold()
    fold.subscribe()
    out = fold.diff(101, 101, bids=(("99.00", "1_000"),))
    assert tags(out) == ["book.stale", "timer.schedule"]
    assert "'1_000'" in out[0].reason
    assert out[0].update_id is None  # nothing was ever published
    assert fold.actor.books[("spot", SPOT_ID)].sync.buffered == 0
    # The diff that reveals a gap is buffered too.
    fold = Fold()
    synced(fold)
    out = fold.diff(105, 105, asks=(("101.00", "+1"),))
    assert tags(out) == ["book.stale", "timer.schedule"]
    assert "'+1'" in out[0].reason
    assert out[0].update_id == 101
    assert fold.actor.books[("spot", SPOT_ID)].sync.buffered == 0


@pytest.mark.parametrize("bad", [("99.00", "1_0"), ("abc", "1")])
def test_a_venue_that_keeps_sending_bad_levels_meets_a_growing_backoff(bad: Level) -> None:
    """Each resync ends on a diff with a bad level: the attempts keep counting (the proof of
    a snapshot by that very diff does not reset them), so the backoff grows and
    book.sync_failed says so."""
    fold = Fold()
    synced(fold)
    update_id, delays, failed = 101, [], []
    for _ in range(5):  # attempts 1 to 5: below the backoff's cap
        update_id += 1
        out = fold.diff(update_id, update_id, bids=(bad,))
        failed += of(BookSyncFailed, out)
        (timer,) = of(ScheduleTimer, out)
        delays.append(timer.delay_ms)
        assert fold.fire(timer) == []  # nothing buffered since: the next diff asks
        update_id += 1
        (request,) = of(RestRequest, fold.diff(update_id, update_id))
        assert tags(fold.answer(request, update_id - 1, BIDS, ASKS))[1] == "book.resynced"
    assert all(later > earlier for earlier, later in itertools.pairwise(delays)), delays
    assert delays[-1] > 8 * BACKOFF_INITIAL_MS
    assert [event.attempts for event in failed] == [3, 4]


# ----------------------------------------------------------------------- partial depth


def test_spot_partial_depth_frames_are_snapshots() -> None:
    fold = Fold()
    stream = "btcusdt@depth5@100ms"
    assert of(SubscribeStreams, fold.subscribe(depth=5)) == [
        SubscribeStreams(client="spot", subscriber=NAME, streams=(stream,))
    ]

    def frame(update_id: int, bids: list[Level], asks: list[Level]) -> list[Event]:
        payload = {"lastUpdateId": update_id, "bids": bids, "asks": asks}
        return fold.frame(wrap(stream, payload))

    out = frame(160, [("100.0", "1"), ("99.0", "2")], [("101.0", "3")])
    assert out == [
        BookSnapshot(
            client="spot",
            instrument_id=SPOT_ID,
            update_id=160,
            bids=dec([("100.0", "1"), ("99.0", "2")]),
            asks=dec([("101.0", "3")]),
        ),
        TopOfBook(
            client="spot",
            instrument_id=SPOT_ID,
            update_id=160,
            bid_price=Decimal("100.0"),
            bid_size=Decimal("1"),
            ask_price=Decimal("101.0"),
            ask_size=Decimal("3"),
        ),
    ]
    # The same top: a snapshot only.
    assert tags(frame(161, [("100.0", "1"), ("98.0", "2")], [("101.0", "3")])) == ["book.snapshot"]
    out = frame(162, [], [("101.0", "4")])
    assert tags(out) == ["book.snapshot", "book.top"]
    assert (out[1].bid_price, out[1].ask_size) == (None, Decimal("4"))
    # Malformed frames are skipped; a partial book has no sync to lose.
    assert fold.frame(wrap(stream, {"lastUpdateId": "x", "bids": [], "asks": []})) == []
    assert fold.frame(wrap(stream, {"lastUpdateId": 1, "bids": [["a", "1"]], "asks": []})) == []
    assert fold.frame(STREAM.join(('{"stream":"', '", "data": oops'))) == []
    assert fold.frame(wrap(stream, [])) == []
    lost = StreamDisconnected(client="spot", connection="c1", reason="x", reconnect_in_ms=1)
    assert fold.feed(lost) == []
    gap = StreamGap(
        client="spot", connection="c1", streams=(stream,), from_ns=0, to_ns=1, reason=""
    )
    assert fold.feed(gap) == []


def test_futures_partial_depth_frames_are_depth_update_shaped() -> None:
    fold = Fold()
    stream = "btcusdt@depth10@500ms"
    fold.subscribe("s1", PERP_ID, "usdm", depth=10, speed_ms=500)
    data = depth_data("BTCUSDT", 1000, 1010, [("100.10", "1.5")], [("100.20", "2.5")], pu=999)
    out = fold.frame(wrap(stream, data), client="usdm")
    assert out == [
        BookSnapshot(
            client="usdm",
            instrument_id=PERP_ID,
            update_id=1010,
            bids=dec([("100.10", "1.5")]),
            asks=dec([("100.20", "2.5")]),
            ts_event_ms=1_700_000_000_000 + 1010,
        ),
        TopOfBook(
            client="usdm",
            instrument_id=PERP_ID,
            update_id=1010,
            bid_price=Decimal("100.10"),
            bid_size=Decimal("1.5"),
            ask_price=Decimal("100.20"),
            ask_size=Decimal("2.5"),
        ),
    ]
    missing_time = {k: v for k, v in data.items() if k != "E"}
    assert fold.frame(wrap(stream, missing_time), client="usdm") == []


# ------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("client", "instrument_id", "options", "logged"),
    [
        ("nobody", SPOT_ID, {}, "unknown client 'nobody'"),
        ("spot", PERP_ID, {}, "perpetual"),
        ("spot", "BTCUSDT", {}, "not a Binance instrument id"),
        ("spot", ".BINANCE", {}, "not a Binance instrument id"),
        ("spot", SPOT_ID, {"depth": 7}, "depth"),
        ("spot", SPOT_ID, {"speed_ms": 250}, "depth streams run at"),
        ("usdm", PERP_ID, {"speed_ms": 1000}, "depth streams run at"),
    ],
)
def test_subscriptions_that_cannot_be_served_are_logged_and_refused(
    client: str,
    instrument_id: str,
    options: dict[str, Any],
    logged: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fold = Fold()
    with caplog.at_level(logging.ERROR, logger="tern.book_sync"):
        assert fold.subscribe("s1", instrument_id, client, **options) == []
    assert logged in caplog.text
    assert fold.actor.books == {}
    assert fold.actor.by_stream == {}


def test_a_timer_of_a_dropped_book_does_not_reach_its_successor() -> None:
    """A backoff timer outlives the book that set it; the next book of the instrument must
    not take it for its own (it would ask for a snapshot while in sync)."""
    fold = Fold()
    fold.subscribe()
    (request,) = of(RestRequest, fold.diff(101, 101))
    (timer,) = of(ScheduleTimer, fold.fail(request))
    fold.unsubscribe()
    fold.subscribe()
    (request,) = of(RestRequest, fold.diff(201, 201))
    assert tags(fold.answer(request, 200, BIDS, ASKS))[1] == "book.resynced"
    assert fold.fire(timer) == []
    assert tags(fold.diff(202, 202)) == ["book.deltas"]


# ---------------------------------------------------------------------------- property

BID_PRICES = ("99.90", "99.80", "99.70", "99.60", "99.50")
ASK_PRICES = ("100.10", "100.20", "100.30", "100.40", "100.50")
SIZES = ("0.00000000", "0.50000000", "1.00000000", "2.25000000", "0.00100000")
START_ID = 1000


@attrs.define
class _Diff:
    first: int
    last: int
    previous: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


class Simulation:
    """One instrument's true book, its diff stream, and two actors fed the same inputs.

    The true book is a sequence of atomic updates (one level each, ids counting up; futures
    skip ids between diffs). A diff covers consecutive updates with each changed level's
    final size, as Binance's do; a snapshot at any id is the true book at that id.
    """

    def __init__(self, account_type: AccountType) -> None:
        self.client = ClientConfig(name="c", account_type=account_type)
        self.futures = account_type is not AccountType.SPOT
        self.instrument_id = PERP_ID if self.futures else SPOT_ID
        self.actors = tuple(BookSyncActor(clients=[self.client], seed=5) for _ in range(2))
        self.seq = 0
        self.bids: dict[str, str] = {"99.90": "1.00000000", "99.70": "0.50000000"}
        self.asks: dict[str, str] = {"100.20": "2.25000000"}
        self.states: dict[int, tuple[dict[str, str], dict[str, str]]] = {
            START_ID: (dict(self.bids), dict(self.asks))
        }
        self.ids = [START_ID]  # every id a snapshot can be taken at, ascending
        self.last_id = START_ID
        self.diffs: list[_Diff] = []
        self.delivered = 0
        self.requests: list[RestRequest] = []
        self.answered: set[str] = set()
        self.timers: set[str] = set()
        self.connection = 1
        self.limit: int | None = None
        self.view = BookView(self.instrument_id, client="c")
        self.live = False
        self.stale = False
        self.top: tuple[Any, ...] = (None, None, None, None)
        self.subscribe()

    # -- feeding

    def feed(self, event: Event) -> list[Event]:
        self.seq += 1
        envelope = Envelope(
            seq=self.seq, ts_ns=self.seq * 1_000_000, source="x", cause=None, event=event
        )
        first, second = (list(actor.handle(envelope)) for actor in self.actors)
        assert first == second, "two actors fed the same inputs disagree"
        for event in first:
            self.observe(event)
        self.check()
        return first

    def observe(self, event: Event) -> None:
        if isinstance(event, RestRequest):
            expected = str(self.limit or (1000 if self.futures else 5000))
            assert event.params == {"symbol": "BTCUSDT", "limit": expected}
            self.requests.append(event)
        elif isinstance(event, ScheduleTimer):
            assert event.owner == NAME
            assert 1 <= event.delay_ms <= BACKOFF_MAX_MS
            self.timers.add(event.name)
        elif isinstance(event, BookStale):
            assert not self.stale, "book.stale twice in one episode"
            self.stale, self.live = True, False
            self.top = (None, None, None, None)
            self.view.apply(event)
        elif isinstance(event, BookSnapshot):
            self.view.apply(event)
        elif isinstance(event, BookResynced):
            assert event.update_id == self.view.update_id
            self.stale, self.live = False, True
            self.top = (None, None, None, None)
        elif isinstance(event, BookDeltas):
            assert self.live, "book.deltas between book.stale and book.resynced"
            # Futures replay the diff a snapshot falls in (U <= L <= u): u may equal L.
            assert event.update_id >= (self.view.update_id or 0)
            self.view.apply(event)
        elif isinstance(event, TopOfBook):
            assert self.live
            top = (event.bid_price, event.bid_size, event.ask_price, event.ask_size)
            assert top != self.top, "book.top without a change of the best levels"
            assert event.update_id == self.view.update_id
            self.top = top
        elif isinstance(event, BookSyncFailed):
            assert event.attempts >= FAILURES_REPORTED_AT
        else:
            assert isinstance(event, SubscribeStreams | UnsubscribeStreams), event

    def check(self) -> None:
        """The events describe the true book whenever they say it is in sync."""
        book = self.actors[0].books[("c", self.instrument_id)]
        assert book.sync is not None
        assert self.live == (book.sync.state is SyncState.SYNCED)
        if not self.live:
            return
        assert self.view.update_id == book.sync.update_id
        bids, asks = self.true_at(self.view.update_id)
        assert self.view.bids == {Decimal(p): Decimal(s) for p, s in bids.items()}
        assert self.view.asks == {Decimal(p): Decimal(s) for p, s in asks.items()}
        view_bids, view_asks = self.view.top(1)
        expected = (
            *(view_bids[0] if view_bids else (None, None)),
            *(view_asks[0] if view_asks else (None, None)),
        )
        assert self.top == expected, "book.top is behind the book"

    def true_at(self, update_id: int | None) -> tuple[dict[str, str], dict[str, str]]:
        assert update_id is not None
        return self.states[max(i for i in self.states if i <= update_id)]

    # -- the venue

    def subscribe(self, limit: int | None = None) -> None:
        self.limit = limit
        self.feed(
            SubscribeMarketData(
                client="c",
                subscriber="s",
                instrument_id=self.instrument_id,
                kind=DataKind.BOOK,
                snapshot_limit=limit,
            )
        )

    def move(self, updates: list[tuple[bool, int, int]], skip: int) -> None:
        """The market moves: ``updates`` (bid side?, price index, size index)."""
        previous = self.last_id
        first = previous + 1 + (skip if self.futures else 0)
        changed: tuple[dict[str, str], dict[str, str]] = ({}, {})
        for offset, (bid, price_index, size_index) in enumerate(updates):
            side = self.bids if bid else self.asks
            price = (BID_PRICES if bid else ASK_PRICES)[price_index]
            size = SIZES[size_index]
            if Decimal(size):
                side[price] = size
            else:
                side.pop(price, None)
            changed[0 if bid else 1][price] = size
            self.states[first + offset] = (dict(self.bids), dict(self.asks))
            self.ids.append(first + offset)
        self.last_id = first + len(updates) - 1
        self.diffs.append(
            _Diff(
                first=first,
                last=self.last_id,
                previous=previous,
                bids=tuple(changed[0].items()),
                asks=tuple(changed[1].items()),
            )
        )

    def send(self, diff: _Diff, connection: str | None = None) -> list[Event]:
        data = depth_data(
            "BTCUSDT",
            diff.first,
            diff.last,
            diff.bids,
            diff.asks,
            pu=diff.previous if self.futures else None,
        )
        return self.feed(
            StreamFrame(
                client="c",
                connection=connection or f"c{self.connection}",
                received_ns=self.seq,
                text=wrap(STREAM, data),
            )
        )

    def deliver(self) -> None:
        if self.delivered == len(self.diffs):
            self.move([(True, 0, 2)], 0)
        self.delivered += 1
        self.send(self.diffs[self.delivered - 1])

    def lose(self) -> None:
        if self.delivered < len(self.diffs):
            self.delivered += 1

    def redeliver(self, back: int, other: bool) -> None:
        if self.delivered:
            diff = self.diffs[max(0, self.delivered - back)]
            self.send(diff, f"c{self.connection + 1}" if other else None)

    def request(self, pick: int) -> RestRequest | None:
        waiting = [r for r in self.requests if r.call_id not in self.answered]
        pool = waiting or self.requests
        if not pool:
            return None
        request = pool[-1 - pick % len(pool)]
        self.answered.add(request.call_id)
        return request

    def respond(self, request: RestRequest, outcome: str, body: str) -> list[Event]:
        return self.feed(
            RestResponse(
                client=request.client,
                call_id=request.call_id,
                method=request.method,
                path=request.path,
                outcome=outcome,
                status=200 if outcome == "ok" else 0,
                body=body,
            )
        )

    def snapshot(self, pick: int, age: int) -> None:
        request = self.request(pick)
        if request is not None:
            update_id = self.ids[max(0, len(self.ids) - 1 - age)]
            self.respond(request, "ok", self.snapshot_body(update_id))

    def snapshot_body(self, update_id: int) -> str:
        bids, asks = self.true_at(update_id)
        return snapshot_body(
            update_id,
            sorted(bids.items(), key=lambda level: -Decimal(level[0])),
            sorted(asks.items(), key=lambda level: Decimal(level[0])),
        )

    def fail(self, pick: int, how: int) -> None:
        request = self.request(pick)
        if request is not None:
            outcome, body = [
                ("failed", ""),
                ("ok", "<html>"),
                ("ok", snapshot_body(self.last_id, [], [])),
                ("ok", snapshot_body(self.last_id, [["x", "1"]], [])),
            ][how]
            self.respond(request, outcome, body)

    def disconnect(self, planned: bool) -> None:
        self.feed(
            StreamDisconnected(
                client="c",
                connection=f"c{self.connection}",
                reason="closed",
                reconnect_in_ms=1000 if planned else None,
            )
        )
        self.connection += 1

    def gap(self) -> None:
        self.feed(
            StreamGap(
                client="c",
                connection=f"c{self.connection}",
                streams=(STREAM,),
                from_ns=0,
                to_ns=1,
                reason="slow consumer",
            )
        )

    def fire(self, pick: int) -> None:
        if self.timers:
            name = sorted(self.timers)[pick % len(self.timers)]
            self.timers.discard(name)
            self.feed(TimerFired(owner=NAME, name=name, count=1))

    def junk(self, which: int) -> None:
        self.feed(StreamFrame(client="c", connection="c1", received_ns=0, text=MALFORMED[which]))

    def resubscribe(self) -> None:
        self.subscribe(None if self.limit else 100)

    def run(self, actions: list[tuple[Any, ...]]) -> None:
        for name, *args in actions:
            getattr(self, name)(*args)
        self.converge()

    def converge(self) -> None:
        """Once the chaos stops, the book comes back in sync with the true book."""
        for _ in range(8):
            if self.live and self.view.update_id == self.last_id:
                break
            self.move([(False, 1, 1)], 1)
            while self.delivered < len(self.diffs):
                self.deliver()
            for _ in range(4):
                for request in [r for r in self.requests if r.call_id not in self.answered]:
                    self.answered.add(request.call_id)
                    self.respond(request, "ok", self.snapshot_body(self.last_id))
                for name in sorted(self.timers):
                    self.timers.discard(name)
                    self.feed(TimerFired(owner=NAME, name=name, count=1))
        assert self.live
        assert self.view.update_id == self.last_id


UPDATES = st.lists(
    st.tuples(st.booleans(), st.integers(0, len(BID_PRICES) - 1), st.integers(0, len(SIZES) - 1)),
    min_size=1,
    max_size=3,
)
#: Each action's strategy and its weight (how often it is drawn).
_ACTIONS: dict[str, tuple[int, st.SearchStrategy[tuple[Any, ...]]]] = {
    "deliver": (30, st.just(("deliver",))),
    "move": (6, st.tuples(st.just("move"), UPDATES, st.integers(0, 3))),
    "snapshot": (8, st.tuples(st.just("snapshot"), st.integers(0, 2), st.integers(0, 30))),
    "lose": (3, st.just(("lose",))),
    "redeliver": (3, st.tuples(st.just("redeliver"), st.integers(1, 4), st.booleans())),
    "fail": (2, st.tuples(st.just("fail"), st.integers(0, 2), st.integers(0, 3))),
    "fire": (3, st.tuples(st.just("fire"), st.integers(0, 3))),
    "disconnect": (1, st.tuples(st.just("disconnect"), st.booleans())),
    "gap": (1, st.just(("gap",))),
    "junk": (1, st.tuples(st.just("junk"), st.integers(0, len(MALFORMED) - 1))),
    "resubscribe": (1, st.just(("resubscribe",))),
}
ACTIONS = st.sampled_from(
    [name for name, (weight, _) in _ACTIONS.items() for _ in range(weight)]
).flatmap(lambda name: _ACTIONS[name][1])
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(actions=st.lists(ACTIONS, min_size=20, max_size=80))
def test_spot_book_events_describe_the_true_book(actions: list[tuple[Any, ...]]) -> None:
    Simulation(AccountType.SPOT).run(actions)


@PROPERTY
@given(actions=st.lists(ACTIONS, min_size=20, max_size=80))
def test_futures_book_events_describe_the_true_book(actions: list[tuple[Any, ...]]) -> None:
    Simulation(AccountType.USDT_FUTURES).run(actions)


def test_replaying_the_same_envelopes_gives_the_same_events() -> None:
    """Determinism over a whole journal, jitter included: a fresh actor re-folding the
    recorded envelopes publishes exactly what the first one did."""
    fold = Fold(seed=9)
    fold.subscribe()
    (request,) = of(RestRequest, fold.diff(101, 101))
    for attempt in range(6):
        (timer,) = of(ScheduleTimer, fold.fail(request))
        (request,) = fold.fire(timer)
        fold.diff(102 + attempt, 102 + attempt)
    fold.answer(request, 104, BIDS, ASKS)
    fold.diff(108, 108, bids=(("99.00", "0"),))
    fold.diff(110, 110)
    first, again = (BookSyncActor(clients=(SPOT, USDM, COINM), seed=9) for _ in range(2))
    original = [list(first.handle(envelope)) for envelope in fold.envelopes]
    replayed = [list(again.handle(envelope)) for envelope in fold.envelopes]
    assert replayed == original
    assert any(of(ScheduleTimer, out) for out in original)
    other_seed = BookSyncActor(clients=(SPOT, USDM, COINM), seed=10)
    delays = [
        [t.delay_ms for t in of(ScheduleTimer, list(other_seed.handle(envelope)))]
        for envelope in fold.envelopes
    ]
    assert delays != [[t.delay_ms for t in of(ScheduleTimer, out)] for out in original]


# ------------------------------------------------------------------ review findings


def test_resync_while_connection_is_down_via_backoff_timer() -> None:
    """A book in backoff whose connection then drops is not declared in sync by a snapshot
    taken while no stream connection exists: the timer waits for a diff after the loss."""
    fold = Fold()
    synced(fold)
    (ask,) = of(RestRequest, fold.diff(105, 105))  # a gap: stale, a snapshot asked at once
    (timer,) = of(ScheduleTimer, fold.fail(ask))  # it failed: backoff
    lost = StreamDisconnected(client="spot", connection="c1", reason="eof", reconnect_in_ms=5000)
    fold.feed(lost)
    assert of(RestRequest, fold.fire(timer)) == []  # no diff since the loss: nothing to prove
    (again,) = of(RestRequest, fold.diff(300, 301, connection="c2"))  # the stream is back
    out = fold.answer(again, 300, BIDS, ASKS)
    assert of(BookResynced, out)


def test_late_frame_of_a_dead_connection_triggers_resync_during_outage() -> None:
    """Frames of the connection still in connectivity's channel are journaled after its
    stream.disconnected (frames go through the pump, the disconnect is published directly)."""
    fold = Fold()
    synced(fold)
    fold.feed(
        StreamDisconnected(client="spot", connection="c1", reason="eof", reconnect_in_ms=5000)
    )
    out = fold.diff(102, 102, connection="c1")  # late frame of the dead connection
    asks = of(RestRequest, out)
    assert not asks, "a snapshot is asked for from a frame of a connection already lost"


def test_partial_to_full_change_reports_the_partial_book_stale() -> None:
    fold = Fold()
    fold.subscribe("s1", SPOT_ID, "spot", depth=5, speed_ms=100)
    fold.frame(
        wrap(
            "btcusdt@depth5@100ms",
            {"lastUpdateId": 50, "bids": [["100", "1"]], "asks": [["101", "1"]]},
        )
    )
    out = fold.subscribe("s1", SPOT_ID, "spot")  # now the full book
    view = BookView(SPOT_ID, "spot")
    for env in fold.envelopes:
        view.apply(env.event)
    for e in out:
        view.apply(e)
    # The partial stream is unsubscribed: its book at 50 is frozen and must not look in sync.
    assert of(BookStale, out) or view.stale is not None, (
        f"frozen partial book still in sync: {tags(out)}"
    )


def test_a_perpetual_has_one_id_so_two_books_never_share_a_stream() -> None:
    fold = Fold()
    fold.subscribe("a", PERP_ID, "usdm")  # BTCUSDT-PERP.BINANCE
    out = fold.subscribe("b", "BTCUSDT.BINANCE", "usdm")  # the same perpetual, wrongly named
    assert not of(SubscribeStreams, out)  # refused: BTCUSDT on USD-M is BTCUSDT-PERP.BINANCE
    out = fold.unsubscribe("b", "BTCUSDT.BINANCE", "usdm")
    assert not of(UnsubscribeStreams, out)  # 'a' keeps its stream


def test_partial_frames_out_of_order_do_not_roll_the_book_back() -> None:
    fold = Fold()
    fold.subscribe("s1", PERP_ID, "usdm", depth=5, speed_ms=100)

    def frame(u: int, bid: str) -> list:
        data = {
            "e": "depthUpdate",
            "E": u,
            "T": u,
            "s": "BTCUSDT",
            "U": u - 1,
            "u": u,
            "pu": u - 2,
            "b": [[bid, "1"]],
            "a": [["200", "1"]],
        }
        return fold.frame(wrap("btcusdt@depth5@100ms", data), client="usdm", connection="new")

    frame(10, "101")
    out = frame(9, "100")  # the old connection lags during a rotation
    snaps = of(BookSnapshot, out)
    assert not snaps or snaps[0].update_id >= 10, "book rolled back to update 9 after 10"
