#!/usr/bin/env bash
# The README's "Coming from kimhc6028/relational-networks?" figures, from one command: writes a full-size pickle in
# kimhc's 2020 layout with the tests' independent re-implementation of its generator (9,800 train + 1,000 test
# images, seed 1; no OpenCV needed), converts it with relnet's labels and with kimhc's own, and evaluates the shipped
# CNN+RN and CNN+MLP on both test splits. Prints the conversion summaries and one JSON line per evaluation.
# Usage (repo root, venv active): bash scripts/kimhc_roundtrip.sh [WORKDIR]   (default /tmp/kimhc-roundtrip; ~1.5 GB)
set -euo pipefail
WORK=${1:-/tmp/kimhc-roundtrip}
mkdir -p "$WORK"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, torch $(python -c 'import torch; print(torch.__version__)')"
python tests/sort_of_clevr/kimhc_format.py "$WORK/sort-of-clevr.pickle" --test 1000
for labels in fixed theirs; do
  echo "== conversion, --labels $labels"
  rm -rf "${WORK:?}/$labels"  # one converted folder per labels, whatever an earlier pickle left
  start=$(date +%s.%N)
  relnet data sort-of-clevr --from-kimhc "$WORK/sort-of-clevr.pickle" --labels "$labels" --out "$WORK/$labels" 2>&1
  echo "conversion wall time: $(python -c "print(f'{$(date +%s.%N) - $start:.1f} s')")"
  folder=$(ls -d "$WORK/$labels"/sort_of_clevr/kimhc-*)
  for model in rn mlp; do
    echo "== $model on kimhc's test images, $labels labels"
    relnet eval sort-of-clevr --checkpoint "checkpoints/sort_of_clevr/$model" --data "$folder" --json
  done
done
