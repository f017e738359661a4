"""``dlp train`` from the command line: bad input, NaN loss, signals, best/early stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlp.cli import main
from dlp.engine.solver.snapshot import read_solverstate
from dlp.train.log import Done, Failure, parse_log
from tests.engine.solver.conftest import TINY_FCN, make_task

REPO = Path(__file__).resolve().parents[3]


def train(capsys, *args: str) -> tuple[int, str]:
    code = main(["train", *args])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("dlp train: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- bad input: one line naming the file and field, before any training ------------------

def test_missing_net_file(task: Path, capsys) -> None:
    task.write_text(task.read_text().replace('"train_val.prototxt"', '"nowhere.prototxt"'))
    code, err = train(capsys, "--solver", str(task))
    line = one_error_line(err)
    assert code == 1
    assert "solver.prototxt: field net: 'nowhere.prototxt' not found" in line
    assert "Iteration" not in err


def test_net_found_beside_the_solver_when_not_in_cwd(task: Path, capsys, monkeypatch,
                                                      tmp_path: Path) -> None:
    # paths inside the net (LMDBs) are relative to the task folder, not to the new CWD
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text = task.read_text().replace("max_iter: 40", "max_iter: 2").replace(
        "test_interval: 20", "test_interval: 20\ntest_initialization: false")
    task.write_text(text)
    code, err = train(capsys, "--solver", str(task))
    assert code == 0, err
    assert "not found in the current directory; using" in err
    assert "Optimization Done." in err


def test_missing_lmdb(task: Path, capsys) -> None:
    net = task.parent / "train_val.prototxt"
    net.write_text(net.read_text().replace("val_db/labels", "val_db/nolabels"))
    code, err = train(capsys, "--solver", str(task))
    assert code == 1
    line = one_error_line(err)
    assert "train_val.prototxt: layer 'label' field data_param.source: 'val_db/nolabels' " \
           "not found" in line


def test_test_net_without_test_iter(task: Path, capsys) -> None:
    text = task.read_text().replace("net: ", "train_net: ").replace("test_iter: 2\n", "")
    task.write_text(text + 'test_net: "train_val.prototxt"\n')
    code, err = train(capsys, "--solver", str(task))
    assert code == 1
    assert "field test_iter: 1 test nets but 0 test_iter values" in one_error_line(err)


def test_unwritable_snapshot_folder(task: Path, capsys) -> None:
    if os.geteuid() == 0:
        target = "/proc/dlp-cannot-write/tiny"  # root may write anywhere else
    else:
        locked = task.parent / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = str(locked / "tiny")
    task.write_text(task.read_text().replace('"snapshots/tiny"', f'"{target}"'))
    code, err = train(capsys, "--solver", str(task))
    assert code == 1
    assert "field snapshot_prefix: cannot write snapshots to folder" in one_error_line(err)


def test_snapshot_from_a_different_net(task: Path, capsys) -> None:
    text = task.read_text().replace("max_iter: 40", "max_iter: 2").replace(
        "snapshot: 20", "snapshot: 2")
    task.write_text(text)
    assert train(capsys, "--solver", str(task))[0] == 0
    other = task.parent / "other.prototxt"
    other.write_text(TINY_FCN.replace("num_output: 16", "num_output: 12"))
    task.write_text(text.replace('"train_val.prototxt"', '"other.prototxt"'))
    code, err = train(capsys, "--solver", str(task), "--snapshot",
                      "snapshots/tiny_iter_2.solverstate")
    assert code == 1
    line = one_error_line(err)
    assert "tiny_iter_2.solverstate: field learned_net" in line
    assert "snapshot of a different net" in line


def test_unknown_solver_field_names_the_line(task: Path, capsys) -> None:
    task.write_text(task.read_text() + "momentun: 0.9\n")
    code, err = train(capsys, "--solver", str(task))
    assert code == 1
    line = one_error_line(err)
    assert "solver.prototxt:" in line and "momentun" in line


# -- NaN loss --------------------------------------------------------------------------

def test_nan_loss_stops_and_keeps_the_last_good_snapshot(task: Path, capsys) -> None:
    net = task.parent / "train_val.prototxt"
    # from iteration 3 on the features are scaled to infinity
    net.write_text(net.read_text().replace(
        'layer { name: "conv1"',
        'layer { name: "blowup" type: "Power" bottom: "data" top: "data"\n'
        '  power_param { scale: 1e30 power: 2 } include { phase: TRAIN stage: "boom" } }\n'
        'layer { name: "conv1"', 1))
    text = task.read_text().replace("snapshot: 20", "snapshot: 2").replace(
        "max_iter: 40", "max_iter: 3").replace("display: 10", "display: 1")
    task.write_text(text)
    assert train(capsys, "--solver", str(task))[0] == 0
    # resume with the exploding stage switched on: the first iteration's loss is inf/nan
    task.write_text(text.replace("max_iter: 3", "max_iter: 6"))
    code, err = train(capsys, "--solver", str(task), "--snapshot",
                      "snapshots/tiny_iter_2.solverstate", "--log", "nan.log", "--stage", "boom")
    assert code == 1
    line = one_error_line(err)
    assert "Iteration 2: loss is" in line
    assert "the last good snapshot is" in line and "tiny_iter_2.caffemodel" in line
    assert not Path("snapshots/tiny_iter_4.caffemodel").exists()
    assert Path("snapshots/tiny_iter_2.caffemodel").exists()
    assert any(isinstance(r, Failure) and "loss is" in r.message for r in parse_log("nan.log"))
    events = [json.loads(x) for x in Path("nan.log.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "error"


# -- best metric, pruning, early stop ---------------------------------------------------

def test_best_metric_keeps_best_snapshot_and_stops_early(task: Path, capsys) -> None:
    extra = ('best_metric: "dice_per_class[1]"\nbest_mode: "max"\nearly_stop_rounds: 2\n'
             "keep_last_snapshots: 1\n")
    text = task.read_text().replace("base_lr: 0.05", "base_lr: 0.0").replace(
        "test_interval: 20", "test_interval: 2").replace("snapshot: 20", "snapshot: 2")
    task.write_text(text + extra)
    code, err = train(capsys, "--solver", str(task), "--log", "best.log")
    assert code == 0
    # lr 0: nothing improves after the first round (iteration 0), so two more rounds stop it
    assert "Optimization stopped early (early_stop)." in err
    records = parse_log("best.log")
    assert records[-1] == Done(stopped_early=True)
    events = [json.loads(x) for x in Path("best.log.jsonl").read_text().splitlines()]
    best = [e for e in events if e["event"] == "best"]
    assert [e["iter"] for e in best] == [0]
    assert events[-1] == {**events[-1], "event": "done", "reason": "early_stop", "iter": 4}
    # keep_last_snapshots 1: only the newest survives
    left = sorted(p.name for p in Path("snapshots").glob("*.caffemodel"))
    assert left == ["tiny_iter_4.caffemodel"]


def test_best_metric_must_be_a_test_output(task: Path, capsys) -> None:
    task.write_text(task.read_text() + 'best_metric: "dsc"\n')
    code, err = train(capsys, "--solver", str(task))
    assert code == 1
    line = one_error_line(err)
    assert "field best_metric: 'dsc' is not a test net output" in line
    assert "dice_per_class" in line


# -- signals: a real subprocess --------------------------------------------------------

@pytest.mark.slow
def test_sigint_snapshots_then_stops(tmp_path: Path) -> None:
    solver = make_task(tmp_path / "sig", max_iter=100000, snapshot=0, test_interval=1000,
                       display=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "dlp", "train", "--solver", "solver.prototxt", "--log", "t.log"],
        cwd=solver.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    jsonl = solver.parent / "t.log.jsonl"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if jsonl.exists() and jsonl.read_text().count('"event": "train"') >= 3:
                break
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Optimization stopped early (stopped)." in err
    states = list((solver.parent / "snapshots").glob("*.solverstate"))
    assert len(states) == 1
    state = read_solverstate(states[0])
    assert state.iter >= 3
    assert Path(state.learned_net).is_file()
    # the snapshot loads: resume it for one more iteration in-process
    from dlp.engine.solver.solver import Solver
    from dlp.net.prototxt import read_solver

    param = read_solver(solver)
    param.max_iter = state.iter + 1
    param.test_initialization = False
    resumed = Solver(param, solver_dir=solver.parent, solver_path=solver, cwd=solver.parent)
    try:
        result = resumed.solve(resume_from=states[0])
    finally:
        resumed.close()
    assert result.iteration == state.iter + 1


def test_pruning_always_keeps_the_best_snapshot(task: Path, capsys) -> None:
    # lr 0: every test round scores the same, so the first round (iteration 2) stays best
    text = task.read_text().replace("base_lr: 0.05", "base_lr: 0.0").replace(
        "test_interval: 20", "test_interval: 2\ntest_initialization: false").replace(
        "snapshot: 20", "snapshot: 2").replace("max_iter: 40", "max_iter: 6")
    task.write_text(text + 'best_metric: "accuracy"\nkeep_last_snapshots: 1\n')
    code, err = train(capsys, "--solver", str(task))
    assert code == 0, err
    assert "Best accuracy = " in err and "at iteration 2" in err
    left = sorted(p.name for p in Path("snapshots").glob("*.caffemodel"))
    assert left == ["tiny_iter_2.caffemodel", "tiny_iter_6.caffemodel"]
    assert not Path("snapshots/tiny_iter_4.solverstate").exists()
    assert not Path("snapshots/tiny_iter_4.dlpstate").exists()
