"""Caffe's ``Python`` layer: user code named by ``python_param {module layer}``.

Running code named in a prototxt is a risk, so it is refused unless the project
enabled it (``Net(..., python_layers=True)``).  The user's class follows pycaffe's
API — ``setup``, ``reshape``, ``forward``, ``backward`` on blobs with numpy
``data``/``diff`` — and may ``import caffe`` and subclass ``caffe.Layer``: when no
real Caffe is installed a minimal ``caffe`` module with that base class is provided.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np
import torch

from dlp.engine.layers.base import BuildContext, Layer, Shape
from dlp.engine.registry import register_layer


class PythonBlob:
    """pycaffe's ``Blob`` as a Python layer sees it: numpy ``data`` and ``diff``."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.diff = np.zeros_like(data)

    def reshape(self, *shape: int) -> None:
        if tuple(shape) != self.data.shape:
            self.data = np.zeros(shape, dtype=np.float32)
            self.diff = np.zeros(shape, dtype=np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def count(self) -> int:
        return int(self.data.size)

    def _axis(self, index: int) -> int:
        return self.data.shape[index] if self.data.ndim > index else 1

    num = property(lambda self: self._axis(0))
    channels = property(lambda self: self._axis(1))
    height = property(lambda self: self._axis(2))
    width = property(lambda self: self._axis(3))


class PythonLayerBase:
    """The base class offered as ``caffe.Layer`` when Caffe is not installed."""

    param_str = ""
    phase = 0

    def setup(self, bottom: list[PythonBlob], top: list[PythonBlob]) -> None:
        pass

    def reshape(self, bottom: list[PythonBlob], top: list[PythonBlob]) -> None:
        pass

    def forward(self, bottom: list[PythonBlob], top: list[PythonBlob]) -> None:
        pass

    def backward(self, top: list[PythonBlob], propagate_down: list[bool],
                 bottom: list[PythonBlob]) -> None:
        pass


def _provide_caffe_module() -> None:
    if "caffe" in sys.modules or importlib.util.find_spec("caffe") is not None:
        return
    shim = types.ModuleType("caffe")
    shim.Layer = PythonLayerBase  # type: ignore[attr-defined]
    shim.TRAIN, shim.TEST = 0, 1  # type: ignore[attr-defined]
    sys.modules["caffe"] = shim


class _RunPythonLayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, layer: Python, *bottoms: torch.Tensor) -> Any:
        bottom_blobs = [PythonBlob(b.detach().cpu().float().numpy().copy()) for b in bottoms]
        top_blobs = [PythonBlob(np.zeros(s, np.float32)) for s in layer.shapes]
        layer.user.reshape(bottom_blobs, top_blobs)
        layer.user.forward(bottom_blobs, top_blobs)
        ctx.layer, ctx.bottom_blobs, ctx.top_blobs = layer, bottom_blobs, top_blobs
        ctx.device = bottoms[0].device if bottoms else layer.device
        return tuple(torch.from_numpy(np.asarray(t.data, np.float32).copy()).to(ctx.device)
                     for t in top_blobs)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:
        for blob, grad in zip(ctx.top_blobs, grads, strict=False):
            blob.diff = grad.detach().cpu().float().numpy().reshape(blob.data.shape).copy()
        for blob in ctx.bottom_blobs:
            blob.diff = np.zeros_like(blob.data)
        propagate = [bool(n) for n in ctx.needs_input_grad[1:]]
        ctx.layer.user.backward(ctx.top_blobs, propagate, ctx.bottom_blobs)
        return (None, *[torch.from_numpy(np.asarray(b.diff, np.float32)).to(ctx.device)
                        for b in ctx.bottom_blobs])


@register_layer("Python")
class Python(Layer):
    """Runs the user's pycaffe-style layer class (only when python layers are enabled)."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.python_param
        if not ctx.python_layers:
            raise self.error(
                f"Python layers run code from the prototxt (module {p.module!r}) and are "
                f"disabled; enable python layers for this project to run it"
            )
        if not p.module or not p.layer:
            raise self.error("python_param needs both module and layer")
        _provide_caffe_module()
        added = None
        if ctx.root is not None and str(ctx.root) not in sys.path:
            added = str(ctx.root)
            sys.path.insert(0, added)
        try:
            module = importlib.import_module(p.module)
        except Exception as exc:
            raise self.error(f"cannot import python_param.module {p.module!r}: {exc}") from None
        finally:
            if added is not None:
                sys.path.remove(added)
        cls = getattr(module, p.layer, None)
        if cls is None:
            raise self.error(f"module {p.module!r} has no class {p.layer!r}")
        self.user = cls.__new__(cls)
        self.user.param_str = p.param_str
        self.user.phase = 0 if ctx.is_train else 1
        self.device = ctx.device
        bottoms = [PythonBlob(np.zeros(s, np.float32)) for s in bottom_shapes]
        tops = [PythonBlob(np.zeros((0,), np.float32)) for _ in param.top]
        try:
            self.user.setup(bottoms, tops)
            self.user.reshape(bottoms, tops)
        except Exception as exc:
            raise self.error(f"{p.module}.{p.layer} setup failed: {exc}") from None
        self.shapes: list[Shape] = [t.shape for t in tops]

    def top_shapes(self, bottom_shapes: list[Shape]) -> list[Shape]:
        return list(self.shapes)

    def forward(self, *bottoms: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _RunPythonLayer.apply(self, *bottoms)
