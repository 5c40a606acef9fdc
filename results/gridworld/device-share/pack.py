"""Evaluate the finished runs of runs.txt, then pack runs into OUT within the return limits."""
import os, subprocess, sys, tarfile
out = sys.argv[1]
names = []
for line in open(".dev/runs.txt"):
    f = line.split()
    if f:
        s, lr, seed = f[:3]
        names.append(f"gridworld__{s}{'-' + f[3] if len(f) > 3 else ''}__lr{lr}__s{seed}")
root = "results/gridworld"
done = [n for n in names if os.path.exists(f"{root}/{n}/summary.json")]
part = [n for n in names if n not in done and os.path.exists(f"{root}/{n}/checkpoint.pt")]
print("finished:", done, "\npartial:", part, flush=True)
procs = [subprocess.Popen(f"python3 evaluate.py {root}/{n} >> {root}/{n}.log 2>&1", shell=True) for n in done]
[p.wait() for p in procs]
# finished runs travel without their checkpoint (not committed; evaluation is done)
with tarfile.open(f"{out}/finished.tgz", "w:gz") as t:
    t.add("/tmp/device_info.txt", "device_info.txt")
    for n in done:
        t.add(f"{root}/{n}.log", f"{root}/{n}.log")
        for f in os.listdir(f"{root}/{n}"):
            if not f.startswith("checkpoint"):
                t.add(f"{root}/{n}/{f}", f"{root}/{n}/{f}")
os.makedirs("/tmp/part", exist_ok=True)
procs = [subprocess.Popen(["tar", "czf", f"/tmp/part/{n}.tgz", f"{root}/{n}", f"{root}/{n}.log"]) for n in part]
[p.wait() for p in procs]
# first-fit into at most 7 bundles of <= 15.9 MiB, <= 63 MiB in all, in runs.txt order (priority)
MiB = 1 << 20
bins, total, left = [], os.path.getsize(f"{out}/finished.tgz"), []
for n in part:
    size = os.path.getsize(f"/tmp/part/{n}.tgz") + 10240
    b = next((b for b in bins if b[0] + size <= 15.9 * MiB), None)
    if total + size > 63 * MiB or (b is None and (len(bins) >= 7 or size > 15.9 * MiB)):
        left.append(n); continue
    if b is None:
        b = [0, []]; bins.append(b)
    b[0] += size; b[1].append(n); total += size
for i, (_, ns) in enumerate(bins):
    with tarfile.open(f"{out}/partial{i}.tar", "w") as t:
        for n in ns:
            t.add(f"/tmp/part/{n}.tgz", f"{n}.tgz")
print("returned partial:", [n for b in bins for n in b[1]], "\nleft behind:", left, flush=True)
for n in names:
    lines = [l for l in open(f"{root}/{n}.log") if "| update" in l] if os.path.exists(f"{root}/{n}.log") else []
    print(n, lines[-1].split("|")[2].strip() if lines else "no update line")
