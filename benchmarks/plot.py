"""Histograms of RTP send intervals per caller: ``python -m benchmarks.plot IN.json OUT.png``.

Runs in the bench venv (``.bench/venv``), where matplotlib is installed for this plot only: it
is no product dependency. ``IN.json`` maps each caller to its send intervals in ms (all runs).
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

LOW, HIGH, BIN = 10.0, 30.0, 0.05  # ms: the histogram's range and bin width


def main() -> None:
    source, target = sys.argv[1], sys.argv[2]
    with open(source) as f:
        intervals: dict[str, list[float]] = json.load(f)
    callers = [name for name, values in intervals.items() if values]
    figure, axes = plt.subplots(
        len(callers), 1, figsize=(8, 2.2 * len(callers) + 0.6), sharex=True, squeeze=False
    )
    bins = [LOW + BIN * n for n in range(int((HIGH - LOW) / BIN) + 1)]
    for axis, name in zip(axes[:, 0], callers, strict=True):
        values = intervals[name]
        clipped = [min(max(v, LOW), HIGH) for v in values]
        axis.hist(clipped, bins=bins, color="tab:blue")
        axis.set_yscale("log")
        axis.axvline(20.0, color="tab:red", linewidth=0.8)
        outside = sum(not LOW < v < HIGH for v in values)
        axis.set_title(f"{name}: {len(values)} intervals ({outside} outside, shown at the edges)",
                       fontsize=9)  # fmt: skip
        axis.set_ylabel("packets")
    axes[-1, 0].set_xlabel("RTP send interval on lo (ms), 20 ms marked")
    figure.tight_layout()
    figure.savefig(target, dpi=100)


if __name__ == "__main__":
    main()
