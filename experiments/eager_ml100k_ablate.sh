#!/bin/bash
# EAGER-LLM on MovieLens-100K, ablations of round 3's recipe (arm rqbf-emb of
# experiments/eager_ml100k_init.sh: behaviour-first residual codes, K auto, embedding init,
# every-item labels, all five tasks + GCT, 300 stage-1 steps of 8, validation every 75), each
# changing one thing, stage 1 tested alone against rqbf-emb's stage 1 (two one-thread jobs):
#   rqbf-nogct : GCT off (both contrastive weights 0)
#   rqbehav    : single-source index, rq-bf's behaviour levels alone (indexer rq-behav)
#   rqbf-k256  : the paper's K = 256 instead of ceil(sqrt(1,349)) = 37 (after rqbf-nogct)
# Usage: experiments/eager_ml100k_ablate.sh [OUT=runs/ml100k/dense] [STEPS1=300] [BEAMS=10]
# Resumable: rerun the same command; finished stages are skipped, a stopped one resumes.
set -euo pipefail
R=${1:-runs/ml100k/dense} steps1=${2:-300} steps2=0 beams=${3:-10}
SETTINGS=(--set seqrec_labels=every --set prefixes_per_user=1 --set eval_steps=75
  --set save_steps=75 --set index_token_init=embedding)
source "$(dirname "$0")/eager_ml100k_arm.sh"
mkdir -p "$R"
index_once rqbf rq-bf
index_once rqbehav rq-behav
index_once rqbf-k256 rq-bf 256
(arm rqbf-nogct rqbf --set gct_semantic_weight=0 --set gct_behaviour_weight=0
  arm rqbf-k256 rqbf-k256) &
arm rqbehav rqbehav &
wait
.venv/bin/python experiments/eager_ml100k_report.py "$(dirname "$R")"
