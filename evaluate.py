"""Greedy evaluation of trained runs, the paper's test-time metric: fresh tasks, deterministic actions; and
the replay check, which says whether today's scripts still reproduce a committed run.

    python evaluate.py results/gridworld/gridworld__rnn_hn__lr0.0003__s73      # one run
    python evaluate.py results/gridworld --meta-episodes 1024                   # every finished run below
    python evaluate.py results/gridworld --replay                               # match, or where it differs
    python evaluate.py RUN --video run.gif   # MuJoCo: a GIF of two tasks side by side (MUJOCO_GL=egl, offscreen)
    python evaluate.py ML10_RUN --split test  # ML10: success on the held-out classes, 10 episodes per task

The training logs (`return` in progress.csv) hold the stochastic policy's returns; the paper's curves
evaluate with the most likely action (the mean for Gaussian policies). This loads a run's final
`checkpoint.pt` with the Agent class of the script that trained it (config.json's "method"), plays
`--meta-episodes` meta-episodes on tasks from a seed the run never trained on, feeding the recurrent
inputs exactly as the training rollout does, and writes `eval.json` next to the checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import importlib
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

import envs

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = ("checkpoint.pt", "model.pt")  # a run's weights: its last checkpoint, or the final policy it ships

def play(agent, vec, obs, K: int, meta_episodes: int, greedy: bool = True, tasks=None, on_step=None, once=False):
    """Run `agent` on `vec` (first observations `obs`) until `meta_episodes` meta-episodes finish; returns
    their returns (M,), per-inner-episode returns (M, K), tasks (M, task dim; from `tasks`, the first ones, on)
    and per-inner-episode success flags (M, K; ML10's `info["success"]`, else 0). greedy=False samples, one draw
    per step, like the training rollout (the test compares the two). `once`: each env's first meta-episode
    only, in the order of the envs (M = the number of envs; an env that finishes early idles on). `on_step(ended,
    returns so far, inner episode index, info)` is called after every step (the video's frames, StepStats)."""
    space, N = vec.single_action_space, vec.num_envs
    act_dim = 1 if agent.discrete else space.shape[0]
    # The recurrent inputs, as in the training rollout: a new task starts with h = 0 and no previous
    # action or reward; otherwise the previous action and raw reward are fed back.
    h, new_task = torch.zeros(N, agent.encoder.gru.hidden_size), torch.ones(N)
    prev_action, prev_reward = torch.zeros(N, act_dim), torch.zeros(N)
    meta, eps, success, ep_index = np.zeros(N), np.zeros((N, K)), np.zeros((N, K)), np.zeros(N, dtype=int)
    finished = []  # (env, return, per-episode returns, task, per-episode success) of each finished meta-episode
    tasks = None if tasks is None else np.array(tasks, dtype=float)
    M = N if once else meta_episodes
    with torch.no_grad():
        while len(finished) < M:
            o = torch.as_tensor(obs, dtype=torch.float32)
            latent, h = agent.encoder(o[None], prev_action[None], prev_reward[None], new_task[None], h)
            dist, _ = agent.heads(latent[0], o)
            if not greedy:
                action = dist.sample()
            else:
                action = dist.probs.argmax(-1) if agent.discrete else dist.mean
            env_action = action.numpy()  # unclipped, as in training
            obs, reward, terminated, truncated, info = vec.step(env_action)
            ended = terminated | truncated
            done_t = torch.as_tensor(ended, dtype=torch.float32)
            a_in = action.float().view(N, act_dim) if agent.discrete else torch.as_tensor(env_action)
            r = torch.as_tensor(reward, dtype=torch.float32)
            prev_action, prev_reward, new_task = a_in * (1 - done_t).unsqueeze(1), r * (1 - done_t), done_t
            meta += reward
            k = np.minimum(ep_index, K - 1)
            eps[np.arange(N), k] += reward
            if "success" in info:
                success[np.arange(N), k] = np.maximum(success[np.arange(N), k], info["success"])
            ep_index += ended | ((obs[:, -1] == 1) if K > 1 else ended)
            if on_step is not None:
                on_step(ended, meta.copy(), ep_index.copy(), info)
            for i in np.flatnonzero(ended):
                if not (once and any(f[0] == i for f in finished)):
                    finished.append((i, meta[i], eps[i].copy(), None if tasks is None else tasks[i].copy(),
                                     success[i].copy()))
                meta[i], eps[i], success[i], ep_index[i] = 0.0, 0.0, 0.0, 0
                if tasks is not None:  # the next meta-episode's task is the one the env now reports
                    tasks[i] = info["task"][i]
    finished = sorted(finished[:M], key=lambda f: f[0]) if once else finished[:M]
    return (np.array([f[1] for f in finished]), np.array([f[2] for f in finished]),
            np.array([f[3] for f in finished if f[3] is not None]), np.array([f[4] for f in finished]))


class StepStats:
    """What a greedy evaluation measures beside the returns, from each step's info, per finished meta-episode in the
    order `play` finishes them: Cheetah-Vel's mean absolute velocity error (|forward velocity - target| over the
    steps), and per inner episode MC-LS's final turn (+1 right for the signal, -1 wrong, 0 none) and the columns
    passed on their correct side (of 16)."""

    def __init__(self, tasks, K):
        self.tasks, self.K = np.array(tasks, dtype=float), K
        N = len(self.tasks)
        self.err, self.steps, self.turn, self.checks = np.zeros(N), np.zeros(N), np.zeros((N, K)), np.zeros((N, K))
        self.k = np.zeros(N, dtype=int)
        self.finished = []  # (task, velocity error, final turn per episode, correct columns per episode)

    def __call__(self, ended, returns, ep_index, info):
        i_n, k = np.arange(len(self.k)), np.minimum(self.k, self.K - 1)  # the inner episode this step was in
        if "velocity" in info:
            self.err += np.abs(info["velocity"] - self.tasks[:, 0])
            self.steps += 1
        if "turn" in info:
            self.turn[i_n, k] += info["turn"]
            self.checks[i_n, k] += info["check"] == 1
        self.k = ep_index.copy()
        for i in np.flatnonzero(ended):
            self.finished.append((self.tasks[i].copy(), self.err[i] / max(self.steps[i], 1), self.turn[i].copy(),
                                  self.checks[i].copy()))
            self.err[i] = self.steps[i] = self.turn[i] = self.checks[i] = self.k[i] = 0
            self.tasks[i] = info["task"][i]  # the next meta-episode's

    def result(self, env, returns, M):
        """The env's extra fields of eval.json, over the first M finished meta-episodes."""
        done = self.finished[:M]
        if env == "cheetah-vel":  # a policy that runs at one speed for every target shows in the bins
            v = np.array([f[0][0] for f in done])
            err = np.array([f[1] for f in done])
            bins = {"slow (0-1 m/s)": v < 1, "middle (1-2 m/s)": (v >= 1) & (v < 2), "fast (2-3 m/s)": v >= 2}
            return {"velocity_error": float(err.mean()),
                    "velocity_error_per_bin": {b: float(err[m].mean()) for b, m in bins.items() if m.any()},
                    "return_per_velocity_bin": {b: float(returns[m].mean()) for b, m in bins.items() if m.any()}}
        if env == "mc-ls":  # Figure 7: a correct final turn in episode 1 (adapted in one) and in episode 2
            turn, checks = np.array([f[2] for f in done]), np.array([f[3] for f in done])
            return {"final_turn_correct_per_episode": [float(x) for x in (turn == 1).mean(0)],
                    "final_turn_made_per_episode": [float(x) for x in (turn != 0).mean(0)],
                    "columns_passed_correctly_per_episode": [float(x) for x in checks.mean(0)]}
        return {}


def run_config(run_dir: str):
    """(the script module that trained the run, its Args), from config.json or, in a folder that holds only the
    final policy, model.pt; a ValueError (one line) if neither can be read."""
    try:
        if os.path.exists(os.path.join(run_dir, "config.json")) or not os.path.exists(os.path.join(run_dir, "model.pt")):
            with open(os.path.join(run_dir, "config.json")) as fh:
                cfg = json.load(fh)
        else:
            model = torch.load(os.path.join(run_dir, "model.pt"), map_location="cpu", weights_only=False)
            cfg = model["args"] | {"method": model["method"]}
        method = cfg["method"]
        module = importlib.import_module(method)
        args = module.Args(**{k: v for k, v in cfg.items() if k in {f.name for f in dataclasses.fields(module.Args)}})
    except (OSError, ValueError, KeyError, TypeError, ImportError, RuntimeError) as e:
        raise ValueError(f"{run_dir}: config.json is missing or unreadable ({type(e).__name__})") from None
    return module, args


def load_agent(run_dir: str, module, args, vec):
    """(the Agent with the run's final weights, from checkpoint.pt or else model.pt, and that file's contents); a
    ValueError (one line) if the file is bad."""
    agent = module.Agent(vec.single_observation_space.shape[0], vec.single_action_space, envs.get_spec(args.env), args)
    name = "checkpoint.pt" if os.path.exists(os.path.join(run_dir, "checkpoint.pt")) else "model.pt"
    try:
        ckpt = torch.load(os.path.join(run_dir, name), map_location="cpu", weights_only=False)
        agent.load_state_dict(ckpt["agent"])
    except Exception as e:  # truncated, empty, garbage, or another script's checkpoint
        raise ValueError(f"{run_dir}: {name} is damaged or does not fit {module.METHOD}.py ({type(e).__name__})") from None
    return agent.eval(), ckpt


def evaluate(run_dir: str, meta_episodes: int = 1024, num_envs: int = 16, seed: int = 10_000) -> dict:
    """Greedy returns of the run in `run_dir`, also written to its eval.json; a ValueError (one line) when
    the run's config.json or checkpoint.pt cannot be read."""
    module, args = run_config(run_dir)
    spec = envs.get_spec(args.env)
    vec, obs, info = envs.make_vec(args.env, num_envs, seed)
    agent, ckpt = load_agent(run_dir, module, args, vec)
    stats = StepStats(info["task"], spec.episodes_per_task)
    finished_meta, finished_eps, tasks, _ = play(agent, vec, obs, spec.episodes_per_task, meta_episodes, greedy=True,
                                                 tasks=info["task"], on_step=stats)
    vec.close()
    result = {"method": module.METHOD, "env": args.env, "lr": args.lr, "seed": args.seed,
              "train_update": ckpt["update"], "meta_episodes": int(len(finished_meta)), "eval_seed": seed,
              "return": float(finished_meta.mean()),
              "return_se": float(finished_meta.std() / np.sqrt(len(finished_meta))),
              "return_per_episode": [float(x) for x in finished_eps.mean(0)]}
    if args.env in ("cheetah-dir", "ant-dir"):  # two directions: a policy that runs one way scores ~0 on average
        result["return_per_direction"] = {f"{d:+g}": float(finished_meta[tasks[:, 0] == d].mean())
                                          for d in (1.0, -1.0) if (tasks[:, 0] == d).any()}
    result |= stats.result(args.env, finished_meta, meta_episodes)
    tmp = os.path.join(run_dir, f"eval.json.tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, os.path.join(run_dir, "eval.json"))
    return result


def evaluate_ml10(run_dir: str, splits=("train", "test"), tasks_per_class: int = 5, episodes: int = 10,
                  num_envs: int = 16, seed: int = 10_000) -> dict:
    """Figure 16's measure on an ML10 run, written to its eval.json (beside the splits it already holds): on
    the 10 training classes ("train") and the 5 held-out ones ("test"), `tasks_per_class` variations of each
    class (drawn with `seed`), deterministic actions for `episodes` inner episodes per task (the reference's
    10; training plays 2), the GRU keeping its memory across them. Per split: the success fraction of each
    inner episode (the share of tasks solved in it), their mean (the paper's "success fraction"), the returns,
    and the same per class."""
    module, args = run_config(run_dir)
    path = os.path.join(run_dir, "eval.json")
    result = {}
    if os.path.exists(path):  # the other split's numbers stay, if they are of the same final policy
        with open(path) as fh:
            result = json.load(fh)
    for split in splits:
        probe = envs.make_env("ml10", split=split)
        rng = np.random.default_rng(seed)
        chosen = [(name, int(j)) for name, n in probe.classes.items()
                  for j in sorted(rng.choice(n, min(tasks_per_class, n), replace=False))]
        vec, _, _ = envs.make_vec("ml10", num_envs, seed, split=split, episodes_per_task=episodes)
        agent, ckpt = load_agent(run_dir, module, args, vec)
        if result.get("train_update") != ckpt["update"]:
            result = {}
        returns, success = [], []
        for start in range(0, len(chosen), num_envs):  # a batch of tasks, one per env (the last batch padded)
            batch = (chosen[start:start + num_envs] * num_envs)[:num_envs]
            obs = np.stack([env.reset(seed=seed + start + i, options={"task": probe.task_of(*task)})[0]
                            for i, (env, task) in enumerate(zip(vec.vec.envs, batch))])
            _, eps, _, solved = play(agent, vec, obs, episodes, num_envs, greedy=True, once=True)
            n = min(num_envs, len(chosen) - start)
            returns.extend(eps[:n])
            success.extend(solved[:n])
        vec.close()
        returns, success = np.array(returns), np.array(success)
        names = np.array([name for name, _ in chosen])

        def measures(rows):
            return {"success_per_episode": [float(x) for x in success[rows].mean(0)],
                    "success": float(success[rows].mean()), "return": float(returns[rows].sum(1).mean()),
                    "return_per_episode": [float(x) for x in returns[rows].mean(0)]}

        result |= {"method": module.METHOD, "env": args.env, "lr": args.lr, "seed": args.seed,
                   "train_update": ckpt["update"], "eval_seed": seed}
        result[split] = {"tasks": len(chosen), "tasks_per_class": tasks_per_class, "episodes": episodes,
                         **measures(np.ones(len(chosen), bool)),
                         "per_class": {name: measures(names == name) for name in probe.classes}}
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(tmp, path)
    return result


def _shot(env):
    """A frame of `env` with the camera over its torso. Gymnasium renders through a free camera, which ignores
    the env's `trackbodyid`, so a walker that walks would leave the picture."""
    viewer = env.sim.mujoco_renderer.viewer  # made by the first render; the torso then stands at the origin
    if viewer is not None:
        viewer.cam.lookat[:2] = env.sim.data.xpos[1, :2]
    return env.sim.render()


def video_tasks(env: str):
    """The video's two tasks (None: two draws of the env's distribution) and each panel's label."""
    if env == "cheetah-dir":
        return [[1.0], [-1.0]], lambda u: "forward" if u[0] > 0 else "backward"
    if env == "ant-dir":  # the task is an angle in radians (the reference's): +-57 degrees off the x axis
        return [[1.0], [-1.0]], lambda u: f"heading {np.degrees(u[0]):+.0f} deg"
    if env == "cheetah-vel":  # a slow and a fast target
        return [[0.5], [2.5]], lambda u: f"target {u[0]:.2f} m/s"
    return None, lambda u: f"torso mass x{1.5 ** u[1]:.2f}, floor friction x{1.5 ** u[32]:.2f}"  # Walker's physics


def video(run_dir: str, path: str, max_steps: int = 0, size=(256, 192), stride: int = 2, seed: int = 10_000) -> int:
    """A GIF of the run's greedy policy: one meta-episode in each of two tasks, side by side, every frame
    labelled with its task and the return so far (Cheetah-Dir and Ant-Dir: both directions; Cheetah-Vel: a
    slow and a fast target, 0.5 and 2.5 m/s; Walker: two draws of its physics). MuJoCo renders offscreen
    (MUJOCO_GL, default egl); Pillow writes the GIF. `max_steps` > 0 cuts the clip. Returns the frames."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # before MuJoCo is first imported
    import mujoco
    from PIL import Image, ImageDraw

    module, args = run_config(run_dir)
    spec = envs.get_spec(args.env)
    if args.env not in ("cheetah-dir", "cheetah-vel", "ant-dir", "walker"):
        raise ValueError(f"--video renders the MuJoCo envs (cheetah-dir, cheetah-vel, ant-dir, walker), not {args.env}")
    vec, obs, info = envs.make_vec(args.env, 2, seed, render_mode="rgb_array", width=size[0], height=size[1])
    agent, _ = load_agent(run_dir, module, args, vec)
    for env in vec.vec.envs:  # a plane collides as an infinite one: its size is only how far it is drawn, and a
        m = env.sim.model      # fast cheetah outruns the 40 m of HalfCheetah's floor; its checks keep their size
        for g in np.flatnonzero(m.geom_type == mujoco.mjtGeom.mjGEOM_PLANE):
            grow, mat = 1000.0 / m.geom_size[g, 0], m.geom_matid[g]
            m.geom_size[g, :2] *= grow
            if mat >= 0 and not m.mat_texuniform[mat]:
                m.mat_texrepeat[mat] *= grow
    chosen, label = video_tasks(args.env)
    if chosen:
        obs = np.stack([env.reset(seed=seed, options={"task": u})[0] for env, u in zip(vec.vec.envs, chosen)])
    tasks = np.stack([env.task for env in vec.vec.envs])
    K = spec.episodes_per_task
    frames, done = [[_shot(env) for env in vec.vec.envs]], np.zeros(2, bool)
    returns, episodes = [np.zeros(2)], [np.ones(2, int)]

    def record(ended, so_far, ep, info):
        nonlocal done
        if done.all() or (max_steps and len(frames) > max_steps):
            return
        # A finished meta-episode's panel keeps its last frame: its env has already moved on to a new task.
        was, done = done, done | ended
        frames.append([frames[-1][i] if done[i] else _shot(env) for i, env in enumerate(vec.vec.envs)])
        returns.append(np.where(was, returns[-1], so_far))
        episodes.append(np.where(was, episodes[-1], np.minimum(ep, K - 1) + 1))

    try:
        play(agent, vec, obs, K, 2, greedy=True, on_step=record)
    finally:
        vec.close()
    images = []
    for k in range(0, len(frames), stride):
        row = Image.fromarray(np.concatenate(frames[k], axis=1))
        draw = ImageDraw.Draw(row)
        for i in range(2):
            text = f"{label(tasks[i])}\nepisode {episodes[k][i]} of {K}, return {returns[k][i]:.1f}"
            draw.rectangle(draw.multiline_textbbox((8 + i * size[0], 6), text), fill=(0, 0, 0))  # legible on the floor
            draw.multiline_text((8 + i * size[0], 6), text, fill=(255, 255, 255))
        images.append(row.quantize(colors=64))  # a moving floor changes every pixel: keep GIFs small
    images[0].save(path, save_all=True, append_images=images[1:], optimize=True, loop=0,
                   duration=int(1000 * vec.vec.envs[0].sim.dt * stride))
    return len(images)


def replay(run_dir: str, updates: int = 3, tolerance: float = 1e-3, script_dir: str = HERE) -> str:
    """Re-runs the first `updates` updates of the run in `run_dir` from its config.json with today's script, in
    a temporary folder, and compares every column of progress.csv but `time` and `sps` with the run's own rows.
    Returns "match (...)", with the largest difference found, or the first update and column that differ. Two
    numbers match when they differ by at most `tolerance` times the largest magnitude of that column in the
    compared rows (so a loss that happens to cross 0 is judged on its scale, not on its tiny value); 0 asks for
    identical text. The default allows what another CPU model's float rounding does to the same computation
    on the grids (measured between an Intel Xeon and an AMD EPYC: up to 7e-5 of a column's scale) and catches a
    changed setting or network line, which moves the first updates' losses by far more. `script_dir`: where
    today's scripts are. A run made on another CPU model that differs cannot be replayed here (MuJoCo is
    chaotic); for it the check is whether the script of its own commit and today's give the same rows here."""
    try:
        with open(os.path.join(run_dir, "config.json")) as fh:
            cfg = json.load(fh)
        with open(os.path.join(run_dir, "progress.csv")) as fh:
            committed = list(csv.DictReader(fh))[:updates]
        fields = {f.name for f in dataclasses.fields(importlib.import_module(cfg["method"]).Args)}
    except (OSError, ValueError, KeyError, ImportError) as e:
        raise ValueError(f"{run_dir}: config.json or progress.csv is missing or unreadable ({type(e).__name__})") from None
    if cfg.get("precision") == "bf16" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        # The script would run it in fp32 here (its one-line fallback): other numbers, not a changed script.
        return "cannot replay here: a --precision bf16 run, and this CPU has no bf16 matrix units (AVX512-BF16 or AMX)"
    flags = []
    for key, value in cfg.items():
        if key in fields and value is not None and key not in ("run_dir", "resume", "stop_after", "cuda", "cudagraphs"):
            flags += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    today = _rerun(cfg["method"], flags, len(committed), script_dir)
    if isinstance(today, str):
        return f"today's {today}"
    # Runs made before 91130e1 logged approx_kl as inf where a probability ratio underflowed (it now takes the
    # log-ratio): that column is left out of their check, which says so.
    old_kl = any(not math.isfinite(float(r.get("approx_kl") or 0)) for r in committed)
    verdict = _compare(committed, today, tolerance, "committed", skip=("approx_kl",) * old_kl)
    if old_kl and verdict.startswith("match"):
        verdict = verdict[:-1] + ", approx_kl aside: this run logged inf there)"
    note = machine_note(cfg) if verdict.startswith("differs") else ""
    commit, dirty = (cfg.get("commit") or "").partition("+")[::2]  # (+changes: the checkout had uncommitted edits)
    if note and len(commit) == 40:  # the same check on this CPU: the run's own code against today's
        with tempfile.TemporaryDirectory() as tmp:
            made = os.path.join(tmp, "code")
            if subprocess.run(["git", "worktree", "add", "--detach", made, commit], cwd=HERE, capture_output=True).returncode:
                return verdict + note + f"; its commit {commit[:7]} is not in this clone"
            try:
                then = _rerun(cfg["method"], flags, len(committed), made)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", made], cwd=HERE, capture_output=True)
        if isinstance(then, str):
            return verdict + note + f"; the script of its commit {commit[:7]} {then}"
        # (approx_kl aside: its formula changed at 91130e1, to the log-ratio, which logged inf before and rounds
        # otherwise; it is a diagnostic that nothing trains on)
        same = _compare(then, today, 0.0, f"its commit {commit[:7]}'s script here", skip=("approx_kl",))
        if same.startswith("match"):  # (the word "differ" must not appear: logs are grepped for it)
            return (f"cannot replay here{note[:-1].replace(' (made on', ': made on', 1)}; on this CPU its commit "
                    f"{commit[:7]}'s script{' (without the uncommitted edits it ran with)' if dirty else ''} and "
                    f"today's match (identical first {len(today)} updates, approx_kl aside)")
        return verdict + note + f"; on this CPU today's {same.replace('committed', 'its commit')}"
    return verdict + note


def _rerun(method, flags, updates, script_dir):
    """The progress.csv rows of `updates` updates of `script_dir`/`method`.py with `flags`, or why it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([sys.executable, os.path.join(script_dir, f"{method}.py"), *flags, "--run-dir",
                            os.path.join(tmp, "run"), "--stop-after", str(updates), "--log-every", "1000000"],
                           capture_output=True, text=True)
        if p.returncode != 0:
            return f"{method}.py failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}"
        with open(os.path.join(tmp, "run", "progress.csv")) as fh:
            return list(csv.DictReader(fh))


def _compare(reference, today, tolerance, what, skip=()):
    """'match (...)' or where `today`'s rows first differ from `reference`'s (`what` names the reference); the
    columns in `skip` are not compared."""
    def number(text):
        try:
            return float(text)
        except (TypeError, ValueError):
            return None

    finite = lambda x: x is not None and math.isfinite(x)  # noqa: E731
    scale = {col: max([abs(number(r[col])) for r in reference if finite(number(r[col]))] or [0.0])
             for col in reference[0]} if reference else {}
    largest = 0.0
    for old, new in zip(reference, today):
        for col in old:
            if col in ("time", "sps") + tuple(skip):
                continue
            a, b = old[col], new.get(col)
            if a == b:
                continue
            if finite(number(a)) and finite(number(b)):
                largest = max(largest, abs(number(a) - number(b)) / max(scale[col], 1e-12))
            same = tolerance > 0 and finite(number(a)) and finite(number(b)) and \
                abs(number(a) - number(b)) <= tolerance * scale[col] + 1e-12
            if not same:
                return f"differs at update {old['update']}, column {col}: {what} {a!r}, today {b!r}"
    if len(today) < len(reference):
        return f"run logged {len(today)} of {len(reference)} updates"
    # (a match line never says "differ": readers and scripts grep a replay log for that word to find stale runs)
    return f"match (within {largest:.1g} of its column's scale)" if largest else "match (identical)"


def machine_note(cfg) -> str:
    """Why a run that differs may still be today's code's run: it was made on another CPU model, whose float rounding
    differs (MuJoCo is chaotic: an action changed by 1e-7 moves a 200-step HalfCheetah return by tens), or its CPU
    is not recorded."""
    here = importlib.import_module(cfg["method"]).provenance()["machine"]["cpu"]
    made = cfg.get("machine", {}).get("cpu")
    if made == here:
        return ""
    return (f" (made on {made or 'a CPU model config.json does not record'}, this is {here}: a run replays exactly "
            f"only on the CPU model that made it, a MuJoCo run least of all)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.error = lambda msg: parser.exit(2, f"{parser.prog}: error: {msg}\n")
    parser.add_argument("paths", nargs="+", help="run folders, or folders containing them")
    parser.add_argument("--meta-episodes", type=int, default=1024, help="meta-episodes (tasks) per run")
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the evaluation tasks")
    parser.add_argument("--all", action="store_true", help="also runs that have not finished (no summary.json)")
    parser.add_argument("--replay", action="store_true",
                        help="instead of evaluating: re-run each run's first updates with today's script and compare")
    parser.add_argument("--replay-updates", type=int, default=3, help="updates that --replay re-runs")
    parser.add_argument("--video", default=None, help="write a GIF of the run's greedy policy here (MuJoCo envs)")
    parser.add_argument("--video-steps", type=int, default=0, help="--video: at most this many steps (0: a meta-episode)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="--replay: relative difference allowed in floats (0: identical text)")
    parser.add_argument("--split", default="train,test", help="ML10: the training classes, the held-out (test) ones, "
                        "or both (default: train,test)")
    parser.add_argument("--tasks-per-class", type=int, default=5, help="ML10: variations of each class evaluated")
    parser.add_argument("--episodes", type=int, default=10, help="ML10: inner episodes per task (training plays 2)")
    args = parser.parse_args(argv)
    splits = args.split.split(",")
    for ok, msg in ((args.meta_episodes >= 1, "--meta-episodes must be >= 1"), (args.tolerance >= 0, "--tolerance must be >= 0"),
                    (args.replay_updates >= 1, "--replay-updates must be >= 1"), (args.video_steps >= 0, "--video-steps must be >= 0"),
                    (set(splits) <= {"train", "test"} and len(set(splits)) == len(splits),
                     f"--split {args.split}: choose train, test or train,test"),
                    (args.tasks_per_class >= 1, "--tasks-per-class must be >= 1"), (args.episodes >= 1, "--episodes must be >= 1")):
        if not ok:
            parser.error(msg)
    torch.set_num_threads(1)
    if args.video:
        if len(args.paths) != 1:
            parser.error("--video takes one run folder")
        try:
            n = video(args.paths[0], args.video, args.video_steps)
        except ValueError as e:
            sys.exit(f"evaluate.py: {e}")
        print(f"wrote {args.video}: {n} frames, {os.path.getsize(args.video) / 1e6:.1f} MB")
        return 0
    if args.replay:
        runs = sorted({os.path.dirname(c) for p in args.paths for q in glob.glob(p) or [p]
                       for c in glob.glob(os.path.join(q, "**", "config.json"), recursive=True)})
        runs = [r for r in runs if os.path.exists(os.path.join(r, "progress.csv"))]
        if not runs:
            parser.error(f"no run (config.json and progress.csv) under {' '.join(args.paths)}")
        stale = unchecked = 0
        for run in runs:
            try:
                verdict = replay(run, args.replay_updates, args.tolerance)
            except ValueError as e:
                sys.exit(f"evaluate.py: {e}")
            unchecked += verdict.startswith("cannot replay here")
            stale += not verdict.startswith(("match", "cannot replay here"))
            print(f"{run}: {verdict}", flush=True)
        print(f"{len(runs) - stale - unchecked} of {len(runs)} runs match their first {args.replay_updates} updates"
              + (f"; {unchecked} cannot be replayed on this machine" if unchecked else ""))
        return 1 if stale else 0
    runs = sorted({os.path.dirname(c) for p in args.paths for q in glob.glob(p) or [p] for name in WEIGHTS
                   for c in glob.glob(os.path.join(q, "**", name), recursive=True)})
    runs = [r for r in runs if args.all or os.path.exists(os.path.join(r, "summary.json")) or
            not os.path.exists(os.path.join(r, "checkpoint.pt"))]  # (model.pt alone: a finished run's final policy)
    if not runs:
        parser.error(f"no run with weights under {' '.join(args.paths)}: a run's checkpoint.pt stays on the machine that "
                     f"trained it (git ignores it), and only the runs that ship a model.pt (results/: README) can be "
                     f"evaluated elsewhere" + ("" if args.all else "; --all evaluates unfinished runs too"))
    for run in runs:
        try:
            if run_config(run)[1].env == "ml10":
                res = evaluate_ml10(run, splits, args.tasks_per_class, args.episodes, seed=args.seed)
                for split in splits:
                    per_ep = " / ".join(f"{x:.2f}" for x in res[split]["success_per_episode"])
                    print(f"{run}: {split} classes, success fraction {res[split]['success']:.3f} (per episode {per_ep})")
                continue
            res = evaluate(run, args.meta_episodes, seed=args.seed)
        except ValueError as e:
            sys.exit(f"evaluate.py: {e}")
        per_ep = " / ".join(f"{x:.2f}" for x in res["return_per_episode"])
        print(f"{run}: greedy return {res['return']:.2f} +- {res['return_se']:.2f} (per episode {per_ep})")


if __name__ == "__main__":
    sys.exit(main())
