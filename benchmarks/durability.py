"""What each durability mode costs per create, next to the floor for it.

    python benchmarks/durability.py [--keys 2000]

"process" (the default) writes into the page cache: a returned create
survives kill -9. "fsync" adds one fdatasync per create: it survives power
loss. The floor is a bare os.pwrite append of a record-sized buffer plus
os.fdatasync, from Python, on the same disk, timed call by call in turn
with fsync-mode creates. Medians of per-call times.
Results go to benchmarks/results/durability.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import fastkv


def time_calls(fn, n: int) -> list[float]:
    times = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=2000)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "durability.json"))
    args = ap.parse_args()
    value = {"v": "x" * 92}  # 100 bytes of JSON
    rows = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("FASTKV_BENCH_DIR")) as d:
        record = b"r" * 128
        with fastkv.DataStore(Path(d) / "process.fkv", durability="process") as db:
            rows["process"] = time_calls(lambda i: db.create(f"key:{i:08d}", value), args.keys)
        fd = os.open(Path(d) / "floor.bin", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        rows["floor: pwrite"] = time_calls(lambda i: os.write(fd, record), args.keys)
        # fsync mode and its floor call by call, alternating which goes
        # first: the disk's flush time drifts by tens of percent within a
        # second, and phases run one after the other caught different drifts.
        fsync_t: list[float] = []
        floor_t: list[float] = []
        with fastkv.DataStore(Path(d) / "fsync.fkv", durability="fsync") as db:
            calls = [(fsync_t, lambda i: db.create(f"key:{i:08d}", value)),
                     (floor_t, lambda i: (os.write(fd, record), os.fdatasync(fd)))]
            for i in range(args.keys):
                for times, fn in (calls if i % 2 == 0 else calls[::-1]):
                    t = time.perf_counter()
                    fn(i)
                    times.append(time.perf_counter() - t)
        os.close(fd)
        rows["fsync"], rows["floor: pwrite + fdatasync"] = fsync_t, floor_t
    report = {name: {"median_us": statistics.median(t) * 1e6,
                     "p99_us": sorted(t)[int(len(t) * 0.99)] * 1e6} for name, t in rows.items()}
    print(f"{args.keys:,} creates of 100-byte values, per call")
    for name, r in report.items():
        print(f"  {name:<28} median {r['median_us']:9.1f} us   p99 {r['p99_us']:9.1f} us")
    ratio = report["fsync"]["median_us"] / report["floor: pwrite + fdatasync"]["median_us"]
    print(f"  fsync mode / floor: {ratio:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"keys": args.keys, "results": report,
                                          "fsync_over_floor": ratio}, indent=2))


if __name__ == "__main__":
    main()
