"""fastkv for asyncio: the DataStore API, every method a coroutine.

    import fastkv.aio

    async with fastkv.aio.AsyncDataStore("app.fkv") as db:
        await db.put("user:1", {"name": "Ann"}, ttl=60)
        value = await db.read("user:1")
        async for key in db.keys("user:"):
            ...

The event loop must never stall on the disk, and a hop to a worker thread
costs tens of microseconds, twenty times a read from memory. So a read
(read, get, ttl, contains) first asks the core's no-wait path, which
answers from the page cache when no other thread holds the store, and only
if that would have had to wait does the call go to a worker thread. Calls
that may wait for the disk always go to a worker thread: every write in
fsync mode, compaction, sync, close, open (a scan of the file, or a wait
for another opener's lock), and each batch of an iteration. A write in the
default "process" mode goes to the page cache and runs inline; note that a
write that finds half the file dead compacts it before it returns, which
then holds the loop for that long (compact() in a thread beforehand, or
"fsync" mode, avoids it).

Same arguments, results and exceptions as the sync classes; runs under
uvloop as under asyncio's own loop. A redis:// URL opens an AsyncRedisStore
(fastkv/redis/aio.py) instead.
"""

from __future__ import annotations

import asyncio
import functools
from types import TracebackType
from typing import Any, AsyncIterator, Callable, Generator, Optional, Type, TypeVar

from fastkv import _core
from fastkv.datastore import DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_TRANSACTION_BYTES, DataStore
from fastkv.errors import TransactionError
from fastkv.transaction import Transaction
from fastkv.locations import PathArg
from fastkv.locations import url_scheme

__all__ = ["AsyncDataStore", "AsyncTransaction", "AsyncRedisStore", "open"]

_WOULD_WAIT = _core.WOULD_WAIT
_MISSING: Any = object()
T = TypeVar("T")


class _NotOpen:
    """Stands in for the DataStore until the AsyncDataStore is awaited or
    entered: every call says so."""

    def __getattr__(self, name: str) -> Any:
        from fastkv.errors import StoreClosedError

        raise StoreClosedError("this AsyncDataStore is not open yet: await it "
                               "(db = await AsyncDataStore(path)) or use async with")


class AsyncDataStore:
    """A DataStore for asyncio code, with DataStore's arguments (see it). It
    opens in a worker thread (a scan of the file, or a wait for another
    opener's lock) when awaited or entered::

        db = await AsyncDataStore("app.fkv", durability="fsync")
        async with AsyncDataStore("app.fkv") as db: ...

    ``AsyncDataStore.wrap(db)`` wraps a DataStore that is open already."""

    __slots__ = ("_db", "_inline_writes", "_how", "_txn_task", "_txn_turn")

    def __init__(self, path: Optional[PathArg] = None, *,
                 max_file_size: int = DEFAULT_MAX_FILE_SIZE, durability: str = "process",
                 lock_timeout: float = 0.0,
                 max_transaction_bytes: int = DEFAULT_MAX_TRANSACTION_BYTES) -> None:
        self._how: Callable[[], DataStore] = functools.partial(
            DataStore, path, max_file_size=max_file_size, durability=durability,
            lock_timeout=lock_timeout, max_transaction_bytes=max_transaction_bytes)
        self._db: Any = _NotOpen()
        self._inline_writes = False
        # the task whose transaction holds (or is taking) the writer slot
        self._txn_task: Optional[asyncio.Task[Any]] = None
        self._txn_turn: Optional[asyncio.Lock] = None  # one task's transaction at a time

    @classmethod
    def wrap(cls, db: DataStore) -> "AsyncDataStore":
        """An AsyncDataStore over a DataStore that is open already."""
        self = cls.__new__(cls)
        self._how = lambda: db
        self._db = db
        self._inline_writes = db.durability == "process"
        self._txn_task = None
        self._txn_turn = None
        return self

    @classmethod
    async def open(cls, path: Optional[PathArg] = None, **options: Any) -> "AsyncDataStore":
        """``await AsyncDataStore(path, **options)``, as a classmethod."""
        return await cls(path, **options)

    def __await__(self) -> Generator[Any, None, "AsyncDataStore"]:
        return self._opened().__await__()

    async def _opened(self) -> "AsyncDataStore":
        if isinstance(self._db, _NotOpen):
            db = await _in_thread(self._how)
            self._db, self._inline_writes = db, db.durability == "process"
        return self

    @property
    def sync_store(self) -> DataStore:
        """The DataStore underneath, for code that is not async."""
        db: DataStore = self._db
        return db

    @property
    def path(self) -> Any:
        """The absolute pathlib.Path of the data file."""
        return self._db.path

    @property
    def durability(self) -> str:
        """The durability mode, "process" or "fsync": what a returned write survives."""
        mode: str = self._db.durability
        return mode

    @property
    def max_transaction_bytes(self) -> int:
        """The most bytes of records one transaction or batch call may hold."""
        limit: int = self._db.max_transaction_bytes
        return limit

    # -- reads: inline when the answer is in memory ---------------------------

    async def read(self, key: str) -> Any:
        """The value stored under key, as a new dict.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
        """
        value = self._db._try_read(key)
        if value is _WOULD_WAIT:
            value = await _in_thread(functools.partial(self._db.read, key))
        return value

    async def get(self, key: str, default: Any = None) -> Any:
        """read(key), or default when the key is missing or expired.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
        """
        value = self._db._try_read(key, default)
        if value is _WOULD_WAIT:
            value = await _in_thread(functools.partial(self._db.get, key, default))
        return value

    async def ttl(self, key: str) -> Optional[float]:
        """Seconds left before key expires (a float), or None if it never does.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
        """
        left = self._db._try_ttl(key)
        if left is _WOULD_WAIT:
            left = await _in_thread(functools.partial(self._db.ttl, key))
        result: Optional[float] = left
        return result

    async def contains(self, key: object) -> bool:
        """``key in db``, awaited."""
        found = self._db._try_contains(key)
        if found is _WOULD_WAIT:
            found = await _in_thread(functools.partial(self._db.__contains__, key))
        return bool(found)

    # -- writes: inline into the page cache, or in a thread when they flush --

    async def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
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
        """
        await self._write(self._db.create, key, value, ttl)

    async def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """Create the key or replace its value and its expiry, in one step.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds what JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            StoreFullError: the write would take the file past max_file_size.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
        """
        await self._write(self._db.put, key, value, ttl)

    async def touch(self, key: str, ttl: Optional[int]) -> None:
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
        """
        await self._write(self._db.touch, key, ttl)

    async def delete(self, key: str) -> None:
        """Remove a live key.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            KeyExpiredError: the key's time-to-live has passed.
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
        """
        await self._write(self._db.delete, key)

    async def create_until(self, key: str, value: Any, deadline_ms: Optional[int],
                           replace: bool = False) -> None:
        """create (put with replace) with an absolute deadline: as DataStore."""
        await self._write(self._db.create_until, key, value, deadline_ms, replace)

    async def read_with_deadline(self, key: str) -> tuple[Any, Optional[int]]:
        """(value, deadline in ms since the Unix epoch, or None): as DataStore."""
        return await _in_thread(functools.partial(self._db.read_with_deadline, key))

    async def get_many(self, keys: Any) -> dict[str, Any]:
        """The live keys among keys and their values, as DataStore.get_many."""
        return await _in_thread(functools.partial(self._db.get_many, list(keys)))

    async def put_many(self, items: Any, ttl: Optional[int] = None) -> None:
        """DataStore.put_many: one atomic group."""
        await self._write(self._db.put_many, items, ttl)

    async def delete_many(self, keys: Any) -> int:
        """DataStore.delete_many: one atomic group; how many were deleted."""
        result: int = await self._write(self._db.delete_many, keys)
        return result

    def transaction(self) -> "AsyncTransaction":
        """``async with db.transaction() as tx:``: DataStore.transaction for
        asyncio. The writer slot is taken in a worker thread; ``tx``'s calls
        (``tx.read``, ``tx.put``, ...) are plain calls, run inline; the
        commit runs in a worker thread when it must flush. Writes of other
        tasks wait for it; a write through the store from the task that
        holds it raises TransactionError."""
        return AsyncTransaction(self)

    async def _write(self, call: Callable[..., Any], *args: Any) -> Any:
        if self._txn_task is not None:
            # a task's transaction holds the slot: waiting for it inline
            # would stall the loop that must run that task
            if self._txn_task is asyncio.current_task():
                raise TransactionError(
                    "this task holds an open transaction on the store: write through it "
                    "(tx.put, tx.delete, ...) or end it first")
            return await _in_thread(functools.partial(call, *args))
        if self._inline_writes:
            return call(*args)
        return await _in_thread(functools.partial(call, *args))

    # -- iteration: each batch read in a worker thread ----------------------

    def keys(self, prefix: Optional[str] = None) -> AsyncIterator[str]:
        """Live keys (starting with prefix), as DataStore.keys promises."""
        return _keys(self._db, prefix)

    def __aiter__(self) -> AsyncIterator[str]:
        return _keys(self._db, None)

    async def items(self, prefix: Optional[str] = None) -> AsyncIterator[tuple[str, Any]]:
        """(key, value) pairs, as DataStore.items promises."""
        async for key in _keys(self._db, prefix):
            value = await self.get(key, _MISSING)
            if value is not _MISSING:  # deleted or expired since its batch
                yield key, value

    # -- the rest: in a worker thread -----------------------------------------

    async def count(self) -> int:
        """``len(db)``, awaited (it may read the headers of keys with a TTL)."""
        return await _in_thread(self._db.__len__)

    async def stats(self) -> dict[str, Any]:
        """A dict of the store's counters (see the how-to guide "Read stats()").

        Raises:
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
        """
        return await _in_thread(self._db.stats)

    async def compact(self, progress: Optional[_core.Progress] = None) -> None:
        """Rewrite the file with only its live records (on Redis: nothing to do,
        the server reclaims memory itself).

        Raises:
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
        """
        await _in_thread(functools.partial(self._db.compact, progress))

    async def backup(self, dest: PathArg, progress: Optional[_core.Progress] = None) -> Any:
        """DataStore.backup, in a worker thread; returns the copy's path."""
        return await _in_thread(functools.partial(self._db.backup, dest, progress))

    async def sync(self) -> None:
        """Flush everything written before to stable storage (on Redis: check
        that the server answers; its durability is its own).

        Raises:
            StoreClosedError: the store is closed.
            StoreIOError: a system call on the file failed.
        """
        await _in_thread(self._db.sync)

    async def close(self) -> None:
        """Close the store; waits (in a worker thread) for calls in flight."""
        if not isinstance(self._db, _NotOpen):
            await _in_thread(self._db.close)

    async def __aenter__(self) -> "AsyncDataStore":
        return await self._opened()

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        await self.close()

    def __repr__(self) -> str:
        if isinstance(self._db, _NotOpen):
            return "AsyncDataStore(<not open yet>)"
        return f"AsyncDataStore({str(self._db.path)!r})"


class AsyncTransaction:
    """What ``AsyncDataStore.transaction()`` returns: entered with ``async
    with``, it gives a fastkv.Transaction whose calls run inline; leaving the
    block commits it (an exception discards it)."""

    __slots__ = ("_store", "_tx")

    def __init__(self, store: AsyncDataStore) -> None:
        self._store = store
        self._tx: Optional[Transaction] = None

    async def __aenter__(self) -> Transaction:
        store, task = self._store, asyncio.current_task()
        if store._txn_task is not None and store._txn_task is task:
            raise TransactionError(
                "this task already holds an open transaction on the store: transactions "
                "do not nest")
        if store._txn_turn is None:
            store._txn_turn = asyncio.Lock()
        await store._txn_turn.acquire()  # another task's transaction: wait here
        store._txn_task = task
        try:
            # a token of its own: the task's calls run on several threads
            self._tx = await _in_thread(
                functools.partial(Transaction, store._db, id(self) or 1))
        except BaseException:
            store._txn_task = None
            store._txn_turn.release()
            raise
        return self._tx

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        tx, store = self._tx, self._store
        assert tx is not None
        try:
            if not tx.active:
                return
            end = tx.commit if exc_type is None else tx.rollback
            if store._inline_writes and exc_type is None:
                end()
            else:
                await _in_thread(end)
        finally:
            store._txn_task = None
            if store._txn_turn is not None:
                store._txn_turn.release()


async def open(location: Optional[PathArg] = None, **options: Any) -> Any:
    """Open the store at location for asyncio code: a path (None: the default
    store) gives an AsyncDataStore, a redis://, rediss:// or unix:// URL an
    AsyncRedisStore. Raises what fastkv.open() raises."""
    if url_scheme(location) is not None:
        from fastkv.redis.aio import AsyncRedisStore

        return await AsyncRedisStore(str(location), **options)
    return await AsyncDataStore(location, **options)


def __getattr__(name: str) -> Any:
    if name == "AsyncRedisStore":  # redis.asyncio: only for those who use it
        from fastkv.redis.aio import AsyncRedisStore

        return AsyncRedisStore
    raise AttributeError(f"module 'fastkv.aio' has no attribute {name!r}")


async def _keys(db: DataStore, prefix: Optional[str]) -> AsyncIterator[str]:
    it = db.keys(prefix)
    while True:
        batch = await _in_thread(it._next_batch)
        if batch is None:
            return
        for key in batch:
            yield key


async def _in_thread(call: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, call)

