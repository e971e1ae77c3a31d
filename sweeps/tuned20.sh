#!/usr/bin/env bash
# tpbench's own 20-epoch results (docs/results.md): every rule on MNIST with Bartunov's 6x256 net
# and BP, DTP, L-DRL, FW-DTP on Fashion-MNIST with FW-DTP's net, each with the values chosen on
# the validation split for 20 epochs (presets conf/experiment/tuned20_*).
#   sweeps/tuned20.sh [GLOB] [OVERRIDES...]   (GLOB: the preset name after tuned20_)
#   sweeps/tuned20.sh 'mnist_*' data.data_dir=../shared/data threads=1
# Runs land in logs/tuned20/<preset>/ and resume when the script is run again.
source "$(dirname "$0")/lib.sh"
glob=${1:-*}
shift || true
out=${OUT:-logs/tuned20}
experiments=$(presets "tuned20_$glob")
run_presets "$out" "$experiments" "$@"
