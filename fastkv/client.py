"""Client: a store served by ``fastkv serve``, used like a DataStore.

    from fastkv import Client
    with Client("http://127.0.0.1:8765", token=...) as kv:
        kv.create("user:1", {"name": "Ann"}, ttl=60)
        kv.read("user:1")

create/read/delete take the same arguments and raise the same exception
classes as DataStore's (the server sends the class name along with each
error), so code written against one runs against the other. Values are
checked and encoded here exactly as DataStore does before they are sent.
Thread-safe: each thread keeps its own keep-alive connection.
"""

from __future__ import annotations

import http.client
import threading
from types import TracebackType
from typing import Any, Iterable, Iterator, Optional, Type
from urllib.parse import quote, urlencode, urlsplit

import orjson

from fastkv import _core, wire
from fastkv.client_transaction import ClientTransaction
from fastkv.errors import (
    ConfigError,
    InvalidKeyError,
    InvalidTTLError,
    KeyNotFoundError,
    StoreUnavailableError,
)

__all__ = ["Client"]

# A reused keep-alive connection the server has since closed fails like this
# before any answer came back: the request is sent again on a new one.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Client:
    """A fastkv server at url (``http://host:port``), with an optional bearer token."""

    def __init__(
        self, url: str = "http://127.0.0.1:8765", token: Optional[str] = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ConfigError(f"url must look like http://HOST:PORT, not {url!r}")
        self.url = url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._base = parts.path.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._all_lock = threading.Lock()

    # -- the DataStore methods -----------------------------------------------------

    def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """As DataStore.create.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds something JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            KeyExistsError: the key is live already.
            StoreFullError: the write would take the file past max_file_size.
        """
        self._write(key, value, ttl, {})

    def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """As DataStore.put.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds something JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            StoreFullError: the write would take the file past max_file_size.
        """
        self._write(key, value, ttl, {"replace": "true"})

    def _write(self, key: str, value: Any, ttl: Optional[int], query: dict[str, Any]) -> None:
        target = _key_path(key)
        body = _core.encode_value(value, key)  # the same checks, the same errors
        if ttl is not None:
            if type(ttl) is not int:
                raise InvalidTTLError(f"ttl for {key!r} must be an int, not {type(ttl).__name__}")
            query = {**query, "ttl": ttl}
        if query:
            target += "?" + urlencode(query)
        self._call("PUT", target, body)

    def get(self, key: str, default: Any = None) -> Any:
        """As DataStore.get."""
        try:
            return self.read(key)
        except KeyNotFoundError:
            return default

    def ttl(self, key: str) -> Optional[float]:
        """As DataStore.ttl.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
        """
        left: Optional[float] = self._call("GET", _key_path(key) + "/ttl")["ttl"]
        return left

    def touch(self, key: str, ttl: Optional[int]) -> None:
        """As DataStore.touch.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            StoreFullError: the write would take the file past max_file_size.
        """
        if ttl is not None and type(ttl) is not int:
            raise InvalidTTLError(f"ttl for {key!r} must be an int, not {type(ttl).__name__}")
        self._call("PUT", _key_path(key) + "/ttl", orjson.dumps({"ttl": ttl}))

    def __getitem__(self, key: str) -> Any:
        return self.read(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def read(self, key: str) -> Any:
        """As DataStore.read.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
        """
        return self._call("GET", _key_path(key))

    def delete(self, key: str) -> None:
        """As DataStore.delete.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
        """
        self._call("DELETE", _key_path(key))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self.read(key)
        except (KeyNotFoundError, InvalidKeyError):
            return False
        return True

    # -- several keys, transactions ---------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """As DataStore.get_many: one request (POST /batch/get)."""
        keys = list(keys)
        for key in keys:
            _core.check_key(key)
        found: dict[str, Any] = self._call("POST", "/batch/get",
                                           orjson.dumps({"keys": keys}))["values"]
        return found

    def put_many(self, items: Any, ttl: Optional[int] = None) -> None:
        """As DataStore.put_many: one request, one atomic group on the server.
        Every pair is checked here first, as DataStore checks it."""
        staged: dict[str, orjson.Fragment] = {}
        for key, value in (items.items() if hasattr(items, "items") else items):
            _core.check_key(key)
            staged[key] = orjson.Fragment(_core.encode_value(value, key))
        _core.check_ttl(ttl, "")
        self._call("POST", "/batch/put", orjson.dumps({"items": staged, "ttl": ttl}))

    def delete_many(self, keys: Iterable[str]) -> int:
        """As DataStore.delete_many: one request, one atomic group."""
        keys = list(keys)
        for key in keys:
            _core.check_key(key)
        gone: int = self._call("POST", "/batch/delete", orjson.dumps({"keys": keys}))["deleted"]
        return gone

    def transaction(self) -> ClientTransaction:
        """An optimistic transaction (fastkv/client_transaction.py): the keys
        it reads are checked by the server at commit; ConflictError, nothing
        written, if another client changed one."""
        return ClientTransaction(self)

    def keys(self, prefix: Optional[str] = None) -> Iterator[str]:
        """An iterator over the live keys, or those that start with prefix,
        in no particular order, with DataStore.keys()'s promises: a key live
        for the whole walk comes exactly once. Asks the server for one
        batch at a time (GET /keys?cursor=...).

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters (a prefix that is not a str).
            StoreUnavailableError: the server did not answer.
        """
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidKeyError(f"prefix must be a str, not {type(prefix).__name__}")
        return self._walk(prefix or "")

    def _walk(self, prefix: str) -> Iterator[str]:
        cursor = 0
        while True:
            batch = self._call("GET", "/keys?" + urlencode({"prefix": prefix, "cursor": cursor}))
            yield from batch["keys"]
            cursor = batch["cursor"]
            if cursor == 0:
                return

    def __iter__(self) -> Iterator[str]:
        """The live keys, in no particular order (see keys())."""
        return self.keys()

    def items(self, prefix: Optional[str] = None) -> Iterator[tuple[str, Any]]:
        """An iterator over (key, value) pairs of the live keys, or of those
        that start with prefix; a key deleted or expired between its batch
        and its read is left out."""
        for key in self.keys(prefix):
            try:
                yield key, self.read(key)
            except KeyNotFoundError:
                continue

    def __len__(self) -> int:
        """The number of live keys (the server's stats)."""
        live: int = self.stats()["live_keys"]
        return live

    def stats(self) -> dict[str, Any]:
        """The served store's counters (GET /stats: DataStore.stats()).

        Raises:
            StoreUnavailableError: the server did not answer.
        """
        stats: dict[str, Any] = self._call("GET", "/stats")
        return stats

    def health(self) -> dict[str, Any]:
        """The server's answer to GET /health: {"status": "ok", "version": ...}.

        Raises:
            StoreUnavailableError: the server did not answer.
        """
        health: dict[str, Any] = self._call("GET", "/health")
        return health

    def close(self) -> None:
        """Close every connection this client opened (in any thread)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def __enter__(self) -> "Client":
        return self

    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- plumbing ----------------------------------------------------------------------

    def _conn(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it was used before."""
        conn: Optional[http.client.HTTPConnection] = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
        return conn, False

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None
        with self._all_lock:
            if conn in self._all:
                self._all.remove(conn)

    def _unavailable(self, exc: BaseException, method: str) -> StoreUnavailableError:
        msg = f"fastkv server at {self.url} did not answer: {exc or type(exc).__name__}"
        if method != "GET" and not isinstance(exc, ConnectionRefusedError):
            msg += (". The write was sent and its answer lost: it may or may not have "
                    "happened; read the key to know")
        err = StoreUnavailableError(msg)
        err.errno = getattr(exc, "errno", None)
        return err

    def _call(self, method: str, target: str, body: Optional[bytes] = None) -> Any:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            conn, reused = self._conn()
            try:
                conn.request(method, self._base + target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except _STALE as e:
                self._drop(conn)
                if reused and attempt == 0:
                    continue
                raise self._unavailable(e, method) from None
            except (OSError, http.client.HTTPException) as e:
                self._drop(conn)
                raise self._unavailable(e, method) from None
            except BaseException:
                self._drop(conn)
                raise
            if resp.will_close:
                self._drop(conn)
            break
        if resp.status >= 400:
            try:
                err = orjson.loads(data) if data else None
            except orjson.JSONDecodeError:
                err = None
            raise wire.exception_from(resp.status, err)
        return orjson.loads(data) if data else None


def _key_path(key: object) -> str:
    if not isinstance(key, str):
        raise InvalidKeyError(f"key must be a str, not {type(key).__name__}")
    _core.check_key(key)
    return "/keys/" + quote(key, safe="")
