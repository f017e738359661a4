"""netlib's Sunnybrook FCN and its solver file train through ``dlp train`` unchanged
(only shortened), on tiny synthetic slices."""

from __future__ import annotations

import shutil
from pathlib import Path

from dlp.cli import main
from dlp.net.prototxt import read_solver, write_solver
from dlp.train.log import TrainLoss, curves, parse_log
from tests.engine.solver.conftest import write_split

NETLIB = Path(__file__).resolve().parents[3] / "netlib" / "sunnybrook-fcn"


def test_netlib_sunnybrook_fcn_learns(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_split(Path("train_db"), 24, seed=1)
    write_split(Path("val_db"), 8, seed=2)
    Path("snapshots").mkdir()
    shutil.copy(NETLIB / "train_val.prototxt", "train_val.prototxt")
    solver = read_solver(NETLIB / "solver.prototxt")
    assert solver.best_metric == "dice"
    solver.max_iter, solver.test_iter[0], solver.test_interval = 100, 8, 100
    solver.display, solver.snapshot, solver.random_seed = 20, 0, 3
    write_solver(solver, "solver.prototxt")

    assert main(["train", "--solver", "solver.prototxt", "--log", "train.log"]) == 0
    records = parse_log("train.log")
    losses = [r.loss for r in records if isinstance(r, TrainLoss)]
    assert losses[-1] < 0.6 * losses[0]
    dice = curves(records)["test/dice"]
    assert dice[0] == [0, 100]
    assert dice[1][1] > dice[1][0] + 0.2
    # best_metric "dice" improved at iteration 100: that snapshot exists
    assert Path("snapshots/sunnybrook_fcn_iter_100.caffemodel").is_file()
