"""HTTP/1.1 on the serving event loop: httptools parses, http_app.py answers.

httptools (the parser uvicorn uses, from the Node.js llhttp) handles the
framing; this module holds the limits around it: a body declared past a
value's size is refused from its headers and never read, a chunked or
length-less PUT is refused, requests are answered in order (pipelining
included), and a connection that errs is answered once and closed.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Optional

import httptools

from fastkv import _core, wire
from fastkv.serving.http_app import TOO_BIG, HttpApp, Request
from fastkv.serving.loop import Connection, ServingLoop

__all__ = ["HttpService"]

_MAX_URL = 8 << 10
_MAX_HEADERS_BYTES = 64 << 10
_MAX_BODY = _core.VALUE_MAX_BYTES
_READ_HEADERS = frozenset((b"content-type", b"content-length", b"transfer-encoding",
                           b"authorization", b"expect"))


class _Conn(Connection):
    refusal = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
               b"Content-Length: 80\r\nConnection: close\r\n\r\n"
               b'{"error":"StoreClosedError","message":"too many connections; try again later"}')

    def __init__(self, service: "HttpService") -> None:
        super().__init__(service.home)
        self.app = service.app
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[Request] = deque()
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.method = "GET"
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.body: Optional[list[bytes]] = None
        self.body_len = 0
        self.limit = _MAX_BODY
        self.skip_body = False

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()
        self.partial = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > _MAX_URL:
            raise _Refuse(414, "the URL is too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > _MAX_HEADERS_BYTES:
            raise _Refuse(431, "the headers are too large")
        lower = name.lower()
        if lower in _READ_HEADERS:  # the rest (Host, User-Agent, ...) nobody reads
            self.headers[lower.decode()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.method = method = self.parser.get_method().decode("latin-1")
        h = self.headers
        if "transfer-encoding" in h and method in ("PUT", "POST"):
            raise _Refuse(wire.LENGTH_REQUIRED,
                          "send the body with a Content-Length (no chunked encoding)")
        raw = h.get("content-length")
        if method in ("PUT", "POST") and (raw is None or not raw.strip().isdigit()):
            raise _Refuse(wire.LENGTH_REQUIRED, f"a {method} needs a Content-Length header")
        self.limit = self.app.batch_body_limit if method == "POST" else _MAX_BODY
        if raw is not None and raw.strip().isdigit() and int(raw) > self.limit:
            self.skip_body = True  # answered from the headers, then the connection closes
            self._complete(TOO_BIG, keep_alive=False)
            raise _Stop()
        self.body = []
        if h.get("expect", "").lower() == "100-continue":
            # curl asks before sending a body over 1 KiB, and would wait a second
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        if self.body is not None:
            self.body_len += len(chunk)
            if self.body_len > self.limit:  # more than declared: framing is broken
                raise _Refuse(400, "the body is longer than declared")
            self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.partial = False
        body = b"".join(self.body) if self.body else b""
        self._complete(body, keep_alive=self.parser.should_keep_alive())

    def _complete(self, body: bytes, keep_alive: bool) -> None:
        path, _, query = self.url.decode("latin-1").partition("?")
        self.queue.append(Request(self.method, path, query, self.headers, body, keep_alive))

    # -- the connection -----------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:  # raised by a callback above
            inner = e.__context__
            if isinstance(inner, _Refuse):
                self._refuse(inner.status, inner.message)
            elif isinstance(inner, _Stop):
                self.closing = True
            else:
                raise
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as e:
            self._refuse(400, f"malformed request: {e}")
        self.proceed()

    def _refuse(self, status: int, message: str) -> None:
        self.queue.append(_Refused(status, message))
        self.closing = True

    def proceed(self) -> None:
        out = []
        while self.queue and not self.waiting:
            req = self.queue.popleft()
            answer = self.app.handle(req) if not isinstance(req, _Refused) else \
                self.app.error(wire.refusal(req.status, req.message), req)
            if isinstance(answer, bytes):
                out.append(answer)
                if not req.keep_alive:
                    self.queue.clear()
                    self.closing = True
            else:
                if out:
                    self.transport.write(b"".join(out))
                    out = []
                if not req.keep_alive:
                    self.closing = True
                self.later(answer)
                return
        if out:
            self.transport.write(b"".join(out))
        if self.closing and not self.waiting and self.transport is not None:
            self.transport.close()


class _Refused(Request):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(method="GET", path="", query="", keep_alive=False)
        self.status, self.message = status, message


class _Refuse(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _Stop(Exception):
    """Parsing ends here: the request was answered from its headers."""


class HttpService:
    """HTTP for one DataStore, on a ServingLoop."""

    def __init__(self, db: Any, token: Optional[str], home: ServingLoop) -> None:
        self.app = HttpApp(db, token)
        self.home = home

    def factory(self) -> _Conn:
        return _Conn(self)
