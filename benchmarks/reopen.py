"""How long reopening a store takes, and what the process pays for it.

    python benchmarks/reopen.py [--sizes 100000,1000000,5000000] [--runs 9]

For each size, a store of that many 100-byte values is built once, closed
cleanly (so its index snapshot is written), and then, each in a fresh
process, with the file in the page cache:

  snapshot   open + first read, loading the snapshot and scanning the rest
  scan       the same with the snapshot moved aside: the whole log scanned
  crashed    open + first read after 10,000 writes by a process killed
             with SIGKILL (the snapshot then covers all but those, and the
             hints the writer appended to it name all but the last few
             hundred, see README "Hints"); median of
             5, each on a fresh copy of the store: the copy's dirty pages are
             flushed (os.sync) before the open, as nothing else is writing
             when the clean case is measured
  lmdb ro    lmdb's open + first read of the same keys (if lmdb is installed;
             at the smallest two sizes), read-only and without its lock
  lmdb rw    the same opened as fastkv opens: for writing, with its lock
  close      a close after 10,000 puts over existing keys (it saves the
             whole snapshot again), timed inside the process

and the anonymous memory (RssAnon) the open added, per key, with no
malloc_trim. Then whole-process times: `fastkv read KEY` against
`python -c "import fastkv"`, and `import fastkv` against `import orjson`.
Medians of --runs. Results go to benchmarks/results/reopen.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

CHILD = r"""
import json, sys, time
def rss_anon():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
kind, path, key = sys.argv[1], sys.argv[2], sys.argv[3]
if kind.startswith("lmdb"):
    import lmdb
    before = rss_anon()
    t = time.perf_counter()
    if kind == "lmdb":
        env = lmdb.open(path, readonly=True, lock=False)
    else:  # as fastkv opens: for writing, with its lock
        env = lmdb.open(path, map_size=1 << 34)
    with env.begin() as txn:
        txn.get(key.encode())
    took = time.perf_counter() - t
    extra = {}
else:
    import fastkv
    before = rss_anon()
    t = time.perf_counter()
    db = fastkv.DataStore(path)
    db.read(key)
    took = time.perf_counter() - t
    st = db.stats()
    extra = {"open_path": st["open_path"], "scanned": st["open_scanned_bytes"],
             "live_keys": st["live_keys"]}
print(json.dumps({"seconds": took, "rss_anon_added": rss_anon() - before, **extra}))
"""

CRASH_RUNS = 5  # each needs a copy of the store and 10,000 writes first

WRITER = r"""
import fastkv, os, signal, sys
db = fastkv.DataStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    db.put(f"crash:{i}", {"v": "y" * 92})
os.kill(os.getpid(), signal.SIGKILL)
"""


CLOSER = r"""
import fastkv, json, sys, time
db = fastkv.DataStore(sys.argv[1])
n = int(sys.argv[2])
for i in range(10000):
    db.put(f"user:{(i * 7919) % n:08d}", {"v": "z" * 92})
t = time.perf_counter()
db.close()
print(json.dumps({"seconds": time.perf_counter() - t}))
"""


def child(kind: str, path: Path, key: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), key],
                         capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def median_of(runs: int, kind: str, path: Path, key: str,
              prepare: Callable[[], None] = lambda: None) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        prepare()
        results.append(child(kind, path, key))
    return {"ms": statistics.median(r["seconds"] for r in results) * 1000,
            "rss_anon_added": statistics.median(r["rss_anon_added"] for r in results),
            **{k: v for k, v in results[0].items() if k not in ("seconds", "rss_anon_added")}}


def build(path: Path, n: int) -> None:
    code = (f"import fastkv\n"
            f"db = fastkv.DataStore({str(path)!r})\n"
            f"v = {{'v': 'x' * 92}}\n"
            f"for i in range({n}): db.create(f'user:{{i:08d}}', v)\n"
            f"db.close()\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=3600)


def build_lmdb(path: Path, n: int) -> bool:
    code = (f"import lmdb\n"
            f"env = lmdb.open({str(path)!r}, map_size=1 << 34)\n"
            f"v = b'{{\"v\":\"' + b'x' * 92 + b'\"}}'\n"
            f"with env.begin(write=True) as txn:\n"
            f"    for i in range({n}): txn.put(f'user:{{i:08d}}'.encode(), v)\n"
            f"env.close()\n")
    return subprocess.run([sys.executable, "-c", code], timeout=3600).returncode == 0


def process_time(argv: list[str], runs: int) -> float:
    # As an installed package runs: with its bytecode cached (pip compiles
    # it at install; PYTHONDONTWRITEBYTECODE, set on some CI machines, would
    # make every run compile fastkv's sources again). One run to warm up.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(argv, check=True, capture_output=True, timeout=120, env=env)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=120, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000,5000000")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "reopen.json"))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    try:
        import lmdb  # noqa: F401
        have_lmdb = True
    except ImportError:
        have_lmdb = False
    report: dict[str, Any] = {"sizes": {}}
    with tempfile.TemporaryDirectory(dir=os.environ.get("FASTKV_BENCH_DIR")) as tmp:
        d = Path(tmp)
        for n in sizes:
            path = d / f"s{n}.fkv"
            build(path, n)
            key = f"user:{n // 2:08d}"
            row: dict[str, Any] = {"snapshot": median_of(args.runs, "fastkv", path, key)}
            snap = Path(str(path) + ".idx")
            shutil.copyfile(snap, d / "aside.idx")
            # each run's close writes a snapshot again: remove it before each
            row["scan"] = median_of(args.runs, "fastkv", path, key,
                                    prepare=lambda: snap.unlink(missing_ok=True))
            shutil.copyfile(d / "aside.idx", snap)
            crashed = d / f"c{n}.fkv"

            def crash(crashed: Path = crashed, snap: Path = snap, path: Path = path) -> None:
                # each reopen closes cleanly after it: the crash is made again
                shutil.copyfile(path, crashed)
                shutil.copyfile(snap, str(crashed) + ".idx")
                subprocess.run([sys.executable, "-c", WRITER, str(crashed), "10000"],
                               timeout=600)
                # the copy left hundreds of MB dirty: without this their
                # writeback competes with the open being measured
                os.sync()

            row["crashed"] = median_of(CRASH_RUNS, "fastkv", crashed, key, prepare=crash)
            closes = [json.loads(subprocess.run(
                [sys.executable, "-c", CLOSER, str(path), str(n)], capture_output=True,
                text=True, check=True, timeout=600).stdout)["seconds"] for _ in range(args.runs)]
            row["close"] = {"ms": statistics.median(closes) * 1000}
            if have_lmdb and n <= 1_000_000 and build_lmdb(d / f"l{n}", n):
                row["lmdb"] = median_of(args.runs, "lmdb", d / f"l{n}", key)
                row["lmdb rw"] = median_of(args.runs, "lmdb rw", d / f"l{n}", key)
            report["sizes"][n] = row
            for f in d.iterdir():
                if f.is_file():
                    f.unlink()
                else:
                    shutil.rmtree(f)
        mid = sizes[min(1, len(sizes) - 1)]
        path = d / "cli.fkv"
        build(path, mid)
        fastkv_cli = shutil.which("fastkv", path=str(Path(sys.executable).parent)) or "fastkv"
        report["process_ms"] = {
            "fastkv read KEY": process_time([fastkv_cli, "--path", str(path), "read",
                                             f"user:{mid // 2:08d}"], args.runs),
            "python -c 'import fastkv'": process_time([sys.executable, "-c", "import fastkv"],
                                                      args.runs),
            "python -c 'import orjson'": process_time([sys.executable, "-c", "import orjson"],
                                                      args.runs),
        }
    print("reopen (open + first read), fresh process, file in the page cache; median ms")
    print(f"{'keys':>10} {'snapshot':>9} {'scan':>9} {'crashed':>9} {'lmdb ro':>8} "
          f"{'lmdb rw':>8} {'close':>7}  anon B/key (snapshot, scan)")
    for n, row in report["sizes"].items():
        lm = " ".join(f"{row[k]['ms']:8.2f}" if k in row else "       -"
                      for k in ("lmdb", "lmdb rw"))
        print(f"{n:>10,} {row['snapshot']['ms']:9.2f} {row['scan']['ms']:9.2f} "
              f"{row['crashed']['ms']:9.2f} {lm} {row['close']['ms']:7.2f}  "
              f"{row['snapshot']['rss_anon_added'] / n:.1f}, {row['scan']['rss_anon_added'] / n:.1f}")
    p = report["process_ms"]
    read_ms, fastkv_ms = p["fastkv read KEY"], p["python -c 'import fastkv'"]
    orjson_ms = p["python -c 'import orjson'"]
    print("whole processes, median ms: " + ", ".join(f"{k} {v:.1f}" for k, v in p.items()))
    print(f"  fastkv read / import fastkv: {read_ms / fastkv_ms:.2f}x   "
          f"import fastkv / import orjson: {fastkv_ms / orjson_ms:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
