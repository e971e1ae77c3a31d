#!/usr/bin/env bash
# Bartunov et al. 2018, Figure 4: AO-SDTP on CIFAR-10 (fully-connected) with auxiliary outputs
# of several sizes (the paper's main results use 512). The sizes are in the preset
# (hydra.sweeper.params); override them with 'algo.top_target.size=16,256'.
#   sweeps/bartunov_figure4_aux.sh [OVERRIDES...]
# Runs land in logs/bartunov_figure4/aux_<size>/; the report has one row per size.
source "$(dirname "$0")/lib.sh"
out=${OUT:-logs/bartunov_figure4}
"$PY" train.py -m experiment=bartunov_cifar10_fc_aosdtp_aux ckpt_path=auto \
  "hydra.sweep.dir=$out" 'hydra.sweep.subdir=aux_${algo.top_target.size}' "$@"
"${TPBENCH[@]}" report "$out" --by algo.top_target.size
