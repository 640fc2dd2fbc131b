"""db.backup(dest) against `cp` of the same data file, while a thread writes.

    python benchmarks/backup.py [--keys 1000000] [--rounds 7] [--writers 1]

A store of --keys 100-byte values is built once (about 120 MB at a million
keys) and kept open; a thread puts over existing keys the whole time (as a
running application would; --writers 0 for a store at rest). Each round copies the data file with `cp` (what
a user would do: not a consistent copy while the store writes, but the speed
to match), with `cp` followed by an fsync of the copy (what a backup that
must survive a power cut costs: db.backup flushes its copy before naming
it), writes the same bytes from memory and flushes them (the floor of any
flushed copy: what the disk takes, with no read at all), and takes a
`db.backup`, in rotating order, each into a fresh name on
the same file system, the file in the page cache. Prints the median seconds
and MB/s of each and the ratios; writes benchmarks/results/backup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import fastkv


def build(path: Path, n: int) -> fastkv.DataStore:
    db = fastkv.DataStore(path)
    pad = "x" * 80
    for i in range(n):
        db.put(f"key:{i:08d}", {"i": i, "pad": pad})
    return db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--writers", type=int, choices=(0, 1), default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "backup.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fastkv-backup-"))
    try:
        db = build(work / "live.fkv", args.keys)
        stop = threading.Event()
        writes = [0]

        def writer() -> None:
            i = 0
            while not stop.is_set():
                db.put(f"key:{i % args.keys:08d}", {"i": i, "pad": "y" * 80})
                i += 1
            writes[0] = i

        t = threading.Thread(target=writer)
        if args.writers:
            t.start()
        times: dict[str, list[float]] = {"cp": [], "cp+fsync": [], "write+fsync": [],
                                          "backup": []}
        sizes = []
        order = list(times)
        try:
            for r in range(args.rounds):
                image = db.path.read_bytes()  # for write+fsync, read before the clock
                for which in order[r % len(order):] + order[:r % len(order)]:
                    dest = work / f"{which}-{r}.fkv"
                    start = time.perf_counter()
                    if which == "backup":
                        db.backup(dest)
                        sizes.append(os.path.getsize(dest))
                    elif which == "write+fsync":
                        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                        view = memoryview(image)
                        while view:
                            view = view[os.write(fd, view):]
                        os.fsync(fd)
                        os.close(fd)
                    else:
                        subprocess.run(["cp", str(db.path), str(dest)], check=True)
                        if which == "cp+fsync":
                            fd = os.open(dest, os.O_RDONLY)
                            os.fsync(fd)
                            os.close(fd)
                    times[which].append(time.perf_counter() - start)
                    for p in (dest, Path(str(dest) + ".idx")):
                        p.unlink(missing_ok=True)
        finally:
            stop.set()
            if args.writers:
                t.join()
        db.close()
        mb = statistics.median(sizes) / 1e6
        med = {k: statistics.median(v) for k, v in times.items()}
        result = {"keys": args.keys, "rounds": args.rounds, "file_mb": round(mb, 1),
                  "writers": args.writers, "writes_meanwhile": writes[0]}
        running = "one writer running" if args.writers else "no writer"
        print(f"{args.keys:,} keys, {mb:.0f} MB, medians of {args.rounds}, {running}:")
        for k, s in med.items():
            result[f"{k}_s"] = round(s, 4)
            print(f"  {k:11}  {s * 1000:8.1f} ms  {mb / s:6.0f} MB/s")
        for k in ("cp", "cp+fsync", "write+fsync"):
            result[f"backup_speed_vs_{k}"] = round(med[k] / med["backup"], 2)
            print(f"  db.backup at {med[k] / med['backup']:.2f}x the speed of {k} "
                  f"(it also writes its snapshot)")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
