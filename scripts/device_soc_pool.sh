#!/usr/bin/env bash
# Prepared GPU run (see the device tool): the full Sort-of-CLEVR pixel RN (fast preset) with each pooling over
# pairs side by side, to see which leaves the plateau soonest in steps. Diagnostic only, not a result.
# Usage (repo root): OUT=/tmp/out STEPS=15000 LIMIT=270 bash scripts/device_soc_pool.sh
set -u
export PYTHONPATH=src PYTHONUNBUFFERED=1
STEPS=${STEPS:-15000}
LIMIT=${LIMIT:-270}
OUT=${OUT:-/tmp/device_out}
PY=${PY:-python3}
mkdir -p "$OUT/runs"
$PY -m relnet data sort-of-clevr > "$OUT/data.log" 2>&1  # cache once, before the runs share it
soc() {  # name, then overrides
  local name=$1; shift
  OMP_NUM_THREADS=2 timeout "$LIMIT" $PY -m relnet train sort-of-clevr --model rn --preset fast --quiet \
    --out "$OUT/runs/$name" --train.steps=$STEPS --train.eval_every=1000 --train.checkpoint_every=$STEPS "$@" \
    > "$OUT/runs/$name.log" 2>&1 &
}
soc sum
soc max --model.reduce=max
soc summax --model.reduce=sum+max
soc summax-mask --model.reduce=sum+max --model.mask_background=true
soc max-mask --model.reduce=max --model.mask_background=true
soc summax-lr1e-3 --model.reduce=sum+max --train.lr=1e-3
wait
for f in "$OUT"/runs/*/metrics.jsonl; do cp "$f" "$OUT/runs/$(basename "$(dirname "$f")").jsonl"; done
(cd "$OUT" && tar czf pool-logs.tgz data.log runs/*.log runs/*.jsonl && rm -rf runs data.log)
tar xzf "$OUT/pool-logs.tgz" -O --wildcards 'runs/*.jsonl' > /dev/null
for n in sum max summax summax-mask max-mask summax-lr1e-3; do
  echo "== $n"
  tar xzf "$OUT/pool-logs.tgz" -O "runs/$n.jsonl" 2>/dev/null | grep '"eval"' | \
    $PY -c "import sys, json
for l in sys.stdin:
    d = json.loads(l); print(d['step'], round(d['relational'], 3), round(d['non_relational'], 3))"
done
