"""Whole-net shape inference: FCN-AlexNet by hand, 3-D U-Net style, data layers, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlp.data.lmdb_io import DatumWriter
from dlp.net.prototxt import parse_net_text
from dlp.net.shapes import AUTOMATIC_TOP, infer_shapes


def write_lmdb(path: Path, shape: tuple[int, ...]) -> Path:
    with DatumWriter(path) as writer:
        writer.append(np.zeros(shape, dtype=np.uint8))
    return path


def conv(name: str, bottom: str, out: int, kernel: int, stride: int = 1, pad: int = 0,
         group: int = 1) -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'convolution_param {{ num_output: {out} kernel_size: {kernel} stride: {stride} '
            f'pad: {pad} group: {group} }} }}\n'
            f'layer {{ name: "relu_{name}" type: "ReLU" bottom: "{name}" top: "{name}" }}\n')


def pool(name: str, bottom: str) -> str:
    return (f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}" '
            'pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n')


def lrn(name: str, bottom: str) -> str:
    return (f'layer {{ name: "{name}" type: "LRN" bottom: "{bottom}" top: "{name}" '
            'lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }\n')


def fcn_alexnet(data_source: str, label_source: str) -> str:
    """FCN-AlexNet as the DIGITS medical example lays it out (caffe-formats.md)."""
    return (
        f'name: "fcn_alexnet"\n'
        f'layer {{ name: "data" type: "Data" top: "data" include {{ phase: TRAIN }} '
        f'data_param {{ source: "{data_source}" batch_size: 1 backend: LMDB }} }}\n'
        f'layer {{ name: "label" type: "Data" top: "label" include {{ phase: TRAIN }} '
        f'data_param {{ source: "{label_source}" batch_size: 1 backend: LMDB }} }}\n'
        'layer { name: "shift" type: "Power" bottom: "data" top: "shifted" '
        'power_param { shift: -116 } }\n'
        + conv("conv1", "shifted", 96, 11, 4, 100) + pool("pool1", "conv1") + lrn("norm1", "pool1")
        + conv("conv2", "norm1", 256, 5, pad=2, group=2) + pool("pool2", "conv2")
        + lrn("norm2", "pool2") + conv("conv3", "norm2", 384, 3, pad=1)
        + conv("conv4", "conv3", 384, 3, pad=1, group=2)
        + conv("conv5", "conv4", 256, 3, pad=1, group=2) + pool("pool5", "conv5")
        + conv("fc6", "pool5", 4096, 6)
        + 'layer { name: "drop6" type: "Dropout" bottom: "fc6" top: "fc6" }\n'
        + conv("fc7", "fc6", 4096, 1)
        + 'layer { name: "drop7" type: "Dropout" bottom: "fc7" top: "fc7" }\n'
        'layer { name: "score_fr" type: "Convolution" bottom: "fc7" top: "score_fr" '
        'convolution_param { num_output: 2 kernel_size: 1 } }\n'
        'layer { name: "upscore" type: "Deconvolution" bottom: "score_fr" top: "upscore" '
        'param { lr_mult: 0 } convolution_param { num_output: 2 group: 2 bias_term: false '
        'kernel_size: 63 stride: 32 weight_filler { type: "bilinear" } } }\n'
        'layer { name: "score" type: "Crop" bottom: "upscore" bottom: "data" top: "score" '
        'crop_param { axis: 2 offset: 18 } }\n'
        'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" '
        'top: "loss" loss_param { ignore_label: 255 } }\n'
        'layer { name: "accuracy" type: "Accuracy" bottom: "score" bottom: "label" '
        'top: "accuracy" include { phase: TEST } }\n'
    )


def test_fcn_alexnet_shapes_by_hand_from_the_lmdbs(tmp_path: Path) -> None:
    data = write_lmdb(tmp_path / "train_db" / "features", (1, 256, 256))
    label = write_lmdb(tmp_path / "train_db" / "labels", (1, 256, 256))
    result = infer_shapes(parse_net_text(fcn_alexnet(str(data), str(label))), "TRAIN")
    assert result.errors == []
    blobs = result.blobs
    assert blobs["data"] == blobs["label"] == (1, 1, 256, 256)
    assert blobs["conv1"] == (1, 96, 112, 112)   # (256 + 200 - 11) // 4 + 1
    assert blobs["pool1"] == (1, 96, 56, 56)     # ceil((112 - 3) / 2) + 1
    assert blobs["pool2"] == (1, 256, 28, 28)    # ceil(53 / 2) + 1
    assert blobs["pool5"] == (1, 256, 14, 14)    # ceil(25 / 2) + 1
    assert blobs["fc6"] == (1, 4096, 9, 9)       # 14 - 6 + 1
    assert blobs["upscore"] == (1, 2, 319, 319)  # 32 * (9 - 1) + 63
    assert blobs["score"] == (1, 2, 256, 256)
    assert blobs["loss"] == ()
    assert "accuracy" not in blobs               # a TEST-only layer
    conv1 = result.layer("conv1")
    assert conv1.params == 96 * 1 * 11 * 11 + 96
    assert conv1.param_shapes == [(96, 1, 11, 11), (96,)]
    assert conv1.flops == 2 * 96 * 112 * 112 * 121
    assert result.layer("conv2").param_shapes[0] == (256, 48, 5, 5)
    assert result.layer("upscore").param_shapes == [(2, 1, 63, 63)]
    assert result.layer("relu_conv1").tops == {"conv1": (1, 96, 112, 112)}  # in-place
    assert result.total_params == sum(info.params for info in result.layers)
    assert result.total_flops > conv1.flops


def test_one_data_shape_gives_labels_a_single_channel() -> None:
    text = fcn_alexnet("/nowhere/features", "/nowhere/labels").replace(
        'include { phase: TRAIN } ', '')
    result = infer_shapes(parse_net_text(text), "TEST", data_shape=(3, 256, 256))
    assert result.errors == []
    assert result.blobs["data"] == (1, 3, 256, 256)
    assert result.blobs["label"] == (1, 1, 256, 256)
    assert result.blobs["accuracy"] == ()
    both = infer_shapes(parse_net_text(text), "TEST", data_shape=(4, 1, 256, 256))
    assert both.blobs["data"] == (4, 1, 256, 256) and both.blobs["score"] == (4, 2, 256, 256)
    named = infer_shapes(parse_net_text(text), "TEST",
                         data_shape={"data": (1, 256, 256), "label": (1, 256, 256)})
    assert named.errors == []


def test_errors_do_not_stop_inference_and_point_at_the_first_culprit() -> None:
    text = """
    layer { name: "in" type: "Input" top: "x"
            input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
    layer { name: "bad" type: "Convolution" bottom: "x" top: "y"
            convolution_param { num_output: 4 kernel_size: 3 group: 2 } }
    layer { name: "after" type: "ReLU" bottom: "y" top: "y" }
    layer { name: "later" type: "Pooling" bottom: "y" top: "z" pooling_param { kernel_size: 2 } }
    layer { name: "branch" type: "Pooling" bottom: "x" top: "b"
            pooling_param { kernel_size: 2 stride: 2 } }
    layer { name: "nowhere" type: "ReLU" bottom: "ghost" top: "g" }
    layer { name: "odd" type: "Mystery" bottom: "x" top: "m" }
    """
    result = infer_shapes(parse_net_text(text))
    bad = result.layer("bad")
    assert bad.error == ("layer 'bad' (Convolution): the input has 3 channels, which group 2 "
                         "does not divide")
    assert bad.tops == {"y": None}
    assert result.layer("after").caused_by == "bad"
    assert result.layer("later").error.endswith("(fix layer 'bad' first)")
    assert result.layer("branch").tops == {"b": (1, 3, 4, 4)}
    assert "unknown bottom blob 'ghost'" in result.layer("nowhere").error
    assert result.layer("odd").error.startswith(
        "layer 'odd' (Mystery): unknown layer type 'Mystery'")
    assert [info.name for info in result.root_errors] == ["bad", "nowhere", "odd"]
    assert "y" not in result.blobs and result.blobs["b"] == (1, 3, 4, 4)


def test_input_overrides_and_legacy_inputs() -> None:
    modern = parse_net_text(
        'layer { name: "data" type: "Input" top: "data" '
        'input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } } }\n'
        'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
        'convolution_param { num_output: 8 kernel_size: 3 } }')
    assert infer_shapes(modern).blobs["c"] == (1, 8, 30, 30)
    big = infer_shapes(modern, input_shapes={"data": [2, 3, 64, 64]})
    assert big.blobs["c"] == (2, 8, 62, 62)
    legacy = parse_net_text(
        'input: "data" input_dim: 1 input_dim: 3 input_dim: 16 input_dim: 16\n'
        'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
        'convolution_param { num_output: 8 kernel_size: 3 } }', upgrade=False)
    result = infer_shapes(legacy)
    assert result.layers[0].name == "data" and result.layers[0].type == "Input"
    assert result.blobs["c"] == (1, 8, 14, 14)
    shaped = parse_net_text('input: "data" input_shape { dim: 1 dim: 2 }', upgrade=False)
    assert infer_shapes(shaped).blobs["data"] == (1, 2)
    unshaped = infer_shapes(parse_net_text('input: "data"', upgrade=False))
    assert "no input_shape or input_dim" in unshaped.layers[0].error


def test_a_python_data_layer_takes_the_given_shapes() -> None:
    net = parse_net_text(
        'layer { name: "feed" type: "Python" top: "data" top: "label" '
        'python_param { module: "my_feed" layer: "Feed" } }\n'
        'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" '
        'inner_product_param { num_output: 3 } }')
    unknown = infer_shapes(net)
    assert "known only when its code runs" in unknown.layer("feed").error
    given = infer_shapes(net, input_shapes={"data": (2, 5), "label": (2,)})
    assert given.errors == [] and given.blobs["fc"] == (2, 3)


def test_a_3d_segmentation_net_with_dice() -> None:
    text = """
    layer { name: "data" type: "Input" top: "data" top: "label"
            input_param { shape { dim: 1 dim: 1 dim: 16 dim: 32 dim: 32 }
                          shape { dim: 1 dim: 1 dim: 16 dim: 32 dim: 32 } } }
    layer { name: "enc" type: "Convolution" bottom: "data" top: "enc"
            convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
    layer { name: "bn" type: "BatchNorm" bottom: "enc" top: "enc" }
    layer { name: "down" type: "Pooling" bottom: "enc" top: "down"
            pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "mid" type: "Convolution" bottom: "down" top: "mid"
            convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
    layer { name: "up" type: "Deconvolution" bottom: "mid" top: "up"
            convolution_param { num_output: 8 kernel_size: 2 stride: 2 } }
    layer { name: "cat" type: "Concat" bottom: "enc" bottom: "up" top: "cat" }
    layer { name: "score" type: "Convolution" bottom: "cat" top: "score"
            convolution_param { num_output: 3 kernel_size: 1 } }
    layer { name: "loss" type: "DiceLoss" bottom: "score" bottom: "label" }
    layer { name: "dice" type: "Dice" bottom: "score" bottom: "label" top: "dice" top: "per_class" }
    """
    result = infer_shapes(parse_net_text(text), "TRAIN")
    assert result.errors == []
    assert result.blobs["down"] == (1, 8, 8, 16, 16)
    assert result.blobs["up"] == (1, 8, 16, 32, 32)
    assert result.blobs["cat"] == (1, 16, 16, 32, 32)
    assert result.blobs["per_class"] == (3,)
    assert result.layer("loss").tops == {AUTOMATIC_TOP: ()}
    assert AUTOMATIC_TOP not in result.blobs
    bn = result.layer("bn")
    assert bn.params == 0 and bn.param_shapes == [(8,), (8,), (1,)]
    assert result.layer("enc").param_shapes == [(8, 1, 3, 3, 3), (8,)]


def test_phase_and_stage_pick_the_layers(tmp_path: Path) -> None:
    train = write_lmdb(tmp_path / "train", (1, 8, 8))
    val = write_lmdb(tmp_path / "val", (1, 4, 4))
    text = (f'layer {{ name: "train" type: "Data" top: "data" include {{ phase: TRAIN }} '
            f'data_param {{ source: "{train.name}" batch_size: 8 }} }}\n'
            f'layer {{ name: "val" type: "Data" top: "data" include {{ phase: TEST }} '
            f'data_param {{ source: "{val.name}" batch_size: 2 }} }}\n'
            'layer { name: "extra" type: "ReLU" bottom: "data" top: "r" '
            'include { stage: "more" } }')
    net = parse_net_text(text)
    assert infer_shapes(net, "TRAIN", base_dir=tmp_path).blobs == {"data": (8, 1, 8, 8)}
    assert infer_shapes(net, "TEST", base_dir=tmp_path).blobs == {"data": (2, 1, 4, 4)}
    staged = infer_shapes(net, "TEST", base_dir=tmp_path, stages=["more"])
    assert staged.blobs["r"] == (2, 1, 4, 4)


def test_wrong_counts_and_bad_rules_are_layer_errors() -> None:
    text = """
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }
    layer { name: "crop" type: "Crop" bottom: "x" top: "c" }
    layer { name: "r" type: "ReLU" bottom: "x" top: "r"
            include { phase: TEST } exclude { stage: "a" } }
    """
    result = infer_shapes(parse_net_text(text))
    assert result.layer("crop").error == "layer 'crop' (Crop): takes 2 bottom(s), got 1"
    assert "not both" in result.layer("r").error
    assert [info.name for info in result.layers] == ["in", "crop", "r"]


def test_shape_inference_never_loads_torch(tmp_path: Path) -> None:
    """The editor's shape inference must not pay for torch, even when it reads an LMDB."""
    import subprocess
    import sys

    write_lmdb(tmp_path / "db", (1, 4, 4))
    code = (
        "import sys\n"
        "from dlp.net.prototxt import parse_net_text\n"
        "from dlp.net.shapes import infer_shapes\n"
        "from dlp.net.deploy import derive_deploy_net\n"
        "from dlp.net.validate import validate_net\n"
        f"net = parse_net_text('layer {{ name: \"d\" type: \"Data\" top: \"data\" "
        f"data_param {{ source: \"{tmp_path / 'db'}\" batch_size: 2 }} }} "
        "layer { name: \"r\" type: \"ReLU\" bottom: \"data\" top: \"r\" }')\n"
        "assert infer_shapes(net).blobs['r'] == (2, 1, 4, 4)\n"
        "validate_net(net); derive_deploy_net(net)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
