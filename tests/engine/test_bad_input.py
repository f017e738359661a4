"""Bad input reaching the engine: each gives one DLPError naming the file, line, layer or
blob and what was expected, through the API and through ``dlp test`` / ``dlp net info``
(one line on stderr, non-zero exit, no traceback)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlp.cli import main
from dlp.engine.net import Net
from dlp.engine.weights import WeightsError, load_weights, write_caffemodel
from dlp.errors import DLPError
from dlp.net.prototxt import read_net

GOOD = """name: "tiny"
layer { name: "in" type: "Input" top: "data"
  input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc"
  inner_product_param { num_output: 5 } }
"""

# (file name, text, what the API's message must say, what `net info` must say)
BAD_NETS = [
    ("malformed.prototxt", GOOD.replace("dim: 8 } } }", "dim: 8 } }", 1),
     r'malformed.prototxt:4:1: missing "}": the block opened at line 2 is not closed',
     r"malformed.prototxt:4:1: "),
    ("unknown_type.prototxt", GOOD.replace('"ReLU"', '"Relu"'),
     r"unknown_type.prototxt:6: layer 'relu1': unknown layer type 'Relu'; did you mean ReLU",
     r"unknown_type.prototxt:6: layer 'relu1' \(Relu\): unknown layer type 'Relu'"),
    ("wrong_bottom.prototxt", GOOD.replace('bottom: "conv1" top: "fc"', 'bottom: "conv" top: "fc"'),
     r"wrong_bottom.prototxt:7: layer 'fc' \(InnerProduct\): bottom 'conv' is not produced by "
     r"an earlier layer \(blobs so far: 'data', 'conv1'\)",
     r"wrong_bottom.prototxt:7: layer 'fc' \(InnerProduct\): unknown bottom blob 'conv'"),
    ("shapes.prototxt", GOOD + 'layer { name: "sum" type: "Eltwise" bottom: "conv1" '
     'bottom: "data" top: "s" }\n',
     r"shapes.prototxt:9: layer 'sum' \(Eltwise\): bottom 1 shape \(2, 3, 8, 8\) differs from "
     r"bottom 0 shape \(2, 4, 6, 6\)",
     r"shapes.prototxt:9: layer 'sum' \(Eltwise\): bottom 1 has shape"),
]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.prototxt").write_text(GOOD)
    net = Net(read_net("good.prototxt"), "TEST", seed=0)
    write_caffemodel(net, tmp_path / "good.caffemodel")
    other = Net(read_net_text(GOOD.replace("num_output: 5", "num_output: 6")), "TEST", seed=0)
    write_caffemodel(other, tmp_path / "wider.caffemodel")
    stranger = Net(read_net_text(
        'layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }'
        'layer { name: "ip9" type: "InnerProduct" bottom: "x" top: "y" '
        'inner_product_param { num_output: 2 } }'), "TEST")
    write_caffemodel(stranger, tmp_path / "lenet.caffemodel")
    data = (tmp_path / "good.caffemodel").read_bytes()
    (tmp_path / "truncated.caffemodel").write_bytes(data[: len(data) // 2])
    for name, text, _api, _info in BAD_NETS:
        (tmp_path / name).write_text(text)
    return tmp_path


def read_net_text(text: str):
    from dlp.net.prototxt import parse_net_text

    return parse_net_text(text, "<memory>")


@pytest.mark.parametrize(("name", "api_message"), [(n, a) for n, _t, a, _i in BAD_NETS])
def test_api_names_file_line_and_layer(folder: Path, name: str, api_message: str) -> None:
    with pytest.raises(DLPError, match=api_message):
        Net(read_net(name), "TEST", source=name)


@pytest.mark.parametrize(("name", "info_message"), [(n, i) for n, _t, _a, i in BAD_NETS])
def test_net_info_reports_the_same_problems(folder: Path, name: str, info_message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["net", "info", name]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert any(re.search(info_message, line) for line in err.splitlines()), err


def test_weights_for_another_net_wider_layer_or_truncated_file(folder: Path) -> None:
    net = Net(read_net("good.prototxt"), "TEST", source="good.prototxt")
    with pytest.raises(WeightsError, match=r"lenet.caffemodel: no layer of these weights fits "
                                           r"net 'tiny' .*the file has ip9; the net expects "
                                           r"conv1, fc"):
        load_weights(net, "lenet.caffemodel")
    report = load_weights(net, "wider.caffemodel")  # fine-tuning keeps what fits
    assert report.matched == ["conv1"]
    assert "fc[0] net 5x144 vs file 6x144" in report.summary()
    with pytest.raises(WeightsError, match=r"wider.caffemodel: .*shape mismatch"):
        load_weights(net, "wider.caffemodel", strict=True)
    with pytest.raises(WeightsError, match=r"truncated.caffemodel: not a readable .caffemodel "
                                           r"\(truncated or corrupt"):
        load_weights(net, "truncated.caffemodel")


@pytest.mark.parametrize(("model", "weights", "message"), [
    ("malformed.prototxt", "good.caffemodel", r"malformed.prototxt:4:1: "),
    ("unknown_type.prototxt", "good.caffemodel",
     r"layer 'relu1': unknown layer type 'Relu'; did you mean ReLU"),
    ("wrong_bottom.prototxt", "good.caffemodel",
     r"wrong_bottom.prototxt:\d+: layer 'fc' \(InnerProduct\): bottom 'conv'"),
    ("shapes.prototxt", "good.caffemodel",
     r"shapes.prototxt:\d+: layer 'sum' \(Eltwise\): bottom 1 shape"),
    ("good.prototxt", "lenet.caffemodel", r"lenet.caffemodel: no layer"),
    ("good.prototxt", "wider.caffemodel",
     r"wider.caffemodel: layer 'fc' blob #0 has shape \(6, 144\), the net expects \(5, 144\)"),
    ("good.prototxt", "truncated.caffemodel", r"truncated.caffemodel: not a readable"),
])
def test_dlp_test_prints_one_error_line(folder: Path, model: str, weights: str, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "--model", model, "--weights", weights, "--iterations", "1"]) == 1
    err_lines = [line for line in capsys.readouterr().err.splitlines()
                 if line.startswith("dlp test: error: ")]
    assert len(err_lines) == 1
    assert re.search(message, err_lines[0]), err_lines[0]


def test_no_traceback_reaches_the_terminal(folder: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dlp", "test", "--model", "shapes.prototxt", "--weights",
         "good.caffemodel"], capture_output=True, text=True, cwd=folder, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "dlp test: error: shapes.prototxt:9: layer 'sum'")
