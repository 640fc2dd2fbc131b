"""The everyday calls against the ones they stand beside.

    python benchmarks/everyday.py [--keys 100000] [--rounds 5]

  put / create     put over a key that exists vs create of a new key
  get / read       get of a present key vs read
  asyncio          await db.read from the page cache vs a sync read, with
                   asyncio.to_thread(db.read) printed beside it; and 100
                   tasks reading at once vs one task reading in a loop

Each round times every variant over the same keys, in a shuffled order of
variants; ratios are taken round by round and the median quoted. Results go
to benchmarks/results/everyday.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import fastkv
import fastkv.aio

VALUE = {"v": "x" * 92}  # 100 bytes of JSON
REPEATS = 5


def per_op(n: int, fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) / n


def sync_round(d: Path, keys: list[str], r: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with fastkv.DataStore(d / f"sync-{r}.fkv") as db:
        def create() -> None:
            for k in keys:
                db.create(k, VALUE)

        def put() -> None:
            for k in keys:
                db.put(k, VALUE)

        def read() -> None:
            for k in keys:
                db.read(k)

        def get() -> None:
            for k in keys:
                db.get(k)

        out["create (new key)"] = per_op(len(keys), create)
        steps = [("put (existing key)", put), ("read", read), ("get", get)]
        random.shuffle(steps)
        for name, fn in steps:
            out[name] = per_op(len(keys), fn)
    return out


async def async_round(d: Path, keys: list[str], r: int) -> dict[str, float]:
    db = await fastkv.aio.open(d / f"aio-{r}.fkv")
    sync = db.sync_store
    for k in keys:
        sync.create(k, VALUE)
    n = len(keys)

    async def awaited() -> None:
        for k in keys:
            await db.read(k)

    async def to_thread() -> None:
        for k in keys[: n // 10]:  # a hop per call: a tenth is plenty
            await asyncio.to_thread(sync.read, k)

    async def tasks_100() -> None:
        async def task(part: list[str]) -> None:
            for k in part:
                await db.read(k)
        await asyncio.gather(*(task(keys[t::100]) for t in range(100)))

    def sync_read() -> None:
        for k in keys:
            sync.read(k)

    steps: list[tuple[str, Any, int]] = [
        ("sync read", sync_read, n), ("await read", awaited, n),
        ("asyncio.to_thread(read)", to_thread, n // 10), ("100 tasks", tasks_100, n)]
    # each variant several times, in a new order each time: passes of a
    # fraction of a second drift by tens of percent on this machine
    times: dict[str, list[float]] = {name: [] for name, _, _ in steps}
    for _ in range(REPEATS):
        random.shuffle(steps)
        for name, fn, count in steps:
            t = time.perf_counter()
            if asyncio.iscoroutinefunction(fn):
                await fn()
            else:
                fn()
            times[name].append((time.perf_counter() - t) / count)
    await db.close()
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "everyday.json"))
    args = ap.parse_args()
    gc.disable()
    random.seed(11)
    keys = [f"user:{i:08d}" for i in range(args.keys)]
    random.shuffle(keys)
    with tempfile.TemporaryDirectory(dir=os.environ.get("FASTKV_BENCH_DIR")) as tmp:
        d = Path(tmp)
        sr = [sync_round(d, keys, r) for r in range(args.rounds)]
        ar = [asyncio.run(async_round(d, keys, r)) for r in range(args.rounds)]

    def med(rounds: list[dict[str, float]], name: str) -> float:
        return statistics.median(r[name] for r in rounds)

    def ratio(rounds: list[dict[str, float]], a: str, b: str) -> float:
        return statistics.median(r[b] / r[a] for r in rounds)  # throughput of a over b

    report = {
        "keys": args.keys, "sync_rounds": sr, "async_rounds": ar,
        "put_over_create": ratio(sr, "put (existing key)", "create (new key)"),
        "get_over_read": ratio(sr, "get", "read"),
        "await_read_time_over_sync": 1 / ratio(ar, "await read", "sync read"),
        "to_thread_time_over_sync": 1 / ratio(ar, "asyncio.to_thread(read)", "sync read"),
        "100_tasks_over_1": ratio(ar, "100 tasks", "await read"),
    }
    print(f"{args.keys:,} keys, 100-byte values, median of {args.rounds} rounds, µs per call")
    for name in sr[0]:
        print(f"  {name:<26} {med(sr, name) * 1e6:7.2f}")
    for name in ar[0]:
        print(f"  {name:<26} {med(ar, name) * 1e6:7.2f}")
    print(f"  put / create throughput: {report['put_over_create']:.2f}x   "
          f"get / read: {report['get_over_read']:.2f}x")
    print(f"  await read: {report['await_read_time_over_sync']:.2f}x a sync read's time "
          f"(asyncio.to_thread: {report['to_thread_time_over_sync']:.1f}x)   "
          f"100 tasks / 1 task throughput: {report['100_tasks_over_1']:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
