"""Train a small FCN through ``dlp train`` as a user would, then fine-tune a renamed net."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlp.cli import main
from dlp.train.log import Done, Snapshot, TestOutput, TrainLoss, curves, parse_log
from tests.engine.solver.conftest import TINY_FCN, make_task


@pytest.mark.slow
def test_train_then_fine_tune_a_renamed_net(tmp_path: Path, monkeypatch, capsys) -> None:
    solver = make_task(tmp_path / "task", max_iter=120, snapshot=60, test_interval=60,
                       display=20)
    monkeypatch.chdir(solver.parent)
    assert main(["train", "--solver", "solver.prototxt", "--log", "train.log"]) == 0

    records = parse_log("train.log")
    losses = [r.loss for r in records if isinstance(r, TrainLoss)]
    assert losses[-1] < 0.5 * losses[0]
    c = curves(records)
    dice_iters, dice = c["test/dice"]
    assert dice_iters == [0, 60, 120]
    assert dice[0] < 0.8 < dice[-1]
    # the per-class output prints one line per class, like Caffe
    per_class = [r for r in records if isinstance(r, TestOutput) and r.name == "dice_per_class"]
    assert len(per_class) == 2 * 3
    assert c["test/dice_per_class[1]"][1][-1] == pytest.approx(dice[-1])
    assert {Path(r.path).name for r in records if isinstance(r, Snapshot)} == {
        f"tiny_iter_{i}.{ext}" for i in (60, 120) for ext in ("caffemodel", "solverstate")
    }
    assert records[-1] == Done()
    for i in (60, 120):
        assert (solver.parent / f"snapshots/tiny_iter_{i}.caffemodel").is_file()
        assert (solver.parent / f"snapshots/tiny_iter_{i}.solverstate").is_file()
    events = [json.loads(x) for x in Path("train.log.jsonl").read_text().splitlines()]
    test_events = [e for e in events if e["event"] == "test"]
    assert set(test_events[-1]["outputs"]) == {
        "loss", "dice", "dice_per_class[0]", "dice_per_class[1]", "accuracy"
    }
    assert events[-1]["event"] == "done"
    stderr = capsys.readouterr().err
    assert "Optimization Done." in stderr

    # fine-tune: the score layer gets a new name, so it starts afresh
    renamed = TINY_FCN.replace('name: "SCORE"', 'name: "score_2class"')
    Path("finetune.prototxt").write_text(renamed)
    text = solver.read_text().replace('"train_val.prototxt"', '"finetune.prototxt"')
    text = text.replace("max_iter: 120", "max_iter: 20").replace('"snapshots/tiny"', '"ft/tiny"')
    Path("finetune_solver.prototxt").write_text(text)
    code = main(["train", "--solver", "finetune_solver.prototxt",
                 "--weights", "snapshots/tiny_iter_120.caffemodel"])
    assert code == 0
    err = capsys.readouterr().err
    report = next(line for line in err.splitlines() if "Copying weights from" in line)
    assert "copied 3 layer(s)" in report  # conv1, conv2, upscore
    assert "not in the weights (kept initialised): score_2class" in report
    assert "unused layers in the weights: SCORE" in report
    assert Path("ft/tiny_iter_20.caffemodel").is_file()
