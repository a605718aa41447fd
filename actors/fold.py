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
from actors.bus import Bus, OutputBatch
from events.base import Envelope
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
                    await self._fold(ctx, batch, published, failed)
                nursery.cancel_scope.cancel()
        if not started:
            task_status.started()

    async def _fold(
        self,
        ctx: ActorContext,
        batch: list[Envelope],
        published: dict[int, int],
        failed: set[int],
    ) -> None:
        """Handle one received batch; publish its outputs, each with its input's seq as
        cause, in a few publishes of about the bus's ``max_batch`` events (one, usually).

        Nothing awaits between two inputs unless a publish must wait for room, so the
        outcome is as if each input had published on its own: an input's outputs are
        published all or none (the publishes are shielded: once added, outputs are
        published whatever cancels the runner), and when an input fails (its handler, or
        the encoding of its outputs, raises) the outputs of the inputs before it are still
        published and none of its own. ``last_input_seq`` follows what was published.
        """
        actor = self.actor
        outputs = ctx.bus.output_batch(ctx.name)
        add = outputs.add
        limit = ctx.bus.max_batch
        #: The last input handled, and the last one handled before the first input whose
        #: outputs wait in ``outputs``.
        handled: int | None = None
        quiet: int | None = None
        flushing = False
        try:
            for envelope in batch:
                seq = envelope.seq
                if seq in failed:
                    continue
                try:
                    produced = actor.handle(envelope)
                except Exception as exc:
                    raise HandlerFailed(actor.name, seq, exc) from exc
                already = published.pop(seq, 0)
                if len(produced) > already:
                    waiting = len(outputs)
                    if not waiting:
                        quiet = handled
                    elif waiting >= limit:
                        flushing = True
                        await _flush(ctx, outputs, quiet, handled)
                        flushing = False
                        quiet = handled
                    add(produced[already:] if already else produced, cause=seq)
                handled = seq
        except BaseException:
            if not flushing:
                await _flush(ctx, outputs, quiet, handled)
            raise
        await _flush(ctx, outputs, quiet, handled)


async def _flush(
    ctx: ActorContext, outputs: OutputBatch, quiet: int | None, handled: int | None
) -> None:
    """Publish ``outputs`` (shielded: an input is either fully handled or not at all);
    then ``handled`` is the last input handled, or ``quiet`` when the publish failed."""
    if outputs:
        try:
            with trio.CancelScope(shield=True):
                await outputs.publish()
        except BaseException:
            if quiet is not None:
                ctx.last_input_seq = quiet
            raise
    if handled is not None:
        ctx.last_input_seq = handled
