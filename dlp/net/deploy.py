"""Derive a deploy net (for inference) from a train/val net, as DIGITS does.

The deploy net is the TEST-phase net (with the ``deploy`` stage, so DIGITS-style
``include { stage: "deploy" }`` layers appear and ``exclude { stage: "deploy" }``
ones vanish) minus everything that needs labels or files:

- data layers (``Data``, ``ImageData``, ``HDF5Data``, ``DummyData``, ``Input``, a
  bottomless ``Python``) are replaced by one ``Input`` layer per blob the rest of the
  net actually reads, named like that blob, shaped like one sample with batch 1;
- loss, accuracy and Dice layers are dropped, and so is every layer that only
  prepares their labels or needs a blob that no longer exists;
- a net trained with ``SoftmaxWithLoss`` gets a ``Softmax`` named ``prob`` on the
  scores (``Sigmoid`` for ``SigmoidCrossEntropyLoss``) unless it already has one.

Data-layer transforms (scale, mean) are not part of the deploy net: the Deploy
module applies the dataset's preprocessing before feeding ``Input``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from dlp.errors import DLPError, InputError
from dlp.net.filter import filter_net
from dlp.net.shapes import infer_shapes, legacy_inputs
from dlp.net.specs import LayerSpec, Shape, format_shape, get_spec
from dlp.proto import caffe_pb2

DEPLOY_STAGE = "deploy"

# Loss type -> the activation that turns its scores into what a user wants to see.
_PROBABILITY_LAYERS = {"SoftmaxWithLoss": "Softmax", "SigmoidCrossEntropyLoss": "Sigmoid"}


class DeployError(InputError):
    """A deploy net cannot be derived (unknown input shape, nothing left to run)."""


def _spec(layer: Any) -> LayerSpec | None:
    try:
        return get_spec(layer.type)
    except DLPError:
        return None


def _is_source(layer: Any, spec: LayerSpec | None) -> bool:
    if spec is not None and spec.is_data_source:
        return True
    return layer.type == "Python" and not layer.bottom


def _is_metric_or_loss(spec: LayerSpec | None) -> bool:
    return spec is not None and (spec.category == "Loss" or spec.is_loss)


def _useful_layers(layers: list[Any], specs: list[LayerSpec | None]) -> tuple[list[bool], set[str]]:
    """Which layers feed a prediction, and which blobs they need (a backward pass).

    A layer is useful when one of its tops is a net output (no later layer reads it),
    is read by a useful layer, or is the prediction (bottom 0) of a loss or metric.
    Layers that only prepare labels (bottoms 1+ of losses) are not useful.
    """
    useful = [False] * len(layers)
    needed: set[str] = set()
    for index in range(len(layers) - 1, -1, -1):
        layer, spec = layers[index], specs[index]
        if _is_source(layer, spec):
            continue
        if _is_metric_or_loss(spec):
            if layer.bottom:
                needed.add(layer.bottom[0])
            continue
        if spec is not None and spec.type == "Silence":
            continue
        read_later = {b for later in layers[index + 1:] for b in later.bottom}
        if any(top in needed or top not in read_later for top in layer.top):
            useful[index] = True
            needed.update(layer.bottom)
    return useful, needed


def _input_shapes(data_tops: list[str], input_shape: Iterable[int] | Mapping[str, Iterable[int]]
                  | None) -> dict[str, Shape]:
    if input_shape is None:
        return {}
    if isinstance(input_shape, Mapping):
        unknown = sorted(set(input_shape) - set(data_tops))
        if unknown:
            raise DeployError(f"input shape given for {', '.join(map(repr, unknown))}, which "
                              f"the deploy net does not read (its inputs: {', '.join(data_tops)})")
        return {name: tuple(int(d) for d in shape) for name, shape in input_shape.items()}
    return {data_tops[0]: tuple(int(d) for d in input_shape)} if data_tops else {}


def _add_probability(deploy: caffe_pb2.NetParameter, losses: list[Any],
                     available: set[str]) -> None:
    for loss in reversed(losses):
        kind = _PROBABILITY_LAYERS.get(loss.type)
        if kind is None or not loss.bottom or loss.bottom[0] not in available:
            continue
        scores = loss.bottom[0]
        if any(layer.type == kind and scores in layer.bottom for layer in deploy.layer):
            return
        names = {layer.name for layer in deploy.layer} | available
        name = "prob"
        suffix = 1
        while name in names:
            name = f"prob_{suffix}"
            suffix += 1
        prob = deploy.layer.add(name=name, type=kind, bottom=[scores], top=[name])
        if kind == "Softmax" and loss.HasField("softmax_param"):
            prob.softmax_param.CopyFrom(loss.softmax_param)
        return


def derive_deploy_net(train_val: caffe_pb2.NetParameter,
                      input_shape: Iterable[int] | Mapping[str, Iterable[int]] | None = None,
                      *, base_dir: str | os.PathLike[str] | None = None
                      ) -> caffe_pb2.NetParameter:
    """The deploy net of ``train_val`` (see the module docstring for the rules).

    ``input_shape`` is the ``(N, C, H, W)`` of the (first) input, or a mapping from
    input blob name to shape; without it each input takes its data layer's sample
    shape with batch 1 (a ``Data`` layer reads the first Datum of its LMDB, relative
    to ``base_dir``).  Raises :class:`DeployError` when an input shape is unknown.
    """
    net = filter_net(train_val, caffe_pb2.TEST, stages=(DEPLOY_STAGE,))
    layers = list(net.layer)
    specs = [_spec(layer) for layer in layers]
    useful, needed = _useful_layers(layers, specs)

    # (blob, producing layer, phase) of every blob that comes from outside the net; a
    # blob only the TRAIN data layers produce still becomes an input of the deploy net.
    sources: list[tuple[str, str, int]] = []
    phases = {caffe_pb2.TEST: net, caffe_pb2.TRAIN: filter_net(train_val, caffe_pb2.TRAIN)}
    for phase, phase_net in phases.items():
        sources.extend((name, name, phase) for name, _ in legacy_inputs(phase_net))
        for layer in phase_net.layer:
            if _is_source(layer, _spec(layer)):
                sources.extend((top, layer.name, phase) for top in layer.top)
    data_tops: list[str] = []
    for top, _, _ in sources:
        if top in needed and top not in data_tops:
            data_tops.append(top)
    if not data_tops:
        produced = {top for layer in layers for top in layer.top}
        unfed = sorted(needed - produced)
        detail = (f"blob(s) {', '.join(map(repr, unfed))} are read but no layer produces them"
                  if unfed else "no data layer feeds the layers that remain")
        raise DeployError(f"net {net.name!r}: cannot derive a deploy net: {detail}")

    shapes = _input_shapes(data_tops, input_shape)
    for top in data_tops:
        if top in shapes:
            continue
        producer, phase = next((name, ph) for blob, name, ph in sources if blob == top)
        # each phase net carries its own state (TEST with the deploy stage)
        inferred = infer_shapes(phases[phase], phase, base_dir=base_dir)
        shape = inferred.blobs.get(top)
        if shape is None:
            reason = next((info.error for info in inferred.layers
                           if info.name == producer and info.error), "its shape is unknown")
            hint = "" if "--input-shape" in reason else (
                "; give the input shape (e.g. --input-shape 1,1,256,256)")
            raise DeployError(f"cannot tell the shape of input {top!r}: {reason}{hint}")
        shapes[top] = (1, *shape[1:])

    deploy = caffe_pb2.NetParameter()
    if net.name:
        deploy.name = net.name
    for top in data_tops:
        if any(d <= 0 for d in shapes[top]):
            raise DeployError(f"input {top!r}: shape {format_shape(shapes[top])} has a "
                              "dimension that is not positive")
        layer = deploy.layer.add(name=top, type="Input", top=[top])
        layer.input_param.shape.add().dim.extend(shapes[top])

    available = set(data_tops)
    for index, (layer, spec) in enumerate(zip(layers, specs, strict=True)):
        if _is_metric_or_loss(spec) or _is_source(layer, spec) or not useful[index]:
            continue
        if not all(bottom in available for bottom in layer.bottom):
            continue
        kept = deploy.layer.add()
        kept.CopyFrom(layer)
        del kept.include[:]
        del kept.exclude[:]
        del kept.loss_weight[:]
        kept.ClearField("phase")
        available.update(layer.top)
    if len(deploy.layer) == len(data_tops):
        raise DeployError(f"net {net.name!r}: nothing is left to run once the data and loss "
                          "layers are removed")
    # The losses of any phase or stage tell how the scores were trained (DIGITS nets
    # exclude them from the deploy stage).
    losses = [layer for layer in train_val.layer if _is_metric_or_loss(_spec(layer))]
    _add_probability(deploy, losses, available)
    return deploy
