"""Each update rule against a hand computation of Caffe's formula, over several steps."""

from __future__ import annotations

import math

import pytest
import torch

from dlp.engine.solver.updates import (
    Hyper,
    UpdateParam,
    apply_update,
    clip_gradients,
    make_rule,
)
from dlp.errors import InputError

W0 = [0.5, -1.0, 2.0]
GRADS = [[0.1, -0.2, 0.3], [0.4, 0.0, -0.5], [-0.3, 0.2, 0.1]]


def run_rule(name: str, hyper: Hyper, rate: float = 0.1, lr_mult: float = 1.0,
             decay: float = 0.0, regularization: str = "L2", iter_size: int = 1) -> list[float]:
    w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    params = [UpdateParam(w, lr_mult=lr_mult, decay_mult=1.0)]
    rule = make_rule(name, params, hyper)
    for it, g in enumerate(GRADS):
        w.grad = torch.tensor(g, dtype=torch.float64) * iter_size
        apply_update(params, rule, rate, it, weight_decay=decay,
                     regularization=regularization, iter_size=iter_size)
    return w.detach().tolist()


def hand(step_fn) -> list[float]:
    """Apply ``step_fn(i, w, g, it, state) -> update`` elementwise, Caffe-style w -= update."""
    out = []
    for i, w in enumerate(W0):
        state: dict = {}
        for it, grads in enumerate(GRADS):
            w -= step_fn(w, grads[i], it, state)
        out.append(w)
    return out


def test_sgd_momentum_applies_to_lr_scaled_gradient_with_l2_decay() -> None:
    mom, rate, decay, mult = 0.9, 0.1, 0.01, 2.0

    def step(w, g, it, s):
        s["v"] = mom * s.get("v", 0.0) + rate * mult * (g + decay * w)
        return s["v"]

    got = run_rule("SGD", Hyper(momentum=mom), rate=rate, lr_mult=mult, decay=decay)
    assert got == pytest.approx(hand(step), abs=1e-12)


def test_sgd_first_step_by_hand() -> None:
    # w = 0.5, g = 0.1, rate 0.1, decay 0.01: v = 0.1 * (0.1 + 0.005) = 0.0105
    w = torch.tensor([0.5], dtype=torch.float64)
    w.grad = torch.tensor([0.1], dtype=torch.float64)
    params = [UpdateParam(w)]
    apply_update(params, make_rule("SGD", params, Hyper(momentum=0.9)), 0.1, 0, weight_decay=0.01)
    assert w.item() == pytest.approx(0.5 - 0.0105)


def test_l1_regularization_adds_sign_of_weights() -> None:
    decay = 0.1

    def step(w, g, it, s):
        sign = (w > 0) - (w < 0)
        return 0.1 * (g + decay * sign)

    got = run_rule("SGD", Hyper(), decay=decay, regularization="L1")
    assert got == pytest.approx(hand(step), abs=1e-12)


def test_iter_size_divides_accumulated_gradient() -> None:
    plain = run_rule("SGD", Hyper(momentum=0.5))
    accumulated = run_rule("SGD", Hyper(momentum=0.5), iter_size=4)
    assert accumulated == pytest.approx(plain, abs=1e-12)


def test_nesterov() -> None:
    mom, rate = 0.9, 0.1

    def step(w, g, it, s):
        prev = s.get("v", 0.0)
        s["v"] = mom * prev + rate * g
        return (1 + mom) * s["v"] - mom * prev

    assert run_rule("Nesterov", Hyper(momentum=mom)) == pytest.approx(hand(step), abs=1e-12)


def test_adagrad() -> None:
    delta = 1e-6

    def step(w, g, it, s):
        s["h"] = s.get("h", 0.0) + g * g
        return 0.1 * g / (math.sqrt(s["h"]) + delta)

    assert run_rule("AdaGrad", Hyper(delta=delta)) == pytest.approx(hand(step), abs=1e-12)


def test_rmsprop() -> None:
    decay, delta = 0.9, 1e-6

    def step(w, g, it, s):
        s["h"] = decay * s.get("h", 0.0) + (1 - decay) * g * g
        return 0.1 * g / (math.sqrt(s["h"]) + delta)

    got = run_rule("RMSProp", Hyper(rms_decay=decay, delta=delta))
    assert got == pytest.approx(hand(step), abs=1e-12)


def test_adadelta() -> None:
    mom, delta, rate = 0.95, 1e-6, 1.0

    def step(w, g, it, s):
        s["g2"] = mom * s.get("g2", 0.0) + (1 - mom) * g * g
        dx = g * math.sqrt((s.get("x2", 0.0) + delta) / (s["g2"] + delta))
        s["x2"] = mom * s.get("x2", 0.0) + (1 - mom) * dx * dx
        return rate * dx

    got = run_rule("AdaDelta", Hyper(momentum=mom, delta=delta), rate=rate)
    assert got == pytest.approx(hand(step), abs=1e-12)


def test_adam_folds_bias_correction_into_rate() -> None:
    b1, b2, eps, rate = 0.9, 0.999, 1e-8, 0.01

    def step(w, g, it, s):
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        t = it + 1
        corrected_rate = rate * math.sqrt(1 - b2**t) / (1 - b1**t)
        return corrected_rate * s["m"] / (math.sqrt(s["v"]) + eps)

    got = run_rule("Adam", Hyper(momentum=b1, momentum2=b2, delta=eps), rate=rate)
    assert got == pytest.approx(hand(step), abs=1e-12)


def test_adam_and_adadelta_keep_two_history_sets_in_caffe_order() -> None:
    a = torch.zeros(2, requires_grad=True)
    b = torch.zeros(3, requires_grad=True)
    rule = make_rule("Adam", [UpdateParam(a), UpdateParam(b)], Hyper(momentum=0.9))
    assert [tuple(h.shape) for h in rule.history] == [(2,), (3,), (2,), (3,)]


def test_frozen_param_is_not_updated() -> None:
    assert run_rule("SGD", Hyper(momentum=0.9), lr_mult=0.0) == W0


def test_clip_gradients_scales_global_norm() -> None:
    a = torch.zeros(2)
    b = torch.zeros(1)
    a.grad = torch.tensor([3.0, 0.0])
    b.grad = torch.tensor([4.0])
    params = [UpdateParam(a), UpdateParam(b)]
    assert clip_gradients(params, 10.0) is None
    assert clip_gradients(params, -1) is None
    assert clip_gradients(params, 1.0) == pytest.approx(5.0)
    assert a.grad.tolist() == pytest.approx([0.6, 0.0])
    assert b.grad.tolist() == pytest.approx([0.8])


def test_rules_reject_what_caffe_rejects() -> None:
    w = [UpdateParam(torch.zeros(1))]
    with pytest.raises(InputError, match="AdaGrad"):
        make_rule("AdaGrad", w, Hyper(momentum=0.9))
    with pytest.raises(InputError, match="unknown solver 'Adamax'"):
        make_rule("Adamax", w, Hyper())
    with pytest.raises(InputError, match="regularization_type"):
        apply_update(w, make_rule("SGD", w, Hyper()), 0.1, 0, regularization="L3")
