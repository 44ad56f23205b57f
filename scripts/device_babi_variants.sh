#!/usr/bin/env bash
# Prepared GPU run (see the device tool): bAbI joint-training variants side by side on one GPU, to see which of them
# learns the tasks the CPU model fails (3, 16, 17, 19). Diagnostic unless a report says otherwise. Each line of
# VARIANTS is "name override override ..." (on top of `--preset fast`). Writes logs.tgz (every run's log and
# metrics) and checkpoints.tgz (each run's last checkpoint: model weights and config only) under $OUT, and prints
# every run's last evaluation: overall accuracy, tasks passed and the failing tasks.
# Usage (repo root; DATA: a copy of ../shared/data/babi inside the repo, named in the device tool's carry, since
# task 3's files are outside en-10k/): OUT=/tmp/out DATA=.babi/babi STEPS=12000 LIMIT=400 \
#   VARIANTS=$'b256 --train.batch_size=256\nbn --model.hidden_norm=batch' bash scripts/device_babi_variants.sh
STEPS=${STEPS:-12000}
EVAL=${EVAL:-1000}
LIMIT=${LIMIT:-400}
DATA=${DATA:-.babi/babi}
source "$(dirname "$0")/device_prelude.sh"
cat "$OUT/env.txt"
launch_variants $PY -m relnet train babi --preset fast --data "$DATA" --quiet --train.steps=$STEPS \
  --train.eval_every=$EVAL --train.checkpoint_every=$EVAL
collect_runs
(cd "$OUT" && tar czf logs.tgz env.txt runs/*.log runs/*.jsonl && rm -rf runs)
for n in "${names[@]}"; do
  echo "== $n"
  tar xzf "$OUT/logs.tgz" -O "runs/$n.jsonl" 2>/dev/null | grep '"eval"' | $PY -c "import sys, json
rows = [json.loads(line) for line in sys.stdin]
for d in rows[-3:]:
    fails = ' '.join(k for k, v in d['by_task'].items() if v <= 0.95)
    print(f\"step {d['step']} {d['elapsed']:.0f}s acc {d['accuracy']:.4f} passed {d['passed']} fails {fails}\")"
  tar xzf "$OUT/logs.tgz" -O "runs/$n.log" 2>/dev/null | tr '\r' '\n' | grep -v '^ *$' | tail -2
done
