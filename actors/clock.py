"""Clocks. Actors never read the wall clock: the bus stamps each record with ``now_ns()`` of
the session clock, and deterministic actors use ``envelope.ts_ns``."""

from __future__ import annotations

import time
from typing import Protocol

import trio


class Clock(Protocol):
    def now_ns(self) -> int:
        """Nanoseconds since the Unix epoch, as this clock sees it."""
        ...


class LiveClock:
    """The machine's wall clock."""

    def now_ns(self) -> int:
        return time.time_ns()


class VirtualClock:
    """``epoch_ns`` plus trio's clock: under a MockClock time is virtual and exact."""

    def __init__(self, epoch_ns: int) -> None:
        self.epoch_ns = epoch_ns
        self._origin = trio.current_time()

    def now_ns(self) -> int:
        return self.epoch_ns + round((trio.current_time() - self._origin) * 1e9)
