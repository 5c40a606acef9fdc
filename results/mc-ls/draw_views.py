"""Draws views.png: what the MC-LS agent sees (envs.MCLSEnv.VIEWS), in the order it sees it.

    python results/mc-ls/draw_views.py        # from the repository root; writes results/mc-ls/views.png
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import envs  # noqa: E402

PATH = [(0, 0), (0, 1), (-1, 1), (-1, 2), (-1, 3), (0, 3)]  # a room walked on its left side (diamond's correct side)
RIGHT = [(1, 1), (1, 2), (1, 3)]  # the right side's positions


def picture(key):
    return (envs.MCLSEnv.VIEWS[key].reshape(10, 10, 3) * 128 + 128).clip(0, 255).astype("uint8")


rows = [("signal / junction", [((0, 0, 0, 0), "red signal"), ((0, 1, 0, 0), "green signal"), ((2, 0, 0, 0), "junction")])]
for kind, name in ((0, "diamond room"), (1, "iron room")):
    rows.append((name, [((1, kind, x, y), f"({x},{y})") for x, y in PATH + RIGHT]))
cols = max(len(r[1]) for r in rows)
fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols, 1.55 * len(rows)))
for i, (label, items) in enumerate(rows):
    for j in range(cols):
        ax = axes[i][j]
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= len(items):
            ax.axis("off")
            continue
        key, title = items[j]
        ax.imshow(picture(key), interpolation="nearest")
        ax.set_title(title, fontsize=8)
    axes[i][0].set_ylabel(label, fontsize=8)
fig.suptitle("MC-LS views (x, y): a room walked left of its column, then the right side's three", fontsize=9)
fig.tight_layout()
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "views.png")
fig.savefig(out + ".tmp.png", dpi=110)
os.replace(out + ".tmp.png", out)
print(f"wrote {out}")
