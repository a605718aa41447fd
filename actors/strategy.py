"""The base class users subclass to write a strategy.

A strategy is a deterministic actor: it receives typed events in handler methods and acts
only by publishing commands (orders, cancels, timers) through the helpers below. It never
awaits and never reads a clock; :attr:`now_ns` is the time of the event being handled.

Override any of the ``on_*`` methods; the strategy subscribes to exactly the events whose
handlers it overrides. Attach it by import path in the config::

    [[strategies]]
    class = "mypackage.mm:MarketMaker"
    name = "mm"            # optional; defaults to the class name in lowercase
    [strategies.params]
    instrument = "BTCUSDT"
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from actors.base import FoldActor
from events.base import Envelope, Event
from events.demo import SyntheticPrice
from events.market import (
    Bar,
    BookDeltas,
    BookResynced,
    BookSnapshot,
    BookStale,
    DataKind,
    FundingRate,
    HistoryChunk,
    HistoryDone,
    IndexPrice,
    Instrument,
    InstrumentStatus,
    MarkPrice,
    QuoteTick,
    RequestHistory,
    SubscribeMarketData,
    Ticker,
    TopOfBook,
    TradeTick,
    UnsubscribeMarketData,
)
from events.orders import CancelOrder, SubmitOrder
from events.system import CancelTimer, ScheduleTimer, SessionStarted, TimerFired
from events.types import OrderType, Side, TimeInForce


class Strategy(FoldActor):
    """Base strategy; see the module docstring."""

    #: Event class -> handler method name. Extended as tern grows new event families.
    HANDLERS: ClassVar[dict[type[Event], str]] = {
        SessionStarted: "on_start",
        TimerFired: "on_timer",
        SyntheticPrice: "on_synthetic_price",
        Instrument: "on_instrument",
        InstrumentStatus: "on_instrument_status",
        TradeTick: "on_trade",
        QuoteTick: "on_quote",
        Bar: "on_bar",
        Ticker: "on_ticker",
        MarkPrice: "on_mark_price",
        IndexPrice: "on_index_price",
        FundingRate: "on_funding_rate",
        BookSnapshot: "on_book_snapshot",
        BookDeltas: "on_book_deltas",
        TopOfBook: "on_top_of_book",
        BookStale: "on_book_stale",
        BookResynced: "on_book_resynced",
        HistoryChunk: "on_history_chunk",
        HistoryDone: "on_history_done",
    }

    def __init__(self, name: str, *, seed: int | str, params: dict[str, Any] | None = None):
        super().__init__(name, seed=seed, params=params)
        self._dispatch: dict[str, str] = {
            cls.TAG: method
            for cls, method in self.HANDLERS.items()
            if getattr(type(self), method) is not getattr(Strategy, method)
        }
        self._outputs: list[Event] = []
        self._envelope: Envelope | None = None

    @property
    def subscriptions(self) -> tuple[str, ...]:
        tags = set(self._dispatch)
        tags.add(SessionStarted.TAG)
        return tuple(sorted(tags))

    @property
    def now_ns(self) -> int:
        """The journal time of the event being handled."""
        if self._envelope is None:
            raise RuntimeError("now_ns is only available inside a handler")
        return self._envelope.ts_ns

    def handle(self, envelope: Envelope) -> Sequence[Event]:
        method = self._dispatch.get(envelope.event.TAG)
        if method is None:
            return ()
        event = envelope.event
        if isinstance(event, TimerFired) and event.owner != self.name:
            return ()
        self._outputs = []
        self._envelope = envelope
        try:
            getattr(self, method)(event)
        finally:
            self._envelope = None
        outputs, self._outputs = self._outputs, []
        return outputs

    # Handlers: override the ones you need.
    def on_start(self, event: SessionStarted) -> None:
        """The session started (use it to schedule timers)."""

    def on_timer(self, event: TimerFired) -> None:
        """One of this strategy's timers fired."""

    def on_synthetic_price(self, event: SyntheticPrice) -> None:
        """A price from the demo's synthetic market."""

    def on_instrument(self, event: Instrument) -> None:
        """An instrument's definition (at load, and when a reload changed it)."""

    def on_instrument_status(self, event: InstrumentStatus) -> None:
        """An instrument's trading status changed."""

    def on_trade(self, event: TradeTick) -> None:
        """A trade of a subscribed instrument (``subscribe(DataKind.TRADES, ...)``)."""

    def on_quote(self, event: QuoteTick) -> None:
        """Best bid and offer of a subscribed instrument."""

    def on_bar(self, event: Bar) -> None:
        """A closed bar."""

    def on_ticker(self, event: Ticker) -> None:
        """A 24 h ticker update."""

    def on_mark_price(self, event: MarkPrice) -> None:
        """A futures mark price."""

    def on_index_price(self, event: IndexPrice) -> None:
        """A futures index price."""

    def on_funding_rate(self, event: FundingRate) -> None:
        """A perpetual's current funding rate and next funding time."""

    def on_book_snapshot(self, event: BookSnapshot) -> None:
        """A whole book: after a (re)sync, or each partial-depth frame."""

    def on_book_deltas(self, event: BookDeltas) -> None:
        """Changes to an in-sync full-depth book."""

    def on_top_of_book(self, event: TopOfBook) -> None:
        """The best bid or ask of a book changed."""

    def on_book_stale(self, event: BookStale) -> None:
        """A book is no longer in sync: do not trade on it until it is resynced."""

    def on_book_resynced(self, event: BookResynced) -> None:
        """A book is in sync again."""

    def on_history_chunk(self, event: HistoryChunk) -> None:
        """A page of a history request."""

    def on_history_done(self, event: HistoryDone) -> None:
        """A history request ended (``error`` says why when it did not complete)."""

    # Commands.
    def submit_order(
        self,
        *,
        instrument_id: str,
        side: Side,
        quantity: Decimal,
        order_type: OrderType = OrderType.LIMIT,
        price: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        reduce_only: bool = False,
        post_only: bool = False,
        client_tag: str,
    ) -> SubmitOrder:
        """Publish a :class:`SubmitOrder` command; returns it."""
        command = SubmitOrder(
            strategy=self.name,
            instrument_id=instrument_id,
            side=side,
            order_type=order_type,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            post_only=post_only,
            client_tag=client_tag,
        )
        self._outputs.append(command)
        return command

    def cancel_order(self, *, instrument_id: str, client_tag: str) -> None:
        self._outputs.append(
            CancelOrder(strategy=self.name, instrument_id=instrument_id, client_tag=client_tag)
        )

    def subscribe(
        self,
        kind: DataKind,
        instrument_id: str,
        *,
        client: str,
        interval: str | None = None,
        depth: int = 0,
        speed_ms: int | None = None,
        snapshot_limit: int | None = None,
    ) -> None:
        """Ask for market data of ``instrument_id`` from ``client`` (see
        :class:`~events.market.SubscribeMarketData`)."""
        self._outputs.append(
            SubscribeMarketData(
                client=client,
                subscriber=self.name,
                instrument_id=instrument_id,
                kind=kind,
                interval=interval,
                depth=depth,
                speed_ms=speed_ms,
                snapshot_limit=snapshot_limit,
            )
        )

    def unsubscribe(
        self, kind: DataKind, instrument_id: str, *, client: str, interval: str | None = None
    ) -> None:
        """Stop a subscription made with :meth:`subscribe`."""
        self._outputs.append(
            UnsubscribeMarketData(
                client=client,
                subscriber=self.name,
                instrument_id=instrument_id,
                kind=kind,
                interval=interval,
            )
        )

    def request_history(
        self,
        kind: DataKind,
        instrument_id: str,
        *,
        client: str,
        request_id: str,
        start_ms: int,
        end_ms: int,
        interval: str | None = None,
    ) -> None:
        """Ask for bars (``BARS`` with ``interval``) or aggregated trades (``TRADES``)
        between two times; pages arrive in :meth:`on_history_chunk`."""
        self._outputs.append(
            RequestHistory(
                client=client,
                subscriber=self.name,
                request_id=request_id,
                instrument_id=instrument_id,
                kind=kind,
                start_ms=start_ms,
                end_ms=end_ms,
                interval=interval,
            )
        )

    def schedule_timer(self, name: str, *, delay_ms: int, interval_ms: int | None = None) -> None:
        self._outputs.append(
            ScheduleTimer(owner=self.name, name=name, delay_ms=delay_ms, interval_ms=interval_ms)
        )

    def cancel_timer(self, name: str) -> None:
        self._outputs.append(CancelTimer(owner=self.name, name=name))
