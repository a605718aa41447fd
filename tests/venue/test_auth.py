"""Venue authentication: Binance's signing vectors, signatures anywhere on the wire, timing."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import os
import random
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import given
from hypothesis import strategies as st

from scenarios.venue.auth import (
    DEFAULT_PERMISSIONS,
    FUTURES_TRADING,
    SPOT_TRADING,
    ApiKey,
    KeyRegistry,
    KeyType,
    Security,
    authenticate,
    authenticate_ws_api,
    check_timestamp,
    extract_signature,
    generate_hmac,
    signed_payload,
    verify_signature,
    ws_api_payload,
)
from scenarios.venue.errors import VenueError

VECTORS_FILE = Path(
    os.environ.get(
        "TERN_SIGNATURE_VECTORS",
        Path(__file__).resolve().parents[3] / "shared" / "vectors" / "signatures.json",
    )
)
VECTORS = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
NOW = 1_700_000_000_000


def raises_code(code: int, message: str | None = None) -> Callable[..., None]:
    """Run ``call`` and check it fails with Binance ``code`` (and exact ``message``)."""

    def check(call: Callable[..., object], *args: object, **kwargs: object) -> None:
        with pytest.raises(VenueError) as caught:
            call(*args, **kwargs)
        assert caught.value.code == code, caught.value
        if message is not None:
            assert caught.value.msg == message

    return check


# --- Binance's published vectors ---------------------------------------------------------


def _usable(vector: dict) -> bool:
    if vector["key_type"] == "HMAC_SHA256":
        return bool(vector.get("secret"))
    return vector["key_type"] == "ED25519" and bool(vector.get("private_key_pem"))


VERIFIED = [vector for vector in VECTORS if vector["verified"]]


def test_every_verified_vector_has_key_material():
    assert VERIFIED, "no verified vectors found"
    assert [vector["id"] for vector in VERIFIED if not _usable(vector)] == []


def _vector_key(vector: dict) -> ApiKey:
    if vector["key_type"] == "HMAC_SHA256":
        return ApiKey.hmac(vector["api_key"], vector["secret"])
    private_key = serialization.load_pem_private_key(
        vector["private_key_pem"].encode(), password=None
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if vector.get("public_key_pem"):
        assert public_pem.decode() == vector["public_key_pem"]
    return ApiKey.from_public_key_pem("fix-example", public_pem)


@pytest.mark.parametrize("vector", VERIFIED, ids=[vector["id"] for vector in VERIFIED])
def test_verified_vectors_verify(vector):
    key = _vector_key(vector)
    payload = vector["payload"].encode("utf-8")
    assert verify_signature(key, payload, vector["expected_signature"])
    assert not verify_signature(key, payload + b"x", vector["expected_signature"])


def test_coin_m_doc_bug_signature_is_the_empty_payload():
    vector = next(item for item in VECTORS if item["id"] == "coinm-rest-hmac-query-DOC-BUG")
    key = ApiKey.hmac(vector["api_key"], vector["secret"])
    payload = vector["payload"].encode()
    assert not verify_signature(key, payload, vector["expected_signature"])
    assert verify_signature(key, payload, vector["computed_signature"])
    assert verify_signature(key, b"", vector["expected_signature"])


def _rest_requests() -> list:
    """REST HMAC vectors as wire requests (mixed ones split where the docs split them)."""
    cases = []
    for vector in VERIFIED:
        if "REST" not in vector["api"] or " " in vector["payload"] or not vector["payload"]:
            continue
        payload = vector["payload"].encode()
        split = payload.find(b"GTCquantity=") + 3 if b"GTCquantity=" in payload else len(payload)
        cases.append(pytest.param(vector, payload[:split], payload[split:], id=vector["id"]))
    return cases


@pytest.mark.parametrize(("vector", "query", "body"), _rest_requests())
def test_rest_vectors_authenticate_end_to_end(vector, query, body):
    key = _vector_key(vector)
    signature = b"&signature=" + vector["expected_signature"].encode()
    if body:
        body += signature
    else:
        query += signature
    params = dict(urllib.parse.parse_qsl((query + b"&" + body).decode()))
    server_time = int(params["timestamp"]) + 10
    product = "spot" if vector["api"].startswith("spot") else "usdm"
    accepted = authenticate(
        KeyRegistry([key]),
        Security.TRADE,
        {"x-mbx-apikey": key.api_key},
        query,
        body,
        params,
        server_time,
        product,
    )
    assert accepted == key


WS_VECTORS = [vector for vector in VERIFIED if "WS API" in vector["api"]]


@pytest.mark.parametrize("vector", WS_VECTORS, ids=[vector["id"] for vector in WS_VECTORS])
def test_ws_api_vectors(vector):
    pairs = [item.split("=", 1) for item in vector["payload"].split("&")]
    random.Random(vector["id"]).shuffle(pairs)
    params: dict[str, object] = dict(pairs)
    params["timestamp"] = int(params["timestamp"])  # JSON integer, as Binance sends it
    params["signature"] = vector["expected_signature"]
    assert ws_api_payload(params) == vector["payload"].encode("utf-8")
    key = _vector_key(vector)
    server_time = params["timestamp"] + 1
    accepted = authenticate_ws_api(KeyRegistry([key]), Security.TRADE, params, server_time, "spot")
    assert accepted == key


# --- keys ---------------------------------------------------------------------------------


@functools.cache
def signing_keys() -> dict[str, tuple[ApiKey, Callable[[bytes], str]]]:
    """One key of each type with a function signing a payload (RSA-2048 made once)."""
    hmac_key = generate_hmac(random.Random(7), label="hmac")
    ed_private = ed25519.Ed25519PrivateKey.generate()
    rsa_private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem(private_key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
        return private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_hmac(payload: bytes) -> str:
        assert hmac_key.secret is not None
        return hmac.new(hmac_key.secret.encode(), payload, hashlib.sha256).hexdigest()

    def sign_ed25519(payload: bytes) -> str:
        return base64.b64encode(ed_private.sign(payload)).decode()

    def sign_rsa(payload: bytes) -> str:
        signature = rsa_private.sign(payload, padding.PKCS1v15(), SHA256())
        return base64.b64encode(signature).decode()

    return {
        "hmac": (hmac_key, sign_hmac),
        "ed25519": (ApiKey.from_public_key_pem("E" * 64, pem(ed_private)), sign_ed25519),
        "rsa": (ApiKey.from_public_key_pem("R" * 64, pem(rsa_private)), sign_rsa),
    }


def registry() -> KeyRegistry:
    return KeyRegistry(key for key, _ in signing_keys().values())


def test_key_types_are_detected_from_pem():
    keys = signing_keys()
    assert keys["ed25519"][0].key_type is KeyType.ED25519
    assert keys["rsa"][0].key_type is KeyType.RSA
    assert keys["hmac"][0].key_type is KeyType.HMAC_SHA256
    assert keys["hmac"][0].permissions == DEFAULT_PERMISSIONS


def test_other_key_types_and_bad_pem_are_refused_by_name():
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match=r"unsupported public key type EC \(secp256r1\)"):
        ApiKey.from_public_key_pem("k" * 64, ec_pem)
    with pytest.raises(ValueError, match="not a readable PEM public key"):
        ApiKey.from_public_key_pem("k" * 64, b"-----BEGIN PUBLIC KEY-----\nnope\n")
    private_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="private key"):
        ApiKey.from_public_key_pem("k" * 64, private_pem)


def test_key_records_check_their_material():
    with pytest.raises(ValueError, match="HMAC key needs a secret"):
        ApiKey("k" * 64, KeyType.HMAC_SHA256)
    with pytest.raises(ValueError, match="ED25519 key needs an Ed25519 public key"):
        ApiKey("k" * 64, KeyType.ED25519, public_key=signing_keys()["rsa"][0].public_key)
    with pytest.raises(ValueError, match="not a secret"):
        ApiKey("k" * 64, KeyType.RSA, secret="s")


def test_secrets_stay_out_of_repr():
    key = ApiKey.hmac("a" * 64, "the-secret")
    assert "the-secret" not in repr(key)


def test_generated_keys_look_like_binance_keys_and_repeat_per_seed():
    first = generate_hmac(random.Random(42))
    again = generate_hmac(random.Random(42))
    other = generate_hmac(random.Random(43))
    assert first == again
    assert first.api_key != other.api_key
    for text in (first.api_key, first.secret):
        assert text is not None
        assert len(text) == 64
        assert text.isascii()
        assert text.isalnum()
    assert first.api_key != first.secret


@pytest.mark.parametrize(
    ("name", "code"),
    [
        (None, -2014),
        ("", -2014),
        ("has space", -2014),
        ("tab\there", -2014),
        ("nul\x00", -2014),
        ("k" * 257, -2014),
        ("k" * 64, -2015),
        ("short-but-fine", -2015),
    ],
)
def test_registry_rejects_like_binance(name, code):
    raises_code(code)(registry().get, name)


def test_registry_add_get_remove():
    keys = KeyRegistry()
    key = ApiKey.hmac("x" * 64, "s")
    keys.add(key)
    assert keys.get("x" * 64) is key
    assert "x" * 64 in keys
    assert len(keys) == 1
    with pytest.raises(ValueError, match="already registered"):
        keys.add(key)
    with pytest.raises(ValueError, match="malformed API key name"):
        keys.add(ApiKey.hmac("bad key", "s"))
    keys.remove("x" * 64)
    raises_code(-2015)(keys.get, "x" * 64)


# --- payload and signature extraction -----------------------------------------------------


@pytest.mark.parametrize(
    ("query", "body", "payload", "signature"),
    [
        (b"a=1&b=2&signature=abc", b"", b"a=1&b=2", "abc"),
        (b"signature=abc&a=1&b=2", b"", b"a=1&b=2", "abc"),
        (b"a=1&signature=abc&b=2", b"", b"a=1&b=2", "abc"),
        (b"a=1", b"b=2&signature=abc", b"a=1b=2", "abc"),
        (b"a=1&signature=abc", b"b=2", b"a=1b=2", "abc"),
        (b"signature=abc", b"", b"", "abc"),
        (b"a=%E2%82%AC&signature=x%2By%2F%3D", b"", b"a=%E2%82%AC", "x+y/="),
        (b"signature=q", b"a=1&signature=b", b"a=1", "q"),
        (b"a=1", b"b=2", b"a=1b=2", None),
        (b"designature=1&signatures=2", b"", b"designature=1&signatures=2", None),
    ],
)
def test_signature_is_cut_out_of_the_raw_bytes(query, body, payload, signature):
    assert signed_payload(query, body) == payload
    assert extract_signature(query, body) == signature


def test_hmac_signatures_compare_case_insensitively():
    key, sign = signing_keys()["hmac"]
    assert verify_signature(key, b"a=1", sign(b"a=1").upper())
    assert not verify_signature(key, b"a=1", "é" * 64)


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_asymmetric_signatures_must_be_valid_base64(kind):
    key, sign = signing_keys()[kind]
    assert verify_signature(key, b"a=1", sign(b"a=1"))
    assert not verify_signature(key, b"a=1", "not base64!")
    assert not verify_signature(key, b"a=1", base64.b64encode(b"short").decode())


# --- authenticate: signatures anywhere ----------------------------------------------------

# No "g": generated names and values can never spell "signature", even when cut in two.
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="gG", exclude_categories=("Cs",)),
    max_size=8,
)
PARAMS = st.dictionaries(
    TEXT.filter(lambda name: name not in ("", "timestamp", "recvWindow")), TEXT, max_size=6
)


def _request(
    kind: str, params: dict[str, str], data: st.DataObject, *, tamper: str | None = None
) -> tuple[ApiKey, bytes, bytes, dict[str, str]]:
    """Sign ``params`` with ``kind``, split the wire form anywhere, place the signature anywhere."""
    key, sign = signing_keys()[kind]
    params = {**params, "timestamp": str(NOW - 100)}
    encoded = urllib.parse.urlencode(params).encode()
    signature = sign(encoded)
    if tamper == "payload":
        index = data.draw(st.integers(0, len(encoded) - 1), label="tampered byte")
        flipped = encoded[index] ^ data.draw(st.integers(1, 255), label="xor")
        encoded = encoded[:index] + bytes([flipped]) + encoded[index + 1 :]
    elif tamper == "signature":
        raw = bytes.fromhex(signature) if kind == "hmac" else base64.b64decode(signature)
        index = data.draw(st.integers(0, len(raw) - 1), label="tampered signature byte")
        raw = raw[:index] + bytes([raw[index] ^ data.draw(st.integers(1, 255))]) + raw[index + 1 :]
        signature = raw.hex() if kind == "hmac" else base64.b64encode(raw).decode()
    split = data.draw(st.integers(0, len(encoded)), label="split")
    parts = {"query": encoded[:split], "body": encoded[split:]}
    part = data.draw(st.sampled_from(["query", "body"]), label="signature in")
    segments = parts[part].split(b"&") if parts[part] else []
    position = data.draw(st.integers(0, len(segments)), label="signature position")
    segments.insert(position, b"signature=" + urllib.parse.quote(signature, safe="").encode())
    parts[part] = b"&".join(segments)
    return key, parts["query"], parts["body"], params


def _authenticate(key: ApiKey, query: bytes, body: bytes, params: dict[str, str]) -> object:
    return authenticate(
        registry(),
        Security.TRADE,
        {"x-mbx-apikey": key.api_key},
        query,
        body,
        params,
        NOW,
        "spot",
    )


KINDS = st.sampled_from(["hmac", "ed25519", "rsa"])


@given(kind=KINDS, params=PARAMS, data=st.data())
def test_signed_requests_are_accepted_however_split(kind, params, data):
    key, query, body, sent = _request(kind, params, data)
    assert _authenticate(key, query, body, sent) == key


@given(kind=KINDS, params=PARAMS, data=st.data())
def test_any_changed_payload_byte_is_an_invalid_signature(kind, params, data):
    key, query, body, sent = _request(kind, params, data, tamper="payload")
    raises_code(-1022, "Signature for this request is not valid.")(
        _authenticate, key, query, body, sent
    )


@given(kind=KINDS, params=PARAMS, data=st.data())
def test_any_changed_signature_byte_is_an_invalid_signature(kind, params, data):
    key, query, body, sent = _request(kind, params, data, tamper="signature")
    raises_code(-1022)(_authenticate, key, query, body, sent)


def _wire(kind: str, payload: bytes) -> bytes:
    sign = signing_keys()[kind][1]
    return b"signature=" + urllib.parse.quote(sign(payload), safe="").encode()


@pytest.mark.parametrize("kind", ["hmac", "ed25519", "rsa"])
@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda p, s: (p + b"&" + s, b""), "query last"),
        (lambda p, s: (s + b"&" + p, b""), "query first"),
        (lambda p, s: (p.replace(b"&", b"&" + s + b"&", 1), b""), "query middle"),
        (lambda p, s: (b"", p + b"&" + s), "body last"),
        (lambda p, s: (b"", s + b"&" + p), "body first"),
        (lambda p, s: (b"", p.replace(b"&", b"&" + s + b"&", 1)), "body middle"),
        (lambda p, s: (p, s), "query params, body signature"),
    ],
)
def test_signature_placements(kind, build, where):
    key = signing_keys()[kind][0]
    params = {"symbol": "BTCUSDT", "side": "BUY", "timestamp": str(NOW)}
    payload = urllib.parse.urlencode(params).encode()
    query, body = build(payload, _wire(kind, payload))
    assert _authenticate(key, query, body, params) == key, where


def test_query_signature_wins_over_body_signature():
    key = signing_keys()["hmac"][0]
    params = {"symbol": "BTCUSDT", "timestamp": str(NOW)}
    payload = urllib.parse.urlencode(params).encode()
    good, bad = _wire("hmac", payload), b"signature=" + b"0" * 64
    assert _authenticate(key, payload + b"&" + good, bad, params) == key
    raises_code(-1022)(_authenticate, key, payload + b"&" + bad, good, params)


# --- authenticate: order of checks --------------------------------------------------------


def _signed(kind: str = "hmac", **overrides: str) -> tuple[ApiKey, bytes, dict[str, str]]:
    params = {"symbol": "BTCUSDT", "timestamp": str(NOW), **overrides}
    payload = urllib.parse.urlencode(params).encode()
    return signing_keys()[kind][0], payload + b"&" + _wire(kind, payload), params


def test_public_endpoints_check_nothing():
    assert authenticate(registry(), Security.NONE, {}, b"", b"", {}, NOW, "spot") is None


def test_missing_api_key_header_is_a_format_error():
    _, query, params = _signed()
    with pytest.raises(VenueError) as caught:
        authenticate(registry(), Security.TRADE, {}, query, b"", params, NOW, "spot")
    assert (caught.value.code, caught.value.http_status) == (-2014, 401)
    assert caught.value.msg == "API-key format invalid."


def test_unknown_api_key_is_rejected_before_anything_else():
    headers = {"x-mbx-apikey": "u" * 64}
    raises_code(-2015, "Invalid API-key, IP, or permissions for action.")(
        authenticate, registry(), Security.TRADE, headers, b"", b"", {}, NOW, "spot"
    )


def test_timestamp_is_checked_before_the_signature():
    key, _, params = _signed(timestamp=str(NOW - 60_000))
    query = urllib.parse.urlencode(params).encode() + b"&signature=" + b"0" * 64
    raises_code(-1021, "Timestamp for this request is outside of the recvWindow.")(
        _authenticate, key, query, b"", params
    )
    del params["timestamp"]
    raises_code(
        -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
    )(_authenticate, key, query, b"", params)


@pytest.mark.parametrize("query_suffix", [b"", b"&signature="])
def test_missing_signature(query_suffix):
    key, query, params = _signed()
    query = query.split(b"&signature=")[0] + query_suffix
    raises_code(
        -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
    )(_authenticate, key, query, b"", params)


def test_keyed_unsigned_endpoints_need_no_signature():
    key = signing_keys()["hmac"][0]
    headers = {"x-mbx-apikey": key.api_key}
    for security, product in [
        (Security.MARKET_DATA, "usdm"),
        (Security.USER_STREAM, "coinm"),
        (Security.USER_STREAM, "spot"),
    ]:
        assert authenticate(registry(), security, headers, b"", b"", {}, NOW, product) == key


def _permission_check(permissions: frozenset[str], security: Security, product: str) -> object:
    key = ApiKey.hmac("p" * 64, "secret", permissions=permissions)
    params = {"timestamp": str(NOW)}
    payload = urllib.parse.urlencode(params).encode()
    signature = hmac.new(b"secret", payload, hashlib.sha256).hexdigest().encode()
    return authenticate(
        KeyRegistry([key]),
        security,
        {"x-mbx-apikey": key.api_key},
        payload + b"&signature=" + signature,
        b"",
        params,
        NOW,
        product,
    )


def test_permissions_are_checked_last():
    only_futures = frozenset({FUTURES_TRADING})
    only_spot = frozenset({SPOT_TRADING})
    raises_code(-2015)(_permission_check, only_futures, Security.TRADE, "spot")
    assert _permission_check(only_futures, Security.USER_DATA, "spot") is not None
    raises_code(-2015)(_permission_check, only_spot, Security.USER_DATA, "usdm")
    raises_code(-2015)(_permission_check, only_spot, Security.TRADE, "coinm")
    assert _permission_check(only_spot, Security.MARKET_DATA, "usdm") is not None


def test_a_bad_signature_hides_missing_permissions():
    key = ApiKey.hmac("p" * 64, "secret", permissions=frozenset())
    params = {"timestamp": str(NOW)}
    query = b"timestamp=" + str(NOW).encode() + b"&signature=" + b"0" * 64
    raises_code(-1022)(
        authenticate,
        KeyRegistry([key]),
        Security.TRADE,
        {"x-mbx-apikey": key.api_key},
        query,
        b"",
        params,
        NOW,
        "spot",
    )


# --- timing ---------------------------------------------------------------------------------

AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
OUTSIDE = "Timestamp for this request is outside of the recvWindow."


@pytest.mark.parametrize("product", ["spot", "usdm", "coinm"])
@pytest.mark.parametrize(
    ("offset_ms", "recv_window", "message"),
    [
        (999, None, None),
        (1000, None, AHEAD),
        (0, None, None),
        (-5000, None, None),
        (-5001, None, OUTSIDE),
        (-10_000, "10000", None),
        (-10_001, "10000", OUTSIDE),
        (0, "0", None),
        (-1, "0", OUTSIDE),
        (1000, "60000", AHEAD),
    ],
)
def test_timestamp_window_edges(product, offset_ms, recv_window, message):
    timestamp = str(NOW + offset_ms)
    if message is None:
        check_timestamp(timestamp, recv_window, NOW, product=product)
    else:
        raises_code(-1021, message)(check_timestamp, timestamp, recv_window, NOW, product=product)


@pytest.mark.parametrize(
    ("offset_us", "recv_window", "message"),
    [
        (999_999, None, None),
        (1_000_000, None, AHEAD),
        (-5_000_000, None, None),
        (-5_000_001, None, OUTSIDE),
        (-5_000_500, "5000.5", None),
        (-5_000_501, "5000.5", OUTSIDE),
        (-1, "0.001", None),
        (-2, "0.001", OUTSIDE),
    ],
)
def test_spot_takes_microseconds_and_fractional_windows(offset_us, recv_window, message):
    timestamp = str(NOW * 1000 + offset_us)
    assert len(timestamp) == 16
    if message is None:
        check_timestamp(timestamp, recv_window, NOW, product="spot")
    else:
        raises_code(-1021, message)(check_timestamp, timestamp, recv_window, NOW, product="spot")


def test_futures_timestamps_are_milliseconds_only():
    raises_code(-1021, AHEAD)(check_timestamp, str(NOW * 1000), None, NOW, product="usdm")
    raises_code(-1100)(check_timestamp, str(NOW), "5000.5", NOW, product="coinm")


def test_spot_recv_window_is_capped_at_60000():
    check_timestamp(str(NOW - 60_000), "60000", NOW, product="spot")
    check_timestamp(str(NOW), "60000.000", NOW, product="spot")
    for too_large in ("60001", "60000.001", "9999999"):
        raises_code(-1102, "'recvWindow' contains unexpected value. Cannot be greater than 60000.")(
            check_timestamp, str(NOW), too_large, NOW, product="spot"
        )
    check_timestamp(str(NOW - 9_000_000), "9999999", NOW, product="usdm")


@pytest.mark.parametrize(
    ("timestamp", "recv_window", "code"),
    [
        (None, None, -1102),
        ("", None, -1102),
        ("1.5", None, -1100),
        ("abc", None, -1100),
        ("-1", None, -1100),
        (" 1700000000000", None, -1100),
        ("1" * 21, None, -1100),
        (str(NOW), "5000.0001", -1100),
        (str(NOW), "-1", -1100),
        (str(NOW), "5e3", -1100),
    ],
)
def test_malformed_timing_parameters(timestamp, recv_window, code):
    raises_code(code)(check_timestamp, timestamp, recv_window, NOW, product="spot")


def test_illegal_timestamp_names_the_parameter_and_range():
    raises_code(
        -1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'."
    )(check_timestamp, "1.5", None, NOW, product="usdm")


# --- WebSocket API ---------------------------------------------------------------------------


def test_ws_api_payload_rendering():
    params = {
        "symbol": "１２３４５６",  # noqa: RUF001 (Binance's own non-ASCII example symbol)
        "timestamp": 1_645_423_376_532,
        "newOrderRespType": "ACK",
        "test": True,
        "flag": False,
        "price": "0.1",
        "signature": "ignored",
        "apiKey": "k",
    }
    assert (
        ws_api_payload(params)
        == (
            "apiKey=k&flag=false&newOrderRespType=ACK&price=0.1&symbol=１２３４５６"  # noqa: RUF001
            "&test=true&timestamp=1645423376532"
        ).encode()
    )


def test_ws_api_authentication_order():
    key, sign = signing_keys()["ed25519"]
    params: dict[str, object] = {"apiKey": key.api_key, "timestamp": NOW, "recvWindow": 100}
    params["signature"] = sign(ws_api_payload(params))
    keys = registry()
    assert authenticate_ws_api(keys, Security.USER_DATA, params, NOW, "spot") == key
    assert authenticate_ws_api(keys, Security.NONE, {}, NOW, "spot") is None
    raises_code(-1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.")(
        authenticate_ws_api, keys, Security.USER_DATA, {"timestamp": NOW}, NOW, "spot"
    )
    raises_code(-2015)(
        authenticate_ws_api, keys, Security.USER_DATA, {**params, "apiKey": "u" * 64}, NOW, "spot"
    )
    raises_code(-1021)(authenticate_ws_api, keys, Security.USER_DATA, params, NOW + 101, "spot")
    raises_code(-1022)(
        authenticate_ws_api, keys, Security.USER_DATA, {**params, "recvWindow": 99}, NOW, "spot"
    )
    unsigned = {name: value for name, value in params.items() if name != "signature"}
    raises_code(-1102)(authenticate_ws_api, keys, Security.USER_DATA, unsigned, NOW, "spot")
    assert authenticate_ws_api(keys, Security.USER_STREAM, unsigned, NOW, "usdm") == key
