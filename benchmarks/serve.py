"""Requests per second of `fastkv serve`, driven by fastkv.Client threads.

    python benchmarks/serve.py [--threads 8] [--keys 20000]

Starts the server in a subprocess on a free loopback port, then runs
`threads` client threads, each with its own keep-alive connection: first
every key is created (PUT), then every key is read (GET) in random order.
Prints requests/s and p50/p99 latency per phase, as JSON too (--out).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from fastkv import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worker import threaded_pass  # noqa: E402


def start(path: Path) -> tuple[subprocess.Popen[str], str]:
    script = Path(sys.executable).parent / "fastkv"
    proc = subprocess.Popen([str(script), "--path", str(path), "serve", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    banner = proc.stderr.readline()
    match = re.search(r" at (http://\S+) ", banner)
    if not match:
        raise SystemExit(f"the server did not start: {banner}")
    return proc, match.group(1)


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
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    value = {"name": "user", "n": 1, "tags": ["a", "b"], "pad": "x" * 48}
    keys = [f"user:{i:08d}" for i in range(args.keys)]
    random.Random(1).shuffle(keys)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start(Path(tmp) / "serve.fkv")
        try:
            results = {
                "threads": args.threads,
                "keys": args.keys,
                "cpus": os.cpu_count(),
                "create": phase(args.threads, keys, lambda kv, k: kv.create(k, value), url),
                "read": phase(args.threads, keys[::-1], lambda kv, k: kv.read(k), url),
            }
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    for name in ("create", "read"):
        r = results[name]
        print(f"{name:6} {r['requests_per_s']:>9,.0f} requests/s  "
              f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  ({args.threads} client threads)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
