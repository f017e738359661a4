"""Less common Caffe layers: MVN, Reduction, Tile and Embed."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)

from dlp.engine.fillers import fill
from dlp.engine.layers.base import BuildContext, Layer, Shape, canonical_axis
from dlp.engine.registry import register_layer


@register_layer("MVN")
class MVN(Layer):
    """Mean (and variance) normalisation per item and channel, or per item across
    channels: ``(x - mean) / (std + eps)`` with the biased std, as Caffe computes it."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.mvn_param
        self.normalize_variance, self.eps = p.normalize_variance, float(p.eps)
        ndim = len(bottom_shapes[0])
        if ndim < 2:
            raise self.error(f"needs a bottom (N, C, ...), got {bottom_shapes[0]}")
        self.dims = tuple(range(1 if p.across_channels else 2, ndim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        centred = x - x.mean(dim=self.dims, keepdim=True)
        if not self.normalize_variance:
            return (centred,)
        std = centred.pow(2).mean(dim=self.dims, keepdim=True).sqrt()
        return (centred / (std + self.eps),)


@register_layer("Reduction")
class Reduction(Layer):
    """SUM / ASUM / SUMSQ / MEAN over all axes from ``axis``, times ``coeff``;
    top shape ``bottom.shape[:axis]``."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.reduction_param
        ndim = len(bottom_shapes[0])
        self.axis = canonical_axis(param, p.axis, ndim) if ndim else 0
        self.operation, self.coeff = p.operation, float(p.coeff)
        self.dims = tuple(range(self.axis, ndim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if self.operation == 2:
            x = x.abs()
        elif self.operation == 3:
            x = x * x
        y = x.mean(dim=self.dims) if self.operation == 4 else x.sum(dim=self.dims)
        return (y * self.coeff if self.coeff != 1.0 else y,)


@register_layer("Tile")
class Tile(Layer):
    """Repeats the whole block from ``axis`` on ``tiles`` times along ``axis``."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.tile_param
        ndim = len(bottom_shapes[0])
        if not p.HasField("tiles") or p.tiles < 1:
            raise self.error("tile_param.tiles must be set (>= 1)")
        axis = canonical_axis(param, p.axis, ndim)
        self.repeats = tuple(p.tiles if i == axis else 1 for i in range(ndim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (x.repeat(self.repeats),)


@register_layer("Embed")
class Embed(Layer):
    """A lookup table: each bottom value (an index < input_dim) becomes a row of the
    ``(input_dim, num_output)`` weight (plus bias); top ``bottom.shape + (num_output,)``."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.embed_param
        if not p.num_output or not p.input_dim:
            raise self.error("embed_param needs num_output and input_dim (>= 1)")
        self.embed = p
        self.input_dim = p.input_dim
        self.add_blob("weight", (p.input_dim, p.num_output))
        self.bias_term = p.bias_term
        if self.bias_term:
            self.add_blob("bias", (p.num_output,))

    def reset_parameters(self, generator: torch.Generator) -> None:
        p = self.embed
        fill(self.weight, p.weight_filler if p.HasField("weight_filler") else None, generator)
        if self.bias_term:
            fill(self.bias, p.bias_filler if p.HasField("bias_filler") else None, generator)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        indices = x.detach().long()
        if indices.device.type == "cpu" and indices.numel():
            low, high = int(indices.min()), int(indices.max())
            if low < 0 or high >= self.input_dim:
                raise self.error(f"indices must be in 0..{self.input_dim - 1}, found "
                                 f"{low if low < 0 else high}")
        y = F.embedding(indices, self.weight)
        return (y + self.bias if self.bias_term else y,)
