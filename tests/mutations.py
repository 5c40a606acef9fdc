"""The mutation audit: each realistic one-line bug below is applied to a fresh clone of this checkout's HEAD, and the
test file that owns that code must fail (python tests/mutations.py; --full runs the whole file, not only the tests
named for the bug). A bug that passes is a hole in the suite."""
import os
import subprocess
import sys
import tempfile
import time

MUTATIONS = [
    ("Ant-Dir's healthy z range [0.2, 1.0] -> [0.3, 1.0]", "envs.py",
     'super().__init__("Ant-v5", include_cfrc_ext_in_observation=False, **render)',
     'super().__init__("Ant-v5", include_cfrc_ext_in_observation=False, healthy_z_range=(0.3, 1.0), **render)',
     "tests/test_envs.py", "ant"),
    ("evaluate.py's per-direction returns swapped", "evaluate.py",
     'float(finished_meta[tasks[:, 0] == d].mean())', 'float(finished_meta[tasks[:, 0] == -d].mean())',
     "tests/test_evaluate.py", "direction"),
    ("TI++HN's buffer stores the next meta-episode's task", "ti_pp_hn.py",
     'buf["task"][t, i].cpu().numpy())', 'info["task"][i])', "tests/test_ti.py", "stores_the_task"),
    ("VI's decoder reads a_j-1 instead of a_j", "vi_hn.py",
     'for x in (obs[:, :-1], actions, rewards, obs[:, 1:]))',
     'for x in (obs[:, :-1], torch.cat([torch.zeros_like(actions[:, :1]), actions[:, :-1]], 1), rewards, obs[:, 1:]))',
     "tests/test_vi.py", "by_hand"),
    ("GAE with lambda where gamma belongs (ti.py)", "ti.py",
     'delta = rewards[t] + gamma * nxt * nonterminal - values[t]', 'delta = rewards[t] + lam * nxt * nonterminal - values[t]',
     "tests/test_networks.py", "gae"),
    ("ti.py's value clipping removed", "ti.py",
     'F.smooth_l1_loss(v_clipped, ret, reduction="none")).mean()', 'F.smooth_l1_loss(value, ret, reduction="none")).mean()',
     "tests/test_networks.py", "ppo_loss"),
    ("ti.py's entropy bonus with the wrong sign", "ti.py",
     'return pg_loss + vf_coef * v_loss - ent_coef * entropy.mean()', 'return pg_loss + vf_coef * v_loss + ent_coef * entropy.mean()',
     "tests/test_networks.py", "ppo_loss"),
]

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # this checkout (its committed HEAD)
full = "--full" in sys.argv  # the whole file that owns the code, not only the tests named for it
for name, path, old, new, tests, key in MUTATIONS:
    with tempfile.TemporaryDirectory() as tmp:
        clone = os.path.join(tmp, "clone")
        subprocess.run(["git", "clone", "-q", root, clone], check=True)
        src = open(os.path.join(clone, path)).read()
        assert src.count(old) == 1, (name, src.count(old))
        open(os.path.join(clone, path), "w").write(src.replace(old, new))
        t0 = time.time()
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:warnings", "-n", "0", tests] + ([] if full else ["-k", key])
        p = subprocess.run(cmd, cwd=clone, capture_output=True, text=True)
        failed = [l.split("::")[1].split(" ")[0] for l in p.stdout.splitlines() if l.startswith("FAILED")]
        print(f"{name}: {'CAUGHT' if p.returncode else 'MISSED'} by {tests} ({len(failed)} failing: "
              f"{', '.join(failed[:3])}{'...' if len(failed) > 3 else ''}; {time.time() - t0:.0f} s)", flush=True)
