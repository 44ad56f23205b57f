#!/usr/bin/env bash
# Prepared GPU run (see the device tool): ternary Sort-of-CLEVR (scripts/soc_ternary.py) side by side, one process
# per line of VARIANTS ("name models steps override override ..."), to see what a longer schedule gives and whether
# the "is A"/"is B" tags and the pair distances matter. Diagnostic only: the figures for the report come from the CPU.
# Each run writes its own report ($OUT/runs/NAME.md, NAME.json) scored on 10,000 questions over 1,000 fresh scenes.
# Usage (repo root): OUT=/tmp/out LIMIT=460 bash scripts/device_soc_ternary.sh    # VARIANTS below are the defaults
LIMIT=${LIMIT:-460}
VARIANTS=${VARIANTS:-"rn3-6k rn3 6000
rn3-24k rn3 24000
rn3-24k-notags rn3 24000 --model.tag_objects=false
rn3-24k-nodist rn3 24000 --model.pair_distance=false
rn3-24k-neither rn3 24000 --model.tag_objects=false --model.pair_distance=false
rn-24k rn 24000
mlp-24k mlp 24000"}
source "$(dirname "$0")/device_prelude.sh"
mkdir -p "$OUT/runs"
pids=()
while read -r name models steps overrides; do
  [ -z "$name" ] && continue
  # shellcheck disable=SC2086  # the overrides are meant to split into words
  OMP_NUM_THREADS=${THREADS:-2} timeout "$LIMIT" $PY scripts/soc_ternary.py --models "$models" \
    --runs "$OUT/work/$name" --report "$OUT/runs/$name.md" --train.steps="$steps" --train.eval_every=2000 \
    --train.checkpoint_every="$steps" $overrides > "$OUT/runs/$name.log" 2>&1 &
  pids+=($!)
done <<< "$VARIANTS"
wait "${pids[@]}"
for f in "$OUT"/work/*/*/metrics.jsonl; do
  cp "$f" "$OUT/runs/$(basename "$(dirname "$(dirname "$f")")").jsonl"
done
(cd "$OUT" && tar czf ternary-logs.tgz env.txt runs && rm -rf runs work)
back=$(mktemp -d)  # a fresh folder: on a machine still warm from an earlier call, /tmp holds that call's runs
tar xzf "$OUT/ternary-logs.tgz" -C "$back" runs/ 2>/dev/null
for f in "$back"/runs/*.log; do echo "== $(basename "$f" .log): $(grep '^RESULT' "$f" || tail -c 300 "$f")"; done
