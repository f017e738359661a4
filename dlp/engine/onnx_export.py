"""Export a deploy net with its weights to ONNX, so a trained model runs in any ONNX
runtime.  The engine's own modules are traced (TorchScript exporter), so Caffe's
semantics — ceil-mode pooling, crops, grouped deconvolutions — carry over exactly.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from dlp.engine.net import Net
from dlp.engine.weights import WeightReport
from dlp.errors import DLPError, InputError
from dlp.fsutil import atomic_path
from dlp.proto import caffe_pb2

OPSET = 17


class OnnxExportError(DLPError):
    """The net cannot be expressed in ONNX (the message names the layer when known)."""


class _Outputs(nn.Module):
    """The net as a function of its inputs returning its output blobs, in order."""

    def __init__(self, net: Net) -> None:
        super().__init__()
        self.net = net
        self.inputs = list(net.input_names)
        self.outputs = list(net.output_names)

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        blobs = self.net(dict(zip(self.inputs, tensors, strict=True)))
        return tuple(blobs[name] for name in self.outputs)


def export_onnx(net_param: caffe_pb2.NetParameter, weights_param: caffe_pb2.NetParameter | None,
                path: str | os.PathLike[str],
                input_shape: Sequence[int] | None = None) -> WeightReport | None:
    """Write ``path`` (atomically): the deploy net ``net_param`` with ``weights_param``.

    ``input_shape`` ``(N, C, H, W)`` replaces the shape of the net's (single) Input;
    the batch axis is exported as dynamic.  Returns the weight copy report.
    """
    if not any(layer.type == "Input" for layer in net_param.layer) and not net_param.input:
        raise InputError("ONNX export needs a deploy net with an Input layer; derive one "
                         "with `python -m dlp net deploy` first")
    shapes = None
    if input_shape is not None:
        first = _first_input(net_param)
        shapes = {first: tuple(int(d) for d in input_shape)}
    net = Net(net_param, "TEST", memory_format="contiguous", input_shapes=shapes)
    try:
        report = net.copy_from(weights_param) if weights_param is not None else None
        if report is not None and not report.matched and net.learnable_params():
            raise InputError(f"the weights fit no layer of net {net.name!r}: "
                             f"{report.summary()}")
        module = _Outputs(net).eval()
        example = tuple(torch.zeros(net.blob_shapes[name]) for name in module.inputs)
        dynamic = {name: {0: "batch"} for name in [*module.inputs, *module.outputs]
                   if len(net.blob_shapes[name]) > 0}
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(module, example, str(tmp), input_names=module.inputs,
                                  output_names=module.outputs, opset_version=OPSET,
                                  dynamic_axes=dynamic, dynamo=False,
                                  do_constant_folding=True)
            except Exception as exc:  # the exporter's errors are long traces
                raise OnnxExportError(f"ONNX export of net {net.name!r} failed: "
                                      f"{str(exc).strip().splitlines()[0]}") from None
        return report
    finally:
        net.close()


def _first_input(net_param: caffe_pb2.NetParameter) -> str:
    if net_param.input:
        return net_param.input[0]
    for layer in net_param.layer:
        if layer.type == "Input":
            return layer.top[0]
    raise InputError("the net has no Input layer")


def onnx_input_names(path: str | os.PathLike[str]) -> list[str]:
    """Input names of an exported model (for callers feeding onnxruntime)."""
    import onnx

    model = onnx.load(str(Path(path)))
    return [i.name for i in model.graph.input]


__all__: Iterable[str] = ["OnnxExportError", "export_onnx", "onnx_input_names"]
