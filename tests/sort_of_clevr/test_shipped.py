"""The shipped Sort-of-CLEVR checkpoints load and show the paper's contrast on fresh images (50 images, 1,000
questions; the reports use 1,000 images): the CNN+RN (6 learned keypoints, `--preset keypoints`) and the CNN+MLP
(the same preset, its own keypoints) both answer non-relational questions, and the RN beats the MLP on relational
ones, closest and furthest above all; the
previous grid models (`rn_grid`, `mlp_grid`, the `fast` preset) still load and show the contrast too."""

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
    # the paper's contrast: both answer non-relational questions; only the RN answers closest / furthest
    assert mlp["non_relational"] >= 0.9, mlp
    for sub in ("closest", "furthest"):
        assert rn["by_subtype"][sub] >= mlp["by_subtype"][sub] + 0.15, (sub, rn, mlp)
    grid = evaluate_checkpoint(SHIPPED / "rn_grid", images=50, seed=7)
    mlp_grid = evaluate_checkpoint(SHIPPED / "mlp_grid", images=50, seed=7)
    assert mlp_grid["model"] == "mlp" and grid["non_relational"] >= 0.95, (grid, mlp_grid)
    assert grid["relational"] >= mlp_grid["relational"] + 0.08, (grid, mlp_grid)
