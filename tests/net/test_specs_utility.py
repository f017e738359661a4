"""Concat, Eltwise, Split, Slice, Flatten, Reshape (0 / -1), Softmax, ArgMax, Silence, ..."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from dlp.net.specs import ShapeError, get_spec
from dlp.proto import caffe_pb2


def make_layer(text: str) -> caffe_pb2.LayerParameter:
    return text_format.Parse(text, caffe_pb2.LayerParameter())


def shapes(text: str, *bottoms: tuple[int, ...]) -> list[tuple[int, ...]]:
    layer = make_layer(text)
    return get_spec(layer.type).output_shapes(layer, list(bottoms))


def test_concat_sums_the_concat_axis_and_checks_the_others() -> None:
    assert shapes('name: "c" type: "Concat"', (1, 3, 8, 8), (1, 5, 8, 8)) == [(1, 8, 8, 8)]
    assert shapes('name: "c" type: "Concat" concat_param { axis: -1 }',
                  (1, 3, 8, 2), (1, 3, 8, 6)) == [(1, 3, 8, 8)]
    assert shapes('name: "c" type: "Concat" concat_param { concat_dim: 0 }',
                  (1, 3), (2, 3)) == [(3, 3)]
    with pytest.raises(ShapeError, match="bottom 1 1\u00d75\u00d78\u00d79 must match bottom 0"):
        shapes('name: "c" type: "Concat"', (1, 3, 8, 8), (1, 5, 8, 9))


def test_eltwise_needs_equal_shapes_and_one_coeff_per_bottom() -> None:
    assert shapes('name: "e" type: "Eltwise"', (1, 2, 3), (1, 2, 3)) == [(1, 2, 3)]
    with pytest.raises(ShapeError, match="bottom 1 has shape"):
        shapes('name: "e" type: "Eltwise"', (1, 2, 3), (1, 2, 4))
    with pytest.raises(ShapeError, match="one coeff per bottom"):
        shapes('name: "e" type: "Eltwise" eltwise_param { coeff: 1 }', (1, 2), (1, 2))
    with pytest.raises(ShapeError, match="SUM only"):
        shapes('name: "e" type: "Eltwise" eltwise_param { operation: PROD coeff: 1 coeff: 1 }',
               (1, 2), (1, 2))
    layer = make_layer('type: "Eltwise" eltwise_param { operation: SUM coeff: 1 coeff: -1 }')
    assert get_spec("Eltwise").key_params(layer) == "SUM 1,-1"
    assert get_spec("Eltwise").flops(layer, [(2,), (2,)], [(2,)]) == 2 * (1 + 2)


def test_split_copies_to_every_top() -> None:
    assert shapes('name: "s" type: "Split" top: "a" top: "b" top: "c"', (2, 3)) == [(2, 3)] * 3


def test_slice_at_points_or_evenly() -> None:
    assert shapes('name: "s" type: "Slice" top: "a" top: "b" top: "c" slice_param { axis: 1 '
                  'slice_point: 1 slice_point: 4 }', (2, 6, 3)) == [(2, 1, 3), (2, 3, 3),
                                                                     (2, 2, 3)]
    assert shapes('name: "s" type: "Slice" top: "a" top: "b"', (2, 6)) == [(2, 3), (2, 3)]
    with pytest.raises(ShapeError, match="does not split evenly"):
        shapes('name: "s" type: "Slice" top: "a" top: "b"', (2, 5))
    with pytest.raises(ShapeError, match="increase strictly"):
        shapes('name: "s" type: "Slice" top: "a" top: "b" slice_param { slice_point: 6 }',
               (2, 6))
    with pytest.raises(ShapeError, match="need 1 slice points"):
        shapes('name: "s" type: "Slice" top: "a" top: "b" slice_param { slice_point: 1 '
               'slice_point: 2 }', (2, 6))


def test_flatten_merges_axis_to_end_axis() -> None:
    assert shapes('name: "f" type: "Flatten"', (2, 3, 4, 5)) == [(2, 60)]
    assert shapes('name: "f" type: "Flatten" flatten_param { axis: 1 end_axis: 2 }',
                  (2, 3, 4, 5)) == [(2, 12, 5)]


@pytest.mark.parametrize(("param", "bottom", "expected"), [
    ("shape { dim: 0 dim: -1 }", (2, 3, 4, 5), (2, 60)),
    ("shape { dim: 0 dim: 2 dim: 4 }", (2, 8), (2, 2, 4)),               # Caffe's doc example
    ("shape { dim: -1 dim: 0 dim: 5 }", (2, 3, 4, 5), (8, 3, 5)),
    ("shape { dim: 1 } axis: 1 num_axes: 0", (2, 3, 4, 5), (2, 1, 3, 4, 5)),  # insert an axis
    ("shape { dim: 1 } axis: -1 num_axes: 0", (2, 3), (2, 3, 1)),      # append an axis
    ("shape { dim: 3 dim: -1 } axis: 1", (2, 12, 5), (2, 3, 20)),
    ("shape { dim: 6 dim: 2 } axis: 1 num_axes: 1", (2, 12, 5), (2, 6, 2, 5)),
])
def test_reshape_copies_zeros_and_infers_minus_one(
        param: str, bottom: tuple[int, ...], expected: tuple[int, ...]) -> None:
    assert shapes(f'name: "r" type: "Reshape" reshape_param {{ {param} }}', bottom) == [expected]


@pytest.mark.parametrize(("param", "message"), [
    ("shape { dim: -1 dim: -1 }", "more than one -1"),
    ("shape { dim: 7 dim: -1 }", "do not divide by 7"),
    ("shape { dim: 5 dim: 5 }", "has 25 values"),
    ("shape { dim: 0 dim: 0 dim: 0 }", "no axis 2"),
])
def test_reshape_errors(param: str, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        shapes(f'name: "r" type: "Reshape" reshape_param {{ {param} }}', (2, 12))


def test_softmax_keeps_the_shape_and_checks_the_axis() -> None:
    assert shapes('name: "s" type: "Softmax"', (1, 3, 4)) == [(1, 3, 4)]
    with pytest.raises(ShapeError, match=r"softmax_param\.axis 3 is out of range"):
        shapes('name: "s" type: "Softmax" softmax_param { axis: 3 }', (1, 3, 4))


def test_argmax_shapes_follow_caffe() -> None:
    assert shapes('name: "a" type: "ArgMax" argmax_param { top_k: 3 }', (2, 10)) == [(2, 1, 3)]
    assert shapes('name: "a" type: "ArgMax" argmax_param { top_k: 3 out_max_val: true }',
                  (2, 10)) == [(2, 2, 3)]
    assert shapes('name: "a" type: "ArgMax" argmax_param { top_k: 2 }', (2, 3, 4, 4)) == [
        (2, 1, 2, 1)]
    assert shapes('name: "a" type: "ArgMax" argmax_param { axis: 1 }', (2, 5, 4, 4)) == [
        (2, 1, 4, 4)]
    with pytest.raises(ShapeError, match="top_k 4 exceeds"):
        shapes('name: "a" type: "ArgMax" argmax_param { axis: 1 top_k: 4 }', (2, 3, 4))
    with pytest.raises(ShapeError, match="at least a batch axis"):
        shapes('name: "a" type: "ArgMax"', ())


def test_silence_has_no_tops_and_tile_and_reduction() -> None:
    assert get_spec("Silence").tops == (0, 0)
    assert shapes('name: "s" type: "Silence"', (2, 3)) == []
    assert shapes('name: "t" type: "Tile" tile_param { axis: 1 tiles: 3 }', (2, 3, 4)) == [
        (2, 9, 4)]
    assert shapes('name: "r" type: "Reduction"', (2, 3, 4)) == [()]
    assert shapes('name: "r" type: "Reduction" reduction_param { axis: 1 operation: MEAN }',
                  (2, 3, 4)) == [(2,)]


def test_python_layer_shapes_are_unknown_until_it_runs() -> None:
    layer = make_layer('name: "dice" type: "Python" python_param { module: "m" layer: "Dice" }')
    spec = get_spec("Python")
    assert spec.bottoms == (0, None) and spec.tops == (0, None)
    assert spec.key_params(layer) == "m.Dice"
    with pytest.raises(ShapeError, match="known only when its code runs"):
        spec.output_shapes(layer, [(1, 2, 4, 4), (1, 1, 4, 4)])
