"""Binance's clock as seen from here: the offset between server time and ours.

Signed requests carry a ``timestamp`` that Binance accepts only while
``serverTime - recvWindow <= timestamp < serverTime + 1000``. A local clock a second or two
off, or one that drifts, makes every signed request fail with ``-1021``. :class:`ServerClock`
measures the offset and keeps it current:

* **Measured at start** from the time endpoint (``GET /api/v3/time``, ``/fapi/v1/time``,
  ``/dapi/v1/time``): ``offset = serverTime - midpoint(local send, local receive)``. Several
  samples are taken one after the other and the one with the shortest round trip wins (its
  midpoint is the tightest bound on when the server read its clock).
* **Checked on every response** against its ``Date`` header. Date has one-second resolution, so
  it is only a coarse check: when it disagrees with the offset by more than its resolution,
  the round trip and a tolerance, a resync is asked for. A source whose ``Date`` is biased
  (a proxy, a simulator serving the wall clock) is learnt once: after a resync that the
  time endpoint confirms, the bias is remembered and no longer triggers resyncs.
* **Resynchronised** periodically, when ``Date`` disagrees, and when Binance answers
  ``-1021`` (the REST client then sends the request once more).

The clock does no I/O of its own: it is given a *probe*, an async function that performs one
time-endpoint round trip and returns a :class:`TimeSample` (the REST client's goes through the
rate limiter). Every measurement returns a :class:`~events.connectivity.ClockOffset` record
for the caller to journal. Scheduling uses trio's clock, so tests run under ``autojump_clock``.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Awaitable, Callable

import attrs
import trio

from actors.binance.errors import BinanceError
from events.connectivity import ClockOffset

__all__ = [
    "ClockSyncError",
    "Probe",
    "ServerClock",
    "TimeSample",
    "wall_clock_ms",
]


def wall_clock_ms() -> int:
    """This machine's wall clock in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


@attrs.frozen
class TimeSample:
    """One time-endpoint round trip.

    Attributes:
        server_ms: the ``serverTime`` Binance answered.
        sent_ms: local time just before the request was sent.
        received_ms: local time just after the answer arrived.
    """

    server_ms: int
    sent_ms: int
    received_ms: int

    @property
    def rtt_ms(self) -> int:
        """The round trip."""
        return self.received_ms - self.sent_ms

    @property
    def offset_ms(self) -> int:
        """Server time minus local time, assuming the server read its clock half-way."""
        return self.server_ms - (self.sent_ms + self.received_ms) // 2


#: One time-endpoint round trip. Expected failures are raised as :class:`BinanceError`.
Probe = Callable[[], Awaitable[TimeSample]]


class ClockSyncError(RuntimeError):
    """No time-endpoint sample could be taken; the offset in force is unchanged."""


class ServerClock:
    """Server time for one client: local time plus a measured offset.

    Args:
        client: the client's name (it goes into the :class:`ClockOffset` records).
        local_ms: the local clock in epoch milliseconds (default: the wall clock; tests pass
            one that follows trio's virtual clock).
        samples: time-endpoint round trips per measurement; the shortest wins.
        resync_interval_s: a measurement older than this is repeated.
        min_resync_gap_s: the shortest time between two resyncs asked for by ``Date``
            disagreements (or after a failed resync), so a misbehaving source cannot make the
            client hammer the time endpoint.
        date_tolerance_ms: how far beyond its resolution and the round trip ``Date`` may
            disagree before a resync is asked for.
    """

    def __init__(
        self,
        client: str,
        *,
        local_ms: Callable[[], int] = wall_clock_ms,
        samples: int = 3,
        resync_interval_s: float = 600.0,
        min_resync_gap_s: float = 10.0,
        date_tolerance_ms: int = 1000,
    ) -> None:
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.client = client
        self.local_ms = local_ms
        self.samples = samples
        self.resync_interval_s = resync_interval_s
        self.min_resync_gap_s = min_resync_gap_s
        self.date_tolerance_ms = date_tolerance_ms
        self._offset_ms = 0
        self._rtt_ms: int | None = None
        self._generation = 0
        self._synced_at: float | None = None  # trio time of the last measurement
        self._attempted_at: float | None = None  # trio time of the last attempt
        self._date_bias_ms = 0
        self._date_estimate_ms: int | None = None  # the Date estimate that asked for a resync
        self._lock = trio.Lock()
        self._wanted = False  # a Date disagreement asked for a resync
        self._wake = trio.Event()  # set to wake wait_resync_due; replaced once it woke it

    # --------------------------------------------------------------------------- reading

    @property
    def offset_ms(self) -> int:
        """Server time minus local time (0 until measured)."""
        return self._offset_ms

    @property
    def rtt_ms(self) -> int | None:
        """The round trip of the sample the offset came from, or None before any."""
        return self._rtt_ms

    @property
    def synced(self) -> bool:
        """Whether the offset was ever measured."""
        return self._synced_at is not None

    @property
    def generation(self) -> int:
        """How many measurements have been taken; a request remembers the generation its
        timestamp was built with, so a ``-1021`` resyncs only if nobody else did since."""
        return self._generation

    def now_ms(self) -> int:
        """Server time now, as far as we know (epoch milliseconds)."""
        return self.local_ms() + self._offset_ms

    # ------------------------------------------------------------------------- measuring

    async def sync(self, probe: Probe, *, source: str = "time") -> ClockOffset:
        """Measure the offset with ``samples`` round trips; keep the shortest one's.

        Samples whose probe fails with :class:`BinanceError` are skipped. Cancellation
        leaves the offset as it was.

        Raises:
            ClockSyncError: every sample failed (the offset in force is kept).
        """
        async with self._lock:
            return await self._measure(probe, source)

    async def resync(
        self, probe: Probe, *, source: str, after_generation: int | None = None
    ) -> ClockOffset | None:
        """:meth:`sync`, unless a measurement newer than ``after_generation`` exists (someone
        else already resynchronised, e.g. several requests met ``-1021`` together): then
        None. Concurrent callers share one measurement.

        Raises:
            ClockSyncError: as :meth:`sync`.
        """
        if after_generation is not None and self._generation > after_generation:
            return None
        async with self._lock:
            if after_generation is not None and self._generation > after_generation:
                return None
            return await self._measure(probe, source)

    async def _measure(self, probe: Probe, source: str) -> ClockOffset:
        self._attempted_at = trio.current_time()
        best: TimeSample | None = None
        failure: BinanceError | None = None
        for _ in range(self.samples):
            try:
                sample = await probe()
            except BinanceError as exc:
                failure = exc
                continue
            if best is None or sample.rtt_ms < best.rtt_ms:
                best = sample
        if best is None:
            raise ClockSyncError(
                f"client {self.client!r}: no time-endpoint sample in {self.samples} tries; "
                f"last failure: {failure}"
            ) from failure
        previous = self._offset_ms
        self._offset_ms = best.offset_ms
        self._rtt_ms = best.rtt_ms
        self._generation += 1
        self._synced_at = trio.current_time()
        if self._date_estimate_ms is not None:
            # The time endpoint is the truth; what Date said beyond it is the source's bias.
            self._date_bias_ms = self._date_estimate_ms - best.offset_ms
            self._date_estimate_ms = None
        elif abs(best.offset_ms - previous) > self.date_tolerance_ms:
            self._date_bias_ms = 0  # the clock itself moved: judge Date afresh
        self._wanted = False
        return ClockOffset(
            client=self.client, offset_ms=best.offset_ms, rtt_ms=best.rtt_ms, source=source
        )

    # ------------------------------------------------------------------------- checking

    def check_date(self, date: str | None, sent_ms: int, received_ms: int) -> bool:
        """Compare a response's ``Date`` header with the offset in force.

        ``sent_ms``/``received_ms`` are local times around the request. Returns True when
        the header disagrees beyond its one-second resolution, the round trip and the
        tolerance (after any learnt bias); a resync is then wanted (see
        :meth:`wait_resync_due`). A missing or unreadable header is ignored.
        """
        if not date or not self.synced:
            return False
        try:
            stamped = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError, IndexError):
            return False
        if stamped.tzinfo is None:
            return False
        # The server's clock read somewhere in [date, date + 1 s), between send and receive.
        date_ms = int(stamped.timestamp() * 1000)
        estimate = date_ms + 500 - (sent_ms + received_ms) // 2
        allowed = 500 + (received_ms - sent_ms) // 2 + self.date_tolerance_ms
        if abs(estimate - self._offset_ms - self._date_bias_ms) <= allowed:
            return False
        if self._date_estimate_ms is None:
            self._date_estimate_ms = estimate
        self._wanted = True
        self._wake.set()
        return True

    def wanted(self) -> bool:
        """Whether a ``Date`` disagreement asked for a resync that has not happened yet."""
        return self._wanted

    async def wait_resync_due(self) -> str:
        """Sleep until a resync is due; returns its source: ``"time"`` (periodic, or never
        measured) or ``"date"`` (a ``Date`` disagreement). Never earlier than
        ``min_resync_gap_s`` after the previous attempt. Cancellable at any point."""
        while True:
            now = trio.current_time()
            gap_ends = (
                -math.inf
                if self._attempted_at is None
                else self._attempted_at + self.min_resync_gap_s
            )
            if self._synced_at is None:
                due = gap_ends
            else:
                due = max(self._synced_at + self.resync_interval_s, gap_ends)
            if self._wanted:
                if now >= gap_ends:
                    return "date"
                await trio.sleep_until(gap_ends)
                continue
            if now >= due:
                return "time"
            wake = self._wake
            with trio.move_on_at(due):
                await wake.wait()
            if wake.is_set() and self._wake is wake:
                self._wake = trio.Event()

    def __repr__(self) -> str:
        return (
            f"ServerClock(client={self.client!r}, offset_ms={self._offset_ms}, "
            f"rtt_ms={self._rtt_ms}, generation={self._generation})"
        )
