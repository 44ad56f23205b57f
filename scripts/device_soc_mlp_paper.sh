#!/usr/bin/env bash
# Prepared GPU run (see the device tool): the paper-size CNN+MLP (`--preset paper`, 31.9M parameters) trained far
# longer than this CPU allows (diagnosis section 17 stopped it at 10,000 steps, 81.7 min), to see where the paper's
# own baseline lands once trained: does it read the objects well (non-relational high) and then score the
# position-free ~79% relational, or does it stay near the paper's 63%? Diagnostic only. Each line of VARIANTS is
# "name override override ..."; every run is then scored on 1,000 fresh images (seed 2026) by
# scripts/soc_position_free.py, which splits closest / furthest by majority- and minority-shape answers.
# Weights do not come back (128 MB each); logs and the scoring do, in $OUT/mlp-paper-logs.tgz.
# Usage (repo root): OUT=/tmp/out STEPS=30000 LIMIT=420 THREADS=3 bash scripts/device_soc_mlp_paper.sh
STEPS=${STEPS:-30000}
LIMIT=${LIMIT:-420}
BN_COSINE="--model.hidden_norm=batch --train.lr=3e-4 --train.schedule=cosine --train.warmup_steps=500 --train.min_lr=1e-5"
VARIANTS=${VARIANTS:-"bn-cosine $BN_COSINE
bn-cosine-50k $BN_COSINE --data.train_images=50000
bn-1e-4 --model.hidden_norm=batch
paper"}
source "$(dirname "$0")/device_prelude.sh"
soc_data  # once, before the runs start sharing the cache
launch_variants $PY -m relnet train sort-of-clevr --model mlp --preset paper --quiet --train.steps="$STEPS" \
  --train.eval_every=2000 --train.checkpoint_every=3000
collect() { for n in "${names[@]}"; do [ -d "$OUT/runs/$n/checkpoint" ] && echo "--checkpoint $OUT/runs/$n/checkpoint"; done; }
# shellcheck disable=SC2046  # one --checkpoint PATH pair per finished run
timeout 150 $PY scripts/soc_position_free.py --images 1000 --seed 2026 --threads 8 $(collect) \
  > "$OUT/runs/position_free.md" 2>&1
for n in "${names[@]}"; do [ -f "$OUT/runs/$n/metrics.jsonl" ] && cp "$OUT/runs/$n/metrics.jsonl" "$OUT/runs/$n.jsonl"; done
(cd "$OUT" && tar czf mlp-paper-logs.tgz env.txt data.log runs/*.log runs/*.jsonl runs/position_free.md && rm -rf runs)
back=$(mktemp -d)
tar xzf "$OUT/mlp-paper-logs.tgz" -C "$back"
for n in "${names[@]}"; do
  echo "== $n"
  grep '"eval"' "$back/runs/$n.jsonl" 2>/dev/null | $PY -c "import sys, json
rows = [json.loads(line) for line in sys.stdin]
print(' '.join(f\"{d['step']}:{d['relational']:.3f}/{d['non_relational']:.3f}\" for d in rows))"
  tail -c 300 "$back/runs/$n.log"; echo
done
grep -v '^RESULT' "$back/runs/position_free.md"
