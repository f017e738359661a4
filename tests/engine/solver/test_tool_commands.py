"""``dlp test``, ``dlp time`` and ``dlp device_query``: Caffe's output, our engine."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from dlp.cli import main

GLOG = re.compile(r"^[IWE]\d{4} \d\d:\d\d:\d\d\.\d{6} [ \d]{5} [\w.]+:\d+\] ")


def messages(err: str) -> list[str]:
    return [GLOG.sub("", line) for line in err.splitlines() if GLOG.match(line)]


@pytest.fixture
def trained(task: Path, capsys) -> Path:
    text = task.read_text().replace("max_iter: 40", "max_iter: 60").replace(
        "test_interval: 20", "test_interval: 60\ntest_initialization: false")
    task.write_text(text)
    assert main(["train", "--solver", str(task)]) == 0
    capsys.readouterr()
    return task.parent / "snapshots" / "tiny_iter_60.caffemodel"


def test_test_command_scores_the_trained_model(trained: Path, capsys) -> None:
    code = main(["test", "--model", "train_val.prototxt", "--weights", str(trained),
                 "--iterations", "2"])
    assert code == 0
    lines = messages(capsys.readouterr().err)
    assert "Running for 2 iterations." in lines
    assert any(line.startswith("Batch 1, dice = ") for line in lines)
    assert sum(line.startswith("Batch 0, dice_per_class = ") for line in lines) == 2
    summary = {line.split(" = ", 1)[0]: line.split(" = ", 1)[1] for line in lines
               if re.match(r"^(dice|accuracy|loss) = ", line)}
    assert float(summary["dice"]) > 0.7
    assert re.fullmatch(r"[\d.e-]+ \(\* 1 = [\d.e-]+ loss\)", summary["loss"])
    assert any(line.startswith("Loss: ") for line in lines)


def test_test_command_names_a_missing_weights_file(task: Path, capsys) -> None:
    code = main(["test", "--model", "train_val.prototxt", "--weights", "nope.caffemodel"])
    err = capsys.readouterr().err
    assert code == 1 and "--weights: file 'nope.caffemodel' not found" in err


def test_time_command_prints_per_layer_times(task: Path, capsys) -> None:
    assert main(["time", "--model", "train_val.prototxt", "--iterations", "2"]) == 0
    lines = messages(capsys.readouterr().err)
    assert lines[0] == "Performing Forward"
    assert "*** Benchmark begins ***" in lines and lines[-1] == "*** Benchmark ends ***"
    forward = [line for line in lines if "\tforward: " in line]
    backward = [line for line in lines if "\tbackward: " in line]
    names = [line.split("\t")[0].strip() for line in forward]
    assert names == ["data", "label", "conv1", "relu1", "pool1", "conv2", "relu2", "SCORE",
                     "upscore", "loss"]
    assert len(backward) == len(forward)
    conv1_back = next(line for line in backward if line.strip().startswith("conv1"))
    assert float(re.search(r"backward: ([\d.e-]+) ms", conv1_back).group(1)) > 0
    assert sum(line.startswith("Iteration: ") for line in lines) == 2
    assert any(line.startswith("Average Forward-Backward: ") for line in lines)


def test_device_query_lists_the_cpu(capsys) -> None:
    assert main(["device_query"]) == 0
    lines = messages(capsys.readouterr().err)
    assert any(line.startswith("PyTorch version:") for line in lines)
    assert any(line.startswith("CUDA available:") for line in lines)


def test_progress_bar_only_on_a_terminal(task: Path, capsys, monkeypatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    text = task.read_text().replace("max_iter: 40", "max_iter: 3").replace(
        "test_interval: 20", "test_interval: 20\ntest_initialization: false")
    task.write_text(text)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["train", "--solver", str(task)]) == 0
    assert "Training" in terminal.getvalue() and "3/3" in terminal.getvalue()
    monkeypatch.undo()
    assert main(["train", "--solver", str(task)]) == 0
    assert capsys.readouterr().out == ""


def test_time_command_on_a_deploy_net_with_input_layers(tmp_path: Path, capsys) -> None:
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(
        'name: "d"\nlayer { name: "data" type: "Input" top: "data"\n'
        "  input_param { shape { dim: 1 dim: 1 dim: 16 dim: 16 } } }\n"
        'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
        "  convolution_param { num_output: 4 kernel_size: 3 } }\n"
    )
    assert main(["time", "--model", str(deploy), "--iterations", "1"]) == 0
    lines = messages(capsys.readouterr().err)
    assert [line.split("\t")[0].strip() for line in lines if "\tforward: " in line] == [
        "data", "conv"]
