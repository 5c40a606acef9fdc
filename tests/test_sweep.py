"""The launcher on a tiny grid: one run fails on purpose, the other finishes; reruns skip and resume."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sweep(*argv):
    return subprocess.run([sys.executable, "sweep.py", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_one_failing_run_does_not_stop_the_other(tmp_path):
    out = str(tmp_path / "sw")
    # lr -1 is rejected by the script (exit 2): a deliberately failing run
    common = ["--scripts", "rnn_hn", "--envs", "gridworld", "--lrs", "1e-3,-1", "--seeds", "3", "--out", out,
              "--no-gpu", "--workers", "2", "--extra", "--total-timesteps 1920"]
    p = sweep(*common)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "| gridworld__rnn_hn__lr0.001__s3 | done |" in p.stdout
    assert "| gridworld__rnn_hn__lr-1__s3 | FAILED (exit 2): " in p.stdout and "--lr must be > 0" in p.stdout
    assert os.path.exists(os.path.join(out, "gridworld__rnn_hn__lr0.001__s3", "progress.csv"))
    p = sweep(*common)  # the finished run is skipped, the failing one tried again
    assert "| gridworld__rnn_hn__lr0.001__s3 | done (skipped) |" in p.stdout


def test_interrupted_run_is_resumed(tmp_path):
    out = str(tmp_path / "sw")
    base = ["--scripts", "rnn", "--envs", "gridworld", "--lrs", "1e-3", "--seeds", "20", "--out", out, "--no-gpu"]
    p = sweep(*base, "--extra", "--total-timesteps 3840 --save-every 2 --stop-after 2")
    assert "stopped early" in p.stdout, p.stdout + p.stderr
    p = sweep(*base, "--extra", "--total-timesteps 3840")
    assert "(resume)" in p.stdout and "| gridworld__rnn__lr0.001__s20 | done |" in p.stdout, p.stdout + p.stderr
    log = open(os.path.join(out, "gridworld__rnn__lr0.001__s20.log")).read()
    assert "resuming" in log and "update 4/4" in log
    # the same folders asked for with other settings: the sweep says so and starts nothing
    p = sweep(*base, "--extra", "--total-timesteps 3840 --ent-coef 0.5")
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stdout + p.stderr
    assert "holds a run with ent_coef=0.1, this sweep asks ent_coef=0.5" in p.stderr and "start" not in p.stdout


def test_slurm_script_and_bad_input(tmp_path):
    target = tmp_path / "sweep.sbatch"
    p = sweep("--scripts", "rnn,rnn_hn", "--lrs", "1e-3,3e-4", "--seeds", "73,20,3", "--out", str(tmp_path),
              "--slurm", str(target))
    assert p.returncode == 0, p.stderr
    text = target.read_text()
    assert "#SBATCH --array=0-11" in text and "--index $SLURM_ARRAY_TASK_ID" in text and "--slurm" not in text
    p = sweep("--envs", "nope")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "choose from: gridworld" in p.stderr


def test_extra_that_is_a_single_flag():
    # The README's TI Naive command: argparse alone reads "--naive" as a flag of its own and stops
    import sweep as sw

    args = sw.parse_args(["--scripts", "ti", "--extra", "--naive", "--tag", "naive"])
    assert args.extra == "--naive" and args.tag == "naive" and args.scripts == ["ti"]
    assert sw.parse_args(["--extra", "--hyper-init kaiming"]).extra == "--hyper-init kaiming"
