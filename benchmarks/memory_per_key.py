"""Memory a fastkv store costs per live key, measured as the growth of the
process's anonymous resident memory (RssAnon: heap and index, not the page
cache of the file).

    python benchmarks/memory_per_key.py [--keys 1000000] [--value-bytes 100]

Two runs, each in a fresh subprocess: creating N keys with the store open
(the growth at the end, the most seen at a sample every 50,000 creates and
at a sample every millisecond or so from a thread, the file-backed growth, and the table bytes background snapshots wrote during
the load against the final table), and opening a store that already holds
N keys (the index rebuilt by the scan). Results go to
benchmarks/results/memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, os, sys, threading, time
def rss(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise SystemExit(f"no {field} in /proc/self/status (Linux only)")
import fastkv
mode, path, n, vbytes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
value = {"v": "x" * (vbytes - 8)}
keys = None
before, file_before = rss("RssAnon"), rss("RssFile")
peak = 0  # the most anonymous growth seen at a sample during the load
fine = [0]  # the same, sampled every millisecond or so by a thread
done = threading.Event()
def sample():
    while not done.wait(0.001):
        fine[0] = max(fine[0], rss("RssAnon") - before)
sampler = threading.Thread(target=sample)
t0 = time.perf_counter()
db = fastkv.DataStore(path)
if mode == "create":
    sampler.start()
    for i in range(n):
        db.create(f"key:{i:012d}", value)
        if i % 50_000 == 49_999:
            peak = max(peak, rss("RssAnon") - before)
    done.set()
    sampler.join()
elapsed = time.perf_counter() - t0
after = rss("RssAnon")
st = db.stats()
print(json.dumps({"mode": mode, "keys": len(db), "rss_anon_growth": after - before,
                  "rss_anon_peak_growth": max(peak, after - before),
                  "rss_anon_peak_growth_fine": max(fine[0], after - before),
                  "rss_file_growth": rss("RssFile") - file_before,
                  "seconds": elapsed, "index_bytes": st["index_bytes"],
                  "file_bytes": st["file_bytes"],
                  "snapshot_table_bytes": st["snapshot_table_bytes"]}))
db.close()
"""


def run(mode: str, path: Path, n: int, vbytes: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(path), str(n), str(vbytes)],
        check=True, capture_output=True, text=True, cwd=tempfile.gettempdir(),
    ).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "memory.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mem.fkv"
        created = run("create", path, args.keys, args.value_bytes)
        reopened = run("open", path, args.keys, args.value_bytes)
    n = args.keys
    report = {
        "keys": n,
        "value_bytes": args.value_bytes,
        "create": created,
        "reopen": reopened,
        "rss_bytes_per_key_create": created["rss_anon_growth"] / n,
        "rss_bytes_per_key_reopen": reopened["rss_anon_growth"] / n,
        "rss_peak_bytes_per_key_create": created["rss_anon_peak_growth"] / n,
        "rss_peak_fine_bytes_per_key_create": created["rss_anon_peak_growth_fine"] / n,
        "rss_file_bytes_per_key_create": created["rss_file_growth"] / n,
        "snapshot_table_bytes_over_final_table": created["snapshot_table_bytes"]
        / created["index_bytes"],
        "index_bytes_per_key": created["index_bytes"] / n,
        "file_bytes_per_key": created["file_bytes"] / n,
        "reopen_seconds": reopened["seconds"],
        "machine": os.uname().machine,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"{n:,} keys, {args.value_bytes}-byte values")
    print(f"  index (stats)          {report['index_bytes_per_key']:6.1f} B/key")
    print(f"  RssAnon growth, create {report['rss_bytes_per_key_create']:6.1f} B/key")
    print(f"  RssAnon peak, create   {report['rss_peak_bytes_per_key_create']:6.1f} B/key"
          "  (sampled every 50,000 creates)")
    print(f"  RssAnon peak, create   {report['rss_peak_fine_bytes_per_key_create']:6.1f} B/key"
          "  (sampled every ~1 ms by a thread; the GIL may stretch it to 5 ms)")
    print(f"  RssFile growth, create {report['rss_file_bytes_per_key_create']:6.1f} B/key")
    print(f"  background snapshots   {report['snapshot_table_bytes_over_final_table']:6.2f}x"
          "  the final table, written during the load")
    print(f"  RssAnon growth, reopen {report['rss_bytes_per_key_reopen']:6.1f} B/key")
    print(f"  file                   {report['file_bytes_per_key']:6.1f} B/key")
    print(f"  reopen (scan)          {report['reopen_seconds'] * 1000:6.0f} ms")


if __name__ == "__main__":
    main()
