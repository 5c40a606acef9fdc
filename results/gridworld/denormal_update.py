"""BI++HN's update time late in training, with and without flushing denormal numbers (every script now calls
torch.set_flush_denormal(True)). Late in a 4e6-frame run, 47% of Adam's exp_avg of the task decoder's
output layer (198,150 x 32) was denormal (denormal_check.log) and an update took about 1.5 s against 1.09 s
early on. No late checkpoint is kept, so this recreates that state: before every VAE step, the exp_avg
entries of that layer are replaced, in the same 47% share, by denormal values. Each setting trains 8
updates of `ti_pp_hn.py --target weights` on Grid-World and reports the mean time of updates 3-8.

    python results/gridworld/denormal_update.py        # from the repository root
"""
import csv
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.getcwd())
import ti_pp_hn  # noqa: E402

SHARE, TINY = 0.469, 1e-40  # the late run's share; 1e-40 is below float32's smallest normal (1.2e-38)
adam_step, MASK = torch.optim.Adam.step, {}


def late_state_step(self, *a, **k):
    for group in self.param_groups:
        for p in group["params"]:
            state = self.state.get(p)
            if p.dim() == 2 and p.shape[0] > 100_000 and state:  # the task decoder's output layer
                state["exp_avg"].masked_fill_(MASK.setdefault(p.shape, torch.rand(p.shape) < SHARE), TINY)
    return adam_step(self, *a, **k)


torch.optim.Adam.step = late_state_step
real_flush = torch.set_flush_denormal
for flush in (False, True):
    torch.set_flush_denormal = lambda on, flush=flush: real_flush(flush)  # the script's own call obeys this
    with tempfile.TemporaryDirectory() as tmp:
        args = ti_pp_hn.parse_args(["--env", "gridworld", "--target", "weights", "--threads", "1", "--total-timesteps",
                                    str(8 * 960), "--run-dir", os.path.join(tmp, "run"), "--log-every", "1000"])
        ti_pp_hn.main(args)
        with open(os.path.join(tmp, "run", "progress.csv")) as fh:
            times = [float(r["time"]) for r in csv.DictReader(fh)]
    per_update = (times[-1] - times[1]) / (len(times) - 2)
    print(f"flush_denormal={flush}: {per_update:.2f} s per update (updates 3-8, 47% of the big exp_avg denormal)",
          flush=True)
