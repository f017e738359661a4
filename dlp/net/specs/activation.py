"""Activation (Caffe's "neuron") layers: one output of the input's shape, in-place capable."""

from __future__ import annotations

from typing import Any, ClassVar

from dlp.net.specs.base import (
    ALPHA,
    BETA,
    MINUS,
    TIMES,
    LayerSpec,
    Shape,
    count,
    format_number,
    register_spec,
)


class _ElementwiseSpec(LayerSpec):
    """A layer applying one function to every element; ``ops`` FLOPs per element."""

    category = "Activation"
    ops: ClassVar[int] = 1

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        return [tuple(bottom_shapes[0])]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return self.ops * count(top_shapes[0])


@register_spec
class ReLUSpec(_ElementwiseSpec):
    type = "ReLU"
    summary = "Rectified linear unit: max(x, 0), or a leaky slope for negative x."
    param_field = "relu_param"

    def key_params(self, layer: Any) -> str:
        slope = layer.relu_param.negative_slope
        return f"slope {format_number(slope)}" if slope else ""


@register_spec
class PReLUSpec(_ElementwiseSpec):
    """PReLU's slope blob is ``(C,)``, or a 0-axis scalar when ``channel_shared``."""

    type = "PReLU"
    summary = "Leaky ReLU whose negative slope is learned per channel."
    param_field = "prelu_param"
    ops = 2

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        if len(bottom_shapes[0]) < 2:
            raise self.error(layer, "the input needs at least 2 axes (N, C, ...)")
        return [tuple(bottom_shapes[0])]

    def param_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        if layer.prelu_param.channel_shared:
            return [()]
        if len(bottom_shapes[0]) < 2:
            raise self.error(layer, "the input needs at least 2 axes (N, C, ...)")
        return [(bottom_shapes[0][1],)]

    def key_params(self, layer: Any) -> str:
        return "shared" if layer.prelu_param.channel_shared else ""


@register_spec
class ELUSpec(_ElementwiseSpec):
    type = "ELU"
    summary = "Exponential linear unit: x for x > 0, alpha*(exp(x) - 1) otherwise."
    param_field = "elu_param"
    ops = 3

    def key_params(self, layer: Any) -> str:
        return f"{ALPHA}={format_number(layer.elu_param.alpha)}"


@register_spec
class SigmoidSpec(_ElementwiseSpec):
    type = "Sigmoid"
    summary = "Logistic sigmoid 1 / (1 + exp(-x))."
    param_field = "sigmoid_param"
    ops = 4


@register_spec
class TanHSpec(_ElementwiseSpec):
    type = "TanH"
    summary = "Hyperbolic tangent."
    param_field = "tanh_param"
    ops = 4


@register_spec
class AbsValSpec(_ElementwiseSpec):
    type = "AbsVal"
    summary = "Absolute value |x|."


@register_spec
class PowerSpec(_ElementwiseSpec):
    type = "Power"
    summary = "(shift + scale·x) ^ power, e.g. a constant shift of the input."
    param_field = "power_param"
    ops = 3

    def key_params(self, layer: Any) -> str:
        p = layer.power_param
        parts = []
        if p.power != 1:
            parts.append(f"^{format_number(p.power)}")
        if p.scale != 1:
            parts.append(f"{TIMES}{format_number(p.scale)}")
        if p.shift:
            parts.append(f"{'+' if p.shift > 0 else MINUS}{format_number(abs(p.shift))}")
        return " ".join(parts)


@register_spec
class ExpSpec(_ElementwiseSpec):
    type = "Exp"
    summary = "base ^ (shift + scale·x); base -1 means e."
    param_field = "exp_param"
    ops = 3


@register_spec
class LogSpec(_ElementwiseSpec):
    type = "Log"
    summary = "log_base(shift + scale·x); base -1 means the natural logarithm."
    param_field = "log_param"
    ops = 3


@register_spec
class BNLLSpec(_ElementwiseSpec):
    type = "BNLL"
    summary = "Binomial normal log likelihood: log(1 + exp(x))."
    ops = 3


@register_spec
class ThresholdSpec(_ElementwiseSpec):
    type = "Threshold"
    summary = "1 where x exceeds the threshold, else 0."
    param_field = "threshold_param"

    def key_params(self, layer: Any) -> str:
        return f"> {format_number(layer.threshold_param.threshold)}"


@register_spec
class ClipSpec(_ElementwiseSpec):
    type = "Clip"
    summary = "Clamps every value into [min, max]."
    param_field = "clip_param"
    ops = 2

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.clip_param
        if p.min > p.max:
            raise self.error(layer, f"clip_param.min {p.min:g} is above max {p.max:g}")
        return [tuple(bottom_shapes[0])]

    def key_params(self, layer: Any) -> str:
        p = layer.clip_param
        return f"[{format_number(p.min)}, {format_number(p.max)}]"


@register_spec
class SwishSpec(_ElementwiseSpec):
    type = "Swish"
    summary = "x · sigmoid(beta·x)."
    param_field = "swish_param"
    ops = 5

    def key_params(self, layer: Any) -> str:
        beta = layer.swish_param.beta
        return f"{BETA}={format_number(beta)}" if beta != 1 else ""


@register_spec
class DropoutSpec(_ElementwiseSpec):
    """Dropout scales by 1/(1-p) while training (Caffe's inverted dropout); identity in TEST."""

    type = "Dropout"
    summary = "Randomly zeroes inputs with probability p while training."
    param_field = "dropout_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        ratio = layer.dropout_param.dropout_ratio
        if not 0.0 <= ratio < 1.0:
            raise self.error(layer, f"dropout_ratio must be in [0, 1); got {ratio:g}")
        return [tuple(bottom_shapes[0])]

    def key_params(self, layer: Any) -> str:
        return f"p={format_number(layer.dropout_param.dropout_ratio)}"
