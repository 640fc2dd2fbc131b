"""AsyncRedisStore: RedisStore for asyncio code, on redis.asyncio.

Every method is a coroutine with RedisStore's arguments, results and
exceptions: the body of each call is the same code as RedisStore's
(commands.py), run here on an asyncio client. Open one with
``db = await AsyncRedisStore(url)``, ``async with AsyncRedisStore(url) as db:``
or ``await fastkv.aio.open("redis://...")``.
"""

from __future__ import annotations

import asyncio
import inspect
from types import TracebackType
from typing import Any, AsyncIterator, Generator, Iterable, Optional, Type

from fastkv.redis.commands import DEFAULT_URL, ERRORS, Call, Closed, Finished, Out, Plan, \
    RedisCommands, advance, redis_module
from fastkv.redis.mapping import Mapping, client_options, translate
from fastkv.redis.transaction import AsyncRedisTransaction

__all__ = ["AsyncRedisStore", "IN_FLIGHT"]

# Commands one AsyncRedisStore has in flight at most. redis-py's pools
# refuse a call past their size (its cluster client: 100 per node) instead of
# queueing it; fastkv queues it, so a thousand gathered calls all succeed.
IN_FLIGHT = 64


class _NotOpen:
    """Stands in for the client until the store is awaited or entered."""

    def __getattr__(self, name: str) -> Any:
        from fastkv.errors import StoreClosedError

        raise StoreClosedError("this AsyncRedisStore is not open yet: await it "
                               "(db = await AsyncRedisStore(url)) or use async with")


class AsyncRedisStore(RedisCommands):
    """RedisStore's API, every method awaited; RedisStore's arguments (see it).
    Connects when awaited or entered."""

    __slots__ = ("_c", "_m", "_owned", "_cluster", "_export", "_gate", "_how")

    def __init__(self, url: str = DEFAULT_URL, *, namespace: str = "fastkv",
                 client: Any = None, cluster: Optional[bool] = None,
                 timeout: float = 5.0) -> None:
        self._m = Mapping(namespace, url)  # a bad namespace is refused at once
        self._how = (url, client, cluster, timeout)
        self._c: Any = _NotOpen()
        self._cluster = False
        self._owned = client is None
        self._gate = asyncio.Semaphore(IN_FLIGHT)

    @classmethod
    async def open(cls, url: str = DEFAULT_URL, *, namespace: str = "fastkv",
                   client: Any = None, cluster: Optional[bool] = None,
                   timeout: float = 5.0) -> "AsyncRedisStore":
        """``await AsyncRedisStore(url, ...)``, as a classmethod."""
        return await cls(url, namespace=namespace, client=client, cluster=cluster,
                         timeout=timeout)

    def __await__(self) -> Generator[Any, None, "AsyncRedisStore"]:
        return self._connect().__await__()

    async def _connect(self) -> "AsyncRedisStore":
        if not isinstance(self._c, _NotOpen):
            return self
        url, client, cluster, timeout = self._how
        m, redis = self._m, redis_module()
        if client is None:
            opts = client_options(timeout, asyncio=True)
            try:
                if cluster is None:
                    probe = redis.asyncio.Redis.from_url(url, **opts)
                    try:
                        cluster = bool((await probe.info("cluster")).get("cluster_enabled"))
                    finally:
                        await probe.aclose()
                if cluster:
                    client = redis.asyncio.RedisCluster.from_url(url, **opts)
                    await client.initialize()
                else:
                    client = redis.asyncio.Redis.from_url(url, **opts)
            except ERRORS as e:
                raise translate(e, m.where) from None
            except ValueError as e:
                from fastkv.errors import ConfigError

                raise ConfigError(f"{m.where}: {e}") from None
        else:
            cluster = isinstance(client, redis.asyncio.RedisCluster)
        self._setup(client, bool(cluster), m)
        return self

    # -- the executor: each command awaited, at most IN_FLIGHT at once -------------

    async def _run(self, plan: Plan) -> Any:
        reply: Any = None
        failed: Optional[BaseException] = None
        while not isinstance(step := advance(plan, reply, failed), Finished):
            reply, failed = await self._do(step)
        return step.value

    async def _do(self, call: Call) -> tuple[Any, Optional[BaseException]]:
        try:
            async with self._gate:
                reply = call.command(*call.args, **call.kw)
                return (await reply if inspect.isawaitable(reply) else reply), None
        except ERRORS as e:
            return None, self._fail(e, call)

    async def _walk(self, plan: Plan) -> AsyncIterator[Any]:
        reply: Any = None
        failed: Optional[BaseException] = None
        while not isinstance(step := advance(plan, reply, failed), Finished):
            if isinstance(step, Out):
                reply, failed = None, None
                yield step.batch
            else:
                reply, failed = await self._do(step)

    # -- RedisStore's calls, awaited ------------------------------------------------

    async def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """Store value under a new key, expiring after ttl seconds (None: never).

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds what JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            KeyExistsError: the key is live already.
            StoreFullError: the server's maxmemory is reached (OOM).
            StoreUnavailableError: the server did not answer (a write then may or
                may not have happened: it is never sent twice).
        """
        await self._run(self._create_plan(key, value, ttl, False))

    async def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        """Create the key or replace its value and its expiry, in one step.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidValueError: the value is not a JSON object, or holds what JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            StoreFullError: the server's maxmemory is reached (OOM).
            StoreUnavailableError: the server did not answer (a write then may or
                may not have happened: it is never sent twice).
        """
        await self._run(self._create_plan(key, value, ttl, True))

    async def read(self, key: str) -> Any:
        """The value stored under key, as a new dict.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreUnavailableError: the server did not answer.
        """
        return await self._run(self._get_plan(key))

    async def get(self, key: str, default: Any = None) -> Any:
        """read(key), or default when the key is missing or expired.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreUnavailableError: the server did not answer.
        """
        return await self._run(self._get_plan(key, default))

    async def delete(self, key: str) -> None:
        """Remove a live key.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            StoreUnavailableError: the server did not answer (a write then may or
                may not have happened: it is never sent twice).
        """
        await self._run(self._delete_plan(key))

    async def ttl(self, key: str) -> Optional[float]:
        """Seconds left before key expires (a float), or None if it never does.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            StoreUnavailableError: the server did not answer.
        """
        left: Optional[float] = await self._run(self._ttl_plan(key))
        return left

    async def touch(self, key: str, ttl: Optional[int]) -> None:
        """A new time-to-live for key, counted from now (None: never expire);
        the value is kept.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            KeyNotFoundError: the key is not in the store.
            StoreFullError: the server's maxmemory is reached (OOM).
            StoreUnavailableError: the server did not answer (a write then may or
                may not have happened: it is never sent twice).
        """
        await self._run(self._touch_plan(key, ttl))

    async def contains(self, key: object) -> bool:
        """``key in db``, awaited."""
        return bool(await self._run(self._contains_plan(key)))

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """A dict of the live keys among keys and their values, as of one moment;
        missing and expired keys are left out.

        Raises:
            InvalidKeyError: a key is not a str of 1 to 32 characters.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreUnavailableError: the server did not answer.
        """
        found: dict[str, Any] = await self._run(self._get_many_plan(keys))
        return found

    async def put_many(self, items: Any, ttl: Optional[int] = None) -> None:
        """put() of every (key, value) pair of a mapping or iterable, as one
        atomic group: all of them or none.

        Raises:
            InvalidKeyError: a key is not a str of 1 to 32 characters.
            InvalidValueError: a value is not a JSON object, or holds what JSON cannot.
            ValueTooLargeError: the encoded value is over 16 KiB.
            InvalidTTLError: ttl is not None or an int from 1 to 315,360,000.
            StoreFullError: the server's maxmemory is reached (OOM).
            StoreUnavailableError: the server did not answer (a write then may or
                may not have happened: it is never sent twice).
        """
        await self._run(self._put_many_plan(items, ttl))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete the live keys among keys as one atomic group; returns how
        many it deleted.

        Raises:
            InvalidKeyError: a key is not a str of 1 to 32 characters.
            StoreUnavailableError: the server did not answer (a write then may or
                may not have happened: it is never sent twice).
        """
        n: int = await self._run(self._delete_many_plan(keys))
        return n

    def transaction(self) -> AsyncRedisTransaction:
        """``async with db.transaction() as tx:``: RedisStore.transaction()."""
        return AsyncRedisTransaction(self)

    async def count(self) -> int:
        """``len(db)``, awaited: a SCAN walk (see RedisStore.__len__)."""
        n: int = await self._run(self._count_plan())
        return n

    def keys(self, prefix: Optional[str] = None) -> AsyncIterator[str]:
        """The live keys, optionally only those starting with prefix, each once.

        Raises:
            StoreUnavailableError: the server did not answer.
        """
        return self._keys(prefix)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._keys(None)

    async def _keys(self, prefix: Optional[str]) -> AsyncIterator[str]:
        async for batch in self._walk(self._walk_plan(prefix)):
            for key in batch:
                yield key

    async def items(self, prefix: Optional[str] = None) -> AsyncIterator[tuple[str, Any]]:
        """(key, value) pairs of the live keys, optionally only those whose key
        starts with prefix.

        Raises:
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreUnavailableError: the server did not answer.
        """
        async for batch in self._walk(self._items_plan(prefix)):
            for pair in batch:
                yield pair

    async def stats(self) -> dict[str, Any]:
        """A dict of the store's counters (see the how-to guide "Read stats()").

        Raises:
            StoreUnavailableError: the server did not answer.
        """
        st: dict[str, Any] = await self._run(self._stats_plan())
        return st

    async def compact(self, progress: Any = None) -> None:
        """Nothing to do: the server reclaims the memory of deleted keys."""

    async def sync(self) -> None:
        """Durability is the server's: checks that it answers (a PING)."""
        await self._run(self._sync_plan())

    async def close(self) -> None:
        """Close the store (the connection, for a server); safe to call twice.

        Raises:
            StoreUnavailableError: the server did not answer.
        """
        if isinstance(self._c, (Closed, _NotOpen)):
            self._c = Closed(self._m.where)
            return
        client, self._c = self._c, Closed(self._m.where)
        if self._owned:
            await client.aclose()

    async def __aenter__(self) -> "AsyncRedisStore":
        return await self._connect()

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        await self.close()

    @property
    def namespace(self) -> str:
        """The prefix of this store's keys in Redis ("" for the whole keyspace)."""
        return self._m.namespace

    @property
    def client(self) -> Any:
        """The redis.asyncio client underneath."""
        return self._c

    def __repr__(self) -> str:
        return f"AsyncRedisStore({self._m.url!r}, namespace={self._m.namespace!r})"

    async def read_with_deadline(self, key: str) -> tuple[Any, Optional[int]]:
        """(value, deadline in ms since the Unix epoch, or None): as DataStore."""
        pair: tuple[Any, Optional[int]] = await self._run(self._read_with_deadline_plan(key))
        return pair

    async def create_until(self, key: str, value: Any, deadline_ms: Optional[int],
                           replace: bool = False) -> None:
        """create (put with replace) with an absolute deadline: as DataStore."""
        await self._run(self._create_until_plan(key, value, deadline_ms, replace))
