"""The inference session: a deploy net, its weights and labels, loaded once.

:class:`InferenceSession` owns the engine's :class:`~dlp.engine.net.Net` in TEST phase
with the trained weights, and turns an :class:`~dlp.data.readers.ImageVolume` into a
:class:`Prediction` (class-index masks and per-class probabilities), slice by slice in
batches.  Each slice goes through the *same* preprocessing the dataset builder used
(:func:`dlp.data.preprocess.preprocess_slice` with the dataset manifest's settings);
a mismatch between image and model (channels, size) is explained, never silently fixed.

Images larger than the net's input are handled by sliding-window tiling when the net
is fully convolutional; when the manifest resizes images, that policy applies and the
prediction is resampled back to the image's own pixel grid.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlp.deploy.labels import LabelMap, read_labels
from dlp.deploy.sliding_window import SlidingWindowInferer
from dlp.errors import DLPError, InputError
from dlp.progress import CancelToken, ProgressCallback, report

#: Layer types that tie a net to one input size (it cannot be tiled or reshaped).
FIXED_SIZE_LAYERS = frozenset({"InnerProduct", "Flatten", "Reshape", "Embed"})
#: Layer types whose output is already a probability distribution over channels.
PROBABILITY_LAYERS = frozenset({"Softmax", "Sigmoid"})


class ModelLoadError(InputError):
    """The deploy net, weights or labels cannot be used together."""


class ModelMismatchError(InputError):
    """An image does not fit the model (channels, size); the message says why."""


@dataclass(eq=False)  # holds arrays: compare by identity
class Prediction:
    """The segmentation of one image volume.

    ``labels``: ``(S, H, W)`` uint8 class indices on the image's own pixel grid;
    ``probabilities``: ``(S, K, H, W)`` float32 per-class probabilities;
    ``notes``: how the image was fitted to the model (shown in the panel).
    """

    volume: Any
    labels: np.ndarray
    probabilities: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def num_slices(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class InputTransform:
    """The training net's data-layer transform (Caffe's order: subtract mean, then scale).

    A deploy net has no data layers, so the ``scale`` / ``mean_file`` / ``mean_value``
    the model was trained with must be applied before the input layer.
    """

    scale: float = 1.0
    mean: np.ndarray | None = None  # (C, H, W) mean image or (C,) mean values
    description: str = ""

    def apply(self, planes: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` float32 → transformed ``(C, H, W)`` float32."""
        out = np.asarray(planes, dtype=np.float32)
        if self.mean is not None:
            mean = self.mean
            if mean.ndim == 3 and mean.shape[1:] != out.shape[1:]:
                # Tiles/other sizes: the per-channel mean is what a pixel expects on average.
                mean = mean.reshape(mean.shape[0], -1).mean(axis=1)
            if mean.ndim == 1:
                mean = mean.reshape(-1, 1, 1)
            out = out - mean.astype(np.float32)
        if self.scale != 1.0:
            out = out * np.float32(self.scale)
        return out

    @property
    def is_identity(self) -> bool:
        return self.mean is None and self.scale == 1.0

    @classmethod
    def from_train_net(cls, train_param: Any, input_name: str,
                       base_dir: str | os.PathLike[str] | None = None) -> InputTransform:
        """The TEST-phase transform of the data layer producing ``input_name``."""
        from dlp.net.filter import filter_net

        try:
            net = filter_net(train_param, "TEST")
        except DLPError:
            net = train_param
        candidates = [layer for layer in net.layer
                      if layer.HasField("transform_param") and input_name in list(layer.top)]
        if not candidates:
            return cls()
        tp = candidates[0].transform_param
        transform = cls(scale=float(tp.scale) if tp.HasField("scale") else 1.0)
        parts = []
        if tp.mean_file:
            from dlp.data.lmdb_io import read_mean_binaryproto

            path = Path(tp.mean_file)
            if not path.is_absolute() and base_dir is not None and \
                    (Path(base_dir) / path).is_file():
                path = Path(base_dir) / path
            if not path.is_file():
                raise ModelLoadError(f"mean file {tp.mean_file} of layer "
                                     f"{candidates[0].name!r} not found")
            transform.mean = np.asarray(read_mean_binaryproto(path), dtype=np.float32)
            parts.append(f"mean image {path.name}")
        elif len(tp.mean_value):
            transform.mean = np.asarray(list(tp.mean_value), dtype=np.float32)
            parts.append("mean " + ",".join(f"{v:g}" for v in tp.mean_value))
        if transform.scale != 1.0:
            parts.append(f"scale {transform.scale:g}")
        transform.description = "; ".join(parts)
        return transform


def _input_shape(net_param: Any, input_name: str) -> tuple[int, ...] | None:
    """The declared ``(N, C, H, W)`` of ``input_name`` from an Input layer or ``input_shape``."""
    for layer in net_param.layer:
        if layer.type == "Input" and input_name in list(layer.top):
            shapes = list(layer.input_param.shape)
            if not shapes:
                return None
            index = list(layer.top).index(input_name)
            shape = shapes[index] if index < len(shapes) else shapes[0]
            return tuple(int(d) for d in shape.dim)
    inputs = list(net_param.input)
    if input_name in inputs:
        index = inputs.index(input_name)
        if len(net_param.input_shape) > index:
            return tuple(int(d) for d in net_param.input_shape[index].dim)
        if len(net_param.input_dim) >= 4 * (index + 1):
            return tuple(int(d) for d in net_param.input_dim[4 * index : 4 * index + 4])
    return None


def _producers(net_param: Any) -> dict[str, str]:
    """Blob name → type of the last layer writing it."""
    producers: dict[str, str] = {}
    for layer in net_param.layer:
        for top in layer.top:
            producers[top] = layer.type
    return producers


def _preprocessing_of(manifest: Any) -> Any:
    if manifest is None:
        return None
    return getattr(manifest, "preprocessing", None)


class InferenceSession:
    """A model ready to segment images: build with :meth:`load` (or from parsed messages).

    Args:
        net_param: the deploy ``NetParameter`` (one image input, no loss layers).
        weights_param: a ``NetParameter`` with trained blobs (a ``.caffemodel``).
        labels: class names/colours; defaults to ``background, class 1, …``.
        manifest: the dataset manifest whose preprocessing the model was trained with.
        device: ``"cpu"`` or ``"cuda:N"``.
        batch_size: slices per forward pass.
        overlap: sliding-window overlap for images larger than the net's input.
    """

    def __init__(
        self,
        net_param: Any,
        weights_param: Any,
        labels: LabelMap | None = None,
        *,
        manifest: Any = None,
        device: str = "cpu",
        batch_size: int = 8,
        overlap: float = 0.25,
        source: str = "deploy net",
        transform: InputTransform | None = None,
    ) -> None:
        from dlp.engine.net import Net
        from dlp.memory import tune_allocator

        tune_allocator()
        # Every forward pass runs in this one thread, whichever thread asks for it (the
        # GUI's drop zone and its batch worker share a session).  Its allocator arena and
        # OpenMP team then stay warm between drops: run in the asking thread, a forward
        # met an arena laid out by the image reading before it and ran 3-10 % slower.
        # (The thread must not hold the session: an unclosed session is then collected
        # and its executor ends the thread.)
        engine_threads: list[int] = []
        self._engine = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="dlp-engine",
            initializer=lambda: engine_threads.append(threading.get_ident()))
        self._engine_threads = engine_threads
        self.device = _check_device(device)
        self.batch_size = max(1, int(batch_size))
        self.manifest = manifest
        self.preprocessing = _preprocessing_of(manifest)
        self.source = source
        self.transform = transform or InputTransform()
        try:
            self.net = Net(net_param, phase="TEST", device=self.device)
        except DLPError as exc:
            raise ModelLoadError(f"{source}: {exc}") from None
        report_ = self.net.copy_from(weights_param)
        if getattr(report_, "mismatched", None) or getattr(report_, "missing", None):
            raise ModelLoadError(f"{source}: the weights do not fit the net: {report_.summary()}")
        self.weight_report = report_
        self.net.eval()
        self._net_param = net_param
        inputs = list(self.net.input_names)
        if len(inputs) != 1:
            raise ModelLoadError(
                f"{source}: a deploy net needs exactly one input blob, found {inputs or 'none'}"
            )
        self.input_name = inputs[0]
        shape = _input_shape(net_param, self.input_name)
        if shape is None or len(shape) != 4:
            raise ModelLoadError(
                f"{source}: input {self.input_name!r} has no (N, C, H, W) shape; "
                "declare it in an Input layer"
            )
        self.input_shape: tuple[int, int, int] = (shape[1], shape[2], shape[3])
        layer_types = {layer.type for layer in net_param.layer}
        self.fully_convolutional = not (layer_types & FIXED_SIZE_LAYERS)
        self._producers = _producers(net_param)
        # The engine builds a net for one input shape; nets for other batch sizes share
        # these weights (built once per shape, no copies).
        self._nets: dict[tuple[int, ...], Any] = {tuple(shape): self.net}
        self.output_name, self.num_classes = self._find_output()
        if labels is None:
            labels = LabelMap.default(self.num_classes)
        if len(labels) != self.num_classes:
            raise ModelLoadError(
                f"label file has {len(labels)} classes but the net's output "
                f"{self.output_name!r} has {self.num_classes} channels"
            )
        self.labels = labels
        self._inferer = SlidingWindowInferer(self.input_shape[1:], overlap=overlap)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        deploy_net: str | os.PathLike[str] | None,
        weights: str | os.PathLike[str],
        labels: str | os.PathLike[str] | LabelMap | None = None,
        *,
        train_net: str | os.PathLike[str] | None = None,
        manifest: str | os.PathLike[str] | Any = None,
        device: str = "cpu",
        batch_size: int = 8,
    ) -> InferenceSession:
        """Read the files and build a session.

        Give ``deploy_net``, or ``train_net`` to derive the deploy net from the training
        net (its data layers replaced by an input of the dataset's shape).
        """
        from dlp.engine.weights import read_caffemodel
        from dlp.net.prototxt import read_net

        manifest_obj = load_manifest(manifest) if isinstance(manifest, (str, os.PathLike)) \
            else manifest
        if train_net is None and deploy_net is not None:
            # A run folder keeps train_val.prototxt beside deploy.prototxt: its data
            # transform (mean, scale) is part of the model.
            sibling = Path(deploy_net).with_name("train_val.prototxt")
            train_net = sibling if sibling.is_file() else None
        train_param = _read(read_net, train_net, "training net") if train_net else None
        if deploy_net is not None:
            source = str(deploy_net)
            net_param = _read(read_net, deploy_net, "deploy net")
        elif train_param is not None:
            from dlp.net.deploy import derive_deploy_net

            source = f"deploy net derived from {train_net}"
            input_shape = None
            if manifest_obj is not None and getattr(manifest_obj, "shape", None):
                input_shape = (1, *[int(d) for d in manifest_obj.shape])
            net_param = derive_deploy_net(train_param, input_shape=input_shape,
                                          base_dir=Path(train_net).parent)
        else:
            raise ModelLoadError("no deploy net: give a deploy prototxt or a training net")
        transform = None
        if train_param is not None:
            inputs = [t for layer in net_param.layer if layer.type == "Input" for t in layer.top]
            if inputs:
                transform = InputTransform.from_train_net(train_param, inputs[0],
                                                          Path(train_net).parent)
        weights_param = _read(read_caffemodel, weights, "weights")
        label_map = labels if isinstance(labels, LabelMap) or labels is None \
            else read_labels(labels)
        if label_map is None and manifest_obj is not None and getattr(manifest_obj, "classes",
                                                                      None):
            label_map = LabelMap.from_names(list(manifest_obj.classes))
        return cls(net_param, weights_param, label_map, manifest=manifest_obj, device=device,
                   batch_size=batch_size, source=source, transform=transform)

    def _find_output(self) -> tuple[str, int]:
        """The output blob holding per-class scores: 4-D, one channel per class."""
        c, h, w = self.input_shape
        probe = torch.zeros((1, c, h, w), device=self.device)

        def run_probe() -> dict[str, torch.Tensor]:
            with torch.inference_mode():
                return self._net_for(tuple(probe.shape))({self.input_name: probe})

        # In the engine thread: the first dropped slice then finds it warm.
        blobs = self._engine.submit(run_probe).result()
        outputs = [n for n in self.net.output_names if n in blobs and blobs[n].ndim == 4]
        if not outputs:
            raise ModelLoadError(
                f"{self.source}: no 4-D (N, K, H, W) output blob; outputs are "
                f"{list(self.net.output_names)}"
            )
        same_size = [n for n in outputs if tuple(blobs[n].shape[-2:]) == (h, w)]
        if not same_size:
            got = {n: tuple(blobs[n].shape) for n in outputs}
            raise ModelLoadError(
                f"{self.source}: the output {got} is not the input's size {h}x{w}; a "
                "segmentation net must end with a Crop (or upsampling) back to the input size"
            )
        name = same_size[-1]
        classes = int(blobs[name].shape[1])
        if classes < 2:
            raise ModelLoadError(f"{self.source}: output {name!r} has {classes} channel; "
                                 "expected one score channel per class (at least 2)")
        return name, classes

    @property
    def outputs_probabilities(self) -> bool:
        return self._producers.get(self.output_name) in PROBABILITY_LAYERS

    # ------------------------------------------------------------- preprocessing
    def size_policy(self) -> str:
        """One sentence for the panel: how images of another size are fitted to the model."""
        _, h, w = self.input_shape
        policy = _manifest_size_policy(self.preprocessing)
        if policy:
            return f"model input {h}x{w}; images are {policy} (the dataset's preprocessing)"
        if self.fully_convolutional:
            return (f"model input {h}x{w}; other sizes use sliding-window tiling "
                    f"({self._inferer.overlap:.0%} overlap, gaussian blending)")
        return f"model input {h}x{w}; the net is not fully convolutional, so images must be {h}x{w}"

    def preprocess(self, image_2d: np.ndarray, name: str = "image") -> np.ndarray:
        """One slice → ``(C, H', W')`` float32 model input (the dataset's preprocessing)."""
        if self.preprocessing is not None:
            from dlp.data.preprocess import preprocess_slice

            array = np.asarray(preprocess_slice(image_2d, self.preprocessing), dtype=np.float32)
        else:
            array = _default_preprocess(image_2d)
        if not self.transform.is_identity:
            array = self.transform.apply(array)
        c = self.input_shape[0]
        if array.shape[0] != c:
            have = "an RGB" if np.asarray(image_2d).ndim == 3 else "a greyscale"
            raise ModelMismatchError(
                f"{name}: {have} image gives {array.shape[0]} channel(s) but the model expects "
                f"{c}; build the dataset (and the manifest) with {c} channel(s) or use a model "
                "trained on images like this one"
            )
        return array

    def prepare(self, volume: Any) -> tuple[np.ndarray, list[str]]:
        """``(S, C, H', W')`` float32 model inputs for every slice, and notes on fitting."""
        name = Path(getattr(volume, "source", "image")).name
        array = np.asarray(volume.array)
        slices = [self.preprocess(array[i], name) for i in range(array.shape[0])]
        batch = np.ascontiguousarray(np.stack(slices), dtype=np.float32)
        notes = []
        c, h, w = self.input_shape
        rgb = array.ndim == 4 and array.shape[-1] in (3, 4)
        if rgb and c == 1:
            notes.append("colour image converted to grey for a 1-channel model "
                         "(the dataset's preprocessing)")
        elif not rgb and c == 3:
            notes.append("grey image repeated in 3 channels for a colour model "
                         "(the dataset's preprocessing)")
        ih, iw = batch.shape[-2:]
        if (ih, iw) != (h, w):
            if not self.fully_convolutional:
                raise ModelMismatchError(
                    f"{name}: the image is {ih}x{iw} after preprocessing but the model takes "
                    f"{h}x{w} and has fully connected layers, so it cannot be tiled; build "
                    f"the dataset with a resize policy and pass its manifest"
                )
            notes.append(f"{ih}x{iw} image tiled with {self._inferer.describe()}")
        if (ih, iw) != tuple(array.shape[1:3]):
            notes.append(f"{array.shape[1]}x{array.shape[2]} image preprocessed to {ih}x{iw} "
                         "(dataset policy); the mask is resampled back")
        return batch, notes

    # ------------------------------------------------------------------ inference
    def forward_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """``(N, C, h, w)`` model inputs → ``(N, K, h, w)`` probabilities (no autograd).

        Runs in the session's engine thread; the calling thread waits for it.
        """
        if threading.get_ident() in self._engine_threads:  # a forward asking for one
            return self._forward(batch)
        try:
            future = self._engine.submit(self._forward, batch)
        except RuntimeError:  # the executor is shut down
            raise ModelLoadError(f"{self.source}: the session is closed") from None
        return future.result()

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            net = self._net_for(tuple(batch.shape))
            scores = net({self.input_name: batch})[self.output_name]
            if not self.outputs_probabilities:
                scores = torch.softmax(scores.float(), dim=1)
            return scores

    def _predict_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        _, h, w = self.input_shape
        if tuple(inputs.shape[-2:]) == (h, w):
            return self.forward_batch(inputs)
        with torch.inference_mode():
            return self._inferer(inputs, self.forward_batch)

    def predict_array(self, batch: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` preprocessed inputs → ``(N, K, H, W)`` float32 probabilities."""
        probs = self._predict_inputs(torch.from_numpy(np.ascontiguousarray(batch)))
        return probs.float().cpu().numpy()

    def predict_volume(
        self,
        volume: Any,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Prediction:
        """Segment every slice of an :class:`ImageVolume`, ``batch_size`` slices per pass."""
        inputs, notes = self.prepare(volume)
        total = inputs.shape[0]
        out_hw = tuple(np.asarray(volume.array).shape[1:3])
        probs = np.empty((total, self.num_classes, *out_hw), dtype=np.float32)
        tensor = torch.from_numpy(inputs)
        done = 0
        for begin in range(0, total, self.batch_size):
            if cancel is not None:
                cancel.raise_if_cancelled()
            chunk = self._predict_inputs(tensor[begin : begin + self.batch_size])
            if tuple(chunk.shape[-2:]) != out_hw:
                chunk = restore_probabilities(chunk.float(), out_hw, self.preprocessing)
            probs[begin : begin + chunk.shape[0]] = chunk.cpu().numpy()
            done += chunk.shape[0]
            report(progress, done, total, f"slice {done}/{total}")
        labels = class_labels(probs)
        return Prediction(volume=volume, labels=labels, probabilities=probs, notes=notes)

    def _net_for(self, shape: tuple[int, ...]) -> Any:
        """The net built for an ``(N, C, H, W)`` input, sharing the loaded weights."""
        net = self._nets.get(shape)
        if net is not None:
            return net
        from dlp.engine.net import Net

        if self._net_param is None:
            raise ModelLoadError(f"{self.source}: the session is closed")
        net = Net(self._net_param, phase="TEST", device=self.device,
                  input_shapes={self.input_name: shape})
        net.share_weights_with(self.net)
        net.eval()
        if len(self._nets) >= 12:  # odd remainders and tile batches: keep the cache small
            oldest = next(k for k in self._nets if self._nets[k] is not self.net)
            self._nets.pop(oldest).close()
        self._nets[shape] = net
        return net

    def close(self) -> None:
        from dlp.memory import release_free_memory

        self._engine.shutdown(wait=True)  # a forward under way ends first
        for net in self._nets.values():
            net.close()
        self._nets = {}
        release_free_memory()


def class_labels(probs: np.ndarray) -> np.ndarray:
    """``(N, K, H, W)`` scores → ``(N, H, W)`` uint8 index of the highest (the first on ties).

    ``argmax`` over the class axis strides through memory K planes apart; comparing
    whole planes is ~8x faster for the few classes a segmentation has.
    """
    best = probs[:, 0]
    labels = np.zeros(best.shape, dtype=np.uint8)
    for k in range(1, probs.shape[1]):
        higher = probs[:, k] > best
        # bool → 0/1 bytes, times k: whole-array arithmetic (a masked write is 15x slower)
        labels = np.maximum(labels, higher.view(np.uint8) * np.uint8(k))
        best = np.maximum(best, probs[:, k])
    return labels


def restore_probabilities(probs: torch.Tensor, out_hw: tuple[int, int],
                          preprocessing: Any) -> torch.Tensor:
    """Map ``(N, K, h, w)`` probabilities in network space onto the image's ``(H, W)`` grid.

    The inverse of the manifest's size step: ``pad_crop`` places the centred window
    back (pixels the net never saw become background, probability 1), ``resize``
    resamples bilinearly (smoother borders than resizing the argmax).
    """
    policy = _field(preprocessing, "size_policy") if preprocessing is not None else None
    if policy != "pad_crop":
        return torch.nn.functional.interpolate(probs, size=out_hw, mode="bilinear",
                                               align_corners=False)
    n, k, h, w = probs.shape
    out = torch.zeros((n, k, *out_hw), dtype=probs.dtype, device=probs.device)
    out[:, 0] = 1.0
    dst, src = [], []
    for have, want in zip(out_hw, (h, w), strict=True):
        if have >= want:  # the forward step cropped this axis: paste the window back
            start = (have - want) // 2
            dst.append(slice(start, start + want))
            src.append(slice(0, want))
        else:  # the forward step padded it: cut the padding off
            start = (want - have) // 2
            dst.append(slice(0, have))
            src.append(slice(start, start + have))
    out[:, :, dst[0], dst[1]] = probs[:, :, src[0], src[1]]
    return out


def _check_device(device: str) -> str:
    device = (device or "cpu").strip()
    if device == "cpu":
        return device
    if device == "gpu" or device.startswith("cuda"):
        index = device.partition(":")[2] or "0"
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r}: CUDA is not available on this machine; "
                                 "use cpu")
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ModelLoadError(f"device {device!r}: no such GPU "
                                 f"({torch.cuda.device_count()} available)")
        return f"cuda:{index}"
    raise ModelLoadError(f"device {device!r}: expected 'cpu' or 'cuda:N'")


def _default_preprocess(image_2d: np.ndarray) -> np.ndarray:
    """Without a manifest: raw intensities as float32, ``(1, H, W)`` or BGR ``(3, H, W)``.

    BGR because Caffe datasets store colour images BGR (OpenCV's order).
    """
    array = np.asarray(image_2d, dtype=np.float32)
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return np.ascontiguousarray(array[..., 2::-1].transpose(2, 0, 1))
    raise ModelMismatchError(f"cannot make a model input from a slice of shape {array.shape}")


def _manifest_size_policy(preprocessing: Any) -> str:
    if preprocessing is None:
        return ""
    policy = _field(preprocessing, "size_policy") or _field(preprocessing, "resize")
    size = _field(preprocessing, "size") or _field(preprocessing, "target_size")
    if not policy or policy == "none" or not size:
        return ""
    dims = "x".join(str(int(d)) for d in size) if isinstance(size, (list, tuple)) else str(size)
    verb = {"resize": "resized", "pad_crop": "centre-padded or cropped"}.get(str(policy),
                                                                          str(policy))
    return f"{verb} to {dims}"


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _read(reader: Callable[[Any], Any], path: str | os.PathLike[str], what: str) -> Any:
    if not Path(path).exists():
        raise ModelLoadError(f"{path}: {what} file not found")
    try:
        return reader(path)
    except DLPError:
        raise
    except Exception as exc:  # a reader's parse failure on a strange file
        raise ModelLoadError(f"{path}: cannot read the {what} ({exc})") from None


def load_manifest(path: str | os.PathLike[str]) -> Any:
    """Read a dataset manifest (a ``manifest.json`` or the dataset folder holding it)."""
    from dlp.data.manifest import Manifest

    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.exists():
        raise ModelLoadError(f"{path}: dataset manifest not found")
    try:
        return Manifest.load(path)
    except DLPError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{path}: cannot read the dataset manifest ({exc})") from None
