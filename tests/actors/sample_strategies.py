"""Strategies used by the runtime and replay tests (importable by config path)."""

from __future__ import annotations

import weakref
from decimal import Decimal
from typing import Any, ClassVar

from actors.base import FoldActor
from actors.strategy import Strategy
from events.base import Envelope, Event
from events.demo import SyntheticPrice
from events.system import CancelTimer, SessionStarted, TimerFired
from events.types import Side


class EchoOrders(Strategy):
    """One order per price; raises on the prices whose step is in ``fail_steps``."""

    def on_start(self, event: SessionStarted) -> None:
        self.fail_steps = set(self.params.get("fail_steps", []))

    def on_synthetic_price(self, event: SyntheticPrice) -> None:
        if event.step in self.fail_steps:
            raise ZeroDivisionError(f"step {event.step} is poison")
        self.submit_order(
            instrument_id=event.symbol,
            side=Side.BUY if event.step % 2 else Side.SELL,
            quantity=Decimal("0.001"),
            price=event.price,
            client_tag=f"echo-{event.step}-{event.symbol}",
        )


class TrackedEchoOrders(EchoOrders):
    """:class:`EchoOrders` that records a weak reference to every instance (incarnation)."""

    instances: ClassVar[list[weakref.ref[TrackedEchoOrders]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        TrackedEchoOrders.instances.append(weakref.ref(self))


class AlwaysFails(Strategy):
    def on_synthetic_price(self, event: SyntheticPrice) -> None:
        raise RuntimeError("this strategy cannot cope")


class Heartbeat(Strategy):
    """Schedules its own timer and publishes an order on every beat."""

    def on_start(self, event: SessionStarted) -> None:
        self.beats = 0
        self.schedule_timer("beat", delay_ms=250, interval_ms=250)

    def on_timer(self, event: TimerFired) -> None:
        self.beats += 1
        self.submit_order(
            instrument_id="BTCUSDT",
            side=Side.BUY,
            quantity=Decimal("0.001"),
            price=Decimal(self.beats),
            client_tag=f"beat-{self.beats}",
        )


class SeesEverything(FoldActor):
    """A deterministic actor with no SUBSCRIPTIONS: it receives every event."""

    def handle(self, envelope: Envelope) -> list[Event]:
        event = envelope.event
        if isinstance(event, SyntheticPrice):
            return [CancelTimer(owner=self.name, name=f"{event.symbol}-{event.step}")]
        return []


class MarketWatcher(Strategy):
    """Subscribes on start to what ``params["subscriptions"]`` lists: ``[client, kind,
    instrument_id, {options}]`` rows; counts what arrives."""

    def on_start(self, event: SessionStarted) -> None:
        from events.market import DataKind

        self.seen: dict[str, int] = {}
        for client, kind, instrument_id, options in self.params.get("subscriptions", []):
            self.subscribe(DataKind(kind), instrument_id, client=client, **options)

    def _count(self, event: Event) -> None:
        self.seen[event.TAG] = self.seen.get(event.TAG, 0) + 1

    on_top_of_book = _count
    on_trade = _count
    on_quote = _count
    on_mark_price = _count
    on_book_stale = _count
