"""Layer specs: the one declaration per Caffe layer type, shared by editor and engine.

Importing this package registers every family (one module each); look a type up with
:func:`get_spec` and list them with :func:`all_specs`::

    spec = get_spec("Convolution")
    spec.output_shapes(layer, [(1, 3, 32, 32)])   # -> [(1, 64, 30, 30)]
"""

from __future__ import annotations

from dlp.net.specs import activation, common, data, loss, normalization, utility, vision
from dlp.net.specs.base import (
    CATEGORIES,
    DuplicateSpecError,
    LayerSpec,
    Shape,
    ShapeError,
    UnknownLayerTypeError,
    all_specs,
    count,
    count_problem,
    format_shape,
    get_spec,
    register_spec,
)
from dlp.net.specs.data import SampleSourceSpec

__all__ = [
    "CATEGORIES",
    "DuplicateSpecError",
    "LayerSpec",
    "SampleSourceSpec",
    "Shape",
    "ShapeError",
    "UnknownLayerTypeError",
    "activation",
    "all_specs",
    "common",
    "count",
    "count_problem",
    "data",
    "format_shape",
    "get_spec",
    "loss",
    "normalization",
    "register_spec",
    "utility",
    "vision",
]
