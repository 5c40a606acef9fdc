"""The launcher on a tiny grid: one run fails on purpose, the other finishes; reruns skip and resume."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sweep(*argv):
    """sweep.py run in this process (a subprocess cost 2 s of start-up each; its runs are subprocesses anyway):
    its exit status, stdout and stderr as a shell would see them."""
    import sweep as sw

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = sw.main(list(argv))
        except SystemExit as stop:  # argparse (2) or sys.exit("message") (1)
            code = stop.code
    if isinstance(code, str):
        err.write(code + "\n")
        code = 1
    return types.SimpleNamespace(returncode=code or 0, stdout=out.getvalue(), stderr=err.getvalue())


def test_one_failing_run_does_not_stop_the_other(tmp_path):
    out = str(tmp_path / "sw")
    common = ["--scripts", "rnn_hn", "--envs", "gridworld", "--lrs", "1e-3,3e-4", "--seeds", "3", "--out", out,
              "--no-gpu", "--workers", "2"]
    p = sweep(*common, "--extra", "--total-timesteps 1920 --save-every 1 --stop-after 1")
    assert p.stdout.count(" | stopped early |") == 2, p.stdout + p.stderr
    # a damaged checkpoint: that run's resume fails (exit 1), the other run goes on to the end
    with open(os.path.join(out, "gridworld__rnn_hn__lr0.0003__s3", "checkpoint.pt"), "w") as fh:
        fh.write("not a checkpoint")
    p = sweep(*common, "--extra", "--total-timesteps 1920")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "| gridworld__rnn_hn__lr0.001__s3 | done |" in p.stdout
    assert "| gridworld__rnn_hn__lr0.0003__s3 | FAILED (exit 1): " in p.stdout and "is damaged" in p.stdout
    p = sweep(*common, "--extra", "--total-timesteps 1920")  # the finished run is skipped, the failing one tried again
    assert "| gridworld__rnn_hn__lr0.001__s3 | done (skipped) |" in p.stdout and "FAILED (exit 1)" in p.stdout


def test_flags_the_scripts_refuse_stop_the_sweep_before_it_starts(tmp_path):
    # a typo in --extra, or a value a script refuses: one line, before any run starts or any folder is made
    out = tmp_path / "sw"
    common = ["--scripts", "rnn,rnn_hn.py", "--envs", "gridworld,walker", "--seeds", "3", "--out", str(out), "--no-gpu"]
    for extra, why in (("--hyper-int kaiming", "unrecognized arguments: --hyper-int kaiming"),
                       ("--num-envs 3", "--num-envs 3 does not split into gridworld's 4 minibatches")):
        p = sweep(*common, "--extra", extra)
        assert p.returncode == 1 and p.stderr.count("\n") == 1 and why in p.stderr, p.stdout + p.stderr
        assert "start" not in p.stdout and not out.exists()
    p = sweep(*common, "--lrs", "-1")
    assert p.returncode == 1 and "--lr must be a finite number > 0" in p.stderr and not out.exists()
    for bad, why in ((["--seeds", "1.5"], "--seeds 1.5: give integers"), (["--workers", "0"], "expected a whole number >= 1"),
                     (["--out", str(tmp_path / "file" / "sw")], "is a file, not a folder")):
        (tmp_path / "file").write_text("")
        p = sweep("--scripts", "rnn", "--no-gpu", *bad)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and why in p.stderr, p.stderr


def test_variant_names_are_the_folders(tmp_path):
    # the script's own variant name names the folders; --tag only adds to it
    common = ["--envs", "gridworld", "--lrs", "3e-4", "--seeds", "3", "--out", str(tmp_path), "--no-gpu", "--dry-run"]
    for scripts, extra, name in (("ti", "--naive", "ti-naive"), ("vi_hn", "--hn false", "vi_hn-vi"),
                                 ("ti_pp_hn", "--target weights", "ti_pp_hn-bi_pp_hn"),
                                 ("rnn_hn", "--hyper-init kaiming", "rnn_hn-kaiming")):
        p = sweep("--scripts", scripts, *common, "--extra", extra)
        assert p.returncode == 0 and f"gridworld__{name}__lr0.0003__s3 " in p.stdout, p.stdout + p.stderr
    p = sweep("--scripts", "ti", *common, "--extra", "--recon-coef 0", "--tag", "recon0")
    assert "gridworld__ti-recon0__lr0.0003__s3 " in p.stdout


def test_interrupted_run_is_resumed(tmp_path):
    out = str(tmp_path / "sw")
    base = ["--scripts", "rnn", "--envs", "gridworld", "--lrs", "1e-3", "--seeds", "20", "--out", out, "--no-gpu"]
    p = sweep(*base, "--extra", "--total-timesteps 3840 --save-every 2 --stop-after 2")
    assert "stopped early" in p.stdout, p.stdout + p.stderr
    p = sweep(*base, "--extra", "--total-timesteps 3840")
    assert "(resume)" in p.stdout and "| gridworld__rnn__lr0.001__s20 | done |" in p.stdout, p.stdout + p.stderr
    log = open(os.path.join(out, "gridworld__rnn__lr0.001__s20.log")).read()
    assert "resuming" in log and "update 4/4" in log
    # stopped before its first checkpoint (config.json, no checkpoint.pt): the sweep starts it over
    base2 = [a.replace("s20", "s21") if a != "20" else "21" for a in base]
    p = sweep(*base2, "--extra", "--total-timesteps 3840 --save-every 10 --stop-after 1")
    assert "stopped early" in p.stdout, p.stdout + p.stderr
    p = sweep(*base2, "--extra", "--total-timesteps 3840 --save-every 10")
    assert "| gridworld__rnn__lr0.001__s21 | done |" in p.stdout, p.stdout + p.stderr
    assert "starting it over" in open(os.path.join(out, "gridworld__rnn__lr0.001__s21.log")).read()
    # the same folders asked for with other settings: the sweep says so and starts nothing
    p = sweep(*base, "--extra", "--total-timesteps 3840 --ent-coef 0.5")
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stdout + p.stderr
    assert "holds a run with ent_coef=0.1, this sweep asks ent_coef=0.5" in p.stderr and "start" not in p.stdout
    # a setting its config.json holds as None (written by an older script's resume) is the env's value, as it ran
    cfg_path = os.path.join(out, "gridworld__rnn__lr0.001__s20", "config.json")
    cfg = json.load(open(cfg_path))
    for clip, ok in ((None, True), (5.0, False)):
        json.dump(cfg | {"reward_clip": clip}, open(cfg_path, "w"))
        p = sweep(*base, "--extra", "--total-timesteps 3840")
        assert (p.returncode == 0 and "| gridworld__rnn__lr0.001__s20 | done (skipped) |" in p.stdout) == ok, p.stdout + p.stderr
        assert ok or "holds a run with reward_clip=5.0, this sweep asks reward_clip=10.0" in p.stderr


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


def test_placement_on_a_fake_gpu_list(tmp_path):
    # two GPUs, two runs each: the fast path on each, round-robin; without GPUs one CPU run per core
    common = ["--scripts", "rnn_hn", "--envs", "gridworld,walker", "--lrs", "3e-4", "--seeds", "73,20",
              "--out", str(tmp_path), "--dry-run"]
    p = sweep(*common, "--gpus", "0,1", "--per-gpu", "2")
    lines = p.stdout.strip().splitlines()
    assert p.returncode == 0 and [l.split(":")[0] for l in lines] == ["GPU 0", "GPU 0", "GPU 1", "GPU 1"], p.stdout
    assert all("--cuda --cudagraphs --threads 1 --async-envs false" in l for l in lines)
    p = sweep(*common, "--no-gpu")
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 4 and all(l.startswith("CPU: ") and l.endswith("--threads 1") for l in lines)
    assert not any(os.scandir(tmp_path)), "a dry run starts nothing"


def test_runs_per_gpu_and_subprocess_envs_follow_the_measurements(monkeypatch):
    import sweep as sw

    monkeypatch.setattr(sw.os, "sched_getaffinity", lambda pid: set(range(16)))
    args = sw.parse_args(["--gpus", "0"])
    assert sw.placement(args, ["0"], mps=True) == (["0"] * 8, False)  # MPS: 8 runs share it; 2 cores each
    assert sw.placement(args, ["0"], mps=False) == (["0"], True)  # alone: its 16 envs get subprocesses
    assert sw.placement(sw.parse_args(["--no-gpu"]), [], mps=False) == ([None] * 16, False)


def test_a_long_run_continues_its_pilot_and_leaves_it_as_it_was(tmp_path):
    # MuJoCo: --lrs best reads the pilots in their own folder; the long run at the picked rate starts from its
    # pilot's final checkpoint instead of training those frames again
    import csv

    base = ["--scripts", "rnn", "--envs", "gridworld", "--seeds", "20", "--no-gpu", "--workers", "1"]
    pilots, out = str(tmp_path / "pilots"), str(tmp_path / "long")
    assert sweep(*base, "--lrs", "1e-3", "--out", pilots, "--extra", "--total-timesteps 960", "--evaluate").returncode == 0
    pilot = os.path.join(pilots, "gridworld__rnn__lr0.001__s20")
    before = {f: open(os.path.join(pilot, f), "rb").read() for f in ("progress.csv", "summary.json", "eval.json")}
    p = sweep(*base, "--lrs", "best:1e-3", "--pilots", pilots, "--out", out, "--extra", "--total-timesteps 1920")
    assert f"continues its pilot {pilot}" in p.stdout and "(extend)" in p.stdout, p.stdout + p.stderr
    assert {f: open(os.path.join(pilot, f), "rb").read() for f in before} == before
    rows = [list(csv.DictReader(open(os.path.join(d, "gridworld__rnn__lr0.001__s20", "progress.csv")))) for d in (pilots, out)]
    assert [r["update"] for r in rows[1]] == ["1", "2"] and rows[1][0] == rows[0][0]
    assert not os.path.exists(os.path.join(out, "gridworld__rnn__lr0.001__s20", "eval.json"))


def test_a_finished_run_asked_for_more_frames_is_extended_into_the_longer_run(tmp_path):
    # MuJoCo's pilots are extended this way; without lr annealing the extension is the run it would have been
    import csv

    base = ["--scripts", "rnn", "--envs", "gridworld", "--lrs", "1e-3", "--seeds", "20", "--no-gpu", "--workers", "1"]
    out = str(tmp_path / "sw")
    assert sweep(*base, "--out", out, "--extra", "--total-timesteps 960").returncode == 0
    # --evaluate: the greedy evaluation follows in the same slot, of the final policy
    p = sweep(*base, "--out", out, "--extra", "--total-timesteps 1920", "--evaluate")
    assert "(extend)" in p.stdout and "| gridworld__rnn__lr0.001__s20 | done, evaluated |" in p.stdout, p.stdout + p.stderr
    run = os.path.join(out, "gridworld__rnn__lr0.001__s20")
    assert json.load(open(os.path.join(run, "eval.json")))["train_update"] == 2
    assert "done (skipped)" in sweep(*base, "--out", out, "--extra", "--total-timesteps 1920", "--evaluate").stdout
    os.remove(os.path.join(run, "eval.json"))  # a finished run without its evaluation gets it, and nothing else
    p = sweep(*base, "--out", out, "--extra", "--total-timesteps 1920", "--evaluate", "--dry-run")
    assert p.stdout.strip() == f"CPU: {sys.executable} {os.path.join(ROOT, 'evaluate.py')} {run}", p.stdout
    assert sweep(*base, "--out", str(tmp_path / "long"), "--extra", "--total-timesteps 1920").returncode == 0
    rows = [[{k: v for k, v in r.items() if k not in ("sps", "time")}
             for r in csv.DictReader(open(os.path.join(d, "gridworld__rnn__lr0.001__s20", "progress.csv")))]
            for d in (out, str(tmp_path / "long"))]
    assert len(rows[0]) == 2 and rows[0] == rows[1]
    # checkpoints are not committed: a finished run without one cannot be extended and must not pass as done
    os.remove(os.path.join(out, "gridworld__rnn__lr0.001__s20", "checkpoint.pt"))
    p = sweep(*base, "--out", out, "--extra", "--total-timesteps 2880")
    assert p.returncode != 0 and "not extended, its checkpoint.pt is gone" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_the_sweep_and_the_runs_save(tmp_path, presses):
    out = str(tmp_path / "sw")
    cmd = [sys.executable, "sweep.py", "--scripts", "rnn", "--envs", "gridworld", "--lrs", "1e-3,3e-4", "--seeds", "3",
           "--out", out, "--no-gpu", "--workers", "1", "--extra", "--total-timesteps 4000000 --log-every 1"]
    # Its own process group, like a terminal's, and SIGINT ignored as a shell starts `sweep.py &`: it must still stop.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    log = os.path.join(out, "gridworld__rnn__lr0.001__s3.log")
    deadline = time.time() + 120
    while time.time() < deadline and not (os.path.exists(log) and "update 2/" in open(log).read()):
        time.sleep(0.2)
    for _ in range(presses):  # what Ctrl-C in a terminal does; pressed twice, the run quits without saving
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted: 1 run(s) stopped" in stdout and "Traceback" not in stderr, stdout + stderr
    assert presses == 2 or os.path.exists(os.path.join(out, "gridworld__rnn__lr0.001__s3", "checkpoint.pt"))
    assert not os.path.exists(os.path.join(out, "gridworld__rnn__lr0.0003__s3"))  # the next run never started


def test_lrs_best_picks_by_the_pilots_whole_curves_and_ignores_what_came_after(tmp_path):
    out = tmp_path / "sw"

    def pilot(name, returns):  # a finished run as sweep.py sees one (a dry run reads no checkpoint)
        (out / name).mkdir(parents=True)
        (out / name / "checkpoint.pt").write_text("")
        (out / name / "summary.json").write_text(json.dumps({"updates": len(returns)}))
        (out / name / "progress.csv").write_text("update,return\n" + "".join(f"{i},{r}\n" for i, r in enumerate(returns)))

    pilot("gridworld__rnn__lr0.001__s73", [1] * 4 + [100] * 4)  # extended after its pilot: the later part must not count
    pilot("gridworld__rnn__lr0.0003__s73", [2] * 4)
    pilot("gridworld__rnn__lr0.0003__s20", [0] * 4)  # a seed run at the pick afterwards: not at every lr, not counted
    pilot("gridworld__rnn_s__lr0.001__s73", [5] * 4)  # rnn_s's 3e-4 pilot is not finished
    common = ["--scripts", "rnn,rnn_s", "--envs", "gridworld", "--lrs", "best:1e-3,3e-4", "--seeds", "73,20,3",
              "--out", str(out), "--no-gpu", "--dry-run", "--extra", "--total-timesteps 1e6"]
    p = sweep(*common)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "--lrs best: gridworld rnn at 0.0003 (whole-curve mean return: 0.001 1.0, 0.0003 2.0)"
    assert lines[1].startswith("--lrs best: gridworld rnn_s left out: no finished run") and "lr0.0003__s*" in lines[1]
    assert [l.split("--resume ")[-1].split("--run-dir ")[-1].split()[0] for l in lines[2:]] == [
        str(out / f"gridworld__rnn__lr0.0003__s{seed}") for seed in (73, 20, 3)]  # seed by seed
    assert sweep(*common[:-2], "--slurm", str(tmp_path / "x.sbatch")).returncode == 2  # picks need finished pilots
    # Pilots in a folder of their own: the pick is theirs, the runs go to --out and start from update 0
    long = tmp_path / "long"
    p = sweep(*[str(long) if a == str(out) else a for a in common], "--pilots", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == lines[0]
    assert [l.split("--run-dir ")[1].split()[0] for l in p.stdout.strip().splitlines()[2:]] == [
        str(long / f"gridworld__rnn__lr0.0003__s{seed}") for seed in (73, 20, 3)]
    for bad in (["--pilots", str(tmp_path / "nowhere")], ["--lrs", "1e-3", "--pilots", str(out)]):
        p = sweep(*common, *bad)
        assert p.returncode == 2 and "--pilots" in p.stderr and "Traceback" not in p.stderr
    # Without best: every lr, seed by seed (every method's seed 73 first)
    p = sweep("--scripts", "rnn,rnn_s", "--envs", "gridworld", "--lrs", "1e-3", "--seeds", "73,20", "--out",
              str(tmp_path / "o"), "--no-gpu", "--dry-run")
    assert [l.split("--seed ")[1].split()[0] + l.split("--run-dir ")[1].split("__")[1] for l in p.stdout.splitlines()] == [
        "73rnn", "73rnn_s", "20rnn", "20rnn_s"]
