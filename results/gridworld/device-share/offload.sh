#!/bin/bash
# Runs on the device machine: train the runs of .dev/runs.txt side by side (one CPU thread each) until
# DEADLINE seconds after the start, interrupt them (each saves its checkpoint), evaluate the finished ones,
# and pack what fits the return limits into $OUT (8 files, 16 MiB each, 64 MiB together).
T0=$(date +%s); DEADLINE=${1:-450}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
{ date -u; nproc; lscpu | grep -i "model name\|thread\|socket\|^CPU(s)"; python3 -c "import torch, numpy, gymnasium; print('torch', torch.__version__, 'numpy', numpy.__version__, 'gymnasium', gymnasium.__version__)"; } | tee /tmp/device_info.txt
i=0
while read s lr seed tag extra; do
  [ -z "$s" ] && continue
  if [ -n "$tag" ]; then
    python3 sweep.py --scripts $s --envs gridworld --lrs $lr --seeds $seed --out results/gridworld --no-gpu --workers 1 --extra "$extra" --tag $tag > /tmp/sweep_$i.out 2>&1 &
  else
    python3 sweep.py --scripts $s --envs gridworld --lrs $lr --seeds $seed --out results/gridworld --no-gpu --workers 1 > /tmp/sweep_$i.out 2>&1 &
  fi
  i=$((i+1))
done < .dev/runs.txt
echo "started $i runs"
while [ $(( $(date +%s) - T0 )) -lt $DEADLINE ] && [ -n "$(jobs -rp)" ]; do sleep 5; done
echo "$(( $(date +%s) - T0 )) s: interrupting"; for p in $(jobs -p); do pkill -INT -P $p; done  # each sweep's training run
wait
echo "$(( $(date +%s) - T0 )) s: training stopped"
python3 .dev/pack.py "$OUT"
echo "$(( $(date +%s) - T0 )) s: done"; ls -la "$OUT"
