"""Optimistic transactions of fastkv.Client: ``with kv.transaction() as tx:``.

A Client shares its server with other processes, so its transaction holds
nothing on the server while it runs. Reads go to the server and what each
key held the first time it was read is remembered; writes are kept here
(the transaction's reads see them). The commit sends both in one
``POST /transaction``: the server, inside one DataStore transaction, checks
that every key read still holds what it held, then applies the writes; a
key changed meanwhile is 409 ConflictError and nothing is written, so the
caller may run the transaction again (as with RedisStore's WATCH).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Optional

import orjson

from fastkv import _core
from fastkv.errors import KeyExistsError, KeyNotFoundError, TransactionError

if TYPE_CHECKING:
    from fastkv.client import Client

__all__ = ["ClientTransaction"]

_MISSING = object()


class ClientTransaction:
    """The store's calls, with the same arguments, results and errors, on a
    Client; committed by leaving the ``with`` block or by commit(). Used by
    the thread that began it."""

    def __init__(self, client: "Client") -> None:
        self._client = client
        self._expect: dict[str, Optional[orjson.Fragment]] = {}
        # key -> (compact JSON or None for a delete, deadline in s or None)
        self._view: dict[str, tuple[Optional[bytes], Optional[float]]] = {}
        self._ops: list[dict[str, Any]] = []
        self._open = True
        self._thread = threading.get_ident()

    def _check(self) -> None:
        if not self._open:
            raise TransactionError("this transaction has ended: begin a new one")
        if threading.get_ident() != self._thread:
            raise TransactionError("a transaction is used only by the thread that began it")

    def _current(self, key: str) -> Optional[bytes]:
        """key's compact JSON as this transaction sees it (None: not live)."""
        seen = self._view.get(key) if type(key) is str else None
        if seen is not None:
            data, deadline = seen
            if data is not None and deadline is not None and deadline <= time.time():
                return None
            return data
        value = self._client.get(key, _MISSING)
        data = None if value is _MISSING else orjson.dumps(value)
        if key not in self._expect:  # what the commit will check
            self._expect[key] = None if data is None else orjson.Fragment(data)
        return data

    def _stage(self, op: dict[str, Any], data: Optional[bytes], ttl: Optional[int]) -> None:
        self._ops.append(op)
        self._view[op["key"]] = (data, time.time() + ttl if ttl else None)

    # ---- reads -----------------------------------------------------------------

    def read(self, key: str) -> Any:
        self._check()
        data = self._current(key)
        if data is None:
            raise KeyNotFoundError(key, self._client.url)
        return orjson.loads(data)

    def get(self, key: str, default: Any = None) -> Any:
        self._check()
        data = self._current(key)
        return default if data is None else orjson.loads(data)

    def ttl(self, key: str) -> Optional[float]:
        self._check()
        if self._current(key) is None:
            raise KeyNotFoundError(key, self._client.url)
        seen = self._view.get(key)
        if seen is not None:
            return None if seen[1] is None else max(0.0, seen[1] - time.time())
        return self._client.ttl(key)

    def __contains__(self, key: object) -> bool:
        self._check()
        if type(key) is not str:
            return False
        _core.check_key(key)
        return self._current(key) is not None

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        self._check()
        out = {}
        for key in keys:
            data = self._current(key)
            if data is not None:
                out[key] = orjson.loads(data)
        return out

    # ---- writes ----------------------------------------------------------------

    def _write(self, kind: str, key: str, value: Any, ttl: Optional[int]) -> None:
        self._check()
        _core.check_key(key)
        data = _core.encode_value(value, key)
        _core.check_ttl(ttl, key)
        if kind == "create" and self._current(key) is not None:
            raise KeyExistsError(key, self._client.url)
        self._stage({"op": kind, "key": key, "value": orjson.Fragment(data), "ttl": ttl},
                    data, ttl)

    def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        self._write("create", key, value, ttl)

    def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        self._write("put", key, value, ttl)

    def touch(self, key: str, ttl: Optional[int]) -> None:
        self._check()
        _core.check_ttl(ttl, key)
        data = self._current(key)
        if data is None:
            raise KeyNotFoundError(key, self._client.url)
        self._stage({"op": "touch", "key": key, "ttl": ttl}, data, ttl)

    def delete(self, key: str) -> None:
        self._check()
        if self._current(key) is None:
            raise KeyNotFoundError(key, self._client.url)
        self._stage({"op": "delete", "key": key}, None, None)

    def put_many(self, items: Any, ttl: Optional[int] = None) -> None:
        self._check()
        checked = []
        for key, value in (items.items() if hasattr(items, "items") else items):
            _core.check_key(key)
            checked.append((key, _core.encode_value(value, key)))
        _core.check_ttl(ttl, "")
        for key, data in checked:
            self._stage({"op": "put", "key": key, "value": orjson.Fragment(data), "ttl": ttl},
                        data, ttl)

    def delete_many(self, keys: Iterable[str]) -> int:
        self._check()
        gone = []
        for key in dict.fromkeys(keys):
            _core.check_key(key)
            if self._current(key) is not None:
                gone.append(key)
        for key in gone:
            self._stage({"op": "delete", "key": key}, None, None)
        return len(gone)

    __getitem__ = read
    __setitem__ = put
    __delitem__ = delete

    # ---- its end ------------------------------------------------------------------

    def commit(self) -> None:
        """Send the writes with the values read: ConflictError (nothing
        written) if the server's store changed one of those keys."""
        self._check()
        self._open = False
        if self._ops:
            self._client._call("POST", "/transaction",
                               orjson.dumps({"expect": self._expect, "ops": self._ops}))

    def rollback(self) -> None:
        self._check()
        self._open = False
        self._ops = []

    @property
    def active(self) -> bool:
        return self._open

    def __enter__(self) -> "ClientTransaction":
        self._check()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._open:
            self.commit() if exc_type is None else self.rollback()
