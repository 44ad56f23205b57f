#!/usr/bin/env bash
# Prepared GPU run (see the device tool): Sort-of-CLEVR pixel RNs (`fast` preset plus overrides) side by side, to
# see which leaves the plateau soonest in steps. Diagnostic only, not a result. Each line of VARIANTS is
# "name override override ...". Prints every run's evaluations (step, relational, non-relational) at the end.
# Usage (repo root): OUT=/tmp/out STEPS=15000 LIMIT=270 VARIANTS=$'sum\nmax --model.reduce=max' \
#   bash scripts/device_soc_variants.sh
STEPS=${STEPS:-15000}
EVAL=${EVAL:-1000}
LIMIT=${LIMIT:-270}
source "$(dirname "$0")/device_prelude.sh"
soc_data  # once, before the runs start sharing the cache
launch_variants $PY -m relnet train sort-of-clevr --model rn --preset fast --quiet --train.steps=$STEPS \
  --train.eval_every=$EVAL --train.checkpoint_every=$STEPS
for f in "$OUT"/runs/*/metrics.jsonl; do cp "$f" "$OUT/runs/$(basename "$(dirname "$f")").jsonl"; done
(cd "$OUT" && tar czf "${TGZ:-variants-logs.tgz}" env.txt data.log runs/*.log runs/*.jsonl && rm -rf runs data.log)
for n in "${names[@]}"; do
  echo "== $n"
  tar xzf "$OUT/${TGZ:-variants-logs.tgz}" -O "runs/$n.jsonl" 2>/dev/null | grep '"eval"' | $PY -c "import sys, json
rows = [json.loads(line) for line in sys.stdin]
print(' '.join(f\"{d['step']}:{d['relational']:.3f}/{d['non_relational']:.3f}\" for d in rows))"
done
