"""Order commands strategies publish. Order routing (a later capability) consumes them."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

import attrs

from events.base import Event
from events.types import OrderType, Side, TimeInForce


@attrs.frozen(kw_only=True)
class SubmitOrder(Event):
    """A strategy asks for a new order. ``client_tag`` is the strategy's own handle for it;
    the router derives the Binance client order id from the journal."""

    TAG: ClassVar[str] = "order.submit"
    strategy: str
    instrument_id: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    reduce_only: bool = False
    post_only: bool = False
    client_tag: str


@attrs.frozen(kw_only=True)
class CancelOrder(Event):
    TAG: ClassVar[str] = "order.cancel"
    strategy: str
    instrument_id: str
    client_tag: str
