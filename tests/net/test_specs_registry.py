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


_PARAMS = {
    "Convolution": ["num_output: {a} kernel_size: {b} stride: {c} pad: {d}",
                    "num_output: {a} kernel_size: {b} dilation: {c} group: {e}"],
    "Deconvolution": ["num_output: {a} kernel_size: {b} stride: {c} pad: {d} group: {e}"],
    "Pooling": ["kernel_size: {b} stride: {c} pad: {d}", "pool: AVE global_pooling: true",
                "pool: AVE kernel_size: {b} stride: {c} pad: {d} round_mode: FLOOR"],
    "Crop": ["axis: {x} offset: {d}"],
    "Reshape": ["shape {{ dim: {y} dim: {z} }} axis: {x} num_axes: {w}"],
    "Slice": ["axis: {x} slice_point: {d}"],
    "Flatten": ["axis: {x} end_axis: {w}"],
    "InnerProduct": ["num_output: {a} axis: {x}"],
    "Concat": ["axis: {x}"],
    "Softmax": ["axis: {x}"],
    "ArgMax": ["top_k: {a} axis: {x}", "top_k: {a}"],
    "Tile": ["axis: {x} tiles: {d}"],
    "Reduction": ["axis: {x}"],
    "Scale": ["axis: {x} num_axes: {w} bias_term: true"],
    "Bias": ["axis: {x} num_axes: {w}"],
    "Accuracy": ["top_k: {a} axis: {x}"],
    "Embed": ["num_output: {a} input_dim: {b}"],
    "LRN": ["local_size: {b}"],
    "SoftmaxWithLoss": [""],
}


def test_random_layers_either_shape_or_raise_a_shape_error() -> None:
    """No parameter or input combination escapes as anything but a ShapeError."""
    import random

    from dlp.net.specs import ShapeError

    rng = random.Random(1234)
    specs = [s for s in all_specs() if not s.is_data_source and s.type != "Python"]
    shaped = 0
    for _ in range(1500):
        spec = rng.choice(specs)
        low, high = spec.bottoms
        bottoms_n = rng.randint(low, min(high if high is not None else 3, 3))
        rank = rng.randint(0, 5)
        bottoms = [tuple(rng.randint(1, 9) for _ in range(rank)) for _ in range(bottoms_n)]
        if bottoms and rng.random() < 0.5:
            bottoms = [bottoms[0]] * bottoms_n
        values = {k: rng.randint(lo, hi) for k, lo, hi in (
            ("a", 0, 6), ("b", 0, 6), ("c", 0, 3), ("d", 0, 4), ("e", 1, 3), ("x", -5, 5),
            ("y", -1, 4), ("z", -1, 4), ("w", -2, 3))}
        param = rng.choice(_PARAMS.get(spec.type, [""])).format(**values)
        tops_n = rng.randint(spec.tops[0], min(spec.tops[1] if spec.tops[1] is not None else 3, 3))
        text = (f'name: "l" type: "{spec.type}" '
                + "".join(f'bottom: "b{i}" ' for i in range(bottoms_n))
                + "".join(f'top: "t{i}" ' for i in range(tops_n)))
        if param and spec.param_field:
            text += f"{spec.param_field} {{ {param} }}"
        layer = text_format.Parse(text, caffe_pb2.LayerParameter())
        try:
            tops = spec.output_shapes(layer, bottoms)
            spec.param_shapes(layer, bottoms)
            assert spec.learnable_count(layer, bottoms) >= 0
            assert spec.flops(layer, bottoms, tops) >= 0
        except ShapeError:
            continue
        assert all(d > 0 for top in tops for d in top), (text, bottoms, tops)
        shaped += 1
    assert shaped > 500  # the random layers are mostly valid, so the test has teeth


def test_types_marked_runnable_are_registered_in_the_engine() -> None:
    registry = pytest.importorskip("dlp.engine.registry")
    pytest.importorskip("dlp.engine.layers")
    engine_types = set(registry.registered_types())
    runnable = {spec.type for spec in all_specs() if spec.engine_supported}
    assert runnable <= engine_types, sorted(runnable - engine_types)
