"""fp32 against bf16 gradients on the same minibatch: one PPO-style loss (policy gradient, value error, entropy)
of a freshly initialised agent on random inputs of the update's shape, backward in each precision.

    python results/precision/gradients.py                  # rnn_hn on cheetah-dir
    python results/precision/gradients.py vi_hn walker
"""

import importlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import envs  # noqa: E402

script, env = (sys.argv[1:3] if len(sys.argv) >= 3 else ("rnn_hn", "cheetah-dir"))
torch.set_num_threads(1)
torch.manual_seed(0)
mod = importlib.import_module(script)
args = mod.parse_args(["--env", env])
vec, obs, _ = envs.make_vec(env, 1, 0)
agent = mod.Agent(obs.shape[1], vec.single_action_space, envs.get_spec(env), args)
T, B = args.num_steps, args.num_envs // args.num_minibatches
obs_dim, act_dim = obs.shape[1], vec.single_action_space.shape[0]
o, prev_a, prev_r = torch.randn(T, B, obs_dim), torch.randn(T, B, act_dim), torch.randn(T, B)
new_task = torch.zeros(T, B)
new_task[0] = 1
act, adv, ret = torch.randn(T * B, act_dim), torch.randn(T * B), torch.randn(T * B)


def gradients(bf16):
    agent.zero_grad()
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        latent, _ = agent.encoder(o, prev_a, prev_r, new_task, torch.zeros(B, args.gru_size))
        dist, value = agent.heads(latent.flatten(0, 1), o.flatten(0, 1))
    logprob = dist.log_prob(act).sum(-1)
    loss = -(logprob * adv).mean() + 0.5 * ((value - ret) ** 2).mean() - 0.01 * dist.entropy().sum(-1).mean()
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in agent.named_parameters() if p.grad is not None}


loss32, g32 = gradients(False)
loss16, g16 = gradients(True)
print(f"{script} {env}: loss fp32 {loss32:.5f}, bf16 {loss16:.5f}\n")
print("| parameter | shape | relative error of the bf16 gradient | elements of the other sign |\n|---|---|---|---|")
for name in g32:
    a, b = g32[name].flatten(), g16[name].flatten()
    nonzero = (a != 0) | (b != 0)
    if nonzero.any():
        other = float(((a.sign() != b.sign()) & nonzero).sum() / nonzero.sum())
        print(f"| {name} | {tuple(g32[name].shape)} | {float((a - b).norm() / a.norm()):.4f} | {other:.4f} |")
    else:
        print(f"| {name} | {tuple(g32[name].shape)} | zero in both | |")
a, b = (torch.cat([g.flatten() for g in gs.values()]).double() for gs in (g32, g16))
print(f"\nall: cosine {float(torch.nn.functional.cosine_similarity(a, b, 0)):.4f}, "
      f"relative error {float((a - b).norm() / a.norm()):.4f}")
