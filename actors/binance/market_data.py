"""Binance market data: the stream names to subscribe, and pure parsers from Binance's payloads
to tern's market events (:mod:`events.market`).

Nothing here does I/O or keeps state: every function is deterministic, so a journaled frame
parses to the same events on replay.

**Stream names** (:func:`stream_name`, binance-protocol.md section 7). Symbols are lowercase
in stream names. What each product offers is one row of :data:`STREAM_RULES`:

================  ==============================  ==============================================
kind              Spot                            USD-M / COIN-M
================  ==============================  ==============================================
TRADES            ``<s>@trade`` (``@aggTrade``    ``<s>@aggTrade`` (there is no public
                  when asked for)                 ``@trade`` stream on futures)
QUOTES            ``<s>@bookTicker``              ``<s>@bookTicker``
BARS              ``<s>@kline_<i>``, ``1s`` to    ``<s>@kline_<i>``, ``1m`` to ``1M`` (no
                  ``1M``                          ``1s``)
TICKER            ``<s>@ticker``                  ``<s>@ticker``
MARK_PRICE,       none                            the one shared ``<s>@markPrice@1s`` (one
INDEX_PRICE,                                      ``markPriceUpdate`` carries all three)
FUNDING_RATE
BOOK, depth 0     ``<s>@depth@100ms`` (default),  ``<s>@depth@100ms`` (default, the fastest),
                  ``<s>@depth`` (1000 ms)         ``<s>@depth`` (250 ms), ``<s>@depth@500ms``
BOOK, depth N     ``<s>@depth<N>[@100ms]``        ``<s>@depth<N>[@500ms|@100ms]``
================  ==============================  ==============================================

``speed_ms`` None takes the default and 0 asks for Binance's fastest documented speed, which
is 100 ms on every product today. Binance's futures ``@0ms`` (unthrottled diffs) was a 2020
feature that is no longer documented (section 7.3), so tern never asks for it, even though
the local venue still serves it. Any other speed must be one the product offers; a combination
that cannot be served raises :class:`StreamNameError` saying what is wrong.

**Parsers.** Each parser reads one payload (the ``data`` of a combined-stream frame, see
:func:`parse_frame`, or a REST body) and returns events. Prices and sizes are the exact values
of Binance's strings, never floats; a number must be a JSON string that reads as a finite
decimal (no surrounding spaces). Unknown fields are ignored: Binance adds fields (``st``,
``ps``, ``nq``, ``ap``...) without notice. Anything else, a missing field, a wrong JSON type, a
non-numeric price, an event of another type, non-JSON text, raises :class:`MarketDataError`
naming the payload kind, the field and the value; no ``KeyError`` or ``TypeError`` escapes.

The differences the parsers absorb (section 7.3 and the recorded fixtures):

* Spot ``bookTicker`` has no ``e`` and no ``E``: :attr:`QuoteTick.ts_event_ms` is then None
  (futures, and some Spot frames, carry ``E``, which is used when present).
* Spot ``24hrTicker`` adds the best bid and ask (``b``, ``B``, ``a``, ``A``); futures do not.
* Spot partial depth (``@depth<N>``) is ``{"lastUpdateId", "bids", "asks"}``; futures send a
  ``depthUpdate``-shaped object (``b``/``a``, ``u``, ``E``) that is still a top-N snapshot.
* A delivery contract's ``markPriceUpdate`` has ``"r": ""`` and ``"T": 0`` (no funding): the
  funding rate is then None.

Times: a trade's ``ts_event_ms`` is its trade time ``T``; every other event uses the event
time ``E`` (REST: ``time``).

**Full depth is not read here.** The diff-depth events of ``<s>@depth[@100ms]`` and the REST
depth snapshots (``GET .../depth``) feed the local book, and only
:mod:`actors.binance.book` reads them (:func:`~actors.binance.book.parse_depth_frame`,
:func:`~actors.binance.book.parse_depth_snapshot`): it checks their shape when parsing and each
level's numbers once, when the book applies it, so a mistake cannot hide in a second reader.
Partial depth (:func:`parse_partial_depth`) is read here: each frame is a whole top-N
:class:`BookSnapshot`.

**Instruments.** A payload names its symbol (``s``), but an instrument id also depends on the
contract type (``BTCUSDT`` is ``BTCUSDT-PERP.BINANCE`` on USD-M), which only ``exchangeInfo``
knows. Parsers of payloads that carry ``s`` therefore take either the instrument id itself
(the caller knows it from the stream it subscribed; ``s`` is then not read) or an
:data:`InstrumentLookup`: a mapping or a callable from symbol to instrument id. A symbol the
lookup does not know (a missing key, ``KeyError`` or None) is a :class:`MarketDataError`.
Payloads without ``s`` (REST klines, trades, Spot partial depth) take the instrument id.

**Speed.** The stream parsers sit on the firehose. Each does one dict lookup, one type test
and (for numbers) one conversion per field through small helpers; a decimal is read with a
non-trapping context (``create_decimal`` turns junk into NaN instead of raising), so one
``is_finite()`` test rejects junk, NaN and infinities at once. Failures are raised as one
private exception and turned into :class:`MarketDataError` by a single handler per parser.
Partial-depth levels are read as exact decimals, each in Binance's notation
(:func:`level_number`: digits and at most one point).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any, TypeAlias

import attrs
import orjson

from actors.config import AccountType
from events.market import (
    Bar,
    BookSnapshot,
    DataKind,
    FundingRate,
    IndexPrice,
    MarkPrice,
    QuoteTick,
    Ticker,
    TradeTick,
)

__all__ = [
    "FUTURES_INTERVALS",
    "MARK_PRICE_STREAM",
    "PARTIAL_DEPTHS",
    "SPOT_INTERVALS",
    "STREAM_RULES",
    "InstrumentLookup",
    "InstrumentRef",
    "MarketDataError",
    "StreamNameError",
    "StreamRules",
    "level_number",
    "parse_agg_trade",
    "parse_book_ticker",
    "parse_frame",
    "parse_funding_rates",
    "parse_kline",
    "parse_mark_price",
    "parse_partial_depth",
    "parse_premium_index",
    "parse_rest_agg_trades",
    "parse_rest_klines",
    "parse_rest_trades",
    "parse_ticker",
    "parse_trade",
    "stream_name",
]

# --------------------------------------------------------------------------- stream names

#: Spot kline intervals (``GET /api/v3/klines`` and ``<s>@kline_<i>``), shortest first.
SPOT_INTERVALS = (
    *("1s", "1m", "3m", "5m", "15m", "30m"),
    *("1h", "2h", "4h", "6h", "8h", "12h"),
    *("1d", "3d", "1w", "1M"),
)
#: Futures kline intervals: Spot's without ``1s``.
FUTURES_INTERVALS = SPOT_INTERVALS[1:]
#: The partial-depth stream sizes (``<s>@depth<N>``).
PARTIAL_DEPTHS = (5, 10, 20)
#: The stream suffix that carries mark price, index price and funding rate on futures.
MARK_PRICE_STREAM = "@markPrice@1s"


class StreamNameError(ValueError):
    """A subscription no Binance stream can serve: a kind the product does not have, an
    interval, depth or speed it does not offer, a parameter the kind does not take, or a
    symbol that cannot go into a stream name."""


@attrs.frozen(kw_only=True)
class StreamRules:
    """What one product's market streams offer (one row of :data:`STREAM_RULES`).

    Attributes:
        intervals: kline intervals of ``<s>@kline_<i>``.
        depth_speeds: depth stream speed in ms -> stream suffix (``""``: the bare stream).
        default_depth_ms: the speed used when none is asked for.
        fastest_depth_ms: the speed ``speed_ms=0`` stands for.
        trade_stream: ``trade`` where Binance publishes every trade, else ``aggTrade``.
        mark_price: whether ``<s>@markPrice@1s`` exists (futures only).
    """

    intervals: tuple[str, ...]
    depth_speeds: Mapping[int, str]
    default_depth_ms: int
    fastest_depth_ms: int
    trade_stream: str
    mark_price: bool


_FUTURES_RULES = StreamRules(
    intervals=FUTURES_INTERVALS,
    depth_speeds={250: "", 500: "@500ms", 100: "@100ms"},
    default_depth_ms=100,
    fastest_depth_ms=100,
    trade_stream="aggTrade",
    mark_price=True,
)

#: The market streams of each product (binance-protocol.md sections 7.2 and 7.3).
STREAM_RULES: Mapping[AccountType, StreamRules] = {
    AccountType.SPOT: StreamRules(
        intervals=SPOT_INTERVALS,
        depth_speeds={1000: "", 100: "@100ms"},
        default_depth_ms=100,
        fastest_depth_ms=100,
        trade_stream="trade",
        mark_price=False,
    ),
    AccountType.USDT_FUTURES: _FUTURES_RULES,
    AccountType.COIN_FUTURES: _FUTURES_RULES,
}

_STREAM_SYMBOL = re.compile(r"[^\s@/!]+")
_PRODUCT_NAMES = {
    AccountType.SPOT: "Spot",
    AccountType.USDT_FUTURES: "USD-M",
    AccountType.COIN_FUTURES: "COIN-M",
}


def stream_name(
    kind: DataKind,
    symbol: str,
    product: AccountType,
    *,
    interval: str | None = None,
    depth: int = 0,
    speed_ms: int | None = None,
    use_agg_trades: bool = False,
) -> str:
    """The market stream that serves ``kind`` for ``symbol`` on ``product`` (module table).

    ``interval`` is for BARS only, ``depth`` (0: the diff stream of the full book; 5, 10, 20:
    partial-depth snapshots) and ``speed_ms`` for BOOK only. ``use_agg_trades`` picks
    ``@aggTrade`` over ``@trade`` for TRADES on Spot; futures always use ``@aggTrade``, and
    other kinds ignore it. MARK_PRICE, INDEX_PRICE and FUNDING_RATE all name the same stream:
    subscribe it once and take the three events :func:`parse_mark_price` returns.

    Raises:
        StreamNameError: the combination cannot be served (the message says why).
    """
    rules = STREAM_RULES[product]
    where = _PRODUCT_NAMES[product]
    if type(symbol) is not str or _STREAM_SYMBOL.fullmatch(symbol) is None:
        raise StreamNameError(f"{symbol!r} cannot be a symbol in a stream name")
    name = symbol.lower()
    if interval is not None and kind is not DataKind.BARS:
        raise StreamNameError(f"{kind.value} takes no interval (got {interval!r}); BARS do")
    if kind is not DataKind.BOOK and (depth != 0 or speed_ms is not None):
        raise StreamNameError(
            f"{kind.value} takes no depth or speed (got depth={depth!r}, "
            f"speed_ms={speed_ms!r}); BOOK does"
        )
    if kind is DataKind.TRADES:
        return f"{name}@{'aggTrade' if use_agg_trades else rules.trade_stream}"
    if kind is DataKind.QUOTES:
        return f"{name}@bookTicker"
    if kind is DataKind.TICKER:
        return f"{name}@ticker"
    if kind is DataKind.BARS:
        if interval is None:
            raise StreamNameError("BARS need an interval")
        if interval not in rules.intervals:
            raise StreamNameError(
                f"{where} has no {interval!r} klines; intervals: " + " ".join(rules.intervals)
            )
        return f"{name}@kline_{interval}"
    if kind in (DataKind.MARK_PRICE, DataKind.INDEX_PRICE, DataKind.FUNDING_RATE):
        if not rules.mark_price:
            raise StreamNameError(
                f"{kind.value} is a futures stream (<symbol>{MARK_PRICE_STREAM}); {where} has "
                "no mark price, index price or funding rate"
            )
        return f"{name}{MARK_PRICE_STREAM}"
    if kind is DataKind.BOOK:
        return f"{name}@depth{_depth_part(depth, where)}{_speed_suffix(speed_ms, rules, where)}"
    raise StreamNameError(f"no stream serves {kind!r}")


def _depth_part(depth: int, where: str) -> str:
    if type(depth) is not int or (depth != 0 and depth not in PARTIAL_DEPTHS):
        raise StreamNameError(
            f"{where} book depth must be 0 (the full book) or one of "
            f"{', '.join(map(str, PARTIAL_DEPTHS))}, not {depth!r}"
        )
    return str(depth) if depth else ""


def _speed_suffix(speed_ms: int | None, rules: StreamRules, where: str) -> str:
    if speed_ms is None:
        speed_ms = rules.default_depth_ms
    elif speed_ms == 0 and type(speed_ms) is int:
        speed_ms = rules.fastest_depth_ms
    if type(speed_ms) is not int or speed_ms not in rules.depth_speeds:
        offered = ", ".join(f"{ms} ms" for ms in sorted(rules.depth_speeds))
        raise StreamNameError(
            f"{where} depth streams run at {offered} (0: the fastest), not {speed_ms!r}"
        )
    return rules.depth_speeds[speed_ms]


# --------------------------------------------------------------------------------- errors


class MarketDataError(ValueError):
    """A market-data payload that is not what Binance sends.

    Attributes:
        kind: the payload kind (``trade``, ``depthUpdate``, ``klines``...).
        field: the field at fault (``p``, ``k.o``, ``b``, ``[3].open``; ``""`` for the
            payload as a whole).
        value: the offending value (None when the field is missing: see ``missing``).
        missing: the field is absent.
        expected: what the field should have held.
    """

    def __init__(
        self, kind: str, field: str, value: object, expected: str, *, missing: bool = False
    ) -> None:
        self.kind = kind
        self.field = field
        self.value = None if missing else value
        self.missing = missing
        self.expected = expected
        where = f"field {field!r}" if field else "the payload"
        got = "it is missing" if missing else f"got {_shown(value)}"
        super().__init__(f"{kind} payload: {where} must be {expected}; {got}")


_SHOWN_CHARS = 80


def _shown(value: object) -> str:
    text = repr(value)
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return f"{type(value).__name__} {text}"


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


class _Malformed(Exception):
    """Raised by the field readers; each parser's single handler turns it into a
    :class:`MarketDataError` with the payload kind."""

    __slots__ = ("expected", "field", "value")

    def __init__(self, field: str, value: object, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected

    def error(self, kind: str, within: str = "") -> MarketDataError:
        """The error for a payload of ``kind``; ``within`` names the nested object or the
        row the field is in (``k``, ``[3]``)."""
        return MarketDataError(
            kind,
            f"{within}.{self.field}" if within and self.field else within or self.field,
            self.value,
            self.expected,
            missing=self.value is _MISSING,
        )


# ------------------------------------------------------------------------- field readers

#: Exact (unbounded precision and exponent) and non-trapping: junk reads as NaN, and unlike
#: the ``Decimal`` constructor it refuses surrounding whitespace and underscores.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])
_to_decimal = _EXACT.create_decimal
_loads = orjson.loads

_DECIMAL = "a decimal string"
_INTEGER = "an integer"
_BOOLEAN = "true or false"
_STRING = "a string"
_OBJECT = "a JSON object"
_LEVELS = "a list of [price, size] decimal strings"
_LEVEL = "[price, size]: decimal strings of digits and at most one point"


def _decimal(payload: Mapping[str, Any], key: str) -> Decimal:
    value = payload.get(key, _MISSING)
    if type(value) is str:
        number = _to_decimal(value)
        if number.is_finite():
            return number
    raise _Malformed(key, value, _DECIMAL)


def _integer(payload: Mapping[str, Any], key: str) -> int:
    value = payload.get(key, _MISSING)
    if type(value) is int:
        return value
    raise _Malformed(key, value, _INTEGER)


def _optional_integer(payload: Mapping[str, Any], key: str) -> int | None:
    value = payload.get(key)
    if value is None or type(value) is int:
        return value
    raise _Malformed(key, value, _INTEGER)


def _boolean(payload: Mapping[str, Any], key: str) -> bool:
    value = payload.get(key, _MISSING)
    if type(value) is bool:
        return value
    raise _Malformed(key, value, _BOOLEAN)


def _string(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key, _MISSING)
    if type(value) is str:
        return value
    raise _Malformed(key, value, _STRING)


def _object(value: object) -> dict[str, Any]:
    if type(value) is dict:
        return value
    raise _Malformed("", value, _OBJECT)


def _event(payload: Mapping[str, Any], name: str) -> None:
    value = payload.get("e", _MISSING)
    if value != name:
        raise _Malformed("e", value, repr(name))


def level_number(text: object) -> Decimal | None:
    """The exact value of one of a level's strings (price or size) when it is written as
    Binance writes them: ASCII digits with at most one decimal point; None for anything else,
    such as a sign, an exponent, surrounding whitespace, underscores or other scripts' digits
    (``Decimal()`` and ``float()`` accept all of those; Binance sends none). The one rule for
    every depth level tern publishes."""
    if (
        type(text) is str
        and text.isascii()
        and text[:1] != "+"
        and "e" not in text
        and "E" not in text
    ):
        number = _to_decimal(text)
        if number.is_finite() and not number.is_signed():
            return number
    return None


def _level(level: object, key: str) -> tuple[Decimal, Decimal]:
    """One ``[price, size]`` level as the exact values of Binance's two strings (see
    :func:`level_number`)."""
    if (type(level) is list or type(level) is tuple) and len(level) == 2:
        price = level_number(level[0])
        size = level_number(level[1])
        if price is not None and size is not None:
            return price, size
    raise _Malformed(key, level, _LEVEL)


def _level_decimals(levels: object, key: str) -> tuple[tuple[Decimal, Decimal], ...]:
    """Partial-depth levels as exact decimals (for :class:`BookSnapshot`)."""
    if type(levels) is not list and type(levels) is not tuple:
        raise _Malformed(key, levels, _LEVELS)
    return tuple(_level(level, key) for level in levels)


# ---------------------------------------------------------------------------- instruments

#: Symbol -> instrument id: a mapping, or a callable returning the id (KeyError or None for
#: a symbol it does not know).
InstrumentLookup: TypeAlias = Mapping[str, str] | Callable[[str], str | None]
#: What a parser of a payload with ``s`` takes: the instrument id, or a lookup by ``s``.
InstrumentRef: TypeAlias = str | InstrumentLookup


def _instrument(instrument: InstrumentRef, payload: Mapping[str, Any], key: str = "s") -> str:
    if type(instrument) is str:
        return instrument
    symbol = payload.get(key, _MISSING)
    if type(symbol) is not str:
        raise _Malformed(key, symbol, "a symbol")
    if isinstance(instrument, Mapping):
        found = instrument.get(symbol)
    else:
        try:
            found = instrument(symbol)  # type: ignore[operator]
        except KeyError:
            found = None
    if type(found) is not str:
        raise _Malformed(key, symbol, "a symbol of a known instrument")
    return found


def _body(body: object, kind: str) -> Any:
    """A REST body as JSON: text is parsed, anything else is taken as already parsed."""
    if isinstance(body, str | bytes | bytearray | memoryview):
        try:
            return _loads(body)
        except orjson.JSONDecodeError:
            raise MarketDataError(kind, "", body, "JSON text") from None
    return body


# ------------------------------------------------------------------------------- frames


def parse_frame(frame: str | bytes | bytearray | memoryview) -> tuple[str, Any]:
    """The stream name and payload of a combined-stream frame ``{"stream", "data"}``.

    The payload is a JSON object, or an array for the all-market streams (``!...@arr``).

    Raises:
        MarketDataError: the frame is not JSON, or not that wrapper (a raw ``/ws`` payload, a
            control reply).
    """
    try:
        message = _loads(frame)
    except orjson.JSONDecodeError:
        raise MarketDataError("frame", "", frame, "JSON text") from None
    if type(message) is not dict:
        raise MarketDataError("frame", "", message, '{"stream": name, "data": payload}')
    stream = message.get("stream", _MISSING)
    if type(stream) is not str:
        raise MarketDataError(
            "frame", "stream", stream, "the stream name", missing=stream is _MISSING
        )
    data = message.get("data", _MISSING)
    if type(data) is not dict and type(data) is not list:
        raise MarketDataError(
            "frame", "data", data, "a JSON object or array", missing=data is _MISSING
        )
    return stream, data


# ------------------------------------------------------------------------------ trades

_BUY = "BUY"
_SELL = "SELL"


def parse_trade(payload: Any, client: str, instrument: InstrumentRef) -> TradeTick:
    """A Spot ``<s>@trade`` event (``{"e": "trade", "E", "s", "t", "p", "q", "T", "m"}``)
    as a :class:`TradeTick`; the aggressor is SELL when the buyer was the maker (``m``)."""
    try:
        payload = _object(payload)
        _event(payload, "trade")
        instrument_id = instrument if type(instrument) is str else _instrument(instrument, payload)
        return _trade(payload, client, instrument_id, _TRADE_FIELDS, aggregated=False)
    except _Malformed as exc:
        raise exc.error("trade") from None


#: Where a trade's price, size, buyer-is-maker flag, id and time are: the ``trade`` and
#: ``aggTrade`` events (``aggTrades`` rows use the event's names) and the REST trade lists.
_TRADE_FIELDS = ("p", "q", "m", "t", "T")
_AGG_TRADE_FIELDS = ("p", "q", "m", "a", "T")
_REST_TRADE_FIELDS = ("price", "qty", "isBuyerMaker", "id", "time")


def _trade(
    payload: dict[str, Any],
    client: str,
    instrument_id: str,
    fields: tuple[str, str, str, str, str],
    *,
    aggregated: bool,
) -> TradeTick:
    price, size, maker, trade_id, time = fields
    return TradeTick(
        client=client,
        instrument_id=instrument_id,
        price=_decimal(payload, price),
        size=_decimal(payload, size),
        aggressor=_SELL if _boolean(payload, maker) else _BUY,
        trade_id=_integer(payload, trade_id),
        aggregated=aggregated,
        ts_event_ms=_integer(payload, time),
    )


def parse_agg_trade(payload: Any, client: str, instrument: InstrumentRef) -> TradeTick:
    """An ``<s>@aggTrade`` event (``{"e": "aggTrade", "E", "s", "a", "p", "q", "f", "l",
    "T", "m"}``; Spot adds ``M``, USD-M ``nq`` and ``st``) as an aggregated
    :class:`TradeTick` whose ``trade_id`` is the aggregate id ``a``."""
    try:
        payload = _object(payload)
        _event(payload, "aggTrade")
        instrument_id = instrument if type(instrument) is str else _instrument(instrument, payload)
        return _trade(payload, client, instrument_id, _AGG_TRADE_FIELDS, aggregated=True)
    except _Malformed as exc:
        raise exc.error("aggTrade") from None


def parse_rest_agg_trades(body: Any, client: str, instrument_id: str) -> tuple[TradeTick, ...]:
    """``GET /api/v3/aggTrades`` (``/fapi/v1/aggTrades``, ``/dapi/v1/aggTrades``): a list of
    ``{"a", "p", "q", "f", "l", "T", "m"}`` as aggregated :class:`TradeTick`, in Binance's
    order (ascending ids)."""
    return _rest_trades(body, client, instrument_id, "aggTrades", _AGG_TRADE_FIELDS, True)


def parse_rest_trades(body: Any, client: str, instrument_id: str) -> tuple[TradeTick, ...]:
    """``GET /api/v3/trades`` or ``historicalTrades`` (and the futures ones): a list of
    ``{"id", "price", "qty", "quoteQty", "time", "isBuyerMaker"}`` as :class:`TradeTick`."""
    return _rest_trades(body, client, instrument_id, "trades", _REST_TRADE_FIELDS, False)


def _rest_trades(
    body: Any,
    client: str,
    instrument_id: str,
    kind: str,
    fields: tuple[str, str, str, str, str],
    aggregated: bool,
) -> tuple[TradeTick, ...]:
    trades = []
    for index, row in enumerate(_rows(_body(body, kind), kind)):
        try:
            trades.append(
                _trade(_object(row), client, instrument_id, fields, aggregated=aggregated)
            )
        except _Malformed as exc:
            raise exc.error(kind, f"[{index}]") from None
    return tuple(trades)


def _rows(body: Any, kind: str) -> list[Any]:
    if type(body) is not list:
        raise MarketDataError(kind, "", body, "a JSON array")
    return body


# ------------------------------------------------------------------------------ quotes


def parse_book_ticker(payload: Any, client: str, instrument: InstrumentRef) -> QuoteTick:
    """An ``<s>@bookTicker`` event as a :class:`QuoteTick`.

    Spot sends ``{"u", "s", "b", "B", "a", "A"}``, no ``e`` and no event time
    (``ts_event_ms`` None); futures add ``"e": "bookTicker"``, ``E`` and ``T``. ``E`` is
    used whenever it is present.
    """
    try:
        payload = _object(payload)
        if "e" in payload:
            _event(payload, "bookTicker")
        instrument_id = instrument if type(instrument) is str else _instrument(instrument, payload)
        return QuoteTick(
            client=client,
            instrument_id=instrument_id,
            bid_price=_decimal(payload, "b"),
            bid_size=_decimal(payload, "B"),
            ask_price=_decimal(payload, "a"),
            ask_size=_decimal(payload, "A"),
            update_id=_integer(payload, "u"),
            ts_event_ms=_optional_integer(payload, "E"),
        )
    except _Malformed as exc:
        raise exc.error("bookTicker") from None


# -------------------------------------------------------------------------------- bars


def parse_kline(payload: Any, client: str, instrument: InstrumentRef) -> Bar | None:
    """An ``<s>@kline_<i>`` event as a :class:`Bar` once the kline is closed (``k.x``
    true); None while it is still open (Binance re-sends the open kline every 1-2 s, or
    250 ms on futures). An open kline is not read beyond ``k.x``."""
    within = ""
    try:
        payload = _object(payload)
        _event(payload, "kline")
        instrument_id = _instrument(instrument, payload)
        kline = payload.get("k", _MISSING)
        if type(kline) is not dict:
            raise _Malformed("k", kline, _OBJECT)
        within = "k"
        if not _boolean(kline, "x"):
            return None
        return _bar(kline, client, instrument_id, _string(kline, "i"), _STREAM_KLINE)
    except _Malformed as exc:
        raise exc.error("kline", within) from None


#: The fields of a kline: open and close times, OHLC, base and quote volumes, trade count,
#: taker-buy base and quote volumes.
_STREAM_KLINE = ("t", "T", "o", "h", "l", "c", "v", "q", "n", "V", "Q")


def _bar(
    row: Mapping[str, Any],
    client: str,
    instrument_id: str,
    interval: str,
    keys: tuple[str, ...],
) -> Bar:
    open_ms, close_ms, o, h, low, c, v, q, n, taker, taker_quote = keys
    return Bar(
        client=client,
        instrument_id=instrument_id,
        interval=interval,
        open_ms=_integer(row, open_ms),
        close_ms=_integer(row, close_ms),
        open=_decimal(row, o),
        high=_decimal(row, h),
        low=_decimal(row, low),
        close=_decimal(row, c),
        volume=_decimal(row, v),
        quote_volume=_decimal(row, q),
        trades=_integer(row, n),
        taker_buy_volume=_decimal(row, taker),
        taker_buy_quote_volume=_decimal(row, taker_quote),
    )


#: The columns of a REST kline row (the 12th, ``"0"``, is unused).
_KLINE_COLUMNS = (
    "openTime",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "closeTime",
    "quoteVolume",
    "trades",
    "takerBuyVolume",
    "takerBuyQuoteVolume",
)
_REST_KLINE = (
    "openTime",
    "closeTime",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quoteVolume",
    "trades",
    "takerBuyVolume",
    "takerBuyQuoteVolume",
)


def parse_rest_klines(
    body: Any, client: str, instrument_id: str, interval: str, *, now_ms: int | None = None
) -> tuple[Bar, ...]:
    """``GET /api/v3/klines`` (and ``uiKlines``, the futures ``klines``,
    ``continuousKlines``, ``markPriceKlines``, ``indexPriceKlines``): 12-element arrays
    ``[openTime, o, h, l, c, volume, closeTime, quoteVolume, trades, takerBuyBase,
    takerBuyQuote, "0"]`` as :class:`Bar` of ``interval`` (the body does not say it).

    Binance includes the kline still open at the end of the range; with ``now_ms``, bars
    whose ``closeTime`` is not yet past are left out. Mark and index price klines have zero
    volumes (and count seconds as ``trades``).
    """
    rows = _rows(_body(body, "klines"), "klines")
    bars = []
    for index, row in enumerate(rows):
        try:
            if type(row) is not list or len(row) < len(_KLINE_COLUMNS):
                raise _Malformed("", row, "an array of 12 kline columns")
            columns = dict(zip(_KLINE_COLUMNS, row, strict=False))
            bar = _bar(columns, client, instrument_id, interval, _REST_KLINE)
        except _Malformed as exc:
            raise exc.error("klines", f"[{index}]") from None
        if now_ms is None or bar.close_ms < now_ms:
            bars.append(bar)
    return tuple(bars)


# ------------------------------------------------------------------------------ ticker

_BEST = ("b", "B", "a", "A")


def parse_ticker(payload: Any, client: str, instrument: InstrumentRef) -> Ticker:
    """An ``<s>@ticker`` event (``24hrTicker``) as a :class:`Ticker`. Spot carries the best
    bid and ask (``b``, ``B``, ``a``, ``A``: all four or none); futures do not (None)."""
    try:
        payload = _object(payload)
        _event(payload, "24hrTicker")
        bid_price = bid_size = ask_price = ask_size = None
        if "b" in payload or "B" in payload or "a" in payload or "A" in payload:
            bid_price, bid_size, ask_price, ask_size = (_decimal(payload, k) for k in _BEST)
        return Ticker(
            client=client,
            instrument_id=_instrument(instrument, payload),
            last_price=_decimal(payload, "c"),
            last_size=_decimal(payload, "Q"),
            open=_decimal(payload, "o"),
            high=_decimal(payload, "h"),
            low=_decimal(payload, "l"),
            volume=_decimal(payload, "v"),
            quote_volume=_decimal(payload, "q"),
            price_change=_decimal(payload, "p"),
            price_change_percent=_decimal(payload, "P"),
            weighted_average_price=_decimal(payload, "w"),
            open_ms=_integer(payload, "O"),
            close_ms=_integer(payload, "C"),
            first_trade_id=_integer(payload, "F"),
            last_trade_id=_integer(payload, "L"),
            trades=_integer(payload, "n"),
            ts_event_ms=_integer(payload, "E"),
            bid_price=bid_price,
            bid_size=bid_size,
            ask_price=ask_price,
            ask_size=ask_size,
        )
    except _Malformed as exc:
        raise exc.error("24hrTicker") from None


# -------------------------------------------------------------------------- mark price


def parse_mark_price(
    payload: Any, client: str, instrument: InstrumentRef
) -> tuple[MarkPrice, IndexPrice, FundingRate | None]:
    """A futures ``<s>@markPrice@1s`` event (``{"e": "markPriceUpdate", "E", "s", "p", "i",
    "P", "r", "T"}``) as its mark price, index price and funding rate.

    The funding rate is None for a delivery contract, where Binance shows ``"r": ""`` and
    ``"T": 0``. The estimated settle price ``P`` and the mark moving average ``ap`` are not
    kept.
    """
    try:
        payload = _object(payload)
        _event(payload, "markPriceUpdate")
        return _mark_index_funding(payload, client, instrument, _STREAM_MARK)
    except _Malformed as exc:
        raise exc.error("markPriceUpdate") from None


#: Where a mark price stream event and a premiumIndex answer keep the same facts: symbol,
#: time, mark price, index price, funding rate, next funding time.
_STREAM_MARK = ("s", "E", "p", "i", "r", "T")
_REST_MARK = ("symbol", "time", "markPrice", "indexPrice", "lastFundingRate", "nextFundingTime")


def _mark_index_funding(
    payload: dict[str, Any],
    client: str,
    instrument: InstrumentRef,
    keys: tuple[str, str, str, str, str, str],
) -> tuple[MarkPrice, IndexPrice, FundingRate | None]:
    symbol_key, time_key, mark_key, index_key, rate_key, next_key = keys
    instrument_id = _instrument(instrument, payload, symbol_key)
    time_ms = _integer(payload, time_key)
    return (
        MarkPrice(
            client=client,
            instrument_id=instrument_id,
            price=_decimal(payload, mark_key),
            ts_event_ms=time_ms,
        ),
        IndexPrice(
            client=client,
            instrument_id=instrument_id,
            price=_decimal(payload, index_key),
            ts_event_ms=time_ms,
        ),
        _funding(payload, rate_key, next_key, client, instrument_id, time_ms),
    )


def _funding(
    payload: Mapping[str, Any],
    rate_key: str,
    next_key: str,
    client: str,
    instrument_id: str,
    time_ms: int,
) -> FundingRate | None:
    """The funding rate of a mark price payload; None for a delivery contract (rate ``""``,
    or next funding time 0)."""
    next_funding_ms = _integer(payload, next_key)
    if payload.get(rate_key) == "":
        return None
    rate = _decimal(payload, rate_key)
    if next_funding_ms == 0:
        return None
    return FundingRate(
        client=client,
        instrument_id=instrument_id,
        rate=rate,
        next_funding_ms=next_funding_ms,
        ts_event_ms=time_ms,
    )


def parse_premium_index(
    body: Any, client: str, instrument: InstrumentRef
) -> tuple[MarkPrice, IndexPrice, FundingRate | None]:
    """``GET /fapi/v1/premiumIndex?symbol=`` (or ``/dapi/v1/premiumIndex``, one object):
    ``{"symbol", "markPrice", "indexPrice", "lastFundingRate", "nextFundingTime", "time"}``
    as :func:`parse_mark_price` reads a stream event (delivery contracts: rate ``""``,
    ``nextFundingTime`` 0, funding None). Ask for one symbol: the all-symbol answer is an
    array, refused here."""
    payload = _body(body, "premiumIndex")
    try:
        return _mark_index_funding(_object(payload), client, instrument, _REST_MARK)
    except _Malformed as exc:
        raise exc.error("premiumIndex") from None


def parse_funding_rates(
    body: Any, client: str, instrument: InstrumentRef
) -> tuple[FundingRate, ...]:
    """``GET /fapi/v1/fundingRate`` (``/dapi/v1/fundingRate``): past fundings ``{"symbol",
    "fundingRate", "fundingTime"}`` as :class:`FundingRate` events whose
    ``next_funding_ms`` and ``ts_event_ms`` are both the ``fundingTime`` the rate was
    charged at."""
    rows = _rows(_body(body, "fundingRate"), "fundingRate")
    rates = []
    for index, row in enumerate(rows):
        try:
            row = _object(row)
            time_ms = _integer(row, "fundingTime")
            rates.append(
                FundingRate(
                    client=client,
                    instrument_id=_instrument(instrument, row, "symbol"),
                    rate=_decimal(row, "fundingRate"),
                    next_funding_ms=time_ms,
                    ts_event_ms=time_ms,
                )
            )
        except _Malformed as exc:
            raise exc.error("fundingRate", f"[{index}]") from None
    return tuple(rates)


# -------------------------------------------------------------------------------- depth


def parse_partial_depth(payload: Any, client: str, instrument: InstrumentRef) -> BookSnapshot:
    """A partial-depth event of ``<s>@depth<N>[...]`` as a :class:`BookSnapshot` of the top
    ``N`` levels, best first.

    Spot sends ``{"lastUpdateId", "bids", "asks"}`` (no symbol: pass the instrument id; no
    time: ``ts_event_ms`` None). Futures send a ``depthUpdate``-shaped object: ``u`` is the
    update id, ``b``/``a`` the levels, ``E`` the time.
    """
    try:
        payload = _object(payload)
        if "lastUpdateId" in payload:
            return BookSnapshot(
                client=client,
                instrument_id=_instrument(instrument, payload),
                update_id=_integer(payload, "lastUpdateId"),
                bids=_level_decimals(payload.get("bids", _MISSING), "bids"),
                asks=_level_decimals(payload.get("asks", _MISSING), "asks"),
            )
        _event(payload, "depthUpdate")
        return BookSnapshot(
            client=client,
            instrument_id=_instrument(instrument, payload),
            update_id=_integer(payload, "u"),
            bids=_level_decimals(payload.get("b", _MISSING), "b"),
            asks=_level_decimals(payload.get("a", _MISSING), "a"),
            ts_event_ms=_integer(payload, "E"),
        )
    except _Malformed as exc:
        raise exc.error("partialDepth") from None
