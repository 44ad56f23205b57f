"""Object builders and encoders: shapes, coordinates, packing, reversal, masking."""

import pytest
import torch

from relnet import ConvObjects, ObjectMLP, QuestionLSTM, SentenceObjects, StateObjects
from relnet.nn import KeypointObjects
from relnet.nn.objects import colour_clusters, grid_coordinates
from relnet.nn.questions import reverse_padded


def test_conv_objects_paper_sizes():
    conv = ConvObjects(channels=(24, 24, 24, 24))
    objs, mask = conv(torch.randn(2, 3, 128, 128))
    assert objs.shape == (2, 64, 26) and mask is None  # 128 -> 8x8 cells, 24 features + (x, y)
    objs, _ = conv(torch.randn(2, 3, 75, 75))
    assert objs.shape == (2, 25, 26)  # 75 -> 5x5
    assert ConvObjects.output_size(75, 4) == 5 and ConvObjects.output_size(128, 4) == 8


def test_conv_objects_layer_order():
    bn_relu = [type(m).__name__ for m in ConvObjects(channels=(4, 4)).conv]
    relu_bn = [type(m).__name__ for m in ConvObjects(channels=(4, 4), order="relu-bn").conv]
    assert bn_relu == ["Conv2d", "BatchNorm2d", "ReLU"] * 2
    assert relu_bn == ["Conv2d", "ReLU", "BatchNorm2d"] * 2
    conv = ConvObjects(channels=(4, 4), order="relu-bn").train()
    cells = conv(torch.rand(8, 3, 20, 20))[0][..., :4]  # batch-normalised last: zero mean per channel
    assert torch.allclose(cells.mean(dim=(0, 1)), torch.zeros(4), atol=1e-5)
    with pytest.raises(ValueError, match="order"):
        ConvObjects(order="bn")


@pytest.mark.parametrize("size", [75, 128, 20, 9])
def test_conv_objects_maxpool_keeps_the_grid(size):
    strided = ConvObjects(channels=(4, 4, 4, 4))
    pooled = ConvObjects(channels=(4, 4, 4, 4), downsample="maxpool")
    x = torch.rand(2, 3, size, size)
    assert pooled(x)[0].shape == strided(x)[0].shape
    assert [type(m).__name__ for m in pooled.conv][:4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert all(m.stride == (1, 1) for m in pooled.conv if isinstance(m, torch.nn.Conv2d))


def test_conv_objects_maxpool_cell_sees_its_whole_area():
    """A 1-pixel dot anywhere in a cell's 2x2 block reaches that cell; a strided convolution samples every other
    pixel, so (with a 1x1 kernel) it misses the dot on odd rows/columns."""
    pooled = ConvObjects(channels=(1,), kernel_size=1, downsample="maxpool").eval()
    strided = ConvObjects(channels=(1,), kernel_size=1).eval()
    for conv in (pooled, strided):
        torch.nn.init.ones_(conv.conv[0].weight)
    x = torch.zeros(1, 3, 4, 4)
    x[0, :, 1, 3] = 1.0  # odd row and column: inside cell (0, 1) of the 2x2 grid
    p = pooled.feature_map(x)[0, 0]
    s = strided.feature_map(x)[0, 0]
    assert p.argmax() == 1 and p[0, 1] > p[0, 0]
    assert torch.allclose(s, s[0, 0])  # the strided sample never saw it
    with pytest.raises(ValueError, match="downsample"):
        ConvObjects(downsample="avg")


@pytest.mark.parametrize("size", [75, 128, 20])
def test_conv_objects_patch_keeps_the_grid(size):
    strided = ConvObjects(channels=(4, 4, 4, 4))
    patch = ConvObjects(channels=(4, 4, 4, 4), downsample="patch")
    x = torch.rand(2, 3, size, size)
    assert patch(x)[0].shape == strided(x)[0].shape
    kernels = [m.kernel_size for m in patch.conv if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [(16, 16), (1, 1), (1, 1), (1, 1)]


def test_conv_objects_patch_cell_sees_only_its_block():
    """Changing pixels inside one cell's block changes that cell only; with strided 3x3 layers a cell sees ~31 px,
    so the same change reaches its neighbours too."""
    torch.manual_seed(0)
    for downsample, others_change in (("patch", False), ("stride", True)):
        conv = ConvObjects(channels=(4, 4, 4, 4), downsample=downsample).eval()
        x = torch.rand(1, 3, 75, 75)
        y = x.clone()
        y[0, :, 20:28, 20:28] = 0.0  # inside cell (1, 1): rows/cols 14..29 of the image padded to 80 (2 px each side)
        before, after = conv(x)[0][0, :, :4], conv(y)[0][0, :, :4]
        changed = (before - after).abs().amax(-1) > 1e-6  # (25,)
        assert changed[6]  # cell (1, 1)
        assert bool(changed[torch.arange(25) != 6].any()) == others_change, downsample


@pytest.mark.parametrize("coords,dim", [("append", 6), ("input", 4), ("both", 6)])
def test_conv_objects_coordconv_channels(coords, dim):
    m = ConvObjects(channels=(4, 4), coords=coords)
    objects, _ = m(torch.rand(2, 3, 20, 20))
    assert objects.shape == (2, 25, dim) and m.object_dim == dim
    assert m.conv[0].in_channels == (5 if coords != "append" else 3)
    if coords == "append":
        torch.testing.assert_close(objects[0, :, -2:], grid_coordinates(5, 5))


def test_conv_objects_coordconv_input_sees_position():
    """With CoordConv, a 1x1 convolution reading only the x channel reproduces each pixel's x: the input channels
    are (x, y) of the pixel, x growing to the right."""
    m = ConvObjects(channels=(1,), kernel_size=1, stride=1, coords="input").eval()
    with torch.no_grad():
        m.conv[0].weight.zero_()
        m.conv[0].weight[0, 3] = 1.0  # channel 3 = x
        m.conv[1].running_var.fill_(1.0 - m.conv[1].eps)  # BatchNorm as the identity
    out = m(torch.zeros(1, 3, 3, 4))[0][0, :, 0]  # (12,) row-major cells, ReLU'd
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, 1 / 3, 1.0] * 3))
    with pytest.raises(ValueError, match="coords"):
        ConvObjects(coords="polar")


def test_grid_coordinates_span_and_order():
    c = grid_coordinates(5, 5)
    assert c.shape == (25, 2)
    assert c.min() == -1 and c.max() == 1
    torch.testing.assert_close(c[0], torch.tensor([-1.0, -1.0]))  # top-left
    torch.testing.assert_close(c[4], torch.tensor([1.0, -1.0]))  # top-right: x grows along a row
    torch.testing.assert_close(c[20], torch.tensor([-1.0, 1.0]))  # bottom-left
    assert len({tuple(r.tolist()) for r in c}) == 25


def test_conv_objects_coordinates_are_appended():
    conv = ConvObjects(channels=(4, 4))
    objs, _ = conv(torch.randn(1, 3, 20, 20))
    torch.testing.assert_close(objs[0, :, -2:], grid_coordinates(5, 5))


def test_keypoint_objects_shapes_and_attention():
    m = KeypointObjects(channels=(8, 6), strides=(2, 1), num_keypoints=5)
    objs, mask = m(torch.rand(3, 3, 20, 20))
    assert objs.shape == (3, 5, 6 + 2) and mask is None and m.object_dim == 8
    att, fmap = m.attention(torch.rand(3, 3, 20, 20))
    assert att.shape == (3, 5, 10, 10) and fmap.shape == (3, 6, 10, 10)
    torch.testing.assert_close(att.sum(dim=(2, 3)), torch.ones(3, 5))
    with pytest.raises(ValueError, match="strides"):
        KeypointObjects(channels=(8, 6), strides=(2,))
    with pytest.raises(ValueError, match="num_keypoints"):
        KeypointObjects(num_keypoints=0)


def test_keypoint_objects_match_a_loop_reference():
    torch.manual_seed(0)
    m = KeypointObjects(channels=(4,), strides=(1,), num_keypoints=3).eval()
    image = torch.rand(2, 3, 6, 7)
    objs, _ = m(image)
    fmap = m.conv(image)  # (2, 4, 6, 7)
    logits = m.attend(fmap)
    for b in range(2):
        for k in range(3):
            w = torch.exp(logits[b, k] - logits[b, k].max())  # sharpness 1: logits as they are
            w = w / w.sum()
            feat = torch.stack([(w * fmap[b, c]).sum() for c in range(4)])
            x = sum(w[i, j] * (-1 + 2 * j / 6) for i in range(6) for j in range(7))
            y = sum(w[i, j] * (-1 + 2 * i / 5) for i in range(6) for j in range(7))
            torch.testing.assert_close(objs[b, k], torch.cat([feat, torch.stack([x, y])]), atol=1e-5, rtol=1e-5)


def test_competing_keypoints_match_a_loop_reference():
    """compete=True, written out position by position: the softmax over the keypoints and the background logit at
    each position, then each keypoint's shares renormalised over the positions."""
    torch.manual_seed(0)
    m = KeypointObjects(channels=(4,), strides=(1,), num_keypoints=3, compete=True).eval()
    image = torch.rand(2, 3, 5, 6)
    att, fmap = m.attention(image)
    logits, bg = m.attend(fmap), m.background(fmap)[:, 0]
    for b in range(2):
        share = torch.zeros(3, 5, 6)
        for i in range(5):
            for j in range(6):
                z = torch.cat([logits[b, :, i, j], bg[b, i, j][None]])
                share[:, i, j] = (z.exp() / z.exp().sum())[:3]
        torch.testing.assert_close(att[b], share / share.sum(dim=(1, 2), keepdim=True), atol=1e-6, rtol=1e-5)
    # a keypoint loses the positions another one claims: raising keypoint 0's logits lowers keypoint 1's shares there
    with torch.no_grad():
        m.attend.bias[0] += 5.0
    shifted, _ = m.attention(image)
    assert (shifted[:, 0] > 0).all() and torch.allclose(shifted.sum(dim=(2, 3)), torch.ones(2, 3))
    assert not torch.allclose(shifted[:, 1], att[:, 1])


def test_keypoint_objects_locate_a_bright_spot_below_the_grid_step():
    """A keypoint that attends sharply to red pixels reports the red blob's centre, between feature-map positions."""
    m = KeypointObjects(in_channels=3, channels=(1,), strides=(1,), num_keypoints=1).eval()
    with torch.no_grad():
        m.conv[0].weight.zero_()
        m.conv[0].weight[0, 0, 1, 1] = 1.0  # feature = red channel
        m.conv[1].running_var.fill_(1.0 - m.conv[1].eps)  # BatchNorm as the identity
        m.attend.weight.fill_(5.0)
        m.log_sharpness.fill_(2.3)  # x ~10: logit 50 on red, 0 elsewhere
    image = torch.zeros(1, 3, 11, 11)
    image[0, 0, 2:4, 6:8] = 1.0  # a 2x2 red blob centred at row 2.5, column 6.5
    objs, _ = m(image)
    x, y = objs[0, 0, -2:].tolist()
    assert abs(x - (-1 + 2 * 6.5 / 10)) < 1e-3 and abs(y - (-1 + 2 * 2.5 / 10)) < 1e-3
    torch.testing.assert_close(m.pixel_positions(objs, (11, 11))[0, 0], torch.tensor([6.5, 2.5]), atol=1e-3, rtol=0)


def test_keypoint_local_position_matches_a_loop_reference():
    """``position="local"``: the expectation over the 3x3 window around each peak, cut at the map's border."""
    torch.manual_seed(0)
    m = KeypointObjects(channels=(4,), strides=(1,), num_keypoints=3, position="local").eval()
    image = torch.rand(2, 3, 6, 7, requires_grad=True)
    objs, _ = m(image)
    objs.sum().backward()
    assert torch.isfinite(image.grad).all()
    att, _ = m.attention(image)
    coords = grid_coordinates(6, 7).view(6, 7, 2)
    for b in range(2):
        for k in range(3):
            a = att[b, k].detach()
            r, c = divmod(int(a.flatten().argmax()), 7)
            cells = [(r + dr, c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if 0 <= r + dr < 6 and 0 <= c + dc < 7]
            total = sum(a[i, j] for i, j in cells)
            expected = sum(a[i, j] * coords[i, j] for i, j in cells) / total
            torch.testing.assert_close(objs[b, k, -2:].detach(), expected, atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="position"):
        KeypointObjects(position="hard")


def test_keypoint_both_positions_are_the_soft_then_the_local_one():
    image = torch.rand(2, 3, 9, 9)
    out = {}
    for position in ("soft", "local", "both"):
        torch.manual_seed(0)
        m = KeypointObjects(channels=(4,), strides=(1,), num_keypoints=2, position=position).eval()
        out[position] = m(image)[0]
    assert out["both"].shape == (2, 2, 8)
    torch.testing.assert_close(out["both"][..., :6], out["soft"])
    torch.testing.assert_close(out["both"][..., 6:], out["local"][..., 4:])


def test_keypoint_local_features_pool_the_peak_window():
    torch.manual_seed(0)
    m = KeypointObjects(channels=(4,), strides=(1,), num_keypoints=2, position="local", local_features=True).eval()
    image = torch.rand(1, 3, 6, 7)
    objs, _ = m(image)
    assert objs.shape == (1, 2, 4 + 4 + 2) and m.object_dim == 10
    att, fmap = m.attention(image)
    for k in range(2):
        a = att[0, k]
        r, c = divmod(int(a.flatten().argmax()), 7)
        cells = [(r + dr, c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if 0 <= r + dr < 6 and 0 <= c + dc < 7]
        total = sum(a[i, j] for i, j in cells)
        expected = sum(a[i, j] * fmap[0, :, i, j] for i, j in cells) / total
        torch.testing.assert_close(objs[0, k, 4:8], expected, atol=1e-6, rtol=1e-6)


def test_keypoint_pixel_positions_follow_the_strides():
    m = KeypointObjects(channels=(2, 2), strides=(2, 2), num_keypoints=1)  # 75 -> 38 -> 19: position p is pixel 4p
    corners = torch.tensor([[[0.0, 0.0, -1.0, -1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, -1.0]]])
    torch.testing.assert_close(m.pixel_positions(corners, (75, 75))[0], torch.tensor([[0.0, 0.0], [72.0, 72.0],
                                                                                       [36.0, 0.0]]))


def test_keypoint_anchors_add_a_colour_distance_to_the_logits():
    """anchors=w: each keypoint's logits get -w ||m(p) - c_k||^2, m(p) the mean colour of the (s+1)x(s+1) pixels
    centred on position p's input pixel (p * s), written out here pixel by pixel; off until set_anchors."""
    torch.manual_seed(0)
    m = KeypointObjects(channels=(4, 4), strides=(2, 2), num_keypoints=2, anchors=7.0).eval()
    image = torch.rand(2, 3, 9, 10)
    plain, fmap = m.attention(image)
    logits = m.attend(fmap) * m.log_sharpness.exp()
    torch.testing.assert_close(plain, logits.flatten(2).softmax(-1).view_as(plain))  # not anchored yet: no prior
    colours = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.9]])
    m.set_anchors(colours)
    att, _ = m.attention(image)
    h, w = fmap.shape[-2:]
    prior = torch.zeros(2, 2, h, w)
    for i in range(h):
        for j in range(w):
            window = image[:, :, max(0, 4 * i - 2):4 * i + 3, max(0, 4 * j - 2):4 * j + 3]  # cut at the border
            mean = window.mean(dim=(2, 3))  # (2, 3)
            prior[:, :, i, j] = -7.0 * (mean[:, None] - colours[None]).square().sum(-1)
    torch.testing.assert_close(att, (logits + prior).flatten(2).softmax(-1).view_as(att), atol=1e-6, rtol=1e-5)
    # the anchors are learned, and saved with the weights (a resumed model does not start them again)
    objs, _ = m(image)
    objs.sum().backward()
    assert m.anchor_colours.grad is not None and m.log_anchor_weight.grad is not None
    assert bool(m.state_dict()["anchored"])
    with pytest.raises(ValueError, match="shape"):
        m.set_anchors(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="no anchors"):
        KeypointObjects(num_keypoints=2).set_anchors(colours)


def test_anchored_keypoints_start_on_their_colour():
    """A fresh CNN with anchors started on the objects' colours: each keypoint's peak is on its colour's object."""
    torch.manual_seed(0)
    m = KeypointObjects(channels=(8, 8), strides=(2, 1), num_keypoints=2, anchors=40.0, position="local").eval()
    image = torch.ones(1, 3, 24, 24)
    image[0, :, 3:8, 14:19] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # red square centred at (16, 5)
    image[0, :, 15:20, 4:9] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # blue square centred at (6, 17)
    m.set_anchors(torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    objs, _ = m(image)
    xy = m.pixel_positions(objs, (24, 24))[0]
    assert (xy[0] - torch.tensor([6.0, 17.0])).norm() < 2 and (xy[1] - torch.tensor([16.0, 5.0])).norm() < 2


def test_colour_clusters_find_the_object_colours():
    """k-means over the foreground pixels (the most frequent colour is the background) finds each object colour."""
    palette = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.2, 0.2, 0.9]])
    images = torch.ones(6, 3, 16, 16) * 0.9  # a light gray background
    for n in range(6):
        for k, colour in enumerate(palette):
            r, c = (n + 4 * k) % 12, (3 * n + 5 * k) % 12
            images[n, :, r:r + 3, c:c + 3] = colour[:, None, None]
    found = colour_clusters(images, 3, seed=1)
    assert found.shape == (3, 3)
    order = torch.cdist(found, palette).argmin(1)
    assert sorted(order.tolist()) == [0, 1, 2]
    torch.testing.assert_close(found, palette[order], atol=0.02, rtol=0)
    torch.testing.assert_close(colour_clusters(images, 3, seed=1), found)  # deterministic
    with pytest.raises(ValueError, match="foreground"):
        colour_clusters(torch.ones(1, 3, 4, 4), 2)


def test_question_lstm_padding_is_ignored():
    torch.manual_seed(0)
    enc = QuestionLSTM(vocab_size=20, embed_dim=8, hidden_dim=6)
    tokens = torch.tensor([[3, 4, 5, 0, 0], [7, 8, 9, 10, 11]])
    lengths = torch.tensor([3, 5])
    out = enc(tokens, lengths)
    alone = enc(tokens[:1, :3], lengths[:1])
    torch.testing.assert_close(out[:1], alone)
    other_padding = tokens.clone()
    other_padding[0, 3:] = 12  # garbage after the end must not matter
    torch.testing.assert_close(enc(other_padding, lengths), out)


def test_question_lstm_reverse_reads_words_backwards():
    torch.manual_seed(0)
    fwd = QuestionLSTM(vocab_size=20, embed_dim=8, hidden_dim=6)
    rev = QuestionLSTM(vocab_size=20, embed_dim=8, hidden_dim=6, reverse=True)
    rev.load_state_dict(fwd.state_dict())
    tokens = torch.tensor([[3, 4, 5, 0], [7, 8, 9, 10]])
    lengths = torch.tensor([3, 4])
    manual = torch.tensor([[5, 4, 3, 0], [10, 9, 8, 7]])
    assert torch.equal(reverse_padded(tokens, lengths), manual)
    torch.testing.assert_close(rev(tokens, lengths), fwd(manual, lengths))


def test_sentence_objects_mask_and_tags():
    torch.manual_seed(0)
    enc = SentenceObjects(vocab_size=30, embed_dim=8, hidden_dim=6, max_sentences=4)
    tokens = torch.randint(1, 30, (2, 4, 5))
    lengths = torch.tensor([[0, 0, 2, 5], [1, 3, 4, 5]])
    objs, mask = enc(tokens, lengths)
    assert objs.shape == (2, 4, 6 + 4)
    assert mask.tolist() == [[False, False, True, True], [True, True, True, True]]
    assert (objs[0, :2, :6] == 0).all()
    torch.testing.assert_close(objs[:, :, 6:], torch.eye(4).expand(2, 4, 4))
    # a sentence's encoding does not depend on its neighbours
    single = enc.encoder(tokens[0, 3:4], lengths[0, 3:4])
    torch.testing.assert_close(objs[0, 3, :6], single[0])


def test_sentence_objects_share_embedding():
    q = QuestionLSTM(vocab_size=30, embed_dim=8, hidden_dim=6)
    s = SentenceObjects(vocab_size=30, embed_dim=8, hidden_dim=6, max_sentences=3, embedding=q.embedding)
    assert s.encoder.embedding is q.embedding


def test_state_objects_one_hot_and_embedded():
    cont = torch.randn(2, 3, 3)
    cat = torch.tensor([[[0, 1], [2, 0], [1, 1]], [[0, 0], [0, 0], [2, 1]]])
    onehot = StateObjects(continuous_dim=3, categorical={"color": 3, "shape": 2})
    objs, _ = onehot(cont, cat)
    assert objs.shape == (2, 3, 3 + 3 + 2) and onehot.object_dim == 8
    assert objs[0, 1, 3:6].tolist() == [0, 0, 1] and objs[0, 1, 6:].tolist() == [1, 0]
    emb = StateObjects(continuous_dim=3, categorical={"color": 3, "shape": 2}, embed_dim=4)
    assert emb(cont, cat)[0].shape == (2, 3, 3 + 8)


def test_object_mlp_baseline():
    mlp = ObjectMLP(num_objects=25, object_dim=26, question_dim=11, hidden_dims=(32, 32), out_dim=10)
    assert mlp(torch.randn(4, 25, 26), torch.randn(4, 11)).shape == (4, 10)
