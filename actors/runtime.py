"""Boot and stop a session: recover the journal, start the bus, then the actors.

Boot order: open (and if needed repair) the journal -> start the bus -> record
``journal.recovered`` when the journal was repaired -> record ``session.started`` -> start
the supervised actors in order. Stop order: ask the actors to stop (bounded grace) -> record
``session.stopped`` (fsynced) -> drain the bus -> close the journal.

A session stops on SIGINT/SIGTERM, after ``seconds`` when given, or when the supervisor gives
up on an actor (escalation); the journal is flushed in every case.

**The garbage collector.** A started session's process holds some 50-70 thousand long-lived
objects (modules, classes, the codec's generated code, configuration), and each full
collection of CPython's cyclic collector walks them all, along with everything else alive:
40-50 ms pauses under a market-data firehose, each one a latency spike for every frame in
flight. With ``settle_collector`` (what ``tern run`` and ``tern demo`` do) the session calls
:func:`freeze_survivors` once the journal is open and before any actor exists: one collection,
then :func:`gc.freeze` moves the survivors out of the collector's sight. Frozen objects are
still freed by reference counting; only a reference cycle alive at that moment and dead later
is never reclaimed, and start-up objects do not die. Actors are created after the freeze, so
a failed actor's incarnation (which a traceback cycle holds) is collected as usual.
``gc.unfreeze`` runs when the session ends. ``gc.unfreeze`` is process-wide, so a process that
had frozen objects of its own before the session is left alone (no settle, no unfreeze).
"""

from __future__ import annotations

import collections
import gc
import os
import platform
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import attrs
import orjson
import trio

from actors.base import FoldActor
from actors.book_sync import NAME as BOOK_SYNC_NAME
from actors.book_sync import BookSyncActor
from actors.bus import Bus, BusClosed
from actors.clock import Clock, LiveClock
from actors.config import Config, config_to_dict, load_strategy_class
from actors.connectivity import NAME as CONNECTIVITY_NAME
from actors.connectivity import ConnectivityActor
from actors.fold import FoldRunner
from actors.instruments import NAME as INSTRUMENTS_NAME
from actors.instruments import InstrumentsActor
from actors.market_data import NAME as MARKET_DATA_NAME
from actors.market_data import MarketDataActor
from actors.supervisor import ChildSpec, RestartPolicy, Supervisor, failure_leaves
from actors.synthetic import NAME as SYNTHETIC_NAME
from actors.synthetic import SyntheticMarket
from actors.timers import TimerService
from events.journal import FsyncPolicy, JournalReader, JournalStore, open_file_store
from events.system import JournalRecovered, SessionStarted, SessionStopped

SOURCE = "runtime"
_VERSIONED = (
    "tern",
    "trio",
    "trio-websocket",
    "httpx",
    "attrs",
    "cattrs",
    "cryptography",
    "orjson",
)


@attrs.frozen
class FoldSpec:
    """A deterministic actor the config asks for: its name, how to build it, its policy."""

    name: str
    factory: Callable[[], FoldActor]
    restart: RestartPolicy = RestartPolicy.PERMANENT


def fold_specs(config: Config) -> list[FoldSpec]:
    """The deterministic actors of a session, in start order. Live runs and replay both
    build them from here, so replay re-runs exactly what ran."""
    specs: list[FoldSpec] = []
    if config.synthetic is not None:
        params = {
            "symbols": list(config.synthetic.symbols),
            "start_price": config.synthetic.start_price,
            "tick_size": config.synthetic.tick_size,
            "interval_ms": config.synthetic.interval_ms,
        }
        specs.append(
            FoldSpec(
                SYNTHETIC_NAME,
                lambda: SyntheticMarket(SYNTHETIC_NAME, seed=config.seed, params=params),
            )
        )
    if config.clients:
        # The market-data actors serve every client; they only fold journaled answers.
        for name, cls in (
            (INSTRUMENTS_NAME, InstrumentsActor),
            (MARKET_DATA_NAME, MarketDataActor),
            (BOOK_SYNC_NAME, BookSyncActor),
        ):

            def build_edge_fold(name: str = name, cls: type = cls) -> FoldActor:
                return cls(name, seed=config.seed, clients=config.clients)

            specs.append(FoldSpec(name, build_edge_fold))
    for strategy in config.strategies:
        cls = load_strategy_class(strategy.class_path)

        def build(
            cls: type[FoldActor] = cls, name: str = strategy.name, params: dict = strategy.params
        ) -> FoldActor:
            return cls(name, seed=config.seed, params=params)

        specs.append(FoldSpec(strategy.name, build, strategy.restart))
    return specs


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


@attrs.frozen
class SessionResult:
    """How a session ended, for the CLI's summary and exit code."""

    session_id: str
    reason: str
    clean: bool
    journal_dir: str | None
    first_seq: int
    last_seq: int
    duration_s: float
    actors: tuple[str, ...]
    restarts: dict[str, int]
    gave_up: tuple[str, ...]
    recovered: JournalRecovered | None

    @property
    def exit_code(self) -> int:
        return 0 if self.clean else 1


class _Stop:
    def __init__(self) -> None:
        self.event = trio.Event()
        self.reason = ""
        self.clean = True

    def request(self, reason: str, *, clean: bool = True) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.clean = clean
            self.event.set()


async def _watch_signals(stop: _Stop, *, task_status: trio.TaskStatus[None]) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            stop.request(f"signal {signal.Signals(signum).name}")


def open_store(config: Config) -> JournalStore:
    """Open the configured journal directory for writing (repairing a torn tail)."""
    journal = config.journal
    return open_file_store(
        Path(journal.dir),
        fsync=journal.fsync,
        interval_ms=journal.fsync_interval_ms,
        max_segment_bytes=journal.max_segment_mb * 1024 * 1024,
    )


async def run_session(
    config: Config,
    *,
    store: JournalStore | None = None,
    clock: Clock | None = None,
    seconds: float | None = None,
    handle_signals: bool = True,
    extra_children: Sequence[ChildSpec] = (),
    on_started: Callable[[Bus], None] | None = None,
    stop_when: trio.Event | None = None,
    settle_collector: bool = False,
) -> SessionResult:
    """Run one session until stopped; see the module docstring.

    Args:
        config: the checked configuration.
        store: an already open journal store (tests); by default the configured directory.
        clock: the session clock (default: the wall clock).
        seconds: stop after this long (trio time).
        handle_signals: stop on SIGINT/SIGTERM (main thread only).
        extra_children: more supervised actors, started after the configured ones.
        on_started: called with the bus once every actor is serving.
        stop_when: an orderly, clean stop once this event is set (embedding, tests).
        settle_collector: freeze the objects alive before the actors start (see the module
            docstring); for a process that runs one session, as ``tern run`` does. Ignored
            when the process already has frozen objects.

    Raises:
        events.journal.JournalError: the journal cannot be opened (locked, corrupt).
        OSError: the journal could not be written (the session stopped at once); a single
            failure is raised as itself, never wrapped in an exception group.
    """
    own_store = store is None
    if store is None:
        store = await trio.to_thread.run_sync(open_store, config)
    clock = clock if clock is not None else LiveClock()
    session_id = uuid.uuid4().hex[:12]
    stop = _Stop()
    started_at = time.monotonic()
    idle_sync = None
    if config.journal.fsync is FsyncPolicy.INTERVAL:
        idle_sync = config.journal.fsync_interval_ms / 1000
    bus = Bus(store, clock=clock, sync_when_idle_s=idle_sync)
    recovered: JournalRecovered | None = None
    frozen = False
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(bus.run)
            if store.recovery is not None:
                repair = store.recovery
                recovered = JournalRecovered(
                    segment=repair.segment,
                    truncated_bytes=repair.truncated_bytes,
                    last_seq=repair.last_seq,
                    reason=repair.reason,
                )
                await bus.publish([recovered], source="journal", durable=True)
            session_seq = await bus.publish(
                [
                    SessionStarted(
                        session_id=session_id,
                        config=config_to_dict(config),
                        versions=versions(),
                        pid=os.getpid(),
                    )
                ],
                source=SOURCE,
                durable=True,
            )
            assert session_seq is not None
            supervisor = Supervisor(
                bus,
                clock,
                session_seq=session_seq,
                seed=config.seed,
                grace_s=config.supervisor.grace_s,
                on_give_up=lambda name: stop.request(f"gave up on actor {name}", clean=False),
            )
            children = _children(config, extra_children)
            if handle_signals:
                # Started, not merely scheduled: a signal that arrives right after the
                # session announces itself must already be handled.
                await nursery.start(_watch_signals, stop)
            if seconds is not None:
                nursery.start_soon(_stop_after, stop, seconds)
            if stop_when is not None:
                nursery.start_soon(_stop_when, stop, stop_when)

            if settle_collector and gc.get_freeze_count() == 0:
                # Before any actor exists: an actor's instances and coroutine frames must stay
                # collectable, or a restarted actor's first incarnation (a failure's traceback
                # cycle holds it) would never be freed, with everything it had built.
                freeze_survivors()
                frozen = True

            async def start_children() -> None:
                await nursery.start(supervisor.run, children)
                if on_started is not None and not stop.event.is_set():
                    on_started(bus)

            # Children start in the background so that a stop (signal, --seconds,
            # escalation) is honoured even while they are still starting.
            nursery.start_soon(start_children)
            await stop.event.wait()
            with trio.CancelScope(shield=True):
                await supervisor.stop()
                last_seq = await bus.publish(
                    [SessionStopped(session_id=session_id, reason=stop.reason, clean=stop.clean)],
                    source=SOURCE,
                    durable=True,
                )
                bus.close()
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        failure = _single_failure(group)
        if failure is None:
            raise
        raise failure from group
    finally:
        if frozen:
            gc.unfreeze()
        if own_store:
            store.close()
    return SessionResult(
        session_id=session_id,
        reason=stop.reason,
        clean=stop.clean,
        journal_dir=config.journal.dir if own_store else None,
        first_seq=session_seq,
        last_seq=last_seq or session_seq,
        duration_s=time.monotonic() - started_at,
        actors=tuple(child.name for child in children),
        restarts=dict(supervisor.restarts),
        gave_up=tuple(supervisor.gave_up),
        recovered=recovered,
    )


def freeze_survivors() -> None:
    """Collect once, then move every object still alive out of the garbage collector's sight
    (:func:`gc.freeze`; see the module docstring)."""
    gc.collect()
    gc.freeze()


def _single_failure(group: BaseExceptionGroup) -> BaseException | None:
    """The one real failure inside ``group`` (a dead journal writer also makes every waiting
    publisher fail with BusClosed: those are consequences, not causes), or None."""
    _, failures = group.split(trio.Cancelled)
    if failures is None:
        return None
    leaves = failure_leaves(failures)
    causes = [leaf for leaf in leaves if not isinstance(leaf, BusClosed)] or leaves
    return causes[0] if len(causes) == 1 else None


async def _stop_after(stop: _Stop, seconds: float) -> None:
    await trio.sleep(seconds)
    stop.request(f"ran for {seconds:g} s")


async def _stop_when(stop: _Stop, event: trio.Event) -> None:
    await event.wait()
    stop.request("stop requested by the embedding program")


def _children(config: Config, extra: Sequence[ChildSpec]) -> list[ChildSpec]:
    policy = config.supervisor
    common = {
        "backoff_initial_s": policy.backoff_initial_ms / 1000,
        "backoff_max_s": policy.backoff_max_ms / 1000,
        "max_restarts": policy.max_restarts,
        "window_s": policy.window_s,
    }
    children = [ChildSpec(name=TimerService.name, factory=TimerService, **common)]
    if config.clients:
        # The edge before the folds: their first requests find it serving.
        children.append(
            ChildSpec(
                name=CONNECTIVITY_NAME,
                factory=lambda: ConnectivityActor(config.clients, seed=config.seed),
                **common,
            )
        )
    for spec in fold_specs(config):
        children.append(
            ChildSpec(
                name=spec.name,
                factory=lambda factory=spec.factory: FoldRunner(factory),
                restart=spec.restart,
                **common,
            )
        )
    children.extend(extra)
    return children


def event_counts(
    store: JournalStore | JournalReader, first_seq: int, last_seq: int
) -> dict[str, int]:
    """Events per type in ``first_seq..last_seq`` (for summaries)."""
    counts: collections.Counter[str] = collections.Counter()
    for _, payload in store.read(first_seq, last_seq):
        counts[orjson.loads(payload)["event"]["type"]] += 1
    return dict(sorted(counts.items()))
