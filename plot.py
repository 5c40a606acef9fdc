"""Learning curves like the paper's: mean over seeds with a 68% bootstrap confidence interval.

    python plot.py results/gridworld                 # every run folder below it
    python plot.py runs/gridworld__rnn_hn__73__* --out figs
    python plot.py results/gridworld --finished      # leave out runs still in progress
    python plot.py results/gridworld --methods rnn,rnn_s,rnn_hn --prefix fig9_   # some methods, own files
    python plot.py results/mujoco results/mujoco/pilots --frames 2.5e6 --prefix at2.5e6_   # 1e7 runs cut there

Reads run folders (those with progress.csv and config.json), groups the finished ones (summary.json)
by env and method (`rnn_hn-kaiming` for the Kaiming ablation) and learning rate, counting each seed
once, picks each method's best learning rate as the paper did (highest seed-mean of the average return
over the whole curve; the TI methods' curves start at their first meta-training update, since their
multi-task pre-training is told the task), smooths each curve with a trailing moving average over 10% of
its points, and writes to --out (runs in progress are drawn apart, dotted, one line each, and listed in the table):
  returns.png      mean meta-episode return vs frames, one panel per env (dashed: Bayes-optimal, when
                   results/bayes_optimal.json beside this file has the env)
  grad_norm.png    latent gradient norm vs frames (the paper's Figure 11)
  adaptation.png   return of each inner episode (ep1..epK) late in training, per method (black bars:
                   a Bayes-optimal policy's expected return in each episode)
  summary.md       table: method, best lr, seeds, final return mean [68% CI], and the greedy evaluation
                   return of the final policies when evaluate.py has written eval.json; then the sample
                   efficiency (whole-curve mean return) and the latent gradient norm early and late in
                   training, with CIs; every learning rate with its selection score (the whole-curve mean),
                   so the choice can be checked; and the core-hours the finished runs took
"""

from __future__ import annotations

import argparse
import csv
import glob
import itertools
import json
import os
import sys
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTION = "curves: seed mean, trailing average over 10% of points; bands: 68% bootstrap CI over seeds"


def bootstrap_ci(values, level=0.68, n_boot=10000, seed=0):
    """Percentile bootstrap CI of the mean over seeds. With at most 6 values every resample is enumerated
    (n^n of them, equally likely), so the interval is exact; beyond that, `n_boot` random resamples."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    if n <= 6:
        idx = np.array(list(itertools.product(range(n), repeat=n)))
    else:
        idx = np.random.default_rng(seed).integers(n, size=(n_boot, n))
    means = values[idx].mean(1)
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)], method="inverted_cdf")
    return float(lo), float(hi)


def with_ci(values):
    """'mean [lo, hi]' with the 68% bootstrap CI, as the tables print it."""
    lo, hi = bootstrap_ci(values)
    return f"{np.mean(values):.2f} [{lo:.2f}, {hi:.2f}]"


def smooth(y, frac=0.1):
    """Trailing moving average over `frac` of the points (NaNs, i.e. updates without a finished
    meta-episode, are skipped)."""
    y = np.asarray(y, dtype=float)
    w = max(1, int(round(len(y) * frac)))
    out = np.empty_like(y)
    for i in range(len(y)):
        window = y[max(0, i - w + 1):i + 1]
        window = window[~np.isnan(window)]
        out[i] = window.mean() if len(window) else np.nan
    return out


# Every method's name as the README writes it, and its look: one colour and one line style per method, the same
# in every figure. Keys are the variants' names (the scripts' run_name, also the run folders' middle part).
NAMES = {"rnn": "RNN", "rnn_s": "RNN+S", "rnn_hn": "RNN+HN", "rnn_hn-kaiming": "RNN+HN Kaiming", "vi_hn": "VI+HN",
         "vi_hn-vi": "VI", "ti_pp_hn": "TI++HN", "ti_pp_hn-ti_pp": "TI++", "ti_pp_hn-ti_hn": "TI+HN",
         "ti_pp_hn-bi_pp_hn": "BI++HN", "ti": "TI", "ti-naive": "TI Naive"}
STYLE = {"rnn": ("#1f77b4", "--"), "rnn_s": ("#17becf", "-."), "rnn_hn": ("#d62728", "-"),
         "rnn_hn-kaiming": ("#e377c2", ":"), "vi_hn": ("#2ca02c", "-"), "vi_hn-vi": ("#bcbd22", "--"),
         "ti_pp_hn": ("#9467bd", "-"), "ti_pp_hn-ti_pp": ("#8c564b", "-."), "ti_pp_hn-ti_hn": ("#7f7f7f", "--"),
         "ti_pp_hn-bi_pp_hn": ("#000000", ":"), "ti": ("#ff7f0e", "--"), "ti-naive": ("#393b79", ":"),
         "rnn_hn-bf16": ("#ff9896", "--")}


def display(method):
    """The README's name of a method (its bf16 runs: "<name> bf16")."""
    base = method.removesuffix("-bf16")
    return NAMES.get(base, base) + (" bf16" if method.endswith("-bf16") else "")


def style(method):
    colour, ls = STYLE.get(method, (None, "-"))
    return {"color": colour, "ls": ls}


# Runs older than config.json's "variant": their variant from their flags, as the scripts' run_name names it.
VARIANTS = {("rnn_hn", "hyper_init", "kaiming"): "kaiming", ("vi_hn", "hn", False): "vi", ("ti_pp_hn", "hn", False): "ti_pp",
            ("ti_pp_hn", "pp", False): "ti_hn", ("ti_pp_hn", "target", "weights"): "bi_pp_hn", ("ti", "naive", True): "naive"}


def label(cfg, folder):
    """The run's variant name (`rnn_hn-kaiming`, `vi_hn-vi`, ...; `-bf16` for a run in bf16, so that it is never
    averaged with fp32 seeds): config.json's "variant", or for older runs the same name from their flags."""
    if "variant" in cfg:
        return cfg["variant"]
    method = cfg.get("method") or os.path.basename(folder).split("__")[1].split("-")[0]
    tags = [tag for (script, flag, value), tag in VARIANTS.items() if method == script and cfg.get(flag) == value]
    return "-".join([method] + tags + ["bf16"] * (cfg.get("precision") == "bf16"))


def load_runs(paths, finished=False, frames=None):
    runs = []
    folders = set()
    for p in paths:
        for q in glob.glob(p) or [p]:
            folders.update(os.path.dirname(f) for f in glob.glob(os.path.join(q, "**", "progress.csv"), recursive=True))
    for folder in sorted(folders):
        cfg_path = os.path.join(folder, "config.json")
        done = os.path.exists(os.path.join(folder, "summary.json"))
        if not os.path.exists(cfg_path):
            continue
        with open(cfg_path) as fh:
            cfg = json.load(fh)
        rows, broken = [], 0
        with open(os.path.join(folder, "progress.csv")) as fh:
            for r in csv.DictReader(fh):
                try:  # a short row (None values, e.g. a line cut by a kill) or a garbled one is skipped
                    rows.append({k: float(v) if v != "" else np.nan for k, v in r.items()})
                except (TypeError, ValueError):
                    broken += 1
        if broken:
            print(f"warning: {os.path.join(folder, 'progress.csv')}: skipped {broken} unreadable row(s)", file=sys.stderr)
        if frames:  # the run as it stood at `frames` (without lr annealing, a longer run's prefix is the shorter run)
            cut = [r for r in rows if r["global_step"] <= frames]
            went_past = len(cut) < len(rows)
            rows, done = cut, done or went_past
        if not rows or (finished and not done):
            continue
        method = label(cfg, folder)
        # The TI methods' multi-task pre-training is told the task: its returns (and its zero latent gradients) are
        # not meta-RL's, so curves, whole-curve means and the lr rule start at the first meta-training update.
        pre = lambda r, k: r.get("pretraining") == 1 and (k == "latent_grad_norm" or k.startswith("return"))  # noqa: E731
        col = lambda k: np.array([np.nan if pre(r, k) else r.get(k, np.nan) for r in rows])  # noqa: E731
        eps = sorted((k for k in rows[0] if k.startswith("return_ep")), key=lambda k: int(k[9:]))
        greedy, greedy_parts, splits = None, {}, {}
        if os.path.exists(os.path.join(folder, "eval.json")) and not (frames and went_past):  # not the final policy
            with open(os.path.join(folder, "eval.json")) as fh:
                ev = json.load(fh)
            greedy = ev.get("return")  # and its parts: per direction (Cheetah-Dir, Ant-Dir), per inner episode
            greedy_parts = {f"direction {k}": v for k, v in ev.get("return_per_direction", {}).items()}
            greedy_parts |= {f"velocity {k}": v for k, v in ev.get("return_per_velocity_bin", {}).items()}
            splits = {k: ev[k] for k in ("train", "test") if k in ev}  # ML10: success on its train / test classes
            greedy_parts |= {f"episode {i + 1}": v for i, v in enumerate(ev.get("return_per_episode", []))}
        runs.append({"folder": folder, "env": cfg["env"], "method": method, "lr": cfg["lr"], "seed": cfg["seed"],
                     "greedy": greedy, "greedy_parts": greedy_parts,
                     "done": done,
                     "splits": splits, "success": col("success"),
                     "step": col("global_step"), "return": col("return"), "grad": col("latent_grad_norm"),
                     "hours": col("time")[-1] / 3600,  # training seconds, summed over resumed sessions
                     "eps": np.stack([col(k) for k in eps]) if eps else None})
    return runs


def group_runs(runs):
    """Finished runs as {(env, method, lr): [one run per seed]}, and {(env, method, lr): [seeds seen twice]}.
    A CI over seeds must count each seed once: its longest run (a pilot's extension, not the pilot that sorts
    before it); of equally long ones, one with a greedy eval of that point, else the first in folder order."""
    groups, duplicates = defaultdict(list), defaultdict(list)
    rank = lambda r: (r["step"][-1], r["greedy"] is not None)  # noqa: E731
    for r in runs:
        key = (r["env"], r["method"], r["lr"])
        if not r["done"]:
            continue
        same = [i for i, o in enumerate(groups[key]) if o["seed"] == r["seed"]]
        if same:
            duplicates[key].append(r["seed"])
            if rank(r) > rank(groups[key][same[0]]):
                groups[key][same[0]] = r
        else:
            groups[key].append(r)
    return groups, duplicates


def lr_scores(runs):
    """{(env, method): ({lr: [each seed's average return over its curve]}, updates scored)} of the finished runs:
    the paper's selection score, over the seeds and updates that every lr of that env and method has, so that
    extending the winning pilot or adding seeds at it leaves the scores and the pick as they were (sweep.py's
    --lrs best applies the same rule). Without a seed common to every lr: every seed's whole curve."""
    by = defaultdict(dict)
    for (env, method, lr), group in group_runs(runs)[0].items():
        by[(env, method)][lr] = {r["seed"]: r["return"] for r in group}
    scores = {}
    for key, lrs in by.items():
        seeds = sorted(set.intersection(*(set(c) for c in lrs.values())))
        n = min(len(c[seed]) for c in lrs.values() for seed in seeds) if seeds else None
        scores[key] = ({lr: [np.nanmean(c[seed][:n]) for seed in (seeds or c)] for lr, c in lrs.items()}, n)
    return scores


def best_lr(runs):
    """{(env, method): lr} with the highest seed-mean of each curve's average return (the paper's rule)."""
    return {key: max(lrs, key=lambda lr: np.mean(lrs[lr])) for key, (lrs, _) in lr_scores(runs).items()}


def late_mean(y):
    """Mean over the last 10% of a run's updates (the last axis), skipping updates without a return."""
    return np.nanmean(y[..., -max(1, y.shape[-1] // 10):], axis=-1)


def early_mean(y):
    """Mean over the first 10% of a run's updates (the last axis)."""
    return np.nanmean(y[..., :max(1, y.shape[-1] // 10)], axis=-1)


def task_groups(ax, env, by_order, groups):
    """The greedy evaluation's return per task group (evaluate.py's eval.json: per direction on Cheetah-Dir and
    Ant-Dir, per velocity bin on Cheetah-Vel), each method's seed mean with its 68% CI, side by side."""
    drawn = [(m, lr) for (e, m), lr in by_order if e == env]
    names = list(dict.fromkeys(k for m, lr in drawn for r in groups[(env, m, lr)] for k in r["greedy_parts"]
                               if k.startswith(("direction", "velocity"))))  # (evaluate.py's order: slow to fast)
    for i, (method, lr) in enumerate(drawn):
        group = groups[(env, method, lr)]
        keys = [k for k in names if all(k in r["greedy_parts"] for r in group)]
        if not keys:
            continue
        vals = np.array([[r["greedy_parts"][k] for k in keys] for r in group])
        x = np.array([names.index(k) for k in keys]) + 0.5 * (i - (len(drawn) - 1) / 2) / max(len(drawn), 1)
        cis = np.array([bootstrap_ci(vals[:, c]) for c in range(len(keys))])
        ax.errorbar(x, vals.mean(0), yerr=[vals.mean(0) - cis[:, 0], cis[:, 1] - vals.mean(0)], marker="o",
                    markersize=4, capsize=2, **style(method), label=f"{display(method)} (lr {lr:g}, {len(group)} "
                    f"seed{'s' * (len(group) > 1)})")
    ax.set_xticks(range(len(names)), [n.replace("direction +1", "forward").replace("direction -1", "backward")
                                      for n in names])
    ax.set(title=env, xlabel="task group (greedy evaluation, 1,024 tasks)", ylabel="greedy return of the final policy")


def mean_curve(group, key, grid):
    ys = np.stack([np.interp(grid, r["step"], smooth(r[key])) for r in group])
    cis = np.array([bootstrap_ci(ys[:, i]) for i in range(len(grid))])
    return ys.mean(0), cis[:, 0], cis[:, 1]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Learning curves with 68% bootstrap CIs.")
    parser.error = lambda msg: parser.exit(2, f"{parser.prog}: error: {msg}\n")
    parser.add_argument("paths", nargs="+", help="run folders or folders containing them")
    parser.add_argument("--out", default=None, help="output folder (default: the first path)")
    parser.add_argument("--bayes", default=os.path.join(HERE, "results", "bayes_optimal.json"),
                        help="Bayes-optimal returns per env (default: results/bayes_optimal.json beside plot.py)")
    parser.add_argument("--finished", action="store_true", help="leave out runs still in progress (no summary.json)")
    parser.add_argument("--methods", default=None, help="comma-separated methods to draw, by their folders' names "
                        "(rnn,rnn_s,rnn_hn,rnn_hn-kaiming,vi_hn-vi,ti-naive, ...) or the README's (RNN+HN, TI++, ...); "
                        "default: all")
    parser.add_argument("--prefix", default="", help="prefix of the output file names, e.g. fig9_")
    parser.add_argument("--zoom", type=float, default=None, help="add a panel under each return panel showing the last "
                        "fraction of the frames on its own y-range, e.g. 0.25")
    parser.add_argument("--frames", type=float, default=None, help="cut every run at this many frames (longer runs "
                        "count as finished there, without their final policy's greedy eval), e.g. 2.5e6")
    args = parser.parse_args(argv)
    if args.frames is not None and args.frames <= 0:
        parser.error("--frames must be > 0")
    if args.zoom is not None and not 0 < args.zoom < 1:
        parser.error("--zoom must be a fraction between 0 and 1, e.g. 0.25")
    runs = load_runs(args.paths, args.finished, args.frames)
    if args.methods:
        # A method is named as in its folders (ti_pp_hn-ti_pp) or as in the README (TI++): the same runs.
        aliases = {display(r["method"]): r["method"] for r in runs}
        wanted = [aliases.get(m, m) for m in args.methods.split(",")]
        have = sorted({r["method"] for r in runs})
        unknown = [m for m in wanted if m not in have]
        if runs and unknown:  # a misspelt name would silently drop a method from the figure
            parser.error(f"--methods: no runs of {', '.join(unknown)} under {' '.join(args.paths)}; "
                         f"these have runs: {', '.join(have)}")
        runs = sorted((r for r in runs if r["method"] in wanted), key=lambda r: wanted.index(r["method"]))
    if not runs:
        parser.error(f"no run folders (with progress.csv and config.json{' of ' + args.methods if args.methods else ''}) "
                     f"under {' '.join(args.paths)}")
    groups, duplicates = group_runs(runs)
    for (env, method, lr), seeds in sorted(duplicates.items()):
        print(f"warning: {env} {method} lr {lr:g}: more than one run of seed(s) {sorted(set(seeds))}; "
              f"each seed's longest run is used", file=sys.stderr)
    live = [r for r in runs if not r["done"]]
    if len(live) == len(runs):
        parser.error(f"no finished run (summary.json) under {' '.join(args.paths)}: {len(live)} still running; "
                     f"plot.py draws them beside finished ones")
    out = args.out or (args.paths[0] if os.path.isdir(args.paths[0]) else ".")
    os.makedirs(out, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bayes = {}
    if os.path.exists(args.bayes):
        with open(args.bayes) as fh:
            bayes = json.load(fh)
    else:
        print(f"warning: no Bayes-optimal values at {args.bayes} (python bayes_optimal.py writes them); "
              f"no dashed line", file=sys.stderr)
    best = best_lr(runs)
    env_names = sorted({r["env"] for r in runs})
    table = ["| env | method | best lr | seeds | frames | final return (mean [68% CI]) | % of Bayes-optimal "
             "| greedy eval return (mean [68% CI]) | % of Bayes-optimal |", "|---|---|---|---|---|---|---|---|---|"]
    figs = {name: plt.subplots(1, len(env_names), figsize=(5 * len(env_names) + 2.5, 3.8), squeeze=False)
            for name in ("returns", "grad_norm")}
    zooms = []  # --zoom: a second row of return panels, the end of training on its own scale
    if args.zoom:
        fig = plt.figure(figsize=(5 * len(env_names) + 2.5, 7.2))
        axes = fig.subplots(2, len(env_names), squeeze=False)
        figs["returns"] = (fig, axes[:1])
        zooms = list(axes[1])
    order = list(dict.fromkeys(r["method"] for r in runs))  # --methods' order, else by family (STYLE's order)
    if not args.methods:
        order.sort(key=lambda m: list(STYLE).index(m) if m in STYLE else len(STYLE))
    by_order = sorted(best.items(), key=lambda item: (item[0][0], order.index(item[0][1])))
    for j, env in enumerate(env_names):
        for (e, method), lr in by_order:
            if e != env:
                continue
            group = groups[(env, method, lr)]
            end = min(r["step"][-1] for r in group)
            longest = max(r["step"][-1] for r in group)
            grid = np.linspace(0, end, 200)
            on = sum(r["step"][-1] > 1.01 * end for r in group)  # seeds that ran on past the drawn end
            legend = (f"{display(method)} (lr {lr:g}, {len(group)} seed{'s' * (len(group) > 1)} to {end:.2g} frames"
                      + (f"; {on} ran on to {longest:.2g}" if on else "") + ")")
            for name, key in (("returns", "return"), ("grad_norm", "grad")):
                mean, lo, hi = mean_curve(group, key, grid)
                for ax in [figs[name][1][0, j]] + ([zooms[j]] if name == "returns" and zooms else []):
                    line, = ax.plot(grid, mean, label=legend, **style(method))
                    ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.15)
            finals = [late_mean(r["return"]) for r in group]
            pct = lambda x: f"{100 * x / bayes[env]:.0f}%" if env in bayes else ""  # noqa: E731
            greedy = [r["greedy"] for r in group if r["greedy"] is not None]
            g = ["", ""]
            if len(greedy) == len(group):  # only when every seed has been evaluated
                g = [with_ci(greedy), pct(np.mean(greedy))]
            mixed = longest > 1.01 * end  # seeds at different budgets: their finals are not one quantity
            if mixed:
                print(f"warning: {env} {method} lr {lr:g}: runs of {end:.3g} to {longest:.3g} frames pooled "
                      f"(--frames {end:.3g} compares them at one budget)", file=sys.stderr)
            frames = f"{end:.3g} to {longest:.3g} (mixed)" if mixed else f"{end:.3g}"
            table.append(f"| {env} | {display(method)} | {lr:g} | {len(group)} | {frames} | {with_ci(finals)} "
                         f"| {pct(np.mean(finals))} | {g[0]} | {g[1]} |")
        for r in live:  # in progress: one dotted line each, apart from the seed means
            if r["env"] == env:
                figs["returns"][1][0, j].plot(r["step"], smooth(r["return"]), ls=":", lw=1,
                                              label=f"{display(r['method'])} (lr {r['lr']:g}, seed {r['seed']}, in progress)")
        for name, ylabel in (("returns", "meta-episode return (training)"), ("grad_norm", "latent gradient norm")):
            ax = figs[name][1][0, j]
            if name == "returns" and env in bayes:
                ax.axhline(bayes[env], ls="--", color="k", label="Bayes-optimal")
            ax.set(title=env, xlabel="frames", ylabel=ylabel)
            if name == "grad_norm":  # norms that differ by 10x and more stay readable side by side
                ax.set_yscale("log")
                ax.set_ylabel("latent gradient norm (log scale)")
            if name == "returns" and zooms:  # the last `--zoom` of the frames, on its own y-range
                lo_x = (1 - args.zoom) * ax.get_xlim()[1]
                zooms[j].set_xlim(lo_x, ax.get_xlim()[1])
                ys = [y for line in zooms[j].get_lines() for x, y in zip(*line.get_data()) if x >= lo_x and np.isfinite(y)]
                if ys:
                    pad = 0.05 * (max(ys) - min(ys) + 1e-9)
                    zooms[j].set_ylim(min(ys) - pad, max(ys) + pad)
                zooms[j].set(title=f"last {args.zoom:.0%} of the frames", xlabel="frames")
                zooms[j].tick_params(labelsize=7)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes, off the data
    success_envs = [e for e in env_names if any(np.isfinite(r["success"]).any() for r in runs if r["env"] == e)]
    if success_envs:  # ML10: the share of inner episodes that reached Meta-World's success, in training
        figs["success"] = plt.subplots(1, len(success_envs), figsize=(5 * len(success_envs) + 2.5, 3.8), squeeze=False)
        for j, env in enumerate(success_envs):
            ax = figs["success"][1][0, j]
            for (e, method), lr in by_order:
                group = groups[(env, method, lr)] if e == env else []
                if group:
                    grid = np.linspace(0, min(r["step"][-1] for r in group), 200)
                    mean, lo, hi = mean_curve(group, "success", grid)
                    line, = ax.plot(grid, mean, label=f"{display(method)} (lr {lr:g}, {len(group)} seed"
                                    f"{'s' * (len(group) > 1)})", **style(method))
                    ax.fill_between(grid, lo, hi, color=line.get_color(), alpha=0.15)
            ax.set(title=env, xlabel="frames", ylabel="success fraction (training, inner episodes)")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    for name, (fig, _) in figs.items():
        fig.text(0.5, 0.01, CAPTION, ha="center", fontsize=7)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        fig.savefig(os.path.join(out, f"{args.prefix}{name}.png"), dpi=120, bbox_inches="tight")
        plt.close(fig)

    # adaptation: per inner episode, the late-training return of each best-lr method
    fig, axes = plt.subplots(1, len(env_names), figsize=(5 * len(env_names) + 2.5, 3.8), squeeze=False)
    for j, env in enumerate(env_names):
        one_episode = all(r["eps"] is None or r["eps"].shape[0] == 1 for r in runs if r["env"] == env)
        if one_episode:  # nothing to adapt across: the greedy return per task group (direction, velocity bin)
            task_groups(axes[0, j], env, by_order, groups)
            continue
        drawn = [(m, lr) for (e, m), lr in by_order if e == env and groups[(e, m, lr)][0]["eps"] is not None]
        for i, (method, lr) in enumerate(drawn):
            group = groups[(env, method, lr)]
            late = np.array([late_mean(r["eps"]) for r in group])
            k = np.arange(1, late.shape[1] + 1) + 0.5 * (i - (len(drawn) - 1) / 2) / max(len(drawn), 1)  # side by side
            cis = np.array([bootstrap_ci(late[:, i]) for i in range(late.shape[1])])
            axes[0, j].errorbar(k, late.mean(0), yerr=[late.mean(0) - cis[:, 0], cis[:, 1] - late.mean(0)],
                                marker="o", markersize=4, capsize=2, **style(method),
                                label=f"{display(method)} (lr {lr:g}, {len(group)} seed{'s' if len(group) > 1 else ''})")
        per_episode = bayes.get("per_episode", {}).get(env)
        if per_episode:
            axes[0, j].plot(np.arange(1, len(per_episode) + 1), per_episode, "k_", markersize=22, mew=2,
                            label="Bayes-optimal")
        axes[0, j].set(title=env, xlabel="inner episode", ylabel="return (last 10% of training)")
        axes[0, j].xaxis.set_major_locator(plt.MaxNLocator(integer=True))  # episodes are 1..K
        if axes[0, j].get_legend_handles_labels()[0]:
            axes[0, j].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.text(0.5, 0.01, "points: seed mean over the last 10% of updates (one inner episode: the greedy return of the "
             "final policy per task group); bars: 68% bootstrap CI over seeds", ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(os.path.join(out, f"{args.prefix}adaptation.png"), dpi=120, bbox_inches="tight")
    plt.close(fig)
    # Sample efficiency (the whole-curve mean, also the lr rule's score) and Figure 11's norms, with CIs, so
    # that a claim about either can be decided from the table; the hours are each seed's training time.
    table += ["", "Sample efficiency and latent gradient norms at the best lr (mean [68% CI] over seeds):", "",
              "| env | method | lr | seeds | whole-curve mean return | latent grad norm, first 10% | "
              "latent grad norm, last 10% | training hours per seed |", "|---|---|---|---|---|---|---|---|"]
    for (env, method), lr in by_order:
        group = groups[(env, method, lr)]
        grads = [r["grad"] for r in group]
        hours = np.mean([r["hours"] for r in group])  # NaN for logs without a time column
        table.append(f"| {env} | {display(method)} | {lr:g} | {len(group)} | {with_ci([np.nanmean(r['return']) for r in group])} | "
                     f"{with_ci([early_mean(g) for g in grads])} | {with_ci([late_mean(g) for g in grads])} | "
                     f"{f'{hours:.2f}' if np.isfinite(hours) else ''} |")
    if any(r["splits"] for r in runs):  # ML10: Figure 16's measure, per split (evaluate.py --split)
        table += ["", "ML10 success fraction of the final policy (evaluate.py: deterministic, 10 inner episodes per "
                      "task; mean [68% CI] over seeds):", "",
                  "| env | method | lr | seeds | split | success fraction | episode 1 | episode 2 | episode 10 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for (env, method), lr in by_order:
            group = groups[(env, method, lr)]
            for split in ("train", "test"):
                if all(split in r["splits"] for r in group):
                    per = np.array([r["splits"][split]["success_per_episode"] for r in group])
                    cells = [with_ci(per[:, k]) if per.shape[1] > k else "" for k in (0, 1, 9)]
                    table.append(f"| {env} | {display(method)} | {lr:g} | {len(group)} | {split} | "
                                 f"{with_ci([r['splits'][split]['success'] for r in group])} | " + " | ".join(cells) + " |")
    parts = sorted({k for r in runs for k in r["greedy_parts"]})
    if parts:  # the greedy return's parts, so that e.g. a one-direction runner shows as such
        table += ["", "Greedy eval return by part at the best lr (mean [68% CI] over seeds):", "",
                  "| env | method | lr | " + " | ".join(parts) + " |", "|---|---|---|" + "---|" * len(parts)]
        for (env, method), lr in by_order:
            group = groups[(env, method, lr)]
            cells = [with_ci([r["greedy_parts"][k] for r in group]) if all(k in r["greedy_parts"] for r in group)
                     else "" for k in parts]
            table.append(f"| {env} | {display(method)} | {lr:g} | " + " | ".join(cells) + " |")
    # One row per run behind the means above, so that a per-run table in a README is copied, not computed by hand.
    table += ["", "Every run counted at the best lr (whole-curve: mean training return over all updates; final: "
                  "over the last 10%; greedy parts: per direction, and per inner episode where there are several):", "",
              "| env | method | lr | seed | frames | whole-curve mean | final training return | greedy return | "
              "greedy parts | training hours | run |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (env, method), lr in by_order:
        for r in sorted(groups[(env, method, lr)], key=lambda r: r["seed"]):
            greedy = f"{r['greedy']:.2f}" if r["greedy"] is not None else ""
            gparts = "; ".join(f"{k} {v:.2f}" for k, v in sorted(r["greedy_parts"].items())
                               if "episode 2" in r["greedy_parts"] or k != "episode 1")  # one episode: the total
            hours = f"{r['hours']:.2f}" if np.isfinite(r["hours"]) else ""
            table.append(f"| {env} | {display(method)} | {lr:g} | {r['seed']} | {r['step'][-1]:.3g} | "
                         f"{np.nanmean(r['return']):.2f} | {late_mean(r['return']):.2f} | {greedy} | {gparts} | "
                         f"{hours} | {os.path.relpath(r['folder'], out)} |")
    table += ["", "Every learning rate (score: the seed-mean of each curve's average return, the selection rule, over "
                  "the seeds and first updates every rate has):", "",
              "| env | method | lr | seeds | score | scored over | final return (mean) | greedy eval return (mean) |",
              "|---|---|---|---|---|---|---|---|"]
    for (env, method), (lrs, n) in sorted(lr_scores(runs).items()):
        for lr in sorted(lrs):
            group = groups[(env, method, lr)]
            greedy = [r["greedy"] for r in group if r["greedy"] is not None]
            best_mark = " (best)" if best[(env, method)] == lr else ""
            basis = f"{len(lrs[lr])} seed{'s' * (len(lrs[lr]) > 1)}, " + (f"{n} updates" if n else "whole curves")
            table.append(f"| {env} | {display(method)} | {lr:g}{best_mark} | {len(group)} | {np.mean(lrs[lr]):.2f} | {basis} | "
                         f"{np.mean([late_mean(r['return']) for r in group]):.2f} | "
                         f"{f'{np.mean(greedy):.2f}' if len(greedy) == len(group) else ''} |")
    done = [r for r in runs if r["done"]]
    table += ["", f"Training time of the {len(done)} finished runs above: {np.nansum([r['hours'] for r in done]):.1f} "
                  f"core-hours (one torch thread each; evaluation not counted)."]
    if duplicates:
        table += ["", "Seeds with more than one finished run (only each seed's longest run is counted): " +
                  "; ".join(f"{env} {display(method)} lr {lr:g}: {sorted(set(s))}" for (env, method, lr), s in sorted(duplicates.items()))]
    if live:
        table += ["", "Runs in progress (drawn dotted in returns.png, not counted above):", "",
                  "| run | frames | return (last 10% of its updates) |", "|---|---|---|"]
        table += [f"| {os.path.basename(r['folder'])} | {r['step'][-1]:.3g} | {late_mean(r['return']):.2f} |" for r in live]
    summary = os.path.join(out, f"{args.prefix}summary.md")
    with open(summary + ".tmp", "w") as fh:
        fh.write("\n".join(table) + "\n")
    os.replace(summary + ".tmp", summary)
    print("\n".join(table))
    written = [f"{n}.png" for n in figs] + ["adaptation.png", "summary.md"]
    print(f"wrote {', '.join(os.path.join(out, args.prefix + n) for n in written)}")


if __name__ == "__main__":
    sys.exit(main())
