"""Caffe semantics through the whole Solver: iter_size, test_compute_loss, signals, devices."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from dlp.engine.solver.command_train import select_device
from dlp.engine.solver.logwriter import LogWriter
from dlp.engine.solver.signals import SignalHandler
from dlp.engine.solver.solver import Solver
from dlp.errors import InputError
from dlp.net.prototxt import read_solver
from dlp.train.log import LogParser, TestLoss, TestOutput, TrainLoss


def solve(solver_path: Path, **fields) -> tuple[list, Solver]:
    param = read_solver(solver_path)
    for name, value in fields.items():
        setattr(param, name, value)
    stream = io.StringIO()
    solver = Solver(param, solver_dir=solver_path.parent, solver_path=solver_path,
                    log=LogWriter(stream))
    try:
        solver.solve()
    finally:
        solver.close()
    return LogParser().feed_lines(stream.getvalue().splitlines()), solver


def test_iter_size_accumulates_like_a_bigger_batch(task: Path) -> None:
    # batch 4 x iter_size 2 reads the same 8 records per iteration as batch 8 x 1, and
    # Caffe divides the accumulated gradient by iter_size: the runs must agree.
    net = task.parent / "train_val.prototxt"
    text = net.read_text()
    (task.parent / "b8.prototxt").write_text(text.replace(
        'source: "train_db/features" batch_size: 4', 'source: "train_db/features" batch_size: 8'
    ).replace('source: "train_db/labels" batch_size: 4', 'source: "train_db/labels" batch_size: 8'))
    fields = dict(max_iter=4, display=1, test_interval=100, test_initialization=False,
                  snapshot=0, snapshot_after_train=False)
    small, small_solver = solve(task, iter_size=2, **fields)
    big, big_solver = solve(task, net="b8.prototxt", **fields)
    small_losses = [r.loss for r in small if isinstance(r, TrainLoss)]
    big_losses = [r.loss for r in big if isinstance(r, TrainLoss)]
    assert len(small_losses) == 5
    # (the 5th is Caffe's one-forward loss after training: one batch of 4 against 8)
    assert small_losses[:4] == pytest.approx(big_losses[:4], rel=1e-5)
    for a, b in zip(small_solver.params, big_solver.params, strict=True):
        assert torch.allclose(a.tensor, b.tensor, atol=1e-6)


def test_test_compute_loss_prints_the_test_loss(task: Path) -> None:
    records, _ = solve(task, max_iter=1, test_compute_loss=True, snapshot_after_train=False)
    losses = [r for r in records if isinstance(r, TestLoss)]
    assert [r.iteration for r in losses] == [0]
    assert 0 < losses[0].loss < 10


def test_clip_gradients_is_logged_as_caffe_does(task: Path) -> None:
    stream = io.StringIO()
    param = read_solver(task)
    param.max_iter, param.clip_gradients, param.display = 1, 1e-6, 1
    param.snapshot_after_train = False
    solver = Solver(param, solver_dir=task.parent, log=LogWriter(stream))
    try:
        solver.solve()
    finally:
        solver.close()
    assert "Gradient clipping: scaling down gradients (L2 norm " in stream.getvalue()


def test_signal_handler_routes_signals_to_requests() -> None:
    seen: list[str] = []
    with SignalHandler(seen.append, sigint_effect="stop", sighup_effect="snapshot"):
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
    assert seen == ["snapshot", "stop"]
    with SignalHandler(seen.append, sigint_effect="none"):
        os.kill(os.getpid(), signal.SIGINT)  # ignored: no KeyboardInterrupt either
    assert seen == ["snapshot", "stop"]
    with pytest.raises(InputError, match="--sigint_effect: 'pause'"):
        SignalHandler(seen.append, sigint_effect="pause")


def test_snapshot_request_keeps_training(task: Path) -> None:
    param = read_solver(task)
    param.max_iter, param.snapshot, param.snapshot_after_train = 3, 0, False
    param.test_initialization = False
    solver = Solver(param, solver_dir=task.parent, log=LogWriter(None))
    try:
        solver.request("snapshot")
        result = solver.solve()
    finally:
        solver.close()
    assert result.iteration == 3 and result.reason == "max_iter"
    assert [f.caffemodel.name for f in result.snapshots] == ["tiny_iter_1.caffemodel"]


def test_device_selection_follows_caffe_and_explains_missing_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("this check is about machines without CUDA")
    warnings: list[str] = []
    log = SimpleNamespace(warning=warnings.append)
    from dlp.proto import caffe_pb2

    param = caffe_pb2.SolverParameter()
    assert select_device(param, None, log) == "cpu" and warnings == []  # default GPU mode
    param.solver_mode = caffe_pb2.SolverParameter.GPU
    assert select_device(param, None, log) == "cpu"
    assert "no CUDA device" in warnings[0]
    with pytest.raises(InputError, match="--gpu 0: no CUDA device"):
        select_device(param, "0", log)


def test_two_test_nets_from_train_net_and_test_net_fields(task: Path) -> None:
    text = task.read_text().replace("net: ", "train_net: ").replace(
        "test_iter: 2\n", "test_iter: 2\ntest_iter: 1\n")
    task.write_text(text + 'test_net: "train_val.prototxt"\ntest_net: "train_val.prototxt"\n')
    records, solver = solve(task, max_iter=1, snapshot_after_train=False)
    assert len(solver.test_nets) == 2
    tests = [r for r in records if isinstance(r, TestOutput) and r.name == "accuracy"]
    assert [(r.iteration, r.test_net) for r in tests] == [(0, 0), (0, 1)]


def test_solver_weights_field_initialises_the_net(task: Path) -> None:
    _, first = solve(task, max_iter=2, test_initialization=False)
    conv1 = first.net.layer("conv1").weight.detach().clone()
    task.write_text(task.read_text() + 'weights: "snapshots/tiny_iter_2.caffemodel"\n'
                    "debug_info: true\n")
    param = read_solver(task)
    stream = io.StringIO()
    solver = Solver(param, solver_dir=task.parent, solver_path=task, log=LogWriter(stream))
    try:
        assert torch.equal(solver.net.layer("conv1").weight.detach(), conv1)
    finally:
        solver.close()
    text = stream.getvalue()
    assert "Copying weights from " in text and "copied 4 layer(s)" in text
    assert "field debug_info is not supported by DLP's engine; ignored" in text
    task.write_text(task.read_text().replace("tiny_iter_2.caffemodel", "missing.caffemodel"))
    with pytest.raises(InputError, match=r"field weights: 'snapshots/missing\.caffemodel' not"):
        Solver(read_solver(task), solver_dir=task.parent, solver_path=task,
               log=LogWriter(None))
