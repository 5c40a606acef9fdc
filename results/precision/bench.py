"""CPU throughput of the method scripts in fp32 and in bf16 (`--precision`), and where RNN+HN's time goes.

    python results/precision/bench.py                      # the README's table: quiet machine, one thread per run
    python results/precision/bench.py --pairs rnn_hn:walker --precisions bf16 --updates 5
    python results/precision/bench.py --pairs rnn_hn:cheetah-dir --side-by-side   # 1 run x 2 threads vs 2 x 1

Each measurement trains a fresh run (`--threads 1`, the paper's settings for the env) for `--updates`
updates and reports env frames per second over the updates after the first (the first pays one-time
costs). The time of those updates is split into the rollout's env steps (the simulator), its policy steps
(`Agent.act`) and the PPO update (GAE to the end of the epochs). The update is split once more by timing,
on the same shapes and precision, the forward and backward pass of the recurrent encoder (the GRU) and of
the policy heads (for RNN+HN: the generated layers) on one minibatch, times the update's minibatches.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAIRS = ("rnn_hn:cheetah-dir,rnn_hn:walker,rnn_hn:gridworld,rnn:cheetah-dir,rnn_s:cheetah-dir,vi_hn:cheetah-dir,"
         "ti_pp_hn:cheetah-dir,ti:cheetah-dir")


def one(script, env, precision, updates, threads, run_dir):
    """Train in this process with timers around the env step, the policy step and the update."""
    sys.path.insert(0, ROOT)
    import torch

    import envs

    mod = importlib.import_module(script)
    spent, marks = {"env": 0.0, "act": 0.0}, []

    def timed(name, fn):
        def wrapper(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            spent[name] += time.perf_counter() - t
            return out
        return wrapper

    for cls in (envs.GridWorldVec, envs.GymVec):
        cls.step = timed("env", cls.step)
    mod.Agent.act = timed("act", mod.Agent.act)
    gae, write_row, update_start = mod.compute_gae, mod.csv_line, []

    def gae_mark(*a, **k):  # the rollout ends and the update begins here
        update_start.append(time.perf_counter())
        return gae(*a, **k)

    def row_mark(row, columns):  # the update ends here
        marks.append((time.perf_counter(), dict(spent), update_start[-1] if update_start else None))
        return write_row(row, columns)

    mod.compute_gae, mod.csv_line = gae_mark, row_mark
    args = mod.parse_args(["--env", env, "--precision", precision, "--threads", str(threads), "--run-dir", run_dir,
                           "--log-every", "100000", "--save-every", "0", "--total-timesteps", "1"])
    batch = args.num_envs * args.num_steps
    args.total_timesteps = updates * batch
    mod.main(args)
    (t0, s0, _), (t1, s1, _) = marks[0], marks[-1]
    wall = t1 - t0
    update_time = sum(end - start for end, _, start in marks[1:])
    out = {"sps": (len(marks) - 1) * batch / wall, "s_per_update": wall / (len(marks) - 1),
           "env": (s1["env"] - s0["env"]) / wall, "act": (s1["act"] - s0["act"]) / wall, "update": update_time / wall}
    out.update({k: s / out["s_per_update"] for k, s in update_split(mod, args, torch, envs).items()})
    return out


def update_split(mod, args, torch, envs):
    """Seconds per update spent in the encoder's and the heads' forward + backward passes, on a minibatch of
    the update's shape (T steps x N / minibatches env sequences), in the run's precision."""
    spec = envs.get_spec(args.env)
    vec, _, _ = envs.make_vec(args.env, 1, 0)
    obs_dim, space = vec.single_observation_space.shape[0], vec.single_action_space
    vec.close()
    agent = mod.Agent(obs_dim, space, spec, args)
    T, B = args.num_steps, args.num_envs // args.num_minibatches
    act_dim = 1 if agent.discrete else space.shape[0]
    obs, prev_a, prev_r = torch.randn(T, B, obs_dim), torch.randn(T, B, act_dim), torch.randn(T, B)
    new_task = torch.zeros(T, B)
    new_task[::spec.steps_per_episode * spec.episodes_per_task] = 1.0  # where meta-episodes start in a rollout
    h0 = torch.zeros(B, args.gru_size)
    amp = lambda: torch.autocast("cpu", torch.bfloat16, enabled=args.precision == "bf16")  # noqa: E731

    def encoder():
        with amp():
            latent, _ = agent.encoder(obs, prev_a, prev_r, new_task, h0)
        latent.float().sum().backward()

    latent = torch.randn(T * B, 2 * args.latent_dim, requires_grad=True)

    def heads():
        with amp():
            dist, value = agent.heads(latent, obs.flatten(0, 1))
        (dist.mean.sum() + value.sum()).backward()

    per_update = args.update_epochs * args.num_minibatches
    result = {}
    for name, fn in (("encoder", encoder), ("heads", heads)):
        fn()  # warm-up
        t, n = time.perf_counter(), 3
        for _ in range(n):
            fn()
        result[name] = (time.perf_counter() - t) / n * per_update
    return result


def measure(script, env, precision, updates, threads):
    tmp = tempfile.mkdtemp()
    cmd = [sys.executable, __file__, "--one", script, env, precision, str(updates), str(threads), os.path.join(tmp, "run")]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc):
    out, err = proc.communicate()
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (err.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1])


def pct(x):
    return f"{100 * x:.0f}%"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", default=PAIRS, help="script:env pairs, comma-separated")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--updates", type=int, default=0, help="updates per measurement (default: 3 MuJoCo, 20 Grid-World)")
    p.add_argument("--side-by-side", action="store_true", help="instead: one run with 2 threads vs two 1-thread runs")
    p.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        script, env, precision, updates, threads, run_dir = a.one
        print(json.dumps(one(script, env, precision, int(updates), int(threads), run_dir)), flush=True)
        return
    import torch

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = sorted({f for l in open("/proc/cpuinfo") if l.startswith("flags") for f in l.split()
                    if f in ("avx512_bf16", "amx_bf16")})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"$ python results/precision/bench.py {' '.join(sys.argv[1:])}   # commit {commit}\n"
          f"{cpu}, {os.cpu_count()} cores, {' '.join(flags) or 'no bf16 units'}; torch {torch.__version__}\n", flush=True)
    pairs = [pair.split(":") for pair in a.pairs.split(",")]
    if a.side_by_side:
        print("| script | env | precision | setting | env frames/s per run | total |\n|---|---|---|---|---|---|", flush=True)
        for script, env in pairs:
            for precision in a.precisions.split(","):
                updates = a.updates or (20 if env.startswith("gridworld") else 3)
                for setting, runs, threads in (("one run, --threads 2", 1, 2), ("two runs, --threads 1 each", 2, 1)):
                    rs = [result(pr) for pr in [measure(script, env, precision, updates, threads) for _ in range(runs)]]
                    sps = [r["sps"] for r in rs if "sps" in r]
                    print(f"| {script} | {env} | {precision} | {setting} | {', '.join(f'{s:,.0f}' for s in sps)} | "
                          f"{sum(sps):,.0f} |", flush=True)
        return
    print("| script | env | precision | env frames/s | vs fp32 | s per update | simulator | policy step | update | "
          "of it: encoder (GRU) | policy heads |\n|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for script, env in pairs:
        base = None
        for precision in a.precisions.split(","):
            updates = a.updates or (20 if env.startswith("gridworld") else 3)
            r = result(measure(script, env, precision, updates, 1))
            if "error" in r:
                print(f"| {script} | {env} | {precision} | error: {r['error'][:150]} | | | | | | | |", flush=True)
                continue
            base = base or (r["sps"] if precision == "fp32" else None)
            ratio = f"{r['sps'] / base:.2f}x" if base else ""
            print(f"| {script} | {env} | {precision} | {r['sps']:,.0f} | {ratio} | {r['s_per_update']:.2f} | "
                  f"{pct(r['env'])} | {pct(r['act'])} | {pct(r['update'])} | {pct(r['encoder'])} | {pct(r['heads'])} |",
                  flush=True)


if __name__ == "__main__":
    main()
