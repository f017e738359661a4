"""The layer-spec base class, the registry and the shape helpers every family shares.

A :class:`LayerSpec` is the single declaration of what one Caffe layer type accepts:
how many bottoms and tops (Caffe's ``ExactNumBottomBlobs``/``MinTopBlobs``), which
``*_param`` message configures it, what its outputs' shapes are, which parameter
blobs it owns (in ``.caffemodel`` order) and roughly how much work it does.  The Net
editor, validation, shape inference and the PyTorch engine all read this one table.

Shapes are plain tuples of ints in Caffe's axis order, ``(N, C, H, W[, D...])``; a
loss is the empty tuple ``()`` (Caffe's 0-axis blob of count 1).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from dlp.errors import DLPError, InputError

Shape = tuple[int, ...]

# Typography of the canvas texts ("64 x 3x3 /1" with real multiplication signs).
TIMES = "\u00d7"
MINUS = "\u2212"
ALPHA = "\u03b1"
BETA = "\u03b2"

#: The palette's categories, in the order the editor shows them.
CATEGORIES = ("Data", "Vision", "Activation", "Normalization", "Common", "Loss", "Utility")


class ShapeError(DLPError):
    """A layer cannot produce outputs from its inputs or parameters.

    ``str()`` names the layer, its type and what was expected; ``layer`` holds the
    layer name so the editor can mark that node.
    """

    def __init__(self, message: str, layer: str | None = None) -> None:
        super().__init__(message)
        self.layer = layer


class UnknownLayerTypeError(InputError):
    """A layer type that no spec is registered for; the message names the closest."""

    def __init__(self, type_name: str, known: Sequence[str]) -> None:
        close = difflib.get_close_matches(type_name, known, n=3, cutoff=0.5)
        if not close:
            lowered = {name.lower(): name for name in known}
            close = [lowered[type_name.lower()]] if type_name.lower() in lowered else []
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"unknown layer type {type_name!r}{hint}")
        self.type_name = type_name
        self.closest = close


class DuplicateSpecError(DLPError):
    """Two specs were registered for one layer type (a programming error, loudly)."""


def count(shape: Sequence[int], start: int = 0, end: int | None = None) -> int:
    """Caffe's ``Blob::count(start, end)``: the product of ``shape[start:end]``."""
    return math.prod(shape[start:end])


class LayerSpec:
    """What one layer type accepts and produces; subclasses override the hooks.

    Subclasses set the class attributes and override :meth:`output_shapes` (and,
    where they own weights or do real work, :meth:`param_shapes`, :meth:`flops`,
    :meth:`key_params`).  Every check raises :class:`ShapeError` through
    :meth:`error`, so messages all read ``layer 'name' (Type): what was expected``.
    """

    type: ClassVar[str]
    category: ClassVar[str]
    summary: ClassVar[str]
    param_field: ClassVar[str | None] = None
    #: Other ``*_param`` fields the type reads (``loss_param``, ``transform_param``).
    extra_param_fields: ClassVar[tuple[str, ...]] = ()
    bottoms: ClassVar[tuple[int, int | None]] = (1, 1)
    tops: ClassVar[tuple[int, int | None]] = (1, 1)
    is_loss: ClassVar[bool] = False
    #: Caffe's ``AutoTopBlobs()``: missing tops (up to the minimum) are created anonymously.
    auto_top_blobs: ClassVar[bool] = False
    #: Caffe's ``EqualNumBottomTopBlobs()``: one top per bottom (Convolution).
    equal_bottoms_tops: ClassVar[bool] = False
    #: False for types the editor and validation know but the engine cannot run.
    engine_supported: ClassVar[bool] = True
    #: True for layers that only produce blobs from outside the net (files, fillers).
    is_data_source: ClassVar[bool] = False
    #: True for DLP's own types (not in BVLC Caffe); dropped or refused on export to Caffe.
    dlp_only: ClassVar[bool] = False

    # -- helpers for subclasses -------------------------------------------------------

    def param(self, layer: Any) -> Any:
        """The layer's ``*_param`` message (its defaults when unset)."""
        if self.param_field is None:
            raise TypeError(f"{self.type} has no parameter message")
        return getattr(layer, self.param_field)

    def error(self, layer: Any, message: str) -> ShapeError:
        """A :class:`ShapeError` for ``layer`` that names it and its type."""
        name = getattr(layer, "name", "") or "<unnamed>"
        return ShapeError(f"layer {name!r} ({self.type}): {message}", layer=name)

    def canonical_axis(self, layer: Any, axis: int, num_axes: int, field: str) -> int:
        """Caffe's ``CanonicalAxisIndex``: ``axis`` may count from the end."""
        if not -num_axes <= axis < num_axes:
            raise self.error(
                layer, f"{field} {axis} is out of range for a {num_axes}-axis input "
                f"(expected {-num_axes}..{num_axes - 1})")
        return axis % num_axes

    def same_shape_bottoms(self, layer: Any, bottom_shapes: Sequence[Shape]) -> Shape:
        """The common shape of all bottoms; an error names the first that differs."""
        first = tuple(bottom_shapes[0])
        for index, shape in enumerate(bottom_shapes[1:], start=1):
            if tuple(shape) != first:
                raise self.error(
                    layer, f"bottom {index} has shape {format_shape(shape)}, expected the "
                    f"same shape as bottom 0 {format_shape(first)}")
        return first

    # -- the interface ----------------------------------------------------------------

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        """The shape of each top, given the bottoms' shapes; raises :class:`ShapeError`."""
        raise NotImplementedError(f"{type(self).__name__}.output_shapes")

    def param_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        """Shapes of the layer's parameter blobs, in ``.caffemodel`` order."""
        return []

    def learnable_count(self, layer: Any, bottom_shapes: list[Shape]) -> int:
        """Number of learnable values (BatchNorm's statistics blobs are not learnable)."""
        return sum(count(shape) for shape in self.param_shapes(layer, bottom_shapes))

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        """Forward floating-point operations (a multiply-add counts 2)."""
        return 0

    def key_params(self, layer: Any) -> str:
        """A short summary of the parameters for the canvas, e.g. ``64 x 3x3 /1``."""
        return ""

    def top_count_range(self, layer: Any) -> tuple[int, int | None]:
        """The allowed number of tops for this layer (some depend on parameters)."""
        return self.tops


def _range_text(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low}"
    return str(low) if low == high else f"{low} to {high}"


def count_problem(spec: LayerSpec, layer: Any) -> str | None:
    """What is wrong with ``layer``'s number of bottoms and tops for ``spec``, or None."""
    low, high = spec.bottoms
    n = len(layer.bottom)
    if n < low or (high is not None and n > high):
        return f"takes {_range_text(low, high)} bottom(s), got {n}"
    low, high = spec.top_count_range(layer)
    n = len(layer.top)
    if spec.auto_top_blobs and n == 0:
        return None
    if n < low or (high is not None and n > high):
        return f"produces {_range_text(low, high)} top(s), got {n}"
    if spec.equal_bottoms_tops and len(layer.top) != len(layer.bottom):
        return f"needs one top per bottom ({len(layer.bottom)}), got {len(layer.top)}"
    return None


def format_shape(shape: Sequence[int] | None) -> str:
    """``(1, 3, 224, 224)`` as ``1x3x224x224`` with multiplication signs; a scalar as ``()``."""
    if shape is None:
        return "?"
    return TIMES.join(str(d) for d in shape) if len(shape) else "()"


def format_number(value: float) -> str:
    """A float as short text for the canvas: ``0.5``, ``1e-04``, ``-116``."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:g}"


_REGISTRY: dict[str, LayerSpec] = {}


def register_spec(cls: type[LayerSpec]) -> type[LayerSpec]:
    """Class decorator: register one instance of ``cls`` under ``cls.type``."""
    name = cls.type
    if name in _REGISTRY:
        raise DuplicateSpecError(
            f"layer type {name!r} is registered twice ({type(_REGISTRY[name]).__name__} "
            f"and {cls.__name__})")
    if cls.category not in CATEGORIES:
        raise DuplicateSpecError(f"{cls.__name__}: unknown category {cls.category!r}")
    _REGISTRY[name] = cls()
    return cls


def get_spec(type_name: str) -> LayerSpec:
    """The spec of ``type_name``; :class:`UnknownLayerTypeError` names the closest types."""
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UnknownLayerTypeError(type_name, sorted(_REGISTRY)) from None


def all_specs() -> list[LayerSpec]:
    """Every registered spec, by category then type name."""
    return sorted(_REGISTRY.values(), key=lambda s: (CATEGORIES.index(s.category), s.type))
