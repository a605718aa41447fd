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

    def schedule_timer(self, name: str, *, delay_ms: int, interval_ms: int | None = None) -> None:
        self._outputs.append(
            ScheduleTimer(owner=self.name, name=name, delay_ms=delay_ms, interval_ms=interval_ms)
        )

    def cancel_timer(self, name: str) -> None:
        self._outputs.append(CancelTimer(owner=self.name, name=name))
