"""Build netlib nets for tests: Data layers replaced by Input blobs of a small size."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dlp.net.filter import filter_net
from dlp.net.prototxt import read_net
from dlp.proto import caffe_pb2

NETLIB = Path(__file__).resolve().parents[2] / "netlib"


def meta(name: str) -> dict:
    return json.loads((NETLIB / name / "meta.json").read_text())


def with_inputs(name: str, phase: str, size: int, batch: int = 1
                ) -> tuple[caffe_pb2.NetParameter, dict[str, tuple[int, ...]]]:
    """The phase's net with every Data layer swapped for an Input of ``size``^2."""
    info = meta(name)
    channels = info["input"][0]
    segmentation = info["task"] == "segmentation"
    shapes = {"data": (batch, channels, size, size),
              "label": (batch, 1, size, size) if segmentation else (batch,)}
    net = filter_net(read_net(NETLIB / name / "train_val.prototxt"), phase)
    for layer in net.layer:
        if layer.type == "Data":
            tops, layer_name = list(layer.top), layer.name
            layer.Clear()
            layer.name, layer.type = layer_name, "Input"
            layer.top.extend(tops)
            for top in tops:
                layer.input_param.shape.add().dim.extend(shapes[top])
    return net, shapes


def random_inputs(name: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    classes = meta(name)["classes"]
    return {"data": torch.rand(shapes["data"], generator=generator) * 255,
            "label": torch.randint(0, classes, shapes["label"], generator=generator).float()}
