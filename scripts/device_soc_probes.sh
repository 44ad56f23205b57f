#!/usr/bin/env bash
# Prepared GPU run (see the device tool): many Sort-of-CLEVR head probes (scripts/soc_head_probe.py) side by side,
# long enough to see which variants leave the position plateau and when. Diagnostic only, not a result.
# Usage (repo root): OUT=/tmp/out STEPS=20000 LIMIT=360 bash scripts/device_soc_probes.sh
export OMP_NUM_THREADS=1
STEPS=${STEPS:-20000}
LIMIT=${LIMIT:-360}
source "$(dirname "$0")/device_prelude.sh"
soc_data  # once, before the runs start sharing the cache
probe() {  # name, then probe flags
  local name=$1; shift
  timeout "$LIMIT" $PY scripts/soc_head_probe.py --device cuda --steps "$STEPS" --eval-every 1000 "$@" \
    > "$OUT/$name.log" 2>&1 &
}
probe cells-sum --features cells --lr 2e-3
probe cells-summax --features cells --lr 2e-3 --pool summax
probe cells-max --features cells --lr 2e-3 --pool max
probe cells-bilinear --features cells --lr 2e-3 --gate bilinear
probe cells-object --features cells --lr 2e-3 --gate object
probe cells-lr5e-4 --features cells --lr 5e-4
probe cells-b640 --features cells --lr 2e-3 --batch 640
probe cells-g4x256 --features cells --lr 2e-3 --g 256,256,256,256
probe cells-gated --features cells-gated --lr 2e-3
probe state25 --features state25 --lr 2e-3
probe state25zero --features state25zero --lr 2e-3
probe state --features state --lr 2e-3
wait
tail -n 3 "$OUT"/*.log
