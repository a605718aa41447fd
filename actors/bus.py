"""The bus: the journal's single writer and the only way events move between actors.

Publishers hand events to the bus; one writer task drains what is waiting (group commit),
assigns consecutive seqs, appends the batch to the journal store (fsync per the store's
policy), and only then delivers it to subscribers. What an actor sees is therefore exactly
what the journal holds.

Each subscription has a bounded buffer. A subscriber that falls so far behind that a batch
would overflow it is detached from live delivery and re-reads the missed range from the
journal; once it has caught up it is attached again. Nothing is dropped and the writer never
waits for a slow subscriber.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import orjson
import trio

from actors.clock import Clock, LiveClock
from events.base import Envelope, Event
from events.codec import Codec, default_codec
from events.journal import JournalStore
from events.registry import selects

#: Records read from the journal per catch-up step of a lagging subscriber.
CATCH_UP_CHUNK = 4096


class BusClosed(Exception):
    """The bus no longer accepts events (the session is stopping)."""


@attrs.frozen
class SubscriptionStatistics:
    """``depth``: envelopes buffered; ``lag``: committed records this subscriber has not yet
    passed (taken or skipped as not selected); ``lagging``: detached from live delivery and
    reading the journal."""

    name: str
    depth: int
    capacity: int
    lag: int
    lagging: bool
    catch_ups: int
    taken: int


@attrs.frozen
class BusStatistics:
    next_seq: int
    last_delivered_seq: int
    inbox_depth: int
    batches: int
    records: int
    largest_batch: int
    subscriptions: tuple[SubscriptionStatistics, ...]


#: (source as JSON, cause, events, their encoded bodies): events published with one cause.
_Group = tuple[bytes, int | None, Sequence[Event], list[bytes]]


@attrs.define(eq=False)
class _Pending:
    """One publish waiting for the writer: one group, or (an :class:`OutputBatch`) the
    groups of several causes, committed together."""

    groups: list[_Group]
    count: int
    source: str
    durable: bool
    done: trio.Event | None
    last_seq: int = 0
    failed: bool = False

    def fail(self) -> None:
        self.failed = True
        if self.done is not None:
            self.done.set()


def _envelope_maker() -> Any:
    """``(seq, ts_ns, source, cause, event) -> Envelope``, filling the slots directly: half
    the cost of the attrs ``__init__``, which does nothing else for Envelope (checked here:
    otherwise the constructor is used)."""

    def construct(seq: int, ts_ns: int, source: str, cause: int | None, event: Event) -> Envelope:
        return Envelope(seq=seq, ts_ns=ts_ns, source=source, cause=cause, event=event)

    names = ("seq", "ts_ns", "source", "cause", "event")
    fields = attrs.fields(Envelope)
    plain = (
        tuple(f.name for f in fields) == names
        and all(f.init and f.validator is None and f.converter is None for f in fields)
        and not hasattr(Envelope, "__attrs_post_init__")
        and not hasattr(Envelope, "__attrs_pre_init__")
        and set(Envelope.__slots__) <= {*names, "__weakref__"}
        and all(type(Envelope.__dict__.get(name)).__name__ == "member_descriptor" for name in names)
    )
    if not plain:
        return construct
    new = object.__new__
    set_seq, set_ts_ns, set_source, set_cause, set_event = (
        Envelope.__dict__[name].__set__ for name in names
    )

    def make(seq: int, ts_ns: int, source: str, cause: int | None, event: Event) -> Envelope:
        envelope = new(Envelope)
        set_seq(envelope, seq)
        set_ts_ns(envelope, ts_ns)
        set_source(envelope, source)
        set_cause(envelope, cause)
        set_event(envelope, event)
        return envelope

    return make


_make_envelope = _envelope_maker()


class Subscription:
    """A subscriber's view of the journal, from a seq onwards, filtered by tags.

    Iterate it (``async for envelope in subscription``) or take whole batches with
    :meth:`receive_batch`. Cancelling a receive loses nothing: undelivered envelopes stay
    buffered or in the journal.
    """

    def __init__(
        self,
        bus: Bus,
        name: str,
        selectors: tuple[str, ...],
        capacity: int,
        cursor: int,
    ) -> None:
        self._bus = bus
        self.name = name
        self.selectors = selectors
        self.capacity = capacity
        self._buffer: collections.deque[Envelope] = collections.deque()
        #: Every seq below the cursor is buffered, taken, or not selected.
        self._cursor = cursor
        self._lagging = cursor <= bus.last_delivered_seq
        self._lot = trio.lowlevel.ParkingLot()
        self._wanted: dict[str, bool] = {}
        self._closed = False
        self._catch_ups = 0
        self._taken = 0

    def wants(self, tag: str) -> bool:
        wanted = self._wanted.get(tag)
        if wanted is None:
            wanted = selects(tag, self.selectors)
            self._wanted[tag] = wanted
        return wanted

    @property
    def position(self) -> int:
        """The seq of the next record this subscriber would see (taken or skipped)."""
        return self._buffer[0].seq if self._buffer else self._cursor

    def _deliver(self, envelopes: list[Envelope], first_seq: int, last_seq: int) -> None:
        if self._closed:
            return
        if self._lagging or last_seq < self._cursor:
            self._lot.unpark_all()
            return
        if self._cursor > first_seq:
            envelopes = [e for e in envelopes if e.seq >= self._cursor]
        if not self.selectors:
            wanted = envelopes
        else:
            known = self._wanted
            try:
                wanted = [e for e in envelopes if known[e.event.TAG]]
            except KeyError:
                wanted = [e for e in envelopes if self.wants(e.event.TAG)]
        if len(self._buffer) + len(wanted) > self.capacity:
            # Detach; the records from the cursor on are re-read from the journal.
            self._lagging = True
            self._catch_ups += 1
        else:
            self._buffer.extend(wanted)
            self._cursor = last_seq + 1
        self._lot.unpark_all()

    async def _fill(self, *, once: bool) -> None:
        """Wait until something is buffered; with ``once`` return after one catch-up step
        even when it found nothing selected."""
        while not self._buffer:
            if self._closed:
                raise trio.EndOfChannel
            if self._lagging:
                await self._catch_up_step()
                if once:
                    return
                continue
            if self._bus.finished and self._cursor > self._bus.last_delivered_seq:
                raise trio.EndOfChannel
            await self._lot.park()

    async def receive_batch(self) -> list[Envelope]:
        """Return every envelope available now, waiting when there are none.

        May return an empty list when a catch-up step found nothing selected, so callers can
        observe progress through :attr:`position`.

        Raises:
            trio.EndOfChannel: the subscription was closed, or the bus has closed and
                everything committed was taken.
        """
        await trio.lowlevel.checkpoint()
        await self._fill(once=True)
        batch = list(self._buffer)
        self._buffer.clear()
        if batch:
            self._taken += len(batch)
        return batch

    async def _catch_up_step(self) -> None:
        target = self._bus.last_delivered_seq
        if self._cursor > target:
            self._lagging = False
            await trio.lowlevel.checkpoint()
            return
        end = min(target, self._cursor + min(CATCH_UP_CHUNK, self.capacity) - 1)
        envelopes = await self._bus.read(self._cursor, end)
        self._buffer.extend(e for e in envelopes if self.wants(e.event.TAG))
        self._cursor = end + 1
        # No checkpoint between this test and the assignment: a batch cannot slip between.
        if self._cursor > self._bus.last_delivered_seq:
            self._lagging = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Envelope:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            await self._fill(once=False)
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        envelope = self._buffer.popleft()
        self._taken += 1
        return envelope

    def close(self) -> None:
        """Stop receiving; a parked receiver gets EndOfChannel."""
        self._closed = True
        self._bus._detach(self)
        self._lot.unpark_all()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def statistics(self) -> SubscriptionStatistics:
        return SubscriptionStatistics(
            name=self.name,
            depth=len(self._buffer),
            capacity=self.capacity,
            lag=self._bus.last_delivered_seq - self.position + 1,
            lagging=self._lagging,
            catch_ups=self._catch_ups,
            taken=self._taken,
        )


class OutputBatch:
    """The outputs of several inputs, published as one unit with one inbox slot: how a
    deterministic actor publishes what it produced from a batch of inputs.

    :meth:`add` checks the cause and encodes the events at once, so an unencodable event or
    a bad cause raises there, in the caller, as :meth:`Bus.publish` would, and nothing of that
    call is kept. :meth:`publish` then queues every added event, in order, each with its own
    cause; like ``publish`` without ``wait``, it returns once queued, and once queued the
    events are written even if the caller is cancelled. The whole batch is one unit: it is
    queued entirely or (cancelled while waiting for room, or the bus closed) not at all.
    The writer commits it whole, so its size adds to the records of that commit (see
    ``max_batch``): publish before it grows much beyond.
    """

    __slots__ = ("_bus", "_count", "_groups", "_source_json", "source")

    def __init__(self, bus: Bus, source: str) -> None:
        self._bus = bus
        self.source = source
        self._source_json = bus._source_bytes(source)
        self._groups: list[_Group] = []
        self._count = 0

    def __len__(self) -> int:
        """Events added and not yet published."""
        return self._count

    def add(self, events: Iterable[Event], *, cause: int | None) -> None:
        """Add ``events`` caused by the record ``cause`` (see :meth:`Bus.publish`).

        Raises:
            TypeError: an event is not a registered class or cannot be encoded.
            ValueError: ``cause`` does not name an existing record.
        """
        events = tuple(events)
        if not events:
            return
        bus = self._bus
        if cause is not None and not 1 <= cause < bus._next_seq:
            raise ValueError(f"cause {cause} is not the seq of an existing record")
        encode = bus.codec.encode_event
        self._groups.append((self._source_json, cause, events, [encode(e) for e in events]))
        self._count += len(events)

    async def publish(self) -> None:
        """Queue everything added and start afresh (does nothing when nothing was added).
        Whatever happens, the batch is empty afterwards.

        Raises:
            BusClosed: the bus is stopping (nothing was queued).
        """
        if not self._count:
            await trio.lowlevel.checkpoint()
            return
        pending = _Pending(
            groups=self._groups,
            count=self._count,
            source=self.source,
            durable=False,
            done=None,
        )
        self._groups = []
        self._count = 0
        await self._bus._enqueue(pending)


class Bus:
    """Single writer of the journal; see the module docstring.

    Args:
        store: the journal store; the bus is its only writer while it runs.
        clock: stamps ``ts_ns`` on each batch.
        inbox_size: publishes that may wait for the writer before publishers block.
        max_batch: most records written by one group commit.
        sync_when_idle_s: with the ``interval`` fsync policy, fsync once the inbox has been
            idle this long, so a quiet journal is not left unsynced; None never does.
    """

    def __init__(
        self,
        store: JournalStore,
        *,
        clock: Clock | None = None,
        codec: Codec | None = None,
        inbox_size: int = 1024,
        max_batch: int = 4096,
        sync_when_idle_s: float | None = None,
    ) -> None:
        self.store = store
        self.clock = clock if clock is not None else LiveClock()
        self.codec = codec if codec is not None else default_codec()
        self.max_batch = max_batch
        self.sync_when_idle_s = sync_when_idle_s
        self._unsynced = False
        self._send, self._receive = trio.open_memory_channel[_Pending](inbox_size)
        self._next_seq = store.next_seq
        self._delivered = store.next_seq - 1
        self._subscriptions: list[Subscription] = []
        self._source_json: dict[str, bytes] = {}
        self.finished = False
        self._batches = 0
        self._records = 0
        self._largest_batch = 0

    @property
    def last_delivered_seq(self) -> int:
        """The last seq that is in the journal and has been handed to subscribers."""
        return self._delivered

    async def publish(
        self,
        events: Iterable[Event],
        *,
        source: str,
        cause: int | None = None,
        wait: bool = False,
        durable: bool = False,
    ) -> int | None:
        """Queue events for the journal, in order, as one unit.

        Args:
            events: registered event instances; each is encoded here, so an unencodable
                event raises in the caller and never reaches the journal.
            source: the publishing actor's name.
            cause: the seq whose handling produced these events; None for inputs.
            wait: return only once the events are in the journal and delivered.
            durable: like ``wait``, and the journal is fsynced whatever its policy
                (write-ahead for side effects).

        Returns:
            The seq of the last event when waiting, else None.

        Raises:
            TypeError: an event is not a registered class or cannot be encoded.
            ValueError: ``cause`` does not name an existing record.
            BusClosed: the bus is stopping.

        Scheduling: publish always checks for cancellation but yields to other tasks only
        when it must wait (a full inbox, or ``wait``/``durable``), so a burst of publishes
        reaches the writer as one group commit. The inbox is bounded, so a publisher can
        run ahead of the writer by at most ``inbox_size`` publishes.

        Cancellation: if cancelled while waiting for room in the inbox nothing was queued;
        if cancelled while waiting for the commit the events are still written.
        """
        events = tuple(events)
        if not events:
            await trio.lowlevel.checkpoint()
            return None
        if cause is not None and not 1 <= cause < self._next_seq:
            raise ValueError(f"cause {cause} is not the seq of an existing record")
        encode = self.codec.encode_event
        bodies = [encode(event) for event in events]
        source_json = self._source_json.get(source)
        if source_json is None:
            source_json = self._source_bytes(source)
        waits = wait or durable
        pending = _Pending(
            groups=[(source_json, cause, events, bodies)],
            count=len(events),
            source=source,
            durable=durable,
            done=trio.Event() if waits else None,
        )
        try:
            # Yield to the scheduler only when the inbox is full: a burst of publishes then
            # reaches the writer as one batch instead of costing a scheduling round each.
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                self._send.send_nowait(pending)
            except trio.WouldBlock:
                await self._send.send(pending)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise BusClosed(f"the bus is closed; {source} could not publish") from None
        if pending.done is None:
            return None
        await pending.done.wait()
        if pending.failed:
            raise BusClosed(f"the journal writer stopped before {source}'s events were written")
        return pending.last_seq

    def output_batch(self, source: str) -> OutputBatch:
        """Collect the outputs of several inputs and publish them as one unit (see
        :class:`OutputBatch`)."""
        return OutputBatch(self, source)

    def _source_bytes(self, source: str) -> bytes:
        source_json = self._source_json.get(source)
        if source_json is None:
            source_json = self._source_json[source] = orjson.dumps(source)
        return source_json

    async def _enqueue(self, pending: _Pending) -> None:
        """Queue ``pending`` as publish does (for :class:`OutputBatch`)."""
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            try:
                self._send.send_nowait(pending)
            except trio.WouldBlock:
                await self._send.send(pending)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise BusClosed(f"the bus is closed; {pending.source} could not publish") from None

    def subscribe(
        self,
        name: str,
        *,
        tags: Sequence[str] = (),
        from_seq: int | None = None,
        capacity: int = 8192,
    ) -> Subscription:
        """Open a subscription.

        Args:
            name: who subscribes (shown in statistics).
            tags: exact tags or prefixes ending in ``.``; empty means every event.
            from_seq: first seq to see; records already committed are read from the journal
                first. None means only records committed from now on.
            capacity: most envelopes buffered before the subscriber is detached to catch up
                from the journal.
        """
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        cursor = self._delivered + 1 if from_seq is None else max(1, from_seq)
        subscription = Subscription(self, name, tuple(tags), capacity, cursor)
        self._subscriptions.append(subscription)
        return subscription

    def _detach(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    async def read(self, first_seq: int, last_seq: int) -> list[Envelope]:
        """Decode committed records ``first_seq..last_seq`` from the journal."""
        decode = self.codec.decode

        def load() -> list[Envelope]:
            return [decode(payload) for _, payload in self.store.read(first_seq, last_seq)]

        if self.store.blocking:
            return await trio.to_thread.run_sync(load)
        await trio.lowlevel.checkpoint()
        return load()

    def close(self) -> None:
        """Stop accepting events; the writer commits what is queued and then returns."""
        self._send.close()

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """The writer loop. Returns after :meth:`close` once the inbox is drained.

        Any error here (the disk is full, the store is broken) propagates: the bus is a
        critical child and the session stops rather than run on a journal it cannot trust.
        """
        task_status.started()
        try:
            while True:
                try:
                    first = await self._next_or_idle_sync()
                except trio.EndOfChannel:
                    break
                await self._commit(self._drain(first))
        finally:
            # Whatever ends the writer, nobody may wait forever for a commit.
            self.finished = True
            self._send.close()
            while True:
                try:
                    self._receive.receive_nowait().fail()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            self._receive.close()
            for subscription in list(self._subscriptions):
                subscription._lot.unpark_all()

    async def _next_or_idle_sync(self) -> _Pending:
        while self._unsynced and self.sync_when_idle_s is not None:
            with trio.move_on_after(self.sync_when_idle_s):
                return await self._receive.receive()
            if self.store.blocking:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self.store.sync)
            else:
                self.store.sync()
            self._unsynced = False
        return await self._receive.receive()

    def _drain(self, first: _Pending) -> list[_Pending]:
        batch = [first]
        count = first.count
        while count < self.max_batch:
            try:
                item = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            batch.append(item)
            count += item.count
        return batch

    async def _commit(self, batch: list[_Pending]) -> None:
        ts_ns = self.clock.now_ns()
        seq = first_seq = self._next_seq
        make_envelope = _make_envelope
        groups: list[_Group] = []
        envelopes: list[Envelope] = []
        durable = False
        for item in batch:
            durable = durable or item.durable
            source = item.source
            groups += item.groups
            for _, cause, events, _ in item.groups:
                for event in events:
                    envelopes.append(make_envelope(seq, ts_ns, source, cause, event))
                    seq += 1
            item.last_seq = seq - 1
        records = self.codec.assemble_records(first_seq, ts_ns, groups)
        store = self.store
        try:
            if store.blocking:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(_append, store, records, durable)
            else:
                _append(store, records, durable)
        except BaseException:
            for item in batch:
                item.fail()
            raise
        if not store.blocking:
            await trio.lowlevel.checkpoint()
        self._next_seq = seq
        self._delivered = seq - 1
        self._unsynced = not durable
        self._batches += 1
        self._records += len(records)
        self._largest_batch = max(self._largest_batch, len(records))
        for item in batch:
            if item.done is not None:
                item.done.set()
        for subscription in list(self._subscriptions):
            subscription._deliver(envelopes, first_seq, seq - 1)

    def statistics(self) -> BusStatistics:
        return BusStatistics(
            next_seq=self._next_seq,
            last_delivered_seq=self._delivered,
            inbox_depth=self._send.statistics().current_buffer_used,
            batches=self._batches,
            records=self._records,
            largest_batch=self._largest_batch,
            subscriptions=tuple(s.statistics() for s in self._subscriptions),
        )


def _append(store: JournalStore, records: list[tuple[int, bytes]], durable: bool) -> None:
    store.append(records)
    if durable:
        store.sync()


__all__ = [
    "Bus",
    "BusClosed",
    "BusStatistics",
    "OutputBatch",
    "Subscription",
    "SubscriptionStatistics",
]
