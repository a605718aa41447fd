"""Binance's rate limits: the configured limits, the endpoint weights and the limiter.

Windows are fixed and aligned like Binance's (``binance-protocol.md`` 3.1): a window of
``intervalNum`` x interval starts at a multiple of its length since the Unix epoch, so a
1-minute window resets at :00, a 10-second one at multiples of 10 s and a 1-day one at 00:00
UTC. The limiter never reads a clock; every call takes ``now_ms``.

Pools: spot has its own; USD-M and COIN-M share one ("futures") since the CM-UM integration.
REQUEST_WEIGHT and RAW_REQUESTS count per client IP, ORDERS per account (per IP when the
caller names no account).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence

import attrs

from scenarios.venue.errors import VenueError

REQUEST_WEIGHT = "REQUEST_WEIGHT"
ORDERS = "ORDERS"
RAW_REQUESTS = "RAW_REQUESTS"
KINDS = (REQUEST_WEIGHT, ORDERS, RAW_REQUESTS)
INTERVAL_MS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}
INTERVAL_LETTER = {"SECOND": "S", "MINUTE": "M", "HOUR": "H", "DAY": "D"}

SPOT = "spot"
FUTURES = "futures"
POOL_OF_PRODUCT = {SPOT: SPOT, "usdm": FUTURES, "coinm": FUTURES, FUTURES: FUTURES}

FIRST_BAN_MS = 2 * 60_000
LONGEST_BAN_MS = 3 * 86_400_000
REJECTIONS_BEFORE_BAN = 5
DEFAULT_WEIGHT = 1
"""The weight of a path missing from the table (Binance's lightest endpoints weigh 1)."""


@attrs.frozen
class RateLimit:
    """One entry of ``exchangeInfo.rateLimits``.

    Attributes:
        kind: ``REQUEST_WEIGHT``, ``ORDERS`` or ``RAW_REQUESTS``.
        interval: ``SECOND``, ``MINUTE``, ``HOUR`` or ``DAY``.
        interval_num: how many intervals the window spans.
        limit: the most the window admits.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    interval: str = attrs.field(validator=attrs.validators.in_(tuple(INTERVAL_MS)))
    interval_num: int = attrs.field(
        validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)]
    )
    limit: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])

    @property
    def window_ms(self) -> int:
        """The window length in milliseconds."""
        return self.interval_num * INTERVAL_MS[self.interval]

    @property
    def suffix(self) -> str:
        """The header suffix, e.g. ``1M`` in ``X-MBX-USED-WEIGHT-1M``."""
        return f"{self.interval_num}{INTERVAL_LETTER[self.interval]}"

    @property
    def per(self) -> str:
        """The window as Binance prints it in messages, e.g. ``1 MINUTE``."""
        return f"{self.interval_num} {self.interval}"

    def window_start(self, now_ms: int) -> int:
        """The start of the window holding ``now_ms``."""
        return now_ms - now_ms % self.window_ms

    def window_end(self, now_ms: int) -> int:
        """When the window holding ``now_ms`` resets."""
        return self.window_start(now_ms) + self.window_ms

    def to_json(self) -> dict[str, object]:
        """Exactly Binance's ``{"rateLimitType", "interval", "intervalNum", "limit"}``."""
        return {
            "rateLimitType": self.kind,
            "interval": self.interval,
            "intervalNum": self.interval_num,
            "limit": self.limit,
        }


SPOT_LIMITS = (
    RateLimit(REQUEST_WEIGHT, "MINUTE", 1, 6000),
    RateLimit(ORDERS, "SECOND", 10, 50),
    RateLimit(ORDERS, "DAY", 1, 160_000),
    RateLimit(RAW_REQUESTS, "MINUTE", 5, 300_000),
)
FUTURES_LIMITS = (
    RateLimit(REQUEST_WEIGHT, "MINUTE", 1, 2400),
    RateLimit(ORDERS, "MINUTE", 1, 1200),
    RateLimit(ORDERS, "SECOND", 10, 300),
)
DEFAULT_POOLS: Mapping[str, Sequence[RateLimit]] = {SPOT: SPOT_LIMITS, FUTURES: FUTURES_LIMITS}
FUNDING_BUCKET = "funding"
DEFAULT_BUCKETS: Mapping[str, RateLimit] = {
    # [UM] fundingRate and fundingInfo share 500 requests / 5 min / IP instead of weight.
    FUNDING_BUCKET: RateLimit(RAW_REQUESTS, "MINUTE", 5, 500),
}


def pool_of(product: str) -> str:
    """The pool a product's traffic counts against ("spot" or "futures")."""
    try:
        return POOL_OF_PRODUCT[product]
    except KeyError:
        raise ValueError(f"unknown product {product!r}") from None


def _ceil_division(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class RateLimiter:
    """Counts weight, raw requests and orders per window and rejects like Binance.

    A request over an IP limit gets HTTP 429 ``-1003`` with ``Retry-After`` (seconds until
    the window resets). Its weight is still counted, as Binance counts every request it
    receives, so the used-weight header keeps growing while a client hammers. A client that
    gets more than ``rejections_before_ban`` 429s within one window is banned: that request
    and every one until the ban ends get HTTP 418 ``-1003`` "IP banned until <ms>", and
    banned requests are not counted. Bans escalate per IP and pool, doubling from
    ``first_ban_ms`` (2 minutes) to at most ``longest_ban_ms`` (3 days); a spot ban does not
    ban futures. A request over an ORDERS limit gets HTTP 429 ``-1015``; its orders are not
    counted (its weight is).

    Args:
        pools: the limits of each pool, as served in ``exchangeInfo.rateLimits``.
        buckets: side limits some endpoints count against instead of weight.
        rejections_before_ban: how many 429s a client may get in one window.
        first_ban_ms: the first ban's length; each later ban doubles it.
        longest_ban_ms: the cap on a ban's length.
    """

    def __init__(
        self,
        pools: Mapping[str, Sequence[RateLimit]] = DEFAULT_POOLS,
        *,
        buckets: Mapping[str, RateLimit] = DEFAULT_BUCKETS,
        rejections_before_ban: int = REJECTIONS_BEFORE_BAN,
        first_ban_ms: int = FIRST_BAN_MS,
        longest_ban_ms: int = LONGEST_BAN_MS,
    ) -> None:
        self._pools = {name: tuple(limits) for name, limits in pools.items()}
        self._buckets = dict(buckets)
        self.rejections_before_ban = rejections_before_ban
        self.first_ban_ms = first_ban_ms
        self.longest_ban_ms = longest_ban_ms
        # (pool, scope, tag, limit) -> (window start, count)
        self._counts: dict[tuple[str, str, str, RateLimit], tuple[int, int]] = {}
        self._bans: dict[tuple[str, str], int] = {}
        self._offences: dict[tuple[str, str], int] = {}
        self._rejections: dict[tuple[str, str], tuple[int, int]] = {}
        self._forced_429: dict[str, int] = {}

    # --- configuration ----------------------------------------------------------------

    def pool(self, name: str) -> str:
        """The pool called ``name``, or the pool of the product called ``name``.

        Raises:
            ValueError: neither a pool nor a product.
        """
        if name in self._pools:
            return name
        pool = pool_of(name)
        if pool not in self._pools:
            raise ValueError(f"no rate limits configured for pool {pool!r}")
        return pool

    def limits(self, pool: str) -> tuple[RateLimit, ...]:
        """The limits of a pool (or product), in ``exchangeInfo`` order."""
        return self._pools[self.pool(pool)]

    # --- counting ---------------------------------------------------------------------

    def _current(self, key: tuple[str, str, str, RateLimit], now_ms: int) -> int:
        start, count = self._counts.get(key, (None, 0))
        return count if start == key[3].window_start(now_ms) else 0

    def _add(self, key: tuple[str, str, str, RateLimit], amount: int, now_ms: int) -> int:
        total = self._current(key, now_ms) + amount
        self._counts[key] = (key[3].window_start(now_ms), total)
        return total

    @staticmethod
    def _scope(limit: RateLimit, ip: str, account: str | None) -> str:
        if limit.kind == ORDERS and account is not None:
            return f"account:{account}"
        return f"ip:{ip}"

    def usage(
        self, pool: str, ip: str, now_ms: int, *, account: str | None = None
    ) -> dict[RateLimit, int]:
        """The count of every limit of the pool in the current windows."""
        pool = self.pool(pool)
        return {
            limit: self._current((pool, self._scope(limit, ip, account), "", limit), now_ms)
            for limit in self._pools[pool]
        }

    def report(
        self, pool: str, ip: str, now_ms: int, *, account: str | None = None
    ) -> list[dict[str, object]]:
        """Binance's ``rateLimits`` array with counts (WS-API replies, ``rateLimit/order``)."""
        return [
            {**limit.to_json(), "count": count}
            for limit, count in self.usage(pool, ip, now_ms, account=account).items()
        ]

    def _weight_headers(self, pool: str, ip: str, now_ms: int) -> dict[str, str]:
        scope = f"ip:{ip}"
        return {
            f"X-MBX-USED-WEIGHT-{limit.suffix}": str(
                self._current((pool, scope, "", limit), now_ms)
            )
            for limit in self._pools[pool]
            if limit.kind == REQUEST_WEIGHT
        }

    def _order_amounts(self, pool: str, orders: int | Mapping[str, int]) -> dict[RateLimit, int]:
        order_limits = [limit for limit in self._pools[pool] if limit.kind == ORDERS]
        if isinstance(orders, int):
            return {limit: orders for limit in order_limits}
        by_suffix = {limit.suffix: limit for limit in order_limits}
        unknown = set(orders) - set(by_suffix)
        if unknown:
            raise ValueError(f"pool {pool!r} has no ORDERS window {sorted(unknown)}")
        return {by_suffix[suffix]: amount for suffix, amount in orders.items()}

    # --- bans ---------------------------------------------------------------------------

    def banned_until(self, pool: str, ip: str, now_ms: int) -> int | None:
        """When the IP's ban on the pool ends, or None when it is not banned."""
        until = self._bans.get((self.pool(pool), ip))
        return until if until is not None and until > now_ms else None

    def _ban(self, pool: str, ip: str, now_ms: int) -> int:
        offences = self._offences.get((pool, ip), 0) + 1
        self._offences[(pool, ip)] = offences
        length = min(self.first_ban_ms * 2 ** min(offences - 1, 32), self.longest_ban_ms)
        self._bans[(pool, ip)] = now_ms + length
        self._rejections.pop((pool, ip), None)
        return now_ms + length

    def _note_rejection(self, pool: str, ip: str, window_end: int) -> bool:
        """Count one 429; True when it is one too many and the IP must be banned."""
        end, count = self._rejections.get((pool, ip), (None, 0))
        count = count + 1 if end == window_end else 1
        self._rejections[(pool, ip)] = (window_end, count)
        return count > self.rejections_before_ban

    # --- fault injection ------------------------------------------------------------------

    def force_ban(self, ip: str, until_ms: int, *, pool: str | None = None) -> None:
        """Ban ``ip`` until ``until_ms`` on one pool, or on every pool when ``pool`` is None."""
        pools = [self.pool(pool)] if pool is not None else list(self._pools)
        for name in pools:
            self._bans[(name, ip)] = until_ms

    def force_429(self, pool: str, count: int) -> None:
        """Answer the next ``count`` requests to the pool (any IP) with 429 ``-1003``.

        Forced rejections are not counted as weight and do not lead to bans.
        """
        self._forced_429[self.pool(pool)] = max(0, count)

    # --- the charge -----------------------------------------------------------------------

    def charge(
        self,
        pool: str,
        ip: str,
        weight: int,
        orders: int | Mapping[str, int],
        now_ms: int,
        *,
        account: str | None = None,
        bucket: str | None = None,
        requests: int = 1,
    ) -> dict[str, str]:
        """Count one request and return the rate-limit headers to send with its reply.

        Args:
            pool: a pool ("spot", "futures") or a product ("spot", "usdm", "coinm").
            ip: the client's address.
            weight: the request weight (see :func:`weight_for`).
            orders: new orders it places: a count for every ORDERS window, or counts by
                window suffix such as ``{"10S": 5, "1M": 1}`` (see :func:`endpoint_cost`).
            now_ms: the venue time.
            account: the account ORDERS count against (default: the IP).
            bucket: a side bucket the request counts against (see :data:`DEFAULT_BUCKETS`).
            requests: how many raw requests it is (0 to add weight after the fact).

        Returns:
            ``X-MBX-USED-WEIGHT-<n><letter>`` for every REQUEST_WEIGHT limit, plus
            ``X-MBX-ORDER-COUNT-<n><letter>`` for every ORDERS limit when it places orders.

        Raises:
            VenueError: 418 ``-1003`` while banned (or when this request earns a ban), 429
                ``-1003`` over an IP limit, 429 ``-1015`` over an ORDERS limit.
        """
        pool = self.pool(pool)
        product = FUTURES if pool == FUTURES else SPOT
        banned_until = self.banned_until(pool, ip, now_ms)
        if banned_until is not None:
            raise VenueError.ip_banned(banned_until, product=product, server_time_ms=now_ms)
        if self._forced_429.get(pool, 0) > 0:
            self._forced_429[pool] -= 1
            raise self._forced_rejection(pool, ip, now_ms, product)

        violated: list[tuple[RateLimit, bool]] = []  # (limit, counts weight)
        for limit in self._pools[pool]:
            if limit.kind == ORDERS:
                continue
            counts_weight = limit.kind == REQUEST_WEIGHT
            amount = weight if counts_weight else requests
            if amount and self._add((pool, f"ip:{ip}", "", limit), amount, now_ms) > limit.limit:
                violated.append((limit, counts_weight))
        if bucket is not None:
            limit = self._buckets[bucket]
            if self._add((pool, f"ip:{ip}", bucket, limit), requests, now_ms) > limit.limit:
                violated.append((limit, False))
        headers = self._weight_headers(pool, ip, now_ms)
        if violated:
            retry_at = max(limit.window_end(now_ms) for limit, _ in violated)
            if self._note_rejection(pool, ip, retry_at):
                until = self._ban(pool, ip, now_ms)
                raise VenueError.ip_banned(until, product=product, server_time_ms=now_ms)
            first, counts_weight = violated[0]
            raise VenueError.too_many_requests(
                first.limit,
                first.per,
                product=product,
                server_time_ms=now_ms,
                retry_at_ms=retry_at,
                weight=counts_weight,
                headers=headers,
            )

        amounts = self._order_amounts(pool, orders)
        keys = {limit: (pool, self._scope(limit, ip, account), "", limit) for limit in amounts}
        for limit, amount in amounts.items():
            if amount and self._current(keys[limit], now_ms) + amount > limit.limit:
                raise VenueError.too_many_orders(
                    limit.limit,
                    limit.per,
                    server_time_ms=now_ms,
                    retry_at_ms=limit.window_end(now_ms),
                    headers=headers,
                )
        if any(amounts.values()):
            for limit, amount in amounts.items():
                self._add(keys[limit], amount, now_ms)
            for limit, count in self.usage(pool, ip, now_ms, account=account).items():
                if limit.kind == ORDERS:
                    headers[f"X-MBX-ORDER-COUNT-{limit.suffix}"] = str(count)
        return headers

    def _forced_rejection(self, pool: str, ip: str, now_ms: int, product: str) -> VenueError:
        weights = [limit for limit in self._pools[pool] if limit.kind == REQUEST_WEIGHT]
        if weights:
            limit, retry_at = weights[0].limit, weights[0].window_end(now_ms)
            per = weights[0].per
        else:
            limit, retry_at, per = 0, now_ms + 1000, "1 SECOND"
        return VenueError.too_many_requests(
            limit,
            per,
            product=product,
            server_time_ms=now_ms,
            retry_at_ms=retry_at,
            headers=self._weight_headers(pool, ip, now_ms),
        )


# --- endpoint weights -------------------------------------------------------------------

Params = Mapping[str, str]


@attrs.frozen
class EndpointCost:
    """What one request to an endpoint costs.

    Attributes:
        weight: the IP weight Binance documents (for spot order endpoints, the weight of a
            failed request; see ``free_on_success``).
        orders: new orders counted, by ORDERS window suffix (e.g. ``{"10S": 1, "1D": 1}``).
        free_on_success: spot since 2026-04-02: a successful call costs 0 weight, so the
            HTTP layer may charge ``weight`` only when the call fails.
        bucket: a side bucket the request counts against instead of weight.
    """

    weight: int
    orders: Mapping[str, int] = attrs.field(factory=dict)
    free_on_success: bool = False
    bucket: str | None = None


@attrs.frozen
class _Rule:
    weight: int | Callable[[Params], int]
    orders: Mapping[str, int] = attrs.field(factory=dict)
    free_on_success: bool = False
    bucket: str | None = None

    def cost(self, params: Params) -> EndpointCost:
        weight = self.weight if isinstance(self.weight, int) else self.weight(params)
        return EndpointCost(weight, dict(self.orders), self.free_on_success, self.bucket)


def _limit(params: Params, default: int) -> int:
    value = params.get("limit", "")
    return int(value) if value.isdigit() else default


def _by_symbol(with_symbol: int, without: int) -> Callable[[Params], int]:
    def weight(params: Params) -> int:
        return with_symbol if params.get("symbol") else without

    return weight


def _spot_depth(params: Params) -> int:
    limit = _limit(params, 100)
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    return 50 if limit <= 1000 else 250


def _futures_depth(params: Params) -> int:
    limit = _limit(params, 500)
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    return 10 if limit <= 500 else 20


def _futures_klines(params: Params) -> int:
    limit = _limit(params, 500)
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    return 5 if limit <= 1000 else 10


def _symbols_count(params: Params) -> int | None:
    raw = params.get("symbols")
    if not raw:
        return None
    try:
        symbols = json.loads(raw)
    except ValueError:
        return raw.count(",") + 1
    return len(symbols) if isinstance(symbols, list) else 1


def _spot_ticker_24hr(params: Params) -> int:
    if params.get("symbol"):
        return 2
    count = _symbols_count(params)
    if count is None:
        return 80
    if count <= 20:
        return 2
    return 40 if count <= 100 else 80


def _spot_ticker_price(params: Params) -> int:
    return 2 if params.get("symbol") else 4


def _spot_order_test(params: Params) -> int:
    return 20 if params.get("computeCommissionRates") == "true" else 1


def _spot_my_trades(params: Params) -> int:
    return 5 if params.get("orderId") else 20


def _spot_order(count: int) -> _Rule:
    return _Rule(1, {"10S": count, "1D": count}, free_on_success=True)


_SPOT_RULES: dict[tuple[str, str], _Rule] = {
    ("GET", "/ping"): _Rule(1),
    ("GET", "/time"): _Rule(1),
    ("GET", "/exchangeInfo"): _Rule(20),
    ("GET", "/depth"): _Rule(_spot_depth),
    ("GET", "/trades"): _Rule(25),
    ("GET", "/historicalTrades"): _Rule(25),
    ("GET", "/aggTrades"): _Rule(4),
    ("GET", "/klines"): _Rule(2),
    ("GET", "/uiKlines"): _Rule(2),
    ("GET", "/avgPrice"): _Rule(2),
    ("GET", "/ticker/24hr"): _Rule(_spot_ticker_24hr),
    ("GET", "/ticker/price"): _Rule(_spot_ticker_price),
    ("GET", "/ticker/bookTicker"): _Rule(_spot_ticker_price),
    ("POST", "/order"): _spot_order(1),
    ("POST", "/order/test"): _Rule(_spot_order_test),
    ("DELETE", "/order"): _Rule(1, free_on_success=True),
    ("DELETE", "/openOrders"): _Rule(1, free_on_success=True),
    ("POST", "/order/cancelReplace"): _spot_order(1),
    ("PUT", "/order/amend/keepPriority"): _Rule(4),
    ("POST", "/orderList/oco"): _spot_order(2),
    ("POST", "/orderList/oto"): _spot_order(2),
    ("POST", "/orderList/otoco"): _spot_order(3),
    ("DELETE", "/orderList"): _Rule(1, free_on_success=True),
    ("GET", "/order"): _Rule(4),
    ("GET", "/orderList"): _Rule(4),
    ("GET", "/openOrders"): _Rule(_by_symbol(6, 80)),
    ("GET", "/allOrders"): _Rule(20),
    ("GET", "/myTrades"): _Rule(_spot_my_trades),
    ("GET", "/account"): _Rule(20),
    ("GET", "/account/commission"): _Rule(20),
    ("GET", "/rateLimit/order"): _Rule(40),
    ("POST", "/userDataStream"): _Rule(2),
    ("PUT", "/userDataStream"): _Rule(2),
    ("DELETE", "/userDataStream"): _Rule(2),
}

_FUTURES_NEW_ORDER = _Rule(0, {"10S": 1, "1M": 1})
_FUTURES_RULES: dict[tuple[str, str], _Rule] = {
    ("GET", "/ping"): _Rule(1),
    ("GET", "/time"): _Rule(1),
    ("GET", "/exchangeInfo"): _Rule(1),
    ("GET", "/depth"): _Rule(_futures_depth),
    ("GET", "/trades"): _Rule(5),
    # 20 in the Nov-2025 docs, 200 in the 2026 SDK (binance-protocol.md section 11, item 9).
    ("GET", "/historicalTrades"): _Rule(20),
    ("GET", "/aggTrades"): _Rule(20),
    ("GET", "/klines"): _Rule(_futures_klines),
    ("GET", "/continuousKlines"): _Rule(_futures_klines),
    ("GET", "/indexPriceKlines"): _Rule(_futures_klines),
    ("GET", "/markPriceKlines"): _Rule(_futures_klines),
    ("GET", "/premiumIndexKlines"): _Rule(_futures_klines),
    ("GET", "/premiumIndex"): _Rule(_by_symbol(1, 10)),
    ("GET", "/fundingRate"): _Rule(0, bucket=FUNDING_BUCKET),
    ("GET", "/fundingInfo"): _Rule(0, bucket=FUNDING_BUCKET),
    ("GET", "/openInterest"): _Rule(1),
    ("GET", "/ticker/24hr"): _Rule(_by_symbol(1, 40)),
    ("GET", "/ticker/bookTicker"): _Rule(_by_symbol(2, 5)),
    ("GET", "/ticker/price"): _Rule(_by_symbol(1, 2)),
    ("POST", "/order"): _FUTURES_NEW_ORDER,
    ("PUT", "/order"): _FUTURES_NEW_ORDER,
    ("POST", "/algoOrder"): _FUTURES_NEW_ORDER,
    ("POST", "/batchOrders"): _Rule(5, {"10S": 5, "1M": 1}),
    ("PUT", "/batchOrders"): _Rule(5, {"10S": 5, "1M": 1}),
    ("DELETE", "/order"): _Rule(1),
    ("DELETE", "/batchOrders"): _Rule(1),
    ("DELETE", "/allOpenOrders"): _Rule(1),
    ("DELETE", "/algoOrder"): _Rule(1),
    ("DELETE", "/algoOpenOrders"): _Rule(1),
    ("GET", "/order"): _Rule(1),
    ("GET", "/openOrder"): _Rule(1),
    ("GET", "/algoOrder"): _Rule(1),
    ("GET", "/openOrders"): _Rule(_by_symbol(1, 40)),
    ("GET", "/openAlgoOrders"): _Rule(_by_symbol(1, 40)),
    ("GET", "/allOrders"): _Rule(5),
    ("GET", "/userTrades"): _Rule(5),
    ("GET", "/allAlgoOrders"): _Rule(5),
    ("GET", "/forceOrders"): _Rule(_by_symbol(20, 50)),
    ("GET", "/account"): _Rule(5),
    ("GET", "/balance"): _Rule(5),
    ("GET", "/positionRisk"): _Rule(5),
    ("GET", "/adlQuantile"): _Rule(5),
    ("GET", "/commissionRate"): _Rule(20),
    ("POST", "/leverage"): _Rule(1),
    ("POST", "/marginType"): _Rule(1),
    ("POST", "/positionSide/dual"): _Rule(1),
    ("POST", "/multiAssetsMargin"): _Rule(1),
    ("POST", "/positionMargin"): _Rule(1),
    ("GET", "/positionSide/dual"): _Rule(30),
    ("GET", "/multiAssetsMargin"): _Rule(30),
    ("POST", "/listenKey"): _Rule(1),
    ("PUT", "/listenKey"): _Rule(1),
    ("DELETE", "/listenKey"): _Rule(1),
    ("POST", "/countdownCancelAll"): _Rule(10),
    ("GET", "/income"): _Rule(30),
    ("GET", "/leverageBracket"): _Rule(1),
    ("GET", "/rateLimit/order"): _Rule(1),
}
_COINM_OVERRIDES: dict[tuple[str, str], _Rule] = {
    ("POST", "/order"): _Rule(0, {"1M": 1}),
    ("PUT", "/order"): _Rule(1, {"10S": 1, "1M": 1}),
    ("GET", "/premiumIndex"): _Rule(10),
    ("GET", "/balance"): _Rule(1),
    ("GET", "/positionRisk"): _Rule(1),
    ("GET", "/income"): _Rule(20),
}
_PREFIXES = {
    SPOT: ("/api/v3",),
    "usdm": ("/fapi/v1", "/fapi/v2", "/fapi/v3"),
    "coinm": ("/dapi/v1", "/dapi/v2"),
}


def _route(product: str, path: str) -> str | None:
    for prefix in _PREFIXES[product]:
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return None


def endpoint_cost(product: str, method: str, path: str, params: Params) -> EndpointCost:
    """The cost of one request, from the weight tables in ``binance-protocol.md`` section 3.

    Args:
        product: "spot", "usdm" or "coinm".
        method: the HTTP method.
        path: the full path, e.g. ``/api/v3/depth`` or ``/dapi/v1/depth``.
        params: the request parameters (``limit``, ``symbol``, ``symbols``... matter).

    Returns:
        The documented cost; a path not in the table (or not under the product's prefix)
        costs :data:`DEFAULT_WEIGHT` and places no orders.
    """
    if product not in _PREFIXES:
        raise ValueError(f"unknown product {product!r}")
    route = _route(product, path)
    key = (method.upper(), route or "")
    if product == SPOT:
        rule = _SPOT_RULES.get(key)
    elif product == "coinm":
        rule = _COINM_OVERRIDES.get(key) or _FUTURES_RULES.get(key)
    else:
        rule = _FUTURES_RULES.get(key)
    if route is None or rule is None:
        return EndpointCost(DEFAULT_WEIGHT)
    return rule.cost(params)


def weight_for(product: str, method: str, path: str, params: Params) -> int:
    """The request weight of one request (see :func:`endpoint_cost`)."""
    return endpoint_cost(product, method, path, params).weight
