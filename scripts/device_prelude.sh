# Sourced (not run) by the prepared GPU scripts (see the device tool): the shared environment, $OUT and $PY, and
# what the machine is ($OUT/env.txt). Scripts that train Sort-of-CLEVR then generate its cache once (soc_data),
# before their runs share it.
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/device_out}
PY=${PY:-python3}
mkdir -p "$OUT"
nvidia-smi -L > "$OUT/env.txt" 2>&1
$PY -c "import sys, torch; print(sys.version); print(torch.__version__, torch.cuda.is_available())" \
  >> "$OUT/env.txt" 2>&1
soc_data() { $PY -m relnet data sort-of-clevr > "$OUT/data.log" 2>&1; }
# launch_variants CMD ARG...: for each line "name override override ..." of $VARIANTS, run
# `CMD ARG... --out $OUT/runs/NAME override...` in the background under `timeout $LIMIT` (OMP_NUM_THREADS=$THREADS,
# default 2; output in $OUT/runs/NAME.log), then wait for those runs (not for other background jobs, such as a test
# suite running beside them). Sets the array `names`.
launch_variants() {
  mkdir -p "$OUT/runs"
  names=()
  local name overrides pids=()
  while read -r name overrides; do
    [ -z "$name" ] && continue
    names+=("$name")
    # shellcheck disable=SC2086  # the overrides are meant to split into words
    OMP_NUM_THREADS=${THREADS:-2} timeout "$LIMIT" "$@" --out "$OUT/runs/$name" $overrides \
      > "$OUT/runs/$name.log" 2>&1 &
    pids+=($!)
  done <<< "$VARIANTS"
  wait "${pids[@]}"
}
# collect_runs: after launch_variants, copy each run's metrics.jsonl to $OUT/runs/NAME.jsonl and pack every run's
# last checkpoint (weights and configs only) into one $OUT/checkpoints.tgz (NAME/checkpoint/..., NAME/config.json):
# the device returns a limited number of files, so not one archive per run. It also returns no file over 16 MiB (four
# physics runs' weights made 17+ MiB and were lost once), so a larger archive comes back as checkpoints.tgz.partNN of
# 15 MiB each: `cat checkpoints.tgz.part* > checkpoints.tgz` joins them.
collect_runs() {
  local n ckpts=()
  for n in "${names[@]}"; do
    [ -f "$OUT/runs/$n/metrics.jsonl" ] && cp "$OUT/runs/$n/metrics.jsonl" "$OUT/runs/$n.jsonl"
    [ -f "$OUT/runs/$n/checkpoint/model.safetensors" ] && \
      ckpts+=("$n/checkpoint/config.json" "$n/checkpoint/model.safetensors" "$n/config.json")
  done
  [ ${#ckpts[@]} -gt 0 ] && tar czf "$OUT/checkpoints.tgz" -C "$OUT/runs" "${ckpts[@]}"
  if [ -f "$OUT/checkpoints.tgz" ] && [ "$(stat -c %s "$OUT/checkpoints.tgz")" -gt $(( 15 * 1024 * 1024 )) ]; then
    split -b 15M -d "$OUT/checkpoints.tgz" "$OUT/checkpoints.tgz.part" && rm "$OUT/checkpoints.tgz"
  fi
  return 0
}
# physics_fresh_eval: score each run's last checkpoint ($OUT/runs/NAME/checkpoint) on $TEST fresh scenes of streams
# 2026 and 7 (connections, single view), all side by side on the machine's CPU cores: $OUT/runs/NAME.evalSEED.json.
physics_fresh_eval() {
  local n seed pids=()
  for n in "${names[@]}"; do
    for seed in 2026 7; do
      RELNET_DEVICE=cpu OMP_NUM_THREADS=2 timeout 180 $PY -m relnet eval physics --task connections --json \
        --checkpoint "$OUT/runs/$n/checkpoint" --scenes "$TEST" --seed $seed > "$OUT/runs/$n.eval$seed.json" \
        2> "$OUT/runs/$n.eval$seed.err" &
      pids+=($!)
    done
  done
  wait "${pids[@]}"
}
# physics_summary: each run's validation curve and fresh-scene figures, read back from $OUT/logs.tgz.
physics_summary() {
  local n seed
  for n in "${names[@]}"; do
    echo "== $n"
    tar xzf "$OUT/logs.tgz" -O "runs/$n.jsonl" 2>/dev/null | grep '"eval"' | $PY -c "import sys, json
rows = [json.loads(line) for line in sys.stdin]
print('val ' + ' '.join(f\"{d['step']}:{d['scene_accuracy']:.4f}\" for d in rows))"
    for seed in 2026 7; do
      tar xzf "$OUT/logs.tgz" -O "runs/$n.eval$seed.json" 2>/dev/null | $PY -c "import sys, json
d = json.load(sys.stdin); print(f\"fresh seed $seed: scenes right {d['scene_accuracy']:.4f} pairs {d['pair_accuracy']:.5f}\")" \
        2>/dev/null || echo "fresh seed $seed: no result ($(tar xzf "$OUT/logs.tgz" -O "runs/$n.eval$seed.err" 2>/dev/null | tail -1))"
    done
  done
}
