"""FCN-8s (VGG16, 134 M parameters) builds, trains one step and matches shape
inference; run at a tiny input (pad 100 makes every size valid) to stay fast."""

from __future__ import annotations

import math

import torch

from dlp.engine.net import Net
from dlp.net.shapes import infer_shapes
from tests.engine.netlib_support import random_inputs, with_inputs


def test_fcn8s_forward_backward_and_shapes():
    net_param, shapes = with_inputs("fcn8s", "TRAIN", size=16)
    net = Net(net_param, "TRAIN", seed=0)
    frozen = [p for p in net.learnable_params() if p.lr_mult == 0]
    assert [p.layer for p in frozen] == ["upscore2", "upscore_pool4", "upscore8"]
    blobs = net(random_inputs("fcn8s", shapes))
    loss = net.loss(blobs)
    loss.backward()
    assert math.isfinite(loss.item())
    assert net.layer("fc6").weight.grad is not None
    assert all(p.tensor.grad is None for p in frozen)  # bilinear kernels stay fixed
    assert blobs["score"].shape == (1, 2, 16, 16)  # cropped back to the input at offset 31
    inferred = infer_shapes(net_param, "TRAIN")
    assert {k: tuple(v.shape) for k, v in blobs.items()} == {
        k: tuple(v) for k, v in inferred.blobs.items()}
    with torch.no_grad():
        kernel = net.layer("upscore8").weight[0, 0]
    assert kernel.shape == (16, 16) and kernel.max().item() <= 1.0
