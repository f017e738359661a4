"""Caffe's fillers: distributions, Caffe's fan-in/fan-out and the bilinear kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlp.engine.fillers import FillerError, fill
from dlp.net.prototxt import parse_text
from dlp.proto import caffe_pb2


def filler(text: str) -> caffe_pb2.FillerParameter:
    return parse_text(text, caffe_pb2.FillerParameter)


def filled(text: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    blob = torch.empty(shape)
    generator = torch.Generator()
    generator.manual_seed(seed)
    fill(blob, filler(text), generator)
    return blob.numpy()


def test_constant_uniform_gaussian():
    assert np.all(filled('type: "constant" value: 2.5', (3, 4)) == 2.5)
    u = filled('type: "uniform" min: -2 max: 3', (200, 50))
    assert u.min() >= -2 and u.max() <= 3 and abs(u.mean() - 0.5) < 0.05
    g = filled('type: "gaussian" mean: 1 std: 0.5', (200, 50))
    assert abs(g.mean() - 1) < 0.02 and abs(g.std() - 0.5) < 0.02


def test_sparse_gaussian_keeps_sparse_over_num_outputs():
    g = filled('type: "gaussian" std: 1 sparse: 5', (20, 1000))
    assert abs((g != 0).mean() - 5 / 20) < 0.02


def test_xavier_and_msra_use_caffes_fans():
    shape = (64, 32, 3, 3)  # fan_in = 32*9 = 288, fan_out = 64*9 = 576
    x = filled('type: "xavier"', shape)
    assert np.abs(x).max() <= math.sqrt(3 / 288) + 1e-7
    assert np.abs(x).max() > 0.95 * math.sqrt(3 / 288)
    avg = filled('type: "xavier" variance_norm: AVERAGE', shape)
    assert np.abs(avg).max() <= math.sqrt(3 / 432) + 1e-7
    m = filled('type: "msra" variance_norm: FAN_OUT', shape)
    assert abs(m.std() - math.sqrt(2 / 576)) < 0.003
    m_in = filled('type: "msra"', shape)
    assert abs(m_in.std() - math.sqrt(2 / 288)) < 0.004


def test_bilinear_kernel_matches_caffes_formula():
    k = filled('type: "bilinear"', (2, 1, 4, 4))
    f = math.ceil(4 / 2)
    c = (4 - 1) / (2 * f)
    axis = 1 - np.abs(np.arange(4) / f - c)
    np.testing.assert_allclose(k[0, 0], np.outer(axis, axis), rtol=1e-6)
    np.testing.assert_allclose(k[1, 0], k[0, 0])
    odd = filled('type: "bilinear"', (1, 1, 3, 3))
    assert odd[0, 0, 1, 1] == pytest.approx(1.0)


def test_positive_unitball_rows_sum_to_one():
    b = filled('type: "positive_unitball"', (5, 3, 2))
    assert np.all(b >= 0)
    np.testing.assert_allclose(b.reshape(5, -1).sum(axis=1), 1.0, rtol=1e-6)


def test_seeded_fill_is_reproducible_and_unknown_type_is_named():
    assert np.array_equal(filled('type: "gaussian"', (4, 4), 7), filled('type: "gaussian"',
                                                                       (4, 4), 7))
    with pytest.raises(FillerError, match=r"unknown filler type 'gauss'.*gaussian"):
        filled('type: "gauss"', (2,))
