#!/bin/bash
# EAGER-LLM on MovieLens-100K, third round: token rows that start from the behaviour
# geometry (index_token_init: embedding), two indices side by side (two one-thread jobs):
#   bf-emb   : the round-2 behaviour-first hierarchical codes (dki-bf, K auto), embedding init
#   rqbf-emb : behaviour-first residual codes (rq-bf, K auto: the second token means the same
#              residual direction under every first token), embedding init
# Everything else as experiments/eager_ml100k_dense.sh (every-item labels, 300 stage-1 steps
# of 8, validation every 75, annealing STEPS2 steps (0: none, stage 1 is tested alone), test of
# both stages with BEAMS beams),
# so bf-emb against round 2's bf isolates the init and rqbf-emb against bf-emb the codes.
# Usage: experiments/eager_ml100k_init.sh [OUT=runs/ml100k/dense] [STEPS1=300] [STEPS2=30] [BEAMS=10]
# Resumable: rerun the same command; finished stages are skipped, a stopped one resumes.
set -euo pipefail
R=${1:-runs/ml100k/dense} steps1=${2:-300} steps2=${3:-30} beams=${4:-10}
E=.venv/bin/eager-llm C=configs/eager_llm/smol-ml100k.yaml
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
DENSE=(--set seqrec_labels=every --set prefixes_per_user=1 --set eval_steps=75 --set save_steps=75
  --set index_token_init=embedding)
timed() { local start; start=$(date +%s); "$@"; echo "$(( $(date +%s) - start )) s: $*" >> "$R/timings.txt"; }
resume_flag() { [ -d "$1" ] && echo --resume || true; }
mkdir -p "$R"
[ -f "$R/index-bf/item_index.json" ] || timed $E index --dataset movielens-100k --k auto --indexer dki-bf --out "$R/index-bf"
[ -f "$R/index-rqbf/item_index.json" ] || timed $E index --dataset movielens-100k --k auto --indexer rq-bf --out "$R/index-rqbf"
arm() {  # arm name, index name -> stage 1, then annealing, then the test evaluation
  local a=$1 index=$R/index-$2
  [ -d "$R/$a/stage1/final" ] || timed $E train --config $C "${DENSE[@]}" --index "$index" \
    --output-dir "$R/$a/stage1" --max-steps "$steps1" $(resume_flag "$R/$a/stage1") > "$R/$a.stage1.log" 2>&1
  local last=$R/$a/stage1
  if [ "$steps2" -gt 0 ]; then
    last=$R/$a/anneal
    [ -d "$last/final" ] || timed $E anneal --config $C "${DENSE[@]}" --index "$index" \
      --from "$R/$a/stage1" --output-dir "$last" --max-steps "$steps2" \
      $(resume_flag "$last") > "$R/$a.anneal.log" 2>&1
  fi
  [ -f "$last/eval.json" ] || timed $E eval --run "$last" --beams "$beams" > "$R/$a.eval.log" 2>&1
}
mkdir -p "$R/bf-emb" "$R/rqbf-emb"
arm bf-emb bf & arm rqbf-emb rqbf &
wait
.venv/bin/python experiments/eager_ml100k_report.py "$(dirname "$R")"
