#!/bin/bash
# Observe-R1 ablations at a CPU budget: (a) GRPO baseline, (b) full, (c) one component off.
# Every run: same ladder, same seed, STEPS steps of 2 prompts x 4 completions (equal rollout
# budget), then greedy evaluation on the held-out test rows. Usage:
#   experiments/observe_r1_ablations.sh LADDER.jsonl TEST.jsonl OUT_DIR [STEPS] [LR]
# then: .venv/bin/python experiments/ablation_table.py OUT_DIR
# CONFIG=configs/observe_r1/tiny.yaml runs the same six on the tiny model (a smoke check);
# NAMES="a-grpo-baseline b-observe-r1" runs only those (e.g. one half per core).
set -euo pipefail
ladder=$1 test=$2 out=$3 steps=${4:-6} lr=${5:-1e-5}
config=${CONFIG:-configs/observe_r1/smol.yaml}
declare -A variants=(
  [a-grpo-baseline]="curriculum=shuffled response_format=think use_bonus=false use_dynamic_weight=false"
  [b-observe-r1]=""
  [c-no-ladder-order]="curriculum=shuffled"
  [c-no-observe]="response_format=think"
  [c-no-bonus]="use_bonus=false"
  [c-no-dynamic-weight]="use_dynamic_weight=false"
)
all="a-grpo-baseline b-observe-r1 c-no-ladder-order c-no-observe c-no-bonus c-no-dynamic-weight"
for name in ${NAMES:-$all}; do
  run=$out/$name
  [ -f "$run/eval/eval.json" ] && continue
  sets=(--set "train_file=$ladder" --set "learning_rate=$lr")
  for kv in ${variants[$name]}; do sets+=(--set "$kv"); done
  format=observe; [[ "${variants[$name]}" == *think* ]] && format=think
  start=$(date +%s)
  .venv/bin/observe-r1 train --config $config "${sets[@]}" --output-dir "$run" --max-steps "$steps"
  echo "$(( $(date +%s) - start ))" > "$run/train_seconds.txt"
  .venv/bin/observe-r1 eval --model "$run/final" --data "$test" --out "$run/eval" \
    --response-format $format --max-new-tokens 96
done
