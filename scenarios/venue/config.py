"""The venue's configuration: listen address, seed, keys, funding, instruments, limits.

A TOML file (``tern venue --config FILE``) may hold::

    host = "127.0.0.1"
    port = 0
    seed = 1
    tick_ms = 100            # one market-activity step every tick_ms

    [[keys]]
    api_key = "..."
    api_secret = "..."       # HMAC; or:
    # ed25519_public_key = "path/to/key.pem"   / rsa_public_key = "path/to/key.pem"

    [balances]               # what each registered key starts with
    spot = { USDT = "100000", BTC = "10" }
    usdm = { USDT = "100000" }
    coinm = { BTC = "10" }

    [limits]                 # what exchangeInfo.rateLimits states and the venue enforces
    spot_weight_1m = 6000
    futures_weight_1m = 2400 # USD-M and COIN-M share this pool

    [[instruments]]          # optional overrides or additions, see instruments.py

Every problem is a ValueError naming the key, the value and what was expected.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

DEFAULT_BALANCES: dict[str, dict[str, str]] = {
    "spot": {"USDT": "100000", "BTC": "10"},
    "usdm": {"USDT": "100000"},
    "coinm": {"BTC": "10"},
}


#: The rate limits a config may override: name -> (pool, limit type, interval, number).
LIMIT_NAMES: dict[str, tuple[str, str, str, int]] = {
    "spot_weight_1m": ("spot", "REQUEST_WEIGHT", "MINUTE", 1),
    "spot_orders_10s": ("spot", "ORDERS", "SECOND", 10),
    "spot_orders_1d": ("spot", "ORDERS", "DAY", 1),
    "spot_raw_requests_5m": ("spot", "RAW_REQUESTS", "MINUTE", 5),
    "futures_weight_1m": ("futures", "REQUEST_WEIGHT", "MINUTE", 1),
    "futures_orders_1m": ("futures", "ORDERS", "MINUTE", 1),
    "futures_orders_10s": ("futures", "ORDERS", "SECOND", 10),
}


@attrs.frozen
class KeySpec:
    """One API key to register: HMAC (``secret``) or asymmetric (``public_key_pem``)."""

    api_key: str
    secret: str | None = None
    public_key_pem: bytes | None = None


@attrs.frozen
class VenueConfig:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    tick_ms: int = 100
    keys: tuple[KeySpec, ...] = ()
    balances: dict[str, dict[str, Decimal]] = attrs.field(
        factory=lambda: {
            product: {asset: Decimal(amount) for asset, amount in assets.items()}
            for product, assets in DEFAULT_BALANCES.items()
        }
    )
    instruments: tuple[dict[str, Any], ...] = ()
    epoch_ms: int | None = None
    #: Overrides of the rate limits, by name (see :data:`LIMIT_NAMES`).
    limits: dict[str, int] = attrs.field(factory=dict)


def _fail(key: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"venue config key {key!r}: got {value!r}; expected {expected}")


def load_venue_config(path: str | Path) -> VenueConfig:
    """Read a venue TOML file (see the module docstring)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail("(file)", str(path), f"a readable file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail("(file)", str(path), f"valid TOML ({exc})") from None
    return venue_config_from_dict(data, base=path.parent)


def venue_config_from_dict(data: dict[str, Any], *, base: Path = Path(".")) -> VenueConfig:
    known = {"host", "port", "seed", "tick_ms", "keys", "balances", "instruments", "limits"}
    for key in data:
        if key not in known:
            raise _fail(key, data[key], "a known key (" + ", ".join(sorted(known)) + ")")
    host = data.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise _fail("host", host, "a host name or address")
    port = data.get("port", 0)
    if type(port) is not int or not 0 <= port <= 65535:
        raise _fail("port", port, "a port number 0..65535")
    seed = data.get("seed", 1)
    if type(seed) is not int:
        raise _fail("seed", seed, "an integer")
    tick_ms = data.get("tick_ms", 100)
    if type(tick_ms) is not int or tick_ms <= 0:
        raise _fail("tick_ms", tick_ms, "a positive integer")
    keys = tuple(_key(item, index, base) for index, item in enumerate(data.get("keys", [])))
    balances = VenueConfig().balances
    raw_balances = data.get("balances", {})
    if not isinstance(raw_balances, dict):
        raise _fail("balances", raw_balances, "a table")
    for product, assets in raw_balances.items():
        if product not in DEFAULT_BALANCES or not isinstance(assets, dict):
            raise _fail(f"balances.{product}", assets, "a table under spot, usdm or coinm")
        parsed = {}
        for asset, amount in assets.items():
            try:
                value = Decimal(amount) if isinstance(amount, str) else None
            except InvalidOperation:
                value = None
            if value is None or not value.is_finite() or value < 0:
                raise _fail(
                    f"balances.{product}.{asset}", amount, 'an amount as a string, e.g. "10"'
                )
            parsed[asset] = value
        balances[product] = parsed
    limits = data.get("limits", {})
    if not isinstance(limits, dict):
        raise _fail("limits", limits, "a table such as { spot_weight_1m = 6000 }")
    overrides = {}
    for name, value in limits.items():
        if name not in LIMIT_NAMES:
            raise _fail(f"limits.{name}", value, "one of " + ", ".join(LIMIT_NAMES))
        if type(value) is not int or value <= 0:
            raise _fail(f"limits.{name}", value, "a positive integer")
        overrides[name] = value
    instruments = data.get("instruments", [])
    if not isinstance(instruments, list) or not all(isinstance(i, dict) for i in instruments):
        raise _fail("instruments", instruments, "an array of tables ([[instruments]])")
    return VenueConfig(
        host=host,
        port=port,
        seed=seed,
        tick_ms=tick_ms,
        keys=keys,
        balances=balances,
        instruments=tuple(instruments),
        limits=overrides,
    )


def _key(item: Any, index: int, base: Path) -> KeySpec:
    where = f"keys[{index}]"
    if not isinstance(item, dict):
        raise _fail(where, item, "a table")
    api_key = item.get("api_key")
    if not isinstance(api_key, str) or not api_key:
        raise _fail(f"{where}.api_key", api_key, "the API key string")
    choices = [
        name for name in ("api_secret", "ed25519_public_key", "rsa_public_key") if name in item
    ]
    if len(choices) != 1:
        raise _fail(
            where, sorted(item), "exactly one of api_secret, ed25519_public_key, rsa_public_key"
        )
    extra = set(item) - {"api_key", *choices}
    if extra:
        raise _fail(f"{where}.{sorted(extra)[0]}", item[sorted(extra)[0]], "no other keys")
    if choices[0] == "api_secret":
        secret = item["api_secret"]
        if not isinstance(secret, str) or not secret:
            raise _fail(f"{where}.api_secret", "<hidden>", "the secret string")
        return KeySpec(api_key=api_key, secret=secret)
    pem_path = base / str(item[choices[0]])
    try:
        pem = pem_path.read_bytes()
    except OSError as exc:
        raise _fail(
            f"{where}.{choices[0]}", str(pem_path), f"a readable PEM file ({exc.strerror})"
        ) from None
    return KeySpec(api_key=api_key, public_key_pem=pem)
