"""The bus: seq assignment, journal-before-delivery, filtering, lag and catch-up."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
        assert slow_stats.lag == total + 1 - len(slow_seen)
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


async def test_lag_counts_only_records_not_yet_passed(memory_store) -> None:
    bus = Bus(memory_store)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        timers_only = bus.subscribe("timers", tags=["timer.fired"])
        await bus.publish([price(i) for i in range(1, 100)] + [tick(1)], source="s", wait=True)
        # Ninety-nine prices it does not select are passed; the tick is still waiting.
        stats = timers_only.statistics()
        assert (stats.lag, stats.depth) == (1, 1)
        await timers_only.receive_batch()
        assert timers_only.statistics().lag == 0
        await bus.publish([price(100)], source="s", wait=True)
        assert timers_only.statistics().lag == 0, "an unselected record is passed at once"
        bus.close()


class FullDisk(MemoryJournalStore):
    def append(self, records) -> None:
        if self.next_seq > 3:
            raise OSError(28, "No space left on device")
        super().append(records)


async def test_a_dead_writer_fails_every_waiting_publisher(autojump_clock) -> None:
    store = FullDisk()
    bus = Bus(store)
    outcomes: list[str] = []

    async def publisher(count: int) -> None:
        try:
            await bus.publish([tick(count)], source="s", wait=True)
            outcomes.append("written")
        except BusClosed:
            outcomes.append("refused")

    with pytest.RaisesGroup(pytest.RaisesExc(OSError, match="No space left")):
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            await bus.publish([tick(1), tick(2), tick(3)], source="s", wait=True)
            for count in range(4, 10):
                nursery.start_soon(publisher, count)
    assert outcomes == ["refused"] * 6
    with pytest.raises(BusClosed):
        await bus.publish([tick(99)], source="s", wait=True)
    assert store.next_seq == 4


class CountingStore(MemoryJournalStore):
    def __init__(self) -> None:
        super().__init__()
        self.syncs: list[float] = []

    def sync(self) -> None:
        self.syncs.append(trio.current_time())


async def test_an_idle_bus_syncs_what_it_wrote(autojump_clock) -> None:
    store = CountingStore()
    bus = Bus(store, sync_when_idle_s=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        start = trio.current_time()
        await bus.publish([tick(1)], source="s", wait=True)
        await trio.sleep(1)
        assert store.syncs == [pytest.approx(start + 0.05)]
        await trio.sleep(1)
        assert len(store.syncs) == 1, "nothing new was written, so nothing to sync"
        await bus.publish([tick(2)], source="s", durable=True)
        await trio.sleep(1)
        assert len(store.syncs) == 2, "a durable publish syncs at once and leaves nothing"
        bus.close()


@pytest.mark.parametrize(("policy", "syncs"), [("interval", 3), ("none", 2), ("per_batch", 2)])
async def test_only_the_interval_policy_turns_on_idle_syncs(
    tmp_path, autojump_clock, policy, syncs
) -> None:
    from actors.config import config_from_dict
    from actors.runtime import run_session

    store = CountingStore()
    config = config_from_dict(
        {"journal": {"dir": str(tmp_path), "fsync": policy, "fsync_interval_ms": 200}}
    )
    await run_session(config, store=store, seconds=5, handle_signals=False)
    # session.started and session.stopped are durable (two syncs); with the interval policy
    # the actor.started record written after session.started is synced once the bus is idle.
    assert len(store.syncs) == syncs


# The clock is shared by the examples on purpose: only elapsed virtual time matters here.
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batches=st.lists(st.integers(1, 40), min_size=1, max_size=40),
    readers=st.lists(
        st.tuples(
            st.integers(1, 64),  # capacity
            st.sampled_from([(), ("timer.",), ("demo.price",)]),  # selectors
            st.floats(0, 0.01),  # pause per envelope
            st.integers(0, 30),  # subscribe from this seq (0: from now)
        ),
        min_size=1,
        max_size=4,
    ),
)
async def test_every_subscriber_sees_exactly_the_journal(batches, readers, autojump_clock) -> None:
    """Whatever the batch sizes, capacities, filters and reader speeds: each subscriber
    receives exactly the journal's records it selected, in order, once."""
    store = MemoryJournalStore()
    bus = Bus(store, max_batch=32)
    seen: list[list[int]] = [[] for _ in readers]
    subscriptions = []
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await bus.publish([tick(0)] * 30, source="s", wait=True)
        for index, (capacity, selectors, _, start) in enumerate(readers):
            subscriptions.append(
                bus.subscribe(
                    f"r{index}", tags=selectors, capacity=capacity, from_seq=start or None
                )
            )

        async def read(index: int) -> None:
            pause = readers[index][2]
            async for envelope in subscriptions[index]:
                seen[index].append(envelope.seq)
                if pause:
                    await trio.sleep(pause)

        for index in range(len(readers)):
            nursery.start_soon(read, index)
        count = 0
        for size in batches:
            events = [price(count + i) if (count + i) % 3 else tick(count + i) for i in range(size)]
            count += size
            await bus.publish(events, source="s")
        bus.close()
    codec = default_codec()
    journal = [codec.decode(payload) for _, payload in store.read()]
    assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
    for index, (_, selectors, _, start) in enumerate(readers):
        first = start or 31
        expected = [
            e.seq
            for e in journal
            if e.seq >= first
            and (
                not selectors
                or any(
                    e.event.TAG.startswith(s) if s.endswith(".") else s == e.event.TAG
                    for s in selectors
                )
            )
        ]
        assert seen[index] == expected


async def test_an_output_batch_is_one_unit_and_each_event_keeps_its_cause(memory_store) -> None:
    bus = Bus(memory_store)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await bus.publish([price(i) for i in range(1, 4)], source="feed", wait=True)
        outputs = bus.output_batch("fold")
        assert not outputs
        outputs.add([tick(1), tick(2)], cause=1)
        outputs.add([], cause=2)
        # What cannot be written raises here, in the caller, and nothing of that call is kept.
        with pytest.raises(TypeError, match="money must be a Decimal"):
            outputs.add([tick(3), SyntheticPrice(symbol="X", price=1.0, step=1)], cause=2)
        with pytest.raises(ValueError, match="cause 4 is not the seq of an existing record"):
            outputs.add([tick(3)], cause=4)
        outputs.add([tick(3)], cause=3)
        outputs.add([tick(4)], cause=None)
        assert len(outputs) == 4
        assert memory_store.next_seq == 4, "nothing is queued before publish"
        batches = bus.statistics().batches
        await outputs.publish()
        assert not outputs
        await bus.publish([tick(5)], source="s", wait=True)
        assert bus.statistics().batches == batches + 1, "one inbox slot, one commit"
        await outputs.publish()  # nothing left: does nothing
        assert bus.statistics().records == 8
        bus.close()
    outputs.add([tick(6)], cause=1)
    with pytest.raises(BusClosed):
        await outputs.publish()
    stored = [default_codec().decode(p) for _, p in memory_store.read()]
    assert [(e.source, e.cause, e.event) for e in stored[3:]] == [
        ("fold", 1, tick(1)),
        ("fold", 1, tick(2)),
        ("fold", 3, tick(3)),
        ("fold", None, tick(4)),
        ("s", None, tick(5)),
    ]


def test_envelopes_built_by_the_bus_equal_constructed_ones() -> None:
    from actors.bus import _make_envelope
    from events.base import Envelope

    made = _make_envelope(7, 8, "s", None, tick(1))
    built = Envelope(seq=7, ts_ns=8, source="s", cause=None, event=tick(1))
    assert type(made) is Envelope
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)
    assert _make_envelope.__name__ == "make", "Envelope gained init logic: check bus.py"
