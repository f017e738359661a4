"""BatchNorm (Caffe's three statistics blobs), Scale, Bias and LRN."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)

from dlp.engine.fillers import fill
from dlp.engine.layers.base import BuildContext, Layer, Shape, canonical_axis
from dlp.engine.layers.vision import Pooling
from dlp.engine.registry import register_layer


@register_layer("BatchNorm")
class BatchNorm(Layer):
    """Caffe BatchNorm: normalisation only (a Scale layer follows for gamma/beta).

    Blobs: accumulated mean ``(C,)``, accumulated variance ``(C,)`` and the scale
    factor ``(1,)``; the statistics are ``blob / factor``.  In TRAIN (unless
    ``use_global_stats``) batch statistics are used and accumulated as Caffe does:
    ``factor ← f*factor + 1``, ``mean ← f*mean + mean``, ``var ← f*var + m/(m-1)*var``.
    """

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        bn = param.batch_norm_param
        shape = bottom_shapes[0]
        channels = 1 if len(shape) == 1 else shape[1]
        self.use_global_stats = (
            bn.use_global_stats if bn.HasField("use_global_stats") else not ctx.is_train
        )
        self.fraction = float(bn.moving_average_fraction)
        self.eps = float(bn.eps)
        for spec in param.param:
            if spec.HasField("lr_mult") and spec.lr_mult != 0:
                raise self.error("batch normalization statistics cannot be learned; set "
                                 "lr_mult: 0 or leave param {} out")
        self.add_blob("mean", (channels,), learnable=False)
        self.add_blob("variance", (channels,), learnable=False)
        self.add_blob("scale_factor", (1,), learnable=False)

    def reset_parameters(self, generator: torch.Generator) -> None:
        for blob in self.caffe_blobs():
            blob.zero_()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if self.use_global_stats:
            factor = self.scale_factor
            inverse = torch.where(factor == 0, torch.zeros_like(factor), 1.0 / factor)
            return (F.batch_norm(x, self.mean * inverse, self.variance * inverse,
                                 training=False, eps=self.eps),)
        if x.dim() == 1:
            x = x.view(-1, 1)
        dims = [0, *range(2, x.dim())]
        with torch.no_grad():
            var, mean = torch.var_mean(x, dim=dims, correction=0)
            m = x.numel() // x.shape[1]
            correction = m / (m - 1) if m > 1 else 1.0
            self.scale_factor.mul_(self.fraction).add_(1.0)
            self.mean.mul_(self.fraction).add_(mean)
            self.variance.mul_(self.fraction).add_(var, alpha=correction)
        return (F.batch_norm(x, None, None, training=True, eps=self.eps),)


def _broadcast_shape(layer: Layer, bottom: Shape, axis: int, num_axes: int) -> Shape:
    if num_axes < -1:
        raise layer.error(f"num_axes must be -1 or >= 0, got {num_axes}")
    end = len(bottom) if num_axes == -1 else axis + num_axes
    if end > len(bottom):
        raise layer.error(f"axis {axis} + num_axes {num_axes} exceeds the bottom's "
                          f"{len(bottom)} axes {bottom}")
    return tuple(bottom[axis:end])


class _AxisOperand(Layer):
    """Shared by Scale and Bias: an operand of shape ``bottom.shape[axis:axis+num_axes]``
    given as a learned blob or as a second bottom, broadcast over the other axes."""

    operand_field = ""

    def _setup_operand(self, param: Any, bottom_shapes: list[Shape], p: Any) -> None:
        shape = bottom_shapes[0]
        if len(bottom_shapes) > 1:
            other = bottom_shapes[1]
            self.axis = canonical_axis(param, p.axis, len(shape)) if other else 0
            if tuple(shape[self.axis:self.axis + len(other)]) != tuple(other):
                raise self.error(
                    f"second bottom shape {other} must match bottom shape {shape} from axis "
                    f"{self.axis}"
                )
            self.operand_shape = tuple(other)
        else:
            self.axis = canonical_axis(param, p.axis, len(shape)) if len(shape) else 0
            self.operand_shape = _broadcast_shape(self, shape, self.axis, p.num_axes)
        trailing = len(shape) - self.axis - len(self.operand_shape)
        self.view_shape = ((1,) * self.axis + self.operand_shape + (1,) * trailing)

    def _view(self, operand: torch.Tensor) -> torch.Tensor:
        return operand.reshape(self.view_shape)


@register_layer("Scale")
class Scale(_AxisOperand):
    """``y = x * s (+ b)``; ``s`` is a learned blob (default filler constant 1) or bottom 1."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.scale_param
        self.scale_param = p
        self._setup_operand(param, bottom_shapes, p)
        self.learned_scale = len(bottom_shapes) == 1
        if self.learned_scale:
            self.add_blob("weight", self.operand_shape)
        self.bias_term = p.bias_term
        if self.bias_term:
            self.add_blob("bias", self.operand_shape)

    def reset_parameters(self, generator: torch.Generator) -> None:
        p = self.scale_param
        if self.learned_scale:
            fill(self.weight, p.filler if p.HasField("filler") else None, generator,
                 default_value=1.0)
        if self.bias_term:
            fill(self.bias, p.bias_filler if p.HasField("bias_filler") else None, generator)

    def forward(self, x: torch.Tensor, *scale: torch.Tensor) -> tuple[torch.Tensor]:
        s = self._view(scale[0] if scale else self.weight)
        if self.bias_term:
            return (torch.addcmul(self._view(self.bias), x, s),)
        return (x * s,)


@register_layer("Bias")
class Bias(_AxisOperand):
    """``y = x + b``; ``b`` is a learned blob (default filler constant 0) or bottom 1."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.bias_param = param.bias_param
        self._setup_operand(param, bottom_shapes, self.bias_param)
        self.learned_bias = len(bottom_shapes) == 1
        if self.learned_bias:
            self.add_blob("bias", self.operand_shape)

    def reset_parameters(self, generator: torch.Generator) -> None:
        p = self.bias_param
        if self.learned_bias:
            fill(self.bias, p.filler if p.HasField("filler") else None, generator)

    def forward(self, x: torch.Tensor, *bias: torch.Tensor) -> tuple[torch.Tensor]:
        return (x + self._view(bias[0] if bias else self.bias),)


@register_layer("LRN")
class LRN(Layer):
    """Local response normalisation.

    ACROSS_CHANNELS: ``x / (k + alpha/n * sum x^2)^beta`` over ``n`` neighbouring channels.
    WITHIN_CHANNEL: ``x / (1 + alpha * avg_{nxn} x^2)^beta`` with Caffe's AVE pooling (pad
    ``(n-1)/2``, the divisor counting padding); Caffe ignores ``k`` there.
    """

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.lrn_param
        if p.local_size % 2 == 0:
            raise self.error(f"lrn_param.local_size must be odd, got {p.local_size}")
        if len(bottom_shapes[0]) != 4:
            raise self.error(f"needs a 4-D bottom (N, C, H, W), got {bottom_shapes[0]}")
        self.size, self.alpha, self.beta, self.k = p.local_size, p.alpha, p.beta, p.k
        self.across = p.norm_region == 0
        if not self.across:
            pool_param = type(param)()
            pool_param.name = param.name
            pool_param.type = "Pooling"
            pool_param.pooling_param.pool = 1  # AVE
            pool_param.pooling_param.kernel_size = self.size
            pool_param.pooling_param.pad = (self.size - 1) // 2
            self.pool = Pooling(pool_param, bottom_shapes, ctx)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if self.across:
            return (F.local_response_norm(x, self.size, self.alpha, self.beta, self.k),)
        (avg,) = self.pool(x * x)
        return (x * torch.pow(1.0 + self.alpha * avg, -self.beta),)
