#!/usr/bin/env bash
# Shibuya et al. 2023 (FW-DTP poster), results table, as docs/results.md reports it: the MNIST and
# Fashion-MNIST columns (0.5M-parameter MLP) for BP, DTP, DRL, L-DRL, FW-DTP and the code's BN
# variants FW-DTP-BN and DTP-BN, each the authors' code recipe (conf/experiment/fwdtp_*); BP,
# FW-DTP and FW-DTP-BN over 3 seeds, the others over 1 (SEEDS / SEEDS_ONE change them). The
# MNIST and Fashion-MNIST presets of FW-DTP, FW-DTP-BN, DTP, DTP-BN, DRL and L-DRL carry the values
# found by search (sweeps/fwdtp_search.sh); the issue-12 runs of docs/results.md used the authors'
# lr 0.1 / stepsize 0.04 (and lrb 1e-3), which
#   ROWS="fwdtp fwdtp_bn drl" sweeps/fwdtp_table.sh algo.optimizer.lr=0.1 algo.top_target.beta=0.04
#   ROWS="dtp ldrl" sweeps/fwdtp_table.sh algo.optimizer.lr=0.1 algo.top_target.beta=0.04 algo.feedback_optimizer.lr=1e-3
# run again (DTP-BN had no issue-12 run).
#   sweeps/fwdtp_table.sh data.data_dir=../shared/data [OVERRIDES...]
#   DATASETS="cifar10 cifar100" sweeps/fwdtp_table.sh      (the CIFAR columns, 6.3M-parameter MLP)
# Runs land in logs/fwdtp_table/<preset>_seed<seed>/ and resume when the script is run again.
source "$(dirname "$0")/lib.sh"
out=${OUT:-logs/fwdtp_table}
for data in ${DATASETS:-mnist fmnist}; do
  for rows in "bp fwdtp fwdtp_bn:${SEEDS:-1,2,3}" "dtp drl ldrl dtp_bn:${SEEDS_ONE:-1}"; do
    names=${rows%%:*}
    if [ -n "${ROWS:-}" ]; then  # only the rows named in ROWS
      names=$(for name in $names; do [[ " $ROWS " == *" $name "* ]] && echo "$name"; done | xargs)
      [ -n "$names" ] || continue
    fi
    experiments=$(presets "fwdtp_${data}_fc_@(${names// /|})")
    "$PY" train.py -m "experiment=$experiments" "seed=${rows##*:}" ckpt_path=auto \
      "hydra.sweep.dir=$out" 'hydra.sweep.subdir=${task_name}_seed${seed}' "$@"
  done
done
"${TPBENCH[@]}" report "$out"
