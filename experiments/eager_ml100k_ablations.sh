#!/bin/bash
# EAGER-LLM ablations on MovieLens-100K at the CPU budget of experiments/eager_ml100k.sh (run
# that first, with the same OUT: it builds the indices and the full model): w/o GCT (both
# GCT weights 0) and a single-source index (semantic only), each stage 1 (STEPS1) + annealing
# (STEPS2), then one evaluation table over every run next to OUT/anneal.
# Usage: experiments/eager_ml100k_ablations.sh [OUT=runs/ml100k] [STEPS1=120] [STEPS2=40]
# Wall times go to OUT/timings.txt. One torch thread per job is fastest on a shared 2-core CPU.
set -euo pipefail
R=${1:-runs/ml100k} steps1=${2:-120} steps2=${3:-40}
E=.venv/bin/eager-llm C=configs/eager_llm/smol-ml100k.yaml S=$R/index-semantic
timed() { local start; start=$(date +%s); "$@"; echo "$(( $(date +%s) - start )) s: $*" >> "$R/timings.txt"; }
timed $E train --config $C --index "$R/index" --output-dir "$R/no-gct-stage1" --max-steps "$steps1" \
  --set gct_semantic_weight=0 --set gct_behaviour_weight=0
timed $E anneal --config $C --index "$R/index" --from "$R/no-gct-stage1" --output-dir "$R/no-gct" \
  --max-steps "$steps2"
timed $E train --config $C --index "$S" --output-dir "$R/single-source-stage1" --max-steps "$steps1"
timed $E anneal --config $C --index "$S" --from "$R/single-source-stage1" \
  --output-dir "$R/single-source" --max-steps "$steps2"
timed $E eval --run "$R/anneal" --dtype bfloat16
