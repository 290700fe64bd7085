#!/bin/bash
# EAGER-LLM on MovieLens-100K with every history item supervised (seqrec_labels: every),
# two index orders side by side (two one-thread jobs on the 2-core CPU):
#   dki : the paper's DKI order (semantic codes, then behaviour codes), K auto (37)
#   bf  : behaviour codes first (indexer dki-bf), K auto
# each: stage 1 (STEPS1 steps of 8, validation every 75) then annealing (STEPS2 steps),
# then one test evaluation per arm, of both stages (943 users, BEAMS beams, default 10:
# the CPU budget; the paper ranks 20) against popularity and SASRec; then results/eager_ml100k.md from OUT's
# parent folder (experiments/eager_ml100k_report.py), which holds the runs of
# experiments/eager_ml100k.sh (last-item labels) that the page compares with.
# Usage: experiments/eager_ml100k_dense.sh [OUT=runs/ml100k/dense] [STEPS1=300] [STEPS2=30] [BEAMS=10]
# Resumable: rerun the same command; finished stages are skipped, a stopped one resumes.
set -euo pipefail
R=${1:-runs/ml100k/dense} steps1=${2:-300} steps2=${3:-30} beams=${4:-10}
E=.venv/bin/eager-llm C=configs/eager_llm/smol-ml100k.yaml
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
DENSE=(--set seqrec_labels=every --set prefixes_per_user=1 --set eval_steps=75 --set save_steps=75)
timed() { local start; start=$(date +%s); "$@"; echo "$(( $(date +%s) - start )) s: $*" >> "$R/timings.txt"; }
resume_flag() { [ -d "$1" ] && echo --resume || true; }
mkdir -p "$R"
[ -f "$R/index-dki/item_index.json" ] || timed $E index --dataset movielens-100k --k auto --out "$R/index-dki"
[ -f "$R/index-bf/item_index.json" ] || timed $E index --dataset movielens-100k --k auto --indexer dki-bf --out "$R/index-bf"
arm() {  # arm name -> stage 1, then annealing, then the test evaluation
  local a=$1
  [ -d "$R/$a/stage1/final" ] || timed $E train --config $C "${DENSE[@]}" --index "$R/index-$a" \
    --output-dir "$R/$a/stage1" --max-steps "$steps1" $(resume_flag "$R/$a/stage1") > "$R/$a.stage1.log" 2>&1
  [ -d "$R/$a/anneal/final" ] || timed $E anneal --config $C "${DENSE[@]}" --index "$R/index-$a" \
    --from "$R/$a/stage1" --output-dir "$R/$a/anneal" --max-steps "$steps2" \
    $(resume_flag "$R/$a/anneal") > "$R/$a.anneal.log" 2>&1
  [ -f "$R/$a/anneal/eval.json" ] || timed $E eval --run "$R/$a/anneal" --beams "$beams" \
    > "$R/$a.eval.log" 2>&1
}
mkdir -p "$R/dki" "$R/bf"
arm dki & arm bf &
wait
.venv/bin/python experiments/eager_ml100k_report.py "$(dirname "$R")"
