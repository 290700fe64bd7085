#!/bin/bash
# EAGER-LLM on MovieLens-100K at a CPU budget, then results/eager_ml100k.md.
#   indices: DKI with K auto (ceil sqrt n = 37) and K 256 (the paper's), semantic-only (TIGER)
#   EAGER-LLM (K auto): stage 1 (STEPS1 steps of 8, validation every 50) + annealing (STEPS2)
#   TIGER: a T5 from scratch on the semantic index (TIGER_EPOCHS epochs; 2 + 2 layers, d_ff 512:
#          the paper's 4 + 4 / 1024 do not fit this CPU budget), side by side with stage 1
#   K 256 arm (K256=1): the same two stages on the K 256 index
#   one test evaluation of all of them, 943 users, 20 beams, then the results page.
# Usage: experiments/eager_ml100k.sh [OUT=runs/ml100k] [STEPS1=200] [STEPS2=40] [TIGER_EPOCHS=3]
# Wall times go to OUT/timings.txt. Two one-thread jobs side by side on a 2-core CPU.
set -euo pipefail
R=${1:-runs/ml100k} steps1=${2:-200} steps2=${3:-40} epochs=${4:-3} k256=${K256:-0}
E=.venv/bin/eager-llm C=configs/eager_llm/smol-ml100k.yaml
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
timed() { local start; start=$(date +%s); "$@"; echo "$(( $(date +%s) - start )) s: $*" >> "$R/timings.txt"; }
mkdir -p "$R"
timed $E index --dataset movielens-100k --k auto --out "$R/index-auto"
timed $E index --dataset movielens-100k --out "$R/index-256"
timed $E index --dataset movielens-100k --k auto --indexer semantic --out "$R/index-semantic-auto"
timed $E tiger --index "$R/index-semantic-auto" --output-dir "$R/tiger-t5" --epochs "$epochs" \
  --layers 2 --d-ff 512 --heads 4 > "$R/tiger-t5.log" 2>&1 &
timed $E train --config $C --index "$R/index-auto" --output-dir "$R/auto/stage1" --max-steps "$steps1"
timed $E anneal --config $C --index "$R/index-auto" --from "$R/auto/stage1" \
  --output-dir "$R/auto/anneal" --max-steps "$steps2"
compare=(--compare "TIGER (T5 from scratch)=$R/tiger-t5")
if [ "$k256" = 1 ]; then
  timed $E train --config $C --index "$R/index-256" --output-dir "$R/k256/stage1" --max-steps "$steps1"
  timed $E anneal --config $C --index "$R/index-256" --from "$R/k256/stage1" \
    --output-dir "$R/k256/anneal" --max-steps "$steps2"
  compare+=(--compare "K 256 (both stages)=$R/k256/anneal")
fi
wait
timed $E eval --run "$R/auto/anneal" "${compare[@]}"
.venv/bin/python experiments/eager_ml100k_report.py "$R"
