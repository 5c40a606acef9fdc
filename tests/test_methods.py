"""What every recurrent method script must do: learn, run on every env, keep rollout and update consistent,
bootstrap time limits once, resume exactly, survive Ctrl-C and kills, reject bad input in one line.

The three scripts (rnn.py, rnn_s.py, rnn_hn.py) share these tests; each has its own learning threshold."""

import csv
import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ["rnn_hn", "rnn_s", "rnn"]
ALL = ["rnn", "rnn_s", "rnn_hn", "vi_hn", "ti_pp_hn", "ti"]  # every method script, for the checks they share
# Grid-World, seed 73, lr 1e-3: the mean return of the last 5 updates must pass the bar. Measured (CPU):
# rnn_hn 2.35 and rnn -0.78 after 48 updates (46,080 frames), rnn_s 0.38 after 96 (it starts slower:
# -3.97 after 48). A uniformly random policy scores -4.61 and rnn on shuffled rewards -4.46
# (test_broken_learner_fails_the_bar).
LEARN_THRESHOLD = {"rnn_hn": 1.0, "rnn_s": -2.0, "rnn": -2.5}
LEARN_FRAMES = {"rnn_hn": 46080, "rnn_s": 92160, "rnn": 46080}


def run(method, *argv, tmp_path, name="run"):
    mod = importlib.import_module(method)
    args = mod.parse_args(["--run-dir", str(tmp_path / name), "--log-every", "1000", *argv])
    return mod, args, mod.main(args)


def rows(path):
    with open(os.path.join(path, "progress.csv")) as fh:
        return list(csv.DictReader(fh))


def late_return(path, n=5):
    return float(np.mean([float(r["return"]) for r in rows(path)[-n:]]))


def script(method, *argv, timeout=300):
    return subprocess.run([sys.executable, f"{method}.py", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def stops_with(fn, capsys):
    """(exit status, stderr) of a command run in this process, as the shell would see them: sys.exit("...")
    prints its message and exits 1, argparse's error exits 2. (A subprocess per case cost 5 s.)"""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        fn()
    code, err = stop.value.code, capsys.readouterr().err
    return (1, err + code + "\n") if isinstance(code, str) else (code, err)


def resume(run_dir, *argv):
    mod = importlib.import_module("rnn")
    return mod.main(mod.parse_args(["--resume", str(run_dir), *argv]))


class ShuffledRewards:
    """A broken learner's world: the rewards are permuted across envs and steps, so they say nothing."""

    def __init__(self, vec):
        self.vec, self.rng = vec, np.random.default_rng(0)

    def __getattr__(self, name):
        return getattr(self.vec, name)

    def step(self, actions):
        obs, reward, term, trunc, info = self.vec.step(actions)
        return obs, self.rng.permutation(reward), term, trunc, info


def shuffle_rewards(monkeypatch):
    """From here on envs.make_vec builds ShuffledRewards worlds (for a broken learner's run)."""
    real = envs.make_vec

    def shuffled(*a, **k):
        vec, obs, info = real(*a, **k)
        return ShuffledRewards(vec), obs, info

    monkeypatch.setattr(envs, "make_vec", shuffled)


def assert_same_curve(full, cut, updates):
    """Two runs' logs agree row for row (timings aside), and the cut one holds each update once."""
    a_rows, b_rows = rows(full), rows(cut)
    assert [r["update"] for r in b_rows] == [str(u) for u in range(1, updates + 1)]
    for a, b in zip(a_rows, b_rows):
        for k in a:
            if k not in ("sps", "time"):
                assert a[k] == b[k], (k, a[k], b[k])


def learn_args(method):
    return ["--env", "gridworld", "--seed", "73", "--lr", "1e-3", "--total-timesteps", str(LEARN_FRAMES[method])]


# ------------------------------------------------------------------------------------- learning
@pytest.mark.parametrize("method", METHODS)
def test_learns_gridworld(method, tmp_path):
    run(method, *learn_args(method), tmp_path=tmp_path)
    assert late_return(tmp_path / "run") > LEARN_THRESHOLD[method]


def test_broken_learner_fails_the_bar(tmp_path, monkeypatch):
    shuffle_rewards(monkeypatch)
    run("rnn", *learn_args("rnn"), tmp_path=tmp_path)  # the fastest script; rnn_hn scored the same, -4.47
    assert late_return(tmp_path / "run") < min(LEARN_THRESHOLD.values())


# ------------------------------------------------------------------------------------- every env
def record_ratios(monkeypatch, mod):
    """Wraps the script's ppo_loss to record every minibatch's probability ratio."""
    ratios, real = [], mod.ppo_loss

    def recording(logprob, old_logprob, *rest):
        ratios.append((logprob - old_logprob).detach().exp())
        return real(logprob, old_logprob, *rest)

    monkeypatch.setattr(mod, "ppo_loss", recording)
    return ratios


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("env", list(envs.ENVS))
def test_every_env_rollout_and_update_agree(method, env, tmp_path, monkeypatch):
    # Two updates of 4 envs x 50 steps. The first minibatch of each update sees the weights the rollout
    # used, so its ratio must be 1: any mismatch between what the rollout fed the GRU and what the update
    # replays (inputs, resets, the hidden state at the rollout start, normalisation) breaks it. The second
    # update starts mid-meta-episode (non-zero hidden state) everywhere; on the grids 50 steps cut
    # meta-episodes mid-rollout, and Ant-Dir and Walker end some by falls.
    mod = importlib.import_module(method)
    ratios = record_ratios(monkeypatch, mod)
    fit = ["--num-minibatches", "4"] if 4 % envs.get_spec(env).num_minibatches else []  # (ML10: 8 minibatches)
    _, args, summary = run(method, "--env", env, "--num-envs", "4", "--num-steps", "50", "--total-timesteps", "400",
                           *fit, tmp_path=tmp_path)
    per_update = args.update_epochs * args.num_minibatches
    assert summary["updates"] == 2 and len(ratios) == 2 * per_update
    for first in (ratios[0], ratios[per_update]):
        assert (first - 1).abs().max() < 1e-4
    assert any((r - 1).abs().max() > 1e-4 for r in ratios[1:per_update]) or per_update == 1  # it does learn
    log = rows(tmp_path / "run")
    assert [r["update"] for r in log] == ["1", "2"]
    for col in ("policy_loss", "value_loss", "entropy", "latent_grad_norm", "grad_norm", "encoder_grad_norm"):
        assert np.isfinite(float(log[-1][col])), col


@pytest.mark.parametrize("method", METHODS)
def test_approx_kl_stays_finite_where_a_ratio_underflows(method, tmp_path, monkeypatch):
    # A sample whose probability fell by e^-200 has a ratio of exactly 0 in float32. The logged approximate
    # KL, mean((ratio - 1) - log ratio), must take the log-ratio itself (-200: that sample adds 199), not
    # log(0) = -inf. Gridworld, 4 envs x 60 steps, 4 minibatches: one env's 60 steps per minibatch.
    mod = importlib.import_module(method)
    real = mod.ppo_loss

    def first_sample_far(logprob, old_logprob, *rest):
        return real(logprob, old_logprob + 200.0 * (torch.arange(len(old_logprob)) == 0), *rest)

    monkeypatch.setattr(mod, "ppo_loss", first_sample_far)
    run(method, "--env", "gridworld", "--num-envs", "4", "--total-timesteps", "240", tmp_path=tmp_path)
    assert float(rows(tmp_path / "run")[-1]["approx_kl"]) == pytest.approx(199 / 60, abs=0.05)


class TimeLimitWorld:
    """A fake 3-d grid-like env with zero rewards: env 0's meta-episode is cut by a time limit after step
    10 (final observation's first entry 7, the next observation's 3), env 1's terminates after step 20."""

    num_envs = 2
    single_observation_space = gym.spaces.Box(-10, 10, (3,), np.float32)
    single_action_space = gym.spaces.Discrete(5)

    def __init__(self):
        self.t = 0

    def step(self, action):
        self.t += 1
        obs = np.full((2, 3), 3.0, np.float32)
        obs[:, 2] = 0.0
        truncated, terminated = np.array([self.t == 11, False]), np.array([False, self.t == 21])
        final = np.zeros((2, 3), np.float32)
        final[0] = [7.0, 7.0, 0.0]
        return obs, np.zeros(2, np.float32), terminated, truncated, {"final_obs": final}

    def get_state(self):
        return None

    def close(self):
        pass


@pytest.mark.parametrize("method", METHODS)
def test_time_limit_bootstraps_once_and_termination_not(method, tmp_path, monkeypatch):
    mod = importlib.import_module(method)
    monkeypatch.setattr(envs, "make_vec", lambda *a, **k: (TimeLimitWorld(), np.full((2, 3), 3.0, np.float32), {}))
    heads = mod.Agent.heads

    def value_is_first_obs_entry(self, latent, obs):  # V(s) = s[0] (plus 0 * the network's, for gradients)
        dist, value = heads(self, latent, obs)
        return dist, obs[:, 0] + 0.0 * value

    monkeypatch.setattr(mod.Agent, "heads", value_is_first_obs_entry)
    seen = {}
    gae = mod.compute_gae

    def recording(rewards, values, ended, *rest):
        seen.update(rewards=rewards.clone(), ended=ended.clone())
        return gae(rewards, values, ended, *rest)

    monkeypatch.setattr(mod, "compute_gae", recording)
    run(method, "--env", "gridworld", "--num-envs", "2", "--num-minibatches", "1", "--num-steps", "30",
        "--total-timesteps", "60", tmp_path=tmp_path)
    gamma = envs.get_spec("gridworld").gamma
    expected = torch.zeros(30, 2)
    expected[10, 0] = gamma * 7.0  # V(final observation), not V(next observation) = 3, and only there
    torch.testing.assert_close(seen["rewards"], expected)
    assert seen["ended"][10, 0] == 1 and seen["ended"][20, 1] == 1 and seen["ended"].sum() == 2


# ------------------------------------------------------------------------------------- resume, kills, Ctrl-C
@pytest.mark.parametrize("method", METHODS)
def test_resume_gives_the_same_curve(method, tmp_path):
    common = ["--env", "gridworld-show", "--seed", "3", "--total-timesteps", str(8 * 960), "--save-every", "2"]
    run(method, *common, tmp_path=tmp_path, name="full")
    # "killed" after 5 updates: the log has 5 rows, the checkpoint is from update 4, so update 5 is redone
    run(method, *common, "--stop-after", "5", tmp_path=tmp_path, name="cut")
    assert len(rows(tmp_path / "cut")) == 5
    mod = importlib.import_module(method)
    mod.main(mod.parse_args(["--resume", str(tmp_path / "cut"), "--log-every", "1000"]))
    assert_same_curve(tmp_path / "full", tmp_path / "cut", 8)


def test_stopped_before_its_first_checkpoint_starts_over(tmp_path):
    # a kill before update --save-every leaves config.json and some log rows but no checkpoint
    common = ["--env", "gridworld", "--seed", "3", "--total-timesteps", str(4 * 960), "--save-every", "10"]
    run("rnn", *common, tmp_path=tmp_path, name="full")
    run("rnn", *common, "--stop-after", "2", tmp_path=tmp_path, name="cut")
    assert len(rows(tmp_path / "cut")) == 2 and not os.path.exists(tmp_path / "cut" / "checkpoint.pt")
    mod = importlib.import_module("rnn")
    mod.main(mod.parse_args(["--resume", str(tmp_path / "cut"), "--log-every", "1000"]))
    assert_same_curve(tmp_path / "full", tmp_path / "cut", 4)


def test_sigkill_then_resume_logs_every_update_once(tmp_path):
    run_dir = str(tmp_path / "run")
    cmd = [sys.executable, "rnn.py", "--env", "gridworld", "--total-timesteps", str(40 * 960), "--save-every", "3",
           "--log-every", "1", "--threads", "1", "--run-dir", run_dir]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "update 8/40" in line:  # rows 1-8 logged, the checkpoint is from update 6
            break
    proc.kill()
    proc.wait()
    with open(os.path.join(run_dir, "progress.csv"), "a") as fh:
        fh.write("9,8640,-4.1")  # a line cut half-way by the kill
    open(os.path.join(run_dir, "checkpoint.pt.tmp999"), "w").write("half a checkpoint")
    resume(run_dir, "--total-timesteps", str(12 * 960))  # in this process: the kill was the subprocess's
    assert [r["update"] for r in rows(run_dir)] == [str(u) for u in range(1, 13)]  # each update exactly once
    assert not [f for f in os.listdir(run_dir) if ".tmp" in f]  # the stale temporary file is gone
    assert json.load(open(os.path.join(run_dir, "config.json")))["total_timesteps"] == 12 * 960


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    cmd = [sys.executable, "rnn.py", "--env", "gridworld", "--total-timesteps", "4000000", "--save-every", "0",
           "--log-every", "1", "--threads", "1", "--run-dir", run_dir]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    assert run_dir in first  # the run folder is named when training starts
    for line in proc.stdout:
        if "update 3/" in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"--resume {run_dir}" in out and "Traceback" not in err
    done = len(rows(run_dir))
    capsys.readouterr()
    resume(run_dir, "--total-timesteps", str((done + 1) * 960))
    assert f"resuming {run_dir} at update {done}/" in capsys.readouterr().out
    assert [r["update"] for r in rows(run_dir)] == [str(u) for u in range(1, done + 2)]


# ------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("argv,needle", [
    (["--log-every", "0"], "--log-every must be > 0"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--threads", "0"], "--threads must be > 0"),
    (["--gru-size", "0"], "--gru-size must be > 0"),
    (["--hidden", "0"], "--hidden must be sizes > 0 like 256,128"),
    (["--lr", "inf"], "--lr must be a finite number > 0"),
    (["--env", "nope"], "invalid choice: 'nope' (choose from 'gridworld'"),
    (["--lr", "-1"], "--lr must be a finite number > 0"),
    (["--num-minibatches", "3"], "--num-minibatches must divide --num-envs (16) and be > 0"),
    (["--num-minibatches", "0"], "--num-minibatches must divide --num-envs (16) and be > 0"),
    (["--num-steps", "0"], "--num-steps must be > 0"),
    (["--total-timesteps", "1.5"], "argument --total-timesteps: expected an integer, got '1.5'"),
    (["--anneal-lr", "maybe"], "argument --anneal-lr: expected true or false, got 'maybe'"),
    (["--hidden", "256,x"], "--hidden must be sizes > 0 like 256,128"),
    (["--resume", "/nonexistent"], "no run there"),
    (["--cudagraphs"], "--cudagraphs needs --cuda"),
])
def test_bad_flags_one_line(method, argv, needle, tmp_path, capsys):
    # In the test process (a subprocess per case cost 4 minutes); the command line itself: the test below
    stderr = bad_flags_stderr(method, argv + (["--run-dir", str(tmp_path / "run")] if argv[0] != "--resume" else []),
                              capsys)
    assert needle in stderr and stderr.count("\n") == 1, stderr
    assert not os.path.exists(tmp_path / "run")  # nothing half-made


def bad_flags_stderr(method, argv, capsys):
    """What parse_args writes to stderr when it refuses argv (it must exit 2)."""
    mod = importlib.import_module(method)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        mod.parse_args(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("method", ALL)
def test_a_bad_flag_on_the_command_line_is_one_line(method, tmp_path):
    p = script(method, "--num-steps", "0", "--run-dir", str(tmp_path / "run"))
    assert p.returncode == 2 and p.stderr == f"{method}.py: error: --num-steps must be > 0\n", p.stderr
    assert not os.path.exists(tmp_path / "run")


def test_a_learning_rate_far_above_the_papers_range_is_warned_of(tmp_path, capsys):
    capsys.readouterr()
    run("rnn", "--lr", "3e4", "--total-timesteps", "960", tmp_path=tmp_path)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning: --lr 30000 is far above" in err, err


def test_bad_hyper_init_one_line(capsys):
    err = bad_flags_stderr("rnn_hn", ["--hyper-init", "xavier"], capsys)
    assert err.count("\n") == 1 and "invalid choice: 'xavier' (choose from 'bias', 'kaiming')" in err


def test_flags_parse_like_a_user_types_them(capsys):
    import rnn_hn

    args = rnn_hn.parse_args(["--total-timesteps", "1e5", "--anneal-lr", "--env", "walker"])
    assert args.total_timesteps == 100000 and args.anneal_lr is True and args.latent_dim == 10
    assert rnn_hn.parse_args(["--anneal-lr", "false"]).anneal_lr is False
    capsys.readouterr()
    with pytest.raises(SystemExit):
        rnn_hn.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "(default: per env)" in text and "(default: None)" not in text


@pytest.mark.parametrize("method", ALL)
def test_rollout_keeps_the_memory_across_inner_episodes_and_resets_it_at_a_new_task(method, tmp_path, monkeypatch):
    # Grid-World: a task is 4 inner episodes of 15 steps, one task per 60-step rollout. The GRU state may be
    # reset only where a new task starts (t = 0, 60), never at an inner-episode end (t = 15, 30, 45, 75, ...).
    mod = importlib.import_module(method)
    seen, act = [], mod.Agent.act

    def recording(self, obs, prev_action, prev_reward, new_task, h, *rest):
        out = act(self, obs, prev_action, prev_reward, new_task, h, *rest)
        seen.append((obs[:, -1].clone(), new_task.clone(), h.clone(), out[3].clone()))
        return out

    monkeypatch.setattr(mod.Agent, "act", recording)
    run(method, "--total-timesteps", "1920", "--threads", "1", tmp_path=tmp_path)  # 2 updates, 2 tasks per env
    steps = torch.arange(len(seen))[:, None].expand(-1, 16)
    flags, new_task = torch.stack([s[0] for s in seen]), torch.stack([s[1] for s in seen])
    assert len(seen) == 120 and torch.equal(flags, ((steps % 15 == 0) & (steps % 60 != 0)).float())  # inner ends
    assert torch.equal(new_task, (steps % 60 == 0).float())  # the only resets
    for t in range(1, 120):  # and nothing else touches the state between steps, rollouts included
        assert torch.equal(seen[t][2], seen[t - 1][3]), t


@pytest.mark.parametrize("method", ALL)
def test_advantages_are_normalised_per_batch(method, tmp_path, monkeypatch):
    mod = importlib.import_module(method)
    seen, ppo_loss = [], mod.ppo_loss
    monkeypatch.setattr(mod, "ppo_loss", lambda logprob, old, adv, *rest: (seen.append(adv.clone()),
                                                                          ppo_loss(logprob, old, adv, *rest))[1])
    run(method, "--total-timesteps", "960", "--threads", "1", tmp_path=tmp_path)
    epoch = torch.cat(seen[:4])  # the first epoch's 4 minibatches cover the 16 envs once
    assert epoch.numel() == 960 and abs(epoch.mean()) < 1e-5 and abs(epoch.std() - 1) < 1e-4


@pytest.mark.parametrize("method", ALL)
def test_the_env_gets_the_raw_gaussian_sample(method, tmp_path, monkeypatch):
    # The reference passes the sample unclipped (the control cost sees it; MuJoCo clamps the motors)
    seen, step = [], envs.GymVec.step
    monkeypatch.setattr(envs.GymVec, "step", lambda self, a: (seen.append(np.abs(a).max()), step(self, a))[1])
    run(method, "--env", "cheetah-dir", "--num-steps", "20", "--total-timesteps", "320", "--threads", "1",
        tmp_path=tmp_path)
    assert len(seen) == 20 and max(seen) > 1.0  # log-std starts at 0: samples of std 1 leave [-1, 1]


@pytest.mark.parametrize("method", ["rnn_hn", "ti_pp_hn"])
def test_envs_in_subprocesses_give_the_same_numbers(method, tmp_path):
    # --async-envs (gymnasium's subprocess vector env; the default with --cuda on 4+ cores) steps the same envs
    common = ["--env", "cheetah-dir", "--num-envs", "4", "--num-steps", "40", "--total-timesteps", "320", "--threads", "1"]
    for mode in ("true", "false"):
        run(method, *common, "--async-envs", mode, tmp_path=tmp_path, name=mode)
    a, b = rows(tmp_path / "true"), rows(tmp_path / "false")
    assert [{k: v for k, v in r.items() if k not in ("sps", "time")} for r in a] == \
        [{k: v for k, v in r.items() if k not in ("sps", "time")} for r in b]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 1-update rnn run to resume (or refuse to resume) in various broken states."""
    folder = tmp_path_factory.mktemp("fin")
    run("rnn", "--total-timesteps", "960", tmp_path=folder)
    return folder / "run"


def test_resuming_a_finished_run_leaves_it_alone(finished_run, capsys):
    before = {f: (finished_run / f).read_bytes() for f in ("summary.json", "progress.csv", "config.json")}
    capsys.readouterr()
    assert resume(finished_run) is None and "is finished (update 1 of 1)" in capsys.readouterr().out
    assert {f: (finished_run / f).read_bytes() for f in before} == before


def test_extending_a_finished_run_makes_it_unfinished_until_it_ends(tmp_path):
    # A run extended with a larger --total-timesteps and stopped half-way must not pass as finished (plot.py,
    # sweep.py read summary.json), nor keep the shorter run's greedy evaluation.
    run("rnn", "--total-timesteps", "960", tmp_path=tmp_path)
    folder = tmp_path / "run"
    (folder / "eval.json").write_text('{"train_update": 1}')
    assert resume(folder, "--total-timesteps", "2880", "--stop-after", "1") is None
    assert not (folder / "summary.json").exists() and not (folder / "eval.json").exists()
    assert resume(folder)["updates"] == 3 and json.loads((folder / "summary.json").read_text())["updates"] == 3


def test_run_dir_onto_an_existing_run_is_refused(finished_run, capsys):
    before = (finished_run / "progress.csv").read_text()
    code, err = stops_with(lambda: importlib.import_module("rnn").parse_args(["--run-dir", str(finished_run)]), capsys)
    assert code == 2 and err.count("\n") == 1 and f"--resume {finished_run}" in err
    assert (finished_run / "progress.csv").read_text() == before


def test_resume_refuses_settings_it_would_ignore(finished_run, capsys):
    code, err = stops_with(lambda: resume(finished_run, "--lr", "1e-3"), capsys)
    assert code == 2 and err.count("\n") == 1
    assert "--lr cannot change when resuming" in err and "--total-timesteps" in err


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "config_missing", "config_corrupt"])
def test_resume_from_a_damaged_run_is_one_line(finished_run, tmp_path, damage, capsys):
    import shutil

    import evaluate

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    ckpt = run_dir / "checkpoint.pt"
    if damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:5000])
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "garbage":
        ckpt.write_bytes(os.urandom(3000))
    elif damage == "config_missing":  # (with model.pt beside it, evaluate.py would read the settings there)
        (run_dir / "config.json").unlink()
        (run_dir / "model.pt").unlink()
    else:
        (run_dir / "config.json").write_text("{not json")
    # Anything but SystemExit (a traceback) fails the test inside stops_with.
    code, err = stops_with(lambda: resume(run_dir), capsys)
    assert code in (1, 2) and err.count("\n") == 1, err
    assert ("damaged" in err) if damage in ("truncated", "empty", "garbage") else ("config.json" in err)
    code, err = stops_with(lambda: evaluate.main([str(run_dir)]), capsys)
    assert code != 0 and err.count("\n") == 1, err


@pytest.mark.parametrize("method", ALL)
def test_progress_csv_columns(method, tmp_path):
    run(method, "--env", "walker", "--num-steps", "50", "--total-timesteps", "800", tmp_path=tmp_path)
    header = rows(tmp_path / "run")[0].keys()
    for col in ("update", "global_step", "return", "return_ep1", "return_ep2", "success", "episodes", "sps",
                "policy_loss", "value_loss", "latent_grad_norm", "grad_norm", "encoder_grad_norm"):
        assert col in header
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["method"] == method
    # provenance: a MuJoCo run replays only on the CPU model and library builds that made it
    with open("/proc/cpuinfo") as fh:
        cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    assert config["machine"]["cpu"].startswith(cpu) and config["machine"]["mujoco"] == "3.3.0", config["machine"]
    assert config["machine"]["torch"] == torch.__version__ and config["commit"] is not None


# ------------------------------------------------------------------------------------- --precision bf16
@pytest.mark.parametrize("method", ["rnn_hn", "rnn"])
def test_bf16_first_update_agrees_with_fp32(method, tmp_path, monkeypatch):
    # bf16 matrix products (autocast; fp32 weights, losses, Adam). Forced on here even where the CPU lacks bf16
    # units (then it is emulated and slow, which the scripts refuse outside tests). The same seed's first update
    # agrees within 2% of each column (measured for rnn_hn: approx_kl 1.3%, policy loss 0.9%, the rest <= 0.2%),
    # the returns exactly (the same actions: the initial policy's probabilities differ in the 4th digit at most)
    mod = importlib.import_module(method)
    monkeypatch.setattr(mod, "bf16_matmuls", lambda cuda: True)
    for precision in ("fp32", "bf16"):
        run(method, "--total-timesteps", "960", "--threads", "1", "--precision", precision, tmp_path=tmp_path,
            name=precision)
    a, b = rows(tmp_path / "fp32")[0], rows(tmp_path / "bf16")[0]
    cols = ("policy_loss", "value_loss", "entropy", "approx_kl", "latent_grad_norm", "grad_norm")
    assert a["return"] == b["return"] and any(a[c] != b[c] for c in cols)  # (bf16 did run)
    for col in cols:
        assert abs(float(a[col]) - float(b[col])) <= 0.02 * abs(float(a[col])), (col, a[col], b[col])
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["precision"] == "bf16"


def test_bf16_without_bf16_units_says_so_and_runs_fp32(tmp_path, monkeypatch, capsys):
    import rnn

    monkeypatch.setattr(rnn, "bf16_matmuls", lambda cuda: False)
    run("rnn", "--total-timesteps", "960", "--threads", "1", "--precision", "bf16", tmp_path=tmp_path)
    assert "--precision bf16: this CPU has no bf16 matrix units; running fp32" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == "fp32"


@pytest.mark.parametrize("method", ALL)
def test_every_script_takes_num_envs_and_reward_clip_from_the_env(method, monkeypatch, tmp_path):
    # per-env settings (ML10: 8 envs, scaled rewards clipped at 1e5) reach the rollout of every script
    spec = envs.ENVS["gridworld"]
    monkeypatch.setitem(envs.ENVS, "gridworld", dataclasses.replace(spec, num_envs=4, num_minibatches=2, reward_clip=0.25))
    mod = importlib.import_module(method)
    seen, real = [], mod.scale_reward

    def spy(r, ended, disc_return, reward_rms, gamma, clip):
        out = real(r, ended, disc_return, reward_rms, gamma, clip)
        seen.append((len(r), clip, float(np.abs(out).max())))
        return out

    monkeypatch.setattr(mod, "scale_reward", spy)
    mod.main(mod.parse_args(["--env", "gridworld", "--total-timesteps", "240", "--run-dir", str(tmp_path / "run")]))
    assert len(seen) == 60 and {(n, clip) for n, clip, _ in seen} == {(4, 0.25)}
    assert max(m for *_, m in seen) == 0.25  # clipped there
    for name in ("ml10", "mc-ls"):  # and the flags still override them
        args = mod.parse_args(["--env", name])
        spec = envs.get_spec(name)
        assert (args.num_envs, args.num_steps, args.reward_clip, args.ent_coef) == \
            (spec.num_envs, spec.num_steps, spec.reward_clip, spec.ent_coef)
    args = mod.parse_args(["--env", "ml10", "--num-envs", "16", "--reward-clip", "10"])
    assert (args.num_envs, args.reward_clip) == (16, 10.0)



@pytest.mark.parametrize("method", ALL)
def test_a_file_as_run_dir_is_one_line(method, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    mod = importlib.import_module(method)
    for run_dir in (tmp_path / "file", tmp_path / "file" / "run"):
        with pytest.raises(SystemExit) as stop:
            mod.parse_args(["--run-dir", str(run_dir)])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and "is a file, not a folder" in err, err


@pytest.mark.parametrize("method,flags,name", [("rnn_hn", ["--hyper-init", "kaiming"], "rnn_hn-kaiming"),
                                               ("vi_hn", ["--hn", "false"], "vi_hn-vi"), ("ti", ["--naive"], "ti-naive"),
                                               ("ti_pp_hn", ["--pp", "false"], "ti_pp_hn-ti_hn"), ("rnn", [], "rnn")])
def test_a_variant_is_named_the_same_in_its_folder_log_and_config(method, flags, name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default run folder: runs/<env>__<name>__<seed>__<time>
    mod = importlib.import_module(method)
    mod.main(mod.parse_args(["--env", "gridworld", "--total-timesteps", "960", *flags]))
    out = capsys.readouterr().out
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith(f"gridworld__{name}__73__")
    assert out.startswith(f"{name} gridworld: 1 update of 960 frames at lr 0.0003") and f"\n{name} gridworld | update 1/1" in out
    measured = "gridworld" in mod.BEST_LR.get(name, {})  # the first line says where the default lr comes from
    assert ("(our best on this env; --lr sets another)" in out.splitlines()[0]) == measured
    config = json.loads((run_dir / "config.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert config["variant"] == summary["variant"] == name and config["method"] == method


@pytest.mark.parametrize("method", ALL)
def test_the_default_learning_rate_is_our_best_for_the_env(method, capsys):
    # without --lr: the best rate of our runs on that env (BEST_LR), said in the first line; elsewhere 3e-4
    mod = importlib.import_module(method)
    for name, by_env in mod.BEST_LR.items():
        assert name.split("-")[0] == method and all(lr in (1e-3, 3e-4, 1e-4) for lr in by_env.values())
    assert mod.parse_args(["--env", "cheetah-vel"]).lr == 3e-4  # (no runs there yet)
    assert mod.parse_args(["--env", "walker", "--lr", "3e-3"]).lr == 3e-3
    best = {"rnn": 1e-4, "rnn_s": 3e-4, "rnn_hn": 1e-3}  # Walker's pilots (results/mujoco/pilots)
    if method in best:
        args = mod.parse_args(["--env", "walker"])
        assert args.lr == best[method] == mod.BEST_LR[method]["walker"]
    if method == "rnn_hn":
        assert mod.parse_args(["--env", "walker", "--hyper-init", "kaiming"]).lr == 3e-4  # its own pilots' pick


@pytest.mark.parametrize("method", ALL)
def test_resuming_a_run_older_than_a_setting_takes_the_envs_value(method, tmp_path):
    # A run made before a per-env setting existed (its config.json lacks it) ran with the env's value: resuming it
    # takes that value, not None (reward_clip was added after runs that are extended today).
    mod = importlib.import_module(method)
    run_dir = tmp_path / "run"
    mod.main(mod.parse_args(["--env", "gridworld", "--total-timesteps", str(2 * 960), "--save-every", "1",
                             "--stop-after", "1", "--run-dir", str(run_dir)]))
    config = json.loads((run_dir / "config.json").read_text())
    del config["reward_clip"], config["num_envs"]
    (run_dir / "config.json").write_text(json.dumps(config))
    args = mod.parse_args(["--resume", str(run_dir)])
    assert (args.reward_clip, args.num_envs) == (10.0, 16)
    assert mod.main(args)["updates"] == 2
