#!/bin/bash
# Does bf16 start PPO's ratio away from 1? A copy of a trained run resumes for one update at lr 1e-12 (so the
# update cannot move the weights) in the given precision; then approx KL and the clip fraction measure only
# the difference between the rollout's log-probabilities and the update's recomputed ones.
# Usage, from the repository root: bash results/precision/ratio_check.sh RUN PRECISION
set -e
tmp=$(mktemp -d); cp -r "$1"/. $tmp/; rm -f $tmp/summary.json
python - $tmp $2 <<'PY'
import json, sys
run, precision = sys.argv[1:]
cfg = json.load(open(f"{run}/config.json"))
json.dump(cfg | {"lr": 1e-12, "precision": precision, "run_dir": run}, open(f"{run}/config.json", "w"))
PY
update=$(python -c "import torch; print(torch.load('$tmp/checkpoint.pt', weights_only=False)['update'])")
python $(python -c "import json; print(json.load(open('$tmp/config.json'))['method'])").py --resume $tmp \
    --total-timesteps $(( (update + 1) * $(python -c "import json; c = json.load(open('$tmp/config.json')); print(c['num_envs'] * c['num_steps'])") )) > /dev/null
python -c "
import csv; r = list(csv.DictReader(open('$tmp/progress.csv')))[-1]
print('$1 at update $update, $2: approx KL', r['approx_kl'], 'clip fraction', r['clipfrac'])"
rm -rf $tmp
