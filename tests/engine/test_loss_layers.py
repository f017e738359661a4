"""Loss and metric layers against numpy: normalisation modes, ignore_label,
loss_weight, top-k accuracy, Dice and DiceLoss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlp.errors import DLPError
from tests.engine.conftest import build_layer, check_gradients, net_with_inputs


def t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def numpy_softmax_loss(x, labels, ignore, mode):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    n, _, h, w = x.shape
    total, valid = 0.0, 0
    for i in range(n):
        for r in range(h):
            for c in range(w):
                label = int(labels[i, 0, r, c])
                if label == ignore:
                    continue
                total -= np.log(max(p[i, label, r, c], np.finfo(np.float32).tiny))
                valid += 1
    normalizer = {"FULL": n * h * w, "VALID": valid, "BATCH_SIZE": n, "NONE": 1}[mode]
    return total / max(normalizer, 1)


@pytest.mark.parametrize("mode", ["FULL", "VALID", "BATCH_SIZE", "NONE"])
def test_softmax_loss_normalization_modes_with_ignore_label(mode, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    labels = rng.integers(0, 3, (2, 1, 4, 5)).astype(np.float64)
    labels[0, 0, :2, :] = 255
    layer = build_layer(f'name: "loss" type: "SoftmaxWithLoss" loss_param {{ ignore_label: 255 '
                        f'normalization: {mode} }}', [x.shape, labels.shape])
    (loss,) = layer(t(x), t(labels))
    assert loss.item() == pytest.approx(numpy_softmax_loss(x, labels, 255, mode), rel=1e-10)
    check_gradients(lambda v: layer(v, t(labels))[0], t(x).requires_grad_())


def test_softmax_loss_legacy_normalize_and_probability_top(rng):
    x = rng.standard_normal((2, 3, 2, 2))
    labels = rng.integers(0, 3, (2, 2, 2)).astype(np.float64)  # (N, H, W) also accepted
    off = build_layer('name: "l" type: "SoftmaxWithLoss" top: "loss" top: "prob" '
                      'loss_param { normalize: false }', [x.shape, labels.shape])
    loss, prob = off(t(x), t(labels))
    expected = numpy_softmax_loss(x, labels[:, None], -1, "BATCH_SIZE")
    assert loss.item() == pytest.approx(expected)
    np.testing.assert_allclose(prob.sum(dim=1).detach().numpy(), 1.0)


def test_softmax_loss_rejects_labels_out_of_range():
    layer = build_layer('name: "l" type: "SoftmaxWithLoss"', [(1, 2, 2, 2), (1, 1, 2, 2)])
    with pytest.raises(DLPError, match=r"label values must be in 0..1, found 5"):
        layer(torch.zeros(1, 2, 2, 2, dtype=torch.float64),
              t([[[[0, 1], [5, 0]]]]))


def test_loss_weight_scales_the_net_loss(rng):
    layers = ('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" '
              'top: "loss" loss_weight: 2.5 }'
              'layer { name: "e" type: "EuclideanLoss" bottom: "x" bottom: "z" top: "e" }')
    net = net_with_inputs(layers, {"x": (2, 3), "y": (2,), "z": (2, 3)})
    assert net.loss_weights == {"loss": 2.5, "e": 1.0}
    x, z = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    blobs = net({"x": torch.tensor(x), "y": torch.tensor([0.0, 2.0]), "z": torch.tensor(z)})
    expected = 2.5 * blobs["loss"].item() + ((x - z) ** 2).sum() / 4
    assert net.loss(blobs).item() == pytest.approx(expected, rel=1e-5)
    assert blobs["e"].item() == pytest.approx(((x - z) ** 2).sum() / 4, rel=1e-5)


def test_sigmoid_cross_entropy_and_euclidean(rng):
    x, target = rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    layer = build_layer('name: "s" type: "SigmoidCrossEntropyLoss"', [x.shape, target.shape])
    p = 1 / (1 + np.exp(-x))
    expected = -(target * np.log(p) + (1 - target) * np.log(1 - p)).sum() / 3
    assert layer(t(x), t(target))[0].item() == pytest.approx(expected)
    check_gradients(lambda v: layer(v, t(target))[0], t(x).requires_grad_())
    euclid = build_layer('name: "e" type: "EuclideanLoss"', [x.shape, target.shape])
    check_gradients(lambda a, b: euclid(a, b)[0], t(x).requires_grad_(),
                    t(target).requires_grad_())


def test_accuracy_top_k_ignore_and_per_class():
    scores = t([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.2, 0.5, 0.3]])
    labels = t([2, 0, 1, 9])
    top1 = build_layer('name: "a" type: "Accuracy" top: "acc" top: "per_class" '
                       'accuracy_param { ignore_label: 9 }', [(4, 3), (4,)])
    acc, per_class = top1(scores, labels)
    assert acc.item() == pytest.approx(1 / 3)  # only sample 1 is right; sample 3 ignored
    assert per_class.tolist() == [1.0, 0.0, 0.0]
    top2 = build_layer('name: "a" type: "Accuracy" accuracy_param { top_k: 2 ignore_label: 9 }',
                       [(4, 3), (4,)])
    # Sample 0 (label score 0.4, second best) now counts; sample 2's label scores 0.3
    # with three scores >= 0.3 (Caffe counts ties against it), so it still does not.
    assert top2(scores, labels)[0].item() == pytest.approx(2 / 3)


def test_dice_metric_per_class_and_ignore():
    # Predictions via one-hot scores: image 0 predicts [[1,1],[0,0]], label [[1,0],[0,0]].
    pred = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 1]]])
    label = np.array([[[1, 0], [0, 0]], [[0, 0], [255, 1]]], dtype=np.float64)[:, None]
    scores = np.stack([pred == 0, pred == 1], axis=1).astype(np.float64)
    layer = build_layer('name: "d" type: "Dice" top: "dice" top: "per_class" dice_param { '
                        'smooth: 0 ignore_label: 255 }', [scores.shape, label.shape])
    dice, per_class = layer(t(scores), t(label))
    fg = [2 * 1 / (2 + 1), 2 * 1 / (1 + 1)]  # image 0: 2/3; image 1: 1
    bg = [2 * 2 / (2 + 3), 2 * 2 / (2 + 2)]  # image 1: the ignored pixel is excluded
    assert per_class.tolist() == pytest.approx([np.mean(bg), np.mean(fg)])
    assert dice.item() == pytest.approx(np.mean(fg))
    with_bg = build_layer('name: "d" type: "Dice" dice_param { smooth: 0 ignore_label: 255 '
                          'include_background: true }', [scores.shape, label.shape])
    assert with_bg(t(scores), t(label))[0].item() == pytest.approx(
        (np.mean(bg) + np.mean(fg)) / 2)


def test_dice_loss_is_soft_dice_and_differentiable(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    labels = rng.integers(0, 3, (2, 1, 4, 4)).astype(np.float64)
    layer = build_layer('name: "dl" type: "DiceLoss"', [x.shape, labels.shape])
    e = np.exp(x)
    p = e / e.sum(axis=1, keepdims=True)
    onehot = np.stack([(labels[:, 0] == c) for c in range(3)], axis=1)
    inter = (p * onehot).sum(axis=(0, 2, 3))
    sizes = p.sum(axis=(0, 2, 3)) + onehot.sum(axis=(0, 2, 3))
    expected = 1 - ((2 * inter + 1) / (sizes + 1))[1:].mean()
    assert layer(t(x), t(labels))[0].item() == pytest.approx(expected)
    check_gradients(lambda v: layer(v, t(labels))[0], t(x).requires_grad_())
    assert layer.is_loss


def numpy_sigmoid_cross_entropy(x, target, ignore, mode):
    """SigmoidCrossEntropyLossLayer::Forward_cpu's stable form, summed then normalised."""
    total, valid = 0.0, 0
    for xi, ti in zip(x.ravel(), target.ravel(), strict=True):
        if ignore is not None and ti == ignore:
            continue
        positive = 1.0 if xi >= 0 else 0.0
        total -= xi * (ti - positive) - np.log1p(np.exp(xi - 2 * xi * positive))
        valid += 1
    n = x.shape[0]
    normalizer = {"FULL": x.size, "VALID": valid, "BATCH_SIZE": n, "NONE": 1}[mode]
    return total / max(normalizer, 1)


@pytest.mark.parametrize("mode", ["FULL", "VALID", "BATCH_SIZE", "NONE"])
def test_sigmoid_cross_entropy_normalization_and_ignore_label(mode, rng):
    x = rng.standard_normal((3, 2, 2)) * 3
    target = rng.integers(0, 2, (3, 2, 2)).astype(np.float64)
    target[1, 0] = -1
    layer = build_layer(f'name: "s" type: "SigmoidCrossEntropyLoss" loss_param {{ '
                        f'ignore_label: -1 normalization: {mode} }}', [x.shape, target.shape])
    assert layer(t(x), t(target))[0].item() == pytest.approx(
        numpy_sigmoid_cross_entropy(x, target, -1, mode), rel=1e-10)
    check_gradients(lambda v: layer(v, t(target))[0], t(x).requires_grad_())
    # Caffe's gradient: (sigmoid(x) - target) / normalizer, zero where ignored.
    v = t(x).requires_grad_()
    layer(v, t(target))[0].backward()
    valid = target != -1
    norm = {"FULL": x.size, "VALID": valid.sum(), "BATCH_SIZE": 3, "NONE": 1}[mode]
    expected = np.where(valid, (1 / (1 + np.exp(-x)) - target) / norm, 0)
    np.testing.assert_allclose(v.grad.numpy(), expected, atol=1e-12)


def test_sigmoid_cross_entropy_defaults_to_batch_size_normalization(rng):
    x, target = rng.standard_normal((4, 3)), rng.uniform(0, 1, (4, 3))
    layer = build_layer('name: "s" type: "SigmoidCrossEntropyLoss"', [x.shape, target.shape])
    assert layer(t(x), t(target))[0].item() == pytest.approx(
        numpy_sigmoid_cross_entropy(x, target, None, "BATCH_SIZE"))


def test_euclidean_loss_value_and_gradient(rng):
    a, b = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 4))
    layer = build_layer('name: "e" type: "EuclideanLoss"', [a.shape, b.shape])
    va, vb = t(a).requires_grad_(), t(b).requires_grad_()
    (loss,) = layer(va, vb)
    diff = a - b.reshape(a.shape)
    assert loss.item() == pytest.approx((diff ** 2).sum() / (2 * 3))
    loss.backward()
    # EuclideanLossLayer::Backward_cpu: +-diff / num for the two bottoms.
    np.testing.assert_allclose(va.grad.numpy(), diff / 3)
    np.testing.assert_allclose(vb.grad.numpy(), -(diff / 3).reshape(b.shape))
    with pytest.raises(DLPError, match=r"layer 'e' \(EuclideanLoss\): bottoms must have the "
                                       r"same number of values"):
        build_layer('name: "e" type: "EuclideanLoss"', [(3, 4), (3, 5)])


def test_softmax_loss_along_another_axis_matches_numpy(rng):
    x = rng.standard_normal((2, 3, 4))  # classes on the last axis
    labels = rng.integers(0, 4, (2, 3)).astype(np.float64)
    layer = build_layer('name: "l" type: "SoftmaxWithLoss" softmax_param { axis: 2 }',
                        [x.shape, labels.shape])
    moved = np.moveaxis(x, 2, 1)[..., None]  # (N, C, H, 1) for the reference
    expected = numpy_softmax_loss(moved, labels[:, None, :, None], -1, "VALID")
    assert layer(t(x), t(labels))[0].item() == pytest.approx(expected, rel=1e-10)
    check_gradients(lambda v: layer(v, t(labels))[0], t(x).requires_grad_())


def test_accuracy_on_segmentation_maps_is_per_pixel_and_has_no_gradient(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    labels = rng.integers(0, 3, (2, 1, 4, 5)).astype(np.float64)
    labels[1, 0, 0] = 255
    layer = build_layer('name: "a" type: "Accuracy" top: "acc" top: "per_class" '
                        'accuracy_param { ignore_label: 255 }', [x.shape, labels.shape])
    v = t(x).requires_grad_()
    acc, per_class = layer(v, t(labels))
    predicted, truth = x.argmax(axis=1), labels[:, 0]
    valid = truth != 255
    assert acc.item() == pytest.approx((predicted == truth)[valid].mean())
    expected = [(predicted == c)[valid & (truth == c)].mean() for c in range(3)]
    np.testing.assert_allclose(per_class.numpy(), expected)
    assert not acc.requires_grad  # Caffe's AccuracyLayer has no backward


def test_dice_scores_an_absent_class_as_one():
    # Class 2 appears in neither prediction nor label of image 0: its Dice is 1.
    scores = t(np.eye(3)[[0, 1, 1, 0]].T.reshape(1, 3, 2, 2))  # predicts [[0, 1], [1, 0]]
    label = t([[[[0, 1], [0, 0]]]])
    layer = build_layer('name: "d" type: "Dice" top: "d" top: "c" dice_param { smooth: 0 }',
                        [tuple(scores.shape), tuple(label.shape)])
    dice, per_class = layer(scores, label)
    assert per_class.tolist() == pytest.approx([2 * 2 / (2 + 3), 2 * 1 / (2 + 1), 1.0])
    assert dice.item() == pytest.approx((2 / 3 + 1) / 2)
    assert not layer(scores.clone().requires_grad_(), label)[0].requires_grad  # a metric


def test_dice_loss_with_ignore_label_and_background(rng):
    x = rng.standard_normal((2, 2, 3, 3))
    labels = rng.integers(0, 2, (2, 1, 3, 3)).astype(np.float64)
    labels[0, 0, 0] = 9
    layer = build_layer('name: "dl" type: "DiceLoss" dice_param { ignore_label: 9 '
                        'include_background: true smooth: 0.5 }', [x.shape, labels.shape])
    e = np.exp(x)
    p = e / e.sum(axis=1, keepdims=True)
    valid = (labels != 9).astype(np.float64)
    onehot = np.stack([(labels[:, 0] == c) for c in range(2)], axis=1) * valid
    p = p * valid
    inter = (p * onehot).sum(axis=(0, 2, 3))
    sizes = p.sum(axis=(0, 2, 3)) + onehot.sum(axis=(0, 2, 3))
    expected = 1 - ((2 * inter + 0.5) / (sizes + 0.5)).mean()
    assert layer(t(x), t(labels))[0].item() == pytest.approx(expected)
    check_gradients(lambda v: layer(v, t(labels))[0], t(x).requires_grad_())
