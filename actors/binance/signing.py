"""Request signatures: HMAC-SHA256, Ed25519 and RSA, with the key type read from the secret.

What Binance signs:

* REST: the query string exactly as sent, immediately followed by the body exactly as sent,
  with no separator (:func:`rest_payload`). Since 2026-01-15 Spot requires the bytes to be
  percent-encoded before signing, which signing the wire bytes achieves. ``signature`` goes
  last and is not part of the payload.
* WebSocket API: every param except ``signature``, sorted by name, joined as ``k=v`` with
  ``&``, **not** percent-encoded, as UTF-8 (:func:`ws_api_payload`).

Signatures: HMAC is lowercase hex (64 characters); Ed25519 and RSA (RSASSA-PKCS1-v1_5 with
SHA-256) are standard base64 with padding, which REST callers must percent-encode
(``+`` ``/`` ``=``). Binance recommends Ed25519 and requires it for the WS-API
``session.logon``.

Secrets never appear in reprs, ``str()`` or exception messages, and exceptions raised here
never chain the exceptions of the parsing libraries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping

import attrs
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from actors.config import KeyType

__all__ = [
    "Signer",
    "SigningKeyError",
    "load_signer",
    "rest_payload",
    "ws_api_payload",
]

#: The command that turns an encrypted PEM into the unencrypted one Binance signing needs.
DECRYPT_HINT = "openssl pkey -in key.pem -out key-plain.pem"
_RSA_NOTICE = (
    "RSA keys sign REST and WS-API requests, trading included, but Binance recommends "
    "Ed25519 (faster, 64-byte signatures) and requires it for WS-API session.logon; "
    "generate one with `openssl genpkey -algorithm ed25519 -out key.pem`"
)
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----", re.DOTALL)
_SEED_BYTES = 32


class SigningKeyError(ValueError):
    """The API secret is not a key tern can sign with. The message says why and what to do;
    it never contains the secret."""


@attrs.frozen(eq=False, repr=False)
class Signer:
    """Signs Binance request payloads with one key.

    Build it with :func:`load_signer`. ``repr()`` and ``str()`` show the key type and, for
    asymmetric keys, a short fingerprint of the public key, never the secret.

    Attributes:
        key_type: HMAC, ED25519 or RSA.
        notices: advice for the operator (e.g. RSA works, Ed25519 is recommended).
    """

    key_type: KeyType
    _key: bytes | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey = attrs.field(alias="key")
    notices: tuple[str, ...] = ()

    def sign(self, payload: bytes) -> str:
        """The signature of ``payload``: lowercase hex for HMAC, base64 for Ed25519 and RSA."""
        key = self._key
        if isinstance(key, bytes):
            return hmac.new(key, payload, hashlib.sha256).hexdigest()
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return base64.b64encode(key.sign(payload)).decode("ascii")
        raw = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode("ascii")

    def verify(self, payload: bytes, signature: str) -> bool:
        """Whether ``signature`` is this key's signature of ``payload`` (HMAC hex compares
        case-insensitively, as Binance does)."""
        key = self._key
        if isinstance(key, bytes):
            expected = hmac.new(key, payload, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, signature.lower())
        try:
            raw = base64.b64decode(signature, validate=True)
            if isinstance(key, ed25519.Ed25519PrivateKey):
                key.public_key().verify(raw, payload)
            else:
                key.public_key().verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    @property
    def can_logon(self) -> bool:
        """Whether the key may authenticate a WS-API session (``session.logon``): Ed25519 only."""
        return self.key_type is KeyType.ED25519

    def public_key_pem(self) -> str | None:
        """The public key to register with Binance (PEM), or None for HMAC."""
        if isinstance(self._key, bytes):
            return None
        return (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def __repr__(self) -> str:
        if isinstance(self._key, bytes):
            return "Signer(key_type=hmac)"
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        fingerprint = hashlib.sha256(der).hexdigest()[:16]
        return f"Signer(key_type={self.key_type.value}, public_key_sha256={fingerprint})"

    __str__ = __repr__


def load_signer(secret: str, key_type: KeyType | None = None) -> Signer:
    """A :class:`Signer` for ``secret``, its key type detected from the secret's form.

    Recognised forms, in order:

    1. A PEM private key: PKCS#8 (``BEGIN PRIVATE KEY``) Ed25519 or RSA, PKCS#1
       (``BEGIN RSA PRIVATE KEY``) or unencrypted OpenSSH. Line breaks written as ``\\n``
       (as ``.env`` files often hold them) and PEMs collapsed onto one line are repaired.
    2. The base64 body of such a PEM without its header lines (DER).
    3. A raw Ed25519 seed: 32 bytes in canonical base64 (44 characters ending in ``=``).
       Binance HMAC secrets (64 letters and digits) never take this form.
    4. Anything else is an HMAC secret, unless ``key_type`` says otherwise.

    ``key_type`` decides only when the secret cannot tell: with ``KeyType.ED25519`` a seed may
    also be unpadded base64, 64 hex digits, or 64 bytes (seed + public key). ``KeyType.HMAC``
    (the config default) never overrides a recognised private key. An explicit RSA or ED25519
    that contradicts the key found is an error.

    Raises:
        SigningKeyError: the secret is empty, an encrypted PEM (the message gives the
            ``openssl`` command that decrypts it), a public key, a damaged PEM, a key of an
            algorithm Binance does not take, a seed of the wrong length, or not printable
            ASCII where an HMAC secret is expected.
    """
    if not isinstance(secret, str):
        raise SigningKeyError(f"the API secret must be text, not {type(secret).__name__}")
    text = secret.strip()
    if not text:
        raise SigningKeyError("the API secret is empty")
    key = _from_pem(text) if "-----BEGIN" in text else _from_der(text)
    if key is None:
        key = _from_canonical_seed(text)
    if key is None:
        if key_type is KeyType.ED25519:
            key = _from_seed(text)
        elif key_type is KeyType.RSA:
            raise SigningKeyError(
                "key_type is rsa, but the API secret is not an RSA private key: give the "
                "PEM (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)"
            )
        else:
            return Signer(KeyType.HMAC, key=_hmac_key(text))
    found = KeyType.ED25519 if isinstance(key, ed25519.Ed25519PrivateKey) else KeyType.RSA
    if key_type in (KeyType.ED25519, KeyType.RSA) and key_type is not found:
        raise SigningKeyError(
            f"key_type is {key_type.value}, but the API secret is an {found.value} private key"
        )
    if isinstance(key, rsa.RSAPrivateKey):
        notices = [_RSA_NOTICE]
        if not 2048 <= key.key_size <= 4096:
            notices.append(
                f"this RSA key has {key.key_size} bits; Binance Spot accepts 2048 to 4096 bits"
            )
        return Signer(KeyType.RSA, key=key, notices=tuple(notices))
    return Signer(KeyType.ED25519, key=key)


def rest_payload(query: bytes, body: bytes) -> bytes:
    """What Binance signs for a REST request: ``query`` then ``body``, no separator.

    Pass both exactly as they go on the wire (percent-encoded, without the ``?``, without
    ``signature``); either may be empty.

    Raises:
        ValueError: ``query`` starts with ``?``, or either part already holds ``signature``.
    """
    if query.startswith(b"?"):
        raise ValueError("pass the query string without its leading '?'")
    for part in (query, body):
        if any(item.startswith(b"signature=") for item in part.split(b"&")):
            raise ValueError("the signed payload must not contain the signature parameter")
    return query + body


def ws_api_payload(params: Mapping[str, str | int | bool]) -> bytes:
    """What Binance signs for a WebSocket API request: every param but ``signature``,
    sorted by name, as ``k=v`` joined by ``&``, unencoded, UTF-8.

    Values are written as the JSON request carries them: strings as they are (send decimals
    as strings so the JSON and the signature agree), integers in decimal, booleans as
    ``true``/``false``.

    Raises:
        TypeError: a value is of another type (float, None, list, ...), which has no single
            textual form Binance would agree with.
    """
    items = []
    for name in sorted(params):
        if name == "signature":
            continue
        value = params[name]
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int)):
            text = str(value)
        else:
            raise TypeError(
                f"WS-API param {name!r} is a {type(value).__name__}; pass a str, int or bool"
            )
        items.append(f"{name}={text}")
    return "&".join(items).encode("utf-8")


def _from_pem(text: str) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    if "\\n" in text and "\n" not in text:
        text = text.replace("\\n", "\n")
    match = _PEM.search(text)
    if match is None:
        raise SigningKeyError(
            "the API secret starts like a PEM key but has no matching -----END ...----- line"
        )
    label, body, end_label = match.group(1), match.group(2), match.group(3)
    if label != end_label:
        raise SigningKeyError(f"the PEM key begins as {label} but ends as {end_label}")
    if "ENCRYPTED" in label or "Proc-Type:" in body:  # PKCS#8 or legacy OpenSSL encryption
        raise SigningKeyError(
            "the private key PEM is encrypted (password-protected); Binance signing needs the "
            f"unencrypted key. Decrypt it with `{DECRYPT_HINT}` and use key-plain.pem "
            "(keep it as private as the original)"
        )
    if "PUBLIC KEY" in label:
        raise SigningKeyError(
            f"the API secret is a public key (BEGIN {label}): tern needs the private key; the "
            "public key is what you register with Binance"
        )
    if label not in ("PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY"):
        raise SigningKeyError(
            f"the API secret is a {label} PEM; Binance takes Ed25519 or RSA private keys "
            "(BEGIN PRIVATE KEY) or an HMAC secret"
        )
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError(f"the {label} PEM is damaged: its body is not valid base64") from None
    if label == "OPENSSH PRIVATE KEY":
        return _from_openssh(text)
    key = _load_der(der)
    if key is None:
        raise SigningKeyError(f"the {label} PEM is damaged: its contents are not a private key")
    return key


def _from_openssh(text: str) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_ssh_private_key(text.encode("ascii"), password=None)
    except TypeError:
        raise SigningKeyError(
            "the OpenSSH private key is encrypted; remove its passphrase "
            "(`ssh-keygen -p -f key`) or convert it to an unencrypted PKCS#8 PEM"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError("the OPENSSH PRIVATE KEY PEM could not be read") from None
    return _accepted(key)


def _from_der(text: str) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | None:
    """A key from a PEM body without its header lines, or None if it is not one."""
    if not text.startswith("M"):  # base64 of a DER SEQUENCE (0x30) starts with "M"
        return None
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return _load_der(der)


def _load_der(der: bytes) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | None:
    try:
        key = serialization.load_der_private_key(der, password=None)
    except TypeError:  # an EncryptedPrivateKeyInfo
        raise SigningKeyError(
            "the private key is encrypted (password-protected); Binance signing needs the "
            f"unencrypted key. Decrypt it with `{DECRYPT_HINT}`"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        return None
    return _accepted(key)


def _accepted(key: object) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    if isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey)):
        return key
    kind = type(key).__name__.removeprefix("_").removesuffix("PrivateKey")
    kind = {"EllipticCurve": "EC"}.get(kind, kind) or "unknown"
    raise SigningKeyError(
        f"the API secret is a private key of an algorithm Binance does not take ({kind}); "
        "use Ed25519, RSA or an HMAC secret"
    )


def _from_canonical_seed(text: str) -> ed25519.Ed25519PrivateKey | None:
    """An Ed25519 key from a seed in canonical base64 (44 characters with ``=``), else None."""
    if len(text) != 44 or not text.endswith("="):
        return None
    try:
        seed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(seed) != _SEED_BYTES:
        return None
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed)


def _from_seed(text: str) -> ed25519.Ed25519PrivateKey:
    """An Ed25519 key from a seed the caller says is one (``key_type = "ed25519"``)."""
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        raw = bytes.fromhex(text)
    else:
        compact = "".join(text.split())
        padded = compact + "=" * (-len(compact) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            try:
                raw = base64.urlsafe_b64decode(padded)
            except (binascii.Error, ValueError):
                raise SigningKeyError(
                    "key_type is ed25519, but the API secret is neither a PEM private key nor "
                    "a base64 or hex seed"
                ) from None
    if len(raw) == 2 * _SEED_BYTES:  # seed followed by its public key (libsodium's form)
        key = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:_SEED_BYTES])
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        if public == raw[_SEED_BYTES:]:
            return key
        raise SigningKeyError(
            "key_type is ed25519 and the secret decodes to 64 bytes, but its second half is "
            "not the public key of its first (a seed is 32 bytes)"
        )
    if len(raw) != _SEED_BYTES:
        raise SigningKeyError(
            f"key_type is ed25519, but the secret decodes to {len(raw)} bytes; an Ed25519 "
            "seed is 32 bytes (or give the PEM from `openssl genpkey -algorithm ed25519`)"
        )
    return ed25519.Ed25519PrivateKey.from_private_bytes(raw)


def _hmac_key(text: str) -> bytes:
    if not text.isascii():
        raise SigningKeyError(
            "an HMAC secret is ASCII (Binance issues 64 letters and digits); this one has a "
            "non-ASCII character"
        )
    if not text.isprintable() or any(c.isspace() for c in text):
        raise SigningKeyError(
            "an HMAC secret has no spaces or control characters (Binance issues 64 letters "
            "and digits); check how it was copied"
        )
    return text.encode("ascii")
