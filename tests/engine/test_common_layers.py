"""InnerProduct, Crop, Concat, Eltwise, Split, Slice, Flatten, Reshape, Softmax,
ArgMax, Silence, MVN, Reduction, Tile and Embed against numpy; gradients (bottoms and
parameter blobs) against finite differences or numpy's formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlp.errors import DLPError
from tests.engine.conftest import (
    build_layer,
    check_all_gradients,
    check_gradients,
    net_with_inputs,
)


def t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def test_inner_product_axis_and_transpose(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    layer = build_layer('name: "ip" type: "InnerProduct" inner_product_param { num_output: 6 '
                        'axis: 2 weight_filler { type: "gaussian" } bias_filler { '
                        'type: "constant" value: 0.5 } }', [x.shape])
    assert tuple(layer.weight.shape) == (6, 20)
    (y,) = layer(t(x))
    expected = x.reshape(2, 3, 20) @ layer.weight.detach().numpy().T + 0.5
    np.testing.assert_allclose(y.detach().numpy(), expected, atol=1e-12)
    check_gradients(lambda a: layer(a)[0], t(x).requires_grad_())
    tr = build_layer('name: "ip" type: "InnerProduct" inner_product_param { num_output: 6 '
                     'transpose: true bias_term: false weight_filler { type: "xavier" } }',
                     [x.shape])
    assert tuple(tr.weight.shape) == (60, 6)
    np.testing.assert_allclose(tr(t(x))[0].detach().numpy(),
                               x.reshape(2, 60) @ tr.weight.detach().numpy(), atol=1e-12)


def test_crop_offsets_as_fcn_uses_them(rng):
    x = rng.standard_normal((1, 2, 40, 41))
    ref = np.zeros((1, 1, 20, 21))
    layer = build_layer('name: "c" type: "Crop" crop_param { axis: 2 offset: 18 }',
                        [x.shape, ref.shape])
    (y,) = layer(t(x), t(ref))
    np.testing.assert_array_equal(y.detach().numpy(), x[:, :, 18:38, 18:39])
    per_axis = build_layer('name: "c" type: "Crop" crop_param { axis: 1 offset: 1 offset: 2 '
                           'offset: 3 }', [x.shape, (1, 1, 20, 21)])
    np.testing.assert_array_equal(per_axis(t(x), t(ref))[0].numpy(), x[:, 1:2, 2:22, 3:24])
    default = build_layer('name: "c" type: "Crop"', [x.shape, ref.shape])
    np.testing.assert_array_equal(default(t(x), t(ref))[0].numpy(), x[:, :, :20, :21])
    with pytest.raises(DLPError, match=r"offset 25 \+ size 20 exceeds"):
        build_layer('name: "c" type: "Crop" crop_param { offset: 25 }', [x.shape, ref.shape])
    check_gradients(lambda a: layer(a, t(ref))[0], t(x[:, :, :22, :23]).requires_grad_())


def test_concat_slice_split_flatten(rng):
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    concat = build_layer('name: "c" type: "Concat"', [a.shape, b.shape])
    np.testing.assert_array_equal(concat(t(a), t(b))[0].numpy(), np.concatenate([a, b], 1))
    with pytest.raises(DLPError, match=r"must match bottom 0"):
        build_layer('name: "c" type: "Concat" concat_param { axis: 2 }', [a.shape, b.shape])
    x = rng.standard_normal((2, 6, 3))
    sliced = build_layer('name: "s" type: "Slice" top: "a" top: "b" top: "c" slice_param { '
                         'axis: 1 slice_point: 1 slice_point: 4 }', [x.shape])
    parts = sliced(t(x))
    assert [p.shape[1] for p in parts] == [1, 3, 2]
    np.testing.assert_array_equal(parts[1].numpy(), x[:, 1:4])
    equal = build_layer('name: "s" type: "Slice" top: "a" top: "b" slice_param { axis: -1 }',
                        [(2, 3, 4)])
    assert [p.shape for p in equal(t(np.zeros((2, 3, 4))))] == [(2, 3, 2), (2, 3, 2)]
    split = build_layer('name: "sp" type: "Split" top: "a" top: "b"', [x.shape])
    first, second = split(t(x).requires_grad_())
    assert torch.equal(first, second)
    flat = build_layer('name: "f" type: "Flatten" flatten_param { axis: 1 end_axis: 2 }',
                       [(2, 3, 4, 5)])
    assert flat(t(np.zeros((2, 3, 4, 5))))[0].shape == (2, 12, 5)
    check_gradients(lambda v: sum(p.sum() * (i + 1) for i, p in enumerate(sliced(v))),
                    t(x).requires_grad_())


@pytest.mark.parametrize(("op", "fn"), [
    ("operation: SUM coeff: 2 coeff: -0.5", lambda a, b: 2 * a - 0.5 * b),
    ("operation: SUM", lambda a, b: a + b),
    ("operation: PROD", lambda a, b: a * b),
    ("operation: MAX", np.maximum),
])
def test_eltwise(op, fn, rng):
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    layer = build_layer(f'name: "e" type: "Eltwise" eltwise_param {{ {op} }}', [a.shape, b.shape])
    np.testing.assert_allclose(layer(t(a), t(b))[0].numpy(), fn(a, b), rtol=1e-7)
    check_gradients(lambda x, y: layer(x, y)[0], t(a).requires_grad_(), t(b).requires_grad_())


@pytest.mark.parametrize(("fields", "shape", "expected"), [
    ("shape { dim: 0 dim: -1 }", (2, 3, 4), (2, 12)),
    ("shape { dim: 0 dim: 2 dim: -1 dim: 2 }", (2, 3, 4), (2, 2, 3, 2)),
    ("axis: 1 num_axes: 1 shape { dim: 3 dim: 1 }", (2, 3, 4), (2, 3, 1, 4)),
    ("axis: -1 num_axes: 0 shape { dim: 1 }", (2, 3), (2, 3, 1)),
])
def test_reshape_rules(fields, shape, expected):
    layer = build_layer(f'name: "r" type: "Reshape" reshape_param {{ {fields} }}', [shape])
    x = torch.arange(float(np.prod(shape)), dtype=torch.float64).reshape(shape)
    (y,) = layer(x)
    assert tuple(y.shape) == expected
    assert torch.equal(y.flatten(), x.flatten())


def test_reshape_count_mismatch_is_named():
    with pytest.raises(DLPError, match=r"layer 'r' \(Reshape\).*changes the element count"):
        build_layer('name: "r" type: "Reshape" reshape_param { shape { dim: 5 } }', [(2, 3)])


def test_softmax_axis(rng):
    x = rng.standard_normal((2, 3, 4))
    layer = build_layer('name: "s" type: "Softmax" softmax_param { axis: 2 }', [x.shape])
    e = np.exp(x - x.max(axis=2, keepdims=True))
    np.testing.assert_allclose(layer(t(x))[0].numpy(), e / e.sum(axis=2, keepdims=True))
    weights = t(x.copy())  # not sharing memory with the input gradcheck perturbs
    check_gradients(lambda v: layer(v)[0] * weights, t(x).requires_grad_())


def test_argmax_without_and_with_axis():
    x = t([[[[1.0]], [[5.0]], [[3.0]]], [[[7.0]], [[2.0]], [[0.0]]]])  # (2, 3, 1, 1)
    layer = build_layer('name: "a" type: "ArgMax" argmax_param { out_max_val: true top_k: 2 }',
                        [tuple(x.shape)])
    (y,) = layer(x)
    assert tuple(y.shape) == (2, 2, 2, 1)
    assert y[0, 0, :, 0].tolist() == [1.0, 2.0] and y[0, 1, :, 0].tolist() == [5.0, 3.0]
    along = build_layer('name: "a" type: "ArgMax" argmax_param { axis: 1 }', [tuple(x.shape)])
    assert along(x)[0].flatten().tolist() == [1.0, 0.0]
    # Caffe's ArgMaxLayer has no backward: nothing flows through it.
    assert not along(x.clone().requires_grad_())[0].requires_grad


def test_silence_consumes_everything():
    layer = build_layer('name: "s" type: "Silence"', [(2,), (3, 4)])
    assert layer(torch.zeros(2), torch.zeros(3, 4)) == ()


def test_mvn_reduction_tile_embed(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    mvn = build_layer('name: "m" type: "MVN"', [x.shape])
    centred = x - x.mean(axis=(2, 3), keepdims=True)
    expected = centred / (np.sqrt((centred ** 2).mean(axis=(2, 3), keepdims=True)) + 1e-9)
    np.testing.assert_allclose(mvn(t(x))[0].detach().numpy(), expected, rtol=1e-6)
    weights = t(x.copy())  # gradcheck perturbs the input, which shares x's memory
    check_gradients(lambda v: mvn(v)[0] * weights, t(x).requires_grad_())
    across = build_layer('name: "m" type: "MVN" mvn_param { across_channels: true '
                         'normalize_variance: false }', [x.shape])
    np.testing.assert_allclose(across(t(x))[0].numpy(),
                               x - x.mean(axis=(1, 2, 3), keepdims=True), atol=1e-12)
    for op, fn in (("SUM", np.sum), ("ASUM", lambda a, axis: np.abs(a).sum(axis=axis)),
                   ("SUMSQ", lambda a, axis: (a ** 2).sum(axis=axis)), ("MEAN", np.mean)):
        red = build_layer(f'name: "r" type: "Reduction" reduction_param {{ operation: {op} '
                          f'axis: 2 coeff: 2 }}', [x.shape])
        np.testing.assert_allclose(red(t(x))[0].numpy(), 2 * fn(x, axis=(2, 3)), rtol=1e-6)
    tile = build_layer('name: "t" type: "Tile" tile_param { axis: 1 tiles: 3 }', [x.shape])
    np.testing.assert_array_equal(tile(t(x))[0].numpy(), np.tile(x, (1, 3, 1, 1)))
    embed = build_layer('name: "e" type: "Embed" embed_param { num_output: 4 input_dim: 5 '
                        'weight_filler { type: "gaussian" } bias_filler { type: "constant" '
                        'value: 1 } }', [(2, 3)])
    idx = t([[0, 4, 2], [1, 1, 3]])
    (y,) = embed(idx)
    np.testing.assert_allclose(y.detach().numpy(),
                               embed.weight.detach().numpy()[[[0, 4, 2], [1, 1, 3]]] + 1)
    with pytest.raises(DLPError, match=r"indices must be in 0..4, found 7"):
        embed(t([[7, 0, 0], [0, 0, 0]]))


def test_inner_product_parameter_gradients_are_caffes_formulas(rng):
    x = rng.standard_normal((3, 2, 2))
    layer = build_layer('name: "ip" type: "InnerProduct" inner_product_param { num_output: 4 '
                        'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }',
                        [x.shape])
    top_diff = rng.standard_normal((3, 4))
    (y,) = layer(t(x))
    y.backward(t(top_diff))
    flat = x.reshape(3, 4)
    # Caffe's Backward_cpu: weight_diff = top_diff^T * bottom, bias_diff = sum over rows.
    np.testing.assert_allclose(layer.weight.grad.numpy(), top_diff.T @ flat, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.numpy(), top_diff.sum(axis=0), atol=1e-12)
    check_all_gradients(layer, t(x))
    transposed = build_layer('name: "ip" type: "InnerProduct" inner_product_param { '
                             'num_output: 4 transpose: true weight_filler { type: "gaussian" } '
                             '}', [x.shape])
    check_all_gradients(transposed, t(x))


def test_copy_layers_pass_gradients_through(rng):
    a, b = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 1, 2))
    concat = build_layer('name: "c" type: "Concat" concat_param { axis: -2 }', [a.shape, b.shape])
    check_all_gradients(concat, t(a), t(b))
    flat = build_layer('name: "f" type: "Flatten"', [(2, 3, 2)])
    check_all_gradients(flat, t(a))
    reshape = build_layer('name: "r" type: "Reshape" reshape_param { shape { dim: -1 dim: 2 } '
                          '}', [(2, 3, 2)])
    check_all_gradients(reshape, t(a))
    crop = build_layer('name: "c" type: "Crop" crop_param { axis: 1 offset: 1 offset: 0 }',
                       [(2, 3, 2), (2, 1, 2)])
    check_all_gradients(crop, t(a), t(b), differentiable=[0])


def test_split_copies_add_their_gradients(rng):
    # Caffe's SplitLayer::Backward sums the top diffs into the bottom diff.
    layers = ('layer { name: "split" type: "Split" bottom: "x" top: "x1" top: "x2" }'
              'layer { name: "ip1" type: "InnerProduct" bottom: "x1" top: "y1" '
              'inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }'
              'layer { name: "ip2" type: "InnerProduct" bottom: "x2" top: "y2" '
              'inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }')
    net = net_with_inputs(layers, {"x": (3, 4)}, seed=5)
    x = torch.from_numpy(rng.standard_normal((3, 4)).astype(np.float32)).requires_grad_()
    blobs = net({"x": x})
    (blobs["y1"].sum() + 2 * blobs["y2"].sum()).backward()
    w1 = net.layer("ip1").weight.detach().numpy()
    w2 = net.layer("ip2").weight.detach().numpy()
    expected = np.ones((3, 2)) @ w1 + 2 * np.ones((3, 2)) @ w2
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5)


def numpy_caffe_eltwise_max(bottoms):
    """EltwiseLayer::Forward_cpu MAX: the value and the index of the bottom chosen."""
    a, b = bottoms[0], bottoms[1]
    top = np.where(a > b, a, b)
    mask = np.where(a > b, 0, 1)
    for index, x in enumerate(bottoms[2:], start=2):
        mask = np.where(x > top, index, mask)
        top = np.where(x > top, x, top)
    return top, mask


def test_eltwise_max_sends_each_gradient_to_one_bottom_as_caffe(rng):
    # Integer values make ties common (as between the zeros of two ReLUs).
    bottoms = [rng.integers(0, 3, (2, 3, 4)).astype(np.float64) for _ in range(3)]
    layer = build_layer('name: "e" type: "Eltwise" eltwise_param { operation: MAX }',
                        [x.shape for x in bottoms])
    inputs = [t(x).requires_grad_() for x in bottoms]
    (y,) = layer(*inputs)
    top_diff = rng.standard_normal(y.shape)
    y.backward(t(top_diff))
    expected_top, mask = numpy_caffe_eltwise_max(bottoms)
    np.testing.assert_array_equal(y.detach().numpy(), expected_top)
    for index, x in enumerate(inputs):
        np.testing.assert_array_equal(x.grad.numpy(), np.where(mask == index, top_diff, 0))
    assert (bottoms[0] == bottoms[1]).any()  # the case that distinguishes Caffe's rule


def test_reduction_tile_and_embed_gradients(rng):
    x = rng.standard_normal((2, 3, 2))
    for op in ("SUM", "ASUM", "SUMSQ", "MEAN"):
        layer = build_layer(f'name: "r" type: "Reduction" reduction_param {{ operation: {op} '
                            f'axis: 1 coeff: -0.5 }}', [x.shape])
        check_all_gradients(layer, t(x))
    tile = build_layer('name: "t" type: "Tile" tile_param { axis: -1 tiles: 2 }', [x.shape])
    check_all_gradients(tile, t(x))
    embed = build_layer('name: "e" type: "Embed" embed_param { num_output: 3 input_dim: 4 '
                        'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }',
                        [(2, 2)])
    index = t([[0, 3], [3, 1]])
    check_all_gradients(embed, index, differentiable=[])
    (y,) = embed(index)
    y.backward(torch.ones_like(y))
    # Each row of the table receives one gradient per occurrence of its index.
    np.testing.assert_allclose(embed.weight.grad.numpy()[:, 0], [1, 1, 0, 2])
