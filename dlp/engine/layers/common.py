"""Common layers: InnerProduct, Crop, Concat, Eltwise, Split, Slice, Flatten, Reshape,
Softmax, ArgMax, Silence."""

from __future__ import annotations

import functools
import itertools
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)

from dlp.engine.fillers import fill
from dlp.engine.layers.base import BuildContext, Layer, Shape, canonical_axis, count
from dlp.engine.registry import register_layer


@register_layer("InnerProduct")
class InnerProduct(Layer):
    """Fully connected: bottom flattened from ``axis``; weight ``(N, K)`` or ``(K, N)``
    when ``transpose``; top ``shape[:axis] + (N,)``."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.inner_product_param
        self.ip = p
        shape = bottom_shapes[0]
        if not p.HasField("num_output") or p.num_output < 1:
            raise self.error("inner_product_param.num_output must be set (>= 1)")
        self.axis = canonical_axis(param, p.axis, len(shape))
        inputs = count(shape, self.axis)
        self.transpose = p.transpose
        self.add_blob("weight", (inputs, p.num_output) if p.transpose else (p.num_output, inputs))
        self.bias_term = p.bias_term
        if self.bias_term:
            self.add_blob("bias", (p.num_output,))

    def reset_parameters(self, generator: torch.Generator) -> None:
        p = self.ip
        fill(self.weight, p.weight_filler if p.HasField("weight_filler") else None, generator)
        if self.bias_term:
            fill(self.bias, p.bias_filler if p.HasField("bias_filler") else None, generator)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        flat = x.flatten(self.axis) if self.axis < x.dim() - 1 else x
        bias = self.bias if self.bias_term else None
        if self.transpose:
            y = flat @ self.weight
            return (y + bias if bias is not None else y,)
        return (F.linear(flat, self.weight, bias),)


@register_layer("Crop")
class Crop(Layer):
    """Crops bottom 0 to bottom 1's shape from ``axis`` on, starting at ``offset``
    (one value for all cropped axes or one per axis; FCN's ``offset: 18``)."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.crop_param
        shape, reference = bottom_shapes[0], bottom_shapes[1]
        if len(shape) != len(reference):
            raise self.error(f"bottoms must have the same number of axes, got {shape} and "
                             f"{reference}")
        axis = canonical_axis(param, p.axis, len(shape))
        offsets = list(p.offset)
        cropped = len(shape) - axis
        if len(offsets) > 1 and len(offsets) != cropped:
            raise self.error(f"crop_param.offset has {len(offsets)} values; expected 0, 1 or "
                             f"{cropped} (one per axis from axis {axis})")
        slices: list[slice] = []
        for i in range(len(shape)):
            if i < axis:
                slices.append(slice(None))
                continue
            off = 0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i - axis]
            if off + reference[i] > shape[i]:
                raise self.error(
                    f"crop of axis {i}: offset {off} + size {reference[i]} exceeds the bottom's "
                    f"size {shape[i]} (bottom {shape}, reference {reference})"
                )
            slices.append(slice(off, off + reference[i]))
        self.slices = tuple(slices)

    def forward(self, x: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor]:
        return (x[self.slices],)


@register_layer("Concat")
class Concat(Layer):
    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.concat_param
        ndim = len(bottom_shapes[0])
        self.axis = (p.concat_dim if p.HasField("concat_dim")
                     else canonical_axis(param, p.axis, ndim))
        first = bottom_shapes[0]
        for index, shape in enumerate(bottom_shapes[1:], start=1):
            if len(shape) != ndim or any(
                a != b for i, (a, b) in enumerate(zip(first, shape, strict=False)) if i != self.axis
            ):
                raise self.error(f"bottom {index} shape {shape} must match bottom 0 shape "
                                 f"{first} on every axis but {self.axis}")

    def forward(self, *bottoms: torch.Tensor) -> tuple[torch.Tensor]:
        if len(bottoms) == 1:
            return (bottoms[0],)
        return (torch.cat(bottoms, dim=self.axis),)


@register_layer("Eltwise")
class Eltwise(Layer):
    """Element-wise SUM (with per-bottom ``coeff``), PROD or MAX of equal-shape bottoms."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.eltwise_param
        self.operation = p.operation
        self.coeffs = list(p.coeff)
        if self.coeffs and len(self.coeffs) != len(bottom_shapes):
            raise self.error(f"eltwise_param.coeff has {len(self.coeffs)} values; expected one "
                             f"per bottom ({len(bottom_shapes)})")
        if self.coeffs and self.operation != 1:
            raise self.error("eltwise_param.coeff applies only to operation SUM")
        for index, shape in enumerate(bottom_shapes[1:], start=1):
            if tuple(shape) != tuple(bottom_shapes[0]):
                raise self.error(f"bottom {index} shape {shape} differs from bottom 0 shape "
                                 f"{bottom_shapes[0]}")
        if all(c == 1.0 for c in self.coeffs):
            self.coeffs = []

    def forward(self, *bottoms: torch.Tensor) -> tuple[torch.Tensor]:
        if self.operation == 0:
            return (functools.reduce(torch.mul, bottoms),)
        if self.operation == 2:
            return (_caffe_max(bottoms),)
        if not self.coeffs:
            return (functools.reduce(torch.add, bottoms),)
        total = bottoms[0] * self.coeffs[0]
        for coeff, x in zip(self.coeffs[1:], bottoms[1:], strict=False):
            total = total.add(x, alpha=coeff)
        return (total,)


def _caffe_max(bottoms: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Element-wise maximum routing each gradient to ONE bottom as Caffe's mask does:
    a tie between bottoms 0 and 1 goes to bottom 1, later bottoms must be strictly
    larger (``torch.maximum`` would split tied gradients, e.g. between ReLU zeros)."""
    first, second, *rest = bottoms
    top = torch.where(first > second, first, second)
    for x in rest:
        top = torch.where(x > top, x, top)
    return top


@register_layer("Split")
class Split(Layer):
    """Copies one blob to several tops (gradients of the copies add up)."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.copies = len(param.top)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x,) * self.copies


@register_layer("Slice")
class Slice(Layer):
    """Splits along ``axis`` at ``slice_point``s (or into equal parts, one per top)."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.slice_param
        shape = bottom_shapes[0]
        self.axis = (p.slice_dim if p.HasField("slice_dim")
                     else canonical_axis(param, p.axis, len(shape)))
        tops = len(param.top)
        size = shape[self.axis]
        points = list(p.slice_point)
        if points:
            if len(points) != tops - 1:
                raise self.error(f"{len(points)} slice_point values for {tops} tops; expected "
                                 f"{tops - 1}")
            bounds = [0, *points, size]
            if any(b <= a for a, b in itertools.pairwise(bounds)):
                raise self.error(f"slice points {points} must increase strictly within the "
                                 f"axis size {size}")
            self.sizes = [b - a for a, b in itertools.pairwise(bounds)]
        else:
            if size % tops:
                raise self.error(f"axis {self.axis} of size {size} cannot be sliced into {tops} "
                                 f"equal parts")
            self.sizes = [size // tops] * tops

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(x, self.sizes, dim=self.axis))


@register_layer("Flatten")
class Flatten(Layer):
    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.flatten_param
        ndim = len(bottom_shapes[0])
        self.start = canonical_axis(param, p.axis, ndim)
        self.end = canonical_axis(param, p.end_axis, ndim, "end_axis")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (x.flatten(self.start, self.end),)


@register_layer("Reshape")
class Reshape(Layer):
    """Caffe Reshape: ``0`` copies the bottom's dim, ``-1`` is inferred; ``axis`` and
    ``num_axes`` choose the bottom axes replaced."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.reshape_param
        shape = tuple(bottom_shapes[0])
        ndim = len(shape)
        if not -(ndim + 1) <= p.axis <= ndim:
            raise self.error(f"reshape_param.axis {p.axis} out of range for {ndim} axes")
        start = p.axis if p.axis >= 0 else ndim + p.axis + 1
        if p.num_axes < -1 or (p.num_axes != -1 and start + p.num_axes > ndim):
            raise self.error(f"reshape_param.num_axes {p.num_axes} out of range for bottom "
                             f"{shape} from axis {start}")
        end = ndim if p.num_axes == -1 else start + p.num_axes
        dims = list(p.shape.dim)
        if sum(1 for d in dims if d == -1) > 1:
            raise self.error("at most one reshape dim may be -1")
        new: list[int] = []
        for i, d in enumerate(dims):
            if d == 0:
                if start + i >= ndim:
                    raise self.error(f"dim {i} is 0 (copy) but the bottom has no axis "
                                     f"{start + i}")
                new.append(shape[start + i])
            elif d < -1:
                raise self.error(f"reshape dim {d} is invalid; expected > 0, 0 or -1")
            else:
                new.append(d)
        full = [*shape[:start], *new, *shape[end:]]
        total = count(shape)
        if -1 in full:
            known = count(tuple(d for d in full if d != -1))
            if known == 0 or total % known:
                raise self.error(f"cannot infer the -1 dim: {total} elements into {full}")
            full[full.index(-1)] = total // known
        if count(tuple(full)) != total:
            raise self.error(f"reshape of {shape} ({total} elements) to {tuple(full)} changes "
                             f"the element count")
        self.target = tuple(full)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (x.reshape(self.target),)


@register_layer("Softmax")
class Softmax(Layer):
    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self.axis = canonical_axis(param, param.softmax_param.axis, len(bottom_shapes[0]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (torch.softmax(x, dim=self.axis),)


@register_layer("ArgMax")
class ArgMax(Layer):
    """Indices (as floats, like Caffe's blobs) of the ``top_k`` largest values.

    Without ``axis``: per item of the batch over all other axes, top shape
    ``(N, 1 or 2, top_k, 1...)`` (row 1 holds the values when ``out_max_val``).
    With ``axis``: that axis becomes ``top_k`` long (values when ``out_max_val``).
    """

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.argmax_param
        shape = bottom_shapes[0]
        self.top_k, self.out_max_val = p.top_k, p.out_max_val
        self.axis = canonical_axis(param, p.axis, len(shape)) if p.HasField("axis") else None
        span = shape[self.axis] if self.axis is not None else count(shape, 1)
        if self.top_k < 1 or self.top_k > span:
            raise self.error(f"top_k {self.top_k} must be in 1..{span}")
        if self.axis is None:
            top = [1] * max(len(shape), 3)
            top[0], top[2] = shape[0], self.top_k
            top[1] = 2 if self.out_max_val else 1
            self.top_shape = tuple(top)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = x.detach()
        if self.axis is not None:
            values, indices = torch.topk(x, self.top_k, dim=self.axis)
            return (values if self.out_max_val else indices.to(x.dtype),)
        values, indices = torch.topk(x.reshape(x.shape[0], -1), self.top_k, dim=1)
        rows = [indices.to(x.dtype)] + ([values] if self.out_max_val else [])
        return (torch.stack(rows, dim=1).reshape(self.top_shape),)


@register_layer("Silence")
class Silence(Layer):
    """Consumes blobs nobody else uses, so they are not reported as outputs."""

    def forward(self, *bottoms: torch.Tensor) -> tuple[()]:
        return ()
