"""Client-side rate limiting against Binance's fixed, clock-aligned windows.

Binance counts request weight and raw requests per IP and pool (Spot; one pool shared by
USD-M and COIN-M), and orders per account and pool, in fixed windows aligned to its clock: a
one-minute window resets at every whole minute of server time, a day window at 00:00 UTC.
:class:`RateLimiter` keeps the same counts locally and admits a request only when it fits every
window it draws on, so the venue never has to say 429.

How it decides:

* **Windows.** Each limit (``exchangeInfo.rateLimits`` entry) becomes a counter keyed by window
  index ``server_ms // interval_ms``. A request admitted at server time ``t`` is reserved in
  every window that ``[t - margin_ms, t + margin_ms]`` touches, so a request admitted just
  before a boundary that reaches Binance just after it (latency, clock-offset error) is counted
  in both windows and cannot overfill either.
* **Queue.** Waiters are ranked by :class:`~actors.binance.costs.Priority`, then arrival (FIFO).
  A waiter that does not fit *claims* the counters it is short of; no later-ranked waiter may
  draw on a claimed counter, so a stream of later, cheaper requests cannot starve it. Claims are
  sticky until it is admitted or leaves, so each waiter is admitted after finitely many window
  resets unless strictly higher priorities keep the pool busy. Requests that need nothing a
  blocked waiter claims go ahead (a market-data read is not held up by one account's full
  order window).
* **Venue feedback.** :meth:`RateLimiter.observe` raises local counts to the
  ``X-MBX-USED-WEIGHT-*``/``X-MBX-ORDER-COUNT-*`` headers; :meth:`RateLimiter.on_429` and
  :meth:`RateLimiter.on_418` stop the whole pool until the venue allows it again and return a
  :class:`RateLimited`/:class:`IpBanned` record for the caller to journal.

The limiter does no I/O and starts no task: waiting happens in the tasks that call
:meth:`RateLimiter.admit`. Server time comes from an injected ``clock`` (milliseconds, e.g.
local time plus a measured offset); sleeping uses trio's clock, so tests run under
``autojump_clock``. Sign and timestamp a request *after* admission, never before.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType

import attrs
import trio

from actors.binance.costs import Cost, Pool, Priority

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MARGIN_MS",
    "Admission",
    "CostExceedsLimit",
    "IpBanned",
    "LimitKind",
    "LimiterRecord",
    "PoolStats",
    "RateLimit",
    "RateLimited",
    "RateLimiter",
    "WindowUsage",
    "parse_rate_limits",
    "wall_clock_ms",
]

#: Default half-width of the guard band around each admission (see the module docstring).
DEFAULT_MARGIN_MS = 200

_UNIT_MS: Mapping[str, int] = {
    "SECOND": 1_000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": 86_400_000,
}
_LETTER_MS: Mapping[str, int] = {unit[0]: ms for unit, ms in _UNIT_MS.items()}
_HEADER = re.compile(r"x-mbx-(used-weight|order-count)-(\d+)([smhd])", re.IGNORECASE)


class LimitKind(enum.Enum):
    """What a limit counts; the values are Binance's ``rateLimitType`` strings."""

    REQUEST_WEIGHT = "REQUEST_WEIGHT"
    ORDERS = "ORDERS"
    RAW_REQUESTS = "RAW_REQUESTS"


@attrs.frozen(kw_only=True)
class RateLimit:
    """One ``exchangeInfo.rateLimits`` entry.

    Attributes:
        kind: what is counted.
        interval: ``SECOND``, ``MINUTE``, ``HOUR`` or ``DAY``.
        interval_num: how many ``interval`` units one window spans.
        limit: the most the window may hold.
    """

    kind: LimitKind
    interval: str = attrs.field(validator=attrs.validators.in_(tuple(_UNIT_MS)))
    interval_num: int = attrs.field(validator=attrs.validators.gt(0))
    limit: int = attrs.field(validator=attrs.validators.ge(0))

    @property
    def interval_ms(self) -> int:
        """The window length in milliseconds."""
        return self.interval_num * _UNIT_MS[self.interval]

    @property
    def label(self) -> str:
        """The suffix Binance uses in headers, e.g. ``1M`` or ``10S``."""
        return f"{self.interval_num}{self.interval[0]}"

    @classmethod
    def from_entry(cls, entry: Mapping[str, object]) -> RateLimit | None:
        """Read one ``rateLimits`` entry.

        Returns ``None`` for a ``rateLimitType`` or ``interval`` this module does not know (so a
        new venue-side limit type cannot stop startup). Raises ``ValueError`` for a known type
        whose numbers are missing or malformed.
        """
        try:
            kind = LimitKind(entry.get("rateLimitType"))
        except ValueError:
            return None
        interval = entry.get("interval")
        if interval not in _UNIT_MS:
            return None
        interval_num = entry.get("intervalNum")
        limit = entry.get("limit")
        if not isinstance(interval_num, int) or isinstance(interval_num, bool):
            raise ValueError(f"rateLimits entry has a bad intervalNum: {entry!r}")
        if not isinstance(limit, int) or isinstance(limit, bool):
            raise ValueError(f"rateLimits entry has a bad limit: {entry!r}")
        try:
            return cls(kind=kind, interval=str(interval), interval_num=interval_num, limit=limit)
        except ValueError as exc:
            raise ValueError(f"bad rateLimits entry {entry!r}: {exc}") from exc

    def to_entry(self) -> dict[str, object]:
        """The ``exchangeInfo.rateLimits`` form of this limit."""
        return {
            "rateLimitType": self.kind.value,
            "interval": self.interval,
            "intervalNum": self.interval_num,
            "limit": self.limit,
        }


def parse_rate_limits(entries: Iterable[RateLimit | Mapping[str, object]]) -> tuple[RateLimit, ...]:
    """Turn ``rateLimits`` entries into :class:`RateLimit` records.

    Unknown types and intervals are skipped (see :meth:`RateLimit.from_entry`). When two entries
    describe the same kind and window length (e.g. UM and CM ``exchangeInfo`` concatenated for
    the shared futures pool), the smaller limit wins. The result is ordered by kind, then window
    length.
    """
    chosen: dict[tuple[LimitKind, int], RateLimit] = {}
    for entry in entries:
        limit = entry if isinstance(entry, RateLimit) else RateLimit.from_entry(entry)
        if limit is None:
            continue
        key = (limit.kind, limit.interval_ms)
        if key not in chosen or limit.limit < chosen[key].limit:
            chosen[key] = limit
    order = list(LimitKind)
    return tuple(sorted(chosen.values(), key=lambda x: (order.index(x.kind), x.interval_ms)))


def _limit(kind: LimitKind, interval: str, interval_num: int, limit: int) -> RateLimit:
    return RateLimit(kind=kind, interval=interval, interval_num=interval_num, limit=limit)


#: Used for a pool until :meth:`RateLimiter.update_limits` gives it the live values. Spot's
#: raw-request limit is the older, lower 61000/5m: safe until ``exchangeInfo`` says otherwise.
DEFAULT_LIMITS: Mapping[Pool, tuple[RateLimit, ...]] = {
    Pool.SPOT: (
        _limit(LimitKind.REQUEST_WEIGHT, "MINUTE", 1, 6000),
        _limit(LimitKind.ORDERS, "SECOND", 10, 50),
        _limit(LimitKind.ORDERS, "DAY", 1, 160_000),
        _limit(LimitKind.RAW_REQUESTS, "MINUTE", 5, 61_000),
    ),
    Pool.FUTURES: (
        _limit(LimitKind.REQUEST_WEIGHT, "MINUTE", 1, 2400),
        _limit(LimitKind.ORDERS, "SECOND", 10, 300),
        _limit(LimitKind.ORDERS, "MINUTE", 1, 1200),
    ),
}


def wall_clock_ms() -> int:
    """The machine's wall clock in milliseconds: the default when no server clock is given."""
    return time.time_ns() // 1_000_000


# ------------------------------------------------------------------------------------ records


@attrs.frozen(kw_only=True)
class RateLimited:
    """Binance answered 429: the pool admits nothing before ``until_ms`` (server time).

    Attributes:
        pool: the pool that is paused.
        until_ms: when admissions resume (the latest pause in force, not only this one).
        code: the Binance error code (``-1003`` weight, ``-1015`` orders) when known.
    """

    pool: Pool
    until_ms: int
    code: int | None


@attrs.frozen(kw_only=True)
class IpBanned:
    """Binance answered 418: the IP is banned from the pool until ``until_ms`` (server time)."""

    pool: Pool
    until_ms: int


LimiterRecord = RateLimited | IpBanned


@attrs.frozen(kw_only=True)
class WindowUsage:
    """The current window of one limit.

    Attributes:
        kind: what is counted.
        interval: Binance's label for the window length (``1M``, ``10S``...).
        account: the account for ``ORDERS`` windows, else ``None``.
        window_start_ms: server time at which this window began.
        used: units reserved locally or reported by Binance, whichever is higher.
        limit: the window's limit.
    """

    kind: LimitKind
    interval: str
    account: str | None
    window_start_ms: int
    used: int
    limit: int


@attrs.frozen(kw_only=True)
class PoolStats:
    """A snapshot of one pool.

    Attributes:
        pool: the pool.
        windows: current usage of every window (weight, raw requests, each account's orders).
        queue_depth: requests waiting, per priority.
        admitted: requests admitted so far, per priority.
        wait_s: total seconds admitted requests spent waiting, per priority.
        max_wait_s: the longest single wait, per priority.
        in_flight: admissions whose ``async with`` block has not exited.
        paused_until_ms: end of a 429 pause or 418 ban still in force, else ``None``.
        banned_until_ms: end of a 418 ban still in force, else ``None``.
    """

    pool: Pool
    windows: tuple[WindowUsage, ...]
    queue_depth: Mapping[Priority, int]
    admitted: Mapping[Priority, int]
    wait_s: Mapping[Priority, float]
    max_wait_s: Mapping[Priority, float]
    in_flight: int
    paused_until_ms: int | None
    banned_until_ms: int | None


class CostExceedsLimit(ValueError):
    """A request costs more than a window can ever hold, so it could never be admitted."""


# ---------------------------------------------------------------------------------- internals


class _Counter:
    """Counts for one limit (one window length) of one scope, keyed by window index."""

    __slots__ = ("_counts", "_floors", "account", "interval_ms", "kind", "label", "limit")

    def __init__(self, limit: RateLimit, account: str | None) -> None:
        self.kind = limit.kind
        self.interval_ms = limit.interval_ms
        self.label = limit.label
        self.limit = limit.limit
        self.account = account
        self._counts: dict[int, int] = {}
        # The highest count Binance reported per window: a refund never goes below it.
        self._floors: dict[int, int] = {}

    def index(self, at_ms: int) -> int:
        return at_ms // self.interval_ms

    def count(self, index: int) -> int:
        return self._counts.get(index, 0)

    def add(self, index: int, amount: int) -> None:
        self._counts[index] = self._counts.get(index, 0) + amount

    def refund(self, index: int, amount: int) -> None:
        if index in self._counts:
            self._counts[index] = max(self._counts[index] - amount, self._floors.get(index, 0))

    def raise_to(self, index: int, value: int) -> bool:
        if value > self._floors.get(index, 0):
            self._floors[index] = value
        if value > self._counts.get(index, 0):
            self._counts[index] = value
            return True
        return False

    def prune(self, before_index: int) -> None:
        for store in (self._counts, self._floors):
            for index in [i for i in store if i < before_index]:
                del store[index]


_Need = tuple[_Counter, int]
_Rank = tuple[int, int]


class _Waiter:
    """A request waiting for admission."""

    __slots__ = (
        "account",
        "admission",
        "claims",
        "cost",
        "deadline",
        "done",
        "error",
        "event",
        "rank",
        "scope",
        "started",
    )

    def __init__(self, cost: Cost, account: str | None, rank: _Rank, started: float) -> None:
        self.cost = cost
        self.account = account
        self.rank = rank
        self.started = started
        self.event = trio.Event()
        self.deadline = math.inf  # trio time of the next self-check; inf: woken by others
        self.scope: trio.CancelScope | None = None
        self.claims: set[_Counter] = set()  # counters it was short of (sticky)
        self.admission: Admission | None = None
        self.error: BaseException | None = None
        self.done = False


class _PoolState:
    """Everything the limiter knows about one pool."""

    def __init__(self, pool: Pool, limits: tuple[RateLimit, ...]) -> None:
        self.pool = pool
        self.limits: tuple[RateLimit, ...] = ()
        self.weight: list[_Counter] = []
        self.raw: list[_Counter] = []
        self.orders: dict[str, list[_Counter]] = {}
        self.queues: tuple[deque[_Waiter], ...] = tuple(deque() for _ in Priority)
        self.depth = dict.fromkeys(Priority, 0)
        self.admitted = dict.fromkeys(Priority, 0)
        self.wait_s = dict.fromkeys(Priority, 0.0)
        self.max_wait_s = dict.fromkeys(Priority, 0.0)
        self.in_flight = 0
        self.claim_rank: dict[_Counter, _Rank] = {}
        self.wake_ms: float = math.inf  # earliest server time a queued waiter could fit
        self.paused_until_ms = 0
        self.banned_until_ms = 0
        self.pause_holder: _Waiter | None = None
        self.set_limits(limits)

    def set_limits(self, limits: tuple[RateLimit, ...]) -> None:
        """Install ``limits``, keeping the counts of windows whose length is unchanged."""
        self.limits = limits
        self.weight = _rebuild(self.weight, limits, LimitKind.REQUEST_WEIGHT, None)
        self.raw = _rebuild(self.raw, limits, LimitKind.RAW_REQUESTS, None)
        for account, counters in self.orders.items():
            self.orders[account] = _rebuild(counters, limits, LimitKind.ORDERS, account)

    def order_counters(self, account: str) -> list[_Counter]:
        counters = self.orders.get(account)
        if counters is None:
            counters = _rebuild([], self.limits, LimitKind.ORDERS, account)
            self.orders[account] = counters
        return counters

    def counters(self) -> Iterable[_Counter]:
        yield from self.weight
        yield from self.raw
        for account in sorted(self.orders):
            yield from self.orders[account]


def _rebuild(
    old: list[_Counter], limits: tuple[RateLimit, ...], kind: LimitKind, account: str | None
) -> list[_Counter]:
    by_interval = {counter.interval_ms: counter for counter in old}
    counters = []
    for limit in limits:
        if limit.kind is not kind:
            continue
        counter = by_interval.get(limit.interval_ms)
        if counter is None:
            counter = _Counter(limit, account)
        counter.limit = limit.limit
        counter.label = limit.label
        counters.append(counter)
    return counters


# ---------------------------------------------------------------------------------- admission


@attrs.define(kw_only=True, eq=False)
class Admission:
    """Permission to send one request, already counted against its windows.

    Attributes:
        cost: what was reserved.
        account: the account given to :meth:`RateLimiter.admit` (its order windows were
            charged if ``cost.orders``).
        admitted_ms: server time of admission.
        waited_s: seconds (trio clock) spent waiting for admission.
        sequence: admission order across the limiter, from 1.
    """

    cost: Cost
    account: str | None
    admitted_ms: int
    waited_s: float
    sequence: int
    _reservations: tuple[tuple[_Counter, int, int], ...] = attrs.field(repr=False)
    _limiter: RateLimiter = attrs.field(repr=False)
    _released: bool = attrs.field(default=False, init=False, repr=False)

    @property
    def released(self) -> bool:
        """True once :meth:`release` has refunded the reservation."""
        return self._released

    def release(self) -> bool:
        """Refund the reservation because the request certainly never reached Binance.

        Call it only when the request failed before being written to the socket (e.g.
        signing failed); a request that may have been sent must stay counted. Idempotent;
        returns ``True`` the first time. Counts never drop below what Binance reported.
        """
        if self._released:
            return False
        self._released = True
        self._limiter._refund(self.cost.pool, self._reservations)
        return True


class _AdmitContext(contextlib.AbstractAsyncContextManager[Admission]):
    """The ``async with`` form of :meth:`RateLimiter.admit`."""

    def __init__(self, limiter: RateLimiter, cost: Cost, account: str | None) -> None:
        self._limiter = limiter
        self._cost = cost
        self._account = account
        self._admission: Admission | None = None

    async def __aenter__(self) -> Admission:
        self._admission = await self._limiter._acquire(self._cost, self._account)
        self._limiter._pools[self._cost.pool].in_flight += 1
        return self._admission

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._limiter._pools[self._cost.pool].in_flight -= 1


# ------------------------------------------------------------------------------------ limiter


class RateLimiter:
    """Admits requests so that no Binance rate-limit window is ever exceeded.

    Args:
        limits: per pool, ``exchangeInfo.rateLimits`` entries (dicts or :class:`RateLimit`);
            a pool left out uses :data:`DEFAULT_LIMITS`.
        clock: current server time in milliseconds (local time plus measured offset).
        margin_ms: half-width of the guard band around each admission; ``0`` reserves only
            in the window of the admission instant.
        on_record: called with every :class:`RateLimited`/:class:`IpBanned` record, in
            addition to it being returned.
    """

    def __init__(
        self,
        limits: Mapping[Pool, Iterable[RateLimit | Mapping[str, object]]] | None = None,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        margin_ms: int = DEFAULT_MARGIN_MS,
        on_record: Callable[[LimiterRecord], None] | None = None,
    ) -> None:
        if margin_ms < 0:
            raise ValueError(f"margin_ms must be >= 0, got {margin_ms}")
        given = dict(limits or {})
        self._clock = clock
        self._margin_ms = margin_ms
        self._on_record = on_record
        self._arrivals = itertools.count()
        self._admissions = itertools.count(1)
        self._pools: dict[Pool, _PoolState] = {
            pool: _PoolState(pool, parse_rate_limits(given.get(pool, DEFAULT_LIMITS[pool])))
            for pool in Pool
        }

    @classmethod
    def from_exchange_info(
        cls,
        exchange_info: Mapping[Pool, Mapping[str, object]],
        *,
        clock: Callable[[], int] = wall_clock_ms,
        margin_ms: int = DEFAULT_MARGIN_MS,
        on_record: Callable[[LimiterRecord], None] | None = None,
    ) -> RateLimiter:
        """Build a limiter from ``exchangeInfo`` bodies, one per pool (``rateLimits`` is read).

        For the futures pool pass one body, or concatenate the UM and CM ``rateLimits`` into
        one dict: the stricter of duplicate limits wins.
        """
        limits: dict[Pool, Iterable[Mapping[str, object]]] = {}
        for pool, info in exchange_info.items():
            entries = info.get("rateLimits")
            if not isinstance(entries, list):
                raise ValueError(f"exchangeInfo for {pool.value} has no rateLimits list")
            limits[pool] = entries
        return cls(limits, clock=clock, margin_ms=margin_ms, on_record=on_record)

    # ------------------------------------------------------------------------------ public

    def limits(self, pool: Pool) -> tuple[RateLimit, ...]:
        """The limits in force for ``pool``."""
        return self._pools[pool].limits

    def update_limits(
        self, pool: Pool, entries: Iterable[RateLimit | Mapping[str, object]]
    ) -> tuple[RateLimit, ...]:
        """Replace ``pool``'s limits (e.g. after ``exchangeInfo``); returns what is in force.

        Counts of windows whose length is unchanged are kept. Waiters are re-examined at once;
        one whose cost no longer fits any window fails with :class:`CostExceedsLimit`.
        """
        state = self._pools[pool]
        state.set_limits(parse_rate_limits(entries))
        self._dispatch(state)
        return state.limits

    def admit(
        self, cost: Cost, account: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[Admission]:
        """Wait until ``cost`` fits every window of its pool, then reserve it.

        Use as ``async with limiter.admit(cost, account) as admission:`` and send the request
        inside the block (sign it there too, so its timestamp is fresh). ``account`` is needed
        when ``cost.orders`` is non-zero: orders count against that account's windows.

        Waiters are served by priority, FIFO within a priority. Cancellation or a timeout while
        waiting leaves no reservation behind; once admitted, the reservation stands (the
        request may have been sent) unless :meth:`Admission.release` is called. Raises
        ``ValueError`` for a negative cost or orders without an account, and
        :class:`CostExceedsLimit` for a cost larger than a window's limit, at once or when
        :meth:`update_limits` makes a waiting cost impossible.
        """
        return _AdmitContext(self, cost, account)

    def observe(
        self,
        pool: Pool,
        headers: Mapping[str, str],
        account: str | None = None,
        now_ms: int | None = None,
        *,
        sent_ms: int | None = None,
    ) -> None:
        """Correct local counts with a response's ``X-MBX-USED-WEIGHT-*`` and
        ``X-MBX-ORDER-COUNT-*`` headers (names case-insensitive).

        Each value is attributed to the window containing ``sent_ms`` when given (a response
        straddling a boundary then never inflates the new window), else ``now_ms``, else the
        clock. The count becomes the higher of the local count and Binance's; it is never
        lowered. Order headers need ``account``; headers for windows with no configured limit
        and malformed values are ignored.
        """
        at_ms = self._at(sent_ms, now_ms)
        for name, value in headers.items():
            match = _HEADER.fullmatch(name)
            if match is None:
                continue
            weight = match[1].lower() == "used-weight"
            kind = LimitKind.REQUEST_WEIGHT if weight else LimitKind.ORDERS
            interval_ms = int(match[2]) * _LETTER_MS[match[3].upper()]
            self._raise(pool, kind, interval_ms, value, account, at_ms)

    def observe_rate_limits(
        self,
        pool: Pool,
        rate_limits: Iterable[Mapping[str, object]],
        account: str | None = None,
        now_ms: int | None = None,
        *,
        sent_ms: int | None = None,
    ) -> None:
        """Like :meth:`observe`, for a WS-API response's ``rateLimits`` list (entries with a
        ``count``)."""
        at_ms = self._at(sent_ms, now_ms)
        for entry in rate_limits:
            limit = RateLimit.from_entry(entry)
            if limit is not None:
                value = entry.get("count")
                self._raise(pool, limit.kind, limit.interval_ms, value, account, at_ms)

    def on_429(
        self,
        pool: Pool,
        retry_after_s: float | None,
        now_ms: int | None = None,
        *,
        code: int | None = None,
    ) -> RateLimited:
        """Pause ``pool`` after an HTTP 429; returns the record to journal.

        The pause lasts ``retry_after_s`` (the ``Retry-After`` header) from ``now_ms`` (default:
        the clock). Without it, it lasts to the end of the current window (plus the margin) of
        the shortest ``ORDERS`` limit for code ``-1015``, else of the shortest
        ``REQUEST_WEIGHT`` limit, else one minute. A pause never shortens one in force.
        """
        now = self._clock() if now_ms is None else now_ms
        state = self._pools[pool]
        if retry_after_s is not None:
            until = now + max(0, math.ceil(retry_after_s * 1000))
        else:
            kind = LimitKind.ORDERS if code == -1015 else LimitKind.REQUEST_WEIGHT
            lengths = [lim.interval_ms for lim in state.limits if lim.kind is kind]
            if not lengths:
                lengths = [
                    lim.interval_ms for lim in state.limits if lim.kind is LimitKind.REQUEST_WEIGHT
                ]
            if lengths:
                length = min(lengths)
                until = (now // length + 1) * length + self._margin_ms
            else:
                until = now + 60_000
        state.paused_until_ms = max(state.paused_until_ms, until)
        record = RateLimited(pool=pool, until_ms=state.paused_until_ms, code=code)
        self._dispatch(state, now)
        self._emit(record)
        return record

    def on_418(self, pool: Pool, until_ms: int) -> IpBanned:
        """Halt ``pool`` after an HTTP 418 (IP ban) until ``until_ms`` (server time); returns
        the record to journal. A ban never shortens a pause or ban in force."""
        state = self._pools[pool]
        state.banned_until_ms = max(state.banned_until_ms, until_ms)
        state.paused_until_ms = max(state.paused_until_ms, until_ms)
        record = IpBanned(pool=pool, until_ms=state.banned_until_ms)
        self._dispatch(state)
        self._emit(record)
        return record

    def paused_until(self, pool: Pool, now_ms: int | None = None) -> int | None:
        """End of the 429 pause or 418 ban in force for ``pool``, or ``None``."""
        now = self._clock() if now_ms is None else now_ms
        until = self._pools[pool].paused_until_ms
        return until if until > now else None

    def used(
        self,
        pool: Pool,
        kind: LimitKind,
        interval: str,
        account: str | None = None,
        now_ms: int | None = None,
    ) -> int:
        """Units counted in the current window of one limit (``interval`` as in ``"1M"``).

        Raises ``KeyError`` when the pool has no such window (or, for ``ORDERS``, when the
        account has never been seen).
        """
        for usage in self.stats(pool, now_ms).windows:
            if usage.kind is kind and usage.interval == interval and usage.account == account:
                return usage.used
        raise KeyError(f"no {kind.value} {interval} window for {pool.value}/{account}")

    def stats(self, pool: Pool, now_ms: int | None = None) -> PoolStats:
        """Current usage per window, queue depth per priority and time spent waiting."""
        now = self._clock() if now_ms is None else now_ms
        state = self._pools[pool]
        windows = []
        for counter in state.counters():
            index = counter.index(now)
            windows.append(
                WindowUsage(
                    kind=counter.kind,
                    interval=counter.label,
                    account=counter.account,
                    window_start_ms=index * counter.interval_ms,
                    used=counter.count(index),
                    limit=counter.limit,
                )
            )
        return PoolStats(
            pool=pool,
            windows=tuple(windows),
            queue_depth=dict(state.depth),
            admitted=dict(state.admitted),
            wait_s=dict(state.wait_s),
            max_wait_s=dict(state.max_wait_s),
            in_flight=state.in_flight,
            paused_until_ms=state.paused_until_ms if state.paused_until_ms > now else None,
            banned_until_ms=state.banned_until_ms if state.banned_until_ms > now else None,
        )

    # ---------------------------------------------------------------------------- waiting

    async def _acquire(self, cost: Cost, account: str | None) -> Admission:
        await trio.lowlevel.checkpoint_if_cancelled()
        state = self._pools[cost.pool]
        self._check(state, cost, account)
        waiter = _Waiter(
            cost, account, (int(cost.priority), next(self._arrivals)), trio.current_time()
        )
        self._arrive(state, waiter)
        if waiter.admission is None and waiter.error is None:
            try:
                await self._wait(state, waiter)
            except BaseException:
                self._abandon(state, waiter)
                raise
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
        if waiter.error is not None:
            raise waiter.error
        admission = waiter.admission
        assert admission is not None
        priority = cost.priority
        state.admitted[priority] += 1
        state.wait_s[priority] += admission.waited_s
        state.max_wait_s[priority] = max(state.max_wait_s[priority], admission.waited_s)
        return admission

    async def _wait(self, state: _PoolState, waiter: _Waiter) -> None:
        while waiter.admission is None and waiter.error is None:
            with trio.CancelScope(deadline=waiter.deadline) as scope:
                waiter.scope = scope
                await waiter.event.wait()
            waiter.scope = None
            if waiter.admission is None and waiter.error is None:
                # Our own deadline passed: a window we were short of has rolled over.
                self._dispatch(state)
                if waiter.deadline <= trio.current_time():
                    # The pass did not reach us (everyone from some rank on is held back by
                    # an earlier claimant, whose own deadline will bring a later pass).
                    waiter.deadline = math.inf

    def _abandon(self, state: _PoolState, waiter: _Waiter) -> None:
        """The waiting task is unwinding (cancelled or failed)."""
        waiter.scope = None
        if waiter.admission is not None:
            # Admitted in the same instant it was cancelled: the request is not sent.
            waiter.admission.release()
            return
        if waiter.done:
            return
        waiter.done = True
        state.depth[waiter.cost.priority] -= 1
        if waiter.claims or waiter.deadline != math.inf or state.pause_holder is waiter:
            # Others may have been held back by this waiter: look again.
            self._dispatch(state)

    # --------------------------------------------------------------------------- decisions

    def _check(self, state: _PoolState, cost: Cost, account: str | None) -> None:
        if cost.weight < 0 or cost.orders < 0:
            raise ValueError(f"negative cost: {cost!r}")
        if cost.orders and account is None:
            raise ValueError("a request that places orders needs an account")
        for counter, amount in self._needs(state, cost, account):
            if amount > counter.limit:
                raise _too_big(counter, amount)

    def _needs(self, state: _PoolState, cost: Cost, account: str | None) -> list[_Need]:
        needs: list[_Need] = []
        if cost.weight:
            needs.extend((counter, cost.weight) for counter in state.weight)
        needs.extend((counter, 1) for counter in state.raw)
        if cost.orders and account is not None:
            needs.extend((counter, cost.orders) for counter in state.order_counters(account))
        return needs

    def _shortfall(self, needs: list[_Need], now: int) -> tuple[list[_Counter], int]:
        """The counters ``needs`` do not fit now, and the earliest time they all could."""
        low, high = now - self._margin_ms, now + self._margin_ms
        short: list[_Counter] = []
        ready = now
        for counter, amount in needs:
            if amount > counter.limit:
                raise _too_big(counter, amount)
            blocking = None
            for index in range(counter.index(low), counter.index(high) + 1):
                if counter.count(index) + amount > counter.limit:
                    blocking = index
            if blocking is not None:
                short.append(counter)
                ready = max(ready, (blocking + 1) * counter.interval_ms + self._margin_ms)
        return short, ready

    def _arrive(self, state: _PoolState, waiter: _Waiter) -> None:
        """Admit ``waiter`` now if it may go ahead, else queue it."""
        now = self._clock()
        state.queues[waiter.cost.priority].append(waiter)
        state.depth[waiter.cost.priority] += 1
        if now >= state.wake_ms:
            # A queued waiter may fit now: decide for everyone, in rank order.
            self._dispatch(state, now)
            return
        # Nobody queued can fit before wake_ms, so only the newcomer needs deciding.
        if now < state.paused_until_ms:
            self._hold_pause(state, waiter, now)
            return
        needs = self._needs(state, waiter.cost, waiter.account)
        claim_rank = state.claim_rank
        if any(claim_rank.get(counter, waiter.rank) < waiter.rank for counter, _ in needs):
            return  # an earlier waiter claimed something it needs
        short, ready = self._shortfall(needs, now)
        if not short:
            state.queues[waiter.cost.priority].pop()
            self._grant(state, waiter, needs, now)
            return
        waiter.claims.update(short)
        for counter in short:
            if claim_rank.get(counter, waiter.rank) >= waiter.rank:
                claim_rank[counter] = waiter.rank
        self._set_deadline(waiter, ready, now)
        state.wake_ms = min(state.wake_ms, ready)

    def _dispatch(self, state: _PoolState, now_ms: int | None = None) -> None:
        """Re-decide every waiter of ``state`` in rank order, admitting those that may go."""
        now = self._clock() if now_ms is None else now_ms
        self._prune(state, now)
        paused = now < state.paused_until_ms
        state.pause_holder = None
        claimed: dict[_Counter, _Rank] = {}
        wake: float = state.paused_until_ms if paused else math.inf
        every = set(state.raw)  # every request draws on these
        blocked_all = False
        for queue in state.queues:
            if blocked_all:
                break
            kept: deque[_Waiter] = deque()
            while queue:
                waiter = queue.popleft()
                if waiter.done:
                    continue
                if paused:
                    kept.append(waiter)
                    self._hold_pause(state, waiter, now)
                    continue
                needs = self._needs(state, waiter.cost, waiter.account)
                if any(counter in claimed for counter, _ in needs):
                    self._set_deadline(waiter, None, now)
                else:
                    ready = self._decide(state, waiter, needs, now)
                    if ready is None:
                        continue  # admitted or failed: it left the queue
                    wake = min(wake, ready)
                kept.append(waiter)
                for counter in waiter.claims:
                    claimed.setdefault(counter, waiter.rank)
                if every and every <= claimed.keys():
                    # Everyone still queued is held back by these claims, and ranks after
                    # every claimant so far: nobody further can go, and the ranks recorded
                    # in ``claimed`` are already the earliest.
                    blocked_all = True
                    break
            kept.extend(queue)
            queue.clear()
            queue.extend(kept)
        state.claim_rank = claimed
        state.wake_ms = wake

    def _decide(
        self, state: _PoolState, waiter: _Waiter, needs: list[_Need], now: int
    ) -> int | None:
        """Admit ``waiter``, fail it (cost now impossible), or mark it short of some counters.

        Returns ``None`` when it left the queue, else the earliest server time it could fit.
        """
        try:
            short, ready = self._shortfall(needs, now)
        except CostExceedsLimit as exc:
            waiter.error = exc
            self._leave(state, waiter)
            return None
        if not short:
            self._grant(state, waiter, needs, now)
            return None
        waiter.claims.update(short)
        self._set_deadline(waiter, ready, now)
        return ready

    def _grant(self, state: _PoolState, waiter: _Waiter, needs: list[_Need], now: int) -> None:
        reservations = []
        low, high = now - self._margin_ms, now + self._margin_ms
        for counter, amount in needs:
            first = counter.index(low)
            counter.prune(first)
            for index in range(first, counter.index(high) + 1):
                counter.add(index, amount)
                reservations.append((counter, index, amount))
        waiter.admission = Admission(
            cost=waiter.cost,
            account=waiter.account,
            admitted_ms=now,
            waited_s=trio.current_time() - waiter.started,
            sequence=next(self._admissions),
            reservations=tuple(reservations),
            limiter=self,
        )
        self._leave(state, waiter)

    def _leave(self, state: _PoolState, waiter: _Waiter) -> None:
        """``waiter`` is decided (admitted or failed): take it off the books and wake it."""
        waiter.done = True
        state.depth[waiter.cost.priority] -= 1
        waiter.event.set()

    def _hold_pause(self, state: _PoolState, waiter: _Waiter, now: int) -> None:
        """Make one waiter responsible for waking when the pause ends."""
        holder = state.pause_holder
        if holder is None or holder.done:
            state.pause_holder = waiter
            self._set_deadline(waiter, state.paused_until_ms, now)
        else:
            self._set_deadline(waiter, None, now)

    def _set_deadline(self, waiter: _Waiter, at_ms: float | None, now: int) -> None:
        # At least 1 ms ahead, so that a clock that disagrees with trio's cannot spin.
        deadline = math.inf if at_ms is None else trio.current_time() + max(at_ms - now, 1) / 1000
        waiter.deadline = deadline
        if waiter.scope is not None:
            waiter.scope.deadline = deadline

    # ----------------------------------------------------------------------------- counts

    def _prune(self, state: _PoolState, now: int) -> None:
        low = now - self._margin_ms
        for counter in state.counters():
            counter.prune(counter.index(low))

    def _refund(self, pool: Pool, reservations: Iterable[tuple[_Counter, int, int]]) -> None:
        state = self._pools[pool]
        for counter, index, amount in reservations:
            counter.refund(index, amount)
        self._dispatch(state)

    def _raise(
        self,
        pool: Pool,
        kind: LimitKind,
        interval_ms: int,
        value: object,
        account: str | None,
        at_ms: int,
    ) -> None:
        try:
            count = int(str(value).strip())
        except ValueError:
            return
        state = self._pools[pool]
        if kind is LimitKind.ORDERS:
            if account is None:
                return
            counters = state.order_counters(account)
        elif kind is LimitKind.REQUEST_WEIGHT:
            counters = state.weight
        else:
            counters = state.raw
        for counter in counters:
            if counter.interval_ms == interval_ms:
                counter.prune(counter.index(at_ms - self._margin_ms))
                counter.raise_to(counter.index(at_ms), count)

    def _at(self, sent_ms: int | None, now_ms: int | None) -> int:
        if sent_ms is not None:
            return sent_ms
        return self._clock() if now_ms is None else now_ms

    def _emit(self, record: LimiterRecord) -> None:
        if self._on_record is not None:
            self._on_record(record)


def _too_big(counter: _Counter, amount: int) -> CostExceedsLimit:
    scope = f" for account {counter.account}" if counter.account else ""
    return CostExceedsLimit(
        f"cost {amount} exceeds the {counter.kind.value} limit of {counter.limit} "
        f"per {counter.label}{scope}"
    )
