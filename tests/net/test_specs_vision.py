"""Convolution, Deconvolution, Pooling and Crop shapes against hand computations."""

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


# ---------------------------------------------------------------- Convolution

CONV = ('name: "conv" type: "Convolution" bottom: "x" top: "y" '
        'convolution_param { num_output: 16 kernel_size: 5 stride: 2 pad: 1 }')


def test_convolution_output_size_follows_caffes_floor_formula() -> None:
    # (32 + 2*1 - 5) // 2 + 1 = 15
    assert shapes(CONV, (2, 3, 32, 32)) == [(2, 16, 15, 15)]


def test_convolution_weights_are_out_in_over_group_kernel_and_flops_count_macs_twice() -> None:
    layer = make_layer(CONV)
    spec = get_spec("Convolution")
    assert spec.param_shapes(layer, [(2, 3, 32, 32)]) == [(16, 3, 5, 5), (16,)]
    assert spec.learnable_count(layer, [(2, 3, 32, 32)]) == 16 * 3 * 25 + 16
    # every output value: 3 input channels x 5x5 taps, one multiply-add (2 FLOPs) each
    outputs = 2 * 16 * 15 * 15
    assert spec.flops(layer, [(2, 3, 32, 32)], [(2, 16, 15, 15)]) == outputs * 3 * 25 * 2
    assert spec.key_params(layer) == "16 \u00d7 5\u00d75 /2 p1"


def test_convolution_group_and_dilation() -> None:
    text = ('name: "c" type: "Convolution" convolution_param { num_output: 6 kernel_size: 3 '
            'dilation: 2 group: 2 bias_term: false }')
    layer = make_layer(text)
    # dilated extent 2*(3-1)+1 = 5: 10 - 5 + 1 = 6
    assert shapes(text, (1, 4, 10, 10)) == [(1, 6, 6, 6)]
    assert get_spec("Convolution").param_shapes(layer, [(1, 4, 10, 10)]) == [(6, 2, 3, 3)]
    assert get_spec("Convolution").key_params(layer).endswith("d2 g2")


def test_convolution_kernel_stride_pad_per_axis_h_w() -> None:
    text = ('name: "c" type: "Convolution" convolution_param { num_output: 1 kernel_h: 3 '
            'kernel_w: 5 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0 }')
    # h: (10 + 2 - 3) / 1 + 1 = 10;  w: (20 - 5) // 2 + 1 = 8
    assert shapes(text, (1, 1, 10, 20)) == [(1, 1, 10, 8)]


def test_convolution_3d_volume_with_repeated_per_axis_values() -> None:
    text = ('name: "c3" type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 '
            'pad: 1 stride: 1 stride: 2 stride: 2 }')
    layer = make_layer(text)
    assert shapes(text, (1, 2, 8, 16, 16)) == [(1, 4, 8, 8, 8)]
    assert get_spec("Convolution").param_shapes(layer, [(1, 2, 8, 16, 16)]) == [
        (4, 2, 3, 3, 3), (4,)]


def test_convolution_with_two_bottoms_shapes_each_top() -> None:
    assert shapes(CONV, (1, 3, 9, 9), (1, 3, 9, 9)) == [(1, 16, 4, 4)] * 2
    with pytest.raises(ShapeError, match="bottom 1 has shape"):
        shapes(CONV, (1, 3, 9, 9), (1, 3, 8, 8))


@pytest.mark.parametrize(("param", "bottom", "message"), [
    ("kernel_size: 3", (1, 3, 8, 8), "num_output"),
    ("num_output: 4 kernel_size: 3 group: 2", (1, 3, 8, 8), "group 2"),
    ("num_output: 3 kernel_size: 3 group: 3", (1, 6, 8, 8), None),
    ("num_output: 4 kernel_size: 3 kernel_size: 3", (1, 3, 8, 8, 8), "once per spatial axis"),
    ("num_output: 4 kernel_h: 3 kernel_w: 3", (1, 3, 8, 8, 8), "2-D inputs only"),
    ("num_output: 4", (1, 3, 8, 8), "once or once per spatial axis"),
    ("num_output: 4 kernel_size: 9", (1, 3, 8, 8), "larger than the padded input"),
    ("num_output: 4 kernel_size: 3 stride: 0", (1, 3, 8, 8), "stride must be positive"),
])
def test_convolution_bad_parameters_name_the_layer_and_the_problem(
        param: str, bottom: tuple[int, ...], message: str | None) -> None:
    text = f'name: "bad" type: "Convolution" convolution_param {{ {param} }}'
    if message is None:
        assert shapes(text, bottom)
        return
    with pytest.raises(ShapeError, match=message) as info:
        shapes(text, bottom)
    assert "layer 'bad' (Convolution)" in str(info.value)
    assert info.value.layer == "bad"


# ---------------------------------------------------------------- Deconvolution

def test_deconvolution_fcn_upscore_size_and_weight_layout() -> None:
    text = ('name: "upscore" type: "Deconvolution" convolution_param { num_output: 21 '
            'group: 21 kernel_size: 64 stride: 32 bias_term: false }')
    layer = make_layer(text)
    # 32 * (10 - 1) + 64 = 352
    assert shapes(text, (1, 21, 10, 10)) == [(1, 21, 352, 352)]
    # Caffe's deconvolution weights are (C_in, num_output / group, k, k)
    assert get_spec("Deconvolution").param_shapes(layer, [(1, 21, 10, 10)]) == [(21, 1, 64, 64)]
    assert get_spec("Deconvolution").key_params(layer) == "21 \u00d7 64\u00d764 \u219132 g21"


def test_deconvolution_with_pad_and_in_3d() -> None:
    tran = ('name: "up" type: "Deconvolution" convolution_param { num_output: 2 kernel_size: 31 '
            'stride: 16 pad: 8 }')
    # 16 * (5 - 1) + 31 - 2 * 8 = 79
    assert shapes(tran, (1, 2, 5, 5)) == [(1, 2, 79, 79)]
    up3 = ('name: "up3" type: "Deconvolution" convolution_param { num_output: 4 kernel_size: 2 '
           'stride: 2 }')
    layer = make_layer(up3)
    assert shapes(up3, (1, 8, 4, 4, 4)) == [(1, 4, 8, 8, 8)]
    spec = get_spec("Deconvolution")
    assert spec.param_shapes(layer, [(1, 8, 4, 4, 4)]) == [(8, 4, 2, 2, 2), (4,)]
    # each input value scatters into num_output x 2x2x2 outputs
    assert spec.flops(layer, [(1, 8, 4, 4, 4)], [(1, 4, 8, 8, 8)]) == 2 * 8 * 64 * 4 * 8


def test_deconvolution_pad_too_large_is_an_error() -> None:
    text = ('name: "up" type: "Deconvolution" convolution_param { num_output: 2 kernel_size: 2 '
            'pad: 3 }')
    with pytest.raises(ShapeError, match="pad 3 is too large"):
        shapes(text, (1, 2, 1, 1))


# ---------------------------------------------------------------- Pooling

def pool(param: str) -> str:
    return f'name: "pool" type: "Pooling" top: "p" pooling_param {{ {param} }}'


@pytest.mark.parametrize(("size", "param", "expected"), [
    (7, "kernel_size: 2 stride: 2", 4),                  # ceil(5/2)+1 = 4 (floor mode: 3)
    (7, "kernel_size: 2 stride: 2 round_mode: FLOOR", 3),
    (6, "kernel_size: 3 stride: 2", 3),                  # ceil(3/2)+1 = 3
    (6, "kernel_size: 3 stride: 2 round_mode: FLOOR", 2),
    # pad 1: ceil(5/2)+1 = 4, but window 4 would start at 6 >= 5 + 1: Caffe drops it
    (5, "kernel_size: 2 stride: 2 pad: 1", 3),
    (224, "kernel_size: 3 stride: 2", 112),              # ceil(221/2)+1
    (2, "kernel_size: 3 stride: 2", 1),                  # a window larger than the input
])
def test_pooling_rounds_up_and_drops_a_last_window_starting_in_the_padding(
        size: int, param: str, expected: int) -> None:
    assert shapes(pool(param), (2, 3, size, size)) == [(2, 3, expected, expected)]


def test_pooling_window_rule_applies_to_every_axis_once_any_axis_is_padded() -> None:
    # height unpadded: ceil((5 - 1) / 3) + 1 = 3, but window 3 starts at 6 >= 5 + 0
    # width padded 1: ceil((6 + 2 - 2) / 3) + 1 = 3, window 3 starts at 6 < 6 + 1
    text = pool("kernel_h: 1 kernel_w: 2 stride: 3 pad_h: 0 pad_w: 1")
    assert shapes(text, (1, 1, 5, 6)) == [(1, 1, 2, 3)]
    assert shapes(pool("kernel_h: 1 kernel_w: 2 stride: 3"), (1, 1, 5, 6)) == [(1, 1, 3, 3)]


def test_pooling_global_and_rectangular() -> None:
    assert shapes(pool("pool: AVE global_pooling: true"), (2, 3, 7, 9)) == [(2, 3, 1, 1)]
    text = pool("kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 3")
    assert shapes(text, (1, 1, 8, 9)) == [(1, 1, 4, 3)]


def test_pooling_3d_applies_the_kernel_to_every_spatial_axis() -> None:
    assert shapes(pool("kernel_size: 2 stride: 2"), (1, 2, 8, 7, 6)) == [(1, 2, 4, 4, 3)]


def test_pooling_flops_and_key_params() -> None:
    layer = make_layer(pool("pool: MAX kernel_size: 2 stride: 2"))
    spec = get_spec("Pooling")
    assert spec.flops(layer, [(1, 1, 4, 4)], [(1, 1, 2, 2)]) == 4 * 4
    assert spec.key_params(layer) == "MAX 2\u00d72 /2"
    assert spec.key_params(make_layer(pool("pool: AVE global_pooling: true"))) == "AVE global"


def test_pooling_mask_top_only_for_max() -> None:
    spec = get_spec("Pooling")
    two_tops = 'name: "p" type: "Pooling" top: "a" top: "mask" pooling_param { %s kernel_size: 2 }'
    assert spec.top_count_range(make_layer(two_tops % "pool: MAX")) == (1, 2)
    assert spec.top_count_range(make_layer(two_tops % "pool: AVE")) == (1, 1)
    assert shapes(two_tops % "pool: MAX", (1, 1, 4, 4)) == [(1, 1, 3, 3)] * 2


@pytest.mark.parametrize(("param", "bottom", "message"), [
    ("stride: 2", (1, 1, 4, 4), "needs kernel_size"),
    ("kernel_size: 2 pad: 2", (1, 1, 4, 4), "smaller than the kernel"),
    ("global_pooling: true kernel_size: 2", (1, 1, 4, 4), "no kernel size"),
    ("kernel_h: 2 kernel_w: 2", (1, 1, 4, 4, 4), "4-D inputs"),
    ("kernel_size: 2", (4, 4), "at least 3 axes"),
    ("kernel_size: 3 round_mode: FLOOR", (1, 1, 2, 2), "larger than the padded input"),
])
def test_pooling_bad_parameters(param: str, bottom: tuple[int, ...], message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        shapes(pool(param), bottom)


# ---------------------------------------------------------------- Crop

def test_crop_fcn_alignment_keeps_leading_axes() -> None:
    text = 'name: "score" type: "Crop" crop_param { axis: 2 offset: 19 }'
    assert shapes(text, (1, 21, 352, 352), (1, 3, 300, 320)) == [(1, 21, 300, 320)]
    assert get_spec("Crop").key_params(make_layer(text)) == "axis 2, offset 19"


def test_crop_per_axis_offsets_from_axis_1() -> None:
    text = 'name: "c" type: "Crop" crop_param { axis: 1 offset: 0 offset: 2 offset: 3 }'
    assert shapes(text, (1, 21, 44, 44), (1, 3, 32, 32)) == [(1, 3, 32, 32)]


@pytest.mark.parametrize(("param", "message"), [
    ("axis: 2 offset: 13", "cannot crop 32 at offset 13 from size 44"),
    ("axis: 2 offset: 1 offset: 2 offset: 3", "one per cropped axis"),
    ("axis: 4", "out of range"),
])
def test_crop_errors(param: str, message: str) -> None:
    text = f'name: "c" type: "Crop" crop_param {{ {param} }}'
    with pytest.raises(ShapeError, match=message):
        shapes(text, (1, 21, 44, 44), (1, 3, 32, 32))


def test_crop_default_axis_2_offset_0() -> None:
    assert shapes('name: "c" type: "Crop"', (2, 5, 10, 10), (2, 1, 6, 7)) == [(2, 5, 6, 7)]
