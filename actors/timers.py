"""The timer edge: turns ``timer.schedule`` commands into recorded ``timer.fired`` inputs.

Deterministic actors never sleep. They publish :class:`~events.system.ScheduleTimer` and
later receive :class:`~events.system.TimerFired` like any other input, so replay sees time
exactly as it passed. Timers belong to the session; after a restart the service rebuilds its
schedule from the session's journal and continues the firing counts.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import attrs
import trio

from actors.base import ActorContext
from actors.bus import Subscription
from events.system import CancelTimer, ScheduleTimer, TimerFired

NAME = "timers"


@attrs.define
class _Timer:
    interval_s: float | None
    count: int
    generation: int
    due: float


class TimerService:
    """Edge actor firing the timers that actors schedule."""

    name = NAME

    def __init__(self) -> None:
        self._timers: dict[tuple[str, str], _Timer] = {}
        self._heap: list[tuple[float, int, tuple[str, str]]] = []
        self._generation = 0

    def _apply(self, event: Any, now: float, *, replaying: bool) -> None:
        if isinstance(event, ScheduleTimer):
            key = (event.owner, event.name)
            self._generation += 1
            interval = None if event.interval_ms is None else event.interval_ms / 1000
            timer = _Timer(interval, 0, self._generation, now + event.delay_ms / 1000)
            self._timers[key] = timer
            heapq.heappush(self._heap, (timer.due, timer.generation, key))
        elif isinstance(event, CancelTimer):
            self._timers.pop((event.owner, event.name), None)
        elif isinstance(event, TimerFired) and replaying:
            timer = self._timers.get((event.owner, event.name))
            if timer is not None:
                timer.count = event.count
                if timer.interval_s is None:
                    del self._timers[(event.owner, event.name)]

    async def run(self, ctx: ActorContext, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        now = trio.current_time()
        caught_up_at = ctx.bus.last_delivered_seq
        history = await ctx.bus.read(ctx.session_seq, caught_up_at)
        for envelope in history:
            self._apply(envelope.event, now, replaying=True)
        with ctx.subscribe(
            (ScheduleTimer.TAG, CancelTimer.TAG), from_seq=caught_up_at + 1
        ) as subscription:
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ctx.cancel_on_stop, nursery.cancel_scope)
                await self._serve(ctx, subscription)
                nursery.cancel_scope.cancel()

    async def _serve(self, ctx: ActorContext, subscription: Subscription) -> None:
        while True:
            deadline = self._heap[0][0] if self._heap else math.inf
            with trio.move_on_at(deadline):
                try:
                    batch = await subscription.receive_batch()
                except trio.EndOfChannel:
                    return
                now = trio.current_time()
                for envelope in batch:
                    self._apply(envelope.event, now, replaying=False)
                continue
            await self._fire_due(ctx)

    async def _fire_due(self, ctx: ActorContext) -> None:
        now = trio.current_time()
        fired: list[TimerFired] = []
        while self._heap and self._heap[0][0] <= now:
            _, generation, key = heapq.heappop(self._heap)
            timer = self._timers.get(key)
            if timer is None or timer.generation != generation:
                continue
            timer.count += 1
            fired.append(TimerFired(owner=key[0], name=key[1], count=timer.count))
            if timer.interval_s is None:
                del self._timers[key]
                continue
            # Keep the cadence; if the loop fell behind by whole intervals, skip them.
            timer.due += timer.interval_s
            if timer.due <= now:
                timer.due = now + timer.interval_s
            heapq.heappush(self._heap, (timer.due, generation, key))
        await ctx.publish(fired)
