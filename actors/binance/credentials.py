"""A client's API key and secret: from its config, else from the environment's variables.

Binance issues separate keys per environment, so each environment has its own variables:

=========================  ===========================================================
LIVE                       ``BINANCE_API_KEY`` / ``BINANCE_API_SECRET``
LIVE, Binance US           ``BINANCE_US_API_KEY`` / ``BINANCE_US_API_SECRET``, then the
                           LIVE pair (the reference document uses the LIVE pair)
DEMO                       ``BINANCE_DEMO_API_KEY`` / ``BINANCE_DEMO_API_SECRET`` (one demo
                           key serves Spot and USD-M)
TESTNET, Spot              ``BINANCE_TESTNET_API_KEY`` / ``BINANCE_TESTNET_API_SECRET``
TESTNET, futures           ``BINANCE_FUTURES_TESTNET_API_KEY`` / ``..._API_SECRET``; for
                           USD-M they are deprecated (its testnet is the demo environment,
                           whose ``BINANCE_DEMO_*`` pair is tried next)
=========================  ===========================================================

The old ``BINANCE_ED25519_*`` and ``BINANCE_*_ED25519_*`` variables (Ed25519 keys are detected
from the secret now) were removed for Spot: a Spot client that finds only them fails and says
which variable to rename. For futures they are deprecated: used, with a warning.

Values never appear in messages, reprs or exceptions; only variable names do.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from actors.config import AccountType, ClientConfig, Environment

__all__ = [
    "CredentialWarning",
    "Credentials",
    "CredentialsError",
    "load_credentials",
    "variable_names",
]


class CredentialsError(ValueError):
    """No usable credentials, or ambiguous ones. Names variables and options, never values."""


class CredentialWarning(FutureWarning):
    """A deprecated credential variable was used or is being ignored."""


@attrs.frozen(repr=False)
class Credentials:
    """An API key and its secret (HMAC secret or private key PEM).

    Attributes:
        api_key: sent as ``X-MBX-APIKEY`` / ``apiKey``.
        api_secret: signs requests; see :mod:`actors.binance.signing`.
        source: where they came from, e.g. ``config`` or
            ``BINANCE_API_KEY, BINANCE_API_SECRET``.
        notices: deprecations met on the way (also issued as :class:`CredentialWarning`).
    """

    api_key: str
    api_secret: str
    source: str
    notices: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Credentials(api_key={_mask(self.api_key)!r}, source={self.source!r})"

    __str__ = __repr__


@attrs.frozen
class _Pair:
    """Two variables that hold one key: used together or not at all."""

    key: str
    secret: str
    #: "ok", "deprecated" (used with a warning) or "removed" (never used; named in errors).
    status: str = "ok"
    #: Why it is deprecated or removed, and what to do instead.
    advice: str = ""

    def names(self) -> str:
        return f"{self.key}, {self.secret}"


_LIVE = _Pair("BINANCE_API_KEY", "BINANCE_API_SECRET")
_US = _Pair("BINANCE_US_API_KEY", "BINANCE_US_API_SECRET")
_DEMO = _Pair("BINANCE_DEMO_API_KEY", "BINANCE_DEMO_API_SECRET")
_SPOT_TESTNET = _Pair("BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET")
_FUTURES_TESTNET = _Pair("BINANCE_FUTURES_TESTNET_API_KEY", "BINANCE_FUTURES_TESTNET_API_SECRET")
_RENAME = "Ed25519 keys are detected from the secret now; rename them to {target}"
_REMOVED = "removed for Spot. " + _RENAME
_DEPRECATED = "deprecated for futures and due to be removed. " + _RENAME


def _ed25519(prefix: str, status: str, target: _Pair) -> _Pair:
    advice = (_REMOVED if status == "removed" else _DEPRECATED).format(target=target.names())
    return _Pair(f"{prefix}_ED25519_API_KEY", f"{prefix}_ED25519_API_SECRET", status, advice)


#: Variables tried in order, by (environment, product); Binance US has its own LIVE row.
_VARIABLES: dict[tuple[Environment, str], tuple[_Pair, ...]] = {
    (Environment.LIVE, "spot"): (_LIVE, _ed25519("BINANCE", "removed", _LIVE)),
    (Environment.LIVE, "us"): (_US, _LIVE, _ed25519("BINANCE", "removed", _LIVE)),
    (Environment.LIVE, "futures"): (_LIVE, _ed25519("BINANCE", "deprecated", _LIVE)),
    (Environment.DEMO, "spot"): (_DEMO,),
    (Environment.DEMO, "futures"): (_DEMO,),
    (Environment.TESTNET, "spot"): (
        _SPOT_TESTNET,
        _ed25519("BINANCE_TESTNET", "removed", _SPOT_TESTNET),
    ),
    (Environment.TESTNET, "usdt_futures"): (
        attrs.evolve(
            _FUTURES_TESTNET,
            status="deprecated",
            advice=(
                "deprecated: Binance merged the USD-M testnet into its demo environment; "
                'use environment = "DEMO" with BINANCE_DEMO_API_KEY, BINANCE_DEMO_API_SECRET'
            ),
        ),
        _DEMO,
        _ed25519("BINANCE_FUTURES_TESTNET", "deprecated", _FUTURES_TESTNET),
    ),
    (Environment.TESTNET, "coin_futures"): (
        _FUTURES_TESTNET,
        _ed25519("BINANCE_FUTURES_TESTNET", "deprecated", _FUTURES_TESTNET),
    ),
}


def variable_names(
    environment: Environment, account_type: AccountType, us: bool = False
) -> tuple[str, ...]:
    """Every variable :func:`load_credentials` looks at for such a client, in order."""
    return tuple(
        name for pair in _pairs(environment, account_type, us) for name in (pair.key, pair.secret)
    )


def load_credentials(
    client: ClientConfig,
    environ: Mapping[str, str] = os.environ,
    read_file: Callable[[str], str] | None = None,
) -> Credentials:
    """The client's key and secret.

    The config's ``api_key`` and ``api_secret`` (or ``private_key_file``, whose contents are
    the secret) come first; whatever they leave out comes from the first variable pair of the
    client's environment that holds it (a key and a secret are always taken from the same
    pair). Surrounding whitespace is dropped; an empty value counts as unset.

    Args:
        client: the client.
        environ: the variables to read (default ``os.environ``; tests pass a dict).
        read_file: reads ``private_key_file`` (default: the file as UTF-8 text).

    Raises:
        CredentialsError: nothing usable was found (the message lists the variables looked
            at and which were set), only a removed variable was set, both ``api_secret`` and
            ``private_key_file`` were given, or the key file could not be read.
    """
    key = _clean(client.api_key)
    secret = _clean(client.api_secret)
    if client.private_key_file is not None:
        if secret is not None:
            raise CredentialsError(
                f"client {client.name!r}: set api_secret or private_key_file, not both"
            )
        secret = _clean((read_file or _read_text)(client.private_key_file))
        if secret is None:
            raise CredentialsError(
                f"client {client.name!r}: private_key_file {client.private_key_file!r} is empty"
            )
    if key is not None:
        _check_key(client, key, "api_key")
    if key is not None and secret is not None:
        return Credentials(key, secret, "config")

    wanted = [field for field, value in (("key", key), ("secret", secret)) if value is None]
    pairs = _pairs(client.environment, client.account_type, client.us)
    for pair in pairs:
        values = {field: _clean(environ.get(getattr(pair, field))) for field in wanted}
        if any(value is None for value in values.values()):
            continue
        names = ", ".join(getattr(pair, field) for field in wanted)
        if pair.status == "removed":
            raise CredentialsError(f"client {client.name!r}: {names} {pair.advice}")
        notices = [f"{names}: {pair.advice}"] if pair.status == "deprecated" else []
        notices += [  # removed variables still lying around beside working ones
            f"{other.names()} ignored: {other.advice}"
            for other in pairs
            if other.status == "removed"
            and any(_clean(environ.get(name)) for name in (other.key, other.secret))
        ]
        for notice in notices:
            warnings.warn(f"client {client.name!r}: {notice}", CredentialWarning, stacklevel=2)
        if "key" in values:
            _check_key(client, values["key"] or "", pair.key)
        return Credentials(
            api_key=values.get("key") or key or "",
            api_secret=values.get("secret") or secret or "",
            source=f"config, {names}" if len(wanted) == 1 else names,
            notices=tuple(notices),
        )
    raise CredentialsError(_missing(client, wanted, pairs, environ))


_KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")


def _check_key(client: ClientConfig, key: str, where: str) -> None:
    """An API key goes into an HTTP header: printable ASCII without spaces, or it is refused
    here (naming where it came from, never its value) instead of failing on the wire."""
    if not _KEY_CHARACTERS.fullmatch(key):
        raise CredentialsError(
            f"client {client.name!r}: {where} holds characters an API key cannot have "
            "(only printable ASCII without spaces); check for a stray quote, space or newline"
        )


def _pairs(environment: Environment, account_type: AccountType, us: bool) -> tuple[_Pair, ...]:
    if account_type is AccountType.SPOT:
        product = "us" if us and environment is Environment.LIVE else "spot"
    elif environment is Environment.TESTNET:
        product = account_type.value
    else:
        product = "futures"
    return _VARIABLES[(environment, product)]


def _missing(
    client: ClientConfig, wanted: list[str], pairs: tuple[_Pair, ...], environ: Mapping[str, str]
) -> str:
    usable = [pair for pair in pairs if pair.status != "removed"]
    looked = [getattr(pair, field) for pair in usable for field in wanted]
    set_ = [name for name in looked if _clean(environ.get(name)) is not None]
    what = " and ".join(f"api_{field}" for field in wanted)
    message = (
        f"client {client.name!r} ({client.account_type.value} on "
        f"{'Binance US ' if client.us else ''}{client.environment.value}): no {what} in the "
        f"config, and none in the environment variables looked at: {', '.join(looked)}"
    )
    if set_:
        message += f" (set, but without its partner: {', '.join(set_)})"
    return message


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _read_text(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(
            f"private_key_file {path!r} could not be read: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise CredentialsError(
            f"private_key_file {path!r} is not a text PEM file (is it DER?)"
        ) from None


def _mask(api_key: str) -> str:
    return "..." + api_key[-4:] if len(api_key) >= 16 else "***"
