"""The timer edge: schedules in, recorded firings out, counts kept across a restart."""

from __future__ import annotations

import random

import pytest
import trio

from actors.base import ActorContext
from actors.bus import Bus
from actors.timers import TimerService
from events.codec import default_codec
from events.journal import MemoryJournalStore
from events.system import CancelTimer, ScheduleTimer, SessionStarted


def fired(store: MemoryJournalStore) -> list[tuple[float, str, int]]:
    codec = default_codec()
    out = []
    for _, payload in store.read():
        envelope = codec.decode(payload)
        if envelope.event.TAG == "timer.fired":
            assert envelope.cause is None, "a firing is an input"
            out.append((envelope.ts_ns / 1e9, envelope.event.name, envelope.event.count))
    return out


class TrioTimeClock:
    def now_ns(self) -> int:
        return round(trio.current_time() * 1e9)


async def start_service(nursery: trio.Nursery, bus: Bus, session_seq: int) -> trio.CancelScope:
    scope = trio.CancelScope()

    async def run(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with scope:
            ctx = ActorContext(
                name="timers",
                bus=bus,
                clock=bus.clock,
                session_seq=session_seq,
                rng=random.Random(1),
            )
            await TimerService().run(ctx, task_status=task_status)

    await nursery.start(run)
    return scope


async def start_session(nursery: trio.Nursery, bus: Bus) -> int:
    await nursery.start(bus.run)
    session = await bus.publish(
        [SessionStarted(session_id="s", config={}, versions={}, pid=1)],
        source="runtime",
        wait=True,
    )
    assert session is not None
    return session


async def test_timers_fire_on_schedule_and_stop_when_cancelled(autojump_clock) -> None:
    store = MemoryJournalStore()
    bus = Bus(store, clock=TrioTimeClock())
    async with trio.open_nursery() as nursery:
        session = await start_session(nursery, bus)
        service = await start_service(nursery, bus, session)
        await bus.publish(
            [
                ScheduleTimer(owner="a", name="every", delay_ms=100, interval_ms=250),
                ScheduleTimer(owner="a", name="once", delay_ms=300),
            ],
            source="a",
            cause=session,
        )
        await trio.sleep(0.9)
        await bus.publish([CancelTimer(owner="a", name="every")], source="a", cause=session)
        await trio.sleep(2)
        service.cancel()
        bus.close()
    assert fired(store) == [
        (pytest.approx(0.1), "every", 1),
        (pytest.approx(0.3), "once", 1),
        (pytest.approx(0.35), "every", 2),
        (pytest.approx(0.6), "every", 3),
        (pytest.approx(0.85), "every", 4),
    ]


async def test_a_restarted_service_continues_the_counts(autojump_clock) -> None:
    store = MemoryJournalStore()
    bus = Bus(store, clock=TrioTimeClock())
    async with trio.open_nursery() as nursery:
        session = await start_session(nursery, bus)
        first = await start_service(nursery, bus, session)
        await bus.publish(
            [ScheduleTimer(owner="a", name="beat", delay_ms=100, interval_ms=100)],
            source="a",
            cause=session,
        )
        await trio.sleep(0.35)
        first.cancel()
        await trio.sleep(1)  # the service is down: nothing fires
        second = await start_service(nursery, bus, session)
        await trio.sleep(0.25)
        second.cancel()
        bus.close()
    assert [(name, count) for _, name, count in fired(store)] == [
        ("beat", 1),
        ("beat", 2),
        ("beat", 3),
        ("beat", 4),
        ("beat", 5),
    ]
    times = [t for t, _, _ in fired(store)]
    assert times[3] == pytest.approx(1.45)
