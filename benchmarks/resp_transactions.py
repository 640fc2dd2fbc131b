"""Transactions per second over the Redis protocol: MULTI, 10 SETs, EXEC.

    python benchmarks/resp_transactions.py [--rounds 5] [--seconds 3] [--clients 50]

What redis-py's default pipeline() sends for 10 SETs (MULTI, the SETs of a
90-byte JSON object under random keys of 10,000, EXEC in one write), from
`clients` connections at once, each sending its next transaction when the
last one's replies are in; against `fastkv serve --resp-port` and a
redis-server this script starts with persistence off, alternating, `rounds`
times. redis-benchmark cannot send MULTI blocks, so the load comes from
this script: one process on uvloop, replies counted by their known length
(the same bytes from both servers), transactions prepared ahead. The load
generator shares the machine's cores with the server; its CPU time per
transaction is printed so that a server limited by it shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import JSON_VALUE, start, start_redis  # noqa: E402

SETS = 10
# +OK for MULTI, +QUEUED for each SET, then EXEC's array of +OK
REPLY = b"+OK\r\n" + b"+QUEUED\r\n" * SETS + b"*%d\r\n" % SETS + b"+OK\r\n" * SETS


def command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def prepared(n: int, rng: random.Random) -> list[bytes]:
    value = JSON_VALUE.encode()
    return [command(b"MULTI") + b"".join(
        command(b"SET", b"key:%012d" % rng.randrange(10_000), value) for _ in range(SETS))
        + command(b"EXEC") for _ in range(n)]


async def one_client(port: int, blocks: list[bytes], until: float, done: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i, count, want = random.randrange(len(blocks)), 0, len(REPLY)
    while time.perf_counter() < until:
        writer.write(blocks[i % len(blocks)])
        got = await reader.readexactly(want)
        if got != REPLY:
            raise SystemExit(f"unexpected reply: {got[:200]!r}")
        i += 1
        count += 1
    done.append(count)
    writer.close()


async def load(port: int, clients: int, seconds: float, blocks: list[bytes]) -> float:
    done: list[int] = []
    until = time.perf_counter() + seconds
    start_t = time.perf_counter()
    await asyncio.gather(*(one_client(port, blocks, until, done) for _ in range(clients)))
    return sum(done) / (time.perf_counter() - start_t)


def measure(port: int, clients: int, seconds: float, blocks: list[bytes]) -> dict[str, float]:
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    runner = _runner()
    tps = runner(load(port, clients, seconds, blocks))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {"tps": tps, "client_cpu_us_per_tx": cpu / max(1.0, tps * seconds) * 1e6}


def _runner() -> Any:
    try:
        import uvloop
        return uvloop.run
    except ImportError:
        return asyncio.run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--durability", default="default", choices=["default", "fsync"])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    blocks = prepared(2000, random.Random(7))
    runs: dict[str, list[dict[str, float]]] = {"fastkv": [], "redis-server": []}
    with tempfile.TemporaryDirectory() as tmp:
        extra = ("--durability", "fsync") if args.durability == "fsync" else ()
        proc, _, resp_port = start(Path(tmp) / "tx.fkv", *extra)
        redis_proc, redis_port = start_redis(Path(tmp))
        try:
            for _ in range(args.rounds):
                order = [("fastkv", resp_port), ("redis-server", redis_port)]
                random.shuffle(order)
                for who, port in order:
                    runs[who].append(measure(port, args.clients, args.seconds, blocks))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            redis_proc.kill()
    med = {who: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for who, rs in runs.items()}
    ratios = [f["tps"] / r["tps"] for f, r in zip(runs["fastkv"], runs["redis-server"])]
    ratio = statistics.median(ratios)
    for who, m in med.items():
        print(f"MULTI + {SETS} SET + EXEC, {args.clients} clients: {who:12} "
              f"{m['tps']:>9,.0f} transactions/s  (load generator {m['client_cpu_us_per_tx']:.0f}"
              f" µs CPU per transaction)")
    print(f"fastkv / redis-server: {ratio:.2f}x (median of {args.rounds} paired rounds)")
    if args.out:
        args.out.write_text(json.dumps({"median": med, "ratio": ratio, "runs": runs,
                                        "durability": args.durability}, indent=2))


if __name__ == "__main__":
    main()
