"""Vision layers: Convolution, Deconvolution, Pooling and Crop, 2-D and N-D.

The output-size rules are Caffe's exactly (``base_conv_layer.cpp``,
``pooling_layer.cpp``, ``crop_layer.cpp``), including Pooling's rounding up and its
rule that the last window must start inside the padded image.
"""

from __future__ import annotations

import math
from typing import Any

from dlp.net.specs.base import TIMES, LayerSpec, Shape, count, format_shape, register_spec


def _sizes(values: list[int]) -> str:
    """Sizes per axis joined by multiplication signs (``3x3``)."""
    return TIMES.join(str(v) for v in values)


def _per_axis(values: list[int]) -> str:
    """Strides or pads: one number when all axes agree, else ``1x2``."""
    return str(values[0]) if len(set(values)) == 1 else _sizes(values)


def caffe_pooled_sizes(spatial: Shape, kernel: list[int] | tuple[int, ...],
                       stride: list[int] | tuple[int, ...], pad: list[int] | tuple[int, ...],
                       ceil_mode: bool = True) -> list[int]:
    """Caffe's pooled output size per spatial axis (``PoolingLayer::Reshape``).

    Rounds up (``round_mode: CEIL``, the default) or down; then, when ANY axis is
    padded, drops on EVERY axis a last window that would start beyond the image and
    its left padding (Caffe tests ``pad_h_ || pad_w_`` once for both axes).  No
    clamping: a result below 1 means the kernel does not fit (the caller reports it).
    """
    sizes = []
    for size, k, s, p in zip(spatial, kernel, stride, pad, strict=True):
        span = size + 2 * p - k
        pooled = (-(-span // s) if ceil_mode else span // s) + 1
        if any(pad) and (pooled - 1) * s >= size + p:
            pooled -= 1
        sizes.append(pooled)
    return sizes


class _ConvolutionBase(LayerSpec):
    """Shared geometry of Convolution and Deconvolution (Caffe's BaseConvolutionLayer)."""

    category = "Vision"
    param_field = "convolution_param"
    bottoms = (1, None)
    tops = (1, None)
    equal_bottoms_tops = True

    def geometry(self, layer: Any, shape: Shape) -> dict[str, Any]:
        """Channel axis, kernel, stride, pad and dilation per spatial axis, checked."""
        p = layer.convolution_param
        num_axes = len(shape)
        channel_axis = self.canonical_axis(layer, p.axis, num_axes, "convolution_param.axis")
        spatial = num_axes - channel_axis - 1
        if spatial < 1:
            raise self.error(
                layer, f"input {format_shape(shape)} has no spatial axis after the channel "
                f"axis {channel_axis}")
        kernel = self._kernel(layer, p, spatial)
        stride = self._axis_values(layer, p, spatial, "stride", 1)
        pad = self._axis_values(layer, p, spatial, "pad", 0)
        if len(p.dilation) not in (0, 1, spatial):
            raise self.error(
                layer, f"dilation must be given once or once per spatial axis ({spatial}); "
                f"got {len(p.dilation)} values")
        dilation = [1] * spatial if not p.dilation else [
            p.dilation[0 if len(p.dilation) == 1 else i] for i in range(spatial)]
        if any(s <= 0 for s in stride):
            raise self.error(layer, f"stride must be positive; got {_sizes(stride)}")
        if any(d <= 0 for d in dilation):
            raise self.error(layer, f"dilation must be positive; got {_sizes(dilation)}")
        if not p.HasField("num_output") or p.num_output <= 0:
            raise self.error(layer, "convolution_param.num_output must be set to a positive number")
        channels = shape[channel_axis]
        group = p.group
        if group <= 0 or channels % group:
            raise self.error(
                layer, f"the input has {channels} channels, which group {group} does not divide")
        if p.num_output % group:
            raise self.error(
                layer, f"num_output {p.num_output} is not a multiple of group {group}")
        return {
            "channel_axis": channel_axis, "channels": channels, "kernel": kernel,
            "stride": stride, "pad": pad, "dilation": dilation, "group": group,
            "num_output": p.num_output, "spatial_in": list(shape[channel_axis + 1:]),
        }

    def _kernel(self, layer: Any, p: Any, spatial: int) -> list[int]:
        if p.HasField("kernel_h") or p.HasField("kernel_w"):
            if spatial != 2:
                raise self.error(layer, "kernel_h/kernel_w are for 2-D inputs only; "
                                 f"this input has {spatial} spatial axes (use kernel_size)")
            if p.kernel_size:
                raise self.error(layer, "give either kernel_size or kernel_h/kernel_w, not both")
            if not (p.HasField("kernel_h") and p.HasField("kernel_w")):
                raise self.error(layer, "kernel_h and kernel_w must both be given")
            kernel = [p.kernel_h, p.kernel_w]
        else:
            if len(p.kernel_size) not in (1, spatial):
                raise self.error(
                    layer, f"kernel_size must be given once or once per spatial axis "
                    f"({spatial}); got {len(p.kernel_size)} values")
            kernel = [p.kernel_size[0 if len(p.kernel_size) == 1 else i] for i in range(spatial)]
        if any(k <= 0 for k in kernel):
            raise self.error(layer, f"kernel sizes must be positive; got {_sizes(kernel)}")
        return kernel

    def _axis_values(self, layer: Any, p: Any, spatial: int, name: str, default: int) -> list[int]:
        has_h, has_w = p.HasField(f"{name}_h"), p.HasField(f"{name}_w")
        values = list(getattr(p, name))
        if has_h or has_w:
            if spatial != 2:
                raise self.error(layer, f"{name}_h/{name}_w are for 2-D inputs only; this "
                                 f"input has {spatial} spatial axes (use {name})")
            if values:
                raise self.error(layer, f"give either {name} or {name}_h/{name}_w, not both")
            return [getattr(p, f"{name}_h"), getattr(p, f"{name}_w")]
        if len(values) not in (0, 1, spatial):
            raise self.error(
                layer, f"{name} must be given once or once per spatial axis ({spatial}); "
                f"got {len(values)} values")
        if not values:
            return [default] * spatial
        return [values[0 if len(values) == 1 else i] for i in range(spatial)]

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        shape = self.same_shape_bottoms(layer, bottom_shapes)
        g = self.geometry(layer, shape)
        spatial_out = self.spatial_out(layer, g)
        top = (*shape[: g["channel_axis"]], g["num_output"], *spatial_out)
        return [top] * len(bottom_shapes)

    def spatial_out(self, layer: Any, g: dict[str, Any]) -> list[int]:
        raise NotImplementedError

    def param_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        g = self.geometry(layer, tuple(bottom_shapes[0]))
        shapes = [self.weight_shape(g)]
        if layer.convolution_param.bias_term:
            shapes.append((g["num_output"],))
        return shapes

    def weight_shape(self, g: dict[str, Any]) -> Shape:
        raise NotImplementedError

    def key_params(self, layer: Any) -> str:
        p = layer.convolution_param
        if p.HasField("kernel_h") or p.HasField("kernel_w"):
            kernel = [p.kernel_h, p.kernel_w]
        else:
            kernel = list(p.kernel_size) or [0]
            if len(kernel) == 1:
                kernel = kernel * 2
        strides = ([p.stride_h, p.stride_w] if p.HasField("stride_h") or p.HasField("stride_w")
                   else list(p.stride) or [1])
        pads = ([p.pad_h, p.pad_w] if p.HasField("pad_h") or p.HasField("pad_w")
                else list(p.pad) or [0])
        text = f"{p.num_output} {TIMES} {_sizes(kernel)} {self.stride_mark}{_per_axis(strides)}"
        if any(pads):
            text += f" p{_per_axis(pads)}"
        if any(d != 1 for d in p.dilation):
            text += f" d{_per_axis(list(p.dilation))}"
        if p.group != 1:
            text += f" g{p.group}"
        return text

    stride_mark = "/"


@register_spec
class ConvolutionSpec(_ConvolutionBase):
    """Caffe's Convolution; weights ``(num_output, C/group, k...)``."""

    type = "Convolution"
    summary = "Convolves the input with learned filters (2-D or N-D, with groups and dilation)."

    def spatial_out(self, layer: Any, g: dict[str, Any]) -> list[int]:
        out = []
        for axis, size in enumerate(g["spatial_in"]):
            extent = g["dilation"][axis] * (g["kernel"][axis] - 1) + 1
            padded = size + 2 * g["pad"][axis]
            if padded < extent:
                raise self.error(
                    layer, f"kernel extent {extent} is larger than the padded input "
                    f"({padded}) along spatial axis {axis}")
            out.append((padded - extent) // g["stride"][axis] + 1)
        return out

    def weight_shape(self, g: dict[str, Any]) -> Shape:
        return (g["num_output"], g["channels"] // g["group"], *g["kernel"])

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        g = self.geometry(layer, tuple(bottom_shapes[0]))
        per_output = (g["channels"] // g["group"]) * math.prod(g["kernel"])
        return sum(2 * per_output * count(top) for top in top_shapes)


@register_spec
class DeconvolutionSpec(_ConvolutionBase):
    """Caffe's Deconvolution (transposed convolution); weights ``(C, num_output/group, k...)``."""

    type = "Deconvolution"
    summary = "Upsamples with learned (or bilinear) transposed-convolution filters."
    stride_mark = "↑"

    def spatial_out(self, layer: Any, g: dict[str, Any]) -> list[int]:
        out = []
        for axis, size in enumerate(g["spatial_in"]):
            extent = g["dilation"][axis] * (g["kernel"][axis] - 1) + 1
            size_out = g["stride"][axis] * (size - 1) + extent - 2 * g["pad"][axis]
            if size_out <= 0:
                raise self.error(
                    layer, f"output size along spatial axis {axis} would be {size_out}: "
                    f"pad {g['pad'][axis]} is too large for kernel extent {extent}")
            out.append(size_out)
        return out

    def weight_shape(self, g: dict[str, Any]) -> Shape:
        return (g["channels"], g["num_output"] // g["group"], *g["kernel"])

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        g = self.geometry(layer, tuple(bottom_shapes[0]))
        per_input = (g["num_output"] // g["group"]) * math.prod(g["kernel"])
        return sum(2 * per_input * count(bottom) for bottom in bottom_shapes)


_POOL_NAMES = {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}


@register_spec
class PoolingSpec(LayerSpec):
    """Caffe's Pooling, output sizes rounded up (``round_mode: CEIL``) by default.

    Caffe pools 4-D blobs only; DLP also pools N-D blobs ``(N, C, D, H, W)`` by applying
    the scalar ``kernel_size``/``stride``/``pad`` to every spatial axis (as the 3-D
    Caffe forks do).  ``kernel_h``/``kernel_w`` and friends remain 2-D only.
    """

    type = "Pooling"
    category = "Vision"
    summary = "Max or average pooling over spatial windows (or over the whole image)."
    param_field = "pooling_param"
    tops = (1, 2)

    def top_count_range(self, layer: Any) -> tuple[int, int | None]:
        # A second top (the argmax mask) exists for MAX pooling only.
        return (1, 2 if layer.pooling_param.pool == 0 else 1)

    def geometry(self, layer: Any, shape: Shape) -> tuple[list[int], list[int], list[int]]:
        """``(kernel, stride, pad)`` per spatial axis, checked as Caffe checks them."""
        p = layer.pooling_param
        if len(shape) < 3:
            raise self.error(layer, f"input {format_shape(shape)} needs at least 3 axes "
                             "(N, C, spatial...)")
        spatial = len(shape) - 2
        has_hw = {n: p.HasField(n) for n in ("kernel_h", "kernel_w", "stride_h", "stride_w",
                                              "pad_h", "pad_w")}
        if spatial != 2 and any(has_hw.values()):
            raise self.error(layer, "kernel_h/w, stride_h/w and pad_h/w are for 4-D inputs; "
                             f"this input is {format_shape(shape)}")
        if p.global_pooling:
            if p.HasField("kernel_size") or has_hw["kernel_h"] or has_hw["kernel_w"]:
                raise self.error(layer, "global_pooling takes no kernel size")
            kernel = list(shape[2:])
        else:
            if p.HasField("kernel_size") and (has_hw["kernel_h"] or has_hw["kernel_w"]):
                raise self.error(layer, "give either kernel_size or kernel_h/kernel_w, not both")
            if p.HasField("kernel_size"):
                kernel = [p.kernel_size] * spatial
            elif has_hw["kernel_h"] and has_hw["kernel_w"]:
                kernel = [p.kernel_h, p.kernel_w]
            else:
                raise self.error(layer, "pooling_param needs kernel_size (or both kernel_h and "
                                 "kernel_w, or global_pooling: true)")
            if any(k <= 0 for k in kernel):
                raise self.error(layer, f"kernel sizes must be positive; got {_sizes(kernel)}")
        stride = self._pair(layer, p, "stride", spatial)
        pad = self._pair(layer, p, "pad", spatial)
        if p.global_pooling and (any(pad) or any(s != 1 for s in stride)):
            raise self.error(layer, "global_pooling needs pad 0 and stride 1")
        if any(s <= 0 for s in stride):
            raise self.error(layer, f"stride must be positive; got {_sizes(stride)}")
        if any(pad):
            if p.pool == 2:
                raise self.error(layer, "padding works with MAX and AVE pooling only")
            for k, q in zip(kernel, pad, strict=True):
                if q >= k:
                    raise self.error(layer, f"pad {q} must be smaller than the kernel {k}")
        return kernel, stride, pad

    def _pair(self, layer: Any, p: Any, name: str, spatial: int) -> list[int]:
        has_h, has_w = p.HasField(f"{name}_h"), p.HasField(f"{name}_w")
        if has_h or has_w:
            if p.HasField(name):
                raise self.error(layer, f"give either {name} or {name}_h/{name}_w, not both")
            if not (has_h and has_w):
                raise self.error(layer, f"{name}_h and {name}_w must both be given")
            return [getattr(p, f"{name}_h"), getattr(p, f"{name}_w")]
        return [getattr(p, name)] * spatial

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        shape = tuple(bottom_shapes[0])
        kernel, stride, pad = self.geometry(layer, shape)
        ceil_mode = layer.pooling_param.round_mode == 0
        out = caffe_pooled_sizes(shape[2:], kernel, stride, pad, ceil_mode)
        for axis, (size, pooled) in enumerate(zip(shape[2:], out, strict=True)):
            if pooled <= 0:
                raise self.error(
                    layer, f"kernel {kernel[axis]} is larger than the padded input "
                    f"({size + 2 * pad[axis]}) along spatial axis {axis}")
        top = (*shape[:2], *out)
        return [top, top] if len(layer.top) >= 2 else [top]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        kernel, _, _ = self.geometry(layer, tuple(bottom_shapes[0]))
        return count(top_shapes[0]) * math.prod(kernel)

    def key_params(self, layer: Any) -> str:
        p = layer.pooling_param
        name = _POOL_NAMES.get(p.pool, str(p.pool))
        if p.global_pooling:
            return f"{name} global"
        if p.HasField("kernel_size"):
            kernel = f"{p.kernel_size}{TIMES}{p.kernel_size}"
        else:
            kernel = f"{p.kernel_h}{TIMES}{p.kernel_w}"
        stride = (_per_axis([p.stride_h, p.stride_w]) if p.HasField("stride_h")
                  or p.HasField("stride_w") else str(p.stride))
        text = f"{name} {kernel} /{stride}"
        pad = ([p.pad_h, p.pad_w] if p.HasField("pad_h") or p.HasField("pad_w") else [p.pad])
        if any(pad):
            text += f" p{_per_axis(pad)}"
        if p.round_mode == 1:
            text += " floor"
        return text


@register_spec
class CropSpec(LayerSpec):
    """Caffe's Crop: bottom 0 cropped to bottom 1's size from ``axis`` on, at ``offset``."""

    type = "Crop"
    category = "Vision"
    summary = "Crops the first input to the size of the second (FCN's alignment step)."
    param_field = "crop_param"
    bottoms = (2, 2)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.crop_param
        source, reference = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        if len(source) != len(reference):
            raise self.error(
                layer, f"bottom 0 {format_shape(source)} and the reference bottom 1 "
                f"{format_shape(reference)} must have the same number of axes")
        start = self.canonical_axis(layer, p.axis, len(source), "crop_param.axis")
        offsets = list(p.offset)
        cropped = len(source) - start
        if len(offsets) > 1 and len(offsets) != cropped:
            raise self.error(
                layer, f"give one offset or one per cropped axis ({cropped} from axis "
                f"{start}); got {len(offsets)}")
        out = list(source)
        for axis in range(start, len(source)):
            offset = 0 if not offsets else offsets[0 if len(offsets) == 1 else axis - start]
            if source[axis] - offset < reference[axis]:
                raise self.error(
                    layer, f"axis {axis}: cannot crop {reference[axis]} at offset {offset} "
                    f"from size {source[axis]} (bottom 0 {format_shape(source)}, reference "
                    f"{format_shape(reference)})")
            out[axis] = reference[axis]
        return [tuple(out)]

    def key_params(self, layer: Any) -> str:
        p = layer.crop_param
        offsets = ",".join(str(o) for o in p.offset) or "0"
        return f"axis {p.axis}, offset {offsets}"
