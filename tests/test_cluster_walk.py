"""A walk over a Redis Cluster (len, iteration, keys, items, export) covers
every hash slot's primary or raises StoreUnavailableError: exact after every
node was killed and started again under an open store, refused (never
fewer keys) while a primary is down. For RedisStore and AsyncRedisStore."""

from __future__ import annotations

import asyncio
import io
import time
from typing import TYPE_CHECKING, Any, Callable

import pytest

import fastkv
from fastkv.aio import AsyncRedisStore
from fastkv.cli.transfer import export_jsonl

if TYPE_CHECKING:
    from conftest import RedisCluster

KEYS = {f"k{i}": {"i": i} for i in range(60)}  # on every primary


def restart_all(cluster: RedisCluster) -> None:
    for node in cluster.nodes:
        node.kill()
    for node in cluster.nodes:
        node.start()
    deadline = time.monotonic() + 60
    while not all("cluster_state:ok" in n.cli("cluster", "info", check=False)
                  for n in cluster.nodes):
        assert time.monotonic() < deadline, "the cluster did not come back"
        time.sleep(0.1)


def until_it_answers(call: Callable[[], Any]) -> Any:
    """A user's retry loop: the store answers again once the cluster is up."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return call()
        except fastkv.StoreUnavailableError:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def take_down_one_primary(cluster: RedisCluster) -> None:
    cluster.nodes[1].kill()
    deadline = time.monotonic() + 60
    while "cluster_state:fail" not in cluster.nodes[0].cli("cluster", "info"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def sync_walks(db: fastkv.RedisStore) -> dict[str, Any]:
    out = io.BytesIO()
    export_jsonl(db, out)
    return {"len": len(db), "iter": sorted(db), "keys": sorted(db.keys()),
            "items": dict(db.items()), "export": out.getvalue().count(b"\n")}


async def async_walks(db: AsyncRedisStore) -> dict[str, Any]:
    return {"len": await db.count(), "iter": sorted([k async for k in db]),
            "keys": sorted([k async for k in db.keys()]),
            "items": {k: v async for k, v in db.items()}, "export": await db.count()}


EXACT = {"len": len(KEYS), "iter": sorted(KEYS), "keys": sorted(KEYS), "items": KEYS,
         "export": len(KEYS)}


def test_walks_are_exact_after_every_node_restarted(
        new_redis_cluster: Callable[[], RedisCluster], namespace: str) -> None:
    cluster = new_redis_cluster()
    with fastkv.open(cluster.url, namespace=namespace, timeout=2) as db:
        for k, v in KEYS.items():
            db.put(k, v)
        assert sync_walks(db) == EXACT
        restart_all(cluster)  # no persistence: the keys are gone, and written again
        for k, v in KEYS.items():
            until_it_answers(lambda: db.put(k, v))
        assert until_it_answers(lambda: sync_walks(db)) == EXACT
        take_down_one_primary(cluster)
        for walk in (lambda: len(db), lambda: list(db), lambda: list(db.keys()),
                     lambda: list(db.items()), lambda: export_jsonl(db, io.BytesIO())):
            with pytest.raises(fastkv.StoreUnavailableError):
                walk()


def test_async_walks_are_exact_after_every_node_restarted(
        new_redis_cluster: Callable[[], RedisCluster], namespace: str) -> None:
    cluster = new_redis_cluster()

    async def scenario() -> None:
        async with AsyncRedisStore(cluster.url, namespace=namespace, timeout=2) as db:
            for k, v in KEYS.items():
                await db.put(k, v)
            assert await async_walks(db) == EXACT
            await asyncio.to_thread(restart_all, cluster)
            deadline = time.monotonic() + 60
            while True:
                try:
                    for k, v in KEYS.items():
                        await db.put(k, v)
                    got = await async_walks(db)
                    break
                except fastkv.StoreUnavailableError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
            assert got == EXACT
            await asyncio.to_thread(take_down_one_primary, cluster)
            for walk in (db.count(), async_walks(db)):
                with pytest.raises(fastkv.StoreUnavailableError):
                    await walk

    asyncio.run(scenario())
