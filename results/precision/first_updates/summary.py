"""The table of results/precision/README.md from the runs run.sh made: per seed, update 1's approx KL and
the training return of update 2 (the first rollout of the updated policy), fp32 against bf16.
`python summary.py lr3e-4`: the runs of `run.sh 3e-4`."""
import csv
import os
import sys

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), *sys.argv[1:2])


def rows(name):
    with open(os.path.join(HERE, name, "progress.csv")) as fh:
        return list(csv.DictReader(fh))


print("| seed | update 1 approx KL, fp32 | bf16 | update 2 return, fp32 | bf16 |\n|---|---|---|---|---|")
diffs = []
for s in (1, 2, 3, 4, 5, 6, 20, 73):
    a, b = rows(f"fp32_s{s}"), rows(f"bf16_s{s}")
    diffs.append(float(b[1]["return"]) - float(a[1]["return"]))
    print(f"| {s} | {float(a[0]['approx_kl']):.1f} | {float(b[0]['approx_kl']):.1f} | {float(a[1]['return']):.0f} | "
          f"{float(b[1]['return']):.0f} |")
n = len(diffs)
mean = sum(diffs) / n
se = (sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) ** 0.5
print(f"\nupdate 2 return, bf16 - fp32: mean {mean:.0f}, standard error {se:.0f}, bf16 lower in "
      f"{sum(d < 0 for d in diffs)} of {n} seeds")
for v in ("rollout-only", "update-only") if len(sys.argv) == 1 else ():
    r = rows(f"bf16-{v}_s3")
    print(f"seed 3, bf16 in the {v.replace('-', ' ')}: update 1 return {float(r[0]['return']):.2f}, approx KL "
          f"{float(r[0]['approx_kl']):.2f}; update 2 return {float(r[1]['return']):.0f}")
