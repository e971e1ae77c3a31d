#!/usr/bin/env bash
# Bartunov et al. 2018, Table 2 (ImageNet, locally-connected net) with their protocol (§5.3):
# 60 random configurations trained for 10 epochs, then only the best one goes on, from its
# checkpoint, to the full length. tpbench trains on ImageNet32 (the paper used 224x224 images).
#   sweeps/bartunov_table2_imagenet.sh [GLOB] [OVERRIDES...]  (GLOB: after bartunov_imagenet32_)
#   FULL_EPOCHS=40 sweeps/bartunov_table2_imagenet.sh 'lc_*' hydra/launcher=slurm trainer=gpu
# Phase 1 sweeps land in logs/bartunov_table2/<preset>/sweeps/ten_epochs/; phase 2 continues the
# best trial in its own directory (`tpbench continue`). Both phases resume when restarted.
source "$(dirname "$0")/lib.sh"
glob=${1:-*}
shift || true
out=${OUT:-logs/bartunov_table2}
full_epochs=${FULL_EPOCHS:-100}  # not stated in the paper
for experiment in $(presets "bartunov_imagenet32_$glob" | tr , ' '); do
  space=$(search_space "$experiment")
  "$PY" train.py -m "hparams_search=$space" "experiment=$experiment" "paths.log_dir=$out" \
    sweep_name=ten_epochs trainer.max_epochs=10 "$@"
  "${TPBENCH[@]}" continue "$out/$experiment/sweeps/ten_epochs" "trainer.max_epochs=$full_epochs"
done
"${TPBENCH[@]}" report "$out"
