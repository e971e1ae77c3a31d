#!/usr/bin/env bash
# biotorch's MNIST and Fashion-MNIST table (jsalbert/biotorch, Benchmarks.md): LeNet on 32x32
# images, SGD with momentum 0.9 and weight decay 1e-3, batch 64, 100 epochs, lr ÷ 10 at epochs 50
# and 75; BP, FA, uSF, brSF, frSF, DFA.
#   sweeps/biotorch_table.sh [GLOB] [OVERRIDES...]
#   sweeps/biotorch_table.sh 'mnist_*' data.data_dir=../shared/data     # the MNIST column
# GLOB selects presets by the name after `biotorch_` (default: every one). Runs land in
# logs/biotorch_table/<preset>/ and resume when the script is run again.
source "$(dirname "$0")/lib.sh"
out=${OUT:-logs/biotorch_table}
experiments=$(presets "biotorch_${1:-*}")
shift || true
run_presets "$out" "$experiments" "$@"
