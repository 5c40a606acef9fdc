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


def test_known_goal_value_matches_env():
    values = [play("plain", g, straight_path(g)) for g in bo.GOALS]
    assert np.mean(values) == pytest.approx(np.mean([4 * (16.1 - 1.1 * bo.DIST[g]) for g in bo.GOALS]))


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


def test_plain_bracket_closes_and_dense_between():
    lower, upper = bo.plain_lower_bound(width=5000), bo.relaxation_bound()
    assert lower <= upper + 1e-9
    assert upper == pytest.approx(37.2143, abs=1e-4)
    assert lower == pytest.approx(upper, abs=1e-6)
    dense, _ = bo.dense_expectimax()
    oracle = np.mean([4 * (16.1 - 1.1 * bo.DIST[g]) for g in bo.GOALS])
    assert upper < dense < oracle
