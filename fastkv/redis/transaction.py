"""Optimistic transactions on RedisStore and AsyncRedisStore: WATCH, then
MULTI/EXEC.

Many processes share a Redis store, so a transaction cannot hold a writer
slot as a DataStore's does. It works as Redis's own check-and-set: every key
the transaction reads is WATCHed on a connection of its own (a redis-py
transaction pipeline, which holds one connection until it is reset) before
it is read; the writes are kept here, so that the transaction's reads see
them; the commit sends them in one MULTI/EXEC. If another client changed a
watched key meanwhile, Redis refuses the EXEC and writes nothing: that is
ConflictError, and the caller may run the transaction again. On a Redis
Cluster every key of one transaction must hash to one slot (MULTI/EXEC runs
on one node); a key of another slot is refused with TransactionError before
any command about it is sent. The plans here run on either executor (sync or
asyncio), as the store's own calls do (commands.py).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Iterable, Optional

from fastkv.errors import KeyExistsError, KeyNotFoundError, TransactionError
from fastkv.redis.commands import Call, Plan
from fastkv.redis.mapping import Mapping

__all__ = ["RedisTransaction", "AsyncRedisTransaction", "MAX_TRANSACTION_BYTES"]

# What one transaction may hold of new values (the file store's default
# max_transaction_bytes): its writes wait here until the commit.
MAX_TRANSACTION_BYTES = 16 * 1024 * 1024

# key -> (its Redis name, value bytes or None for a delete, deadline ms or None)
_Change = tuple[bytes, Optional[bytes], Optional[int]]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _send(pipe: Any, changes: list[_Change]) -> Any:
    """MULTI, the writes, EXEC: EXEC's reply (a coroutine on asyncio)."""
    pipe.multi()
    for name, data, deadline in changes:
        if data is None:
            pipe.delete(name)
        else:
            pipe.set(name, data, pxat=deadline)
    return pipe.execute()


class _Plans:
    """The plans of a transaction's calls; the two fronts below run them."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._pipe: Any = None  # made at the first WATCH
        self._watched: set[bytes] = set()
        self._changes: dict[str, _Change] = {}
        self._bytes = 0
        self._slot: Optional[int] = None
        self._open = True
        self._thread = threading.get_ident()

    @property
    def _m(self) -> Mapping:
        m: Mapping = self._store._m
        return m

    # ---- its state --------------------------------------------------------------

    def _check(self) -> None:
        if not self._open:
            raise TransactionError("this transaction has ended: begin a new one")
        if threading.get_ident() != self._thread:
            raise TransactionError("a transaction is used only by the thread that began it")

    def _name(self, key: Any) -> bytes:
        """key's Redis name, after the one-slot rule of a cluster."""
        name = self._m.name(key)
        if self._store._cluster:
            from redis.crc import key_slot

            slot = key_slot(name)
            if self._slot is None:
                self._slot = slot
            elif slot != self._slot:
                raise TransactionError(
                    f"{self._m.where}: {key!r} hashes to slot {slot}, and this transaction's "
                    f"keys to slot {self._slot}; on a Redis Cluster every key of one "
                    f"transaction must share one hash slot (give them a common {{tag}}). "
                    f"Nothing was sent for it and the transaction goes on")
        return name

    def _watch(self, key: Any, name: bytes) -> Plan:
        if self._pipe is None:
            self._pipe = self._store._c.pipeline(transaction=True)
        if name not in self._watched:
            yield Call(self._pipe.watch, (name,), {}, key)
            self._watched.add(name)

    def _state(self, key: Any, want_ttl: bool = False) -> Plan:
        """(value bytes or None, deadline ms or None) of key as this
        transaction sees it: its own write, or the server's, watched first
        (the server's deadline only if want_ttl)."""
        change = self._changes.get(key) if type(key) is str else None
        if change is not None:
            _, data, deadline = change
            if data is not None and deadline is not None and deadline <= _now_ms():
                data = None
            return data, deadline
        name = self._name(key)
        yield from self._watch(key, name)
        raw = yield Call(self._pipe.get, (name,), {}, key)
        if raw is None or not want_ttl:
            return raw, None
        left = yield Call(self._pipe.pttl, (name,), {}, key)
        return raw, (_now_ms() + left if left is not None and left > 0 else None)

    def _stage(self, key: str, change: _Change) -> None:
        old = self._changes.get(key)
        total = self._bytes - (len(old[1] or b"") if old else 0) + len(change[1] or b"")
        if total > MAX_TRANSACTION_BYTES:
            raise TransactionError(
                f"this transaction would hold {total:,} bytes of values, over "
                f"{MAX_TRANSACTION_BYTES:,}; the call changed nothing and the "
                f"transaction goes on")
        self._changes[key] = change
        self._bytes = total

    # ---- the calls -----------------------------------------------------------------

    def _read_plan(self, key: Any, default: Any = KeyNotFoundError) -> Plan:
        self._check()
        data, _ = yield from self._state(key)
        if data is None:
            if default is KeyNotFoundError:
                raise KeyNotFoundError(key, self._m.where)
            return default
        return self._m.decode(key, data)

    def _ttl_plan(self, key: Any) -> Plan:
        self._check()
        data, deadline = yield from self._state(key, want_ttl=True)
        if data is None:
            raise KeyNotFoundError(key, self._m.where)
        return None if deadline is None else max(0.0, (deadline - _now_ms()) / 1000.0)

    def _contains_plan(self, key: Any) -> Plan:
        self._check()
        try:
            self._m.name(key)
        except ValueError:  # InvalidKeyError: never in a store
            return False
        data, _ = yield from self._state(key)
        return data is not None

    def _get_many_plan(self, keys: Iterable[Any]) -> Plan:
        self._check()
        out: dict[str, Any] = {}
        for key in keys:
            data, _ = yield from self._state(key)
            if data is not None:
                out[key] = self._m.decode(key, data)
        return out

    def _set_plan(self, key: Any, value: Any, ttl: Optional[int], create: bool) -> Plan:
        self._check()
        m = self._m
        name = self._name(key)
        data, px = m.value(key, value), m.expiry_ms(key, ttl)
        if create:
            live, _ = yield from self._state(key)
            if live is not None:
                raise KeyExistsError(key, m.where)
        self._stage(key, (name, data, _now_ms() + px if px else None))

    def _put_many_plan(self, items: Any, ttl: Optional[int]) -> Plan:
        self._check()
        m = self._m
        pairs = items.items() if hasattr(items, "items") else items
        staged: dict[str, _Change] = {}
        for key, value in pairs:
            px = m.expiry_ms(key, ttl)
            staged[key] = (self._name(key), m.value(key, value), _now_ms() + px if px else None)
        if not staged:
            m.expiry_ms("", ttl)
        saved = dict(self._changes), self._bytes
        try:
            for key, change in staged.items():
                self._stage(key, change)
        except TransactionError:
            self._changes, self._bytes = saved
            raise
        return None
        yield  # a plan that sends no command

    def _touch_plan(self, key: Any, ttl: Optional[int]) -> Plan:
        self._check()
        px = self._m.expiry_ms(key, ttl)
        data, _ = yield from self._state(key)
        if data is None:
            raise KeyNotFoundError(key, self._m.where)
        self._stage(key, (self._name(key), data, _now_ms() + px if px else None))

    def _delete_plan(self, key: Any) -> Plan:
        self._check()
        data, _ = yield from self._state(key)
        if data is None:
            raise KeyNotFoundError(key, self._m.where)
        self._stage(key, (self._name(key), None, None))

    def _delete_many_plan(self, keys: Iterable[Any]) -> Plan:
        self._check()
        gone: list[str] = []
        for key in dict.fromkeys(keys):
            data, _ = yield from self._state(key)
            if data is not None:
                gone.append(key)
        for key in gone:
            self._stage(key, (self._name(key), None, None))
        return len(gone)

    # ---- its end ------------------------------------------------------------------

    def _commit_plan(self) -> Plan:
        self._check()
        self._open = False
        changes = list(self._changes.values())
        self._changes = {}
        try:
            if changes:
                if self._pipe is None:
                    self._pipe = self._store._c.pipeline(transaction=True)
                yield Call(_send, (self._pipe, changes), {}, None, True)
        except Exception:  # ConflictError among them: the connection goes back too
            yield from self._release()
            raise
        yield from self._release()

    def _rollback_plan(self) -> Plan:
        self._check()
        self._open = False
        self._changes = {}
        yield from self._release()

    def _release(self) -> Plan:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            yield Call(pipe.reset)  # UNWATCH, and the connection back to the pool


class RedisTransaction(_Plans):
    """An optimistic transaction on a RedisStore: ``with db.transaction() as
    tx:``. The store's calls, with the same arguments, results and errors;
    its reads see its own writes. Leaving the block commits (ConflictError,
    nothing written, if another client changed a key it read); an
    exception inside it discards every change."""

    def read(self, key: str) -> Any:
        return self._store._run(self._read_plan(key))

    def get(self, key: str, default: Any = None) -> Any:
        return self._store._run(self._read_plan(key, default))

    def ttl(self, key: str) -> Optional[float]:
        left: Optional[float] = self._store._run(self._ttl_plan(key))
        return left

    def __contains__(self, key: object) -> bool:
        return bool(self._store._run(self._contains_plan(key)))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        found: dict[str, Any] = self._store._run(self._get_many_plan(keys))
        return found

    def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        self._store._run(self._set_plan(key, value, ttl, True))

    def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        self._store._run(self._set_plan(key, value, ttl, False))

    def put_many(self, items: Any, ttl: Optional[int] = None) -> None:
        self._store._run(self._put_many_plan(items, ttl))

    def touch(self, key: str, ttl: Optional[int]) -> None:
        self._store._run(self._touch_plan(key, ttl))

    def delete(self, key: str) -> None:
        self._store._run(self._delete_plan(key))

    def delete_many(self, keys: Iterable[str]) -> int:
        n: int = self._store._run(self._delete_many_plan(keys))
        return n

    __getitem__ = read
    __setitem__ = put
    __delitem__ = delete

    def commit(self) -> None:
        """Send the writes in one MULTI/EXEC. Raises ConflictError (nothing
        written) if another client changed a key this transaction read."""
        self._store._run(self._commit_plan())

    def rollback(self) -> None:
        self._store._run(self._rollback_plan())

    @property
    def active(self) -> bool:
        return self._open

    def __enter__(self) -> "RedisTransaction":
        self._check()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._open:
            self.commit() if exc_type is None else self.rollback()

    def __del__(self) -> None:
        pipe = getattr(self, "_pipe", None)
        if pipe is not None:
            try:
                pipe.reset()
            except Exception:
                pass


class AsyncRedisTransaction(_Plans):
    """RedisTransaction for an AsyncRedisStore: ``async with
    db.transaction() as tx:``, every call awaited."""

    def _check(self) -> None:  # asyncio: one task's, not one thread's
        if not self._open:
            raise TransactionError("this transaction has ended: begin a new one")

    async def read(self, key: str) -> Any:
        return await self._store._run(self._read_plan(key))

    async def get(self, key: str, default: Any = None) -> Any:
        return await self._store._run(self._read_plan(key, default))

    async def ttl(self, key: str) -> Optional[float]:
        left: Optional[float] = await self._store._run(self._ttl_plan(key))
        return left

    async def contains(self, key: object) -> bool:
        return bool(await self._store._run(self._contains_plan(key)))

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        found: dict[str, Any] = await self._store._run(self._get_many_plan(keys))
        return found

    async def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        await self._store._run(self._set_plan(key, value, ttl, True))

    async def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        await self._store._run(self._set_plan(key, value, ttl, False))

    async def put_many(self, items: Any, ttl: Optional[int] = None) -> None:
        await self._store._run(self._put_many_plan(items, ttl))

    async def touch(self, key: str, ttl: Optional[int]) -> None:
        await self._store._run(self._touch_plan(key, ttl))

    async def delete(self, key: str) -> None:
        await self._store._run(self._delete_plan(key))

    async def delete_many(self, keys: Iterable[str]) -> int:
        n: int = await self._store._run(self._delete_many_plan(keys))
        return n

    async def commit(self) -> None:
        await self._store._run(self._commit_plan())

    async def rollback(self) -> None:
        await self._store._run(self._rollback_plan())

    @property
    def active(self) -> bool:
        return self._open

    async def __aenter__(self) -> "AsyncRedisTransaction":
        self._check()
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._open:
            if exc_type is None:
                await self.commit()
            else:
                await self.rollback()

