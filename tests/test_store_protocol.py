"""fastkv.KeyValueStore, the protocol DataStore, RedisStore and Client share:
each is checked against it by mypy (the annotated assignments below are
type-checked with the suite) and by isinstance at run time, and code typed
against the protocol runs on each of them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest

import fastkv
from fastkv import Client, DataStore, KeyValueStore
from fastkv.store_protocol import DeadlineStore

if TYPE_CHECKING:
    from conftest import RedisServer, Served


def round_trip(store: KeyValueStore) -> dict[str, Any]:
    """Code written once against the protocol."""
    store.create("p:1", {"n": 1})
    store.put("p:2", {"n": 2}, ttl=60)
    store["p:3"] = {"n": 3}
    del store["p:1"]
    return {"items": dict(store.items("p:")), "len": len(store), "in": "p:2" in store,
            "ttl": store.ttl("p:2") is not None, "get": store.get("p:1", "gone"),
            "keys": sorted(store.keys()), "iter": sorted(store)}


EXPECTED = {"items": {"p:2": {"n": 2}, "p:3": {"n": 3}}, "len": 2, "in": True, "ttl": True,
            "get": "gone", "keys": ["p:2", "p:3"], "iter": ["p:2", "p:3"]}


def test_a_datastore_is_a_key_value_store(store_path: Path) -> None:
    with DataStore(store_path) as db:
        store: KeyValueStore = db
        timed: DeadlineStore = db
        assert isinstance(db, KeyValueStore) and isinstance(timed, DeadlineStore)
        assert round_trip(store) == EXPECTED


def test_a_client_is_a_key_value_store(serve: Callable[..., Served], store_path: Path) -> None:
    with Client(serve(store_path).url) as kv:
        store: KeyValueStore = kv
        assert isinstance(kv, KeyValueStore)
        assert not isinstance(kv, DeadlineStore)  # HTTP has no absolute deadlines
        assert round_trip(store) == EXPECTED


def test_a_redis_store_is_a_key_value_store(redis_server: RedisServer, namespace: str) -> None:
    with fastkv.RedisStore(redis_server.url, namespace=namespace) as rs:
        store: KeyValueStore = rs
        timed: DeadlineStore = rs
        assert isinstance(rs, KeyValueStore) and isinstance(timed, DeadlineStore)
        assert round_trip(store) == EXPECTED


@pytest.mark.parametrize("name", sorted(n for n in dir(KeyValueStore)
                                        if not n.startswith("_") or n in
                                        ("__contains__", "__len__", "__iter__", "__getitem__",
                                         "__setitem__", "__delitem__")))
def test_the_protocol_names_only_what_every_store_has(name: str) -> None:
    for cls in (DataStore, Client, fastkv.RedisStore):
        assert callable(getattr(cls, name, None)), (cls.__name__, name)


def check_deadlines(read: Callable[[str], Any], create: Callable[..., Any]) -> None:
    import time

    deadline = int(time.time() * 1000) + 3_600_000
    create("d:1", {"n": 1}, deadline)
    create("d:2", {"n": 2}, None)
    assert read("d:1") == ({"n": 1}, deadline)  # to the millisecond
    assert read("d:2") == ({"n": 2}, None)
    with pytest.raises(fastkv.KeyExistsError):
        create("d:1", {"n": 3}, None)
    create("d:1", {"n": 3}, None, True)  # replace: a put
    assert read("d:1") == ({"n": 3}, None)
    with pytest.raises(fastkv.KeyExpiredError):
        create("d:3", {}, deadline - 7_200_000)


def test_absolute_deadlines_on_every_store_that_has_them(
        store_path: Path, redis_server: RedisServer, namespace: str) -> None:
    import asyncio

    from fastkv.aio import AsyncDataStore, AsyncRedisStore

    with DataStore(store_path) as db:
        check_deadlines(db.read_with_deadline, db.create_until)
    with fastkv.RedisStore(redis_server.url, namespace=namespace) as rs:
        check_deadlines(rs.read_with_deadline, rs.create_until)
    for opening in (lambda: AsyncDataStore(store_path.with_name("async.fkv")),
                    lambda: AsyncRedisStore(redis_server.url, namespace=namespace + "-a")):
        loop = asyncio.new_event_loop()
        try:
            twin: Any = loop.run_until_complete(_awaited(opening()))
            check_deadlines(lambda *a: loop.run_until_complete(twin.read_with_deadline(*a)),
                            lambda *a: loop.run_until_complete(twin.create_until(*a)))
            loop.run_until_complete(twin.close())
        finally:
            loop.close()


async def _awaited(opening: Any) -> Any:
    return await opening
