"""Bayes-optimal expected meta-episode return of the three Grid-Worlds (the dashed line of plot.py).

    python bayes_optimal.py            # prints the values and writes results/bayes_optimal.json

It also writes each inner episode's expected return under a Bayes-optimal policy (`per_episode`), which
plot.py marks on the adaptation figure.

An agent that knows the task distribution (21 goals, uniform) but not the goal maximises the expected
return of the 4 x 15-step meta-episode. Facts used (rules in envs.py):
- Once the goal is known, the best an episode can do is walk the shortest path (d = x + y steps from
  the start) and stay: return 16.1 - 1.1 d (d - 1 steps at -0.1, then 16 - d steps at +1; in Dense the
  steps on the way pay -distance/5, so 16 - d - d (d - 1) / 10). Finding the
  goal at step t of an episode, with no knowledge before, gives 16.1 - 1.1 t for that episode.
- Beliefs are sets of goals consistent with what was seen (uniform over the set).

Grid-World Dense: exact expectimax over (episode, step, position, belief set) with memoisation; the
distance reward collapses the beliefs quickly (27k belief states).

Grid-World (plain): the only observation is found / not found, so the belief is "every goal not yet
visited", and there are too many visited sets to enumerate. We bracket the optimum instead:
- lower bound: the expected return of a concrete plan (one search path per episode, found by a beam
  search scored with an admissible bound), evaluated exactly;
- upper bound: a relaxation solved exactly as an assignment problem: each goal is found at some
  (episode, step) slot no earlier than its distance, at most one goal per slot (a step visits one cell),
  or never (-6); the path constraints between successive goals are dropped, so no plan can do better.
The two meet (to 1e-9): the value is exact.

Grid-World Show: staying (or bumping a wall) at step 1 shows the goal, after which the shortest path is
optimal ("look first"). Any other first step can show the goal at step 2 at the earliest, so the best
policy that moves first is bounded by the same relaxation with search slots from step 2 and a per-goal
"revealed at step 2" option. The optimum is max(look first, moving first) and the bound on the second
is below the first: look first is exactly optimal.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import numpy as np

import envs

E, T = 4, 15
CELLS = [(x, y) for x in range(5) for y in range(5)]
GOALS = [tuple(g) for g in envs.GOALS]
MOVES = [tuple(m) for m in envs.MOVES]
DIST = {g: g[0] + g[1] for g in GOALS}


def step(pos, move):
    return (min(4, max(0, pos[0] + move[0])), min(4, max(0, pos[1] + move[1])))


def found_value(e, t, d):
    """Return of the rest of the meta-episode when the goal (at distance d) is found at step t of
    episode e (1-based), after e - 1 episodes without finding it (-1.5 each)."""
    return -1.5 * (e - 1) + (16.1 - 1.1 * t) + (E - e) * (16.1 - 1.1 * d)


def reward(pos, goal, dense=False):
    """The reward of standing on `pos` after a step (envs.py): 1 on the goal, else -0.1 (Dense: -manhattan/5)."""
    if pos == goal:
        return 1.0
    return -(abs(pos[0] - goal[0]) + abs(pos[1] - goal[1])) / 5 if dense else -0.1


def toward(pos, goal):
    """One step along a shortest path (x first); stay on the goal."""
    dx, dy = goal[0] - pos[0], goal[1] - pos[1]
    return (pos[0] + (dx > 0) - (dx < 0), pos[1]) if dx else (pos[0], pos[1] + (dy > 0) - (dy < 0))


def known_value(e, t, pos, goal, dense=False):
    """Return of the rest when the goal becomes known at step t of episode e, standing at `pos`: walk
    the shortest path and stay, now and in every later episode. Optimal under both reward rules: a step
    closer is never worse than any other step."""
    def walk(t, pos):
        total = 0.0
        for _ in range(t, T):
            pos = toward(pos, goal)
            total += reward(pos, goal, dense)
        return total

    return walk(t, pos) + (E - e) * walk(0, (0, 0))


# ------------------------------------------------------------------ exact expectimax (Dense)
def dense_q(e, t, pos, belief, move):
    """Expected return of `move` as step t + 1 of episode e at `pos` (belief = goals still possible),
    acting optimally afterwards. The reward after the step splits the belief by distance to the goal."""
    nxt = step(pos, move)
    groups = {}
    for g in belief:
        groups.setdefault(reward(nxt, g, dense=True), []).append(g)
    return sum(len(gs) * (r + dense_value(e, t + 1, nxt, tuple(gs))) for r, gs in groups.items()) / len(belief)


def dense_move(e, t, pos, belief):
    """The expectimax policy's move; with the goal known, a step along the shortest path."""
    if len(belief) == 1:
        nxt = toward(pos, belief[0])
        return (nxt[0] - pos[0], nxt[1] - pos[1])
    return max(MOVES, key=lambda m: dense_q(e, t, pos, belief, m))


def dense_episodes(goal):
    """The expectimax policy's return in each inner episode when the goal is `goal` (the model's rules)."""
    belief, returns = tuple(GOALS), []
    for e in range(1, E + 1):
        pos, total = (0, 0), 0.0
        for t in range(T):
            pos = step(pos, dense_move(e, t, pos, belief))
            r = reward(pos, goal, dense=True)
            belief = tuple(b for b in belief if abs(reward(pos, b, dense=True) - r) < 1e-9)
            total += r
        returns.append(total)
    return returns


@functools.lru_cache(maxsize=None)
def dense_value(e, t, pos, belief):
    """Expected return from step t (taken) of episode e at `pos`, Bayes-optimal from here."""
    if e > E:
        return 0.0
    if t == T:
        return dense_value(e + 1, 0, (0, 0), belief)
    if len(belief) == 1:
        return known_value(e, t, pos, belief[0], dense=True)
    return max(dense_q(e, t, pos, belief, move) for move in MOVES)


# ------------------------------------------------------------------ plain Grid-World: bracket
def hungarian_max(weights):
    """Maximum-weight assignment of every row to a distinct column (rows <= columns), O(n^2 m)."""
    cost = -np.asarray(weights, dtype=float)
    n, m = cost.shape
    u, v, p, way = np.zeros(n + 1), np.zeros(m + 1), np.zeros(m + 1, dtype=int), np.zeros(m + 1, dtype=int)
    for i in range(1, n + 1):
        p[0], j0 = i, 0
        minv, used = np.full(m + 1, np.inf), np.zeros(m + 1, dtype=bool)
        while True:
            used[j0] = True
            i0, delta, j1 = p[j0], np.inf, 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j], way[j] = cur, j0
                    if minv[j] < delta:
                        delta, j1 = minv[j], j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    rows = {p[j] - 1: j - 1 for j in range(1, m + 1) if p[j]}
    return sum(-cost[r, c] for r, c in rows.items())


def relaxation_bound(first_step=1, fallback=None):
    """Assignment relaxation: every goal takes a distinct (episode, step) search slot no earlier than its
    distance (and than `first_step` in episode 1), or its `fallback` value (default: never found, -6)."""
    slots = [(e, t) for e in range(1, E + 1) for t in range(1, T + 1) if e > 1 or t >= first_step]
    fallback = fallback or (lambda g: -6.0)
    w = np.zeros((len(GOALS), len(slots) + len(GOALS)))
    for i, g in enumerate(GOALS):
        for j, (e, t) in enumerate(slots):
            w[i, j] = found_value(e, t, DIST[g]) if t >= DIST[g] else -1e9
        w[i, len(slots):] = fallback(g)  # as many fallback columns as goals: any goal may take one
    return hungarian_max(w) / len(GOALS)


def episodes_after_finding(e_found, t_found, d):
    """Each inner episode's return when the goal (at distance d) is first found at step t_found of episode
    e_found (None: never): -1.5 before, 16.1 - 1.1 t that episode, 16.1 - 1.1 d after (`found_value`)."""
    if e_found is None:
        return [-1.5] * E
    return [-1.5 if e < e_found else 16.1 - 1.1 * (t_found if e == e_found else d) for e in range(1, E + 1)]


def show_values():
    """(look first, upper bound on any policy whose first step leaves the start cell)."""
    look = np.mean([-0.1 + known_value(1, 1, (0, 0), g) for g in GOALS])
    move_first = relaxation_bound(first_step=2, fallback=lambda g: -0.2 + known_value(1, 2, (0, 0), g))
    return float(look), float(move_first)


def plain_lower_bound(width=20000):
    """Beam search over the 60 steps of a search plan; returns the exact value of the best plan found and
    that plan, the cell (x * 5 + y) it visits at each step of each episode, (E, T)."""
    goal_index = np.full(25, -1)
    for i, g in enumerate(GOALS):
        goal_index[g[0] * 5 + g[1]] = i
    nxt = np.array([[step(c, m)[0] * 5 + step(c, m)[1] for m in MOVES] for c in CELLS])
    dist_to = np.array([[abs(c[0] - g[0]) + abs(c[1] - g[1]) for g in GOALS] for c in CELLS])
    d_goal = np.array([DIST[g] for g in GOALS])
    pos, mask, acc = np.zeros(1, int), np.zeros(1, np.int64), np.zeros(1)
    paths = np.zeros((1, 0), np.int8)
    bits = 1 << np.arange(len(GOALS), dtype=np.int64)
    for e in range(1, E + 1):
        pos[:] = 0
        for t in range(1, T + 1):
            pos2, mask2, acc2 = nxt[pos].ravel(), np.repeat(mask, len(MOVES)), np.repeat(acc, len(MOVES))
            gi = goal_index[pos2]
            new = (gi >= 0) & ((mask2 >> np.maximum(gi, 0)) & 1 == 0)
            acc2 = acc2 + np.where(new, found_value(e, t, d_goal[np.maximum(gi, 0)]), 0.0)
            mask2 = mask2 | np.where(new, bits[np.maximum(gi, 0)], 0)
            # admissible score: each unvisited goal at its earliest possible time from here
            left = (mask2[:, None] & bits[None, :]) == 0
            t_hit = t + dist_to[pos2]
            later = found_value(e + 1, d_goal, d_goal) if e < E else np.full(len(GOALS), -6.0)
            best_rest = np.where(t_hit <= T, found_value(e, t_hit, d_goal), later)
            score = acc2 + (left * best_rest).sum(1)
            key = mask2 * 25 + pos2
            order = np.lexsort((-acc2, key))  # dedupe (position, visited set): keep the best so far
            first = np.r_[True, key[order][1:] != key[order][:-1]]
            keep = order[first]
            keep = keep[np.argsort(-score[keep])[:width]]
            pos, mask, acc = pos2[keep], mask2[keep], acc2[keep]
            paths = np.concatenate([np.repeat(paths, len(MOVES), 0)[keep], pos2[keep, None].astype(np.int8)], 1)
    found = np.array([bin(int(m)).count("1") for m in mask])
    value = (acc - 6.0 * (len(GOALS) - found)) / len(GOALS)
    return float(np.max(value)), paths[np.argmax(value)].reshape(E, T)


def plan_episodes(plan, goal):
    """Each inner episode's return when following `plan` until the goal shows, then the shortest path."""
    hits = [(e + 1, t + 1) for e in range(E) for t in range(T) if plan[e, t] == goal[0] * 5 + goal[1]]
    return episodes_after_finding(*(hits[0] if hits else (None, None)), DIST[goal])


def main():
    (lower, plan), upper = plain_lower_bound(), relaxation_bound()
    assert lower <= upper + 1e-9
    print(f"gridworld: plan {lower:.4f}, upper bound {upper:.4f}" + (" -> exact" if upper - lower < 1e-9 else ""))
    look, move_first = show_values()
    print(f"gridworld-show: look first {look:.4f}, any other first step <= {move_first:.4f}"
          + (" -> look first is exact" if move_first <= look else ""))
    dense = dense_value(1, 0, (0, 0), tuple(GOALS))
    print(f"gridworld-dense: {dense:.4f} (exact expectimax, {dense_value.cache_info().currsize:,} belief states)")
    oracle = [np.mean([known_value(1, 0, (0, 0), g, rule) for g in GOALS]) for rule in (False, True)]
    print(f"for reference, knowing the goal from the start: {oracle[0]:.4f} (Dense {oracle[1]:.4f})")
    # upper bounds where not exact, so "% of Bayes-optimal" never flatters an agent
    per_episode = {"gridworld": np.mean([plan_episodes(plan, g) for g in GOALS], 0),
                   "gridworld-show": np.mean([episodes_after_finding(1, DIST[g] + 1, DIST[g]) for g in GOALS], 0),
                   "gridworld-dense": np.mean([dense_episodes(g) for g in GOALS], 0)}
    for name, values in per_episode.items():
        print(f"{name} per inner episode: " + " / ".join(f"{v:.4f}" for v in values))
    out = {"gridworld": round(upper, 4), "gridworld-show": round(max(look, move_first), 4),
           "gridworld-dense": round(dense, 4),
           "per_episode": {name: [round(float(v), 4) for v in values] for name, values in per_episode.items()}}
    os.makedirs("results", exist_ok=True)
    with open("results/bayes_optimal.json.tmp", "w") as fh:
        json.dump(out, fh, indent=1)
    os.replace("results/bayes_optimal.json.tmp", "results/bayes_optimal.json")
    print("wrote results/bayes_optimal.json")


if __name__ == "__main__":
    sys.exit(main())
