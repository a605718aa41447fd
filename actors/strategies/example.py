"""Example strategy: buy below the moving average, sell above it.

It shows the shape of every strategy: state on ``self``, typed handlers, commands published
through helpers, Decimal arithmetic under the money context, no clock and no I/O.
"""

from __future__ import annotations

import collections
from decimal import Decimal
from typing import Any

from actors.strategy import Strategy
from events.demo import SyntheticPrice
from events.types import MONEY_CONTEXT, OrderType, Side, TimeInForce


class MeanReversion(Strategy):
    """Params: ``symbol``, ``window`` (prices in the mean), ``threshold_bps`` (distance from
    the mean that triggers an order), ``quantity``, ``max_position`` (in quantity units)."""

    def __init__(self, name: str, *, seed: int | str, params: dict[str, Any] | None = None):
        super().__init__(name, seed=seed, params=params)
        self.symbol = str(self.params.get("symbol", "BTCUSDT"))
        self.window = int(self.params.get("window", 20))
        self.threshold = Decimal(str(self.params.get("threshold_bps", 5))) / Decimal(10_000)
        self.quantity = Decimal(str(self.params.get("quantity", "0.001")))
        self.max_position = Decimal(str(self.params.get("max_position", "0.005")))
        self.prices: collections.deque[Decimal] = collections.deque(maxlen=self.window)
        self.position = Decimal(0)
        self.orders = 0

    def on_synthetic_price(self, event: SyntheticPrice) -> None:
        if event.symbol != self.symbol:
            return
        self.prices.append(event.price)
        if len(self.prices) < self.window:
            return
        ctx = MONEY_CONTEXT
        total = Decimal(0)
        for price in self.prices:
            total = ctx.add(total, price)
        mean = ctx.divide(total, Decimal(len(self.prices)))
        distance = ctx.divide(ctx.subtract(event.price, mean), mean)
        if distance <= -self.threshold and self.position + self.quantity <= self.max_position:
            self._order(Side.BUY, event.price)
        elif distance >= self.threshold and self.position - self.quantity >= -self.max_position:
            self._order(Side.SELL, event.price)

    def _order(self, side: Side, price: Decimal) -> None:
        self.orders += 1
        signed = self.quantity if side is Side.BUY else -self.quantity
        self.position = MONEY_CONTEXT.add(self.position, signed)
        self.submit_order(
            instrument_id=self.symbol,
            side=side,
            order_type=OrderType.LIMIT,
            quantity=self.quantity,
            price=price,
            time_in_force=TimeInForce.GTC,
            client_tag=f"{self.name}-{self.orders}",
        )
