#!/bin/bash
# Does a few updates at smol-cpu.yaml's learning rate harm the default model? The demo's
# held-out accuracy fell twice after 4 steps (results/observe_r1_demo.md). Same training
# rows, ladder (4 rollouts, no greedy filter) and 4 steps as `observe-r1 demo`, once per
# learning rate in LRS; greedy test on TEST_N rows of the same families and levels (the
# demo's 24 are the first of them); McNemar of each run against the starting model.
# Usage: experiments/observe_r1_lr_probe.sh [OUT=runs/observe_r1_lr_probe] [TEST_N=144]
#   LRS="1e-5 1e-6" (default). Resumable: finished steps are skipped.
set -euo pipefail
R=${1:-runs/observe_r1_lr_probe} test_n=${2:-144}
cli=.venv/bin/observe-r1 families=counting,dice,chart,geometry
mkdir -p "$R"
[ -f "$R/data/test.jsonl" ] || $cli synth --out "$R/data" --n 12 --test-n "$test_n" --seed 0 \
  --families $families --levels starter --choice-share 0
[ -f "$R/ladder.jsonl" ] || $cli ladder --input "$R/data/rows.jsonl" --model smolvlm-dino \
  --out "$R/ladder.jsonl" --rollouts 4 --max-new-tokens 96 --no-greedy-filter
test_once() {  # MODEL FOLDER
  [ -f "$2/eval.json" ] || $cli eval --model "$1" --data "$R/data/test.jsonl" --out "$2" \
    --max-new-tokens 96 --batch-size 8
}
test_once smolvlm-dino "$R/start"
for lr in ${LRS:-1e-5 1e-6}; do
  run=$R/lr$lr
  [ -d "$run/final" ] || $cli train --config configs/observe_r1/smol-cpu.yaml \
    --set "train_file=$R/ladder.jsonl" --set learning_rate="$lr" --set save_steps=4 \
    --set logging_steps=1 --output-dir "$run" --max-steps 4 --overwrite
  test_once "$run/final" "$run/test"
done
.venv/bin/python - "$R" <<'PY'
import json, sys
from pathlib import Path
from model_zoo.significance import mcnemar
root = Path(sys.argv[1])
def right(folder):
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    return [r["correct"] for r in sorted(rows, key=lambda r: r["row"])]
start = right(root / "start")
print(f"start: {sum(start)} of {len(start)} right ({sum(start) / len(start):.3f})")
for run in sorted(root.glob("lr*")):
    after = right(run / "test")
    test = mcnemar(after, start)
    print(f"{run.name}: {sum(after)} right ({sum(after) / len(after):.3f}); right only after "
          f"{test.a_only}, only before {test.b_only}, McNemar p = {test.p_value:.3g}")
PY
