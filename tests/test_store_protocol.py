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
        assert isinstance(db, KeyValueStore)
        assert round_trip(store) == EXPECTED


def test_a_client_is_a_key_value_store(serve: Callable[..., Served], store_path: Path) -> None:
    with Client(serve(store_path).url) as kv:
        store: KeyValueStore = kv
        assert isinstance(kv, KeyValueStore)
        assert round_trip(store) == EXPECTED


def test_a_redis_store_is_a_key_value_store(redis_server: RedisServer, namespace: str) -> None:
    with fastkv.RedisStore(redis_server.url, namespace=namespace) as rs:
        store: KeyValueStore = rs
        assert isinstance(rs, KeyValueStore)
        assert round_trip(store) == EXPECTED


@pytest.mark.parametrize("name", sorted(n for n in dir(KeyValueStore)
                                        if not n.startswith("_") or n in
                                        ("__contains__", "__len__", "__iter__", "__getitem__",
                                         "__setitem__", "__delitem__")))
def test_the_protocol_names_only_what_every_store_has(name: str) -> None:
    for cls in (DataStore, Client, fastkv.RedisStore):
        assert callable(getattr(cls, name, None)), (cls.__name__, name)
