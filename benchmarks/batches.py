"""What the batch calls and transactions buy over one call per key.

    python benchmarks/batches.py [--rounds 9] [--smoke]

Three comparisons, each side by side in one process, alternating which goes
first in each round, each side on keys of its own, medians over the rounds
(keys per second):
  - put_many of 1,000 items against 1,000 single puts;
  - get_many of 1,000 keys against 1,000 reads;
  - in fsync mode, a transaction of 100 puts against 100 single puts (each
    of which waits for its own flush).
100-byte JSON values over a store of 100,000 keys. Results go to
benchmarks/results/batches.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import fastkv

VALUE = {"v": "x" * 92}  # 100 bytes of JSON


def rate(n: int, fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--smoke", action="store_true", help="one round over a small store")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "batches.json"))
    args = ap.parse_args()
    rounds, n_keys = (1, 5_000) if args.smoke else (args.rounds, args.keys)
    rng = random.Random(28)
    samples: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        samples.setdefault(name, []).append(value)

    with tempfile.TemporaryDirectory(dir=os.environ.get("FASTKV_BENCH_DIR")) as d:
        with fastkv.DataStore(Path(d) / "p.fkv") as db:
            keys = [f"key:{i:08d}" for i in range(n_keys)]
            db.put_many({k: VALUE for k in keys[:1000]})
            for k in keys:
                db.put(k, VALUE)
            for r in range(rounds):
                # Each side its own keys: on the same keys, the side that went
                # second found their records and index slots in the CPU cache.
                drawn = rng.sample(keys, 2000)
                mine, theirs = drawn[:1000], drawn[1000:]
                one = {k: VALUE for k in mine}
                many = {k: VALUE for k in theirs}
                sides: list[tuple[str, Callable[[], Any]]] = [
                    ("put, one call per key", lambda: [db.put(k, v) for k, v in one.items()]),
                    ("put_many of 1,000", lambda: db.put_many(many)),
                ]
                reads: list[tuple[str, Callable[[], Any]]] = [
                    ("read, one call per key", lambda: [db.read(k) for k in mine]),
                    ("get_many of 1,000", lambda: db.get_many(theirs)),
                ]
                for group in (sides, reads):
                    for name, fn in (group if r % 2 == 0 else group[::-1]):
                        note(name, rate(1000, fn))
        with fastkv.DataStore(Path(d) / "f.fkv", durability="fsync") as db:
            for r in range(rounds):
                batch = [f"f:{rng.randrange(10_000):05d}" for _ in range(100)]

                def in_tx() -> None:
                    with db.transaction() as tx:
                        for k in batch:
                            tx.put(k, VALUE)

                fsync_sides: list[tuple[str, Callable[[], Any]]] = [
                    ("fsync: put, one call per key", lambda: [db.put(k, VALUE) for k in batch]),
                    ("fsync: transaction of 100 puts", in_tx),
                ]
                for name, fn in (fsync_sides if r % 2 == 0 else fsync_sides[::-1]):
                    note(name, rate(100, fn))
    medians = {name: statistics.median(v) for name, v in samples.items()}
    ratios = {
        "put_many / put": medians["put_many of 1,000"] / medians["put, one call per key"],
        "get_many / read": medians["get_many of 1,000"] / medians["read, one call per key"],
        "fsync transaction / fsync put": medians["fsync: transaction of 100 puts"]
        / medians["fsync: put, one call per key"],
    }
    print(f"{rounds} rounds, keys per second (median), store of {n_keys:,} keys")
    for name, v in medians.items():
        print(f"  {name:34s} {v:12,.0f}")
    for name, v in ratios.items():
        print(f"  {name:34s} {v:10.2f}x")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rounds": rounds, "keys": n_keys, "medians": medians,
                               "ratios": ratios, "samples": samples}, indent=1))


if __name__ == "__main__":
    main()
