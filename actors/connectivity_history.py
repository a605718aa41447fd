"""What the session's journal says the connectivity actor was doing: what a restart needs.

A new incarnation of the connectivity actor (after a crash) rebuilds its duties from the
journal, never from memory (no state crosses a restart): the streams still wanted, the
requests left unanswered, and since when market and user data may be missing. :class:`History`
is that knowledge, folded record by record by :func:`fold`.

Since when data may be missing, per client and kind (``market`` or ``user``): every stream
connection the journal shows is tracked from its ``stream.connected`` record with a *mark*,
the receive time of its last journaled frame (or of the connected record itself):

* a live connection's loss would start at its mark;
* a connection that ended abnormally (``stream.disconnected`` with a reconnect planned) stays
  an **open loss** from its mark until the ``stream.gap`` naming it (market) or the next
  ``userstream.gap`` of its client (user) says the loss was reported;
* a connection that ended deliberately (no reconnect: rotation done, no streams left, client
  stopped) is dropped;
* a user-data session that stopped for good (``userstream.stopped``) is an open loss from
  its ``from_ms`` until a later ``userstream.gap`` of its client;
* a connection's incarnation is in its name (``spot~3#2`` belongs to incarnation 3, ``spot#2``
  to the first), never inferred from the order of records (an incarnation's first records
  may precede its ``actor.started``). Connections of earlier incarnations are dead: the
  restart gap of incarnation N (``<stream client>~N#restart``) removes that client's and
  stream client's connections of incarnations below N, and nothing else (its own lost
  connections stay until their own gaps); the first ``userstream.gap`` after a user
  connection of a newer incarnation appeared removes the client's older user connections.
  If the new incarnation dies too before reporting, the next one still reports from the
  oldest mark.

The start of the loss a restart reports is the oldest mark of the client's tracked
connections of that kind, so a connection that was in backoff when the actor died is not
hidden by a sibling that was still delivering (the loss is over-reported rather than
under-reported), and the session's first record when nothing was ever tracked.

Checkpoints: folding a long session's journal (millions of frames) takes long, so the actor
folds it in the background while it runs and saves the result as a snapshot
(:meth:`History.to_bytes`) in the journal's snapshot store; a restart loads the newest
snapshot of its session and folds only what came after it. A snapshot is an optimisation:
one that is missing, corrupt or from another session is ignored and the fold starts at the
session's first record.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from events.codec import Codec
from events.connectivity import (
    RestRequest,
    RestResponse,
    StreamConnected,
    StreamDisconnected,
    StreamFrame,
    StreamGap,
    SubscribeStreams,
    UnsubscribeStreams,
    UserStreamGap,
    UserStreamStopped,
)
from events.journal import JournalStore
from events.system import ActorFailed, ActorStarted

__all__ = ["RESTART_SUFFIX", "History", "fold", "incarnation_of", "kind_of", "stream_base"]

#: The connection name suffix of the ``stream.gap`` a restarted actor reports.
RESTART_SUFFIX = "#restart"
_SNAPSHOT_VERSION = 2
_COMMANDS = frozenset({RestRequest.TAG, SubscribeStreams.TAG, UnsubscribeStreams.TAG})
_LIFECYCLE = frozenset({ActorStarted.TAG, ActorFailed.TAG})
_OWN_STATUS = frozenset(
    {
        StreamConnected.TAG,
        StreamDisconnected.TAG,
        StreamGap.TAG,
        UserStreamGap.TAG,
        UserStreamStopped.TAG,
    }
)


def kind_of(connection: str) -> str:
    """``user`` for a user-data session's connection, else ``market``."""
    return "user" if "/user" in connection else "market"


def incarnation_of(connection: str) -> int:
    """The incarnation of the actor that named ``connection`` (``spot~3#2``: 3; no ``~``:
    the first)."""
    head = connection.partition("#")[0]
    _, tilde, number = head.partition("~")
    return int(number) if tilde and number.isdigit() else 1


def stream_base(connection: str) -> str:
    """A connection name without its serial and incarnation: ``spot/market~2#7`` ->
    ``spot/market`` (the stream client it belongs to, across restarts)."""
    return connection.partition("#")[0].partition("~")[0]


@attrs.define
class _Connection:
    client: str
    kind: str
    mark_ns: int
    lost: bool = False
    incarnation: int = 1


@attrs.define
class History:
    """The connectivity actor's duties as the journal records them, through ``through_seq``."""

    session_seq: int
    #: The last record folded in (0: none yet).
    through_seq: int = 0
    #: Streams wanted: client -> subscriber -> stream names (insertion-ordered).
    subscriptions: dict[str, dict[str, dict[str, None]]] = attrs.field(factory=dict)
    #: Requests without a response from this actor, by (client, call_id): (seq, request).
    unanswered: dict[tuple[str, str], list[tuple[int, RestRequest]]] = attrs.field(factory=dict)
    #: The highest incarnation of this actor the session's records name (0: none yet).
    incarnations: int = 0
    #: Tracked stream connections by name (see the module docstring).
    connections: dict[str, _Connection] = attrs.field(factory=dict)
    #: Bus time of the session's first record (the start of anything lost).
    first_ns: int | None = None

    def lost_since_ns(self, client: str, kind: str) -> int | None:
        """Where ``client``'s data of ``kind`` may have been lost from (None: no record)."""
        marks = [
            connection.mark_ns
            for connection in self.connections.values()
            if connection.client == client and connection.kind == kind
        ]
        return min(marks) if marks else self.first_ns

    def pending(self) -> list[RestRequest]:
        """The unanswered requests, in journal order."""
        found = sorted(
            (item for items in self.unanswered.values() for item in items),
            key=lambda item: item[0],
        )
        return [request for _, request in found]

    def wanted(self) -> list[SubscribeStreams]:
        """The subscriptions in force, as the commands that rebuild them."""
        return [
            SubscribeStreams(client=client, subscriber=subscriber, streams=tuple(streams))
            for client, subscribers in self.subscriptions.items()
            for subscriber, streams in subscribers.items()
            if streams
        ]

    def copy(self) -> History:
        """An independent copy (folding it leaves this one unchanged)."""
        return History.from_bytes(self.to_bytes(), self.session_seq)

    def to_bytes(self) -> bytes:
        """The snapshot form."""
        return orjson.dumps(
            {
                "version": _SNAPSHOT_VERSION,
                "session_seq": self.session_seq,
                "through_seq": self.through_seq,
                "subscriptions": {
                    client: {subscriber: list(streams) for subscriber, streams in subs.items()}
                    for client, subs in self.subscriptions.items()
                },
                "unanswered": [
                    [seq, attrs.asdict(request)]
                    for items in self.unanswered.values()
                    for seq, request in items
                ],
                "incarnations": self.incarnations,
                "connections": [
                    [name, c.client, c.kind, c.mark_ns, c.lost, c.incarnation]
                    for name, c in self.connections.items()
                ],
                "first_ns": self.first_ns,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, session_seq: int) -> History:
        """A snapshot read back; ValueError when it is not one of this session."""
        try:
            raw: Any = orjson.loads(data)
            if raw["version"] != _SNAPSHOT_VERSION or raw["session_seq"] != session_seq:
                raise ValueError("a snapshot of another session or version")
            history = cls(
                session_seq=session_seq,
                through_seq=int(raw["through_seq"]),
                subscriptions={
                    client: {sub: dict.fromkeys(streams) for sub, streams in subs.items()}
                    for client, subs in raw["subscriptions"].items()
                },
                incarnations=int(raw["incarnations"]),
                connections={
                    name: _Connection(client, kind, int(mark), bool(lost), int(incarnation))
                    for name, client, kind, mark, lost, incarnation in raw["connections"]
                },
                first_ns=raw["first_ns"],
            )
            for seq, fields in raw["unanswered"]:
                request = RestRequest(**fields)
                key = (request.client, request.call_id)
                history.unanswered.setdefault(key, []).append((int(seq), request))
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"not a connectivity snapshot of this session: {exc}") from None
        for items in history.unanswered.values():
            items.sort(key=lambda item: item[0])
        return history


def fold(history: History, store: JournalStore, codec: Codec, last: int, source: str) -> None:
    """Fold the records after ``history.through_seq`` up to ``last`` into ``history``
    (blocking: it reads the journal)."""
    first = max(history.through_seq + 1, history.session_seq)
    if last < first:
        return
    for seq, payload in store.read(first, last):
        _fold_one(history, codec, seq, payload, source)
        history.through_seq = seq


def _fold_one(history: History, codec: Codec, seq: int, payload: bytes, source: str) -> None:
    record = orjson.loads(payload)
    if history.first_ns is None:
        history.first_ns = record["ts_ns"]
    own = record["source"] == source
    stored = record["event"]
    tag = stored["type"]
    connections = history.connections
    if own and tag == StreamFrame.TAG:
        tracked = connections.get(stored["connection"])
        if tracked is not None:
            tracked.mark_ns = stored["received_ns"]
        return
    if own and tag in _OWN_STATUS:
        _fold_status(history, tag, stored, record["ts_ns"])
        return
    if tag in _LIFECYCLE and stored.get("actor") == source:
        # An incarnation that failed before it started has no actor.started: count both.
        history.incarnations = max(history.incarnations, int(stored.get("incarnation", 0)))
        return
    if tag not in _COMMANDS and not (own and tag == RestResponse.TAG):
        return
    event = codec.decode(payload).event
    if isinstance(event, RestRequest):
        history.unanswered.setdefault((event.client, event.call_id), []).append((seq, event))
    elif isinstance(event, RestResponse):
        key = (event.client, event.call_id)
        waiting = history.unanswered.get(key)
        if waiting:
            waiting.pop(0)
            if not waiting:
                del history.unanswered[key]
    elif isinstance(event, SubscribeStreams):
        streams = history.subscriptions.setdefault(event.client, {}).setdefault(
            event.subscriber, {}
        )
        streams.update(dict.fromkeys(event.streams))
    elif isinstance(event, UnsubscribeStreams):
        subscribers = history.subscriptions.get(event.client, {})
        streams = subscribers.get(event.subscriber)
        if streams is not None:
            for name in event.streams:
                streams.pop(name, None)
            if not streams:
                del subscribers[event.subscriber]


def _fold_status(history: History, tag: str, stored: dict[str, Any], ts_ns: int) -> None:
    connections = history.connections
    client = stored["client"]
    if tag == UserStreamStopped.TAG:  # open-ended: lost until a later session's gap
        connections[f"{client}/user#stopped"] = _Connection(
            client, "user", stored["from_ms"] * 1_000_000, lost=True
        )
        return
    if tag == UserStreamGap.TAG:
        newest = max(
            (
                c.incarnation
                for c in connections.values()
                if c.client == client and c.kind == "user"
            ),
            default=1,
        )
        for name in [
            name
            for name, c in connections.items()
            if c.client == client and c.kind == "user" and (c.lost or c.incarnation < newest)
        ]:
            del connections[name]
        return
    name = stored["connection"]
    if tag == StreamConnected.TAG:
        connections[name] = _Connection(
            client, kind_of(name), ts_ns, incarnation=incarnation_of(name)
        )
    elif tag == StreamDisconnected.TAG:
        tracked = connections.get(name)
        if tracked is None:
            return
        if stored.get("reconnect_in_ms") is None:
            del connections[name]  # ended on purpose: nothing more was wanted from it
        else:
            tracked.lost = True
    elif tag == StreamGap.TAG:
        if name.endswith(RESTART_SUFFIX):
            # Incarnation N's restart gap covers the dead incarnations' connections of this
            # client and stream client, not N's own (a lost one of N has a gap of its own).
            base, restarted = stream_base(name), incarnation_of(name)
            for dead in [
                other
                for other, c in connections.items()
                if c.client == client
                and c.kind == "market"
                and c.incarnation < restarted
                and stream_base(other) == base
            ]:
                del connections[dead]
        else:
            connections.pop(name, None)
