#!/usr/bin/env bash
# One prepared run on a lent GPU machine (see the device tool): CUDA smoke tests, GPU throughput for the CLEVR
# projection, and long Sort-of-CLEVR runs side by side to see where the pixel RN's plateau ends.
# Usage (repo root): OUT=/tmp/out STEPS=30000 bash scripts/device_check.sh
STEPS=${STEPS:-30000}
EVAL=${EVAL:-2000}
source "$(dirname "$0")/device_prelude.sh"
soc_data  # once, before the runs start sharing the cache
mkdir -p "$OUT/runs"
cat "$OUT/env.txt"

soc() {  # name, then overrides
  local name=$1; shift
  OMP_NUM_THREADS=2 timeout "${SOC_LIMIT:-330}" $PY -m relnet train sort-of-clevr --model rn --quiet --out "$OUT/runs/$name" \
    --train.steps=$STEPS --train.eval_every=$EVAL --train.checkpoint_every=$STEPS "$@" > "$OUT/runs/$name.log" 2>&1 &
}
soc fast --preset fast
soc compact --preset compact
soc fast-const --preset fast --train.schedule=constant
soc fast-coords --preset fast --model.cnn_coords=both

( timeout "${TEST_LIMIT:-200}" $PY -m pytest -q -p no:cacheprovider tests --ignore=tests/showcase \
    > "$OUT/pytest.log" 2>&1; echo "pytest rc $?" >> "$OUT/pytest.log" ) &
OMP_NUM_THREADS=4 timeout 120 $PY benchmarks/clevr_throughput.py --device cuda --threads 4 --pixel-batch 64 640 \
  > "$OUT/clevr_gpu.log" 2>&1
OMP_NUM_THREADS=4 timeout 120 $PY benchmarks/clevr_throughput.py --threads 4 --pixel-batch 64 \
  > "$OUT/clevr_cpu16.log" 2>&1
wait
for f in "$OUT"/runs/*/metrics.jsonl; do cp "$f" "$OUT/runs/$(basename "$(dirname "$f")").jsonl"; done
(cd "$OUT" && tar czf logs.tgz env.txt data.log pytest.log clevr_gpu.log clevr_cpu16.log runs/*.log runs/*.jsonl && \
  rm -rf runs env.txt data.log clevr_cpu16.log)
tail -3 "$OUT/pytest.log"; grep -h "RESULT" "$OUT/clevr_gpu.log" | cut -c1-400
