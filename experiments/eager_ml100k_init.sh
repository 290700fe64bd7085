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
SETTINGS=(--set seqrec_labels=every --set prefixes_per_user=1 --set eval_steps=75
  --set save_steps=75 --set index_token_init=embedding)
source "$(dirname "$0")/eager_ml100k_arm.sh"
mkdir -p "$R"
index_once bf dki-bf
index_once rqbf rq-bf
arm bf-emb bf & arm rqbf-emb rqbf &
wait
.venv/bin/python experiments/eager_ml100k_report.py "$(dirname "$R")"
