"""RNN+HN: a recurrent hypernetwork for meta-RL, trained with PPO (Beck et al. 2023, section 3.2, Fig. 2b).

A GRU reads the trajectory (state, previous action, reward, episode-end flag) of the current task; one
linear layer maps its output to a 2L-d latent, and z = tanh(Linear(latent)) is the input of a
hypernetwork whose linear heads generate every weight and bias of a separate actor and critic. Those
generated networks see the embedded state. Bias-HyperInit makes the heads start at zero weight, so every
trajectory gets the same initial policy. Self-contained: the only project import is envs.py.

    python rnn_hn.py --env gridworld              # the paper's budget (4e6 frames)
    python rnn_hn.py --env walker --lr 1e-4
    python rnn_hn.py --resume runs/gridworld__rnn_hn__73__1700000000
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import importlib.metadata
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import envs

METHOD = "rnn_hn"


# ---------------------------------------------------------------------------------------------------
# Arguments. `None` means: the paper's value for this env (envs.ENVS; docs/envs.md's settings table).
# ---------------------------------------------------------------------------------------------------
@dataclass
class Args:
    env: str = field(default="gridworld", metadata={"help": "task distribution", "choices": list(envs.ENVS)})
    seed: int = field(default=73, metadata={"help": "seed of torch, numpy and the envs"})
    lr: float = field(default=None, metadata={"help": "Adam learning rate (default: our best for the env, BEST_LR, "
                                                      "else 3e-4; the paper sweeps 3e-3..3e-5)"})
    total_timesteps: int = field(default=None, metadata={"help": "env frames to train for (1e5 is accepted)"})
    num_envs: int = field(default=None, metadata={"help": "parallel envs (meta-episodes) per rollout"})
    num_steps: int = field(default=None, metadata={"help": "rollout length per env per update"})
    update_epochs: int = field(default=None, metadata={"help": "PPO epochs per update"})
    num_minibatches: int = field(default=None, metadata={"help": "minibatches per epoch (of whole env sequences)"})
    clip_coef: float = field(default=None, metadata={"help": "PPO clip range (also for the value)"})
    ent_coef: float = field(default=None, metadata={"help": "entropy bonus"})
    vf_coef: float = field(default=0.5, metadata={"help": "value loss coefficient"})
    gamma: float = field(default=None, metadata={"help": "discount"})
    gae_lambda: float = field(default=None, metadata={"help": "GAE lambda"})
    max_grad_norm: float = field(default=0.5, metadata={"help": "gradient norm clip, policy and encoder apart"})
    adam_eps: float = field(default=None, metadata={"help": "Adam epsilon of the policy (the encoder's: 1e-8)"})
    anneal_lr: bool = field(default=None, metadata={"help": "decay the learning rate linearly to 0"})
    reward_clip: float = field(default=None, metadata={"help": "clip of the scaled rewards (ML10: 1e5, in effect none)"})
    gru_size: int = field(default=256, metadata={"help": "GRU units"})
    latent_dim: int = field(default=None, metadata={"help": "L: the encoder's output is a 2L-d latent"})
    latent_embed: int = field(default=None, metadata={"help": "size of z = tanh(Linear(2L-d latent))"})
    state_embed: int = field(default=None, metadata={"help": "policy's state embedding"})
    hidden: str = field(default="256,128", metadata={"help": "hidden layer sizes of the policy"})
    hyper_init: str = field(default="bias", metadata={"help": "init of the hypernetwork heads",
                                                      "choices": ["bias", "kaiming"]})
    cuda: bool = field(default=False, metadata={"help": "train on the GPU"})
    cudagraphs: bool = field(default=False, metadata={"help": "with --cuda: replay the rollout step and the PPO "
                                                                "minibatch as CUDA graphs (several times faster)"})
    precision: str = field(default="fp32", metadata={"help": "bf16: the networks' matrix products in bfloat16 (fp32 "
                                                             "weights and losses; CPUs with AVX512-BF16/AMX, GPUs)",
                                                     "choices": ["fp32", "bf16"]})
    async_envs: bool = field(default=None, metadata={"help": "step MuJoCo/MC-LS/ML10 envs in subprocesses "
                                                             "(default: with --cuda on 4 or more cores)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads (more spin-wait on a busy machine; README)"})
    log_every: int = field(default=10, metadata={"help": "print a progress line every N updates (and every 30 s)"})
    save_every: int = field(default=100, metadata={"help": "checkpoint every N updates (0: only at the end)"})
    run_dir: str = field(default=None, metadata={"help": "output folder (default: runs/<env>__<method>__<seed>__<time>)"})
    resume: str = field(default=None, metadata={"help": "continue the run in this folder from its checkpoint"})
    stop_after: int = field(default=0, metadata={"help": "exit after N updates of this session without saving, "
                                                          "as a kill would (tests, time-boxed sessions)"})


def run_name(args) -> str:
    """The variant's name (RNN+HN; rnn_hn-kaiming: its Kaiming ablation; `-bf16` in bf16): in run folders, progress
    lines, config.json and sweep.py's folders; plot.py shows it as the README's method name."""
    return METHOD + ("-kaiming" if args.hyper_init == "kaiming" else "") + ("-bf16" * (args.precision == "bf16"))


# The learning rate when --lr is not given: the best of our runs per variant and env (sweeps of 1e-3 and 3e-4 on
# Grid-World, pilots of 1e-3, 3e-4 and 1e-4 on MuJoCo: results/), else 3e-4.
BEST_LR = {"rnn_hn": {"gridworld": 3e-4, "cheetah-dir": 3e-4, "walker": 1e-3},
           "rnn_hn-kaiming": {"gridworld": 3e-4, "walker": 3e-4}}


# ---------------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------------
def normc_(weight: torch.Tensor, gain: float) -> torch.Tensor:
    """Each output unit's weight vector ~ N(0, 1), rescaled to norm `gain` (the reference's normc init)."""
    with torch.no_grad():
        weight.normal_()
        weight *= gain / weight.norm(dim=1, keepdim=True)
    return weight


class Encoder(nn.Module):
    """Embeds (state, previous action, reward) with ReLU, runs the GRU, and maps its output to the 2L-d
    latent with one linear layer (the reference's (mu, logvar) layer, used without sampling)."""

    def __init__(self, obs_dim, act_dim, spec: envs.EnvSpec, gru_size, latent_dim):
        super().__init__()
        self.state = nn.Linear(obs_dim, 32)
        self.action = nn.Linear(act_dim, spec.action_embed) if spec.action_embed else None  # none on grids
        self.reward = nn.Linear(1, spec.reward_embed)
        self.gru = nn.GRU(32 + spec.action_embed + spec.reward_embed, gru_size)
        for name, p in self.gru.named_parameters():  # the reference's GRU: orthogonal weights, zero biases
            if name.startswith("weight"):
                nn.init.orthogonal_(p)
            else:
                nn.init.zeros_(p)
        self.latent = nn.Linear(gru_size, 2 * latent_dim)

    def embed(self, obs, prev_action, prev_reward):
        parts = [self.state(obs), self.reward(prev_reward.unsqueeze(-1))]
        if self.action is not None:
            parts.append(self.action(prev_action))
        return F.relu(torch.cat(parts, -1))

    def forward(self, obs, prev_action, prev_reward, new_task, h, every_step=False):
        """Sequences (T, B, ...) of raw inputs from hidden state h (B, H); `new_task[t]` zeroes h before step t.

        The hidden state is reset only where a new task starts. The GRU runs as one fused call per
        segment between the time steps where any sequence starts a new task (one segment on Grid-World,
        where a rollout is exactly one meta-episode), instead of a Python loop over steps. `every_step`
        cuts at every step instead: the same numbers, but no look at the data (a CUDA graph cannot).
        """
        x = self.embed(obs, prev_action, prev_reward)
        cuts = list(range(x.shape[0])) if every_step else torch.nonzero(new_task.any(1)).flatten().tolist()
        bounds = sorted(set([0] + cuts + [x.shape[0]]))
        outs, h = [], h.unsqueeze(0)
        for start, end in zip(bounds[:-1], bounds[1:]):
            h = h * (1.0 - new_task[start]).view(1, -1, 1)
            out, h = self.gru(x[start:end], h)
            outs.append(out)
        return self.latent(torch.cat(outs)), h.squeeze(0)


class GeneratedLinear(nn.Module):
    """A linear layer whose weight W(z) and bias b(z) are produced by linear heads of the latent z.

    Readable form (`weights`): W(z)[o, i] = sum_k M[i, k, o] z_k + M[i, K, o], i.e. a linear head of z
    per weight entry (M[:, K] is the heads' bias), b(z) = a linear head, and y = W(z) s + b(z).
    Fast form (`forward`): y is bilinear in (s, [z, 1]), so it is computed without ever building the
    (batch, out, in) weight tensor, in one of two orders of the same multiply-adds: (s outer [z, 1]) @ M
    when in < out, else ((s @ M) viewed as (batch, K+1, out)) contracted with [z, 1]. At in == out they
    cost the same in fp32 (the first is kept), but under bf16 autocast the first one's elementwise outer
    product runs without matrix units, and the second is 1.8x faster (results/precision/README.md).
    M is stored as one 2-d matrix (in, (K+1) * out), so that autocast casts it once per region, not per use.
    """

    def __init__(self, in_dim, out_dim, latent_dim, base_init, hyper_init):
        super().__init__()
        self.in_dim, self.out_dim, self.latent_dim = in_dim, out_dim, latent_dim
        m = torch.zeros(in_dim, latent_dim + 1, out_dim)  # M[i, k, o]
        bias_head = nn.Linear(latent_dim, out_dim)  # generates b(z)
        if hyper_init == "bias":  # Bias-HyperInit: zero weights, the base layer's init as head bias
            base = torch.empty(out_dim, in_dim)
            base_init(base)
            m[:, latent_dim, :] = base.t()
            nn.init.zeros_(bias_head.weight)
        else:  # Kaiming ablation: the heads are Kaiming-uniform layers of z (tanh's gain), biases zero
            head = torch.empty(out_dim * in_dim, latent_dim)
            nn.init.kaiming_uniform_(head, nonlinearity="tanh")
            m[:, :latent_dim, :] = head.view(out_dim, in_dim, latent_dim).permute(1, 2, 0)
            nn.init.kaiming_uniform_(bias_head.weight, nonlinearity="tanh")
        nn.init.zeros_(bias_head.bias)  # heads that generate biases start at 0
        self.m = nn.Parameter(m.flatten(1))
        self.bias_head = bias_head

    def heads(self):
        """M[i, k, o]: the weight of z_k (k = K: the head's bias) in generated weight W[o, i]."""
        return self.m.view(self.in_dim, self.latent_dim + 1, self.out_dim)

    def weights(self, z):
        """The generated parameters themselves: W(z) (B, out, in) and b(z) (B, out)."""
        m = self.heads()
        w = torch.einsum("iko,bk->boi", m[:, :-1], z) + m[:, -1].t()
        return w, self.bias_head(z)

    def forward(self, s, z):
        z1 = torch.cat([z, torch.ones_like(z[:, :1])], 1)
        bf16 = torch.is_autocast_enabled(s.device.type)
        if self.in_dim < self.out_dim or (self.in_dim == self.out_dim and not bf16):
            y = (s.unsqueeze(2) * z1.unsqueeze(1)).flatten(1) @ self.m.view(-1, self.out_dim)
        else:
            y = torch.bmm(z1.unsqueeze(1), (s @ self.m).view(-1, self.latent_dim + 1, self.out_dim)).squeeze(1)
        return y + self.bias_head(z)


class HyperMLP(nn.Module):
    """embedded state -> generated tanh layers -> generated output layer, all weights from z."""

    def __init__(self, embed_dim, hidden, out_dim, latent_dim, out_init, hyper_init):
        super().__init__()
        sizes = [embed_dim] + hidden
        tanh_init = lambda w: normc_(w, 5.0 / 3.0)  # noqa: E731  (gain of tanh)
        self.layers = nn.ModuleList(GeneratedLinear(a, b, latent_dim, tanh_init, hyper_init)
                                    for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = GeneratedLinear(sizes[-1], out_dim, latent_dim, out_init, hyper_init)

    def forward(self, x, z):
        for layer in self.layers:
            x = torch.tanh(layer(x, z))
        return self.out(x, z)


class Agent(nn.Module):
    def __init__(self, obs_dim, action_space, spec: envs.EnvSpec, args: Args):
        super().__init__()
        self.discrete = hasattr(action_space, "n")
        act_dim = 1 if self.discrete else action_space.shape[0]  # discrete actions enter as the index
        out_dim = action_space.n if self.discrete else act_dim
        hidden = [int(s) for s in args.hidden.split(",")]
        self.obs_rms = RunningMeanStd((obs_dim,))  # normalises the policy's state input (not the encoder's)
        self.encoder = Encoder(obs_dim, act_dim, spec, args.gru_size, args.latent_dim)
        self.latent_embed = nn.Linear(2 * args.latent_dim, args.latent_embed)  # z = tanh(.) of the latent
        # The policy: embedded state in, every later weight generated from z (Fig. 2b).
        self.state_embed = nn.Linear(obs_dim, args.state_embed)  # one, shared by actor and critic
        if self.discrete:
            actor_out = lambda w: nn.init.orthogonal_(w, 0.01)  # noqa: E731
        else:
            actor_out = lambda w: normc_(w, 1.0)  # noqa: E731
            self.logstd = nn.Parameter(torch.zeros(act_dim))  # one shared parameter, not generated
        critic_out = nn.init.kaiming_uniform_  # a = 0, as the reference's base critic
        self.actor = HyperMLP(args.state_embed, hidden, out_dim, args.latent_embed, actor_out, args.hyper_init)
        self.critic = HyperMLP(args.state_embed, hidden, 1, args.latent_embed, critic_out, args.hyper_init)

    def heads(self, latent, obs):
        """Policy distribution and value from the encoder's 2L-d latent and the raw state."""
        z = torch.tanh(self.latent_embed(latent))
        s = torch.tanh(self.state_embed(self.obs_rms.normalize(obs)))
        out = self.actor(s, z)
        value = self.critic(s, z).squeeze(-1)
        out, value = out.float(), value.float()  # (--precision bf16: the distributions and losses in fp32)
        if self.discrete:
            return torch.distributions.Categorical(logits=out), value
        return torch.distributions.Normal(out, self.logstd.exp()), value

    @torch.no_grad()
    def act(self, obs, prev_action, prev_reward, new_task, h):
        """One rollout step of N envs: a sampled action, its log-probability, the value, the next h, the latent."""
        latent, h = self.encoder(obs[None], prev_action[None], prev_reward[None], new_task[None], h, every_step=True)
        dist, value = self.heads(latent[0], obs)
        # rsample: the same draw as sample(), without sample()'s check of the scale on the host (not in a graph)
        action = dist.sample() if self.discrete else dist.rsample()
        logprob = dist.log_prob(action)
        return action, logprob if self.discrete else logprob.sum(-1), value, h, latent[0]


# ---------------------------------------------------------------------------------------------------
# PPO pieces
# ---------------------------------------------------------------------------------------------------
def scale_reward(r, ended, disc_return, reward_rms, gamma, clip):
    """Rewards for PPO: divided by the running std of the discounted return, clipped to [-clip, clip]. The
    per-env discounted return `disc_return` is updated in place and restarts after a meta-episode end. numpy
    arrays in and out: it runs every env step, on a few numbers, where torch's per-op dispatch costs ~2x numpy's.
    The square root stays torch's, whose float32 result is not always numpy's (correctly rounded) one."""
    disc_return *= gamma
    disc_return += r
    reward_rms.update(disc_return)
    norm_r = np.clip(r / torch.sqrt(reward_rms.var.float() + 1e-8).numpy(), -clip, clip)
    disc_return[ended] = 0.0
    return norm_r


def compute_gae(rewards, values, ended, next_value, gamma, lam):
    """GAE over (T, N) rollouts. Only a meta-episode end (`ended`) stops bootstrapping: inner-episode ends
    are ordinary steps of the meta-episode, whose whole return is the objective (Eq. 1)."""
    advantages, last = torch.zeros_like(rewards), torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        nonterminal = 1.0 - ended[t]
        nxt = next_value if t == rewards.shape[0] - 1 else values[t + 1]
        delta = rewards[t] + gamma * nxt * nonterminal - values[t]
        last = delta + gamma * lam * nonterminal * last
        advantages[t] = last
    return advantages


def ppo_loss(logprob, old_logprob, adv, value, old_value, ret, entropy, clip, vf_coef, ent_coef):
    """Clipped PPO loss with the reference's value loss, 0.5 * mean(max(Huber(V), Huber(V clipped))),
    weighted again by vf_coef (the reference's). Returns (loss, policy loss, value loss, log-ratio)."""
    logratio = logprob - old_logprob
    ratio = logratio.exp()
    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
    v_clipped = old_value + (value - old_value).clamp(-clip, clip)
    v_loss = 0.5 * torch.max(F.smooth_l1_loss(value, ret, reduction="none"),
                             F.smooth_l1_loss(v_clipped, ret, reduction="none")).mean()
    return pg_loss + vf_coef * v_loss - ent_coef * entropy.mean(), pg_loss, v_loss, logratio


STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "latent_grad_norm", "grad_norm",
         "encoder_grad_norm")


def ppo_minibatch(agent, optimizer, buf, mb, args, amp):
    """Loss, backward pass and gradient clipping on the env sequences `mb` of the rollout `buf`, re-encoded from the
    rollout start (full BPTT); returns the loss and the STATS. The optimizer steps once the loss is known finite."""
    with amp():
        latent, _ = agent.encoder(buf["obs"][:, mb], buf["prev_action"][:, mb], buf["prev_reward"][:, mb],
                                  buf["new_task"][:, mb], buf["h0"][mb], every_step=args.cudagraphs)
        dist, value = agent.heads(latent.flatten(0, 1), buf["obs"][:, mb].flatten(0, 1))
    act = buf["actions"][:, mb].flatten(0, 1)
    logprob = dist.log_prob(act) if agent.discrete else dist.log_prob(act).sum(-1)
    entropy = dist.entropy() if agent.discrete else dist.entropy().sum(-1)
    loss, pg_loss, v_loss, logratio = ppo_loss(
        logprob, buf["logprob"][:, mb].flatten(), buf["advantages"][:, mb].flatten(), value,
        buf["value"][:, mb].flatten(), buf["returns"][:, mb].flatten(), entropy, args.clip_coef, args.vf_coef,
        args.ent_coef)
    # Fig. 11: per sample, the norm of d(sum of values)/d latent (the reference's get_mean_grad_norm)
    dv_dlatent, = torch.autograd.grad(value.sum(), latent, retain_graph=True)
    optimizer.zero_grad()
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], args.max_grad_norm)  # the policy
    encoder_grad_norm = nn.utils.clip_grad_norm_(optimizer.param_groups[1]["params"], args.max_grad_norm)
    ratio = logratio.exp()  # approx KL from the log-ratio, as CleanRL: finite where a ratio underflows to 0
    return torch.stack([loss, pg_loss, v_loss, entropy.mean(), ((ratio - 1) - logratio).mean(),
                        ((ratio - 1).abs() > args.clip_coef).float().mean(), dv_dlatent.norm(dim=-1).mean(),
                        grad_norm, encoder_grad_norm]).detach()


def main(args: Args):
    spec = envs.get_spec(args.env)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.cuda else "cpu")
    amp = autocast(args, device)  # --precision bf16, else a region that does nothing
    K, N, T = spec.episodes_per_task, args.num_envs, args.num_steps
    num_updates = max(1, args.total_timesteps // (N * T))

    # ------------------------------------------------------------------ env setup
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_flush_denormal(True)  # on x86 CPUs, tiny numbers (Adam's decaying moments) cost ~3x an operation
    vec, next_obs, _ = envs.make_vec(args.env, N, args.seed, envs_in_subprocesses(args))
    obs_dim = vec.single_observation_space.shape[0]
    action_space = vec.single_action_space

    # ------------------------------------------------------------------ agent and optimizer
    agent = Agent(obs_dim, action_space, spec, args).to(device)
    policy_params = [p for name, p in agent.named_parameters() if not name.startswith("encoder.")]
    encoder_params = list(agent.encoder.parameters())
    # Two parameter groups at one learning rate (the reference's): the policy with the env's eps, the encoder with 1e-8.
    optimizer = torch.optim.Adam([dict(params=policy_params, eps=args.adam_eps), dict(params=encoder_params, eps=1e-8)],
                                 lr=args.lr, fused=True)  # fused: one kernel for all parameters
    reward_rms = RunningMeanStd()  # rewards for PPO / running std of the discounted return
    act_dim = 1 if agent.discrete else action_space.shape[0]

    # What carries over from one rollout to the next (and into checkpoints). Only h lives on `device`: the env
    # side (inputs, reward scaling, GAE) stays on the CPU, where each of a step's tiny operations costs
    # microseconds, not a GPU kernel launch.
    carry = dict(obs=torch.as_tensor(next_obs), h=torch.zeros(N, args.gru_size, device=device),
                 prev_action=torch.zeros(N, act_dim), prev_reward=torch.zeros(N), new_task=torch.ones(N),
                 disc_return=np.zeros(N, dtype=np.float32),
                 meta_return=np.zeros(N), ep_returns=np.zeros((N, K)), ep_index=np.zeros(N, dtype=int))
    # The run folder, logs and checkpoints of these objects, and resuming from them (below the banner).
    run = Run(args, num_updates, N * T, K, ["encoder_grad_norm"],
              dict(agent=agent, optimizer=optimizer, reward_rms=reward_rms), carry, vec)
    if run.finished:
        return None
    vec = run.vec  # (a resumed run whose envs cannot restore their state has new ones)

    # Rollout storage, (T, N, ...) per env sequence, and what the update reads besides (filled in place every
    # update, so that a CUDA graph can read them too); rewards and ends for GAE on the CPU.
    buf = {k: torch.zeros(T, N, *shape, device=device) for k, shape in [
        ("obs", (obs_dim,)), ("prev_action", (act_dim,)), ("prev_reward", ()), ("new_task", ()), ("logprob", ()),
        ("actions", () if agent.discrete else (act_dim,)), ("value", ()), ("advantages", ()), ("returns", ())]}
    buf["h0"] = torch.zeros(N, args.gru_size, device=device)  # the recurrent state at the rollout start
    reward_buf, ended_buf = torch.zeros(T, N), torch.zeros(T, N)
    act, ppo_step = cuda_graphs(args, agent.act, lambda mb: ppo_minibatch(agent, optimizer, buf, mb, args, amp))

    for update in run.updates():
        lr = args.lr * (1.0 - (update - 1) / num_updates) if args.anneal_lr else args.lr
        for group in optimizer.param_groups:
            group["lr"] = lr
        buf["h0"].copy_(carry["h"])
        h = carry["h"]
        finished = dict(meta=[], eps=[], success=[])  # this update's finished meta-episodes, for the log

        # ------------------------------------------------------------------ rollout
        with amp():  # the rollout: one autocast region (see autocast)
            for t in range(T):
                buf["obs"][t], buf["prev_action"][t] = carry["obs"], carry["prev_action"]
                buf["prev_reward"][t], buf["new_task"][t] = carry["prev_reward"], carry["new_task"]
                action, buf["logprob"][t], buf["value"][t], h, _ = act(
                    buf["obs"][t], buf["prev_action"][t], buf["prev_reward"][t], buf["new_task"][t], h)
                buf["actions"][t], action = action, action.cpu()
                # Unclipped, as in the reference: the reward's control cost sees the raw Gaussian sample, and MuJoCo
                # clamps the motor command to its range itself.
                env_action = action.numpy()
                next_obs, reward, terminated, truncated, info = vec.step(env_action)
                ended = terminated | truncated
                r = torch.as_tensor(reward, dtype=torch.float32)
                norm_r = torch.from_numpy(scale_reward(r.numpy(), ended, carry["disc_return"], reward_rms, args.gamma,
                                                          args.reward_clip))
                a_in = action.float().view(N, act_dim) if agent.discrete else torch.as_tensor(env_action)
                if truncated.any():  # a time limit is not an end: bootstrap from the last observation
                    idx = np.flatnonzero(truncated)
                    with torch.no_grad():
                        fin = torch.as_tensor(info["final_obs"][idx], device=device)
                        lf, _ = agent.encoder(fin[None], a_in[idx][None].to(device), r[idx][None].to(device),
                                              torch.zeros(1, len(idx), device=device), h[idx])
                        _, vf = agent.heads(lf[0], fin)
                    norm_r[idx] += args.gamma * vf.cpu()
                reward_buf[t], ended_buf[t] = norm_r, torch.as_tensor(ended, dtype=torch.float32)

                # Next step's inputs: a new task starts with a zero hidden state and no previous action.
                done_t = torch.as_tensor(ended, dtype=torch.float32)
                carry["obs"] = torch.as_tensor(next_obs)
                carry["prev_action"] = a_in * (1.0 - done_t).unsqueeze(1)
                carry["prev_reward"] = r * (1.0 - done_t)
                carry["new_task"] = done_t
                count_returns(carry, reward, ended, next_obs, info, finished)  # per meta- and inner episode
        carry["h"] = h

        # ------------------------------------------------------------------ GAE across the meta-episode
        with torch.no_grad(), amp():
            nxt = [carry[k][None].to(device) for k in ("obs", "prev_action", "prev_reward", "new_task")]
            ln, _ = agent.encoder(*nxt, h)
            _, next_value = agent.heads(ln[0], nxt[0][0])
            values = buf["value"].cpu()  # GAE on the CPU: a loop of tiny steps
            advantages = compute_gae(reward_buf, values, ended_buf, next_value.cpu(), args.gamma, args.gae_lambda)
            buf["returns"].copy_(advantages + values)
            buf["advantages"].copy_((advantages - advantages.mean()) / (advantages.std() + 1e-8))

        # ------------------------------------------------------------------ PPO update (full BPTT)
        stats = {k: [] for k in STATS}
        envs_per_mb = N // args.num_minibatches
        for _ in range(args.update_epochs):
            perm = torch.randperm(N).to(device)
            for start in range(0, N, envs_per_mb):
                loss, *values = ppo_step(perm[start:start + envs_per_mb]).tolist()
                run.check_finite(loss, update)
                optimizer.step()
                for k, v in zip(STATS, values):
                    stats[k].append(v)
        agent.obs_rms.update(buf["obs"])  # after the update, so rollout and update saw the same statistics

        if not run.end_update(update, lr, stats, finished):  # the log, checkpoints, Ctrl-C (below the banner)
            return None
    return run.finish()


# ===================================================================================================
# Run machinery: the same in all six method scripts and not needed to follow the method (argument parsing
# and checks, resuming, running statistics, CUDA graphs, bf16, the run folder's files and logs).
# ===================================================================================================
PER_ENV = ("total_timesteps", "num_envs", "num_steps", "update_epochs", "num_minibatches", "clip_coef", "ent_coef",
           "gamma", "gae_lambda", "adam_eps", "anneal_lr", "reward_clip", "latent_dim", "latent_embed", "state_embed")
ON_RESUME = ("total_timesteps", "threads", "log_every", "save_every", "cuda", "cudagraphs", "async_envs",
             "stop_after")  # may change


def _int(text):
    try:
        value = float(text)  # so that 1e5 is accepted
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(value)


def _bool(text):
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def parse_args(argv=None) -> Args:
    # Unset flags stay out of the namespace (SUPPRESS): the dataclass gives defaults, --resume sees what was set.
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], argument_default=argparse.SUPPRESS)
    # A bad flag is one line naming the allowed values, not a usage block.
    parser.error = lambda msg: parser.exit(2, f"{parser.prog}: error: {msg}\n")
    for f in dataclasses.fields(Args):
        kind = {"bool": _bool, "int": _int, "float": float}.get(f.type, str)
        default = "per env" if f.name in PER_ENV else f.default
        text = f.metadata["help"] + ("" if default is None or "default" in f.metadata["help"] else f" (default: {default})")
        extra = dict(nargs="?", const=True) if kind is _bool else dict(choices=f.metadata.get("choices"))
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, help=text, **extra)
    given = vars(parser.parse_args(argv))
    if "resume" in given:
        return resume_args(parser, given)
    args = Args(**given)
    env_defaults(args)
    if args.lr is None:
        args.lr = BEST_LR.get(run_name(args), {}).get(args.env, 3e-4)
        args.lr_note = " (our best on this env; --lr sets another)" if args.env in BEST_LR.get(run_name(args), {}) else ""
    size = next((k for k in ("gru_size", "latent_dim", "latent_embed", "state_embed") if getattr(args, k, 1) <= 0), "")
    checks = operational_checks(args) + [
              (0 < args.lr < math.inf, "--lr must be a finite number > 0"), (args.seed >= 0, "--seed must be >= 0"),
              (args.num_envs > 0, "--num-envs must be > 0"),
              (args.num_steps > 0, "--num-steps must be > 0"), (args.update_epochs > 0, "--update-epochs must be > 0"),
              (args.num_minibatches > 0 and args.num_envs % args.num_minibatches == 0,
               f"--num-minibatches must divide --num-envs ({args.num_envs}) and be > 0" if "num_minibatches" in given else
               f"--num-envs {args.num_envs} does not split into {args.env}'s {args.num_minibatches} minibatches of whole "
               f"env sequences: choose a multiple of {args.num_minibatches}, or a --num-minibatches that divides it"),
              (all(s.isdigit() and int(s) > 0 for s in args.hidden.split(",")), "--hidden must be sizes > 0 like 256,128"),
              (not size, f"--{size.replace('_', '-')} must be > 0"),
              (args.run_dir is None or not os.path.exists(os.path.join(args.run_dir, "config.json")),
               f"--run-dir {args.run_dir} already holds a run: continue it with --resume {args.run_dir}, "
               f"or choose another folder"),
              (args.run_dir is None or not not_a_folder(args.run_dir),
               f"--run-dir {args.run_dir}: {not_a_folder(args.run_dir or '.')} is a file, not a folder; choose another")]
    for ok, msg in checks:
        if not ok:
            parser.error(msg)
    if args.lr > 0.1:
        print(f"warning: --lr {args.lr:g} is far above the paper's range (3e-5 to 3e-3); expect no learning", file=sys.stderr)
    return args


def env_defaults(args):
    """Settings left unset (None) take the env's value (envs.ENVS)."""
    spec = envs.get_spec(args.env)
    for name in PER_ENV:
        if getattr(args, name) is None:
            setattr(args, name, getattr(spec, name))


def operational_checks(args):
    """(ok, message) for the flags that may also change on --resume."""
    return [(args.total_timesteps > 0, "--total-timesteps must be > 0"), (args.threads > 0, "--threads must be > 0"),
            (args.log_every > 0, "--log-every must be > 0"), (args.save_every >= 0, "--save-every must be >= 0"),
            (args.stop_after >= 0, "--stop-after must be >= 0"),
            (not args.cuda or torch.cuda.is_available(), "--cuda: no CUDA device is available here (--cuda false: CPU)"),
            (not args.cudagraphs or args.cuda, "--cudagraphs needs --cuda")]


def resume_args(parser, given) -> Args:
    """--resume RUN_DIR: the run's own settings from its config.json; only the ON_RESUME flags may change."""
    run_dir = given.pop("resume")
    fixed = [k for k in given if k not in ON_RESUME]
    if fixed:
        parser.error(f"--{fixed[0].replace('_', '-')} cannot change when resuming (the run keeps its settings); "
                     f"allowed with --resume: {', '.join('--' + k.replace('_', '-') for k in ON_RESUME)}")
    if not os.path.exists(os.path.join(run_dir, "config.json")):
        parser.error(f"--resume {run_dir}: no run there (no config.json)")
    try:
        with open(os.path.join(run_dir, "config.json")) as fh:
            saved = json.load(fh)
        args = Args(**{k: v for k, v in saved.items() if k in Args.__dataclass_fields__})  # drops "method"
    except (OSError, ValueError, TypeError, AttributeError) as e:
        parser.error(f"--resume {run_dir}: its config.json is missing or unreadable ({type(e).__name__})")
    if saved.get("method", METHOD) != METHOD:
        parser.error(f"--resume {run_dir}: that run was trained by {saved['method']}.py; resume it with that script")
    args = dataclasses.replace(args, **given, resume=run_dir, run_dir=run_dir)
    env_defaults(args)  # a setting newer than the run: it ran with the env's value
    for ok, msg in operational_checks(args):
        if not ok:
            parser.error(msg)
    return args


class RunningMeanStd(nn.Module):
    """Running mean and variance (parallel algorithm); buffers, so they live in the checkpoint."""

    def __init__(self, shape=()):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    def update(self, x):
        """Folds in a batch x of shape (n, *shape). A numpy x (the reward's statistics, updated every env step) is
        folded in by numpy, on views of the CPU buffers: torch's per-op dispatch makes it ~3x slower on 0-d tensors."""
        if isinstance(x, np.ndarray):
            m, v, c = self.mean.numpy(), self.var.numpy(), self.count.numpy()
            x = x.reshape(-1, *m.shape).astype(np.float64)
            mean, var = x.mean(0), x.var(0)
        else:
            m, v, c = self.mean, self.var, self.count
            x = x.reshape(-1, *m.shape).double()
            mean, var = x.mean(0), x.var(0, unbiased=False)
        n = x.shape[0]
        delta, total = mean - m, c + n
        m += delta * n / total
        v[...] = (v * c + var * n + delta**2 * c * n / total) / total
        c[...] = total

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean.float()) / torch.sqrt(self.var.float() + 1e-8)).clamp(-10.0, 10.0)


def autocast(args, device):
    """The autocast region of --precision bf16 (the networks' matrix products in bfloat16; weights, losses and Adam
    stay fp32), or a region that does nothing. bf16 runs only where the hardware has bf16 units: emulated, it is
    many times slower than fp32, so elsewhere this says so and the run is fp32. Autocast keeps each weight's bf16
    copy for as long as its outermost region lasts: one region spans the whole rollout (the weights are fixed
    there), none spans an optimizer step, and a CUDA graph records the casts themselves (a cached copy would go
    stale in the replayed graph)."""
    if args.precision == "bf16" and not bf16_matmuls(args.cuda):
        print(f"--precision bf16: this {'GPU' if args.cuda else 'CPU'} has no bf16 matrix units; running fp32", flush=True)
        args.precision = "fp32"
    return lambda: torch.autocast(device.type, torch.bfloat16, enabled=args.precision == "bf16",
                                  cache_enabled=not args.cudagraphs)


def bf16_matmuls(cuda: bool) -> bool:
    """Whether bf16 matrix products run natively: on a GPU that supports them, or on a CPU with AVX512-BF16/AMX."""
    return torch.cuda.is_bf16_supported() if cuda else torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cuda_graphs(args, *fns):
    """--cudagraphs, the fast path on a GPU: the same functions, each recorded once as a CUDA graph and replayed."""
    if not args.cudagraphs:
        return fns
    torch.distributions.Distribution.set_default_validate_args(False)  # its checks read the data on the host
    return tuple(CudaGraph(fn) for fn in fns)


def envs_in_subprocesses(args) -> bool:
    """--async-envs, by default only with --cuda on 4+ cores: subprocesses pay off from 4 free cores on
    (results/gpu/README.md); a CPU run keeps its cores for torch."""
    return args.async_envs if args.async_envs is not None else args.cuda and len(os.sched_getaffinity(0)) >= 4


def count_returns(carry, reward, ended, next_obs, info, finished):
    """Per env, the return of the meta-episode so far and of each inner episode (carried across rollouts); the
    finished ones go to `finished` (meta, eps, and ML10's success flag of each finished inner episode)."""
    N, K = carry["ep_returns"].shape
    carry["meta_return"] += reward
    carry["ep_returns"][np.arange(N), np.minimum(carry["ep_index"], K - 1)] += reward
    inner_end = ended | ((next_obs[:, -1] == 1) if K > 1 else ended)  # the flag marks an inner episode's end
    carry["ep_index"] += inner_end
    if "success" in info:  # ML10: Meta-World's success flag of the inner episodes that end here
        finished["success"].extend(info["success"][inner_end])
    for i in np.flatnonzero(ended):
        finished["meta"].append(carry["meta_return"][i])
        finished["eps"].append(carry["ep_returns"][i].copy())
        carry["meta_return"][i], carry["ep_returns"][i], carry["ep_index"][i] = 0.0, 0.0, 0


class Run:
    """A run's folder and everything around the training loop that does not change what it computes: resuming
    exactly from checkpoint.pt, config.json, progress.csv (one row per update, written before the checkpoint that
    covers it), TensorBoard and console lines, the checkpoints (`state`: the objects with a state_dict, saved under
    their keys, with `carry`, the RNG states and the envs' state), the guard against a non-finite loss, Ctrl-C,
    --stop-after and summary.json. Files are written whole or not at all (atomic_write)."""

    def __init__(self, args, num_updates, batch, K, extra_columns, state, carry, vec):
        self.args, self.num_updates, self.batch, self.K = args, num_updates, batch, K
        self.state, self.carry, self.vec = state, carry, vec
        self.start_update, self.elapsed, self.rows, self.finished = 0, 0.0, [], False  # elapsed: summed over sessions
        if args.run_dir is None:
            args.run_dir = os.path.join("runs", f"{args.env}__{run_name(args)}__{args.seed}__{int(time.time())}")
        os.makedirs(args.run_dir, exist_ok=True)
        for stale in glob.glob(os.path.join(args.run_dir, "*.tmp*")):  # left behind by a kill during a write
            os.remove(stale)
        self.columns = (["update", "global_step", "return"] + [f"return_ep{k + 1}" for k in range(K)] +
                        ["success", "episodes", "sps", "policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac",
                         "latent_grad_norm", "grad_norm"] + extra_columns + ["lr", "time"])
        self.progress_csv = os.path.join(args.run_dir, "progress.csv")
        if args.resume and not self.resume():
            return
        atomic_write(self.progress_csv, lambda fh: fh.write("".join(
            [",".join(self.columns) + "\n"] + [csv_line(r, self.columns) for r in self.rows]).encode()))
        self.session_start = self.elapsed
        made_by = provenance()  # the code and machine that made the run's first updates: a resumed run keeps them
        if args.resume:
            with open(os.path.join(args.run_dir, "config.json")) as fh:
                saved = json.load(fh)
            made_by = {k: saved[k] for k in made_by if k in saved} if "commit" in saved else made_by
        config = dataclasses.asdict(args) | {"resume": None, "stop_after": 0, "method": METHOD,
                                             "variant": run_name(args)} | made_by
        atomic_write(os.path.join(args.run_dir, "config.json"), lambda fh: fh.write(json.dumps(config, indent=1).encode()))
        print(f"{run_name(args)} {args.env}: {num_updates} update{'s' * (num_updates > 1)} of {batch:,} frames at lr "
              f"{args.lr:g}{getattr(args, 'lr_note', '')}, logs in {args.run_dir}", flush=True)
        try:
            from torch.utils.tensorboard import SummaryWriter  # optional

            self.writer = SummaryWriter(args.run_dir)
        except ImportError:
            self.writer = None
        self.last_print = time.time()

    def resume(self) -> bool:
        """Loads checkpoint.pt into the state objects, carry and RNGs; False when the run is finished already."""
        args, path = self.args, os.path.join(self.args.run_dir, "checkpoint.pt")
        if not os.path.exists(path):
            # Stopped before its first checkpoint: starting over with the same seed is the exact continuation.
            print(f"{args.run_dir} has no checkpoint yet: starting it over from update 0", flush=True)
            return True
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            for key, obj in self.state.items():
                obj.load_state_dict(ckpt[key])
        except Exception as e:  # truncated, empty, garbage, or another script's checkpoint
            sys.exit(f"{METHOD}: cannot resume: {path} is damaged or not a {METHOD}.py checkpoint "
                     f"({type(e).__name__}); start a new run in another folder")
        self.start_update, self.elapsed = ckpt["update"], ckpt["elapsed"]
        if self.start_update >= self.num_updates:  # nothing to do: the finished run stays as it is
            self.vec.close()
            print(f"{args.run_dir} is finished (update {self.start_update} of {self.num_updates}); a larger "
                  f"--total-timesteps extends it")
            self.finished = True
            return False
        device = self.carry["h"].device
        self.carry.clear()
        self.carry.update(ckpt["carry"], h=ckpt["carry"]["h"].to(device))
        torch.set_rng_state(ckpt["torch_rng"])
        np.random.set_state(ckpt["numpy_rng"])
        if ckpt["env_state"] is not None:
            self.vec.set_state(ckpt["env_state"])
        else:  # envs that cannot restore their state (ML10) start new meta-episodes here
            self.vec.close()
            self.vec, next_obs, info = envs.make_vec(args.env, args.num_envs, args.seed + self.start_update,
                                                     envs_in_subprocesses(args))
            self.carry.update(obs=torch.as_tensor(next_obs), new_task=torch.ones(args.num_envs))
            if "task" in self.carry:  # (the task the TI methods' policy is told in pre-training)
                self.carry["task"] = torch.as_tensor(info["task"], dtype=torch.float32)
            if "stage" in self.carry:  # (the VAE's partial meta-episodes start over with them)
                self.carry["stage"]["t"][:] = 0
        self.rows = read_progress(self.progress_csv, self.start_update)
        if [int(r["update"]) for r in self.rows] != list(range(1, self.start_update + 1)):
            print(f"warning: {self.progress_csv} lacks some of updates 1-{self.start_update} (written by an older version?)")
        print(f"resuming {args.run_dir} at update {self.start_update}/{self.num_updates}", flush=True)
        for done_file in ("summary.json", "eval.json", "model.pt"):  # extended: they told of the shorter run
            if os.path.exists(os.path.join(args.run_dir, done_file)):
                os.remove(os.path.join(args.run_dir, done_file))
        return True

    def updates(self):
        """The update numbers still to do, each timed (for sps and the training time)."""
        for update in range(self.start_update + 1, self.num_updates + 1):
            self.t0 = time.time()
            yield update

    def save(self, update, name="checkpoint.pt"):
        state = {key: obj.state_dict() for key, obj in self.state.items()} | dict(
            carry=self.carry, update=update, elapsed=self.elapsed, torch_rng=torch.get_rng_state(),
            numpy_rng=np.random.get_state(), env_state=self.vec.get_state(), args=dataclasses.asdict(self.args))
        atomic_write(os.path.join(self.args.run_dir, name), lambda fh: torch.save(state, fh))

    def check_finite(self, loss, update, what="loss", flag="--lr"):
        """A non-finite loss stops the run, its state at that point saved in checkpoint_nan.pt."""
        if not math.isfinite(loss):
            self.save(update, "checkpoint_nan.pt")
            sys.exit(f"{METHOD}: non-finite {what} at update {update}; the state at that point is in "
                     f"{os.path.join(self.args.run_dir, 'checkpoint_nan.pt')} (try a lower {flag})")

    def end_update(self, update, lr, stats, finished, **extra) -> bool:
        """Logs the update (progress.csv, TensorBoard, a console line every --log-every updates or 30 s) and saves
        a checkpoint when due or on Ctrl-C; False when the run stops here (--stop-after)."""
        args, K, batch, num_updates = self.args, self.K, self.batch, self.num_updates
        self.elapsed += time.time() - self.t0
        row = {"update": update, "global_step": update * batch, "episodes": len(finished["meta"]),
               "return": float(np.mean(finished["meta"])) if finished["meta"] else None,
               "success": float(np.mean(finished["success"])) if finished["success"] else None,
               "sps": int((update - self.start_update) * batch / max(self.elapsed - self.session_start, 1e-9)),
               "lr": lr, "time": round(self.elapsed, 2)} | extra | {
                   k: float(np.mean(v)) if v else None for k, v in stats.items()}
        for k in range(K):
            row[f"return_ep{k + 1}"] = float(np.mean([e[k] for e in finished["eps"]])) if finished["eps"] else None
        self.rows.append(row)
        with open(self.progress_csv, "a") as fh:  # one line per update, before the checkpoint that covers it
            fh.write(csv_line(row, self.columns))
        if self.writer is not None:
            for k, v in row.items():
                if isinstance(v, float):
                    self.writer.add_scalar(k, v, row["global_step"])
        if update % args.log_every == 0 or update == num_updates or time.time() - self.last_print > 30:
            self.last_print = time.time()
            eta = (num_updates - update) * batch / max(row["sps"], 1) / 60
            eps = " ".join(_fmt(row[f"return_ep{k + 1}"], 2) for k in range(K))
            latent = "pre-training" if row.get("pretraining") else f"latent grad {row['latent_grad_norm']:.3g}"
            print(f"{run_name(args)} {args.env} | update {update}/{num_updates} | frames {row['global_step']:,} | "
                  f"sps {row['sps']:,} | eta {f'{eta / 60:.1f}h' if eta > 60 else f'{eta:.1f}m'} | "
                  f"return {_fmt(row['return'], 2)} | per episode {eps} | {latent}", flush=True)
        if update == num_updates or (args.save_every and update % args.save_every == 0) or INTERRUPTED:
            self.save(update)
        if INTERRUPTED and update < num_updates:
            self.vec.close()
            print(f"interrupted after update {update}/{num_updates}, saved; continue with: "
                  f"python {METHOD}.py --resume {args.run_dir}", flush=True)
            sys.exit(130)
        if args.stop_after and update - self.start_update >= args.stop_after and update < num_updates:
            print(f"stopping after {args.stop_after} updates (--stop-after); continue with: "
                  f"python {METHOD}.py --resume {args.run_dir}")
            self.vec.close()
            return False
        return True

    def finish(self):
        """model.pt, the final policy (weights and normalisers: what acting needs, a fraction of the checkpoint),
        then summary.json: the run is done (final_return: the mean training return over the last 10% of updates)."""
        args, rows = self.args, self.rows
        self.vec.close()
        if self.writer is not None:
            self.writer.close()
        model = dict(agent=self.state["agent"].state_dict(), update=self.num_updates, method=METHOD,
                     variant=run_name(args), args=dataclasses.asdict(args))
        atomic_write(os.path.join(args.run_dir, "model.pt"), lambda fh: torch.save(model, fh))
        recent = [float(r["return"]) for r in rows[-max(1, len(rows) // 10):] if r["return"] not in (None, "")]
        summary = {"method": METHOD, "variant": run_name(args), "env": args.env, "seed": args.seed, "lr": args.lr,
                   "updates": self.num_updates,
                   "global_step": self.num_updates * self.batch, "final_return": float(np.mean(recent)) if recent else None,
                   "sps": rows[-1]["sps"] if rows else None}
        atomic_write(os.path.join(args.run_dir, "summary.json"), lambda fh: fh.write(json.dumps(summary).encode()))
        print(f"done: {json.dumps(summary)}", flush=True)
        return summary


class CudaGraph:
    """--cudagraphs: `fn(*inputs)` recorded as a CUDA graph at its first call (after warm-up calls on a side
    stream, as PyTorch's CUDA-graph notes prescribe), then replayed: the new tensor inputs are copied into the
    recorded ones and the outputs come back as clones. A replay launches all of `fn`'s kernels at once, with
    no Python or per-kernel launch cost, which dominate at these small batches. Non-tensor inputs (None, a
    flag) select the code path: when they change, `fn` is recorded again. The RNG state is put back after
    recording, so the first replay draws what the eager call would have drawn."""

    def __init__(self, fn):
        self.fn, self.graph, self.key = fn, None, None

    def __call__(self, *inputs):
        key = tuple(torch.Tensor if torch.is_tensor(x) else x for x in inputs)
        if key != self.key:
            self.inputs, self.key = [x.clone() if torch.is_tensor(x) else x for x in inputs], key
            rng, side = torch.cuda.get_rng_state(), torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self.fn(*self.inputs)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = self.fn(*self.inputs)
            torch.cuda.set_rng_state(rng)
        for recorded, x in zip(self.inputs, inputs):
            if torch.is_tensor(x):
                recorded.copy_(x)
        self.graph.replay()
        return self.outputs.clone() if torch.is_tensor(self.outputs) else tuple(o.clone() for o in self.outputs)


# Files are written to a temporary file, then renamed (atomic on POSIX).
def not_a_folder(path):
    """The first existing part of `path` that is not a folder (no run folder can be made there), or None."""
    p = os.path.abspath(path)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return None if os.path.isdir(p) else p


def atomic_write(path, write):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def provenance():
    """What made a run, for config.json: the commit of the checkout this script runs from ("+changes" when
    tracked files differ from it; None outside git), so that anyone can check out the code; and the machine
    (CPU model, library versions): MuJoCo is chaotic, so a run replays exactly only on the CPU model and
    library builds that made it."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                                 capture_output=True, text=True, timeout=10)
        commit = head.stdout.strip() + ("+changes" if changed.stdout.strip() else "") if head.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    cpu = {}
    try:
        with open("/proc/cpuinfo") as fh:  # the first processor's "model name", "cpu family", "model", "stepping"
            for line in fh.read().split("\n\n")[0].splitlines():
                key, _, value = line.partition(":")
                cpu[key.strip()] = value.strip()
    except OSError:
        pass
    model = cpu.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in cpu:
        model += f" (family {cpu['cpu family']}, model {cpu.get('model')}, stepping {cpu.get('stepping')})"
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    for lib in ("mujoco", "gymnasium", "metaworld"):
        try:
            versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"commit": commit, "machine": {"cpu": model, **versions}}


def csv_line(row, columns):
    return ",".join(_fmt(row.get(c)) for c in columns) + "\n"


def _fmt(v, decimals=None):
    """A number for the CSV ('' for none); the console rounds it to `decimals` first."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v if decimals is None else round(v, decimals):.6g}" if isinstance(v, float) else str(v)


def read_progress(path, last_update):
    """progress.csv's rows up to `last_update` (later ones are redone); a line cut by a kill is dropped."""
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        rows = [r for r in csv.DictReader(fh) if None not in r.values() and r["update"].isdigit()]
    return [r for r in rows if int(r["update"]) <= last_update]


INTERRUPTED = []  # set by Ctrl-C: the loop finishes its update, saves, and exits with code 130


def on_ctrl_c(signum, frame):
    INTERRUPTED.append(True)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
    print("\nCtrl-C: saving after this update (press it again to quit without saving)", flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, on_ctrl_c)
    main(parse_args())
