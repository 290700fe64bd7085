# Sourced by experiments/eager_ml100k_dense.sh and eager_ml100k_init.sh: one EAGER-LLM arm on
# MovieLens-100K, resumable. The caller sets R (run root), SETTINGS (--set options shared by
# both stages), steps1, steps2 (0: no annealing, stage 1 is tested alone) and beams.
E=.venv/bin/eager-llm C=configs/eager_llm/smol-ml100k.yaml
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
timed() { local start; start=$(date +%s); "$@"; echo "$(( $(date +%s) - start )) s: $*" >> "$R/timings.txt"; }
resume_flag() { [ -d "$1" ] && echo --resume || true; }
index_once() {  # index name, indexer[, K (auto)] -> $R/index-<name>, unless already built
  [ -f "$R/index-$1/item_index.json" ] || timed $E index --dataset movielens-100k \
    --k "${3:-auto}" --indexer "$2" --out "$R/index-$1"
}
arm() {  # arm name, index name[, --set options of this arm] -> stage 1, annealing, test
  local a=$1 index=$R/index-$2 last=$R/$1/stage1
  shift 2
  mkdir -p "$R/$a"
  [ -d "$last/final" ] || timed $E train --config $C "${SETTINGS[@]}" "$@" --index "$index" \
    --output-dir "$last" --max-steps "$steps1" $(resume_flag "$last") > "$R/$a.stage1.log" 2>&1
  if [ "$steps2" -gt 0 ]; then
    last=$R/$a/anneal
    [ -d "$last/final" ] || timed $E anneal --config $C "${SETTINGS[@]}" "$@" --index "$index" \
      --from "$R/$a/stage1" --output-dir "$last" --max-steps "$steps2" \
      $(resume_flag "$last") > "$R/$a.anneal.log" 2>&1
  fi
  [ -f "$last/eval.json" ] || timed $E eval --run "$last" --beams "$beams" > "$R/$a.eval.log" 2>&1
}
