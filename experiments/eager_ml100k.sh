#!/bin/bash
# EAGER-LLM on MovieLens-100K at a CPU budget: DKI and semantic indices, EAGER-LLM stage 1
# (STEPS1) + annealing (STEPS2), the TIGER-style baseline (STEPS1, seqrec only), then one
# evaluation table (test split, all users, 20 beams) with most-popular and SASRec.
# Usage: experiments/eager_ml100k.sh [OUT=runs/ml100k] [STEPS1=120] [STEPS2=40]
# Wall times go to OUT/timings.txt. One torch thread per job is fastest on a shared 2-core CPU.
set -euo pipefail
R=${1:-runs/ml100k} steps1=${2:-120} steps2=${3:-40}
E=.venv/bin/eager-llm C=configs/eager_llm/smol-ml100k.yaml
timed() { local start; start=$(date +%s); "$@"; echo "$(( $(date +%s) - start )) s: $*" >> "$R/timings.txt"; }
mkdir -p "$R"
timed $E index --dataset movielens-100k --out "$R/index"
timed $E index --dataset movielens-100k --indexer semantic --out "$R/index-semantic"
timed $E train --config $C --index "$R/index" --output-dir "$R/stage1" --max-steps "$steps1"
timed $E anneal --config $C --index "$R/index" --from "$R/stage1" --output-dir "$R/anneal" \
  --max-steps "$steps2"
timed $E train --config configs/eager_llm/tiger-ml100k.yaml --index "$R/index-semantic" \
  --output-dir "$R/tiger" --max-steps "$steps1"
timed $E eval --run "$R/anneal" --dtype bfloat16
