"""RedisStore: the DataStore API over Redis, Valkey or a Redis Cluster.

    from fastkv import RedisStore

    with RedisStore("redis://127.0.0.1:6379/0") as db:
        db.create("user:42", {"name": "Ann"}, ttl=3600)
        db.read("user:42")

For programs that outgrow one process or one machine: many processes and
machines may share one location. The commands each call maps to, and why
each is atomic, are in redis_mapping.py. Built on redis-py (the "redis"
extra); Valkey speaks the same protocol and works through the same client.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from fastkv.errors import (
    KeyExistsError,
    KeyNotFoundError,
    StoreClosedError,
)
from fastkv.redis_mapping import EXPORT_SCRIPT, SCAN_COUNT, Mapping, client_options, translate

__all__ = ["RedisStore", "DEFAULT_URL"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
_MISSING: Any = object()

try:
    from redis.exceptions import RedisError as _RedisError
    from redis.exceptions import RedisClusterException as _ClusterException

    _ERRORS: tuple[type[BaseException], ...] = (_RedisError, _ClusterException)
except ImportError:  # checked with a clear message when a store is made
    _ERRORS = ()


def _redis() -> Any:
    try:
        import redis
    except ImportError:
        from fastkv.errors import ConfigError

        raise ConfigError(
            'RedisStore needs redis-py: pip install "fastkv[redis]"') from None
    return redis


def connect(url: str, cluster: Optional[bool], timeout: float) -> tuple[Any, bool]:
    """A redis-py client for url, and whether it is a cluster client. With
    cluster=None, the server is asked (INFO cluster)."""
    redis = _redis()
    opts = client_options(timeout)
    if cluster is None:
        probe = redis.Redis.from_url(url, **opts)
        try:
            cluster = bool(probe.info("cluster").get("cluster_enabled"))
        finally:
            probe.close()
    if cluster:
        return redis.cluster.RedisCluster.from_url(url, **opts), True
    return redis.Redis.from_url(url, **opts), False


class _Closed:
    """Stands in for the client after close(): every call says so."""

    def __init__(self, where: str) -> None:
        self._where = where

    def __getattr__(self, name: str) -> Any:
        raise StoreClosedError(f"store {self._where} is closed")


class RedisStore:
    """A fastkv store in Redis, Valkey or a Redis Cluster.

    Args:
        url: ``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) or
            ``unix:///path/to/socket``.
        namespace: keys live in Redis as ``namespace:key``; "" keeps them
            unprefixed, the server's whole keyspace being the store's (a
            database given to it alone, or ``fastkv serve --resp-port``).
        client: a ready redis-py ``Redis`` or ``RedisCluster`` to use instead
            of one made from url (it is not closed by close()).
        cluster: True or False to say whether url is a cluster; None asks it.
        timeout: seconds to wait for the server before StoreUnavailableError.

    The same methods, limits and exceptions as DataStore; compact() does
    nothing. A KeyExpiredError may read as KeyNotFoundError: Redis forgets
    expired keys.
    """

    __slots__ = ("_c", "_m", "_owned", "_cluster", "_url", "_export", "__weakref__")

    def __init__(self, url: str = DEFAULT_URL, *, namespace: str = "fastkv",
                 client: Any = None, cluster: Optional[bool] = None,
                 timeout: float = 5.0) -> None:
        self._m = Mapping(namespace, url)
        self._url = url
        if client is not None:
            redis = _redis()
            self._c, self._owned = client, False
            self._cluster = isinstance(client, redis.cluster.RedisCluster)
        else:
            try:
                self._c, self._cluster = connect(url, cluster, timeout)
            except _ERRORS as e:
                raise translate(e, self._m.where) from None
            except ValueError as e:  # redis-py's word on a malformed URL
                from fastkv.errors import ConfigError

                raise ConfigError(f"{self._m.where}: {e}") from None
            self._owned = True
        self._export = self._c.register_script(EXPORT_SCRIPT)

    # -- the calls of DataStore -------------------------------------------------

    def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        m = self._m
        self._set(key, m.name(key), m.value(key, value), True, px=m.expiry_ms(key, ttl))

    def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
        m = self._m
        self._set(key, m.name(key), m.value(key, value), False, px=m.expiry_ms(key, ttl))

    def _set(self, key: str, name: bytes, data: bytes, nx: bool, px: Optional[int] = None,
             pxat: Optional[int] = None) -> None:
        """SET, the one command behind create, put and import."""
        done = self._run(key, True, self._c.set, name, data, nx=nx, px=px, pxat=pxat)
        if nx and not done:
            raise KeyExistsError(key, self._m.where)

    def _run(self, key: Any, write: bool, command: Any, *args: Any, **kw: Any) -> Any:
        """One redis-py call, its errors made fastkv's (as AsyncRedisStore._run)."""
        try:
            return command(*args, **kw)
        except _ERRORS as e:
            raise translate(e, self._m.where, key, write=write) from None

    def read(self, key: str) -> Any:
        m = self._m
        raw = self._run(key, False, self._c.get, m.name(key))
        if raw is None:
            raise KeyNotFoundError(key, m.where)
        return m.decode(key, raw)

    def get(self, key: str, default: Any = None) -> Any:
        m = self._m
        raw = self._run(key, False, self._c.get, m.name(key))
        return default if raw is None else m.decode(key, raw)

    def delete(self, key: str) -> None:
        m = self._m
        gone = self._run(key, True, self._c.delete, m.name(key))
        if not gone:
            raise KeyNotFoundError(key, m.where)

    def ttl(self, key: str) -> Optional[float]:
        m = self._m
        left = self._run(key, False, self._c.pttl, m.name(key))
        if left == -2:
            raise KeyNotFoundError(key, m.where)
        return None if left == -1 else left / 1000.0

    def touch(self, key: str, ttl: Optional[int]) -> None:
        m = self._m
        name = m.name(key)
        px = None if ttl is None else m.expiry_ms(key, ttl)
        if px is not None:
            found = self._run(key, True, self._c.pexpire, name, px)
        else:  # PERSIST answers 0 for a missing key and for one without expiry
            found = (self._run(key, True, self._c.persist, name)
                     or self._run(key, False, self._c.exists, name))
        if not found:
            raise KeyNotFoundError(key, m.where)

    def __contains__(self, key: object) -> bool:
        m = self._m
        try:
            name = m.name(key)
        except ValueError:  # InvalidKeyError: such a key is never in a store
            return False
        return bool(self._run(key, False, self._c.exists, name))

    def __getitem__(self, key: str) -> Any:
        return self.read(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    # -- iteration: SCAN on every primary --------------------------------------

    def __len__(self) -> int:
        """Live keys of the namespace, counted with SCAN: a walk over every key
        of the server (or of every primary of a cluster), not a stored count."""
        return sum(len(batch) for batch in self._batches(None))

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def keys(self, prefix: Optional[str] = None) -> Iterator[str]:
        """Live keys (starting with prefix). Each at most once: SCAN may repeat
        a key while a server resizes its table, so the keys yielded are
        remembered for the walk (about 100 bytes each)."""
        for batch in self._batches(prefix):
            yield from batch

    def items(self, prefix: Optional[str] = None) -> Iterator[tuple[str, Any]]:
        """(key, value) pairs, fetched a SCAN batch at a time (one pipeline)."""
        m = self._m
        for batch in self._batches(prefix):
            try:
                pipe = self._c.pipeline(transaction=False)
                for key in batch:
                    pipe.get(m.name(key))
                raws = pipe.execute()
            except _ERRORS as e:
                raise translate(e, m.where) from None
            for key, raw in zip(batch, raws):
                if raw is not None:  # deleted or expired since SCAN saw it
                    yield key, m.decode(key, raw)

    def _batches(self, prefix: Optional[str]) -> Iterator[list[str]]:
        m = self._m
        pattern = m.match(prefix)
        seen: set[str] = set()
        try:
            for names in _scan(self._c, self._cluster, pattern):
                yield m.new_keys(names, seen)
        except _ERRORS as e:
            raise translate(e, m.where) from None

    # -- the rest ----------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """live_keys (a SCAN walk), the server's name, version and memory."""
        try:
            info = self._c.info("server") if not self._cluster else \
                self._c.info("server", target_nodes=self._c.get_default_node())
            memory = _sum_memory(self._c, self._cluster)
        except _ERRORS as e:
            raise translate(e, self._m.where) from None
        return {
            "live_keys": len(self),
            "url": self._m.where.rsplit(" (namespace", 1)[0],
            "namespace": self._m.namespace,
            "server": _server_name(info),
            "cluster": self._cluster,
            "used_memory_bytes": memory,
        }

    def compact(self, progress: Any = None) -> None:
        """Nothing to do: the server reclaims the memory of deleted keys."""

    def sync(self) -> None:
        """Nothing to flush here: durability is the server's (appendonly and
        appendfsync, see the README). Checks the server answers."""
        try:
            self._c.ping()
        except _ERRORS as e:
            raise translate(e, self._m.where) from None

    def close(self) -> None:
        """Close the connections (not those of a client passed in). Idempotent."""
        if isinstance(self._c, _Closed):
            return
        client, self._c = self._c, _Closed(self._m.where)
        if self._owned:
            client.close()

    def __enter__(self) -> "RedisStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisStore({self._m.where.rsplit(' (namespace', 1)[0]!r}, " \
               f"namespace={self._m.namespace!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a RedisStore cannot be pickled: open one with its URL instead")

    @property
    def namespace(self) -> str:
        return self._m.namespace

    @property
    def client(self) -> Any:
        """The redis-py client underneath."""
        return self._c

    # -- what export and import use (as DataStore has them) ----------------------

    def _read_with_deadline(self, key: str) -> tuple[Any, Optional[int]]:
        m = self._m
        name = m.name(key)
        try:
            raw, deadline = self._export(keys=[name])
        except _ERRORS as e:
            raise translate(e, m.where, key) from None
        if raw is None:
            raise KeyNotFoundError(key, m.where)
        return m.decode(key, raw), (deadline if deadline > 0 else None)

    def _create_until(self, key: str, value: Any, deadline_ms: Optional[int],
                      replace: bool = False) -> None:
        m = self._m
        self._set(key, m.name(key), m.value(key, value), not replace,
                  pxat=m.deadline(key, deadline_ms))


def _scan(client: Any, cluster: bool, pattern: bytes) -> Iterator[list[Any]]:
    """Batches of key names matching pattern, SCAN on each primary in turn."""
    if not cluster:
        cursor = 0
        while True:
            cursor, names = client.scan(cursor, match=pattern, count=SCAN_COUNT)
            yield names
            if not cursor:
                return
    for node in client.get_primaries():
        cursor = 0
        while True:
            cursors, names = client.scan(cursor, match=pattern, count=SCAN_COUNT,
                                         target_nodes=node)
            yield names
            cursor = cursors[node.name] if isinstance(cursors, dict) else cursors
            if not cursor:
                break


def _server_name(info: dict[str, Any]) -> str:
    if len(info) and all(isinstance(v, dict) for v in info.values()):
        info = next(iter(info.values()))  # a cluster answers per node
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"{info.get('server_name', 'redis')} {info.get('redis_version', '?')}"


def _sum_memory(client: Any, cluster: bool) -> int:
    if not cluster:
        return int(client.info("memory").get("used_memory", 0))
    per_node = client.info("memory", target_nodes=client.PRIMARIES)
    return sum(int(v.get("used_memory", 0)) for v in per_node.values())
