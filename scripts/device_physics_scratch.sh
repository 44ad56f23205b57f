#!/usr/bin/env bash
# Prepared GPU run (see the device tool): physics connection-inference RNs trained FROM SCRATCH side by side, with
# larger batches than the CPU can afford, to see whether more training compute lifts the single view past 95% of
# scenes with every connection right. Every continuation of the shipped model (CPU and GPU) ended at 94.2-94.8%.
# Every run: `--preset fast` (three rounds, edge memory), 16-view augmentation from the first step, SCENES training
# scenes (simulator seed 0), Adam with WARMUP warm-up steps and a cosine; each line of VARIANTS is
# "name override ...". The step count is not fixed in advance: all runs first train PROBE steps side by side, and
# each run's measured seconds per step (steps 100 to PROBE) sets its own step count so that training ends BUDGET
# seconds after the script started. Each run's last checkpoint is then scored on TEST fresh scenes of streams 2026
# and 7 on the machine's CPU cores (`relnet eval physics`, single view; TEST=0 skips it; about 30 s for 4,000), so the
# figures arrive even if the weights cannot; they come back in checkpoints.tgz (split in 15 MiB parts when larger,
# see collect_runs) to be scored again here. Beside the runs (PYTEST=1, the
# default), the test suite runs once on the GPU machine (pytest.log in logs.tgz); it starts before the probe, so the
# probe's timing already carries its load.
# Usage (repo root): OUT=/tmp/out BUDGET=460 bash scripts/device_physics_scratch.sh   (ends ~BUDGET + 60 s)
BUDGET=${BUDGET:-460}
TEST=${TEST:-4000}
SCENES=${SCENES:-600000}
PROBE=${PROBE:-200}
WARMUP=${WARMUP:-500}
LIMIT=${LIMIT:-$BUDGET}
THREADS=${THREADS:-2}
VARIANTS=${VARIANTS:-$'b250 --train.batch_size=250
b500 --train.batch_size=500
b250-w384 --train.batch_size=250 --model.g_dims=384,384,384
b250-r4 --train.batch_size=250 --model.rounds=4'}
source "$(dirname "$0")/device_prelude.sh"
cat "$OUT/env.txt"
start=$(date +%s)
{ $PY -m relnet data physics --scenes "$SCENES" --split train --workers 0 \
  && $PY -m relnet data physics --scenes 2000 --split val; } > "$OUT/data.log" 2>&1 || { tail -5 "$OUT/data.log"; exit 1; }
echo "data: $(( $(date +%s) - start )) s"
if [ "${PYTEST:-1}" = 1 ]; then
  ( OMP_NUM_THREADS=4 timeout 300 $PY -m pytest -q -p no:cacheprovider tests --ignore=tests/showcase \
      > "$OUT/pytest.log" 2>&1; echo "pytest rc $?" >> "$OUT/pytest.log" ) &
  pytest_pid=$!
fi
common=(-m relnet train physics --task connections --model rn --preset fast --quiet --data.augment=true
  --data.train_scenes="$SCENES" --train.lr=2e-3 --train.warmup_steps="$WARMUP" --train.schedule=cosine)
OUT_MAIN=$OUT
OUT=$OUT_MAIN/probe launch_variants $PY "${common[@]}" --train.steps="$PROBE" --train.eval_every="$PROBE" \
  --train.checkpoint_every="$PROBE"
OUT=$OUT_MAIN
left=$(( BUDGET - ($(date +%s) - start) ))
echo "probe done at $(( $(date +%s) - start )) s; $left s left for training"
declare -A overrides
while read -r n rest; do [ -n "$n" ] && overrides[$n]=$rest; done <<< "$VARIANTS"  # as launch_variants reads them
# steps per run: (left - 25 s of start-up and evaluations) / measured seconds per step, in whole hundreds; a run
# whose probe failed is left out (its probe log says why)
mkdir -p "$OUT/runs"
pids=()
limit=$(( left + 40 > 60 ? left + 40 : 60 ))
for n in "${names[@]}"; do
  s=$($PY -c "import json, sys
rows = {d['step']: d['elapsed'] for d in map(json.loads, open(sys.argv[1])) if d['kind'] == 'train'}
per = (rows[$PROBE] - rows[100]) / ($PROBE - 100)
print(max(1000, int(($left - 25) / per / 1.08) // 100 * 100), file=sys.stdout)
print(f'$n: {per * 1000:.1f} ms/step in the probe', file=sys.stderr)" "$OUT/probe/runs/$n/metrics.jsonl") \
    || { echo "$n: probe failed, left out"; continue; }
  # shellcheck disable=SC2086  # the overrides are meant to split into words
  OMP_NUM_THREADS=$THREADS timeout "$limit" $PY "${common[@]}" --out "$OUT/runs/$n" --train.steps="$s" \
    --train.eval_every="$(( s / 5 ))" --train.checkpoint_every="$(( s / 5 ))" ${overrides[$n]} \
    > "$OUT/runs/$n.log" 2>&1 &
  pids+=($!)
  echo "$n: $s steps"
done
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}"
echo "training done at $(( $(date +%s) - start )) s"
if [ "$TEST" -gt 0 ]; then
  physics_fresh_eval
  echo "evaluation done at $(( $(date +%s) - start )) s"
fi
collect_runs
[ -n "${pytest_pid:-}" ] && { wait "$pytest_pid"; tail -2 "$OUT/pytest.log"; }
(cd "$OUT" && tar czf logs.tgz env.txt data.log $(ls pytest.log 2>/dev/null) probe/runs/*.log runs/*.log runs/*.jsonl \
  $(cd "$OUT" && ls runs/*.eval*.json runs/*.eval*.err 2>/dev/null) && rm -rf runs probe data.log)
physics_summary
echo "total: $(( $(date +%s) - start )) s"
