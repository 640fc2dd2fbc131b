"""The HTTP API of ``fastkv serve``, apart from any transport: a request in,
the bytes of its response out. http_asyncio.py feeds it from the event loop.

    PUT    /keys/{key}[?ttl=N]  body: a JSON object   201 | 400 409 413 415 507  (create)
    PUT    /keys/{key}?replace=true[&ttl=N]           200 | 400 413 415 507      (put)
    GET    /keys/{key}                                200 | 404
    DELETE /keys/{key}                                204 | 404
    GET    /keys/{key}/ttl                            200 | 404   {"key", "ttl": s | null}
    PUT    /keys/{key}/ttl  body: {"ttl": N | null}   200 | 400 404 507  (touch)
    GET    /keys?prefix=P&limit=N                     200   {"keys": sorted, "truncated"}
    GET    /keys?prefix=P&cursor=C                    200 | 400   {"keys", "cursor"}: a walk
    GET    /stats | /health | /openapi.json           200
    POST   /batch/get | /batch/put | /batch/delete | /transaction  (http_batches.py)

Keys are single percent-encoded path segments. With a token, every request
needs ``Authorization: Bearer TOKEN`` (else 401), compared in constant time.
Every error body is ``{"error": CLASS, "message": TEXT}`` from wire.py's table.
"""

from __future__ import annotations

import hmac
from typing import Any, Optional, Union
from urllib.parse import parse_qs, quote, unquote

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
from fastkv.serving.http_batches import ROUTES as BATCH_ROUTES
from fastkv.serving.loop import Later, as_is
from fastkv.serving.openapi import document

__all__ = ["HttpApp", "Request", "TOO_BIG"]

_WOULD_WAIT = _core.WOULD_WAIT
_value_bytes = _core.value_bytes
_dumps = orjson.dumps

LIST_LIMIT_DEFAULT = 1000  # keys in one GET /keys answer unless ?limit= says
LIST_LIMIT_MAX = 100_000

# Request.body of a request whose declared length is past any value's size:
# never read, answered from its headers.
TOO_BIG = b"\x00too big"


class Request:
    """One parsed request (header names lower-case)."""

    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive")

    def __init__(self, method: str, path: str, query: str,
                 headers: Optional[dict[str, str]] = None, body: Optional[bytes] = None,
                 keep_alive: bool = True) -> None:
        self.method, self.path, self.query = method, path, query
        self.headers = {} if headers is None else headers
        self.body, self.keep_alive = body, keep_alive


Answer = Union[bytes, Later]


class HttpApp:
    """The endpoints of one DataStore."""

    def __init__(self, db: DataStore, token: Optional[str]) -> None:
        self.db, self.token = db, token
        # fsync mode: a write waits for its flush in a worker thread, never on the loop
        self.writes_later = db.durability == "fsync"
        self.server_header = f"fastkv/{__version__}".encode()
        self._ok_head = (b"HTTP/1.1 200 OK\r\nServer: %s\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " % self.server_header)
        self.openapi = _dumps(document(__version__))
        # a POST's body: the JSON of at most max_transaction_bytes of records
        self.batch_body_limit = 2 * db.max_transaction_bytes

    # -- responses -------------------------------------------------------------------

    def response(self, status: int, body: bytes, req: Request, ctype: bool = True,
                 extra: Optional[dict[str, str]] = None) -> bytes:
        if status == 200 and ctype and extra is None and req.keep_alive \
                and req.method != "HEAD":
            return self._ok_head + b"%d\r\n\r\n" % len(body) + body  # most responses
        head = [b"HTTP/1.1 %d %s\r\nServer: %s\r\n" % (status, _REASONS.get(status, b"Error"),
                                                        self.server_header)]
        if ctype and status != 204:
            head.append(b"Content-Type: application/json\r\n")
        if status != 204:
            head.append(b"Content-Length: %d\r\n" % len(body))
        for name, value in (extra or {}).items():
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if not req.keep_alive:
            head.append(b"Connection: close\r\n")
        head.append(b"\r\n")
        if req.method != "HEAD" and status != 204:
            head.append(body)
        return b"".join(head)

    def error(self, exc: FastKVError, req: Request,
              extra: Optional[dict[str, str]] = None) -> bytes:
        return self.response(wire.status_of(exc), _dumps(wire.error_body(exc)), req,
                             extra=extra)

    def json(self, status: int, obj: Any, req: Request,
             extra: Optional[dict[str, str]] = None) -> bytes:
        return self.response(status, _dumps(obj), req, extra=extra)

    # -- dispatch ----------------------------------------------------------------------

    def handle(self, req: Request) -> Answer:
        path = req.path
        if req.method == "GET" and self.token is None and path.startswith("/keys/") \
                and 6 < len(path) <= 38 and path.isascii() and "/" not in path[6:] \
                and "%" not in path:
            # the hot path: a plain ASCII key, nothing to decode; a miss, a
            # wait or an error takes the full path below
            data = _value_bytes(self.db, path[6:])
            if type(data) is bytes:
                return self.response(200, data, req)
        try:
            if not self._authorized(req):
                return self.error(UnauthorizedError(
                    "a valid 'Authorization: Bearer' token is needed"), req,
                    extra={"WWW-Authenticate": 'Bearer realm="fastkv"'})
            if req.path.startswith("/keys/"):
                if self.writes_later and req.method in ("PUT", "DELETE"):
                    return Later(lambda: self._one_key(req, req.path[len("/keys/"):]),
                                 as_is, lambda e: self.error(e, req))
                return self._one_key(req, req.path[len("/keys/"):])
            return self._fixed(req)
        except FastKVError as e:
            return self.error(e, req)

    def _authorized(self, req: Request) -> bool:
        if self.token is None:
            return True
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token.encode())

    def _query(self, req: Request) -> dict[str, list[str]]:
        try:
            return parse_qs(req.query, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise RequestError("the query string is not valid UTF-8") from None

    def _one_key(self, req: Request, segment: str) -> Answer:
        segment, slash, sub = segment.partition("/")
        if slash and sub == "ttl" and segment:
            return self._ttl(req, _key_of(segment))
        if slash:
            return self.error(wire.refusal(
                404, "a key is one path segment: encode '/' in it as %2F"), req)
        key = _key_of(segment)
        method = req.method
        if method == "GET":
            return self._read(req, key)
        if method == "PUT":
            return self._create(req, key)
        if method == "DELETE":
            self.db.delete(key)
            return self.response(204, b"", req)
        return self._not_allowed(req, "GET, PUT, DELETE")

    def _fixed(self, req: Request) -> Answer:
        batch = BATCH_ROUTES.get(req.path)
        if batch is not None:
            return self._batch(req, batch)
        routes = {"/keys": self._list, "/stats": self._stats, "/health": self._health,
                  "/openapi.json": self._openapi}
        handler = routes.get(req.path)
        if handler is None:
            return self.error(wire.refusal(404, f"no such endpoint: {req.path}"), req)
        if req.method != "GET":
            return self._not_allowed(req, "GET")
        return handler(req)

    def _batch(self, req: Request, run: Any) -> Answer:
        if req.method != "POST":
            return self._not_allowed(req, "POST")
        body = self._body(req)
        if body is TOO_BIG:
            return self._too_big(req)
        return Later(lambda: run(self.db, body), lambda r: self.json(200, r, req),
                     lambda e: self.error(e, req))

    def _not_allowed(self, req: Request, allow: str) -> bytes:
        return self.error(wire.refusal(wire.METHOD_NOT_ALLOWED,
                                       f"{req.method} is not allowed here; use {allow}"),
                          req, extra={"Allow": allow})

    # -- endpoints ----------------------------------------------------------------------

    def _read(self, req: Request, key: str) -> Answer:
        data = _value_bytes(self.db, key)
        if data is _WOULD_WAIT:
            return Later(lambda: _value_bytes(self.db, key, True),
                         lambda r: self._read_answer(req, key, r),
                         lambda e: self.error(e, req))
        return self._read_answer(req, key, data)

    def _read_answer(self, req: Request, key: str, data: Optional[bytes]) -> bytes:
        if data is None:
            try:  # the store's own words: not found, or expired (or, since, created)
                data = _dumps(self.db.read(key))
            except FastKVError as e:
                return self.error(e, req)
        return self.response(200, data, req)

    def _create(self, req: Request, key: str) -> bytes:
        query = self._query(req)
        ttl = _ttl_from(query)
        replace = _flag(query, "replace")
        body = self._body(req)
        if body is TOO_BIG:
            return self._too_big(req)
        if replace:
            self.db.put(key, body, ttl=ttl)
            return self.json(200, {"key": key}, req)
        self.db.create(key, body, ttl=ttl)
        return self.json(201, {"key": key}, req,
                         extra={"Location": "/keys/" + quote(key, safe="")})

    def _ttl(self, req: Request, key: str) -> bytes:
        if req.method == "GET":
            return self.json(200, {"key": key, "ttl": self.db.ttl(key)}, req)
        if req.method != "PUT":
            return self._not_allowed(req, "GET, PUT")
        raw = self._body(req)
        if raw is TOO_BIG:
            return self._too_big(req)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RequestError("the body is not valid JSON") from None
        if not isinstance(body, dict) or set(body) != {"ttl"}:
            raise RequestError('the body must be {"ttl": SECONDS} or {"ttl": null}')
        self.db.touch(key, body["ttl"])
        return self.json(200, {"key": key, "ttl": self.db.ttl(key)}, req)

    def _body(self, req: Request) -> bytes:
        """The JSON body of a PUT; RequestError (415) for another type."""
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise wire.refusal(wire.UNSUPPORTED_MEDIA_TYPE,
                               "the body must be a JSON object sent as Content-Type: "
                               "application/json")
        return req.body if req.body is not None else b""

    def _too_big(self, req: Request) -> bytes:
        req.keep_alive = False  # the body was never read
        length = req.headers.get("content-length", "?")
        if req.method == "POST":
            return self.error(ValueTooLargeError(
                f"the body is {int(length):,} bytes; a batch or transaction body is at most "
                f"{self.batch_body_limit:,} bytes (twice the store's max_transaction_bytes)"),
                req)
        return self.error(ValueTooLargeError(
            f"the body is {int(length):,} bytes; a value is at most "
            f"{_core.VALUE_MAX_BYTES:,} bytes (send it as compact JSON)"), req)

    def _list(self, req: Request) -> Answer:
        query = self._query(req)
        prefix = _one(query, "prefix") or ""
        raw_cursor = _one(query, "cursor")
        if raw_cursor is not None:
            return self._walk(req, prefix, raw_cursor)
        raw_limit = _one(query, "limit")
        limit = LIST_LIMIT_DEFAULT
        if raw_limit is not None:
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= LIST_LIMIT_MAX:
                raise RequestError(f"limit must be an integer from 1 to {LIST_LIMIT_MAX:,}")
            limit = int(raw_limit)

        def listing() -> list[str]:
            return sorted(self.db.keys(prefix))

        return Later(listing,
                     lambda keys: self.json(200, {"keys": keys[:limit],
                                                  "truncated": len(keys) > limit}, req),
                     lambda e: self.error(e, req))

    def _walk(self, req: Request, prefix: str, raw_cursor: str) -> Answer:
        """One batch of a walk over every live key (GET /keys?cursor=0, then
        each answer's cursor until it is 0): the promises of keys(), no
        state kept on the server between batches."""
        bad = RequestError(f"cursor must be a cursor this server gave, not {raw_cursor!r}")
        if not raw_cursor.isdigit() or len(raw_cursor) > 12:
            raise bad
        cursor = int(raw_cursor)

        def batch() -> tuple[int, list[str]]:
            try:
                return self.db._scan(cursor, prefix or None)
            except ValueError:  # past the last position a walk can have
                raise bad from None

        return Later(batch,
                     lambda r: self.json(200, {"keys": r[1], "cursor": r[0]}, req),
                     lambda e: self.error(e, req))

    def _stats(self, req: Request) -> Answer:
        def stats() -> dict[str, Any]:
            st = self.db.stats()
            st["path"] = str(st["path"])
            return st

        return Later(stats, lambda st: self.json(200, st, req), lambda e: self.error(e, req))

    def _health(self, req: Request) -> bytes:
        return self.json(200, {"status": "ok", "version": __version__}, req)

    def _openapi(self, req: Request) -> bytes:
        return self.response(200, self.openapi, req)


# ---- the query string ---------------------------------------------------------------


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


def _key_of(segment: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise InvalidKeyError("the key is not valid UTF-8 once percent-decoded") from None


_REASONS = {200: b"OK", 201: b"Created", 204: b"No Content", 400: b"Bad Request",
            401: b"Unauthorized", 404: b"Not Found", 405: b"Method Not Allowed",
            409: b"Conflict", 411: b"Length Required", 413: b"Content Too Large",
            415: b"Unsupported Media Type", 500: b"Internal Server Error",
            503: b"Service Unavailable", 507: b"Insufficient Storage"}
