"""AsyncRedisStore: RedisStore for asyncio code, on redis.asyncio.

Every method is a coroutine with RedisStore's arguments, results and
exceptions (the mapping and the checks are the same code: redis_mapping.py).
Make one with ``await fastkv.aio.open("redis://...")`` or
``await AsyncRedisStore.open(url)``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, AsyncIterator, Optional, Type

from fastkv.errors import KeyExistsError, KeyNotFoundError
from fastkv.redis_mapping import EXPORT_SCRIPT, SCAN_COUNT, Mapping, client_options, translate
from fastkv.redis_store import _ERRORS, DEFAULT_URL, _Closed, _redis, _server_name

__all__ = ["AsyncRedisStore", "IN_FLIGHT"]

# Commands one AsyncRedisStore has in flight at most. redis-py's pools
# refuse a call past their size (its cluster client: 100 per node) instead of
# queueing it; fastkv queues it, so a thousand gathered calls all succeed.
IN_FLIGHT = 64


class AsyncRedisStore:
    """RedisStore's API, every method awaited. See RedisStore for the options."""

    __slots__ = ("_c", "_m", "_owned", "_cluster", "_export", "_gate")

    def __init__(self, client: Any, cluster: bool, mapping: Mapping, owned: bool) -> None:
        self._c, self._cluster, self._m, self._owned = client, cluster, mapping, owned
        self._export = client.register_script(EXPORT_SCRIPT)
        self._gate = asyncio.Semaphore(IN_FLIGHT)

    async def _run(self, key: Any, write: bool, command: Any, *args: Any, **kw: Any) -> Any:
        """One command, at most IN_FLIGHT at once, its errors made fastkv's."""
        try:
            async with self._gate:
                return await command(*args, **kw)
        except _ERRORS as e:
            raise translate(e, self._m.where, key, write=write) from None

    @classmethod
    async def open(cls, url: str = DEFAULT_URL, *, namespace: str = "fastkv",
                   client: Any = None, cluster: Optional[bool] = None,
                   timeout: float = 5.0) -> "AsyncRedisStore":
        m = Mapping(namespace, url)
        redis = _redis()
        if client is not None:
            return cls(client, isinstance(client, redis.asyncio.RedisCluster), m, False)
        opts = client_options(timeout, asyncio=True)
        try:
            if cluster is None:
                probe = redis.asyncio.Redis.from_url(url, **opts)
                try:
                    cluster = bool((await probe.info("cluster")).get("cluster_enabled"))
                finally:
                    await probe.aclose()
            if cluster:
                made = redis.asyncio.RedisCluster.from_url(url, **opts)
                await made.initialize()
            else:
                made = redis.asyncio.Redis.from_url(url, **opts)
        except _ERRORS as e:
            raise translate(e, m.where) from None
        except ValueError as e:
            from fastkv.errors import ConfigError

            raise ConfigError(f"{m.where}: {e}") from None
        return cls(made, bool(cluster), m, True)

    async def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        m = self._m
        name, data, px = m.name(key), m.value(key, value), m.expiry_ms(key, ttl)
        done = await self._run(key, True, self._c.set, name, data, nx=True, px=px)
        if not done:
            raise KeyExistsError(key, m.where)

    async def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        m = self._m
        name, data, px = m.name(key), m.value(key, value), m.expiry_ms(key, ttl)
        await self._run(key, True, self._c.set, name, data, px=px)

    async def read(self, key: str) -> Any:
        raw = await self._get(key)
        if raw is None:
            raise KeyNotFoundError(key, self._m.where)
        return self._m.decode(key, raw)

    async def get(self, key: str, default: Any = None) -> Any:
        raw = await self._get(key)
        return default if raw is None else self._m.decode(key, raw)

    async def _get(self, key: str) -> Any:
        return await self._run(key, False, self._c.get, self._m.name(key))

    async def delete(self, key: str) -> None:
        m = self._m
        name = m.name(key)
        gone = await self._run(key, True, self._c.delete, name)
        if not gone:
            raise KeyNotFoundError(key, m.where)

    async def ttl(self, key: str) -> Optional[float]:
        m = self._m
        name = m.name(key)
        left = await self._run(key, False, self._c.pttl, name)
        if left == -2:
            raise KeyNotFoundError(key, m.where)
        return None if left == -1 else left / 1000.0

    async def touch(self, key: str, ttl: Optional[int]) -> None:
        m = self._m
        name = m.name(key)
        px = None if ttl is None else m.expiry_ms(key, ttl)
        if px is not None:
            found = await self._run(key, True, self._c.pexpire, name, px)
        else:  # PERSIST answers 0 for a missing key and for one without expiry
            found = (await self._run(key, True, self._c.persist, name)
                     or await self._run(key, False, self._c.exists, name))
        if not found:
            raise KeyNotFoundError(key, m.where)

    async def contains(self, key: object) -> bool:
        """``key in db``, awaited."""
        m = self._m
        try:
            name = m.name(key)
        except ValueError:
            return False
        return bool(await self._run(key, False, self._c.exists, name))

    async def count(self) -> int:
        """``len(db)``, awaited: a SCAN walk (see RedisStore.__len__)."""
        n = 0
        async for batch in self._batches(None):
            n += len(batch)
        return n

    def keys(self, prefix: Optional[str] = None) -> AsyncIterator[str]:
        return self._keys(prefix)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._keys(None)

    async def _keys(self, prefix: Optional[str]) -> AsyncIterator[str]:
        async for batch in self._batches(prefix):
            for key in batch:
                yield key

    async def items(self, prefix: Optional[str] = None) -> AsyncIterator[tuple[str, Any]]:
        m = self._m
        async for batch in self._batches(prefix):
            pipe = self._c.pipeline(transaction=False)
            for key in batch:
                pipe.get(m.name(key))
            raws = await self._run(None, False, pipe.execute)
            for key, raw in zip(batch, raws):
                if raw is not None:
                    yield key, m.decode(key, raw)

    async def _batches(self, prefix: Optional[str]) -> AsyncIterator[list[str]]:
        """As RedisStore._batches: SCAN on each primary, repeats filtered."""
        m = self._m
        pattern = m.match(prefix)
        seen: set[str] = set()
        c = self._c
        try:
            nodes = c.get_primaries() if self._cluster else [None]
            for node in nodes:
                cursor = 0
                while True:
                    if node is None:
                        cursor, names = await c.scan(cursor, match=pattern, count=SCAN_COUNT)
                    else:
                        cursors, names = await c.scan(cursor, match=pattern, count=SCAN_COUNT,
                                                      target_nodes=node)
                        cursor = cursors[node.name] if isinstance(cursors, dict) else cursors
                    yield m.new_keys(names, seen)
                    if not cursor:
                        break
        except _ERRORS as e:
            raise translate(e, m.where) from None

    async def stats(self) -> dict[str, Any]:
        info = await self._run(None, False, self._c.info, "server")
        return {"live_keys": await self.count(),
                "url": self._m.where.rsplit(" (namespace", 1)[0],
                "namespace": self._m.namespace, "server": _server_name(info),
                "cluster": self._cluster}

    async def compact(self) -> None:
        """Nothing to do: the server reclaims the memory of deleted keys."""

    async def sync(self) -> None:
        """Nothing to do here: durability is the server's."""

    async def close(self) -> None:
        if isinstance(self._c, _Closed):
            return
        client, self._c = self._c, _Closed(self._m.where)
        if self._owned:
            await client.aclose()

    async def __aenter__(self) -> "AsyncRedisStore":
        return self

    async def __aexit__(self, exc_type: Optional[Type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        await self.close()

    @property
    def namespace(self) -> str:
        return self._m.namespace

    def __repr__(self) -> str:
        return f"AsyncRedisStore({self._m.where.rsplit(' (namespace', 1)[0]!r}, " \
               f"namespace={self._m.namespace!r})"

    async def _read_with_deadline(self, key: str) -> tuple[Any, Optional[int]]:
        m = self._m
        name = m.name(key)
        raw, deadline = await self._run(key, False, self._export, keys=[name])
        if raw is None:
            raise KeyNotFoundError(key, m.where)
        return m.decode(key, raw), (deadline if deadline > 0 else None)
