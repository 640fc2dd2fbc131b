"""Optimistic transactions and batch calls of RedisStore and AsyncRedisStore,
on a real redis-server and on the real 3-node cluster: commit, rollback,
ConflictError, the one-slot rule, and 8 threads of increments that lose
none (each retried after ConflictError)."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest

import fastkv
import fastkv.aio
from fastkv import ConflictError, RedisStore, TransactionError

if TYPE_CHECKING:
    from conftest import RedisCluster, RedisServer

WHERE = ["redis_server", "redis_cluster"]


def tagged(key: str) -> str:
    """A key in the slot of the tag {t}: one transaction's keys on a cluster."""
    return "{t}" + key


@pytest.fixture(params=WHERE)
def server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(request.param)


@pytest.fixture
def db(server: Any, namespace: str) -> Any:
    store = RedisStore(server.url, namespace=namespace)
    yield store
    store.close()


def test_commit_rollback_and_own_writes(db: RedisStore) -> None:
    a, b, c = tagged("acct:1"), tagged("acct:2"), tagged("hold:3")
    db.put(a, {"balance": 10})
    db.put(c, {"held": 1})
    with db.transaction() as tx:
        bal = tx.read(a)["balance"]
        tx.put(a, {"balance": bal - 5})
        tx.create(b, {"balance": 5}, ttl=86400)
        tx.delete(c)
        assert tx.read(a) == {"balance": 5} and b in tx and c not in tx
        assert db.read(a) == {"balance": 10}  # not visible before the commit
        with pytest.raises(fastkv.KeyExistsError):
            tx.create(b, {})
        with pytest.raises(fastkv.KeyNotFoundError):
            tx.delete(c)
        left = tx.ttl(b)
        assert left is not None and 86300 < left <= 86400
    assert db.get_many([a, b, c]) == {a: {"balance": 5}, b: {"balance": 5}}
    ttl = db.ttl(b)
    assert ttl is not None and ttl > 86000
    with pytest.raises(RuntimeError):
        with db.transaction() as tx:
            tx.put(a, {"balance": 0})
            raise RuntimeError("discard")
    assert db.read(a) == {"balance": 5}
    tx = db.transaction()
    tx.put(a, {"balance": 1})
    tx.rollback()
    assert db.read(a) == {"balance": 5} and not tx.active
    with pytest.raises(TransactionError):
        tx.put(a, {})


def test_a_key_changed_by_another_client_is_a_conflict(db: RedisStore, server: Any,
                                                       namespace: str) -> None:
    other = RedisStore(server.url, namespace=namespace)
    k, side = tagged("k"), tagged("side")
    db.put(k, {"v": 1})
    tx = db.transaction()
    assert tx.read(k) == {"v": 1}
    tx.put(side, {"written": True})
    other.put(k, {"v": 2})
    with pytest.raises(ConflictError) as err:
        tx.commit()
    assert isinstance(err.value, TransactionError)
    assert side not in db and db.read(k) == {"v": 2} and not tx.active
    # a key read as missing, then created by another client: a conflict too
    tx = db.transaction()
    assert tx.get(tagged("fresh")) is None
    tx.put(side, {})
    other.put(tagged("fresh"), {})
    with pytest.raises(ConflictError):
        tx.commit()
    # writes only (nothing read): nothing to conflict with
    with db.transaction() as tx:
        tx.put(side, {"blind": 1})
    other.put(k, {"v": 3})
    assert db.read(side) == {"blind": 1}
    other.close()


def test_increments_from_8_threads_with_retries_add_up(db: RedisStore, server: Any,
                                                       namespace: str) -> None:
    counter = tagged("counter")
    db.put(counter, {"n": 0})
    conflicts = []

    def work() -> None:
        mine = RedisStore(server.url, namespace=namespace)
        for _ in range(100):
            while True:
                try:
                    with mine.transaction() as tx:
                        tx.put(counter, {"n": tx.read(counter)["n"] + 1})
                    break
                except ConflictError:
                    conflicts.append(1)
        mine.close()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
        assert not t.is_alive()
    assert db.read(counter) == {"n": 800}
    assert conflicts, "8 threads never conflicted: the test did not test the check"


def test_cluster_keys_of_two_slots_are_refused_before_anything_is_sent(
        redis_cluster: RedisCluster, namespace: str) -> None:
    db = RedisStore(redis_cluster.url, namespace=namespace)
    with db.transaction() as tx:
        tx.put("{a}x", {"v": 1})
        with pytest.raises(TransactionError, match="slot"):
            tx.put("{b}y", {"v": 2})
        with pytest.raises(TransactionError, match="slot"):
            tx.read("{b}y")
        tx.put("{a}z", {"v": 3})  # the transaction goes on
    assert db.get_many(["{a}x", "{a}z", "{b}y"]) == {"{a}x": {"v": 1}, "{a}z": {"v": 3}}
    db.close()


def test_batch_calls(db: RedisStore) -> None:
    items = {f"b{i}": {"i": i} for i in range(50)}  # keys of many slots on a cluster
    db.put_many(items, ttl=100)
    assert db.get_many(list(items) + ["missing"]) == items
    left = db.ttl("b7")
    assert left is not None and 98 < left <= 100
    db.put_many([("b1", {"i": -1}), ("b1", {"i": -2})])
    assert db.read("b1") == {"i": -2}
    with pytest.raises(fastkv.InvalidValueError):
        db.put_many({"b2": {"ok": 1}, "b3": [1]})
    assert db.read("b2") == {"i": 2}  # one refused pair: nothing sent
    with pytest.raises(fastkv.InvalidKeyError):
        db.get_many(["x" * 40])
    assert db.delete_many(["b1", "b1", "b2", "missing"]) == 2
    assert "b1" not in db and db.delete_many([]) == 0 and db.get_many([]) == {}


def test_async_transaction_and_batch_calls(server: Any, namespace: str) -> None:
    async def main() -> None:
        async with fastkv.aio.AsyncRedisStore(server.url, namespace=namespace) as db:
            other = await fastkv.aio.AsyncRedisStore(server.url, namespace=namespace)
            k = tagged("k")
            await db.put_many({k: {"v": 1}, tagged("j"): {"v": 0}})
            async with db.transaction() as tx:
                v = (await tx.read(k))["v"]
                await tx.put(k, {"v": v + 1})
                assert await tx.contains(k) and (await tx.get_many([k])) == {k: {"v": 2}}
            assert await db.get_many([k]) == {k: {"v": 2}}
            tx = db.transaction()
            await tx.read(k)
            await tx.put(tagged("j"), {"v": 9})
            await other.put(k, {"v": 100})
            with pytest.raises(ConflictError):
                await tx.commit()
            assert await db.read(tagged("j")) == {"v": 0}
            assert await db.delete_many([k, tagged("j")]) == 2
            await other.close()

    asyncio.run(main())
