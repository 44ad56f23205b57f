"""The position-free reader of Sort-of-CLEVR (relnet.tasks.sort_of_clevr.analysis) against a plain loop and its
expected accuracy."""

import numpy as np
import pytest

from relnet.tasks.sort_of_clevr import data as soc
from relnet.tasks.sort_of_clevr.analysis import majority_shape_of_others, position_free


def test_majority_shape_of_the_other_five_matches_a_loop():
    arrays = soc.generate_split(soc.SortOfClevrParams(train_images=1, test_images=30, seed=3), "test")
    got = majority_shape_of_others(arrays).reshape(30, 20)
    for n in range(30):
        for q in range(20):
            asked = int(np.flatnonzero(arrays["questions"][n, q, :6])[0])
            others = [int(arrays["shapes"][n, i]) for i in range(6) if i != asked]
            majority = "circle" if others.count(1) > others.count(0) else "square"
            assert soc.ANSWERS[got[n, q]] == majority


def test_position_free_reader_scores_the_binomial_majority_on_closest_and_furthest():
    # E[max(k, 5 - k)] / 5 with k ~ Binomial(5, 1/2) = 22/32; ~10,000 questions of each subtype: sd ~0.005
    arrays = soc.generate_split(soc.SortOfClevrParams(train_images=1, test_images=3000, seed=5), "test")
    free = position_free(arrays)
    assert free["closest"] == pytest.approx(22 / 32, abs=0.02)
    assert free["furthest"] == pytest.approx(22 / 32, abs=0.02)
    assert free["shape"] == free["count"] == 1.0
    assert free["left"] == pytest.approx(0.5, abs=0.03) and free["top"] == pytest.approx(0.5, abs=0.03)
    assert free["relational"] == pytest.approx((2 * 22 / 32 + 1) / 3, abs=0.015)
