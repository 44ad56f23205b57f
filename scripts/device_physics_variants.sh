#!/usr/bin/env bash
# Prepared GPU run (see the device tool): physics connection-inference RNs continued from a trained checkpoint
# (INIT) side by side, to see which change lifts the share of scenes with every connection right. Diagnostic only,
# not a result. Every run: `--preset fast`, 16-view augmentation, 200,000 training scenes, Adam 3e-4 with 500
# warm-up steps and a cosine over STEPS (the CPU's stage-3 recipe); each line of VARIANTS is "name override ...".
# The training scenes (SCENES of simulator seed 0, a superset of every run's) are simulated once, on every core.
# Each run's last checkpoint is then evaluated on TEST fresh scenes of streams 2026 and 7.
# Writes logs.tgz (logs, metrics, evaluations) and checkpoints.tgz (each run's last weights and config) under $OUT.
# Usage (repo root): OUT=/tmp/out STEPS=12000 LIMIT=330 \
#   VARIANTS=$'ctl\ngrow4 --model.rounds=4 --model.gated_rounds=1 --train.init_partial=true' \
#   bash scripts/device_physics_variants.sh
STEPS=${STEPS:-12000}
EVAL=${EVAL:-1000}
LIMIT=${LIMIT:-330}
SCENES=${SCENES:-600000}
TEST=${TEST:-4000}
INIT=${INIT:-checkpoints/physics/connections}
source "$(dirname "$0")/device_prelude.sh"
cat "$OUT/env.txt"
start=$(date +%s)
{ $PY -m relnet data physics --scenes "$SCENES" --split train --workers 0 \
  && $PY -m relnet data physics --scenes 2000 --split val; } > "$OUT/data.log" 2>&1
echo "data: $(( $(date +%s) - start )) s"; tail -3 "$OUT/data.log"
launch_variants $PY -m relnet train physics --task connections --model rn --preset fast --quiet \
  --train.init_from="$INIT" --data.augment=true --data.train_scenes=200000 --train.lr=3e-4 \
  --train.warmup_steps=500 --train.steps="$STEPS" --train.eval_every="$EVAL" --train.checkpoint_every="$EVAL"
echo "training: $(( $(date +%s) - start )) s"
physics_fresh_eval
collect_runs
(cd "$OUT" && tar czf logs.tgz env.txt data.log runs/*.log runs/*.jsonl runs/*.json runs/*.err && rm -rf runs)
physics_summary
echo "total: $(( $(date +%s) - start )) s"
