"""Shape inference for a whole net, without torch: every blob's shape, params and FLOPs.

:func:`infer_shapes` walks the layers of one phase in file order, as Caffe's
``Net::Init`` does, asking each layer's spec for its output shapes.  It never stops at
the first problem: a layer that cannot be shaped gets an ``error`` and its tops become
unknown, so every later layer that needs them says which layer to fix first.  The Net
editor colours those layers red; ``python -m dlp net info`` prints the same table.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlp.errors import DLPError
from dlp.net.filter import layer_included, make_state
from dlp.net.specs import (
    LayerSpec,
    SampleSourceSpec,
    Shape,
    count_problem,
    format_shape,
    get_spec,
)
from dlp.proto import caffe_pb2

#: The top name of a loss layer's anonymous output (Caffe's ``AutoTopBlobs``).
AUTOMATIC_TOP = "(automatic)"

DataShape = tuple[int, ...] | Mapping[str, tuple[int, ...]]


@dataclass
class LayerInfo:
    """One layer's shapes, parameters and work; ``error`` says why shapes are missing.

    ``tops`` maps each top blob to its shape (``None`` when it could not be inferred);
    ``params`` counts learnable values, while ``param_shapes`` lists every parameter
    blob stored in a ``.caffemodel`` (BatchNorm: 3 blobs, 0 learnable values).
    """

    name: str
    type: str
    bottoms: dict[str, Shape | None] = field(default_factory=dict)
    tops: dict[str, Shape | None] = field(default_factory=dict)
    params: int = 0
    flops: int = 0
    error: str | None = None
    param_shapes: list[Shape] = field(default_factory=list)
    key_params: str = ""
    #: When the error only follows from an earlier layer's failure: that layer's name.
    caused_by: str | None = None


@dataclass
class NetShapes:
    """The result of :func:`infer_shapes`: per-layer info and the final shape of each blob."""

    layers: list[LayerInfo]
    blobs: dict[str, Shape]

    @property
    def errors(self) -> list[LayerInfo]:
        """The layers whose shapes could not be inferred."""
        return [info for info in self.layers if info.error]

    @property
    def root_errors(self) -> list[LayerInfo]:
        """The failed layers that are not merely downstream of another failure."""
        return [info for info in self.layers if info.error and not info.caused_by]

    @property
    def total_flops(self) -> int:
        return sum(info.flops for info in self.layers)

    @property
    def total_params(self) -> int:
        return sum(info.params for info in self.layers)

    def layer(self, name: str) -> LayerInfo:
        """The info of the layer called ``name`` (KeyError when absent)."""
        for info in self.layers:
            if info.name == name:
                return info
        raise KeyError(name)


def legacy_inputs(net: caffe_pb2.NetParameter) -> list[tuple[str, Shape | None]]:
    """The deprecated ``input:`` blobs with their ``input_shape`` or ``input_dim`` shapes."""
    inputs: list[tuple[str, Shape | None]] = []
    for index, name in enumerate(net.input):
        shape: Shape | None = None
        if index < len(net.input_shape):
            shape = tuple(int(d) for d in net.input_shape[index].dim)
        elif len(net.input_dim) >= 4 * (index + 1):
            shape = tuple(int(d) for d in net.input_dim[4 * index: 4 * index + 4])
        inputs.append((name, shape))
    return inputs


def label_blobs(layers: Iterable[Any]) -> set[str]:
    """Blobs used only as the label (bottom 1+) of loss and metric layers."""
    labels, used_otherwise = set(), set()
    for layer in layers:
        try:
            category = get_spec(layer.type).category
        except DLPError:
            category = ""
        for index, bottom in enumerate(layer.bottom):
            (labels if category == "Loss" and index > 0 else used_otherwise).add(bottom)
    return labels - used_otherwise


def _sample_shapes(layer: Any, spec: SampleSourceSpec, data_shape: DataShape | None,
                   labels: set[str], base_dir: str | os.PathLike[str] | None
                   ) -> dict[str, Shape]:
    """Per-top sample shapes for a file-reading data layer (caller's, else from its source)."""
    if data_shape is None:
        return spec.read_samples(layer, base_dir)
    if isinstance(data_shape, Mapping):
        samples: dict[str, Shape] = {}
        for index, top in enumerate(layer.top):
            keys = [top, layer.name] if index == 0 else [top]
            for key in keys:
                if key in data_shape:
                    samples[top] = tuple(int(d) for d in data_shape[key])
                    break
        return samples if samples else spec.read_samples(layer, base_dir)
    sample = tuple(int(d) for d in data_shape)
    top0 = layer.top[0] if layer.top else ""
    if top0 in labels and len(sample) >= 3:
        # One data shape describes the images; their label maps have one channel.
        sample = (*sample[:-3], 1, *sample[-2:])
    return {top0: sample}


class _Inference:
    """The walk over one net's layers (a class only to keep the state together)."""

    def __init__(self, input_shapes: Mapping[str, Shape] | None, data_shape: DataShape | None,
                 base_dir: str | os.PathLike[str] | None) -> None:
        self.overrides = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
        self.data_shape = data_shape
        self.base_dir = base_dir
        self.blobs: dict[str, Shape] = {}
        self.failed: dict[str, str] = {}  # blob -> the layer that should have produced it
        self.known_names: set[str] = set()
        self.labels: set[str] = set()
        self.culprit: str | None = None  # the first failed layer behind a missing bottom

    def bottom_shapes(self, layer: Any, info: LayerInfo) -> list[Shape] | None:
        shapes = []
        for bottom in layer.bottom:
            shape = self.blobs.get(bottom)
            info.bottoms[bottom] = shape
            if shape is None:
                prefix = f"layer {layer.name!r} ({layer.type}): "
                if bottom in self.failed:
                    self.culprit = info.caused_by = self.failed[bottom]
                    info.error = (f"{prefix}bottom {bottom!r} has no known shape (fix layer "
                                  f"{self.culprit!r} first)")
                elif bottom in self.known_names:
                    info.error = f"{prefix}bottom {bottom!r} has no known shape"
                else:
                    available = ", ".join(sorted(self.blobs)) or "none"
                    info.error = (f"{prefix}unknown bottom blob {bottom!r} (available: "
                                  f"{available})")
                return None
            shapes.append(shape)
        return shapes

    def source_shapes(self, layer: Any, spec: LayerSpec) -> list[Shape]:
        tops = list(layer.top)
        given = {top: self.overrides[top] for top in tops if top in self.overrides}
        if tops and len(given) == len(tops):
            return [given[top] for top in tops]
        if isinstance(spec, SampleSourceSpec):
            samples = _sample_shapes(layer, spec, self.data_shape, self.labels, self.base_dir)
            shapes = spec.source_shapes(layer, samples)
        else:
            shapes = spec.output_shapes(layer, [])
        return [given.get(top, shape) for top, shape in zip(tops, shapes, strict=False)]

    def run_layer(self, layer: Any) -> LayerInfo:
        info = LayerInfo(name=layer.name, type=layer.type)
        top_names = list(layer.top)
        info.tops = dict.fromkeys(top_names)
        self.known_names.update(top_names)
        try:
            spec = get_spec(layer.type)
            info.key_params = spec.key_params(layer)
        except DLPError as exc:
            info.error = f"layer {layer.name!r} ({layer.type}): {exc}"
            self.mark_failed(layer, top_names)
            return info
        count_error = count_problem(spec, layer)
        if count_error:
            info.error = f"layer {layer.name!r} ({layer.type}): {count_error}"
            self.mark_failed(layer, top_names)
            return info
        if spec.auto_top_blobs and not top_names:
            top_names = [AUTOMATIC_TOP]
            info.tops = {AUTOMATIC_TOP: None}
        try:
            given = [self.overrides.get(top) for top in layer.top]
            if not layer.bottom and layer.top and all(given):
                # any bottomless layer (a Python data layer too) takes the caller's shapes
                bottoms: list[Shape] = []
                tops = [shape for shape in given if shape is not None]
            elif spec.is_data_source:
                bottoms = []
                tops = self.source_shapes(layer, spec)
            else:
                maybe = self.bottom_shapes(layer, info)
                if maybe is None:
                    self.mark_failed(layer, top_names)
                    return info
                bottoms = maybe
                tops = spec.output_shapes(layer, bottoms)
            if len(tops) < len(top_names):
                raise spec.error(layer, f"gives {len(tops)} output shape(s) for "
                                 f"{len(top_names)} tops")
            info.param_shapes = spec.param_shapes(layer, bottoms)
            info.params = spec.learnable_count(layer, bottoms)
            info.flops = spec.flops(layer, bottoms, tops)
        except DLPError as exc:
            info.error = str(exc)
            self.mark_failed(layer, top_names)
            return info
        for name, shape in zip(top_names, tops, strict=False):
            info.tops[name] = tuple(shape)
            if name != AUTOMATIC_TOP:
                self.blobs[name] = tuple(shape)
                self.failed.pop(name, None)
        return info

    def mark_failed(self, layer: Any, top_names: list[str]) -> None:
        culprit, self.culprit = self.culprit or layer.name, None
        for name in top_names:
            self.blobs.pop(name, None)
            self.failed[name] = culprit


def infer_shapes(net: caffe_pb2.NetParameter, phase: str | int = "TEST",
                 input_shapes: Mapping[str, Iterable[int]] | None = None,
                 data_shape: DataShape | None = None, *, stages: Iterable[str] = (),
                 level: int = 0, base_dir: str | os.PathLike[str] | None = None) -> NetShapes:
    """Shapes of every blob of ``net`` in ``phase``, with params and FLOPs per layer.

    ``input_shapes`` overrides the shapes of net inputs by blob name: ``Input`` layer
    tops, deprecated ``input:`` blobs, and the tops of any data layer.  ``data_shape``
    is one sample's ``(C, H, W)`` (or ``(N, C, H, W)`` to set the batch too) for data
    layers that read files; a mapping gives it per top or layer name.  Without it a
    ``Data`` layer reads the first Datum of its LMDB (relative sources are resolved
    against ``base_dir``).  Shapes are ``(N, C, H, W[, ...])``; losses are ``()``.
    """
    walk = _Inference(input_shapes, data_shape, base_dir)
    state = make_state(phase, level, stages, net.state if net.HasField("state") else None)
    layers: list[LayerInfo] = []
    for name, shape in legacy_inputs(net):
        shape = walk.overrides.get(name, shape)
        info = LayerInfo(name=name, type="Input", tops={name: shape})
        walk.known_names.add(name)
        if shape is None:
            info.error = f"net input {name!r} has no input_shape or input_dim"
            walk.failed[name] = name
        else:
            walk.blobs[name] = shape
            info.key_params = format_shape(shape)
        layers.append(info)
    running: list[tuple[Any, str | None]] = []
    for layer in net.layer:
        try:
            if layer_included(layer, state):
                running.append((layer, None))
        except DLPError as exc:
            running.append((layer, str(exc)))
    walk.labels = label_blobs(layer for layer, error in running if error is None)
    for layer, error in running:
        if error is None:
            layers.append(walk.run_layer(layer))
        else:
            layers.append(LayerInfo(name=layer.name, type=layer.type, error=error,
                                    tops=dict.fromkeys(layer.top)))
            walk.mark_failed(layer, list(layer.top))
    return NetShapes(layers=layers, blobs=dict(walk.blobs))
