"""BatchNorm (Caffe's three blobs and moving averages), Scale, Bias and LRN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engine.conftest import build_layer, check_all_gradients, check_gradients


def test_batchnorm_train_uses_batch_stats_and_accumulates_caffe_blobs(rng):
    layer = build_layer('name: "bn" type: "BatchNorm" batch_norm_param { '
                        'moving_average_fraction: 0.9 eps: 0.001 }', [(4, 3, 5, 5)])
    assert [tuple(b.shape) for b in layer.caffe_blobs()] == [(3,), (3,), (1,)]
    x1 = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
    x2 = rng.standard_normal((4, 3, 5, 5)) - 3
    (y1,) = layer(torch.from_numpy(x1))
    mean, var = x1.mean(axis=(0, 2, 3)), x1.var(axis=(0, 2, 3))
    expected = (x1 - mean.reshape(1, 3, 1, 1)) / np.sqrt(var.reshape(1, 3, 1, 1) + 0.001)
    np.testing.assert_allclose(y1.detach().numpy(), expected, atol=1e-10)
    layer(torch.from_numpy(x2))
    m = 4 * 5 * 5
    correction = m / (m - 1)
    factor = 0.9 * 1 + 1
    acc_mean = 0.9 * mean + x2.mean(axis=(0, 2, 3))
    acc_var = 0.9 * correction * var + correction * x2.var(axis=(0, 2, 3))
    np.testing.assert_allclose(layer.scale_factor.numpy(), [factor])
    np.testing.assert_allclose(layer.mean.numpy(), acc_mean, atol=1e-10)
    np.testing.assert_allclose(layer.variance.numpy(), acc_var, atol=1e-10)
    check_gradients(lambda t: layer(t)[0], torch.from_numpy(x1[:2, :, :3, :3]).requires_grad_())


def test_batchnorm_test_phase_divides_by_the_scale_factor(rng):
    layer = build_layer('name: "bn" type: "BatchNorm"', [(2, 2, 3, 3)], phase="TEST")
    assert layer.use_global_stats
    with torch.no_grad():
        layer.mean.copy_(torch.tensor([2.0, 4.0]))
        layer.variance.copy_(torch.tensor([8.0, 18.0]))
        layer.scale_factor.fill_(2.0)
    x = rng.standard_normal((2, 2, 3, 3))
    (y,) = layer(torch.from_numpy(x))
    expected = (x - np.array([1, 2]).reshape(1, 2, 1, 1)) / np.sqrt(
        np.array([4, 9]).reshape(1, 2, 1, 1) + 1e-5)
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-12)
    with torch.no_grad():
        layer.scale_factor.zero_()  # a fresh net: factor 0 means statistics 0
    np.testing.assert_allclose(layer(torch.from_numpy(x))[0].detach().numpy(),
                               x / np.sqrt(1e-5), rtol=1e-6)  # eps is a float32 field
    forced = build_layer('name: "bn" type: "BatchNorm" batch_norm_param { '
                         'use_global_stats: false }', [(2, 2, 3, 3)], phase="TEST")
    assert not forced.use_global_stats


def test_batchnorm_refuses_learned_statistics():
    with pytest.raises(Exception, match=r"cannot be learned"):
        build_layer('name: "bn" type: "BatchNorm" param { lr_mult: 1 }', [(2, 2, 3, 3)])


def test_scale_with_bias_axis_and_num_axes(rng):
    layer = build_layer('name: "s" type: "Scale" scale_param { axis: 1 num_axes: 2 '
                        'bias_term: true filler { type: "uniform" min: 1 max: 2 } '
                        'bias_filler { type: "constant" value: 0.5 } }', [(2, 3, 4, 5)])
    assert tuple(layer.weight.shape) == (3, 4) and tuple(layer.bias.shape) == (3, 4)
    x = rng.standard_normal((2, 3, 4, 5))
    (y,) = layer(torch.from_numpy(x))
    w = layer.weight.detach().numpy()[None, :, :, None]
    np.testing.assert_allclose(y.detach().numpy(), x * w + 0.5)
    check_gradients(lambda t: layer(t)[0], torch.from_numpy(x).requires_grad_())


def test_scale_defaults_to_one_and_takes_a_second_bottom(rng):
    plain = build_layer('name: "s" type: "Scale"', [(2, 3, 2, 2)])
    np.testing.assert_allclose(plain.weight.detach().numpy(), 1.0)
    two = build_layer('name: "s" type: "Scale" scale_param { axis: 0 }', [(2, 3, 2, 2), (2, 3)])
    x, s = rng.standard_normal((2, 3, 2, 2)), rng.standard_normal((2, 3))
    (y,) = two(torch.from_numpy(x), torch.from_numpy(s))
    np.testing.assert_allclose(y.numpy(), x * s[:, :, None, None])
    check_gradients(lambda a, b: two(a, b)[0], torch.from_numpy(x).requires_grad_(),
                    torch.from_numpy(s).requires_grad_())
    with pytest.raises(Exception, match=r"second bottom shape"):
        build_layer('name: "s" type: "Scale"', [(2, 3, 2, 2), (4,)])


def test_bias_layer(rng):
    layer = build_layer('name: "b" type: "Bias" bias_param { num_axes: -1 filler { '
                        'type: "gaussian" } }', [(2, 3, 2)])
    assert tuple(layer.bias.shape) == (3, 2)
    x = rng.standard_normal((2, 3, 2))
    np.testing.assert_allclose(layer(torch.from_numpy(x))[0].detach().numpy(),
                               x + layer.bias.detach().numpy()[None])
    check_all_gradients(layer, torch.from_numpy(x))
    top_diff = rng.standard_normal((2, 3, 2))
    layer.zero_grad()
    layer(torch.from_numpy(x))[0].backward(torch.from_numpy(top_diff))
    # Caffe's BiasLayer::Backward: the bias diff sums the top diff over outer positions.
    np.testing.assert_allclose(layer.bias.grad.numpy(), top_diff.sum(axis=0), atol=1e-12)


def test_bias_from_a_second_bottom(rng):
    layer = build_layer('name: "b" type: "Bias" bias_param { axis: 1 }', [(2, 3, 4), (3,)])
    x, b = rng.standard_normal((2, 3, 4)), rng.standard_normal(3)
    (y,) = layer(torch.from_numpy(x), torch.from_numpy(b))
    np.testing.assert_allclose(y.numpy(), x + b[None, :, None])
    check_all_gradients(layer, torch.from_numpy(x), torch.from_numpy(b))


def test_scale_parameter_gradients(rng):
    layer = build_layer('name: "s" type: "Scale" scale_param { bias_term: true filler { '
                        'type: "gaussian" } bias_filler { type: "gaussian" } }', [(2, 3, 2, 2)])
    x = rng.standard_normal((2, 3, 2, 2))
    check_all_gradients(layer, torch.from_numpy(x))
    top_diff = rng.standard_normal((2, 3, 2, 2))
    layer(torch.from_numpy(x))[0].backward(torch.from_numpy(top_diff))
    np.testing.assert_allclose(layer.weight.grad.numpy(), (x * top_diff).sum(axis=(0, 2, 3)))
    np.testing.assert_allclose(layer.bias.grad.numpy(), top_diff.sum(axis=(0, 2, 3)))


def numpy_lrn_across(x, size, alpha, beta, k):
    c = x.shape[1]
    half = (size - 1) // 2
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - half), min(c, ch + half + 1)
        scale = k + alpha / size * (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, ch] = x[:, ch] * scale ** -beta
    return out


def numpy_lrn_within(x, size, alpha, beta):
    h, w = x.shape[2:]
    pad = (size - 1) // 2
    out = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            hs, ws = i - pad, j - pad
            he, we = min(hs + size, h + pad), min(ws + size, w + pad)
            count = (he - hs) * (we - ws)
            window = x[:, :, max(hs, 0):min(he, h), max(ws, 0):min(we, w)] ** 2
            out[:, :, i, j] = x[:, :, i, j] * (1 + alpha * window.sum(axis=(2, 3)) / count) \
                ** -beta
    return out


def test_lrn_across_and_within_channels(rng):
    x = rng.standard_normal((2, 7, 5, 6))
    across = build_layer('name: "n" type: "LRN" lrn_param { local_size: 5 alpha: 0.1 '
                         'beta: 0.75 k: 2 }', [x.shape])
    np.testing.assert_allclose(across(torch.from_numpy(x))[0].detach().numpy(),
                               numpy_lrn_across(x, 5, 0.1, 0.75, 2), rtol=1e-7)
    within = build_layer('name: "n" type: "LRN" lrn_param { local_size: 3 alpha: 0.5 '
                         'beta: 0.75 norm_region: WITHIN_CHANNEL }', [x.shape])
    np.testing.assert_allclose(within(torch.from_numpy(x))[0].detach().numpy(),
                               numpy_lrn_within(x, 3, 0.5, 0.75), rtol=1e-7)
    small = torch.from_numpy(x[:1, :4, :3, :3]).requires_grad_()
    layer = build_layer('name: "n" type: "LRN" lrn_param { local_size: 3 alpha: 0.3 }',
                        [small.shape])
    check_gradients(lambda t: layer(t)[0], small)
    layer_w = build_layer('name: "n" type: "LRN" lrn_param { local_size: 3 alpha: 0.3 '
                          'norm_region: WITHIN_CHANNEL }', [small.shape])
    check_gradients(lambda t: layer_w(t)[0], small)
