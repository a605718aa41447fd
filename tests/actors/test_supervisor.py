"""Restarts with backoff, intensity windows, escalation and bounded shutdown."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.base import ActorContext
from actors.bus import Bus
from actors.supervisor import ChildSpec, RestartPolicy, Supervisor
from events.codec import default_codec
from events.journal import MemoryJournalStore


def journal_events(store: MemoryJournalStore) -> list:
    codec = default_codec()
    return [codec.decode(payload).event for _, payload in store.read()]


class Flaky:
    """Fails ``failures`` times (counted across incarnations), then serves forever."""

    def __init__(self, record: list, failures: int) -> None:
        self.record = record
        self.failures = failures
        self.name = "flaky"

    async def run(self, ctx: ActorContext, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        self.record.append(trio.current_time())
        if len(self.record) <= self.failures:
            await trio.sleep(1)
            raise RuntimeError(f"boom {len(self.record)}")
        await trio.sleep_forever()


async def run_supervised(store, specs, *, seconds: float, on_give_up=None) -> Supervisor:
    bus = Bus(store)
    async with trio.open_nursery() as nursery:
        await nursery.start(bus.run)
        supervisor = Supervisor(
            bus, bus.clock, session_seq=1, seed=7, grace_s=1.0, on_give_up=on_give_up
        )
        nursery.start_soon(supervisor.run, specs)
        await trio.sleep(seconds)
        await supervisor.stop()
        bus.close()
    return supervisor


async def test_a_failing_actor_is_restarted_with_exponential_backoff(
    memory_store, autojump_clock
) -> None:
    starts: list[float] = []
    spec = ChildSpec(
        name="flaky",
        factory=lambda: Flaky(starts, failures=3),
        backoff_initial_s=1.0,
        backoff_max_s=60.0,
        jitter=0.0,
        max_restarts=5,
        window_s=100.0,
    )
    supervisor = await run_supervised(memory_store, [spec], seconds=60)
    # Each run lasts 1 s before failing; backoffs are 1, 2, 4 s.
    assert starts == pytest.approx([0, 2, 5, 10])
    assert supervisor.restarts["flaky"] == 3
    events = journal_events(memory_store)
    tags = [e.TAG for e in events]
    assert tags.count("actor.failed") == 3
    assert tags.count("actor.restarted") == 3
    failed = [e for e in events if e.TAG == "actor.failed"]
    assert [f.error for f in failed] == ["boom 1", "boom 2", "boom 3"]
    assert all(f.error_type == "RuntimeError" for f in failed)
    restarted = [e for e in events if e.TAG == "actor.restarted"]
    assert [r.delay_ms for r in restarted] == [1000, 2000, 4000]
    assert tags[-1] == "actor.stopped"


async def test_jitter_stays_within_its_bounds(memory_store, autojump_clock) -> None:
    starts: list[float] = []
    spec = ChildSpec(
        name="flaky",
        factory=lambda: Flaky(starts, failures=2),
        backoff_initial_s=1.0,
        jitter=0.5,
        window_s=100.0,
    )
    await run_supervised(memory_store, [spec], seconds=30)
    delays = [e.delay_ms for e in journal_events(memory_store) if e.TAG == "actor.restarted"]
    assert 500 <= delays[0] <= 1500
    assert 1000 <= delays[1] <= 3000
    assert delays != [1000, 2000]


async def test_too_many_failures_in_the_window_escalate(memory_store, autojump_clock) -> None:
    starts: list[float] = []
    gave_up: list[str] = []
    spec = ChildSpec(
        name="flaky",
        factory=lambda: Flaky(starts, failures=100),
        backoff_initial_s=0.1,
        jitter=0.0,
        max_restarts=2,
        window_s=60.0,
    )
    supervisor = await run_supervised(memory_store, [spec], seconds=30, on_give_up=gave_up.append)
    assert gave_up == ["flaky"]
    assert supervisor.gave_up == ["flaky"]
    assert len(starts) == 3
    events = journal_events(memory_store)
    assert [e.TAG for e in events[-2:]] == ["actor.gave_up", "actor.stopped"]
    assert events[-2].failures == 3


async def test_failures_outside_the_window_do_not_count(memory_store, autojump_clock) -> None:
    starts: list[float] = []
    gave_up: list[str] = []
    # Runs last 1 s and backoff is capped at 10 s, so failures are ~11 s apart: a 5 s window
    # never holds more than one and the supervisor never gives up.
    spec = ChildSpec(
        name="flaky",
        factory=lambda: Flaky(starts, failures=6),
        backoff_initial_s=10.0,
        backoff_max_s=10.0,
        jitter=0.0,
        max_restarts=1,
        window_s=5.0,
    )
    await run_supervised(memory_store, [spec], seconds=200, on_give_up=gave_up.append)
    assert gave_up == []
    assert len(starts) == 7


class Returns:
    name = "returns"

    async def run(self, ctx, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep(1)


@pytest.mark.parametrize(
    ("policy", "starts"),
    [(RestartPolicy.TRANSIENT, 1), (RestartPolicy.TEMPORARY, 1), (RestartPolicy.PERMANENT, 3)],
)
async def test_restart_policies_after_a_normal_return(
    memory_store, autojump_clock, policy, starts
) -> None:
    spec = ChildSpec(
        name="returns",
        factory=Returns,
        restart=policy,
        backoff_initial_s=1.0,
        jitter=0.0,
        max_restarts=10,
        window_s=100.0,
    )
    # A permanent actor that returns is restarted with backoff: starts at 0, 2 and 5 s.
    await run_supervised(memory_store, [spec], seconds=9.5)
    started = [e for e in journal_events(memory_store) if e.TAG == "actor.started"]
    assert len(started) == starts


async def test_a_temporary_actor_is_not_restarted_after_failing(
    memory_store, autojump_clock
) -> None:
    starts: list[float] = []
    spec = ChildSpec(
        name="flaky", factory=lambda: Flaky(starts, failures=5), restart=RestartPolicy.TEMPORARY
    )
    await run_supervised(memory_store, [spec], seconds=30)
    assert len(starts) == 1


class Stubborn:
    """Ignores the stop request and shields its cleanup for too long."""

    name = "stubborn"

    def __init__(self, log: list) -> None:
        self.log = log

    async def run(self, ctx, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(0.5):
                await trio.sleep(0.2)
                self.log.append("flushed")


class Polite:
    name = "polite"

    async def run(self, ctx, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await ctx.stop_requested.wait()


async def test_shutdown_is_polite_then_bounded(memory_store, autojump_clock) -> None:
    log: list[str] = []
    specs = [
        ChildSpec(name="stubborn", factory=lambda: Stubborn(log)),
        ChildSpec(name="polite", factory=Polite),
    ]
    start = trio.current_time()
    await run_supervised(memory_store, specs, seconds=1)
    # 1 s of running, 1 s of grace, 0.2 s of the stubborn actor's shielded cleanup.
    assert trio.current_time() - start == pytest.approx(2.2)
    assert log == ["flushed"]
    stopped = {e.actor for e in journal_events(memory_store) if e.TAG == "actor.stopped"}
    assert stopped == {"stubborn", "polite"}


async def test_duplicate_names_are_refused(memory_store) -> None:
    bus = Bus(memory_store)
    supervisor = Supervisor(bus, bus.clock, session_seq=1, seed=1)
    with pytest.raises(ValueError, match="repeated: polite"):
        await supervisor.run([ChildSpec(name="polite", factory=Polite)] * 2)
