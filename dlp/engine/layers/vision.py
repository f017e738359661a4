"""Convolution, Deconvolution and Pooling with Caffe's exact size and padding rules.

Shapes are ``(N, C, *spatial)`` with 1, 2 or 3 spatial axes (Caffe's N-D
convolution; pooling takes the same kernel/stride/pad on every axis beyond 2-D).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)

from dlp.engine.fillers import fill
from dlp.engine.layers.base import BuildContext, Layer, Shape
from dlp.engine.registry import register_layer
from dlp.net.specs.vision import caffe_pooled_sizes

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_DECONV = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _per_axis(layer: Layer, conv: Any, name: str, n: int, default: int,
              h_name: str, w_name: str) -> tuple[int, ...]:
    """A repeated per-axis field (one value for all axes, or one per axis) or its _h/_w."""
    values = list(getattr(conv, name))
    if conv.HasField(h_name) or conv.HasField(w_name):
        if values:
            raise layer.error(f"give either {name} or {h_name}/{w_name}, not both")
        if n != 2:
            raise layer.error(f"{h_name}/{w_name} only apply to 2-D bottoms; use {name}")
        return (getattr(conv, h_name), getattr(conv, w_name))
    if not values:
        return (default,) * n
    if len(values) == 1:
        return (values[0],) * n
    if len(values) != n:
        raise layer.error(f"{name} has {len(values)} values; expected 1 or {n} (one per "
                          f"spatial axis)")
    return tuple(values)


class _ConvolutionBase(Layer):
    transposed = False

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        conv = param.convolution_param
        shape = bottom_shapes[0]
        if conv.axis not in (1, 1 - len(shape)):
            raise self.error("only axis 1 (channels) is supported as the channel axis")
        n = len(shape) - 2
        if n not in _CONV:
            raise self.error(f"needs a bottom of shape (N, C, spatial...) with 1-3 spatial "
                             f"axes, got {shape}")
        if not conv.HasField("num_output") or conv.num_output < 1:
            raise self.error("convolution_param.num_output must be set (>= 1)")
        if not conv.kernel_size and not conv.HasField("kernel_h"):
            raise self.error("convolution_param.kernel_size (or kernel_h/kernel_w) is required")
        self.kernel = _per_axis(self, conv, "kernel_size", n, 1, "kernel_h", "kernel_w")
        self.stride = _per_axis(self, conv, "stride", n, 1, "stride_h", "stride_w")
        self.pad = _per_axis(self, conv, "pad", n, 0, "pad_h", "pad_w")
        dilation = list(conv.dilation) or [1]
        if len(dilation) not in (1, n):
            raise self.error(f"dilation has {len(dilation)} values; expected 1 or {n}")
        self.dilation = tuple(dilation * n if len(dilation) == 1 else dilation)
        self.groups = conv.group
        channels, outputs = shape[1], conv.num_output
        if channels % self.groups or outputs % self.groups:
            raise self.error(f"group {self.groups} must divide both the input channels "
                             f"({channels}) and num_output ({outputs})")
        if self.transposed:
            weight_shape = (channels, outputs // self.groups, *self.kernel)
        else:
            weight_shape = (outputs, channels // self.groups, *self.kernel)
        self.add_blob("weight", weight_shape)
        self.bias_term = conv.bias_term
        if self.bias_term:
            self.add_blob("bias", (outputs,))
        self._conv_param = conv
        table = _DECONV if self.transposed else _CONV
        self._fn: Callable[..., torch.Tensor] = table[n]

    def reset_parameters(self, generator: torch.Generator) -> None:
        conv = self._conv_param
        fill(self.weight, conv.weight_filler if conv.HasField("weight_filler") else None,
             generator)
        if self.bias_term:
            fill(self.bias, conv.bias_filler if conv.HasField("bias_filler") else None,
                 generator)

    def forward(self, *bottoms: torch.Tensor) -> tuple[torch.Tensor, ...]:
        bias = self.bias if self.bias_term else None
        return tuple(
            self._fn(x, self.weight, bias, self.stride, self.pad, dilation=self.dilation,
                     groups=self.groups) if not self.transposed else
            self._fn(x, self.weight, bias, self.stride, self.pad, 0, self.groups,
                     self.dilation)
            for x in bottoms
        )


@register_layer("Convolution")
class Convolution(_ConvolutionBase):
    """Caffe convolution; weight ``(out, in/group, k...)``, bias ``(out,)``."""


@register_layer("Deconvolution")
class Deconvolution(_ConvolutionBase):
    """Caffe deconvolution; weight ``(in, out/group, k...)`` (torch's conv_transpose layout).

    Output size per axis: ``stride*(in-1) + dilation*(k-1) + 1 - 2*pad``.
    """

    transposed = True


def _torch_pooled_size(size: int, kernel: int, stride: int, pad: int) -> int:
    span = size + 2 * pad - kernel
    pooled = -(-span // stride) + 1
    if (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def _ave_divisors(size: int, kernel: int, stride: int, pad: int, pooled: int) -> np.ndarray:
    """Caffe's AVE divisor per output position: window clipped to the padded input."""
    starts = np.arange(pooled) * stride - pad
    ends = np.minimum(starts + kernel, size + pad)
    return (ends - starts).astype(np.float32)


@register_layer("Pooling")
class Pooling(Layer):
    """MAX / AVE / global pooling with Caffe's ceil-mode output size.

    When PyTorch's own ceil-mode arithmetic coincides with Caffe's (the usual case)
    the native kernel is used; otherwise the input is padded explicitly so every
    Caffe window exists, and AVE divides by Caffe's clipped window size.
    """

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        pool = param.pooling_param
        shape = bottom_shapes[0]
        n = len(shape) - 2
        if n not in _MAX_POOL:
            raise self.error(f"needs a bottom (N, C, spatial...) with 1-3 spatial axes, got "
                             f"{shape}")
        if pool.pool == 2:
            raise self.error("STOCHASTIC pooling is not supported; use MAX or AVE")
        self.is_max = pool.pool == 0
        self.with_mask = self.is_max and len(param.top) > 1
        spatial = shape[2:]
        self.global_pooling = pool.global_pooling
        if self.global_pooling:
            if pool.HasField("kernel_size") or pool.HasField("kernel_h"):
                raise self.error("global_pooling takes no kernel_size")
            self.kernel, self.stride, self.pad = tuple(spatial), (1,) * n, (0,) * n
        else:
            if pool.HasField("kernel_size") == pool.HasField("kernel_h"):
                raise self.error("give either kernel_size or kernel_h/kernel_w")
            self.kernel = self._axes(pool, "kernel_size", "kernel_h", "kernel_w", n)
            self.stride = self._axes(pool, "stride", "stride_h", "stride_w", n)
            self.pad = self._axes(pool, "pad", "pad_h", "pad_w", n)
        if any(p >= k for p, k in zip(self.pad, self.kernel, strict=False)):
            raise self.error(f"pad {self.pad} must be smaller than kernel {self.kernel}")
        # The one implementation of Caffe's size rule, shared with shape inference.
        self.out = tuple(caffe_pooled_sizes(spatial, self.kernel, self.stride, self.pad,
                                            ceil_mode=pool.round_mode == 0))
        if min(self.out) < 1:
            raise self.error(f"kernel {self.kernel} does not fit the input {spatial} padded "
                             f"by {self.pad}")
        self.native = all(
            2 * p <= k and _torch_pooled_size(s, k, st, p) == o
            for s, k, st, p, o in zip(spatial, self.kernel, self.stride, self.pad, self.out,
                                      strict=True)
        )
        self._max = _MAX_POOL[n]
        self._avg = _AVG_POOL[n]
        if not self.native:
            # Explicit padding [before, after] per axis so that exactly `out` windows fit.
            self.explicit_pad: list[int] = []
            for s, k, st, p, o in reversed(list(zip(spatial, self.kernel, self.stride,
                                                    self.pad, self.out, strict=False))):
                self.explicit_pad += [p, (o - 1) * st + k - s - p]
            if not self.is_max:
                divisor = np.ones((), dtype=np.float32)
                for s, k, st, p, o in zip(spatial, self.kernel, self.stride, self.pad,
                                          self.out, strict=False):
                    divisor = np.multiply.outer(divisor, _ave_divisors(s, k, st, p, o))
                self.register_buffer("divisor", torch.from_numpy(divisor.copy()),
                                     persistent=False)

    @staticmethod
    def _axes(pool: Any, name: str, h_name: str, w_name: str, n: int) -> tuple[int, ...]:
        if pool.HasField(h_name) or pool.HasField(w_name):
            return (getattr(pool, h_name), getattr(pool, w_name))
        return (getattr(pool, name),) * n

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.global_pooling and not self.is_max:
            return (x.mean(dim=tuple(range(2, x.dim())), keepdim=True),)
        if self.is_max:
            return self._max_pool(x)
        if self.native:
            return (self._avg(x, self.kernel, self.stride, self.pad, ceil_mode=True,
                              count_include_pad=True),)
        padded = F.pad(x, self.explicit_pad, value=0.0)
        sums = self._avg(padded, self.kernel, self.stride) * math.prod(self.kernel)
        return (sums / self.divisor,)

    def _max_pool(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """MAX pooling; with a second top, Caffe's mask: the flat index ``h * W + w`` of
        each maximum in its bottom plane, as floats."""
        if self.native:
            args: tuple[Any, ...] = (self.kernel, self.stride, self.pad)
            source = x
        else:
            source = F.pad(x, self.explicit_pad, value=-math.inf)
            args = (self.kernel, self.stride)
        if not self.with_mask:
            return (self._max(source, *args, ceil_mode=self.native),)
        top, indices = self._max(source, *args, ceil_mode=self.native, return_indices=True)
        if not self.native:
            indices = self._unpadded_index(indices, tuple(source.shape[2:]),
                                           tuple(x.shape[2:]))
        return top, indices.detach().to(x.dtype)

    def _unpadded_index(self, indices: torch.Tensor, padded: Shape, spatial: Shape
                        ) -> torch.Tensor:
        """Flat indices into the explicitly padded plane -> into the bottom's own plane."""
        before = self.explicit_pad[-2::-2]  # leading pads, first spatial axis first
        flat = torch.zeros_like(indices)
        remainder = indices
        coords = []
        for size in reversed(padded):
            coords.append(remainder % size)
            remainder = remainder // size
        for coord, pad, size in zip(reversed(coords), before, spatial, strict=True):
            flat = flat * size + (coord - pad)
        return flat
