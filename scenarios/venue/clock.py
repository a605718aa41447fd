"""The venue's clock: trio time mapped onto an epoch, plus a skew that faults can set.

Under trio's MockClock the venue's time is virtual, so a scenario's market is the same for a
given seed and clock.
"""

from __future__ import annotations

import time

import trio


class VenueClock:
    """Milliseconds since the Unix epoch as the venue sees them.

    Args:
        epoch_ms: the venue time at creation; the wall clock when None.
    """

    def __init__(self, epoch_ms: int | None = None) -> None:
        self.epoch_ms = epoch_ms if epoch_ms is not None else time.time_ns() // 1_000_000
        self._origin = trio.current_time()
        self.skew_ms = 0

    def now_ms(self) -> int:
        """The venue time, including any injected skew."""
        elapsed = trio.current_time() - self._origin
        return self.epoch_ms + int(elapsed * 1000) + self.skew_ms
