"""A Caffe ``NetParameter`` built into a ``torch.nn.Module`` whose outputs are named blobs.

Building follows Caffe's ``Net::Init``: filter the layers by phase/level/stages,
check each layer's bottom/top counts against :mod:`dlp.net.specs` (the declaration
shared with the editor), resolve bottoms by name, build each layer from its bottom
shapes, and find its top shapes with a forward on the ``meta`` device (no memory,
no arithmetic).  In-place layers (top == bottom) simply rebind the blob name.

The per-step path is one loop over a precomputed plan; 2-D convolution nets run in
PyTorch's channels_last layout, which the oneDNN CPU kernels prefer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlp.engine.layers.base import BuildContext, Layer, LayerError, Shape
from dlp.engine.registry import get_layer_class
from dlp.errors import InputError
from dlp.net.shapes import AUTOMATIC_TOP
from dlp.proto import caffe_pb2

_CONV_TYPES = ("Convolution", "Deconvolution")
# Layers whose top is a fresh tensor that their backward does not need: an in-place
# ReLU/Dropout right after them may overwrite it (as Caffe does), saving memory and
# allocation time.  Views (Crop, Reshape, Split) and ReLU itself (its backward reads
# its output) are deliberately absent.
_FRESH_OUTPUT_TYPES = frozenset({"Convolution", "Deconvolution", "InnerProduct", "BatchNorm",
                                 "Scale", "Bias", "Eltwise", "Pooling"})
_INPLACE_CAPABLE = frozenset({"ReLU", "Dropout"})


class NetBuildError(InputError):
    """The net cannot be built (unknown bottom, wrong blob counts, bad shapes ...)."""


class NetInputError(InputError):
    """``Net.forward`` was given missing or mis-shaped inputs."""


@dataclass
class ParamEntry:
    """One learnable blob: ``layer``'s blob ``index`` with its ParamSpec multipliers."""

    layer: str
    index: int
    name: str | None
    tensor: torch.Tensor
    lr_mult: float
    decay_mult: float


def _phase_name(phase: str | int) -> str:
    if isinstance(phase, int):
        return "TRAIN" if phase == 0 else "TEST"
    name = phase.upper()
    if name not in ("TRAIN", "TEST"):
        raise InputError(f"phase must be TRAIN or TEST, got {phase!r}")
    return name


def _prepare(net_param: caffe_pb2.NetParameter) -> caffe_pb2.NetParameter:
    from dlp.net import upgrade

    if upgrade.needs_upgrade(net_param):
        return upgrade.upgrade_net(net_param, source=net_param.name or "<net>")
    return net_param


def _check_counts(layer_param: Any) -> tuple[bool, Any, int]:
    """Bottom/top counts from the shared spec (``dlp.net.specs.count_problem``).

    Returns ``(is_loss, spec or None, automatic_tops)``: a loss layer written without
    a top gets that many anonymous ones, as Caffe's ``AutoTopBlobs`` gives it.
    """
    from dlp.net.specs import count_problem, get_spec

    try:
        spec = get_spec(layer_param.type)
    except InputError:
        return False, None, 0  # the engine's registry reports unknown types
    problem = count_problem(spec, layer_param)
    if problem is not None:
        raise NetBuildError(f"layer {layer_param.name!r} ({layer_param.type}): {problem}")
    automatic = 0
    if spec.auto_top_blobs and not layer_param.top:
        automatic = max(1, spec.top_count_range(layer_param)[0])
    return bool(spec.is_loss), spec, automatic


def automatic_top_name(layer_name: str, index: int = 0) -> str:
    """The blob name of a loss layer's anonymous top (no bottom can name it)."""
    suffix = f" {index}" if index else ""
    return f"{layer_name} {AUTOMATIC_TOP}{suffix}"


class Net(nn.Module):
    """A Caffe net for one phase.

    ``forward(inputs)`` returns every blob by name (``(N, C, H, W[, D])`` tensors);
    ``loss(blobs)`` is Caffe's weighted sum of the loss tops.
    """

    def __init__(self, net_param: caffe_pb2.NetParameter, phase: str | int = "TRAIN", *,
                 stages: tuple[str, ...] | list[str] = (), level: int = 0,
                 device: str | torch.device = "cpu", python_layers: bool = False,
                 seed: int | None = None, root: str | Path | None = None,
                 memory_format: str = "auto",
                 input_shapes: Mapping[str, Shape] | None = None,
                 source: str | Path | None = None) -> None:
        super().__init__()
        from dlp.net.filter import filter_net

        self.phase = _phase_name(phase)
        self.device = torch.device(device)
        self.net_param = filter_net(_prepare(net_param), self.phase, level, tuple(stages))
        if input_shapes:
            self.net_param = _override_input_shapes(self.net_param, input_shapes)
        self.name = self.net_param.name
        self.ctx = BuildContext(self.phase, self.device, python_layers, seed,
                                Path(root) if root is not None else None)
        generator = torch.Generator()
        # Without a seed, draw one from the global generator (honours torch.manual_seed).
        generator.manual_seed(seed if seed is not None else int(torch.randint(2**62, ())))
        self.layers = nn.ModuleList()
        self.layer_names: list[str] = []
        self.layer_types: list[str] = []
        self.input_names: list[str] = []
        self.blob_shapes: dict[str, Shape] = {}
        self.loss_weights: dict[str, float] = {}
        self.automatic_tops: set[str] = set()  # anonymous tops of loss layers (Caffe's)
        self._plan: list[tuple[Layer, tuple[str, ...], tuple[str, ...], bool]] = []
        self._param_specs: list[list[Any]] = []
        self._verified = False
        self.source = str(source) if source is not None else None
        self._building: str | None = None  # the layer being built, for error locations
        try:
            self._build(generator)
        except InputError as exc:
            self.close()
            if self.source is not None and not str(exc).startswith(self.source):
                exc.args = (f"{layer_location(self.source, self._building)}{exc}",)
            raise
        except BaseException:
            self.close()
            raise
        self.output_names = _output_blobs(self.net_param)
        self._entries = self._share_params()
        self.channels_last = self._choose_memory_format(memory_format)
        if self.device.type != "cpu":
            self.to(self.device)

    # -- building ------------------------------------------------------------------------
    def _build(self, generator: torch.Generator) -> None:
        shapes = self.blob_shapes
        seen_names: set[str] = set()
        producer: dict[str, str] = {}  # blob -> type of the layer that made its tensor
        read_since: set[str] = set()  # blobs consumed since they were produced
        for lp in self.net_param.layer:
            self._building = lp.name
            where = f"layer {lp.name!r} ({lp.type})"
            if lp.name in seen_names:
                raise NetBuildError(f"{where}: duplicate layer name {lp.name!r}")
            seen_names.add(lp.name)
            cls = get_layer_class(lp.type, lp.name)
            is_loss, spec, automatic = _check_counts(lp)
            tops = [*lp.top, *(automatic_top_name(lp.name, i) for i in range(automatic))]
            for bottom in lp.bottom:
                if bottom in self.automatic_tops:
                    raise NetBuildError(f"{where}: bottom {bottom!r} is the automatic top of a "
                                        f"loss layer; give that layer a named top to use it")
                if bottom not in shapes:
                    known = ", ".join(repr(b) for b in shapes) or "none yet"
                    raise NetBuildError(f"{where}: bottom {bottom!r} is not produced by an "
                                        f"earlier layer (blobs so far: {known})")
            bottom_shapes = [shapes[b] for b in lp.bottom]
            try:
                layer = cls(lp, bottom_shapes, self.ctx)
                top_shapes = layer.top_shapes(bottom_shapes)
                if top_shapes is None and spec is not None:
                    top_shapes = spec.output_shapes(lp, bottom_shapes)
                if top_shapes is None:
                    top_shapes = _probe_shapes(layer, bottom_shapes)
            except (LayerError, InputError):
                raise
            except Exception as exc:
                given = ", ".join(f"{b} {s}" for b, s in zip(lp.bottom, bottom_shapes,
                                                            strict=True))
                raise NetBuildError(
                    f"{where}: cannot run on bottoms {given}: {_first_line(exc)}") from None
            if len(top_shapes) != len(tops):
                raise NetBuildError(f"{where}: produces {len(top_shapes)} blob(s) but names "
                                    f"{len(tops)} top(s)")
            for top, shape in zip(tops, top_shapes, strict=False):
                if top in shapes and top not in lp.bottom:
                    raise NetBuildError(f"{where}: top {top!r} is already produced by an "
                                        f"earlier layer (only in-place reuse is allowed)")
                shapes[top] = tuple(shape)
            layer.reset_parameters(generator)
            in_place = lp.type in _INPLACE_CAPABLE and list(lp.top) == list(lp.bottom)
            if in_place and producer.get(lp.bottom[0]) in _FRESH_OUTPUT_TYPES \
                    and lp.bottom[0] not in read_since:
                layer.inplace = True
            read_since.update(lp.bottom)
            for top in tops:
                read_since.discard(top)
                fresh = top not in lp.bottom and getattr(layer, "fresh_output", True)
                producer[top] = lp.type if fresh else "reused"
            self.automatic_tops.update(tops[len(lp.top):])
            self._set_loss_weights(lp, tops, is_loss, where)
            self.layers.append(layer)
            self.layer_names.append(lp.name)
            self.layer_types.append(lp.type)
            is_input = getattr(cls, "is_input", False)
            if is_input:
                self.input_names += list(lp.top)
            self._plan.append((layer, tuple(lp.bottom), tuple(tops), is_input))
            self._param_specs.append(list(lp.param))

    def _set_loss_weights(self, lp: Any, tops: list[str], is_loss: bool, where: str) -> None:
        weights = list(lp.loss_weight)
        if weights and len(weights) != len(tops):
            raise NetBuildError(f"{where}: loss_weight must be given once per top "
                                f"({len(tops)}), got {len(weights)}")
        if not weights and is_loss:
            weights = [1.0] + [0.0] * (len(tops) - 1)
        for top, weight in zip(tops, weights, strict=False):
            if weight:
                self.loss_weights[top] = float(weight)

    def _share_params(self) -> list[ParamEntry]:
        """Caffe's parameter sharing by ``ParamSpec.name`` and the learnable list."""
        owners: dict[str, ParamEntry] = {}
        entries: list[ParamEntry] = []
        for layer, specs in zip(self.layers, self._param_specs, strict=False):
            for index, (attr, learnable) in enumerate(zip(layer.blob_names, layer.learnable,
                                                                        strict=True)):
                spec = specs[index] if index < len(specs) else None
                name = spec.name if spec is not None and spec.name else None
                lr = spec.lr_mult if spec is not None and spec.HasField("lr_mult") else 1.0
                decay = (spec.decay_mult if spec is not None and spec.HasField("decay_mult")
                         else 1.0)
                tensor = getattr(layer, attr)
                if name is not None and name in owners:
                    owner = owners[name]
                    permissive = spec is not None and spec.share_mode == 1
                    if tuple(owner.tensor.shape) != tuple(tensor.shape) and not (
                        permissive and owner.tensor.numel() == tensor.numel()
                    ):
                        raise NetBuildError(
                            f"layer {layer.layer_name!r}: shared param {name!r} has shape "
                            f"{tuple(tensor.shape)}, its owner {owner.layer!r} has "
                            f"{tuple(owner.tensor.shape)}"
                        )
                    if tuple(owner.tensor.shape) != tuple(tensor.shape):
                        raise NetBuildError(
                            f"layer {layer.layer_name!r}: shared param {name!r} with a "
                            f"different shape (PERMISSIVE) is not supported")
                    if spec is not None and spec.HasField("lr_mult") and lr != owner.lr_mult:
                        raise NetBuildError(f"layer {layer.layer_name!r}: shared param "
                                            f"{name!r} has lr_mult {lr}, its owner "
                                            f"{owner.lr_mult}")
                    setattr(layer, attr, owner.tensor)
                    continue
                if not learnable:
                    continue
                if lr == 0.0:
                    tensor.requires_grad_(False)  # Caffe skips the gradient of frozen blobs
                entry = ParamEntry(layer.layer_name, index, name, tensor, lr, decay)
                entries.append(entry)
                if name is not None:
                    owners[name] = entry
        return entries

    def _choose_memory_format(self, memory_format: str) -> bool:
        if memory_format not in ("auto", "channels_last", "contiguous"):
            raise InputError(f"memory_format must be auto, channels_last or contiguous, got "
                             f"{memory_format!r}")
        use = memory_format == "channels_last" or (
            memory_format == "auto" and self._activations_dominate())
        if use:
            for layer, t in zip(self.layers, self.layer_types, strict=False):
                if t in _CONV_TYPES and layer.weight.dim() == 4:
                    with torch.no_grad():
                        layer.weight.data = layer.weight.data.contiguous(
                            memory_format=torch.channels_last)
                if hasattr(layer, "use_channels_last"):
                    layer.use_channels_last()
        return use

    def _activations_dominate(self) -> bool:
        """True when the 2-D convolutions' outputs outweigh their weights.

        oneDNN's channels_last kernels win on activation-heavy nets (U-Net: 1.3x per
        training step here) but lose on weight-heavy ones (FCN-8s's 7x7x512x4096 fc6:
        2x slower), where the weights' reordering dominates.
        """
        weights = activations = 0
        for layer, t, lp in zip(self.layers, self.layer_types, self.net_param.layer,
                                strict=True):
            if t in _CONV_TYPES and layer.weight.dim() == 4:
                weights += layer.weight.numel()
                activations += math.prod(self.blob_shapes[lp.top[0]])
        return weights > 0 and activations >= weights

    # -- running -------------------------------------------------------------------------
    def forward(self, inputs: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Run every layer; returns all blobs by name.

        ``inputs`` feeds the Input layers' blobs (required) and may replace the
        tops of source layers (Data, DummyData), which otherwise produce their own.
        """
        blobs: dict[str, torch.Tensor] = {}
        if inputs:
            for name, tensor in inputs.items():
                blobs[name] = self._accept_input(name, tensor)
        for layer, bottoms, tops, is_input in self._plan:
            if not bottoms and all(t in blobs for t in tops):
                continue
            if is_input:
                missing = [t for t in tops if t not in blobs]
                raise NetInputError(
                    f"net {self.name!r}: input blob(s) {', '.join(map(repr, missing))} not "
                    f"given; expected shapes "
                    f"{', '.join(f'{t} {self.blob_shapes[t]}' for t in missing)}"
                )
            outputs = layer(*[blobs[b] for b in bottoms])
            if not bottoms and self.channels_last:
                outputs = tuple(o.contiguous(memory_format=torch.channels_last)
                                if o.dim() == 4 else o for o in outputs)
            for name, tensor in zip(tops, outputs, strict=False):
                blobs[name] = tensor
        if not self._verified:
            self._verify_shapes(blobs)
        return blobs

    def _verify_shapes(self, blobs: Mapping[str, torch.Tensor]) -> None:
        # Build-time shapes come from the shared specs; check them once against reality.
        producer = {top: layer for layer, _b, tops, _i in self._plan for top in tops}
        for name in self.blob_shapes:
            if name not in blobs:
                layer = producer[name]
                raise NetBuildError(f"layer {layer.layer_name!r} ({layer.type_name}): produced "
                                    f"no blob for its top {name!r}")
        for name, tensor in blobs.items():
            got, declared = tuple(tensor.shape), self.blob_shapes[name]
            if got != declared:
                layer = producer[name]
                where = layer_location(self.source, layer.layer_name) if self.source else ""
                raise NetBuildError(
                    f"{where}layer {layer.layer_name!r} ({layer.type_name}): produced {name!r} "
                    f"with shape {got}, but shape inference declared {declared}")
        self._verified = True

    def _accept_input(self, name: str, tensor: Any) -> torch.Tensor:
        expected = self.blob_shapes.get(name)
        if expected is None:
            raise NetInputError(f"net {self.name!r}: no blob named {name!r} to feed; inputs "
                                f"are {', '.join(self.input_names) or 'none'}")
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.as_tensor(tensor)
        if tuple(tensor.shape) != expected:
            raise NetInputError(f"net {self.name!r}: input {name!r} has shape "
                                f"{tuple(tensor.shape)}; the net was built for {expected}")
        if tensor.dtype != torch.float32 or tensor.device != self.device:
            tensor = tensor.to(self.device, torch.float32)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def loss(self, blobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``sum loss_weight * sum(top)`` over the loss tops (Caffe's rule)."""
        total: torch.Tensor | None = None
        for name, weight in self.loss_weights.items():
            term = blobs[name].sum() if blobs[name].dim() else blobs[name]
            term = term if weight == 1.0 else term * weight
            total = term if total is None else total + term
        return total if total is not None else torch.zeros((), device=self.device)

    # -- parameters and weights ------------------------------------------------------------
    def learnable_params(self) -> list[ParamEntry]:
        """Learnable blobs in Caffe's order; a blob shared by name appears once."""
        return list(self._entries)

    def layer(self, name: str) -> Layer:
        try:
            return self.layers[self.layer_names.index(name)]
        except ValueError:
            raise InputError(f"net {self.name!r} has no layer {name!r}") from None

    def to_net_parameter(self, with_weights: bool = True) -> caffe_pb2.NetParameter:
        """The (phase-filtered) net with every layer's ``blobs`` filled (a .caffemodel)."""
        from dlp.engine.weights import tensor_to_blob

        out = caffe_pb2.NetParameter()
        out.CopyFrom(self.net_param)
        for lp, layer in zip(out.layer, self.layers, strict=False):
            del lp.blobs[:]
            if with_weights:
                for tensor in layer.caffe_blobs():
                    lp.blobs.append(tensor_to_blob(tensor))
        return out

    def copy_from(self, weights: caffe_pb2.NetParameter) -> Any:
        """Copy blobs layer by layer by name (fine-tuning); returns a WeightReport."""
        from dlp.engine.weights import copy_weights

        return copy_weights(self, weights)

    def share_weights_with(self, other: Net) -> int:
        """Use ``other``'s blobs for every same-named layer with equal shapes (Caffe's
        ``ShareTrainedLayersWith``, e.g. a TEST net beside the TRAIN net); returns the
        number of blobs shared."""
        shared = 0
        others = dict(zip(other.layer_names, other.layers, strict=False))
        for name, layer in zip(self.layer_names, self.layers, strict=False):
            source = others.get(name)
            if source is None or len(source.blob_names) != len(layer.blob_names):
                continue
            for attr, source_attr in zip(layer.blob_names, source.blob_names, strict=False):
                theirs = getattr(source, source_attr)
                if tuple(theirs.shape) == tuple(getattr(layer, attr).shape):
                    setattr(layer, attr, theirs)
                    shared += 1
        return shared

    def close(self) -> None:
        """Stop the data prefetch worker (idempotent)."""
        feed = self.ctx.shared.get("data_feed") if hasattr(self, "ctx") else None
        if feed is not None:
            feed.close()

    def __del__(self) -> None:
        # Not contextlib.suppress: at interpreter shutdown module globals may already be
        # None, and the queue the feed closes may be gone too.
        try:  # noqa: SIM105
            self.close()
        except Exception:
            pass


def layer_location(path: str, layer_name: str | None) -> str:
    """``path:line: `` of layer ``layer_name``'s ``name:`` line in the prototxt at
    ``path`` (``path: `` when the file or the layer cannot be found)."""
    from dlp.net.prototxt import layer_line

    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{path}: "
    line = layer_line(text, layer_name)
    return f"{path}:{line}: " if line is not None else f"{path}: "


def _probe_shapes(layer: Layer, bottom_shapes: list[Shape]) -> list[Shape]:
    """Top shapes from a forward on the meta device (parameters swapped for meta ones)."""
    meta_state = {name: torch.empty(t.shape, device="meta", dtype=t.dtype)
                  for name, t in [*layer.named_parameters(), *layer.named_buffers()]}
    bottoms = [torch.empty(s, device="meta") for s in bottom_shapes]
    with torch.no_grad():
        tops = torch.func.functional_call(layer, meta_state, tuple(bottoms), strict=False)
    return [tuple(t.shape) for t in tops]


def _override_input_shapes(net: caffe_pb2.NetParameter, shapes: Mapping[str, Shape]
                           ) -> caffe_pb2.NetParameter:
    """A copy of ``net`` whose Input layers declare ``shapes`` for the named blobs."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    found: set[str] = set()
    for lp in out.layer:
        if lp.type != "Input":
            continue
        declared = list(lp.input_param.shape)
        per_top = [declared[i if len(declared) > 1 else 0] if declared else None
                   for i in range(len(lp.top))]
        new = []
        for top, old in zip(lp.top, per_top, strict=False):
            shape = caffe_pb2.BlobShape()
            if top in shapes:
                shape.dim.extend(int(d) for d in shapes[top])
                found.add(top)
            elif old is not None:
                shape.CopyFrom(old)
            new.append(shape)
        del lp.input_param.shape[:]
        lp.input_param.shape.extend(new)
    unknown = set(shapes) - found
    if unknown:
        raise NetInputError(f"input_shapes names {', '.join(sorted(unknown))}, which no Input "
                            f"layer produces")
    return out


def _output_blobs(net: caffe_pb2.NetParameter) -> list[str]:
    """Blobs left unconsumed after the last layer (Caffe's ``available_blobs``)."""
    available: dict[str, None] = {}
    for lp in net.layer:
        for bottom in lp.bottom:
            available.pop(bottom, None)
        for top in lp.top:
            available[top] = None
    return list(available)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
