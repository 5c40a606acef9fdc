"""plot.py on synthetic runs: the bootstrap CI against a hand-computed answer, the best-lr rule, outputs."""

import json
import os

import numpy as np
import pytest

import plot


def test_bootstrap_ci_exact_known_answer():
    # Seeds [0, 0, 3]: a resample's mean is the number k of 3s drawn, k ~ Binomial(3, 1/3):
    # P(k) = 8/27, 12/27, 6/27, 1/27. The 16th percentile is 0 (8/27 = 0.30 >= 0.16) and the 84th is 2
    # (P(k <= 1) = 20/27 = 0.74 < 0.84 <= P(k <= 2) = 26/27).
    assert plot.bootstrap_ci([0.0, 0.0, 3.0]) == (0.0, 2.0)
    assert plot.bootstrap_ci([5.0]) == (5.0, 5.0)


def test_bootstrap_ci_many_seeds_matches_normal_theory():
    values = np.random.default_rng(0).normal(size=40)
    lo, hi = plot.bootstrap_ci(values, n_boot=20000)
    se = values.std() / np.sqrt(len(values))  # 68% ~ mean +- 1 standard error
    assert lo == pytest.approx(values.mean() - se, abs=0.2 * se)
    assert hi == pytest.approx(values.mean() + se, abs=0.2 * se)


def test_smooth_is_trailing_and_skips_nan():
    y = np.array([0.0, np.nan, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 26.0,
                  28.0, 30.0, 32.0, 34.0, 36.0])
    s = plot.smooth(y, frac=0.1)  # window 2
    assert s[0] == 0.0 and s[1] == 0.0 and s[2] == 2.0 and s[3] == 3.0


def fake_run(root, name, config, header, rows, summary="{}"):
    """A run folder as a script leaves it: config.json, progress.csv (header and rows), and summary.json
    when finished (summary=None: unfinished)."""
    folder = root / name
    folder.mkdir(parents=True)
    if summary is not None:
        (folder / "summary.json").write_text(summary)
    json.dump(config, open(folder / "config.json", "w"))
    with open(folder / "progress.csv", "w") as fh:
        fh.writelines(line + "\n" for line in [header, *rows])
    return folder


def write_run(root, method, lr, seed, slope, hyper_init="bias", done=True, name=None, updates=50):
    rows = []
    for i in range(updates):
        r = slope * i / 50 + seed * 0.01
        rows.append(f"{i + 1},{(i + 1) * 960},{r},{r / 4 - 1},{r / 4},{r / 4 + 0.5},{r / 4 + 0.5},{0.1 * slope}")
    fake_run(root, name or f"gridworld__{method}__{hyper_init}__lr{lr}__s{seed}",
             {"env": "gridworld", "method": method, "lr": lr, "seed": seed, "hyper_init": hyper_init},
             "update,global_step,return,return_ep1,return_ep2,return_ep3,return_ep4,latent_grad_norm", rows,
             "{}" if done else None)


def test_best_lr_and_outputs(tmp_path):
    for seed in (73, 20, 3):
        write_run(tmp_path, "rnn_hn", 1e-3, seed, slope=8.0)
        write_run(tmp_path, "rnn_hn", 3e-4, seed, slope=4.0)
        write_run(tmp_path, "rnn", 1e-3, seed, slope=1.0)
        write_run(tmp_path, "rnn", 3e-4, seed, slope=2.0)
    write_run(tmp_path, "rnn_hn", 1e-3, 73, slope=-1.0, hyper_init="kaiming")
    runs = plot.load_runs([str(tmp_path)])
    assert len(runs) == 13
    best = plot.best_lr(runs)
    assert best == {("gridworld", "rnn_hn"): 1e-3, ("gridworld", "rnn"): 3e-4, ("gridworld", "rnn_hn-kaiming"): 1e-3}
    bayes = tmp_path / "bayes.json"
    bayes.write_text(json.dumps({"gridworld": 10.0}))
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs"), "--bayes", str(bayes)])
    for name in ("returns.png", "grad_norm.png", "adaptation.png", "summary.md"):
        assert os.path.getsize(tmp_path / "figs" / name) > 1000 or name == "summary.md"
    table = (tmp_path / "figs" / "summary.md").read_text()
    assert "| gridworld | RNN+HN | 0.001 | 3 | 4.8e+04 |" in table and "| gridworld | RNN | 0.0003 | 3 |" in table
    # every lr is listed with its score; rnn at 1e-3 (slope 1): mean of seed-offset ramps 0..0.98
    assert "| gridworld | RNN | 0.0003 (best) | 3 |" in table and "| gridworld | RNN | 0.001 | 3 |" in table
    # final return: last 5 of 50 points, 8 * mean(45..49) / 50 = 7.52, plus the seed offsets' mean 0.32;
    # 78% of the Bayes value 10; no eval.json, so the greedy columns are empty
    assert "| gridworld | RNN+HN | 0.001 | 3 | 4.8e+04 | 7.84 [7.66, 8.02] | 78% |  |  |" in table
    score = np.mean([np.mean(1.0 * np.arange(50) / 50 + s * 0.01) for s in (73, 20, 3)])
    assert f"| gridworld | RNN | 0.001 | 3 | {score:.2f} |" in table


def test_lr_score_is_the_pilots_after_the_winner_is_extended_and_seeded(tmp_path):
    # The MuJoCo protocol: one-seed pilots, then the pick extended 4x and run at two more seeds. Scored on whole
    # curves, the extended run's later (higher) returns would decide; scored on every seed, the new seeds would.
    write_run(tmp_path, "rnn", 1e-3, 73, slope=1.0, updates=200)  # the pilot 1e-3 (score 0.98), extended to 200
    write_run(tmp_path, "rnn", 3e-4, 73, slope=2.0)  # the pilot 3e-4: score 1.71, the better one
    write_run(tmp_path, "rnn", 3e-4, 20, slope=-5.0)  # a later seed at 3e-4 with a poor curve
    lrs, n = plot.lr_scores(plot.load_runs([str(tmp_path)]))[("gridworld", "rnn")]
    assert n == 50 and len(lrs[1e-3]) == len(lrs[3e-4]) == 1
    assert plot.best_lr(plot.load_runs([str(tmp_path)])) == {("gridworld", "rnn"): 3e-4}


def test_no_runs_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        plot.main([str(tmp_path)])
    assert e.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_finished_only_skips_runs_in_progress(tmp_path):
    write_run(tmp_path, "rnn", 1e-3, 73, slope=1.0)
    write_run(tmp_path, "rnn", 1e-3, 20, slope=1.0, done=False)
    assert len(plot.load_runs([str(tmp_path)])) == 2
    assert [r["seed"] for r in plot.load_runs([str(tmp_path)], finished=True)] == [73]


def test_runs_in_progress_are_drawn_apart_and_not_counted(tmp_path):
    for seed in (73, 20):
        write_run(tmp_path, "rnn", 1e-3, seed, slope=1.0)
    write_run(tmp_path, "rnn", 1e-3, 3, slope=50.0, done=False)  # far better, but unfinished
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs")])
    table = (tmp_path / "figs" / "summary.md").read_text()
    assert "| gridworld | RNN | 0.001 | 2 | 4.8e+04 |" in table  # two seeds, the unfinished one left out
    assert "Runs in progress" in table and "| gridworld__rnn__bias__lr0.001__s3 | 4.8e+04 |" in table


def test_duplicate_seeds_count_once_and_are_reported(tmp_path, capsys):
    write_run(tmp_path, "rnn", 1e-3, 5, slope=1.0, name="a")
    write_run(tmp_path, "rnn", 1e-3, 5, slope=9.0, name="b")  # the same seed again
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs")])
    table = (tmp_path / "figs" / "summary.md").read_text()
    assert "| gridworld | RNN | 0.001 | 1 |" in table and "lr 0.001: [5]" in table
    assert "more than one run of seed(s) [5]" in capsys.readouterr().err


def test_a_seeds_longest_run_counts_whatever_the_folder_order(tmp_path):
    # MuJoCo: the seed-73 pilot (results/mujoco/pilots/walker__...) sorts before its 4x longer run
    # (results/mujoco/walker__...); the 1e7-frame curve must not mix in the 2.5e6-frame pilot.
    write_run(tmp_path, "rnn", 1e-3, 73, slope=1.0, name="a_pilot")
    write_run(tmp_path, "rnn", 1e-3, 73, slope=9.0, name="b_long", updates=200)
    write_run(tmp_path, "rnn", 1e-3, 20, slope=9.0, name="c_long", updates=200)
    write_run(tmp_path, "rnn", 1e-3, 20, slope=1.0, name="d_pilot")
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs")])
    assert "| gridworld | RNN | 0.001 | 2 | 1.92e+05 |" in (tmp_path / "figs" / "summary.md").read_text()
    # Cut at 48,000 frames all are 50 updates long: of a seed's runs, the one with a greedy eval of that point
    for name in ("a_pilot", "b_long", "c_long", "d_pilot"):  # the long runs' evals are of update 200, not 50
        json.dump({"return": 1.0}, open(tmp_path / name / "eval.json", "w"))
    group = plot.group_runs(plot.load_runs([str(tmp_path)], frames=48000))[0][("gridworld", "rnn", 1e-3)]
    assert sorted(os.path.basename(r["folder"]) for r in group) == ["a_pilot", "d_pilot"]


def test_a_cut_last_line_is_skipped_with_a_warning(tmp_path, capsys):
    write_run(tmp_path, "rnn", 1e-3, 5, slope=1.0)
    csv_path = tmp_path / "gridworld__rnn__bias__lr0.001__s5" / "progress.csv"
    with open(csv_path, "a") as fh:
        fh.write("51,48960,0.")  # cut by a kill
    (run,) = plot.load_runs([str(tmp_path)])
    assert len(run["step"]) == 50 and np.isfinite(run["return"]).all()
    assert f"{csv_path}: skipped 1 unreadable row(s)" in capsys.readouterr().err


def test_bayes_line_found_from_any_directory(tmp_path, monkeypatch, capsys):
    write_run(tmp_path, "rnn", 1e-3, 5, slope=1.0)
    monkeypatch.chdir(tmp_path)  # the default path is beside plot.py, not the working directory
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs")])
    assert "% |" in (tmp_path / "figs" / "summary.md").read_text().splitlines()[2]  # % of Bayes-optimal filled
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs"), "--bayes", str(tmp_path / "missing.json")])
    assert "no Bayes-optimal values at" in capsys.readouterr().err


def test_greedy_eval_column(tmp_path):
    for seed, value in ((73, 1.0), (20, 2.0), (3, 6.0)):
        write_run(tmp_path, "rnn", 1e-3, seed, slope=1.0)
        (tmp_path / f"gridworld__rnn__bias__lr0.001__s{seed}" / "eval.json").write_text(json.dumps({"return": value}))
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs"), "--bayes", str(tmp_path / "none.json")])
    # resample means of [1, 2, 6]: 16th and 84th percentiles of the 27 equally likely means
    lo, hi = plot.bootstrap_ci([1.0, 2.0, 6.0])
    assert f"| 3.00 [{lo:.2f}, {hi:.2f}] |" in (tmp_path / "figs" / "summary.md").read_text()


def test_variant_labels_and_display_names():
    # config.json's "variant" (the scripts' run_name) wins; older runs get the same name from their flags
    assert plot.label({"method": "vi_hn", "hn": False, "variant": "vi_hn-vi"}, "x") == "vi_hn-vi"
    assert plot.label({"method": "vi_hn", "hn": False}, "x") == "vi_hn-vi"
    assert plot.label({"method": "vi_hn", "hn": True}, "x") == "vi_hn"
    assert plot.label({"method": "rnn_hn", "hyper_init": "kaiming"}, "x") == "rnn_hn-kaiming"
    assert plot.label({"method": "ti_pp_hn", "target": "weights"}, "x") == "ti_pp_hn-bi_pp_hn"
    assert plot.label({"method": "ti", "naive": True}, "x") == "ti-naive"
    assert plot.label({"method": "rnn_hn", "precision": "bf16"}, "x") == "rnn_hn-bf16"  # never pooled with fp32
    assert plot.label({"method": "rnn_hn", "precision": "fp32"}, "x") == "rnn_hn"
    assert plot.label({}, "runs/gridworld__rnn_s__3__17") == "rnn_s"  # configs older than the "method" key
    assert [plot.display(m) for m in ("vi_hn-vi", "ti-naive", "ti_pp_hn-ti_hn", "rnn_hn-bf16")] == \
        ["VI", "TI Naive", "TI+HN", "RNN+HN bf16"]


def test_each_method_has_its_own_colour_and_line_in_every_figure(tmp_path):
    # one look per method, whatever else a figure holds, and legends in the README's names
    import matplotlib

    matplotlib.use("Agg")
    looks = {m: tuple(plot.STYLE[m]) for m in plot.NAMES}
    assert len(set(c for c, _ in looks.values())) == len(plot.NAMES) >= 12  # every method its own colour
    drawn = {}
    for methods in (("rnn", "rnn_hn-kaiming", "ti-naive"), ("ti-naive", "vi_hn-vi", "rnn")):
        folder = tmp_path / "-".join(methods)
        for m in methods:
            write_run(folder, m, 1e-3, 5, slope=1.0, name=f"gridworld__{m}__lr0.001__s5")
            cfg = json.loads((folder / f"gridworld__{m}__lr0.001__s5" / "config.json").read_text())
            json.dump(cfg | {"method": m.split("-")[0], "variant": m}, open(folder / f"gridworld__{m}__lr0.001__s5" / "config.json", "w"))
        real = matplotlib.axes.Axes.plot

        def recording(ax, *a, **kw):
            drawn.setdefault(kw.get("label", "").split(" (")[0], set()).add((kw.get("color"), kw.get("ls")))
            return real(ax, *a, **kw)

        matplotlib.axes.Axes.plot = recording
        try:
            plot.main([str(folder), "--out", str(folder / "figs"), "--bayes", str(tmp_path / "none.json")])
        finally:
            matplotlib.axes.Axes.plot = real
    for m in ("rnn", "rnn_hn-kaiming", "ti-naive", "vi_hn-vi"):
        assert drawn[plot.display(m)] == {looks[m]}, m  # the same look in both figures, under the README's name
    assert "ti-naive" not in drawn and "TI Naive" in drawn


def test_methods_filter_order_and_prefix(tmp_path):
    for method in ("rnn", "rnn_s", "rnn_hn"):
        write_run(tmp_path, method, 1e-3, 5, slope=1.0)
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs"), "--methods", "rnn_hn,rnn", "--prefix", "fig9_"])
    table = (tmp_path / "figs" / "fig9_summary.md").read_text().splitlines()
    assert [line.split(" | ")[1] for line in table[2:4]] == ["RNN+HN", "RNN"]  # --methods' order, rnn_s left out
    assert "RNN+S" not in "".join(table)
    assert all((tmp_path / "figs" / f"fig9_{n}.png").exists() for n in ("returns", "grad_norm", "adaptation"))
    with pytest.raises(SystemExit):
        plot.main([str(tmp_path), "--out", str(tmp_path / "figs"), "--methods", "vi"])


def test_methods_names_a_method_without_runs(tmp_path, capsys):
    for method in ("rnn", "ti"):
        write_run(tmp_path, method, 1e-3, 5, slope=1.0)
    with pytest.raises(SystemExit):  # "ti_naive" for "ti-naive" must not quietly draw a figure without it
        plot.main([str(tmp_path), "--out", str(tmp_path / "figs"), "--methods", "rnn,ti_naive"])
    err = capsys.readouterr().err
    assert "ti_naive" in err and "rnn, ti" in err and "Traceback" not in err
    assert not (tmp_path / "figs" / "returns.png").exists()


def test_efficiency_gradient_and_hours_table(tmp_path):
    for seed, hours in ((73, 1.0), (20, 2.0)):
        # return 0..19 + seed offset, norm 1 then 3, time to `hours`
        rows = [f"{i + 1},{(i + 1) * 960},{i + seed % 2},{1.0 if i < 10 else 3.0},{hours * 3600 * (i + 1) / 20}"
                for i in range(20)]
        fake_run(tmp_path, f"gridworld__rnn__bias__lr0.001__s{seed}",
                 {"env": "gridworld", "method": "rnn", "lr": 1e-3, "seed": seed},
                 "update,global_step,return,latent_grad_norm,time", rows)
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs"), "--bayes", str(tmp_path / "none.json")])
    table = (tmp_path / "figs" / "summary.md").read_text()
    # whole-curve means 9.5 (seed 20) and 10.5 (seed 73): resample means 9.5, 10, 10, 10.5 -> CI [9.50, 10.50];
    # the first 10% (2 of 20 updates) has norm 1, the last 10% norm 3; hours 1 and 2 -> 1.5 per seed, 3 in all
    assert "| gridworld | RNN | 0.001 | 2 | 10.00 [9.50, 10.50] | 1.00 [1.00, 1.00] | 3.00 [3.00, 3.00] | 1.50 |" in table
    assert "Training time of the 2 finished runs above: 3.0 core-hours" in table
    # one row per run, by seed: whole-curve 9.5 / 10.5, final (last 2 updates) 18.5 / 19.5, hours 2 / 1
    assert "| gridworld | RNN | 0.001 | 20 | 1.92e+04 | 9.50 | 18.50 |  |  | 2.00 | ../gridworld__rnn__bias__lr0.001__s20 |" in table
    assert "| gridworld | RNN | 0.001 | 73 | 1.92e+04 | 10.50 | 19.50 |  |  | 1.00 | ../gridworld__rnn__bias__lr0.001__s73 |" in table


def test_every_run_row_shows_its_greedy_parts(tmp_path):
    # Cheetah-Dir's one episode is the total, so only the directions show; Walker's two episodes both show.
    for env, ev in (("cheetah-dir", {"return": 900.0, "return_per_episode": [900.0],
                                     "return_per_direction": {"+1": 600.0, "-1": 1200.0}}),
                    ("walker", {"return": 500.0, "return_per_episode": [240.0, 260.0]})):
        write_run(tmp_path, "rnn_hn", 1e-3, 3, slope=1.0, name=f"{env}__rnn_hn__lr0.001__s3")
        folder = tmp_path / f"{env}__rnn_hn__lr0.001__s3"
        cfg = json.load(open(folder / "config.json"))
        json.dump(cfg | {"env": env}, open(folder / "config.json", "w"))
        (folder / "eval.json").write_text(json.dumps(ev))
    plot.main([str(tmp_path), "--out", str(tmp_path), "--bayes", str(tmp_path / "none.json")])
    rows = [r for r in (tmp_path / "summary.md").read_text().splitlines() if r.endswith("__s3 |")]
    assert rows[0].split(" | ")[7:9] == ["900.00", "direction +1 600.00; direction -1 1200.00"]
    assert rows[1].split(" | ")[7:9] == ["500.00", "episode 1 240.00; episode 2 260.00"]


def test_frames_cuts_a_longer_run_to_the_shorter_one(tmp_path):
    # A 50-update run cut at 20 updates' frames is a finished 20-update run of the same seed, without the
    # greedy eval of its final policy; an unfinished run that got past the cut counts as finished there.
    write_run(tmp_path / "short", "rnn", 1e-3, 73, slope=1.0, updates=20)
    write_run(tmp_path / "long", "rnn", 1e-3, 73, slope=1.0, updates=50)
    write_run(tmp_path / "live", "rnn", 1e-3, 20, slope=1.0, updates=30, done=False)
    (tmp_path / "long" / "gridworld__rnn__bias__lr0.001__s73" / "eval.json").write_text(json.dumps({"return": 9.0}))
    short, = plot.load_runs([str(tmp_path / "short")])
    long, = plot.load_runs([str(tmp_path / "long")], frames=20 * 960)
    assert np.array_equal(long["return"], short["return"]) and np.array_equal(long["step"], short["step"])
    assert long["greedy"] is None and plot.load_runs([str(tmp_path / "long")])[0]["greedy"] == 9.0
    assert [r["seed"] for r in plot.load_runs([str(tmp_path / "live")], finished=True, frames=20 * 960)] == [20]
    assert plot.load_runs([str(tmp_path / "live")], finished=True, frames=40 * 960) == []


def test_seeds_of_different_lengths_are_flagged(tmp_path, capsys):
    # One seed extended to 50 updates beside two at 20: the pooled final is not one budget's, so the table says so.
    write_run(tmp_path, "rnn", 1e-3, 3, slope=1.0, updates=50)
    for seed in (20, 73):
        write_run(tmp_path, "rnn", 1e-3, seed, slope=1.0, updates=20)
    plot.main([str(tmp_path), "--out", str(tmp_path), "--bayes", str(tmp_path / "none.json")])
    assert "| 3 | 1.92e+04 to 4.8e+04 (mixed) |" in (tmp_path / "summary.md").read_text()
    assert "runs of 1.92e+04 to 4.8e+04 frames pooled" in capsys.readouterr().err
    plot.main([str(tmp_path), "--out", str(tmp_path), "--bayes", str(tmp_path / "none.json"), "--frames", "19200"])
    assert "| 3 | 1.92e+04 |" in (tmp_path / "summary.md").read_text()


def test_pre_training_updates_are_left_out_of_curves_scores_and_the_lr_rule(tmp_path):
    # TI's multi-task pre-training is told the task: its high returns must not count as meta-RL. Here the lr
    # whose pre-training scores 100 would win if counted; after it, 1e-3's meta-training is the better.
    import subprocess
    import sys

    for lr, pre, after in ((1e-3, 0.0, 2.0), (3e-4, 100.0, 1.0)):
        rows = [f"{u},{u * 960},{pre if u <= 5 else after},{pre if u <= 5 else after},{0 if u <= 5 else 1},{int(u <= 5)}"
                for u in range(1, 21)]
        folder = fake_run(tmp_path, f"gridworld__ti__lr{lr:g}__s73", {"env": "gridworld", "method": "ti", "lr": lr, "seed": 73},
                          "update,global_step,return,return_ep1,latent_grad_norm,pretraining", rows, json.dumps({"updates": 20}))
        (folder / "checkpoint.pt").write_text("")
    runs = plot.load_runs([str(tmp_path)])
    assert plot.best_lr(runs) == {("gridworld", "ti"): 1e-3}
    assert all(np.isnan(r["return"][:5]).all() and np.isnan(r["grad"][:5]).all() for r in runs)
    scores, _ = plot.lr_scores(runs)[("gridworld", "ti")]
    assert scores == {1e-3: [2.0], 3e-4: [1.0]}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # sweep.py's rule is the same
    p = subprocess.run([sys.executable, "sweep.py", "--scripts", "ti", "--envs", "gridworld", "--lrs", "best:1e-3,3e-4",
                        "--seeds", "73", "--out", str(tmp_path), "--no-gpu", "--dry-run"], cwd=root, capture_output=True,
                       text=True)
    assert p.stdout.splitlines()[0] == "--lrs best: gridworld ti at 0.001 (whole-curve mean return: 0.001 2.0, 0.0003 1.0)"


def test_a_folder_with_no_finished_run_is_one_line(tmp_path):
    import subprocess
    import sys

    write_run(tmp_path, "rnn", 1e-3, 5, slope=1.0, done=False)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = subprocess.run([sys.executable, "plot.py", str(tmp_path), "--out", str(tmp_path / "figs")], cwd=root,
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no finished run" in p.stderr, p.stderr


def test_ml10_success_curve_and_split_table(tmp_path):
    # ML10 runs log their training success; their eval.json holds each split's success fractions (evaluate.py)
    for seed, level in ((73, 0.2), (20, 0.4)):
        rows = [f"{u},{u * 4800},{u},{u / 2},{u / 2},{level * u / 20},1" for u in range(1, 21)]
        folder = fake_run(tmp_path, f"ml10__rnn_hn__lr0.0003__s{seed}",
                          {"env": "ml10", "method": "rnn_hn", "lr": 3e-4, "seed": seed},
                          "update,global_step,return,return_ep1,return_ep2,success,latent_grad_norm", rows)
        split = lambda x: {"success": x, "success_per_episode": [x] * 10}  # noqa: E731
        json.dump({"train": split(level), "test": split(level / 2)}, open(folder / "eval.json", "w"))
    plot.main([str(tmp_path), "--out", str(tmp_path / "figs"), "--bayes", str(tmp_path / "none.json")])
    table = (tmp_path / "figs" / "summary.md").read_text()
    assert (tmp_path / "figs" / "success.png").exists()
    assert "| ml10 | RNN+HN | 0.0003 | 2 | test | 0.15 [0.10, 0.20] | 0.15 [0.10, 0.20] |" in table
    assert "| ml10 | RNN+HN | 0.0003 | 2 | train | 0.30 [0.20, 0.40] |" in table
