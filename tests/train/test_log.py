"""The log writer prints Caffe's lines; the parser reads ours and real Caffe logs."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pytest

from dlp.engine.solver.logwriter import LogWriter, OutputValues
from dlp.train.log import (
    Done,
    Failure,
    LearningRate,
    LogParser,
    Restart,
    Snapshot,
    TestLoss,
    TestOutput,
    TrainLoss,
    TrainOutput,
    curves,
    parse_log,
)

SAMPLE = Path(__file__).parent / "data" / "caffe_train_two_test_nets_restart.log"
GLOG = re.compile(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} [ \d]{5} \w+\.cpp:\d+\] ")


def write_run(path: Path | None = None) -> str:
    stream = io.StringIO()
    with LogWriter(stream, path) as log:
        log.start("tiny", "fixed", 40)
        log.train(0, 0.69, [OutputValues("loss", (0.69,), 1.0)])
        log.lr(0, 0.01)
        log.test_start(20, 0)
        log.test(20, 0, [OutputValues("accuracy", (0.9,)), OutputValues("dice", (0.95, 0.81))])
        log.test_start(20, 1)
        log.test(20, 1, [OutputValues("accuracy", (0.85,))], loss=0.3)
        log.snapshot_model(Path("snap/tiny_iter_20.caffemodel"))
        log.snapshot_state(Path("snap/tiny_iter_20.solverstate"))
        log.failure(21, "Iteration 21: loss is nan; stopped")
        log.done(40)
    return stream.getvalue()


def test_writer_prints_caffe_lines_with_glog_prefix() -> None:
    lines = write_run().splitlines()
    assert lines[-2].startswith("E") and GLOG.match("I" + lines[-2][1:])
    assert all(GLOG.match(line) for line in lines if not line.startswith("E"))
    messages = [GLOG.sub("", line) for line in lines if line.startswith("I")]
    assert "Iteration 0, loss = 0.69" in messages
    assert "    Train net output #0: loss = 0.69 (* 1 = 0.69 loss)" in messages
    assert "Iteration 0, lr = 0.01" in messages
    assert "Iteration 20, Testing net (#0)" in messages
    assert "    Test net output #1: dice = 0.95" in messages
    assert "    Test net output #2: dice = 0.81" in messages
    assert "Test loss: 0.3" in messages
    assert "Snapshotting to binary proto file snap/tiny_iter_20.caffemodel" in messages
    assert messages[-1] == "Optimization Done."


def test_caffe_parse_log_regexes_match_our_lines() -> None:
    # the expressions of Caffe's tools/extra/parse_log.py
    iteration = re.compile(r"Iteration (\d+)")
    train_output = re.compile(r"Train net output #(\d+): (\S+) = ([\.\deE+-]+)")
    test_output = re.compile(r"Test net output #(\d+): (\S+) = ([\.\deE+-]+)")
    learning_rate = re.compile(r"lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)")
    text = write_run()
    assert [m.group(1) for m in iteration.finditer(text)] == ["0", "0", "20", "20", "21"]
    assert train_output.search(text).groups() == ("0", "loss", "0.69")
    assert [m.group(3) for m in test_output.finditer(text)] == ["0.9", "0.95", "0.81", "0.85"]
    assert learning_rate.search(text).group(1) == "0.01"


def test_roundtrip_through_parser_and_jsonl(tmp_path: Path) -> None:
    log_path = tmp_path / "train.log"
    write_run(log_path)
    assert log_path.read_text().startswith("Log file created at: ")
    records = parse_log(log_path)
    assert TrainLoss(0, 0.69) in records
    assert TrainOutput(0, 0, "loss", 0.69) in records
    assert LearningRate(0, 0.01) in records
    assert TestOutput(20, 0, 2, "dice", 0.81) in records
    assert TestOutput(20, 1, 0, "accuracy", 0.85) in records
    assert TestLoss(20, 1, 0.3) in records
    assert Snapshot(20, "snap/tiny_iter_20.caffemodel") in records
    assert Failure("Iteration 21: loss is nan; stopped") in records
    assert records[-1] == Done()
    events = [json.loads(line) for line in (tmp_path / "train.log.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds == ["start", "train", "lr", "test", "test", "error", "done"]
    assert events[3]["outputs"] == {"accuracy": 0.9, "dice[0]": 0.95, "dice[1]": 0.81}
    assert events[4] == {**events[4], "net": 1, "loss": 0.3}


def test_real_caffe_log_with_two_test_nets_and_a_restart() -> None:
    records = parse_log(SAMPLE)
    restarts = [r for r in records if isinstance(r, Restart)]
    assert restarts == [Restart(40)]
    tests = [r for r in records if isinstance(r, TestOutput)]
    assert {r.test_net for r in tests} == {0, 1}
    assert TestLoss(40, 0, 0.201345) in records
    assert TrainLoss(20, 0.412055) in records  # rc5 form with iter/s
    assert Snapshot(80, "snapshots/fcn_iter_80.solverstate") in records
    assert isinstance(records[-1], Done)

    c = curves(records)
    # the diverged point at iteration 60 of the first segment is superseded by the resume
    assert c["loss"] == ([0, 20, 40, 60, 80], [0.693147, 0.412055, 0.24517, 0.180012, 0.155123])
    assert c["lr"] == ([0, 20, 40, 60], [0.01, 0.01, 0.01, 0.001])
    assert c["test/dice[1]"] == ([0, 40, 80], [0.6231, 0.71005, 0.84412])
    assert c["test1/accuracy"][0] == [0, 40, 80]
    assert c["test/loss_total"] == ([40], [0.201345])
    assert c["train/loss"][1][-1] == 0.171931


def test_parser_is_incremental_and_reads_partial_logs() -> None:
    parser = LogParser()
    testing = "I0314 09:12:41.033823 20513 solver.cpp:338] Iteration 5, Testing net (#1)"
    assert parser.feed(testing) == []
    got = parser.feed("    Test net output #0: dice = nan")
    assert len(got) == 1 and got[0].test_net == 1 and got[0].iteration == 5
    assert math.isnan(got[0].value)
    assert parser.feed("F0314 09:12:41.1 20513 net.cpp:1] Check failed: x") == [
        Failure("Check failed: x")
    ]
    assert parser.feed("dlp train: error: solver.prototxt: field net: file 'a' not found") == [
        Failure("solver.prototxt: field net: file 'a' not found")
    ]
    assert parser.feed("") == []


@pytest.mark.parametrize("value", ["1e-05", "-3.5", "inf"])
def test_numbers_in_caffe_formats(value: str) -> None:
    (record,) = LogParser().feed(f"Iteration 3, lr = {value}")
    assert record == LearningRate(3, float(value))
