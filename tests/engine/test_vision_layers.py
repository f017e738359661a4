"""Convolution, Deconvolution and Pooling against direct numpy loops written from
Caffe's definitions (im2col convolution, scatter deconvolution, Caffe's pooling)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlp.errors import DLPError
from dlp.net.prototxt import parse_net_text
from dlp.net.shapes import infer_shapes
from dlp.net.specs.vision import caffe_pooled_sizes
from tests.engine.conftest import (
    build_layer,
    check_all_gradients,
    check_gradients,
    net_with_inputs,
)


def numpy_conv(x, w, b, stride, pad, dilation, group):
    """Direct N-D convolution, Caffe's weight layout (out, in/group, k...)."""
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    k = w.shape[2:]
    out_sp = [(s + 2 * p - (d * (kk - 1) + 1)) // st + 1
              for s, p, d, kk, st in zip(spatial, pad, dilation, k, stride, strict=False)]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in pad])
    cout = w.shape[0]
    y = np.zeros((n, cout, *out_sp))
    cin_g, cout_g = c // group, cout // group
    for o in range(cout):
        g = o // cout_g
        for pos in np.ndindex(*out_sp):
            for kpos in np.ndindex(*k):
                idx = tuple(pp * st + kk * d for pp, st, kk, d in
                            zip(pos, stride, kpos, dilation, strict=True))
                patch = xp[(slice(None), slice(g * cin_g, (g + 1) * cin_g), *idx)]
                y[(slice(None), o, *pos)] += patch @ w[(o, slice(None), *kpos)]
        if b is not None:
            y[:, o] += b[o]
    return y


def numpy_deconv(x, w, stride, pad, group):
    """Deconvolution as Caffe defines it: each input value scatters w[in, out/g] into
    the output at i*stride - pad + k."""
    n, c = x.shape[:2]
    spatial = x.shape[2:]
    k = w.shape[2:]
    cout_g = w.shape[1]
    cout = cout_g * group
    cin_g = c // group
    full = [st * (s - 1) + kk for s, st, kk in zip(spatial, stride, k, strict=False)]
    y = np.zeros((n, cout, *full))
    for ci in range(c):
        g = ci // cin_g
        for pos in np.ndindex(*spatial):
            for kpos in np.ndindex(*k):
                out_idx = tuple(pp * st + kk for pp, st, kk in zip(pos, stride, kpos, strict=False))
                for oc in range(cout_g):
                    y[(slice(None), g * cout_g + oc, *out_idx)] += (
                        x[(slice(None), ci, *pos)] * w[(ci, oc, *kpos)])
    crop = tuple(slice(p, f - p) for p, f in zip(pad, full, strict=False))
    return y[(slice(None), slice(None), *crop)]


def reference_pooled_hw(h, w, kernel, stride, pad, ceil=True):
    """PoolingLayer::Reshape as written in pooling_layer.cpp (float ceil, then one
    padding test shared by both axes)."""
    rnd = math.ceil if ceil else math.floor
    ph = int(rnd((h + 2 * pad[0] - kernel[0]) / stride[0])) + 1
    pw = int(rnd((w + 2 * pad[1] - kernel[1]) / stride[1])) + 1
    if pad[0] or pad[1]:
        if (ph - 1) * stride[0] >= h + pad[0]:
            ph -= 1
        if (pw - 1) * stride[1] >= w + pad[1]:
            pw -= 1
    return ph, pw


def caffe_pool(x, kernel, stride, pad, is_max, ceil=True):
    """Caffe's PoolingLayer Forward_cpu, 2-D, written out loop by loop."""
    n, c, h, w = x.shape
    ph, pw = reference_pooled_hw(h, w, kernel, stride, pad, ceil)
    y = np.zeros((n, c, ph, pw))
    for i in range(ph):
        for j in range(pw):
            hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
            he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we]
            if is_max:
                y[:, :, i, j] = window.max(axis=(2, 3))
            else:
                y[:, :, i, j] = window.sum(axis=(2, 3)) / size
    return y


CONV_CASES = [
    ("kernel_size: 3 pad: 1", (1, 4, 7, 6), 6, 1),
    ("kernel_h: 3 kernel_w: 2 pad_h: 2 pad_w: 0 stride_h: 2 stride_w: 1", (2, 2, 7, 5), 3, 1),
    ("kernel_size: 3 dilation: 2 pad: 2 group: 2", (1, 4, 8, 8), 6, 2),
    ("kernel_size: 2 kernel_size: 3 stride: 2 stride: 1 pad: 1 pad: 0", (1, 2, 6, 7), 2, 1),
    ("kernel_size: 2 pad: 1 stride: 2", (1, 2, 4, 5, 3), 3, 1),  # 3-D
    ("kernel_size: 3 group: 3 bias_term: false", (1, 3, 6), 3, 3),  # 1-D depthwise
]


@pytest.mark.parametrize(("fields", "shape", "outputs", "group"), CONV_CASES)
def test_convolution_matches_direct_loops(fields, shape, outputs, group, rng):
    text = (f'name: "conv" type: "Convolution" convolution_param {{ num_output: {outputs} '
            f'{fields} weight_filler {{ type: "gaussian" std: 0.5 }} '
            f'bias_filler {{ type: "uniform" min: -1 max: 1 }} }}')
    layer = build_layer(text, [shape])
    x = rng.standard_normal(shape)
    (y,) = layer(torch.from_numpy(x))
    bias = layer.bias.detach().numpy() if layer.bias_term else None
    expected = numpy_conv(x, layer.weight.detach().numpy(), bias, layer.stride, layer.pad,
                          layer.dilation, group)
    assert layer.weight.shape[:2] == (outputs, shape[1] // group)
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-9)
    check_all_gradients(layer, torch.from_numpy(x))


@pytest.mark.parametrize(("fields", "shape", "outputs", "group"), [
    ("kernel_size: 4 stride: 2 pad: 1", (1, 3, 4, 5), 2, 1),
    ("kernel_size: 3 stride: 3 group: 2", (2, 4, 3, 3), 4, 2),
    ("kernel_size: 2 stride: 2", (1, 2, 2, 3, 2), 3, 1),  # 3-D
])
def test_deconvolution_weight_layout_and_values(fields, shape, outputs, group, rng):
    text = (f'name: "up" type: "Deconvolution" convolution_param {{ num_output: {outputs} '
            f'{fields} bias_term: false weight_filler {{ type: "gaussian" std: 1 }} }}')
    layer = build_layer(text, [shape])
    # Caffe's deconvolution weight is (in, out/group, k...): the input channels lead.
    assert tuple(layer.weight.shape[:2]) == (shape[1], outputs // group)
    x = rng.standard_normal(shape)
    (y,) = layer(torch.from_numpy(x))
    expected = numpy_deconv(x, layer.weight.detach().numpy(), layer.stride, layer.pad, group)
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-9)
    check_all_gradients(layer, torch.from_numpy(x))


def test_bilinear_deconvolution_upsamples_a_constant_image():
    layer = build_layer('name: "up" type: "Deconvolution" convolution_param { num_output: 2 '
                        'group: 2 kernel_size: 4 stride: 2 pad: 1 bias_term: false '
                        'weight_filler { type: "bilinear" } }', [(1, 2, 5, 5)])
    (y,) = layer(torch.ones(1, 2, 5, 5, dtype=torch.float64))
    assert y.shape == (1, 2, 10, 10)
    # Interior pixels of an upsampled constant image stay constant.
    np.testing.assert_allclose(y[0, :, 1:-1, 1:-1].detach().numpy(), 1.0, atol=1e-12)


POOL_CASES = [
    # (fields, shape) — includes ceil-mode overhang, pad > 0, and non-native cases.
    ("pool: MAX kernel_size: 3 stride: 2", (1, 2, 7, 8)),
    ("pool: MAX kernel_size: 2 stride: 2", (1, 1, 5, 5)),  # last window clipped
    ("pool: AVE kernel_size: 3 stride: 2", (1, 2, 6, 7)),
    ("pool: AVE kernel_size: 3 stride: 2 pad: 1", (2, 1, 6, 5)),  # divisor counts pad
    ("pool: AVE kernel_size: 2 stride: 3 pad: 1", (1, 1, 7, 8)),  # pad > k/2: explicit path
    ("pool: MAX kernel_size: 3 stride: 2 pad: 2", (1, 1, 7, 6)),  # pad > k/2: explicit path
    ("pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1", (1, 2, 7, 5)),
]


@pytest.mark.parametrize(("fields", "shape"), POOL_CASES)
def test_pooling_matches_caffe_loops(fields, shape, rng):
    layer = build_layer(f'name: "pool" type: "Pooling" pooling_param {{ {fields} }}', [shape])
    x = rng.standard_normal(shape)
    (y,) = layer(torch.from_numpy(x))
    expected = caffe_pool(x, layer.kernel, layer.stride, layer.pad, layer.is_max)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-12)
    check_gradients(lambda t: layer(t)[0], torch.from_numpy(x).requires_grad_())


@pytest.mark.parametrize(("h", "w", "kernel", "stride", "pad", "ceil"), [
    (5, 5, (2, 2), (2, 2), (0, 0), True),  # rounds up: torch's floor mode gives 2
    (5, 5, (2, 2), (2, 2), (0, 0), False),
    (5, 5, (2, 2), (2, 2), (1, 1), True),  # last window would start in the right pad
    (6, 6, (3, 3), (2, 2), (1, 1), True),
    (227, 227, (3, 3), (2, 2), (0, 0), True),
    (7, 6, (3, 2), (2, 3), (1, 0), True),  # pad_h alone also trims the width
    (6, 7, (2, 3), (3, 2), (0, 1), True),  # and pad_w the height
    (6, 6, (1, 1), (3, 3), (0, 0), True),  # unpadded: Caffe keeps a window past the end
])
def test_pooled_size_is_caffes(h, w, kernel, stride, pad, ceil):
    expected = reference_pooled_hw(h, w, kernel, stride, pad, ceil)
    assert tuple(caffe_pooled_sizes((h, w), kernel, stride, pad, ceil)) == expected


def test_one_padded_axis_trims_the_other_in_engine_and_shape_inference(rng):
    # Caffe applies "the last window starts inside the image" to both axes as soon as
    # either is padded: width 6, kernel 2, stride 3 gives 2 columns here, not 3.
    layer_text = ('layer { name: "pool" type: "Pooling" bottom: "x" top: "p" pooling_param { '
                  'pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 '
                  'pad_w: 0 } }')
    net = net_with_inputs(layer_text, {"x": (1, 2, 7, 6)}, memory_format="contiguous")
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    y = net({"x": torch.from_numpy(x)})["p"]
    assert tuple(y.shape) == (1, 2, 4, 2)
    np.testing.assert_allclose(y.numpy(), caffe_pool(x, (3, 2), (2, 3), (1, 0), False),
                               rtol=1e-6)
    text = ('input: "x" input_shape { dim: 1 dim: 2 dim: 7 dim: 6 } ' + layer_text)
    shapes = infer_shapes(parse_net_text(text, "<pool>"), "TEST")
    assert shapes.blobs["p"] == (1, 2, 4, 2)


def test_pooling_kernel_larger_than_padded_input_is_named():
    with pytest.raises(DLPError, match=r"layer 'p' \(Pooling\): kernel \(5, 5\) does not fit"):
        build_layer('name: "p" type: "Pooling" pooling_param { pool: MAX kernel_size: 5 '
                    'stride: 2 }', [(1, 1, 2, 2)])


def test_average_divisor_includes_padding_clipped_to_padded_input():
    layer = build_layer('name: "p" type: "Pooling" pooling_param { pool: AVE kernel_size: 3 '
                        'stride: 2 pad: 1 }', [(1, 1, 4, 4)])
    (y,) = layer(torch.ones(1, 1, 4, 4, dtype=torch.float64))
    # Corner window covers 2x2 real pixels of a 3x3 window (padding counts): 4/9.
    assert y[0, 0, 0, 0].item() == pytest.approx(4 / 9)
    # Last window runs from 3 to min(6, 4+1)=5: 3x... size 2 rows in the divisor, 1 real.
    assert y[0, 0, 2, 2].item() == pytest.approx(1 / 4)


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
def test_pooling_round_mode_floor(pool, rng):
    # Caffe master's round_mode: FLOOR drops the overhanging window (7 -> 3, not 4).
    x = rng.standard_normal((1, 2, 7, 8))
    layer = build_layer(f'name: "p" type: "Pooling" pooling_param {{ pool: {pool} '
                        f'kernel_size: 2 stride: 2 round_mode: FLOOR }}', [x.shape])
    (y,) = layer(torch.from_numpy(x))
    expected = caffe_pool(x, (2, 2), (2, 2), (0, 0), pool == "MAX", ceil=False)
    assert y.shape == expected.shape == (1, 2, 3, 4)
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-12)
    check_gradients(lambda v: layer(v)[0], torch.from_numpy(x).requires_grad_())


def caffe_max_mask(x, kernel, stride, pad):
    """The top_mask of Caffe's MAX pooling: flat index h * W + w of each window's first
    maximum within its (n, c) plane."""
    n, c, h, w = x.shape
    ph, pw = reference_pooled_hw(h, w, kernel, stride, pad)
    mask = np.zeros((n, c, ph, pw))
    for i, j in np.ndindex(ph, pw):
        hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
        he, we = min(hs + kernel[0], h), min(ws + kernel[1], w)
        hs, ws = max(hs, 0), max(ws, 0)
        for b, ch in np.ndindex(n, c):
            window = x[b, ch, hs:he, ws:we]
            r, q = np.unravel_index(np.argmax(window), window.shape)  # first maximum
            mask[b, ch, i, j] = (hs + r) * w + ws + q
    return mask


@pytest.mark.parametrize("fields", [
    "kernel_size: 2 stride: 2",  # native kernel
    "kernel_size: 3 stride: 2 pad: 2",  # explicit padding: indices mapped back
    "kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 0",
])
def test_max_pooling_second_top_is_caffes_mask(fields, rng):
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    text = (f'layer {{ name: "p" type: "Pooling" bottom: "x" top: "p" top: "mask" '
            f'pooling_param {{ pool: MAX {fields} }} }}')
    net = net_with_inputs(text, {"x": x.shape})
    blobs = net({"x": torch.from_numpy(x)})
    layer = net.layer("p")
    expected = caffe_max_mask(x, layer.kernel, layer.stride, layer.pad)
    np.testing.assert_array_equal(blobs["mask"].numpy(), expected)
    assert blobs["mask"].shape == blobs["p"].shape and not blobs["mask"].requires_grad


def test_max_pooling_gradient_goes_to_the_first_maximum():
    # Caffe's loops keep the first maximum they meet (strict >); ties are common after
    # a ReLU.  Global pooling follows the same rule.
    x = torch.zeros(1, 1, 2, 4, dtype=torch.float64, requires_grad=True)
    for fields in ("kernel_size: 2 stride: 2", "global_pooling: true"):
        layer = build_layer(f'name: "p" type: "Pooling" pooling_param {{ pool: MAX {fields} }}',
                            [tuple(x.shape)])
        x.grad = None
        layer(x)[0].sum().backward()
        expected = torch.zeros(2, 4, dtype=torch.float64)
        if "global" in fields:
            expected[0, 0] = 1
        else:
            expected[0, 0] = expected[0, 2] = 1
        assert torch.equal(x.grad[0, 0], expected)


def test_global_and_3d_pooling(rng):
    layer = build_layer('name: "g" type: "Pooling" pooling_param { pool: AVE '
                        'global_pooling: true }', [(2, 3, 4, 5)])
    x = rng.standard_normal((2, 3, 4, 5))
    (y,) = layer(torch.from_numpy(x))
    np.testing.assert_allclose(y.detach().numpy()[..., 0, 0], x.mean(axis=(2, 3)), atol=1e-12)
    layer3 = build_layer('name: "p3" type: "Pooling" pooling_param { pool: MAX kernel_size: 2 '
                         'stride: 2 }', [(1, 1, 3, 4, 5)])
    x3 = rng.standard_normal((1, 1, 3, 4, 5))
    (y3,) = layer3(torch.from_numpy(x3))
    assert y3.shape == (1, 1, 2, 2, 3)
    assert y3[0, 0, 1, 1, 2].item() == pytest.approx(x3[0, 0, 2:, 2:, 4:].max())


def test_conv_net_runs_channels_last_with_same_result(rng):
    text = ('layer { name: "c" type: "Convolution" bottom: "x" top: "c" convolution_param { '
            'num_output: 3 kernel_size: 3 weight_filler { type: "xavier" } } }'
            'layer { name: "p" type: "Pooling" bottom: "c" top: "p" pooling_param { pool: MAX '
            'kernel_size: 2 stride: 2 } }')
    fast = net_with_inputs(text, {"x": (1, 2, 9, 9)}, seed=3)
    plain = net_with_inputs(text, {"x": (1, 2, 9, 9)}, seed=3, memory_format="contiguous")
    assert fast.channels_last and not plain.channels_last
    x = torch.from_numpy(rng.standard_normal((1, 2, 9, 9)).astype(np.float32))
    torch.testing.assert_close(fast({"x": x})["p"], plain({"x": x})["p"])
    assert math.prod(fast.blob_shapes["p"]) == 3 * 4 * 4
