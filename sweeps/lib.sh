# Sourced by every recipe here: run from the repository root with the project's Python.
# PY=python (or any interpreter with tpbench installed) overrides the venv.
set -euo pipefail
shopt -s extglob nullglob
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
TPBENCH=("$PY" -m tpbench.cli)

# presets <glob>: the names of conf/experiment/<glob>.yaml, comma-separated (for -m experiment=...)
presets() {
  local names=() file
  for file in conf/experiment/$1.yaml; do
    [ -e "$file" ] && names+=("$(basename "$file" .yaml)")
  done
  if [ ${#names[@]} -eq 0 ]; then
    echo "no preset matches conf/experiment/$1.yaml" >&2
    return 1
  fi
  local IFS=,
  echo "${names[*]}"
}

# run_presets <out> <presets> [overrides...]: one run per preset (comma-separated names) in
# <out>/<task_name>, resuming unfinished runs from their last checkpoint; then `tpbench report <out>`
run_presets() {
  local out=$1 experiments=$2
  shift 2
  "$PY" train.py -m "experiment=$experiments" ckpt_path=auto \
    "hydra.sweep.dir=$out" 'hydra.sweep.subdir=${task_name}' "$@"
  "${TPBENCH[@]}" report "$out"
}

# search_space <preset>: the Bartunov Table 4 search space of the preset's rule
search_space() {
  case $1 in
    *_dtp | *_dtp_alt) echo dtp_random ;;
    *sdtp*) echo sdtp_random ;;
    *_fa | *_dfa) echo fa_random ;;
    *) echo bp_random ;;
  esac
}
