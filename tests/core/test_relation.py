"""The RN core: shapes, invariance, equivalence with a naive double loop, masking, gradients, dropout, determinism."""

import pytest
import torch

from relnet import RelationNetwork
from relnet.nn.relation import naive_relation_network

PAIR_OPTIONS = {
    "all": {},
    "no-self": {"self_pairs": False},
    "unordered": {"ordered": False},
    "unordered-no-self": {"ordered": False, "self_pairs": False},
    "explicit": {"pair_index": [[0, 1], [2, 3], [1, 1], [3, 0]]},
    "mean": {"reduce": "mean"},
    "max": {"reduce": "max"},
    "sum+max": {"reduce": "sum+max", "aggregate_norm": "layer"},
    "sum+max-chunked-no-self": {"reduce": "sum+max", "chunk_pairs": 5, "self_pairs": False},
    "max-chunked": {"reduce": "max", "chunk_pairs": 7},
    "chunked": {"chunk_pairs": 7},
    "chunked-no-self": {"chunk_pairs": 5, "self_pairs": False},
    "layer-norm": {"hidden_norm": "layer"},
    "layer-norm-chunked-unordered": {"hidden_norm": "layer", "chunk_pairs": 7, "ordered": False},
    "distance": {"pair_distance": True},
    "distance-chunked-no-self": {"pair_distance": True, "chunk_pairs": 5, "self_pairs": False},
    "distance-explicit-max": {"pair_distance": True, "pair_index": [[0, 1], [2, 3], [1, 1], [3, 0]], "reduce": "max"},
}


def make_rn(question_dim=3, **kw):
    torch.manual_seed(0)
    return RelationNetwork(object_dim=5, question_dim=question_dim, g_dims=(8, 8, 6), f_dims=(7, 7), out_dim=4, **kw).double()


def inputs(B=3, N=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, 5, generator=g, dtype=torch.double)
    q = torch.randn(B, 3, generator=g, dtype=torch.double)
    mask = torch.tensor([[1, 1, 1, 0, 1], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]], dtype=torch.bool)[:B, :N]
    return x, q, mask


@pytest.mark.parametrize("B,N", [(1, 1), (2, 5), (4, 9)])
@pytest.mark.parametrize("with_q", [True, False])
@pytest.mark.parametrize("with_mask", [True, False])
def test_output_shape(B, N, with_q, with_mask):
    rn = RelationNetwork(object_dim=6, question_dim=4 if with_q else 0, g_dims=(16, 16), f_dims=(8,), out_dim=3)
    x = torch.randn(B, N, 6)
    q = torch.randn(B, 4) if with_q else None
    mask = torch.rand(B, N) > 0.3 if with_mask else None
    assert rn(x, q, mask).shape == (B, 3)


@pytest.mark.parametrize("option", list(PAIR_OPTIONS))
@pytest.mark.parametrize("masked", [False, True])
def test_matches_naive_double_loop(option, masked):
    rn = make_rn(**PAIR_OPTIONS[option])
    x, q, mask = inputs()
    mask = mask if masked else None
    fast = rn(x, q, mask)
    ref = naive_relation_network(rn, x, q, mask)
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)


def test_factorised_first_layer_is_exact():
    rn = make_rn()
    x, q, _ = inputs()
    left, right = rn._project(x, q)
    h = left[:, :, None] + right[:, None]  # (B, N, N, H)
    B, N = x.shape[:2]
    pairs = torch.cat([x[:, :, None].expand(B, N, N, 5), x[:, None].expand(B, N, N, 5),
                       q[:, None, None].expand(B, N, N, 3)], dim=-1)  # (B, N, N, 2D+Q)
    torch.testing.assert_close(h, rn.g_in(pairs), rtol=1e-12, atol=1e-12)


def test_pair_distance_reads_the_last_two_features_only_through_the_distance():
    """Moving every object's position by the same offset, or rotating all positions, leaves the distance term as it
    is; the module then differs from one without distances exactly by that term."""
    rn = make_rn(pair_distance=True)
    x, q, mask = inputs()
    with torch.no_grad():
        rn.g_in.weight[:, 3:5].zero_()  # o_i's position columns
        rn.g_in.weight[:, 8:10].zero_()  # o_j's
    moved = x.clone()
    c, s_ = torch.cos(torch.tensor(0.7, dtype=x.dtype)), torch.sin(torch.tensor(0.7, dtype=x.dtype))
    moved[..., 3], moved[..., 4] = c * x[..., 3] - s_ * x[..., 4] + 2.0, s_ * x[..., 3] + c * x[..., 4] - 1.0
    torch.testing.assert_close(rn(moved, q, mask), rn(x, q, mask), rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        rn.g_dist.zero_()
    plain = make_rn()
    plain.load_state_dict({k: v for k, v in rn.state_dict().items() if k != "g_dist"})
    torch.testing.assert_close(rn(x, q, mask), plain(x, q, mask), rtol=1e-12, atol=1e-12)


def test_pair_distance_relations_and_per_object_match_the_sum():
    rn = make_rn(pair_distance=True)
    x, q, mask = inputs()
    rel, valid = rn.relations(x, q, mask)
    torch.testing.assert_close(rel.sum(dim=(1, 2)), rn.aggregate(x, q, mask), rtol=1e-10, atol=1e-10)
    per = rn.per_object(x, q, mask)
    assert per.shape == (3, 5, 6) and torch.isfinite(per).all()


def test_pair_distance_gradient_is_finite_on_self_pairs():
    rn = make_rn(pair_distance=True)
    x, q, _ = inputs()
    x.requires_grad_(True)
    rn(x, q).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(rn.g_dist.grad).all() and rn.g_dist.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pair_distance"):
        RelationNetwork(object_dim=1, pair_distance=True, out_dim=2)


def test_no_question():
    rn = make_rn(question_dim=0)
    x, _, mask = inputs()
    torch.testing.assert_close(rn(x, None, mask), naive_relation_network(rn, x, None, mask))


@pytest.mark.parametrize("option", ["all", "no-self", "mean", "chunked", "max", "sum+max"])
def test_permutation_invariance(option):
    rn = make_rn(**PAIR_OPTIONS[option])
    x, q, mask = inputs()
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(rn(x, q, mask), rn(x[:, perm], q, mask[:, perm]))


@pytest.mark.parametrize("option", ["all", "no-self", "unordered", "mean", "chunked"])
def test_mask_equals_removing_objects(option):
    rn = make_rn(**PAIR_OPTIONS[option])
    x, q, _ = inputs(B=1, N=4)
    junk = torch.randn(1, 3, 5, dtype=torch.double) * 100
    padded = torch.cat([x, junk], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    torch.testing.assert_close(rn(padded, q, mask), rn(x, q))


def test_ragged_batch_equals_one_at_a_time():
    rn = make_rn()
    x, q, mask = inputs()
    batched = rn(x, q, mask)
    for b in range(x.shape[0]):
        alone = rn(x[b : b + 1, mask[b]], q[b : b + 1])
        torch.testing.assert_close(batched[b : b + 1], alone)


def test_padded_pairs_are_not_computed():
    """With a mask, g runs only on valid pairs (packed), not on all N^2."""
    rn = make_rn()
    x, q, mask = inputs()
    rows = []
    hook = rn.g_rest[0].register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    rn(x, q, mask)
    hook.remove()
    assert sum(rows) == int((mask.sum(1) ** 2).sum())


def test_gradient_reaches_valid_objects_and_question_only():
    rn = make_rn()
    x, q, mask = inputs()
    x.requires_grad_(True)
    q.requires_grad_(True)
    rn(x, q, mask).sum().backward()
    per_object = x.grad.abs().sum(-1)  # (B, N)
    assert (per_object[mask] > 0).all()
    assert (per_object[~mask] == 0).all()
    assert (q.grad.abs().sum(-1) > 0).all()
    for name, p in rn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck_tiny():
    rn = make_rn(chunk_pairs=4)
    x, q, mask = inputs(B=2, N=3)
    x.requires_grad_(True)
    q.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: rn(a, b, mask[:, :3]), (x, q))


def test_chunked_gradients_equal_unchunked():
    x, q, _ = inputs()
    grads = []
    for chunk in (None, 6):
        rn = make_rn(chunk_pairs=chunk)
        rn(x, q).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in rn.parameters()]))
    torch.testing.assert_close(grads[0], grads[1])


def test_dropout_off_in_eval():
    rn = RelationNetwork(object_dim=4, g_dims=(8,), f_dims=(16, 16), out_dim=2, f_dropout=0.5)
    x = torch.randn(2, 3, 4)
    rn.eval()
    torch.testing.assert_close(rn(x), rn(x))
    rn.train()
    assert not torch.allclose(rn(x), rn(x))


def test_relations_for_visualisation():
    rn = make_rn(self_pairs=False)
    x, q, mask = inputs()
    rel, valid = rn.relations(x, q, mask)
    assert rel.shape == (3, 5, 5, 6) and valid.shape == (3, 5, 5)
    assert not valid[:, range(5), range(5)].any()
    assert (rel[~valid] == 0).all()
    # the relations sum to the aggregate that f sees
    torch.testing.assert_close(rel.sum(dim=(1, 2)), rn.aggregate(x, q, mask))


def test_determinism_for_fixed_seed():
    a = make_rn()
    b = make_rn()
    x, q, mask = inputs()
    assert torch.equal(a(x, q, mask), b(x, q, mask))


@pytest.mark.parametrize("bad", [
    dict(objects=torch.randn(2, 3)),
    dict(objects=torch.randn(2, 3, 4)),
    dict(question=torch.randn(3, 3)),
    dict(mask=torch.ones(2, 3)),
])
def test_bad_shapes_raise_clear_errors(bad):
    rn = RelationNetwork(object_dim=5, question_dim=3, g_dims=(4,), f_dims=(), out_dim=2)
    args = dict(objects=torch.randn(2, 3, 5), question=torch.randn(2, 3), mask=None) | bad
    with pytest.raises(ValueError, match="must"):
        rn(**args)


@pytest.mark.parametrize("option", ["all", "no-self", "unordered", "unordered-no-self"])
def test_per_object_is_the_mean_of_g_over_each_objects_pairs(option):
    rn = make_rn(**PAIR_OPTIONS[option])
    x, q, mask = inputs()
    out = rn.per_object(x, q, mask)  # (B, N, G)
    pairs = rn._pair_matrix(x.shape[1], x.device)
    for b in range(x.shape[0]):
        for k in range(x.shape[1]):
            rels = []
            for i in range(x.shape[1]):
                for j in range(x.shape[1]):
                    used = (pairs is None or pairs[i, j]) and mask[b, i] and mask[b, j]
                    if used and k in (i, j):
                        rels.append(rn.g_rest(torch.relu(rn.g_in(torch.cat([x[b, i], x[b, j], q[b]])))))
            want = torch.stack(rels).mean(0) if rels else torch.zeros(rn.relation_dim, dtype=x.dtype)
            torch.testing.assert_close(out[b, k], want)


def test_out_dim_zero_means_g_only():
    rn = RelationNetwork(object_dim=5, g_dims=(8, 6), f_dims=(), out_dim=0)
    assert isinstance(rn.f, torch.nn.Identity)
    assert rn(torch.randn(2, 3, 5)).shape == (2, 6)
    rn.reset_parameters()
    assert "g only" in repr(rn)
    with pytest.raises(ValueError, match="out_dim=0"):
        RelationNetwork(object_dim=5, g_dims=(8, 6), f_dims=(4,), out_dim=0)


def test_batch_norm_in_g_and_f():
    """hidden_norm="batch": in training its statistics cover the computed pairs only (what a padded object holds
    changes nothing); in eval mode it uses the running statistics and matches the naive double loop."""
    rn = make_rn(hidden_norm="batch")
    x, q, mask = inputs()
    out = rn(x, q, mask)
    y = x.clone()
    y[~mask] = 100.0
    torch.testing.assert_close(rn(y, q, mask), out, rtol=1e-10, atol=1e-10)
    assert rn.g_in_norm.num_batches_tracked == 2
    rn.eval()
    torch.testing.assert_close(rn(x, q, mask), naive_relation_network(rn, x, q, mask), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="chunk_pairs"):
        make_rn(hidden_norm="batch", chunk_pairs=7)
    with pytest.raises(ValueError, match="norm"):
        make_rn(hidden_norm="group")


@pytest.mark.parametrize("masked", [False, True])
def test_half_precision_mean_does_not_overflow_the_count(masked):
    """256^2 pairs is more than float16 holds: the mean must divide by the true count, not by inf."""
    torch.manual_seed(0)
    rn = RelationNetwork(object_dim=2, g_dims=(4,), f_dims=(), out_dim=2, reduce="mean").double()
    objects = torch.rand(1, 257, 2, dtype=torch.float64)
    mask = torch.ones(1, 257, dtype=torch.bool)
    mask[0, -1] = False  # a mask takes the packed path: 256^2 valid pairs
    mask = mask if masked else None
    objects = objects if masked else objects[:, :256]
    expect = rn.aggregate(objects, mask=mask)
    got = rn.half().aggregate(objects.half(), mask=mask)
    torch.testing.assert_close(got.double(), expect, rtol=2e-2, atol=2e-3)
