"""The bus: seq assignment, journal-before-delivery, filtering, lag and catch-up."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from actors.bus import Bus, BusClosed
from actors.clock import VirtualClock
from events.codec import default_codec
from events.demo import SyntheticPrice
from events.journal import MemoryJournalStore
from events.system import TimerFired


def price(step: int) -> SyntheticPrice:
    return SyntheticPrice(symbol="BTCUSDT", price=Decimal(step), step=step)


def tick(count: int) -> TimerFired:
    return TimerFired(owner="a", name="t", count=count)


async def test_seqs_are_gap_free_and_the_journal_holds_what_was_delivered(
    memory_store: MemoryJournalStore, autojump_clock: trio.testing.MockClock
) -> None:
    bus = Bus(memory_store, clock=VirtualClock(1_000))
    seen = []
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        subscription = bus.subscribe("reader")

        async def reader() -> None:
            async for envelope in subscription:
                # Delivered only after it is in the journal.
                assert envelope.seq < memory_store.next_seq
                seen.append(envelope)

        nursery.start_soon(reader)
        for index in range(1, 101):
            await bus.publish([price(index)], source="feed")
        last = await bus.publish([tick(1), tick(2)], source="timers", wait=True)
        assert last == 102
        bus.close()
    assert [e.seq for e in seen] == list(range(1, 103))
    assert [e.event for e in seen[:100]] == [price(i) for i in range(1, 101)]
    stored = [default_codec().decode(p) for _, p in memory_store.read()]
    assert stored == seen


async def test_subscriptions_filter_by_exact_tag_and_prefix(memory_store) -> None:
    bus = Bus(memory_store)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        prices = bus.subscribe("prices", tags=["demo."])
        timers = bus.subscribe("timers", tags=["timer.fired"])
        for index in range(1, 6):
            await bus.publish([price(index), tick(index)], source="feed")
        bus.close()
    assert [e.event.step async for e in prices] == [1, 2, 3, 4, 5]
    assert [e.event.count async for e in timers] == [1, 2, 3, 4, 5]


async def test_publish_rejects_unregistered_events_and_bad_causes_in_the_caller(
    memory_store,
) -> None:
    bus = Bus(memory_store)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        with pytest.raises(TypeError, match="money must be a Decimal"):
            await bus.publish([SyntheticPrice(symbol="X", price=1.0, step=1)], source="s")
        with pytest.raises(ValueError, match="cause 5 is not the seq of an existing record"):
            await bus.publish([tick(1)], source="s", cause=5)
        assert await bus.publish([tick(1)], source="s", wait=True) == 1
        bus.close()
    with pytest.raises(BusClosed):
        await bus.publish([tick(2)], source="s")
    assert memory_store.next_seq == 2


async def test_a_late_subscriber_reads_history_then_goes_live(memory_store) -> None:
    bus = Bus(memory_store)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        for index in range(1, 51):
            await bus.publish([tick(index)], source="s")
        await bus.publish([tick(51)], source="s", wait=True)
        late = bus.subscribe("late", from_seq=10)
        got = []

        async def read() -> None:
            async for envelope in late:
                got.append(envelope.seq)

        nursery.start_soon(read)
        for index in range(52, 61):
            await bus.publish([tick(index)], source="s")
        bus.close()
    assert got == list(range(10, 61))


async def test_a_slow_subscriber_never_blocks_the_writer_and_loses_nothing(
    memory_store, autojump_clock
) -> None:
    bus = Bus(memory_store, max_batch=64)
    total = 5_000
    slow_seen: list[int] = []
    fast_seen: list[int] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        slow = bus.subscribe("slow", capacity=16)
        fast = bus.subscribe("fast")

        async def slow_reader() -> None:
            async for envelope in slow:
                slow_seen.append(envelope.seq)
                await trio.sleep(0.001)

        async def fast_reader() -> None:
            async for envelope in fast:
                fast_seen.append(envelope.seq)

        nursery.start_soon(slow_reader)
        nursery.start_soon(fast_reader)
        for start in range(1, total + 1, 10):
            await bus.publish([tick(i) for i in range(start, start + 10)], source="s")
        # The writer finished long before the slow reader: it was never held back.
        await bus.publish([tick(total + 1)], source="s", wait=True)
        assert len(slow_seen) < total
        stats = bus.statistics()
        slow_stats = next(s for s in stats.subscriptions if s.name == "slow")
        assert slow_stats.catch_ups > 0
        assert slow_stats.depth <= 16
        assert slow_stats.lag > 0
        bus.close()
    expected = list(range(1, total + 2))
    assert fast_seen == expected
    assert slow_seen == expected


async def test_statistics_report_batches_and_depth(memory_store) -> None:
    bus = Bus(memory_store)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        subscription = bus.subscribe("idle")
        await bus.publish([tick(i) for i in range(1, 11)], source="s", wait=True)
        stats = bus.statistics()
        assert stats.records == 10
        assert stats.next_seq == 11
        assert stats.last_delivered_seq == 10
        assert stats.largest_batch == 10
        (sub,) = stats.subscriptions
        assert (sub.name, sub.depth, sub.lag, sub.lagging) == ("idle", 10, 10, False)
        batch = await subscription.receive_batch()
        assert [e.seq for e in batch] == list(range(1, 11))
        assert bus.statistics().subscriptions[0].lag == 0
        subscription.close()
        with pytest.raises(trio.EndOfChannel):
            await subscription.receive_batch()
        bus.close()


async def test_durable_publish_fsyncs_whatever_the_policy(tmp_path) -> None:
    from events.journal import FsyncPolicy, open_file_store

    store = open_file_store(tmp_path / "j", fsync=FsyncPolicy.NONE)
    syncs = []
    original = store.sync

    def counting_sync() -> None:
        syncs.append(1)
        original()

    store.sync = counting_sync  # type: ignore[method-assign]
    bus = Bus(store)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await bus.publish([tick(1)], source="s", wait=True)
        assert syncs == []
        await bus.publish([tick(2)], source="s", durable=True)
        assert syncs == [1]
        bus.close()
    store.close()
