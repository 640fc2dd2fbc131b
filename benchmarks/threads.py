"""fastkv from many threads: group commit, cold reads, iteration.

    python benchmarks/threads.py [--keys 200000] [--rounds 5] [--iter-keys 1000000]

Three measurements, each against a floor run in the same rounds (rounds
interleave the variants, and ratios are taken round by round, then the
median over rounds is quoted: this machine's speed drifts within seconds):

  group commit   creates/s in durability="fsync" from 1 and from 8 threads,
                 and a floor in which 8 threads append a record-sized buffer
                 with os.pwrite and share os.fdatasync calls the same way
                 (the first waiter with no flush running flushes for all),
                 with no store.
  cold reads     the file's pages dropped (posix_fadvise DONTNEED) before
                 each phase, then reads of the same keys, in a random order,
                 from 1 and from 8 threads, and 8 threads doing bare os.pread
                 of the same records at the same offsets (found by parsing
                 the log). The keys' records lie --spacing bytes apart at
                 least, more than the kernel's readahead, so that each read
                 really waits for the disk instead of finding the page that
                 an earlier read brought in.
  iteration      keys/s of `for key in db` over --iter-keys keys, and how
                 much anonymous memory the process gains meanwhile.

Results go to benchmarks/results/threads.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import struct
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import fastkv

THREADS = 8
VALUE = {"v": "x" * 92}  # 100 bytes of JSON


def run_threads(n: int, work: Callable[[int], None]) -> float:
    """Run work(t) in n threads started together; seconds until all end."""
    start = threading.Barrier(n + 1)

    def body(t: int) -> None:
        start.wait()
        work(t)

    threads = [threading.Thread(target=body, args=(t,)) for t in range(n)]
    for th in threads:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in threads:
        th.join()
    return time.perf_counter() - t0


# ---- group commit ------------------------------------------------------------


class FlushFloor:
    """Appends with os.pwrite and group-commits with os.fdatasync, as the
    store does, with nothing else: the floor for fsync-mode writers."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.cv = threading.Condition()
        self.end = 0
        self.seq = 0
        self.durable = 0
        self.flushing = False
        self.flushes = 0

    def append(self, data: bytes) -> None:
        with self.cv:
            os.pwrite(self.fd, data, self.end)
            self.end += len(data)
            self.seq += 1
            mine = self.seq
            while self.durable < mine:
                if self.flushing:
                    self.cv.wait()
                    continue
                self.flushing = True
                target = self.seq
                self.cv.release()
                try:
                    os.fdatasync(self.fd)
                finally:
                    self.cv.acquire()
                self.flushing = False
                self.flushes += 1
                self.durable = max(self.durable, target)
                self.cv.notify_all()


def group_commit_round(d: Path, per_thread: int, r: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with fastkv.DataStore(d / f"gc1-{r}.fkv", durability="fsync") as db:
        n1 = per_thread * 2
        t = run_threads(1, lambda _: [db.create(f"k{i}", VALUE) for i in range(n1)])
        out["fastkv 1 thread"] = n1 / t
    with fastkv.DataStore(d / f"gc8-{r}.fkv", durability="fsync") as db:
        t = run_threads(THREADS, lambda th: [db.create(f"t{th}:{i}", VALUE)
                                             for i in range(per_thread)])
        out["fastkv 8 threads"] = THREADS * per_thread / t
        out["fastkv writes per flush"] = THREADS * per_thread / db.stats()["flushes"]
    fd = os.open(d / f"floor-{r}.bin", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        floor = FlushFloor(fd)
        record = b"r" * 128
        t = run_threads(THREADS, lambda _: [floor.append(record) for _ in range(per_thread)])
        out["floor 8 threads"] = THREADS * per_thread / t
        out["floor writes per flush"] = THREADS * per_thread / floor.flushes
    finally:
        os.close(fd)
    return out


# ---- cold reads --------------------------------------------------------------


def record_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """key -> (offset, length) of its newest put record, from the log format
    (src_c/record.h): a file header whose length is at byte 12, then
    records of a 16-byte header (crc u32, kind u8, key length u8, value
    length u16, deadline u64), key, value; a group's header is a keyless
    record of its own, followed by ordinary ones."""
    data = path.read_bytes()
    where: dict[str, tuple[int, int]] = {}
    off = struct.unpack_from("<I", data, 12)[0]
    while off + 16 <= len(data):
        _, kind, klen, vlen, _ = struct.unpack_from("<IBBHQ", data, off)
        size = 16 + klen + vlen
        if klen:
            key = data[off + 16: off + 16 + klen].decode()
            if kind == 1:
                where[key] = (off, size)
            else:
                where.pop(key, None)
        off += size
    return where


def drop_pages(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def spaced_keys(where: dict[str, tuple[int, int]], spacing: int) -> list[str]:
    """Keys whose records lie at least spacing bytes apart, shuffled."""
    keys, next_off = [], 0
    for key, (off, _) in sorted(where.items(), key=lambda kv: kv[1][0]):
        if off >= next_off:
            keys.append(key)
            next_off = off + spacing
    random.shuffle(keys)
    return keys


def cold_read_round(path: Path, keys: list[str],
                    where: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Each fastkv phase opens the store afresh: pages a store has read
    through its mapping of the file stay mapped, and the kernel drops no
    mapped page on posix_fadvise, so a store kept open would read them warm
    from the second phase on. The index is loaded whole before the pages
    are dropped: the reads timed are the records' alone."""
    out: dict[str, float] = {}
    share = [keys[t::THREADS] for t in range(THREADS)]
    fd = os.open(path, os.O_RDONLY)

    def fastkv_phase(threads: int) -> Callable[[], float]:
        def run() -> float:
            with fastkv.DataStore(path) as db:
                len(db)  # the whole index loaded now, not by the timed reads
                drop_pages(path)
                if threads == 1:
                    return run_threads(1, lambda _: [db.read(k) for k in keys])
                return run_threads(threads, lambda t: [db.read(k) for k in share[t]])
        return run

    def pread_phase() -> float:
        drop_pages(path)
        return run_threads(THREADS, lambda t: [os.pread(fd, where[k][1], where[k][0])
                                               for k in share[t]])

    try:
        phases: list[tuple[str, Callable[[], float]]] = [
            ("fastkv 1 thread", fastkv_phase(1)),
            ("fastkv 8 threads", fastkv_phase(THREADS)),
            ("os.pread 8 threads", pread_phase),
        ]
        random.shuffle(phases)  # no variant always runs first
        for name, run in phases:
            out[name] = len(keys) / run()
    finally:
        os.close(fd)
    return out


# ---- iteration ---------------------------------------------------------------


def rss_anon() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def iteration(d: Path, n: int, rounds: int) -> dict[str, Any]:
    with fastkv.DataStore(d / "iter.fkv") as db:
        for i in range(n):
            db.create(f"user:{i:08d}", VALUE)
        rates, grown = [], []
        for _ in range(rounds):
            before = rss_anon()
            t0 = time.perf_counter()
            count = 0
            for _key in db:
                count += 1
            rates.append(count / (time.perf_counter() - t0))
            grown.append(rss_anon() - before)
            assert count == n
        t0 = time.perf_counter()
        pairs = sum(1 for _ in db.items())
        items_rate = pairs / (time.perf_counter() - t0)
    return {"keys": n, "iter_keys_per_s": statistics.median(rates),
            "rss_anon_growth_bytes": max(grown), "items_per_s": items_rate}


# ---- report ------------------------------------------------------------------


def median_ratio(rounds: list[dict[str, float]], a: str, b: str) -> float:
    return statistics.median(r[a] / r[b] for r in rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=1_000_000, help="keys in the cold-read store")
    ap.add_argument("--spacing", type=int, default=256 * 1024,
                    help="bytes between the records read cold")
    ap.add_argument("--writes", type=int, default=250, help="fsync creates per thread")
    ap.add_argument("--iter-keys", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "threads.json"))
    args = ap.parse_args()
    gc.disable()
    random.seed(7)
    with tempfile.TemporaryDirectory(dir=os.environ.get("FASTKV_BENCH_DIR")) as tmp:
        d = Path(tmp)
        gcr = [group_commit_round(d, args.writes, r) for r in range(args.rounds)]
        with fastkv.DataStore(d / "cold.fkv") as db:
            for i in range(args.keys):
                db.create(f"user:{i:08d}", VALUE)
        where = record_offsets(d / "cold.fkv")
        keys = spaced_keys(where, args.spacing)
        crr = [cold_read_round(d / "cold.fkv", keys, where) for _ in range(args.rounds)]
        it = iteration(d, args.iter_keys, 3)
    report = {
        "group_commit": {
            "rounds": gcr,
            "8_threads_over_1": median_ratio(gcr, "fastkv 8 threads", "fastkv 1 thread"),
            "8_threads_over_floor": median_ratio(gcr, "fastkv 8 threads", "floor 8 threads"),
        },
        "cold_reads": {
            "rounds": crr,
            "8_threads_over_pread": median_ratio(crr, "fastkv 8 threads", "os.pread 8 threads"),
            "8_threads_over_1": median_ratio(crr, "fastkv 8 threads", "fastkv 1 thread"),
        },
        "iteration": it,
    }
    g, c = report["group_commit"], report["cold_reads"]
    print(f"group commit (fsync mode, {args.writes} creates per thread, {args.rounds} rounds)")
    for name in gcr[0]:
        print(f"  {name:<26} median {statistics.median(r[name] for r in gcr):>10,.1f}")
    print(f"  8 threads / 1 thread: {g['8_threads_over_1']:.2f}x   "
          f"8 threads / floor: {g['8_threads_over_floor']:.2f}x")
    print(f"cold reads ({len(keys):,} of {args.keys:,} keys per phase, "
          f"{args.spacing // 1024} KiB apart, pages dropped first)")
    for name in crr[0]:
        print(f"  {name:<26} median {statistics.median(r[name] for r in crr):>10,.0f} reads/s")
    print(f"  8 threads / os.pread 8 threads: {c['8_threads_over_pread']:.2f}x   "
          f"8 threads / 1 thread: {c['8_threads_over_1']:.2f}x")
    print(f"iteration over {it['keys']:,} keys: {it['iter_keys_per_s']:,.0f} keys/s, "
          f"items {it['items_per_s']:,.0f}/s, anonymous memory grew "
          f"{it['rss_anon_growth_bytes'] / 1024:,.0f} KiB")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
