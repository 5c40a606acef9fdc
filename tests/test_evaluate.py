"""evaluate.py: it must feed the recurrent inputs exactly as the training rollout does, and run anywhere."""

import csv
import importlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import envs
import evaluate
import rnn


def test_play_feeds_the_recurrent_inputs_like_the_training_rollout(tmp_path, monkeypatch):
    # Record the latent z of every policy call. z depends on everything the GRU reads (obs, previous
    # action, reward, new-task flag, reset of h), so the first 60 calls (one 60-step rollout of 16 envs)
    # must agree exactly between training and evaluate.play from the same seeds; the sampled returns too.
    seen = {"train": [], "play": []}
    heads = rnn.Agent.heads

    def recording(self, z, obs):
        seen[mode].append(z.detach().clone())
        return heads(self, z, obs)

    monkeypatch.setattr(rnn.Agent, "heads", recording)
    args = rnn.parse_args(["--env", "gridworld", "--total-timesteps", "960", "--threads", "1",
                           "--run-dir", str(tmp_path / "run")])
    mode = "train"
    rnn.main(args)
    with open(tmp_path / "run" / "progress.csv") as fh:
        row = next(csv.DictReader(fh))
    torch.manual_seed(args.seed)  # main()'s start: seeds, envs, agent; then the rollout's draws
    np.random.seed(args.seed)
    vec, obs, _ = envs.make_vec("gridworld", args.num_envs, args.seed)
    agent = rnn.Agent(vec.single_observation_space.shape[0], vec.single_action_space, envs.get_spec("gridworld"), args)
    mode = "play"
    meta, eps, _, _ = evaluate.play(agent, vec, obs, 4, args.num_envs, greedy=False)
    assert len(seen["play"]) == 60
    for t in range(60):
        assert torch.allclose(seen["train"][t], seen["play"][t], atol=1e-6), f"latent differs at step {t}"
    assert meta.shape == (16,) and eps.shape == (16, 4)
    assert meta.mean() == pytest.approx(float(row["return"]), abs=1e-4)
    for k in range(4):
        assert eps[:, k].mean() == pytest.approx(float(row[f"return_ep{k + 1}"]), abs=1e-4)
    assert np.allclose(eps.sum(1), meta)


def test_evaluate_a_run_on_a_continuous_env(tmp_path):
    import rnn_hn

    rnn_hn.main(rnn_hn.parse_args(["--env", "cheetah-vel", "--num-steps", "50", "--total-timesteps", "800",
                                   "--threads", "1", "--run-dir", str(tmp_path / "run")]))
    res = evaluate.evaluate(str(tmp_path / "run"), meta_episodes=16)
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert saved == res and res["meta_episodes"] == 16 and res["train_update"] == 1
    assert np.isfinite(res["return"]) and len(res["return_per_episode"]) == 1


def test_no_runs_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(tmp_path)])
    assert e.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_bad_meta_episodes_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(tmp_path), "--meta-episodes", "0"])
    assert e.value.code == 2 and "--meta-episodes must be >= 1" in capsys.readouterr().err


def test_replay_matches_and_catches_a_changed_setting_or_network_line(tmp_path, capsys):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run_dir = tmp_path / "run"
    rnn.main(rnn.parse_args(["--total-timesteps", "1920", "--threads", "1", "--run-dir", str(run_dir)]))
    assert evaluate.replay(str(run_dir), updates=2, tolerance=0) == "match (identical)"  # same machine and code
    # another CPU's rounding: a match within the tolerance, whose line never says "differ" (what a reader greps for)
    progress = (run_dir / "progress.csv").read_text()
    rows = [r.split(",") for r in progress.splitlines()]
    col = rows[0].index("value_loss")
    rows[1][col] = repr(float(rows[1][col]) * (1 + 1e-5))
    (run_dir / "progress.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    verdict = evaluate.replay(str(run_dir), updates=2)
    assert verdict.startswith("match (within ") and "differ" not in verdict, verdict
    # a non-finite number never passes for a finite one (an inf once hid differences as a scale of inf); approx_kl
    # logged as inf (before 91130e1) is left out of the check, which says so
    for column, expected in (("value_loss", "differs at update 1, column value_loss"), ("approx_kl", "approx_kl aside")):
        rows = [r.split(",") for r in progress.splitlines()]
        rows[1][rows[0].index(column)] = "inf"
        (run_dir / "progress.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
        assert expected in evaluate.replay(str(run_dir), updates=2), column
    (run_dir / "progress.csv").write_text(progress)
    # one changed line of the network: a copy of the scripts whose hidden layers use ReLU
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(os.path.join(root, "envs.py"), code)
    text = open(os.path.join(root, "rnn.py")).read()
    assert text.count("x = torch.tanh(layer(x))") == 1
    (code / "rnn.py").write_text(text.replace("x = torch.tanh(layer(x))", "x = torch.relu(layer(x))"))
    assert evaluate.replay(str(run_dir), updates=2, script_dir=str(code)).startswith("differs at update 1, column ")
    # one changed setting, through the command: one line per run and a count; exit status 1 when one differs
    cfg = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(cfg | {"ent_coef": 0.11}))
    capsys.readouterr()
    assert evaluate.main([str(tmp_path), "--replay", "--replay-updates", "2"]) == 1
    verdict, count = capsys.readouterr().out.splitlines()
    assert verdict.startswith(f"{run_dir}: differs at update 1, column ") and "committed" in verdict, verdict
    assert count == "0 of 1 runs match their first 2 updates"


def test_replay_of_a_bf16_run_on_a_cpu_without_bf16_units_is_unchecked_not_stale(tmp_path, capsys, monkeypatch):
    # Such a CPU runs --precision bf16 in fp32, so its numbers differ without the script having changed.
    run_dir = tmp_path / "run"
    rnn.main(rnn.parse_args(["--total-timesteps", "1920", "--threads", "1", "--run-dir", str(run_dir)]))
    cfg = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(cfg | {"precision": "bf16"}))
    monkeypatch.setattr(evaluate.torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    capsys.readouterr()
    assert evaluate.main([str(tmp_path), "--replay", "--replay-updates", "2"]) == 0
    verdict, count = capsys.readouterr().out.splitlines()
    assert verdict.startswith(f"{run_dir}: cannot replay here: a --precision bf16 run"), verdict
    assert count == "0 of 1 runs match their first 2 updates; 1 cannot be replayed on this machine"


@pytest.mark.parametrize("env", ["gridworld", "cheetah-dir"])
@pytest.mark.parametrize("method", ["rnn", "rnn_hn", "vi_hn", "ti_pp_hn"])
def test_greedy_play_takes_the_most_likely_action(method, env, monkeypatch):
    # Discrete heads: the argmax of the probabilities; Gaussian heads: the mean, handed to the env unclipped
    mod = importlib.import_module(method)
    vec, obs, _ = envs.make_vec(env, 4, 0)
    torch.manual_seed(0)
    agent = mod.Agent(obs.shape[1], vec.single_action_space, envs.get_spec(env), mod.parse_args(["--env", env]))
    best, heads = [], mod.Agent.heads

    def recording(self, latent, o, *rest):
        dist, value = heads(self, latent, o, *rest)
        best.append(dist.probs.argmax(-1) if self.discrete else dist.mean)
        return dist, value

    monkeypatch.setattr(mod.Agent, "heads", recording)
    sent, step = [], vec.step
    vec.step = lambda a: (sent.append(np.array(a)), step(a))[1]
    evaluate.play(agent, vec, obs, envs.get_spec(env).episodes_per_task, meta_episodes=4, greedy=True)
    assert len(sent) == len(best) > 0 and all(np.array_equal(a, b.numpy()) for a, b in zip(sent, best))


@pytest.fixture(scope="module")
def cheetah_run(tmp_path_factory):
    """A 1-update rnn run on Cheetah-Dir, with its checkpoint."""
    run_dir = tmp_path_factory.mktemp("cheetah") / "run"
    rnn.main(rnn.parse_args(["--env", "cheetah-dir", "--num-steps", "20", "--total-timesteps", "320",
                             "--run-dir", str(run_dir)]))
    return run_dir


def test_cheetah_dir_eval_reports_each_direction_apart(cheetah_run):
    # A policy that runs one way in every task scores about 0 on average: the two directions must be seen apart
    result = evaluate.evaluate(str(cheetah_run), meta_episodes=32)
    per = result["return_per_direction"]
    assert sorted(per) == ["+1", "-1"] and result["return"] == pytest.approx((per["+1"] + per["-1"]) / 2, abs=3.0)
    assert json.loads((cheetah_run / "eval.json").read_text())["return_per_direction"] == per


def test_per_direction_returns_go_to_their_own_direction(cheetah_run, monkeypatch):
    # known returns per task: every forward task 10, every backward one -4 (a swap of the two keeps the keys and
    # the average, so only known values can catch it)
    tasks = np.array([[1.0], [-1.0], [-1.0], [1.0]] * 4)
    returns = np.where(tasks[:, 0] > 0, 10.0, -4.0)
    monkeypatch.setattr(evaluate, "play", lambda *a, **k: (returns, returns[:, None], tasks, np.zeros((16, 1))))
    result = evaluate.evaluate(str(cheetah_run), meta_episodes=16)
    assert result["return_per_direction"] == {"+1": 10.0, "-1": -4.0} and result["return"] == 3.0


@pytest.fixture(scope="module")
def offscreen_gl():
    """The environment for offscreen MuJoCo rendering, or a skip saying how to get it."""
    gl = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    try:
        probe = subprocess.run([sys.executable, "-c", "import gymnasium as gym; e = gym.make('HalfCheetah-v5', "
                                "render_mode='rgb_array', width=32, height=24); e.reset(); e.render(); e.close()"],
                               env=gl, capture_output=True, timeout=120).returncode
    except subprocess.TimeoutExpired:
        probe = "timeout"
    if probe != 0:
        pytest.skip("no offscreen OpenGL for MuJoCo (MUJOCO_GL=egl); optional: apt-get install libegl1 libegl-mesa0 "
                    "libgl1-mesa-dri")
    return gl


def test_video_camera_follows_the_walker(offscreen_gl):
    # Gymnasium's free camera ignores trackbodyid: without _shot moving it, a walker 5 m on is out of the picture
    code = ("import numpy as np, envs, evaluate; vec, obs, info = envs.make_vec('walker', 1, 0, render_mode='rgb_array', "
            "width=64, height=48); env = vec.vec.envs[0]; first = evaluate._shot(env); env.sim.data.qpos[0] += 5.0; "
            "env.sim.step(np.zeros(6)); evaluate._shot(env); "
            "print(env.sim.mujoco_renderer.viewer.cam.lookat[0], env.sim.data.xpos[1, 0])")
    p = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env=offscreen_gl, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lookat, torso = map(float, p.stdout.split())
    assert torso > 4.5 and lookat == pytest.approx(torso)  # read after the render: gymnasium did not reset it


def test_video_of_a_10_step_clip(cheetah_run, tmp_path, offscreen_gl):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gl = offscreen_gl
    gif = tmp_path / "clip.gif"
    p = subprocess.run([sys.executable, "evaluate.py", str(cheetah_run), "--video", str(gif), "--video-steps", "10"],
                       cwd=root, env=gl, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "wrote" in p.stdout and "Traceback" not in p.stderr, p.stdout + p.stderr
    from PIL import Image

    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 6 and im.size == (512, 192)  # 11 frames, every 2nd; two tasks


def test_ml10_split_evaluation_counts_success_per_episode_and_class(tmp_path, monkeypatch):
    # A tiny rnn_hn run on ML10, evaluated on the 5 held-out classes: Meta-World is made to report success at
    # step 5 of the second inner episode for door-close only, so the fractions are known: class door-close
    # [0, 1, 0], the others [0, 0, 0]; over the split [0, 0.2, 0] with mean 0.2 / 3.
    import rnn_hn

    rnn_hn.main(rnn_hn.parse_args(["--env", "ml10", "--num-steps", "20", "--total-timesteps", "160",
                                   "--run-dir", str(tmp_path / "run")]))
    real = envs.ML10Env.step_inner

    def step_inner(self, action):
        obs, reward, _ = real(self, action)
        name = self._names[int(self.task[:-1].argmax())]
        solved = name == "door-close-v3" and self._episode == 1 and self._t + 1 == 5
        self.step_info = {"success": float(solved)}
        return obs, reward, solved or self._t + 1 == 8  # inner episodes of 8 steps keep the test short

    monkeypatch.setattr(envs.ML10Env, "step_inner", step_inner)
    res = evaluate.evaluate_ml10(str(tmp_path / "run"), splits=("test",), tasks_per_class=2, episodes=3, num_envs=4)
    test = res["test"]
    assert test["tasks"] == 10 and test["episodes"] == 3 and len(test["return_per_episode"]) == 3
    assert set(test["per_class"]) == set(envs.make_env("ml10", split="test").classes) and len(test["per_class"]) == 5
    assert not set(test["per_class"]) & set(envs.make_env("ml10").classes)  # held-out: no training class
    assert test["per_class"]["door-close-v3"]["success_per_episode"] == [0.0, 1.0, 0.0]
    assert all(c["success_per_episode"] == [0.0, 0.0, 0.0] for n, c in test["per_class"].items() if n != "door-close-v3")
    assert test["success_per_episode"] == pytest.approx([0.0, 0.2, 0.0]) and test["success"] == pytest.approx(0.2 / 3)
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["test"] == test and "train" not in res


def test_a_folder_with_only_model_pt_evaluates_as_the_run_did(tmp_path):
    # Every finished run writes model.pt (its final policy: weights and normalisers, no optimiser state). A folder
    # that holds nothing else evaluates to the run's own eval.json exactly on Grid-World, and --video takes it too.
    import rnn_hn

    run_dir = tmp_path / "run"
    rnn_hn.main(rnn_hn.parse_args(["--env", "gridworld", "--total-timesteps", str(2 * 960), "--run-dir", str(run_dir)]))
    full = evaluate.evaluate(str(run_dir), meta_episodes=64)
    only = tmp_path / "shipped"
    only.mkdir()
    shutil.copy(run_dir / "model.pt", only / "model.pt")
    assert os.path.getsize(only / "model.pt") < os.path.getsize(run_dir / "checkpoint.pt") / 2
    p = subprocess.run([sys.executable, "evaluate.py", str(only), "--meta-episodes", "64"],
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads((only / "eval.json").read_text()) == full
    # a finished run without weights: the message says why nothing can be evaluated
    (only / "model.pt").unlink()
    p = subprocess.run([sys.executable, "evaluate.py", str(only)],
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "checkpoint.pt stays on the machine" in p.stderr


def test_step_stats_by_hand():
    # Cheetah-Vel: two envs, targets 0.5 (slow) and 2.5 (fast), velocities 1.0 then 2.0 for two steps each: mean
    # absolute errors 1.0 (|1 - 0.5|, |2 - 0.5|: 0.5 and 1.5) and 1.0 (1.5 and 0.5), both meta-episodes then end
    stats = evaluate.StepStats([[0.5], [2.5]], 1)
    for v, ended in ((1.0, False), (2.0, True)):
        stats(np.array([ended, ended]), None, np.array([int(ended)] * 2), {"velocity": np.array([v, v]),
                                                                              "task": np.array([[1.5], [1.5]])})
    res = stats.result("cheetah-vel", np.array([-10.0, -20.0]), 2)
    assert res["velocity_error_per_bin"] == {"slow (0-1 m/s)": 1.0, "fast (2-3 m/s)": 1.0}
    assert res["return_per_velocity_bin"] == {"slow (0-1 m/s)": -10.0, "fast (2-3 m/s)": -20.0}
    # MC-LS: episode 1 turns wrong after 3 correct columns, episode 2 right after 16
    stats = evaluate.StepStats([[1.0]], 2)
    steps = [({"turn": 0.0, "check": 1.0}, 0)] * 3 + [({"turn": -1.0, "check": 0.0}, 1)] + \
        [({"turn": 0.0, "check": 1.0}, 1)] * 16 + [({"turn": 1.0, "check": 0.0}, 2)]
    for i, (info, k) in enumerate(steps):
        last = i == len(steps) - 1
        stats(np.array([last]), None, np.array([k]), {key: np.array([v]) for key, v in info.items()} | {"task": np.array([[0.0]])})
    res = stats.result("mc-ls", np.array([10.0]), 1)
    assert res["final_turn_correct_per_episode"] == [0.0, 1.0] and res["final_turn_made_per_episode"] == [1.0, 1.0]
    assert res["columns_passed_correctly_per_episode"] == [3.0, 16.0]


@pytest.mark.parametrize("name", ["cheetah-dir", "cheetah-vel", "ant-dir", "walker"])
def test_video_shows_two_different_tasks_each_env_accepts(name):
    # Cheetah-Vel's clip shows a slow and a fast target (not two random draws); Ant-Dir's label is its heading
    chosen, label = evaluate.video_tasks(name)
    env = envs.make_env(name)
    tasks = []
    for u in chosen or [None, None]:
        env.reset(seed=len(tasks), options={"task": u} if u else None)
        tasks.append(env.task.copy())
    assert label(tasks[0]) != label(tasks[1])
    if name == "cheetah-vel":
        assert tasks[0][0] <= 1.0 and tasks[1][0] >= 2.0
    if name == "ant-dir":
        assert [label(u) for u in tasks] == ["heading +57 deg", "heading -57 deg"]
