"""Sessions end to end on a memory or file journal: boot, folds, restarts, escalation."""

from __future__ import annotations

import collections
import gc
from pathlib import Path

import pytest
import trio

from actors.config import config_from_dict
from actors.replay import replay
from actors.runtime import run_session
from events.codec import default_codec
from events.journal import FsyncPolicy, MemoryJournalStore, open_file_store


def session_config(journal: Path, **extra) -> dict:
    data = {
        "session": {"seed": 3},
        "journal": {"dir": str(journal), "fsync": "none"},
        "synthetic": {"symbols": ["BTCUSDT", "ETHUSDT"], "interval_ms": 100},
        "supervisor": {"backoff_initial_ms": 100, "grace_s": 1.0},
    }
    data.update(extra)
    return data


def echo(**params) -> dict:
    return {"class": "tests.actors.sample_strategies:EchoOrders", "name": "echo", "params": params}


def decoded(store) -> list:
    codec = default_codec()
    return [codec.decode(payload) for _, payload in store.read()]


async def test_a_session_records_its_life_in_order(autojump_clock, tmp_path) -> None:
    store = MemoryJournalStore()
    config = config_from_dict(session_config(tmp_path, strategies=[echo()]))
    result = await run_session(config, store=store, seconds=2.05, handle_signals=False)
    assert result.clean
    envelopes = decoded(store)
    assert envelopes[0].event.TAG == "session.started"
    assert envelopes[0].event.config["synthetic"]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert envelopes[-1].event.TAG == "session.stopped"
    assert [e.seq for e in envelopes] == list(range(1, len(envelopes) + 1))
    tags = collections.Counter(e.event.TAG for e in envelopes)
    assert tags["timer.fired"] == 20
    assert tags["demo.price"] == 40
    assert tags["order.submit"] == 40
    # Every order's cause is the price it answers, and every price's cause is its tick.
    by_seq = {e.seq: e for e in envelopes}
    for envelope in envelopes:
        if envelope.event.TAG == "order.submit":
            assert by_seq[envelope.cause].event.TAG == "demo.price"
            assert envelope.source == "echo"
        if envelope.event.TAG == "demo.price":
            assert by_seq[envelope.cause].event.TAG == "timer.fired"
            assert envelope.source == "synthetic-market"
        if envelope.event.TAG == "timer.fired":
            assert envelope.cause is None
    assert set(result.actors) == {"timers", "synthetic-market", "echo"}


async def test_a_strategy_can_drive_its_own_timer(autojump_clock, tmp_path) -> None:
    store = MemoryJournalStore()
    config = config_from_dict(
        {
            "journal": {"dir": str(tmp_path)},
            "strategies": [{"class": "tests.actors.sample_strategies:Heartbeat"}],
        }
    )
    await run_session(config, store=store, seconds=1.1, handle_signals=False)
    orders = [e.event for e in decoded(store) if e.event.TAG == "order.submit"]
    assert [o.client_tag for o in orders] == ["beat-1", "beat-2", "beat-3", "beat-4"]


async def test_a_failing_strategy_restarts_without_duplicating_outputs(
    autojump_clock, tmp_path
) -> None:
    store = open_file_store(tmp_path / "journal", fsync=FsyncPolicy.NONE)
    config = config_from_dict(
        session_config(tmp_path / "journal", strategies=[echo(fail_steps=[3, 7])])
    )
    with store:
        result = await run_session(config, store=store, seconds=2.05, handle_signals=False)
        envelopes = decoded(store)
    assert result.clean
    # Steps 3 and 7 are poison for both symbols: four failures, four restarts.
    assert result.restarts == {"echo": 4}
    failed = [e for e in envelopes if e.event.TAG == "actor.failed"]
    assert [f.event.error_type for f in failed] == ["ZeroDivisionError"] * 4
    poison = {f.event.input_seq for f in failed}
    assert {next(e for e in envelopes if e.seq == s).event.step for s in poison} == {3, 7}
    orders = [e for e in envelopes if e.event.TAG == "order.submit"]
    causes = [o.cause for o in orders]
    assert len(causes) == len(set(causes)), "an input's outputs were published twice"
    # Every price but the poisoned ones got exactly one order.
    assert len(orders) == 40 - 4
    report = replay(tmp_path / "journal", verify=True)
    assert report.identical, report.divergence
    assert sorted(seq for _, seq in report.skipped_failed) == sorted(poison)


async def test_giving_up_stops_the_session_cleanly_and_says_so(autojump_clock, tmp_path) -> None:
    store = MemoryJournalStore()
    config = config_from_dict(
        session_config(
            tmp_path,
            strategies=[{"class": "tests.actors.sample_strategies:AlwaysFails", "name": "doomed"}],
            supervisor={"max_restarts": 2, "backoff_initial_ms": 10, "window_s": 60.0},
        )
    )
    result = await run_session(config, store=store, seconds=600, handle_signals=False)
    assert not result.clean
    assert result.exit_code == 1
    assert result.gave_up == ("doomed",)
    assert "gave up on actor doomed" in result.reason
    assert trio.current_time() < 10
    envelopes = decoded(store)
    tags = [e.event.TAG for e in envelopes]
    assert tags.count("actor.failed") == 3
    assert "actor.gave_up" in tags
    assert tags[-1] == "session.stopped"
    assert envelopes[-1].event.clean is False


async def test_sessions_append_to_an_existing_journal(autojump_clock, tmp_path) -> None:
    directory = tmp_path / "journal"
    config = config_from_dict(session_config(directory, strategies=[echo()]))
    for _ in range(2):
        with open_file_store(directory, fsync=FsyncPolicy.NONE) as store:
            await run_session(config, store=store, seconds=0.55, handle_signals=False)
    with open_file_store(directory, fsync=FsyncPolicy.NONE) as store:
        envelopes = decoded(store)
    starts = [e for e in envelopes if e.event.TAG == "session.started"]
    assert len(starts) == 2
    # Each session folds from its own start: the second one's prices restart at step 1.
    second = [e.event for e in envelopes if e.seq > starts[1].seq and e.event.TAG == "demo.price"]
    assert second[0].step == 1
    report = replay(directory, verify=True)
    assert report.identical
    assert report.sessions == 2


class NeverStarts:
    name = "slowpoke"

    async def run(self, ctx, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep_forever()


async def test_a_stop_is_honoured_while_actors_are_still_starting(autojump_clock, tmp_path) -> None:
    from actors.supervisor import ChildSpec

    store = MemoryJournalStore()
    config = config_from_dict(session_config(tmp_path, strategies=[echo()]))
    result = await run_session(
        config,
        store=store,
        seconds=0.5,
        handle_signals=False,
        extra_children=[ChildSpec(name="slowpoke", factory=NeverStarts)],
    )
    assert result.clean
    assert trio.current_time() == pytest.approx(0.5 + 1.0)  # --seconds, then the grace period
    envelopes = decoded(store)
    assert envelopes[-1].event.TAG == "session.stopped"
    stopped = {e.event.actor for e in envelopes if e.event.TAG == "actor.stopped"}
    assert "slowpoke" in stopped


class BreaksAt(MemoryJournalStore):
    """A disk that fills up once the journal reaches ``limit`` records."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def append(self, records) -> None:
        if self.next_seq + len(records) > self.limit:
            raise OSError(28, "No space left on device")
        super().append(records)


async def test_a_journal_that_cannot_be_written_fails_the_session_without_hanging(
    autojump_clock, tmp_path
) -> None:
    config = config_from_dict(session_config(tmp_path, strategies=[echo()]))
    for limit in (2, 30):  # while starting, and while running
        with pytest.raises(OSError, match="No space left on device"):
            await run_session(config, store=BreaksAt(limit), seconds=60, handle_signals=False)
    assert trio.current_time() < 10


class SlowDisk(MemoryJournalStore):
    """Commits take 20 ms of real time in a worker thread."""

    @property
    def blocking(self) -> bool:
        return True

    def append(self, records) -> None:
        import time

        time.sleep(0.02)
        super().append(records)


async def test_a_restart_never_handles_the_same_poison_input_twice(tmp_path) -> None:
    config = config_from_dict(
        session_config(
            tmp_path,
            strategies=[echo(fail_steps=[2, 3, 4])],
            synthetic={"symbols": ["BTCUSDT"], "interval_ms": 100},
            supervisor={"backoff_initial_ms": 1, "backoff_max_ms": 1, "max_restarts": 5},
        )
    )
    store = SlowDisk()
    result = await run_session(config, store=store, seconds=0.65, handle_signals=False)
    assert result.clean, result.reason
    failed = [e.event.input_seq for e in decoded(store) if e.event.TAG == "actor.failed"]
    assert len(failed) == 3
    assert len(set(failed)) == 3, "an input failed twice: the restart did not see the record"


async def test_a_settled_session_freezes_its_start_up_objects_once_every_actor_serves(
    autojump_clock, tmp_path
) -> None:
    seen: list[int] = []
    config = config_from_dict(session_config(tmp_path, strategies=[echo()]))
    assert gc.get_freeze_count() == 0
    result = await run_session(
        config,
        store=MemoryJournalStore(),
        seconds=0.5,
        handle_signals=False,
        settle_collector=True,
        on_started=lambda bus: seen.append(gc.get_freeze_count()),
    )
    assert result.clean
    # Frozen while the actors served, thawed once the session ended.
    assert len(seen) == 1
    assert seen[0] > 0
    assert gc.get_freeze_count() == 0


async def test_an_unsettled_session_leaves_the_collector_alone(autojump_clock, tmp_path) -> None:
    seen: list[int] = []
    config = config_from_dict(session_config(tmp_path, strategies=[echo()]))
    await run_session(
        config,
        store=MemoryJournalStore(),
        seconds=0.5,
        handle_signals=False,
        on_started=lambda bus: seen.append(gc.get_freeze_count()),
    )
    assert seen == [0]


async def test_a_settled_session_still_collects_a_restarted_actors_old_incarnation(
    autojump_clock, tmp_path
) -> None:
    # A failure's traceback cycle holds the failed incarnation: only the collector frees it,
    # so it must not have been frozen (the freeze happens before any actor exists).
    from tests.actors.sample_strategies import TrackedEchoOrders

    TrackedEchoOrders.instances.clear()
    data = session_config(tmp_path, strategies=[echo(fail_steps=[2])])
    data["strategies"][0]["class"] = "tests.actors.sample_strategies:TrackedEchoOrders"
    config = config_from_dict(data)
    alive: list[list[bool]] = []

    async def look() -> None:
        await trio.sleep(1.0)
        gc.collect()
        alive.append([ref() is not None for ref in TrackedEchoOrders.instances])
        done.set()

    done = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(look)
        result = await run_session(
            config,
            store=MemoryJournalStore(),
            handle_signals=False,
            stop_when=done,
            settle_collector=True,
        )
    # The first incarnation (alive when a freeze after the start would have run) is gone; the
    # serving one is not. (The latest failure may still be held for its report.)
    assert result.restarts["echo"] >= 1
    assert len(alive) == 1
    assert alive[0][0] is False
    assert alive[0][-1] is True


async def test_a_process_that_froze_objects_itself_is_left_alone(autojump_clock, tmp_path) -> None:
    seen: list[int] = []
    config = config_from_dict(session_config(tmp_path))
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        await run_session(
            config,
            store=MemoryJournalStore(),
            seconds=0.5,
            handle_signals=False,
            settle_collector=True,
            on_started=lambda bus: seen.append(gc.get_freeze_count()),
        )
        # Not settled (the count did not grow; frozen objects may still die) and not thawed
        # (the caller's freeze stands).
        assert len(seen) == 1
        assert 0 < seen[0] <= before
        assert 0 < gc.get_freeze_count() <= before
    finally:
        gc.unfreeze()
