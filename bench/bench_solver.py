"""Solver benchmarks.

1. Solver overhead: a training iteration of ``dlp train``'s Solver (Caffe's update
   rules, display/log lines to a file, loss checks) against a hand-written PyTorch
   loop (``torch.optim.SGD`` with momentum and weight decay) over the same engine
   model reading the same LMDB.  Target ratio <= 1.10.
2. Data never starves the step: the share of the iteration spent waiting inside the
   Data layers (queue wait + hand-over) for 256x256 single-channel batches read from
   LMDB by the background prefetch thread.  Target < 5 %.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import Figure, interleaved_ratio

NET = """
name: "benchfcn"
layer {{ name: "data" type: "Data" top: "data" transform_param {{ scale: 0.00390625 }}
  data_param {{ source: "{root}/train_db/features" batch_size: {batch} backend: LMDB }} }}
layer {{ name: "label" type: "Data" top: "label"
  data_param {{ source: "{root}/train_db/labels" batch_size: {batch} backend: LMDB }} }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param {{ num_output: 16 kernel_size: 3 pad: 1 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param {{ num_output: 32 kernel_size: 3 pad: 1 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }}
layer {{ name: "score" type: "Convolution" bottom: "conv2" top: "score"
  convolution_param {{ num_output: 2 kernel_size: 1 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "upscore" type: "Deconvolution" bottom: "score" top: "upscore"
  param {{ lr_mult: 0 }} convolution_param {{ num_output: 2 group: 2 kernel_size: 4 stride: 2
  pad: 1 bias_term: false weight_filler {{ type: "bilinear" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "upscore" bottom: "label" top: "loss" }}
"""

SOLVER = """
net_param {{ {net} }}
base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005 lr_policy: "fixed"
display: 20 max_iter: 100000 snapshot: 0 random_seed: 1 solver_mode: CPU
snapshot_prefix: "{root}/snap"
"""


def _write_lmdb(root: Path, count: int, size: int) -> None:
    from dlp.data.lmdb_io import DatumWriter

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    with DatumWriter(root / "features") as features, DatumWriter(root / "labels") as labels:
        for _ in range(count):
            cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
            r = rng.uniform(size * 0.1, size * 0.25)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            image = np.clip(rng.normal(60, 25, (size, size)) + mask * 110, 0, 255)
            features.append(image.astype(np.uint8)[None])
            labels.append(mask.astype(np.uint8)[None])


def _solver(root: Path, batch: int):
    from dlp.engine.solver.logwriter import LogWriter
    from dlp.engine.solver.solver import Solver
    from dlp.net.prototxt import parse_solver_text

    net = NET.format(root=root, batch=batch)
    param = parse_solver_text(SOLVER.format(net=net, root=root), "bench_solver.prototxt")
    return Solver(param, solver_dir=root, cwd=root, log=LogWriter(None, root / "train.log"))


def _hand_loop(root: Path, batch: int):
    """The reference: the same engine net and LMDB feed, a plain torch.optim loop."""
    from dlp.engine.net import Net
    from dlp.net.prototxt import parse_net_text

    net = Net(parse_net_text(NET.format(root=root, batch=batch), "bench.prototxt"), "TRAIN",
              seed=1)
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=0.0005)

    def step(iters: int) -> None:
        for _ in range(iters):
            optimizer.zero_grad(set_to_none=True)
            loss = net.loss(net())
            loss.backward()
            optimizer.step()

    return net, step


def solver_overhead(root: Path, iters: int = 30) -> Figure:
    solver = _solver(root, batch=4)
    net, hand_step = _hand_loop(root, batch=4)
    try:
        ratio, t_solver, t_hand = interleaved_ratio(
            lambda: solver.step(iters), lambda: hand_step(iters), repeats=7
        )
    finally:
        solver.close()
        net.close()
    return Figure(
        "solver iteration / hand-written torch loop", ratio, 1.10, "<=",
        f"{t_solver / iters * 1000:.1f} ms vs {t_hand / iters * 1000:.1f} ms per iteration, "
        "64x64 batch 4, SGD momentum + weight decay",
    )


def data_wait_share(root: Path, iters: int = 30) -> Figure:
    solver = _solver(root, batch=4)
    waited = 0.0
    starts: dict[int, float] = {}
    data_layers = [m for m in solver.net.modules() if getattr(m, "type_name", "") == "Data"]

    def before(module, inputs) -> None:
        starts[id(module)] = time.perf_counter()

    def after(module, inputs, outputs) -> None:
        nonlocal waited
        waited += time.perf_counter() - starts[id(module)]

    handles = [h for m in data_layers for h in (m.register_forward_pre_hook(before),
                                                 m.register_forward_hook(after))]
    try:
        solver.step(5)  # warm-up: the prefetch thread fills its queue
        waited = 0.0
        start = time.perf_counter()
        solver.step(iters)
        total = time.perf_counter() - start
    finally:
        for handle in handles:
            handle.remove()
        solver.close()
    return Figure(
        "data wait / iteration time (256x256x1)", waited / total, 0.05, "<=",
        f"{waited / iters * 1000:.2f} ms waiting of {total / iters * 1000:.1f} ms per "
        "iteration, batch 4, prefetch thread",
    )


def run() -> list[Figure]:
    # One intra-op thread for both sides: on this shared 2-core machine two OpenMP
    # threads spin against the other processes and the timings become mostly noise.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _figures()
    finally:
        torch.set_num_threads(threads)


def _figures() -> list[Figure]:
    figures = []
    with tempfile.TemporaryDirectory(prefix="dlp-bench-solver-") as tmp:
        small = Path(tmp) / "small"
        _write_lmdb(small / "train_db", 64, 64)
        figures.append(solver_overhead(small))
        large = Path(tmp) / "large"
        _write_lmdb(large / "train_db", 32, 256)
        figures.append(data_wait_share(large))
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
