"""InnerProduct, Crop, Concat, Eltwise, Split, Slice, Flatten, Reshape, Softmax,
ArgMax and Silence against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlp.errors import DLPError
from tests.engine.conftest import build_layer, check_gradients


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
