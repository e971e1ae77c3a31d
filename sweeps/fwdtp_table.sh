#!/usr/bin/env bash
# Shibuya et al. 2023 (FW-DTP poster), results table, as docs/results.md reports it: the MNIST and
# Fashion-MNIST columns (0.5M-parameter MLP) for BP, DTP, DRL, L-DRL, FW-DTP and the code's BN
# variants FW-DTP-BN and DTP-BN, each the authors' code recipe (conf/experiment/fwdtp_*); BP,
# FW-DTP and FW-DTP-BN over 3 seeds, the others over 1 (SEEDS / SEEDS_ONE change them).
#   sweeps/fwdtp_table.sh data.data_dir=../shared/data [OVERRIDES...]
#   DATASETS="cifar10 cifar100" sweeps/fwdtp_table.sh      (the CIFAR columns, 6.3M-parameter MLP)
# Runs land in logs/fwdtp_table/<preset>_seed<seed>/ and resume when the script is run again.
source "$(dirname "$0")/lib.sh"
out=${OUT:-logs/fwdtp_table}
for data in ${DATASETS:-mnist fmnist}; do
  for rows in "bp fwdtp fwdtp_bn:${SEEDS:-1,2,3}" "dtp drl ldrl dtp_bn:${SEEDS_ONE:-1}"; do
    names=${rows%%:*}
    experiments=$(presets "fwdtp_${data}_fc_@(${names// /|})")
    "$PY" train.py -m "experiment=$experiments" "seed=${rows##*:}" ckpt_path=auto \
      "hydra.sweep.dir=$out" 'hydra.sweep.subdir=${task_name}_seed${seed}' "$@"
  done
done
"${TPBENCH[@]}" report "$out"
