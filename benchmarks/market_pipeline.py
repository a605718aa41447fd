"""The market-data pipeline end to end: a depth frame arrives at connectivity -> journaled ->
book sync -> its events journaled -> the strategy's callback.

A session-like setup in one process, on one trio thread: a file journal in a temporary
directory with the default ``per_batch`` fsync, the bus, the
:class:`~actors.connectivity.ConnectivityActor`'s frame pump, the
:class:`~actors.book_sync.BookSyncActor`, the :class:`~actors.market_data.MarketDataActor`
(which sees every frame, as in a session, and skips the depth ones) and a small strategy, each
under :class:`~actors.fold.FoldRunner` as a session runs them. Nothing talks to a venue:

* frames are injected at the connectivity boundary exactly as a
  :class:`~actors.binance.streams.StreamClient` hands them over: a
  :class:`~events.connectivity.StreamFrame` (``received_ns`` stamped with the session clock
  at injection) put into the actor's bounded frames channel with ``send_nowait``; the
  actor's own pump (``_pump_frames``) drains the channel into the bus. Only the pump runs
  (no stream or REST clients): it is the connectivity actor's whole per-frame path;
* the benchmark answers book sync's snapshot requests itself, publishing the
  :class:`~events.connectivity.RestResponse` (a 1000-level-a-side depth body) as the
  connectivity actor would.

The feed: :data:`SPOT_BOOKS` Spot and :data:`FUTURES_BOOKS` USD-M instruments, each with its
own full-depth book (``<symbol>@depth@100ms``) synced from its snapshot, then chained
``depthUpdate`` frames of about 17 level changes (a quarter removals) from
:func:`benchmarks.book_feed.feed` (Spot frames rechained on ``U``, without ``pu``/``T``),
in the combined-stream form ``{"stream": ..., "data": ...}``, the instruments interleaved
round by round in a shuffled order.

Latency is measured from the frame's ``received_ns`` to the moment the strategy's
``on_book_deltas`` is entered for the ``book.deltas`` that frame produced, both read from the
session clock. The strategy stays deterministic: it hands each event to a probe the benchmark
supplied, which reads the clock outside the fold's state. The latency is split into stages
(:data:`STAGES`) by the two records' journal times and the moment book sync's handle began. A
paced run also reports latency from each frame's *scheduled* arrival, which counts the time a
frame would have waited in the socket because the loop was too busy to read it.

Two runs:

* :func:`pipeline_throughput`: closed loop, at most :data:`WINDOW` frames in flight, for
  :data:`UNPACED_S` (warm-up included); end-to-end frames/s (frames whose
  ``on_book_deltas`` ran, per second);
* :func:`pipeline_p99_us`: frames paced at :data:`RATE` a second (injected at every
  scheduler wake-up, about every millisecond, as socket reads would) for :data:`PACED_S`
  after :data:`WARM_UP_S`; p99 latency in µs. A run that cannot keep up stops once
  :data:`MAX_BACKLOG_S` of frames wait, and reports what it measured until then.

Each run also prints the CPU a frame took on the trio thread and what the garbage collector
cost (``--gc`` shows the difference it makes).

Usage: ``python -m benchmarks.market_pipeline [--rate R] [--seconds S] [--runs N]
[--only paced|unpaced] [--gc session|plain|freeze|off] [--profile paced|unpaced]``.
"""

from __future__ import annotations

import argparse
import array
import functools
import gc
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio

from actors.base import ActorContext
from actors.binance.market_data import stream_name
from actors.book_sync import NAME as BOOK_SYNC
from actors.book_sync import BookSyncActor
from actors.bus import Bus, Subscription
from actors.clock import LiveClock
from actors.config import AccountType, ClientConfig
from actors.connectivity import NAME as CONNECTIVITY
from actors.connectivity import ConnectivityActor
from actors.fold import FoldRunner
from actors.market_data import MarketDataActor
from actors.runtime import freeze_survivors
from actors.strategy import Strategy
from benchmarks import book_feed
from events.base import Envelope, Event
from events.connectivity import RestRequest, RestResponse, StreamFrame, SubscribeStreams
from events.journal import FsyncPolicy, open_file_store
from events.market import BookDeltas, BookResynced, DataKind, TopOfBook
from events.system import SessionStarted

#: Instruments per product, and distinct generated books they share (generating is slow).
SPOT_BOOKS = 200
FUTURES_BOOKS = 200
SEEDS = 16
#: Frames per instrument (the first is buffered before the book syncs).
FRAMES_PER_BOOK = 320
#: The paced rate, the warm-up of every run and the measured time of a paced one.
RATE = 25_000
WARM_UP_S = 0.5
PACED_S = 2.5
#: A paced run stops early once this many seconds of frames wait (it cannot keep up).
MAX_BACKLOG_S = 0.5
#: The closed loop: frames in flight at most, and how long it runs (warm-up included).
WINDOW = 4096
UNPACED_S = 3.0
#: Frames a stream connection carries (connection names only).
STREAMS_PER_CONNECTION = 200

SPOT = ClientConfig(name="spot", account_type=AccountType.SPOT)
USDM = ClientConfig(name="usdm", account_type=AccountType.USDT_FUTURES)
_SUFFIX = {AccountType.SPOT: ".BINANCE", AccountType.USDT_FUTURES: "-PERP.BINANCE"}


# ------------------------------------------------------------------------------ the feed


@attrs.frozen
class _Book:
    client: str
    instrument_id: str
    symbol: str
    connection: str
    snapshot: str


@attrs.frozen(eq=False)
class Feed:
    """The books and every frame in injection order (round 0: one frame per book)."""

    books: tuple[_Book, ...]
    #: (client, connection, text) per frame.
    frames: tuple[tuple[str, str, str], ...]
    #: Instrument id -> update id ``u`` -> frame index (ints only: nothing for the garbage
    #: collector to traverse, which a dict of tuples would be).
    index: dict[str, dict[int, int]]
    changes_per_frame: float
    bytes_per_frame: float


def _instrument_frames(
    config: ClientConfig, symbol: str, snapshot: bytes, frames: Sequence[bytes]
) -> tuple[str, list[str]]:
    """The snapshot body and the frame texts of one instrument, in its product's form."""
    stream = stream_name(DataKind.BOOK, symbol, config.account_type)
    head = f'{{"stream":"{stream}","data":'
    spot = config.account_type is AccountType.SPOT
    body = orjson.loads(snapshot)
    if spot:
        body = {key: body[key] for key in ("lastUpdateId", "bids", "asks")}
    previous = body["lastUpdateId"]
    texts = []
    for frame in frames:
        data = orjson.loads(frame)
        data["s"] = symbol
        if spot:  # chained on U = previous u + 1; no pu, no T
            data = {
                "e": "depthUpdate",
                "E": data["E"],
                "s": symbol,
                "U": previous + 1,
                "u": data["u"],
                "b": data["b"],
                "a": data["a"],
            }
        previous = data["u"]
        texts.append(head + orjson.dumps(data).decode() + "}")
    return orjson.dumps(body).decode(), texts


@functools.cache
def make_feed(
    spot: int = SPOT_BOOKS, futures: int = FUTURES_BOOKS, frames_per_book: int = FRAMES_PER_BOOK
) -> Feed:
    """The seeded feed (the same every call)."""
    books: list[_Book] = []
    per_book: list[list[str]] = []
    for config, count in ((SPOT, spot), (USDM, futures)):
        for number in range(count):
            symbol = f"S{number:04d}USDT"
            snapshot, stream = book_feed.feed(frames_per_book, seed=number % SEEDS)
            body, texts = _instrument_frames(config, symbol, snapshot, stream)
            books.append(
                _Book(
                    client=config.name,
                    instrument_id=symbol + _SUFFIX[config.account_type],
                    symbol=symbol,
                    connection=f"{config.name}-market#{1 + number // STREAMS_PER_CONNECTION}",
                    snapshot=body,
                )
            )
            per_book.append(texts)
    rng = random.Random(20260702)
    order = list(range(len(books)))
    frames: list[tuple[str, str, str]] = []
    index: dict[str, dict[int, int]] = {book.instrument_id: {} for book in books}
    changes = 0
    size = 0
    for round_ in range(frames_per_book):
        rng.shuffle(order)
        for number in order:
            book = books[number]
            text = per_book[number][round_]
            data = orjson.loads(text)["data"]
            index[book.instrument_id][data["u"]] = len(frames)
            frames.append((book.client, book.connection, text))
            changes += len(data["b"]) + len(data["a"])
            size += len(text)
    return Feed(
        books=tuple(books),
        frames=tuple(frames),
        index=index,
        changes_per_frame=changes / len(frames),
        bytes_per_frame=size / len(frames),
    )


# --------------------------------------------------------------------------- the session


class _ProbeStrategy(Strategy):
    """Subscribes every book at the start and counts what it gets; each ``book.deltas``
    callback also tells the benchmark's probe (which reads the clock outside the strategy's
    state, so the fold stays deterministic)."""

    def __init__(
        self,
        name: str,
        *,
        seed: int | str,
        params: dict[str, Any] | None = None,
        probe: Callable[[BookDeltas, int], None] = lambda event, ts_ns: None,
    ) -> None:
        super().__init__(name, seed=seed, params=params)
        self.probe = probe
        self.deltas = 0
        self.tops = 0

    def on_start(self, event: SessionStarted) -> None:
        for client, instrument_id in self.params["books"]:
            self.subscribe(DataKind.BOOK, instrument_id, client=client)

    def on_book_deltas(self, event: BookDeltas) -> None:
        self.probe(event, self.now_ns)
        self.deltas += 1

    def on_top_of_book(self, event: TopOfBook) -> None:
        self.tops += 1


class _TimedBookSync(BookSyncActor):
    """The book-sync actor, unchanged, with a probe told when each applied frame's handling
    began (``ts_ns``: the frame's journal commit time)."""

    def __init__(
        self,
        probe: Callable[[Sequence[Event], int, int], None],
        clock: Callable[[], int],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.probe = probe
        self.clock = clock

    def handle(self, envelope: Envelope) -> Sequence[Event]:
        began = self.clock()
        outputs = super().handle(envelope)
        if outputs and type(outputs[0]) is BookDeltas:
            self.probe(outputs, envelope.ts_ns, began)
        return outputs


#: The stages a frame's latency is split into, each ending at the named moment.
STAGES = (
    ("to journal", "the frame's commit began (channel, pump linger, writer busy)"),
    ("frame commit", "book sync began its handle (write + fsync + delivery + queue)"),
    ("book sync", "the book.deltas commit began (handle, publish, writer busy)"),
    ("deltas commit", "on_book_deltas ran (write + fsync + delivery + queue)"),
)


@attrs.define
class Run:
    """What one run measured (latencies in µs, over the measured frames)."""

    mode: str
    frames: int
    elapsed_s: float
    rate: float
    p50_us: float
    p99_us: float
    p999_us: float
    max_us: float
    #: Median and p99 µs of each of :data:`STAGES`.
    stages: tuple[tuple[float, float], ...]
    #: From the scheduled arrival (paced runs); None in the closed loop.
    scheduled_p50_us: float | None
    scheduled_p99_us: float | None
    #: A paced run stopped early: the backlog grew past :data:`MAX_BACKLOG_S` of frames.
    fell_behind: bool
    channel_full: int
    commits: int
    records: int
    tops: int
    journal_bytes_per_frame: float
    #: Subscribers that fell behind and re-read the journal: catch-ups each.
    catch_ups: dict[str, int]
    #: CPU a frame: the trio thread's, and the whole process's (the fsync thread too).
    loop_cpu_us: float
    process_cpu_us: float
    #: Garbage collections during the run, per generation, and the time they took.
    gc_runs: tuple[int, int, int]
    gc_s: float
    gc_max_ms: float
    setup_s: float

    def describe(self) -> str:
        behind = "; FELL BEHIND and stopped early" if self.fell_behind else ""
        lines = [
            f"{self.mode}: {self.rate:,.0f} frames/s end to end ({self.frames:,} frames in "
            f"{self.elapsed_s:.2f} s{behind})",
            f"  received -> on_book_deltas: p50 {self.p50_us / 1000:.2f} ms, p99 "
            f"{self.p99_us / 1000:.2f} ms, p99.9 {self.p999_us / 1000:.2f} ms, max "
            f"{self.max_us / 1000:.2f} ms",
        ]
        if self.scheduled_p99_us is not None:
            assert self.scheduled_p50_us is not None
            lines.append(
                f"  from the scheduled arrival: p50 {self.scheduled_p50_us / 1000:.2f} ms, "
                f"p99 {self.scheduled_p99_us / 1000:.2f} ms"
            )
        lines.append(
            "  stages p50/p99 ms: "
            + ", ".join(
                f"{name} {p50 / 1000:.2f}/{p99 / 1000:.2f}"
                for (name, _), (p50, p99) in zip(STAGES, self.stages, strict=True)
            )
        )
        lines.append(
            f"  {self.records:,} records in {self.commits:,} commits "
            f"({self.records / max(1, self.commits):,.0f} a commit), "
            f"{self.journal_bytes_per_frame:,.0f} journal bytes a frame; {self.tops:,} "
            f"book.top; frames channel full {self.channel_full} time(s); setup "
            f"{self.setup_s:.1f} s"
        )
        lines.append(
            f"  CPU a frame: {self.loop_cpu_us:,.1f} µs on the trio thread, "
            f"{self.process_cpu_us:,.1f} µs in the process (one free core: at most "
            f"{1e6 / self.loop_cpu_us:,.0f} frames/s); gc {self.gc_runs[0]}/{self.gc_runs[1]}/"
            f"{self.gc_runs[2]} collections, {self.gc_s * 1000:,.0f} ms, longest "
            f"{self.gc_max_ms:,.0f} ms"
        )
        if self.catch_ups:
            lines.append(f"  subscribers re-reading the journal (catch-ups): {self.catch_ups}")
        return "\n".join(lines)


def _quantile(values: Sequence[int], q: float) -> float:
    """``values`` sorted; nearest-rank quantile."""
    if not values:
        return float("nan")
    return float(values[min(len(values) - 1, int(q * len(values)))])


class _GcWatch:
    """Counts garbage collections and their time while installed."""

    def __init__(self) -> None:
        self.runs = [0, 0, 0]
        self.total = 0.0
        self.longest = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took = time.perf_counter() - self._began
        self.runs[info["generation"]] += 1
        self.total += took
        self.longest = max(self.longest, took)

    def __enter__(self) -> _GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


async def _session(
    feed: Feed,
    directory: Path,
    *,
    rate: float | None,
    seconds: float,
    collector: str,
    profiler: Any = None,
) -> Run:
    """One session: sync every book, then inject (paced at ``rate`` or closed loop)."""
    clock = LiveClock()
    now_ns = clock.now_ns
    total = len(feed.frames)
    # Per frame index: injected (received_ns), scheduled arrival, frame commit, book-sync
    # handle, book.deltas commit, strategy callback.
    # (Arrays, not lists: the collector does not traverse them, as it would not in a session.)
    received, scheduled, committed, handled, published, seen = (
        array.array("q", bytes(8 * total)) for _ in range(6)
    )
    index = feed.index
    progress = {"delivered": 0, "wake_at": total + 1}
    wake = trio.Event()

    def strategy_probe(event: BookDeltas, ts_ns: int) -> None:
        number = index[event.instrument_id][event.update_id]
        seen[number] = now_ns()
        published[number] = ts_ns
        delivered = progress["delivered"] = progress["delivered"] + 1
        if delivered >= progress["wake_at"]:
            wake.set()

    def book_probe(outputs: Sequence[Event], ts_ns: int, began: int) -> None:
        deltas = outputs[0]
        assert isinstance(deltas, BookDeltas)
        number = index[deltas.instrument_id][deltas.update_id]
        committed[number] = ts_ns
        handled[number] = began

    async def until_delivered(count: int) -> None:
        nonlocal wake
        wake = trio.Event()
        progress["wake_at"] = count
        if progress["delivered"] < count:
            await wake.wait()

    books = [[book.client, book.instrument_id] for book in feed.books]
    snapshots = {(book.client, book.symbol): book.snapshot for book in feed.books}
    clients = [SPOT, USDM]
    setup_started = time.perf_counter()
    with open_file_store(directory, fsync=FsyncPolicy.PER_BATCH) as store:
        bus = Bus(store, clock=clock)

        def context(name: str, session_seq: int) -> ActorContext:
            return ActorContext(
                name=name, bus=bus, clock=clock, session_seq=session_seq, rng=random.Random(name)
            )

        async def answer_snapshots(subscription: Subscription) -> None:
            """The connectivity actor's REST side, for book sync's snapshot requests."""
            async for envelope in subscription:
                request = envelope.event
                assert isinstance(request, RestRequest)
                response = RestResponse(
                    client=request.client,
                    call_id=request.call_id,
                    method=request.method,
                    path=request.path,
                    outcome="ok",
                    status=200,
                    body=snapshots[request.client, request.params["symbol"]],
                    latency_us=1000,
                )
                await bus.publish([response], source=CONNECTIVITY)

        async def count(subscription: Subscription, kind: type[Event], wanted: int) -> None:
            found = 0
            async for envelope in subscription:
                if isinstance(envelope.event, kind):
                    found += 1
                    if found == wanted:
                        return

        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            session_seq = await bus.publish(
                [SessionStarted(session_id="bench", config={}, versions={}, pid=0)],
                source="runtime",
                durable=True,
            )
            assert session_seq is not None
            if collector == "session":
                freeze_survivors()  # where a session does: journal open, no actor yet
            setup = bus.subscribe(
                "bench-setup", tags=(SubscribeStreams.TAG, BookResynced.TAG), from_seq=session_seq
            )
            connectivity = ConnectivityActor(
                clients, user_data=False, checkpoint_s=None, rest_options={"environ": {}}
            )
            send, receive = trio.open_memory_channel[StreamFrame](connectivity.frame_buffer)
            connectivity._frames_send = send
            nursery.start_soon(
                connectivity._pump_frames, context(CONNECTIVITY, session_seq), receive
            )
            nursery.start_soon(
                answer_snapshots, bus.subscribe("bench-rest", tags=(RestRequest.TAG,))
            )
            book_sync = FoldRunner(
                lambda: _TimedBookSync(book_probe, now_ns, name=BOOK_SYNC, seed=0, clients=clients)
            )
            await nursery.start(book_sync.run, context(book_sync.name, session_seq))
            # As in a session: the market-data actor sees every frame too (and skips depth).
            market_data = FoldRunner(lambda: MarketDataActor(seed=0, clients=clients))
            await nursery.start(market_data.run, context(market_data.name, session_seq))
            strategy = FoldRunner(
                lambda: _ProbeStrategy(
                    "probe", seed=0, params={"books": books}, probe=strategy_probe
                )
            )
            await nursery.start(strategy.run, context(strategy.name, session_seq))
            probe_strategy = strategy.actor
            assert isinstance(probe_strategy, _ProbeStrategy)

            def inject(number: int) -> bool:
                client, connection, text = feed.frames[number]
                stamp = received[number] = now_ns()
                try:
                    send.send_nowait(
                        StreamFrame(
                            client=client, connection=connection, received_ns=stamp, text=text
                        )
                    )
                except trio.WouldBlock:
                    return False
                return True

            async def put(number: int) -> int:
                """Inject one frame as a StreamClient does. A full channel (a StreamClient
                would recycle its connection and report a gap) is counted and waited out,
                so that the books' chains stay whole."""
                if inject(number):
                    return 0
                client, connection, text = feed.frames[number]
                frame = StreamFrame(
                    client=client, connection=connection, received_ns=received[number], text=text
                )
                await send.send(frame)
                return 1

            # Every book subscribed; its first frame buffered, then its snapshot asked for.
            first = len(feed.books)
            with trio.fail_after(60):
                await count(setup, SubscribeStreams, first)
                for number in range(first):
                    await put(number)
                await count(setup, BookResynced, first)
            setup.close()
            setup_s = time.perf_counter() - setup_started

            stats_before = bus.statistics()
            bytes_before = _journal_bytes(directory)
            loop_cpu = time.thread_time()
            process_cpu = time.process_time()
            full = 0
            fell_behind = False
            number = first
            if collector == "freeze":
                gc.collect()
                gc.freeze()
            elif collector == "off":
                gc.disable()
            if profiler is not None:
                profiler.enable()
            with _GcWatch() as collections:
                if rate is not None:
                    last = min(total, first + int(rate * (WARM_UP_S + seconds)))
                    measured_from = first + int(rate * WARM_UP_S)
                    backlog = int(rate * MAX_BACKLOG_S)
                    started = time.perf_counter()
                    started_ns = now_ns()
                    step_ns = 1e9 / rate
                    while number < last:
                        if number - first - progress["delivered"] > backlog:
                            fell_behind = True
                            break
                        due = min(last, first + 1 + int((time.perf_counter() - started) * rate))
                        while number < due:
                            scheduled[number] = started_ns + int((number - first) * step_ns)
                            full += await put(number)
                            number += 1
                        wait = (number - first) / rate - (time.perf_counter() - started)
                        await trio.sleep(max(wait, 0.0))
                else:
                    measured_from = 0
                    started = time.perf_counter()
                    while number < total and time.perf_counter() - started < seconds:
                        if not measured_from and time.perf_counter() - started >= WARM_UP_S:
                            measured_from = number
                        while number < total and number - first - progress["delivered"] < WINDOW:
                            full += await put(number)
                            number += 1
                        await until_delivered(number - first - WINDOW // 2)
                last = number
                if not first < measured_from < last:
                    measured_from = first
                with trio.fail_after(60):
                    await until_delivered(last - first)
            if profiler is not None:
                profiler.disable()
            loop_cpu = time.thread_time() - loop_cpu
            gc.unfreeze()
            gc.enable()
            process_cpu = time.process_time() - process_cpu
            stats = bus.statistics()
            nursery.cancel_scope.cancel()
        bus.close()
        journal_bytes = _journal_bytes(directory) - bytes_before
    injected = last - first
    window = range(measured_from, last)
    latencies = sorted(seen[i] - received[i] for i in window)
    elapsed = (max(seen[i] for i in window) - received[measured_from]) / 1e9
    late = sorted(seen[i] - scheduled[i] for i in window) if rate is not None else []
    stages = []
    for begin, end in ((received, committed), (committed, handled), (handled, published)):
        spans = sorted(end[i] - begin[i] for i in window)
        stages.append((_quantile(spans, 0.5) / 1000, _quantile(spans, 0.99) / 1000))
    spans = sorted(seen[i] - published[i] for i in window)
    stages.append((_quantile(spans, 0.5) / 1000, _quantile(spans, 0.99) / 1000))
    return Run(
        mode=f"paced at {rate:,.0f} frames/s" if rate is not None else "closed loop (unpaced)",
        frames=len(window),
        elapsed_s=elapsed,
        rate=len(window) / elapsed,
        p50_us=_quantile(latencies, 0.5) / 1000,
        p99_us=_quantile(latencies, 0.99) / 1000,
        p999_us=_quantile(latencies, 0.999) / 1000,
        max_us=latencies[-1] / 1000,
        stages=tuple(stages),
        scheduled_p50_us=_quantile(late, 0.5) / 1000 if late else None,
        scheduled_p99_us=_quantile(late, 0.99) / 1000 if late else None,
        fell_behind=fell_behind,
        channel_full=full,
        commits=stats.batches - stats_before.batches,
        records=stats.records - stats_before.records,
        tops=probe_strategy.tops,
        journal_bytes_per_frame=journal_bytes / injected,
        catch_ups={sub.name: sub.catch_ups for sub in stats.subscriptions if sub.catch_ups},
        loop_cpu_us=loop_cpu / injected * 1e6,
        process_cpu_us=process_cpu / injected * 1e6,
        gc_runs=(collections.runs[0], collections.runs[1], collections.runs[2]),
        gc_s=collections.total,
        gc_max_ms=collections.longest * 1000,
        setup_s=setup_s,
    )


def _journal_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.glob("*") if path.is_file())


def run(
    *,
    rate: float | None,
    seconds: float | None = None,
    feed: Feed | None = None,
    collector: str = "session",
    profiler: Any = None,
) -> Run:
    """One run in a fresh temporary journal: paced at ``rate`` for ``seconds`` after the
    warm-up, or (``rate`` None) closed loop for ``seconds`` including it.

    ``collector``: ``session`` does what ``tern run`` does
    (:func:`actors.runtime.freeze_survivors` once the journal is open, before any actor);
    ``plain`` leaves the collector alone (a session run without ``settle_collector``);
    ``freeze`` freezes once the books are synced too; ``off`` disables it while frames flow
    (to see what it costs).
    """
    logging.getLogger("tern").setLevel(logging.WARNING)
    feed = feed if feed is not None else make_feed()
    if seconds is None:
        seconds = PACED_S if rate is not None else UNPACED_S
    with tempfile.TemporaryDirectory(prefix="tern-bench-", dir=".") as tmp:
        return trio.run(
            functools.partial(
                _session,
                feed,
                Path(tmp) / "journal",
                rate=rate,
                seconds=seconds,
                collector=collector,
                profiler=profiler,
            )
        )


def pipeline_throughput() -> float:
    """End-to-end frames/s, closed loop (see the module docstring)."""
    return run(rate=None).rate


def pipeline_p99_us() -> float:
    """p99 µs from a frame's ``received_ns`` to its strategy callback, paced at RATE/s."""
    return run(rate=RATE).p99_us


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.market_pipeline")
    parser.add_argument("--rate", type=float, default=RATE, help="paced frames/s")
    parser.add_argument("--seconds", type=float, help="measured seconds of each run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("paced", "unpaced"), help="one kind of run")
    parser.add_argument(
        "--gc",
        choices=("session", "plain", "freeze", "off"),
        default="session",
        help="the garbage collector while frames flow (see run())",
    )
    parser.add_argument(
        "--profile",
        choices=("paced", "unpaced"),
        help="one run with cProfile on while frames flow (setup excluded) instead",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    feed = make_feed()
    print(
        f"{len(feed.books)} books ({SPOT_BOOKS} Spot, {FUTURES_BOOKS} USD-M), "
        f"{len(feed.frames):,} frames, {feed.changes_per_frame:.1f} changes and "
        f"{feed.bytes_per_frame:,.0f} bytes a frame (generated in "
        f"{time.perf_counter() - started:.1f} s)"
    )
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        result = run(
            rate=args.rate if args.profile == "paced" else None,
            seconds=args.seconds,
            feed=feed,
            collector=args.gc,
            profiler=profiler,
        )
        print(result.describe())
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return
    unpaced: list[Run] = []
    paced: list[Run] = []
    for _ in range(args.runs):
        if args.only != "paced":
            unpaced.append(run(rate=None, seconds=args.seconds, feed=feed, collector=args.gc))
            print(unpaced[-1].describe())
        if args.only != "unpaced":
            paced.append(run(rate=args.rate, seconds=args.seconds, feed=feed, collector=args.gc))
            print(paced[-1].describe())
    if unpaced:
        rates = sorted(r.rate for r in unpaced)
        print(
            f"median of {len(rates)}: {statistics.median(rates):,.0f} frames/s closed loop "
            f"(runs {', '.join(f'{r:,.0f}' for r in rates)})"
        )
    if paced:
        p99s = sorted(r.p99_us / 1000 for r in paced)
        print(
            f"median of {len(p99s)} at {args.rate:,.0f} frames/s: p50 "
            f"{statistics.median(r.p50_us for r in paced) / 1000:.2f} ms, p99 "
            f"{statistics.median(p99s):.2f} ms (runs {', '.join(f'{p:.2f}' for p in p99s)}), "
            f"{statistics.median(r.rate for r in paced):,.0f} frames/s delivered"
        )


if __name__ == "__main__":
    main()
