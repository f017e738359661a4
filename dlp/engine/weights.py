"""``.caffemodel`` files: binary ``NetParameter`` with each layer's ``blobs``.

Blob payloads are large (an FCN-8s holds 134 M floats), so they are converted
between protobuf and tensors through the packed wire bytes (one ``np.frombuffer``)
rather than element by element.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from google.protobuf.message import DecodeError

from dlp.errors import InputError
from dlp.fsutil import atomic_write_bytes
from dlp.proto import caffe_pb2
from dlp.proto.wire import WireError, encode_varint, read_varint, skip_field

if TYPE_CHECKING:
    from dlp.engine.net import Net


class WeightsError(InputError):
    """A weights file is unreadable, truncated, or does not fit the net."""


# -- blobs <-> arrays ------------------------------------------------------------------------

def tensor_to_blob(tensor: torch.Tensor) -> caffe_pb2.BlobProto:
    """A ``BlobProto`` with ``shape`` and packed float ``data`` holding ``tensor``."""
    array = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
    dims = b"".join(encode_varint(int(d)) for d in array.shape)
    shape = b"\x0a" + encode_varint(len(dims)) + dims  # BlobShape.dim = 1, packed
    payload = array.astype("<f4", copy=False).tobytes()
    wire = b"\x2a" + encode_varint(len(payload)) + payload  # BlobProto.data = 5, packed
    wire += b"\x3a" + encode_varint(len(shape)) + shape  # BlobProto.shape = 7
    return caffe_pb2.BlobProto.FromString(wire)


def blob_shape(blob: caffe_pb2.BlobProto) -> tuple[int, ...]:
    """The blob's shape: ``shape.dim``, else the legacy (num, channels, height, width)."""
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        return (blob.num, blob.channels, blob.height, blob.width)
    return (len(blob.data) or len(blob.double_data),)


def blob_to_array(blob: caffe_pb2.BlobProto) -> np.ndarray:
    """The blob's values (``data`` or ``double_data``) as float32, in ``blob_shape``."""
    buf = bytearray(blob.SerializeToString())  # writable, so tensors may share it
    chunks: list[np.ndarray] = []
    pos = 0
    while pos < len(buf):
        try:
            tag, pos = read_varint(buf, pos)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == 2 and number == 5:  # packed float data
                length, pos = read_varint(buf, pos)
                chunks.append(np.frombuffer(buf, "<f4", length // 4, pos))
                pos += length
            elif wire_type == 2 and number == 8:  # packed double_data
                length, pos = read_varint(buf, pos)
                chunks.append(np.frombuffer(buf, "<f8", length // 8, pos).astype(np.float32))
                pos += length
            else:
                pos = skip_field(buf, pos, wire_type)
        except WireError as exc:
            raise WeightsError(f"blob is {exc}") from None
    if not chunks:  # unpacked floats (legal, rare)
        values = blob.data if len(blob.data) else blob.double_data
        chunks.append(np.asarray(list(values), np.float32))
    array = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    shape = blob_shape(blob)
    if array.size != int(np.prod(shape)):
        raise WeightsError(f"blob of shape {shape} holds {array.size} values")
    return array.reshape(shape)


def shapes_match(file_shape: tuple[int, ...], net_shape: tuple[int, ...]) -> bool:
    """Equal shapes, or a legacy 4-D shape equal to the net's padded with leading 1s."""
    if tuple(file_shape) == tuple(net_shape):
        return True
    if len(file_shape) == 4 and len(net_shape) <= 4:
        return tuple(file_shape) == (1,) * (4 - len(net_shape)) + tuple(net_shape)
    return False


# -- files ---------------------------------------------------------------------------------------

def read_caffemodel(path: str | os.PathLike[str]) -> caffe_pb2.NetParameter:
    """Read a ``.caffemodel`` (V1 layers upgraded); errors name the file."""
    from dlp.net import upgrade

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WeightsError(f"{path}: weights file not found") from None
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights file: {exc.strerror}") from None
    net = caffe_pb2.NetParameter()
    try:
        net.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise WeightsError(
            f"{path}: not a readable .caffemodel (truncated or corrupt binary NetParameter: "
            f"{exc})") from None
    if not net.layer and not net.layers:
        raise WeightsError(f"{path}: holds no layers; expected a binary .caffemodel "
                           f"({len(data)} bytes read)")
    if upgrade.needs_upgrade(net):
        net = upgrade.upgrade_net(net, source=str(path))
    return net


def write_caffemodel(net_param: caffe_pb2.NetParameter | Net, path: str | os.PathLike[str]
                     ) -> None:
    """Write weights atomically (a ``Net`` is converted with ``to_net_parameter``)."""
    if not isinstance(net_param, caffe_pb2.NetParameter):
        net_param = net_param.to_net_parameter()
    atomic_write_bytes(path, net_param.SerializeToString())


# -- copying -------------------------------------------------------------------------------------

@dataclass
class WeightReport:
    """What ``copy_from`` did: layers copied, net layers not in the file, blobs whose
    shapes differ ``(layer, index, expected_shape, got_shape)``, file layers unused."""

    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, int, tuple[int, ...] | None, tuple[int, ...] | None]] = \
        field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"copied {len(self.matched)} layer(s)"]
        if self.missing:
            parts.append(f"not in the weights (kept initialised): {', '.join(self.missing)}")
        if self.mismatched:
            parts.append("shape mismatch (not copied): " + "; ".join(
                f"{layer}[{index}] net {_fmt(exp)} vs file {_fmt(got)}"
                for layer, index, exp, got in self.mismatched))
        if self.unused:
            parts.append(f"unused layers in the weights: {', '.join(self.unused)}")
        return "; ".join(parts)


def _fmt(shape: tuple[int, ...] | None) -> str:
    return "none" if shape is None else "x".join(map(str, shape)) or "()"


def copy_weights(net: Net, weights: caffe_pb2.NetParameter) -> WeightReport:
    """Copy blobs into ``net`` by layer name; a layer is copied only if all its blobs fit."""
    report = WeightReport()
    layers = dict(zip(net.layer_names, net.layers, strict=False))
    with_blobs = {name for name, layer in layers.items() if layer.blob_names}
    seen: set[str] = set()
    for source in weights.layer:
        if not source.blobs:
            continue
        target = layers.get(source.name)
        if target is None or not target.blob_names:
            report.unused.append(source.name)
            continue
        seen.add(source.name)
        tensors = target.caffe_blobs()
        problems = []
        for index in range(max(len(tensors), len(source.blobs))):
            expected = tuple(tensors[index].shape) if index < len(tensors) else None
            got = blob_shape(source.blobs[index]) if index < len(source.blobs) else None
            if expected is None or got is None or not shapes_match(got, expected):
                problems.append((source.name, index, expected, got))
        if problems:
            report.mismatched += problems
            continue
        with torch.no_grad():
            for tensor, blob in zip(tensors, source.blobs, strict=False):
                values = torch.from_numpy(blob_to_array(blob)).reshape(tensor.shape)
                tensor.copy_(values)
        report.matched.append(source.name)
    report.missing = [n for n in net.layer_names if n in with_blobs and n not in seen]
    return report


def load_weights(net: Net, path: str | os.PathLike[str], *, strict: bool = False
                 ) -> WeightReport:
    """Read ``path`` and copy it into ``net``.

    Raises :class:`WeightsError` when no layer matches (a file for another net) or,
    with ``strict``, when any blob's shape differs.
    """
    weights = read_caffemodel(path)
    report = copy_weights(net, weights)
    expected = [n for n, layer in zip(net.layer_names, net.layers, strict=True)
                if layer.blob_names]
    if expected and not report.matched:
        in_file = [lp.name for lp in weights.layer if lp.blobs]
        detail = report.summary() if report.mismatched else (
            f"the file has {', '.join(in_file[:8]) or 'no weights'}"
            f"{' ...' if len(in_file) > 8 else ''}; the net expects "
            f"{', '.join(expected[:8])}{' ...' if len(expected) > 8 else ''}")
        raise WeightsError(f"{path}: no layer of these weights fits net {net.name!r} "
                           f"(weights for another net?): {detail}")
    if strict and report.mismatched:
        raise WeightsError(f"{path}: {report.summary()}")
    return report


def export_state_dict(net: Net) -> dict[str, torch.Tensor]:
    """``{"<layer>.<blob>": tensor}`` (e.g. ``conv1.weight``, ``bn1.mean``), contiguous
    CPU copies, in Caffe's layer and blob order."""
    out: dict[str, torch.Tensor] = {}
    for name, layer in zip(net.layer_names, net.layers, strict=False):
        for attr, tensor in zip(layer.blob_names, layer.caffe_blobs(), strict=False):
            out[f"{name}.{attr}"] = tensor.detach().to("cpu").contiguous().clone()
    return out


