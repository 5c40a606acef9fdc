"""Torch threads on a quiet and on a busy machine: `rnn_hn.py --env gridworld`, 6 updates, env frames/s of
updates 2-6, run alone (quiet) and as two identical runs side by side (busy: each competes with the other for
the cores). Settings: 2 threads, 1 thread, and 2 threads with OpenMP's passive wait policy
(OMP_WAIT_POLICY=PASSIVE: idle worker threads sleep instead of spinning for cores they cannot get).

    python results/threads/bench.py            # from the repository root
"""
import csv
import os
import subprocess
import sys
import tempfile

SETTINGS = {"--threads 2": (["--threads", "2"], {}), "--threads 1": (["--threads", "1"], {}),
            "--threads 2, OMP_WAIT_POLICY=PASSIVE": (["--threads", "2"], {"OMP_WAIT_POLICY": "PASSIVE"})}


def start(flags, env, tmp, name):
    run = os.path.join(tmp, name)
    cmd = [sys.executable, "rnn_hn.py", "--env", "gridworld", "--total-timesteps", str(6 * 960), "--run-dir", run, *flags]
    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL), run


def sps(run):
    with open(os.path.join(run, "progress.csv")) as fh:
        t = [float(r["time"]) for r in csv.DictReader(fh)]
    return 5 * 960 / (t[-1] - t[0])


cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
print(f"{cpu}, {len(os.sched_getaffinity(0))} cores\n\n| setting | quiet: frames/s | busy (two side by side): frames/s each |\n|---|---|---|")
for label, (flags, env) in SETTINGS.items():
    with tempfile.TemporaryDirectory() as tmp:
        p, a = start(flags, env, tmp, "alone")
        p.wait()
        procs = [start(flags, env, tmp, f"pair{i}") for i in range(2)]
        for q, _ in procs:
            q.wait()
        print(f"| {label} | {sps(a):,.0f} | {', '.join(f'{sps(r):,.0f}' for _, r in procs)} |", flush=True)
