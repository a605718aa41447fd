"""What an actor is, and the context through which it reaches the rest of the system.

Two kinds of actor exist:

* **Edge actors** implement :class:`Actor`: an ``async run(ctx)`` that may do I/O (sockets,
  timers) and publishes what it observed as input events (``cause`` empty).
* **Deterministic actors** subclass :class:`FoldActor`: a synchronous ``handle(envelope)``
  that returns the events to publish. They never await, never read a clock (time is
  ``envelope.ts_ns``) and draw randomness only from ``self.rng``. The runtime drives them,
  and replay re-runs them on the recorded inputs to check that the journal is reproducible.

Actors never call each other; the bus is the only channel.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Protocol

import attrs
import trio

from actors.bus import Bus, Subscription
from actors.clock import Clock
from events.base import Envelope, Event


class Actor(Protocol):
    """An edge actor: it runs until cancelled (or returns when its work is done)."""

    name: str

    async def run(self, ctx: ActorContext, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the actor. Call ``task_status.started()`` once it is serving (data flows)."""
        ...


@attrs.define(eq=False)
class ActorContext:
    """An actor's handle on the system. ``publish`` always uses the actor's own name as the
    source, so an actor cannot speak for another.

    Attributes:
        name: the actor's name (unique within the session).
        session_seq: seq of this session's ``session.started`` record.
        rng: seeded from the session seed and the actor's name; never the global one.
        stop_requested: set when the supervisor asks the actor to finish; an actor that does
            not return within the grace period is cancelled.
        last_input_seq: progress a deterministic actor reports (the last input handled).
    """

    name: str
    bus: Bus
    clock: Clock
    session_seq: int
    rng: random.Random
    stop_requested: trio.Event = attrs.field(factory=trio.Event)
    last_input_seq: int | None = None

    async def publish(
        self,
        events: Iterable[Event],
        *,
        cause: int | None = None,
        wait: bool = False,
        durable: bool = False,
    ) -> int | None:
        """Publish events as this actor; see :meth:`actors.bus.Bus.publish`."""
        return await self.bus.publish(
            events, source=self.name, cause=cause, wait=wait, durable=durable
        )

    def subscribe(
        self, tags: Sequence[str] = (), *, from_seq: int | None = None, capacity: int = 8192
    ) -> Subscription:
        """Subscribe to events by exact tag or by prefix ending in ``.``."""
        return self.bus.subscribe(self.name, tags=tags, from_seq=from_seq, capacity=capacity)

    def now_ns(self) -> int:
        """The session clock; for edge actors only (deterministic ones use ``ts_ns``)."""
        return self.clock.now_ns()

    async def cancel_on_stop(self, scope: trio.CancelScope) -> None:
        """Cancel ``scope`` once a stop is requested; run it as a task beside the work."""
        await self.stop_requested.wait()
        scope.cancel()


class FoldActor:
    """Base of deterministic actors.

    Subclasses set ``SUBSCRIPTIONS`` (exact tags or prefixes ending in ``.``) and implement
    :meth:`handle`. Their state lives on ``self`` and is rebuilt from the journal after a
    restart, so it is scoped to the session: each session folds from its own
    ``session.started`` record.
    """

    SUBSCRIPTIONS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, *, seed: int | str, params: dict[str, Any] | None = None):
        self.name = name
        self.params: dict[str, Any] = dict(params or {})
        self.rng = random.Random(f"{seed}:{name}")

    @property
    def subscriptions(self) -> tuple[str, ...]:
        return self.SUBSCRIPTIONS

    def handle(self, envelope: Envelope) -> Sequence[Event]:
        """Fold one input into the state and return the events it produces (maybe none)."""
        raise NotImplementedError


class HandlerFailed(Exception):
    """A deterministic actor raised while handling the record ``input_seq``."""

    def __init__(self, actor: str, input_seq: int, error: BaseException) -> None:
        super().__init__(f"{actor} failed on seq {input_seq}: {type(error).__name__}: {error}")
        self.actor = actor
        self.input_seq = input_seq
        self.error = error
