"""Draw a PNG chart from a results file of run.py.

    python benchmarks/plot.py benchmarks/results/bench-100000-100.json [out.png]

One group of bars per phase, one bar per store, throughput on a log scale.
Needs matplotlib (pip install ".[bench]").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PHASES = ["create", "read", "read_missing", "read_2_threads", "delete"]


def main() -> None:
    src = Path(sys.argv[1])
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else src.with_suffix(".png")
    draw(json.loads(src.read_text()), dst)
    print(dst)


def draw(data: dict[str, Any], dst: Path) -> None:
    """The chart of one results file of run.py, written to dst."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {k: v for k, v in data["results"].items() if k != "floor"}
    stores = list(results)
    width = 0.8 / len(stores)
    fig, ax = plt.subplots(figsize=(11, 5))
    # fastkv in red; the peers in colours that are never red
    others = iter(["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown",
                   "tab:pink", "tab:gray", "tab:olive", "tab:cyan"])
    for i, name in enumerate(stores):
        vals = [results[name].get(ph, {}).get("ops_per_s", 0) for ph in PHASES]
        xs = [p + i * width for p in range(len(PHASES))]
        n = results[name]["keys"]
        label = name if n == data["keys"] else f"{name} (N={n:,})"
        ax.bar(xs, vals, width, label=label, color="tab:red" if name == "fastkv" else next(others))
    ax.set_xticks([p + width * (len(stores) - 1) / 2 for p in range(len(PHASES))])
    ax.set_xticklabels([ph.replace("_", " ") for ph in PHASES])
    ax.set_yscale("log")
    ax.set_ylabel("operations per second (log scale)")
    ax.set_title(f"{data['keys']:,} keys, {data['value_bytes']}-byte JSON values "
                 f"(median of {data['repeat']} rounds)\n{data['machine']}", fontsize=9)
    ax.legend(fontsize=8, ncol=4)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
