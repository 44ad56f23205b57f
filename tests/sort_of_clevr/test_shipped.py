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


@pytest.mark.skipif(not all((SHIPPED / f"ternary_{m}" / "model.safetensors").is_file() for m in ("rn3", "rn", "mlp")),
                    reason="no shipped ternary Sort-of-CLEVR checkpoints")
def test_shipped_ternary_rn_beats_pair_rn_and_mlp_on_fresh_scenes():
    """The shipped ternary models (reports/sort_of_clevr_ternary.md: 96.1% / 67.3% / 55.5% on 10,000 questions) on
    2,000 questions over 200 fresh scenes of another stream: only the ternary RN answers questions about triples."""
    from relnet.tasks.sort_of_clevr.ternary_cli import evaluate_checkpoint as evaluate_ternary

    rn3, rn, mlp = (evaluate_ternary(SHIPPED / f"ternary_{m}", images=200, seed=7) for m in ("rn3", "rn", "mlp"))
    assert (rn3["model"], rn["model"], mlp["model"], rn3["n"]) == ("rn3", "rn", "mlp", 2000)
    assert rn3["accuracy"] >= 0.92, rn3
    for sub in ("between", "line", "obtuse"):
        assert rn3["by_subtype"][sub] >= 0.88, (sub, rn3)
    assert rn3["accuracy"] >= rn["accuracy"] + 0.2, (rn3, rn)
    assert rn["accuracy"] >= mlp["accuracy"] + 0.05, (rn, mlp)
    assert mlp["accuracy"] <= 0.62, mlp  # an MLP of the same size stays near the most common answer (54.7%)
