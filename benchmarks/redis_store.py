"""RedisStore against the same commands sent with bare redis-py, on servers
this script starts (Debian's redis-server, persistence off).

    python benchmarks/redis_store.py [--keys 20000] [--rounds 5] [--scan-keys 100000]

  create / read / delete   RedisStore vs redis-py's set(nx=True) / get / delete
                           with orjson turning the dict into bytes and back
                           (what a redis-py user writes to keep JSON), one
                           standalone server; the file store beside them
  iteration                RedisStore.keys() over a 3-node cluster vs the
                           same SCAN MATCH COUNT loop on each primary in
                           bare redis-py

Variants run in a shuffled order each round over the same keys; ratios are
taken round by round and the median quoted. Results go to
benchmarks/results/redis_store.json.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import orjson
import redis
from redis.cluster import RedisCluster

import fastkv

VALUE = {"name": "Ann", "email": "ann@example.com", "tags": ["a", "b"], "n": 42}


def free_port() -> int:
    while True:
        port = random.randint(20000, 50000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))  # a cluster node's bus port
                return port
        except OSError:
            continue


def start_server(d: Path, *config: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    d.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(d), "--save", "", "--appendonly", "no",
                             "--logfile", "server.log", *config])
    c = redis.Redis(port=port)
    for _ in range(500):
        try:
            c.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.01)
    c.close()
    return proc, port


def per_op(n: int, fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) / n * 1e6


def crud_round(url: str, file_dir: Path, keys: list[str], r: int) -> dict[str, float]:
    ns = f"bench{r}"
    store = fastkv.RedisStore(url, namespace=ns)
    bare = redis.Redis.from_url(url)
    names = [f"bare{r}:{k}".encode() for k in keys]
    db = fastkv.DataStore(file_dir / f"r{r}.fkv")
    dumps, loads = orjson.dumps, orjson.loads

    def rs_create() -> None:
        for k in keys:
            store.create(k, VALUE)

    def rs_read() -> None:
        for k in keys:
            store.read(k)

    def rs_delete() -> None:
        for k in keys:
            store.delete(k)

    def py_create() -> None:
        for n in names:
            if not bare.set(n, dumps(VALUE), nx=True):
                raise KeyError(n)

    def py_read() -> None:
        for n in names:
            raw = bare.get(n)
            if raw is None:
                raise KeyError(n)
            loads(raw)

    def py_delete() -> None:
        for n in names:
            if not bare.delete(n):
                raise KeyError(n)

    def fs_create() -> None:
        for k in keys:
            db.create(k, VALUE)

    def fs_read() -> None:
        for k in keys:
            db.read(k)

    def fs_delete() -> None:
        for k in keys:
            db.delete(k)

    out: dict[str, float] = {}
    n = len(keys)
    for phase, variants in (("create", [("RedisStore", rs_create), ("redis-py", py_create),
                                        ("DataStore", fs_create)]),
                            ("read", [("RedisStore", rs_read), ("redis-py", py_read),
                                      ("DataStore", fs_read)]),
                            ("delete", [("RedisStore", rs_delete), ("redis-py", py_delete),
                                        ("DataStore", fs_delete)])):
        random.shuffle(variants)
        for name, fn in variants:
            out[f"{phase} {name}"] = per_op(n, fn)
    store.close()
    bare.close()
    db.close()
    return out


def start_cluster(d: Path) -> tuple[list[subprocess.Popen[bytes]], str]:
    nodes = [start_server(d / f"node{i}", "--cluster-enabled", "yes",
                          "--cluster-config-file", "nodes.conf") for i in range(3)]
    subprocess.run(["redis-cli", "--cluster", "create",
                    *[f"127.0.0.1:{p}" for _, p in nodes],
                    "--cluster-replicas", "0", "--cluster-yes"],
                   check=True, capture_output=True, timeout=60)
    for _, port in nodes:
        c = redis.Redis(port=port)
        while c.cluster("info").get("cluster_state") != "ok":
            time.sleep(0.05)
        c.close()
    return [p for p, _ in nodes], f"redis://127.0.0.1:{nodes[0][1]}/0"


def scan_round(url: str, n: int) -> dict[str, float]:
    store = fastkv.RedisStore(url, namespace="scan")
    bare = RedisCluster.from_url(url)

    def bare_scan() -> int:
        found = 0
        for node in bare.get_primaries():
            cursor = 0
            while True:
                cursors, names = bare.scan(cursor, match=b"scan:*", count=1000,
                                           target_nodes=node)
                found += len(names)
                cursor = cursors[node.name]
                if not cursor:
                    break
        return found

    results: dict[str, float] = {}
    steps: list[tuple[str, Callable[[], int]]] = [
        ("RedisStore.keys()", lambda: sum(1 for _ in store.keys())),
        ("redis-py SCAN loop", bare_scan)]
    random.shuffle(steps)
    for name, fn in steps:
        t = time.perf_counter()
        got = fn()
        results[name] = time.perf_counter() - t
        if got != n:
            raise AssertionError(f"{name} found {got} keys, not {n}")
    tracemalloc.start()
    sum(1 for _ in store.keys())
    results["keys() peak traced bytes per key"] = tracemalloc.get_traced_memory()[1] / n
    tracemalloc.stop()
    store.close()
    bare.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scan-keys", type=int, default=100_000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "redis_store.json"))
    args = ap.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("needs Debian's redis-server and redis-tools")
    keys = [f"user:{i}" for i in range(args.keys)]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        proc, port = start_server(d / "single")
        version = redis.Redis(port=port).info("server")["redis_version"]
        url = f"redis://127.0.0.1:{port}/0"
        rounds = [crud_round(url, d, keys, r) for r in range(args.rounds)]
        proc.kill()
        procs, curl = start_cluster(d / "cluster")
        try:
            store = fastkv.RedisStore(curl, namespace="scan")
            pipe = store.client.pipeline(transaction=False)
            for i in range(args.scan_keys):
                pipe.set(f"scan:k{i}".encode(), b'{"i":1}')
                if i % 5000 == 4999:
                    pipe.execute()
            pipe.execute()
            store.close()
            scans = [scan_round(curl, args.scan_keys) for _ in range(args.rounds)]
        finally:
            for p in procs:
                p.kill()

    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    print(f"redis-server {version}, {args.keys:,} keys, {len(orjson.dumps(VALUE))}-byte values, "
          f"median of {args.rounds} rounds, µs per call")
    ratios: dict[str, float] = {}
    for phase in ("create", "read", "delete"):
        ratio = statistics.median(r[f"{phase} redis-py"] / r[f"{phase} RedisStore"]
                                  for r in rounds)
        ratios[phase] = ratio
        print(f"  {phase:<7} RedisStore {med[f'{phase} RedisStore']:7.1f}   redis-py "
              f"{med[f'{phase} redis-py']:7.1f}   DataStore {med[f'{phase} DataStore']:5.2f}"
              f"   RedisStore throughput / redis-py: {ratio:.2f}x")
    scan_ratio = statistics.median(s["RedisStore.keys()"] / s["redis-py SCAN loop"]
                                   for s in scans)
    print(f"iterating {args.scan_keys:,} keys on a 3-node cluster: RedisStore.keys() "
          f"{statistics.median(s['RedisStore.keys()'] for s in scans) * 1e3:.0f} ms, "
          f"bare SCAN loop {statistics.median(s['redis-py SCAN loop'] for s in scans) * 1e3:.0f}"
          f" ms: {scan_ratio:.2f}x the time; repeat filter "
          f"{statistics.median(s['keys() peak traced bytes per key'] for s in scans):.0f} "
          f"traced bytes per key at peak")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(
        {"server": version, "keys": args.keys, "rounds": rounds, "median_us": med,
         "throughput_ratio_vs_redis_py": ratios, "scan": scans,
         "scan_time_ratio_vs_redis_py": scan_ratio}, indent=1))


if __name__ == "__main__":
    main()
