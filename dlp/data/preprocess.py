"""The one image → network-input transform, shared by the dataset builder and Deploy.

A dataset records its :class:`Preprocessing` in ``manifest.json``; Deploy calls
:func:`preprocess_slice` with the same record, so training and inference see pixels
prepared identically.  Steps, in order:

1. colour: RGB input becomes luma for 1 channel, or BGR (Caffe's order) for 3;
2. intensity (per image): ``none`` (raw values), ``minmax`` (0…255 over the image's
   own range), ``window`` (0…255 over center ± width/2, clipped), ``zscore``
   ((v - mean) / std of the image);
3. size: ``resize`` (bilinear for images, nearest for labels), ``pad_crop``
   (centred zero padding / cropping) or ``none``;
4. storage: ``bits`` 8 rounds and clips to uint8 (``zscore`` is mapped to
   128 + 32·z first, i.e. ±4 standard deviations); ``bits`` 16 keeps float32 values unrounded;
5. channels: a gray image is replicated to 3 channels when ``channels`` is 3.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dlp.errors import InputError

INTENSITY_MODES = ("none", "zscore", "minmax", "window")
SIZE_POLICIES = ("resize", "pad_crop", "none")
_ZSCORE_8BIT_CENTER, _ZSCORE_8BIT_SCALE = 128.0, 32.0


@dataclass(frozen=True)
class Preprocessing:
    """How raw slices become Datums; stored as ``manifest["preprocessing"]``."""

    size: tuple[int, int] | None = (256, 256)  # (H, W); None keeps the input size
    size_policy: str = "resize"
    intensity: str = "minmax"
    window: tuple[float, float] | None = None  # (center, width) for intensity "window"
    channels: int = 1
    bits: int = 8

    def __post_init__(self) -> None:
        if self.intensity not in INTENSITY_MODES:
            raise InputError(
                f"intensity must be one of {', '.join(INTENSITY_MODES)}; got {self.intensity!r}"
            )
        if self.size_policy not in SIZE_POLICIES:
            raise InputError(
                f"size policy must be one of {', '.join(SIZE_POLICIES)}; got {self.size_policy!r}"
            )
        if self.channels not in (1, 3):
            raise InputError(f"channels must be 1 or 3; got {self.channels}")
        if self.bits not in (8, 16):
            raise InputError(f"bits must be 8 or 16; got {self.bits}")
        if self.intensity == "window" and (self.window is None or float(self.window[1]) <= 0):
            raise InputError("intensity 'window' needs a window (center, width > 0)")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise InputError(f"size must be (height, width) of positive ints; got {self.size}")

    @property
    def dtype(self) -> str:
        """Datum storage: ``"uint8"`` (``data`` bytes) or ``"float32"`` (``float_data``)."""
        return "uint8" if self.bits == 8 else "float32"

    def output_shape(self, input_shape: tuple[int, int]) -> tuple[int, int, int]:
        """(C, H, W) of a slice of ``input_shape`` (H, W) after preprocessing."""
        height, width = self.size if self.size and self.size_policy != "none" else input_shape
        return (self.channels, int(height), int(width))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = None if self.size is None else list(self.size)
        data["window"] = None if self.window is None else list(self.window)
        data["dtype"] = self.dtype
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        known = {k: data[k] for k in ("size_policy", "intensity", "channels", "bits") if k in data}
        size = data.get("size")
        window = data.get("window")
        return cls(
            size=None if size is None else (int(size[0]), int(size[1])),
            window=None if window is None else (float(window[0]), float(window[1])),
            **known,
        )


def _to_gray_or_bgr(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3) RGB → float32 (C, H, W) with C = 1 (gray) or 3 (BGR)."""
    img = np.asarray(image)
    if img.ndim == 2:
        # no copy yet: preprocess_slice copies once at the end if nothing else did
        return np.asarray(img, dtype=np.float32)[np.newaxis]
    if img.ndim == 3 and img.shape[2] in (3, 4):
        rgb = img[..., :3].astype(np.float32)
        if channels == 3:
            return np.ascontiguousarray(rgb[..., ::-1].transpose(2, 0, 1))
        luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return luma[np.newaxis]
    raise InputError(f"an image slice is (H, W) or (H, W, 3); got shape {img.shape}")


def _normalise(planes: np.ndarray, prep: Preprocessing) -> np.ndarray:
    if prep.intensity == "none":
        return planes
    # one new array, then in-place steps: each fresh 256 KiB temporary costs page faults
    if prep.intensity == "window":
        center, width = prep.window  # type: ignore[misc]
        low = center - width / 2.0
        out = np.subtract(planes, low, dtype=np.result_type(planes, low))
        np.multiply(out, np.float32(255.0 / width), out=out)
        return np.clip(out, 0, 255, out=out)
    if prep.intensity == "minmax":
        low, high = float(planes.min()), float(planes.max())
        if high <= low:
            return np.zeros_like(planes)
        out = np.subtract(planes, np.float32(low))
        np.multiply(out, np.float32(255.0 / (high - low)), out=out)
        return out
    mean, std = float(planes.mean()), float(planes.std())
    scaled = (planes - np.float32(mean)) / np.float32(std if std > 0 else 1.0)
    if prep.bits == 8:
        scaled = scaled * np.float32(_ZSCORE_8BIT_SCALE) + np.float32(_ZSCORE_8BIT_CENTER)
    return scaled


def _resize_plane(plane: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    from PIL import Image

    height, width = size
    if plane.shape == (height, width):
        return plane
    if nearest:
        source = Image.fromarray(plane.astype(np.uint8) if plane.max(initial=0) < 256
                                 else plane.astype(np.int32))
        resample = Image.Resampling.NEAREST
    else:
        source = Image.fromarray(plane.astype(np.float32), mode="F")
        resample = Image.Resampling.BILINEAR
    return np.asarray(source.resize((width, height), resample=resample)).astype(plane.dtype)


def _pad_crop_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centred crop or zero pad to ``size`` (the same offsets for images and labels)."""
    out = np.zeros(size, dtype=plane.dtype)
    src_slices, dst_slices = [], []
    for have, want in zip(plane.shape, size, strict=True):
        if have >= want:
            start = (have - want) // 2
            src_slices.append(slice(start, start + want))
            dst_slices.append(slice(0, want))
        else:
            start = (want - have) // 2
            src_slices.append(slice(0, have))
            dst_slices.append(slice(start, start + have))
    out[tuple(dst_slices)] = plane[tuple(src_slices)]
    return out


def _fit(planes: np.ndarray, prep: Preprocessing, nearest: bool) -> np.ndarray:
    if prep.size is None or prep.size_policy == "none" or planes.shape[1:] == tuple(prep.size):
        return planes
    if prep.size_policy == "resize":
        return np.stack([_resize_plane(p, prep.size, nearest) for p in planes])
    return np.stack([_pad_crop_plane(p, prep.size) for p in planes])


def preprocess_slice(image_2d: np.ndarray, preprocessing: Preprocessing | dict) -> np.ndarray:
    """One slice (H, W) or (H, W, 3) RGB → (C, H, W) uint8 (bits 8) or float32 (bits 16)."""
    prep = (preprocessing if isinstance(preprocessing, Preprocessing)
            else Preprocessing.from_dict(preprocessing))
    planes = _to_gray_or_bgr(image_2d, prep.channels)
    planes = _normalise(planes, prep)
    planes = _fit(planes, prep, nearest=False)
    if prep.bits == 8:
        if np.may_share_memory(planes, image_2d):
            planes = planes.copy()
        np.rint(planes, out=planes)
        np.clip(planes, 0, 255, out=planes)
        planes = planes.astype(np.uint8)
    else:
        planes = planes.astype(np.float32, copy=False)
    if prep.channels == 3 and planes.shape[0] == 1:
        planes = np.repeat(planes, 3, axis=0)
    if np.may_share_memory(planes, image_2d):
        return planes.copy()  # never hand back a view of the caller's image
    return np.ascontiguousarray(planes)


def preprocess_label(label_2d: np.ndarray, preprocessing: Preprocessing | dict) -> np.ndarray:
    """A label map (H, W) → (1, H, W) uint8, resampled by nearest neighbour."""
    prep = (preprocessing if isinstance(preprocessing, Preprocessing)
            else Preprocessing.from_dict(preprocessing))
    labels = np.asarray(label_2d)
    if labels.ndim != 2:
        raise InputError(f"a label slice is (H, W); got shape {labels.shape}")
    fitted = _fit(labels.astype(np.uint8, copy=False)[np.newaxis], prep, nearest=True)
    if np.may_share_memory(fitted, label_2d):
        return fitted.copy()
    return np.ascontiguousarray(fitted)


def restore_label(
    label_2d: np.ndarray, original_shape: tuple[int, int], preprocessing: Preprocessing | dict
) -> np.ndarray:
    """Map a predicted label map (H, W) in network space back onto the input's (H, W) grid.

    The inverse of the size step of :func:`preprocess_slice` (nearest neighbour), so
    Deploy can save results in the input's space.
    """
    prep = (preprocessing if isinstance(preprocessing, Preprocessing)
            else Preprocessing.from_dict(preprocessing))
    labels = np.asarray(label_2d).astype(np.uint8)
    if prep.size is None or prep.size_policy == "none":
        return labels
    if prep.size_policy == "resize":
        return _resize_plane(labels, tuple(original_shape), nearest=True)
    return _pad_crop_plane(labels, tuple(original_shape))
