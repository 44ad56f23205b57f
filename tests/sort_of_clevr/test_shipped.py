"""The shipped Sort-of-CLEVR checkpoints load and show the paper's contrast on fresh images (50 images, 1,000
questions; the reports use 1,000 images): the CNN+RN (6 learned keypoints, `--preset keypoints`) beats the CNN+MLP
(the grid CNN of the `fast` preset) on relational questions and answers non-relational ones almost always; the
previous grid CNN+RN (`rn_grid`) still loads and beats the MLP too."""

from __future__ import annotations

from pathlib import Path

import pytest

from relnet.tasks.sort_of_clevr.cli import evaluate_checkpoint

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "sort_of_clevr"


@pytest.mark.skipif(not all((SHIPPED / m / "model.safetensors").is_file() for m in ("rn", "mlp")),
                    reason="no shipped Sort-of-CLEVR checkpoints")
def test_shipped_rn_beats_shipped_mlp_on_fresh_images():
    rn = evaluate_checkpoint(SHIPPED / "rn", images=50, seed=7)
    mlp = evaluate_checkpoint(SHIPPED / "mlp", images=50, seed=7)
    assert (rn["model"], mlp["model"], rn["n"]) == ("rn", "mlp", 1000)
    assert rn["non_relational"] >= 0.95, rn
    assert rn["relational"] >= mlp["relational"] + 0.08, (rn, mlp)
    assert rn["non_relational"] >= mlp["non_relational"] + 0.2, (rn, mlp)
    grid = evaluate_checkpoint(SHIPPED / "rn_grid", images=50, seed=7)
    assert grid["relational"] >= mlp["relational"] + 0.08 and grid["non_relational"] >= 0.95, (grid, mlp)
