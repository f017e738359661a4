"""Evaluation against ground truth: per-image per-class table, summary, confusion matrix.

A folder of images plus a folder of ground truth (label masks with matching names,
or Sunnybrook contour files) gives one row per image with Dice, IoU and Hausdorff
distance per class, sortable worst first, the mean ± std per class and the pixel
confusion matrix over all images; everything exports to CSV.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlp.deploy import measure
from dlp.fsutil import atomic_write_text

METRICS = ("dice", "iou", "hausdorff")
#: For sorting "worst first": Dice/IoU worst is lowest, Hausdorff worst is highest.
WORST_IS_HIGH = {"dice": False, "iou": False, "hausdorff": True}


@dataclass(eq=False)  # holds arrays: compare by identity
class ImageScores:
    """Agreement of one image's prediction with its ground truth (arrays of one per class)."""

    name: str
    path: Path
    dice: np.ndarray
    iou: np.ndarray
    hausdorff: np.ndarray

    def metric(self, name: str) -> np.ndarray:
        return getattr(self, name)


@dataclass(eq=False)  # holds arrays: compare by identity
class EvaluationReport:
    """All images' scores, the failures, and the pixel confusion matrix summed over images."""

    class_names: tuple[str, ...]
    rows: list[ImageScores] = field(default_factory=list)
    confusion: np.ndarray | None = None
    failures: list[tuple[Path, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.confusion is None:
            k = len(self.class_names)
            self.confusion = np.zeros((k, k), dtype=np.int64)

    def add(self, scores: ImageScores, confusion: np.ndarray) -> None:
        self.rows.append(scores)
        self.confusion = self.confusion + confusion

    def summary(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std per class of ``metric`` over images (nan entries ignored)."""
        if not self.rows:
            k = len(self.class_names)
            return np.full(k, np.nan), np.full(k, np.nan)
        return measure.mean_std(np.stack([r.metric(metric) for r in self.rows]))

    def worst_first(self, metric: str = "dice", class_index: int = 1) -> list[ImageScores]:
        """Rows ordered worst first by one class's metric; rows where it is nan go last."""
        high_is_bad = WORST_IS_HIGH[metric]

        def key(row: ImageScores) -> tuple[int, float]:
            value = float(row.metric(metric)[class_index])
            if math.isnan(value):
                return (1, 0.0)
            return (0, -value if high_is_bad else value)

        return sorted(self.rows, key=key)

    def table_csv(self) -> str:
        """One row per image: ``image, dice_<class>…, iou_<class>…, hausdorff_mm_<class>…``."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        names = self.class_names
        header = ["image"]
        for metric in METRICS:
            unit = "_mm" if metric == "hausdorff" else ""
            header += [f"{metric}{unit}_{n}" for n in names]
        writer.writerow(header)
        for row in self.rows:
            values = [row.name]
            for metric in METRICS:
                values += [_fmt(v) for v in row.metric(metric)]
            writer.writerow(values)
        for label, pick in (("mean", 0), ("std", 1)):
            values = [label]
            for metric in METRICS:
                values += [_fmt(v) for v in self.summary(metric)[pick]]
            writer.writerow(values)
        for path, reason in self.failures:
            writer.writerow([path.name, f"failed: {reason}"])
        return out.getvalue()

    def confusion_csv(self) -> str:
        """The confusion matrix with truth in rows and prediction in columns."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["truth \\ predicted", *self.class_names])
        for name, counts in zip(self.class_names, self.confusion, strict=False):
            writer.writerow([name, *[int(c) for c in counts]])
        return out.getvalue()

    def write_csv(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``evaluation.csv`` and ``confusion_matrix.csv`` into ``directory``."""
        directory = Path(directory)
        table, confusion = directory / "evaluation.csv", directory / "confusion_matrix.csv"
        atomic_write_text(table, self.table_csv())
        atomic_write_text(confusion, self.confusion_csv())
        return table, confusion


def _fmt(value: float) -> str:
    return "" if math.isnan(float(value)) else f"{float(value):.6g}"


def score_prediction(
    name: str,
    path: Path,
    pred: np.ndarray,
    truth: np.ndarray,
    num_classes: int,
    spacing: Sequence[float] | None = None,
) -> tuple[ImageScores, np.ndarray]:
    """Scores and the confusion matrix of one prediction against its ground truth.

    ``pred`` and ``truth`` are class-index arrays of the same shape (``(H, W)`` or
    ``(S, H, W)``); ``spacing`` in mm per axis makes Hausdorff distances millimetres.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(
            f"ground truth is {truth.shape[-2:]} pixels but the image is {pred.shape[-2:]}"
        )
    scores = ImageScores(
        name=name,
        path=Path(path),
        dice=measure.dice_per_class(pred, truth, num_classes),
        iou=measure.iou_per_class(pred, truth, num_classes),
        hausdorff=measure.hausdorff_per_class(pred, truth, num_classes, spacing),
    )
    return scores, measure.confusion_matrix(pred, truth, num_classes)
