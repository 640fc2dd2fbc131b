"""The benchmark: fastkv against the stores users would pick instead.

    python benchmarks/run.py [--keys 100000] [--value-bytes 100] [--repeat 3]
                             [--stores fastkv,lmdb,...] [--smoke]

Each store runs every phase in a fresh subprocess (worker.py): create N keys
in random order (half with a TTL), read them all in another random order,
read N missing keys, read from 2 threads at once (21 back-to-back pairs of
a one-thread and a two-thread pass of about 0.25 s over the same keys; the
median of the pair ratios of all rounds is the scaling figure), close +
reopen + first read, delete all. Rounds are interleaved (A B C, A B C, ...)
so that a noisy neighbour hurts every store alike; the tables show medians
over rounds.
A floor probe (bare os.pread / os.pwrite + orjson on records of the same
size) runs in the same rounds, so fastkv's distance to the hardware is a
ratio. Peers that are not installed are skipped (pip install ".[bench]").

Results: benchmarks/results/bench-<keys>-<value_bytes>.json and .md; draw
charts with plot.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from stores import ALL  # noqa: E402

PHASES = ["create", "read", "read_missing", "read_2_threads", "delete"]
SCALARS = ["rss_anon_bytes_per_key", "rss_bytes_per_key", "file_bytes_per_key", "reopen_ms"]


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def run_worker(store: str, keys: int, vbytes: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=os.environ.get("FASTKV_BENCH_DIR")) as d:
        out = Path(d) / "result.json"
        data = Path(d) / "data"
        data.mkdir()
        subprocess.run(
            [sys.executable, str(HERE / "worker.py"), store, str(data), str(keys), str(vbytes),
             str(seed), str(out)],
            check=True, cwd=d,
        )
        return json.loads(out.read_text())


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"store": runs[0]["store"], "keys": runs[0]["keys"]}
    for key, val in runs[0].items():
        if isinstance(val, dict):
            merged[key] = {m: statistics.median(r[key][m] for r in runs) for m in val}
        elif isinstance(val, (int, float)) and key not in ("keys", "value_bytes"):
            merged[key] = statistics.median(r[key] for r in runs)
    for key in runs[0]:
        if key.endswith("threads_ratios"):  # every pair of every round, pooled
            merged[key[:-1]] = statistics.median(x for r in runs for x in r[key])
    return merged


def fmt(x: float) -> str:
    return f"{x:,.0f}"


def paired(runs: dict[str, list[dict[str, Any]]], a: str, pa: str, b: str, pb: str) -> float:
    """Throughput of a's phase pa over b's phase pb, taken round by round (the
    two ran minutes apart at most) and the median over rounds: this machine's
    speed moves twofold between rounds, which a ratio of medians would keep."""
    return statistics.median(ra[pa]["ops_per_s"] / rb[pb]["ops_per_s"]
                             for ra, rb in zip(runs[a], runs[b]))


def table(results: dict[str, dict[str, Any]], runs: dict[str, list[dict[str, Any]]],
          keys: int, vbytes: int, repeat: int) -> str:
    lines = [f"{keys:,} keys, {vbytes}-byte values, median of {repeat} interleaved rounds; "
             f"ops/s (p50 / p99 µs)", ""]
    head = ("| store | " + " | ".join(PHASES) +
            " | 2 threads / 1 | RSS anon B/key | RSS B/key | file B/key | reopen ms |")
    lines += [head, "|" + " --- |" * (len(PHASES) + 6)]
    for name, r in results.items():
        if name == "floor":
            continue
        cells = []
        for ph in PHASES:
            if ph in r:
                p = r[ph]
                cells.append(f"{fmt(p['ops_per_s'])} ({p['p50_us']:.1f} / {p['p99_us']:.1f})")
            else:
                cells.append("n/a")
        n = f" (N={r['keys']:,})" if r["keys"] != keys else ""
        cells.append(f"{r['threads_ratio']:.2f}x" if "threads_ratio" in r else "n/a")
        lines.append(f"| {name}{n} | " + " | ".join(cells) +
                     f" | {r['rss_anon_bytes_per_key']:.1f} | {r['rss_bytes_per_key']:.1f} | "
                     f"{r['file_bytes_per_key']:.1f} | {r['reopen_ms']:.1f} |")
    if "fastkv" in results:
        fk = results["fastkv"]
        lines += ["", "fastkv's throughput as a multiple of each peer's (higher is better; "
                  "per round, median over rounds):", "",
                  "| peer | " + " | ".join(PHASES) + " |", "|" + " --- |" * (len(PHASES) + 1)]
        for name, r in results.items():
            if name in ("fastkv", "floor"):
                continue
            cells = [f"{paired(runs, 'fastkv', ph, name, ph):.2f}x"
                     if ph in r and ph in fk else "n/a" for ph in PHASES]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "floor" in results and "fastkv" in results:
        fl, fk = results["floor"], results["fastkv"]
        lines += ["", "Floor probe (no store: bare os.pread/os.pwrite of a record-sized buffer "
                  "and orjson, each one Python call), per call:", ""]
        for ph in ("pread", "loads", "loads_2_threads", "pread_loads", "pread_loads_2_threads",
                   "pwrite", "dumps", "dumps_pwrite", "pwrite_tombstone"):
            p = fl[ph]
            lines.append(f"- {ph}: {fmt(p['ops_per_s'])} ops/s, p50 {p['p50_us']:.2f} µs")
        lines += [
            "",
            f"- fastkv read / floor (pread + loads): "
            f"{paired(runs, 'floor', 'pread_loads', 'fastkv', 'read'):.2f}x the floor's time "
            f"(per round, median over rounds)",
            f"- fastkv read / loads alone (a read from memory, no system call): "
            f"{paired(runs, 'floor', 'loads', 'fastkv', 'read'):.2f}x the floor's time",
            f"- fastkv create / floor (dumps + pwrite): "
            f"{paired(runs, 'floor', 'dumps_pwrite', 'fastkv', 'create'):.2f}x the floor's time",
            f"- fastkv delete / floor (pwrite of a tombstone): "
            f"{paired(runs, 'floor', 'pwrite_tombstone', 'fastkv', 'delete'):.2f}x the floor's time",
            f"- 2 threads / 1 thread, median of the paired passes: fastkv read "
            f"{fk.get('threads_ratio', float('nan')):.2f}x; no store: loads alone (the GIL "
            f"never let go) {fl['loads_threads_ratio']:.2f}x, os.pread + loads (the GIL let go "
            f"every call) {fl['pread_loads_threads_ratio']:.2f}x",
        ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--stores", default=",".join(["fastkv", "floor", *[s for s in ALL if s != "fastkv"]]))
    ap.add_argument("--smoke", action="store_true", help="a few seconds: tiny N, one round")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    args = ap.parse_args()
    if args.smoke:
        args.keys, args.repeat = 2000, 1
    names = [s for s in args.stores.split(",") if s]
    runs: dict[str, list[dict[str, Any]]] = {}
    skipped = []
    for name in names:
        if name != "floor" and (name not in ALL or not ALL[name].available()):
            skipped.append(f"{name}: not installed")
    names = [n for n in names if n == "floor" or (n in ALL and ALL[n].available())]
    notes = [ALL[n].note for n in names if n != "floor" and ALL[n].note]
    for rnd in range(args.repeat):
        for name in names:
            n = args.keys
            cap = ALL[name].max_keys if name != "floor" else None
            if cap is not None and n > cap:
                n = cap
            print(f"round {rnd + 1}/{args.repeat}: {name} ({n:,} keys)", file=sys.stderr)
            runs.setdefault(name, []).append(run_worker(name, n, args.value_bytes, args.seed + rnd))
    results = {name: median_of(r) for name, r in runs.items()}
    text = table(results, runs, args.keys, args.value_bytes, args.repeat)
    text = f"Machine: {machine()}\n\n" + text
    if skipped or notes:
        text += "\n\n" + "\n".join(f"- {s}" for s in skipped + notes)
    print(text)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{args.keys}-{args.value_bytes}" + ("-smoke" if args.smoke else "")
    (out / f"{stem}.json").write_text(json.dumps({
        "keys": args.keys, "value_bytes": args.value_bytes, "repeat": args.repeat,
        "machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "results": results, "runs": runs, "skipped": skipped, "notes": notes}, indent=1))
    (out / f"{stem}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
