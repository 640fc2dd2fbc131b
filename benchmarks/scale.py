"""How each call's cost grows with the store: one run of run.py per size.

    python benchmarks/scale.py [--sizes 10000,100000,1000000,5000000]
                               [--stores fastkv,dict,lmdb,dbm] [--plot-only]

Each size is one round of run.py (every store in a fresh process, the same
phases); the results go to benchmarks/results/scale/ and the chart and its
table to benchmarks/results/scale.png and scale.md. --plot-only redraws them
from results already there. The chart needs matplotlib (pip install ".[bench]");
gdbm runs as "dbm" when the interpreter has it (see gdbm_module.sh).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PHASES = ["create", "read", "read_missing", "read_2_threads", "delete"]
SIZES = [10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 5_000_000]


def run_size(keys: int, stores: str, out: Path) -> None:
    subprocess.run([sys.executable, str(HERE / "run.py"), "--keys", str(keys), "--repeat", "1",
                    "--stores", stores, "--out-dir", str(out)], check=True,
                   stdout=subprocess.DEVNULL)


def load(out: Path, sizes: list[int]) -> dict[int, dict[str, Any]]:
    found = {}
    for n in sizes:
        f = out / f"bench-{n}-100.json"
        if f.exists():
            found[n] = json.loads(f.read_text())
    return found


def label(data: dict[str, Any], name: str) -> str:
    if name == "dbm":
        return "gdbm" if any("dbm.gnu" in s for s in data.get("notes", [])) else "dbm"
    return name


def table(found: dict[int, dict[str, Any]]) -> str:
    names = sorted({s for d in found.values() for s in d["results"]},
                   key=lambda s: (s != "fastkv", s))
    heads = [label(next(iter(found.values())), s) for s in names]
    lines = ["ops/s, one round per size (100-byte JSON values, half with a TTL)", ""]
    for ph in PHASES:
        lines += [f"**{ph.replace('_', ' ')}**", "", "| keys | " + " | ".join(heads) + " |",
                  "|" + " ---: |" * (len(names) + 1)]
        for n, d in sorted(found.items()):
            cells = []
            for s in names:
                r = d["results"].get(s, {})
                ok = ph in r and r.get("keys") == n
                cells.append(f"{r[ph]['ops_per_s']:,.0f}" if ok else "n/a")
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def draw(found: dict[int, dict[str, Any]], dst: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    any_run = next(iter(found.values()))
    names = sorted({s for d in found.values() for s in d["results"]},
                   key=lambda s: (s != "fastkv", s))
    colours = iter(["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"])
    style = {s: "tab:red" if s == "fastkv" else next(colours) for s in names}
    fig, axes = plt.subplots(1, len(PHASES), figsize=(16, 4.2), sharey=True)
    for ax, ph in zip(axes, PHASES):
        for s in names:
            pts = [(n, d["results"][s][ph]["ops_per_s"]) for n, d in sorted(found.items())
                   if ph in d["results"].get(s, {}) and d["results"][s]["keys"] == n]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, color=style[s],
                        label=label(any_run, s), lw=2.2 if s == "fastkv" else 1.4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(ph.replace("_", " "))
        ax.set_xlabel("keys in the store")
        ax.grid(which="both", alpha=0.3)
    axes[0].set_ylabel("operations per second (log scale)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"100-byte JSON values, one round per size; {any_run['machine']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(dst, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--stores", default="fastkv,dict,lmdb,dbm")
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out = Path(args.out_dir)
    per_size = out / "scale"
    if not args.plot_only:
        for n in sizes:
            print(f"{n:,} keys", file=sys.stderr)
            run_size(n, args.stores, per_size)
    found = load(per_size, sizes)
    if not found:
        sys.exit(f"no results in {per_size}")
    (out / "scale.md").write_text(table(found))
    try:
        draw(found, out / "scale.png")
    except ImportError:
        print("no matplotlib (pip install \".[bench]\"): the table only", file=sys.stderr)
        print(out / "scale.md")
        return
    print(out / "scale.png")


if __name__ == "__main__":
    main()
