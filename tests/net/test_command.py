"""``python -m dlp net info|deploy|upgrade|onnx|caffe`` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlp.cli import main
from dlp.data.lmdb_io import DatumWriter
from dlp.net.prototxt import read_net

DEPLOY = """name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 16 dim: 16 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "score" type: "Convolution" bottom: "pool1" top: "score"
        convolution_param { num_output: 2 kernel_size: 1 } }
"""

TRAIN_VAL = """name: "tiny_fcn"
layer { name: "data" type: "Data" top: "data" include { phase: TRAIN }
        data_param { source: "FEATURES" batch_size: 4 backend: LMDB } }
layer { name: "label" type: "Data" top: "label" include { phase: TRAIN }
        data_param { source: "LABELS" batch_size: 4 backend: LMDB } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "score" type: "Convolution" bottom: "conv1" top: "score"
        convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
"""

V1 = """name: "old"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
         blobs_lr: 1 blobs_lr: 2
         convolution_param { num_output: 2 kernel_size: 3 } }
layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dlp", "net", *args],
                          capture_output=True, text=True, timeout=120)


def write_lmdb(path: Path, shape: tuple[int, ...]) -> Path:
    with DatumWriter(path) as writer:
        writer.append(np.zeros(shape, dtype=np.uint8))
    return path


@pytest.fixture
def train_val(tmp_path: Path) -> Path:
    features = write_lmdb(tmp_path / "train_db" / "features", (1, 24, 24))
    labels = write_lmdb(tmp_path / "train_db" / "labels", (1, 24, 24))
    text = TRAIN_VAL.replace("FEATURES", str(features)).replace("LABELS", str(labels))
    return write(tmp_path / "train_val.prototxt", text)


def test_info_prints_a_table_of_shapes_params_and_flops(tmp_path: Path, capsys) -> None:
    net = write(tmp_path / "deploy.prototxt", DEPLOY)
    assert main(["net", "info", str(net)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "net tiny, phase TEST"
    rows = {line.split()[0]: line.split() for line in out[2:-1]}
    assert rows["conv1"][:4] == ["conv1", "Convolution", "conv1", "1\u00d74\u00d716\u00d716"]
    assert rows["conv1"][4] == "40"                       # 4*1*3*3 weights + 4 biases
    assert rows["pool1"][3] == "1\u00d74\u00d78\u00d78"
    # conv1 2*1024*9 + relu 1024 + pool 256*4 + score 2*128*4 = 21504
    assert out[-1] == "total: 50 learnable parameters, 21.5k FLOPs per forward pass"


def test_info_json_in_a_subprocess_with_an_input_shape(tmp_path: Path) -> None:
    net = write(tmp_path / "deploy.prototxt", DEPLOY)
    result = run_cli("info", str(net), "--json", "--input-shape", "2,1,32,32")
    assert result.returncode == 0, result.stderr
    layers = json.loads(result.stdout)
    assert [layer["name"] for layer in layers] == ["data", "conv1", "relu1", "pool1", "score"]
    assert set(layers[1]) == {"name", "type", "tops", "params", "flops"}
    assert layers[0]["tops"] == {"data": [2, 1, 32, 32]}
    assert layers[3]["tops"] == {"pool1": [2, 4, 16, 16]}
    assert layers[1]["params"] == 40
    assert layers[1]["flops"] == 2 * (2 * 4 * 32 * 32) * 9


def test_info_reads_the_lmdb_of_a_train_val_net_per_phase(train_val: Path, capsys) -> None:
    assert main(["net", "info", str(train_val), "--phase", "train", "--json"]) == 0
    layers = {layer["name"]: layer for layer in json.loads(capsys.readouterr().out)}
    assert layers["data"]["tops"] == {"data": [4, 1, 24, 24]}
    assert layers["loss"]["tops"] == {"loss": []}


def test_info_input_shape_sets_the_data_shape_of_data_layers(tmp_path: Path, capsys) -> None:
    net = write(tmp_path / "tv.prototxt", TRAIN_VAL.replace("FEATURES", "/none").replace(
        "LABELS", "/none"))
    assert main(["net", "info", str(net), "--phase", "TRAIN", "--json",
                 "--input-shape", "2,3,10,10"]) == 0
    layers = {layer["name"]: layer for layer in json.loads(capsys.readouterr().out)}
    assert layers["data"]["tops"] == {"data": [2, 3, 10, 10]}
    assert layers["label"]["tops"] == {"label": [2, 1, 10, 10]}
    assert layers["score"]["tops"] == {"score": [2, 2, 10, 10]}


def test_info_reports_shape_errors_once_each_and_fails(tmp_path: Path) -> None:
    bad = DEPLOY.replace("num_output: 2 kernel_size: 1", "num_output: 2 kernel_size: 99")
    result = run_cli("info", str(write(tmp_path / "bad.prototxt", bad)))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    net_file = tmp_path / "bad.prototxt"
    assert result.stderr.splitlines() == [
        f"error: {net_file}:9: layer 'score' (Convolution): kernel extent 99 is larger than "
        "the padded input (8) along spatial axis 0"]
    assert "ERROR (see below)" in result.stdout


def test_info_also_reports_structural_problems(tmp_path: Path, capsys) -> None:
    twice = DEPLOY + ('layer { name: "again" type: "Sigmoid" bottom: "data" top: "pool1" }\n'
                      'layer { name: "extra" type: "ReLU" bottom: "data" top: "e" '
                      'pooling_param { pool: AVE } }\n')
    net = write(tmp_path / "twice.prototxt", twice)
    assert main(["net", "info", str(net)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"error: {net}:11: layer 'again' (Sigmoid): top 'pool1' is already "
                      "produced by layer 'pool1'; a blob may be rewritten only in-place "
                      "(as bottom 0 and top 0 of one layer)")
    assert err[1] == (f"warning: {net}:12: layer 'extra' (ReLU): pooling_param is ignored by "
                      "ReLU layers (it reads relu_param)")


def test_bad_files_and_options_give_one_line_errors(tmp_path: Path, capsys) -> None:
    broken = write(tmp_path / "broken.prototxt", 'layer { name: "x" type: "ReLU" \n bottom: ')
    assert main(["net", "info", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dlp net: error: {broken}:") and err.count("\n") == 1
    assert main(["net", "info", str(tmp_path / "missing.prototxt")]) == 1
    assert "missing.prototxt: no such file" in capsys.readouterr().err
    net = write(tmp_path / "deploy.prototxt", DEPLOY)
    assert main(["net", "info", str(net), "--input-shape", "1,x"]) == 1
    assert "--input-shape '1,x': expected positive integers" in capsys.readouterr().err


def test_deploy_writes_an_input_and_prob_net(train_val: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "deploy.prototxt"
    assert main(["net", "deploy", str(train_val), "-o", str(out)]) == 0
    message = capsys.readouterr().out
    assert message.startswith(f"wrote {out}: 4 layers;")
    assert "input data 1\u00d71\u00d724\u00d724" in message
    assert "output prob 1\u00d72\u00d724\u00d724" in message
    deploy = read_net(out)
    assert [layer.type for layer in deploy.layer] == ["Input", "Convolution", "Convolution",
                                                      "Softmax"]


def test_deploy_in_a_subprocess_with_input_shape_and_a_failure(tmp_path: Path) -> None:
    net = write(tmp_path / "tv.prototxt", TRAIN_VAL.replace("FEATURES", "/none").replace(
        "LABELS", "/none"))
    out = tmp_path / "deploy.prototxt"
    failed = run_cli("deploy", str(net), "-o", str(out))
    assert failed.returncode == 1 and not out.exists()
    assert f"dlp net: error: {net}: cannot tell the shape of input 'data'" in failed.stderr
    assert "Traceback" not in failed.stderr
    ok = run_cli("deploy", str(net), "-o", str(out), "--input-shape", "1,1,20,20")
    assert ok.returncode == 0, ok.stderr
    assert list(read_net(out).layer[0].input_param.shape[0].dim) == [1, 1, 20, 20]


def test_upgrade_turns_a_v1_net_into_layers(tmp_path: Path, capsys) -> None:
    old = write(tmp_path / "old.prototxt", V1)
    new = tmp_path / "new.prototxt"
    assert main(["net", "upgrade", str(old), "-o", str(new)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {new}: upgraded 2 V1 layers to V2"
    text = new.read_text(encoding="utf-8")
    assert "layers {" not in text and 'type: "Convolution"' in text
    net = read_net(new, upgrade=False)
    assert [layer.type for layer in net.layer] == ["Input", "Convolution", "ReLU"]
    assert [p.lr_mult for p in net.layer[1].param] == [1, 2]
    again = tmp_path / "again.prototxt"
    assert main(["net", "upgrade", str(new), "-o", str(again)]) == 0
    assert "already in the current format" in capsys.readouterr().out
    assert again.read_text(encoding="utf-8") == text


def test_onnx_export_runs_in_onnxruntime(tmp_path: Path, capsys) -> None:
    pytest.importorskip("dlp.engine.onnx_export")
    onnxruntime = pytest.importorskip("onnxruntime")
    from dlp.engine.net import Net
    from dlp.engine.weights import write_caffemodel
    from dlp.net.prototxt import parse_net_text

    net_file = write(tmp_path / "deploy.prototxt", DEPLOY)
    weights = tmp_path / "w.caffemodel"
    engine = Net(parse_net_text(DEPLOY), "TEST", seed=0)
    write_caffemodel(engine, weights)
    model = tmp_path / "model.onnx"
    assert main(["net", "onnx", str(net_file), "--weights", str(weights), "-o", str(model)]) == 0
    assert capsys.readouterr().out.strip() == (
        f"wrote {model}: weights copied 2 layer(s)")
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).normal(size=(1, 1, 16, 16)).astype(np.float32)
    [output] = session.run(None, {session.get_inputs()[0].name: image})
    assert output.shape == (1, 2, 8, 8)
    import torch

    with torch.no_grad():
        expected = engine.forward({"data": torch.from_numpy(image)})["score"].numpy()
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-5)


def test_onnx_refuses_a_net_without_input_or_weights(tmp_path: Path, capsys) -> None:
    net = write(tmp_path / "tv.prototxt", TRAIN_VAL)
    assert main(["net", "onnx", str(net), "--weights", str(tmp_path / "w.caffemodel"),
                 "-o", str(tmp_path / "m.onnx")]) == 1
    assert "no Input layer; is this a deploy net?" in capsys.readouterr().err
    deploy = write(tmp_path / "deploy.prototxt", DEPLOY)
    assert main(["net", "onnx", str(deploy), "--weights", str(tmp_path / "missing.caffemodel"),
                 "-o", str(tmp_path / "m.onnx")]) == 1
    assert "missing.caffemodel" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_caffe_writes_a_net_without_dlp_layers_and_refuses_a_dice_loss(tmp_path: Path,
                                                                       capsys) -> None:
    dice = ('layer { name: "dice" type: "Dice" bottom: "score" bottom: "label" top: "dice" '
            'include { phase: TEST } }\n')
    net = write(tmp_path / "tv.prototxt", TRAIN_VAL + dice)
    out = tmp_path / "for_caffe.prototxt"
    assert main(["net", "caffe", str(net), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}: 5 layers; left out DLP's 'dice'"
    assert "Dice" not in out.read_text(encoding="utf-8")

    loss = write(tmp_path / "dice_loss.prototxt", TRAIN_VAL.replace('"SoftmaxWithLoss"',
                                                                   '"DiceLoss"'))
    refused = tmp_path / "refused.prototxt"
    assert main(["net", "caffe", str(loss), "-o", str(refused)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"dlp net: error: {loss}: layer 'loss' (DiceLoss) is a DLP layer")
    assert not refused.exists()
