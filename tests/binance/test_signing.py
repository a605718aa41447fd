"""Signing: Binance's published vectors (and its documented doc bugs), key detection, bad keys,
payload helpers, and sign/verify round trips."""

from __future__ import annotations

import base64
import json
import os
import random
import traceback
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.binance.signing import (
    DECRYPT_HINT,
    Signer,
    SigningKeyError,
    load_signer,
    rest_payload,
    ws_api_payload,
)
from actors.config import KeyType

VECTORS_FILE = Path(
    os.environ.get(
        "TERN_SIGNATURE_VECTORS",
        Path(__file__).resolve().parents[3] / "shared" / "vectors" / "signatures.json",
    )
)
VECTORS = {v["id"]: v for v in json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]}
FIX = VECTORS["spot-fix-logon-ed25519"]

# --- keys made once per run -----------------------------------------------------------------

ED_KEY = ed25519.Ed25519PrivateKey.generate()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NO_ENCRYPTION = serialization.NoEncryption()


def pem(key, fmt=serialization.PrivateFormat.PKCS8, encryption=NO_ENCRYPTION) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode("ascii")


def seed_of(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, NO_ENCRYPTION
    )


ED_PEM = pem(ED_KEY)
RSA_PEM = pem(RSA_KEY)


# --- the vectors -----------------------------------------------------------------------------

VERIFIED = sorted(i for i, v in VECTORS.items() if v["verified"])
#: Vectors whose signature Binance printed wrongly; tested as the docs are wrong.
DOC_BUGS = {"coinm-rest-hmac-query-DOC-BUG", "spot-rest-ed25519-ascii-DOC-BUG"}
#: Vectors whose private key Binance never published: only their shape can be checked.
UNPUBLISHED = {i for i, v in VECTORS.items() if not v["verified"] and i not in DOC_BUGS}


def test_every_vector_is_tested():
    assert VERIFIED, "no verified vectors found"
    assert set(VERIFIED) | DOC_BUGS | UNPUBLISHED == set(VECTORS)
    for vector_id in UNPUBLISHED:
        assert VECTORS[vector_id].get("private_key_pem") is None, vector_id


def signer_for(vector) -> Signer:
    return load_signer(vector.get("secret") or vector["private_key_pem"])


@pytest.mark.parametrize("vector_id", VERIFIED)
def test_verified_vectors_are_reproduced(vector_id):
    vector = VECTORS[vector_id]
    signer = signer_for(vector)
    expected_type = KeyType.ED25519 if vector["key_type"] == "ED25519" else KeyType.HMAC
    assert signer.key_type is expected_type
    payload = vector["payload"].encode("utf-8")
    assert signer.sign(payload) == vector["expected_signature"]
    assert signer.verify(payload, vector["expected_signature"])
    assert signer.verify(payload, vector["expected_signature"].upper()) is (
        expected_type is KeyType.HMAC  # Binance compares HMAC hex case-insensitively
    )


REST_SPLITS = [
    # (vector, query as sent, body as sent): mixed examples split where the docs split them.
    ("spot-rest-hmac-ascii", None, None),
    ("spot-rest-hmac-nonascii-percent-encoded", None, None),
    ("usdm-rest-hmac-query", None, None),
    (
        "spot-rest-hmac-mixed-query-body-historical",
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
        "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
    ),
    (
        "usdm-rest-hmac-mixed",
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC",
        "quantity=1&price=9000&recvWindow=5000&timestamp= 1591702613943",  # the docs' space
    ),
    (
        "coinm-rest-hmac-mixed",
        "symbol=BTCUSD_200925&side=BUY&type=LIMIT&timeInForce=GTC",
        "quantity=1&price=9000&recvWindow=5000&timestamp= 1591702613943",
    ),
]


@pytest.mark.parametrize(("vector_id", "query", "body"), REST_SPLITS)
def test_rest_vectors_through_rest_payload(vector_id, query, body):
    vector = VECTORS[vector_id]
    if query is None:  # all in the query string, or (USD-M example 2) all in the body
        payloads = [
            rest_payload(vector["payload"].encode(), b""),
            rest_payload(b"", vector["payload"].encode()),
        ]
    else:
        payloads = [rest_payload(query.encode(), body.encode())]
    for payload in payloads:
        assert payload == vector["payload"].encode()
        assert signer_for(vector).sign(payload) == vector["expected_signature"]


WS_VECTORS = [i for i in VERIFIED if i.startswith("spot-wsapi-")]


@pytest.mark.parametrize("vector_id", WS_VECTORS)
def test_ws_api_vectors_through_ws_api_payload(vector_id):
    vector = VECTORS[vector_id]
    params = dict(item.split("=", 1) for item in vector["payload"].split("&"))
    params["timestamp"] = int(params["timestamp"])  # sent as a JSON integer
    shuffled = list(params.items())
    random.Random(vector_id).shuffle(shuffled)
    payload = ws_api_payload(dict(shuffled) | {"signature": "ignored"})
    assert payload == vector["payload"].encode("utf-8")  # raw UTF-8, not percent-encoded
    assert signer_for(vector).sign(payload) == vector["expected_signature"]


def test_doc_bug_coinm_example_signs_the_empty_string():
    bug = VECTORS["coinm-rest-hmac-query-DOC-BUG"]
    signer = signer_for(bug)
    assert signer.sign(bug["payload"].encode()) == bug["computed_signature"]
    assert signer.sign(bug["payload"].encode()) != bug["expected_signature"]
    assert signer.sign(b"") == bug["expected_signature"]
    assert not signer.verify(bug["payload"].encode(), bug["expected_signature"])


def test_doc_bug_mixed_examples_verify_only_with_the_stray_space():
    vector = VECTORS["usdm-rest-hmac-mixed"]
    without_space = vector["payload"].replace("timestamp= ", "timestamp=").encode()
    signature = signer_for(vector).sign(without_space)
    assert signature == "30baaf0fab549bbeda7f5ef201898b34122da25fd23c646cac2c529aebe670a4"
    assert signature != vector["expected_signature"]


def test_doc_bug_spot_rest_ed25519_example_is_an_rsa_signature():
    bug = VECTORS["spot-rest-ed25519-ascii-DOC-BUG"]
    printed = bug["expected_signature"]
    assert len(printed) == 343  # also short of one "=" of padding as printed
    raw = base64.b64decode(printed + "=", validate=True)
    assert len(raw) == 256  # RSA-2048; Ed25519 signatures are 64 bytes
    fix_signer = signer_for(FIX)
    ours = fix_signer.sign(bug["payload"].encode())
    assert len(ours) == 88
    assert len(base64.b64decode(ours)) == 64
    assert not fix_signer.verify(bug["payload"].encode(), bug["expected_signature"])


@pytest.mark.parametrize("vector_id", sorted(UNPUBLISHED))
def test_unpublished_key_vectors_have_the_shape_we_produce(vector_id):
    vector = VECTORS[vector_id]
    payload = vector["payload"].encode("utf-8")
    raw = base64.b64decode(vector["expected_signature"], validate=True)
    if vector["key_type"].startswith("RSA"):
        key = RSA_KEY if len(raw) == 256 else rsa.generate_private_key(65537, 8 * len(raw))
        ours = load_signer(pem(key)).sign(payload)
        assert len(ours) == len(vector["expected_signature"])  # same size key, same length
    else:
        assert len(raw) == 64
        assert len(load_signer(ED_PEM).sign(payload)) == len(vector["expected_signature"])
        # Not the FIX example key either (the vectors' notes say so).
        assert not signer_for(FIX).verify(payload, vector["expected_signature"])


# --- key detection ---------------------------------------------------------------------------

FIX_BODY = "MC4CAQAwBQYDK2VwBCIEIIJEYWtGBrhACmb9Dvy+qa8WEf0lQOl1s4CLIAB9m89u"
FIX_SEED = base64.b64decode(FIX_BODY)[-32:]
FIX_PAYLOAD = FIX["payload"].encode()


@pytest.mark.parametrize(
    ("secret", "key_type"),
    [
        (FIX["private_key_pem"], None),
        (FIX["private_key_pem"], KeyType.HMAC),  # the config default never overrides a key
        (FIX["private_key_pem"], KeyType.ED25519),
        (FIX["private_key_pem"].replace("\n", "\\n"), None),  # a .env file's escaped newlines
        (" ".join(FIX["private_key_pem"].split("\n")), None),  # collapsed onto one line
        (FIX_BODY, None),  # the PEM body without its header lines
        (base64.b64encode(FIX_SEED).decode(), None),  # a raw seed, canonical base64
        (base64.b64encode(FIX_SEED).decode().rstrip("="), KeyType.ED25519),
        (FIX_SEED.hex(), KeyType.ED25519),
        (base64.urlsafe_b64encode(FIX_SEED).decode(), KeyType.ED25519),
    ],
)
def test_every_form_of_the_fix_key_signs_the_fix_vector(secret, key_type):
    signer = load_signer(secret, key_type)
    assert signer.key_type is KeyType.ED25519
    assert signer.can_logon
    assert signer.notices == ()
    assert signer.sign(FIX_PAYLOAD) == FIX["expected_signature"]
    assert signer.public_key_pem() == FIX["public_key_pem"]


def test_a_64_byte_seed_with_its_public_key_is_accepted_when_forced():
    public = ED_KEY.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    secret = base64.b64encode(seed_of(ED_KEY) + public).decode()
    assert (
        load_signer(secret, KeyType.ED25519).public_key_pem()
        == load_signer(ED_PEM).public_key_pem()
    )
    with pytest.raises(SigningKeyError, match="second half is not the public key"):
        load_signer(base64.b64encode(seed_of(ED_KEY) + bytes(32)).decode(), KeyType.ED25519)


def test_openssh_ed25519_key():
    secret = pem(ED_KEY, serialization.PrivateFormat.OpenSSH)
    assert load_signer(secret).public_key_pem() == load_signer(ED_PEM).public_key_pem()


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, "pkcs1"])
def test_rsa_keys_sign_with_a_notice_recommending_ed25519(fmt):
    secret = (
        pem(RSA_KEY, serialization.PrivateFormat.TraditionalOpenSSL) if fmt == "pkcs1" else RSA_PEM
    )
    assert ("RSA PRIVATE KEY" in secret) is (fmt == "pkcs1")
    signer = load_signer(secret)
    assert signer.key_type is KeyType.RSA
    assert not signer.can_logon
    assert len(signer.notices) == 1
    assert "Ed25519" in signer.notices[0]
    assert "trading" in signer.notices[0]
    signature = signer.sign(b"symbol=BTCUSDT&timestamp=1")
    assert len(base64.b64decode(signature)) == 256
    assert signer.verify(b"symbol=BTCUSDT&timestamp=1", signature)


def test_small_rsa_key_gets_a_size_notice():
    signer = load_signer(pem(rsa.generate_private_key(65537, 1024)))
    assert any("1024 bits" in notice for notice in signer.notices)


def test_hmac_is_the_default_for_everything_else():
    for secret in (VECTORS["usdm-rest-hmac-query"]["secret"], "short", "M" * 64):
        signer = load_signer(secret)
        assert signer.key_type is KeyType.HMAC
        assert signer.public_key_pem() is None
        assert not signer.can_logon


# --- bad keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "key_type", "message"),
    [
        ("", None, "empty"),
        ("  \n ", None, "empty"),
        (
            pem(ED_KEY, encryption=serialization.BestAvailableEncryption(b"pw")),
            None,
            DECRYPT_HINT,
        ),
        (
            pem(
                RSA_KEY,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            None,
            DECRYPT_HINT,
        ),
        (
            base64.b64encode(
                ED_KEY.private_bytes(
                    serialization.Encoding.DER,
                    serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(b"pw"),
                )
            ).decode(),
            None,
            DECRYPT_HINT,
        ),
        (FIX["public_key_pem"], None, "is a public key"),
        ("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----", None, "not valid base64"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", None, "not a private key"),
        ("-----BEGIN PRIVATE KEY-----\nMC4CAQAw", None, "no matching -----END"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----",
            None,
            "ends as RSA PRIVATE KEY",
        ),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", None, "CERTIFICATE PEM"),
        (pem(ec.generate_private_key(ec.SECP256R1())), None, "(EC)"),
        (base64.b64encode(bytes(31)).decode(), KeyType.ED25519, "decodes to 31 bytes"),
        (base64.b64encode(bytes(33)).decode(), KeyType.ED25519, "decodes to 33 bytes"),
        ("not base64 at all!", KeyType.ED25519, "neither a PEM private key nor"),
        ("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP", KeyType.RSA, "not an RSA private key"),
        (RSA_PEM, KeyType.ED25519, "key_type is ed25519, but the API secret is an rsa"),
        (ED_PEM, KeyType.RSA, "key_type is rsa, but the API secret is an ed25519"),
        ("s\u00e9cret", None, "non-ASCII"),
        ("two words", None, "no spaces"),
    ],
)
def test_bad_keys_get_specific_messages(secret, key_type, message):
    with pytest.raises(SigningKeyError) as caught:
        load_signer(secret, key_type)
    assert message in str(caught.value)


def test_errors_and_reprs_never_show_the_secret():
    marker = "TOPSECRETMARKER"
    secrets = [
        f"{marker}\u00e9",  # non-ASCII HMAC
        f"{marker} {marker}",  # whitespace
        f"-----BEGIN PRIVATE KEY-----\n{marker}==\n-----END PRIVATE KEY-----",
        f"-----BEGIN PRIVATE KEY-----\nMC4C{marker}AAAA\n-----END PRIVATE KEY-----",
    ]
    for secret in secrets:
        with pytest.raises(SigningKeyError) as caught:
            load_signer(secret, KeyType.ED25519)
        rendered = "".join(traceback.format_exception(caught.value))
        assert marker not in rendered
        assert marker not in repr(caught.value)
    seed_text = base64.b64encode(seed_of(ED_KEY)).decode()
    for secret, signer in [
        (marker * 4, load_signer(marker * 4)),
        (ED_PEM, load_signer(ED_PEM)),
        (seed_text, load_signer(seed_text)),
        (RSA_PEM, load_signer(RSA_PEM)),
    ]:
        for text in (repr(signer), str(signer), f"{signer}"):
            assert secret not in text
            assert marker not in text
            assert "PRIVATE" not in text
            assert text.startswith(f"Signer(key_type={signer.key_type.value}")


def test_signer_type_is_checked():
    with pytest.raises(SigningKeyError, match="must be text"):
        load_signer(b"bytes")  # type: ignore[arg-type]


# --- payload helpers ------------------------------------------------------------------------


def test_rest_payload_concatenates_without_separator():
    assert rest_payload(b"a=1&b=2", b"c=3") == b"a=1&b=2c=3"
    assert rest_payload(b"", b"") == b""


@pytest.mark.parametrize(
    ("query", "body"),
    [(b"?a=1", b""), (b"a=1&signature=x", b""), (b"", b"signature=x"), (b"a=1", b"b=2&signature=")],
)
def test_rest_payload_refuses_mistakes(query, body):
    with pytest.raises(ValueError, match=r"'\?'|signature"):
        rest_payload(query, body)


def test_ws_api_payload_values():
    payload = ws_api_payload(
        {"b": True, "a": 5, "C": "x y", "signature": "s", "d": False, "e": "\uff11"}
    )
    assert payload == "C=x y&a=5&b=true&d=false&e=\uff11".encode()  # code-point order


@pytest.mark.parametrize("value", [1.5, None, ["a"], {"a": 1}])
def test_ws_api_payload_refuses_ambiguous_values(value):
    with pytest.raises(TypeError, match="pass a str, int or bool"):
        ws_api_payload({"price": value})


# --- round trips ------------------------------------------------------------------------------

SIGNERS = {
    "hmac": load_signer(VECTORS["spot-rest-hmac-ascii"]["secret"]),
    "ed25519": load_signer(ED_PEM),
    "ed25519-seed": load_signer(base64.b64encode(seed_of(ED_KEY)).decode()),
    "rsa": load_signer(RSA_PEM),
}


@pytest.mark.parametrize("name", sorted(SIGNERS))
@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=512), other=st.binary(max_size=512))
def test_sign_verify_round_trip(name, payload, other):
    signer = SIGNERS[name]
    signature = signer.sign(payload)
    assert signer.verify(payload, signature)
    if other != payload:
        assert not signer.verify(other, signature)
    tampered = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert not signer.verify(payload, tampered)
    if signer.key_type is KeyType.HMAC:
        assert len(signature) == 64
        assert signature == signature.lower()
    else:
        assert base64.b64encode(base64.b64decode(signature)).decode() == signature


def test_ed25519_seed_and_pem_forms_sign_alike():
    assert SIGNERS["ed25519"].sign(b"x") == SIGNERS["ed25519-seed"].sign(b"x")


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(
            alphabet=st.characters(exclude_characters="=&", exclude_categories=("Cs",)),
            min_size=1,
            max_size=12,
        ),
        st.one_of(
            st.text(
                alphabet=st.characters(exclude_characters="&", exclude_categories=("Cs",)),
                max_size=20,
            ),
            st.integers(),
            st.booleans(),
        ),
        max_size=10,
    )
)
def test_ws_api_payload_is_sorted_and_complete(params):
    payload = ws_api_payload(params).decode("utf-8")
    names = [name for name in params if name != "signature"]
    if not names:
        assert payload == ""
        return
    pairs = [item.split("=", 1) for item in payload.split("&")]
    assert [name for name, _ in pairs] == sorted(names)
    for name, value in pairs:
        expected = params[name]
        if isinstance(expected, bool):
            expected = "true" if expected else "false"
        assert value == str(expected)
