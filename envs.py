"""Task distributions of "Recurrent Hypernetworks are Surprisingly Strong in Meta-RL" (Beck et al. 2023).

One gymnasium episode is one *meta-episode*: a task (MDP) is sampled at reset and kept for
`episodes_per_task` inner episodes. Between inner episodes only the MDP is reset (agent back to its
start); the task is kept. When `episodes_per_task > 1` a 0/1 flag is appended to the observation: the
step that ends an inner episode returns that step's reward and, as observation, the FIRST observation of
the next inner episode with the flag set to 1 (the reference code returned the terminal observation
instead; see the README's list of differences).

Which ends are which:
- Inner-episode ends never end the gymnasium episode (they are not terminal for PPO either: the meta-RL
  objective is the return of the whole meta-episode, so GAE runs across them).
- The last inner episode ends the gymnasium episode. Grid-Worlds and MC-LS: `terminated` (as in the paper's
  runs; MC-LS also at its timeout). MuJoCo and ML10: `truncated` when it ran out of time (so PPO bootstraps
  it from `final_obs`), `terminated` when the body fell (Ant-Dir, Walker) or the ML10 task succeeded.

Interface used by every method script:
- `ENVS[name]`: an `EnvSpec` with the gymnasium id and the paper's settings for that env (episodes per
  task, PPO settings, sizes, total frames), so `python rnn_hn.py --env walker` needs no other flag.
- `make_vec(name, num_envs, seed)`: N copies with same-step autoreset: `step` returns the next
  meta-episode's first observation at once, and `info["final_obs"]` holds each finished meta-episode's
  last observation. Grid-Worlds are vectorised in numpy; the others use gymnasium's vector envs.
- `env.reset(seed=..., options={"task": c})` fixes the task; `info["task"]` and `env.unwrapped.task` are
  the task representation c_M as a flat float vector.

`python envs.py --bench` prints env steps per second for every env.
"""

from __future__ import annotations

import argparse
import functools
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


# ---------------------------------------------------------------------------------------------------
# Per-env settings: the paper's experiments, read from the authors' code (docs/envs.md's settings table)
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvSpec:
    env_id: str
    episodes_per_task: int
    steps_per_episode: int  # the time limit of one inner episode
    total_timesteps: int  # the paper's budget
    num_steps: int  # rollout length per env per PPO update
    num_envs: int = 16  # parallel envs (meta-episodes) per rollout
    update_epochs: int = 2
    num_minibatches: int = 4
    clip_coef: float = 0.1
    ent_coef: float = 0.01
    gamma: float = 0.97
    gae_lambda: float = 0.9
    adam_eps: float = 1e-8
    anneal_lr: bool = False
    reward_clip: float = 10.0  # PPO's scaled rewards are clipped to [-reward_clip, reward_clip]
    latent_dim: int = 5  # L: the recurrent encoder's output is a 2L-d latent (the reference's (mu, logvar))
    latent_embed: int = 25  # the policy's view of it: tanh(Linear(2L -> latent_embed)), the hypernetwork input
    state_embed: int = 256  # state embedding of the policy ("XL")
    reward_embed: int = 16  # encoder embeddings: state 32 everywhere, these two per env
    action_embed: int = 16
    task_dim: int = 1  # size of the task representation c_M (`info["task"]`)


_GRID = dict(episodes_per_task=4, steps_per_episode=15, total_timesteps=4_000_000, num_steps=60,
             clip_coef=0.05, ent_coef=0.1, gamma=0.95, gae_lambda=0.95, adam_eps=1e-5,
             state_embed=25, reward_embed=8, action_embed=0, task_dim=2)
_MUJOCO = dict(episodes_per_task=1, steps_per_episode=200, total_timesteps=75_000_000, num_steps=400)

ENVS: dict[str, EnvSpec] = {
    "gridworld": EnvSpec("GridWorld-v0", **_GRID),
    "gridworld-show": EnvSpec("GridWorldShow-v0", **_GRID),
    "gridworld-dense": EnvSpec("GridWorldDense-v0", **_GRID),
    "cheetah-dir": EnvSpec("CheetahDir-v0", **_MUJOCO),
    "cheetah-vel": EnvSpec("CheetahVel-v0", **_MUJOCO),
    "ant-dir": EnvSpec("AntDir-v0", **{**_MUJOCO, "num_steps": 200, "num_minibatches": 1, "latent_embed": 10}),
    "walker": EnvSpec("WalkerRandParams-v0", **{**_MUJOCO, "episodes_per_task": 2, "num_steps": 200,
                                                 "num_minibatches": 2, "clip_coef": 0.05,
                                                 "latent_dim": 10, "reward_embed": 32, "action_embed": 32,
                                                 "task_dim": 65}),
    # MC-LS: the reference's Figure 7 runs (args_MCLS_varibad.py on Grid-World's discrete settings, 60e6
    # frames, the learning rate decayed linearly to 0 over the run).
    "mc-ls": EnvSpec("MCLS-v0", **{**_GRID, "episodes_per_task": 2, "steps_per_episode": 200,
                                   "total_timesteps": 60_000_000, "num_steps": 800, "anneal_lr": True,
                                   "state_embed": 256, "action_embed": 8, "task_dim": 1}),
    # ML10: the reference's args_ml10_varibad.py (8 envs, entropy 0.001, scaled rewards in effect unclipped).
    "ml10": EnvSpec("ML10-v0", **{**_MUJOCO, "episodes_per_task": 2, "steps_per_episode": 500,
                                  "total_timesteps": 100_000_000, "num_steps": 600, "num_envs": 8,
                                  "num_minibatches": 8, "ent_coef": 0.001, "reward_clip": 1e5, "task_dim": 16}),
}


def get_spec(name: str) -> EnvSpec:
    """The spec of `name`, or a one-line error naming the valid names."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; choose one of: {', '.join(ENVS)}")
    return ENVS[name]


# ---------------------------------------------------------------------------------------------------
# Grid-Worlds (VariBAD's 5x5 navigation), vectorised in numpy
# ---------------------------------------------------------------------------------------------------
GRID_SIZE = 5
# Actions: 0 stay, 1 up (y+1), 2 right (x+1), 3 down (y-1), 4 left (x-1).
MOVES = np.array([[0, 0], [0, 1], [1, 0], [0, -1], [-1, 0]])
# Goals: the 21 cells outside the 2x2 block of the start corner (0,0),(0,1),(1,0),(1,1).
GOALS = np.array([(x, y) for x in range(GRID_SIZE) for y in range(GRID_SIZE) if x > 1 or y > 1])
# Lookup tables make a step a handful of numpy gathers (this is what makes >1M steps/s possible):
# a cell is c = x * 5 + y.
_CELLS = np.array([(x, y) for x in range(GRID_SIZE) for y in range(GRID_SIZE)])
_NEXT_CELL = np.array([[int(np.clip(c + m, 0, GRID_SIZE - 1) @ [GRID_SIZE, 1]) for m in MOVES] for c in _CELLS])
_NEXT_CELL = _NEXT_CELL.reshape(-1)  # flat [cell * 5 + action]
_DIST = np.abs(_CELLS[:, None, :] - _CELLS[None, :, :]).sum(-1)  # Manhattan distance [cell, goal cell]
_CELL_OBS = np.concatenate([_CELLS, np.zeros((len(_CELLS), 1))], 1).astype(np.float32)  # (x, y, flag 0)
GRID_VARIANTS = ("plain", "show", "dense")


class GridWorldVec:
    """`num_envs` Grid-World meta-episodes stepped together; no Python object per env in the hot loop.

    Rules: start (0,0); reward 1.0 on the goal, else -0.1 (Dense: -manhattan/5); exactly 15
    steps per episode, 4 episodes per task. Show: a step that leaves the agent on the start cell observes
    the goal's (x, y) instead of the position (the first observation of an episode is the start itself).
    Observation: (x, y, flag). Every meta-episode end is `terminated`. `info["cell"]` is the agent's
    cell x * 5 + y after the step, before any reset (what the observation hides at an inner-episode end
    and, on Show, on the start cell).
    """

    def __init__(self, num_envs: int, variant: str = "plain", episodes_per_task: int = 4,
                 steps_per_episode: int = 15):
        if variant not in GRID_VARIANTS:
            raise ValueError(f"unknown grid variant {variant!r}; choose one of: {', '.join(GRID_VARIANTS)}")
        self.num_envs, self.variant = num_envs, variant
        self.episodes_per_task, self.steps_per_episode = episodes_per_task, steps_per_episode
        # Reward table [cell, goal cell]: computed once, so the step is a gather.
        off_goal = -_DIST / GRID_SIZE if variant == "dense" else np.full_like(_DIST, -0.1, dtype=float)
        self._reward = np.where(_DIST == 0, 1.0, off_goal).astype(np.float32).reshape(-1)  # [cell * 25 + goal]
        self.single_observation_space = gym.spaces.Box(0.0, GRID_SIZE - 1.0, (3,), np.float32)
        self.single_action_space = gym.spaces.Discrete(len(MOVES))
        self.task_dim = 2
        self._rng = np.random.default_rng()
        self.cell = np.zeros(num_envs, np.int64)
        self.goal = np.zeros(num_envs, np.int64)  # goal cell
        self.t = np.zeros(num_envs, np.int64)  # step within the inner episode
        self.episode = np.zeros(num_envs, np.int64)  # inner episode index
        self._no_done = np.zeros(num_envs, bool)
        self._no_final = np.zeros((num_envs, 3), np.float32)

    @property
    def task(self) -> np.ndarray:
        return _CELLS[self.goal].astype(np.float32)

    def _obs(self, flag: np.ndarray) -> np.ndarray:
        shown = self.cell
        if self.variant == "show":  # on the start cell after a step (flag 0): show the goal instead
            shown = np.where((self.cell == 0) & (flag == 0) & (self.t > 0), self.goal, self.cell)
        obs = _CELL_OBS[shown]
        obs[:, 2] = flag
        return obs

    def _new_tasks(self, mask: np.ndarray, tasks=None):
        n = int(mask.sum())
        if tasks is None:
            goals = GOALS[self._rng.integers(len(GOALS), size=n)]
        else:
            try:
                goals = np.asarray(tasks, dtype=float).reshape(n, 2)
            except (TypeError, ValueError):
                raise ValueError(f"a Grid-World task is a goal (x, y) per env, got {tasks!r}") from None
            for g in goals:
                if not any((g == GOALS).all(1)):
                    where = "is off the grid (x, y in 0..4)" if not ((g >= 0) & (g < GRID_SIZE)).all() else \
                        "is not one of the 21 goal cells (integers, outside the start's 2x2 corner)"
                    raise ValueError(f"Grid-World goal ({g[0]:g}, {g[1]:g}) {where}")
            goals = goals.astype(np.int64)
        self.goal[mask] = goals[:, 0] * GRID_SIZE + goals[:, 1]
        self.cell[mask], self.t[mask], self.episode[mask] = 0, 0, 0

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._new_tasks(np.ones(self.num_envs, bool), (options or {}).get("task"))
        return self._obs(np.zeros(self.num_envs, np.float32)), {"task": self.task}

    def step(self, actions):
        # Flat gathers from the lookup tables; the rare inner-episode end takes the slower branch.
        self.cell = _NEXT_CELL.take(self.cell * len(MOVES) + np.asarray(actions))
        reward = self._reward.take(self.cell * GRID_SIZE**2 + self.goal)
        self.t += 1
        ep_end = self.t == self.steps_per_episode
        if not ep_end.any():
            shown = np.where(self.cell == 0, self.goal, self.cell) if self.variant == "show" else self.cell
            info = {"task": _CELL_OBS[self.goal, :2], "final_obs": self._no_final, "cell": self.cell}
            return _CELL_OBS[shown], reward, self._no_done, self._no_done, info
        flag = ep_end.astype(np.float32)
        final_obs = self._obs(flag)  # what the agent sees if this is the meta-episode's last step
        cell = self.cell.copy()
        self.episode += ep_end
        self.cell[ep_end], self.t[ep_end] = 0, 0
        done = self.episode == self.episodes_per_task
        if done.any():
            self._new_tasks(done)  # same-step autoreset: a new task, a new meta-episode
        info = {"task": self.task, "final_obs": final_obs, "cell": cell}
        return self._obs(flag * ~done), reward, done, np.zeros_like(done), info

    def close(self):
        pass

    # Checkpointing: the whole env state is a few arrays and the generator.
    def get_state(self):
        return {k: getattr(self, k).copy() for k in ("cell", "goal", "t", "episode")} | {
            "rng": self._rng.bit_generator.state}

    def set_state(self, state):
        for k in ("cell", "goal", "t", "episode"):
            setattr(self, k, state[k].copy())
        self._rng.bit_generator.state = state["rng"]


class GridWorldEnv(gym.Env):
    """One Grid-World as a gymnasium env (for `gym.make`, `check_env`): a GridWorldVec of one."""

    metadata = {"render_modes": []}

    def __init__(self, variant: str = "plain"):
        self._vec = GridWorldVec(1, variant)
        self.observation_space = self._vec.single_observation_space
        self.action_space = self._vec.single_action_space
        self.task_dim = self._vec.task_dim

    @property
    def task(self):
        return self._vec.task[0]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        task = (options or {}).get("task")
        obs, info = self._vec.reset(seed=seed, options=None if task is None else {"task": [task]})
        return obs[0], {"task": info["task"][0]}

    def step(self, action):
        task = self.task
        obs, reward, terminated, truncated, info = self._vec.step([action])
        if terminated[0]:  # the vec env already started a new task; a single env ends here instead
            obs = info["final_obs"]
        return obs[0], float(reward[0]), bool(terminated[0]), False, {"task": task, "cell": int(info["cell"][0])}


# ---------------------------------------------------------------------------------------------------
# Meta-episodes over per-env Python objects (MuJoCo, MC-LS, ML10)
# ---------------------------------------------------------------------------------------------------
class MetaEpisodeEnv(gym.Env):
    """Runs `episodes_per_task` inner episodes of one task as one gymnasium episode.

    Subclasses define the task distribution and one inner episode:
    `sample_task()`, `set_task(task)`, `reset_inner() -> obs`, `step_inner(a) -> (obs, reward, fell)`,
    and for exact checkpoints `get_inner_state()` / `set_inner_state(s)`. What `step_inner` puts in
    `self.step_info` goes into the step's info (for evaluate.py: a velocity, a success flag, a turn).
    """

    metadata = {"render_modes": []}

    def __init__(self, inner_obs_space: gym.spaces.Box, action_space, episodes_per_task: int,
                 steps_per_episode: int):
        self.episodes_per_task, self.steps_per_episode = episodes_per_task, steps_per_episode
        self.use_flag = episodes_per_task > 1
        low, high = inner_obs_space.low, inner_obs_space.high
        if self.use_flag:
            low, high = np.append(low, 0.0), np.append(high, 1.0)
        self.observation_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.action_space = action_space
        self.task = None
        self._episode = self._t = 0
        self.step_info = {}

    def _with_flag(self, obs, flag: float):
        obs = np.asarray(obs, dtype=np.float32)
        return np.append(obs, np.float32(flag)) if self.use_flag else obs

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        task = (options or {}).get("task")
        self.set_task(self.sample_task() if task is None else task)  # set_task checks and converts
        self._episode = self._t = 0
        return self._with_flag(self.reset_inner(), 0.0), {"task": self.task.copy()}

    def step(self, action):
        obs, reward, fell = self.step_inner(action)
        self._t += 1
        ep_end = fell or self._t >= self.steps_per_episode
        terminated = truncated = False
        if ep_end:
            self._episode += 1
            if self._episode == self.episodes_per_task:  # the meta-episode ends with this inner episode
                terminated, truncated = fell, not fell
            else:
                self._t = 0
                obs = self.reset_inner()
        info = {"task": self.task.copy()} | self.step_info
        return self._with_flag(obs, float(ep_end)), float(reward), terminated, truncated, info

    # Checkpointing: counters, task, generator, and whatever the subclass needs to continue exactly.
    @property
    def meta_state(self):
        return {"task": self.task, "episode": self._episode, "t": self._t,
                "rng": self.np_random.bit_generator.state, "inner": self.get_inner_state()}

    @meta_state.setter
    def meta_state(self, s):
        self.set_task(s["task"])
        self._episode, self._t = s["episode"], s["t"]
        self.np_random.bit_generator.state = s["rng"]
        self.set_inner_state(s["inner"])


class MujocoTaskEnv(MetaEpisodeEnv):
    """A gymnasium v5 MuJoCo body (frame skip as gymnasium ships it) with the task's reward."""

    def __init__(self, body_id: str, episodes_per_task: int = 1, **body_kwargs):
        import mujoco  # imported here so the Grid-Worlds need no MuJoCo

        self._mj = mujoco
        self.sim = gym.make(body_id, **body_kwargs).unwrapped
        super().__init__(self.sim.observation_space, self.sim.action_space, episodes_per_task, 200)

    def reset(self, *, seed=None, options=None):
        if seed is not None:  # the body's reset noise comes from its own generator
            self.sim.reset(seed=seed)
        return super().reset(seed=seed, options=options)

    def reset_inner(self):
        obs, _ = self.sim.reset()
        return obs

    def step_inner(self, action):
        before = self.sim.data.qpos[:2].copy()
        obs, _, fell, _, _ = self.sim.step(action)  # the body's own reward is ignored; ours below
        velocity = (self.sim.data.qpos[:2] - before) / self.sim.dt
        self.step_info = {"velocity": velocity[0]}  # forward (x) velocity: Cheetah-Vel's evaluation bins it
        return obs, self.task_reward(velocity, np.asarray(action)), fell

    def get_inner_state(self):
        spec = self._mj.mjtState.mjSTATE_INTEGRATION  # everything mj_step reads: exact continuation
        state = np.empty(self._mj.mj_stateSize(self.sim.model, spec))
        self._mj.mj_getState(self.sim.model, self.sim.data, state, spec)
        return {"mj": state, "rng": self.sim.np_random.bit_generator.state}

    def set_inner_state(self, s):
        spec = self._mj.mjtState.mjSTATE_INTEGRATION
        self._mj.mj_setState(self.sim.model, self.sim.data, s["mj"], spec)
        self._mj.mj_forward(self.sim.model, self.sim.data)  # derived quantities (contacts, sensors) of this state
        self._mj.mj_setState(self.sim.model, self.sim.data, s["mj"], spec)  # mj_forward overwrote qacc_warmstart
        self.sim.np_random.bit_generator.state = s["rng"]


def _one_number(task, env, what, ok) -> np.ndarray:
    """A one-number task as a (1,) float32 array, or a one-line error saying what the env's task is."""
    try:
        value = np.asarray(task, np.float32).reshape(1)
    except (TypeError, ValueError):
        value = None
    if value is None or not ok(float(value[0])):
        raise ValueError(f"a {env} task is {what}, got {task!r}")
    return value


class CheetahDirEnv(MujocoTaskEnv):
    """HalfCheetah; task d in {-1, +1}; reward d * forward velocity - 0.05 |a|^2; obs 17-d."""

    task_dim = 1

    def __init__(self, **render):  # render: gymnasium's render_mode, width, height (evaluate.py --video)
        super().__init__("HalfCheetah-v5", **render)

    def sample_task(self):
        return np.array([self.np_random.choice([-1.0, 1.0])], np.float32)

    def set_task(self, task):
        self.task = _one_number(task, "Cheetah-Dir", "a direction, -1 or +1", lambda d: d in (-1.0, 1.0))

    def task_reward(self, velocity, action):
        return self.task[0] * velocity[0] - 0.05 * np.sum(action**2)


class CheetahVelEnv(CheetahDirEnv):
    """HalfCheetah; task v ~ U[0, 3]; reward -|forward velocity - v| - 0.05 |a|^2."""

    def sample_task(self):
        return np.array([self.np_random.uniform(0.0, 3.0)], np.float32)

    def set_task(self, task):
        self.task = _one_number(task, "Cheetah-Vel", "a target velocity in [0, 3]", lambda v: 0.0 <= v <= 3.0)

    def task_reward(self, velocity, action):
        return -abs(velocity[0] - self.task[0]) - 0.05 * np.sum(action**2)


class AntDirEnv(MujocoTaskEnv):
    """Ant (27-d obs: qpos[2:], qvel); task g in {-1, +1}.

    `direction="angle"` (default, the reference code): g is an angle in radians, direction (cos g, sin g).
    `direction="axis"` (the paper's text): direction (g, 0), forward or backward.
    Reward: torso xy-velocity . direction - 0.5 |a|^2 - 0.5e-3 |clip(cfrc_ext, -1, 1)|^2 + 1.0;
    the inner episode terminates when the torso z leaves [0.2, 1.0] (Ant-v5's own rule).
    """

    task_dim = 1

    def __init__(self, direction: str = "angle", **render):
        if direction not in ("angle", "axis"):
            raise ValueError(f"unknown direction {direction!r}; choose one of: angle, axis")
        self.direction = direction
        super().__init__("Ant-v5", include_cfrc_ext_in_observation=False, **render)  # 27-d: no contact forces

    def sample_task(self):
        return np.array([self.np_random.choice([-1.0, 1.0])], np.float32)

    def set_task(self, task):
        self.task = _one_number(task, "Ant-Dir", "g, -1 or +1", lambda g: g in (-1.0, 1.0))
        g = float(self.task[0])
        self._dir = np.array([np.cos(g), np.sin(g)] if self.direction == "angle" else [g, 0.0])

    def task_reward(self, velocity, action):
        # velocity: the torso's xy velocity (qpos[:2] is the torso's free-joint position).
        contact = np.sum(np.square(np.clip(self.sim.data.cfrc_ext, -1.0, 1.0)))
        return velocity @ self._dir - 0.5 * np.sum(action**2) - 0.5e-3 * contact + 1.0


class WalkerRandParamsEnv(MujocoTaskEnv):
    """Walker2d-v5's body with the reference's model settings and 65 physics coefficients resampled per task.

    The reference's model steps 0.004 s (RK4) with frame skip 4, so one step is 0.016 s, and its right foot's
    friction is 0.9 (the left's 1.9); Walker2d-v5 ships 0.002 s and 1.9 on both feet. Both are set to the
    reference's here. Each entry of body_mass, body_inertia, geom_friction is multiplied by 1.5^u and each
    dof_damping by 1.3^u, u ~ U[-3, 3] independently, except that u = 0 for the seven entries whose default
    is 0 (the world body's mass and inertia, the root joints' damping), on which a multiplier does nothing.
    The task representation is u itself (65 log-multipliers in their own base). Reward: forward velocity
    + 1.0 - 1e-3 |a|^2; the inner episode terminates unless 0.8 < height < 2.0 and -1 < angle < 1
    (Walker2d-v5's rule). 2 inner episodes per task.
    """

    FIELDS = (("body_mass", 1.5), ("body_inertia", 1.5), ("geom_friction", 1.5), ("dof_damping", 1.3))

    def __init__(self, **render):
        super().__init__("Walker2d-v5", episodes_per_task=2, **render)
        m = self.sim.model
        m.opt.timestep = 0.004  # the reference's model (v5: 0.002); dt = 0.016 s with frame skip 4
        m.geom_friction[m.geom("foot_geom").id, 0] = 0.9  # the reference's right foot (v5: 1.9 like the left)
        self._default = {name: getattr(m, name).copy() for name, _ in self.FIELDS}
        self._sizes = [self._default[name].size for name, _ in self.FIELDS]
        self.task_dim = sum(self._sizes)  # 65
        self._live = np.concatenate([self._default[name].ravel() != 0 for name, _ in self.FIELDS])  # 58 of them

    def sample_task(self):
        return np.where(self._live, self.np_random.uniform(-3.0, 3.0, self.task_dim), 0.0).astype(np.float32)

    def set_task(self, task):
        # Every task is set explicitly from the stored defaults, so nothing leaks from the previous one.
        self.task = np.asarray(task, np.float32)
        if self.task.shape != (self.task_dim,):
            raise ValueError(f"a Walker task is {self.task_dim} exponents u (multiplier 1.5^u), got shape {self.task.shape}")
        self.task = np.where(self._live, self.task, 0.0).astype(np.float32)  # u of a parameter that is 0 does nothing
        m = self.sim.model
        for (name, base), u in zip(self.FIELDS, np.split(self.task.astype(np.float64), np.cumsum(self._sizes)[:-1])):
            getattr(m, name)[:] = self._default[name] * base ** u.reshape(self._default[name].shape)
        self._mj.mj_setConst(m, self.sim.data)  # masses/inertias changed: recompute derived constants

    def task_reward(self, velocity, action):
        return velocity[0] + 1.0 - 1e-3 * np.sum(action**2)


# ---------------------------------------------------------------------------------------------------
# MC-LS: long-term memory (AMRL's Minecraft task; the reference's MC-LS-v0) with procedural 10x10 RGB views
# ---------------------------------------------------------------------------------------------------
# A room's positions (x, y) and, per position, the moves its walls allow: action -> (dx, dy). Actions: 0 left,
# 1 forward, 2 right. Any other action leaves the agent in place and pays nothing (the reference's rules).
_ROOM_MOVES = {(0, 0): {1: (0, 1)}, (0, 1): {0: (-1, 0), 2: (1, 0)},
               (-1, 1): {1: (0, 1)}, (1, 1): {1: (0, 1)}, (-1, 2): {1: (0, 1)}, (1, 2): {1: (0, 1)},
               (-1, 3): {2: (1, 0)}, (1, 3): {0: (-1, 0)}, (0, 3): {1: (0, 1)}}
_RGB = {"wall": (115, 77, 38), "floor": (64, 64, 64), "red": (230, 26, 26), "green": (26, 204, 51),
        "diamond": (77, 230, 230), "iron": (191, 191, 204), "dark": (13, 13, 13), "white": (255, 255, 255)}


def _mcls_views() -> dict:
    """The fixed 10x10 RGB view of every (phase, room type, x, y), drawn once, normalised (v - 128) / 128 as the
    reference's. Phase 0: the signal fills the view (key (0, signal, 0, 0), signal 0 red, 1 green). Phase 1:
    wall above, floor below, and the room's column (type 0 diamond: cyan with white dots; type 1 iron: grey
    with dark stripes) at (0, 2) as seen from (x, y): ahead and smaller with distance, at the screen's edge
    when beside the agent, gone once passed, when the dark exit ahead shows instead; a strip of the room's
    material along the bottom row tells the room type at every position. Phase 2 (key (2, 0, 0, 0)): the
    junction, dark openings left and right."""
    views = {}
    for signal in (0, 1):
        img = np.empty((10, 10, 3))
        img[:5], img[5:] = _RGB["wall"], _RGB["floor"]
        img[1:9, 1:9] = _RGB["green" if signal else "red"]
        views[(0, signal, 0, 0)] = img
    for kind in (0, 1):
        material, pattern = ("diamond", "white") if kind == 0 else ("iron", "dark")
        for x, y in _ROOM_MOVES:
            img = np.empty((10, 10, 3))
            img[:5], img[5:] = _RGB["wall"], _RGB["floor"]
            ahead, side = 2 - y, -x  # the column relative to the agent: distance ahead, lateral offset
            if ahead > 0:  # in front: 4 columns wide at distance 1, 2 at distance 2; off-centre when the agent is aside
                width = 4 // ahead
                left = 5 - width // 2 + 3 * side
                top = 4 - 4 // ahead
                img[top:9, left:left + width] = _RGB[material]
                img[top + 1:9:2, left:left + width] = _RGB[pattern]
            elif ahead == 0:  # beside the agent: the column's face fills the edge on its side
                cols = slice(0, 2) if side < 0 else slice(8, 10)
                img[:, cols] = _RGB[material]
                img[1::2, cols] = _RGB[pattern]
            else:  # passed: the exit to the next room, ahead of (0, 3), off to the side from (+-1, 3)
                left = 4 + 3 * side
                img[2:8, left:left + 2] = _RGB["dark"]
            img[9] = _RGB[material]
            views[(1, kind, x, y)] = img
    img = np.empty((10, 10, 3))
    img[:5], img[5:] = _RGB["wall"], _RGB["floor"]
    img[2:8, 0:2] = img[2:8, 8:10] = _RGB["dark"]
    views[(2, 0, 0, 0)] = img
    return {k: ((v - 128.0) / 128.0).astype(np.float32).reshape(-1) for k, v in views.items()}


class MCLSEnv(MetaEpisodeEnv):
    """MC-LS (the reference's MC-LS-v0, from AMRL): 16 rooms in a row; a signal before the first room fixes the task.

    Actions: 0 left, 1 forward, 2 right. Before room 1 the agent sees the signal (red or green); right takes it
    into room 1. A room is six moves on the reference's positions (x, y): forward (0,0) -> (0,1), to a side
    (+-1,1), forward past the column at (0,2) to (+-1,2) and (+-1,3), back to (0,3), and forward into the next
    room at (0,0). A move the room's walls forbid leaves the agent in place and pays nothing. Rewards, as the
    reference's `step()`: +0.1 for every move but the sideways one out of (0,1) and the final turn (progress);
    +0.1 for stepping to the column's correct side (diamond: left, iron: right), 0 for the wrong one; after room
    16, a turn: right pays +4 if the signal was green and -3 if red, left the opposite, and ends the inner
    episode. The optimal episode is 98 steps with return 13.7. The 200th step of an inner episode ends it as
    a terminal step (the reference has no time-limit wrapper there), without moving and paying 0.
    Observation: the fixed view of (phase, room type, position) (`_mcls_views`: drawn, not the reference's
    Minecraft screenshots), no noise (noise is MC-LSN-v0's), flattened, plus the flag. Room types are drawn
    anew every inner episode; the task representation is the signal (0 red, 1 green).
    """

    ROOMS = 16
    PROGRESS, CHECK, SUCCESS, FAIL = 0.1, 0.1, 4.0, -3.0
    VIEWS = _mcls_views()

    def __init__(self):
        super().__init__(gym.spaces.Box(-1.0, 1.0, (300,), np.float32), gym.spaces.Discrete(3), 2, 200)
        self.task_dim = 1

    def sample_task(self):
        return np.array([float(self.np_random.integers(2))], np.float32)

    def set_task(self, task):
        self.task = _one_number(task, "MC-LS", "the signal, 0 (red) or 1 (green)", lambda c: c in (0.0, 1.0))

    def reset_inner(self):
        self.phase, self.room, self.x, self.y = 0, 0, 0, 0  # phase 0 signal, 1 rooms, 2 junction
        self.room_types = self.np_random.integers(2, size=self.ROOMS)  # 0 diamond (pass left), 1 iron (right)
        return self._view()

    def step_inner(self, action):
        action = int(action)
        self.step_info = {"turn": 0.0, "check": 0.0}  # +1 / -1: the final turn or a column passed right / wrong
        if self._t >= self.steps_per_episode - 1:  # the reference's timeout: its last step only ends the episode
            return self._view(), 0.0, True
        if self.phase == 0:
            if action != 2:
                return self._view(), 0.0, False
            self.phase = 1
            return self._view(), self.PROGRESS, False
        if self.phase == 2:
            if action == 1:
                return self._view(), 0.0, False
            right_is_correct = self.task[0] == 1  # green: right
            self.step_info["turn"] = 1.0 if (action == 2) == right_is_correct else -1.0
            return self._view(), self.SUCCESS if (action == 2) == right_is_correct else self.FAIL, True
        move = _ROOM_MOVES[(self.x, self.y)].get(action)
        if move is None:
            return self._view(), 0.0, False
        reward = 0.0 if (self.x, self.y) == (0, 1) else self.PROGRESS
        self.x, self.y = self.x + move[0], self.y + move[1]
        if self.y == 1 and self.x != 0:  # beside the column: the check
            correct = self.x == (-1 if self.room_types[self.room] == 0 else 1)
            reward += self.CHECK if correct else 0.0
            self.step_info["check"] = 1.0 if correct else -1.0
        if self.y == 4:  # into the next room, or after the last one to the junction
            self.room, self.x, self.y = self.room + 1, 0, 0
            self.phase = 2 if self.room == self.ROOMS else 1
        return self._view(), reward, False

    def _view(self):
        if self.phase == 0:
            return self.VIEWS[(0, int(self.task[0]), 0, 0)]
        if self.phase == 2:
            return self.VIEWS[(2, 0, 0, 0)]
        return self.VIEWS[(1, int(self.room_types[self.room]), self.x, self.y)]

    def get_inner_state(self):
        return {"phase": self.phase, "room": self.room, "x": self.x, "y": self.y, "room_types": self.room_types.copy()}

    def set_inner_state(self, s):
        self.phase, self.room, self.x, self.y = s["phase"], s["room"], s["x"], s["y"]
        self.room_types = s["room_types"].copy()


# ---------------------------------------------------------------------------------------------------
# Meta-World ML10
# ---------------------------------------------------------------------------------------------------
METAWORLD_HINT = "ML10 needs Meta-World: pip install metaworld==3.1.1 mujoco==3.3.0"


@functools.lru_cache(maxsize=None)
def _ml10_benchmark(seed: int):
    try:
        import metaworld
    except ImportError as e:
        raise RuntimeError(METAWORLD_HINT) from e
    return metaworld.ML10(seed=seed)  # building it takes seconds: once per process


class ML10Env(MetaEpisodeEnv):
    """Meta-World ML10: a task is one of the parametric variations of the 10 train classes
    (`split="test"`: of the 5 held-out test classes). 2 inner episodes (`episodes_per_task`; the reference
    evaluates with 10) of up to 500 steps: an inner episode ends at its first step with Meta-World's success
    flag (the reference's wrapper returns `success` as done; a terminal step), else at 500 steps (truncation).
    Observation 39-d plus the flag. Task representation (16-d): the one-hot of the 15 classes, then the
    variation's index within its class divided by the class's number of variations, so that
    `reset(options={"task": c})` rebuilds exactly the task c. `info["success"]` is the success flag of the
    step (1 only on the step that ends an inner episode by success)."""

    def __init__(self, split: str = "train", benchmark_seed: int = 0, episodes_per_task: int = 2):
        if split not in ("train", "test"):
            raise ValueError(f"unknown ML10 split {split!r}; choose one of: train, test")
        bench = _ml10_benchmark(benchmark_seed)
        self._classes = {**bench.train_classes, **bench.test_classes}
        self._names = list(self._classes)
        self._variations = {}  # class name -> its Meta-World tasks in the benchmark's order
        for mw_task in bench.train_tasks if split == "train" else bench.test_tasks:
            self._variations.setdefault(mw_task.env_name, []).append(mw_task)
        self._tasks = [(name, j) for name, tasks in self._variations.items() for j in range(len(tasks))]
        self._envs = {}  # class name -> env, built on first use
        probe = self._env(self._tasks[0][0])
        super().__init__(probe.observation_space, probe.action_space, episodes_per_task, probe.max_path_length)
        self.task_dim = len(self._names) + 1

    def _env(self, name):
        if name not in self._envs:
            self._envs[name] = self._classes[name]()
        return self._envs[name]

    @property
    def classes(self) -> dict:
        """The split's classes: name -> its number of parametric variations."""
        return {name: len(tasks) for name, tasks in self._variations.items()}

    def task_of(self, name: str, j: int) -> np.ndarray:
        """The task representation of variation j of class `name`."""
        one_hot = np.eye(len(self._names))[self._names.index(name)]
        return np.append(one_hot, j / len(self._variations[name])).astype(np.float32)

    def sample_task(self):
        return self.task_of(*self._tasks[int(self.np_random.integers(len(self._tasks)))])

    def set_task(self, task):
        task = np.asarray(task, np.float32)
        name = self._names[int(task[:-1].argmax())] if task.shape == (self.task_dim,) else None
        if name not in self._variations:
            raise ValueError(f"an ML10 task is a one-hot of {len(self._names)} classes of this split plus a "
                             f"variation index in [0, 1), got {task.tolist()!r}")
        variations = self._variations[name]
        self.task = task.copy()
        self.current = self._env(name)
        self.current.set_task(variations[min(int(round(float(task[-1]) * len(variations))), len(variations) - 1)])

    def reset_inner(self):
        obs, _ = self.current.reset(seed=int(self.np_random.integers(2**31)))
        return obs

    def step_inner(self, action):
        obs, reward, terminated, _, info = self.current.step(np.asarray(action, np.float32))
        self.step_info = {"success": float(info["success"])}
        return obs, reward, bool(terminated) or info["success"] > 0  # success ends the inner episode

    @property
    def meta_state(self):
        return None  # Meta-World envs keep internal state we cannot restore: resume starts new tasks


# ---------------------------------------------------------------------------------------------------
# Registration and vectorisation
# ---------------------------------------------------------------------------------------------------
_CONSTRUCTORS = {
    "gridworld": functools.partial(GridWorldEnv, "plain"),
    "gridworld-show": functools.partial(GridWorldEnv, "show"),
    "gridworld-dense": functools.partial(GridWorldEnv, "dense"),
    "cheetah-dir": CheetahDirEnv,
    "cheetah-vel": CheetahVelEnv,
    "ant-dir": AntDirEnv,
    "walker": WalkerRandParamsEnv,
    "mc-ls": MCLSEnv,
    "ml10": ML10Env,
}
for _name, _spec in ENVS.items():
    if _spec.env_id not in gym.registry:
        gym.register(id=_spec.env_id, entry_point=_CONSTRUCTORS[_name])


def make_env(name: str, **kwargs) -> gym.Env:
    """One (unwrapped) env by CLI name; bad names give a one-line error."""
    get_spec(name)
    return _CONSTRUCTORS[name](**kwargs)


class GymVec:
    """Gymnasium's vector env in same-step autoreset mode, with the interface of GridWorldVec:
    `info["final_obs"]` is a dense float array (rows of finished meta-episodes are meaningful)."""

    def __init__(self, name: str, num_envs: int, asynchronous: bool, **env_kwargs):
        fns = [functools.partial(make_env, name, **env_kwargs) for _ in range(num_envs)]
        cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
        self.vec = cls(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        self.num_envs = num_envs
        self.single_observation_space = self.vec.single_observation_space
        self.single_action_space = self.vec.single_action_space

    def reset(self, seed=None, options=None):
        return self.vec.reset(seed=seed, options=options)

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.vec.step(actions)
        final = np.zeros_like(obs)
        if "final_obs" in info:
            ended = info["_final_obs"]
            for i in np.flatnonzero(ended):
                final[i] = info["final_obs"][i]
            for key in ("success", "velocity", "turn", "check"):  # step_info: a finished meta-episode's last is there
                if key in info["final_info"]:
                    info[key] = np.where(ended, info["final_info"][key], info.get(key, 0.0))
        info["final_obs"] = final
        return obs, reward.astype(np.float32), terminated, truncated, info

    def get_state(self):
        states = self.vec.get_attr("meta_state")
        return None if any(s is None for s in states) else list(states)

    def set_state(self, states):
        self.vec.set_attr("meta_state", list(states))

    def close(self):
        self.vec.close()


def make_vec(name: str, num_envs: int, seed: int, asynchronous: bool = False, **env_kwargs):
    """N parallel copies of env `name` with same-step autoreset, reset with `seed` (env i: seed + i).

    Returns (vec_env, first_obs, info). The non-grid envs step in this process unless `asynchronous`: on 2
    cores gymnasium's subprocess vector env was 2-3x slower (IPC costs more than a MuJoCo step), from 4
    cores on faster (`python envs.py --bench`). `env_kwargs` go to every env (rendering, for evaluate.py)."""
    spec = get_spec(name)
    if spec.env_id.startswith("GridWorld"):
        vec = GridWorldVec(num_envs, name.replace("gridworld", "").lstrip("-") or "plain")
        obs, info = vec.reset(seed=seed)
        return vec, obs, info
    vec = GymVec(name, num_envs, bool(asynchronous), **env_kwargs)
    obs, info = vec.reset(seed=seed)
    return vec, obs, info


# ---------------------------------------------------------------------------------------------------
# Benchmark: python envs.py --bench
# ---------------------------------------------------------------------------------------------------
def _bench(names, num_envs: int, seconds: float):
    rng = np.random.default_rng(0)
    for name in names:
        rows = []
        modes = [None] if name.startswith("gridworld") else ["single", False, True]
        for mode in modes:
            if mode == "single":
                env, n = make_env(name), 1
                env.reset(seed=0)
                step = lambda a, env=env: env.step(a[0])  # noqa: E731
            else:
                env, _, _ = make_vec(name, num_envs, 0, asynchronous=mode)
                n, step = num_envs, env.step
            space = env.action_space if mode == "single" else env.single_action_space
            if isinstance(space, gym.spaces.Discrete):
                actions = rng.integers(space.n, size=(1024, n))
            else:
                actions = rng.uniform(space.low, space.high, size=(1024, n) + space.shape).astype(np.float32)
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                for a in actions[:256]:
                    out = step(a)
                    if mode == "single" and (out[2] or out[3]):
                        env.reset()
                steps += 256 * n
            sps = steps / (time.perf_counter() - start)
            label = {None: f"numpy vec x{n}", "single": "single env", False: f"sync vec x{n}",
                     True: f"async vec x{n}"}[mode]
            rows.append(f"{label}: {sps:,.0f} steps/s")
            env.close()
        print(f"{name:16s} " + " | ".join(rows), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", action="store_true", help="print env steps per second for each env")
    parser.add_argument("--envs", default=",".join(ENVS), help="comma-separated env names to benchmark")
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    names = args.envs.split(",")
    for n in names:
        try:
            get_spec(n)
        except ValueError as e:
            parser.error(str(e))
    if args.bench:
        _bench(names, args.num_envs, args.seconds)
    else:
        parser.print_help()
