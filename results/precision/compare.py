"""fp32 against bf16 on one seed: their training curves over the frames both have, side by side.

    python results/precision/compare.py results/mujoco/pilots/cheetah-dir__rnn_hn__lr0.001__s73 \
        results/precision/cheetah-dir__rnn_hn-bf16__lr0.001__s73

Prints, for each run, the mean training return over the whole common curve (the paper's sample-efficiency
score), over its last 10% and over its first 10%, and the largest gap between the two smoothed curves
(trailing average over 10% of the updates, as plot.py draws them).
"""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np


def curve(run):
    with open(os.path.join(run, "progress.csv")) as fh:
        rows = list(csv.DictReader(fh))
    return {int(r["global_step"]): float(r["return"]) for r in rows if r["return"] not in ("", "None")}


def smooth(y, w):
    return np.array([y[max(0, i - w + 1):i + 1].mean() for i in range(len(y))])


def main(runs):
    curves = [curve(r) for r in runs]
    steps = sorted(set.intersection(*[set(c) for c in curves]))
    n = len(steps)
    tenth = max(1, n // 10)
    print(f"common frames: {steps[0]:,} to {steps[-1]:,} ({n} updates)\n")
    print("| run | precision | whole-curve mean | first 10% | last 10% |\n|---|---|---|---|---|")
    smoothed = []
    for run, c in zip(runs, curves):
        y = np.array([c[s] for s in steps])
        precision = json.load(open(os.path.join(run, "config.json"))).get("precision", "fp32")
        print(f"| {os.path.basename(run.rstrip('/'))} | {precision} | {y.mean():.1f} | {y[:tenth].mean():.1f} | "
              f"{y[-tenth:].mean():.1f} |")
        smoothed.append(smooth(y, tenth))
    gap = np.abs(smoothed[0] - smoothed[1])
    print(f"\nlargest gap between the smoothed curves: {gap.max():.1f} at {steps[int(gap.argmax())]:,} frames")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python results/precision/compare.py RUN_FP32 RUN_BF16")
    main(sys.argv[1:])
