"""Every chart of the documentation, drawn from the results committed under
benchmarks/published/ (no benchmark runs):

    python benchmarks/charts.py [OUT_DIR]      (default benchmarks/results/charts)

- peers.png:   each call at 1,000,000 keys against the dict, lmdb and gdbm
- scale.png:   each call from 10,000 to 5,000,000 keys (benchmarks/scale.py)
- reopen.png:  the time to open a closed store of 1,000,000 keys, per store
- memory.png:  resident memory per key after 1,000,000 creates, per store
- serving.png: `fastkv serve` against redis-server (benchmarks/serve.py)

The machine and method are in each results file and in each chart's title.
Needs matplotlib (pip install ".[bench]" or ".[docs]").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE / "published"
PEERS = PUBLISHED / "bench-1000000-100-dict-gdbm.json"
SERVING = PUBLISHED / "serve.json"
sys.path.insert(0, str(HERE))
import plot  # noqa: E402
import scale  # noqa: E402


def inputs() -> list[Path]:
    """The files the charts are drawn from (docs/hooks.py redraws when one is newer)."""
    return [PEERS, SERVING, *sorted((PUBLISHED / "scale").glob("bench-*.json")), Path(__file__),
            HERE / "plot.py", HERE / "scale.py"]


def _colour(name: str, others: Any) -> str:
    return "tab:red" if name == "fastkv" else next(others)


def _bars(values: dict[str, float], ylabel: str, title: str, dst: Path, fmt: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = iter(["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(values)
    bars = ax.bar(names, [values[n] for n in names],
                  color=[_colour(n, others) for n in names])
    ax.bar_label(bars, labels=[fmt.format(values[n]) for n in names], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=100)
    plt.close(fig)


def _named(data: dict[str, Any]) -> dict[str, Any]:
    """A run.py results file with its stores under the names a reader knows
    them by (its dbm peer ran as dbm.gnu where the notes say so)."""
    gnu = "dbm.gnu" in json.dumps(data.get("notes", ""))
    return {**data, "results": {("gdbm" if k == "dbm" and gnu else k): v
                                for k, v in data["results"].items()}}


def _store_runs(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _named(data)["results"].items() if k != "floor"}


def draw_reopen(data: dict[str, Any], dst: Path) -> None:
    # the dict peer keeps nothing on disk: its "open" loads nothing
    runs = {k: v["reopen_ms"] for k, v in _store_runs(data).items()
            if v.get("reopen_ms") and k != "dict"}
    _bars(runs, "milliseconds (lower is better)",
          f"open of a closed store of {data['keys']:,} keys, median of {data['repeat']} "
          f"rounds\n{data['machine']}", dst, "{:.2f} ms")


def draw_memory(data: dict[str, Any], dst: Path) -> None:
    runs = {k: v["rss_anon_bytes_per_key"] for k, v in _store_runs(data).items()
            if v.get("rss_anon_bytes_per_key") is not None}
    _bars(runs, "bytes per key (lower is better)",
          f"growth of the process's anonymous memory over {data['keys']:,} creates\n"
          f"{data['machine']}", dst, "{:.1f}")


def draw_serving(data: dict[str, Any], dst: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = list(data["resp"])
    fk = [data["resp"][t]["fastkv"]["rps"] for t in tests]
    rs = [data["resp"][t]["redis-server"]["rps"] for t in tests]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    xs = range(len(tests))
    ax.bar([x - 0.2 for x in xs], fk, 0.4, label="fastkv serve --resp-port", color="tab:red")
    ax.bar([x + 0.2 for x in xs], rs, 0.4, label="redis-server", color="tab:blue")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(tests, fontsize=8)
    ax.set_ylabel("requests per second")
    ax.set_title(f"redis-benchmark -c 50, median of {data['rounds']} rounds\n"
                 f"{data.get('machine', '')}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=100)
    plt.close(fig)


def draw_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    peers = json.loads(PEERS.read_text())
    drawn = [out / "peers.png", out / "reopen.png", out / "memory.png", out / "scale.png"]
    plot.draw(_named(peers), drawn[0])
    draw_reopen(peers, drawn[1])
    draw_memory(peers, drawn[2])
    found = scale.load(PUBLISHED / "scale", scale.SIZES)
    scale.draw(found, drawn[3])
    if SERVING.exists():
        drawn.append(out / "serving.png")
        draw_serving(json.loads(SERVING.read_text()), drawn[-1])
    return drawn


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "charts"
    for path in draw_all(out):
        print(path)


if __name__ == "__main__":
    main()
