"""What one request costs against Binance's limits, and how urgent it is."""

from __future__ import annotations

import enum

import attrs


class Pool(enum.Enum):
    """A request-weight pool: Spot has its own; USD-M and COIN-M share one."""

    SPOT = "spot"
    FUTURES = "futures"


class Priority(enum.IntEnum):
    """Who goes first when requests wait for the limiter: lower values first."""

    CANCEL = 0
    ORDER = 1
    ACCOUNT = 2
    MARKET_DATA = 3
    #: Work nobody waits for (per-symbol commission rates): never ahead of anything else.
    BACKGROUND = 4


@attrs.frozen
class Cost:
    """A request's cost.

    Attributes:
        pool: the IP weight pool it draws on.
        weight: request weight.
        orders: orders it places (counted per account against every ORDERS window).
        priority: its place in the queue when the limiter makes requests wait.
    """

    pool: Pool
    weight: int
    orders: int = 0
    priority: Priority = Priority.MARKET_DATA
