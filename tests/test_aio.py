"""fastkv.aio: the DataStore API as coroutines; reads from memory run on
the loop, calls that may wait run in a worker thread, the loop never stalls."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, TypeVar

import pytest

import fastkv
import fastkv.aio
from fastkv import _core
from fastkv.aio import AsyncDataStore

T = TypeVar("T")


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, counting the calls sent to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.calls = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> "concurrent.futures.Future[T]":
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


def run(main: Callable[[CountingExecutor], Awaitable[T]], use_uvloop: bool = False) -> T:
    executor = CountingExecutor()

    async def wrapped() -> T:
        asyncio.get_running_loop().set_default_executor(executor)
        return await main(executor)

    try:
        if use_uvloop:
            uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed here")
            return uvloop.run(wrapped())  # type: ignore[no-any-return]
        return asyncio.run(wrapped())
    finally:
        executor.shutdown()


LOOPS = ["asyncio", "uvloop"]


@pytest.mark.parametrize("loop", LOOPS)
def test_every_method_as_a_coroutine(store_path: Path, loop: str) -> None:
    async def main(ex: CountingExecutor) -> None:
        async with await fastkv.aio.open(store_path) as db:
            assert isinstance(db, AsyncDataStore)
            await db.create("a", {"v": 1}, ttl=100)
            with pytest.raises(fastkv.KeyExistsError):
                await db.create("a", {"v": 2})
            await db.put("a", {"v": 2})
            await db.put("b", {"v": 3}, ttl=50)
            assert await db.read("a") == {"v": 2}
            assert await db.get("zz") is None and await db.get("zz", 7) == 7
            assert await db.ttl("a") is None
            left = await db.ttl("b")
            assert left is not None and 49 < left <= 50
            await db.touch("b", None)
            assert await db.ttl("b") is None
            assert await db.contains("a") and not await db.contains("zz")
            assert not await db.contains(5)
            assert await db.count() == 2
            assert sorted([k async for k in db]) == ["a", "b"]
            assert [k async for k in db.keys("a")] == ["a"]
            assert dict([kv async for kv in db.items()]) == {"a": {"v": 2}, "b": {"v": 3}}
            await db.delete("a")
            for call in (db.read("a"), db.delete("a"), db.ttl("a"), db.touch("a", 5)):
                with pytest.raises(fastkv.KeyNotFoundError):
                    await call
            with pytest.raises(fastkv.InvalidValueError):
                await db.put("c", [1])
            with pytest.raises(fastkv.InvalidTTLError):
                await db.put("c", {}, ttl=0)
            await db.compact()
            await db.sync()
            assert (await db.stats())["live_keys"] == 1
        with pytest.raises(fastkv.StoreClosedError):
            await db.read("b")

    run(main, use_uvloop=loop == "uvloop")


def test_reads_from_memory_never_leave_the_loop(store_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("Windows has no read that fails rather than wait for the disk (Linux's "
                    "RWF_NOWAIT): every read goes to a worker thread there (README)")

    async def main(ex: CountingExecutor) -> None:
        db = await fastkv.aio.open(store_path)
        for i in range(200):
            await db.create(f"k{i}", {"i": i})  # process mode: inline
        start = ex.calls
        for _ in range(5):
            for i in range(200):
                assert await db.read(f"k{i}") == {"i": i}
                assert await db.get(f"k{i}") == {"i": i}
                assert await db.contains(f"k{i}")
        assert ex.calls == start  # not one hop to a thread
        await db.close()

    run(main)


def test_a_read_that_must_wait_goes_to_a_thread_and_the_loop_runs_on(store_path: Path) -> None:
    async def main(ex: CountingExecutor) -> None:
        db = await fastkv.aio.open(store_path)
        await db.create("slow", {"v": 1})
        _core._debug_pause_next_read(db.sync_store, 1.0)  # as a read from a slow disk
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        start = ex.calls
        assert await db.read("slow") == {"v": 1}
        t.cancel()
        assert ex.calls == start + 1
        assert ticks >= 20  # the loop kept running while the read waited
        await db.close()

    run(main)


def test_fsync_writes_run_in_threads_and_share_flushes(store_path: Path) -> None:
    async def main(ex: CountingExecutor) -> None:
        db = await fastkv.aio.open(store_path, durability="fsync")
        start = ex.calls
        await asyncio.gather(*(db.create(f"k{i}", {"i": i}) for i in range(40)))
        assert ex.calls - start == 40
        assert await db.count() == 40
        assert (await db.stats())["flushes"] < 40
        await db.close()

    run(main)


def test_100_concurrent_tasks_read_what_was_written(store_path: Path) -> None:
    async def main(ex: CountingExecutor) -> None:
        db = await fastkv.aio.open(store_path)
        for i in range(500):
            await db.create(f"k{i}", {"i": i})

        async def task(t: int) -> int:
            n = 0
            for i in range(t, 500, 7):
                assert await db.read(f"k{i}") == {"i": i}
                n += 1
            return n

        assert sum(await asyncio.gather(*(task(t % 7) for t in range(100)))) > 0
        await db.close()

    run(main)


def test_iteration_under_a_writer_task_yields_each_stable_key_once(store_path: Path) -> None:
    async def main(ex: CountingExecutor) -> None:
        db = await fastkv.aio.open(store_path)
        stable = {f"s{i}" for i in range(2000)}
        for key in stable:
            await db.create(key, {})
        done = asyncio.Event()

        def writer() -> None:
            for i in range(20000):
                db.sync_store.create(f"w{i}", {})

        async def write() -> None:
            await asyncio.get_running_loop().run_in_executor(None, writer)
            done.set()

        w = asyncio.ensure_future(write())
        passes = 0
        while not done.is_set() or passes == 0:
            seen = [k async for k in db]
            assert len(seen) == len(set(seen)) and stable <= set(seen)
            passes += 1
        await w
        await db.close()

    run(main)


def test_open_refuses_what_a_datastore_refuses(tmp_path: Path) -> None:
    async def main(ex: CountingExecutor) -> None:
        with pytest.raises(fastkv.InvalidPathError):
            await fastkv.aio.open(tmp_path)
        with pytest.raises(fastkv.ConfigError):
            await fastkv.aio.open(tmp_path / "x.fkv", durability="sometimes")
        with pytest.raises(fastkv.ConfigError):
            await fastkv.aio.open("ftp://example/0")
        first = await fastkv.aio.open(tmp_path / "held.fkv")
        with pytest.raises(fastkv.StoreLockedError):
            await fastkv.aio.open(tmp_path / "held.fkv", lock_timeout=0.2)
        await first.close()

    run(main)


def test_import_fastkv_does_not_import_asyncio() -> None:
    import subprocess
    import sys

    code = "import sys, fastkv; print('asyncio' in sys.modules, 'fastkv.aio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout.split()
    assert out == ["False", "False"]


def test_waiting_threads_do_not_leak(store_path: Path) -> None:
    before = threading.active_count()

    async def main(ex: CountingExecutor) -> None:
        async with await fastkv.aio.open(store_path, durability="fsync") as db:
            await db.put("k", {})

    run(main)
    time.sleep(0.1)
    assert threading.active_count() <= before + 1
