"""Every public method and property of DataStore and RedisStore has its
twin in fastkv.aio, taking the same parameters (names, kinds, defaults):
code moves from one to the other by adding await, and nothing else."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from fastkv import DataStore, RedisStore
from fastkv.aio import AsyncDataStore
from fastkv.redis.aio import AsyncRedisStore

# What a sync store does with an operator, its twin does with a method.
OPERATORS = {"__contains__": "contains", "__len__": "count", "__iter__": "__aiter__",
             "__enter__": "__aenter__", "__exit__": "__aexit__"}
TWINS = [(DataStore, AsyncDataStore), (RedisStore, AsyncRedisStore)]


def public(cls: type) -> list[str]:
    return sorted(n for n in dir(cls) if not n.startswith("_"))


def parameters(fn: Any) -> list[tuple[str, Any, Any]]:
    """Names, kinds and defaults; annotations differ (Iterator, AsyncIterator)."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("sync, twin", TWINS, ids=["DataStore", "RedisStore"])
def test_every_public_name_has_an_async_twin_with_the_same_parameters(
        sync: type, twin: type) -> None:
    assert parameters(getattr(sync, "__init__")) == parameters(getattr(twin, "__init__"))
    for name in public(sync):
        assert hasattr(twin, name), f"{twin.__name__} lacks {name}"
        mine, theirs = inspect.getattr_static(sync, name), inspect.getattr_static(twin, name)
        if isinstance(mine, property):
            assert isinstance(theirs, property), f"{twin.__name__}.{name} is not a property"
            continue
        assert parameters(getattr(sync, name)) == parameters(getattr(twin, name)), name
        fn = getattr(twin, name)
        if name == "transaction":  # an async context manager: `async with db.transaction()`
            assert hasattr(fn(object.__new__(twin)), "__aenter__"), name
            continue
        assert inspect.iscoroutinefunction(fn) or name in ("keys", "items") and \
            (inspect.isasyncgenfunction(fn) or "AsyncIterator" in str(
                inspect.signature(fn).return_annotation)), f"{twin.__name__}.{name} is not async"
    for op, method in OPERATORS.items():
        if hasattr(sync, op):
            assert hasattr(twin, method), f"{twin.__name__} lacks {method} (for {op})"


def test_the_async_classes_have_nothing_the_sync_ones_lack() -> None:
    """Beyond the operators' methods and the named constructors."""
    extra = {"contains", "count", "open", "wrap", "sync_store"}
    for sync, twin in TWINS:
        assert set(public(twin)) - set(public(sync)) <= extra, twin.__name__
