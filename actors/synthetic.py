"""A seeded random-walk market: the stand-in for Binance in ``tern demo`` until the local
venue exists. It is a deterministic actor driven by its own timer, so replay reproduces every
price it published."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from actors.base import FoldActor
from events.base import Envelope, Event
from events.demo import SyntheticPrice
from events.system import ScheduleTimer, SessionStarted, TimerFired
from events.types import MONEY_CONTEXT

NAME = "synthetic-market"


class SyntheticMarket(FoldActor):
    """Publishes one :class:`SyntheticPrice` per symbol on every tick.

    Params: ``symbols`` (list of str), ``start_price`` (str), ``tick_size`` (str),
    ``interval_ms`` (int), ``max_ticks_per_step`` (int).
    """

    SUBSCRIPTIONS = (SessionStarted.TAG, TimerFired.TAG)

    def __init__(self, name: str, *, seed: int | str, params: dict[str, Any] | None = None):
        super().__init__(name, seed=seed, params=params)
        self.symbols: list[str] = list(self.params.get("symbols", ["BTCUSDT"]))
        self.tick_size = Decimal(self.params.get("tick_size", "0.01"))
        self.interval_ms = int(self.params.get("interval_ms", 100))
        self.max_ticks = int(self.params.get("max_ticks_per_step", 50))
        start = Decimal(self.params.get("start_price", "50000.00"))
        self.prices = {symbol: start for symbol in self.symbols}
        self.step = 0

    def handle(self, envelope: Envelope) -> Sequence[Event]:
        event = envelope.event
        if isinstance(event, SessionStarted):
            return [
                ScheduleTimer(
                    owner=self.name,
                    name="tick",
                    delay_ms=self.interval_ms,
                    interval_ms=self.interval_ms,
                )
            ]
        if isinstance(event, TimerFired) and event.owner == self.name:
            self.step += 1
            outputs: list[Event] = []
            for symbol in self.symbols:
                ticks = self.rng.randint(-self.max_ticks, self.max_ticks)
                price = MONEY_CONTEXT.add(
                    self.prices[symbol], MONEY_CONTEXT.multiply(self.tick_size, Decimal(ticks))
                )
                if price < self.tick_size:
                    price = self.tick_size
                self.prices[symbol] = price
                outputs.append(SyntheticPrice(symbol=symbol, price=price, step=self.step))
            return outputs
        return ()
