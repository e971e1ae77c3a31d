#!/usr/bin/env bash
# Bartunov et al. 2018, Table 1: every rule on MNIST and CIFAR-10, fully- and locally-connected
# nets (and the BP ConvNet), each with Table 5's hyper-parameters, 500 epochs, one run per row.
#   sweeps/bartunov_table1.sh [GLOB] [OVERRIDES...]   (GLOB: the preset name after bartunov_)
#   sweeps/bartunov_table1.sh 'mnist_fc_*' data.data_dir=../shared/data trainer.max_epochs=20
#   sweeps/bartunov_table1.sh '*' hydra/launcher=slurm hydra.launcher.partition=gpu trainer=gpu
# Runs land in logs/bartunov_table1/<preset>/; starting the script again resumes unfinished runs
# from their last checkpoint. Ends with `tpbench report logs/bartunov_table1` (table vs the paper).
source "$(dirname "$0")/lib.sh"
glob=${1:-@(mnist|cifar10)_@(fc|lc|conv)_!(*_aux)}
shift || true
out=${OUT:-logs/bartunov_table1}
experiments=$(presets "bartunov_$glob")
run_presets "$out" "$experiments" "$@"
