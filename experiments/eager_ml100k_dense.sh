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
SETTINGS=(--set seqrec_labels=every --set prefixes_per_user=1 --set eval_steps=75
  --set save_steps=75)
source "$(dirname "$0")/eager_ml100k_arm.sh"
mkdir -p "$R"
index_once dki dki
index_once bf dki-bf
arm dki dki & arm bf bf &
wait
.venv/bin/python experiments/eager_ml100k_report.py "$(dirname "$R")"
