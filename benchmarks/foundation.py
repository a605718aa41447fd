"""Throughput of the spine: journal append, journal read + decode (replay), bus fan-out.

Each benchmark is run several times in a fresh temporary journal on the local disk and the
median is reported. The event stream mixes a small market-data-like event (nine in ten) with a
larger order command (one in ten), which is roughly the shape of a trading session's journal.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import attrs
import trio
import trio.testing

from actors.bus import Bus
from actors.clock import LiveClock
from events.base import Envelope, Event
from events.codec import default_codec
from events.demo import SyntheticPrice
from events.journal import FsyncPolicy, open_file_store, open_reader
from events.orders import SubmitOrder
from events.types import OrderType, Side, TimeInForce


def make_events(count: int) -> list[Event]:
    events: list[Event] = []
    for index in range(count):
        if index % 10 == 9:
            events.append(
                SubmitOrder(
                    strategy="mean-reversion",
                    instrument_id="BTCUSDT",
                    side=Side.BUY if index % 20 == 9 else Side.SELL,
                    order_type=OrderType.LIMIT,
                    quantity=Decimal("0.001"),
                    price=Decimal(f"50000.{index % 100:02d}"),
                    time_in_force=TimeInForce.GTC,
                    client_tag=f"mr-{index}",
                )
            )
        else:
            events.append(
                SyntheticPrice(
                    symbol="BTCUSDT", price=Decimal(f"50000.{index % 100:02d}"), step=index
                )
            )
    return events


@attrs.frozen
class Result:
    name: str
    unit: str
    runs: tuple[float, ...]
    target: float
    note: str
    #: Latencies: the median must stay at or below the target.
    lower_is_better: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def met(self) -> bool:
        if self.lower_is_better:
            return self.median <= self.target
        return self.median >= self.target


def journal_append(events: list[Event], directory: Path, batch: int = 1024) -> float:
    """Encode envelopes and append them in group-commit batches, fsync per batch."""
    codec = default_codec()
    clock = LiveClock()
    with open_file_store(directory, fsync=FsyncPolicy.PER_BATCH) as store:
        started = time.perf_counter()
        seq = 1
        for start in range(0, len(events), batch):
            ts_ns = clock.now_ns()
            records = []
            for event in events[start : start + batch]:
                body = codec.encode_event(event)
                records.append(
                    (seq, codec.assemble(seq, ts_ns, b'"bench"', None, type(event).VERSION, body))
                )
                seq += 1
            store.append(records)
        elapsed = time.perf_counter() - started
    return len(events) / elapsed


def journal_replay(directory: Path, expected: int) -> float:
    """Read every record back and decode it into an Envelope."""
    codec = default_codec()
    decode = codec.decode
    started = time.perf_counter()
    reader = open_reader(directory)
    count = 0
    last: Envelope | None = None
    for _, payload in reader.read(1, None):
        last = decode(payload)
        count += 1
    elapsed = time.perf_counter() - started
    if count != expected or last is None:
        raise AssertionError(f"read {count} records, expected {expected}")
    return count / elapsed


def bus_fan_out(events: list[Event], directory: Path, subscribers: int = 3) -> float:
    """One publisher, one event per publish, ``subscribers`` consumers; the journal uses the
    default ``per_batch`` fsync. Timed from the first publish to the last delivery."""

    async def main() -> float:
        with open_file_store(directory, fsync=FsyncPolicy.PER_BATCH) as store:
            bus = Bus(store)
            total = len(events)
            finished = trio.Event()
            remaining = [subscribers]

            async def consume(index: int) -> None:
                subscription = bus.subscribe(f"consumer-{index}")
                seen = 0
                while seen < total:
                    seen += len(await subscription.receive_batch())
                remaining[0] -= 1
                if remaining[0] == 0:
                    finished.set()

            async with trio.open_nursery() as nursery:
                await nursery.start(bus.run)
                for index in range(subscribers):
                    nursery.start_soon(consume, index)
                await trio.testing.wait_all_tasks_blocked()
                started = time.perf_counter()
                publish = bus.publish
                for event in events:
                    await publish((event,), source="bench")
                await finished.wait()
                elapsed = time.perf_counter() - started
                bus.close()
            return total / elapsed

    return trio.run(main)


def run_all(*, events: int, runs: int, only: str | None = None) -> list[Result]:
    stream = make_events(events)
    plans: list[tuple[str, Callable[[Path], float], float, str]] = [
        (
            "journal append",
            lambda d: journal_append(stream, d),
            300_000,
            "encode + frame + write, fsync per 1,024-record batch",
        ),
        (
            "journal read + decode (replay)",
            lambda d: journal_replay(d, len(stream)),
            250_000,
            "segment scan with crc check, orjson + cattrs into Envelopes",
        ),
        (
            "bus publish -> 3 subscribers",
            lambda d: bus_fan_out(stream, d),
            100_000,
            "one event per publish, group commit with per_batch fsync, 3 consumers",
        ),
    ]
    results = []
    for name, bench, target, note in plans:
        if only is not None and only not in name:
            continue
        measured = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="tern-bench-", dir=".") as tmp:
                directory = Path(tmp) / "journal"
                if name.startswith("journal read"):
                    journal_append(stream, directory)
                measured.append(bench(directory))
        results.append(Result(name, "events/s", tuple(measured), target, note))
    return results
