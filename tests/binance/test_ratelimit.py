"""The client-side rate limiter: fixed windows, priorities, venue feedback, statistics."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.binance.costs import Cost, Pool, Priority
from actors.binance.ratelimit import (
    DEFAULT_LIMITS,
    Admission,
    CostExceedsLimit,
    IpBanned,
    LimitKind,
    RateLimited,
    RateLimiter,
    parse_rate_limits,
)

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: aligned to every window length
WEIGHT = LimitKind.REQUEST_WEIGHT
ORDERS = LimitKind.ORDERS
RAW = LimitKind.RAW_REQUESTS


def server_clock(start_ms: int = EPOCH_MS) -> Callable[[], int]:
    """Server time in ms that follows trio's (virtual) clock from ``start_ms``."""
    origin = trio.current_time()
    return lambda: start_ms + round((trio.current_time() - origin) * 1000)


def entry(kind: LimitKind, interval: str, num: int, limit: int) -> dict[str, object]:
    return {"rateLimitType": kind.value, "interval": interval, "intervalNum": num, "limit": limit}


def spot(weight: int, orders: int = 0, priority: Priority = Priority.MARKET_DATA) -> Cost:
    return Cost(Pool.SPOT, weight, orders, priority)


def futures(weight: int, orders: int = 0, priority: Priority = Priority.MARKET_DATA) -> Cost:
    return Cost(Pool.FUTURES, weight, orders, priority)


async def sleep_until(clock: Callable[[], int], at_ms: int) -> None:
    await trio.sleep(max(at_ms - clock(), 0) / 1000)


async def admit_and_record(
    limiter: RateLimiter,
    cost: Cost,
    account: str | None,
    log: list[Admission],
    hold_s: float = 0,
) -> None:
    async with limiter.admit(cost, account) as admission:
        log.append(admission)
        await trio.sleep(hold_s)


# ------------------------------------------------------------------------------ limits


def test_parse_rate_limits_reads_entries_skips_unknown_and_keeps_the_stricter() -> None:
    limits = parse_rate_limits(
        [
            entry(ORDERS, "DAY", 1, 160_000),
            entry(WEIGHT, "MINUTE", 1, 6000),
            {"rateLimitType": "CONNECTIONS", "interval": "MINUTE", "intervalNum": 5, "limit": 3},
            {"rateLimitType": "ORDERS", "interval": "WEEK", "intervalNum": 1, "limit": 9},
            entry(WEIGHT, "MINUTE", 1, 2400),
            entry(WEIGHT, "SECOND", 60, 5000),  # the same window length as 1 MINUTE
            entry(ORDERS, "SECOND", 10, 50),
        ]
    )
    assert [(lim.kind, lim.label, lim.limit) for lim in limits] == [
        (WEIGHT, "1M", 2400),
        (ORDERS, "10S", 50),
        (ORDERS, "1D", 160_000),
    ]
    assert limits[0].to_entry() == entry(WEIGHT, "MINUTE", 1, 2400)
    with pytest.raises(ValueError, match="limit"):
        parse_rate_limits([{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10}])
    with pytest.raises(ValueError, match="intervalNum"):
        parse_rate_limits([entry(ORDERS, "SECOND", 0, 10)])


def test_defaults_and_from_exchange_info() -> None:
    limiter = RateLimiter(clock=lambda: EPOCH_MS)
    assert [(lim.kind, lim.label, lim.limit) for lim in limiter.limits(Pool.SPOT)] == [
        (WEIGHT, "1M", 6000),
        (ORDERS, "10S", 50),
        (ORDERS, "1D", 160_000),
        (RAW, "5M", 61_000),
    ]
    assert [(lim.kind, lim.label, lim.limit) for lim in limiter.limits(Pool.FUTURES)] == [
        (WEIGHT, "1M", 2400),
        (ORDERS, "10S", 300),
        (ORDERS, "1M", 1200),
    ]
    info = {"timezone": "UTC", "rateLimits": [entry(WEIGHT, "MINUTE", 1, 1200)]}
    limiter = RateLimiter.from_exchange_info({Pool.SPOT: info}, clock=lambda: EPOCH_MS)
    assert [lim.limit for lim in limiter.limits(Pool.SPOT)] == [1200]
    assert limiter.limits(Pool.FUTURES) == DEFAULT_LIMITS[Pool.FUTURES]
    with pytest.raises(ValueError, match="rateLimits"):
        RateLimiter.from_exchange_info({Pool.SPOT: {}})


async def test_admit_rejects_impossible_costs_at_once() -> None:
    limiter = RateLimiter(clock=server_clock())
    with pytest.raises(CostExceedsLimit, match="REQUEST_WEIGHT limit of 6000 per 1M"):
        async with limiter.admit(spot(6001)):
            pass
    with pytest.raises(CostExceedsLimit, match="ORDERS limit of 50 per 10S for account a"):
        async with limiter.admit(spot(1, orders=51), "a"):
            pass
    with pytest.raises(ValueError, match="needs an account"):
        async with limiter.admit(spot(1, orders=1)):
            pass
    with pytest.raises(ValueError, match="negative"):
        async with limiter.admit(spot(-1)):
            pass
    assert limiter.stats(Pool.SPOT).queue_depth == dict.fromkeys(Priority, 0)


# ----------------------------------------------------------------------------- windows


async def test_windows_reset_on_clock_aligned_boundaries(autojump_clock) -> None:
    clock = server_clock(EPOCH_MS + 30_000)  # half way through a minute
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 10), entry(ORDERS, "SECOND", 10, 2)]},
        clock=clock,
        margin_ms=0,
    )
    log: list[Admission] = []
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(admit_and_record, limiter, spot(10), None, log)
    # The first goes at once; the next ones exactly at the next whole minutes.
    assert [a.admitted_ms - EPOCH_MS for a in log] == [30_000, 60_000, 120_000]
    assert [a.waited_s for a in log] == [0, 30, 90]

    # Order windows of 10 s, aligned to the clock too: 2 per window.
    await sleep_until(clock, EPOCH_MS + 123_000)
    log.clear()
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(admit_and_record, limiter, spot(0, orders=1), "a", log)
    assert [a.admitted_ms - EPOCH_MS for a in log] == [123_000] * 2 + [130_000] * 2 + [140_000]
    assert limiter.used(Pool.SPOT, ORDERS, "10S", "a") == 1


async def test_margin_counts_a_request_near_a_boundary_in_both_windows(autojump_clock) -> None:
    clock = server_clock(EPOCH_MS + 59_900)
    limiter = RateLimiter({Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 10)]}, clock=clock)
    log: list[Admission] = []
    await admit_and_record(limiter, spot(6), None, log)
    # It may reach Binance before or after :00, so it counts in both minutes' windows...
    assert log[0].admitted_ms == EPOCH_MS + 59_900
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 6
    assert limiter.used(Pool.SPOT, WEIGHT, "1M", now_ms=EPOCH_MS + 60_100) == 6
    # ...and the next may go only once the guard band has left the second minute.
    await admit_and_record(limiter, spot(6), None, log)
    assert log[1].admitted_ms == EPOCH_MS + 120_200


async def test_burst_of_ten_thousand_never_exceeds_any_window(autojump_clock) -> None:
    margin_ms = 200
    limits = {
        Pool.SPOT: [
            entry(WEIGHT, "MINUTE", 1, 3000),
            entry(RAW, "MINUTE", 1, 400),
            entry(ORDERS, "SECOND", 10, 20),
            entry(ORDERS, "MINUTE", 1, 90),
        ],
        Pool.FUTURES: DEFAULT_LIMITS[Pool.FUTURES],
    }
    limiter = RateLimiter(limits, clock=server_clock(EPOCH_MS + 12_345), margin_ms=margin_ms)
    rng = random.Random(7)
    weights = [0, 1, 1, 2, 2, 4, 5, 5, 10, 20, 25, 40, 50]
    accounts = ["a", "b", "c"]
    log: list[Admission] = []
    async with trio.open_nursery() as nursery:
        for _ in range(10_000):
            pool = rng.choice([Pool.SPOT, Pool.FUTURES])
            priority = rng.choice(list(Priority))
            orders = rng.choice([1, 1, 2, 5]) if priority <= Priority.ORDER else 0
            cost = Cost(pool, rng.choice(weights), orders, priority)
            account = rng.choice(accounts)
            nursery.start_soon(admit_and_record, limiter, cost, account, log, rng.random())
    assert len(log) == 10_000  # all completed

    # An independent count: every admission counts in each window its guard band touches.
    totals: dict[tuple[Pool, LimitKind, int, str | None, int], int] = defaultdict(int)
    for admission in log:
        cost = admission.cost
        for limit in parse_rate_limits(limits[cost.pool]):
            if limit.kind is WEIGHT:
                amount, account = cost.weight, None
            elif limit.kind is RAW:
                amount, account = 1, None
            else:
                amount, account = cost.orders, admission.account
            size = limit.interval_ms
            low = (admission.admitted_ms - margin_ms) // size
            high = (admission.admitted_ms + margin_ms) // size
            for index in range(low, high + 1):
                totals[cost.pool, limit.kind, size, account, index] += amount
    limit_of = {
        (pool, lim.kind, lim.interval_ms): lim.limit
        for pool, entries in limits.items()
        for lim in parse_rate_limits(entries)
    }
    assert totals
    for (pool, kind, size, _account, _index), total in totals.items():
        assert total <= limit_of[pool, kind, size]
    # The limits were binding, not merely respected.
    assert max(t for k, t in totals.items() if k[:3] == (Pool.SPOT, RAW, 60_000)) == 400
    for pool in Pool:
        stats = limiter.stats(pool)
        assert stats.queue_depth == dict.fromkeys(Priority, 0)
        assert stats.in_flight == 0
    total_admitted = sum(sum(limiter.stats(pool).admitted.values()) for pool in Pool)
    assert total_admitted == 10_000


# --------------------------------------------------------------------------- priorities


async def test_priority_order_under_contention(autojump_clock) -> None:
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 10)]}, clock=server_clock(), margin_ms=0
    )
    log: list[Admission] = []
    async with limiter.admit(spot(10)):
        pass  # the window is now full
    async with trio.open_nursery() as nursery:
        first = [Priority.BACKGROUND] + [Priority.MARKET_DATA] * 3
        for priority in [*first, Priority.ACCOUNT, Priority.ORDER]:
            nursery.start_soon(admit_and_record, limiter, spot(10, 0, priority), None, log)
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(admit_and_record, limiter, spot(10, 0, Priority.CANCEL), None, log)
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.stats(Pool.SPOT).queue_depth == {
            Priority.CANCEL: 1,
            Priority.ORDER: 1,
            Priority.ACCOUNT: 1,
            Priority.MARKET_DATA: 3,
            Priority.BACKGROUND: 1,
        }
    log.sort(key=lambda a: a.sequence)
    assert [a.cost.priority for a in log] == [
        Priority.CANCEL,
        Priority.ORDER,
        Priority.ACCOUNT,
        Priority.MARKET_DATA,
        Priority.MARKET_DATA,
        Priority.MARKET_DATA,
        Priority.BACKGROUND,  # first in line, last served
    ]
    assert [(a.admitted_ms - EPOCH_MS) // 60_000 for a in log] == [1, 2, 3, 4, 5, 6, 7]
    stats = limiter.stats(Pool.SPOT)
    assert stats.max_wait_s[Priority.MARKET_DATA] == 360
    assert stats.wait_s[Priority.MARKET_DATA] == 240 + 300 + 360


async def test_cheaper_later_request_does_not_starve_an_earlier_one(autojump_clock) -> None:
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100)]}, clock=server_clock(), margin_ms=0
    )
    log: list[Admission] = []
    async with limiter.admit(spot(95)):
        pass
    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit_and_record, limiter, spot(50), None, log)  # short of weight
        await trio.testing.wait_all_tasks_blocked()
        # Later, cheap, same priority: it would fit, but must queue behind the first one.
        nursery.start_soon(admit_and_record, limiter, spot(5), None, log)
        await trio.testing.wait_all_tasks_blocked()
        assert log == []
        # A cancel outranks the waiting read, so it may use the room that is left.
        nursery.start_soon(admit_and_record, limiter, spot(5, 0, Priority.CANCEL), None, log)
        await trio.testing.wait_all_tasks_blocked()
        assert [a.cost.priority for a in log] == [Priority.CANCEL]
    log.sort(key=lambda a: a.sequence)
    assert [(a.cost.weight, a.admitted_ms - EPOCH_MS) for a in log] == [
        (5, 0),
        (50, 60_000),
        (5, 60_000),
    ]


async def test_claims_hold_when_windows_reset(autojump_clock) -> None:
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100)]}, clock=server_clock(), margin_ms=0
    )
    log: list[Admission] = []
    async with limiter.admit(spot(100)):
        pass
    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit_and_record, limiter, spot(100), None, log)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(admit_and_record, limiter, spot(5), None, log)
        await trio.testing.wait_all_tasks_blocked()
        # Binance already counted 10 in the next minute (e.g. another process on the IP), so
        # at :00 the big read is still short; the small one still must not pass it.
        limiter.observe(Pool.SPOT, {"X-MBX-USED-WEIGHT-1M": "10"}, now_ms=EPOCH_MS + 60_000)
    log.sort(key=lambda a: a.sequence)
    assert [(a.cost.weight, a.admitted_ms - EPOCH_MS) for a in log] == [
        (100, 120_000),
        (5, 180_000),
    ]


async def test_a_stream_of_cheap_reads_cannot_starve_a_big_one(autojump_clock) -> None:
    clock = server_clock()
    limiter = RateLimiter({Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100)]}, clock=clock)
    big: list[Admission] = []
    reads: list[Admission] = []

    async def cheap_reads() -> None:
        while not big:
            await admit_and_record(limiter, spot(3), None, reads, 0.5)

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(cheap_reads)
        await trio.sleep(30)
        nursery.start_soon(admit_and_record, limiter, spot(100), None, big)
    # The reads that queued before it go first at 01:00.2; the ones after that queue behind
    # its claim, so it has the whole of the next window, however many reads keep coming.
    assert big[0].admitted_ms == EPOCH_MS + 120_200
    second_minute = [a for a in reads if 60_000 <= a.admitted_ms - EPOCH_MS < 120_000]
    assert sum(a.cost.weight for a in second_minute) < 100  # it could not fit there
    assert not [a for a in reads if 120_000 <= a.admitted_ms - EPOCH_MS < 180_000]


async def test_a_blocked_order_does_not_hold_up_unrelated_requests(autojump_clock) -> None:
    limiter = RateLimiter(
        {Pool.FUTURES: [entry(WEIGHT, "MINUTE", 1, 100), entry(ORDERS, "SECOND", 10, 1)]},
        clock=server_clock(),
        margin_ms=0,
    )
    log: list[Admission] = []
    async with limiter.admit(futures(0, 1, Priority.ORDER), "a"):
        pass
    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit_and_record, limiter, futures(0, 1, Priority.ORDER), "a", log)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(admit_and_record, limiter, futures(0, 1, Priority.ORDER), "b", log)
        nursery.start_soon(admit_and_record, limiter, futures(20), None, log)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted((a.account or "", a.admitted_ms - EPOCH_MS) for a in log) == [
            ("", 0),
            ("b", 0),
        ]
    assert (log[-1].account, log[-1].admitted_ms - EPOCH_MS) == ("a", 10_000)


# ----------------------------------------------------------------------------- accounts


async def test_order_windows_are_per_account_but_weight_is_shared(autojump_clock) -> None:
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100), entry(ORDERS, "SECOND", 10, 2)]},
        clock=server_clock(),
        margin_ms=0,
    )
    log: list[Admission] = []
    async with trio.open_nursery() as nursery:
        for account in ["a", "a", "a", "b", "b"]:
            nursery.start_soon(admit_and_record, limiter, spot(10, 1, Priority.ORDER), account, log)
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.used(Pool.SPOT, ORDERS, "10S", "a") == 2
        assert limiter.used(Pool.SPOT, ORDERS, "10S", "b") == 2
        assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 40
    at = sorted((a.account, a.admitted_ms - EPOCH_MS) for a in log)
    assert at == [("a", 0), ("a", 0), ("a", 10_000), ("b", 0), ("b", 0)]
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 50
    assert limiter.used(Pool.SPOT, ORDERS, "10S", "a") == 1
    assert limiter.used(Pool.SPOT, ORDERS, "10S", "b") == 0

    # Weight is one budget for every account: account c is held back by a and b's reads.
    async with limiter.admit(spot(50)):
        pass
    log.clear()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit_and_record, limiter, spot(10, 1, Priority.ORDER), "c", log)
    assert log[0].admitted_ms == EPOCH_MS + 60_000


async def test_usd_m_and_coin_m_share_the_futures_pool(autojump_clock) -> None:
    usd_m = {"rateLimits": [entry(WEIGHT, "MINUTE", 1, 2400), entry(ORDERS, "MINUTE", 1, 1200)]}
    coin_m = {"rateLimits": [entry(WEIGHT, "MINUTE", 1, 6000), entry(ORDERS, "SECOND", 10, 300)]}
    merged = {"rateLimits": usd_m["rateLimits"] + coin_m["rateLimits"]}
    limiter = RateLimiter.from_exchange_info({Pool.FUTURES: merged}, clock=server_clock())
    assert [(lim.kind, lim.label, lim.limit) for lim in limiter.limits(Pool.FUTURES)] == [
        (WEIGHT, "1M", 2400),
        (ORDERS, "10S", 300),
        (ORDERS, "1M", 1200),
    ]


# ------------------------------------------------------------------------------ 429/418


async def test_429_pauses_the_pool_until_retry_after_then_resumes(autojump_clock) -> None:
    clock = server_clock()
    records: list[object] = []
    limiter = RateLimiter(clock=clock, on_record=records.append)
    log: list[Admission] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit_and_record, limiter, spot(1), None, log, 1.0)
        await trio.testing.wait_all_tasks_blocked()
        record = limiter.on_429(Pool.SPOT, 5.0, code=-1003)
        assert record == RateLimited(pool=Pool.SPOT, until_ms=EPOCH_MS + 5000, code=-1003)
        assert records == [record]
        for priority in Priority:
            nursery.start_soon(admit_and_record, limiter, spot(1, 0, priority), None, log)
        # Another pool is not affected.
        nursery.start_soon(admit_and_record, limiter, futures(1), None, log)
        await trio.testing.wait_all_tasks_blocked()
        assert len(log) == 2
        assert limiter.paused_until(Pool.SPOT) == EPOCH_MS + 5000
        assert limiter.stats(Pool.SPOT).queue_depth == dict.fromkeys(Priority, 1)
    assert [a.admitted_ms - EPOCH_MS for a in log] == [0, 0] + [5000] * len(Priority)
    assert [a.cost.priority for a in sorted(log[2:], key=lambda a: a.sequence)] == list(Priority)
    assert limiter.paused_until(Pool.SPOT) is None


async def test_429_without_retry_after_waits_for_the_window_and_never_shortens(
    autojump_clock,
) -> None:
    clock = server_clock(EPOCH_MS + 42_000)
    limiter = RateLimiter(clock=clock)
    assert limiter.on_429(Pool.SPOT, None).until_ms == EPOCH_MS + 60_200
    assert limiter.on_429(Pool.SPOT, 1).until_ms == EPOCH_MS + 60_200  # not shortened
    record = limiter.on_429(Pool.FUTURES, None, code=-1015)
    assert record.until_ms == EPOCH_MS + 50_200  # the 10-second order window
    assert limiter.on_429(Pool.SPOT, 30).until_ms == EPOCH_MS + 72_000
    log: list[Admission] = []
    await admit_and_record(limiter, spot(1), None, log)
    assert log[0].admitted_ms == EPOCH_MS + 72_000


async def test_418_halts_the_pool_until_the_ban_ends(autojump_clock) -> None:
    clock = server_clock()
    limiter = RateLimiter(clock=clock)
    ban_end = EPOCH_MS + 2 * 60 * 60 * 1000
    assert limiter.on_418(Pool.FUTURES, ban_end) == IpBanned(pool=Pool.FUTURES, until_ms=ban_end)
    assert limiter.stats(Pool.FUTURES).banned_until_ms == ban_end
    log: list[Admission] = []
    with trio.move_on_after(3600):
        await admit_and_record(limiter, futures(1), None, log)
    assert log == []
    assert limiter.stats(Pool.FUTURES).queue_depth == dict.fromkeys(Priority, 0)
    async with trio.open_nursery() as nursery:
        for priority in Priority:
            nursery.start_soon(admit_and_record, limiter, futures(1, 0, priority), None, log)
        nursery.start_soon(admit_and_record, limiter, spot(1), None, log)
    assert sorted(a.admitted_ms - EPOCH_MS for a in log) == [3_600_000] + [7_200_000] * len(
        Priority
    )
    assert limiter.stats(Pool.FUTURES).banned_until_ms is None


# ------------------------------------------------------------------------------ headers


async def test_headers_raise_the_local_count_and_never_lower_it(autojump_clock) -> None:
    clock = server_clock(EPOCH_MS + 1000)
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100), entry(ORDERS, "SECOND", 10, 5)]},
        clock=clock,
        margin_ms=0,
    )
    async with limiter.admit(spot(10, 1, Priority.ORDER), "a"):
        pass
    limiter.observe(
        Pool.SPOT,
        {
            "x-mbx-used-weight-1m": "90",  # another process shares the IP
            "X-MBX-ORDER-COUNT-10S": "4",
            "X-MBX-USED-WEIGHT": "90",  # unsuffixed legacy header: ignored
            "X-MBX-USED-WEIGHT-1S": "1000",  # no such window configured: ignored
            "X-MBX-ORDER-COUNT-1D": "oops",  # malformed: ignored
            "Content-Type": "application/json",
        },
        "a",
    )
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 90
    assert limiter.used(Pool.SPOT, ORDERS, "10S", "a") == 4
    limiter.observe(Pool.SPOT, {"X-MBX-USED-WEIGHT-1M": "20", "X-MBX-ORDER-COUNT-10S": "1"}, "a")
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 90
    assert limiter.used(Pool.SPOT, ORDERS, "10S", "a") == 4
    # Order counts need an account; other accounts are untouched.
    limiter.observe(Pool.SPOT, {"X-MBX-ORDER-COUNT-10S": "5"})
    limiter.observe(Pool.SPOT, {"X-MBX-ORDER-COUNT-10S": "5"}, "b")
    assert limiter.used(Pool.SPOT, ORDERS, "10S", "a") == 4

    log: list[Admission] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit_and_record, limiter, spot(20), None, log)  # 90 + 20 > 100
        nursery.start_soon(admit_and_record, limiter, spot(0, 1, Priority.ORDER), "b", log)
        nursery.start_soon(admit_and_record, limiter, spot(10, 1, Priority.ORDER), "a", log)
    got = sorted((a.cost.weight, a.account, a.admitted_ms - EPOCH_MS) for a in log)
    assert got == [(0, "b", 10_000), (10, "a", 1000), (20, None, 60_000)]


async def test_header_for_a_newer_window_starts_that_window(autojump_clock) -> None:
    clock = server_clock(EPOCH_MS + 59_000)
    limiter = RateLimiter({Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100)]}, clock=clock)
    async with limiter.admit(spot(80)):
        pass
    # The venue's clock is already in the next minute, where it counted 30.
    limiter.observe(Pool.SPOT, {"X-MBX-USED-WEIGHT-1M": "30"}, now_ms=EPOCH_MS + 60_050)
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 80
    assert limiter.used(Pool.SPOT, WEIGHT, "1M", now_ms=EPOCH_MS + 60_050) == 30
    # A straddling response is attributed to the window it was sent in.
    limiter.observe(
        Pool.SPOT, {"X-MBX-USED-WEIGHT-1M": "95"}, now_ms=EPOCH_MS + 60_300, sent_ms=clock()
    )
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 95
    assert limiter.used(Pool.SPOT, WEIGHT, "1M", now_ms=EPOCH_MS + 60_300) == 30


async def test_ws_api_rate_limits_correct_counts_too(autojump_clock) -> None:
    limiter = RateLimiter(clock=server_clock())
    limiter.observe_rate_limits(
        Pool.SPOT,
        [
            {**entry(WEIGHT, "MINUTE", 1, 6000), "count": 1234},
            {**entry(ORDERS, "SECOND", 10, 50), "count": 7},
            {**entry(ORDERS, "DAY", 1, 160000), "count": 99},
        ],
        "a",
    )
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 1234
    assert limiter.used(Pool.SPOT, ORDERS, "10S", "a") == 7
    assert limiter.used(Pool.SPOT, ORDERS, "1D", "a") == 99


# ------------------------------------------------------------------------- cancellation


async def test_cancelled_waiters_free_their_place(autojump_clock) -> None:
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100)]}, clock=server_clock(), margin_ms=0
    )
    async with limiter.admit(spot(90)):
        pass
    log: list[Admission] = []
    async with trio.open_nursery() as nursery:
        big_scope = await nursery.start(cancellable, limiter, spot(50))
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(admit_and_record, limiter, spot(10), None, log)  # behind the big one
        await trio.testing.wait_all_tasks_blocked()
        assert log == []
        assert limiter.stats(Pool.SPOT).queue_depth[Priority.MARKET_DATA] == 2
        big_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        # The claim went with it: the small read goes at once, into the room that was left.
        assert [a.admitted_ms - EPOCH_MS for a in log] == [0]
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 100
    assert limiter.stats(Pool.SPOT).queue_depth == dict.fromkeys(Priority, 0)

    # A timed-out waiter leaves nothing in the next window either.
    with trio.move_on_after(10):
        async with limiter.admit(spot(40)):
            pytest.fail("admitted into a full window")
    assert limiter.used(Pool.SPOT, WEIGHT, "1M", now_ms=EPOCH_MS + 60_000) == 0
    assert limiter.stats(Pool.SPOT).queue_depth == dict.fromkeys(Priority, 0)


async def cancellable(
    limiter: RateLimiter, cost: Cost, task_status: trio.TaskStatus[trio.CancelScope]
) -> None:
    with trio.CancelScope() as scope:
        task_status.started(scope)
        async with limiter.admit(cost):
            pytest.fail("admitted although cancelled")


async def test_waiters_cancelled_in_the_same_instant_leave_nothing(autojump_clock) -> None:
    # When the head of the queue leaves, the one behind it is admitted at once; if it was
    # cancelled in that same instant, its admission must be given back, not leaked.
    for _ in range(20):  # trio runs the two cancelled tasks in either order
        limiter = RateLimiter(
            {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100)]}, clock=server_clock(), margin_ms=0
        )
        async with limiter.admit(spot(50)):
            pass
        log: list[Admission] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(admit_and_record, limiter, spot(100), None, log)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(admit_and_record, limiter, spot(10), None, log)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert log == []
        assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 50
        stats = limiter.stats(Pool.SPOT)
        assert stats.queue_depth == dict.fromkeys(Priority, 0)
        assert sum(stats.admitted.values()) == 1


async def test_release_refunds_a_request_that_was_never_sent(autojump_clock) -> None:
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100)]}, clock=server_clock(), margin_ms=0
    )
    async with limiter.admit(spot(60)) as unsent:
        pass
    log: list[Admission] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit_and_record, limiter, spot(70), None, log)
        await trio.testing.wait_all_tasks_blocked()
        assert log == []
        limiter.observe(Pool.SPOT, {"X-MBX-USED-WEIGHT-1M": "20"})
        assert unsent.release()
        assert not unsent.release()
        await trio.testing.wait_all_tasks_blocked()
        assert [a.admitted_ms - EPOCH_MS for a in log] == [0]
    # The refund stopped at what Binance reported: 20 + 70.
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 90


async def test_update_limits_wakes_and_fails_waiters(autojump_clock) -> None:
    limiter = RateLimiter(
        {Pool.SPOT: [entry(WEIGHT, "MINUTE", 1, 100)]}, clock=server_clock(), margin_ms=0
    )
    async with limiter.admit(spot(100)):
        pass
    log: list[Admission] = []
    failures: list[BaseException] = []

    async def admit_expecting_failure(cost: Cost) -> None:
        with pytest.raises(CostExceedsLimit) as info:
            await admit_and_record(limiter, cost, None, log)
        failures.append(info.value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(admit_and_record, limiter, spot(50), None, log)
        nursery.start_soon(admit_expecting_failure, spot(400))
        await trio.testing.wait_all_tasks_blocked()
        limiter.update_limits(Pool.SPOT, [entry(WEIGHT, "MINUTE", 1, 300)])
        await trio.testing.wait_all_tasks_blocked()
        assert [a.admitted_ms - EPOCH_MS for a in log] == [0]
        assert len(failures) == 1
    assert limiter.used(Pool.SPOT, WEIGHT, "1M") == 150  # the count survived the update


# --------------------------------------------------------------------------- hypothesis


@attrs.frozen
class AdmitStep:
    weight: int
    orders: int
    account: str
    priority: Priority
    hold_ms: int
    give_up_ms: int | None


@attrs.frozen
class ObserveStep:
    kind: LimitKind
    label: str
    account: str
    value: int


@attrs.frozen
class SleepStep:
    ms: int


@attrs.frozen
class PauseStep:
    retry_after_s: int | None


HYPOTHESIS_LIMITS = [
    entry(WEIGHT, "SECOND", 10, 12),
    entry(RAW, "SECOND", 10, 6),
    entry(ORDERS, "SECOND", 5, 3),
    entry(ORDERS, "MINUTE", 1, 5),
]

STEPS = {
    "admit": st.builds(
        AdmitStep,
        weight=st.integers(0, 12),
        orders=st.integers(0, 3),
        account=st.sampled_from(["a", "b"]),
        priority=st.sampled_from(list(Priority)),
        hold_ms=st.integers(0, 3000),
        give_up_ms=st.none() | st.integers(0, 20_000),
    ),
    "weight report": st.builds(
        ObserveStep,
        kind=st.just(WEIGHT),
        label=st.just("10S"),
        account=st.sampled_from(["a", "b"]),
        value=st.integers(0, 14),
    ),
    "order report": st.builds(
        ObserveStep,
        kind=st.just(ORDERS),
        label=st.sampled_from(["5S", "1M"]),
        account=st.sampled_from(["a", "b"]),
        value=st.integers(0, 6),
    ),
    "sleep": st.builds(SleepStep, ms=st.integers(0, 8000)),
    "429": st.builds(PauseStep, retry_after_s=st.none() | st.integers(0, 5)),
}
# About half of a plan is admissions; the rest are reports, sleeps and pauses.
steps = st.sampled_from(["admit"] * 4 + sorted(STEPS)).flatmap(STEPS.__getitem__)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(steps, min_size=5, max_size=60),
    margin_ms=st.sampled_from([0, 200, 2500]),
    start_ms=st.integers(0, 60_000),
)
def test_random_interleavings_never_overfill_a_window(
    plan: list[object], margin_ms: int, start_ms: int
) -> None:
    """Whatever order admissions, header corrections and pauses come in, replaying them on an
    independent model shows that no window ever held more than its limit."""
    admitted: list[Admission] = []
    observed: list[tuple[int, int, LimitKind, int, str, int]] = []  # (granted before, ...)
    lengths = {"10S": 10_000, "5S": 5_000, "1M": 60_000}

    async def admit(limiter: RateLimiter, step: AdmitStep) -> None:
        cost = Cost(Pool.SPOT, step.weight, step.orders, step.priority)
        with trio.move_on_after(math.inf if step.give_up_ms is None else step.give_up_ms / 1000):
            async with limiter.admit(cost, step.account) as admission:
                admitted.append(admission)
                await trio.sleep(step.hold_ms / 1000)

    async def main() -> None:
        clock = server_clock(EPOCH_MS + start_ms)
        limiter = RateLimiter({Pool.SPOT: HYPOTHESIS_LIMITS}, clock=clock, margin_ms=margin_ms)
        with trio.fail_after(24 * 3600):  # virtual: catches a lost wake-up
            async with trio.open_nursery() as nursery:
                for step in plan:
                    if isinstance(step, AdmitStep):
                        nursery.start_soon(admit, limiter, step)
                        await trio.testing.wait_all_tasks_blocked()
                    elif isinstance(step, ObserveStep):
                        name = "X-MBX-USED-WEIGHT-" if step.kind is WEIGHT else "x-mbx-order-count-"
                        limiter.observe(
                            Pool.SPOT, {name + step.label: str(step.value)}, step.account
                        )
                        granted = sum(limiter.stats(Pool.SPOT).admitted.values())
                        at = clock()
                        observed.append(
                            (granted, at, step.kind, lengths[step.label], step.account, step.value)
                        )
                    elif isinstance(step, SleepStep):
                        await trio.sleep(step.ms / 1000)
                    else:
                        assert isinstance(step, PauseStep)
                        limiter.on_429(Pool.SPOT, step.retry_after_s)
        stats = limiter.stats(Pool.SPOT)
        assert stats.queue_depth == dict.fromkeys(Priority, 0)
        assert sum(stats.admitted.values()) == len(admitted)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    # The model: each window's count is raised to what the venue reported and grows by every
    # admission it is charged with; it must never pass the limit when an admission lands.
    counts: Counter[tuple[LimitKind, int, str | None, int]] = Counter()
    limits = parse_rate_limits(HYPOTHESIS_LIMITS)
    pending = sorted(observed, key=lambda o: o[0])
    for admission in [*sorted(admitted, key=lambda a: a.sequence), None]:
        # Apply the reports that came in before this admission was granted.
        while pending and (admission is None or pending[0][0] < admission.sequence):
            _, at, kind, size, account, value = pending.pop(0)
            key = (kind, size, account if kind is ORDERS else None, at // size)
            counts[key] = max(counts[key], value)
        if admission is None:
            break
        cost = admission.cost
        for limit in limits:
            amount = {WEIGHT: cost.weight, RAW: 1, ORDERS: cost.orders}[limit.kind]
            if amount == 0:
                continue
            account = admission.account if limit.kind is ORDERS else None
            size = limit.interval_ms
            low = (admission.admitted_ms - margin_ms) // size
            high = (admission.admitted_ms + margin_ms) // size
            for index in range(low, high + 1):
                key = (limit.kind, size, account, index)
                counts[key] += amount
                assert counts[key] <= limit.limit, (key, admission)
