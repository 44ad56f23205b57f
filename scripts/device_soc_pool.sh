#!/usr/bin/env bash
# Prepared GPU run (see the device tool): the full Sort-of-CLEVR pixel RN (fast preset) with each pooling over
# pairs side by side, to see which leaves the plateau soonest in steps. Diagnostic only, not a result.
# Usage (repo root): OUT=/tmp/out STEPS=15000 LIMIT=270 bash scripts/device_soc_pool.sh
VARIANTS='sum
max --model.reduce=max
summax --model.reduce=sum+max
summax-mask --model.reduce=sum+max --model.mask_background=true
max-mask --model.reduce=max --model.mask_background=true
summax-lr1e-3 --model.reduce=sum+max --train.lr=1e-3' TGZ=pool-logs.tgz \
  exec bash "$(dirname "$0")/device_soc_variants.sh"
