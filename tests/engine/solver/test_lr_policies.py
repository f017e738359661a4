"""Each lr policy against Caffe's formula computed by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from dlp.engine.solver.lr_policies import LR_POLICIES, get_policy, learning_rate
from dlp.errors import InputError


def params(policy: str, **fields) -> SimpleNamespace:
    base = dict(base_lr=0.01, gamma=0.1, power=0.75, stepsize=10, stepvalue=[], max_iter=100)
    base.update(fields)
    return SimpleNamespace(lr_policy=policy, **base)


def rates(p: SimpleNamespace, iters: range) -> list[float]:
    step, out = 0, []
    for it in iters:
        rate, step = learning_rate(p, it, step)
        out.append(rate)
    return out


def test_fixed() -> None:
    assert rates(params("fixed"), range(3)) == [0.01, 0.01, 0.01]


def test_step() -> None:
    got = rates(params("step", stepsize=2), range(6))
    assert got == pytest.approx([0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001])


def test_exp() -> None:
    got = rates(params("exp", gamma=0.5), range(4))
    assert got == pytest.approx([0.01, 0.005, 0.0025, 0.00125])


def test_inv() -> None:
    got = rates(params("inv", gamma=1e-4, power=0.75), [0, 10000])
    assert got == pytest.approx([0.01, 0.01 * 2**-0.75])


def test_multistep_counts_steps_and_returns_current_step() -> None:
    p = params("multistep", stepvalue=[2, 4])
    assert rates(p, range(6)) == pytest.approx([0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001])
    # resuming at iteration 5 with the stored current_step continues the same way
    assert learning_rate(p, 5, 2) == (pytest.approx(0.0001), 2)


def test_poly() -> None:
    got = rates(params("poly", power=2.0, max_iter=10), [0, 5, 10])
    assert got == pytest.approx([0.01, 0.0025, 0.0])


def test_sigmoid() -> None:
    got = rates(params("sigmoid", gamma=-0.5, stepsize=4), [0, 4, 8])
    expect = [0.01 / (1 + math.exp(0.5 * (it - 4))) for it in (0, 4, 8)]
    assert got == pytest.approx(expect)


def test_policies_are_a_table_and_unknown_names_list_them() -> None:
    assert set(LR_POLICIES) == {"fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid"}
    with pytest.raises(InputError, match=r"lr_policy: unknown policy 'cosine'.*multistep"):
        get_policy("cosine")
