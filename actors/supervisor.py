"""A small Erlang-style supervisor for trio actors.

Each child runs in its own cancel scope. When a child raises, the failure is journaled
(``actor.failed``) and the child is started again, fresh, after an exponential backoff with
jitter (``actor.restarted``). Too many failures inside the restart window make the supervisor
give up on that child (``actor.gave_up``) and escalate to the session, which stops cleanly.

Shutdown is polite, then firm: every child's ``stop_requested`` is set, children get a bounded
grace period to return, and whatever is still running is cancelled.
"""

from __future__ import annotations

import collections
import enum
import random
from collections.abc import Callable, Sequence

import attrs
import trio

from actors.base import Actor, ActorContext, HandlerFailed
from actors.bus import Bus
from actors.clock import Clock
from events.base import Event
from events.system import ActorFailed, ActorGaveUp, ActorRestarted, ActorStarted, ActorStopped

SOURCE = "supervisor"


class RestartPolicy(enum.Enum):
    """``permanent``: always restarted; ``transient``: restarted only after a failure;
    ``temporary``: never restarted."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


@attrs.frozen
class ChildSpec:
    """How to start and restart one child.

    Attributes:
        name: unique actor name; also its journal ``source``.
        factory: builds a fresh actor for every incarnation (no state crosses a restart).
        restart: the restart policy.
        backoff_initial_s / backoff_max_s: delay before restart n is
            ``min(max, initial * 2 ** (n - 1))``, scaled by ``1 +- jitter``.
        max_restarts / window_s: more than ``max_restarts`` failures within ``window_s``
            seconds and the supervisor gives up.
    """

    name: str
    factory: Callable[[], Actor]
    restart: RestartPolicy = RestartPolicy.PERMANENT
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    jitter: float = 0.2
    max_restarts: int = 5
    window_s: float = 60.0


def failure_leaves(error: BaseException) -> list[BaseException]:
    """The non-group exceptions inside ``error``, depth first."""
    if isinstance(error, BaseExceptionGroup):
        leaves: list[BaseException] = []
        for inner in error.exceptions:
            leaves.extend(failure_leaves(inner))
        return leaves
    return [error]


class Supervisor:
    """Runs children under their restart policies; see the module docstring.

    Args:
        bus: where lifecycle events go.
        clock: the session clock handed to actors.
        session_seq: seq of the session's ``session.started`` record.
        seed: session seed; actor rngs and backoff jitter derive from it.
        grace_s: how long stopping children may take before they are cancelled.
        on_give_up: called with the child's name when the supervisor gives up on it.
    """

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        *,
        session_seq: int,
        seed: int | str,
        grace_s: float = 5.0,
        on_give_up: Callable[[str], None] | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.session_seq = session_seq
        self.seed = seed
        self.grace_s = grace_s
        self.on_give_up = on_give_up
        self._rng = random.Random(f"{seed}:supervisor")
        self._stopping = False
        self._contexts: dict[str, ActorContext] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self._running = 0
        self._entered = False
        self._launched = False
        self._all_done = trio.Event()
        self.restarts: collections.Counter[str] = collections.Counter()
        self.gave_up: list[str] = []

    async def _publish(self, event: Event) -> None:
        # Waits for the commit: a restarted deterministic actor reads its failures (the
        # inputs to skip) from the journal, and everything the failed incarnation published
        # is ahead of this record in the bus's first-in first-out inbox.
        with trio.CancelScope(shield=True):
            await self.bus.publish([event], source=SOURCE, wait=True)

    async def run(
        self,
        specs: Sequence[ChildSpec],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Start every child in order (each one serving before the next starts), then
        supervise them until :meth:`stop` or until all have ended. A stop requested while
        children are still starting starts no further child."""
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"actor names must be unique; repeated: {', '.join(duplicates)}")
        self._entered = True
        async with trio.open_nursery() as nursery:
            for spec in specs:
                if self._stopping:
                    break
                self._running += 1
                await nursery.start(self._supervise, spec)
            self._launched = True
            self._maybe_all_done()
            task_status.started()

    def _maybe_all_done(self) -> None:
        if self._running == 0 and self._launched:
            self._all_done.set()

    async def stop(self) -> None:
        """Ask every child to stop, wait up to the grace period, then cancel the rest."""
        self._stopping = True
        if not self._entered:
            self._all_done.set()
        for ctx in self._contexts.values():
            ctx.stop_requested.set()
        with trio.move_on_after(self.grace_s):
            await self._all_done.wait()
        for scope in self._scopes.values():
            scope.cancel()
        await self._all_done.wait()

    def _context(self, name: str, incarnation: int) -> ActorContext:
        return ActorContext(
            name=name,
            bus=self.bus,
            clock=self.clock,
            session_seq=self.session_seq,
            rng=random.Random(f"{self.seed}:{name}:{incarnation}"),
        )

    async def _supervise(
        self, spec: ChildSpec, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await self._supervise_child(spec, task_status)
        finally:
            self._running -= 1
            self._maybe_all_done()

    async def _supervise_child(self, spec: ChildSpec, task_status: trio.TaskStatus[None]) -> None:
        failures: collections.deque[float] = collections.deque()
        incarnation = 0
        reported_started = False
        ctx: ActorContext | None = None
        # Every way out leaves an actor.stopped record, so replay knows where the actor's
        # inputs end even when the last incarnation failed and was not restarted.
        unrecorded_stop = False

        def started() -> None:
            nonlocal reported_started
            if not reported_started:
                reported_started = True
                task_status.started()

        while not self._stopping:
            incarnation += 1
            ctx = self._context(spec.name, incarnation)
            self._contexts[spec.name] = ctx
            if self._stopping:
                break
            error = await self._run_incarnation(spec, ctx, incarnation, started)
            if error is None:
                await self._publish(
                    ActorStopped(
                        actor=spec.name, incarnation=incarnation, last_input_seq=ctx.last_input_seq
                    )
                )
                unrecorded_stop = False
                if self._stopping or spec.restart is not RestartPolicy.PERMANENT:
                    break
            else:
                leaves = failure_leaves(error)
                handler = next((e for e in leaves if isinstance(e, HandlerFailed)), None)
                cause = handler.error if handler is not None else leaves[0]
                await self._publish(
                    ActorFailed(
                        actor=spec.name,
                        incarnation=incarnation,
                        error_type=type(cause).__name__,
                        error=str(cause),
                        input_seq=handler.input_seq if handler is not None else None,
                    )
                )
                unrecorded_stop = True
                if spec.restart is RestartPolicy.TEMPORARY:
                    break
            now = trio.current_time()
            failures.append(now)
            while failures and failures[0] <= now - spec.window_s:
                failures.popleft()
            if len(failures) > spec.max_restarts:
                self.gave_up.append(spec.name)
                await self._publish(
                    ActorGaveUp(actor=spec.name, failures=len(failures), window_s=spec.window_s)
                )
                if self.on_give_up is not None:
                    self.on_give_up(spec.name)
                break
            delay = min(spec.backoff_max_s, spec.backoff_initial_s * 2 ** (len(failures) - 1))
            delay *= 1 + spec.jitter * self._rng.uniform(-1.0, 1.0)
            with trio.CancelScope() as backoff:
                self._scopes[spec.name] = backoff
                if self._stopping:
                    backoff.cancel()
                await trio.sleep(delay)
            if self._stopping:
                break
            self.restarts[spec.name] += 1
            await self._publish(
                ActorRestarted(
                    actor=spec.name,
                    incarnation=incarnation + 1,
                    delay_ms=round(delay * 1000),
                    failures_in_window=len(failures),
                )
            )
        if unrecorded_stop and ctx is not None:
            await self._publish(
                ActorStopped(
                    actor=spec.name, incarnation=incarnation, last_input_seq=ctx.last_input_seq
                )
            )
        started()

    async def _run_incarnation(
        self,
        spec: ChildSpec,
        ctx: ActorContext,
        incarnation: int,
        started: Callable[[], None],
    ) -> BaseException | None:
        """Run one incarnation; return its failure, or None when it returned or was stopped."""
        with trio.CancelScope() as scope:
            self._scopes[spec.name] = scope
            try:
                async with trio.open_nursery() as nursery:
                    actor = spec.factory()
                    await nursery.start(actor.run, ctx)
                    await self._publish(ActorStarted(actor=spec.name, incarnation=incarnation))
                    started()
            except Exception as exc:
                return exc
            except BaseExceptionGroup as group:
                # A failure raised while the actor was being cancelled: report the failure;
                # the cancellation itself is this scope's or is re-delivered at the next
                # checkpoint.
                _, failures = group.split(trio.Cancelled)
                if failures is None:
                    raise
                return failures
        return None
