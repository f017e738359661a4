"""Deploy-net derivation: data and losses out, an Input of the data shape in, prob added."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlp.data.lmdb_io import DatumWriter
from dlp.net.deploy import DeployError, derive_deploy_net
from dlp.net.prototxt import net_to_text, parse_net_text, read_net
from dlp.net.shapes import infer_shapes
from dlp.net.validate import validate_net


def write_lmdb(path: Path, shape: tuple[int, ...]) -> Path:
    with DatumWriter(path) as writer:
        writer.append(np.zeros(shape, dtype=np.uint8))
    return path


def data_layers(features: str, labels: str, phase: str, batch: int) -> str:
    return (f'layer {{ name: "{phase.lower()}-data" type: "Data" top: "data" '
            f'include {{ phase: {phase} }} transform_param {{ mean_value: 100 }} '
            f'data_param {{ source: "{features}" batch_size: {batch} backend: LMDB }} }}\n'
            f'layer {{ name: "{phase.lower()}-label" type: "Data" top: "label" '
            f'include {{ phase: {phase} }} '
            f'data_param {{ source: "{labels}" batch_size: {batch} backend: LMDB }} }}\n')


BODY = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 1 } convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "drop1" type: "Dropout" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "score_fr" type: "Convolution" bottom: "pool1" top: "score_fr"
        convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "upscore" type: "Deconvolution" bottom: "score_fr" top: "upscore"
        param { lr_mult: 0 }
        convolution_param { num_output: 2 group: 2 kernel_size: 4 stride: 2 bias_term: false } }
layer { name: "score" type: "Crop" bottom: "upscore" bottom: "data" top: "score"
        crop_param { axis: 2 offset: 1 } }
layer { name: "train_only" type: "ReLU" bottom: "score" top: "train_score"
        include { phase: TRAIN } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss"
        loss_param { ignore_label: 255 } }
layer { name: "accuracy" type: "Accuracy" bottom: "score" bottom: "label" top: "accuracy"
        include { phase: TEST } }
layer { name: "dice" type: "Dice" bottom: "score" bottom: "label" top: "dice"
        include { phase: TEST } }
"""


@pytest.fixture
def train_val(tmp_path: Path) -> str:
    train_f = write_lmdb(tmp_path / "train_db" / "features", (1, 32, 32))
    train_l = write_lmdb(tmp_path / "train_db" / "labels", (1, 32, 32))
    val_f = write_lmdb(tmp_path / "val_db" / "features", (1, 32, 32))
    val_l = write_lmdb(tmp_path / "val_db" / "labels", (1, 32, 32))
    return ('name: "small_fcn"\n' + data_layers(str(train_f), str(train_l), "TRAIN", 4)
            + data_layers(str(val_f), str(val_l), "TEST", 2) + BODY)


def test_fcn_train_val_becomes_a_deploy_net_with_input_and_prob(train_val: str) -> None:
    deploy = derive_deploy_net(parse_net_text(train_val))
    names = [layer.name for layer in deploy.layer]
    assert names == ["data", "conv1", "relu1", "drop1", "pool1", "score_fr", "upscore", "score",
                     "prob"]
    data = deploy.layer[0]
    assert data.type == "Input" and list(data.top) == ["data"]
    assert list(data.input_param.shape[0].dim) == [1, 1, 32, 32]  # the LMDB sample, batch 1
    prob = deploy.layer[-1]
    assert (prob.type, list(prob.bottom), list(prob.top)) == ("Softmax", ["score"], ["prob"])
    assert deploy.name == "small_fcn"
    assert all(not layer.include and not layer.exclude for layer in deploy.layer)
    assert deploy.layer[names.index("upscore")].param[0].lr_mult == 0  # kept as trained

    shapes = infer_shapes(deploy, "TEST")
    assert shapes.errors == []
    assert shapes.blobs["prob"] == (1, 2, 32, 32)
    assert [i for i in validate_net(deploy, "TEST") if i.severity == "error"] == []
    assert parse_net_text(net_to_text(deploy)) == deploy


def test_a_given_input_shape_wins_and_no_file_is_needed() -> None:
    text = data_layers("/missing/f", "/missing/l", "TRAIN", 4) + BODY
    deploy = derive_deploy_net(parse_net_text(text), (1, 1, 64, 48))
    assert list(deploy.layer[0].input_param.shape[0].dim) == [1, 1, 64, 48]
    assert infer_shapes(deploy).blobs["prob"] == (1, 2, 64, 48)
    named = derive_deploy_net(parse_net_text(text), {"data": (2, 1, 16, 16)})
    assert list(named.layer[0].input_param.shape[0].dim) == [2, 1, 16, 16]
    with pytest.raises(DeployError, match="input shape given for 'label'"):
        derive_deploy_net(parse_net_text(text), {"label": (1, 1, 16, 16)})


def test_train_only_data_layers_still_give_the_input_shape(tmp_path: Path) -> None:
    features = write_lmdb(tmp_path / "features", (1, 16, 16))
    text = data_layers(str(features), "/missing/labels", "TRAIN", 4) + BODY
    deploy = derive_deploy_net(parse_net_text(text))
    assert list(deploy.layer[0].input_param.shape[0].dim) == [1, 1, 16, 16]
    assert "train_only" not in [layer.name for layer in deploy.layer]


def test_without_a_shape_or_readable_lmdb_the_error_says_what_to_give(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    text = data_layers(str(missing), str(missing), "TEST", 1) + BODY
    with pytest.raises(DeployError) as info:
        derive_deploy_net(parse_net_text(text))
    message = str(info.value)
    assert "cannot tell the shape of input 'data'" in message
    assert "layer 'test-data' (Data)" in message and "--input-shape" in message


def test_digits_stages_are_honoured_and_an_existing_prob_is_not_doubled() -> None:
    text = """
    layer { name: "data" type: "Data" top: "data" top: "label" exclude { stage: "deploy" }
            data_param { source: "/x" batch_size: 1 } }
    layer { name: "data" type: "Input" top: "data" include { stage: "deploy" }
            input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
    layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
            inner_product_param { num_output: 5 } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label"
            exclude { stage: "deploy" } }
    layer { name: "softmax" type: "Softmax" bottom: "fc" top: "softmax"
            include { stage: "deploy" } }
    """
    deploy = derive_deploy_net(parse_net_text(text))
    assert [(layer.name, layer.type) for layer in deploy.layer] == [
        ("data", "Input"), ("fc", "InnerProduct"), ("softmax", "Softmax")]
    assert list(deploy.layer[0].input_param.shape[0].dim) == [1, 3, 8, 8]


def test_a_loss_excluded_from_the_deploy_stage_still_adds_prob() -> None:
    text = """
    layer { name: "data" type: "Input" top: "data" top: "label"
            input_param { shape { dim: 2 dim: 3 } shape { dim: 2 } } }
    layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
            inner_product_param { num_output: 5 } }
    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label"
            exclude { stage: "deploy" } }
    """
    deploy = derive_deploy_net(parse_net_text(text))
    assert [(layer.name, layer.type) for layer in deploy.layer] == [
        ("data", "Input"), ("fc", "InnerProduct"), ("prob", "Softmax")]


NETLIB = Path(__file__).resolve().parents[2] / "netlib"


NETLIB_ENTRIES = sorted(path.parent.name for path in NETLIB.glob("*/train_val.prototxt"))


@pytest.mark.parametrize("entry", NETLIB_ENTRIES)
def test_every_netlib_net_shapes_and_derives_a_deploy_net(entry: str) -> None:
    folder = NETLIB / entry
    sample = tuple(json.loads((folder / "meta.json").read_text(encoding="utf-8"))["input"])
    net = read_net(folder / "train_val.prototxt")
    for phase in ("TRAIN", "TEST"):
        assert [i for i in validate_net(net, phase) if i.severity == "error"] == []
        result = infer_shapes(net, phase, data_shape=sample)
        assert result.errors == [], result.errors[0].error
        assert result.total_params > 0 and result.total_flops > 0
    deploy = derive_deploy_net(net, (1, *sample))
    shapes = infer_shapes(deploy)
    assert shapes.errors == []
    assert deploy.layer[-1].name == "prob"
    assert shapes.blobs["prob"][0] == 1


def test_layers_that_only_prepare_labels_are_dropped() -> None:
    text = """
    layer { name: "in" type: "Input" top: "data" top: "label"
            input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 1 } } }
    layer { name: "label_flat" type: "Flatten" bottom: "label" top: "label_flat" }
    layer { name: "label_scaled" type: "Power" bottom: "label_flat" top: "label_flat" }
    layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
            inner_product_param { num_output: 1 } }
    layer { name: "sig" type: "SigmoidCrossEntropyLoss" bottom: "fc" bottom: "label_flat" }
    layer { name: "silence" type: "Silence" bottom: "label" }
    """
    deploy = derive_deploy_net(parse_net_text(text))
    assert [(layer.name, layer.type) for layer in deploy.layer] == [
        ("data", "Input"), ("fc", "InnerProduct"), ("prob", "Sigmoid")]
    assert list(deploy.layer[0].input_param.shape[0].dim) == [1, 3]  # batch 1


def test_a_net_with_nothing_to_run_after_removal_is_an_error() -> None:
    text = ('layer { name: "d" type: "Input" top: "data" top: "label" '
            'input_param { shape { dim: 1 dim: 2 } } }\n'
            'layer { name: "loss" type: "EuclideanLoss" bottom: "data" bottom: "label" }')
    with pytest.raises(DeployError, match="nothing is left to run"):
        derive_deploy_net(parse_net_text(text))
    with pytest.raises(DeployError, match="'data' are read but no layer produces them"):
        derive_deploy_net(parse_net_text(BODY))


def test_legacy_net_inputs_become_input_layers() -> None:
    text = ('input: "data" input_dim: 8 input_dim: 3 input_dim: 10 input_dim: 10\n'
            'input: "label" input_dim: 8 input_dim: 1 input_dim: 1 input_dim: 1\n'
            'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" '
            'inner_product_param { num_output: 4 } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" }')
    deploy = derive_deploy_net(parse_net_text(text, upgrade=False))
    assert not deploy.input and not deploy.input_dim
    assert [(layer.name, layer.type) for layer in deploy.layer] == [
        ("data", "Input"), ("fc", "InnerProduct"), ("prob", "Softmax")]
    assert list(deploy.layer[0].input_param.shape[0].dim) == [1, 3, 10, 10]
