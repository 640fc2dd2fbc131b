"""``fastkv serve`` over HTTP/1.1: JSON for other processes and languages.

A store file belongs to one process; the server is that process. It is the
standard library's threading HTTP server (a thread per connection,
keep-alive), and every request goes straight to the DataStore, whose calls
are thread-safe and release the GIL while they wait.

The endpoints are those of http_app.py, which the default engine (httptools
on the event loop) serves; this first engine stays, as
``fastkv serve --http-engine threads``, to compare the two until the numbers
are published.

Keys are single percent-encoded path segments. With a token, every request
needs ``Authorization: Bearer TOKEN`` (else 401), compared in constant time.
"""

from __future__ import annotations

import hmac
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, quote, unquote, urlsplit

import orjson

from fastkv import _core, wire
from fastkv._version import __version__
from fastkv.datastore import DataStore
from fastkv.errors import (
    FastKVError,
    InvalidKeyError,
    InvalidTTLError,
    RequestError,
    UnauthorizedError,
    ValueTooLargeError,
)
from fastkv.serving.limits import DEFAULT_HOST, DEFAULT_PORT, DRAIN_TIMEOUT_S
from fastkv.serving.openapi import document

__all__ = ["KVServer", "DEFAULT_HOST", "DEFAULT_PORT", "DRAIN_TIMEOUT_S"]

LIST_LIMIT_DEFAULT = 1000
LIST_LIMIT_MAX = 100_000
IDLE_TIMEOUT_S = 30  # a keep-alive connection with nothing to say is closed


class KVServer(ThreadingHTTPServer):
    """The HTTP server that owns one open DataStore."""

    daemon_threads = True  # idle keep-alive threads must not hold up an exit
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops the SYNs of a burst of new
    # clients, which then retry after a second or more
    request_queue_size = 128

    def __init__(self, db: DataStore, host: str, port: int, token: Optional[str]) -> None:
        self.db = db
        self.token = token
        self.openapi = orjson.dumps(document(__version__))
        self._busy = 0  # requests being handled, so a shutdown can let them finish
        self._idle = threading.Condition()
        super().__init__((host, port), _Handler)

    def begin(self) -> None:
        with self._idle:
            self._busy += 1

    def end(self) -> None:
        with self._idle:
            self._busy -= 1
            if self._busy == 0:
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait for the requests in flight; False if some outlast timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"fastkv/{__version__}"
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    # Headers and body leave in one write (a buffered wfile, flushed after
    # each request) with Nagle off: two small writes would wait ~40 ms for
    # the client's delayed ACK on every request.
    wbufsize = -1
    disable_nagle_algorithm = True
    server: KVServer
    _consumed = False

    # -- dispatch ----------------------------------------------------------------

    def _dispatch(self) -> None:
        self.server.begin()
        try:
            self._handle(self.command)
            self.wfile.flush()  # the answer is out before a shutdown may end the process
        finally:
            self.server.end()

    # http.server calls do_<METHOD>; all go through one dispatcher, which
    # answers 405 where a method does not apply (others get 405 in send_error)
    do_GET = do_PUT = do_DELETE = do_POST = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _handle(self, method: str) -> None:
        self._consumed = False  # whether this request's body has been read
        try:
            if not self._authorized():
                self._discard_body()
                self._error(UnauthorizedError("a valid 'Authorization: Bearer' token is needed"),
                            extra={"WWW-Authenticate": 'Bearer realm="fastkv"'})
                return
            path, query = self._route()
            if path.startswith("/keys/"):
                self._one_key(method, path[len("/keys/"):], query)
            else:
                self._fixed(method, path, query)
        except FastKVError as e:
            if wire.status_of(e) >= 500:
                self.log_error("%s: %s", type(e).__name__, e)
            self._discard_body()  # refused before reading it (a bad ttl, say)
            self._error(e)
        except Exception as e:  # never a traceback to the client, never a dead thread
            self.log_error("internal error: %r", e)
            self.close_connection = True
            self._error(FastKVError("the server failed to handle the request"))

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        try:
            query = parse_qs(parts.query, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise RequestError("the query string is not valid UTF-8") from None
        return parts.path, query

    def _one_key(self, method: str, segment: str, query: dict[str, list[str]]) -> None:
        segment, slash, sub = segment.partition("/")
        if slash and sub == "ttl" and segment:
            self._ttl(method, self._key_of(segment))
            return
        if slash:
            self._discard_body()
            self._error(wire.refusal(404, "a key is one path segment: encode '/' in it as %2F"))
            return
        key = self._key_of(segment)
        db = self.server.db
        if method == "PUT":
            self._create(key, query)
            return
        self._discard_body()
        if method == "GET":
            self._json(200, db.read(key))
        elif method == "DELETE":
            db.delete(key)
            self._empty(204)
        else:
            self._not_allowed("GET, PUT, DELETE")

    def _key_of(self, segment: str) -> str:
        try:
            return unquote(segment, errors="strict")
        except UnicodeDecodeError:
            self._discard_body()
            raise InvalidKeyError("the key is not valid UTF-8 once percent-decoded") from None

    def _ttl(self, method: str, key: str) -> None:
        db = self.server.db
        if method == "GET":
            self._discard_body()
            self._json(200, {"key": key, "ttl": db.ttl(key)})
        elif method == "PUT":
            raw = self._body()
            if raw is None:
                return  # answered already
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise RequestError("the body is not valid JSON") from None
            if not isinstance(body, dict) or set(body) != {"ttl"}:
                raise RequestError('the body must be {"ttl": SECONDS} or {"ttl": null}')
            db.touch(key, body["ttl"])
            self._json(200, {"key": key, "ttl": db.ttl(key)})
        else:
            self._discard_body()
            self._not_allowed("GET, PUT")

    def _fixed(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        self._discard_body()
        routes = {"/keys": self._list, "/stats": self._stats, "/health": self._health,
                  "/openapi.json": self._openapi}
        handler = routes.get(path)
        if handler is None:
            self._error(wire.refusal(404, f"no such endpoint: {path}"))
        elif method != "GET":
            self._not_allowed("GET")
        else:
            handler(query)

    # -- endpoints -------------------------------------------------------------

    def _create(self, key: str, query: dict[str, list[str]]) -> None:
        ttl = _ttl_from(query)
        replace = _flag(query, "replace")
        body = self._body()
        if body is None:
            return
        if replace:
            self.server.db.put(key, body, ttl=ttl)
            self._json(200, {"key": key})
            return
        self.server.db.create(key, body, ttl=ttl)
        self._json(201, {"key": key}, extra={"Location": "/keys/" + quote(key, safe="")})

    def _body(self) -> Optional[bytes]:
        """The request's JSON body (at most a value's size), or None after
        answering why not."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            self._discard_body()
            self._error(wire.refusal(
                wire.UNSUPPORTED_MEDIA_TYPE,
                "the body must be a JSON object sent as Content-Type: application/json"))
            return None
        length = self._content_length()
        if length is None:
            return None
        if length > _core.VALUE_MAX_BYTES:
            # refused from the header alone: the body is never read, so the
            # connection cannot be reused
            self._consumed = True
            self.close_connection = True
            self._error(ValueTooLargeError(
                f"the body is {length:,} bytes; a value is at most "
                f"{_core.VALUE_MAX_BYTES:,} bytes (send it as compact JSON)"),
                extra={"Connection": "close"})
            return None
        self._consumed = True
        return self.rfile.read(length)


    def _list(self, query: dict[str, list[str]]) -> None:
        prefix = _one(query, "prefix") or ""
        raw_limit = _one(query, "limit")
        limit = LIST_LIMIT_DEFAULT
        if raw_limit is not None:
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIST_LIMIT_MAX:
                raise RequestError(f"limit must be an integer from 1 to {LIST_LIMIT_MAX:,}")
            limit = int(raw_limit)
        keys = sorted(self.server.db.keys(prefix))
        self._json(200, {"keys": keys[:limit], "truncated": len(keys) > limit})

    def _stats(self, query: dict[str, list[str]]) -> None:
        stats = self.server.db.stats()
        stats["path"] = str(stats["path"])
        self._json(200, stats)

    def _health(self, query: dict[str, list[str]]) -> None:
        self._json(200, {"status": "ok", "version": __version__})

    def _openapi(self, query: dict[str, list[str]]) -> None:
        self._send(200, self.server.openapi, "application/json")

    # -- plumbing ----------------------------------------------------------------

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        given = self.headers.get("Authorization") or ""
        scheme, _, value = given.partition(" ")
        # compare_digest takes the same time wherever the strings differ
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode()
        )

    def _content_length(self) -> Optional[int]:
        """The body's length from its header; answers the request itself
        (and returns None) when the header is missing or wrong."""
        if self.headers.get("Transfer-Encoding"):
            self._consumed = True
            self.close_connection = True
            self._error(wire.refusal(
                wire.LENGTH_REQUIRED, "send the body with a Content-Length (no chunked encoding)"),
                extra={"Connection": "close"})
            return None
        raw = self.headers.get("Content-Length")
        if raw is None or not raw.strip().isdigit():
            self._consumed = True
            self.close_connection = True
            self._error(wire.refusal(wire.LENGTH_REQUIRED, "a PUT needs a Content-Length header"),
                        extra={"Connection": "close"})
            return None
        return int(raw)

    def _discard_body(self) -> None:
        """Read and drop a body nobody asked for, so the connection stays in step."""
        if self._consumed:
            return
        self._consumed = True
        raw = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or (raw is not None and not raw.strip().isdigit()):
            self.close_connection = True
        elif raw is not None:
            n = int(raw)
            if n > 1 << 20:
                self.close_connection = True
            elif n:
                self.rfile.read(n)

    def _not_allowed(self, allow: str) -> None:
        self._error(wire.refusal(wire.METHOD_NOT_ALLOWED,
                                 f"{self.command} is not allowed here; use {allow}"),
                    extra={"Allow": allow})

    def _error(self, exc: FastKVError, extra: Optional[dict[str, str]] = None) -> None:
        """Every error response: its status and body from wire's one table."""
        self._json(wire.status_of(exc), wire.error_body(exc), extra)

    def _json(self, status: int, obj: Any, extra: Optional[dict[str, str]] = None) -> None:
        self._send(status, orjson.dumps(obj), "application/json", extra)

    def _empty(self, status: int) -> None:
        self._send(status, b"", None)

    def _send(self, status: int, body: bytes, ctype: Optional[str],
              extra: Optional[dict[str, str]] = None) -> None:
        self.send_response(status)
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(body)

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # no access log: a store's callers log what they need

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        # http.server's own refusals (a malformed request line, headers too
        # long, a method with no do_ handler) answered in the same JSON shape
        # as every other error; the connection is closed, as its body (if
        # any) was never read
        self.close_connection = True
        if code == HTTPStatus.NOT_IMPLEMENTED:  # an unknown method: not a server fault
            self._error(wire.refusal(wire.METHOD_NOT_ALLOWED,
                                     f"{self.command} is not supported; use GET, PUT or DELETE"),
                        extra={"Allow": "GET, PUT, DELETE", "Connection": "close"})
            return
        phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else "Error"
        try:
            self._error(wire.refusal(code, message or phrase), extra={"Connection": "close"})
        except OSError:
            pass


def _one(query: dict[str, list[str]], name: str) -> Optional[str]:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise RequestError(f"give {name} once")
    return values[0]


def _flag(query: dict[str, list[str]], name: str) -> bool:
    raw = _one(query, name)
    if raw is None or raw in ("false", "0"):
        return False
    if raw in ("true", "1", ""):
        return True
    raise RequestError(f"{name} must be true or false, not {raw!r}")


def _ttl_from(query: dict[str, list[str]]) -> Optional[int]:
    raw = _one(query, "ttl")
    if raw is None:
        return None
    text = raw.strip()
    if not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())) or len(text) > 20:
        raise InvalidTTLError(f"ttl must be a whole number of seconds, not {raw!r}")
    return int(text)
