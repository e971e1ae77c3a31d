#!/usr/bin/env bash
# Ernoult et al. 2022: CIFAR-10 with the simple VGG, L-DRL (89.4 % test accuracy) next to BP
# (89.1 %).
#   sweeps/ernoult_cifar10_vgg.sh [OVERRIDES...]
#   sweeps/ernoult_cifar10_vgg.sh trainer=gpu data.data_dir=/data
# Runs land in logs/ernoult_cifar10_vgg/<preset>/ and resume when the script is run again.
source "$(dirname "$0")/lib.sh"
out=${OUT:-logs/ernoult_cifar10_vgg}
experiments=$(presets 'ernoult_cifar10_vgg_*')
run_presets "$out" "$experiments" "$@"
