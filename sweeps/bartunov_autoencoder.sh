#!/usr/bin/env bash
# Bartunov et al. 2018, §5.5 and Figure 6: the MNIST autoencoder 784-512-64-512-784 trained on the
# squared L2 reconstruction error by BP, DTP and SDTP (Table 5's MNIST-FC values), one run each.
#   sweeps/bartunov_autoencoder.sh [GLOB] [OVERRIDES...]   (GLOB: the rule, e.g. 'sdtp')
#   sweeps/bartunov_autoencoder.sh '*' data.data_dir=../shared/data trainer.max_epochs=20
# Runs land in logs/bartunov_autoencoder/<preset>/ (curves: train/loss_epoch, val/err = the mean
# ½‖h_L − x‖² per image); starting the script again resumes unfinished runs. Ends with
# `tpbench report`, whose "err %" columns show 100 × the reconstruction error for these runs.
source "$(dirname "$0")/lib.sh"
glob=${1:-*}
shift || true
out=${OUT:-logs/bartunov_autoencoder}
experiments=$(presets "bartunov_mnist_autoencoder_$glob")
run_presets "$out" "$experiments" "$@"
