"""Element-wise neuron layers (Caffe's ``NeuronLayer`` family): one bottom, one top,
same shape; usually computed in place in Caffe (top == bottom), which the net handles
by rebinding the blob name."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)

from dlp.engine.fillers import fill
from dlp.engine.layers.base import BuildContext, Layer, Shape
from dlp.engine.registry import register_layer


@register_layer("ReLU")
class ReLU(Layer):
    """``max(x, 0) + negative_slope * min(x, 0)``."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.negative_slope = float(param.relu_param.negative_slope)
        self.inplace = False  # set by the net when overwriting the bottom is safe

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if self.negative_slope == 0.0:
            return (F.relu(x, inplace=self.inplace),)
        return (F.leaky_relu(x, self.negative_slope, inplace=self.inplace),)


@register_layer("PReLU")
class PReLU(Layer):
    """Learned negative slope per channel (axis 1) or one shared; default filler 0.25."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        shape = bottom_shapes[0]
        if len(shape) < 2:
            raise self.error(f"needs a bottom with a channel axis, got shape {shape}")
        self.prelu_param = param.prelu_param
        self.channel_shared = self.prelu_param.channel_shared
        self.add_blob("weight", (1,) if self.channel_shared else (shape[1],))

    def reset_parameters(self, generator: torch.Generator) -> None:
        filler = self.prelu_param.filler if self.prelu_param.HasField("filler") else None
        fill(self.weight, filler, generator, default_value=0.25)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        slope = self.weight.view((1, -1) + (1,) * (x.dim() - 2))
        return (torch.where(x > 0, x, x * slope),)


@register_layer("ELU")
class ELU(Layer):
    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.alpha = float(param.elu_param.alpha)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (F.elu(x, self.alpha),)


@register_layer("Sigmoid")
class Sigmoid(Layer):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.sigmoid(x),)


@register_layer("TanH")
class TanH(Layer):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.tanh(x),)


@register_layer("AbsVal")
class AbsVal(Layer):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.abs(x),)


@register_layer("BNLL")
class BNLL(Layer):
    """``log(1 + exp(x))``, computed stably."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (F.softplus(x),)


@register_layer("Power")
class Power(Layer):
    """``(shift + scale * x) ^ power``."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.power_param
        self.power, self.scale, self.shift = float(p.power), float(p.scale), float(p.shift)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        y = x * self.scale if self.scale != 1.0 else x
        if self.shift != 0.0:
            y = y + self.shift
        if self.power != 1.0:
            y = torch.pow(y, self.power)
        return (y,)


@register_layer("Exp")
class Exp(Layer):
    """``base ^ (shift + scale * x)``; base -1 means e."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.exp_param
        if p.base != -1 and p.base <= 0:
            raise self.error(f"exp_param.base must be -1 (e) or > 0, got {p.base}")
        log_base = 1.0 if p.base == -1 else math.log(p.base)
        self.inner_scale = log_base * p.scale
        self.outer_scale = math.exp(log_base * p.shift)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        y = torch.exp(x * self.inner_scale)
        return (y * self.outer_scale if self.outer_scale != 1.0 else y,)


@register_layer("Log")
class Log(Layer):
    """``log_base(shift + scale * x)``; base -1 means e."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.log_param
        if p.base != -1 and p.base <= 0:
            raise self.error(f"log_param.base must be -1 (e) or > 0, got {p.base}")
        self.base_scale = 1.0 if p.base == -1 else 1.0 / math.log(p.base)
        self.scale, self.shift = float(p.scale), float(p.shift)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.log(x * self.scale + self.shift) * self.base_scale,)


@register_layer("Dropout")
class Dropout(Layer):
    """Caffe's inverted dropout: at TRAIN keep with 1-ratio and scale by 1/(1-ratio);
    at TEST the identity."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.ratio = float(param.dropout_param.dropout_ratio)
        if not 0.0 <= self.ratio < 1.0:
            raise self.error(f"dropout_ratio must be in [0, 1), got {self.ratio}")
        self.active = ctx.is_train and self.ratio > 0.0
        self.inplace = False  # set by the net when overwriting the bottom is safe

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if self.active:
            return (F.dropout(x, self.ratio, training=True, inplace=self.inplace),)
        return (x,)


@register_layer("Threshold")
class Threshold(Layer):
    """``1`` where ``x > threshold`` else ``0`` (no gradient)."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.threshold = float(param.threshold_param.threshold)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return ((x.detach() > self.threshold).to(x.dtype),)


@register_layer("Clip")
class Clip(Layer):
    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.low, self.high = float(param.clip_param.min), float(param.clip_param.max)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.clamp(x, self.low, self.high),)


@register_layer("Swish")
class Swish(Layer):
    """``x * sigmoid(beta * x)``."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.beta = float(param.swish_param.beta)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (x * torch.sigmoid(x * self.beta),)
