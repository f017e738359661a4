"""Run folders: creation, snapshots with metrics, best snapshot, log following, lr preview."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dlp.errors import InputError
from dlp.net.prototxt import parse_net_text, parse_solver_text, read_net, read_solver
from dlp.train.runs import (
    LogFollower,
    Run,
    RunError,
    caffe_arguments,
    create_run,
    delete_run,
    list_runs,
    lr_schedule,
    process_alive,
    train_arguments,
)

NET = """
name: "n"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8
  dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "score"
  convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "dice" type: "Dice" bottom: "score" bottom: "score" top: "dice"
  include { phase: TEST } }
"""

SOLVER = """
net: "somewhere/train_val.prototxt" base_lr: 0.01 lr_policy: "fixed" max_iter: 100
snapshot_prefix: "elsewhere/x" best_metric: "dice" best_mode: "max" keep_last_snapshots: 2
"""

LOG = """\
I1123 10:00:00.000001  7 solver.cpp:362] Iteration 0, Testing net (#0)
I1123 10:00:00.000002  7 solver.cpp:429]     Test net output #0: dice = 0.2
I1123 10:00:00.000003  7 solver.cpp:362] Iteration 50, Testing net (#0)
I1123 10:00:00.000004  7 solver.cpp:429]     Test net output #0: dice = 0.8
I1123 10:00:00.000005  7 solver.cpp:362] Iteration 100, Testing net (#0)
I1123 10:00:00.000006  7 solver.cpp:429]     Test net output #0: dice = 0.6
"""


def _run(tmp_path, engine="builtin"):
    net = parse_net_text(NET, "net")
    solver = parse_solver_text(SOLVER, "solver")
    return create_run(tmp_path / "runs" / "run-1", net, solver, engine=engine,
                      weights=["/w/a.caffemodel"])


def test_create_run_writes_net_solver_deploy_and_metadata(tmp_path):
    run = _run(tmp_path)
    solver = read_solver(run.solver_path)
    assert solver.net == "train_val.prototxt"
    assert solver.snapshot_prefix == "snapshots/snapshot"
    assert solver.best_metric == "dice" and solver.keep_last_snapshots == 2
    assert run.net_path.is_file() and run.deploy_path.is_file() and run.snapshot_dir.is_dir()
    info = Run(run.path).info
    assert info["status"] == "created" and info["max_iter"] == 100
    assert info["best_metric"] == "dice" and info["weights"] == ["/w/a.caffemodel"]
    assert train_arguments(run) == ["train", "--solver", "solver.prototxt", "--log",
                                    "train.log", "--sigint_effect", "stop",
                                    "--weights", "/w/a.caffemodel"]
    state = run.snapshot_dir / "snapshot_iter_50.solverstate"
    assert train_arguments(run, resume_from=state, device="cuda:1")[-4:] == [
        "--snapshot", "snapshots/snapshot_iter_50.solverstate", "--gpu", "1"]


def test_caffe_runs_have_no_dlp_extension_fields(tmp_path):
    run = _run(tmp_path, engine="caffe")
    text = run.solver_path.read_text()
    assert "best_metric" not in text and "keep_last_snapshots" not in text
    assert caffe_arguments(run)[:3] == ["train", "--solver=solver.prototxt",
                                        "--sigint_effect=stop"]
    # BVLC Caffe stops at a layer type it does not know: DLP's Dice metric is left out,
    # and "best" cannot follow a metric that Caffe's log will not have.
    assert [layer.type for layer in read_net(run.net_path).layer] == ["Input", "Convolution"]
    assert Run(run.path).info["best_metric"] == ""


def test_a_caffe_run_of_a_dice_loss_net_is_refused_before_any_file_is_written(tmp_path):
    net = parse_net_text(NET.replace('type: "Dice"', 'type: "DiceLoss"'), "net")
    solver = parse_solver_text(SOLVER, "solver")
    run_dir = tmp_path / "runs" / "run-1"
    with pytest.raises(InputError, match=r"layer 'dice' \(DiceLoss\).*SoftmaxWithLoss"):
        create_run(run_dir, net, solver, engine="caffe")
    assert not run_dir.exists()


def test_snapshots_carry_their_test_metrics_and_the_best_is_found(tmp_path):
    run = _run(tmp_path)
    run.log_path.write_text(LOG)
    for it in (50, 100):
        (run.snapshot_dir / f"snapshot_iter_{it}.caffemodel").write_bytes(b"")
        (run.snapshot_dir / f"snapshot_iter_{it}.solverstate").write_bytes(b"")
    snaps = run.snapshots()
    assert [(s.iteration, s.metrics) for s in snaps] == [(50, {"dice": 0.8}),
                                                          (100, {"dice": 0.6})]
    assert run.best_snapshot().iteration == 50
    assert run.best_snapshot("dice", "min").iteration == 100
    assert run.best_snapshot("missing").iteration == 100  # no metric: the latest
    assert run.latest_solverstate().name == "snapshot_iter_100.solverstate"
    run.clear_outputs()
    assert run.snapshots() == [] and not run.log_path.exists()


def test_run_metadata_errors_and_deletion(tmp_path):
    run = _run(tmp_path)
    assert [r.name for r in list_runs(tmp_path / "runs")] == ["run-1"]
    run.update(status="running", pid=os.getpid())
    with pytest.raises(RunError, match="still training"):
        delete_run(run)
    run.update(status="stopped", pid=None)
    delete_run(run)
    assert list_runs(tmp_path / "runs") == []
    broken = tmp_path / "runs" / "run-2"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")
    with pytest.raises(RunError, match=r"run\.json"):
        Run(broken)


def test_process_alive_checks_the_start_time_and_zombies():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        from dlp.train.runs import process_start_time

        started = process_start_time(child.pid)
        assert process_alive(child.pid, started)
        assert not process_alive(child.pid, started - 100)  # a recycled pid
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid) and not process_alive(None)


def test_log_follower_returns_whole_lines_and_survives_truncation(tmp_path):
    path = tmp_path / "train.log"
    follower = LogFollower(path)
    assert follower.read_lines() == []
    with open(path, "w") as handle:
        handle.write("first\nsec")
    assert follower.read_lines() == ["first"]
    with open(path, "a") as handle:
        handle.write("ond\nthird")
    assert follower.read_lines() == ["second"]
    assert follower.read_rest() == ["third"]
    path.write_text("new\n")  # Restart cleared the log
    assert follower.read_lines() == ["new"]
    with open(path, "a") as handle:
        handle.write("".join(f"line {i}\n" for i in range(10)))
    got: list[str] = []
    for _ in range(40):  # bounded reads (the GUI's per-tick budget) still get everything
        got += follower.read_lines(max_bytes=5)
    assert got == [f"line {i}" for i in range(10)]


def test_lr_schedule_matches_the_solvers_policy_iteration_by_iteration():
    from dlp.engine.solver.lr_policies import learning_rate

    solver = parse_solver_text('base_lr: 0.1 lr_policy: "multistep" gamma: 0.5 '
                               'stepvalue: 30 stepvalue: 60 max_iter: 100', "s")
    iters, rates = lr_schedule(solver, points=11)
    assert iters == list(range(0, 101, 10))
    step, expected = 0, {}
    for it in range(101):  # the solver calls the policy every iteration
        rate, step = learning_rate(solver, it, step)
        expected[it] = rate
    assert rates == pytest.approx([expected[i] for i in iters])
    with pytest.raises(InputError, match="stepsize"):
        lr_schedule(parse_solver_text('base_lr: 0.1 lr_policy: "step" max_iter: 10', "s"))
