"""TernaryRelationNetwork: the factorised, packed and chunked triple sum against a naive triple loop."""

from __future__ import annotations

import pytest
import torch

from relnet.nn import TernaryRelationNetwork
from relnet.nn.ternary import naive_ternary_relation_network as naive


def make(**kw) -> TernaryRelationNetwork:
    torch.manual_seed(0)
    args = dict(object_dim=3, question_dim=2, g_dims=(8, 8), f_dims=(8,), out_dim=5)
    return TernaryRelationNetwork(**{**args, **kw}).double()


def inputs(B=3, N=4, D=3, Q=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    objects = torch.randn(B, N, D, generator=g, dtype=torch.float64)
    question = torch.randn(B, Q, generator=g, dtype=torch.float64) if Q else None
    return objects, question


MASK = torch.tensor([[True, True, False, True], [True, True, True, True], [False, False, False, False]])


def gradients(trn, objects, question, mask) -> list[list[torch.Tensor]]:
    """The objects' gradient and every parameter's, through the module and through the naive triple loop."""
    grads = []
    for fn in (trn, lambda o, q, m: naive(trn, o, q, m)):
        trn.zero_grad()
        x = objects.clone().requires_grad_()
        fn(x, question, mask).square().sum().backward()
        grads.append([x.grad] + [p.grad.clone() for p in trn.parameters()])
    return grads


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("distinct", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("chunk", [None, 5])
def test_matches_the_naive_triple_loop(reduce, distinct, masked, chunk):
    trn = make(reduce=reduce, distinct=distinct, chunk_triples=chunk)
    objects, question = inputs()
    mask = MASK if masked else None
    torch.testing.assert_close(trn(objects, question, mask), naive(trn, objects, question, mask))


@pytest.mark.parametrize("distinct", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("chunk", [None, 5, 40, 100])
def test_pair_distances_match_the_naive_triple_loop(distinct, masked, chunk):
    """g reads d_ij, d_ik and d_jk (the last two features are the position): values and gradients, dense, packed and
    chunked (dense chunks of 40 // (3 * 4 * 4) -> 1 row of i; of 100 // 48 = 2 rows)."""
    trn = make(pair_distance=True, distinct=distinct, chunk_triples=chunk)
    objects, question = inputs()
    objects[0, 1, -2:] = objects[0, 3, -2:]  # two objects at one place: d = 0 must keep finite gradients
    fast, slow = gradients(trn, objects, question, MASK if masked else None)
    assert trn.g_dist.grad.abs().sum() > 0
    for a, b in zip(fast, slow):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b)


def test_pair_distances_are_read_and_need_a_position():
    trn = make(pair_distance=True)
    objects, question = inputs()
    moved = objects.clone()
    moved[:, 0, -1] += 1.0  # move object 0: its distances change
    with torch.no_grad():
        trn.g_in.weight[:, [2, 5, 8]] = 0.0  # the second position feature of each slot no longer reaches g directly
        assert not torch.allclose(trn(objects, question), trn(moved, question))
        trn.g_dist.zero_()
        torch.testing.assert_close(trn(objects, question), trn(moved, question))
    with pytest.raises(ValueError, match="pair_distance needs"):
        TernaryRelationNetwork(object_dim=1, g_dims=(4,), f_dims=(), out_dim=2, pair_distance=True)


@pytest.mark.parametrize("masked", [False, True])
def test_gradients_match_the_naive_triple_loop(masked):
    """Every parameter's gradient and the objects' gradient, through the factorised and the naive computation."""
    trn = make(reduce="mean", aggregate_norm="layer")
    objects, question = inputs()
    fast, slow = gradients(trn, objects, question, MASK if masked else None)
    assert len(fast) == 1 + len(list(trn.parameters()))
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b)


def test_half_precision_mean_does_not_overflow_the_count():
    """41^3 triples is more than float16 holds: the mean must divide by the true count, not by inf."""
    trn = make(reduce="mean", g_dims=(4,), f_dims=(), out_dim=2)
    objects = torch.rand(1, 42, 3, dtype=torch.float64)
    question = torch.rand(1, 2, dtype=torch.float64)
    expect = trn.aggregate(objects, question)
    got = trn.half().aggregate(objects.half(), question.half())
    torch.testing.assert_close(got.double(), expect, rtol=2e-2, atol=2e-3)


def test_without_a_question():
    trn = make(question_dim=0)
    objects, _ = inputs(Q=0)
    torch.testing.assert_close(trn(objects), naive(trn, objects))
    with pytest.raises(ValueError, match="question_dim=0 but a question was given"):
        trn(objects, torch.zeros(3, 2, dtype=torch.float64))


@pytest.mark.parametrize("masked", [False, True])
def test_object_order_does_not_matter(masked):
    trn = make()
    objects, question = inputs(N=5)
    mask = torch.tensor([[True, False, True, True, True], [True] * 5, [False, True, True, False, True]])
    mask = mask if masked else None
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(trn(objects[:, perm], question, None if mask is None else mask[:, perm]),
                               trn(objects, question, mask))


def test_a_masked_object_counts_as_absent():
    """Padding two junk objects and masking them gives what the model gives on the real objects alone."""
    trn = make(reduce="mean", distinct=True)
    objects, question = inputs(N=4)
    padded = torch.cat([objects, 100 * torch.randn(3, 2, 3, dtype=torch.float64)], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 2] * 3)
    torch.testing.assert_close(trn(padded, question, mask), trn(objects, question))


@pytest.mark.parametrize("masked", [False, True])
def test_chunks_give_the_same_values_and_gradients(masked):
    objects, question = inputs(N=5)
    mask = torch.tensor([[True] * 5, [True, False, True, True, False], [True] * 5]) if masked else None
    grads = []
    for chunk in (None, 7 if masked else 150):  # unmasked: 150 // (3 * 5 * 5) = rows of 2, so chunks 2 + 2 + 1
        trn = make(chunk_triples=chunk)
        x = objects.clone().requires_grad_()
        out = trn(x, question, mask)
        out.square().sum().backward()
        grads.append((out.detach(), x.grad, trn.g_in.weight.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_distinct_triples_are_counted_exactly():
    trn = make(distinct=True, reduce="mean")
    objects, question = inputs(N=4)
    assert trn._valid_triples(4, None, objects.device).sum() == 4 * 3 * 2
    mask = torch.tensor([[True, True, False, False]] * 3)  # two objects: no distinct triple
    total = trn.aggregate(objects, question, mask)
    assert torch.equal(total, torch.zeros_like(total))


@pytest.mark.parametrize("kw, match", [
    (dict(g_dims=()), "g_dims must have at least one layer"),
    (dict(reduce="max"), "reduce must be 'sum' or 'mean'"),
    (dict(chunk_triples=0), "chunk_triples must be positive"),
    (dict(aggregate_norm="group"), "aggregate_norm must be"),
])
def test_bad_settings_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        make(**kw)


def test_bad_shapes_are_refused():
    trn = make()
    objects, question = inputs()
    with pytest.raises(ValueError, match=r"objects must have shape \(B, N, 3\)"):
        trn(objects[..., :2], question)
    with pytest.raises(ValueError, match=r"question must have shape \(3, 2\)"):
        trn(objects, None)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        trn(objects, question, torch.ones(3, 4))


def test_it_learns_a_relation_of_three():
    """Whether the third object lies between the first two (on a line): a tiny set, fitted to 100%."""
    torch.manual_seed(0)
    x = torch.rand(64, 3, 1)
    y = ((x[:, 2, 0] - x[:, 0, 0]) * (x[:, 2, 0] - x[:, 1, 0]) < 0).long()
    objects = torch.cat([x, torch.eye(3).expand(64, 3, 3)], dim=-1)  # position + which slot
    trn = TernaryRelationNetwork(object_dim=4, g_dims=(32, 32), f_dims=(32,), out_dim=2)
    opt = torch.optim.Adam(trn.parameters(), lr=1e-2)
    for _ in range(400):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(trn(objects), y).backward()
        opt.step()
    assert (trn(objects).argmax(-1) == y).float().mean() == 1.0
