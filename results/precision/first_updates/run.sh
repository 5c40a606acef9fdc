#!/bin/bash
# Cheetah-Dir RNN+HN at lr 1e-3: the first two updates in fp32 and in bf16 for 8 seeds (results/precision/README.md),
# then, for seed 3, bf16 in the rollout only and in the update only (copies of rnn_hn.py with one autocast region
# turned off). Run from the repository root: bash results/precision/first_updates/run.sh; then summary.py.
# `run.sh 3e-4`: the 8 seeds at another rate, in first_updates/lr3e-4/ (summary.py lr3e-4).
set -e
LR=${1:-1e-3}
OUT=results/precision/first_updates
[ "$LR" = 1e-3 ] || OUT=$OUT/lr$LR
for s in 1 2 3 4 5 6 20 73; do for p in fp32 bf16; do
  python rnn_hn.py --env cheetah-dir --lr $LR --seed $s --precision $p --total-timesteps 12800 --log-every 1000 \
    --run-dir $OUT/${p}_s$s > /dev/null
done; done
[ "$LR" = 1e-3 ] || exit 0
tmp=$(mktemp -d); cp envs.py $tmp/
region=$(grep -n "with amp():  # the rollout" rnn_hn.py | cut -d: -f1)
update=$(grep -n "^        with amp():$" rnn_hn.py | head -1 | cut -d: -f1)
bootstrap=$(grep -n "with torch.no_grad(), amp():" rnn_hn.py | cut -d: -f1)
off='with torch.autocast("cpu", torch.bfloat16, enabled=False):'
sed "${update}s/with amp():/$off/" rnn_hn.py > $tmp/rollout_only.py
sed -e "${region}s/with amp():/$off/" -e "${bootstrap}s/with torch.no_grad(), amp():/with torch.no_grad():/" rnn_hn.py > $tmp/update_only.py
for v in rollout_only update_only; do
  python $tmp/$v.py --env cheetah-dir --lr 1e-3 --seed 3 --precision bf16 --total-timesteps 12800 --log-every 1000 \
    --run-dir $OUT/bf16-${v//_/-}_s3 > /dev/null
done
