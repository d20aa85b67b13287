"""Pair rate against size for each implementation, from a pytest-benchmark JSON file.

    python benches/plot.py out.json -o pair_rate.png [--stat median|min] [--write-bandwidth 27]

Reads the dense kernel benchmarks (``bench_kernel.py``: ``extra_info`` with
``implementation``, ``size`` and ``pairs``), takes pairs / median time (or the
best time, ``--stat min``, for a machine shared with other work), and
draws one line per implementation on log-log axes. A dashed line marks the
rate at which the outputs alone (an 8-byte outcome per pair: the score, or the
reason mask) would fill the machine's memory write bandwidth.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUTPUT_BYTES_PER_PAIR = 8
ORDER = ("reference", "numpy", "native-1", "native-2", "native-1-blocks", "native-2-blocks")
LABELS = {
    "reference": "reference (plain Python)",
    "numpy": "NumPy broadcast baseline",
    "native-1": "native kernel, 1 worker",
    "native-1-blocks": "native kernel, 1 worker, reused block buffers",
    "native-2-blocks": "native kernel, 2 workers, reused block buffers",
    "native-2": "native kernel, 2 workers",
}


def pair_rates(data: dict, stat: str = "median") -> dict[str, list[tuple[int, float]]]:
    """implementation -> [(n, pairs per second at the median (or min) time)], sorted by n."""
    rates: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if not str(bench.get("group", "")).startswith("dense kernel") or "pairs" not in info:
            continue
        seconds = bench["stats"][stat]
        if seconds > 0:
            rates[info["implementation"]].append((int(info["size"]), info["pairs"] / seconds))
    return {name: sorted(points) for name, points in rates.items()}


def plot(data: dict, out: Path, write_bandwidth: float | None, stat: str = "median") -> None:
    rates = pair_rates(data, stat)
    if not rates:
        raise SystemExit("no dense kernel benchmarks in this file (run benches/bench_kernel.py)")
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    names = [n for n in ORDER if n in rates] + sorted(n for n in rates if n not in ORDER)
    for name in names:
        sizes = [n for n, _ in rates[name]]
        values = [r for _, r in rates[name]]
        ax.plot(sizes, values, marker="o", label=LABELS.get(name, name))
    if write_bandwidth:
        limit = write_bandwidth * 1e9 / OUTPUT_BYTES_PER_PAIR
        ax.axhline(limit, linestyle="--", color="grey", linewidth=1)
        ax.annotate(
            f"outputs alone at {write_bandwidth:g} GB/s ({OUTPUT_BYTES_PER_PAIR} B/pair)",
            xy=(0.01, limit), xycoords=("axes fraction", "data"), va="bottom", fontsize=8, color="grey",
        )
    all_sizes = sorted({n for points in rates.values() for n, _ in points})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(all_sizes)
    ax.set_xticklabels([f"{n:,}" for n in all_sizes])
    ax.minorticks_off()
    ax.set_xlabel("distinct descriptors per side (n x n class pairs)")
    ax.set_ylabel(f"pair evaluations per second ({'best' if stat == 'min' else 'median'} run)")
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu_model") or machine.get("cpu", {}).get("brand_raw") or machine.get("processor", "")
    cores = machine.get("cpu", {}).get("count", "?")
    ax.set_title(f"fastmatch dense kernel: pair rate by size\n{cpu}, {cores} cores", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path, help="a --benchmark-json file")
    parser.add_argument("-o", "--output", type=Path, default=Path("pair_rate.png"))
    parser.add_argument(
        "--stat", choices=("median", "min"), default="median", help="which time to rate (default median)"
    )
    parser.add_argument("--write-bandwidth", type=float, default=27.0, help="GB/s; 0 for no limit line (default 27)")
    args = parser.parse_args(argv)
    data = json.loads(args.json.read_text())
    plot(data, args.output, args.write_bandwidth or None, args.stat)
    rates = pair_rates(data, args.stat)
    for name in sorted(rates):
        print(name, ", ".join(f"{n}: {r / 1e6:.1f} M/s" for n, r in rates[name]))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
