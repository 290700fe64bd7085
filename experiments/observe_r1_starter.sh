#!/bin/bash
# Observe-R1 vs the GRPO baseline on the starter ladder (issue 18), the default model on CPU.
# Rows: the open-answer families counting, dice, chart, geometry (arithmetic's 0.06 sampled
# accuracy in the starter probe gives no signal) at the starter levels -1, 0 and today's
# level 1, no multiple choice. NeuraLadder built with 8 rollouts per row as in the paper,
# without the greedy filter (it would drop the easy rows the weak model needs). Both arms:
# smol-cpu.yaml, same ladder, seed and STEPS steps of 1 prompt x 8, validation on 60 rows
# every 25 steps; greedy test on TEST_N independent rows; the starting model tested in both
# formats. Usage:
#   experiments/observe_r1_starter.sh [OUT=runs/observe_r1_starter] [STEPS=100] [TEST_N=600]
#   ARMS="observe-r1" runs one arm (the other on the other core; the single ablations
#   no-weight, no-bonus, no-observe, no-order, and the variants observe-r1-refill (dynamic
#   sampling of the groups its weight zeroes), observe-r1-frozen-vision and
#   grpo-frozen-vision, run only when named); PREP=only stops after the
#   data, the ladder and the starting model's tests; PREP=skip-start-tests leaves those tests
#   to a PREP=only run (on a third job slot or later); CONFIG=configs/observe_r1/tiny.yaml
#   (with its MODEL=tiny-qwen2.5-vl, small STEPS and TEST_N) is a smoke check of the pipeline;
#   SETS="beta=0.01 bf16=true" adds these settings to every arm (use a fresh OUT for them).
# Resumable: rerun the same command; finished steps are skipped, a stopped run resumes from
# its newest checkpoint (save_steps 25). Then:
#   .venv/bin/python experiments/observe_r1_starter_report.py OUT
set -euo pipefail
R=${1:-runs/observe_r1_starter} steps=${2:-100} test_n=${3:-600}
families=counting,dice,chart,geometry levels=starter,1
cli=.venv/bin/observe-r1 config=${CONFIG:-configs/observe_r1/smol-cpu.yaml}
model=${MODEL:-smolvlm-dino}
mkdir -p "$R"

[ -f "$R/data/test.jsonl" ] || $cli synth --out "$R/data" --n 120 --test-n "$test_n" --seed 31 \
  --families $families --levels $levels --choice-share 0
[ -f "$R/valid/rows.jsonl" ] || $cli synth --out "$R/valid" --n 60 --seed 32 \
  --families $families --levels $levels --choice-share 0
[ -f "$R/ladder.jsonl" ] || $cli ladder --input "$R/data/rows.jsonl" --model $model \
  --out "$R/ladder.jsonl" --rollouts 8 --max-new-tokens 96 --batch-size "${LADDER_BATCH:-8}" --no-greedy-filter

test_once() {  # test_once MODEL FOLDER FORMAT
  [ -f "$2/eval.json" ] || $cli eval --model "$1" --data "$R/data/test.jsonl" --out "$2" \
    --response-format "$3" --max-new-tokens 96
}
if [ "${PREP:-}" != skip-start-tests ]; then
  test_once $model "$R/start-observe" observe
  test_once $model "$R/start-think" think
fi
[ "${PREP:-}" = only ] && exit 0

declare -A variants=(  # the arms: Observe-R1, the GRPO baseline, the single ablations
  [observe-r1]=""
  [grpo]="curriculum=shuffled response_format=think use_bonus=false use_dynamic_weight=false"
  [no-weight]="use_dynamic_weight=false"
  [no-bonus]="use_bonus=false"
  [no-observe]="response_format=think"
  [no-order]="curriculum=shuffled"
  [observe-r1-refill]="filter_groups=[all_wrong,all_correct]"  # + dynamic sampling (DAPO)
  [observe-r1-frozen-vision]="freeze_vision=true"  # the vision encoder kept as loaded
  [grpo-frozen-vision]="curriculum=shuffled response_format=think use_bonus=false use_dynamic_weight=false freeze_vision=true"
)
for name in ${ARMS:-observe-r1 grpo}; do
  run=$R/$name
  sets=(--set "train_file=$R/ladder.jsonl" --set "eval_file=$R/valid/rows.jsonl"
    --set eval_limit=60 --set eval_steps=25 --set rollout_texts=true)
  for kv in ${variants[$name]} ${SETS:-}; do sets+=(--set "$kv"); done
  format=observe; [[ "${variants[$name]}" == *think* ]] && format=think
  if [ ! -d "$run/final" ]; then
    how=(); compgen -G "$run/checkpoint-*" > /dev/null && how=(--resume)
    [ ${#how[@]} = 0 ] && [ -d "$run" ] && how=(--overwrite)
    start=$(date +%s)
    $cli train --config $config "${sets[@]}" --output-dir "$run" --max-steps "$steps" "${how[@]}"
    echo "$(( $(date +%s) - start ))" >> "$run/train_seconds.txt"
  fi
  test_once "$run/final" "$run/test" $format
done
