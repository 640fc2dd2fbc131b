"""One module, eight back ends: every test here runs against a DataStore, a
Client of `fastkv serve`, a RedisStore on a real redis-server and on a real
3-node Redis Cluster, a RedisStore (redis-py) on `fastkv serve
--resp-port`, and the async twins (AsyncDataStore, AsyncRedisStore on the
server and on the cluster) through a small adapter that runs each
coroutine to completion, so code written for one runs on the others: same
results, same exception classes."""

from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

import pytest

import fastkv
from fastkv import Client, DataStore

if TYPE_CHECKING:
    from conftest import Served

class Awaited:
    """A sync face over an async store: each coroutine run to completion on
    a loop of the adapter's own (the store's connections belong to it)."""

    def __init__(self, opening: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._store = self._loop.run_until_complete(self._opened(opening))

    @staticmethod
    async def _opened(opening: Any) -> Any:
        return await opening  # AsyncDataStore(path) and AsyncRedisStore(url) open here

    def _run(self, coroutine: Any) -> Any:
        return self._loop.run_until_complete(coroutine)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._store, name)

        def awaited(*args: Any, **kw: Any) -> Any:
            return self._run(method(*args, **kw))

        return awaited

    def __contains__(self, key: object) -> bool:
        return bool(self._run(self._store.contains(key)))

    def keys(self, prefix: Any = None) -> Iterator[str]:
        return iter(self._run(self._collect(self._store.keys(prefix))))

    def items(self, prefix: Any = None) -> Iterator[tuple[str, Any]]:
        return iter(self._run(self._collect(self._store.items(prefix))))

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    @staticmethod
    async def _collect(walk: Any) -> list[Any]:
        return [x async for x in walk]

    def __len__(self) -> int:
        return int(self._run(self._store.count()))

    def __getitem__(self, key: str) -> Any:
        return self._run(self._store.read(key))

    def __setitem__(self, key: str, value: Any) -> None:
        self._run(self._store.put(key, value))

    def __delitem__(self, key: str) -> None:
        self._run(self._store.delete(key))

    def close(self) -> None:
        self._run(self._store.close())
        self._loop.close()

    def transaction(self) -> "AwaitedTransaction":
        return AwaitedTransaction(self, self._store.transaction())


class AwaitedTransaction:
    """A sync face over an async transaction: `async with` run as `with`;
    its calls awaited where they are coroutines (AsyncRedisStore's talk to
    the server; AsyncDataStore's run inline)."""

    def __init__(self, outer: Awaited, manager: Any) -> None:
        self._outer, self._manager = outer, manager
        self._tx: Any = None

    def __enter__(self) -> "AwaitedTransaction":
        self._tx = self._outer._run(self._manager.__aenter__())
        return self

    def __exit__(self, *exc: Any) -> None:
        self._outer._run(self._manager.__aexit__(*exc))

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._tx, name)

        def call(*args: Any, **kw: Any) -> Any:
            result = method(*args, **kw)
            return self._outer._run(result) if inspect.isawaitable(result) else result

        return call

    def __contains__(self, key: object) -> bool:
        if hasattr(self._tx, "contains"):
            return bool(self._outer._run(self._tx.contains(key)))
        return key in self._tx


KV = Union[DataStore, Client, "fastkv.RedisStore", Awaited]


@pytest.fixture(params=["datastore", "client", "redis", "redis-cluster", "serve-resp",
                        "async-datastore", "async-redis", "async-redis-cluster"])
def kv(request: pytest.FixtureRequest, store_path: Path, namespace: str,
       serve: Callable[..., Served]) -> Iterator[KV]:
    if request.param.startswith("async"):
        from fastkv.aio import AsyncDataStore, AsyncRedisStore

        if request.param == "async-datastore":
            twin = Awaited(AsyncDataStore(store_path))
        else:
            server = request.getfixturevalue(
                "redis_cluster" if request.param.endswith("cluster") else "redis_server")
            twin = Awaited(AsyncRedisStore(server.url, namespace=namespace))
        yield twin
        twin.close()
    elif request.param == "datastore":
        with DataStore(store_path) as db:
            yield db
    elif request.param == "client":
        served = serve(store_path)
        with Client(served.url) as client:
            yield client
    elif request.param == "serve-resp":
        # redis-py (under RedisStore) against `fastkv serve --resp-port`;
        # namespace "": the server's keyspace is the file's, 32-character keys fit
        served = serve(store_path, "--resp-port", "0")
        assert served.resp_url is not None
        with fastkv.open(served.resp_url, namespace="") as store:
            yield store
    else:
        server = request.getfixturevalue(request.param.replace("-", "_")
                                         if request.param != "redis" else "redis_server")
        with fastkv.open(server.url, namespace=namespace) as store:
            yield store


VALUES: list[dict[str, Any]] = [
    {},
    {"name": "Ann", "age": 41, "admin": False, "tags": ["a", "b"], "none": None},
    {"nested": {"deeper": {"list": [1, [2, [3, {"x": 1.5}]]]}}},
    {"unicode": "ключ ✓ 🎉", "escapes": "quote\" backslash\\ newline\n"},
    {"big": 2**63 - 1, "small": -(2**63), "float": 1e-300},
]


@pytest.mark.parametrize("value", VALUES)
def test_round_trip(kv: KV, value: dict[str, Any]) -> None:
    kv.create("k", value)
    assert kv.read("k") == value
    kv.delete("k")
    assert "k" not in kv


def test_tuples_come_back_as_lists(kv: KV) -> None:
    kv.create("t", {"t": (1, 2)})
    assert kv.read("t") == {"t": [1, 2]}


def test_json_text_is_accepted(kv: KV) -> None:
    kv.create("text", '{"a": [1, 2]}')
    kv.create("bytes", b'{"b": true}')
    assert kv.read("text") == {"a": [1, 2]} and kv.read("bytes") == {"b": True}


def test_keys_of_every_kind(kv: KV) -> None:
    for key in ["a", "k" * 32, "user:42", "ключ", "a/b?c#d", "%20", " spaced ", "🎉" * 32]:
        kv.create(key, {"key": key})
        assert key in kv and kv.read(key) == {"key": key}


def test_walks_and_counts(kv: KV) -> None:
    names = [f"w:{i:03d}" for i in range(150)] + ["other", "ключ"]
    for name in names:
        kv.create(name, {"n": name})
    kv.delete("w:000")
    live = sorted(names[1:])
    assert sorted(kv.keys()) == sorted(kv) == live
    assert sorted(kv.keys("w:1")) == [n for n in live if n.startswith("w:1")]
    assert dict(kv.items("w:00")) == {f"w:00{i}": {"n": f"w:00{i}"} for i in range(1, 10)}
    assert list(kv.keys("nothing here")) == []
    assert len(kv) == len(live)


def test_create_refuses_a_live_key(kv: KV) -> None:
    kv.create("k", {"v": 1})
    with pytest.raises(fastkv.KeyExistsError) as info:
        kv.create("k", {"v": 2})
    assert isinstance(info.value, KeyError)
    assert kv.read("k") == {"v": 1}


def test_missing_keys(kv: KV) -> None:
    with pytest.raises(fastkv.KeyNotFoundError):
        kv.read("missing")
    with pytest.raises(KeyError):  # the built-in base, as with a dict
        kv.delete("missing")
    assert "missing" not in kv


def test_expired_keys(kv: KV) -> None:
    kv.create("s", {"uid": 1}, ttl=1)
    assert kv.read("s") == {"uid": 1}
    time.sleep(1.2)
    # KeyExpiredError from a file; Redis forgets expired keys (SPEC.md: "may
    # read as KeyNotFoundError"), and KeyExpiredError is a KeyNotFoundError
    with pytest.raises(fastkv.KeyNotFoundError):
        kv.read("s")
    assert "s" not in kv
    kv.create("s", {"uid": 2})  # an expired key may be created again
    assert kv.read("s") == {"uid": 2}


@pytest.mark.parametrize("key", ["", "k" * 33, 42, None, b"bytes"])
def test_invalid_keys(kv: KV, key: Any) -> None:
    ops: list[Callable[[], Any]] = [lambda: kv.create(key, {}), lambda: kv.read(key),
                                    lambda: kv.delete(key)]
    for op in ops:
        with pytest.raises(fastkv.InvalidKeyError):
            op()


@pytest.mark.parametrize(
    "value, error",
    [
        ([1, 2], fastkv.InvalidValueError),
        ({"x": float("nan")}, fastkv.InvalidValueError),
        ({"x": float("inf")}, fastkv.InvalidValueError),
        ({"x": {1, 2}}, fastkv.InvalidValueError),
        ({1: "int key"}, fastkv.InvalidValueError),
        ({"x": 2**64}, fastkv.InvalidValueError),
        ("[1]", fastkv.InvalidValueError),
        ("{bad", fastkv.InvalidValueError),
        ({"x": "y" * 16_400}, fastkv.ValueTooLargeError),
    ],
)
def test_invalid_values(kv: KV, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        kv.create("k", value)
    assert "k" not in kv


@pytest.mark.parametrize("ttl", [0, -1, True, 1.5, "60", 315_360_001])
def test_invalid_ttls(kv: KV, ttl: Any) -> None:
    with pytest.raises(fastkv.InvalidTTLError):
        kv.create("k", {}, ttl=ttl)
    assert "k" not in kv


def test_largest_value_fits(kv: KV) -> None:
    value = {"x": "y" * (fastkv.VALUE_MAX_BYTES - len('{"x":""}'))}
    kv.create("big", value)
    assert kv.read("big") == value


# ---- put, get, ttl, touch, mapping manners: the same on both ------------------------


def test_put_creates_then_replaces_value_and_expiry(kv: KV) -> None:
    kv.put("p", {"v": 1}, ttl=100)
    left = kv.ttl("p")
    assert left is not None and 98 < left <= 100
    kv.put("p", {"v": 2})
    assert kv.read("p") == {"v": 2} and kv.ttl("p") is None
    with pytest.raises(fastkv.KeyExistsError):
        kv.create("p", {"v": 3})  # create still refuses a live key


def test_get_returns_default_for_missing_keys(kv: KV) -> None:
    assert kv.get("nope") is None and kv.get("nope", {"d": 1}) == {"d": 1}
    kv.create("g", {"v": 1})
    assert kv.get("g", "unused") == {"v": 1}
    with pytest.raises(fastkv.InvalidKeyError):
        kv.get("x" * 33)


def test_touch_sets_and_removes_expiry_keeping_the_value(kv: KV) -> None:
    kv.create("t", {"v": 1})
    assert kv.ttl("t") is None
    kv.touch("t", 50)
    left = kv.ttl("t")
    assert left is not None and 48 < left <= 50
    kv.touch("t", None)
    assert kv.ttl("t") is None and kv.read("t") == {"v": 1}
    with pytest.raises(fastkv.KeyNotFoundError):
        kv.touch("missing", 5)
    with pytest.raises(fastkv.KeyNotFoundError):
        kv.ttl("missing")
    for bad in (0, -1, True, 1.5, "5", 315_360_001):
        with pytest.raises(fastkv.InvalidTTLError):
            kv.touch("t", bad)  # type: ignore[arg-type]
    assert kv.read("t") == {"v": 1} and kv.ttl("t") is None


def test_mapping_manners(kv: KV) -> None:
    kv["m"] = {"v": 1}
    kv["m"] = {"v": 2}
    assert kv["m"] == {"v": 2}
    del kv["m"]
    with pytest.raises(KeyError):
        kv["m"]
    with pytest.raises(KeyError):
        del kv["m"]
    with pytest.raises(fastkv.InvalidValueError):
        kv["m"] = [1, 2]  # type: ignore[assignment]
    assert "m" not in kv


# ---- several keys at once, transactions ---------------------------------------------------


def test_batch_calls(kv: KV) -> None:
    kv.put_many({"b1": {"i": 1}, "b2": {"i": 2}, "b3": {"i": 3}}, ttl=100)
    kv.put_many([("b4", {"i": 4}), ("b4", {"i": 44})])  # a key given twice: its last value
    assert kv.get_many(["b1", "b2", "b4", "missing"]) == {
        "b1": {"i": 1}, "b2": {"i": 2}, "b4": {"i": 44}}
    left = kv.ttl("b3")
    assert left is not None and 98 < left <= 100 and kv.ttl("b4") is None
    with pytest.raises(fastkv.InvalidValueError):  # one refused pair: nothing written
        kv.put_many({"b1": {"i": -1}, "b5": [1]})  # type: ignore[arg-type]
    with pytest.raises(fastkv.InvalidKeyError):
        kv.put_many({"b1": {"i": -1}, "x" * 40: {}})
    with pytest.raises(fastkv.InvalidTTLError):
        kv.put_many({"b1": {"i": -1}}, ttl=0)
    assert kv.read("b1") == {"i": 1} and "b5" not in kv
    with pytest.raises(fastkv.InvalidKeyError):
        kv.get_many(["x" * 40])
    assert kv.delete_many(["b1", "b1", "b2", "missing"]) == 2
    assert kv.get_many(["b1", "b2", "b3"]) == {"b3": {"i": 3}}
    assert kv.get_many([]) == {} and kv.delete_many([]) == 0


def test_a_transaction_commits_all_or_nothing(kv: KV) -> None:
    a, b, c = "{p}acct:1", "{p}acct:2", "{p}hold:3"  # one hash slot on a cluster
    kv.put_many({a: {"balance": 10}, c: {"held": 1}})
    with kv.transaction() as tx:
        bal = tx.read(a)["balance"]
        tx.put(a, {"balance": bal - 5})
        tx.create(b, {"moved": 5}, ttl=86400)
        tx.delete(c)
        with pytest.raises(fastkv.KeyExistsError):  # refused: changes nothing, goes on
            tx.create(b, {})
        with pytest.raises(fastkv.KeyNotFoundError):
            tx.delete(c)
        assert tx.read(a) == {"balance": 5} and b in tx and c not in tx
        assert tx.get_many([a, b, c]) == {a: {"balance": 5}, b: {"moved": 5}}
        left = tx.ttl(b)
        assert left is not None and 86000 < left <= 86400
    assert kv.get_many([a, b, c]) == {a: {"balance": 5}, b: {"moved": 5}}
    with pytest.raises(ZeroDivisionError):
        with kv.transaction() as tx:
            tx.put(a, {"balance": 0})
            tx.delete(b)
            1 / 0
    assert kv.get_many([a, b]) == {a: {"balance": 5}, b: {"moved": 5}}
