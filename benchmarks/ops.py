"""A first, rough comparison of create / read / delete throughput.

    python benchmarks/ops.py [--keys 100000] [--value-bytes 100] [--repeat 3]

Every store runs in a fresh subprocess with the same semantics: values are
JSON objects encoded with orjson, create refuses a live key, read and delete
refuse a missing one. Each store's settings survive a crash of the process
(not power loss): sqlite3 in WAL mode with synchronous=OFF, lmdb with
sync=False, dbm as the interpreter builds it, diskcache as shipped. Peers
that are not installed are skipped. Ops/s is the median over --repeat runs;
results go to benchmarks/results/ops.json. The full harness (TTL, misses,
threads, reopen, percentiles) is tracked separately.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r'''
import json, os, random, sys, time
import orjson
store, path, n, vbytes, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
keys = [f"key:{i:012d}" for i in range(n)]
rng.shuffle(keys)
value = {"v": "x" * (vbytes - 8)}
dumps, loads = orjson.dumps, orjson.loads

if store == "fastkv":
    import fastkv
    db = fastkv.DataStore(os.path.join(path, "s.fkv"))
    create, read, delete = db.create, db.read, db.delete
elif store == "sqlite3":
    import sqlite3
    con = sqlite3.connect(os.path.join(path, "s.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
    def create(k, v):
        try:
            con.execute("INSERT INTO kv VALUES (?, ?)", (k, dumps(v)))
        except sqlite3.IntegrityError:
            raise KeyError(k)
    def read(k):
        row = con.execute("SELECT v FROM kv WHERE k = ?", (k,)).fetchone()
        if row is None:
            raise KeyError(k)
        return loads(row[0])
    def delete(k):
        if con.execute("DELETE FROM kv WHERE k = ?", (k,)).rowcount == 0:
            raise KeyError(k)
elif store == "lmdb":
    import lmdb
    env = lmdb.open(os.path.join(path, "s.lmdb"), map_size=1 << 32, sync=False, metasync=False)
    def create(k, v):
        with env.begin(write=True) as txn:
            if not txn.put(k.encode(), dumps(v), overwrite=False):
                raise KeyError(k)
    def read(k):
        with env.begin() as txn:
            b = txn.get(k.encode())
        if b is None:
            raise KeyError(k)
        return loads(b)
    def delete(k):
        with env.begin(write=True) as txn:
            if not txn.delete(k.encode()):
                raise KeyError(k)
elif store == "dbm":
    import dbm
    db = dbm.open(os.path.join(path, "s.dbm"), "c")
    def create(k, v):
        kb = k.encode()
        if kb in db:
            raise KeyError(k)
        db[kb] = dumps(v)
    def read(k):
        return loads(db[k.encode()])
    def delete(k):
        del db[k.encode()]
elif store == "diskcache":
    import diskcache
    cache = diskcache.Cache(os.path.join(path, "dc"))
    def create(k, v):
        if not cache.add(k, dumps(v)):
            raise KeyError(k)
    def read(k):
        b = cache.get(k)
        if b is None:
            raise KeyError(k)
        return loads(b)
    def delete(k):
        if not cache.delete(k):
            raise KeyError(k)
else:
    raise SystemExit(f"unknown store {store}")

result = {}
t = time.perf_counter()
for k in keys:
    create(k, value)
result["create"] = n / (time.perf_counter() - t)
rng.shuffle(keys)
t = time.perf_counter()
for k in keys:
    read(k)
result["read"] = n / (time.perf_counter() - t)
rng.shuffle(keys)
t = time.perf_counter()
for k in keys:
    delete(k)
result["delete"] = n / (time.perf_counter() - t)
print(json.dumps(result))
'''

STORES = ["fastkv", "lmdb", "sqlite3", "dbm", "diskcache"]
PEER_MODULES = {"lmdb": "lmdb", "diskcache": "diskcache", "dbm": "dbm", "sqlite3": "sqlite3"}


def available(store: str) -> bool:
    if store == "fastkv":
        return True
    code = f"import {PEER_MODULES[store]}"
    if store == "dbm":
        # dbm.dumb (pure Python) is what remains without gdbm/ndbm; it takes
        # minutes at these sizes and says nothing about a real dbm.
        code = "import importlib.util as u, sys; sys.exit(not (u.find_spec('_gdbm') or u.find_spec('_dbm')))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--stores", default=",".join(STORES))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ops.json"))
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    for store in args.stores.split(","):
        if not available(store):
            print(f"{store}: not installed, skipped")
            continue
        runs = []
        for r in range(args.repeat):
            with tempfile.TemporaryDirectory() as d:
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, store, d, str(args.keys),
                     str(args.value_bytes), str(args.seed + r)],
                    check=True, capture_output=True, text=True, cwd=d,
                ).stdout
            runs.append(json.loads(out))
        results[store] = {op: statistics.median(x[op] for x in runs) for op in runs[0]}
    ops = ["create", "read", "delete"]
    print(f"\n{args.keys:,} keys, {args.value_bytes}-byte values, median of {args.repeat} runs (ops/s)")
    print(f"{'store':<10}" + "".join(f"{op:>12}" for op in ops)
          + ("".join(f"{'vs ' + op:>12}" for op in ops) if "fastkv" in results else ""))
    for store, res in results.items():
        line = f"{store:<10}" + "".join(f"{res[op]:>12,.0f}" for op in ops)
        if "fastkv" in results:
            line += "".join(f"{results['fastkv'][op] / res[op]:>11.2f}x" for op in ops)
        print(line)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "keys": args.keys, "value_bytes": args.value_bytes, "repeat": args.repeat,
        "machine": f"{os.uname().machine}, {os.cpu_count()} cores",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "ops_per_second": results,
    }, indent=2))


if __name__ == "__main__":
    main()
