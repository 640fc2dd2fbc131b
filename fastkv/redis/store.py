"""RedisStore: the DataStore API over Redis, Valkey or a Redis Cluster.

    from fastkv import RedisStore

    with RedisStore("redis://127.0.0.1:6379/0") as db:
        db.create("user:42", {"name": "Ann"}, ttl=3600)
        db.read("user:42")

For programs that outgrow one process or one machine: many processes and
machines may share one location. The commands each call maps to, and why
each is atomic, are in mapping.py; the body of each call, shared with
AsyncRedisStore, in commands.py: this module runs those plans on a
sync redis-py client. Built on redis-py (the "redis" extra); Valkey speaks
the same protocol and works through the same client.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional

from fastkv.redis.commands import DEFAULT_URL, ERRORS, Call, Closed, Finished, Out, Plan, \
    RedisCommands, advance, redis_module
from fastkv.redis.mapping import Mapping, client_options, translate
from fastkv.redis.transaction import RedisTransaction

__all__ = ["RedisStore", "DEFAULT_URL"]


def connect(url: str, cluster: Optional[bool], timeout: float) -> tuple[Any, bool]:
    """A redis-py client for url, and whether it is a cluster client. With
    cluster=None, the server is asked (INFO cluster)."""
    redis = redis_module()
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


class RedisStore(RedisCommands):
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

    __slots__ = ("_c", "_m", "_owned", "_cluster", "_export", "__weakref__")

    def __init__(self, url: str = DEFAULT_URL, *, namespace: str = "fastkv",
                 client: Any = None, cluster: Optional[bool] = None,
                 timeout: float = 5.0) -> None:
        m = Mapping(namespace, url)
        if client is not None:
            self._owned = False
            cluster = isinstance(client, redis_module().cluster.RedisCluster)
        else:
            try:
                client, cluster = connect(url, cluster, timeout)
            except ERRORS as e:
                raise translate(e, m.where) from None
            except ValueError as e:  # redis-py's word on a malformed URL
                from fastkv.errors import ConfigError

                raise ConfigError(f"{m.where}: {e}") from None
            self._owned = True
        self._setup(client, bool(cluster), m)

    # -- the executor: each command of a plan run, its reply sent back ---------

    def _run(self, plan: Plan) -> Any:
        reply: Any = None
        failed: Optional[BaseException] = None
        while not isinstance(step := advance(plan, reply, failed), Finished):
            reply, failed = self._do(step)
        return step.value

    def _do(self, call: Call) -> tuple[Any, Optional[BaseException]]:
        try:
            return call.command(*call.args, **call.kw), None
        except ERRORS as e:
            return None, self._fail(e, call)

    def _walk(self, plan: Plan) -> Iterator[Any]:
        """Run an iteration's plan, yielding each batch it hands out."""
        reply: Any = None
        failed: Optional[BaseException] = None
        while not isinstance(step := advance(plan, reply, failed), Finished):
            if isinstance(step, Out):
                reply, failed = None, None
                yield step.batch
            else:
                reply, failed = self._do(step)

    # -- the calls of DataStore ---------------------------------------------------

    def create(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
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
        self._run(self._create_plan(key, value, ttl, False))

    def put(self, key: str, value: Any, ttl: Optional[int] = None) -> None:
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
        self._run(self._create_plan(key, value, ttl, True))

    def read(self, key: str) -> Any:
        """The value stored under key, as a new dict.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreUnavailableError: the server did not answer.
        """
        return self._run(self._get_plan(key))

    def get(self, key: str, default: Any = None) -> Any:
        """read(key), or default when the key is missing or expired.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            CorruptionError: a value read back is damaged, or not a fastkv value.
            StoreUnavailableError: the server did not answer.
        """
        return self._run(self._get_plan(key, default))

    def delete(self, key: str) -> None:
        """Remove a live key.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            StoreUnavailableError: the server did not answer (a write then may or
                may not have happened: it is never sent twice).
        """
        self._run(self._delete_plan(key))

    def ttl(self, key: str) -> Optional[float]:
        """Seconds left before key expires (a float), or None if it never does.

        Raises:
            InvalidKeyError: the key is not a str of 1 to 32 characters.
            KeyNotFoundError: the key is not in the store.
            StoreUnavailableError: the server did not answer.
        """
        left: Optional[float] = self._run(self._ttl_plan(key))
        return left

    def touch(self, key: str, ttl: Optional[int]) -> None:
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
        self._run(self._touch_plan(key, ttl))

    def __contains__(self, key: object) -> bool:
        return bool(self._run(self._contains_plan(key)))

    # -- several keys, transactions ---------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The live keys among keys and their values: one MGET (per hash slot
        on a cluster, each as of one moment)."""
        found: dict[str, Any] = self._run(self._get_many_plan(keys))
        return found

    def put_many(self, items: Any, ttl: Optional[int] = None) -> None:
        """put of every pair, all checked before any is sent, in one MULTI/EXEC;
        on a cluster atomic only when every key shares one hash slot."""
        self._run(self._put_many_plan(items, ttl))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete the live keys among keys (one DEL; per slot on a cluster);
        how many were live."""
        n: int = self._run(self._delete_many_plan(keys))
        return n

    def transaction(self) -> RedisTransaction:
        """An optimistic transaction (fastkv/redis/transaction.py): the keys
        it reads are WATCHed, its writes sent in one MULTI/EXEC at commit;
        ConflictError if another client changed a key it read."""
        return RedisTransaction(self)

    def __getitem__(self, key: str) -> Any:
        return self.read(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    # -- iteration: SCAN on every primary (commands.py) ----------------------------

    def __len__(self) -> int:
        """Live keys of the namespace, counted with SCAN: a walk over every key
        of the server (or of every primary of a cluster), not a stored count."""
        n: int = self._run(self._count_plan())
        return n

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def keys(self, prefix: Optional[str] = None) -> Iterator[str]:
        """Live keys (starting with prefix). Each at most once: SCAN may repeat
        a key while a server resizes its table, so the keys yielded are
        remembered for the walk (about 100 bytes each)."""
        for batch in self._walk(self._walk_plan(prefix)):
            yield from batch

    def items(self, prefix: Optional[str] = None) -> Iterator[tuple[str, Any]]:
        """(key, value) pairs, fetched a SCAN batch at a time (one pipeline)."""
        for batch in self._walk(self._items_plan(prefix)):
            yield from batch

    # -- the rest -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """live_keys (a SCAN walk), the server's name, version and memory."""
        st: dict[str, Any] = self._run(self._stats_plan())
        return st

    def compact(self, progress: Any = None) -> None:
        """Nothing to do: the server reclaims the memory of deleted keys."""

    def sync(self) -> None:
        """Nothing to flush here: durability is the server's (appendonly and
        appendfsync, see the README). Checks the server answers."""
        self._run(self._sync_plan())

    def close(self) -> None:
        """Close the connections (not those of a client passed in). Idempotent."""
        if isinstance(self._c, Closed):
            return
        client, self._c = self._c, Closed(self._m.where)
        if self._owned:
            client.close()

    def __enter__(self) -> "RedisStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisStore({self._m.url!r}, namespace={self._m.namespace!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a RedisStore cannot be pickled: open one with its URL instead")

    @property
    def namespace(self) -> str:
        """The prefix of this store's keys in Redis ("" for the whole keyspace)."""
        return self._m.namespace

    @property
    def client(self) -> Any:
        """The redis-py client underneath."""
        return self._c

    # -- absolute deadlines (export and import keep expiry to the ms) -------------

    def read_with_deadline(self, key: str) -> tuple[Any, Optional[int]]:
        """(value, deadline in ms since the Unix epoch, or None): as DataStore."""
        pair: tuple[Any, Optional[int]] = self._run(self._read_with_deadline_plan(key))
        return pair

    def create_until(self, key: str, value: Any, deadline_ms: Optional[int],
                     replace: bool = False) -> None:
        """create (put with replace) with an absolute deadline: as DataStore."""
        self._run(self._create_until_plan(key, value, deadline_ms, replace))
