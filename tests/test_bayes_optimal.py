"""The Bayes-optimal values: the closed forms agree with the real envs, and the bounds are consistent."""

import numpy as np
import pytest

import bayes_optimal as bo
import envs


def straight_path(goal):
    return [2] * goal[0] + [1] * goal[1]  # right x times, up y times


def play(variant, goal, first_episode):
    env = envs.GridWorldEnv(variant)
    env.reset(options={"task": goal})
    total = 0.0
    for e in range(4):
        actions = (first_episode if e == 0 else straight_path(goal)) + [0] * 15
        for a in actions[:15]:
            total += env.step(a)[1]
    return total


@pytest.mark.parametrize("variant", ["plain", "dense"])
def test_known_goal_value_matches_env(variant):
    dense = variant == "dense"
    for g in bo.GOALS:  # per goal: walking straight there in all 4 episodes
        expected = bo.known_value(1, 0, (0, 0), g, dense)
        assert play(variant, g, straight_path(g)) == pytest.approx(expected, abs=1e-5)
    plain = np.mean([bo.known_value(1, 0, (0, 0), g) for g in bo.GOALS])
    assert plain == pytest.approx(np.mean([4 * (16.1 - 1.1 * bo.DIST[g]) for g in bo.GOALS]))


@pytest.mark.parametrize("variant", ["plain", "dense"])
def test_known_value_mid_episode_matches_env(variant):
    # wander 5 steps away from goal (4, 4), learn it there, then walk: the walk's cost depends on the rule
    env, goal, dense = envs.GridWorldEnv(variant), (4, 4), variant == "dense"
    env.reset(options={"task": goal})
    wander = [2, 2, 1, 4, 4]  # right, right, up, left, left: ends at (0, 1) after 5 steps
    total = sum(env.step(a)[1] for a in wander)
    rest = [2] * 4 + [1] * 3 + [0] * 3 + (straight_path(goal) + [0] * 7) * 3
    total += sum(env.step(a)[1] for a in rest)
    wandered = sum(bo.reward(p, goal, dense) for p in [(1, 0), (2, 0), (2, 1), (1, 1), (0, 1)])
    assert total == pytest.approx(wandered + bo.known_value(1, 5, (0, 1), goal, dense), abs=1e-5)


def test_dense_expectimax_policy_earns_its_value_in_env():
    """Play the expectimax's own policy in the real Dense env on every goal: each inner episode must earn
    what the model says (dense_episodes), their mean the value it claims (so the model of rewards, moves
    and beliefs is the env's), and it can be no better than knowing the goal from the start."""
    goals, returns = tuple(bo.GOALS), []
    for g in bo.GOALS:
        env = envs.GridWorldEnv("dense")
        env.reset(options={"task": g})
        belief, episodes = goals, []
        for e in range(1, 5):
            pos, total = (0, 0), 0.0
            for t in range(15):
                move = bo.dense_move(e, t, pos, belief)
                obs, r, *_ = env.step(bo.MOVES.index(move))
                pos = bo.step(pos, move)
                if t < 14:  # the last step already observes the next episode's start
                    assert tuple(obs[:2]) == pos
                belief = tuple(b for b in belief if abs(bo.reward(pos, b, dense=True) - r) < 1e-6)
                total += r
            episodes.append(total)
        assert belief == (g,)
        np.testing.assert_allclose(episodes, bo.dense_episodes(g), atol=1e-5)
        returns.append(sum(episodes))
    value = bo.dense_value(1, 0, (0, 0), goals)
    assert np.mean(returns) == pytest.approx(value, abs=1e-5)
    assert value < np.mean([bo.known_value(1, 0, (0, 0), g, dense=True) for g in bo.GOALS])


def test_plain_plan_per_episode_returns_match_env_and_sum_to_the_value():
    """Follow the best plan in the real env until the goal shows, then stay (and walk straight in later
    episodes): each inner episode earns what plan_episodes says, and their mean sums to the exact value."""
    value, plan = bo.plain_lower_bound()
    per_goal = []
    for g in bo.GOALS:
        env = envs.GridWorldEnv("plain")
        env.reset(options={"task": g})
        episodes, found = [], False
        for e in range(4):
            pos, total = (0, 0), 0.0
            for t in range(15):
                if found:
                    nxt = bo.toward(pos, g)
                else:
                    nxt = divmod(int(plan[e, t]), 5)
                move = (nxt[0] - pos[0], nxt[1] - pos[1])
                r = env.step(bo.MOVES.index(move))[1]
                pos, total = nxt, total + r
                found = found or r == 1.0
            episodes.append(total)
        np.testing.assert_allclose(episodes, bo.plan_episodes(plan, g), atol=1e-5)
        per_goal.append(episodes)
    assert np.mean(per_goal, 0).sum() == pytest.approx(value, abs=1e-6)


def test_show_look_first_matches_env():
    look, move_first = bo.show_values()
    values = [play("show", g, [0] + straight_path(g)) for g in bo.GOALS]  # stay = look, then go
    assert np.mean(values) == pytest.approx(look)
    assert move_first < look


def test_found_value_matches_env():
    # a plain Grid-World plan that misses goal (0, 4) in episode 1 and finds it at step 4 of episode 2
    env = envs.GridWorldEnv("plain")
    env.reset(options={"task": (0, 4)})
    path = [2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]  # never touches (0, 4) in episode 1
    second = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # reaches (0, 4) at step 4 of episode 2
    total = sum(env.step(a)[1] for a in path) + sum(env.step(a)[1] for a in second)
    total += sum(env.step(a)[1] for e in range(2) for a in straight_path((0, 4)) + [0] * 11)
    assert total == pytest.approx(bo.found_value(2, 4, 4))


def test_hungarian_known_answer():
    w = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    assert bo.hungarian_max(w) == pytest.approx(4 + 5 + 2)  # the best of the 6 permutations
    assert bo.hungarian_max(np.array([[1.0, 9.0, 0.0]])) == 9.0


def test_plain_bracket_closes():
    (lower, _), upper = bo.plain_lower_bound(width=5000), bo.relaxation_bound()
    assert lower <= upper + 1e-9
    assert upper == pytest.approx(37.2143, abs=1e-4)
    assert lower == pytest.approx(upper, abs=1e-6)
