"""Drives a deterministic actor on the live bus, exactly once per input.

On every (re)start the actor is rebuilt by folding its inputs from the start of the session.
Outputs it already published for an input (found in the journal by source and cause) are not
published again, and inputs on which an earlier incarnation failed are skipped, so a restart
neither duplicates outputs nor crashes again on the same record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import trio

from actors.base import ActorContext, FoldActor, HandlerFailed
from actors.bus import Bus
from events.system import ActorFailed


async def recorded_history(bus: Bus, actor: str, first_seq: int) -> tuple[dict[int, int], set[int]]:
    """What the journal says ``actor`` did from ``first_seq`` up to now.

    Returns:
        (outputs already published per cause seq, input seqs an incarnation failed on)
    """
    last_seq = bus.last_delivered_seq
    store = bus.store

    def scan() -> tuple[dict[int, int], set[int]]:
        published: dict[int, int] = {}
        failed: set[int] = set()
        needle = orjson.dumps(actor)
        for _, payload in store.read(first_seq, last_seq):
            if needle not in payload:
                continue
            record = orjson.loads(payload)
            if record["source"] == actor and record["cause"] is not None:
                published[record["cause"]] = published.get(record["cause"], 0) + 1
            event = record["event"]
            if (
                event["type"] == ActorFailed.TAG
                and event.get("actor") == actor
                and event.get("input_seq") is not None
            ):
                failed.add(event["input_seq"])
        return published, failed

    if store.blocking:
        return await trio.to_thread.run_sync(scan)
    await trio.lowlevel.checkpoint()
    return scan()


class FoldRunner:
    """The edge between a :class:`FoldActor` and the bus (see the module docstring)."""

    def __init__(self, factory: Callable[[], FoldActor]) -> None:
        self.actor = factory()
        self.name = self.actor.name

    async def run(self, ctx: ActorContext, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        actor = self.actor
        published, failed = await recorded_history(ctx.bus, actor.name, ctx.session_seq)
        caught_up_at = ctx.bus.last_delivered_seq
        started = False
        with ctx.subscribe(actor.subscriptions, from_seq=ctx.session_seq) as subscription:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ctx.cancel_on_stop, nursery.cancel_scope)
                while True:
                    if not started and subscription.position > caught_up_at:
                        started = True
                        task_status.started()
                    try:
                        batch = await subscription.receive_batch()
                    except trio.EndOfChannel:
                        break
                    for envelope in batch:
                        seq = envelope.seq
                        if seq in failed:
                            continue
                        try:
                            outputs = actor.handle(envelope)
                        except Exception as exc:
                            raise HandlerFailed(actor.name, seq, exc) from exc
                        already = published.pop(seq, 0)
                        if len(outputs) > already:
                            # Shielded: an input is either fully handled or not at all.
                            with trio.CancelScope(shield=True):
                                await ctx.publish(outputs[already:], cause=seq)
                        ctx.last_input_seq = seq
                nursery.cancel_scope.cancel()
        if not started:
            task_status.started()
