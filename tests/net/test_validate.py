"""Structural validation: each problem is found, named, and explained."""

from __future__ import annotations

import pytest

from dlp.net.prototxt import parse_net_text
from dlp.net.validate import NetIssue, NetValidationError, check_net, validate_net

INPUT = ('layer { name: "data" type: "Input" top: "data" '
         'input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }\n')
LABEL = ('layer { name: "label" type: "Input" top: "label" '
         'input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }\n')
GOOD = INPUT + LABEL + """
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "conv" bottom: "label" top: "loss" }
"""


def errors(text: str, phase: str = "TRAIN") -> list[NetIssue]:
    return [i for i in validate_net(parse_net_text(text), phase) if i.severity == "error"]


def warnings(text: str, phase: str = "TRAIN") -> list[NetIssue]:
    return [i for i in validate_net(parse_net_text(text), phase) if i.severity == "warning"]


def test_a_good_net_has_no_issues_and_in_place_layers_are_fine() -> None:
    assert validate_net(parse_net_text(GOOD), "TRAIN") == []
    assert check_net(parse_net_text(GOOD)) == []


def test_unknown_bottom_names_the_layer_the_blob_and_the_available_blobs() -> None:
    text = INPUT + 'layer { name: "conv" type: "ReLU" bottom: "dat" top: "r" }'
    [issue] = errors(text)
    assert issue.layer == "conv"
    assert "layer 'conv' (ReLU): unknown bottom blob 'dat'" in issue.message
    assert "did you mean 'data'?" in issue.message
    assert "available at this point in phase TRAIN: data" in issue.message


def test_a_bottom_produced_only_later_asks_to_reorder() -> None:
    text = INPUT + ('layer { name: "b" type: "ReLU" bottom: "a" top: "b" }\n'
                    'layer { name: "a" type: "ReLU" bottom: "data" top: "a" }')
    [issue] = errors(text)
    assert "bottom 'a' is produced only later, by layer 'a'" in issue.message


def test_cycles_are_reported_once() -> None:
    text = INPUT + ('layer { name: "a" type: "Eltwise" bottom: "data" bottom: "b" top: "a" }\n'
                    'layer { name: "b" type: "ReLU" bottom: "a" top: "b" }')
    cycles = [i for i in errors(text) if "cycle" in i.message]
    assert len(cycles) == 1
    assert "a \u2192 b \u2192 a" in cycles[0].message


def test_duplicate_top_that_is_not_in_place() -> None:
    text = INPUT + ('layer { name: "one" type: "ReLU" bottom: "data" top: "x" }\n'
                    'layer { name: "two" type: "Sigmoid" bottom: "data" top: "x" }\n'
                    # same name, but bottom 1 / top 0: not in-place in Caffe's sense
                    'layer { name: "three" type: "Eltwise" bottom: "data" bottom: "x" top: "x" }')
    found = errors(text)
    assert [i.layer for i in found] == ["two", "three"]
    assert "top 'x' is already produced by layer 'one'" in found[0].message


def test_wrong_bottom_and_top_counts_come_from_the_specs() -> None:
    text = INPUT + ('layer { name: "crop" type: "Crop" bottom: "data" top: "c" }\n'
                    'layer { name: "pool" type: "Pooling" bottom: "data" top: "p" top: "m" '
                    'pooling_param { pool: AVE kernel_size: 2 } }\n'
                    'layer { name: "conv" type: "Convolution" bottom: "data" bottom: "data" '
                    'top: "c1" convolution_param { num_output: 1 kernel_size: 1 } }\n'
                    'layer { name: "silence" type: "Silence" bottom: "data" top: "s" }')
    messages = [i.message for i in errors(text)]
    assert "layer 'crop' (Crop): takes 2 bottom(s), got 1" in messages
    assert "layer 'pool' (Pooling): produces 1 top(s), got 2" in messages
    assert any("needs one top per bottom (2), got 1" in m for m in messages)
    assert "layer 'silence' (Silence): produces 0 top(s), got 1" in messages


def test_loss_layers_may_omit_their_top_like_caffes_auto_top_blobs() -> None:
    text = GOOD.replace('top: "loss" }', "}")
    assert errors(text) == []


def test_duplicate_layer_names_within_a_phase() -> None:
    text = GOOD + 'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }'
    [issue] = errors(text)
    assert "duplicate layer name 'relu' (layers #4 and #6" in issue.message
    # the same name in two phases is normal (Caffe's LeNet has two "mnist" layers)
    phased = ('layer { name: "mnist" type: "Input" top: "data" include { phase: TRAIN } '
              'input_param { shape { dim: 1 } } }\n'
              'layer { name: "mnist" type: "Input" top: "data" include { phase: TEST } '
              'input_param { shape { dim: 1 } } }')
    assert errors(phased, "TRAIN") == errors(phased, "TEST") == []


def test_unknown_type_suggests_the_closest() -> None:
    [issue] = errors(INPUT + 'layer { name: "c" type: "Convolutoin" bottom: "data" top: "c" }')
    assert "unknown layer type 'Convolutoin'; did you mean 'Convolution'" in issue.message


def test_loss_without_a_label_in_this_phase() -> None:
    text = (INPUT + 'layer { name: "label" type: "Input" top: "label" include { phase: TRAIN } '
            'input_param { shape { dim: 1 } } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" }')
    assert errors(text, "TRAIN") == []
    [issue] = errors(text, "TEST")
    assert issue.message == ("layer 'loss' (SoftmaxWithLoss): needs a label blob: bottom "
                             "'label' is produced only in phase TRAIN (by layer 'label'), "
                             "not in TEST")
    [missing] = errors(INPUT + 'layer { name: "loss" type: "EuclideanLoss" bottom: "data" '
                       'bottom: "target" }')
    assert "needs a label blob: unknown bottom blob 'target'" in missing.message


def test_loss_weight_and_propagate_down_counts() -> None:
    text = GOOD.replace('top: "loss" }', 'top: "loss" loss_weight: 1 loss_weight: 2 '
                        'propagate_down: true }')
    messages = [i.message for i in errors(text)]
    assert any("2 loss_weight values for 1 tops" in m for m in messages)
    assert any("propagate_down once per bottom (2)" in m for m in messages)


def test_include_and_exclude_together() -> None:
    text = INPUT + ('layer { name: "r" type: "ReLU" bottom: "data" top: "r" '
                    'include { phase: TRAIN } exclude { phase: TEST } }')
    [issue] = errors(text)
    assert issue.layer == "r" and "not both" in issue.message


def test_warnings_ignored_params_no_loss_unsupported_types() -> None:
    text = INPUT + ('layer { name: "conv" type: "Convolution" bottom: "data" top: "c" '
                    'convolution_param { num_output: 1 kernel_size: 1 } '
                    'pooling_param { kernel_size: 2 } }\n'
                    'layer { name: "img" type: "ImageData" top: "i" top: "l" }')
    messages = [i.message for i in warnings(text)]
    assert ("layer 'conv' (Convolution): pooling_param is ignored by Convolution layers "
            "(it reads convolution_param)") in messages
    assert any("no loss layer in phase TRAIN" in m for m in messages)
    assert any("DLP's engine cannot run ImageData" in m for m in messages)
    assert not any("no loss" in m for m in [i.message for i in warnings(text, "TEST")])
    python = INPUT + ('layer { name: "py" type: "Python" bottom: "data" top: "p" '
                      'python_param { module: "mylayers" layer: "Dice" } }')
    assert ("layer 'py' (Python): runs Python code from module 'mylayers'; DLP refuses it "
            "unless Python layers are enabled for the project") in [
                i.message for i in warnings(python, "TEST")]


def test_check_net_raises_one_error_listing_every_problem() -> None:
    text = INPUT + ('layer { name: "a" type: "ReLU" bottom: "nope" top: "a" }\n'
                    'layer { name: "b" type: "Nope" bottom: "data" top: "b" }')
    with pytest.raises(NetValidationError) as info:
        check_net(parse_net_text(text), "TEST", source="net.prototxt")
    message = str(info.value)
    assert message.startswith("net.prototxt: 2 errors in the net: ")
    assert "'nope'" in message and "'Nope'" in message
    assert len(info.value.issues) == 2
