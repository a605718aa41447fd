"""FoldRunner: outputs keep their causes, each input's outputs are published all or none
(handler failures, unencodable outputs, cancellation), and a restart publishes only what the
journal lacks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal

import pytest
import trio
import trio.testing

from actors.base import ActorContext, FoldActor, HandlerFailed
from actors.bus import Bus, BusClosed
from actors.clock import VirtualClock
from actors.fold import FoldRunner
from events.base import Envelope, Event
from events.codec import default_codec
from events.demo import SyntheticPrice
from events.journal import MemoryJournalStore
from events.system import SessionStarted, TimerFired

NAME = "echo"


class Echo(FoldActor):
    """Answers each price with two timer events; may fail on one step."""

    SUBSCRIPTIONS = ("demo.price",)

    def __init__(self, *, fail_on: int | None = None, unencodable_on: int | None = None) -> None:
        super().__init__(NAME, seed=0)
        self.fail_on = fail_on
        self.unencodable_on = unencodable_on
        self.handled: list[int] = []

    def handle(self, envelope: Envelope) -> Sequence[Event]:
        event = envelope.event
        assert isinstance(event, SyntheticPrice)
        self.handled.append(envelope.seq)
        if event.step == self.fail_on:
            raise ZeroDivisionError("boom")
        second: Event = TimerFired(owner=NAME, name="b", count=event.step)
        if event.step == self.unencodable_on:
            second = SyntheticPrice(symbol="X", price=1.5, step=0)  # type: ignore[arg-type]
        return [TimerFired(owner=NAME, name="a", count=event.step), second]


def price(step: int) -> SyntheticPrice:
    return SyntheticPrice(symbol="BTCUSDT", price=Decimal(step), step=step)


def journal(
    prices: int, *, outputs: Sequence[tuple[int, Event]] = ()
) -> tuple[MemoryJournalStore, int]:
    """A store holding session.started (seq 1), then ``prices`` prices (seqs 2...), then
    ``outputs`` as ``(cause, event)`` published by the echo actor."""
    codec = default_codec()
    store = MemoryJournalStore()
    records: list[tuple[Event, int | None, str]] = [
        (SessionStarted(session_id="s", config={}, versions={}, pid=0), None, "runtime")
    ]
    records += [(price(step), None, "feed") for step in range(1, prices + 1)]
    records += [(event, cause, NAME) for cause, event in outputs]
    store.append(
        [
            (
                seq,
                codec.encode(Envelope(seq=seq, ts_ns=seq, source=source, cause=cause, event=event)),
            )
            for seq, (event, cause, source) in enumerate(records, start=1)
        ]
    )
    return store, 1


def context(bus: Bus, session_seq: int) -> ActorContext:
    return ActorContext(
        name=NAME, bus=bus, clock=bus.clock, session_seq=session_seq, rng=random.Random(0)
    )


def outputs(store: MemoryJournalStore) -> list[tuple[int, str, int]]:
    """(cause, timer name, count) of every record the echo actor published."""
    codec = default_codec()
    found = []
    for _, payload in store.read():
        envelope = codec.decode(payload)
        if envelope.source == NAME:
            event = envelope.event
            assert isinstance(event, TimerFired)
            assert envelope.cause is not None
            found.append((envelope.cause, event.name, event.count))
    return found


async def run_until_idle(store: MemoryJournalStore, actor: Echo) -> ActorContext:
    bus = Bus(store, clock=VirtualClock(0))
    ctx = context(bus, 1)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await nursery.start(FoldRunner(lambda: actor).run, ctx)
        await trio.testing.wait_all_tasks_blocked()
        ctx.stop_requested.set()
        await trio.testing.wait_all_tasks_blocked()
        bus.close()
    return ctx


async def test_every_output_keeps_its_input_as_cause_and_a_batch_is_one_commit(
    autojump_clock,
) -> None:
    store, _ = journal(5)
    bus = Bus(store, clock=VirtualClock(0))
    ctx = context(bus, 1)
    actor = Echo()
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await nursery.start(FoldRunner(lambda: actor).run, ctx)
        await trio.testing.wait_all_tasks_blocked()
        assert bus.statistics().batches == 1
        assert bus.statistics().largest_batch == 10
        # Three live inputs committed together are folded as one received batch.
        for step in range(6, 9):
            await bus.publish([price(step)], source="feed")
        await trio.testing.wait_all_tasks_blocked()
        assert bus.statistics().batches == 3
        ctx.stop_requested.set()
        await trio.testing.wait_all_tasks_blocked()
        bus.close()
    assert actor.handled == [2, 3, 4, 5, 6, 17, 18, 19]
    assert outputs(store) == [
        (seq, name, step)
        for seq, step in zip([2, 3, 4, 5, 6, 17, 18, 19], range(1, 9), strict=True)
        for name in ("a", "b")
    ]
    assert ctx.last_input_seq == 19


async def test_a_large_batch_is_published_in_commits_of_about_max_batch(autojump_clock) -> None:
    store, _ = journal(5)
    bus = Bus(store, clock=VirtualClock(0), max_batch=4)
    ctx = context(bus, 1)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        await nursery.start(FoldRunner(Echo).run, ctx)
        await trio.testing.wait_all_tasks_blocked()
        assert (bus.statistics().batches, bus.statistics().largest_batch) == (3, 4)
        ctx.stop_requested.set()
        await trio.testing.wait_all_tasks_blocked()
        bus.close()
    assert outputs(store) == [(seq, name, seq - 1) for seq in range(2, 7) for name in ("a", "b")]
    assert ctx.last_input_seq == 6


async def test_a_failing_input_keeps_the_outputs_of_the_inputs_before_it() -> None:
    store, _ = journal(5)
    actor = Echo(fail_on=3)
    with pytest.raises(BaseExceptionGroup) as caught:
        await run_until_idle(store, actor)
    failure = caught.value.exceptions[0]
    while isinstance(failure, BaseExceptionGroup):
        failure = failure.exceptions[0]
    assert isinstance(failure, HandlerFailed)
    assert failure.input_seq == 4
    # Inputs 2 and 3 (steps 1 and 2) were published whole; the failing one published nothing.
    assert outputs(store) == [(2, "a", 1), (2, "b", 1), (3, "a", 2), (3, "b", 2)]


async def test_an_unencodable_output_publishes_nothing_of_its_input(autojump_clock) -> None:
    store, _ = journal(4)
    bus = Bus(store, clock=VirtualClock(0))
    ctx = context(bus, 1)
    actor = Echo(unencodable_on=3)

    async def session() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            nursery.start_soon(FoldRunner(lambda: actor).run, ctx)

    with pytest.raises(BaseExceptionGroup) as caught:
        await session()
    assert caught.value.subgroup(TypeError) is not None
    assert outputs(store) == [(2, "a", 1), (2, "b", 1), (3, "a", 2), (3, "b", 2)]
    assert ctx.last_input_seq == 3


async def test_a_restart_publishes_only_what_the_journal_lacks(autojump_clock) -> None:
    # An earlier incarnation published both outputs of seq 2 and the first one of seq 3.
    store, _ = journal(
        3,
        outputs=[
            (2, TimerFired(owner=NAME, name="a", count=1)),
            (2, TimerFired(owner=NAME, name="b", count=1)),
            (3, TimerFired(owner=NAME, name="a", count=2)),
        ],
    )
    ctx = await run_until_idle(store, Echo())
    assert outputs(store) == [
        (2, "a", 1),
        (2, "b", 1),
        (3, "a", 2),
        (3, "b", 2),
        (4, "a", 3),
        (4, "b", 3),
    ]
    assert ctx.last_input_seq == 4


async def test_a_batch_blocked_on_a_full_inbox_is_published_whole_even_when_cancelled(
    autojump_clock,
) -> None:
    store, _ = journal(4)
    bus = Bus(store, clock=VirtualClock(0), inbox_size=1)
    ctx = context(bus, 1)
    actor = Echo()
    runner = trio.CancelScope()

    async def run_runner() -> None:
        with runner:
            await FoldRunner(lambda: actor).run(ctx)

    async with trio.open_nursery() as nursery:
        # The writer is not running yet: one publish fills the inbox.
        await bus.publish([price(99)], source="feed")
        nursery.start_soon(run_runner)
        await trio.testing.wait_all_tasks_blocked()
        assert actor.handled  # and its publish waits for room
        runner.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert outputs(store) == []
        await nursery.start(bus.run)
        await trio.testing.wait_all_tasks_blocked()
        bus.close()
    assert runner.cancelled_caught
    assert outputs(store) == [(seq, name, seq - 1) for seq in range(2, 6) for name in ("a", "b")]
    assert ctx.last_input_seq == 5


async def test_a_closed_bus_fails_the_runner_and_publishes_nothing(autojump_clock) -> None:
    store, _ = journal(5)
    bus = Bus(store, clock=VirtualClock(0), max_batch=4)
    bus.close()
    ctx = context(bus, 1)
    with pytest.raises(BaseExceptionGroup) as caught:
        await FoldRunner(Echo).run(ctx)
    assert caught.value.subgroup(BusClosed) is not None
    assert outputs(store) == []
    assert ctx.last_input_seq is None
