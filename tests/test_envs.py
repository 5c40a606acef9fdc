"""The task distributions follow the paper's experiments (docs/envs.md) exactly; each test would fail on a plausible bug."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs

ALL = list(envs.ENVS)
MUJOCO = ["cheetah-dir", "cheetah-vel", "ant-dir", "walker"]


@pytest.mark.parametrize("name", ALL)
def test_check_env_and_registration(name):
    env = gym.make(envs.ENVS[name].env_id).unwrapped
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert np.asarray(info["task"]).ndim == 1 and np.all(np.isfinite(info["task"]))


def test_unknown_name_one_line_error():
    with pytest.raises(ValueError, match=r"unknown env 'nope'; choose one of: gridworld, .*ml10") as e:
        envs.make_vec("nope", 2, 0)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------------- Grid-World rules
def grid(variant="plain", goal=(4, 4)):
    env = envs.GridWorldEnv(variant)
    obs, _ = env.reset(seed=0, options={"task": goal})
    return env, obs


def test_goal_set_is_the_21_cells_outside_the_start_corner():
    goals = {tuple(g) for g in envs.GOALS}
    assert len(goals) == 21
    assert not goals & {(0, 0), (0, 1), (1, 0), (1, 1)}
    vec = envs.GridWorldVec(4096)
    vec.reset(seed=1)
    sampled = {tuple(g) for g in vec.task.astype(int)}
    assert sampled == goals  # all 21 reachable by the sampler, none other


def test_moves_walls_and_stay():
    env, obs = grid()
    assert tuple(obs) == (0, 0, 0)
    # stay, down into the wall, left into the wall: all keep (0, 0)
    for a in (0, 3, 4):
        obs, r, *_ = env.step(a)
        assert tuple(obs[:2]) == (0, 0) and r == pytest.approx(-0.1)
    obs, *_ = env.step(1)  # up: y + 1
    assert tuple(obs[:2]) == (0, 1)
    obs, *_ = env.step(2)  # right: x + 1
    assert tuple(obs[:2]) == (1, 1)
    for _ in range(5):
        obs, *_ = env.step(2)
    assert tuple(obs[:2]) == (4, 1)  # the east wall stops it


def test_rewards_and_the_60_step_meta_episode_with_flags():
    env, obs = grid(goal=(2, 0))
    rewards, flags, positions, ends, cells = [], [], [], [], []
    for t in range(60):
        # go right twice then stay on the goal
        obs, r, terminated, truncated, info = env.step(2 if t % 15 < 2 else 0)
        rewards.append(r), flags.append(obs[2]), positions.append(tuple(obs[:2])), ends.append(terminated)
        cells.append(info["cell"])
        assert not truncated
    assert [t + 1 for t in range(60) if flags[t] == 1] == [15, 30, 45, 60]
    assert [t + 1 for t in range(60) if ends[t]] == [60]
    assert positions[14] == (0, 0)  # after the inner end: the next episode's first observation
    assert cells[14] == 2 * 5 + 0  # but info["cell"] is where the step left the agent: on the goal
    per_episode = np.array(rewards).reshape(4, 15)
    np.testing.assert_allclose(per_episode[:, 0], -0.1)  # (1, 0) is not the goal
    np.testing.assert_allclose(per_episode[:, 1:], 1.0)  # on (2, 0) for the rest of each episode
    assert np.isclose(sum(rewards), 4 * (14 * 1.0 - 0.1))


def test_show_reveals_goal_on_start_cell_only_after_a_step():
    env, obs = grid("show", goal=(3, 2))
    assert tuple(obs[:2]) == (0, 0)  # the first observation is the start itself
    obs, *_ = env.step(0)  # stay on the start cell: look
    assert tuple(obs[:2]) == (3, 2)
    obs, *_ = env.step(1)
    assert tuple(obs[:2]) == (0, 1)
    obs, *_ = env.step(3)  # back onto the start cell
    assert tuple(obs[:2]) == (3, 2)
    for _ in range(12):
        obs, *_ = env.step(1)
    assert tuple(obs) == (0, 0, 1)  # the next episode begins at the start, not showing the goal


def test_dense_reward_is_scaled_manhattan_distance():
    env, _ = grid("dense", goal=(3, 4))
    _, r, *_ = env.step(0)
    assert r == pytest.approx(-(3 + 4) / 5)
    _, r, *_ = env.step(2)
    assert r == pytest.approx(-(2 + 4) / 5)
    for a in (2, 2, 1, 1, 1):
        _, r, *_ = env.step(a)
    assert r == pytest.approx(-1 / 5)
    _, r, *_ = env.step(1)
    assert r == 1.0


def test_vec_grid_matches_single_env_and_autoresets():
    rng = np.random.default_rng(0)
    vec, obs, info = envs.make_vec("gridworld-show", 3, seed=5)
    singles = [envs.GridWorldEnv("show") for _ in range(3)]
    sobs = [e.reset(options={"task": t})[0] for e, t in zip(singles, info["task"])]
    np.testing.assert_array_equal(obs, np.stack(sobs))
    for t in range(60):
        a = rng.integers(5, size=3)
        obs, r, term, trunc, info = vec.step(a)
        outs = [e.step(int(ai)) for e, ai in zip(singles, a)]
        np.testing.assert_allclose(r, [o[1] for o in outs])
        assert list(term) == [o[2] for o in outs]
        if t < 59:
            np.testing.assert_array_equal(obs, np.stack([o[0] for o in outs]))
    assert term.all()
    np.testing.assert_array_equal(info["final_obs"], np.stack([o[0] for o in outs]))
    assert (obs == [0, 0, 0]).all()  # same-step autoreset: the new meta-episode's first observation


# --------------------------------------------------------------------------------- MuJoCo rewards
@pytest.mark.parametrize("name", MUJOCO)
def test_mujoco_rewards_against_gymnasiums_own_terms(name):
    # Our reward is built on top of gymnasium's v5 body; its step's info holds the body's own reward terms.
    env = envs.make_env(name)
    env.reset(seed=3)
    steps, body_step = [], env.sim.step

    def recording(action):
        steps.append(body_step(action))
        return steps[-1]

    env.sim.step = recording
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.uniform(-1, 1, env.action_space.shape)
        xy_before = env.sim.data.qpos[:2].copy()
        _, r, *_ = env.step(a)
        _, body_reward, _, _, info = steps[-1]
        if name == "cheetah-dir":
            expected = env.task[0] * info["x_velocity"] - 0.05 * np.sum(a**2)
        elif name == "cheetah-vel":
            expected = -abs(info["x_velocity"] - env.task[0]) - 0.05 * np.sum(a**2)
        elif name == "walker":
            expected = body_reward  # Walker2d-v5's own reward is ours: x velocity + 1 - 1e-3 |a|^2
        else:  # Ant-v5's control, contact and survival terms are ours; its info velocity reads the body's
            # xpos, which lags a substep, so the direction term uses the free joint's exact position
            v = (env.sim.data.qpos[:2] - xy_before) / env.sim.dt
            g = env.task[0]
            expected = v @ [np.cos(g), np.sin(g)] + info["reward_ctrl"] + info["reward_contact"] + info["reward_survive"]
            assert info["reward_ctrl"] == pytest.approx(-0.5 * np.sum(a**2)) and info["reward_survive"] == 1.0
        assert r == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_cheetah_dir_sign_flips_reward():
    env = envs.make_env("cheetah-dir")
    a = np.full(6, 0.3)
    rewards = []
    for d in (1.0, -1.0):
        env.reset(seed=0, options={"task": [d]})
        rewards.append([env.step(a)[1] for _ in range(20)])
    ctrl = 0.05 * np.sum(a**2)
    np.testing.assert_allclose(np.array(rewards[0]) + ctrl, -(np.array(rewards[1]) + ctrl), rtol=1e-6)


def test_ant_dir_ends_an_episode_when_the_torso_leaves_0_2_to_1_0():
    # The health rule at each end of the torso's z range, just inside and just outside. Gravity and contacts are
    # (constraints too) off and the body at rest, so one step leaves z where it was put and only the rule decides.
    import mujoco

    env = envs.make_env("ant-dir")
    env.reset(seed=0, options={"task": [1.0]})
    model, data = env.sim.model, env.sim.data
    model.opt.gravity[:] = 0.0
    model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT | mujoco.mjtDisableBit.mjDSBL_CONSTRAINT
    for z, healthy in ((0.199, False), (0.201, True), (0.999, True), (1.001, False)):
        data.qpos[2], data.qvel[:] = z, 0.0
        mujoco.mj_forward(model, data)
        _, _, fell = env.step_inner(np.zeros(8))
        assert data.qpos[2] == pytest.approx(z, abs=1e-6) and fell == (not healthy), (z, fell)


def test_mujoco_time_limit_is_truncation_and_obs_dims():
    assert envs.make_env("cheetah-vel").observation_space.shape == (17,)
    assert envs.make_env("ant-dir").observation_space.shape == (27,)
    env = envs.make_env("cheetah-vel")
    env.reset(seed=0)
    for t in range(200):
        _, _, term, trunc, _ = env.step(np.zeros(6))
        assert not term and trunc == (t == 199)


# --------------------------------------------------------------------------------- Walker
def test_walker_65_multipliers_per_task():
    env = envs.make_env("walker")
    m = env.sim.model
    defaults = {k: getattr(m, k).copy() for k, _ in env.FIELDS}
    _, info1 = env.reset(seed=0)
    u1 = info1["task"]
    assert u1.shape == (65,) and np.all(np.abs(u1) <= 3)
    assert env.observation_space.shape == (18,)  # 17-d + flag
    # the model holds default * base^u for every entry
    start = 0
    for name, base in env.FIELDS:
        n = defaults[name].size
        expected = defaults[name] * base ** u1[start:start + n].reshape(defaults[name].shape)
        np.testing.assert_allclose(getattr(m, name), expected, rtol=1e-5)
        start += n
    masses = m.body_mass.copy()
    # fixed within a meta-episode (through the inner reset), different for the next task
    for _ in range(400):
        *_, term, trunc, info = env.step(env.action_space.sample())
        np.testing.assert_array_equal(m.body_mass, masses)
        if term or trunc:
            break
    _, info2 = env.reset()
    assert not np.allclose(info2["task"], u1)
    assert not np.allclose(m.body_mass[1:], masses[1:])
    # restored physics: the zero task gives back the defaults exactly, derived constants included
    env.reset(options={"task": np.zeros(65)})
    for name, _ in env.FIELDS:
        np.testing.assert_allclose(getattr(m, name), defaults[name])
    fresh = envs.make_env("walker").sim
    np.testing.assert_allclose(m.body_subtreemass, fresh.model.body_subtreemass)
    np.testing.assert_allclose(m.dof_invweight0, fresh.model.dof_invweight0, rtol=1e-6)


def test_walker_reference_model_and_its_seven_inert_parameters():
    # The reference's walker2d.xml: 0.004 s (RK4) x frame skip 4 = 0.016 s a step; right foot friction 0.9,
    # left 1.9 (Walker2d-v5: 0.002 s, 1.9 on both feet)
    env = envs.make_env("walker")
    m = env.sim.model
    assert env.sim.dt == pytest.approx(0.016) and m.opt.timestep == pytest.approx(0.004)
    env.reset(seed=0, options={"task": np.zeros(65)})
    assert m.geom_friction[m.geom("foot_geom").id, 0] == pytest.approx(0.9)
    assert m.geom_friction[m.geom("foot_left_geom").id, 0] == pytest.approx(1.9)
    # u = 0 where the default is 0: the world body's mass (0) and inertia (8-10), the root joints' damping (56-58)
    inert = [0, 8, 9, 10, 56, 57, 58]
    for seed in range(20):
        _, info = env.reset(seed=seed)
        assert np.all(info["task"][inert] == 0) and np.count_nonzero(info["task"]) == 58
    _, info = env.reset(options={"task": np.full(65, 2.0)})
    assert np.all(info["task"][inert] == 0) and np.all(np.delete(info["task"], inert) == 2.0)


def test_walker_multipliers_by_hand_and_derived_constants_after_a_task():
    # Hard-coded bases (1.5 for masses, inertias, frictions; 1.3 for damping), not the code's own FIELDS
    env = envs.make_env("walker")
    m = env.sim.model
    fresh = envs.make_env("walker").sim.model
    u = np.linspace(-3, 3, 65).astype(np.float32)
    env.reset(seed=0, options={"task": u})
    assert m.body_mass[1] == pytest.approx(fresh.body_mass[1] * 1.5 ** u[1], rel=1e-5)  # the torso
    assert m.body_inertia[2, 1] == pytest.approx(fresh.body_inertia[2, 1] * 1.5 ** u[8 + 3 * 2 + 1], rel=1e-5)
    assert m.geom_friction[0, 0] == pytest.approx(fresh.geom_friction[0, 0] * 1.5 ** u[32], rel=1e-5)  # the floor
    assert m.dof_damping[3] == pytest.approx(fresh.dof_damping[3] * 1.3 ** u[56 + 3], rel=1e-5)  # the first hinge
    # derived constants follow the new masses (mj_setConst): the world's subtree mass is the total mass
    assert m.body_subtreemass[0] == pytest.approx(m.body_mass.sum(), rel=1e-6)
    assert not m.body_subtreemass[0] == pytest.approx(fresh.body_subtreemass[0], rel=1e-3)


def test_cheetah_control_cost_on_the_raw_action_and_the_motors_clamped():
    # As in the reference, the env gets the raw Gaussian sample: the reward's control cost is on it, and MuJoCo
    # clamps the motor command to [-1, 1] itself, so action 2.0 moves the body as 1.0 does and costs 4x
    out = {}
    for a in (1.0, 2.0):
        env = envs.make_env("cheetah-dir")
        env.reset(seed=0, options={"task": [1.0]})
        out[a] = env.step(np.full(6, a))
    np.testing.assert_array_equal(out[1.0][0], out[2.0][0])
    assert out[2.0][1] - out[1.0][1] == pytest.approx(-0.05 * 6 * (2.0**2 - 1.0**2), rel=1e-6)


def test_walker_two_inner_episodes():
    env = envs.make_env("walker")
    env.reset(seed=1)
    flags, steps = [], 0
    while True:
        obs, _, term, trunc, _ = env.step(np.zeros(6))
        steps += 1
        flags.append(obs[-1])
        if term or trunc:
            break
    assert sum(flags) == 2 and flags[-1] == 1  # one inner end inside, one at the end


# --------------------------------------------------------------------------------- MC-LS
def mcls(signal, seed=0):
    env = envs.make_env("mc-ls")
    env.reset(seed=seed, options={"task": [signal]})
    return env


def best_action(env, correct=True):
    """The reference's scripted solver (mine_maze.py --solve): right out of the signal cell; in a room forward to
    (0,1), to the column's correct side (diamond left, iron right; `correct=False`: the other), forward twice,
    back to the middle, forward; at the junction the turn the signal asks for (green: right)."""
    if env.phase == 0:
        return 2
    if env.phase == 2:
        return 2 if env.task[0] == 1 else 0
    left = (env.room_types[env.room] == 0) == correct
    return {(0, 1): 0 if left else 2, (-1, 3): 2, (1, 3): 0}.get((env.x, env.y), 1)


def play_inner(env, policy):
    """One inner episode: its steps, return and the last step's (terminated, truncated, flag)."""
    steps, total = 0, 0.0
    while True:
        obs, r, term, trunc, _ = env.step(policy(env))
        steps, total = steps + 1, total + r
        if obs[-1] == 1 or term or trunc:
            return steps, total, (term, trunc, obs[-1])


@pytest.mark.parametrize("signal", [0, 1])
def test_mcls_optimal_episode_is_98_steps_with_return_13_7(signal):
    # the reference's optimum: 1 + 16 * 6 + 1 steps; 81 progress moves + 16 correct checks at 0.1, then +4
    env = mcls(signal)
    steps, total, end = play_inner(env, best_action)
    assert steps == 98 and total == pytest.approx(13.7) and end == (False, False, 1)  # the first of 2 episodes
    steps, total, end = play_inner(env, best_action)  # the second: the meta-episode ends (terminal)
    assert steps == 98 and total == pytest.approx(13.7) and end == (True, False, 1)


@pytest.mark.parametrize("signal,turn,expected", [(1, 2, 4.0), (1, 0, -3.0), (0, 0, 4.0), (0, 2, -3.0)])
def test_mcls_final_turn_pays_by_the_signal_and_wrong_sides_pay_nothing(signal, turn, expected):
    env = mcls(signal)
    wrong = lambda e: turn if e.phase == 2 else best_action(e, correct=False)  # noqa: E731
    steps, total, _ = play_inner(env, wrong)
    assert steps == 98 and total == pytest.approx(8.1 + expected)  # the 16 checks on the wrong side pay 0


def test_mcls_forbidden_moves_change_nothing():
    # every position allows only the moves of the reference's walls; the others leave everything as it was
    env = mcls(1)
    probed = set()
    while True:
        allowed = {best_action(env)} | ({0, 2} if (env.phase, env.x, env.y) in ((1, 0, 1), (2, 0, 0)) else set())
        if env.phase != 1 or len(probed) < 10:  # the signal cell, rooms until all 9 positions were seen, the junction
            for a in sorted({0, 1, 2} - allowed):
                before, view = env.get_inner_state(), env._view().copy()
                obs, r, term, trunc, _ = env.step(a)
                assert r == 0.0 and not term and not trunc, (env.phase, env.x, env.y, a)
                np.testing.assert_array_equal(obs[:-1], view)
                assert_same_state(env.get_inner_state(), before)
                probed.add((env.phase, env.x, env.y))
        if env.phase == 2:
            break
        env.step(best_action(env))
    assert len(probed) == 1 + 9 + 1  # the signal cell, the 9 positions of a room, the junction (forward)


def test_mcls_timeout_is_a_terminal_step_at_200():
    env = mcls(0)
    for t in range(400):
        obs, r, term, trunc, _ = env.step(0)  # left: never leaves the signal cell
        assert r == 0.0
        if obs[-1] == 1 or term or trunc:
            break
    assert t == 199 and obs[-1] == 1 and not term  # the first inner episode ends at step 200
    for t in range(400):
        *_, term, trunc, _ = env.step(1)
        if term or trunc:
            break
    assert t == 199 and term and not trunc  # no time-limit truncation: a terminal step, as the reference


def test_mcls_views_are_fixed_and_distinct():
    # no noise: the same position always looks the same; every (phase, room type, position) has its own view
    a, b = mcls(1, seed=0), mcls(1, seed=5)
    np.testing.assert_array_equal(a._view(), b._view())
    red, green = mcls(0)._view(), a._view()
    assert np.abs(red - green).mean() > 0.1
    views = {}
    for seed in range(6):  # walk the optimal path in several room layouts; record each state's view
        env = mcls(seed % 2, seed)
        obs = env._view()
        while True:
            key = (env.phase, int(env.task[0]) if env.phase == 0 else 0,
                   int(env.room_types[env.room]) if env.phase == 1 else 0, env.x, env.y)
            views.setdefault(key, obs.copy())
            np.testing.assert_array_equal(views[key], obs[:300])  # identical views for identical positions
            obs, _, term, trunc, _ = env.step(best_action(env))
            obs = obs[:300]
            if env._episode == 1 or term:
                break
    assert len(views) == 2 + 2 * 6 + 1  # both signals, six positions of each room type on the path, the junction
    all_views = list(envs.MCLSEnv.VIEWS.values())
    assert len(all_views) == 21 and all(v.shape == (300,) and v.min() >= -1 and v.max() <= 1 for v in all_views)
    assert len({v.tobytes() for v in all_views}) == 21


# --------------------------------------------------------------------------------- seeding, checkpoints
@pytest.mark.parametrize("name", ["gridworld", "walker", "mc-ls", "ant-dir"])
def test_same_seed_same_trajectory(name):
    def rollout():
        vec, obs, _ = envs.make_vec(name, 2, seed=11)
        rng = np.random.default_rng(0)
        space = vec.single_action_space
        out = [obs]
        for _ in range(50):
            a = rng.integers(space.n, size=2) if hasattr(space, "n") else rng.uniform(-1, 1, (2,) + space.shape)
            o, r, *_ = vec.step(a)
            out += [o, r]
        vec.close()
        return out

    a, b = rollout(), rollout()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def assert_same_state(a, b, where="state"):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_state(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        np.testing.assert_array_equal(a, b, err_msg=where)


@pytest.mark.parametrize("name", ["gridworld-show", "cheetah-dir", "walker", "ant-dir", "mc-ls"])
def test_get_set_state_continues_exactly(name):
    rng = np.random.default_rng(0)
    vec, _, _ = envs.make_vec(name, 2, seed=4)
    space = vec.single_action_space
    acts = [rng.integers(space.n, size=2) if hasattr(space, "n") else rng.uniform(-1, 1, (2,) + space.shape)
            for _ in range(80)]
    for a in acts[:30]:
        vec.step(a)
    state = vec.get_state()
    ref = [vec.step(a)[:2] for a in acts[30:]]
    other, _, _ = envs.make_vec(name, 2, seed=999)
    other.set_state(state)
    # Restoring must not change the state itself: MuJoCo's mj_forward rewrites qacc_warmstart, the solver's
    # starting point, which shifted a resumed run by 1e-9 and then by whole returns.
    assert_same_state(other.get_state(), state)
    got = [other.step(a)[:2] for a in acts[30:]]
    for (o1, r1), (o2, r2) in zip(ref, got):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)


# --------------------------------------------------------------------------------- fixed tasks
@pytest.mark.parametrize("name,task,needle", [
    ("gridworld", "x", "a Grid-World task is a goal (x, y)"),
    ("gridworld", [1, 2, 3], "a Grid-World task is a goal (x, y)"),
    ("gridworld", [9, 9], "Grid-World goal (9, 9) is off the grid"),
    ("gridworld", [1, 0], "Grid-World goal (1, 0) is not one of the 21 goal cells"),
    ("cheetah-vel", [4.0], "a Cheetah-Vel task is a target velocity in [0, 3], got [4.0]"),
    ("cheetah-vel", [-0.5], "a Cheetah-Vel task is a target velocity in [0, 3]"),
    ("cheetah-dir", [0.5], "a Cheetah-Dir task is a direction, -1 or +1"),
    ("cheetah-dir", "x", "a Cheetah-Dir task is a direction, -1 or +1"),
    ("ant-dir", [0.0], "a Ant-Dir task is g, -1 or +1"),
    ("mc-ls", [0.5], "a MC-LS task is the signal, 0 (red) or 1 (green)"),
    ("walker", np.zeros(3), "a Walker task is 65 exponents u"),
])
def test_bad_fixed_task_is_a_one_line_error(name, task, needle):
    env = envs.make_env(name)
    with pytest.raises(ValueError) as e:
        env.reset(seed=0, options={"task": task})
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["gridworld-show", "cheetah-dir", "cheetah-vel", "ant-dir", "walker", "mc-ls", "ml10"])
def test_task_round_trip(name):
    # reset(options={"task": info["task"]}) rebuilds the same task: same c_M, same first observation
    env, other = envs.make_env(name), envs.make_env(name)
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        obs2, info2 = other.reset(seed=seed, options={"task": info["task"]})
        np.testing.assert_array_equal(info2["task"], info["task"])
        assert info2["task"].shape == (env.task_dim,) == (envs.get_spec(name).task_dim,)
        if name == "ml10":  # the same Meta-World class and parametric variation (object and goal positions)
            assert type(other.current) is type(env.current)
            np.testing.assert_array_equal(other.current._last_rand_vec, env.current._last_rand_vec)
        else:
            np.testing.assert_array_equal(obs2, obs)


def succeed_at(env, steps):
    """Make env's Meta-World env report success at these steps of the meta-episode (1-based), never elsewhere."""
    real, count = env.current.step, [0]

    def step(action):
        obs, reward, terminated, truncated, info = real(action)
        count[0] += 1
        return obs, reward, terminated, truncated, info | {"success": float(count[0] in steps)}

    env.current.step = step


def test_ml10_success_ends_the_inner_episode_and_the_next_one_plays_the_same_task():
    env = envs.make_env("ml10")
    _, info = env.reset(seed=0)
    task, mw = info["task"], env.current
    succeed_at(env, {7, 7 + 12})
    for t in range(1, 8):
        obs, _, term, trunc, step_info = env.step(np.zeros(4, np.float32))
    assert obs[-1] == 1 and not term and not trunc and step_info["success"] == 1.0  # episode 1 ended at step 7
    assert env._episode == 1 and env._t == 0 and env.current is mw and mw._last_rand_vec is not None
    np.testing.assert_array_equal(step_info["task"], task)  # the same task goes on
    np.testing.assert_allclose(obs[:-1], mw._get_obs(), rtol=1e-6)  # from the next episode's first observation
    for t in range(1, 13):
        obs, _, term, trunc, step_info = env.step(np.zeros(4, np.float32))
        assert step_info["success"] == float(t == 12)
    assert term and not trunc  # success in the last inner episode ends the meta-episode as a terminal step


def test_ml10_success_reaches_the_vector_env_at_inner_and_meta_episode_ends():
    vec, _, _ = envs.make_vec("ml10", 2, 0)
    for env in vec.vec.envs:
        succeed_at(env, {10, 500 + 3})  # env 0 and 1 alike: episode 1 ends at step 10, episode 2 at its step 493
    flags, ends = [], []
    for t in range(10 + 500):
        obs, _, term, trunc, info = vec.step(np.zeros((2, 4), np.float32))
        flags.append(info["success"].copy())
        ends.append(term | trunc)
    flags, ends = np.array(flags), np.array(ends)
    assert (np.flatnonzero(flags[:, 0]) == [9, 502]).all() and (flags[:, 0] == flags[:, 1]).all()
    assert (np.flatnonzero(ends[:, 0]) == [502]).all()  # the meta-episode ended at the second success, terminal
    assert not trunc.any()


def test_step_info_of_a_meta_episodes_last_step_reaches_the_vector_env():
    # MC-LS's final turn (+1: right for the signal) and Cheetah-Vel's velocity are in each step's info; the step that
    # ends a meta-episode has them too (gymnasium moves its info to final_info; GymVec puts them back)
    vec, _, _ = envs.make_vec("mc-ls", 2, 0)
    turns = []
    for _ in range(2 * 98):
        _, _, term, trunc, info = vec.step(np.array([best_action(env) for env in vec.vec.envs]))
        turns.append(info["turn"].copy())
    turns = np.array(turns)
    assert term.all() and (turns[97] == 1).all() and (turns[-1] == 1).all() and np.abs(turns).sum() == 4
    vec, _, info = envs.make_vec("cheetah-vel", 2, 0)
    rng = np.random.default_rng(0)
    for t in range(200):
        _, _, _, trunc, info = vec.step(rng.uniform(-1, 1, (2, 6)).astype(np.float32))
    assert trunc.all() and info["velocity"].shape == (2,) and np.all(info["velocity"] != 0)
