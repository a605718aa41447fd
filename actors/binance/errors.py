"""Binance's answers that are not successes, parsed once at the edge into :class:`BinanceError`.

Every non-2xx REST answer, and every request that got no answer at all, becomes one
:class:`BinanceError` with a :class:`ErrorKind` that says what the caller may do next. Nobody
downstream re-reads an error code out of a message string, and nobody has to guess whether an
order exists.

The classification depends on whether the request could change state at Binance
(``mutating``: every method but ``GET``). An ambiguous failure of a read is simply retried;
the same failure of an order placement or cancel leaves its outcome unknown, and is never
retried blindly nor reported as a rejection (DESIGN section 3).

=====================  ==========================================================================
kind                   when
=====================  ==========================================================================
``RETRYABLE``          the request certainly did not take effect, or it is a read: ``-1001``
                       DISCONNECTED, ``-1004`` SERVER_BUSY, ``-1008`` throttled (any method);
                       on reads also ``-1000``, ``-1006``, ``-1007``, HTTP 408/5xx without a
                       code, timeouts and broken connections; on any method a connection that
                       failed before a byte of the request was written.
``RATE_LIMITED``       HTTP 429 (``-1003`` weight, ``-1015`` orders): refused before it was
                       processed; the limiter pauses the pool for ``Retry-After``, reads are
                       sent again after the pause.
``IP_BANNED``          HTTP 418: refused; the pool is halted until the ban ends, nothing is
                       retried.
``TIMESTAMP``          ``-1021`` (outside recvWindow) and ``-5028`` (outside the matching
                       engine's recvWindow): refused at receipt; resynchronise the clock and
                       send once more with a fresh timestamp.
``FINAL``              Binance refused the request and nothing happened: every other code
                       (``-1002``, ``-1013`` filters, ``-1014``, ``-1016``, ``-1020``, ``-1022``,
                       ``-11xx`` parameters, ``-2010`` new order rejected, ``-2011`` cancel
                       rejected, ``-2013``..``-2039``, ``-4xxx``, ``-5xxx``), and HTTP 4xx
                       without a code (403 WAF block, 401, 404, 405...).
``UNKNOWN_OUTCOME``    a mutating request that may or may not have taken effect: ``-1000``
                       UNKNOWN, ``-1006`` UNEXPECTED_RESP, ``-1007`` TIMEOUT, HTTP 408 or 5xx
                       without a certain code (e.g. 503 "Unknown error, please check your
                       request or try again later."), no answer within the timeout, or a
                       connection that broke after the request was written.
=====================  ==========================================================================

Bodies that are not Binance's ``{"code", "msg"}`` JSON (a WAF or CDN HTML page, an empty body
from a load balancer, plain text) are described in the message instead of breaking the parser.
"""

from __future__ import annotations

import email.utils
import enum
import re
from collections.abc import Mapping

import orjson

__all__ = [
    "CERTAIN_FAILURE_CODES",
    "RATE_LIMIT_CODES",
    "TIMESTAMP_CODES",
    "UNKNOWN_OUTCOME_CODES",
    "BinanceError",
    "ErrorKind",
    "classify",
    "select_headers",
]


class ErrorKind(enum.Enum):
    """What a failed request leaves behind, and what may be done about it (module table)."""

    RETRYABLE = "retryable"
    RATE_LIMITED = "rate_limited"
    IP_BANNED = "ip_banned"
    TIMESTAMP = "timestamp"
    FINAL = "final"
    UNKNOWN_OUTCOME = "unknown_outcome"


#: Codes that mean the request was not carried out and may be sent again after a pause.
CERTAIN_FAILURE_CODES = frozenset({-1001, -1004, -1008})
#: Codes that leave a mutating request's outcome unknown (reads are retried).
UNKNOWN_OUTCOME_CODES = frozenset({-1000, -1006, -1007})
#: Rate-limit codes (HTTP 429 / 418).
RATE_LIMIT_CODES = frozenset({-1003, -1015})
#: Timestamp codes: resynchronise and send once more.
TIMESTAMP_CODES = frozenset({-1021, -5028})

_BANNED_UNTIL = re.compile(r"banned until (\d{10,16})")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_SNIPPET = 200


def classify(status: int, code: int | None, *, mutating: bool) -> ErrorKind:
    """The :class:`ErrorKind` of an HTTP answer ``status`` carrying Binance ``code`` (None
    when the body held none) to a request that could (``mutating``) or could not change state.

    ``status`` 0 means no answer: the caller knows whether the request was written, see
    :meth:`BinanceError.no_answer`.
    """
    if status == 418:
        return ErrorKind.IP_BANNED
    if status == 409:
        # Partial success (Spot cancelReplace, -2021): one side took effect. Never a plain
        # rejection; the caller reads the body's ``data`` to learn which side did.
        return ErrorKind.UNKNOWN_OUTCOME if mutating else ErrorKind.FINAL
    if status == 429 or (code in RATE_LIMIT_CODES and 400 <= status < 500):
        return ErrorKind.RATE_LIMITED
    if code is not None:
        if code in TIMESTAMP_CODES:
            return ErrorKind.TIMESTAMP
        if code in CERTAIN_FAILURE_CODES:
            return ErrorKind.RETRYABLE
        if code in UNKNOWN_OUTCOME_CODES:
            return ErrorKind.UNKNOWN_OUTCOME if mutating else ErrorKind.RETRYABLE
        if status >= 500:
            # A 5xx carrying a rejection code is odd; only a read may safely be repeated.
            return ErrorKind.UNKNOWN_OUTCOME if mutating else ErrorKind.RETRYABLE
        return ErrorKind.FINAL
    if status == 408 or status >= 500 or status == 0:
        return ErrorKind.UNKNOWN_OUTCOME if mutating else ErrorKind.RETRYABLE
    return ErrorKind.FINAL


def select_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The response headers worth keeping: ``x-mbx-*``, ``date`` and ``retry-after``, with
    lower-case names."""
    kept = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("x-mbx-") or lower in ("date", "retry-after"):
            kept[lower] = value
    return kept


class BinanceError(Exception):
    """A REST request that did not succeed: Binance's answer, or the lack of one.

    Build it with :meth:`from_response` or :meth:`no_answer`. The text never holds the
    request's parameters, key or signature: only the method, the path and what came back.

    Attributes:
        status: the HTTP status; 0 when no answer arrived.
        code: Binance's error code, when the body was Binance's error JSON.
        message: Binance's ``msg``, or a description of what came back (non-JSON body,
            empty body, timeout, broken connection).
        body: the body as received (text, at most what Binance sent).
        headers: the response's ``x-mbx-*``, ``date`` and ``retry-after`` headers.
        kind: what the failure leaves behind (module table).
        method: the request's HTTP method.
        path: the request's path.
        written: False only when the request certainly never left this process (a
            connection that failed before a byte was written).
    """

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        body: str = "",
        headers: Mapping[str, str] | None = None,
        *,
        kind: ErrorKind,
        method: str = "",
        path: str = "",
        written: bool = True,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.headers = dict(headers or {})
        self.kind = kind
        self.method = method
        self.path = path
        self.written = written
        super().__init__(str(self))

    @classmethod
    def from_response(
        cls,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        *,
        method: str,
        path: str,
    ) -> BinanceError:
        """Parse a non-2xx answer. Never raises: an unreadable body becomes a message."""
        kept = select_headers(headers)
        text = body.decode("utf-8", errors="replace")
        code, message = _parse_body(status, body, headers)
        mutating = method.upper() != "GET"
        return cls(
            status,
            code,
            message,
            text,
            kept,
            kind=classify(status, code, mutating=mutating),
            method=method.upper(),
            path=path,
        )

    @classmethod
    def no_answer(cls, reason: str, *, written: bool, method: str, path: str) -> BinanceError:
        """No HTTP answer: a timeout or a connection failure, described by ``reason``.

        ``written`` says whether any of the request may have reached Binance. A request that
        never left is safe to send again whatever it does; one that left may have taken
        effect, so a mutating one's outcome is unknown.
        """
        verb = method.upper()
        if not written:
            kind = ErrorKind.RETRYABLE
            message = f"{reason}; the request was not sent"
        else:
            kind = classify(0, None, mutating=verb != "GET")
            message = f"{reason}; the request was sent, no answer came back"
        return cls(0, None, message, kind=kind, method=verb, path=path, written=written)

    # ----------------------------------------------------------------------- properties

    @property
    def mutating(self) -> bool:
        """Whether the request could change state at Binance (any method but GET)."""
        return self.method != "GET"

    @property
    def retry_after_s(self) -> float | None:
        """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), if any."""
        raw = self.headers.get("retry-after")
        if raw is None:
            return None
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        date = self.headers.get("date")
        try:
            now = email.utils.parsedate_to_datetime(date) if date else None
        except (TypeError, ValueError):
            now = None
        if now is None:
            return None
        return max(0.0, (when - now).total_seconds())

    @property
    def banned_until_ms(self) -> int | None:
        """For a 418: when the ban ends (server epoch ms), from Binance's message."""
        match = _BANNED_UNTIL.search(self.message)
        if match is None:
            return None
        value = int(match[1])
        return value // 1000 if value > 10**14 else value  # microseconds on Spot, if ever

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method else ""
        if self.status == 0:
            return f"{where}{self.message} ({self.kind.value})"
        code = f" {self.code}" if self.code is not None else ""
        return f"{where}HTTP {self.status}{code} {self.message} ({self.kind.value})"

    def __repr__(self) -> str:
        return (
            f"BinanceError(status={self.status}, code={self.code}, message={self.message!r}, "
            f"kind={self.kind.value}, method={self.method!r}, path={self.path!r})"
        )


def _parse_body(status: int, body: bytes, headers: Mapping[str, str]) -> tuple[int | None, str]:
    """Binance's ``(code, msg)``, or ``(None, description)`` for anything else."""
    stripped = body.strip()
    if stripped[:1] == b"{":
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            code = _as_code(data.get("code"))
            msg = data.get("msg")
            if code is not None:
                return code, msg if isinstance(msg, str) else ""
            return None, f"HTTP {status} with JSON that is not a Binance error: {_snippet(body)}"
    return None, _describe(status, stripped, headers)


def _as_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _describe(status: int, body: bytes, headers: Mapping[str, str]) -> str:
    """A message for a body that is not Binance's error JSON."""
    content_type = ""
    for name, value in headers.items():
        if name.lower() == "content-type":
            content_type = value.split(";")[0].strip()
    if not body:
        what = f"HTTP {status} with an empty body"
    else:
        kind = content_type or "unknown content type"
        title = _TITLE.search(body)
        shown = title[1].decode("utf-8", errors="replace").strip() if title else _snippet(body)
        what = f"HTTP {status} with a non-JSON body ({kind}, {len(body)} bytes): {shown!r}"
    if status == 403:
        return (
            f"{what}. Binance's web application firewall (WAF) blocked the request before it "
            "was processed; SQL-like words in parameters can trigger it"
        )
    if status == 408 or status >= 500:
        return f"{what}. A gateway in front of Binance answered; the outcome is not known"
    return what


def _snippet(body: bytes) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."
