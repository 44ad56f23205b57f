"""Shared report helpers."""

import pytest
import torch

from relnet.report import machine_description, schedule_changes, schedule_note
from relnet.train.config import TrainConfig
from relnet.train.loop import lr_at


def test_schedule_changes_finds_resumes_under_another_length_only():
    def rows(cfg, start, stop):
        return [{"kind": "train", "step": s, "lr": lr_at(cfg, s)} for s in range(start, stop + 1, 100)]

    short = TrainConfig(steps=10_000, lr=1e-3, schedule="cosine", warmup_steps=500, min_lr=1e-5)
    long = TrainConfig(steps=30_000, lr=1e-3, schedule="cosine", warmup_steps=500, min_lr=1e-5)
    whole = rows(short, 100, 10_000)
    assert schedule_changes(whole, warmup_steps=500) == [] and schedule_note(whole, warmup_steps=500) == ""
    assert schedule_changes(whole) != []  # the warm-up itself rises fast; it is skipped only when named
    up = rows(short, 100, 5_000) + rows(long, 5_100, 8_000)  # resumed under a longer cosine: the rate jumps up
    [(step, before, after)] = schedule_changes(up, warmup_steps=500)
    assert step == 5_100 and after > before
    down = rows(long, 100, 12_000) + rows(short, 12_100, 13_000)  # a shorter one: it drops
    [(step, before, after)] = schedule_changes(down, warmup_steps=500)
    assert step == 12_100 and after < before
    assert "step 12100" in schedule_note(down, warmup_steps=500)


@pytest.mark.parametrize("threads, words", [(1, "(1 thread)"), (2, "(2 threads)")])
def test_machine_description_names_the_thread_count(threads, words):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        assert machine_description().endswith(words)
    finally:
        torch.set_num_threads(before)
