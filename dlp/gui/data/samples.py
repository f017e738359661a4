"""Image/label pairs read back from a dataset's LMDBs, drawn as overlays (Qt-free).

The Data tab shows these so a user sees, before training, that each contour landed on
its own image: the pairs come from the very records the Data layers will read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlp.data.lmdb_io import DatumDB
from dlp.data.manifest import Manifest
from dlp.deploy.labels import default_color
from dlp.deploy.overlay import overlay_image
from dlp.errors import InputError


@dataclass(frozen=True)
class SamplePair:
    """One record: ``image`` ``(H, W)`` or ``(H, W, 3)`` RGB, ``label`` ``(H, W)`` class ids."""

    split: str
    key: str
    image: np.ndarray
    label: np.ndarray

    def label_classes(self) -> list[int]:
        return [int(v) for v in np.unique(self.label) if v != 0]

    def overlay(self, opacity: float = 0.45) -> np.ndarray:
        """``(H, W, 3)`` uint8: the image (own percentile window) under its coloured label."""
        colors = [default_color(i) for i in range(max(int(self.label.max()) + 1, 2))]
        return overlay_image(self.image, self.label, colors, opacity=opacity)


def _display_plane(features: np.ndarray) -> np.ndarray:
    """(C, H, W) Datum → what to show: channel 0, or RGB for 3 channels (stored BGR)."""
    if features.shape[0] == 3:
        return np.ascontiguousarray(features[::-1].transpose(1, 2, 0)).astype(np.float32)
    return features[0].astype(np.float32)


def spread_keys(keys: list[str], count: int) -> list[str]:
    """``count`` keys evenly spread over ``keys`` (records are stored case by case, so
    this samples across patients rather than the first slices of the first one)."""
    if count <= 0 or not keys:
        return []
    if len(keys) <= count:
        return list(keys)
    positions = np.linspace(0, len(keys) - 1, count).round().astype(int)
    return [keys[i] for i in positions]


def read_samples(manifest: Manifest, split: str = "train", count: int = 8) -> list[SamplePair]:
    """Up to ``count`` pairs of ``split`` spread across the DB, same key in both LMDBs."""
    features_path = manifest.db_path(split, "features")
    labels_path = manifest.db_path(split, "labels")
    for path in (features_path, labels_path):
        if not path.exists():
            raise InputError(f"{path}: the dataset's {split} database is missing")
    pairs = []
    with DatumDB(features_path) as features, DatumDB(labels_path) as labels:
        for key in spread_keys(features.keys(), count):
            image = features.get(key)
            label = labels.get(key)
            if label.shape[1:] != image.shape[1:]:
                raise InputError(
                    f"{labels_path}: record {key} label is {label.shape[1]}x{label.shape[2]} "
                    f"but its image is {image.shape[1]}x{image.shape[2]}"
                )
            pairs.append(SamplePair(split, key, _display_plane(image), label[0].astype(np.int64)))
    return pairs
