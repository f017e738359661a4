"""The base of every engine layer and what the builder hands it.

A layer is built in two steps, like Caffe's ``LayerSetUp``/``Reshape``: the
constructor reads its ``LayerParameter`` and the bottom shapes and declares its
parameter blobs (allocated on the ``meta`` device by the builder, so building a big
net costs no memory), then the builder moves it to the real device and calls
:meth:`Layer.reset_parameters` to run the fillers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from dlp.errors import InputError

Shape = tuple[int, ...]


class LayerError(InputError):
    """A layer's parameters or inputs are wrong; the message names the layer."""


@dataclass
class BuildContext:
    """What a layer may need from the net being built (phase, device, options)."""

    phase: str = "TRAIN"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    python_layers: bool = False
    seed: int | None = None
    root: Path | None = None  # folder relative data sources are resolved against
    shared: dict[str, Any] = field(default_factory=dict)  # e.g. the lock-step data group

    @property
    def is_train(self) -> bool:
        return self.phase == "TRAIN"


class Layer(nn.Module):
    """One Caffe layer.  ``forward(*bottoms)`` returns a tuple with one tensor per top.

    Parameter blobs are registered with :meth:`add_blob`; :meth:`caffe_blobs`
    returns them in ``.caffemodel`` order.
    """

    type_name: ClassVar[str] = ""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__()
        self.layer_name: str = param.name
        self.phase: str = ctx.phase
        self.blob_names: list[str] = []
        self.learnable: list[bool] = []

    # -- parameter blobs ------------------------------------------------------------
    def add_blob(self, attr: str, shape: Shape, learnable: bool = True) -> torch.Tensor:
        """Declare parameter blob ``attr`` of ``shape`` (filled later by the fillers)."""
        tensor = torch.empty(tuple(int(d) for d in shape))
        if learnable:
            self.register_parameter(attr, nn.Parameter(tensor))
        else:
            self.register_buffer(attr, tensor)
        self.blob_names.append(attr)
        self.learnable.append(learnable)
        return getattr(self, attr)

    def caffe_blobs(self) -> list[torch.Tensor]:
        """The layer's blobs in Caffe's order (weights, bias, statistics ...)."""
        return [getattr(self, name) for name in self.blob_names]

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Fill the parameter blobs with the layer's fillers (nothing by default)."""

    def top_shapes(self, bottom_shapes: list[Shape]) -> list[Shape] | None:
        """Top shapes when they cannot be found by a meta-device forward (sources)."""
        return None

    def error(self, message: str) -> LayerError:
        return LayerError(f"layer {self.layer_name!r} ({self.type_name}): {message}")

    def extra_repr(self) -> str:
        return f"{self.layer_name!r}"


def layer_error(param: Any, message: str) -> LayerError:
    """An error naming ``param``'s layer (for checks before ``Layer.__init__``)."""
    return LayerError(f"layer {param.name!r} ({param.type}): {message}")


def canonical_axis(param: Any, axis: int, ndim: int, field_name: str = "axis") -> int:
    """Caffe's ``CanonicalAxisIndex``: negative axes count from the end."""
    if not -ndim <= axis < ndim:
        raise layer_error(
            param, f"{field_name} {axis} is out of range for a {ndim}-D bottom (expected "
            f"{-ndim}..{ndim - 1})"
        )
    return axis % ndim


def count(shape: Shape, start: int = 0, end: int | None = None) -> int:
    return math.prod(shape[start:end])
