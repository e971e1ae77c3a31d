#!/usr/bin/env bash
# Shibuya et al. 2023 (FW-DTP poster), results table: BP, DTP, DRL, L-DRL and FW-DTP on MNIST,
# Fashion-MNIST (0.5M-parameter MLP), CIFAR-10 and CIFAR-100 (6.3M), plus vanilla TP on MNIST;
# each row over several seeds (the poster reports mean ± std; SEEDS=1,2,3 by default).
#   sweeps/fwdtp_table.sh [GLOB] [OVERRIDES...]   (GLOB: the preset name after fwdtp_)
#   SEEDS=1 sweeps/fwdtp_table.sh 'mnist_*' data.data_dir=../shared/data trainer.max_epochs=20
# Runs land in logs/fwdtp_table/<preset>_seed<seed>/ and resume when the script is run again.
source "$(dirname "$0")/lib.sh"
glob=${1:-*}
shift || true
out=${OUT:-logs/fwdtp_table}
experiments=$(presets "fwdtp_$glob")
"$PY" train.py -m "experiment=$experiments" "seed=${SEEDS:-1,2,3}" ckpt_path=auto \
  "hydra.sweep.dir=$out" 'hydra.sweep.subdir=${task_name}_seed${seed}' "$@"
"${TPBENCH[@]}" report "$out"
