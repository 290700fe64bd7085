#!/bin/bash
# EAGER-LLM on MovieLens-100K: the CPU recipe (configs/eager_llm/smol-ml100k.yaml as shipped:
# behaviour-first residual codes, K auto, embedding init, every-item labels, all five tasks +
# GCT, 300 stage-1 steps of 8 with validation every 75, 30 annealing steps) again under other
# training seeds, bf16 autocast where the CPU has native bf16 (the config's `bf16: true`).
# The index is built once (seed 0); only the training seed changes. Both stages, 943 test
# users, 10 beams (as the recorded recipe run rqbf-emb).
# Usage: experiments/eager_ml100k_seeds.sh [OUT=runs/ml100k/dense] [SEEDS="1"]
# Resumable: rerun the same command; finished stages are skipped, a stopped one resumes.
set -euo pipefail
R=${1:-runs/ml100k/dense} steps1=300 steps2=30 beams=10
SETTINGS=()
source "$(dirname "$0")/eager_ml100k_arm.sh"
mkdir -p "$R"
index_once rqbf rq-bf
for seed in ${SEEDS:-1}; do
  arm "recipe-seed$seed" rqbf --set seed="$seed"
done
