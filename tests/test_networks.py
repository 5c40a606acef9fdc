"""Science checks of the networks: hypernetwork algebra and init, recurrent resets, GAE boundaries."""

import importlib

import numpy as np
import pytest
import torch

import envs

METHODS = ["rnn_hn", "rnn_s", "rnn"]


def make_agent(method, env="gridworld", *argv):
    mod = importlib.import_module(method)
    args = mod.parse_args(["--env", env, *argv])
    vec, obs, _ = envs.make_vec(env, 2, 0)
    torch.manual_seed(0)
    agent = mod.Agent(obs.shape[1], vec.single_action_space, envs.get_spec(env), args)
    return mod, agent


# ------------------------------------------------------------------------- the hypernetwork (RNN+HN)
@pytest.mark.parametrize("in_dim,out_dim", [(7, 19), (19, 7)])  # both evaluation orders
@pytest.mark.parametrize("init", ["bias", "kaiming"])
def test_generated_linear_fast_form_equals_generated_weights(in_dim, out_dim, init):
    import rnn_hn

    torch.manual_seed(1)
    layer = rnn_hn.GeneratedLinear(in_dim, out_dim, 5, lambda w: torch.nn.init.normal_(w), init)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(torch.randn_like(p))  # off the init, so every head matters
    s, z = torch.randn(11, in_dim), torch.randn(11, 5)
    w, b = layer.weights(z)
    explicit = torch.einsum("boi,bi->bo", w, s) + b
    torch.testing.assert_close(layer(s, z), explicit, rtol=1e-5, atol=1e-5)


def test_bias_hyperinit_same_policy_for_every_trajectory_kaiming_not():
    outputs = {}
    for init in ("bias", "kaiming"):
        _, agent = make_agent("rnn_hn", "walker", "--hyper-init", init)
        T, obs_dim = 20, 18
        obs = torch.randn(T, 2, obs_dim)
        obs[:, 1] = obs[:, 0]  # same states, different histories:
        prev_a, prev_r = torch.randn(T, 2, 6), torch.randn(T, 2)
        new_task = torch.zeros(T, 2)
        new_task[0] = 1
        with torch.no_grad():
            z, _ = agent.encode(obs, prev_a, prev_r, new_task, torch.zeros(2, 256))
            assert not torch.allclose(z[-1, 0], z[-1, 1])  # the latents do differ
            dist, value = agent.heads(z[-1], obs[-1])
        outputs[init] = (dist.mean, value)
    # Identical up to float32 rounding (each generated layer is bit-exact across rows; elementwise kernels
    # may round a SIMD lane and a scalar tail differently in the last bit).
    mean, value = outputs["bias"]
    assert (mean[0] - mean[1]).abs().max() < 1e-6 and (value[0] - value[1]).abs().max() < 1e-6
    mean, value = outputs["kaiming"]
    assert (mean[0] - mean[1]).abs().max() > 1e-3 and (value[0] - value[1]).abs().max() > 1e-3


def test_bias_hyperinit_values():
    _, agent = make_agent("rnn_hn", "gridworld")
    first = agent.actor.layers[0]
    assert torch.count_nonzero(first.m[:, :-1]) == 0 and torch.count_nonzero(first.bias_head.weight) == 0
    assert torch.count_nonzero(first.bias_head.bias) == 0
    base = first.m[:, -1].t()  # the generated weight at init, (out, in): normc rows of norm 5/3
    torch.testing.assert_close(base.norm(dim=1), torch.full((base.shape[0],), 5 / 3))
    out = agent.actor.out.m[:, -1].t()  # discrete action head: orthogonal, gain 0.01
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
        z, h = agent.encode(obs, prev_a, prev_r, new_task, h0)
        steps, hs = [], h0
        for t in range(T):  # one step at a time, as in the rollout
            zt, hs = agent.encode(obs[t:t + 1], prev_a[t:t + 1], prev_r[t:t + 1], new_task[t:t + 1], hs)
            steps.append(zt[0])
        torch.testing.assert_close(z, torch.stack(steps), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(h, hs, rtol=1e-5, atol=1e-5)
        # the past before a new task cannot matter after it; the past before an inner end does
        obs2 = obs.clone()
        obs2[:17, 1] += 1.0
        obs2[:12, 0] += 1.0
        z2, _ = agent.encode(obs2, prev_a, prev_r, new_task, h0)
    torch.testing.assert_close(z2[17:, 1], z[17:, 1])
    assert not torch.allclose(z2[12:, 0], z[12:, 0])


@pytest.mark.parametrize("method", METHODS)
def test_gae_runs_across_inner_episodes_and_stops_at_meta_end(method):
    mod = importlib.import_module(method)
    T, gamma, lam = 6, 0.9, 0.8
    rewards = torch.tensor([[1.0], [0.0], [2.0], [0.0], [1.0], [3.0]])
    values = torch.tensor([[0.5], [0.2], [0.1], [0.4], [0.3], [0.6]])
    ended = torch.zeros(T, 1)
    ended[3] = 1  # a meta-episode ends after step 3 (inner ends are not marked: they do not cut)
    next_value = torch.tensor([0.7])
    adv = mod.compute_gae(rewards, values, ended, next_value, gamma, lam)
    expected, last = np.zeros(T), 0.0
    for t in reversed(range(T)):
        nxt = 0.7 if t == T - 1 else values[t + 1, 0].item()
        nonterminal = 0.0 if t == 3 else 1.0
        delta = rewards[t, 0].item() + gamma * nxt * nonterminal - values[t, 0].item()
        last = delta + gamma * lam * nonterminal * last
        expected[t] = last
    np.testing.assert_allclose(adv[:, 0].numpy(), expected, rtol=1e-6)
    assert adv[3, 0].item() == pytest.approx(rewards[3, 0].item() - values[3, 0].item())


@pytest.mark.parametrize("method", METHODS)
def test_latent_projection_size(method):
    _, agent = make_agent(method, "ant-dir")
    assert agent.encoder.project.out_features == 10  # Ant-Dir: 10, elsewhere 25
    _, agent = make_agent(method, "gridworld")
    assert agent.encoder.project.out_features == 25
