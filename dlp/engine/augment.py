"""DLP's paired augmentation (``TransformationParameter.augmentation``) and Caffe's
``DataTransformer`` (mean, crop, mirror, scale), on one sample ``(C, H, W)``.

Randomness is drawn once per sample (:class:`SampleDraw`) and shared by every Data
layer of the net, so an image and its label map get the same flip, rotation,
scaling and elastic warp (labels with nearest-neighbour, without intensity change).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage


@dataclass
class SampleDraw:
    """The random numbers of one sample, each uniform in [0, 1) (``noise`` ~ N(0, 1))."""

    apply: float
    flip_x: float
    flip_y: float
    angle: float
    scale: float
    shift: float
    gain: float
    crop_y: float
    crop_x: float
    mirror: float
    noise: np.ndarray | None  # (2, H, W) standard normal, for the elastic field

    @classmethod
    def draw(cls, rng: np.random.Generator, elastic_shape: tuple[int, int] | None) -> SampleDraw:
        u = rng.random(10)
        noise = rng.uniform(-1.0, 1.0, size=(2, *elastic_shape)) if elastic_shape else None
        return cls(*[float(v) for v in u], noise=noise)


def _sym(u: float, amount: float) -> float:
    """Map a uniform ``u`` in [0, 1) to [-amount, amount)."""
    return (2.0 * u - 1.0) * amount


def augment_geometry(sample: np.ndarray, aug: Any, draw: SampleDraw) -> np.ndarray:
    """Flip / rotate / scale / elastic-warp a ``(C, H, W)`` float sample about its centre."""
    if draw.apply >= aug.probability:
        return sample
    if aug.mirror_x and draw.flip_x < 0.5:
        sample = sample[:, :, ::-1]
    if aug.mirror_y and draw.flip_y < 0.5:
        sample = sample[:, ::-1, :]
    angle = math.radians(_sym(draw.angle, aug.rotate_degrees))
    zoom = aug.scale_min + draw.scale * (aug.scale_max - aug.scale_min)
    elastic = aug.elastic_alpha > 0 and draw.noise is not None
    if angle == 0.0 and zoom == 1.0 and not elastic:
        return np.ascontiguousarray(sample)
    height, width = sample.shape[1:]
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64),
                             np.arange(width, dtype=np.float64), indexing="ij")
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    # Output pixel p samples the input at centre + R(-angle)*(p - centre)/zoom.
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    dy, dx = rows - cy, cols - cx
    src_y = cy + cos * dy - sin * dx
    src_x = cx + sin * dy + cos * dx
    if elastic:
        if draw.noise.shape[1:] != (height, width):
            raise ValueError(f"elastic noise {draw.noise.shape[1:]} for a {height}x{width} sample")
        sigma, alpha = aug.elastic_sigma, aug.elastic_alpha
        src_y = src_y + ndimage.gaussian_filter(draw.noise[0], sigma) * alpha
        src_x = src_x + ndimage.gaussian_filter(draw.noise[1], sigma) * alpha
    order = 0 if aug.is_label else 1
    coords = np.stack([src_y, src_x])
    out = np.empty(sample.shape, dtype=np.float32)
    for channel in range(sample.shape[0]):
        ndimage.map_coordinates(np.asarray(sample[channel], dtype=np.float32), coords,
                                output=out[channel], order=order, mode="reflect")
    return out


def augment_intensity(sample: np.ndarray, aug: Any, draw: SampleDraw) -> np.ndarray:
    """``x * (1 + gain) + shift`` with gain, shift drawn in +-intensity_gain/shift."""
    if aug.is_label or draw.apply >= aug.probability:
        return sample
    gain = 1.0 + _sym(draw.gain, aug.intensity_gain)
    shift = _sym(draw.shift, aug.intensity_shift)
    if gain == 1.0 and shift == 0.0:
        return sample
    return sample * np.float32(gain) + np.float32(shift)


class CaffeTransform:
    """Caffe's ``DataTransformer``: ``(x - mean) * scale`` then crop and mirror.

    Crop offsets are random in TRAIN and central in TEST; mirror is random in both
    phases (as in Caffe).  ``mean`` is a full ``(C, H, W)`` mean image or per-channel
    values.
    """

    def __init__(self, param: Any, shape: tuple[int, int, int], phase_train: bool,
                 mean_image: np.ndarray | None, layer: str) -> None:
        channels, height, width = shape
        self.scale = float(param.scale)
        self.mirror = bool(param.mirror)
        self.crop = int(param.crop_size)
        self.train = phase_train
        if self.crop and (self.crop > height or self.crop > width):
            raise ValueError(f"crop_size {self.crop} is larger than the {height}x{width} data")
        self.mean: np.ndarray | None = None
        if mean_image is not None:
            if mean_image.shape != (channels, height, width):
                raise ValueError(f"mean_file shape {mean_image.shape} differs from the data "
                                 f"shape {(channels, height, width)}")
            self.mean = mean_image.astype(np.float32)
        elif len(param.mean_value):
            values = list(param.mean_value)
            if len(values) not in (1, channels):
                raise ValueError(f"{len(values)} mean_value entries for {channels} channels; "
                                 f"expected 1 or {channels}")
            if len(values) == 1:
                values *= channels
            self.mean = np.asarray(values, dtype=np.float32).reshape(channels, 1, 1)
        self.out_shape = (channels, self.crop or height, self.crop or width)

    def __call__(self, sample: np.ndarray, draw: SampleDraw) -> np.ndarray:
        x = sample.astype(np.float32, copy=False)
        if self.mean is not None:
            x = x - self.mean
        if self.crop:
            height, width = x.shape[1:]
            if self.train:
                top = int(draw.crop_y * (height - self.crop + 1))
                left = int(draw.crop_x * (width - self.crop + 1))
            else:
                top, left = (height - self.crop) // 2, (width - self.crop) // 2
            x = x[:, top:top + self.crop, left:left + self.crop]
        if self.mirror and draw.mirror < 0.5:
            x = x[:, :, ::-1]
        if self.scale != 1.0:
            x = x * np.float32(self.scale)
        return x
