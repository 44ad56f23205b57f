"""Average the weights of checkpoints of one architecture (a "model soup", Wortsman et al. 2022). Diagnosis, not a
result: meant for continuations of one model, which share its starting point.

    python scripts/average_weights.py OUT CHECKPOINT [CHECKPOINT ...]

Writes OUT/model.safetensors (the element-wise mean of every floating-point tensor; other tensors from the first)
and OUT/config.json (the first checkpoint's); the model configs must agree.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, sources = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    models = [json.loads((p / "config.json").read_text()).get("model") for p in sources]
    weights = [load_file(str(p / "model.safetensors")) for p in sources]
    for p, m, w in zip(sources[1:], models[1:], weights[1:]):
        if w.keys() != weights[0].keys():
            sys.exit(f"{p}: other tensors than {sources[0]}")
        common = {k for k in m if k in models[0]}
        if any(m[k] != models[0][k] for k in common):
            sys.exit(f"{p}: another model config than {sources[0]}")
    mean = {k: (sum(w[k].double() for w in weights) / len(weights)).to(t.dtype) if t.is_floating_point() else t
            for k, t in weights[0].items()}
    out.mkdir(parents=True, exist_ok=True)
    save_file(mean, str(out / "model.safetensors"))
    shutil.copy(sources[0] / "config.json", out / "config.json")
    print(f"{out}: the mean of {len(sources)} checkpoints ({len(mean)} tensors)")


if __name__ == "__main__":
    main()
