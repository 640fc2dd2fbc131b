"""Requests per second of `fastkv serve`, over HTTP and over the Redis protocol.

    python benchmarks/serve.py [--threads 8] [--keys 20000] [--rounds 3]

HTTP: `threads` fastkv.Client threads, each with its own keep-alive
connection: first every key is created (PUT), then every key is read (GET)
in random order; and `wrk -t2 -c50` GETs of one key, if wrk is installed.

RESP: redis-benchmark (50 clients; SET of a 90-byte JSON object and GET,
each without and with -P 16 pipelining; random keys of 10,000) against
`fastkv serve --resp-port` and against a redis-server this script starts
with persistence off, the two alternating, `rounds` times; the median
requests/s and p99 of each, and their ratio. Then the server's resident
memory with 1,000 idle connections open, against none.

Everything runs on this machine, load generators included. Prints a table;
JSON with --out.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from fastkv import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import machine  # noqa: E402
from worker import threaded_pass  # noqa: E402


def start(path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, int]:
    """fastkv serve on free ports: the process, its HTTP URL, its RESP port."""
    script = Path(sys.executable).parent / "fastkv"
    proc = subprocess.Popen([str(script), "--path", str(path), "serve", "--port", "0",
                             "--resp-port", "0", *extra], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    banner = proc.stderr.readline()
    match = re.search(r" at (http://\S+) and redis://[^:]+:(\d+) ", banner)
    if not match:
        raise SystemExit(f"the server did not start: {banner}")
    return proc, match.group(1), int(match.group(2))


JSON_VALUE = '{"name":"Ann","email":"ann@example.com","tags":["a","b"],"n":42,"pad":"xxxxxxxxxxxx"}'
RESP_TESTS = [("SET", ["SET", "key:__rand_int__", JSON_VALUE], 1),
              ("GET", ["GET", "key:__rand_int__"], 1),
              ("SET -P16", ["SET", "key:__rand_int__", JSON_VALUE], 16),
              ("GET -P16", ["GET", "key:__rand_int__"], 16)]


def redis_benchmark(port: int, command: list[str], pipeline: int) -> dict[str, float]:
    n = 100_000 * (4 if pipeline > 1 else 1)
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "50", "-n", str(n),
                          "-r", "10000", "-P", str(pipeline), "--csv", *command],
                         capture_output=True, text=True, timeout=600, check=True).stdout
    # the numbers are the last seven fields (the test's name may hold commas)
    row = out.strip().splitlines()[-1].replace('"', "").split(",")
    return {"rps": float(row[-7]), "p50_ms": float(row[-4]), "p99_ms": float(row[-2])}


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(tmp),
                             "--logfile", "redis.log"])
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.01)
    raise SystemExit("redis-server did not start")


def resp_rounds(fastkv_port: int, redis_port: int, rounds: int) -> dict[str, Any]:
    """Each test against both servers, alternating, rounds times."""
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    for _ in range(rounds):
        for name, command, pipeline in RESP_TESTS:
            pair = runs.setdefault(name, {"fastkv": [], "redis-server": []})
            order = [("fastkv", fastkv_port), ("redis-server", redis_port)]
            random.shuffle(order)
            for who, port in order:
                pair[who].append(redis_benchmark(port, command, pipeline))
    out: dict[str, Any] = {}
    for name, pair in runs.items():
        med = {who: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
               for who, rs in pair.items()}
        ratios = [f["rps"] / r["rps"] for f, r in zip(pair["fastkv"], pair["redis-server"])]
        out[name] = {**med, "rps_ratio": statistics.median(ratios), "runs": pair}
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def idle_memory(pid: int, port: int, n: int = 1000) -> float:
    """MiB the server holds for n idle RESP connections (each after one PING)."""
    import resource
    import socket
    import time

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 512)), hard))
    before = rss_kib(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"PING\r\n")
        socks.append(s)
    for s in socks:
        s.recv(16)
    time.sleep(0.5)
    grown = (rss_kib(pid) - before) / 1024
    for s in socks:
        s.close()
    return grown


def wrk_get(url: str, key: str) -> Optional[dict[str, float]]:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-t2", "-c50", "-d5s", "--latency", f"{url}/keys/{key}"],
                         capture_output=True, text=True, timeout=120).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {"rps": float(rps.group(1)) if rps else 0.0,
            "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else 0.0}


def phase(threads: int, keys: list[str], op: Callable[[Client, str], Any], url: str) -> dict:
    clients = [Client(url) for _ in range(threads)]  # a keep-alive connection each
    try:
        lat, elapsed_ns = threaded_pass([functools.partial(op, kv) for kv in clients], keys)
    finally:
        for kv in clients:
            kv.close()
    lat.sort()
    return {"requests": len(lat), "requests_per_s": len(lat) / (elapsed_ns / 1e9),
            "p50_ms": lat[len(lat) // 2] / 1e6, "p99_ms": lat[int(len(lat) * 0.99)] / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    value = {"name": "user", "n": 1, "tags": ["a", "b"], "pad": "x" * 48}
    keys = [f"user:{i:08d}" for i in range(args.keys)]
    random.Random(1).shuffle(keys)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, resp_port = start(Path(tmp) / "serve.fkv")
        redis_proc, redis_port = start_redis(Path(tmp)) if shutil.which("redis-benchmark") \
            else (None, 0)
        try:
            results: dict[str, Any] = {
                "machine": machine(), "rounds": args.rounds,
                "threads": args.threads,
                "keys": args.keys,
                "cpus": os.cpu_count(),
                "create": phase(args.threads, keys, lambda kv, k: kv.create(k, value), url),
                "read": phase(args.threads, keys[::-1], lambda kv, k: kv.read(k), url),
                "wrk_get": wrk_get(url, keys[0]),
            }
            if redis_proc is not None:
                results["resp"] = resp_rounds(resp_port, redis_port, args.rounds)
                results["idle_1000_connections_mib"] = idle_memory(proc.pid, resp_port)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            if redis_proc is not None:
                redis_proc.kill()
    for name in ("create", "read"):
        r = results[name]
        print(f"HTTP {name:6} {r['requests_per_s']:>9,.0f} requests/s  p50 {r['p50_ms']:.2f} ms  "
              f"p99 {r['p99_ms']:.2f} ms  ({args.threads} fastkv.Client threads)")
    if results["wrk_get"]:
        w = results["wrk_get"]
        print(f"HTTP wrk -t2 -c50 GET {w['rps']:>9,.0f} requests/s  p99 {w['p99_ms']:.2f} ms")
    for name, r in results.get("resp", {}).items():
        f, o = r["fastkv"], r["redis-server"]
        print(f"RESP {name:9} fastkv {f['rps']:>9,.0f}/s p99 {f['p99_ms']:.2f} ms   redis-server "
              f"{o['rps']:>9,.0f}/s p99 {o['p99_ms']:.2f} ms   ratio {r['rps_ratio']:.2f}x")
    if "idle_1000_connections_mib" in results:
        print(f"memory for 1,000 idle RESP connections: "
              f"{results['idle_1000_connections_mib']:.1f} MiB")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
