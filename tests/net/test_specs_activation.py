"""Activation layers: identity shapes, per-element FLOPs, PReLU's slope blob, checks."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from dlp.net.specs import ShapeError, all_specs, get_spec
from dlp.proto import caffe_pb2


def make_layer(text: str) -> caffe_pb2.LayerParameter:
    return text_format.Parse(text, caffe_pb2.LayerParameter())


ACTIVATIONS = sorted(spec.type for spec in all_specs() if spec.category == "Activation")


def test_the_activation_family_has_every_type_the_engine_runs() -> None:
    assert set(ACTIVATIONS) >= {"ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "AbsVal", "Power",
                                "Exp", "Log", "BNLL", "Dropout", "Clip", "Swish", "Threshold"}


@pytest.mark.parametrize("type_name", ACTIVATIONS)
def test_activation_keeps_the_shape_and_costs_per_element(type_name: str) -> None:
    layer = make_layer(f'name: "a" type: "{type_name}" bottom: "x" top: "x"')
    if type_name == "Clip":
        layer.clip_param.min, layer.clip_param.max = -1.0, 1.0
    spec = get_spec(type_name)
    assert spec.bottoms == (1, 1) and spec.tops == (1, 1)
    for shape in [(2, 3, 4, 5), (1, 2, 3, 4, 5)]:
        assert spec.output_shapes(layer, [shape]) == [shape]
        flops = spec.flops(layer, [shape], [shape])
        assert flops % (2 * 3 * 4 * 5) == 0 and flops > 0


def test_relu_key_params_show_a_leaky_slope() -> None:
    spec = get_spec("ReLU")
    assert spec.key_params(make_layer('type: "ReLU"')) == ""
    assert spec.key_params(make_layer('type: "ReLU" relu_param { negative_slope: 0.1 }')) == (
        "slope 0.1")


def test_prelu_slopes_per_channel_or_one_shared_scalar() -> None:
    spec = get_spec("PReLU")
    per_channel = make_layer('name: "p" type: "PReLU"')
    shared = make_layer('name: "p" type: "PReLU" prelu_param { channel_shared: true }')
    assert spec.param_shapes(per_channel, [(2, 7, 4, 4)]) == [(7,)]
    assert spec.learnable_count(per_channel, [(2, 7, 4, 4)]) == 7
    # Caffe stores a shared slope as a 0-axis blob holding one value
    assert spec.param_shapes(shared, [(2, 7, 4, 4)]) == [()]
    assert spec.learnable_count(shared, [(2, 7, 4, 4)]) == 1
    with pytest.raises(ShapeError, match="at least 2 axes"):
        spec.output_shapes(per_channel, [(5,)])


def test_dropout_shows_its_ratio_and_rejects_one() -> None:
    spec = get_spec("Dropout")
    assert spec.key_params(make_layer('type: "Dropout"')) == "p=0.5"
    assert spec.key_params(make_layer('type: "Dropout" dropout_param { dropout_ratio: 0.1 }')
                           ).startswith("p=0.1")
    bad = make_layer('name: "drop" type: "Dropout" dropout_param { dropout_ratio: 1 }')
    with pytest.raises(ShapeError, match=r"layer 'drop' \(Dropout\): dropout_ratio"):
        spec.output_shapes(bad, [(1, 2)])


def test_clip_min_above_max_is_an_error_and_power_shows_its_shift() -> None:
    bad = make_layer('name: "clip" type: "Clip" clip_param { min: 2 max: 1 }')
    with pytest.raises(ShapeError, match="min 2 is above max 1"):
        get_spec("Clip").output_shapes(bad, [(1, 2)])
    shift = make_layer('type: "Power" power_param { shift: -116 }')
    assert get_spec("Power").key_params(shift) == "\u2212116"
