"""Normalization layers: LRN, BatchNorm, MVN and the Scale/Bias pair BatchNorm needs."""

from __future__ import annotations

from typing import Any

from dlp.net.specs.base import (
    ALPHA,
    BETA,
    LayerSpec,
    Shape,
    count,
    format_number,
    format_shape,
    register_spec,
)


@register_spec
class LRNSpec(LayerSpec):
    type = "LRN"
    category = "Normalization"
    summary = "Local response normalization across nearby channels or within a channel."
    param_field = "lrn_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        shape = tuple(bottom_shapes[0])
        if len(shape) != 4:
            raise self.error(layer, f"the input must have 4 axes (N, C, H, W); got "
                             f"{format_shape(shape)}")
        if layer.lrn_param.local_size % 2 != 1:
            raise self.error(layer, f"local_size must be odd; got {layer.lrn_param.local_size}")
        return [shape]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        # A window sum of squares per element, then scale, power and divide.
        return (2 * layer.lrn_param.local_size + 3) * count(top_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.lrn_param
        region = " within" if p.norm_region == 1 else ""
        return (f"{p.local_size} {ALPHA}={format_number(p.alpha)} "
                f"{BETA}={format_number(p.beta)}{region}")


@register_spec
class BatchNormSpec(LayerSpec):
    """Caffe's BatchNorm: blobs mean ``(C,)``, variance ``(C,)``, scale factor ``(1,)``.

    None of the three is learned (Caffe fixes their ``lr_mult`` to 0), so the layer
    counts 0 learnable parameters though its ``.caffemodel`` entry holds three blobs.
    """

    type = "BatchNorm"
    category = "Normalization"
    summary = "Normalizes each channel by its batch (or running) mean and variance."
    param_field = "batch_norm_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        return [tuple(bottom_shapes[0])]

    def param_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        shape = bottom_shapes[0]
        channels = shape[1] if len(shape) > 1 else 1
        return [(channels,), (channels,), (1,)]

    def learnable_count(self, layer: Any, bottom_shapes: list[Shape]) -> int:
        return 0

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return 2 * count(top_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.batch_norm_param
        if p.HasField("use_global_stats"):
            return "global stats" if p.use_global_stats else "batch stats"
        return ""


@register_spec
class MVNSpec(LayerSpec):
    type = "MVN"
    category = "Normalization"
    summary = "Subtracts the mean (and divides by the standard deviation) per sample."
    param_field = "mvn_param"
    engine_supported = False  # no engine layer yet: the editor knows it for import/export

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        return [tuple(bottom_shapes[0])]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        per_element = 4 if layer.mvn_param.normalize_variance else 2
        return per_element * count(top_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.mvn_param
        text = "mean+var" if p.normalize_variance else "mean"
        return text + (" across C" if p.across_channels else "")


class _AffineSpec(LayerSpec):
    """Shared broadcasting rule of Scale and Bias (Caffe's ``axis``/``num_axes``).

    With one bottom the operand is a learned blob of shape
    ``bottom.shape[axis : axis + num_axes]`` (``num_axes: -1`` = to the end); with two
    bottoms the operand is bottom 1, which must match bottom 0 from ``axis`` on.
    """

    category = "Normalization"
    bottoms = (1, 2)

    def operand_shape(self, layer: Any, bottom_shapes: list[Shape]) -> Shape:
        p = self.param(layer)
        shape = tuple(bottom_shapes[0])
        field = f"{self.param_field}.axis"
        if len(bottom_shapes) > 1:
            operand = tuple(bottom_shapes[1])
            axis = 0 if not operand else self.canonical_axis(layer, p.axis, len(shape), field)
        else:
            if p.num_axes < -1:
                raise self.error(layer, f"num_axes must be -1 or more; got {p.num_axes}")
            axis = self.canonical_axis(layer, p.axis, len(shape), field)
            end = len(shape) if p.num_axes == -1 else axis + p.num_axes
            if end > len(shape):
                raise self.error(
                    layer, f"axis {axis} + num_axes {p.num_axes} exceeds the input's "
                    f"{len(shape)} axes {format_shape(shape)}")
            operand = shape[axis:end]
        if axis + len(operand) > len(shape) or shape[axis: axis + len(operand)] != operand:
            raise self.error(
                layer, f"bottom 1 {format_shape(operand)} does not match bottom 0 "
                f"{format_shape(shape)} from axis {axis}")
        return operand

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        self.operand_shape(layer, bottom_shapes)
        return [tuple(bottom_shapes[0])]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return count(top_shapes[0])


@register_spec
class ScaleSpec(_AffineSpec):
    type = "Scale"
    summary = "Multiplies by a learned (or second-input) scale, optionally adding a bias."
    param_field = "scale_param"

    def param_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        operand = self.operand_shape(layer, bottom_shapes)
        shapes = [operand] if len(bottom_shapes) == 1 else []
        if layer.scale_param.bias_term:
            shapes.append(operand)
        return shapes

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return (2 if layer.scale_param.bias_term else 1) * count(top_shapes[0])

    def key_params(self, layer: Any) -> str:
        return "+bias" if layer.scale_param.bias_term else ""


@register_spec
class BiasSpec(_AffineSpec):
    type = "Bias"
    summary = "Adds a learned (or second-input) bias, broadcast along the trailing axes."
    param_field = "bias_param"

    def param_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        operand = self.operand_shape(layer, bottom_shapes)
        return [operand] if len(bottom_shapes) == 1 else []
