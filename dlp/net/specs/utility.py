"""Utility layers: joining, splitting and reshaping blobs, Softmax, ArgMax, Silence, Python."""

from __future__ import annotations

import itertools
import math
from typing import Any

from dlp.net.specs.base import TIMES, LayerSpec, Shape, count, format_shape, register_spec


@register_spec
class ConcatSpec(LayerSpec):
    type = "Concat"
    category = "Utility"
    summary = "Joins its inputs along one axis (channels by default)."
    param_field = "concat_param"
    bottoms = (1, None)

    def axis(self, layer: Any, num_axes: int) -> int:
        p = layer.concat_param
        if p.HasField("concat_dim"):
            if p.HasField("axis"):
                raise self.error(layer, "give either axis or the deprecated concat_dim, not both")
            return self.canonical_axis(layer, p.concat_dim, num_axes, "concat_param.concat_dim")
        return self.canonical_axis(layer, p.axis, num_axes, "concat_param.axis")

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        first = tuple(bottom_shapes[0])
        axis = self.axis(layer, len(first))
        total = 0
        for index, shape in enumerate(bottom_shapes):
            shape = tuple(shape)
            if len(shape) != len(first) or any(
                    a != b for i, (a, b) in enumerate(zip(shape, first, strict=True))
                    if i != axis):
                raise self.error(
                    layer, f"bottom {index} {format_shape(shape)} must match bottom 0 "
                    f"{format_shape(first)} on every axis but the concat axis {axis}")
            total += shape[axis]
        out = list(first)
        out[axis] = total
        return [tuple(out)]

    def key_params(self, layer: Any) -> str:
        p = layer.concat_param
        axis = p.concat_dim if p.HasField("concat_dim") else p.axis
        return f"axis {axis}" if axis != 1 else ""


_ELTWISE_OPS = {0: "PROD", 1: "SUM", 2: "MAX"}


@register_spec
class EltwiseSpec(LayerSpec):
    type = "Eltwise"
    category = "Utility"
    summary = "Element-wise sum (with coefficients), product or maximum of equal-shaped inputs."
    param_field = "eltwise_param"
    bottoms = (2, None)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.eltwise_param
        if p.coeff and len(p.coeff) != len(bottom_shapes):
            raise self.error(layer, f"give one coeff per bottom ({len(bottom_shapes)}); got "
                             f"{len(p.coeff)}")
        if p.coeff and p.operation == 0:
            raise self.error(layer, "coeff works with operation SUM only, not PROD")
        return [self.same_shape_bottoms(layer, bottom_shapes)]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        ops = len(bottom_shapes) - 1 + (len(bottom_shapes) if layer.eltwise_param.coeff else 0)
        return ops * count(top_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.eltwise_param
        text = _ELTWISE_OPS.get(p.operation, str(p.operation))
        if p.coeff:
            text += " " + ",".join(f"{c:g}" for c in p.coeff)
        return text


@register_spec
class SplitSpec(LayerSpec):
    type = "Split"
    category = "Utility"
    summary = "Copies its input to several outputs (Caffe inserts these automatically)."
    tops = (1, None)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        return [tuple(bottom_shapes[0])] * max(1, len(layer.top))


@register_spec
class SliceSpec(LayerSpec):
    type = "Slice"
    category = "Utility"
    summary = "Cuts its input along one axis into several outputs at the slice points."
    param_field = "slice_param"
    tops = (1, None)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.slice_param
        shape = tuple(bottom_shapes[0])
        if p.HasField("slice_dim"):
            if p.HasField("axis"):
                raise self.error(layer, "give either axis or the deprecated slice_dim, not both")
            axis = self.canonical_axis(layer, p.slice_dim, len(shape), "slice_param.slice_dim")
        else:
            axis = self.canonical_axis(layer, p.axis, len(shape), "slice_param.axis")
        size, parts = shape[axis], max(1, len(layer.top))
        if p.slice_point:
            if len(p.slice_point) != parts - 1:
                raise self.error(layer, f"{parts} tops need {parts - 1} slice points; got "
                                 f"{len(p.slice_point)}")
            bounds = [0, *p.slice_point, size]
            if any(b <= a for a, b in itertools.pairwise(bounds)):
                raise self.error(
                    layer, f"slice points {list(p.slice_point)} must increase strictly inside "
                    f"(0, {size}) along axis {axis}")
            sizes = [b - a for a, b in itertools.pairwise(bounds)]
        else:
            if size % parts:
                raise self.error(layer, f"axis {axis} of size {size} does not split evenly "
                                 f"into {parts} tops; give slice_point")
            sizes = [size // parts] * parts
        return [(*shape[:axis], s, *shape[axis + 1:]) for s in sizes]

    def key_params(self, layer: Any) -> str:
        points = ",".join(str(s) for s in layer.slice_param.slice_point)
        return f"at {points}" if points else ""


@register_spec
class FlattenSpec(LayerSpec):
    type = "Flatten"
    category = "Utility"
    summary = "Merges the axes from axis to end_axis into one."
    param_field = "flatten_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.flatten_param
        shape = tuple(bottom_shapes[0])
        start = self.canonical_axis(layer, p.axis, len(shape), "flatten_param.axis")
        end = self.canonical_axis(layer, p.end_axis, len(shape), "flatten_param.end_axis")
        if end + 1 < start:
            raise self.error(layer, f"end_axis {p.end_axis} comes before axis {p.axis}")
        return [(*shape[:start], count(shape, start, end + 1), *shape[end + 1:])]


@register_spec
class ReshapeSpec(LayerSpec):
    """Caffe's Reshape: ``0`` copies the input dimension, ``-1`` is inferred (once)."""

    type = "Reshape"
    category = "Utility"
    summary = "Changes the shape without moving data (0 copies a dimension, -1 infers one)."
    param_field = "reshape_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.reshape_param
        shape = tuple(bottom_shapes[0])
        dims = list(p.shape.dim)
        if dims.count(-1) > 1:
            raise self.error(layer, f"reshape_param.shape {dims} has more than one -1")
        if any(d < -1 for d in dims):
            raise self.error(layer, f"reshape_param.shape {dims}: dimensions must be >= -1")
        start = p.axis if p.axis >= 0 else len(shape) + p.axis + 1
        if not 0 <= start <= len(shape):
            raise self.error(layer, f"axis {p.axis} is out of range for the input "
                             f"{format_shape(shape)}")
        if p.num_axes < -1:
            raise self.error(layer, f"num_axes must be -1 or more; got {p.num_axes}")
        end = len(shape) if p.num_axes == -1 else start + p.num_axes
        if end > len(shape):
            raise self.error(layer, f"axis {start} + num_axes {p.num_axes} exceeds the input "
                             f"{format_shape(shape)}")
        new = []
        for index, dim in enumerate(dims):
            if dim == 0:
                if start + index >= len(shape):
                    raise self.error(layer, f"shape entry {index} is 0 (copy) but the input "
                                     f"{format_shape(shape)} has no axis {start + index}")
                new.append(shape[start + index])
            else:
                new.append(dim)
        if -1 in new:
            known = math.prod(d for d in new if d != -1) * count(shape, 0, start) * count(
                shape, end)
            total = count(shape)
            if known == 0 or total % known:
                raise self.error(layer, f"cannot infer the -1 in {dims}: {total} values do not "
                                 f"divide by {known}")
            new[new.index(-1)] = total // known
        top = (*shape[:start], *new, *shape[end:])
        if count(top) != count(shape):
            raise self.error(layer, f"output {format_shape(top)} has {count(top)} values; the "
                             f"input {format_shape(shape)} has {count(shape)}")
        return [top]

    def key_params(self, layer: Any) -> str:
        return ",".join(str(d) for d in layer.reshape_param.shape.dim)


@register_spec
class SoftmaxSpec(LayerSpec):
    type = "Softmax"
    category = "Utility"
    summary = "Turns scores into probabilities along the channel axis."
    param_field = "softmax_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        shape = tuple(bottom_shapes[0])
        self.canonical_axis(layer, layer.softmax_param.axis, len(shape), "softmax_param.axis")
        return [shape]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return 4 * count(top_shapes[0])  # max, subtract+exp, sum, divide


@register_spec
class ArgMaxSpec(LayerSpec):
    """Caffe's ArgMax: without ``axis`` the output is ``(N, 1|2, top_k[, 1...])``."""

    type = "ArgMax"
    category = "Utility"
    summary = "Index (and optionally value) of the largest entries along an axis."
    param_field = "argmax_param"

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.argmax_param
        shape = tuple(bottom_shapes[0])
        if p.top_k < 1:
            raise self.error(layer, "top_k must be at least 1")
        if not shape:
            raise self.error(layer, "the input needs at least a batch axis (N, ...)")
        if p.HasField("axis"):
            axis = self.canonical_axis(layer, p.axis, len(shape), "argmax_param.axis")
            if p.top_k > shape[axis]:
                raise self.error(layer, f"top_k {p.top_k} exceeds axis {axis}'s size "
                                 f"{shape[axis]}")
            out = list(shape)
            out[axis] = p.top_k
            return [tuple(out)]
        if p.top_k > count(shape, 1):
            raise self.error(layer, f"top_k {p.top_k} exceeds the number of classes "
                             f"{count(shape, 1)}")
        out = [1] * max(len(shape), 3)
        out[0] = shape[0]
        out[1] = 2 if p.out_max_val else 1
        out[2] = p.top_k
        return [tuple(out)]

    def key_params(self, layer: Any) -> str:
        p = layer.argmax_param
        text = f"top {p.top_k}" if p.top_k != 1 else ""
        if p.HasField("axis"):
            text = f"{text} axis {p.axis}".strip()
        return text


@register_spec
class SilenceSpec(LayerSpec):
    type = "Silence"
    category = "Utility"
    summary = "Consumes blobs that nothing else uses, so they are not reported as outputs."
    bottoms = (1, None)
    tops = (0, 0)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        return []


@register_spec
class TileSpec(LayerSpec):
    type = "Tile"
    category = "Utility"
    summary = "Repeats the input a number of times along one axis."
    param_field = "tile_param"
    engine_supported = False  # no engine layer yet: the editor knows it for import/export

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.tile_param
        shape = list(bottom_shapes[0])
        axis = self.canonical_axis(layer, p.axis, len(shape), "tile_param.axis")
        if p.tiles < 1:
            raise self.error(layer, "tile_param.tiles must be positive")
        shape[axis] *= p.tiles
        return [tuple(shape)]

    def key_params(self, layer: Any) -> str:
        return f"{TIMES}{layer.tile_param.tiles} axis {layer.tile_param.axis}"


_REDUCTIONS = {1: "SUM", 2: "ASUM", 3: "SUMSQ", 4: "MEAN"}


@register_spec
class ReductionSpec(LayerSpec):
    """Caffe's Reduction keeps the axes before ``axis`` (``axis 0`` gives a scalar)."""

    type = "Reduction"
    category = "Utility"
    summary = "Sums (or averages) all values from an axis on."
    param_field = "reduction_param"
    engine_supported = False  # no engine layer yet: the editor knows it for import/export

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        shape = tuple(bottom_shapes[0])
        axis = self.canonical_axis(layer, layer.reduction_param.axis, len(shape),
                                   "reduction_param.axis")
        return [shape[:axis]]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return 2 * count(bottom_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.reduction_param
        return f"{_REDUCTIONS.get(p.operation, p.operation)} from {p.axis}"


@register_spec
class PythonSpec(LayerSpec):
    """A layer written in Python; its code alone knows its output shapes."""

    type = "Python"
    category = "Utility"
    summary = "Runs user Python code (off unless enabled for the project)."
    param_field = "python_param"
    bottoms = (0, None)
    tops = (0, None)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.python_param
        raise self.error(layer, f"the output shapes of Python layer {p.module}.{p.layer} are "
                         "known only when its code runs")

    def key_params(self, layer: Any) -> str:
        p = layer.python_param
        return f"{p.module}.{p.layer}" if p.module or p.layer else ""
