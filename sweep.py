"""Launcher: a grid of script x env x learning rate x seed, spread over GPUs or CPU cores.

    python sweep.py --scripts rnn,rnn_s,rnn_hn --envs gridworld --lrs 1e-3,3e-4 --seeds 73,20,3 \
        --out results/gridworld
    python sweep.py ... --extra "--hyper-init kaiming"   # a variant: its own folders (rnn_hn-kaiming)
    python sweep.py ... --slurm sweep.sbatch             # write a Slurm job array instead
    python sweep.py ... --lrs best:1e-3,3e-4,1e-4 --seeds 73,20,3 \
        --pilots results/pilots --extra "--total-timesteps 1e7"         # each method at its pilots' best lr

Each run lives in `<out>/<env>__<name>__lr<lr>__s<seed>/`, where <name> is the variant's (the script's
`run_name`: rnn_hn, rnn_hn-kaiming, vi_hn-vi, ti-naive, ...), then `-<tag>` if --tag is given. Every grid
entry's flags are parsed by its script's own parser before anything starts: a typo in --extra is one line,
not a failed grid. A run with summary.json is done and
skipped, unless the sweep asks for more frames (a larger `--total-timesteps` in --extra): then it is extended
from its final checkpoint; where that checkpoint is gone (checkpoints are not committed) it cannot be, and the
sweep says so and leaves it as it is (running it again from update 0 would overwrite the record `--lrs best`
reads, and on another CPU model would not repeat its updates); one with checkpoint.pt is resumed
(`--resume`); a crashing run is reported and the others go on. `--evaluate` plays the greedy evaluation of
`evaluate.py` (eval.json) on each run as soon as it finishes, in the same slot, and on finished runs that lack
it: the checkpoint it needs is not committed, so a run left unevaluated until its checkpoint is lost stays so.
A folder that already holds a run made with other settings (another --extra) stops the sweep before it
starts anything: its results would be reused or continued under the wrong name.
With GPUs, runs go round-robin to them with the fast path (CUDA_VISIBLE_DEVICES, `--cuda --cudagraphs`), 8
at a time on each under CUDA MPS, which the sweep starts when the machine has it, else 1 (measured in
results/gpu/README.md: 8 runs sharing a GPU without MPS go no faster than one); each run's envs step in
subprocesses when the cores allow 4 per run. Without GPUs, one run per CPU core with one torch thread each.
`--dry-run` prints where each run would go. A summary table is printed at the end.
Runs start seed by seed (every method's seed 73, then seed 20, ...), so partial results compare every method.

`--lrs best:A,B,C` applies the paper's rule to pilots already in --pilots (default --out; a folder of their
own keeps the pilots that made the pick apart from the long runs): per env and method, the candidate
lr with the highest mean training return over the whole curve (from the first meta-training update: the TI
methods' multi-task pre-training is told the task), averaged over seeds. Only seeds finished at
every candidate count, and every curve is cut to the updates all of them have, so that extending the
winner or adding seeds at it never changes the pick. An env and method whose pilots are not all finished
is left out, with a line saying which run is missing. A run new to --out whose pilot (the same name in
--pilots) finished with its checkpoint starts as a copy of the pilot and is extended from it: with no lr
annealing (MuJoCo) the long run is the run the pilot would have become.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import importlib
import io
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

SCRIPTS = ("rnn", "rnn_s", "rnn_hn", "ti", "ti_pp_hn", "vi_hn")
HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.error = lambda msg: p.exit(2, f"{p.prog}: error: {msg}\n")
    p.add_argument("--scripts", default="rnn,rnn_s,rnn_hn", help="comma-separated method scripts (rnn or rnn.py)")
    p.add_argument("--envs", default="gridworld", help="comma-separated env names")
    p.add_argument("--lrs", default="1e-3,3e-4", help="comma-separated learning rates, or best:A,B,... (each env "
                   "and method at the best of these by its finished pilots in --pilots)")
    p.add_argument("--pilots", default=None, help="folder of the pilots that --lrs best reads; None: --out")
    p.add_argument("--seeds", default="73,20,3", help="comma-separated seeds")
    p.add_argument("--out", default="runs/sweep", help="folder of the run folders (results/ holds the committed ones)")
    p.add_argument("--extra", default="", help="extra flags for every run, e.g. '--hyper-init kaiming'")
    p.add_argument("--tag", default="", help="suffix of the variant's name in folder names (for --extra ablations that "
                   "the script's own variant name does not tell, e.g. --recon-coef 0)")
    p.add_argument("--workers", type=_positive, default=None, help="parallel runs; None: GPUs x per-gpu, or CPU cores")
    p.add_argument("--per-gpu", type=_positive, default=None, help="runs at a time on each GPU; None: 8 under CUDA MPS, "
                   "else 1")
    p.add_argument("--gpus", default=None, help="GPU ids to use, comma-separated; None: every GPU torch sees")
    p.add_argument("--no-gpu", action="store_true", help="ignore GPUs")
    p.add_argument("--dry-run", action="store_true", help="print where each run would go and its command; start nothing")
    p.add_argument("--evaluate", action="store_true", help="evaluate.py (greedy return, eval.json) on each run as it finishes")
    p.add_argument("--slurm", default=None, help="write a Slurm job-array script here instead of running")
    p.add_argument("--time", default="3-00:00:00", help="--slurm: each array task's time limit")
    p.add_argument("--index", type=int, default=None, help="run only this grid entry (used by the Slurm array)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--extra" in argv[:-1]:  # argparse reads a lone flag value ("--extra --naive") as a flag of its own
        i = argv.index("--extra")
        argv[i:i + 2] = [f"--extra={argv[i + 1]}"]
    args = p.parse_args(argv)
    args.argv = argv  # the Slurm script repeats them
    args.scripts = [s.removesuffix(".py") for s in args.scripts.split(",")]
    bad = [s for s in args.scripts if s not in SCRIPTS]
    if bad:
        p.error(f"unknown script {bad[0]!r}; choose from: {', '.join(SCRIPTS)}")
    missing = [s for s in args.scripts if not os.path.exists(os.path.join(HERE, f"{s}.py"))]
    if missing:
        p.error(f"{missing[0]}.py is not in this checkout yet")
    import envs

    args.envs = args.envs.split(",")
    for e in args.envs:
        if e not in envs.ENVS:
            p.error(f"unknown env {e!r}; choose from: {', '.join(envs.ENVS)}")
    args.best = args.lrs.startswith("best:")
    try:
        args.lrs = [float(x) for x in args.lrs.removeprefix("best:").split(",")]
    except ValueError:
        p.error(f"--lrs {args.lrs}: give numbers, or best:numbers, comma-separated, like 1e-3,3e-4")
    try:
        args.seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds {args.seeds}: give integers, comma-separated, like 73,20,3")
    if not_a_folder(args.out):
        p.error(f"--out {args.out}: {not_a_folder(args.out)} is a file, not a folder; choose another")
    if args.best and args.slurm:
        p.error("--lrs best picks from finished pilots; write the Slurm script with the picked --lrs instead")
    if args.pilots is not None and not args.best:
        p.error("--pilots goes with --lrs best:A,B,...")
    if args.pilots is not None and not os.path.isdir(args.pilots):
        p.error(f"--pilots {args.pilots} is not a folder")
    args.pilots = args.out if args.pilots is None else args.pilots
    return args


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r} (leave the flag out for the default)")
    return value


def not_a_folder(path):
    """The first existing part of `path` that is not a folder (no folder can be made there), or None."""
    p = os.path.abspath(path)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return None if os.path.isdir(p) else p


def best_lr(out: str, env: str, method: str, lrs):
    """(the pilots' best lr, {lr: score}) by the rule in the module docstring, or (None, what is missing)."""
    curves = {}
    for lr in lrs:
        prefix = f"{env}__{method}__lr{lr:g}__s"
        curves[lr] = {}
        for name in sorted(os.listdir(out)) if os.path.isdir(out) else []:
            d = os.path.join(out, name)
            if re.fullmatch(re.escape(prefix) + r"\d+", name) and all(
                    os.path.exists(os.path.join(d, f)) for f in ("summary.json", "progress.csv")):
                with open(os.path.join(d, "progress.csv")) as fh:  # (None: no meta-RL return in that update)
                    curves[lr][name[len(prefix):]] = [meta_rl_return(r) for r in csv.DictReader(fh)]
        if not curves[lr]:
            return None, f"no finished run {os.path.join(out, prefix)}* yet"
    seeds = set.intersection(*(set(c) for c in curves.values()))
    if not seeds:
        return None, "no seed finished at every candidate lr yet"
    n = min(len(c[seed]) for c in curves.values() for seed in seeds)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("-inf")  # noqa: E731
    score = {lr: sum(mean([x for x in c[seed][:n] if x is not None]) for seed in seeds) / len(seeds)
             for lr, c in curves.items()}
    return max(lrs, key=score.get), score


def meta_rl_return(row):
    """The training return of a progress.csv row, or None where there is none or it is not a meta-RL return: the
    multi-task pre-training of the TI methods is told the task (plot.py leaves those updates out too)."""
    return float(row["return"]) if row["return"] and row.get("pretraining") not in ("1", "1.0") else None


def script_args(script, argv, where):
    """The script's own Args for these flags; its one-line refusal ends the sweep before any run starts."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return importlib.import_module(script).parse_args(argv)
    except SystemExit:
        refusal = (err.getvalue().strip().splitlines() or ["?"])[-1].split("error: ", 1)[-1]
        sys.exit(f"sweep.py: {script}.py refuses {where}: {refusal}")


def grid(args):
    # Each env and script's variant name (the script's run_name, then --tag): the method in folder names. Parsing
    # every grid entry's flags here, with the script's own parser, stops a typo before anything starts.
    tag = "-" + args.tag if args.tag else ""
    names = {}
    for env, script in itertools.product(args.envs, args.scripts):
        probe = {"env": env, "lr": args.lrs[0], "seed": args.seeds[0]}
        names[(env, script)] = importlib.import_module(script).run_name(
            script_args(script, settings(probe, args), f"--extra {args.extra!r} on {env}")) + tag
    lrs = {(env, script): args.lrs for env in args.envs for script in args.scripts}
    for env, script in list(lrs) if args.best else []:
        lr, score = best_lr(args.pilots, env, names[(env, script)], args.lrs)
        if lr is None:
            print(f"--lrs best: {env} {names[(env, script)]} left out: {score}")
            del lrs[(env, script)]
        else:
            print(f"--lrs best: {env} {names[(env, script)]} at {lr:g} (whole-curve mean return: "
                  f"{', '.join(f'{k:g} {v:.1f}' for k, v in score.items())})")
            lrs[(env, script)] = [lr]
    runs = []
    for seed, script, env in itertools.product(args.seeds, args.scripts, args.envs):
        for lr in lrs.get((env, script), []):
            run = {"script": script, "env": env, "lr": lr, "seed": seed,
                   "dir": os.path.join(args.out, f"{env}__{names[(env, script)]}__lr{lr:g}__s{seed}")}
            wanted = script_args(script, settings(run, args), f"lr {lr:g}, seed {seed} on {env}")
            run["frames"], run["updates"] = wanted.total_timesteps, max(1, wanted.total_timesteps // (
                wanted.num_envs * wanted.num_steps))
            runs.append(run)
    return runs


def status(run):
    """new, resume (started, unfinished), extend (finished with fewer updates than asked: resumed with the
    larger --total-timesteps; the lr is constant on MuJoCo, so the longer run is the run it would have been),
    stuck (as extend, but its checkpoint is gone, so it cannot be) or done."""
    summary = os.path.join(run["dir"], "summary.json")
    if os.path.exists(summary):
        with open(summary) as fh:
            if json.load(fh).get("updates", 0) >= run["updates"]:
                return "done"
        return "extend" if os.path.exists(os.path.join(run["dir"], "checkpoint.pt")) else "stuck"
    # A run stopped before its first checkpoint has config.json only: --resume starts it over.
    return "resume" if os.path.exists(os.path.join(run["dir"], "config.json")) else "new"


def settings(run, args):
    """The script's flags for this grid entry (the run folder and the hardware aside)."""
    return ["--env", run["env"], "--lr", f"{run['lr']:g}", "--seed", str(run["seed"]), *shlex.split(args.extra)]


# Config entries that may differ between a run folder and the sweep: where and how it runs, not what.
OPERATIONAL = {"run_dir", "resume", "stop_after", "threads", "cuda", "cudagraphs", "async_envs", "log_every",
               "save_every", "total_timesteps"}  # (a longer --total-timesteps extends a run)


def continue_pilot(run, args):
    """A new run whose namesake in --pilots finished with its checkpoint starts as a copy of it, to be extended
    (the pilots stay as they were): the pilot's frames are not trained again. The copy lands whole or not at all."""
    pilot = os.path.join(args.pilots, os.path.basename(run["dir"]))
    if os.path.abspath(args.pilots) == os.path.abspath(args.out) or status(run) != "new" or not all(
            os.path.exists(os.path.join(pilot, f)) for f in ("summary.json", "checkpoint.pt")):
        return
    problem = mismatch(dict(run, dir=pilot), args)
    if problem:
        print(f"{run['dir']}: starts from update 0, not from its pilot: {problem}", flush=True)
        return
    part = run["dir"] + ".part"
    shutil.rmtree(part, ignore_errors=True)
    shutil.copytree(pilot, part, ignore=shutil.ignore_patterns("eval.json"))  # the eval is of the pilot's policy
    if os.path.exists(pilot + ".log"):
        shutil.copyfile(pilot + ".log", part + ".log")
        os.replace(part + ".log", run["dir"] + ".log")
    os.replace(part, run["dir"])
    print(f"{run['dir']}: continues its pilot {pilot}", flush=True)


def mismatch(run, args):
    """None if the run folder is new or holds a run of these settings; else a one-line explanation."""
    path = os.path.join(run["dir"], "config.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        saved = json.load(fh)
    module = importlib.import_module(run["script"])
    wanted_args = module.parse_args(settings(run, args))
    for key, value in dataclasses.asdict(wanted_args).items():
        if key in OPERATIONAL or key not in saved:  # (a setting newer than the run is absent: it ran the default)
            continue
        ran = saved[key]
        if ran is None and key in module.PER_ENV:  # written by a resume older than the setting: it ran the env's value
            unset = dataclasses.replace(wanted_args, **{key: None})
            module.env_defaults(unset)
            ran = getattr(unset, key)
        if ran != value:
            return (f"{run['dir']} holds a run with {key}={saved[key]!r}, this sweep asks {key}={value!r}; "
                    f"use another --out or --tag, or delete that folder")
    return None


def command(run, args, gpu: bool, async_envs: bool = False):
    cmd = [sys.executable, os.path.join(HERE, f"{run['script']}.py")]
    if status(run) in ("resume", "extend"):  # its config.json holds the settings (checked by mismatch)
        cmd += ["--resume", run["dir"]] + (["--total-timesteps", str(run["frames"])] if run["frames"] else [])
    else:
        cmd += settings(run, args) + ["--run-dir", run["dir"]]
    if gpu:  # the fast path; the run's Python loop takes one core
        return cmd + ["--cuda", "--cudagraphs", "--threads", "1", "--async-envs", str(async_envs).lower()]
    return cmd + ["--threads", "1"]


def gpu_ids(args):
    if args.no_gpu:
        return []
    if args.gpus is not None:
        return [g for g in args.gpus.split(",") if g]
    try:
        import torch

        return [str(g) for g in range(torch.cuda.device_count())]
    except ImportError:
        return []


def placement(args, gpus, mps: bool):
    """The slots runs go to (a GPU id, or None for a CPU core) and whether their envs get subprocesses."""
    cores = len(os.sched_getaffinity(0))
    if gpus:
        slots = [g for g in gpus for _ in range(args.per_gpu or (8 if mps else 1))]
    else:
        slots = [None] * cores
    if args.workers:
        slots = (slots * args.workers)[:args.workers]
    return slots, bool(gpus) and cores // len(slots) >= 4


def start_mps():
    """Starts CUDA MPS (several processes' kernels share the GPU at once) if the machine has it; True if this
    call started it, so that the sweep stops it again at the end."""
    control = shutil.which("nvidia-cuda-mps-control")
    return bool(control) and subprocess.run([control, "-d"], capture_output=True).returncode == 0


def write_slurm(args, runs):
    sweep_args = [a for a in args.argv if not a.startswith(("--slurm=", "--time="))]  # (--slurm FILE or --slurm=FILE)
    for flag in ("--slurm", "--time"):
        if flag in sweep_args:
            i = sweep_args.index(flag)
            del sweep_args[i:i + 2]
    body = f"""#!/bin/bash
#SBATCH --job-name=hyper-sweep
#SBATCH --array=0-{len(runs) - 1}
{"" if args.no_gpu else "#SBATCH --gres=gpu:1" + chr(10)}#SBATCH --cpus-per-task=2
#SBATCH --time={args.time}
#SBATCH --output={args.out}/slurm-%A_%a.out
# One array task per grid entry; a requeued or repeated task resumes its run or skips it when done.
cd {shlex.quote(HERE)}
{shlex.quote(sys.executable)} sweep.py {' '.join(shlex.quote(a) for a in sweep_args)} --index $SLURM_ARRAY_TASK_ID
"""
    tmp = args.slurm + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(body)
    os.replace(tmp, args.slurm)
    print(f"wrote {args.slurm}: {len(runs)} array tasks; submit with: sbatch {args.slurm}")


def evaluation(run):
    return [sys.executable, os.path.join(HERE, "evaluate.py"), run["dir"]]


def needs_eval(run, args) -> bool:
    """--evaluate and the run is finished, with its checkpoint, but without eval.json."""
    return args.evaluate and status(run) == "done" and not os.path.exists(os.path.join(run["dir"], "eval.json")) \
        and os.path.exists(os.path.join(run["dir"], "checkpoint.pt"))


def loop(todo, running, results, slots, args, async_envs):
    """Start runs on free slots and collect finished ones until none is left. A finished run that needs its
    evaluation gets it next, in the same slot (running[i]'s last item says which of the two is running)."""
    def start(i, slot, run, cmd, what, since):
        env = dict(os.environ)
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot
        log = open(run["dir"] + ".log", "a")
        log.write(f"$ {' '.join(shlex.quote(c) for c in cmd)}\n")
        log.flush()
        print(f"start  {run['dir']} ({what}){' on GPU ' + slot if slot else ''}", flush=True)
        running[i] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=HERE), run, since,
                      log, what == "evaluate")

    while todo or running:
        for i, slot in enumerate(slots):
            if i not in running and todo:
                run = todo.pop(0)
                os.makedirs(run["dir"], exist_ok=True)
                if status(run) == "done":  # finished before, evaluated now
                    start(i, slot, run, evaluation(run), "evaluate", time.time())
                else:
                    start(i, slot, run, command(run, args, slot is not None, async_envs), status(run), time.time())
        time.sleep(0.5)
        for i in list(running):
            proc, run, since, log, evaluating = running[i]
            if proc.poll() is None:
                continue
            log.close()
            del running[i]
            minutes = (time.time() - since) / 60
            if evaluating and proc.returncode in (130, -signal.SIGINT):  # Ctrl-C: a later --evaluate sweep does it
                results[run["dir"]] = ("done, evaluation interrupted", minutes)
            elif proc.returncode == 130:  # Ctrl-C: it saved
                results[run["dir"]] = ("interrupted (saved)", minutes)
            elif proc.returncode != 0:
                tail = open(run["dir"] + ".log").read().strip().splitlines()[-1:]
                what = "evaluation FAILED" if evaluating else "FAILED"
                results[run["dir"]] = (f"{what} (exit {proc.returncode}): {tail[0] if tail else ''}", minutes)
                if not os.listdir(run["dir"]):  # refused at its flags: no empty folder for a later sweep to reuse
                    os.rmdir(run["dir"])
            elif evaluating:
                results[run["dir"]] = ("done, evaluated", minutes)
            else:
                results[run["dir"]] = ("done" if status(run) == "done" else "stopped early", minutes)
                if needs_eval(run, args):
                    start(i, slots[i], run, evaluation(run), "evaluate", since)
                    continue
            print(f"finish {run['dir']}: {results[run['dir']][0]}", flush=True)


def main(argv=None):
    args = parse_args(argv)
    runs = grid(args)
    os.makedirs(args.out, exist_ok=True)
    if args.slurm:
        return write_slurm(args, runs)
    if args.index is not None:
        runs = [runs[args.index]]
    for run in runs:
        problem = mismatch(run, args)
        if problem:
            sys.exit(f"sweep.py: {problem}")
    for run in [] if args.dry_run else runs:
        continue_pilot(run, args)
    gpus = gpu_ids(args)
    mps = bool(gpus) and not args.per_gpu and bool(shutil.which("nvidia-cuda-mps-control"))
    slots, async_envs = placement(args, gpus, mps)
    todo = [r for r in runs if status(r) not in ("done", "stuck") or needs_eval(r, args)]
    if args.dry_run:
        for i, run in enumerate(todo):
            slot = slots[i % len(slots)]
            where = f"GPU {slot}" if slot is not None else "CPU"
            cmd = evaluation(run) if status(run) == "done" else command(run, args, slot is not None, async_envs)
            print(f"{where}: {' '.join(shlex.quote(c) for c in cmd)}")
        return 0
    started_mps = mps and start_mps()
    results = {r["dir"]: ("done (skipped)", 0.0) for r in runs if status(r) == "done" and r not in todo}
    stuck = [r["dir"] for r in runs if status(r) == "stuck"]
    results |= {d: ("FAILED: not extended, its checkpoint.pt is gone", 0.0) for d in stuck}
    print(f"{len(runs)} runs: {len(runs) - len(todo) - len(stuck)} done, {len(stuck)} not extendable, {len(todo)} to go "
          f"on {len(slots)} "
          f"{'GPU' if gpus else 'CPU'} worker(s){' (CUDA MPS)' if mps else ''}", flush=True)
    running = {}  # slot index -> (process, run, start time, log file)
    # A shell starts `sweep.py &` with SIGINT ignored, and Python then never raises KeyboardInterrupt: restore it,
    # so that `kill -INT` stops the sweep as Ctrl-C does (the runs install their own handler).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        loop(todo, running, results, slots, args, async_envs)
    except KeyboardInterrupt:  # Ctrl-C reached the runs too: each saves after its current update and exits
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C is the runs' business (quit unsaved), not ours
        for proc, run, _, log, _ in running.values():
            proc.wait()
            log.close()
        print(f"interrupted: {len(running)} run(s) stopped, each saved unless Ctrl-C came twice; the same command "
              f"resumes the sweep", flush=True)
        return 130
    if started_mps:
        subprocess.run([shutil.which("nvidia-cuda-mps-control")], input=b"quit", capture_output=True)
    print("\n| run | status | final return | sps | minutes |\n|---|---|---|---|---|")
    failed = 0
    for run in runs:
        state, minutes = results[run["dir"]]
        failed += "FAILED" in state
        summary = {}
        if os.path.exists(os.path.join(run["dir"], "summary.json")):
            with open(os.path.join(run["dir"], "summary.json")) as fh:
                summary = json.load(fh)
        ret = summary.get("final_return")
        print(f"| {os.path.basename(run['dir'])} | {state} | {'' if ret is None else f'{ret:.2f}'} | "
              f"{summary.get('sps', '')} | {minutes:.1f} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
