#!/bin/bash
# MovieLens-1M end to end (issues 32 and 35): the index, the recipe's two stages
# (configs/eager_llm/smol-ml1m.yaml), the test evaluation under both protocols (20 beams),
# one command; every step resumes (the index's SASRec from its epoch checkpoint, the stages
# with --resume), a finished step is skipped. One thread by default:
#   taskset -c 0 experiments/eager_ml1m.sh          # R=runs/ml1m; log: runs/ml1m/*.log
# Budget estimate on a shared 2-core AMD EPYC, one thread: the index's SASRec ~4 min an epoch
# (<= 40, early stopping), stages as ML-100K's (~1.4 h), each test evaluation of 6,040 users
# x 2 models ~1.5 h. The tuned SASRec baselines of ML-1M:
#   experiments/eager_baselines_sasrec.py --dataset movielens-1m --models runs/baselines/ml1m/sasrec
set -euo pipefail
R=${R:-runs/ml1m} E=.venv/bin/eager-llm C=configs/eager_llm/smol-ml1m.yaml
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} PYTHONUNBUFFERED=1
mkdir -p "$R"
timed() { local start; start=$(date +%s); "$@"; echo "$(( $(date +%s) - start )) s: $*" >> "$R/timings.txt"; }
resume_flag() { [ -d "$1" ] && echo --resume || true; }
[ -f "$R/index/item_index.json" ] || timed $E index --dataset movielens-1m --indexer rq-bf \
  --k auto --out "$R/index" > "$R/index.log" 2>&1
[ -f "$R/stage1/final/config.json" ] || timed $E train --config $C --index "$R/index" \
  --output-dir "$R/stage1" $(resume_flag "$R/stage1") > "$R/stage1.log" 2>&1
[ -f "$R/anneal/final/config.json" ] || timed $E anneal --config $C --index "$R/index" \
  --from "$R/stage1" --output-dir "$R/anneal" $(resume_flag "$R/anneal") > "$R/anneal.log" 2>&1
for seen in keep remove; do
  name=eval; [ $seen = remove ] && name=eval-remove
  [ -f "$R/anneal/$name.json" ] || timed $E eval --run "$R/anneal" --seen $seen --beams 20 \
    > "$R/$name.log" 2>&1
done
echo "reports: $R/anneal/eval.md $R/anneal/eval-remove.md"
