"""Neuron layers against numpy formulas, gradients against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engine.conftest import build_layer, check_all_gradients, check_gradients

CASES = [
    ('type: "ReLU"', lambda x: np.maximum(x, 0)),
    ('type: "ReLU" relu_param { negative_slope: 0.1 }', lambda x: np.where(x > 0, x, 0.1 * x)),
    ('type: "ELU" elu_param { alpha: 0.5 }', lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    ('type: "Sigmoid"', lambda x: 1 / (1 + np.exp(-x))),
    ('type: "TanH"', np.tanh),
    ('type: "AbsVal"', np.abs),
    ('type: "BNLL"', lambda x: np.log1p(np.exp(x))),
    ('type: "Power" power_param { power: 2 scale: 0.5 shift: 3 }', lambda x: (3 + 0.5 * x) ** 2),
    ('type: "Power" power_param { scale: -2 shift: 1 }', lambda x: 1 - 2 * x),
    ('type: "Exp"', np.exp),
    ('type: "Exp" exp_param { base: 2 scale: 0.5 shift: 1 }', lambda x: 2 ** (1 + 0.5 * x)),
    ('type: "Log" log_param { shift: 5 scale: 1 }', lambda x: np.log(5 + x)),
    ('type: "Log" log_param { base: 10 shift: 4 scale: 2 }', lambda x: np.log10(4 + 2 * x)),
    ('type: "Swish" swish_param { beta: 2 }', lambda x: x / (1 + np.exp(-2 * x))),
    ('type: "Clip" clip_param { min: -0.5 max: 0.5 }', lambda x: np.clip(x, -0.5, 0.5)),
]


@pytest.mark.parametrize(("fields", "formula"), CASES)
def test_neuron_forward_and_gradient(fields, formula, rng):
    layer = build_layer(f'name: "n" {fields}', [(2, 3, 4)])
    # Keep away from kinks (0, clip bounds) where finite differences are undefined.
    x = rng.uniform(0.1, 1.5, (2, 3, 4)) * rng.choice([-1, 1], (2, 3, 4))
    (y,) = layer(torch.from_numpy(x))
    np.testing.assert_allclose(y.detach().numpy(), formula(x), rtol=1e-6,
                               atol=1e-9)  # parameters are float32 fields
    check_gradients(lambda t: layer(t)[0], torch.from_numpy(x).requires_grad_())


def test_prelu_per_channel_and_shared(rng):
    layer = build_layer('name: "p" type: "PReLU"', [(2, 3, 4, 4)])
    np.testing.assert_allclose(layer.weight.detach().numpy(), 0.25)  # Caffe's default filler
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
    x = rng.standard_normal((2, 3, 4, 4))
    (y,) = layer(torch.from_numpy(x))
    slope = np.array([0.1, 0.2, 0.3]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(y.detach().numpy(), np.where(x > 0, x, slope * x))
    check_gradients(lambda t, w: torch.where(t > 0, t, t * w.view(1, 3, 1, 1)),
                    torch.from_numpy(x).requires_grad_(), layer.weight.detach().requires_grad_())
    y.sum().backward()
    expected = np.where(x > 0, 0, x).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(layer.weight.grad.numpy(), expected, rtol=1e-12)
    shared = build_layer('name: "p" type: "PReLU" prelu_param { channel_shared: true '
                         'filler { type: "constant" value: 0.5 } }', [(1, 3, 2, 2)])
    assert tuple(shared.weight.shape) == (1,) and shared.weight.item() == 0.5


def test_dropout_is_caffes_inverted_dropout(rng):
    train = build_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: 0.25 }',
                        [(4, 1000)])
    x = torch.ones(4, 1000, dtype=torch.float64)
    (y,) = train(x)
    kept = y[y != 0]
    # Survivors are scaled by 1 / (1 - ratio); about 75 % survive.
    np.testing.assert_allclose(kept.numpy(), 1 / 0.75)
    assert 0.7 < kept.numel() / x.numel() < 0.8
    test = build_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: 0.25 }',
                       [(4, 1000)], phase="TEST")
    assert torch.equal(test(x)[0], x)
    # Backward is Caffe's: top diff times the same mask and scale as the forward.
    values = torch.from_numpy(rng.uniform(1, 2, (4, 1000))).requires_grad_()
    torch.manual_seed(3)
    (y,) = train(values)
    y.backward(torch.full_like(y, 2.0))
    kept = (y != 0).numpy()
    np.testing.assert_allclose(values.grad.numpy(), np.where(kept, 2.0 / 0.75, 0.0))
    test_input = torch.from_numpy(rng.standard_normal((4, 1000))).requires_grad_()
    test(test_input)[0].sum().backward()
    np.testing.assert_array_equal(test_input.grad.numpy(), 1.0)


def test_prelu_gradients_include_its_slopes(rng):
    layer = build_layer('name: "p" type: "PReLU" prelu_param { filler { type: "uniform" '
                        'min: 0.1 max: 0.3 } }', [(2, 3, 2, 2)])
    x = rng.uniform(0.1, 1.0, (2, 3, 2, 2)) * rng.choice([-1, 1], (2, 3, 2, 2))
    check_all_gradients(layer, torch.from_numpy(x))


def test_threshold_outputs_zero_or_one():
    layer = build_layer('name: "t" type: "Threshold" threshold_param { threshold: 0.5 }', [(4,)])
    (y,) = layer(torch.tensor([0.2, 0.5, 0.6, -1.0], dtype=torch.float64))
    assert y.tolist() == [0.0, 0.0, 1.0, 0.0]
    # Caffe's ThresholdLayer has no backward: nothing flows through it.
    assert not layer(torch.ones(4, dtype=torch.float64, requires_grad=True))[0].requires_grad
