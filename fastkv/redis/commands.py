"""Each RedisStore call written once, for the sync and the async store.

A call's body is a plan: a generator that yields the redis-py commands it
needs (``Call``) and gets each one's reply back, and returns the call's
result. The same plan runs on a sync client (RedisStore: a reply is the
command's return value) and on a redis.asyncio client (AsyncRedisStore: the
command's return value is awaited first); a failure comes back into the plan
as a fastkv exception, so a plan can also recover (the cluster walk). This is
redis-py's own split, one set of commands over two executors, one level up:
our calls are several commands and checks, not one. Iterations yield
``Out`` too: a batch for the caller.

The walk over a Redis Cluster is the one place that needs more than a
command: it must cover every hash slot's primary or fail. It reads the slot
map (CLUSTER SLOTS) when it starts and refuses a map that leaves a slot
without a primary, SCANs each primary it names (by address, not from the
client's cache, which a restart can leave stale), then reads the map again:
a map that changed meanwhile (a failover, a migration) or a primary that did
not answer means the topology is read again and the walk starts over, keys
already given never given twice. After WALK_TRIES such starts it raises
StoreUnavailableError: never a partial answer.
"""

from __future__ import annotations

from typing import Any, Callable, Generator, NamedTuple, Optional

from fastkv.errors import KeyExistsError, KeyNotFoundError, StoreClosedError, \
    StoreUnavailableError
from fastkv.redis.mapping import EXPORT_SCRIPT, SCAN_COUNT, Mapping, translate

__all__ = ["Call", "Out", "Plan", "RedisCommands", "DEFAULT_URL", "ERRORS", "redis_module",
           "Closed", "SLOTS", "WALK_TRIES"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
SLOTS = 16384
WALK_TRIES = 3  # starts of a cluster walk before it gives up

try:
    from redis.exceptions import RedisClusterException as _ClusterException
    from redis.exceptions import RedisError as _RedisError

    ERRORS: tuple[type[BaseException], ...] = (_RedisError, _ClusterException)
except ImportError:  # checked with a clear message when a store is made
    ERRORS = ()


def redis_module() -> Any:
    try:
        import redis
    except ImportError:
        from fastkv.errors import ConfigError

        raise ConfigError('RedisStore needs redis-py: pip install "fastkv[redis]"') from None
    return redis


class Call(NamedTuple):
    """One redis-py command of a plan: command(*args, **kw), its errors said
    about key (None: the store), a write's (whose answer may be lost) or not."""

    command: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kw: dict[str, Any] = {}
    key: Any = None
    write: bool = False


class Out(NamedTuple):
    """What an iteration plan hands its caller: a batch of keys or pairs."""

    batch: list[Any]


Plan = Generator[Any, Any, Any]


class Finished(NamedTuple):
    """What a plan returned: the call's answer."""

    value: Any


def advance(plan: Plan, reply: Any, failed: Optional[BaseException]) -> Any:
    """The plan's next step (a Call or an Out) after the reply to its last
    Call, or the error that Call raised; Finished once the plan has returned.
    The one step both executors (sync and asyncio) take, so that the loops
    around it, which differ only by an await, stay a few lines each."""
    try:
        return plan.throw(failed) if failed is not None else plan.send(reply)
    except StopIteration as done:
        return Finished(done.value)


class Closed:
    """Stands in for the client after close(): every call says so."""

    def __init__(self, where: str) -> None:
        self._where = where

    def __getattr__(self, name: str) -> Any:
        raise StoreClosedError(f"store {self._where} is closed")


class RedisCommands:
    """The plans of every RedisStore call, over the client in self._c (sync
    or asyncio), the namespace's Mapping in self._m and whether the client is
    a cluster's. The stores add the executor and the public methods."""

    __slots__ = ()
    _c: Any
    _m: Mapping
    _cluster: bool
    _export: Any

    def _setup(self, client: Any, cluster: bool, mapping: Mapping) -> None:
        """Called by the store's constructor; the slots are the store's."""
        self._c = client
        self._cluster = cluster  # type: ignore[misc]
        self._m = mapping  # type: ignore[misc]
        self._export = client.register_script(EXPORT_SCRIPT)

    # -- single keys --------------------------------------------------------------

    def _set_plan(self, key: str, name: bytes, data: bytes, nx: bool,
                  px: Optional[int] = None, pxat: Optional[int] = None) -> Plan:
        """SET, the one command behind create, put and import."""
        done = yield Call(self._c.set, (name, data), {"nx": nx, "px": px, "pxat": pxat},
                          key, True)
        if nx and not done:
            raise KeyExistsError(key, self._m.where)

    def _create_plan(self, key: str, value: Any, ttl: Optional[int], replace: bool) -> Plan:
        m = self._m  # the key checked first, then the value, then the ttl: as a file store
        return self._set_plan(key, m.name(key), m.value(key, value), not replace,
                              px=m.expiry_ms(key, ttl))

    def _create_until_plan(self, key: str, value: Any, deadline_ms: Optional[int],
                           replace: bool) -> Plan:
        m = self._m
        return self._set_plan(key, m.name(key), m.value(key, value), not replace,
                              pxat=m.deadline(key, deadline_ms))

    def _get_plan(self, key: str, default: Any = KeyNotFoundError) -> Plan:
        m = self._m
        raw = yield Call(self._c.get, (m.name(key),), {}, key)
        if raw is None:
            if default is KeyNotFoundError:
                raise KeyNotFoundError(key, m.where)
            return default
        return m.decode(key, raw)

    def _delete_plan(self, key: str) -> Plan:
        m = self._m
        gone = yield Call(self._c.delete, (m.name(key),), {}, key, True)
        if not gone:
            raise KeyNotFoundError(key, m.where)

    def _ttl_plan(self, key: str) -> Plan:
        m = self._m
        left = yield Call(self._c.pttl, (m.name(key),), {}, key)
        if left == -2:
            raise KeyNotFoundError(key, m.where)
        return None if left == -1 else left / 1000.0

    def _touch_plan(self, key: str, ttl: Optional[int]) -> Plan:
        m = self._m
        name = m.name(key)
        px = None if ttl is None else m.expiry_ms(key, ttl)
        if px is not None:
            found = yield Call(self._c.pexpire, (name, px), {}, key, True)
        else:  # PERSIST answers 0 for a missing key and for one without expiry
            found = (yield Call(self._c.persist, (name,), {}, key, True)) or \
                (yield Call(self._c.exists, (name,), {}, key))
        if not found:
            raise KeyNotFoundError(key, m.where)

    def _contains_plan(self, key: object) -> Plan:
        try:
            name = self._m.name(key)
        except ValueError:  # InvalidKeyError: such a key is never in a store
            return False
        return bool((yield Call(self._c.exists, (name,), {}, key)))

    def _read_with_deadline_plan(self, key: str) -> Plan:
        m = self._m
        raw, deadline = yield Call(self._export, (), {"keys": [m.name(key)]}, key)
        if raw is None:
            raise KeyNotFoundError(key, m.where)
        return m.decode(key, raw), (deadline if deadline > 0 else None)

    # -- several keys at once -------------------------------------------------------

    def _slot_groups(self, names: list[bytes]) -> list[list[int]]:
        """Indexes of names grouped by hash slot (one group off a cluster)."""
        if not self._cluster:
            return [list(range(len(names)))]
        from redis.crc import key_slot

        groups: dict[int, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(key_slot(name), []).append(i)
        return list(groups.values())

    def _get_many_plan(self, keys: Any) -> Plan:
        """One MGET per hash slot (one off a cluster): each as of one moment."""
        m = self._m
        keys = list(keys)
        names = [m.name(k) for k in keys]
        out: dict[str, Any] = {}
        for group in self._slot_groups(names):
            if not group:
                continue
            raws = yield Call(self._c.mget, ([names[i] for i in group],), {}, keys[group[0]])
            for i, raw in zip(group, raws):
                if raw is not None:
                    out[keys[i]] = m.decode(keys[i], raw)
        return out

    def _put_many_plan(self, items: Any, ttl: Optional[int]) -> Plan:
        """Every pair checked first, then the SETs in one pipeline: in
        MULTI/EXEC (atomic) off a cluster and on a cluster when every key
        shares one slot; else a pipeline per node, atomic per slot only."""
        m = self._m
        pairs = items.items() if hasattr(items, "items") else items
        staged: dict[bytes, tuple[bytes, Optional[int], str]] = {}
        for key, value in pairs:
            staged[m.name(key)] = (m.value(key, value), m.expiry_ms(key, ttl), key)
        if not staged:
            m.expiry_ms("", ttl)
            return None
        names = list(staged)
        atomic = len(self._slot_groups(names)) == 1
        pipe = self._c.pipeline(transaction=atomic)
        for name, (data, px, _) in staged.items():
            pipe.set(name, data, px=px)
        yield Call(pipe.execute, (), {}, next(iter(staged.values()))[2], True)
        return None

    def _delete_many_plan(self, keys: Any) -> Plan:
        """DEL of every name (one atomic command off a cluster; per slot on
        one): how many were live."""
        m = self._m
        keys = list(dict.fromkeys(keys))
        names = [m.name(k) for k in keys]
        if not names:
            return 0
        gone = 0
        for group in self._slot_groups(names):
            gone += yield Call(self._c.delete, tuple(names[i] for i in group), {},
                               keys[group[0]], True)
        return gone

    # -- the walk: every key of the namespace -------------------------------------

    def _walk_plan(self, prefix: Optional[str],
                   visit: Optional[Callable[[list[str]], Plan]] = None) -> Plan:
        """Out(batch) for every live key starting with prefix, each once: the
        batch of keys, or what the plan visit makes of it (nothing if None)."""
        m = self._m
        pattern, seen = m.match(prefix), set()  # type: tuple[bytes, set[str]]

        def hand_out(names: list[Any]) -> Plan:
            batch: Any = m.new_keys(names, seen)
            if visit is not None:
                batch = yield from visit(batch)
            if batch is not None:
                yield Out(batch)

        if not self._cluster:
            cursor = 0
            while True:
                cursor, names = yield Call(self._c.scan, (cursor,),
                                           {"match": pattern, "count": SCAN_COUNT})
                yield from hand_out(names)
                if not cursor:
                    return
        why: Optional[StoreUnavailableError] = None
        for _ in range(WALK_TRIES):
            try:
                owners = yield from self._slot_map_plan()
                for host, port in sorted(set(owners)):
                    node = self._c.get_node(host=host, port=port)
                    if node is None:  # a primary the client does not know yet
                        raise StoreUnavailableError(f"{m.where}: {host}:{port} is not known")
                    cursor = 0
                    while True:
                        cursors, names = yield Call(
                            self._c.scan, (cursor,),
                            {"match": pattern, "count": SCAN_COUNT, "target_nodes": node})
                        cursor = cursors[node.name] if isinstance(cursors, dict) else cursors
                        yield from hand_out(names)
                        if not cursor:
                            break
                if (yield from self._slot_map_plan()) == owners:
                    return
                why = StoreUnavailableError(f"{m.where}: the cluster's slot map changed "
                                            f"during the walk")
            except StoreUnavailableError as e:
                why = e
            try:  # the topology read again before the next start
                yield Call(self._c.nodes_manager.initialize)
            except StoreUnavailableError as e:
                why = e
        raise StoreUnavailableError(
            f"{m.where}: a walk over every hash slot did not complete in {WALK_TRIES} tries "
            f"(a primary down, or slots moving), so no partial answer is given: {why}")

    def _slot_map_plan(self) -> Plan:
        """The primary (host, port) of every slot, from CLUSTER SLOTS; a slot
        without one is StoreUnavailableError."""
        reply = yield Call(self._c.cluster_slots)
        owners: list[Optional[tuple[str, int]]] = [None] * SLOTS
        for (start, end), shard in reply.items():
            primary = shard.get("primary")
            for slot in range(int(start), min(int(end), SLOTS - 1) + 1):
                owners[slot] = (str(primary[0]), int(primary[1])) if primary else None
        if None in owners:
            raise StoreUnavailableError(
                f"{self._m.where}: slot {owners.index(None)} has no primary in the cluster's "
                f"slot map")
        return owners

    def _items_plan(self, prefix: Optional[str]) -> Plan:
        """Out(batch of (key, value) pairs), one pipeline of GETs per batch."""
        m = self._m

        def values(batch: list[str]) -> Plan:
            pipe = self._c.pipeline(transaction=False)
            for key in batch:
                pipe.get(m.name(key))
            raws = yield Call(pipe.execute)
            # a raw of None: deleted or expired since SCAN saw it
            return [(k, m.decode(k, r)) for k, r in zip(batch, raws) if r is not None]

        return self._walk_plan(prefix, values)

    def _count_plan(self) -> Plan:
        counted = [0]

        def count(batch: list[str]) -> Plan:
            counted[0] += len(batch)
            return None
            yield  # a plan that sends no command

        yield from self._walk_plan(None, count)
        return counted[0]

    # -- the rest -----------------------------------------------------------------

    def _stats_plan(self) -> Plan:
        """live_keys (a walk), the server's name and version, its memory."""
        c = self._c
        if self._cluster:
            info = yield Call(c.info, ("server",), {"target_nodes": c.get_default_node()})
            per_node = yield Call(c.info, ("memory",), {"target_nodes": c.PRIMARIES})
            memory = sum(int(v.get("used_memory", 0)) for v in per_node.values())
        else:
            info = yield Call(c.info, ("server",))
            memory = int((yield Call(c.info, ("memory",))).get("used_memory", 0))
        live = yield from self._count_plan()
        return {"live_keys": live, "url": self._m.url, "namespace": self._m.namespace,
                "server": _server_name(info), "cluster": self._cluster,
                "used_memory_bytes": memory}

    def _sync_plan(self) -> Plan:
        """Durability is the server's (appendonly, appendfsync: see the
        README): a PING checks it answers."""
        yield Call(self._c.ping)

    def _fail(self, exc: BaseException, call: Call) -> BaseException:
        """The fastkv exception for what a command raised."""
        if isinstance(exc, ERRORS):
            return translate(exc, self._m.where, call.key, write=call.write)
        return exc


def _server_name(info: dict[str, Any]) -> str:
    if len(info) and all(isinstance(v, dict) for v in info.values()):
        info = next(iter(info.values()))  # a cluster answers per node
    if "valkey_version" in info:
        return f"valkey {info['valkey_version']}"
    return f"{info.get('server_name', 'redis')} {info.get('redis_version', '?')}"
