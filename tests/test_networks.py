"""Science checks of the networks: hypernetwork algebra and init, recurrent resets, GAE boundaries."""

import importlib

import numpy as np
import pytest
import torch

import envs

METHODS = ["rnn_hn", "rnn_s", "rnn"]
HN = ["rnn_hn", "vi_hn", "ti_pp_hn"]  # the scripts with a hypernetwork policy (each has its own copy)
ALL = ["rnn", "rnn_s", "rnn_hn", "vi_hn", "ti_pp_hn", "ti"]


def make_agent(method, env="gridworld", *argv):
    mod = importlib.import_module(method)
    args = mod.parse_args(["--env", env, *argv])
    vec, obs, _ = envs.make_vec(env, 2, 0)
    torch.manual_seed(0)
    agent = mod.Agent(obs.shape[1], vec.single_action_space, envs.get_spec(env), args)
    return mod, agent


# ------------------------------------------------------------------------- the hypernetwork (RNN+HN)
@pytest.mark.parametrize("in_dim,out_dim", [(7, 19), (19, 7), (7, 7)])  # both evaluation orders, and the tie
@pytest.mark.parametrize("init", ["bias", "kaiming"])
@pytest.mark.parametrize("bf16", [False, True])  # the tie takes the other order under bf16 autocast
@pytest.mark.parametrize("method", HN)
def test_generated_linear_fast_form_equals_generated_weights(method, in_dim, out_dim, init, bf16):
    torch.manual_seed(1)
    layer = importlib.import_module(method).GeneratedLinear(in_dim, out_dim, 5, lambda w: torch.nn.init.normal_(w), init)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p))  # off the init, so every head matters
    s, z = torch.randn(11, in_dim), torch.randn(11, 5)
    w, b = layer.weights(z)
    explicit = torch.einsum("boi,bi->bo", w, s) + b
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        y = layer(s, z)
    tol = 2e-2 if bf16 else 1e-5  # bf16 keeps 8 bits of mantissa: an error relative to the outputs' scale
    torch.testing.assert_close(y.float(), explicit, rtol=tol, atol=tol * explicit.abs().max().item())


@pytest.mark.parametrize("method", HN)
def test_bias_hyperinit_same_policy_for_every_trajectory_kaiming_not(method):
    outputs = {}
    for init in ("bias", "kaiming"):
        _, agent = make_agent(method, "walker", "--hyper-init", init)
        T, obs_dim = 20, 18
        obs = torch.randn(T, 2, obs_dim)
        obs[:, 1] = obs[:, 0]  # same states, different histories:
        prev_a, prev_r = torch.randn(T, 2, 6), torch.randn(T, 2)
        new_task = torch.zeros(T, 2)
        new_task[0] = 1
        with torch.no_grad():
            z, _ = agent.encoder(obs, prev_a, prev_r, new_task, torch.zeros(2, 256))
            assert not torch.allclose(z[-1, 0], z[-1, 1])  # the latents do differ
            dist, value = agent.heads(z[-1], obs[-1])
        outputs[init] = (dist.mean, value)
    # Identical up to float32 rounding (each generated layer is bit-exact across rows; elementwise kernels
    # may round a SIMD lane and a scalar tail differently in the last bit).
    mean, value = outputs["bias"]
    assert (mean[0] - mean[1]).abs().max() < 1e-6 and (value[0] - value[1]).abs().max() < 1e-6
    mean, value = outputs["kaiming"]
    assert (mean[0] - mean[1]).abs().max() > 1e-3 and (value[0] - value[1]).abs().max() > 1e-3


@pytest.mark.parametrize("method", HN)
def test_bias_hyperinit_values(method):
    _, agent = make_agent(method, "gridworld")
    first = agent.actor.layers[0]
    assert torch.count_nonzero(first.heads()[:, :-1]) == 0 and torch.count_nonzero(first.bias_head.weight) == 0
    assert torch.count_nonzero(first.bias_head.bias) == 0
    base = first.heads()[:, -1].t()  # the generated weight at init, (out, in): normc rows of norm 5/3
    torch.testing.assert_close(base.norm(dim=1), torch.full((base.shape[0],), 5 / 3))
    out = agent.actor.out.heads()[:, -1].t()  # discrete action head: orthogonal, gain 0.01
    torch.testing.assert_close(out @ out.t(), 1e-4 * torch.eye(out.shape[0]), atol=1e-7, rtol=0)


# ------------------------------------------------------------------------- recurrence and GAE (all methods)
@pytest.mark.parametrize("method", METHODS)
def test_encoder_resets_only_at_new_task_and_segments_match_stepwise(method):
    _, agent = make_agent(method, "walker")
    T, B = 30, 3
    torch.manual_seed(2)
    obs, prev_a, prev_r = torch.randn(T, B, 18), torch.randn(T, B, 6), torch.randn(T, B)
    obs[12, :, -1] = 1.0  # an inner-episode end: flag only, memory kept
    new_task = torch.zeros(T, B)
    new_task[0] = 1
    new_task[17, 1] = 1  # env 1 starts a new task at step 17
    new_task[23, 2] = 1
    h0 = torch.randn(B, 256)
    with torch.no_grad():
        z, h = agent.encoder(obs, prev_a, prev_r, new_task, h0)
        steps, hs = [], h0
        for t in range(T):  # one step at a time, as in the rollout
            zt, hs = agent.encoder(obs[t:t + 1], prev_a[t:t + 1], prev_r[t:t + 1], new_task[t:t + 1], hs)
            steps.append(zt[0])
        torch.testing.assert_close(z, torch.stack(steps), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(h, hs, rtol=1e-5, atol=1e-5)
        z_every, h_every = agent.encoder(obs, prev_a, prev_r, new_task, h0, every_step=True)  # --cudagraphs' form
        torch.testing.assert_close(z_every, z, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(h_every, h, rtol=1e-5, atol=1e-5)
        # the past before a new task cannot matter after it; the past before an inner end does
        obs2 = obs.clone()
        obs2[:17, 1] += 1.0
        obs2[:12, 0] += 1.0
        z2, _ = agent.encoder(obs2, prev_a, prev_r, new_task, h0)
    torch.testing.assert_close(z2[17:, 1], z[17:, 1])
    assert not torch.allclose(z2[12:, 0], z[12:, 0])


@pytest.mark.parametrize("method", ALL)
def test_gae_hand_computed(method):
    # gamma 0.5, lambda 0.8 (apart, so that one in the other's place shows), values 1, rewards (1, 0, 2),
    # V(after the rollout) = 4. By hand: deltas d2 = 2 + 0.5 * 4 - 1 = 3, d1 = 0 + 0.5 - 1 = -0.5,
    # d0 = 1 + 0.5 - 1 = 0.5; with gamma * lambda = 0.4: A2 = 3, A1 = -0.5 + 0.4 * 3 = 0.7, A0 = 0.5 + 0.4 * 0.7
    # = 0.78. A meta-episode end after step 1: d1 = 0 - 1 = -1 and nothing flows back across it: A1 = -1,
    # A0 = 0.5 + 0.4 * (-1) = 0.1 (A2 unchanged).
    mod = importlib.import_module(method)
    rewards, values = torch.tensor([[1.0], [0.0], [2.0]]), torch.ones(3, 1)
    ended = torch.zeros(3, 1)
    adv = mod.compute_gae(rewards, values, ended, torch.tensor([4.0]), 0.5, 0.8)
    torch.testing.assert_close(adv[:, 0], torch.tensor([0.78, 0.7, 3.0]))
    ended[1] = 1.0
    adv = mod.compute_gae(rewards, values, ended, torch.tensor([4.0]), 0.5, 0.8)
    torch.testing.assert_close(adv[:, 0], torch.tensor([0.1, -1.0, 3.0]))


@pytest.mark.parametrize("method", ALL)  # each script keeps its own copy of the loss
def test_ppo_loss_hand_computed(method):
    mod = importlib.import_module(method)
    # Two samples, clip 0.2. Sample 0: ratio e^0.5 = 1.6487 with advantage +1: clipped to 1.2, so its
    # term is -1.2 (the unclipped -1.6487 is not the max). Sample 1: ratio e^-0.1 = 0.9048 with advantage
    # -2, inside the clip range: term 2 * 0.9048 = 1.8097. Policy loss = (-1.2 + 1.8097) / 2 = 0.30967.
    logp, old = torch.tensor([0.5, -0.1]), torch.zeros(2)
    adv = torch.tensor([1.0, -2.0])
    # Values: sample 0 moved from 0 to 1 (clipped back to 0.2), return 3: Huber(1 -> 3) = 1.5 and
    # Huber(0.2 -> 3) = 2.3, max 2.3. Sample 1 from 0 to 0.1 (inside), return 0.5: Huber = 0.5 * 0.4^2 = 0.08.
    # Value loss = 0.5 * mean(2.3, 0.08) = 0.595. Entropy 0.7 each: total = 0.30967 + 0.5 * 0.595 - 0.1 * 0.7.
    value, old_value, ret = torch.tensor([1.0, 0.1]), torch.zeros(2), torch.tensor([3.0, 0.5])
    loss, pg, vl, logratio = mod.ppo_loss(logp, old, adv, value, old_value, ret, torch.full((2,), 0.7), 0.2, 0.5, 0.1)
    assert pg.item() == pytest.approx((-1.2 + 2 * np.exp(-0.1)) / 2, abs=1e-6)
    assert vl.item() == pytest.approx(0.595, abs=1e-6)
    assert loss.item() == pytest.approx(pg.item() + 0.5 * 0.595 - 0.07, abs=1e-6)
    torch.testing.assert_close(logratio, logp - old)


@pytest.mark.parametrize("method", METHODS)
def test_reward_scaling_against_an_independent_computation(method):
    mod = importlib.import_module(method)
    rng = np.random.default_rng(0)
    T, N, gamma = 200, 3, 0.9
    rewards = rng.normal(1.0, 2.0, (T, N)).astype(np.float32)
    rewards[50, 0] = 500.0  # a huge reward: clipped to 10 (the running std is still small)
    ended = rng.random((T, N)) < 0.05
    rms, disc = mod.RunningMeanStd(), np.zeros(N, dtype=np.float32)
    got = np.stack([mod.scale_reward(rewards[t], ended[t], disc, rms, gamma, 10.0) for t in range(T)])
    # Independently: the discounted return of each env restarts after a meta-episode end; each step divides
    # by the std of every discounted return seen so far, this step's included.
    seen, ret, expected = [], np.zeros(N), np.zeros((T, N))
    for t in range(T):
        ret = gamma * ret + rewards[t]
        seen.extend(ret)
        expected[t] = np.clip(rewards[t] / np.sqrt(np.var(seen) + 1e-8), -10, 10)
        ret[ended[t]] = 0.0
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-4)
    assert got[50, 0] == 10.0


@pytest.mark.parametrize("method", ["rnn", "rnn_s", "rnn_hn", "vi_hn", "ti_pp_hn", "ti"])
def test_reward_scaling_in_numpy_gives_the_numbers_of_the_torch_version(method):
    """The per-step reward scaling runs in numpy for speed; the runs made with the torch version must replay
    bit for bit: every scaled reward equals torch's and the statistics agree to 1e-13, over Walker-like rollouts."""
    mod = importlib.import_module(method)
    rng = np.random.default_rng(1)
    N, gamma = 16, 0.99
    rms, disc = mod.RunningMeanStd(), np.zeros(N, dtype=np.float32)
    ref, ref_disc = mod.RunningMeanStd(), torch.zeros(N)  # the torch formulation, on the torch path of update
    for t in range(3000):
        r = torch.as_tensor(rng.normal(rng.normal(), 3.0, N) * (1 + 100 * (t % 997 == 0)), dtype=torch.float32)
        ended = rng.random(N) < 0.005
        got = mod.scale_reward(r.numpy(), ended, disc, rms, gamma, 10.0)
        ref_disc.mul_(gamma).add_(r)
        ref.update(ref_disc)
        expected = (r / torch.sqrt(ref.var.float() + 1e-8)).clamp(-10.0, 10.0)
        ref_disc[torch.as_tensor(ended)] = 0.0
        assert got.dtype == np.float32 and np.array_equal(got, expected.numpy()), t
    assert np.array_equal(disc, ref_disc.numpy())
    for a, b in zip(rms.buffers(), ref.buffers()):  # numpy's and torch's float64 sums may differ in the last bit
        torch.testing.assert_close(a, b, rtol=1e-13, atol=0)


# ------------------------------------------------------------------------- parity with the reference
@pytest.mark.parametrize("method", METHODS)
def test_encoder_gru_orthogonal_zero_bias_and_2L_bottleneck(method):
    for env, L, embed in (("gridworld", 5, 25), ("walker", 10, 25), ("ant-dir", 5, 10)):  # the reference's sizes
        _, agent = make_agent(method, env)
        gru = agent.encoder.gru
        for w in (gru.weight_ih_l0, gru.weight_hh_l0):  # (768, n), n <= 768: orthonormal columns
            torch.testing.assert_close(w.t() @ w, torch.eye(w.shape[1]), atol=1e-5, rtol=0)
        assert not gru.bias_ih_l0.any() and not gru.bias_hh_l0.any()
        # The policy's input z = tanh(P(A h)) sees the 256-d GRU output only through 2L numbers: the
        # Jacobian dz/dh has rank 2L, whatever comes after.
        h = torch.randn(256)
        jac = torch.autograd.functional.jacobian(lambda x: torch.tanh(agent.latent_embed(agent.encoder.latent(x))), h)
        assert jac.shape == (embed, 256) and torch.linalg.matrix_rank(jac).item() == 2 * L


@pytest.mark.parametrize("method", ["rnn_s", "rnn_hn"])
def test_one_state_embedding_shared_and_encoder_reads_raw_inputs(method):
    _, agent = make_agent(method, "walker")
    readers = [n for n, m in agent.named_modules() if isinstance(m, torch.nn.Linear) and m.in_features == 18
               and not n.startswith("encoder.")]
    assert readers == ["state_embed"]  # one state embedding, for actor and critic
    T, B = 5, 2
    obs, prev_a, prev_r = torch.randn(T, B, 18), torch.randn(T, B, 6), torch.randn(T, B)
    new_task = torch.zeros(T, B)
    with torch.no_grad():
        latent, _ = agent.encoder(obs, prev_a, prev_r, new_task, torch.zeros(B, 256))
        dist, value = agent.heads(latent[-1], obs[-1])
        agent.obs_rms.mean += 3.0  # other normalisation statistics: the policy's input changes,
        latent2, _ = agent.encoder(obs, prev_a, prev_r, new_task, torch.zeros(B, 256))
        dist2, value2 = agent.heads(latent2[-1], obs[-1])
    torch.testing.assert_close(latent, latent2)  # the encoder's does not (it reads raw inputs)
    assert not torch.allclose(value, value2) and not torch.allclose(dist.mean, dist2.mean)


@pytest.mark.parametrize("method", HN)
def test_kaiming_ablation_tanh_gain_zero_biases_and_critic_output_init(method):
    mod, agent = make_agent(method, "gridworld", "--hyper-init", "kaiming")
    layer = agent.actor.layers[0]  # heads of z (25-d): Kaiming-uniform with tanh's gain, bound 5/3 sqrt(3/25)
    bound = 5 / 3 * np.sqrt(3 / 25)
    w = layer.heads()[:, :-1]
    assert w.abs().max() <= bound and w.abs().max() > 0.98 * bound  # a=0's gain sqrt(2) would stay below 0.85x
    assert not layer.heads()[:, -1].any() and not layer.bias_head.bias.any()  # head biases zero
    # Bias-HyperInit: the critic's generated output layer starts as kaiming_uniform_(a=0): bound sqrt(6/128)
    # (PyTorch's default Linear init would stay below 1/sqrt(128), i.e. 0.41x of it).
    torch.manual_seed(0)
    critic_out = mod.Agent(3, envs.make_vec("gridworld", 1, 0)[0].single_action_space, envs.get_spec("gridworld"),
                           mod.parse_args([])).critic.out.heads()[:, -1]
    assert critic_out.abs().max() <= np.sqrt(6 / 128) and critic_out.abs().max() > 0.9 * np.sqrt(6 / 128)
