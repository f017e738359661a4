"""Measurements of label masks: areas, volumes and agreement with a ground truth.

Masks are integer class-index arrays, ``(H, W)`` for one slice or ``(S, H, W)`` for a
volume.  Spacing is in millimetres, ordered like the array axes (``(sy, sx)`` or
``(sz, sy, sx)``).  Agreement metrics follow the usual conventions (MONAI's): a class
absent from both prediction and truth has Dice/IoU ``nan`` (nothing to agree on, so it
does not pull a mean down), and the Hausdorff distance is ``nan`` unless both contain
the class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check_same_shape(pred: np.ndarray, truth: np.ndarray) -> None:
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {truth.shape}")


#: Up to this many classes, counting the pixels equal to each class beats ``bincount``
#: (which first widens every label to int64): 13x for 2 classes, 3x for 8.
COMPARE_UP_TO_CLASSES = 16


def class_counts(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixel count of every class over the whole mask: shape ``(num_classes,)``."""
    flat = np.asarray(mask).ravel()
    if flat.dtype.kind in "ui" and num_classes <= COMPARE_UP_TO_CLASSES:
        return np.array([np.count_nonzero(flat == c) for c in range(num_classes)],
                        dtype=np.int64)
    if flat.dtype.kind == "u" and flat.dtype.itemsize < 8:  # no negatives: count all, keep K
        return np.bincount(flat, minlength=num_classes)[:num_classes]
    keep = (flat >= 0) & (flat < num_classes)
    return np.bincount(flat[keep].astype(np.int64), minlength=num_classes)[:num_classes]


def slice_areas_mm2(
    mask: np.ndarray, num_classes: int, pixel_spacing: Sequence[float]
) -> np.ndarray:
    """Area of each class per slice in mm²: ``(S, num_classes)`` for an ``(S, H, W)`` mask.

    ``pixel_spacing`` is ``(sy, sx)``, the DICOM PixelSpacing (row, column) order.
    """
    pixel_area = float(pixel_spacing[0]) * float(pixel_spacing[1])
    return slice_class_counts(mask, num_classes).astype(np.float64) * pixel_area


def slice_class_counts(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixel count of each class per slice: ``(S, num_classes)`` for an ``(S, H, W)`` mask."""
    volume = np.asarray(mask)
    if volume.ndim == 2:
        volume = volume[None]
    return np.stack([class_counts(plane, num_classes) for plane in volume])


def volumes_ml(mask: np.ndarray, num_classes: int, spacing: Sequence[float]) -> np.ndarray:
    """Volume of each class in millilitres for an ``(S, H, W)`` mask and ``(sz, sy, sx)`` mm."""
    voxel_mm3 = float(np.prod([float(s) for s in spacing[-3:]]))
    return class_counts(mask, num_classes).astype(np.float64) * voxel_mm3 / 1000.0


def dice_per_class(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Dice 2|P∩T|/(|P|+|T|) for each class: ``(num_classes,)``; ``nan`` if both are empty."""
    _check_same_shape(pred, truth)
    matrix = confusion_matrix(pred, truth, num_classes)
    inter = np.diag(matrix).astype(np.float64)
    sizes = matrix.sum(axis=0) + matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sizes > 0, 2.0 * inter / sizes, np.nan)


def iou_per_class(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Intersection over union per class: ``(num_classes,)``; ``nan`` if both are empty."""
    _check_same_shape(pred, truth)
    matrix = confusion_matrix(pred, truth, num_classes)
    inter = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def confusion_matrix(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixel confusion matrix ``(num_classes, num_classes)``: rows truth, columns prediction.

    Pixels whose truth is outside ``0..num_classes-1`` (an ignore label such as 255) are
    left out, like Caffe's ``ignore_label``.
    """
    _check_same_shape(pred, truth)
    p = np.asarray(pred).ravel().astype(np.int64)
    t = np.asarray(truth).ravel().astype(np.int64)
    keep = (t >= 0) & (t < num_classes) & (p >= 0) & (p < num_classes)
    index = t[keep] * num_classes + p[keep]
    return np.bincount(index, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _surface_points(region: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Coordinates in mm of the region's boundary voxels (voxels with a background neighbour)."""
    from scipy import ndimage  # ~0.7 s to import: only when a ground truth is scored

    eroded = ndimage.binary_erosion(region, border_value=0)
    boundary = region & ~eroded
    return np.argwhere(boundary).astype(np.float64) * spacing


def hausdorff_distance(
    pred_region: np.ndarray, truth_region: np.ndarray, spacing: Sequence[float] | None = None
) -> float:
    """Symmetric Hausdorff distance in mm between two boolean regions' boundaries.

    ``nan`` when either region is empty (the distance is undefined).
    """
    a = np.asarray(pred_region, dtype=bool)
    b = np.asarray(truth_region, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"region shapes differ: {a.shape} vs {b.shape}")
    if not a.any() or not b.any():
        return float("nan")
    scale = np.ones(a.ndim) if spacing is None else np.asarray(spacing, dtype=np.float64)[-a.ndim:]
    from scipy.spatial import cKDTree

    pa, pb = _surface_points(a, scale), _surface_points(b, scale)
    # Nearest-neighbour queries are O(n log n), unlike the pairwise matrix.
    d_ab = cKDTree(pb).query(pa, k=1)[0].max()
    d_ba = cKDTree(pa).query(pb, k=1)[0].max()
    return float(max(d_ab, d_ba))


def hausdorff_per_class(
    pred: np.ndarray,
    truth: np.ndarray,
    num_classes: int,
    spacing: Sequence[float] | None = None,
) -> np.ndarray:
    """Hausdorff distance (mm) per class: ``(num_classes,)``."""
    _check_same_shape(pred, truth)
    return np.array(
        [hausdorff_distance(pred == c, truth == c, spacing) for c in range(num_classes)]
    )


def mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of a ``(rows, classes)`` table, ignoring nan."""
    table = np.asarray(values, dtype=np.float64)
    if table.size == 0:
        empty = np.full(table.shape[-1] if table.ndim == 2 else 0, np.nan)
        return empty, empty.copy()
    finite = np.isfinite(table)
    counts = finite.sum(axis=0)
    filled = np.where(finite, table, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, filled.sum(axis=0) / counts, np.nan)
        sq = np.where(finite, (table - mean) ** 2, 0.0).sum(axis=0)
        std = np.where(counts > 0, np.sqrt(sq / np.maximum(counts, 1)), np.nan)
    return mean, std


#: Columns of the measurements table (GUI table, per-input CSV and the combined CSV).
MEASUREMENT_COLUMNS = (
    "input", "slice", "class", "pixels", "area_mm2", "volume_ml", "dice", "hausdorff_mm",
)


def measurement_rows(
    labels: np.ndarray,
    spacing: Sequence[float],
    class_names: Sequence[str],
    truth: np.ndarray | None = None,
    input_name: str = "",
    phases: Sequence[Sequence[int]] | None = None,
) -> list[dict[str, object]]:
    """The measurements table of one segmented image, one dict per row.

    ``labels`` is ``(S, H, W)``; ``spacing`` is ``(sz, sy, sx)`` mm.  For every slice and
    foreground class: pixel count and area (mm²).  For a volume (S > 1) one more row per
    class, slice ``"all"``, with its volume (mL).  With a ``truth`` mask of the same
    shape, Dice and Hausdorff per class are added to each slice row and the volume row.
    A cine series holds several frames per position: give ``phases`` (slice indices of
    each phase) to get one volume row per phase (``"all (phase k)"``) instead of a
    meaningless sum over the cardiac cycle.
    """
    volume = np.asarray(labels)
    if volume.ndim == 2:
        volume = volume[None]
    k = len(class_names)
    sz, sy, sx = (float(s) for s in spacing[-3:])
    per_slice = slice_class_counts(volume, k)
    areas = per_slice.astype(np.float64) * (sy * sx)
    truth_v = None if truth is None else np.asarray(truth).reshape(volume.shape)
    rows: list[dict[str, object]] = []
    for s in range(volume.shape[0]):
        counts = per_slice[s]
        dice = hd = None
        if truth_v is not None:
            dice = dice_per_class(volume[s], truth_v[s], k)
            hd = hausdorff_per_class(volume[s], truth_v[s], k, (sy, sx))
        for c in range(1, k):
            rows.append({
                "input": input_name, "slice": s + 1, "class": class_names[c],
                "pixels": int(counts[c]), "area_mm2": float(areas[s, c]), "volume_ml": None,
                "dice": None if dice is None else float(dice[c]),
                "hausdorff_mm": None if hd is None else float(hd[c]),
            })
    if volume.shape[0] > 1:
        groups = [list(range(volume.shape[0]))] if not phases or len(phases) < 2 else phases
        for number, group in enumerate(groups, start=1):
            label = "all" if len(groups) == 1 else f"all (phase {number})"
            part = volume[list(group)]
            part_truth = None if truth_v is None else truth_v[list(group)]
            rows += _volume_rows(part, part_truth, (sz, sy, sx), class_names, input_name, label)
    return rows


def _volume_rows(volume: np.ndarray, truth_v: np.ndarray | None, spacing: Sequence[float],
                 class_names: Sequence[str], input_name: str, label: str
                 ) -> list[dict[str, object]]:
    k = len(class_names)
    counts = class_counts(volume, k)
    vols = volumes_ml(volume, k, spacing)
    dice = hd = None
    if truth_v is not None:
        # Only slices that have ground truth (the rest are 255, "not contoured").
        known = ~(truth_v == 255).all(axis=(1, 2))
        if known.any():
            dice = dice_per_class(volume[known], truth_v[known], k)
            hd = hausdorff_per_class(volume[known], truth_v[known], k, spacing)
    rows: list[dict[str, object]] = []
    for c in range(1, k):
        rows.append({
            "input": input_name, "slice": label, "class": class_names[c],
            "pixels": int(counts[c]), "area_mm2": None, "volume_ml": float(vols[c]),
            "dice": None if dice is None else float(dice[c]),
            "hausdorff_mm": None if hd is None else float(hd[c]),
        })
    return rows
