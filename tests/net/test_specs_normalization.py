"""LRN, BatchNorm (three blobs, none learnable), MVN, Scale and Bias broadcasting."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from dlp.net.specs import ShapeError, get_spec
from dlp.proto import caffe_pb2


def make_layer(text: str) -> caffe_pb2.LayerParameter:
    return text_format.Parse(text, caffe_pb2.LayerParameter())


def test_lrn_keeps_4d_shapes_and_rejects_even_windows_and_volumes() -> None:
    spec = get_spec("LRN")
    layer = make_layer('name: "norm1" type: "LRN" lrn_param { local_size: 5 alpha: 0.0001 '
                       'beta: 0.75 }')
    assert spec.output_shapes(layer, [(1, 96, 55, 55)]) == [(1, 96, 55, 55)]
    assert spec.key_params(layer) == "5 \u03b1=0.0001 \u03b2=0.75"
    assert spec.flops(layer, [(1, 2, 3, 3)], [(1, 2, 3, 3)]) == 18 * (2 * 5 + 3)
    with pytest.raises(ShapeError, match="odd"):
        spec.output_shapes(make_layer('name: "n" type: "LRN" lrn_param { local_size: 4 }'),
                           [(1, 8, 4, 4)])
    with pytest.raises(ShapeError, match="4 axes"):
        spec.output_shapes(layer, [(1, 8, 4, 4, 4)])


def test_batchnorm_has_mean_variance_and_scale_factor_blobs_but_nothing_learnable() -> None:
    spec = get_spec("BatchNorm")
    layer = make_layer('name: "bn" type: "BatchNorm"')
    assert spec.output_shapes(layer, [(2, 16, 8, 8, 8)]) == [(2, 16, 8, 8, 8)]
    assert spec.param_shapes(layer, [(2, 16, 8, 8)]) == [(16,), (16,), (1,)]
    assert spec.learnable_count(layer, [(2, 16, 8, 8)]) == 0
    assert spec.key_params(make_layer(
        'type: "BatchNorm" batch_norm_param { use_global_stats: true }')) == "global stats"


def test_mvn_keeps_the_shape() -> None:
    layer = make_layer('name: "mvn" type: "MVN" mvn_param { normalize_variance: false }')
    assert get_spec("MVN").output_shapes(layer, [(2, 3, 4)]) == [(2, 3, 4)]
    assert get_spec("MVN").flops(layer, [(2, 3, 4)], [(2, 3, 4)]) == 2 * 24


def test_scale_with_one_bottom_learns_a_per_channel_scale_and_optional_bias() -> None:
    spec = get_spec("Scale")
    plain = make_layer('name: "s" type: "Scale"')
    biased = make_layer('name: "s" type: "Scale" scale_param { bias_term: true }')
    assert spec.output_shapes(plain, [(2, 16, 8, 8)]) == [(2, 16, 8, 8)]
    assert spec.param_shapes(plain, [(2, 16, 8, 8)]) == [(16,)]
    assert spec.param_shapes(biased, [(2, 16, 8, 8)]) == [(16,), (16,)]
    everything = make_layer('name: "s" type: "Scale" scale_param { num_axes: -1 }')
    assert spec.param_shapes(everything, [(2, 16, 8, 8)]) == [(16, 8, 8)]
    scalar = make_layer('name: "s" type: "Scale" scale_param { axis: 0 num_axes: 0 }')
    assert spec.param_shapes(scalar, [(2, 16, 8, 8)]) == [()]


def test_scale_with_two_bottoms_takes_the_factor_from_bottom_1() -> None:
    spec = get_spec("Scale")
    layer = make_layer('name: "s" type: "Scale" scale_param { axis: 0 bias_term: true }')
    assert spec.output_shapes(layer, [(2, 3, 4, 4), (2, 3)]) == [(2, 3, 4, 4)]
    assert spec.param_shapes(layer, [(2, 3, 4, 4), (2, 3)]) == [(2, 3)]  # the bias only
    with pytest.raises(ShapeError, match=r"bottom 1 2\u00d74 does not match"):
        spec.output_shapes(layer, [(2, 3, 4, 4), (2, 4)])


def test_bias_learns_one_value_per_channel_and_checks_num_axes() -> None:
    spec = get_spec("Bias")
    layer = make_layer('name: "b" type: "Bias"')
    assert spec.param_shapes(layer, [(4, 5, 6)]) == [(5,)]
    too_many = make_layer('name: "b" type: "Bias" bias_param { axis: 1 num_axes: 3 }')
    with pytest.raises(ShapeError, match="exceeds"):
        spec.output_shapes(too_many, [(4, 5, 6)])
