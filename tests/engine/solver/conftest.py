"""A tiny segmentation task for solver tests: bright ellipses on noise, in DIGITS LMDBs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SIZE = 32

TINY_FCN = """
name: "tinyfcn"
layer { name: "data" type: "Data" top: "data" include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  data_param { source: "train_db/features" batch_size: 4 backend: LMDB } }
layer { name: "label" type: "Data" top: "label" include { phase: TRAIN }
  data_param { source: "train_db/labels" batch_size: 4 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" include { phase: TEST }
  transform_param { scale: 0.00390625 }
  data_param { source: "val_db/features" batch_size: 4 backend: LMDB } }
layer { name: "label" type: "Data" top: "label" include { phase: TEST }
  data_param { source: "val_db/labels" batch_size: 4 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 16 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "SCORE" type: "Convolution" bottom: "conv2" top: "score"
  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "xavier" } } }
layer { name: "upscore" type: "Deconvolution" bottom: "score" top: "upscore" param { lr_mult: 0 }
  convolution_param { num_output: 2 group: 2 kernel_size: 4 stride: 2 pad: 1 bias_term: false
    weight_filler { type: "bilinear" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "upscore" bottom: "label" top: "loss" }
layer { name: "dice" type: "Dice" bottom: "upscore" bottom: "label" top: "dice"
  top: "dice_per_class" include { phase: TEST } }
layer { name: "accuracy" type: "Accuracy" bottom: "upscore" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""

SOLVER = """
net: "train_val.prototxt"
test_iter: 2
test_interval: {test_interval}
base_lr: {base_lr}
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
display: {display}
max_iter: {max_iter}
snapshot: {snapshot}
snapshot_prefix: "snapshots/tiny"
random_seed: 7
solver_mode: CPU
{extra}
"""


def ellipse_sample(rng: np.random.Generator, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A (1, H, W) uint8 image (bright ellipse on noise) and its (1, H, W) 0/1 label."""
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
    ry, rx = rng.uniform(size * 0.12, size * 0.3, 2)
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    image = rng.normal(60, 25, (size, size)) + mask * 110
    return (
        np.clip(image, 0, 255).astype(np.uint8)[None],
        mask.astype(np.uint8)[None],
    )


def write_split(folder: Path, count: int, seed: int) -> None:
    from dlp.data.lmdb_io import DatumWriter

    rng = np.random.default_rng(seed)
    samples = [ellipse_sample(rng) for _ in range(count)]
    with DatumWriter(folder / "features") as features, DatumWriter(folder / "labels") as labels:
        for image, label in samples:
            features.append(image)
            labels.append(label)


def make_task(root: Path, *, max_iter: int = 40, snapshot: int = 20, test_interval: int = 20,
              display: int = 10, base_lr: float = 0.05, extra: str = "",
              train_count: int = 24, net_text: str = TINY_FCN) -> Path:
    """Write LMDBs, ``train_val.prototxt`` and ``solver.prototxt`` under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    write_split(root / "train_db", train_count, seed=1)
    write_split(root / "val_db", 8, seed=2)
    (root / "snapshots").mkdir(exist_ok=True)
    (root / "train_val.prototxt").write_text(net_text)
    solver = root / "solver.prototxt"
    solver.write_text(SOLVER.format(max_iter=max_iter, snapshot=snapshot,
                                    test_interval=test_interval, display=display,
                                    base_lr=base_lr, extra=extra))
    return solver


@pytest.fixture
def task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A task folder that is also the current directory (Caffe resolves against CWD)."""
    solver = make_task(tmp_path / "task")
    monkeypatch.chdir(solver.parent)
    return solver


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on this shared 2-core machine, two OpenMP threads spinning
    against other processes made these tiny convolutions ~30x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
