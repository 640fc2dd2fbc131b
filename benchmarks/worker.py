"""Runs every phase of the benchmark for one store, in its own process.

    python benchmarks/worker.py STORE DIR KEYS VALUE_BYTES SEED OUT.json

Called by run.py; STORE is a name from stores.ALL, or "floor" for the
hardware floor probe (bare os.pread / os.pwrite and orjson on the same
records). Writes one JSON object of results to OUT.json.
"""

from __future__ import annotations

import gc
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stores import ALL  # noqa: E402

TTL_SECONDS = 3600


def proc_status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def timed(fn: Callable[[Any], Any], items: Iterable[Any], expect_keyerror: bool = False) -> dict:
    """Run fn over items; per-call latencies and overall throughput."""
    perf = time.perf_counter_ns
    lat = []
    append = lat.append
    gc.disable()
    start = perf()
    if expect_keyerror:
        for item in items:
            t = perf()
            try:
                fn(item)
            except KeyError:
                pass
            else:
                raise AssertionError(f"{item!r} was found")
            append(perf() - t)
    else:
        for item in items:
            t = perf()
            fn(item)
            append(perf() - t)
    total = perf() - start
    gc.enable()
    return summarize(lat, total)


def summarize(lat: list[int], total_ns: int) -> dict:
    lat.sort()
    n = len(lat)
    return {
        "ops": n,
        "ops_per_s": n / (total_ns / 1e9),
        "p50_us": lat[n // 2] / 1000,
        "p99_us": lat[min(n - 1, int(n * 0.99))] / 1000,
    }


def dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


SCALING_PAIRS = 21
SCALING_PASS_S = 0.25  # short passes: a pair then sees one state of the machine


def scaling_sample(keys: list[Any], phase: dict) -> list[Any]:
    """As many keys as one thread reads in about SCALING_PASS_S seconds."""
    want = int(phase["ops_per_s"] * SCALING_PASS_S)
    return keys[:max(1000, min(len(keys), want))]


def threaded_pass(fns: list[Callable[[Any], Any]], keys: list[Any]) -> tuple[list[int], int]:
    """Call fns[t] on keys split evenly over len(fns) threads (the caller's own
    thread when there is one); per-call latencies (ns) and the pass's wall time."""
    parts = [keys[t::len(fns)] for t in range(len(fns))]
    lats: list[list[int]] = [[] for _ in fns]

    def work(t: int) -> None:
        fn, perf, append = fns[t], time.perf_counter_ns, lats[t].append
        if barrier is not None:
            barrier.wait()
        for key in parts[t]:
            s = perf()
            fn(key)
            append(perf() - s)

    barrier = threading.Barrier(len(fns) + 1) if len(fns) > 1 else None
    gc.disable()
    if barrier is None:
        start = time.perf_counter_ns()
        work(0)
    else:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(len(fns))]
        for th in threads:
            th.start()
        barrier.wait()
        start = time.perf_counter_ns()
        for th in threads:
            th.join()
    total = time.perf_counter_ns() - start
    gc.enable()
    return [x for lat in lats for x in lat], total


def thread_scaling(reader: Callable[[], Callable[[Any], Any]], keys: list[Any]) -> dict[str, Any]:
    """Two threads reading against one, as SCALING_PAIRS back-to-back pairs
    of short passes over the same keys (order alternating within the pair),
    so that a noisy neighbour or a drifting clock hits both sides of each
    ratio alike. The pair ratios' median is the figure: one long pass of
    each, seconds apart, swung by +-15% on these shared machines, whose
    speed can change twofold between rounds; one pair alone by +-30%."""
    one, two = [reader()], [reader(), reader()]
    ratios, two_ops, two_lat = [], [], []
    for i in range(SCALING_PAIRS):
        passes = {}
        for fns in ((one, two) if i % 2 == 0 else (two, one)):
            passes[len(fns)] = threaded_pass(fns, keys)
        lat2, t2 = passes[2]
        ratios.append(passes[1][1] / t2)  # throughput ratio = inverse time ratio
        two_ops.append(len(keys) / (t2 / 1e9))
        two_lat += lat2
    summary = summarize(two_lat, 1)  # for the latencies; throughput is the median pass:
    summary["ops_per_s"] = statistics.median(two_ops)
    # run.py takes the median of the ratios pooled over rounds
    return {"read_2_threads": summary, "threads_ratios": ratios}


def run_store(name: str, path: str, n: int, value: dict, rng: random.Random) -> dict:
    cls = ALL[name]
    keys = [f"user:{i:012d}" for i in range(n)]
    ttls = [TTL_SECONDS if i % 2 else None for i in range(n)]  # half the keys expire
    order = list(range(n))
    rng.shuffle(order)
    misses = [f"miss:{i:012d}" for i in range(n)]
    res: dict[str, Any] = {"store": name, "keys": n}
    gc.collect()
    anon0, rss0 = proc_status("RssAnon"), proc_status("VmRSS")

    store = cls(path)
    store.open()
    create = store.create
    res["create"] = timed(lambda i: create(keys[i], value, ttls[i]), order)
    gc.collect()
    res["rss_anon_bytes_per_key"] = (proc_status("RssAnon") - anon0) / n
    res["rss_bytes_per_key"] = (proc_status("VmRSS") - rss0) / n
    res["file_bytes_per_key"] = dir_bytes(path) / n

    rng.shuffle(order)
    read = store.read
    shuffled = [keys[i] for i in order]
    res["read"] = timed(read, shuffled)
    res["read_missing"] = timed(read, misses, expect_keyerror=True)

    if cls.threads_ok:
        res.update(thread_scaling(store.reader, scaling_sample(shuffled, res["read"])))

    store.close()
    first_key = shuffled[0]
    start = time.perf_counter_ns()
    store = cls(path)
    store.open()
    store.read(first_key)
    res["reopen_ms"] = (time.perf_counter_ns() - start) / 1e6

    rng.shuffle(order)
    delete = store.delete
    res["delete"] = timed(delete, [keys[i] for i in order])
    store.close()
    res["peak_rss_bytes"] = proc_status("VmHWM")
    return res


def run_floor(path: str, n: int, value: dict, rng: random.Random) -> dict:
    """What the hardware and the JSON library cost, with no store at all."""
    data = orjson.dumps(value)
    key = b"user:000000000000"
    record = bytes(16) + key + data  # the size of a fastkv record
    size = len(record)
    file = os.path.join(path, "floor.bin")
    with open(file, "wb") as f:
        for _ in range(n):
            f.write(record)
    fd = os.open(file, os.O_RDWR)
    offsets = [i * size for i in range(n)]
    rng.shuffle(offsets)
    pread, pwrite, loads, dumps = os.pread, os.pwrite, orjson.loads, orjson.dumps
    res: dict[str, Any] = {"store": "floor", "keys": n, "record_bytes": size}
    res["pread"] = timed(lambda off: pread(fd, size, off), offsets)

    def pread_loads(off: int) -> Any:
        return loads(pread(fd, size, off)[16 + len(key):])

    res["pread_loads"] = timed(pread_loads, offsets)
    res["loads"] = timed(lambda _: loads(data), range(n))
    # What CPython and this machine make of two threads with no store at all:
    # os.pread lets go of the GIL on every call; loads never does (only the
    # interpreter's switch interval moves it between the threads).
    for ph, fn, items in (
        ("pread_loads", pread_loads, offsets),
        ("loads", lambda _: loads(data), range(n)),
    ):
        scaling = thread_scaling(lambda: fn, scaling_sample(list(items), res[ph]))
        res[f"{ph}_2_threads"] = scaling["read_2_threads"]
        res[f"{ph}_threads_ratios"] = scaling["threads_ratios"]
    # each write phase appends past the end, as a store does: overwriting
    # pages that already exist would be cheaper than extending the file
    end = n * size
    res["pwrite"] = timed(lambda off: pwrite(fd, record, off), [end + i * size for i in range(n)])
    end += n * size
    res["dumps_pwrite"] = timed(
        lambda off: pwrite(fd, dumps(value), off), [end + i * size for i in range(n)]
    )
    end += n * size
    tomb = bytes(16) + key  # a delete appends a record of a header and the key
    res["pwrite_tombstone"] = timed(
        lambda off: pwrite(fd, tomb, off), [end + i * len(tomb) for i in range(n)]
    )
    res["dumps"] = timed(lambda _: dumps(value), range(n))
    os.close(fd)
    return res


def main() -> None:
    name, path, n, vbytes, seed, out = sys.argv[1:7]
    n_keys, value_bytes = int(n), int(vbytes)
    value = {"v": "x" * (value_bytes - len('{"v":""}'))}
    assert len(orjson.dumps(value)) == value_bytes
    rng = random.Random(int(seed))
    if name == "floor":
        res = run_floor(path, n_keys, value, rng)
    else:
        res = run_store(name, path, n_keys, value, rng)
    res["value_bytes"] = value_bytes
    Path(out).write_text(json.dumps(res))


if __name__ == "__main__":
    main()
