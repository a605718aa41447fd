"""WebSocket connections to Binance, direct or through the client's HTTP(S) proxy.

A client's ``proxy_url`` (an ``http://`` or ``https://`` proxy, optionally with
``user:password@``, percent-encoded) applies to its REST requests and to its WebSocket
connections alike. trio-websocket has no proxy support, so :func:`open_websocket`, the one
door :mod:`actors.binance.streams` and :mod:`actors.binance.userdata` connect through, builds
the tunnel itself:

* without a proxy it *is* ``trio_websocket.open_websocket_url``, unchanged;
* with one it opens TCP to the proxy (TLS when the proxy is ``https://``), asks
  ``CONNECT host:port`` (``Proxy-Authorization: Basic`` when the URL carries credentials),
  requires a 2xx, wraps TLS to Binance for ``wss://`` (the certificate checked against
  Binance's host name, not the proxy's), then runs the WebSocket handshake over the tunnel
  (``trio_websocket.wrap_client_stream``). All of it, proxy legs included, is bounded by
  ``connect_timeout``; closing is bounded by ``disconnect_timeout``.

Failures take the direct path's shapes, so callers handle both alike: ``HandshakeError``
(the proxy's own failures as :class:`ProxyError`, whose message names the proxy, never its
password, the tunnel's target and the proxy's status), ``ConnectionTimeout`` (saying which
step did not answer), ``ConnectionRejected`` (Binance refused the WebSocket handshake, as
without a proxy) and ``DisconnectionTimeout``. A proxy's refusal is deliberately not a
``ConnectionRejected``: a proxy's 429 or 403 must not pass for Binance's rate limit or ban.
"""

from __future__ import annotations

import base64
import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import attrs
import outcome
import trio
from trio_websocket import (
    ConnectionTimeout,
    DisconnectionTimeout,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)

__all__ = ["ProxyError", "check_proxy_url", "open_websocket", "proxy_url_field", "shown_proxy_url"]

#: trio-websocket's own defaults, so that leaving an option out means the same either way.
MESSAGE_QUEUE_SIZE = 1
MAX_MESSAGE_SIZE = 2**20
RECEIVE_BUFFER_SIZE = 4 * 2**10

#: The proxy's answer to CONNECT (status line and headers) may not exceed this.
MAX_ANSWER_BYTES = 16 * 2**10
_READ_BYTES = 4096
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)? +(\d{3})(?: +([^\r\n]*))?")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


class ProxyError(HandshakeError):
    """The proxy could not be reached, failed, or refused to open the tunnel.

    Attributes:
        status: the proxy's HTTP status when it answered CONNECT with one (407, 403,
            502...), else None.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def shown_proxy_url(url: str | None) -> str | None:
    """``url`` fit to show: any password replaced by ``***``."""
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable proxy URL>"
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def check_proxy_url(url: str | None) -> None:
    """Raise ``ValueError`` (naming the URL without its password) unless ``url`` is None or
    an ``http://`` / ``https://`` proxy URL."""
    if url is not None:
        _Proxy.parse(url)


def proxy_url_field() -> Any:
    """The ``proxy_url`` field of a settings class: checked when built, shown without its
    password (stream and user-data settings share it)."""
    return attrs.field(
        default=None,
        validator=lambda _instance, _attribute, url: check_proxy_url(url),
        repr=lambda url: repr(shown_proxy_url(url)),
    )


def open_websocket(
    url: str,
    *,
    proxy_url: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float,
    disconnect_timeout: float,
    max_message_size: int = MAX_MESSAGE_SIZE,
    message_queue_size: int = MESSAGE_QUEUE_SIZE,
    receive_buffer_size: int | None = RECEIVE_BUFFER_SIZE,
) -> contextlib.AbstractAsyncContextManager[WebSocketConnection]:
    """A WebSocket connection to ``url`` for the duration of a block, through ``proxy_url``
    when given (see the module docstring).

    Args:
        url: a ``ws://`` or ``wss://`` URL.
        proxy_url: an ``http://`` or ``https://`` proxy, optionally ``user:password@``.
        ssl_context: for ``wss://`` and for an ``https://`` proxy (default: the system's
            trust store, as trio-websocket).
        connect_timeout / disconnect_timeout: bounds on opening (every step) and closing.
        max_message_size / message_queue_size / receive_buffer_size: as trio-websocket.

    Raises:
        ValueError: at once, for a URL that is not ``ws://``/``wss://`` or a bad proxy URL.
        HandshakeError: when the connection cannot be opened or closed (see the module
            docstring), :class:`ProxyError` when the proxy is the reason.
    """
    if proxy_url is None:
        return open_websocket_url(
            url,
            ssl_context,
            connect_timeout=connect_timeout,
            disconnect_timeout=disconnect_timeout,
            max_message_size=max_message_size,
            message_queue_size=message_queue_size,
            receive_buffer_size=receive_buffer_size,
        )
    return _open_through(
        _Target.parse(url),
        _Proxy.parse(proxy_url),
        ssl_context=ssl_context,
        connect_timeout=connect_timeout,
        disconnect_timeout=disconnect_timeout,
        max_message_size=max_message_size,
        message_queue_size=message_queue_size,
        receive_buffer_size=receive_buffer_size,
    )


# --- where to -------------------------------------------------------------------------------


class _Target:
    """Where a ``ws://``/``wss://`` URL leads, split as trio-websocket splits it."""

    __slots__ = ("authority", "host", "host_header", "port", "resource", "tls")

    def __init__(self, host: str, port: int, resource: str, tls: bool) -> None:
        self.host = host
        self.port = port
        self.resource = resource
        self.tls = tls
        name = f"[{host}]" if ":" in host else host
        self.authority = f"{name}:{port}"
        # trio-websocket's rule for the Host header.
        self.host_header = name if port in (80, 443) else self.authority

    @classmethod
    def parse(cls, url: str) -> _Target:
        parts = urlsplit(str(url))
        if parts.scheme not in ("ws", "wss"):
            raise ValueError('WebSocket URL scheme must be "ws:" or "wss:"')
        host = parts.hostname
        if not host:
            raise ValueError("URL host must not be None")
        tls = parts.scheme == "wss"
        port = parts.port if parts.port is not None else (443 if tls else 80)
        resource = parts.path or "/"
        if "?" in url:
            resource += "?" + parts.query
        return cls(host, port, resource, tls)


class _Proxy:
    """A parsed proxy URL. Its credentials never reach ``repr``, ``str`` or messages."""

    __slots__ = ("_authorization", "_secrets", "host", "port", "shown", "tls")

    def __init__(
        self, *, host: str, port: int, tls: bool, shown: str, user: str | None, password: str
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        #: How the proxy is named in messages: its URL with any password as ``***``.
        self.shown = shown
        self._authorization: bytes | None = None
        self._secrets: tuple[str, ...] = ()
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            self._authorization = f"Basic {token}".encode("ascii")
            self._secrets = tuple(s for s in (password, token) if s)

    def __repr__(self) -> str:
        return f"<proxy {self.shown}>"

    @property
    def has_credentials(self) -> bool:
        return self._authorization is not None

    @classmethod
    def parse(cls, url: str) -> _Proxy:
        shown = shown_proxy_url(url)
        try:
            parts = urlsplit(url.strip())
            port = parts.port
            raw_password = parts.password
        except ValueError:
            raise ValueError(f"proxy_url {shown!r} is not a valid URL") from None
        scheme = parts.scheme.lower()
        host = parts.hostname
        if scheme not in ("http", "https"):
            raise ValueError(f"proxy_url {shown!r} is not an http:// or https:// proxy URL")
        if not host:
            raise ValueError(f"proxy_url {shown!r} names no host")
        tls = scheme == "https"
        name = f"[{host}]" if ":" in host else host
        port = port if port is not None else (443 if tls else 80)
        # As httpx does for REST: credentials when the URL has a user or a password.
        has_login = bool(parts.username or raw_password)
        user = unquote(parts.username or "") if has_login else None
        password = unquote(raw_password or "")
        login = ""
        if has_login:
            login = f"{parts.username}:***@" if raw_password else f"{parts.username}@"
        shown_url = f"{scheme}://{login}{name}:{port}"
        proxy = cls(host=host, port=port, tls=tls, shown=shown_url, user=user, password=password)
        if raw_password:
            proxy._secrets = (*proxy._secrets, raw_password)
        return proxy

    def connect_request(self, target: _Target) -> bytes:
        lines = [
            f"CONNECT {target.authority} HTTP/1.1".encode("ascii"),
            f"Host: {target.authority}".encode("ascii"),
        ]
        if self._authorization is not None:
            lines.append(b"Proxy-Authorization: " + self._authorization)
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def scrub(self, text: str) -> str:
        """``text`` without any trace of the credentials (for text the proxy or the OS
        wrote)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


# --- the tunnel -----------------------------------------------------------------------------


class _Replay(trio.abc.Stream):
    """A stream that first returns bytes already read past the proxy's answer."""

    def __init__(self, stream: trio.abc.Stream, pending: bytes) -> None:
        self.stream = stream
        self._pending = pending

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if not self._pending:
            return await self.stream.receive_some(max_bytes)
        await trio.lowlevel.checkpoint()
        cut = len(self._pending) if max_bytes is None else max_bytes
        chunk, self._pending = self._pending[:cut], self._pending[cut:]
        return chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


def _why(exc: BaseException) -> str:
    """``BrokenResourceError`` says little; the error beneath it says what happened."""
    if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _printable(raw: bytes, limit: int = 120) -> str:
    return _UNPRINTABLE.sub("?", raw.decode("latin-1"))[:limit]


class _Dial:
    """One tunnel being built; remembers what is open so that a failure closes it, and the
    step under way so that a timeout can say which."""

    def __init__(self, target: _Target, proxy: _Proxy, ssl_context: ssl.SSLContext | None) -> None:
        self.target = target
        self.proxy = proxy
        self._ssl_context = ssl_context
        self.stream: trio.abc.Stream | None = None
        self.step = f"connecting to proxy {proxy.shown}"

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def tunnel(self) -> trio.abc.Stream:
        """The byte stream to the target: TCP to the proxy, its TLS, CONNECT, the target's
        TLS."""
        proxy, target = self.proxy, self.target
        try:
            self.stream = await trio.open_tcp_stream(proxy.host, proxy.port)
        except OSError as exc:
            raise ProxyError(
                proxy.scrub(f"cannot reach proxy {proxy.shown}: {_why(exc)}")
            ) from None
        if proxy.tls:
            self.step = f"in the TLS handshake with proxy {proxy.shown}"
            self.stream = await self._tls(proxy.host, proxy_side=True)
        self.step = f"waiting for proxy {proxy.shown} to answer CONNECT {target.authority}"
        try:
            await self.stream.send_all(proxy.connect_request(target))
            status, phrase, headers, rest = await self._answer()
        except (trio.BrokenResourceError, OSError) as exc:
            raise ProxyError(
                proxy.scrub(f"proxy {proxy.shown} dropped CONNECT {target.authority}: {_why(exc)}")
            ) from None
        if not 200 <= status < 300:
            raise ProxyError(self._refusal(status, phrase, headers), status=status)
        if rest:
            self.stream = _Replay(self.stream, rest)
        if target.tls:
            self.step = f"in the TLS handshake with {target.host} through proxy {proxy.shown}"
            self.stream = await self._tls(target.host, proxy_side=False)
        self.step = f"in the WebSocket handshake with {target.host} through proxy {proxy.shown}"
        return self.stream

    async def _tls(self, server_hostname: str, *, proxy_side: bool) -> trio.SSLStream:
        assert self.stream is not None
        tls = trio.SSLStream(
            self.stream, self._context(), server_hostname=server_hostname, https_compatible=True
        )
        self.stream = tls
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError as exc:
            if proxy_side:
                message = f"TLS with proxy {self.proxy.shown} failed: {_why(exc)}"
                raise ProxyError(self.proxy.scrub(message)) from None
            message = (
                f"TLS with {server_hostname} through proxy {self.proxy.shown} failed: {_why(exc)}"
            )
            raise HandshakeError(self.proxy.scrub(message)) from None
        return tls

    async def _answer(self) -> tuple[int, str, dict[str, str], bytes]:
        """The proxy's final answer to CONNECT: status, reason phrase, headers (lower-case
        names) and any bytes read past it. Informational (1xx) answers are skipped."""
        assert self.stream is not None
        buffer = b""
        while True:
            end = _END_OF_HEAD.search(buffer)
            if (end.end() if end is not None else len(buffer)) > MAX_ANSWER_BYTES:
                raise ProxyError(
                    f"proxy {self.proxy.shown} answered CONNECT with more than "
                    f"{MAX_ANSWER_BYTES} bytes of headers"
                )
            if end is None:
                chunk = await self.stream.receive_some(_READ_BYTES)
                if not chunk:
                    raise ProxyError(
                        f"proxy {self.proxy.shown} closed the connection without answering "
                        f"CONNECT {self.target.authority}"
                    )
                buffer += chunk
                continue
            head, buffer = buffer[: end.start()], buffer[end.end() :]
            first, *lines = re.split(rb"\r?\n", head)
            status_line = _STATUS_LINE.fullmatch(first)
            if status_line is None:
                raise ProxyError(
                    self.proxy.scrub(
                        f"proxy {self.proxy.shown} answered CONNECT with something other than "
                        f"HTTP: {_printable(first, 60)!r}"
                    )
                )
            status = int(status_line.group(1))
            if 100 <= status < 200:
                continue
            headers: dict[str, str] = {}
            for line in lines:
                name, colon, value = line.partition(b":")
                if colon:
                    headers[_printable(name.strip()).lower()] = _printable(value.strip())
            return status, _printable(status_line.group(2) or b""), headers, buffer

    def _refusal(self, status: int, phrase: str, headers: dict[str, str]) -> str:
        proxy = self.proxy
        words = f" {phrase}" if phrase else ""
        message = (
            f"proxy {proxy.shown} refused CONNECT {self.target.authority}: HTTP {status}{words}"
        )
        if status == 407:
            asks = headers.get("proxy-authenticate", "").split(" ", 1)[0]
            if asks and asks.lower() != "basic":
                message += f" (it asks for {asks} authentication; tern sends Basic only)"
            elif proxy.has_credentials:
                message += " (check the user and password in proxy_url)"
            else:
                message += " (proxy_url has no user and password)"
        return proxy.scrub(message)

    async def abort(self) -> None:
        if self.stream is not None:
            await trio.aclose_forcefully(self.stream)


# --- the connection's life ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _open_through(
    target: _Target,
    proxy: _Proxy,
    *,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
    disconnect_timeout: float,
    max_message_size: int,
    message_queue_size: int,
    receive_buffer_size: int | None,
) -> AsyncIterator[WebSocketConnection]:
    """trio-websocket's ``open_websocket`` over a proxy tunnel. Its care with exceptions is
    kept: the nursery that runs the connection's reader around the caller's block never
    turns what the block raised (``ConnectionClosed``, a cancellation...) into an
    ExceptionGroup, and a failure to connect raises that failure alone."""

    dial = _Dial(target, proxy, ssl_context)

    async def open_connection(nursery: trio.Nursery) -> WebSocketConnection:
        try:
            with trio.fail_after(connect_timeout):
                stream = await dial.tunnel()
                return await wrap_client_stream(
                    nursery,
                    stream,  # typed SocketStream | SSLStream; any trio stream works
                    target.host_header,
                    target.resource,
                    message_queue_size=message_queue_size,
                    max_message_size=max_message_size,
                    receive_buffer_size=receive_buffer_size,
                )
        except BaseException as exc:
            # Close what was opened without letting a cancellation replace ``exc``; then
            # stop the reader, if it started (no checkpoint follows, so the cancellation
            # stays inside the nursery and never reaches the caller).
            with trio.CancelScope(shield=True):
                await dial.abort()
            nursery.cancel_scope.cancel()
            if isinstance(exc, trio.TooSlowError):
                raise ConnectionTimeout(
                    f"timed out after {connect_timeout:g} s {dial.step}"
                ) from None
            raise

    async def close_connection(connection: WebSocketConnection) -> None:
        try:
            with trio.fail_after(disconnect_timeout):
                await connection.aclose()
        except trio.TooSlowError:
            raise DisconnectionTimeout from None

    connection: WebSocketConnection | None = None
    opened: outcome.Outcome[WebSocketConnection] | None = None
    closed: outcome.Outcome[None] | None = None
    user_error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            opened = await outcome.acapture(open_connection, nursery)
            if isinstance(opened, outcome.Value):
                connection = opened.unwrap()
                try:
                    yield connection
                except BaseException as exc:
                    user_error = exc
                    raise
                finally:
                    closed = await outcome.acapture(close_connection, connection)
    # Entered only when the reader task or the caller's block raised (opening and closing
    # are captured above).
    except BaseExceptionGroup as group:
        _unwrap(group, user_error)
    finally:
        # trio-websocket leaves the stream open when the server closed first; the tunnel
        # is ours, so it is closed here whatever happened (closing twice is harmless).
        with trio.CancelScope(shield=True):
            await dial.abort()
        if closed is not None:
            closed.unwrap()
    if connection is None:
        assert opened is not None
        opened.unwrap()


def _unwrap(group: BaseExceptionGroup, user_error: BaseException | None) -> NoReturn:
    """Raise the one exception ``group`` stands for, as trio-websocket's ``open_websocket``
    does: the only one; else the only one that is not a cancellation; else the caller's
    (all were cancellations); else the caller's, with the others as its context."""
    if len(group.exceptions) == 1:
        _raise(group.exceptions[0])
    real = [exc for exc in group.exceptions if not isinstance(exc, trio.Cancelled)]
    if not real:
        _raise(user_error if user_error is not None else group.exceptions[0])
    if len(real) == 1:
        _raise(real[0])
    if any(isinstance(exc, KeyboardInterrupt) for exc in group.exceptions):
        raise KeyboardInterrupt from group
    if user_error is not None:
        others = [exc for exc in group.exceptions if exc is not user_error]
        if user_error.__context__ is not None and not user_error.__suppress_context__:
            others.append(user_error.__context__)
        user_error.__context__ = BaseExceptionGroup(
            "the connection also failed while the block raised", others
        )
        user_error.__suppress_context__ = False
        _raise(user_error)
    raise RuntimeError("a WebSocket connection raised several exceptions") from group


def _raise(exc: BaseException) -> NoReturn:
    """Raise ``exc`` again without making the group being handled its context."""
    __tracebackhide__ = True
    context = exc.__context__
    try:
        raise exc
    finally:
        exc.__context__ = context
        del exc, context
