"""InnerProduct (axis, transpose) and Embed shapes, params and FLOPs."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from dlp.net.specs import ShapeError, get_spec
from dlp.proto import caffe_pb2


def make_layer(text: str) -> caffe_pb2.LayerParameter:
    return text_format.Parse(text, caffe_pb2.LayerParameter())


def test_inner_product_flattens_from_axis_1() -> None:
    spec = get_spec("InnerProduct")
    layer = make_layer('name: "fc" type: "InnerProduct" inner_product_param { num_output: 10 }')
    assert spec.output_shapes(layer, [(2, 3, 4, 5)]) == [(2, 10)]
    assert spec.param_shapes(layer, [(2, 3, 4, 5)]) == [(10, 60), (10,)]
    assert spec.learnable_count(layer, [(2, 3, 4, 5)]) == 610
    assert spec.flops(layer, [(2, 3, 4, 5)], [(2, 10)]) == 2 * 2 * 60 * 10
    assert spec.key_params(layer) == "\u2192 10"


def test_inner_product_transpose_and_axis() -> None:
    spec = get_spec("InnerProduct")
    layer = make_layer('name: "fc" type: "InnerProduct" inner_product_param { num_output: 7 '
                       'axis: 2 transpose: true bias_term: false }')
    assert spec.output_shapes(layer, [(2, 3, 4, 5)]) == [(2, 3, 7)]
    assert spec.param_shapes(layer, [(2, 3, 4, 5)]) == [(20, 7)]


def test_inner_product_needs_num_output() -> None:
    with pytest.raises(ShapeError, match=r"layer 'fc' \(InnerProduct\).*num_output"):
        get_spec("InnerProduct").output_shapes(make_layer('name: "fc" type: "InnerProduct"'),
                                               [(1, 4)])


def test_embed_appends_the_vector_axis() -> None:
    spec = get_spec("Embed")
    layer = make_layer('name: "e" type: "Embed" embed_param { num_output: 8 input_dim: 100 }')
    assert spec.output_shapes(layer, [(4, 6)]) == [(4, 6, 8)]
    assert spec.param_shapes(layer, [(4, 6)]) == [(100, 8), (8,)]
