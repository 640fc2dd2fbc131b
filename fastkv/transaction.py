"""Transactions on a DataStore: changes that land together or not at all.

A transaction holds the store's writer slot from its start to its end (the
lmdb model): other writers wait, readers go on and see the state before it.
Its changes are kept here, one per key, so that its own reads see them; the
commit hands them to the core as one group (one append that recovery takes
whole or not at all, published to the index at once).
"""

from __future__ import annotations

import _thread

import orjson

from fastkv import _core
from fastkv.errors import KeyExistsError, KeyExpiredError, KeyNotFoundError, TransactionError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Mapping, Optional, Union

__all__ = ["Transaction"]

_txn_put = _core.txn_put


class Transaction:
    """Changes to one store that land together, made by the thread that began
    it. Has the store's calls (``create``, ``put``, ``read``, ``get``, ``ttl``,
    ``touch``, ``delete``, ``in``, ``get_many``, ``put_many``,
    ``delete_many``) with the same arguments, results and errors; its reads
    see its own writes. A refused call changes nothing and the transaction
    goes on. Used as a context manager, leaving the block commits and an
    exception inside it discards every change; ``commit()`` and
    ``rollback()`` end it by hand.
    """

    __slots__ = ("_store", "_token", "_thread_bound", "_changes", "_bytes", "_open")

    def __init__(self, store: Any, token: int = 0) -> None:
        # token 0: the calling thread's (the core refuses its plain writes);
        # an asyncio transaction passes a token of its own.
        store._txn_begin(token)
        self._store = store
        self._thread_bound = token == 0
        self._token = _thread.get_ident() if token == 0 else token
        # key -> (key, value bytes or None for a delete, deadline ms or 0)
        self._changes: dict[str, tuple[str, Optional[bytes], int]] = {}
        self._bytes = 0
        self._open = True

    # ---- its state -----------------------------------------------------------

    def _check(self) -> None:
        if not self._open:
            raise TransactionError("this transaction has ended: begin a new one")
        if self._thread_bound and _thread.get_ident() != self._token:
            raise TransactionError(
                "a transaction is used only by the thread that began it")

    def _where(self) -> str:
        return str(getattr(self._store, "path", "?"))

    def _record(self, key: str) -> tuple[bytes, int]:
        """(value bytes, deadline) of key as this transaction sees it;
        raises KeyNotFoundError or KeyExpiredError as the store's read does."""
        change = self._changes.get(key) if type(key) is str else None
        if change is None:
            found: tuple[bytes, int] = self._store._read_record(key)
            return found
        _, value, deadline = change
        if value is None:
            raise KeyNotFoundError(key, self._where())
        if deadline and deadline <= _core.now_ms():
            raise KeyExpiredError(key, self._where())
        return value, deadline

    def _live(self, key: str) -> bool:
        try:
            self._record(key)
        except KeyNotFoundError:
            return False
        return True

    def _stage(self, changes: list[tuple[str, Optional[bytes], int]]) -> None:
        """Keep changes, or none of them if they would pass the limit."""
        total = self._bytes
        for key, value, _ in changes:
            old = self._changes.get(key)
            if old is not None:
                total -= _core.record_bytes(key, old[1])
            total += _core.record_bytes(key, value)
        limit = self._store.max_transaction_bytes
        if total > limit:
            raise TransactionError(
                f"this transaction would hold {total:,} bytes of records, over "
                f"max_transaction_bytes {limit:,} of store {self._where()}; the call "
                f"changed nothing and the transaction goes on")
        for change in changes:
            self._changes[change[0]] = change
        self._bytes = total

    # ---- reads -----------------------------------------------------------------

    def read(self, key: str) -> dict[str, Any]:
        """The value stored under key, as a new dict.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        value, _ = self._record(key)
        return orjson.loads(value)  # type: ignore[no-any-return]

    def get(self, key: str, default: Any = None) -> Any:
        """read(key), or default when the key is missing or expired.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        try:
            value, _ = self._record(key)
        except KeyNotFoundError:
            return default
        return orjson.loads(value)

    def ttl(self, key: str) -> Optional[float]:
        """Seconds left before key expires (a float), or None if it never does.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        _, deadline = self._record(key)
        if not deadline:
            return None
        return max(0.0, (deadline - _core.now_ms()) / 1000.0)

    def __contains__(self, key: object) -> bool:
        self._check()
        if type(key) is not str:
            return key in self._store  # the store's answer for odd keys
        return self._live(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """A dict of the live keys among keys and their values, as of one moment;
        missing and expired keys are left out.

        Raises:
            InvalidKeyError: a key is not a str of 1 to 32 characters.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        out: dict[str, Any] = {}
        for key in keys:
            try:
                value, _ = self._record(key)
            except KeyNotFoundError:
                continue
            out[key] = orjson.loads(value)
        return out

    def _value_bytes(self, key: str) -> Optional[bytes]:
        """The stored bytes of key as this transaction sees it, or None
        (for RESP's GET inside EXEC)."""
        self._check()
        try:
            value, _ = self._record(key)
        except KeyNotFoundError:
            return None
        return value

    # ---- writes ----------------------------------------------------------------

    def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """Store value under a new key, expiring after ttl seconds (None: never).

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds what JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            KeyExistsError: the key is live already.
            StoreFullError: the write would take the file past max_file_size.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        _core.check_key(key)
        encoded = _core.encode_value(value, key)
        deadline = _core.deadline_of(ttl, key)
        if self._live(key):
            raise KeyExistsError(key, self._where())
        self._stage([(key, encoded, deadline)])

    def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """Create the key or replace its value and its expiry, in one step.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds what JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            StoreFullError: the write would take the file past max_file_size.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        if not self._open or (self._thread_bound and _thread.get_ident() != self._token):
            self._check()
        self._bytes = _txn_put(self._store, self._changes, key, value, ttl, self._bytes)

    __setitem__ = put

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self.read(key)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def _put_until(self, key: str, value: Any, deadline_ms: int, replace: bool) -> None:
        """put() (create() unless replace) with an absolute deadline in ms
        since the epoch, as DataStore.create_until (for RESP's SET PX)."""
        self._check()
        _core.check_key(key)
        encoded = _core.encode_value(value, key)
        if deadline_ms <= _core.now_ms():
            raise KeyExpiredError(key, self._where())
        if not replace and self._live(key):
            raise KeyExistsError(key, self._where())
        self._stage([(key, encoded, deadline_ms)])

    def touch(self, key: str, ttl: Optional[int]) -> None:
        """A new time-to-live for key, counted from now (None: never expire);
        the value is kept.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            StoreFullError: the write would take the file past max_file_size.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        deadline = _core.deadline_of(ttl, key)
        value, _ = self._record(key)
        self._stage([(key, value, deadline)])

    def delete(self, key: str) -> None:
        """Remove a live key.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        self._record(key)  # raises for a key that is not live
        self._stage([(key, None, 0)])

    def put_many(self, items: Union[Mapping[str, Any], Iterable[tuple[str, Any]]],
                 ttl: Optional[int] = None) -> None:
        """put() of every (key, value) pair of a mapping or iterable, as one
        atomic group: all of them or none.

        Raises:
            InvalidKeyError: a key is not a str of 1 to 32 characters.
            InvalidValueError: a value is not a JSON object, or holds what JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            StoreFullError: the write would take the file past max_file_size.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        pairs = items.items() if hasattr(items, "items") else items
        staged: dict[str, tuple[str, Optional[bytes], int]] = {}
        for key, value in pairs:
            _core.check_key(key)
            staged[key] = (key, _core.encode_value(value, key), _core.deadline_of(ttl, key))
        if not staged and ttl is not None:
            _core.deadline_of(ttl, "")
        self._stage(list(staged.values()))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete the live keys among keys as one atomic group; returns how
        many it deleted.

        Raises:
            InvalidKeyError: a key is not a str of 1 to 32 characters.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
            TransactionError: the transaction has ended, is used from another
                thread, or would pass max_transaction_bytes.
        """
        self._check()
        staged: dict[str, tuple[str, Optional[bytes], int]] = {}
        for key in keys:
            _core.check_key(key)
            if key not in staged and self._live(key):
                staged[key] = (key, None, 0)
        self._stage(list(staged.values()))
        return len(staged)

    # ---- its end ------------------------------------------------------------------

    def commit(self) -> None:
        """Write every change as one group and end the transaction. Returns
        once the changes are as durable as a single write in the store's
        durability mode.

        Raises:
            StoreFullError: the changes do not fit under max_file_size even
                after compaction (nothing was written).
            TransactionError: the transaction has ended, or this is another
                thread.
        """
        self._check()
        self._open = False
        self._store._txn_end(self._token, True, list(self._changes.values()))
        self._changes = {}

    def rollback(self) -> None:
        """Discard every change and end the transaction."""
        self._check()
        self._open = False
        self._changes = {}
        self._store._txn_end(self._token, False, [])

    @property
    def active(self) -> bool:
        """True until the transaction is committed or rolled back."""
        return self._open

    def __enter__(self) -> "Transaction":
        self._check()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._open:
            return
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    def __del__(self) -> None:
        # Dropped while open (a generator abandoned, a thread that died):
        # the slot must not stay taken. The token names the owner, so any
        # thread may end it.
        if getattr(self, "_open", False):
            self._open = False
            try:
                self._store._txn_end(self._token, False, [])
            except Exception:
                pass

    def __repr__(self) -> str:
        state = "open" if self._open else "ended"
        return f"<fastkv.Transaction on {self._where()!r}, {state}, {len(self._changes)} changes>"
