"""Who is calling: API keys, Binance's request signatures and its timing check.

REST requests are verified over the bytes exactly as received (``binance-protocol.md`` 2.1,
"Simulator rule"): the signed payload is the raw query string followed by the raw body, with
only the ``signature`` parameter cut out, and nothing is decoded or re-encoded. WS-API
requests are verified over their parameters sorted by name (2.2).

The checks run in this order (see :func:`authenticate` for why):
API key header, key lookup, ``timestamp``/``recvWindow``, ``signature`` present, signature
valid, key permissions.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import random
import re
import string
import urllib.parse
from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from scenarios.venue.errors import VenueError, is_futures

SPOT_TRADING = "spot_trading"
"""Permission to use spot TRADE endpoints ("Enable Spot & Margin Trading")."""
FUTURES_TRADING = "futures_trading"
"""Permission to use futures TRADE, USER_DATA and USER_STREAM endpoints ("Enable Futures")."""
DEFAULT_PERMISSIONS = frozenset({SPOT_TRADING, FUTURES_TRADING})

API_KEY_LENGTH = 64
MAX_API_KEY_LENGTH = 256
DEFAULT_RECV_WINDOW_MS = 5000
SPOT_MAX_RECV_WINDOW_MS = 60000
AHEAD_TOLERANCE_MS = 1000
FIRST_MICROSECOND_TIMESTAMP = 10**15
"""Spot timestamps at or above this (16 digits) are microseconds; below, milliseconds."""

INTEGER_RANGE = "^[0-9]{1,20}$"
SPOT_RECV_WINDOW_RANGE = "^[0-9]{1,20}(\\.[0-9]{1,3})?$"
_INTEGER = re.compile(r"[0-9]{1,20}")
_SPOT_RECV_WINDOW = re.compile(r"[0-9]{1,20}(\.[0-9]{1,3})?")
_KEY_ALPHABET = string.ascii_letters + string.digits
_SIGNATURE = "signature"

PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey


class KeyType(enum.Enum):
    """The three kinds of API key Binance issues."""

    HMAC_SHA256 = "HMAC_SHA256"
    ED25519 = "ED25519"
    RSA = "RSA"


class Security(enum.Enum):
    """An endpoint's security type; TRADE and USER_DATA are SIGNED."""

    NONE = "NONE"
    MARKET_DATA = "MARKET_DATA"
    USER_STREAM = "USER_STREAM"
    TRADE = "TRADE"
    USER_DATA = "USER_DATA"

    @property
    def signed(self) -> bool:
        """Whether requests need ``timestamp`` and ``signature``."""
        return self in (Security.TRADE, Security.USER_DATA)


@attrs.frozen
class ApiKey:
    """A registered API key.

    Attributes:
        api_key: the public key name sent in ``X-MBX-APIKEY`` (or WS ``apiKey``).
        key_type: how requests are signed.
        secret: the HMAC secret (HMAC keys only); kept out of ``repr``.
        public_key: the Ed25519 or RSA public key (asymmetric keys only).
        permissions: the enabled permissions, see :data:`SPOT_TRADING`, :data:`FUTURES_TRADING`.
        label: a free-form name for logs and scenario scripts.
    """

    api_key: str
    key_type: KeyType
    secret: str | None = attrs.field(default=None, repr=False)
    public_key: PublicKey | None = attrs.field(default=None, repr=False, hash=False)
    permissions: frozenset[str] = DEFAULT_PERMISSIONS
    label: str = ""

    def __attrs_post_init__(self) -> None:
        if self.key_type is KeyType.HMAC_SHA256:
            if not self.secret or self.public_key is not None:
                raise ValueError("an HMAC key needs a secret and no public key")
        elif self.secret is not None:
            raise ValueError(f"an {self.key_type.value} key has a public key, not a secret")
        elif self.key_type is KeyType.ED25519 and not isinstance(
            self.public_key, ed25519.Ed25519PublicKey
        ):
            raise ValueError("an ED25519 key needs an Ed25519 public key")
        elif self.key_type is KeyType.RSA and not isinstance(self.public_key, rsa.RSAPublicKey):
            raise ValueError("an RSA key needs an RSA public key")

    @classmethod
    def hmac(
        cls,
        api_key: str,
        secret: str,
        *,
        permissions: frozenset[str] = DEFAULT_PERMISSIONS,
        label: str = "",
    ) -> ApiKey:
        """An HMAC-SHA256 key with its secret."""
        return cls(api_key, KeyType.HMAC_SHA256, secret, None, permissions, label)

    @classmethod
    def from_public_key_pem(
        cls,
        api_key: str,
        pem: bytes | str,
        *,
        permissions: frozenset[str] = DEFAULT_PERMISSIONS,
        label: str = "",
    ) -> ApiKey:
        """An Ed25519 or RSA key from its PEM public key (the type is detected).

        Raises:
            ValueError: the PEM is not a public key, or is neither Ed25519 nor RSA; the
                message names the problem.
        """
        data = pem.encode() if isinstance(pem, str) else pem
        if b"PRIVATE KEY" in data:
            raise ValueError("this PEM holds a private key; register the public key instead")
        try:
            public_key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as error:
            raise ValueError(f"not a readable PEM public key: {error}") from None
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            key_type = KeyType.ED25519
        elif isinstance(public_key, rsa.RSAPublicKey):
            key_type = KeyType.RSA
        else:
            raise ValueError(
                f"unsupported public key type {_key_kind(public_key)}; "
                "Binance accepts Ed25519 and RSA keys"
            )
        return cls(api_key, key_type, None, public_key, permissions, label)


def _key_kind(public_key: object) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC ({public_key.curve.name})"
    return type(public_key).__name__


def generate_hmac(
    rng: random.Random,
    *,
    permissions: frozenset[str] = DEFAULT_PERMISSIONS,
    label: str = "",
) -> ApiKey:
    """A Binance-looking HMAC key: 64 alphanumeric characters for the key and the secret.

    The same ``rng`` state gives the same key, so scenarios are reproducible.
    """
    api_key = "".join(rng.choice(_KEY_ALPHABET) for _ in range(API_KEY_LENGTH))
    secret = "".join(rng.choice(_KEY_ALPHABET) for _ in range(API_KEY_LENGTH))
    return ApiKey.hmac(api_key, secret, permissions=permissions, label=label)


_WHITESPACE = re.compile(r"\s")


def _well_formed(api_key: str | None) -> bool:
    """Binance keys are 64 alphanumerics; be lenient and refuse only the clearly broken."""
    if not api_key or len(api_key) > MAX_API_KEY_LENGTH:
        return False
    return api_key.isprintable() and _WHITESPACE.search(api_key) is None


class KeyRegistry:
    """The venue's API keys, looked up the way Binance checks ``X-MBX-APIKEY``."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._keys: dict[str, ApiKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: ApiKey) -> None:
        """Register ``key``.

        Raises:
            ValueError: the key name is malformed or already registered.
        """
        if not _well_formed(key.api_key):
            raise ValueError(f"malformed API key name {key.api_key!r}")
        if key.api_key in self._keys:
            raise ValueError(f"API key {key.label or key.api_key[:8]!r} is already registered")
        self._keys[key.api_key] = key

    def remove(self, api_key: str) -> None:
        """Revoke a key; later requests with it get ``-2015``. Unknown names are ignored."""
        self._keys.pop(api_key, None)

    def get(self, api_key: str | None) -> ApiKey:
        """The key named ``api_key``.

        Raises:
            VenueError: ``-2014`` when the name is missing or malformed, ``-2015`` when unknown.
        """
        if api_key is None or not _well_formed(api_key):
            raise VenueError.bad_api_key_format()
        key = self._keys.get(api_key)
        if key is None:
            raise VenueError.rejected_mbx_key()
        return key

    def __contains__(self, api_key: object) -> bool:
        return api_key in self._keys

    def __len__(self) -> int:
        return len(self._keys)


# --- REST payload ---------------------------------------------------------------------


def _parameter_name(segment: bytes) -> str:
    name = segment.partition(b"=")[0]
    if b"%" in name or b"+" in name:
        return urllib.parse.unquote_plus(name.decode("utf-8", "replace"))
    return name.decode("utf-8", "replace")


def _without_signature(raw: bytes) -> bytes:
    if not raw:
        return raw
    kept = [segment for segment in raw.split(b"&") if _parameter_name(segment) != _SIGNATURE]
    return b"&".join(kept)


def signed_payload(raw_query: bytes, raw_body: bytes) -> bytes:
    """Binance's ``totalParams``: the raw query string then the raw body, no separator.

    Every ``signature=...`` parameter is cut out of whichever part it is in, wherever it
    stands, together with one ``&`` that joined it to its neighbours; every other byte stays
    as received (still percent-encoded).

    Args:
        raw_query: the query string as received, without the leading ``?``.
        raw_body: the ``application/x-www-form-urlencoded`` body as received.
    """
    return _without_signature(raw_query) + _without_signature(raw_body)


def extract_signature(raw_query: bytes, raw_body: bytes) -> str | None:
    """The percent-decoded ``signature`` value, or None when it was not sent.

    When it is in both parts the query string wins, as for any Binance parameter.
    """
    for raw in (raw_query, raw_body):
        if not raw:
            continue
        for segment in raw.split(b"&"):
            if _parameter_name(segment) == _SIGNATURE:
                value = segment.partition(b"=")[2]
                return urllib.parse.unquote_plus(value.decode("utf-8", "replace"))
    return None


def verify_signature(key: ApiKey, payload: bytes, signature: str) -> bool:
    """Whether ``signature`` signs ``payload`` with ``key``.

    HMAC-SHA256 signatures are hex and compared case-insensitively in constant time; RSA
    (PKCS#1 v1.5, SHA-256) and Ed25519 signatures are standard base64.
    """
    if key.key_type is KeyType.HMAC_SHA256:
        if key.secret is None or not signature.isascii():
            return False
        expected = hmac.new(key.secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        if isinstance(key.public_key, rsa.RSAPublicKey):
            key.public_key.verify(raw_signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key.public_key, ed25519.Ed25519PublicKey):
            key.public_key.verify(raw_signature, payload)
        else:  # unreachable: ApiKey validates its public key
            return False
    except InvalidSignature:
        return False
    return True


# --- timing ---------------------------------------------------------------------------


def _recv_window_us(recv_window: str | None, *, futures: bool) -> int:
    if not recv_window:
        return DEFAULT_RECV_WINDOW_MS * 1000
    if futures:
        if not _INTEGER.fullmatch(recv_window):
            raise VenueError.illegal_characters("recvWindow", INTEGER_RANGE)
        return int(recv_window) * 1000
    if not _SPOT_RECV_WINDOW.fullmatch(recv_window):
        raise VenueError.illegal_characters("recvWindow", SPOT_RECV_WINDOW_RANGE)
    window_us = int(Decimal(recv_window) * 1000)
    if window_us > SPOT_MAX_RECV_WINDOW_MS * 1000:
        raise VenueError.value_too_large("recvWindow", SPOT_MAX_RECV_WINDOW_MS)
    return window_us


def check_timestamp(
    timestamp: str | None, recv_window: str | None, server_time_ms: int, *, product: str
) -> None:
    """Binance's timing check: ``serverTime - recvWindow <= timestamp < serverTime + 1000``.

    Spot takes ``timestamp`` in milliseconds or, from 16 digits on, microseconds, and a
    ``recvWindow`` (default 5000 ms) with up to three decimals and at most 60000. Futures
    ("usdm", "coinm") take milliseconds and an integer ``recvWindow`` with no maximum.

    Raises:
        VenueError: ``-1102`` when ``timestamp`` is missing or empty, or a spot
            ``recvWindow`` exceeds 60000; ``-1100`` when either is not a number of the
            accepted form (Binance's reply for e.g. ``timestamp=1.5``); ``-1021`` "1000ms
            ahead" or "outside of the recvWindow" when the time is off.
    """
    futures = is_futures(product)
    if not timestamp:
        raise VenueError.mandatory_param_empty_or_malformed("timestamp")
    if not _INTEGER.fullmatch(timestamp):
        raise VenueError.illegal_characters("timestamp", INTEGER_RANGE)
    value = int(timestamp)
    microseconds = not futures and value >= FIRST_MICROSECOND_TIMESTAMP
    timestamp_us = value if microseconds else value * 1000
    window_us = _recv_window_us(recv_window, futures=futures)
    server_us = server_time_ms * 1000
    if timestamp_us >= server_us + AHEAD_TOLERANCE_MS * 1000:
        raise VenueError.timestamp_ahead_of_server()
    if server_us - timestamp_us > window_us:
        raise VenueError.timestamp_outside_recv_window()


# --- the whole check ------------------------------------------------------------------


def _check_permissions(key: ApiKey, security: Security, product: str) -> None:
    if is_futures(product):
        needed = None if security is Security.MARKET_DATA else FUTURES_TRADING
    else:
        needed = SPOT_TRADING if security is Security.TRADE else None
    if needed is not None and needed not in key.permissions:
        raise VenueError.rejected_mbx_key()


def authenticate(
    registry: KeyRegistry,
    security: Security,
    headers: Mapping[str, str],
    raw_query: bytes,
    raw_body: bytes,
    params: Mapping[str, str],
    server_time_ms: int,
    product: str,
) -> ApiKey | None:
    """Authenticate one REST request the way Binance does.

    The order of checks, first failure wins:

    1. ``NONE`` endpoints: nothing is checked, None is returned (a key sent anyway is ignored).
    2. ``X-MBX-APIKEY`` missing or malformed: ``-2014`` "API-key format invalid." (HTTP 401).
       The protocol notes do not say what a missing header gets; Binance answers ``-2014``
       (seen by clients whose header was dropped, e.g. binance-connector-js issue 529), so
       the venue does too rather than ``-2015``.
    3. Unknown key: ``-2015``. Keyed, unsigned endpoints (``MARKET_DATA``, ``USER_STREAM``)
       then only check permissions.
    4. SIGNED: ``timestamp``/``recvWindow`` (``-1102``, ``-1100``, ``-1021``), before the
       signature. Binance's "timing security" logic gates all processing on the time check,
       the check needs no secret, and the spot changelog (2025-05-22) describes it as done
       "at receipt"; so a stale request with a bad signature gets ``-1021``.
    5. ``signature`` missing or empty: ``-1102`` naming ``signature``.
    6. Signature wrong: ``-1022``, verified over :func:`signed_payload`.
    7. The key lacks the permission for the endpoint: ``-2015`` (only an authenticated
       caller learns about its permissions).

    Args:
        registry: the venue's keys.
        security: the endpoint's security type.
        headers: request headers with lower-case names.
        raw_query: the query string bytes as received (no ``?``).
        raw_body: the body bytes as received.
        params: the parsed parameters (query string winning over body).
        server_time_ms: the venue time now.
        product: "spot", "usdm" or "coinm".

    Returns:
        The caller's key, or None for ``NONE`` endpoints.

    Raises:
        VenueError: as listed above.
    """
    if security is Security.NONE:
        return None
    key = registry.get(headers.get("x-mbx-apikey"))
    if security.signed:
        check_timestamp(
            params.get("timestamp"), params.get("recvWindow"), server_time_ms, product=product
        )
        signature = extract_signature(raw_query, raw_body)
        if not signature:
            raise VenueError.mandatory_param_empty_or_malformed(_SIGNATURE)
        if not verify_signature(key, signed_payload(raw_query, raw_body), signature):
            raise VenueError.invalid_signature()
    _check_permissions(key, security, product)
    return key


# --- WebSocket API --------------------------------------------------------------------


def _render(value: object) -> str:
    """A JSON value as it appears in the WS-API signing payload."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def ws_api_payload(params: Mapping[str, object]) -> bytes:
    """The WS-API signing payload: every param but ``signature``, sorted by name, ``k=v``.

    Pairs are joined with ``&`` and nothing is percent-encoded; the result is UTF-8. JSON
    strings are used as they are, integers as digits, booleans as ``true``/``false`` (the
    protocol notes say nothing about booleans; this is their JSON spelling), floats in
    Python's shortest round-trip form and arrays/objects as compact JSON.
    """
    pairs = sorted((name, value) for name, value in params.items() if name != _SIGNATURE)
    return "&".join(f"{name}={_render(value)}" for name, value in pairs).encode("utf-8")


def _optional_text(value: object) -> str | None:
    return None if value is None else _render(value)


def authenticate_ws_api(
    registry: KeyRegistry,
    security: Security,
    params: Mapping[str, object],
    server_time_ms: int,
    product: str,
) -> ApiKey | None:
    """Authenticate one WS-API request carrying ``apiKey`` (and, if SIGNED, ``signature``).

    Same order as :func:`authenticate`. The key name is a parameter here, so a missing one
    is a missing mandatory parameter (``-1102`` naming ``apiKey``); a malformed one is
    ``-2014`` and an unknown one ``-2015`` (WS-API status 401). Requests relying on a
    ``session.logon`` key are the session layer's business, not this function's.

    Raises:
        VenueError: see :func:`authenticate`.
    """
    if security is Security.NONE:
        return None
    api_key = params.get("apiKey")
    if api_key is None or api_key == "":
        raise VenueError.mandatory_param_empty_or_malformed("apiKey")
    key = registry.get(api_key if isinstance(api_key, str) else None)
    if security.signed:
        check_timestamp(
            _optional_text(params.get("timestamp")),
            _optional_text(params.get("recvWindow")),
            server_time_ms,
            product=product,
        )
        signature = params.get(_SIGNATURE)
        if not isinstance(signature, str) or not signature:
            raise VenueError.mandatory_param_empty_or_malformed(_SIGNATURE)
        if not verify_signature(key, ws_api_payload(params), signature):
            raise VenueError.invalid_signature()
    _check_permissions(key, security, product)
    return key
