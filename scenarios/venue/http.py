"""Requests and responses as the venue's handlers see them (the ASGI server frames the bytes).

Binance reads parameters from the query string and from an
``application/x-www-form-urlencoded`` body on every method, in any order; when a parameter is
in both, the query string wins. Signatures are checked over the raw bytes as received, so the
raw query string and body are kept next to the parsed parameters.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from scenarios.venue.errors import VenueError


@attrs.frozen
class Request:
    """One HTTP request.

    Attributes:
        method: upper-case HTTP method.
        path: the path without the query string.
        raw_query: the query string bytes exactly as received (no leading ``?``).
        raw_body: the body bytes exactly as received.
        params: parameters from the body, overridden by the query string.
        headers: header names in lower case.
        client: the client's address (for IP rate limits).
    """

    method: str
    path: str
    raw_query: bytes
    raw_body: bytes
    params: Mapping[str, str]
    headers: Mapping[str, str]
    client: str

    def get(self, name: str) -> str | None:
        """A parameter, or None when absent (an empty value counts as absent)."""
        value = self.params.get(name)
        return value if value else None


def parse_params(raw_query: bytes, raw_body: bytes, content_type: str) -> dict[str, str]:
    """Merge body and query parameters the way Binance does (the query string wins).

    Raises:
        VenueError: -1100 when the bytes are not valid UTF-8 form data; -1101 when a
            parameter appears twice in the query string or twice in the body.
    """
    params: dict[str, str] = {}
    sources = []
    if raw_body and content_type.split(";")[0].strip() in ("", "application/x-www-form-urlencoded"):
        sources.append(raw_body)
    sources.append(raw_query)
    for source in sources:
        try:
            text = source.decode("utf-8")
        except UnicodeDecodeError:
            raise VenueError.illegal_characters("(request)") from None
        seen: set[str] = set()
        for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
            if name in seen:
                raise VenueError.duplicate_parameter()
            seen.add(name)
            params[name] = value
    return params


@attrs.frozen
class Response:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(
        cls, payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        return cls(status, orjson.dumps(payload), tuple((headers or {}).items()))

    @classmethod
    def error(cls, error: VenueError, headers: Mapping[str, str] | None = None) -> Response:
        merged = dict(headers or {})
        merged.update(error.headers or {})
        return cls.json(error.body(), status=error.http_status, headers=merged)


async def read_body(receive: Any, limit: int = 1 << 20) -> bytes:
    """Read an ASGI request body (bounded; Binance rejects oversized requests)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise VenueError.too_many_parameters()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def send_response(send: Any, response: Response) -> None:
    # A Content-Length spares chunked framing: its terminating chunk costs hypercorn a
    # socket write of its own.
    headers = [
        (b"content-type", b"application/json;charset=UTF-8"),
        (b"content-length", str(len(response.body)).encode()),
    ]
    headers.extend((name.encode(), value.encode()) for name, value in response.headers)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
