"""Binance ``exchangeInfo`` made into tern's instrument events, trading statuses and fees.

Pure: no I/O, no trio, no clock, deterministic. The instruments actor fetches
``exchangeInfo`` (``GET /api/v3/exchangeInfo``, ``/fapi/v1/exchangeInfo``,
``/dapi/v1/exchangeInfo``) and, when asked to, per-symbol commission rates; it hands the bodies
to this module and publishes what comes back.

**Parsing** (:func:`parse_exchange_info`). Every element of ``symbols`` becomes either an
:class:`~events.market.Instrument` or an :class:`~events.market.InstrumentSkipped` naming the
reason; one bad symbol never costs the others, never raises, and never yields a half-filled
instrument. Only a body that is not an ``exchangeInfo`` at all (not JSON, not an object, no
``symbols`` list, Binance's ``{"code", "msg"}`` error) raises :class:`ExchangeInfoError`.

* Kind: Spot symbols are ``SPOT``. Futures ``contractType`` ``PERPETUAL`` (also
  ``PERPETUAL_DELIVERING`` while a perpetual is being delisted, and ``TRADIFI_PERPETUAL``) is
  ``PERPETUAL``, COIN-M ``BTCUSD_PERP`` included; ``CURRENT_MONTH``, ``NEXT_MONTH``,
  ``CURRENT_QUARTER``, ``NEXT_QUARTER`` (and their ``... DELIVERING`` forms) are ``DATED``,
  with ``deliveryDate`` as ``expiry_ms``. An empty or unknown ``contractType`` is skipped:
  guessing a kind would guess the instrument id. Ids come from
  :func:`~events.market.instrument_id`.
* Sizes: ``tick_size`` is ``PRICE_FILTER.tickSize`` and ``step_size`` is
  ``LOT_SIZE.stepSize``, both required and positive. ``pricePrecision`` and
  ``quantityPrecision`` are never read: Binance warns they are not the tick or the step
  (``BTCUSDT`` on USD-M says ``pricePrecision`` 2 with a tick of 0.10). The precisions are
  the decimals of the normalised tick and step (``"0.01000000"`` -> 2, ``"10"`` -> 0).
* Bounds: ``PRICE_FILTER`` min/max price, ``LOT_SIZE`` and ``MARKET_LOT_SIZE`` min/max
  quantity, ``NOTIONAL`` min/max notional (Spot), ``MIN_NOTIONAL`` (futures ``notional``,
  older Spot ``minNotional``; Spot's ``NOTIONAL`` wins when both are present). Binance
  writes a disabled bound as 0 (``MARKET_LOT_SIZE`` ``minQty "0.00000000"`` on Spot); it
  becomes None.
* Decimals are exact, from Binance's strings as written (``Decimal("0.01000000")``); integer
  JSON numbers are accepted (COIN-M ``contractSize`` is one), JSON floats are not.
* COIN-M contracts are ``inverse`` with ``contractSize`` (USD per contract; required and
  positive); Spot and USD-M have ``contract_size`` 1. ``settle_asset`` is ``marginAsset`` on
  futures and the quote asset on Spot. ``onboardDate`` is ``onboard_ms`` when present.
* Unknown top-level keys, symbol fields and filter types are ignored (a new Binance filter
  type once broke all of the peer's instrument loading). Two filters of a type this module
  reads, a duplicated symbol, or a second symbol with the same instrument id are skipped:
  either reading would be a guess.
* Symbols that are not trading (halted, ``BREAK``, ``PENDING_TRADING``, delivering) are
  parsed and tracked like any other, with their status; the peer drops them at connect and
  never sees them come back.

**Statuses.** Each product names its statuses differently (COIN-M in ``contractStatus``).
The tables follow the reference adapter's mapping (seed document, "Status mapping"), plus the
statuses ``binance-protocol.md`` lists that it leaves out (marked +):

====================  ============================  ====================================
Binance status        Spot                          USD-M / COIN-M
====================  ============================  ====================================
TRADING               TRADING                       TRADING / TRADING
END_OF_DAY            CLOSE                         CLOSE / -
HALT                  HALT                          HALT / -
BREAK                 PAUSE                         PAUSE / -
CANCEL_ONLY (+)       HALT (new orders refused)     - / -
PENDING_TRADING       -                             PRE_OPEN / PRE_OPEN
PRE_TRADING           -                             PRE_OPEN / -
POST_TRADING          -                             POST_CLOSE / -
AUCTION_MATCH         -                             CROSS / -
PRE_DELIVERING        -                             PRE_CLOSE (+) / PRE_CLOSE
DELIVERING            -                             CLOSE (+) / CLOSE
DELIVERED             -                             CLOSE (+) / CLOSE
PRE_SETTLE            -                             PRE_CLOSE (+) / PRE_CLOSE
SETTLING              -                             CLOSE (+) / CLOSE
CLOSE                 -                             CLOSE (+) / CLOSE
PRE_DELISTING         -                             - / PRE_CLOSE
DELISTING             -                             - / SUSPEND
DOWN                  -                             - / NOT_AVAILABLE_FOR_TRADING
TRADING_HALT (+)      -                             - / HALT
====================  ============================  ====================================

A status outside its product's table maps to :data:`UNKNOWN_STATUS`
(``NOT_AVAILABLE_FOR_TRADING``: nothing is assumed tradable that Binance has not said is),
and is reported: in :attr:`ParsedInstruments.unknown_statuses` and by a warning.

**Status polling** (:class:`StatusTracker`): the first poll seeds silently; later polls
return :class:`~events.market.InstrumentStatus` only for symbols whose Binance status changed,
sorted by symbol. A symbol gone from ``exchangeInfo`` becomes ``NOT_AVAILABLE_FOR_TRADING``
once; one that (re)appears is reported with its new status.

**Fees** (:class:`FeeTable`): per symbol, the first of

1. ``commission_rate``: the account's own rates for the symbol, from
   ``GET /fapi/v1/commissionRate`` or ``/dapi/v1/commissionRate``
   (:func:`parse_commission_rate`) or Spot ``GET /api/v3/account/commission``
   (:func:`parse_spot_commission`);
2. ``config``: the client's ``default_taker_fee`` replaces the taker rate (the maker rate
   stays the table's);
3. ``table``: the product's VIP tier (:data:`FEE_TIERS`; VIP 0 unless the account's
   ``feeTier`` says otherwise).

A commission answer that cannot be used raises :class:`CommissionRateError`; the caller then
keeps the table's rates for that symbol.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

import attrs
import orjson

from actors.config import AccountType
from events.market import (
    Instrument,
    InstrumentKind,
    InstrumentSkipped,
    InstrumentStatus,
    MarketStatus,
    instrument_id,
)

__all__ = [
    "ABSENT",
    "COINM_STATUSES",
    "FEE_SOURCE_COMMISSION_RATE",
    "FEE_SOURCE_CONFIG",
    "FEE_SOURCE_TABLE",
    "FEE_TIERS",
    "PRODUCTS",
    "PRODUCT_OF",
    "SPOT_STATUSES",
    "STATUS_TABLES",
    "UNKNOWN_STATUS",
    "USDM_STATUSES",
    "CommissionRate",
    "CommissionRateError",
    "ExchangeInfoError",
    "FeeTable",
    "Fees",
    "ParsedInstruments",
    "StatusTracker",
    "is_known_status",
    "map_status",
    "parse_commission_rate",
    "parse_exchange_info",
    "parse_spot_commission",
]

logger = logging.getLogger("tern.binance.instruments")

#: The product names tern's events use.
PRODUCTS: Final = ("spot", "usdm", "coinm")

#: The product of each account type.
PRODUCT_OF: Final[Mapping[AccountType, str]] = {
    AccountType.SPOT: "spot",
    AccountType.USDT_FUTURES: "usdm",
    AccountType.COIN_FUTURES: "coinm",
}

# ---------------------------------------------------------------------------------- statuses

_S = MarketStatus

#: Spot ``status`` (seed "Status mapping", Spot; ``CANCEL_ONLY`` from binance-protocol.md 4.1).
SPOT_STATUSES: Final[Mapping[str, MarketStatus]] = {
    "TRADING": _S.TRADING,
    "END_OF_DAY": _S.CLOSE,
    "HALT": _S.HALT,
    "BREAK": _S.PAUSE,
    "CANCEL_ONLY": _S.HALT,
}

#: USD-M ``status`` (seed "Status mapping", USD-M; the delivery and settlement statuses
#: binance-protocol.md 4.2 lists map as on COIN-M).
USDM_STATUSES: Final[Mapping[str, MarketStatus]] = {
    "TRADING": _S.TRADING,
    "PENDING_TRADING": _S.PRE_OPEN,
    "PRE_TRADING": _S.PRE_OPEN,
    "POST_TRADING": _S.POST_CLOSE,
    "END_OF_DAY": _S.CLOSE,
    "HALT": _S.HALT,
    "AUCTION_MATCH": _S.CROSS,
    "BREAK": _S.PAUSE,
    "PRE_DELIVERING": _S.PRE_CLOSE,
    "DELIVERING": _S.CLOSE,
    "DELIVERED": _S.CLOSE,
    "PRE_SETTLE": _S.PRE_CLOSE,
    "SETTLING": _S.CLOSE,
    "CLOSE": _S.CLOSE,
}

#: COIN-M ``contractStatus`` (seed "Status mapping", COIN-M; ``TRADING_HALT`` from the peer's
#: ``common/status.rs``).
COINM_STATUSES: Final[Mapping[str, MarketStatus]] = {
    "TRADING": _S.TRADING,
    "PENDING_TRADING": _S.PRE_OPEN,
    "PRE_DELIVERING": _S.PRE_CLOSE,
    "DELIVERING": _S.CLOSE,
    "DELIVERED": _S.CLOSE,
    "PRE_SETTLE": _S.PRE_CLOSE,
    "SETTLING": _S.CLOSE,
    "CLOSE": _S.CLOSE,
    "PRE_DELISTING": _S.PRE_CLOSE,
    "DELISTING": _S.SUSPEND,
    "DOWN": _S.NOT_AVAILABLE_FOR_TRADING,
    "TRADING_HALT": _S.HALT,
}

#: The status tables by product.
STATUS_TABLES: Final[Mapping[str, Mapping[str, MarketStatus]]] = {
    "spot": SPOT_STATUSES,
    "usdm": USDM_STATUSES,
    "coinm": COINM_STATUSES,
}

#: What a status missing from its product's table maps to.
UNKNOWN_STATUS: Final = MarketStatus.NOT_AVAILABLE_FOR_TRADING

#: ``venue_status`` of a symbol that is no longer in ``exchangeInfo``.
ABSENT: Final = ""


def _check_product(product: str) -> str:
    if product not in PRODUCTS:
        raise ValueError(f"product {product!r} is not one of {', '.join(PRODUCTS)}")
    return product


def map_status(product: str, venue_status: str) -> MarketStatus:
    """The :class:`~events.market.MarketStatus` of Binance's ``venue_status`` on ``product``
    (module table); :data:`UNKNOWN_STATUS` for a status the table lacks, and for
    :data:`ABSENT`.

    Raises:
        ValueError: ``product`` is not one of :data:`PRODUCTS`.
    """
    return STATUS_TABLES[_check_product(product)].get(venue_status, UNKNOWN_STATUS)


def is_known_status(product: str, venue_status: str) -> bool:
    """True when ``venue_status`` is a row of ``product``'s status table."""
    return venue_status in STATUS_TABLES[_check_product(product)]


# -------------------------------------------------------------------------------------- fees

FEE_SOURCE_TABLE: Final = "table"
FEE_SOURCE_CONFIG: Final = "config"
FEE_SOURCE_COMMISSION_RATE: Final = "commission_rate"


def _tiers(*rows: tuple[str, str]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(maker), Decimal(taker)) for maker, taker in rows)


#: ``(maker, taker)`` per VIP tier (index = ``feeTier``), without BNB discount.
#:
#: * Spot: VIP 0 only, 0.1 % / 0.1 % (the ``/sapi/v1/asset/tradeFee`` fixture
#:   ``http_wallet_trading_fee.json`` and the local venue's default account). Higher Spot
#:   tiers depend on BNB holdings and 30-day volume and are not tabulated here: read the
#:   account's rates with ``GET /api/v3/account/commission`` instead.
#: * USD-M: VIP 0..9, 0.02 % / 0.05 % at VIP 0 down to 0 / 0.017 % (the peer's
#:   ``futures/providers.py`` table, from https://www.binance.com/en/fee/futureFee; VIP 0
#:   matches the ``/fapi/v1/commissionRate`` fixtures).
#: * COIN-M: VIP 0..9, 0.02 % / 0.05 % at VIP 0 down to 0 / 0.017 % (the local venue's
#:   COIN-M table, ``scenarios/venue/futures_accounts.py``).
FEE_TIERS: Final[Mapping[str, tuple[tuple[Decimal, Decimal], ...]]] = {
    "spot": _tiers(("0.001", "0.001")),
    "usdm": _tiers(
        ("0.0002", "0.0005"),
        ("0.00016", "0.0004"),
        ("0.00014", "0.00035"),
        ("0.00012", "0.00032"),
        ("0.0001", "0.0003"),
        ("0.00008", "0.00027"),
        ("0.00006", "0.00025"),
        ("0.00004", "0.00022"),
        ("0.00002", "0.0002"),
        ("0", "0.00017"),
    ),
    "coinm": _tiers(
        ("0.0002", "0.0005"),
        ("0.00016", "0.00045"),
        ("0.00014", "0.0004"),
        ("0.00012", "0.0003"),
        ("0.0001", "0.00025"),
        ("0.00008", "0.00024"),
        ("0.00006", "0.00023"),
        ("0.00004", "0.00022"),
        ("0.00002", "0.0002"),
        ("0", "0.00017"),
    ),
}


class CommissionRateError(ValueError):
    """A commission-rate answer that cannot be used (not JSON, Binance's error object,
    another symbol's rates, a missing or non-decimal rate); the message says which. The
    caller keeps the fee table's rates for the symbol."""


@attrs.frozen(kw_only=True)
class Fees:
    """The fees of one symbol as fractions (``0.001`` = 10 bps), and where they came from
    (``source``: ``"table"``, ``"config"`` or ``"commission_rate"``)."""

    maker: Decimal
    taker: Decimal
    source: str


@attrs.frozen(kw_only=True)
class CommissionRate:
    """The account's own rates for one symbol, as Binance answered them. A maker rate may be
    negative (a rebate)."""

    symbol: str
    maker: Decimal
    taker: Decimal


@attrs.frozen(kw_only=True)
class FeeTable:
    """The fees of one client's instruments (module docstring: commission rate, then config,
    then the VIP table).

    Build it with :meth:`for_product`; add Binance's per-symbol answers with
    :meth:`with_commission_rates`. Calling the table with a symbol gives its :class:`Fees`,
    so a table can be passed wherever :func:`parse_exchange_info` wants ``fees``.

    Attributes:
        product: ``"spot"``, ``"usdm"`` or ``"coinm"``.
        tier: the VIP tier (row of :data:`FEE_TIERS`).
        default_taker_fee: the client's ``default_taker_fee``, or None.
        commission_rates: per-symbol rates from Binance.
    """

    product: str
    tier: int = 0
    default_taker_fee: Decimal | None = None
    commission_rates: Mapping[str, CommissionRate] = attrs.field(factory=dict)

    @classmethod
    def for_product(
        cls,
        product: str,
        *,
        tier: int = 0,
        default_taker_fee: str | Decimal | None = None,
    ) -> FeeTable:
        """The table of ``product`` at VIP ``tier``, with the client's ``default_taker_fee``
        (the config's decimal string, or None).

        Raises:
            ValueError: an unknown product, a tier the product's table lacks (Spot has VIP 0
                only), or a ``default_taker_fee`` that is not a decimal in [0, 1).
        """
        rows = FEE_TIERS[_check_product(product)]
        if isinstance(tier, bool) or not isinstance(tier, int) or not 0 <= tier < len(rows):
            raise ValueError(
                f"fee tier {tier!r} is not in the {product} table (VIP 0..{len(rows) - 1})"
            )
        taker = None
        if default_taker_fee is not None:
            taker = _fee_decimal(default_taker_fee)
            if taker is None or not 0 <= taker < 1:
                raise ValueError(
                    f"default_taker_fee {default_taker_fee!r} is not a fraction in [0, 1)"
                )
        return cls(product=product, tier=tier, default_taker_fee=taker)

    def with_commission_rates(self, rates: Iterable[CommissionRate]) -> FeeTable:
        """This table plus Binance's per-symbol ``rates`` (a later rate for a symbol replaces
        an earlier one)."""
        merged = dict(self.commission_rates)
        for rate in rates:
            merged[rate.symbol] = rate
        return attrs.evolve(self, commission_rates=merged)

    def fees(self, symbol: str) -> Fees:
        """The fees of ``symbol``: its commission rate, else the table's maker rate with the
        configured taker rate, else the table's tier."""
        rate = self.commission_rates.get(symbol)
        if rate is not None:
            return Fees(maker=rate.maker, taker=rate.taker, source=FEE_SOURCE_COMMISSION_RATE)
        maker, taker = FEE_TIERS[self.product][self.tier]
        if self.default_taker_fee is not None:
            return Fees(maker=maker, taker=self.default_taker_fee, source=FEE_SOURCE_CONFIG)
        return Fees(maker=maker, taker=taker, source=FEE_SOURCE_TABLE)

    def __call__(self, symbol: str) -> Fees:
        return self.fees(symbol)


_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _fee_decimal(value: object) -> Decimal | None:
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        return Decimal(value)
    return None


def _json_object(body: bytes | str | Mapping[str, Any], what: str, error: type[Exception]) -> Any:
    if isinstance(body, Mapping):
        data: Any = body
    else:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise error(f"{what} is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise error(f"{what} is a JSON {_json_type(data)}, not an object")
    if "code" in data and "msg" in data:
        raise error(f"{what} is Binance's error {data.get('code')!r}: {data.get('msg')!r}")
    return data


def _rate(data: Mapping[str, Any], key: str, where: str) -> Decimal:
    value = data.get(key)
    rate = _fee_decimal(value)
    if rate is None:
        raise CommissionRateError(f"{where}{key} is {_describe(value)}, not a decimal string")
    if not -1 < rate < 1:
        raise CommissionRateError(f"{where}{key} {value} is not a fraction in (-1, 1)")
    return rate


def _answer_symbol(data: Mapping[str, Any], symbol: str | None, what: str) -> str:
    answered = data.get("symbol")
    if not isinstance(answered, str) or not answered:
        raise CommissionRateError(f"{what} names no symbol ({_describe(answered)})")
    if symbol is not None and answered != symbol:
        raise CommissionRateError(f"{what} is for {answered!r}, not {symbol!r}")
    return answered


def parse_commission_rate(
    body: bytes | str | Mapping[str, Any], *, symbol: str | None = None
) -> CommissionRate:
    """The rates of a futures ``GET /fapi/v1/commissionRate`` or ``/dapi/v1/commissionRate``
    answer: ``{"symbol", "makerCommissionRate", "takerCommissionRate"}`` (USD-M adds
    ``rpiCommissionRate``, ignored), rates as decimal strings.

    Args:
        body: the response body (bytes or text) or its parsed JSON.
        symbol: the symbol asked for; an answer about another symbol is refused.

    Raises:
        CommissionRateError: the answer cannot be used (the message says why).
    """
    what = "commissionRate answer"
    data = _json_object(body, what, CommissionRateError)
    answered = _answer_symbol(data, symbol, what)
    return CommissionRate(
        symbol=answered,
        maker=_rate(data, "makerCommissionRate", ""),
        taker=_rate(data, "takerCommissionRate", ""),
    )


def parse_spot_commission(
    body: bytes | str | Mapping[str, Any], *, symbol: str | None = None
) -> CommissionRate:
    """The rates of a Spot ``GET /api/v3/account/commission`` answer (also the WebSocket API's
    ``account.commission`` result): ``{"symbol", "standardCommission", "specialCommission",
    "taxCommission", "discount"}``, each commission ``{"maker", "taker", "buyer", "seller"}``.

    Binance charges the three commissions on top of each other, so the maker (taker) rate is
    the sum of the three ``maker`` (``taker``) rates; ``specialCommission`` and
    ``taxCommission`` count as zero when absent. The side-dependent ``buyer``/``seller`` rates
    and the BNB ``discount`` (which applies only when paying in BNB) are not included.

    Raises:
        CommissionRateError: the answer cannot be used (the message says why).
    """
    what = "account/commission answer"
    data = _json_object(body, what, CommissionRateError)
    answered = _answer_symbol(data, symbol, what)
    maker = taker = Decimal(0)
    for key in ("standardCommission", "specialCommission", "taxCommission"):
        part = data.get(key)
        if part is None and key != "standardCommission":
            continue
        if not isinstance(part, Mapping):
            raise CommissionRateError(f"{what}: {key} is {_describe(part)}, not an object")
        maker += _rate(part, "maker", f"{key}.")
        taker += _rate(part, "taker", f"{key}.")
    return CommissionRate(symbol=answered, maker=maker, taker=taker)


# ------------------------------------------------------------------------------- exchangeInfo


class ExchangeInfoError(ValueError):
    """A body that is not an ``exchangeInfo`` at all: not JSON, not an object, Binance's
    ``{"code", "msg"}`` error, or no ``symbols`` list. Nothing was parsed."""


@attrs.frozen
class _Rules:
    """How one product writes its ``exchangeInfo`` symbols."""

    status_keys: tuple[str, ...]
    futures: bool
    inverse: bool


_RULES: Final[Mapping[str, _Rules]] = {
    "spot": _Rules(status_keys=("status",), futures=False, inverse=False),
    "usdm": _Rules(status_keys=("status",), futures=True, inverse=False),
    "coinm": _Rules(status_keys=("contractStatus", "status"), futures=True, inverse=True),
}

#: ``contractType`` values of perpetuals. ``PERPETUAL_DELIVERING`` is a perpetual being
#: delisted (its ``deliveryDate`` is then real); ``TRADIFI_PERPETUAL`` appeared in 2026.
_PERPETUAL_TYPES: Final = frozenset(
    {"PERPETUAL", "PERPETUAL_DELIVERING", "PERPETUAL DELIVERING", "TRADIFI_PERPETUAL"}
)
_DELIVERING_PERPETUAL_TYPES: Final = frozenset({"PERPETUAL_DELIVERING", "PERPETUAL DELIVERING"})
#: ``contractType`` values of dated futures. Binance's COIN-M enum also lists
#: ``CURRENT_QUARTER DELIVERING`` and ``NEXT_QUARTER DELIVERING`` for a contract in its
#: ``DELIVERING`` status; both spellings (space, underscore) are accepted.
_DATED_TYPES: Final = frozenset(
    {
        "CURRENT_MONTH",
        "NEXT_MONTH",
        "CURRENT_QUARTER",
        "NEXT_QUARTER",
        "CURRENT_QUARTER DELIVERING",
        "NEXT_QUARTER DELIVERING",
        "CURRENT_QUARTER_DELIVERING",
        "NEXT_QUARTER_DELIVERING",
    }
)
#: A ``deliveryDate`` at or after this (2096) means "never": perpetuals carry 2100-12-25.
_NEVER_MS: Final = 4_000_000_000_000

#: The filter types read here; two of one type make the symbol ambiguous.
_READ_FILTERS: Final = frozenset(
    {"PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL", "MIN_NOTIONAL"}
)


class _Skip(Exception):
    """Why the symbol being parsed cannot become an instrument."""


@attrs.frozen(kw_only=True)
class ParsedInstruments:
    """One ``exchangeInfo`` answer, parsed.

    Attributes:
        client: the client it was fetched for.
        product: ``"spot"``, ``"usdm"`` or ``"coinm"``.
        instruments: the symbols that parsed, in ``exchangeInfo`` order.
        skipped: the symbols that did not, with the reason, in ``exchangeInfo`` order.
        statuses: Binance's status of every symbol that has one (parsed or skipped), in
            ``exchangeInfo`` order: what :class:`StatusTracker` reads.
        unknown_statuses: the symbols whose status is not in the product's table (mapped to
            :data:`UNKNOWN_STATUS`), with that status.
        server_time_ms: ``serverTime``, when the answer had a valid one.
    """

    client: str
    product: str
    instruments: list[Instrument]
    skipped: list[InstrumentSkipped]
    statuses: dict[str, str]
    unknown_statuses: dict[str, str]
    server_time_ms: int | None = None

    def instrument_ids(self) -> dict[str, str]:
        """``symbol -> instrument_id`` of the parsed instruments."""
        return {instrument.symbol: instrument.instrument_id for instrument in self.instruments}


def parse_exchange_info(
    body: bytes | str | Mapping[str, Any],
    *,
    client: str,
    product: str,
    fees: FeeTable | Callable[[str], Fees],
    log_warnings: bool = True,
) -> ParsedInstruments:
    """Every symbol of an ``exchangeInfo`` answer as an instrument or a skip (module
    docstring for the rules).

    Args:
        body: the response body (bytes or text) or its parsed JSON.
        client: the ``[[clients]]`` name the events carry.
        product: ``"spot"``, ``"usdm"`` or ``"coinm"``: the endpoint it came from.
        fees: a :class:`FeeTable` of the same product, or any callable giving a symbol's
            :class:`Fees`.
        log_warnings: log one warning per skipped symbol (symbol and reason) and per
            unknown status; False silences them (the events and
            :attr:`ParsedInstruments.unknown_statuses` still say it all).

    Raises:
        ExchangeInfoError: the body is not an ``exchangeInfo`` at all.
        ValueError: an unknown ``product``, or a :class:`FeeTable` of another product.
    """
    rules = _RULES[_check_product(product)]
    if isinstance(fees, FeeTable) and fees.product != product:
        raise ValueError(f"fee table of {fees.product} given for {product} instruments")
    data = _json_object(body, f"{product} exchangeInfo", ExchangeInfoError)
    symbols = data.get("symbols")
    if not isinstance(symbols, list):
        raise ExchangeInfoError(
            f"{product} exchangeInfo has no symbols list (symbols is {_describe(symbols)})"
        )
    server_time = data.get("serverTime")
    server_time_ms = server_time if _is_ms(server_time) else None

    instruments: list[Instrument] = []
    skipped: list[InstrumentSkipped] = []
    statuses: dict[str, str] = {}
    unknown: dict[str, str] = {}
    id_owners: dict[str, str] = {}
    seen: set[str] = set()
    table = STATUS_TABLES[product]

    for index, entry in enumerate(symbols):
        if not isinstance(entry, Mapping):
            name, reason = f"symbols[{index}]", f"entry is a JSON {_json_type(entry)}"
            skipped.append(InstrumentSkipped(client=client, symbol=name, reason=reason))
            continue
        symbol = entry.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            name = f"symbols[{index}]"
            reason = f"symbol is {_describe(symbol)}, not a non-empty string"
            skipped.append(InstrumentSkipped(client=client, symbol=name, reason=reason))
            continue
        if symbol in seen:
            reason = "duplicate symbol (the first one is kept)"
            skipped.append(InstrumentSkipped(client=client, symbol=symbol, reason=reason))
            continue
        seen.add(symbol)
        venue_status = _venue_status(entry, rules)
        if isinstance(venue_status, str) and venue_status:
            statuses[symbol] = venue_status
            if venue_status not in table:
                unknown[symbol] = venue_status
        try:
            instrument = _instrument(entry, symbol, client, product, rules, fees)
            owner = id_owners.get(instrument.instrument_id)
            if owner is not None:
                raise _Skip(f"instrument id {instrument.instrument_id} is already {owner}'s")
        except _Skip as skip:
            skipped.append(InstrumentSkipped(client=client, symbol=symbol, reason=str(skip)))
            continue
        id_owners[instrument.instrument_id] = symbol
        instruments.append(instrument)

    if log_warnings:
        for skip in skipped:
            logger.warning(
                "client %r: %s symbol %s skipped: %s", client, product, skip.symbol, skip.reason
            )
        for symbol, venue_status in unknown.items():
            logger.warning(
                "client %r: %s symbol %s has unknown status %r, taken as %s",
                client,
                product,
                symbol,
                venue_status,
                UNKNOWN_STATUS.value,
            )
    return ParsedInstruments(
        client=client,
        product=product,
        instruments=instruments,
        skipped=skipped,
        statuses=statuses,
        unknown_statuses=unknown,
        server_time_ms=server_time_ms,
    )


def _venue_status(entry: Mapping[str, Any], rules: _Rules) -> object:
    for key in rules.status_keys:
        if key in entry:
            return entry[key]
    return None


def _instrument(
    entry: Mapping[str, Any],
    symbol: str,
    client: str,
    product: str,
    rules: _Rules,
    fees: Callable[[str], Fees],
) -> Instrument:
    venue_status = _venue_status(entry, rules)
    key = next((key for key in rules.status_keys if key in entry), rules.status_keys[0])
    if not isinstance(venue_status, str) or not venue_status:
        raise _Skip(f"{key} is {_describe(venue_status)}, not a status name")
    base = _text(entry, "baseAsset")
    quote = _text(entry, "quoteAsset")

    expiry_ms: int | None = None
    onboard_ms: int | None = None
    if rules.futures:
        contract_type = entry.get("contractType")
        if not isinstance(contract_type, str):
            raise _Skip(f"contractType is {_describe(contract_type)}, not a string")
        if contract_type in _PERPETUAL_TYPES:
            kind = InstrumentKind.PERPETUAL
            if contract_type in _DELIVERING_PERPETUAL_TYPES:
                delivery = _optional_ms(entry, "deliveryDate")
                expiry_ms = delivery if delivery is not None and delivery < _NEVER_MS else None
        elif contract_type in _DATED_TYPES:
            kind = InstrumentKind.DATED
            expiry_ms = _optional_ms(entry, "deliveryDate")
            if expiry_ms is None:
                raise _Skip("deliveryDate is missing (a dated future needs its delivery time)")
        elif not contract_type:
            raise _Skip("contractType is empty, so the kind of contract is unknown")
        else:
            raise _Skip(f"contractType {contract_type!r} is unknown")
        settle = _text(entry, "marginAsset")
        onboard_ms = _optional_ms(entry, "onboardDate")
    else:
        kind = InstrumentKind.SPOT
        settle = quote

    if rules.inverse:
        contract_size = _decimal(entry.get("contractSize"), "contractSize")
        if contract_size <= 0:
            raise _Skip(f"contractSize is {contract_size}, must be positive")
    else:
        contract_size = Decimal(1)

    filters = _filters(entry)
    price = filters.get("PRICE_FILTER")
    if price is None:
        raise _Skip("no PRICE_FILTER")
    lot = filters.get("LOT_SIZE")
    if lot is None:
        raise _Skip("no LOT_SIZE")
    tick_size = _positive(price, "PRICE_FILTER", "tickSize")
    step_size = _positive(lot, "LOT_SIZE", "stepSize")
    min_price, max_price = _bounds(price, "PRICE_FILTER", "minPrice", "maxPrice")
    min_quantity, max_quantity = _bounds(lot, "LOT_SIZE", "minQty", "maxQty")
    market_min = market_max = None
    market = filters.get("MARKET_LOT_SIZE")
    if market is not None:
        market_min, market_max = _bounds(market, "MARKET_LOT_SIZE", "minQty", "maxQty")
    min_notional = max_notional = None
    notional = filters.get("NOTIONAL")
    if notional is not None:
        min_notional, max_notional = _bounds(notional, "NOTIONAL", "minNotional", "maxNotional")
    legacy = filters.get("MIN_NOTIONAL")
    if legacy is not None:
        field = "notional" if "notional" in legacy else "minNotional"
        if field not in legacy:
            raise _Skip("MIN_NOTIONAL has neither notional nor minNotional")
        legacy_min = _bound(legacy, "MIN_NOTIONAL", field)
        if notional is None:
            min_notional = legacy_min

    fee = fees(symbol)
    return Instrument(
        client=client,
        instrument_id=instrument_id(symbol, perpetual=kind is InstrumentKind.PERPETUAL),
        symbol=symbol,
        product=product,
        kind=kind,
        base_asset=base,
        quote_asset=quote,
        settle_asset=settle,
        status=map_status(product, venue_status),
        venue_status=venue_status,
        tick_size=tick_size,
        step_size=step_size,
        price_precision=_decimals(tick_size),
        size_precision=_decimals(step_size),
        min_price=min_price,
        max_price=max_price,
        min_quantity=min_quantity,
        max_quantity=max_quantity,
        market_min_quantity=market_min,
        market_max_quantity=market_max,
        min_notional=min_notional,
        max_notional=max_notional,
        contract_size=contract_size,
        inverse=rules.inverse,
        expiry_ms=expiry_ms,
        onboard_ms=onboard_ms,
        maker_fee=fee.maker,
        taker_fee=fee.taker,
        fee_source=fee.source,
    )


def _filters(entry: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The filters this module reads, by type; other types and malformed entries are left."""
    raw = entry.get("filters")
    if raw is None:
        raise _Skip("filters is missing, so there is no PRICE_FILTER")
    if not isinstance(raw, list):
        raise _Skip(f"filters is {_describe(raw)}, not a list")
    found: dict[str, Mapping[str, Any]] = {}
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("filterType")
        if type(kind) is not str or kind not in _READ_FILTERS:  # unknown (or odd) filters
            continue
        if kind in found:
            raise _Skip(f"two {kind} filters")
        found[kind] = item
    return found


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise _Skip(f"{key} is {_describe(value)}, not a non-empty string")
    return value


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _optional_ms(entry: Mapping[str, Any], key: str) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if not _is_ms(value):
        raise _Skip(f"{key} is {_describe(value)}, not a time in milliseconds")
    return value


def _decimal(value: object, where: str) -> Decimal:
    """An exact Decimal from a Binance decimal string (or a JSON integer)."""
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise _Skip(f"{where} is {_describe(value)}, not a decimal")
        return Decimal(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):
        raise _Skip(f"{where} is the JSON float {value!r}, not an exact decimal string")
    raise _Skip(f"{where} is {_describe(value)}, not a decimal")


def _positive(item: Mapping[str, Any], kind: str, key: str) -> Decimal:
    value = _decimal(item.get(key), f"{kind}.{key}")
    if value <= 0:
        raise _Skip(f"{kind}.{key} is {item.get(key)}, must be positive")
    return value


def _bound(item: Mapping[str, Any], kind: str, key: str) -> Decimal | None:
    """A bound of a filter: None when absent or 0 (disabled)."""
    raw = item.get(key)
    if raw is None:
        return None
    value = _decimal(raw, f"{kind}.{key}")
    if value < 0:
        raise _Skip(f"{kind}.{key} is {raw}, must not be negative")
    return value if value != 0 else None


def _bounds(
    item: Mapping[str, Any], kind: str, low_key: str, high_key: str
) -> tuple[Decimal | None, Decimal | None]:
    low = _bound(item, kind, low_key)
    high = _bound(item, kind, high_key)
    if low is not None and high is not None and low > high:
        raise _Skip(f"{kind}.{low_key} {low} is above {high_key} {high}")
    return low, high


def _decimals(value: Decimal) -> int:
    """Decimal places of ``value`` once trailing zeros are dropped (exact, no context)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite by construction
    trailing = 0
    for digit in reversed(digits):
        if digit != 0 or exponent + trailing >= 0:
            break
        trailing += 1
    return max(0, -(exponent + trailing))


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "null" if value is None else type(value).__name__


def _describe(value: object) -> str:
    """A short description of a JSON value for a skip reason."""
    if value is None:
        return "missing"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    if isinstance(value, str):
        return text
    return f"the JSON {_json_type(value)} {text}"


# --------------------------------------------------------------------------- status tracking


@attrs.frozen
class _Tracked:
    instrument_id: str
    status: MarketStatus
    venue_status: str


class StatusTracker:
    """Turns successive ``exchangeInfo`` polls of one client and product into
    :class:`~events.market.InstrumentStatus` changes.

    The first :meth:`update` seeds the tracker and returns nothing. Each later one returns,
    sorted by symbol, an event for every symbol whose Binance status string differs from the
    previous poll's (so ``DELIVERING`` -> ``DELIVERED`` is reported although both map to
    ``CLOSE``), with the previous mapped status. A symbol missing from a poll becomes
    ``NOT_AVAILABLE_FOR_TRADING`` with ``venue_status`` :data:`ABSENT`, reported once; a
    symbol that appears (reappears, or is listed after the seed) is reported with its
    status and ``previous`` ``NOT_AVAILABLE_FOR_TRADING``.

    A symbol is tracked once it has parsed into an instrument (a symbol that has never
    parsed has no instrument id to report under); after that its status is followed even in
    polls where it is skipped. Feed it full ``exchangeInfo`` answers only: one asked for
    with ``symbol=`` would make every other symbol look delisted.

    After a restart, :meth:`observe` the journaled :class:`~events.market.Instrument` and
    :class:`~events.market.InstrumentStatus` events first: the tracker is then seeded from
    them, and the first poll reports what changed while tern was away.
    """

    def __init__(self) -> None:
        self._client: str | None = None
        self._product: str | None = None
        self._known: dict[str, _Tracked] = {}
        self._seeded = False

    @property
    def seeded(self) -> bool:
        """True once a poll (or a journaled event) has given the tracker its baseline."""
        return self._seeded

    def status(self, symbol: str) -> MarketStatus | None:
        """The last status seen for ``symbol`` (None if it was never tracked)."""
        tracked = self._known.get(symbol)
        return tracked.status if tracked is not None else None

    def _bind(self, client: str, product: str) -> None:
        if self._client is None:
            self._client, self._product = client, product
        elif (self._client, self._product) != (client, product):
            raise ValueError(
                f"status tracker of client {self._client!r} ({self._product}) given "
                f"client {client!r} ({product})"
            )

    def observe(self, event: Instrument | InstrumentStatus) -> None:
        """Fold a journaled event into the baseline (marks the tracker seeded). An
        :class:`~events.market.InstrumentStatus` for an instrument never defined is ignored.

        Raises:
            ValueError: the event is of another client or product than earlier ones.
        """
        if isinstance(event, Instrument):
            self._bind(event.client, event.product)
            self._known[event.symbol] = _Tracked(
                event.instrument_id, event.status, event.venue_status
            )
        else:
            if self._client is not None and event.client != self._client:
                raise ValueError(
                    f"status tracker of client {self._client!r} given client {event.client!r}"
                )
            for symbol, tracked in self._known.items():
                if tracked.instrument_id == event.instrument_id:
                    self._known[symbol] = _Tracked(
                        tracked.instrument_id, event.status, event.venue_status
                    )
                    break
        self._seeded = True

    def update(self, parsed: ParsedInstruments) -> list[InstrumentStatus]:
        """The status changes ``parsed`` shows against the previous poll (none on the first).

        Raises:
            ValueError: ``parsed`` is of another client or product than earlier polls.
        """
        self._bind(parsed.client, parsed.product)
        ids = parsed.instrument_ids()
        current: dict[str, _Tracked] = {}
        for symbol, venue_status in parsed.statuses.items():
            known = self._known.get(symbol)
            identifier = ids.get(symbol) or (known.instrument_id if known else None)
            if identifier is not None:
                status = map_status(parsed.product, venue_status)
                current[symbol] = _Tracked(identifier, status, venue_status)
        absent = MarketStatus.NOT_AVAILABLE_FOR_TRADING
        changes: list[InstrumentStatus] = []
        for symbol in sorted(self._known.keys() | current.keys()):
            before = self._known.get(symbol)
            now = current.get(symbol)
            if now is None:
                assert before is not None
                if before.venue_status == ABSENT:
                    continue
                now = _Tracked(before.instrument_id, absent, ABSENT)
            if before is None:
                before = _Tracked(now.instrument_id, absent, ABSENT)
            self._known[symbol] = now
            if self._seeded and now.venue_status != before.venue_status:
                changes.append(
                    InstrumentStatus(
                        client=parsed.client,
                        instrument_id=now.instrument_id,
                        status=now.status,
                        venue_status=now.venue_status,
                        previous=before.status,
                    )
                )
        self._seeded = True
        return changes
