"""Why BI++HN slows as it trains: the share of denormal numbers in the Adam state of its task decoder's
output layer (198,150 x 32), and the time of one Adam step on that layer with and without flushing
denormals. Run from the repository root: python results/gridworld/denormal_check.py [RUN_DIR]"""
import sys
import time

import torch

run = sys.argv[1] if len(sys.argv) > 1 else "results/gridworld/gridworld__ti_pp_hn-bi_pp_hn__lr0.0003__s73"
torch.set_num_threads(1)
ckpt = torch.load(f"{run}/checkpoint.pt", map_location="cpu", weights_only=False)
weight = ckpt["agent"]["task_decoder.out.weight"]
state = next(s for s in ckpt["vae_optimizer"]["state"].values() if s["exp_avg"].shape == weight.shape)
tiny = torch.finfo(torch.float32).tiny
for key in ("exp_avg", "exp_avg_sq"):
    x = state[key]
    print(f"{run}: {key} {tuple(x.shape)}: {((x != 0) & (x.abs() < tiny)).float().mean():.1%} denormal")
for flush in (False, True):
    torch.set_flush_denormal(flush)
    p = torch.nn.Parameter(weight.clone())
    opt = torch.optim.Adam([p], lr=3e-4)
    p.grad = torch.zeros_like(p)
    opt.step()  # creates the state, then the checkpoint's state replaces it
    opt.state[p]["exp_avg"].copy_(state["exp_avg"])
    opt.state[p]["exp_avg_sq"].copy_(state["exp_avg_sq"])
    p.grad = state["exp_avg"].clone()  # gradients of the size the run saw late in training
    t0 = time.perf_counter()
    for _ in range(5):
        opt.step()
    print(f"flush_denormal={flush}: {(time.perf_counter() - t0) / 5 * 1000:.0f} ms per Adam step on {tuple(p.shape)}")
