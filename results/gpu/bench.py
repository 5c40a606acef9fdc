"""Throughput of the method scripts on a GPU machine, and where their time goes.

    python results/gpu/bench.py                                   # the README's table (minutes)
    python results/gpu/bench.py --scripts rnn_hn --envs gridworld,walker --modes eager,graphs
    python results/gpu/bench.py --parallel 8                      # 8 Grid-World runs on one GPU vs 8 CPU runs
    python results/gpu/bench.py --env-cores 2,4,8,16              # Walker's envs: in-process vs subprocesses

Each measurement trains a fresh run for `--updates` updates and reports env frames per second over the
updates after the first (the first records the CUDA graphs), with the time split into the env steps, the
policy's rollout step, the PPO minibatches and the rest (GAE, reward scaling, bookkeeping, the VAE of the
task-inference scripts), and the reward scaling's microseconds per env step (host-side work that every step
pays). Modes: `eager` (--cuda), `graphs` (--cuda --cudagraphs), `graphs+async` (and the envs in
subprocesses), `cpu` (--threads 1, no GPU). The split synchronises the GPU around each timed call.
"""

from __future__ import annotations

import argparse
import collections
import csv
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODES = {"eager": ["--cuda"], "graphs": ["--cuda", "--cudagraphs", "--async-envs", "false"],
         "graphs+async": ["--cuda", "--cudagraphs", "--async-envs", "true"],
         "graphs+async+1thread": ["--cuda", "--cudagraphs", "--async-envs", "true", "--threads", "1"],
         "cpu": ["--threads", "1"]}


def one(script, env, mode, updates, run_dir):
    """Train in this process with timers around the env step, the rollout step and the PPO minibatch."""
    sys.path.insert(0, ROOT)
    import torch

    import envs

    mod = importlib.import_module(script)
    spent, marks = collections.defaultdict(float), []
    sync = torch.cuda.synchronize if "--cuda" in MODES[mode] else (lambda: None)

    def timed(name, fn):
        def wrapper(*a, **k):
            sync()
            t = time.perf_counter()
            out = fn(*a, **k)
            sync()
            spent[name] += time.perf_counter() - t
            return out
        return wrapper

    for cls in (envs.GridWorldVec, envs.GymVec):
        cls.step = timed("env", cls.step)
    mod.scale_reward = timed("reward", mod.scale_reward)  # main() looks it up at each call
    if "--cudagraphs" not in MODES[mode]:  # (a graph cannot be recorded around a synchronisation)
        mod.Agent.act = timed("act", mod.Agent.act)
    graph_call = mod.CudaGraph.__call__
    mod.CudaGraph.__call__ = lambda self, *a: timed("act" if self.fn.__name__ == "act" else "ppo", graph_call)(self, *a)
    write_row = mod.csv_line

    def mark(row, columns):  # once per update: the time spent so far
        marks.append((time.perf_counter(), dict(spent)))
        return write_row(row, columns)
    mod.csv_line = mark
    args = mod.parse_args(["--env", env, *MODES[mode], "--run-dir", run_dir, "--log-every", "100000",
                           "--save-every", "0", "--total-timesteps", "1"])
    batch = args.num_envs * args.num_steps
    args.total_timesteps = updates * batch
    mod.main(args)
    (t0, s0), (t1, s1) = marks[0], marks[-1]
    wall = t1 - t0
    split = {k: (s1.get(k, 0.0) - s0.get(k, 0.0)) / wall for k in ("env", "act", "ppo")}
    split["reward_us"] = 1e6 * (s1.get("reward", 0.0) - s0.get("reward", 0.0)) / ((len(marks) - 1) * args.num_steps)
    if mode == "eager":  # the eager minibatch has no timer: it is in "other"
        split["ppo"] = None
    return {"sps": (len(marks) - 1) * batch / wall, "ms_per_update": 1000 * wall / (len(marks) - 1), **split}


def measure(script, env, mode, updates, extra_env=None, taskset=None):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--one", script, env, mode, str(updates), os.path.join(tmp, "run")]
        if taskset:
            cmd = ["taskset", "-c", taskset] + cmd
        return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(extra_env or {})}), tmp


def result(proc):
    out, err = proc.communicate()
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (err.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1])


def pct(x):
    return "" if x is None else f"{100 * x:.0f}%"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scripts", default="rnn_hn,rnn,rnn_s,vi_hn,ti_pp_hn,ti")
    p.add_argument("--envs", default="gridworld,walker")
    p.add_argument("--modes", default="eager,graphs,graphs+async")
    p.add_argument("--updates", type=int, default=0, help="updates per measurement (default: 30 grid, 6 MuJoCo)")
    p.add_argument("--parallel", type=int, default=0, help="also: this many Grid-World rnn_hn runs at once, GPU vs CPU")
    p.add_argument("--parallel-modes", default="graphs,cpu", help="where the --parallel runs go")
    p.add_argument("--env-cores", default="", help="also: Walker env steps/s in-process vs subprocesses on these core counts")
    p.add_argument("--one", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        script, env, mode, updates, run_dir = a.one
        print(json.dumps(one(script, env, mode, int(updates), run_dir)), flush=True)
        return
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{gpu}; {cpu}, {os.cpu_count()} cores; torch {torch.__version__}\n", flush=True)
    if a.scripts:
        print("| script | env | mode | env frames/s | ms per update | env | rollout step | PPO minibatches | "
              "reward scaling, us a step |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for script in filter(None, a.scripts.split(",")):
        for env in a.envs.split(","):
            for mode in a.modes.split(","):
                updates = a.updates or (30 if env.startswith("gridworld") else 6)
                proc, tmp = measure(script, env, mode, updates)
                r = result(proc)
                if "error" in r:
                    print(f"| {script} | {env} | {mode} | error: {r['error'][:150]} | | | | | |", flush=True)
                    continue
                print(f"| {script} | {env} | {mode} | {r['sps']:,.0f} | {r['ms_per_update']:.0f} | {pct(r['env'])} | "
                      f"{pct(r['act'])} | {pct(r['ppo'])} | {r['reward_us']:.0f} |", flush=True)
    if a.parallel:
        print(f"\n{a.parallel} rnn_hn Grid-World runs at once:\n\n| where | env frames/s each | total |\n|---|---|---|")
        for mode in a.parallel_modes.split(","):
            procs = [measure("rnn_hn", "gridworld", mode, a.updates or 30,
                             {"OMP_NUM_THREADS": "1"} if mode == "cpu" else None) for _ in range(a.parallel)]
            rs = [result(pr) for pr, _ in procs]
            sps = [r["sps"] for r in rs if "sps" in r]
            errors = [r["error"] for r in rs if "error" in r]
            print(f"| {'one GPU, --cudagraphs' if mode == 'graphs' else 'CPU, --threads 1'} | "
                  f"{', '.join(f'{s:,.0f}' for s in sps)}{' errors: ' + errors[0] if errors else ''} | "
                  f"{sum(sps):,.0f} |", flush=True)
    if a.env_cores:
        print("\nWalker, 16 envs, env steps/s (`python envs.py --bench` on the first N cores):\n")
        for n in a.env_cores.split(","):
            out = subprocess.run(["taskset", "-c", f"0-{int(n) - 1}", sys.executable, "envs.py", "--bench",
                                  "--envs", "walker", "--seconds", "2"], cwd=ROOT, capture_output=True, text=True)
            print(f"- {n} cores: {(out.stdout.strip() or out.stderr.strip()).splitlines()[-1]}", flush=True)


if __name__ == "__main__":
    main()
