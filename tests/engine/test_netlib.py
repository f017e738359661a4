"""Every netlib net builds and runs forward + backward in the engine, and the engine's
actual blob shapes equal dlp.net.shapes.infer_shapes for the same net (small inputs;
FCN-8s has its own file because of its 134 M parameters)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlp.data.lmdb_io import DatumWriter
from dlp.engine.net import Net
from dlp.net.prototxt import read_net
from dlp.net.shapes import infer_shapes
from tests.engine.netlib_support import NETLIB, random_inputs, with_inputs

SMALL_SIZES = {"lenet": 28, "alexnet": 67, "fcn-alexnet": 32, "sunnybrook-fcn": 32,
               "unet2d": 32}


def run_and_compare(name: str, phase: str, size: int, batch: int = 1) -> dict:
    net_param, shapes = with_inputs(name, phase, size, batch)
    net = Net(net_param, phase, seed=0)
    inputs = random_inputs(name, shapes)
    if phase == "TRAIN":
        blobs = net(inputs)
        loss = net.loss(blobs)
        loss.backward()
        assert math.isfinite(loss.item()) and loss.item() > 0
        trained = [p for p in net.learnable_params() if p.lr_mult > 0]
        assert trained and all(p.tensor.grad is not None for p in trained)
    else:
        with torch.no_grad():
            blobs = net(inputs)
    inferred = infer_shapes(net_param, phase)
    errors = [(layer.name, layer.error) for layer in inferred.layers if layer.error]
    assert not errors
    actual = {blob: tuple(tensor.shape) for blob, tensor in blobs.items()}
    assert actual == {blob: tuple(shape) for blob, shape in inferred.blobs.items()}
    return blobs


@pytest.mark.parametrize("name", sorted(SMALL_SIZES))
def test_netlib_net_trains_and_matches_shape_inference(name):
    run_and_compare(name, "TRAIN", SMALL_SIZES[name])


@pytest.mark.parametrize("name", ["lenet", "sunnybrook-fcn", "unet2d"])
def test_netlib_net_test_phase_outputs(name):
    blobs = run_and_compare(name, "TEST", SMALL_SIZES[name], batch=2)
    assert "accuracy" in blobs or any(k.startswith("acc") for k in blobs)


def test_unet_trains_from_a_digits_lmdb_with_paired_augmentation(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train_db", "val_db"):
        with DatumWriter(tmp_path / split / "features") as features, \
                DatumWriter(tmp_path / split / "labels") as labels:
            for i in range(5):
                mask = np.zeros((1, 32, 32), np.uint8)
                mask[0, 8 + i:20 + i, 6:22] = 1
                image = (mask * 150 + rng.integers(0, 60, mask.shape)).astype(np.uint8)
                features.put(i, image)
                labels.put(i, mask)
    net = Net(read_net(NETLIB / "unet2d" / "train_val.prototxt"), "TRAIN", seed=0,
              root=tmp_path)
    try:
        assert net.blob_shapes["data"][1:] == (1, 32, 32)
        optimizer = torch.optim.SGD([p.tensor for p in net.learnable_params()], lr=0.05,
                                    momentum=0.9)
        for _ in range(2):
            blobs = net()
            assert set(torch.unique(blobs["label"]).tolist()) <= {0.0, 1.0}
            assert float(blobs["data"].max()) <= 1.0  # transform_param scale 1/256
            loss = net.loss(blobs)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert math.isfinite(loss.item())
    finally:
        net.close()
