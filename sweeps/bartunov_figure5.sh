#!/usr/bin/env bash
# Bartunov et al. 2018, §5.3 and Figure 5: for every Table 1 row, a random search over 60
# configurations of Table 4's ranges, then histograms of the best test accuracy per configuration.
#   sweeps/bartunov_figure5.sh [GLOB] [OVERRIDES...]   (GLOB: the preset name after bartunov_)
#   sweeps/bartunov_figure5.sh 'mnist_fc_dtp' data.data_dir=../shared/data trainer.max_epochs=5
#   sweeps/bartunov_figure5.sh 'cifar10_*' hydra/launcher=slurm hydra.sweeper.n_jobs=20 trainer=gpu
# One sweep per preset, in logs/bartunov_figure5/<preset>/sweeps/<search space>/; each survives a
# kill (run the same command again). The search space follows the rule: bp_random (BP),
# fa_random (FA, DFA), sdtp_random (SDTP, AO-SDTP), dtp_random (DTP).
source "$(dirname "$0")/lib.sh"
glob=${1:-@(mnist|cifar10)_@(fc|lc)_!(*_aux)}
shift || true
out=${OUT:-logs/bartunov_figure5}
for experiment in $(presets "bartunov_$glob" | tr , ' '); do
  space=$(search_space "$experiment")
  "$PY" train.py -m "hparams_search=$space" "experiment=$experiment" "paths.log_dir=$out" \
    "sweep_name=$space" "$@"
done
"${TPBENCH[@]}" report "$out"
