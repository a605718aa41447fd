"""Frames per second through the exact order book: raw USD-M diff-depth frames into
:class:`~actors.binance.book.DepthSync`.

The feed is seeded and realistic in shape: a 1000-level-a-side REST snapshot of a BTCUSDT-like
perpetual (tick 0.1, sizes in lots of 0.001), then chained ``depthUpdate`` frames (``pu`` =
previous ``u``, ids advancing by a few between frames as on Binance futures) of about 17 level
changes each, about a quarter of them removals, mostly near the top of the book. The mid price
drifts in a random walk; a side that the mid moves into loses the levels it crosses, and the
other side fills in behind it, so the book stays uncrossed and about 1000 levels deep.

Three module-level functions take the same bytes that any other book implementation would,
so that libraries can be timed side by side on identical frames:

* :func:`reset` takes a REST depth response body (``{"lastUpdateId", "E", "T", "bids",
  "asks"}``);
* :func:`apply` takes one raw ``/ws`` frame (``{"e": "depthUpdate", "E", "T", "s", "U", "u",
  "pu", "b", "a"}``);
* :func:`top_of_book` returns the best ``n`` bids and asks, best first.

:func:`single_book` times :func:`apply` over the whole feed and then checks the book against
a plain Decimal-dict reference built from the same frames, and refuses to report a rate for a
book that differs.

:func:`book_feed` times a session's shape instead: :data:`BOOKS` books (their feeds drawn
from :data:`SEEDS` seeds, as in :mod:`benchmarks.market_pipeline`), each synced from its own
snapshot, and the same number of frames in all, interleaved round by round in a shuffled
order, so that consecutive frames touch different books (whose levels are no longer in the
CPU caches) and the garbage collector sees every book at once. Every book is verified against
its seed's reference. Both record what the garbage collector cost while frames were applied
(:data:`last_gc`; pauses timed through ``gc.callbacks``).

Usage: ``python -m benchmarks.book_feed [--frames N] [--books N] [--runs N] [--profile]``.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import gc
import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import orjson

from actors.binance.book import (
    Applied,
    DepthSync,
    OrderBook,
    SequenceRule,
    Synced,
    parse_depth_snapshot,
)

SYMBOL = "BTCUSDT"
FRAMES = 60_000
LEVELS = 1000
#: Levels changed per frame (on average), and the share of them that are removals.
CHANGES = 17
DELETE_SHARE = 0.25
#: Ticks (0.1) per price unit; sizes are whole lots of 0.001.
TICKS = 10
START_MID = 650_000  # 65000.0 in ticks
#: Books of :func:`book_feed`, and the distinct generated feeds they share.
BOOKS = 400
SEEDS = 16

#: The book under test; :func:`reset` replaces it.
_sync = DepthSync(SYMBOL, SequenceRule.FUTURES)


# ------------------------------------------------------------------ the functions compared


def reset(snapshot_bytes: bytes) -> None:
    """Start a fresh book from a REST depth response body."""
    global _sync
    _sync = DepthSync(SYMBOL, SequenceRule.FUTURES)
    outcome = _sync.apply_snapshot(parse_depth_snapshot(snapshot_bytes))
    if type(outcome) is not Synced:
        raise RuntimeError(f"the snapshot did not sync the book: {outcome}")


def apply(frame_bytes: bytes) -> None:
    """Apply one raw ``/ws`` USD-M ``depthUpdate`` frame."""
    outcome = _sync.apply_frame(frame_bytes)
    if type(outcome) is not Applied:
        raise RuntimeError(f"a feed frame was not applied: {outcome}")


def top_of_book(n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The best ``n`` bids and asks as ``(price, size)`` strings, best first."""
    return _sync.book.top(n)


# ------------------------------------------------------------------------------ the feed


def _price(ticks: int) -> str:
    return f"{ticks // TICKS}.{ticks % TICKS}"


def _size(lots: int) -> str:
    return f"{lots // 1000}.{lots % 1000:03d}"


def _lots(rng: random.Random) -> int:
    return max(1, int(rng.expovariate(1 / 800)))


class _Side:
    """The generator's own side: tick -> lots, and the occupied ticks in ascending order."""

    def __init__(self, ask: bool) -> None:
        self.ask = ask
        self.lots: dict[int, int] = {}
        self.ticks: list[int] = []

    def near_top(self, rng: random.Random) -> int:
        """An occupied tick, usually within a few dozen levels of the best."""
        rank = min(int(rng.expovariate(1 / 40)), len(self.ticks) - 1)
        return self.ticks[rank] if self.ask else self.ticks[-1 - rank]

    def set(self, tick: int, lots: int) -> None:
        if tick not in self.lots:
            bisect.insort(self.ticks, tick)
        self.lots[tick] = lots

    def remove(self, tick: int) -> None:
        del self.lots[tick]
        del self.ticks[bisect.bisect_left(self.ticks, tick)]


@functools.cache
def feed(frames: int = FRAMES, seed: int = 20260702) -> tuple[bytes, tuple[bytes, ...]]:
    """The snapshot body and ``frames`` chained frames, always the same for the same seed."""
    rng = random.Random(seed)
    mid = START_MID
    # Bids below the mid, asks at or above it, about two ticks in three occupied.
    bids, asks = _Side(ask=False), _Side(ask=True)
    tick = mid - 1
    while len(bids.lots) < LEVELS:
        if rng.random() < 0.67:
            bids.set(tick, _lots(rng))
        tick -= 1
    tick = mid
    while len(asks.lots) < LEVELS:
        if rng.random() < 0.67:
            asks.set(tick, _lots(rng))
        tick += 1
    update_id = 8_000_000_000
    time_ms = 1_767_225_600_000
    snapshot = orjson.dumps(
        {
            "lastUpdateId": update_id,
            "E": time_ms,
            "T": time_ms - 1,
            "bids": [[_price(t), _size(bids.lots[t])] for t in reversed(bids.ticks)],
            "asks": [[_price(t), _size(asks.lots[t])] for t in asks.ticks],
        }
    )
    out = []
    previous = update_id
    for _ in range(frames):
        changes: dict[tuple[str, int], int] = {}
        # The mid drifts; the levels it crosses are removed, as the matching engine would.
        if rng.random() < 0.2:
            mid += rng.choice((-1, 1))
            while asks.ticks and asks.ticks[0] < mid:
                changes["a", asks.ticks[0]] = 0
                asks.remove(asks.ticks[0])
            while bids.ticks and bids.ticks[-1] >= mid:
                changes["b", bids.ticks[-1]] = 0
                bids.remove(bids.ticks[-1])
        for _ in range(rng.randint(CHANGES - 6, CHANGES + 6) - len(changes)):
            name = rng.choice("ba")
            side = bids if name == "b" else asks
            roll = rng.random()
            # Removals and additions balance, pulled back towards LEVELS a side.
            remove = DELETE_SHARE * (1 + (len(side.ticks) - LEVELS) / 50)
            if roll < remove and side.ticks:
                tick = side.near_top(rng)
                side.remove(tick)
                changes[name, tick] = 0
            elif roll < 2 * DELETE_SHARE:
                step = -1 if name == "b" else 1
                tick = (mid - 1 if name == "b" else mid) + step * int(rng.expovariate(1 / 40))
                while tick in side.lots:  # the nearest free tick further out
                    tick += step
                side.set(tick, _lots(rng))
                changes[name, tick] = side.lots[tick]
            elif side.ticks:
                tick = side.near_top(rng)
                side.set(tick, _lots(rng))
                changes[name, tick] = side.lots[tick]
        if rng.random() < 0.05:  # a removal of a level beyond the book's depth
            changes["b", mid - 5000 - rng.randrange(1000)] = 0
        first = previous + rng.randint(1, 4)
        last = first + rng.randint(0, 25)
        time_ms += rng.randint(50, 150)
        frame = {
            "e": "depthUpdate",
            "E": time_ms,
            "T": time_ms - 2,
            "s": SYMBOL,
            "U": first,
            "u": last,
            "pu": previous,
            "b": [[_price(t), _size(q)] for (n, t), q in changes.items() if n == "b"],
            "a": [[_price(t), _size(q)] for (n, t), q in changes.items() if n == "a"],
        }
        out.append(orjson.dumps(frame))
        previous = last
    return snapshot, tuple(out)


@functools.cache
def reference(
    frames: int = FRAMES, seed: int = 20260702
) -> tuple[list[tuple[Decimal, Decimal]], ...]:
    """The book after the whole feed, built the obvious way: Decimal dicts, sorted at the end."""
    snapshot, stream = feed(frames, seed)
    body = orjson.loads(snapshot)
    sides: dict[str, dict[Decimal, Decimal]] = {
        "b": {Decimal(p): Decimal(q) for p, q in body["bids"]},
        "a": {Decimal(p): Decimal(q) for p, q in body["asks"]},
    }
    for frame in stream:
        event = orjson.loads(frame)
        for name in "ba":
            side = sides[name]
            for price, size in event[name]:
                if Decimal(size) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(size)
    bids = sorted(sides["b"].items(), reverse=True)
    asks = sorted(sides["a"].items())
    return bids, asks


def _statistics(frames: int) -> str:
    _, stream = feed(frames)
    changes = deletes = 0
    for frame in stream:
        event = orjson.loads(frame)
        for level in event["b"] + event["a"]:
            changes += 1
            deletes += Decimal(level[1]) == 0
    return (
        f"{len(stream):,} frames, {changes / len(stream):.1f} changes a frame, "
        f"{deletes / changes:.0%} removals"
    )


# ----------------------------------------------------------------------------- the run


class GcPauses:
    """The garbage collector's pauses while installed (``gc.callbacks``), per generation."""

    def __init__(self) -> None:
        self.pauses: tuple[list[float], ...] = ([], [], [])
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._began)

    @property
    def total(self) -> float:
        return sum(map(sum, self.pauses))

    def describe(self, elapsed: float) -> str:
        """Collections per generation, their total time (and share of ``elapsed``), the
        longest pause and the median full collection."""
        counts = "/".join(str(len(pauses)) for pauses in self.pauses)
        longest = max((max(pauses) for pauses in self.pauses if pauses), default=0.0)
        full = self.pauses[2]
        full_text = f", full p50 {statistics.median(full) * 1000:.1f} ms" if full else ""
        return (
            f"gc {counts} collections, {self.total * 1000:,.0f} ms "
            f"({self.total / elapsed:.0%} of the run), longest {longest * 1000:.1f} ms"
            f"{full_text}"
        )


#: The collector's pauses during the last :func:`single_book` or :func:`book_feed` run, that
#: run's elapsed seconds, and the CPU seconds the thread used meanwhile (steadier than the
#: rate on a busy machine).
last_gc = GcPauses()
last_elapsed = 0.0
last_cpu = 0.0


@contextmanager
def _watch_gc() -> Iterator[GcPauses]:
    global last_gc
    last_gc = GcPauses()
    gc.collect()  # every run starts from the same collector state
    gc.callbacks.append(last_gc)
    try:
        yield last_gc
    finally:
        gc.callbacks.remove(last_gc)


def _same(book: OrderBook, bids: list[Any], asks: list[Any]) -> None:
    """Raise unless ``book`` holds exactly ``bids`` and ``asks`` (the reference's Decimals)."""
    if book.levels(decimals=True) != (bids, asks):
        raise AssertionError("the order book differs from the reference after the feed")
    best_bids, best_asks = book.top(20)
    if [(Decimal(p), Decimal(q)) for p, q in best_bids] != bids[:20] or [
        (Decimal(p), Decimal(q)) for p, q in best_asks
    ] != asks[:20]:
        raise AssertionError("top_of_book differs from the reference")
    if bids[0][0] >= asks[0][0]:
        raise AssertionError(f"the book is crossed: {bids[0]} / {asks[0]}")


def verify(frames: int = FRAMES) -> None:
    """Raise unless the book equals the reference built from the same feed."""
    bids, asks = reference(frames)
    _same(_sync.book, bids, asks)
    if top_of_book(20) != _sync.book.top(20):
        raise AssertionError("top_of_book differs from the book")


def single_book(frames: int = FRAMES) -> float:
    """Frames per second applied to one 1000-level book (verified against the reference)."""
    global last_elapsed, last_cpu
    snapshot, stream = feed(frames)
    reset(snapshot)
    with _watch_gc():
        cpu = time.thread_time()
        started = time.perf_counter()
        for frame in stream:
            apply(frame)
        last_elapsed = time.perf_counter() - started
        last_cpu = time.thread_time() - cpu
    verify(frames)
    return len(stream) / last_elapsed


def _session(frames: int, books: int) -> tuple[list[DepthSync], list[tuple[DepthSync, bytes]]]:
    """``books`` synced books and about ``frames`` frames for them, interleaved round by round
    in a shuffled order (the same every call)."""
    per_book = max(1, frames // books)
    syncs = []
    streams = []
    for number in range(books):
        snapshot, stream = feed(per_book, seed=number % SEEDS)
        sync = DepthSync(SYMBOL, SequenceRule.FUTURES)
        outcome = sync.apply_snapshot(parse_depth_snapshot(snapshot))
        if type(outcome) is not Synced:
            raise RuntimeError(f"the snapshot did not sync book {number}: {outcome}")
        syncs.append(sync)
        streams.append(stream)
    rng = random.Random(20260702)
    order = list(range(books))
    schedule = []
    for round_ in range(per_book):
        rng.shuffle(order)
        schedule.extend((syncs[number], streams[number][round_]) for number in order)
    return syncs, schedule


def book_feed(frames: int = FRAMES, books: int = BOOKS) -> float:
    """Frames per second over ``books`` 1000-level books, about ``frames`` frames in all
    interleaved across them as in a session; every book verified against the reference.

    ``books=1`` is the single book of :func:`single_book` (the same rate, other bookkeeping).
    """
    global last_elapsed, last_cpu
    syncs, schedule = _session(frames, books)
    with _watch_gc():
        cpu = time.thread_time()
        started = time.perf_counter()
        for sync, frame in schedule:
            if type(sync.apply_frame(frame)) is not Applied:
                raise RuntimeError(f"a feed frame was not applied: {frame!r:.200}")
        last_elapsed = time.perf_counter() - started
        last_cpu = time.thread_time() - cpu
    per_book = len(schedule) // books
    for number, sync in enumerate(syncs):
        _same(sync.book, *reference(per_book, number % SEEDS))
    return len(schedule) / last_elapsed


def _report(name: str, bench: Any, runs: int) -> None:
    rates = []
    cpus = []
    for _ in range(runs):
        rates.append(bench())
        cpus.append(last_cpu / (last_elapsed * rates[-1]) * 1e6)  # rate x time: frames
        print(
            f"  {name}: {rates[-1]:,.0f} frames/s, {cpus[-1]:.1f} µs CPU a frame; "
            f"{last_gc.describe(last_elapsed)}"
        )
    print(
        f"{name}: median {statistics.median(rates):,.0f} frames/s, "
        f"{statistics.median(cpus):.1f} µs CPU a frame"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.book_feed")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--books", type=int, default=BOOKS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=("single", "books"), help="one kind of run")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(_statistics(args.frames))
    bids, asks = reference(args.frames)
    print(f"final depth {len(bids)} bids, {len(asks)} asks; top {bids[0]} / {asks[0]}")
    if args.profile:
        import cProfile
        import pstats

        snapshot, stream = feed(args.frames)
        reset(snapshot)
        profiler = cProfile.Profile()
        profiler.enable()
        for frame in stream:
            apply(frame)
        profiler.disable()
        verify(args.frames)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
        return
    if args.only != "books":
        _report("1 book", functools.partial(single_book, args.frames), args.runs)
    if args.only != "single":
        _report(
            f"{args.books} books",
            functools.partial(book_feed, args.frames, args.books),
            args.runs,
        )


if __name__ == "__main__":
    main()
