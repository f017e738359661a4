"""The spec registry: lookups, closest names, duplicates, and a sane declaration per type."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from dlp.errors import DLPError
from dlp.net.specs import (
    CATEGORIES,
    DuplicateSpecError,
    LayerSpec,
    UnknownLayerTypeError,
    all_specs,
    get_spec,
    register_spec,
)
from dlp.proto import caffe_pb2

ENGINE_TYPES = {
    "Input", "DummyData", "Data", "Convolution", "Deconvolution", "Pooling", "ReLU", "PReLU",
    "ELU", "Sigmoid", "TanH", "AbsVal", "Power", "Exp", "Log", "BNLL", "LRN", "BatchNorm",
    "Scale", "Bias", "Dropout", "InnerProduct", "Crop", "Concat", "Eltwise", "Split", "Slice",
    "Flatten", "Reshape", "Softmax", "ArgMax", "Silence", "SoftmaxWithLoss",
    "SigmoidCrossEntropyLoss", "EuclideanLoss", "Accuracy", "Dice", "DiceLoss", "Python",
}


def test_every_layer_type_of_the_engine_has_a_spec() -> None:
    registered = {spec.type for spec in all_specs()}
    assert registered >= ENGINE_TYPES
    assert all(get_spec(name).type == name for name in ENGINE_TYPES)


def test_declarations_are_complete_and_consistent() -> None:
    layer_fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    for spec in all_specs():
        assert spec.category in CATEGORIES, spec.type
        assert spec.summary and spec.summary.endswith("."), spec.type
        for low, high in (spec.bottoms, spec.tops):
            assert low >= 0 and (high is None or high >= low), spec.type
        if spec.param_field is not None:
            assert spec.param_field in layer_fields, spec.type
        for name in spec.extra_param_fields:
            assert name in layer_fields, spec.type


def test_all_specs_are_grouped_by_category() -> None:
    order = [CATEGORIES.index(spec.category) for spec in all_specs()]
    assert order == sorted(order)


def test_unknown_type_names_the_closest_known_types() -> None:
    with pytest.raises(UnknownLayerTypeError) as info:
        get_spec("Convolutoin")
    assert "unknown layer type 'Convolutoin'" in str(info.value)
    assert info.value.closest[0] == "Convolution"
    assert isinstance(info.value, DLPError)
    with pytest.raises(UnknownLayerTypeError, match="did you mean 'ReLU'"):
        get_spec("relu")


def test_registering_a_type_twice_is_an_error() -> None:
    class AnotherReLU(LayerSpec):
        type = "ReLU"
        category = "Activation"
        summary = "A second ReLU."

    with pytest.raises(DuplicateSpecError, match="'ReLU' is registered twice"):
        register_spec(AnotherReLU)
    assert type(get_spec("ReLU")).__name__ == "ReLUSpec"


def test_key_params_never_fail_on_default_parameters() -> None:
    for spec in all_specs():
        layer = text_format.Parse(f'name: "x" type: "{spec.type}"', caffe_pb2.LayerParameter())
        assert isinstance(spec.key_params(layer), str)
