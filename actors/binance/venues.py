"""Where each Binance client connects: one table of base URLs, and the client's overrides.

Binance serves every product from its own hosts, and every environment (LIVE, DEMO, TESTNET,
Binance US) from yet other hosts. The pairing has changed often (the USD-M testnet became the
demo environment; USD-M streams split into ``/public``, ``/market`` and ``/private`` routes on
2026-04-23; Spot user data moved to the WebSocket API on 2026-02-20), so it lives in one table,
:data:`VENUES`, and nowhere else. :func:`resolve` turns a :class:`~actors.config.ClientConfig`
into the :class:`Endpoints` the connectivity edge uses.

Surfaces:

* ``rest``: the REST origin; request paths (``/api/v3/...``, ``/fapi/v1/...``,
  ``/dapi/v1/...``) are appended to it.
* ``ws_market``: market stream bases, one per :class:`Route`. Clients append ``/ws/<stream>``
  or ``/stream?streams=a/b``. Only USD-M routes streams (``/public`` for book tickers and
  depth, ``/market`` for everything else); for Spot and COIN-M both routes name one base.
  ⚠ An unrouted USD-M URL accepts ``/ws/btcusdt@markPrice`` and then sends nothing.
* ``ws_api``: the full WebSocket API URL (``/ws-api/v3``, ``/ws-fapi/v1``, ``/ws-dapi/v1``).
* ``ws_user``: the futures user-data stream base (USD-M: the ``/private`` route, connected as
  ``/ws?listenKey=<key>``; COIN-M: the stream host, connected as ``/ws/<listenKey>``). Spot has
  none: its user data arrives on the WebSocket API (``userDataStream.subscribe``).
"""

from __future__ import annotations

import enum
from urllib.parse import urlsplit, urlunsplit

import attrs

from actors.config import AccountType, ClientConfig, Environment

__all__ = [
    "VENUES",
    "Endpoints",
    "MarketStreams",
    "Route",
    "Site",
    "VenueError",
    "VenueUrls",
    "available",
    "resolve",
]


class Route(enum.Enum):
    """A USD-M market stream route (Binance's URL split of 2026-04-23).

    ``PUBLIC`` carries ``<s>@bookTicker``, ``!bookTicker``, ``<s>@depth*`` and ``<s>@rpiDepth``;
    ``MARKET`` carries trades, mark price, klines, tickers, liquidations and the rest. Spot and
    COIN-M have no split: both routes lead to the same base.
    """

    PUBLIC = "public"
    MARKET = "market"


class Site(enum.Enum):
    """Where a client's accounts live: an :class:`~actors.config.Environment` of binance.com,
    or Binance US (``us = true``, LIVE only)."""

    LIVE = "LIVE"
    DEMO = "DEMO"
    TESTNET = "TESTNET"
    US = "US"

    @classmethod
    def of(cls, environment: Environment, us: bool) -> Site:
        """The site of a client; Binance US is its own site whatever the environment says
        (:func:`resolve` refuses Binance US outside LIVE)."""
        return cls.US if us else cls(environment.value)

    def describe(self) -> str:
        return "Binance US" if self is Site.US else self.value


@attrs.frozen
class VenueUrls:
    """One row of :data:`VENUES`: the default URLs of one product on one site.

    Attributes:
        rest: REST origin.
        ws_market: market stream host (USD-M: the root the routes hang from).
        ws_api: full WebSocket API URL.
        ws_user: futures user-data stream host (USD-M: the root of ``/private``); None for Spot.
        routed: streams are split into ``/public``, ``/market``, ``/private`` (USD-M).
    """

    rest: str
    ws_market: str
    ws_api: str
    ws_user: str | None = None
    routed: bool = False


SPOT = AccountType.SPOT
USDM = AccountType.USDT_FUTURES
COINM = AccountType.COIN_FUTURES

_USDM_DEMO = VenueUrls(
    rest="https://demo-fapi.binance.com",
    ws_market="wss://demo-fstream.binance.com",
    ws_api="wss://testnet.binancefuture.com/ws-fapi/v1",
    ws_user="wss://demo-fstream.binance.com",
    routed=True,
)

#: Every default URL tern knows, by (site, product). A combination that is absent is not
#: offered by Binance; :data:`_UNAVAILABLE` says why. Sources: binance-protocol.md section 1
#: and the seed document's Environments section.
VENUES: dict[tuple[Site, AccountType], VenueUrls] = {
    (Site.LIVE, SPOT): VenueUrls(
        rest="https://api.binance.com",
        ws_market="wss://stream.binance.com:9443",
        ws_api="wss://ws-api.binance.com:443/ws-api/v3",
    ),
    (Site.LIVE, USDM): VenueUrls(
        rest="https://fapi.binance.com",
        ws_market="wss://fstream.binance.com",
        ws_api="wss://ws-fapi.binance.com/ws-fapi/v1",
        ws_user="wss://fstream.binance.com",
        routed=True,
    ),
    (Site.LIVE, COINM): VenueUrls(
        rest="https://dapi.binance.com",
        ws_market="wss://dstream.binance.com",
        ws_api="wss://ws-dapi.binance.com/ws-dapi/v1",
        ws_user="wss://dstream.binance.com",
    ),
    # Spot "Demo Mode" (since 2026-01-29): simulated funds on production infrastructure.
    (Site.DEMO, SPOT): VenueUrls(
        rest="https://demo-api.binance.com",
        ws_market="wss://demo-stream.binance.com:9443",
        ws_api="wss://demo-ws-api.binance.com/ws-api/v3",
    ),
    # The futures docs now call demo-fapi "the testnet"; its WS-API is still on the old
    # testnet host. Streams: demo-fstream (Jan-2026 docs; fstream.binancefuture.com in older
    # docs), with the same /public /market /private routes as live.
    (Site.DEMO, USDM): _USDM_DEMO,
    (Site.TESTNET, SPOT): VenueUrls(
        rest="https://testnet.binance.vision",
        ws_market="wss://stream.testnet.binance.vision:9443",
        ws_api="wss://ws-api.testnet.binance.vision/ws-api/v3",
    ),
    # Binance merged the USD-M testnet into demo: the same hosts as DEMO, so the REST host that
    # issues a listen key and the stream host that honours it are one backend.
    (Site.TESTNET, USDM): _USDM_DEMO,
    (Site.TESTNET, COINM): VenueUrls(
        rest="https://testnet.binancefuture.com",
        ws_market="wss://dstream.binancefuture.com",
        ws_api="wss://testnet.binancefuture.com/ws-dapi/v1",
        ws_user="wss://dstream.binancefuture.com",
    ),
    # Binance US: Spot only, no documented testnet (WS-API host from third-party evidence).
    (Site.US, SPOT): VenueUrls(
        rest="https://api.binance.us",
        ws_market="wss://stream.binance.us:9443",
        ws_api="wss://ws-api.binance.us:443/ws-api/v3",
    ),
}

#: Why a (site, product) pair is missing from :data:`VENUES`.
_UNAVAILABLE: dict[tuple[Site, AccountType], str] = {
    (Site.DEMO, COINM): (
        "Binance's demo mode has no COIN-M futures (its demo keys cover Spot and USD-M)"
    ),
    (Site.US, USDM): "Binance US has Spot only",
    (Site.US, COINM): "Binance US has Spot only",
}

#: Notes attached to every client resolved to a (site, product) pair.
_NOTES: dict[tuple[Site, AccountType], str] = {
    (Site.TESTNET, USDM): (
        "the USD-M testnet is Binance's demo environment now (demo-fapi.binance.com): "
        'set environment = "DEMO" to say so'
    ),
}

_BINANCE_DOMAINS = ("binance.com", "binance.us", "binance.vision", "binancefuture.com")


class VenueError(ValueError):
    """A client asks for a product Binance does not offer where it points, or names an
    override URL tern cannot use. The message names the client and what is available."""

    def __init__(self, client: str, message: str) -> None:
        super().__init__(f"client {client!r}: {message}")
        self.client = client


@attrs.frozen
class MarketStreams:
    """Market stream bases by route. ``streams[Route.PUBLIC]`` and ``streams.public`` agree.

    Attributes:
        public: base for book tickers and depth (USD-M ``/public``).
        market: base for every other market stream (USD-M ``/market``).
        routed: True when the two differ by route (USD-M); Spot and COIN-M have one base.
    """

    public: str
    market: str
    routed: bool = False

    def __getitem__(self, route: Route) -> str:
        return self.public if route is Route.PUBLIC else self.market


@attrs.frozen
class Endpoints:
    """Where one client connects, with its overrides applied (DESIGN section 5).

    Attributes:
        client: the client's name.
        account_type: its product.
        environment: its environment.
        us: Binance US.
        rest: REST origin (no trailing slash); paths such as ``/api/v3/order`` follow it.
        ws_market: market stream bases by :class:`Route`.
        ws_api: WebSocket API URL.
        ws_user: futures user-data stream base, or None (Spot user data is on ``ws_api``).
        proxy_url: the proxy for REST requests and WebSocket connections, if configured
            (shown without its password).
        notices: things the operator should know (e.g. a surface still on Binance's default
            host while others were overridden); the connectivity edge reports them.
    """

    client: str
    account_type: AccountType
    environment: Environment
    us: bool
    rest: str
    ws_market: MarketStreams
    ws_api: str
    ws_user: str | None
    proxy_url: str | None = attrs.field(default=None, repr=lambda url: repr(_redact(url)))
    notices: tuple[str, ...] = ()


def available(account_type: AccountType) -> tuple[Site, ...]:
    """The sites that offer ``account_type``, in :class:`Site` order."""
    return tuple(site for site in Site if (site, account_type) in VENUES)


def resolve(client: ClientConfig) -> Endpoints:
    """The URLs ``client`` connects to.

    The table gives the defaults; the client's ``base_url_http`` (REST origin),
    ``base_url_ws`` (market streams), ``base_url_ws_api`` (WS-API URL) and
    ``base_url_ws_stream`` (futures user-data streams) replace them. Stream overrides may name
    the root or a ``/ws`` or ``/stream`` path; for USD-M they may also name any route
    (``.../market``): the routes are rebuilt from the root, so ``ws://127.0.0.1:8080/usdm``
    yields ``/usdm/public``, ``/usdm/market`` and ``/usdm/private``. Without
    ``base_url_ws_stream``, futures user data follows ``base_url_ws`` (Binance serves both from
    one host), so a local venue needs one stream override, not two.

    Raises:
        VenueError: Binance does not offer the product there (COIN-M on DEMO, futures or
            DEMO/TESTNET on Binance US), an override is not a usable URL, or
            ``base_url_ws_stream`` is set on a Spot client (Spot user data rides the WS-API).
    """
    site = Site.of(client.environment, client.us)
    if client.us and client.environment is not Environment.LIVE:
        raise VenueError(
            client.name,
            f"{client.account_type.value} on Binance US {client.environment.value} is not "
            "available: Binance US has no documented demo or testnet. "
            f"Binance US offers: {_offer(Site.US)}",
        )
    urls = VENUES.get((site, client.account_type))
    if urls is None:
        reason = _UNAVAILABLE.get((site, client.account_type), "Binance does not offer it")
        sites = ", ".join(s.describe() for s in available(client.account_type)) or "none"
        offers = f"Binance US offers: {_offer(Site.US)}" if client.us else ""
        raise VenueError(
            client.name,
            f"{client.account_type.value} on {site.describe()} is not available: {reason}. "
            f"Available for {client.account_type.value}: {sites}. {offers}".rstrip(),
        )
    if client.base_url_ws_stream is not None and urls.ws_user is None:
        raise VenueError(
            client.name,
            "base_url_ws_stream applies to futures user-data streams; Spot user data arrives "
            "on the WebSocket API, so set base_url_ws_api instead",
        )

    name = client.name
    rest = _checked(name, "base_url_http", client.base_url_http, ("http", "https"))
    ws_root = _checked(name, "base_url_ws", client.base_url_ws, ("ws", "wss"))
    ws_api = _checked(name, "base_url_ws_api", client.base_url_ws_api, ("ws", "wss"), query=True)
    user_root = _checked(name, "base_url_ws_stream", client.base_url_ws_stream, ("ws", "wss"))
    # SOCKS would need httpx[socks] (socksio), which tern does not install: an http(s) proxy.
    proxy = _checked(name, "proxy_url", client.proxy_url, ("http", "https"))

    market_root = _stream_root(ws_root, urls.routed) if ws_root else urls.ws_market
    if urls.ws_user is None:
        ws_user = None
    elif user_root is not None:
        ws_user = _user_base(_stream_root(user_root, urls.routed), urls.routed)
    elif ws_root is not None:
        ws_user = _user_base(market_root, urls.routed)
    else:
        ws_user = _user_base(urls.ws_user, urls.routed)
    if urls.routed:
        streams = MarketStreams(
            public=f"{market_root}/{Route.PUBLIC.value}",
            market=f"{market_root}/{Route.MARKET.value}",
            routed=True,
        )
    else:
        streams = MarketStreams(public=market_root, market=market_root)

    note = _NOTES.get((site, client.account_type))
    notices = ([note] if note else []) + _mixed_hosts(client, urls)
    return Endpoints(
        client=name,
        account_type=client.account_type,
        environment=client.environment,
        us=client.us,
        rest=rest or urls.rest,
        ws_market=streams,
        ws_api=ws_api or urls.ws_api,
        ws_user=ws_user,
        proxy_url=proxy,
        notices=tuple(notices),
    )


def _offer(site: Site) -> str:
    """What ``site`` offers, e.g. ``spot on LIVE`` for Binance US."""
    products = [account.value for (row_site, account) in VENUES if row_site is site]
    return ", ".join(products) + f" on {'LIVE' if site is Site.US else site.value}"


def _checked(
    client: str, option: str, url: str | None, schemes: tuple[str, ...], *, query: bool = False
) -> str | None:
    """``url`` without a trailing slash, or a :class:`VenueError` naming ``option``."""
    if url is None:
        return None
    expected = f"a {' or '.join(s + '://' for s in schemes)} URL"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise VenueError(client, f"{option} = {_redact(url)!r} is not {expected}") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise VenueError(client, f"{option} = {_redact(url)!r} is not {expected}")
    if parts.fragment or (parts.query and not query):
        raise VenueError(
            client, f"{option} = {_redact(url)!r}: expected {expected} without query or fragment"
        )
    return urlunsplit(parts._replace(path=parts.path.rstrip("/")))


def _stream_root(url: str, routed: bool) -> str:
    """The stream root of an override: without a ``/ws`` or ``/stream`` tail, and for routed
    products without a route either."""
    for tail in ("/ws", "/stream"):
        if url.endswith(tail):
            url = url[: -len(tail)]
            break
    if routed:
        for route in ("/public", "/market", "/private"):
            if url.endswith(route):
                return url[: -len(route)]
    return url


def _user_base(root: str, routed: bool) -> str:
    return f"{root}/private" if routed else root


def _mixed_hosts(client: ClientConfig, urls: VenueUrls) -> list[str]:
    """Notices for a client pointed at a non-Binance host on some surfaces but left on
    Binance's defaults on others (a listen key or order from one backend means nothing to
    the other)."""
    overrides = {
        "base_url_http": client.base_url_http,
        "base_url_ws": client.base_url_ws,
        "base_url_ws_api": client.base_url_ws_api,
    }
    if urls.ws_user is not None:
        overrides["base_url_ws_stream"] = client.base_url_ws_stream or client.base_url_ws
    foreign = [name for name, url in overrides.items() if url and not _is_binance(url)]
    if not foreign:
        return []
    defaults = {
        "base_url_http": urls.rest,
        "base_url_ws": urls.ws_market,
        "base_url_ws_api": urls.ws_api,
        "base_url_ws_stream": urls.ws_user,
    }
    left = [name for name, url in overrides.items() if not url]
    return [
        f"{', '.join(foreign)} point away from Binance but {name} is not set: that surface "
        f"still goes to {defaults[name]}"
        for name in left
    ]


def _is_binance(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == domain or host.endswith("." + domain) for domain in _BINANCE_DOMAINS)


def _redact(url: str | None) -> str | None:
    """``url`` with any password replaced by ``***``."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
    except ValueError:
        return "<unparseable URL>"
