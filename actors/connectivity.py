"""The connectivity edge: the only actor that talks to Binance (DESIGN 1.4).

:class:`ConnectivityActor` serves every ``[[clients]]`` entry of a session. Other actors ask
it for I/O with events and read the answers as events:

=========================  ==================================================================
it reads (commands)        ``rest.request``, ``stream.subscribe``, ``stream.unsubscribe``
it publishes (inputs)      ``rest.response``, ``stream.frame``, ``stream.connected``,
                           ``stream.disconnected``, ``stream.resubscribed``, ``stream.gap``,
                           ``ratelimit.limited``, ``ratelimit.banned``, ``clock.offset``,
                           ``userstream.started``, ``userstream.gap``, ``userstream.stopped``
=========================  ==================================================================

Everything it publishes is an **input** (``cause`` empty, DESIGN 1.2): bytes from Binance
enter the journal once, here.

Per client it keeps one :class:`~actors.binance.rest.RestClient` (with its server clock kept
current), one :class:`~actors.binance.streams.StreamClient` per stream route in use (USD-M
splits ``/public`` and ``/market``; Spot and COIN-M have one base), and, when the client has
credentials, its user-data session (:class:`~actors.binance.userdata.SpotUserSession` on the
WS-API, :class:`~actors.binance.userdata.FuturesUserSession` on a listen key). The rate
limiter is shared per site (LIVE, DEMO, TESTNET, Binance US): it keeps Spot's IP pool and the
futures pool, which USD-M and COIN-M draw on together, as Binance counts them.

Market frames: every stream client hands its frames to one bounded channel with
``send_nowait`` and never waits; one task drains the channel and publishes what it holds as
one batch (under load it lingers :data:`LINGER_S` so that frames share commits). If the bus
cannot keep up the channel fills, the stream client recycles the connection and reports a
``stream.gap`` (nothing is dropped silently). With ``journal_raw_frames=False`` market frames
are drained and counted but not journaled.

User data: the sessions' frames and reports share a second, smaller channel, which they wait
on (a user event is never dropped; a consumer too slow ends the connection and the session
reports a ``userstream.gap``); one task publishes them in the order the sessions produced
them. Credentials Binance refuses stop the session for good (logged), not the actor.

Failures: every answer Binance or the network gives is an event; bad input (an unknown
client, an unknown endpoint, a bad stream name) is answered (a ``failed`` response) or
logged, never raised. An unexpected exception crashes the actor; the supervisor restarts it
and the new incarnation rebuilds itself from the session's journal
(:mod:`actors.connectivity_history`, starting from the newest checkpoint the actor saved while
it ran): it re-subscribes every stream still wanted, reports the time it was away as a
``stream.gap`` once the streams are back (and as the user-data session's first gap), and
answers each request the previous incarnation left unanswered with outcome
``unknown`` (it may or may not have been sent; reconciliation resolves orders, readers ask
again). A stop requested by the supervisor closes the streams (reporting each) and answers
the requests still in flight the same way.

Secrets: API keys, secrets and listen keys stay inside the REST client and the user-data
sessions; requests are journaled unsigned, responses, records and log lines are redacted
there, and the listen-key calls' responses are never published.

:func:`check_clients` is ``tern check``: it connects every client once and reports whether
it is usable.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import orjson
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from actors.base import ActorContext
from actors.binance.clock import ClockSyncError, ServerClock
from actors.binance.costs import Pool
from actors.binance.credentials import Credentials, CredentialsError, load_credentials
from actors.binance.errors import BinanceError
from actors.binance.ratelimit import DEFAULT_LIMITS, LimitKind, RateLimiter, parse_rate_limits
from actors.binance.rest import RestClient
from actors.binance.signing import Signer, SigningKeyError, load_signer
from actors.binance.streams import (
    StreamClient,
    StreamNameError,
    StreamSettings,
    TooManyStreams,
    route_for,
)
from actors.binance.userdata import (
    FuturesUserSession,
    SpotUserSession,
    UserSessionSettings,
    UserStreamAuthError,
    rest_caller,
)
from actors.binance.venues import Endpoints, Route, Site, VenueError, resolve
from actors.binance.wsconnect import open_websocket
from actors.bus import Subscription
from actors.config import AccountType, ClientConfig, KeyType
from actors.connectivity_history import RESTART_SUFFIX, History, fold
from events.base import Event
from events.connectivity import (
    RestRequest,
    RestResponse,
    StreamDisconnected,
    StreamFrame,
    StreamGap,
    SubscribeStreams,
    UnsubscribeStreams,
)
from events.journal import JournalStore, MemoryJournalStore

__all__ = [
    "NAME",
    "ClientCheck",
    "ConnectivityActor",
    "check_client",
    "check_clients",
]

logger = logging.getLogger("tern.connectivity")
T = TypeVar("T")

#: The actor's name (and journal ``source``).
NAME = "connectivity"
#: Frames buffered between the stream readers and the journal before a connection recycles.
FRAME_BUFFER = 16_384
#: Most frames published as one unit (one group commit holds several).
FRAMES_PER_PUBLISH = 4096
#: Frames a second above which the pump batches (lingers) rather than publish each frame.
BUSY_RATE = 2000
#: How long a busy pump waits for more frames before publishing (bounded added latency).
LINGER_S = 0.001
_RATE_WINDOW_S = 0.05
#: User-data frames and reports buffered before the sessions wait (they never drop one).
USER_BUFFER = 1024
#: How long a stop waits for buffered frames to reach the journal.
DRAIN_S = 1.0
#: The most a stop spends closing streams and user sessions (a listen-key DELETE included),
#: so that the whole stop stays inside the supervisor's default 5 s grace period.
CLOSE_S = 2.5
#: REST calls in flight at once; further requests wait in the bus subscription (nothing is
#: lost: a lagging subscriber re-reads the journal).
MAX_CALLS_IN_FLIGHT = 256
#: How often the journal is folded into a checkpoint, so that a restart folds little.
CHECKPOINT_S = 30.0
#: Checkpoints kept (the newest may be unreadable after a crash: keep one more).
CHECKPOINTS_KEPT = 2
#: The bus tags this actor serves.
COMMANDS = (RestRequest.TAG, SubscribeStreams.TAG, UnsubscribeStreams.TAG)
_RESTARTED = "the connectivity actor restarted"
_IN_FLIGHT_LOST = (
    "the connectivity actor stopped before Binance answered; the request may or may not "
    "have been sent"
)


_EXCHANGE_INFO = {
    AccountType.SPOT: "/api/v3/exchangeInfo",
    AccountType.USDT_FUTURES: "/fapi/v1/exchangeInfo",
    AccountType.COIN_FUTURES: "/dapi/v1/exchangeInfo",
}


@attrs.define(eq=False)
class _Client:
    """One configured client's resources inside the actor.

    ``problem`` says why REST calls cannot be made (a bad URL or key); ``endpoints`` is None
    when even the URLs could not be resolved (then streams fail too).
    """

    config: ClientConfig
    endpoints: Endpoints | None = None
    rest: RestClient | None = None
    problem: str = ""
    credentials: Credentials | None = attrs.field(default=None, repr=False)
    signer: Signer | None = attrs.field(default=None, repr=False)
    streams: dict[Route | None, StreamClient] = attrs.field(factory=dict)
    user: SpotUserSession | FuturesUserSession | None = None


class ConnectivityActor:
    """The edge actor doing Binance I/O for a session's clients (see the module docstring).

    Args:
        clients: the ``[[clients]]`` entries.
        name: the actor's name (its journal ``source``).
        seed: seeds the REST retry jitter (with each client's name).
        journal_raw_frames: publish every frame as ``stream.frame`` (default); False drains
            and counts frames without journaling them.
        frame_buffer: frames held between the readers and the journal.
        stream_settings: overrides of :class:`~actors.binance.streams.StreamSettings` (on
            top of each product's message limits).
        rest_options: more :class:`~actors.binance.rest.RestClient` arguments
            (``timeout_s``, ``admit_timeout_s``, ``max_connections``, ``environ``).
        max_calls_in_flight: REST calls running at once.
        user_data: open each client's user-data session (clients with credentials).
        user_settings: overrides of
            :class:`~actors.binance.userdata.UserSessionSettings`.
        checkpoint_s: how often the session's journal is folded into a checkpoint that a
            restart starts from (None: never; a restart folds the whole session).
    """

    def __init__(
        self,
        clients: Sequence[ClientConfig],
        *,
        name: str = NAME,
        seed: int = 0,
        journal_raw_frames: bool = True,
        frame_buffer: int = FRAME_BUFFER,
        stream_settings: Mapping[str, Any] | None = None,
        rest_options: Mapping[str, Any] | None = None,
        max_calls_in_flight: int = MAX_CALLS_IN_FLIGHT,
        user_data: bool = True,
        user_settings: Mapping[str, Any] | None = None,
        checkpoint_s: float | None = CHECKPOINT_S,
    ) -> None:
        if frame_buffer < 1 or max_calls_in_flight < 1:
            raise ValueError("frame_buffer and max_calls_in_flight must be positive")
        self.name = name
        self.seed = seed
        self.journal_raw_frames = journal_raw_frames
        #: Clients whose config turns raw market frames off (``journal_raw_frames = false``).
        self._quiet_clients = frozenset(
            config.name for config in clients if not config.journal_raw_frames
        )
        for name in sorted(self._quiet_clients):
            logger.warning(
                "client %s: journal_raw_frames = false: its market-stream frames are neither "
                "journaled nor replayable, and no actor receives them",
                name,
            )
        self.frame_buffer = frame_buffer
        self.stream_settings = dict(stream_settings or {})
        self.rest_options = dict(rest_options or {})
        self.user_data = user_data
        self.user_settings = dict(user_settings or {})
        self.configs = tuple(clients)
        self.checkpoint_s = checkpoint_s
        #: Frames taken from the channel (journaled or not).
        self.frames_received = 0
        self._clients: dict[str, _Client] = {}
        self._limiters: dict[Site, RateLimiter] = {}
        self._received_limits: dict[tuple[int, Pool], dict[tuple[Any, str, int], Any]] = {}
        self._records: collections.deque[Event] = collections.deque()
        self._records_ready = trio.Event()
        self._calls = trio.Semaphore(max_calls_in_flight)
        self._in_flight: dict[int, RestRequest] = {}
        self._call_ids = iter(range(1, 2**62))
        self._nursery: trio.Nursery | None = None
        self._call_nursery: trio.Nursery | None = None
        self._frames_send: trio.MemorySendChannel[StreamFrame] | None = None
        self._user_send: trio.MemorySendChannel[Event] | None = None
        self._ctx: ActorContext | None = None
        self._serve_scope: trio.CancelScope | None = None
        self._incarnation = 1
        self._pumps_running = 2
        self._pumps_done = trio.Event()

    # ----------------------------------------------------------------------------- running

    async def run(self, ctx: ActorContext, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until a stop is requested (then close in order) or until cancelled.

        Serving starts without waiting for Binance: the clients connect in the background,
        so an unreachable venue delays answers, never the session.
        """
        self._ctx = ctx
        caught_up = ctx.bus.last_delivered_seq
        history = await _load_history(ctx, caught_up)
        self._incarnation = history.incarnations + 1
        for config in self.configs:
            self._clients[config.name] = self._build(config)
        send, receive = trio.open_memory_channel[StreamFrame](self.frame_buffer)
        self._frames_send = send
        # User data has a channel of its own: its sessions wait for room (they must not lose
        # a frame), and market data filling the other channel must not hold them up.
        user_send, user_receive = trio.open_memory_channel[Event](USER_BUFFER)
        self._user_send = user_send
        try:
            with ctx.subscribe(COMMANDS, from_seq=caught_up + 1) as subscription:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._pump_frames, ctx, receive)
                    nursery.start_soon(self._pump_user, ctx, user_receive)
                    nursery.start_soon(self._pump_records, ctx)
                    if self.checkpoint_s is not None:
                        nursery.start_soon(self._checkpoint, ctx, history)
                    await nursery.start(self._host_calls)
                    for client in self._clients.values():
                        if client.rest is not None:
                            nursery.start_soon(client.rest.keep_clock_synced)
                            nursery.start_soon(self._load_limits, client)
                            nursery.start_soon(self._user_data, ctx, client, history)
                    restored = self._restore(history)
                    if history.incarnations:
                        await self._answer_lost(ctx, history)
                        await self._report_restart_gap(ctx, restored, history)
                    else:  # published before this actor first started: not seen yet
                        for request in history.pending():
                            await self._dispatch(ctx, request)
                    await nursery.start(self._serve, ctx, subscription)
                    task_status.started()
                    await ctx.stop_requested.wait()
                    await self._stop(ctx)
                    nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            for client in self._clients.values():
                if client.rest is not None:
                    await client.rest.aclose()

    def _build(self, config: ClientConfig) -> _Client:
        """A client's resources; a config that cannot work leaves a ``problem`` instead of
        failing the actor (its requests are answered ``failed`` with it)."""
        client = _Client(config)
        try:
            client.endpoints = resolve(config)
        except VenueError as exc:
            client.problem = str(exc)
            logger.error("client %s cannot be used: %s", config.name, exc)
            return client
        for notice in client.endpoints.notices:
            logger.warning("client %s: %s", config.name, notice)
        clock = ServerClock(config.name)
        environ = self.rest_options.get("environ")
        try:
            client.credentials = (
                load_credentials(config) if environ is None else load_credentials(config, environ)
            )
        except CredentialsError as exc:  # public endpoints and market streams still work
            logger.warning("client %s: %s", config.name, exc)
        try:
            if client.credentials is not None:
                client.signer = load_signer(client.credentials.api_secret, config.key_type)
            client.rest = RestClient(
                config,
                limiter=self._limiter_for(config, clock),
                clock=clock,
                credentials=client.credentials,
                emit=self._record,
                seed=self.seed,
                **self.rest_options,
            )
        except SigningKeyError as exc:
            client.problem = f"client {config.name!r}: the API secret cannot sign: {exc}"
            logger.error("%s", client.problem)
        return client

    async def _load_limits(self, client: _Client) -> None:
        """Read the limits in force from ``exchangeInfo.rateLimits`` into the shared limiter.

        Until they arrive (or if they never do) the documented defaults apply, corrected by
        Binance's response headers.
        """
        assert client.rest is not None
        config = client.config
        answer = await client.rest.call(
            RestRequest(
                client=config.name,
                call_id="rate-limits",
                method="GET",
                path=_EXCHANGE_INFO[config.account_type],
            )
        )
        if answer.outcome != "ok":
            logger.warning(
                "client %s: exchangeInfo unavailable (%s); default rate limits stay",
                config.name,
                answer.message or answer.status,
            )
            return
        try:
            entries = orjson.loads(answer.body).get("rateLimits")
            if not isinstance(entries, list) or not entries:
                raise ValueError("no rateLimits")
            pool = Pool.SPOT if config.account_type is AccountType.SPOT else Pool.FUTURES
            limiter = client.rest.limiter
            # USD-M and COIN-M share the futures pool: keep the smallest limit each product
            # states per window, and the documented windows a product leaves out.
            received = self._received_limits.setdefault((id(limiter), pool), {})
            for rule in parse_rate_limits(entries):
                key = (rule.kind, rule.interval, rule.interval_num)
                if key not in received or rule.limit < received[key].limit:
                    received[key] = rule
            merged = {
                (rule.kind, rule.interval, rule.interval_num): rule for rule in DEFAULT_LIMITS[pool]
            }
            merged.update(received)
            limiter.update_limits(pool, list(merged.values()))
        except (ValueError, AttributeError) as exc:
            logger.warning("client %s: rateLimits not understood (%s)", config.name, exc)

    def _limiter_for(self, config: ClientConfig, clock: ServerClock) -> RateLimiter:
        """The limiter shared by every client of ``config``'s site (it keeps one Spot pool
        and one futures pool per IP); its clock is the first such client's server clock."""
        site = Site.of(config.environment, config.us)
        limiter = self._limiters.get(site)
        if limiter is None:
            limiter = self._limiters[site] = RateLimiter(clock=clock.now_ms)
        return limiter

    async def _host_calls(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """A nursery of its own for REST calls, so a stop can cancel them and answer them."""
        async with trio.open_nursery() as calls:
            self._call_nursery = calls
            task_status.started()
            await trio.sleep_forever()

    async def _serve(
        self,
        ctx: ActorContext,
        subscription: Subscription,
        *,
        task_status: Any = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Take commands from the bus until a stop cancels it."""
        with trio.CancelScope() as scope:
            self._serve_scope = scope
            task_status.started()
            async for envelope in subscription:
                event = envelope.event
                if isinstance(event, RestRequest):
                    await self._dispatch(ctx, event)
                elif isinstance(event, SubscribeStreams):
                    self._subscribe(event)
                elif isinstance(event, UnsubscribeStreams):
                    self._unsubscribe(event)

    async def _stop(self, ctx: ActorContext) -> None:
        """Take no more commands, cancel the calls in flight and answer them ``unknown``
        first (nothing slow may come before that: the supervisor's grace period is short),
        then close the streams and user sessions (each reported) within ``CLOSE_S``."""
        if self._serve_scope is not None:
            self._serve_scope.cancel()
        if self._call_nursery is not None:
            self._call_nursery.cancel_scope.cancel()
            await trio.lowlevel.checkpoint()
        lost = list(self._in_flight.values())
        self._in_flight.clear()
        if lost:
            await ctx.publish([_unknown(request, _IN_FLIGHT_LOST) for request in lost])
        with trio.move_on_after(CLOSE_S):
            async with trio.open_nursery() as closing:
                for client in self._clients.values():
                    for stream_client in client.streams.values():
                        closing.start_soon(stream_client.aclose)
                    if client.user is not None:
                        closing.start_soon(client.user.aclose)
        # Nothing sends frames any more: let the pumps publish what is buffered, then end.
        for channel in (self._frames_send, self._user_send):
            if channel is not None:
                channel.close()
        with trio.move_on_after(DRAIN_S):
            await self._pumps_done.wait()
        events = self._take_records()
        if events:
            await ctx.publish(events)

    # --------------------------------------------------------------------------------- REST

    async def _dispatch(self, ctx: ActorContext, request: RestRequest) -> None:
        client = self._clients.get(request.client)
        if client is None:
            known = ", ".join(repr(name) for name in self._clients) or "none"
            await ctx.publish(
                [_failed(request, f"unknown client {request.client!r}; configured: {known}")]
            )
            return
        if client.rest is None:
            await ctx.publish([_failed(request, client.problem)])
            return
        await self._calls.acquire()
        token = next(self._call_ids)
        self._in_flight[token] = request
        assert self._call_nursery is not None
        self._call_nursery.start_soon(self._call, ctx, client.rest, request, token)

    async def _call(
        self, ctx: ActorContext, rest: RestClient, request: RestRequest, token: int
    ) -> None:
        try:
            response = await rest.call(request)
        finally:
            self._calls.release()
        # Records the call produced (a 429, a resync) go first, in the same publish.
        await ctx.publish([*self._take_records(), response])
        self._in_flight.pop(token, None)

    def _record(self, event: Event) -> None:
        """The REST clients' ``emit``: RateLimited, IpBanned, ClockOffset records.

        The queue has no bound of its own: a record is produced at most once per HTTP
        answer or clock measurement, and both are bounded (calls in flight, resync gaps).
        """
        self._records.append(event)
        self._records_ready.set()

    def _take_records(self) -> list[Event]:
        records = list(self._records)
        self._records.clear()
        return records

    async def _pump_records(self, ctx: ActorContext) -> None:
        while True:
            await self._records_ready.wait()
            self._records_ready = trio.Event()
            records = self._take_records()
            if records:
                await ctx.publish(records)

    async def _checkpoint(self, ctx: ActorContext, history: History) -> None:
        """Every ``checkpoint_s``, fold what the journal gained into a copy of ``history``
        and save it as a snapshot (in a thread for a file journal)."""
        assert self.checkpoint_s is not None
        store, codec, name = ctx.bus.store, ctx.bus.codec, ctx.name
        while True:
            await trio.sleep(self.checkpoint_s)
            last = ctx.bus.last_delivered_seq
            if last <= history.through_seq:
                continue
            draft = history.copy()

            def work(draft: History = draft, last: int = last) -> None:
                fold(draft, store, codec, last, name)
                store.snapshots.save(name, draft.through_seq, draft.to_bytes())
                store.snapshots.prune(name, keep=CHECKPOINTS_KEPT)

            try:
                await _blocking(store, work)
            except (OSError, ValueError) as exc:  # a checkpoint is an optimisation
                logger.warning("connectivity checkpoint failed: %s", exc)
                continue
            history = draft

    async def _answer_lost(self, ctx: ActorContext, history: History) -> None:
        """Answer what an earlier incarnation left unanswered: ``unknown``."""
        lost = history.pending()
        if lost:
            logger.warning(
                "%d request(s) left unanswered by an earlier incarnation: answered unknown",
                len(lost),
            )
            await ctx.publish([_unknown(request, _IN_FLIGHT_LOST) for request in lost])

    # ------------------------------------------------------------------------------ streams

    def _stream_clients(
        self, client: _Client, streams: Iterable[str]
    ) -> dict[Route | None, list[str]]:
        """``streams`` grouped by the stream client that serves them (USD-M: by route)."""
        assert client.endpoints is not None
        routed = client.endpoints.ws_market.routed
        groups: dict[Route | None, list[str]] = {}
        for name in streams:
            key = route_for(name) if routed else None
            groups.setdefault(key, []).append(name)
        return groups

    def _stream_client(self, client: _Client, key: Route | None) -> StreamClient:
        existing = client.streams.get(key)
        if existing is not None:
            return existing
        endpoints = client.endpoints
        assert endpoints is not None
        assert self._frames_send is not None
        assert self._ctx is not None
        ctx = self._ctx
        settings = StreamSettings.for_client(
            client.config, **{"proxy_url": endpoints.proxy_url, **self.stream_settings}
        )

        async def emit(event: Event) -> None:
            await ctx.publish([_wire_safe(event)])

        routed = endpoints.ws_market.routed
        route = key if key is not None else Route.MARKET
        name = f"{endpoints.client}/{route.value}" if routed else endpoints.client
        if self._incarnation > 1:  # connection names stay unique across restarts
            name = f"{name}~{self._incarnation}"
        stream_client = StreamClient(
            client=endpoints.client,
            url=f"{endpoints.ws_market[route]}/stream",
            frames=self._frames_send,
            emit=emit,
            settings=settings,
            route=route if routed else None,
            name=name,
            clock=ctx.now_ns,
        )
        client.streams[key] = stream_client
        if self._nursery is not None:
            self._nursery.start_soon(stream_client.run)
        return stream_client

    def _subscribe(self, command: SubscribeStreams) -> None:
        """Apply one subscribe command; bad input (an unknown client, a name Binance would
        refuse or not serve on this route, too many streams) is logged and changes nothing
        for the streams of that route."""
        client = self._stream_target(command)
        if client is None:
            return
        for key, names in self._stream_clients(client, command.streams).items():
            stream_client = self._stream_client(client, key)
            try:
                stream_client.subscribe(command.subscriber, names)
            except (StreamNameError, TooManyStreams) as exc:
                logger.error(
                    "client %s: subscription of %s refused: %s",
                    client.config.name,
                    command.subscriber,
                    exc,
                )

    def _unsubscribe(self, command: UnsubscribeStreams) -> None:
        client = self._stream_target(command)
        if client is None:
            return
        for key, names in self._stream_clients(client, command.streams).items():
            stream_client = client.streams.get(key)
            if stream_client is not None:
                stream_client.unsubscribe(command.subscriber, names)

    def _stream_target(self, command: SubscribeStreams | UnsubscribeStreams) -> _Client | None:
        client = self._clients.get(command.client)
        if client is None:
            logger.error(
                "%s from %s names unknown client %r; configured: %s",
                command.TAG,
                command.subscriber,
                command.client,
                ", ".join(self._clients) or "none",
            )
            return None
        if client.endpoints is None:
            logger.error(
                "%s for client %s ignored: %s", command.TAG, command.client, client.problem
            )
            return None
        return client

    def _restore(self, history: History) -> list[tuple[_Client, StreamClient, tuple[str, ...]]]:
        """Re-apply the session's subscription commands; return what is wanted again."""
        for command in history.wanted():
            self._subscribe(command)
        restored = []
        for client in self._clients.values():
            for stream_client in client.streams.values():
                wanted = tuple(stream_client.subscriptions())
                if wanted:
                    restored.append((client, stream_client, wanted))
        return restored

    async def _report_restart_gap(
        self,
        ctx: ActorContext,
        restored: list[tuple[_Client, StreamClient, tuple[str, ...]]],
        history: History,
    ) -> None:
        """Report the time the actor was away as a ``stream.gap`` per restored stream client,
        at once (consumers must stop trusting what they built from these streams now, not
        when the streams are back), and have each stream client report the rest of the loss,
        until its streams are active again, as its own gap."""
        now = ctx.now_ns()
        gaps = []
        for client, stream_client, streams in restored:
            start = history.lost_since_ns(client.config.name, "market")
            connection = f"{stream_client.name}{RESTART_SUFFIX}"
            stream_client.assume_lost(
                streams, from_ns=now, connection=connection, reason=_RESTARTED
            )
            gaps.append(
                StreamGap(
                    client=client.config.name,
                    connection=connection,
                    streams=streams,
                    from_ns=min(start if start is not None else now, now),
                    to_ns=now,
                    reason=_RESTARTED,
                )
            )
        if gaps:
            await ctx.publish(gaps)

    async def _pump_frames(
        self, ctx: ActorContext, receive: trio.MemoryReceiveChannel[StreamFrame]
    ) -> None:
        """Move frames from the channel to the journal, as many per publish as are waiting.

        While frames arrive faster than :data:`BUSY_RATE` a second, the pump lingers
        :data:`LINGER_S` before each batch, so that frames share publishes and commits
        instead of costing a scheduling round each; a quieter stream is published frame by
        frame without delay.
        """
        journal = self.journal_raw_frames
        limit = FRAMES_PER_PUBLISH
        busy = False
        window_start = trio.current_time()
        window_frames = 0
        async for frame in receive:
            if busy:
                await trio.sleep(LINGER_S)
            batch = [frame]
            while len(batch) < limit:
                try:
                    batch.append(receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            count = len(batch)
            self.frames_received += count
            window_frames += count
            now = trio.current_time()
            if now - window_start >= _RATE_WINDOW_S:
                busy = window_frames >= BUSY_RATE * (now - window_start)
                window_start = now
                window_frames = 0
            if not journal:
                continue
            if self._quiet_clients:
                batch = [f for f in batch if f.client not in self._quiet_clients]
            if batch:
                await ctx.publish(batch)
        self._pump_finished()

    # ---------------------------------------------------------------------------- user data

    async def _user_data(self, ctx: ActorContext, client: _Client, history: History) -> None:
        """Keep ``client``'s user-data session (Spot: WS-API; futures: listen key) until the
        actor stops. Credentials Binance refuses end it for good (logged; retrying cannot
        help); every other failure is retried inside the session. After a restart of the
        actor, the time it was away is reported as a ``userstream.gap`` once data flows."""
        session = self._user_session(ctx, client, history)
        if session is None:
            await trio.lowlevel.checkpoint()
            return
        client.user = session
        try:
            await session.run()
        except UserStreamAuthError as exc:
            logger.error("client %s: user data stopped: %s", client.config.name, exc)

    def _user_session(
        self, ctx: ActorContext, client: _Client, history: History
    ) -> SpotUserSession | FuturesUserSession | None:
        endpoints, rest, credentials = client.endpoints, client.rest, client.credentials
        if not self.user_data or endpoints is None or rest is None or credentials is None:
            return None
        assert self._user_send is not None
        send = self._user_send
        options: dict[str, Any] = {
            # for_endpoints applies the client's proxy unless these settings name one.
            "settings": UserSessionSettings(**self.user_settings),
            "clock": ctx.now_ns,
        }
        if self._incarnation > 1:
            options["name"] = f"{endpoints.client}/user~{self._incarnation}"
        if history.incarnations:
            # The time this actor was away is the new session's first gap: it reports it
            # when it goes live, before any frame it receives.
            now_ms = ctx.now_ns() // 1_000_000
            start = history.lost_since_ns(client.config.name, "user")
            from_ms = now_ms if start is None else min(start // 1_000_000, now_ms)
            options["lost_since"] = (from_ms, _RESTARTED)
        if endpoints.account_type is AccountType.SPOT:
            assert client.signer is not None
            return SpotUserSession.for_endpoints(
                endpoints,
                api_key=credentials.api_key,
                signer=client.signer,
                frames=send,
                emit=send.send,
                server_time_ms=rest.clock.now_ms,
                limiter=rest.limiter,
                **options,
            )
        return FuturesUserSession.for_endpoints(
            endpoints,
            rest=rest_caller(rest.call, endpoints.client, prefix=f"{self.name}-userdata"),
            frames=send,
            emit=send.send,
            **options,
        )

    async def _pump_user(
        self, ctx: ActorContext, receive: trio.MemoryReceiveChannel[Event]
    ) -> None:
        """Publish user-data frames and reports in the order the sessions produced them."""
        async for event in receive:
            batch = [_wire_safe(event)]
            while True:
                try:
                    batch.append(_wire_safe(receive.receive_nowait()))
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            await ctx.publish(batch)
        self._pump_finished()

    def _pump_finished(self) -> None:
        self._pumps_running -= 1
        if self._pumps_running == 0:
            self._pumps_done.set()


async def _load_history(ctx: ActorContext, last_seq: int) -> History:
    """The session's journal through ``last_seq`` folded into a :class:`History`, starting
    from the newest checkpoint of this session when there is one."""
    store = ctx.bus.store
    codec = ctx.bus.codec

    def load() -> History:
        history = None
        found = store.snapshots.load_latest(ctx.name, at_or_below=last_seq)
        if found is not None and found[0] >= ctx.session_seq:
            try:
                history = History.from_bytes(found[1], ctx.session_seq)
            except ValueError as exc:
                logger.warning("checkpoint %d not used (%s); folding the session", found[0], exc)
        if history is None:
            history = History(session_seq=ctx.session_seq)
        fold(history, store, codec, last_seq, ctx.name)
        return history

    return await _blocking(store, load)


async def _blocking(store: JournalStore, work: Callable[[], T]) -> T:
    """Run ``work`` (journal reads, snapshot writes) in a thread for a file journal, whatever
    its fsync policy (a cancellation abandons the thread: it holds nothing the actor needs),
    inline for a memory one."""
    if not isinstance(store, MemoryJournalStore):
        return await trio.to_thread.run_sync(work, abandon_on_cancel=True)
    await trio.lowlevel.checkpoint()
    return work()


def _wire_safe(event: Event) -> Event:
    """``event`` with a close code that is an ``int`` subclass (wsproto's ``CloseReason``)
    turned into a plain int: the codec takes exact ints only."""
    if isinstance(event, StreamDisconnected) and type(event.code) not in (int, type(None)):
        return attrs.evolve(event, code=int(event.code))
    return event


def _failed(request: RestRequest, message: str) -> RestResponse:
    return RestResponse(
        client=request.client,
        call_id=request.call_id,
        method=request.method.upper(),
        path=request.path,
        outcome="failed",
        status=0,
        message=message,
        attempts=0,
    )


def _unknown(request: RestRequest, message: str) -> RestResponse:
    return RestResponse(
        client=request.client,
        call_id=request.call_id,
        method=request.method.upper(),
        path=request.path,
        outcome="unknown",
        status=0,
        message=message,
        attempts=0,
    )


# ----------------------------------------------------------------------------- tern check

#: The account endpoint ``tern check`` reads per product: valid credentials and permissions.
ACCOUNT_PATHS: Mapping[AccountType, str] = {
    AccountType.SPOT: "/api/v3/account",
    AccountType.USDT_FUTURES: "/fapi/v2/account",
    AccountType.COIN_FUTURES: "/dapi/v1/account",
}
#: Binance's codes a check explains, in words.
_CODE_ADVICE: Mapping[int, str] = {
    -1022: "Binance rejected the signature (-1022): the API secret does not match the API key",
    -2015: (
        "Binance rejected the API key (-2015): it is unknown here, not allowed from this IP, "
        "or lacks the permission for {product}"
    ),
    -2014: "Binance says the API key's format is invalid (-2014): check it was copied whole",
    -2008: "Binance does not know this API key (-2008)",
    -1021: (
        "the request's timestamp fell outside recvWindow (-1021) even after measuring the "
        "clock: the network or the local clock is too unsteady"
    ),
    -1003: "Binance is rate limiting this IP (-1003): wait and try again",
}
#: A clock further off than this deserves a word even though tern corrects for it.
_CLOCK_WARNING_MS = 1000
_LABEL_WIDTH = 16


@attrs.frozen
class ClientCheck:
    """What ``tern check`` found for one client.

    Attributes:
        name: the client's name.
        lines: the report, one fact per line (no secret in any).
        problems: why the client is not usable, in plain words; empty when it is.
    """

    name: str
    lines: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def usable(self) -> bool:
        return not self.problems


class _Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.problems: list[str] = []

    def fact(self, label: str, text: str) -> None:
        self.lines.append(f"  {label + ':':<{_LABEL_WIDTH}} {text}")

    def problem(self, text: str) -> None:
        self.problems.append(text)


async def check_clients(
    clients: Sequence[ClientConfig],
    *,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = 5.0,
) -> list[ClientCheck]:
    """:func:`check_client` for every client, concurrently; results in config order.

    Raises:
        VenueError: a client names a product or URL tern cannot use (a config error).
    """
    for config in clients:
        resolve(config)
    results: dict[str, ClientCheck] = {}

    async def one(config: ClientConfig) -> None:
        results[config.name] = await check_client(config, environ=environ, timeout_s=timeout_s)

    async with trio.open_nursery() as nursery:
        for config in clients:
            nursery.start_soon(one, config)
    return [results[config.name] for config in clients]


async def check_client(
    config: ClientConfig,
    *,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = 5.0,
) -> ClientCheck:
    """Connect one client once and say whether it is usable: where it points, its key type,
    the clock offset, whether Binance accepts the credentials (the account endpoint) and
    what they may do, the request weight used, and whether the market streams answer.

    Every wait is bounded by ``timeout_s`` (the clock takes up to three round trips). Never
    raises for what Binance or the network does; it becomes a problem in the result.

    Raises:
        VenueError: the client names a product or URL tern cannot use (a config error).
    """
    endpoints = resolve(config)
    report = _Report()
    site = Site.of(config.environment, config.us).describe()
    report.lines.append(f"client {config.name}: {config.account_type.value} on {site}")
    report.fact("REST", endpoints.rest)
    markets = dict.fromkeys((endpoints.ws_market.public, endpoints.ws_market.market))
    report.fact("market streams", ", ".join(markets))
    report.fact("WS-API", endpoints.ws_api)
    report.fact("user data", endpoints.ws_user or "on the WS-API (Spot user data stream)")
    for notice in endpoints.notices:
        report.fact("notice", notice)

    credentials, signer = _check_key(config, environ, report)
    rest_config = config
    if credentials is None:
        # Public endpoints only: the time endpoint and the streams can still be checked.
        rest_config = attrs.evolve(config, api_key=None, api_secret=None, private_key_file=None)
    records: list[Event] = []
    rest = RestClient(
        rest_config,
        credentials=credentials,
        emit=records.append,
        timeout_s=timeout_s,
        admit_timeout_s=timeout_s,
        environ={} if credentials is None else environ,
    )
    try:
        reachable = await _check_clock(rest, endpoints, report)
        if reachable and credentials is not None and signer is not None:
            await _check_account(rest, config, report)
    finally:
        await rest.aclose()
    if reachable:
        for url in markets:
            await _check_stream(url, timeout_s, report, endpoints.proxy_url)
    return ClientCheck(config.name, tuple(report.lines), tuple(report.problems))


def _check_key(
    config: ClientConfig, environ: Mapping[str, str] | None, report: _Report
) -> tuple[Credentials | None, Signer | None]:
    try:
        credentials = (
            load_credentials(config) if environ is None else load_credentials(config, environ)
        )
    except CredentialsError as exc:
        report.fact("key", "none")
        report.problem(f"no credentials: {exc}")
        return None, None
    for notice in credentials.notices:
        report.fact("notice", notice)
    try:
        signer = load_signer(credentials.api_secret, config.key_type)
    except SigningKeyError as exc:
        report.fact("key", f"unusable (from {credentials.source})")
        report.problem(f"the API secret cannot sign requests: {exc}")
        return None, None
    kind = {KeyType.HMAC: "HMAC", KeyType.ED25519: "Ed25519", KeyType.RSA: "RSA"}[signer.key_type]
    report.fact(
        "key", f"{kind}, api key {_masked(credentials.api_key)} (from {credentials.source})"
    )
    for notice in signer.notices:
        report.fact("notice", notice)
    if signer.key_type is KeyType.HMAC:
        report.fact(
            "notice",
            "HMAC keys sign REST and WS-API requests but cannot log on a WS-API session; "
            "Binance recommends Ed25519 keys",
        )
    return credentials, signer


async def _check_clock(rest: RestClient, endpoints: Endpoints, report: _Report) -> bool:
    try:
        await rest.sync_clock()
    except ClockSyncError as exc:
        report.fact("clock offset", "not measured")
        cause = exc.__cause__
        why = cause.message if isinstance(cause, BinanceError) else str(exc)
        report.problem(f"cannot reach {endpoints.rest}: {why}")
        return False
    offset = rest.clock.offset_ms
    report.fact(
        "clock offset",
        f"{offset:+d} ms (server minus local; round trip {rest.clock.rtt_ms} ms)",
    )
    if abs(offset) > _CLOCK_WARNING_MS:
        report.fact(
            "notice",
            f"this machine's clock is {abs(offset)} ms off Binance's; tern corrects for it, "
            "but keep the system clock synchronised (NTP)",
        )
    return True


async def _check_account(rest: RestClient, config: ClientConfig, report: _Report) -> None:
    path = ACCOUNT_PATHS[config.account_type]
    response = await rest.call(
        RestRequest(client=config.name, call_id="check-account", method="GET", path=path)
    )
    if response.outcome != "ok":
        report.fact("credentials", f"NOT accepted ({path})")
        _weight_fact(response, rest, report)
        report.problem(_explain(response, config, rest.base_url))
        return
    report.fact("credentials", f"valid ({path})")
    _weight_fact(response, rest, report)
    try:
        account = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        account = None
    if not isinstance(account, dict):
        report.problem(f"{path} answered something that is not an account: {response.body[:80]!r}")
        return
    flags = [
        f"{name} {'yes' if account[name] else 'no'}"
        for name in ("canTrade", "canWithdraw", "canDeposit")
        if isinstance(account.get(name), bool)
    ]
    extras = []
    if isinstance(account.get("accountType"), str):
        extras.append(f"account type {account['accountType']}")
    if isinstance(account.get("permissions"), list):
        extras.append("permissions " + ", ".join(str(p) for p in account["permissions"]))
    if "feeTier" in account:
        extras.append(f"fee tier {account['feeTier']}")
    report.fact("permissions", "; ".join([", ".join(flags), *extras]) or "(none stated)")
    if account.get("canTrade") is False:
        report.problem(
            "the account cannot trade (canTrade is false): enable trading for this key or "
            "account in Binance's API management"
        )


def _weight_fact(response: RestResponse, rest: RestClient, report: _Report) -> None:
    """Request weight and order counts from Binance's headers, against the known limits."""
    pool = Pool.SPOT if rest.account_type is AccountType.SPOT else Pool.FUTURES
    limits = {
        limit.label.lower(): limit.limit
        for limit in DEFAULT_LIMITS[pool]
        if limit.kind is LimitKind.REQUEST_WEIGHT
    }
    used = []
    for header, value in sorted(response.headers.items()):
        if header.startswith("x-mbx-used-weight-"):
            window = header.removeprefix("x-mbx-used-weight-")
            limit = limits.get(window)
            of = f" of {limit}" if limit is not None else ""
            used.append(f"{value}{of} per {window}")
        elif header.startswith("x-mbx-order-count-"):
            used.append(f"{value} orders per {header.removeprefix('x-mbx-order-count-')}")
    if used:
        report.fact("request weight", f"{', '.join(used)} ({pool.value} pool, this IP)")


def _explain(response: RestResponse, config: ClientConfig, url: str) -> str:
    """Why the account request failed, in words, with Binance's code."""
    if response.status == 0:
        return f"cannot reach {url}: {response.message}"
    advice = _CODE_ADVICE.get(response.code) if response.code is not None else None
    if advice is not None:
        return advice.format(product=config.account_type.value)
    if response.status == 418:
        return f"Binance has banned this IP (HTTP 418): {response.message}"
    code = f" {response.code}" if response.code is not None else ""
    return f"Binance refused the account request (HTTP {response.status}{code}): {response.message}"


async def _check_stream(
    url: str, timeout_s: float, report: _Report, proxy_url: str | None = None
) -> None:
    """Open ``<base>/stream`` (through the client's proxy, as the session would) and ask
    LIST_SUBSCRIPTIONS; Binance answers with an id."""
    target = f"{url}/stream"
    try:
        with trio.fail_after(timeout_s):
            async with open_websocket(
                target, proxy_url=proxy_url, connect_timeout=timeout_s, disconnect_timeout=1.0
            ) as ws:
                await ws.send_message('{"method":"LIST_SUBSCRIPTIONS","id":1}')
                while True:
                    message = await ws.get_message()
                    if '"id":1' in message.replace(" ", ""):
                        break
    except trio.TooSlowError:
        report.problem(f"market streams at {target} did not answer within {timeout_s:g} s")
    except HandshakeError as exc:
        cause = exc.__cause__
        if cause is not None:
            why = f"{type(cause).__name__}: {cause}"
        else:  # a proxy refusal or a timeout says what happened itself (never a password)
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        report.problem(f"cannot reach market streams at {target}: {why}")
    except (OSError, ConnectionClosed) as exc:
        report.problem(f"cannot reach market streams at {target}: {type(exc).__name__}")
    else:
        report.fact("stream check", f"ok ({target})")


def _masked(api_key: str) -> str:
    return "..." + api_key[-4:] if len(api_key) >= 16 else "***"
